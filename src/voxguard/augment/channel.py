"""Channel effects: band-limits, gain and clipping, reverberation, resampling chains, packet loss.

Each function maps mono float32 ``(y, sr)`` to a signal of the same rate and length.
"""

from __future__ import annotations

import numpy as np

from voxguard.audio.load import resample
from voxguard.augment.codecs import fit_length
from voxguard.errors import VoxguardError

REVERB_METHODS = ("exponential", "room")


def band_limit(y: np.ndarray, sr: int, cutoff_hz: float) -> np.ndarray:
    """Remove content above ``cutoff_hz`` by resampling down to ``2 * cutoff_hz`` and back (soxr)."""
    low = int(2 * cutoff_hz)
    if low >= sr:
        return y.astype(np.float32, copy=False)
    return fit_length(resample(resample(y, sr, low), low, sr), len(y))


def gain(y: np.ndarray, factor: float) -> np.ndarray:
    """Scale by ``factor`` (no clipping: float audio keeps its range; see :func:`clip`)."""
    return (y * np.float32(factor)).astype(np.float32)


def clip(y: np.ndarray, fraction: float = 0.3) -> np.ndarray:
    """Hard-clip at ``fraction`` of the signal's peak, as an overdriven input stage does."""
    peak = float(np.max(np.abs(y))) if len(y) else 0.0
    if peak == 0.0:
        return y.astype(np.float32, copy=False)
    limit = np.float32(fraction * peak)
    return np.clip(y, -limit, limit).astype(np.float32)


def resample_chain(y: np.ndarray, sr: int, rates: tuple[int, ...] = (48_000, 8_000, 16_000)) -> np.ndarray:
    """Pass through each rate in turn (soxr HQ) and back to ``sr``, e.g. 48→8→16 kHz."""
    x, current = y.astype(np.float32), sr
    for rate in (*rates, sr):
        if rate != current:
            x = resample(x, current, rate)
            current = rate
    return fit_length(x, len(y))


def packet_loss(y: np.ndarray, sr: int, rate: float = 0.05, *, packet_ms: float = 20.0, seed: int = 0) -> np.ndarray:
    """Zero whole packets (``packet_ms`` long), each lost with probability ``rate`` (no concealment)."""
    packet = max(1, int(sr * packet_ms / 1000))
    n_packets = -(-len(y) // packet)
    lost = np.random.default_rng(seed).random(n_packets) < rate
    mask = np.repeat(~lost, packet)[: len(y)]
    return (y * mask).astype(np.float32)


def exponential_rir(sr: int, rt60: float, *, seed: int = 0) -> np.ndarray:
    """A synthetic room impulse response: a direct path, then Gaussian noise decaying by 60 dB in ``rt60`` s."""
    rng = np.random.default_rng(seed)
    n = max(2, int(rt60 * sr))
    t = np.arange(n) / sr
    rir = rng.standard_normal(n) * np.exp(-6.9078 * t / rt60)  # ln(1000) = 6.9078: -60 dB at rt60
    rir[: int(0.002 * sr)] = 0.0  # a 2 ms gap before the first reflections
    rir[0] = 1.0
    return (rir / np.sqrt(np.sum(rir**2))).astype(np.float32)


def room_rir(sr: int, rt60: float, *, seed: int = 0) -> np.ndarray:
    """A shoebox-room impulse response from the image-source method (pyroomacoustics).

    The room (3-8 × 3-6 × 2.5-3.5 m), source and microphone positions are drawn from ``seed``;
    the direct path is moved to sample 0 so the output stays aligned with the input. Image sources
    stop at order 60 (≈ 0.2 s per response; the RT60 measured back stays within ~15 %).
    """
    try:
        import pyroomacoustics as pra
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise VoxguardError("room reverberation needs pyroomacoustics: pip install 'voxguard[train]'") from exc
    rng = np.random.default_rng(seed)
    dims = np.array([rng.uniform(3, 8), rng.uniform(3, 6), rng.uniform(2.5, 3.5)])
    try:
        absorption, max_order = pra.inverse_sabine(rt60, dims)
    except ValueError as exc:
        raise VoxguardError(f"RT60 {rt60} s is not reachable in a {dims.round(1)} m room: {exc}") from exc
    room = pra.ShoeBox(dims, fs=sr, materials=pra.Material(absorption), max_order=min(max_order, 60))
    margin = 0.5
    room.add_source(rng.uniform(margin, dims - margin))
    room.add_microphone(rng.uniform(margin, dims - margin))
    room.compute_rir()
    rir = np.asarray(room.rir[0][0], dtype=np.float64)
    rir = rir[int(np.argmax(np.abs(rir))) :]
    return (rir / np.sqrt(np.sum(rir**2))).astype(np.float32)


def reverb(y: np.ndarray, sr: int, rt60: float = 0.5, *, method: str = "exponential", seed: int = 0) -> np.ndarray:
    """Convolve with a room impulse response of reverberation time ``rt60`` (s); power is kept.

    ``method``: ``"exponential"`` (decaying noise, no dependency) or ``"room"`` (image-source
    shoebox room, pyroomacoustics).
    """
    from scipy.signal import fftconvolve

    if method == "exponential":
        rir = exponential_rir(sr, rt60, seed=seed)
    elif method == "room":
        rir = room_rir(sr, rt60, seed=seed)
    else:
        raise VoxguardError(f"unknown reverb method {method!r}; choose from {', '.join(REVERB_METHODS)}")
    wet = fftconvolve(y.astype(np.float64), rir.astype(np.float64))[: len(y)]
    p_in, p_out = float(np.mean(np.square(y, dtype=np.float64))), float(np.mean(wet**2))
    if p_out > 0:
        wet *= np.sqrt(p_in / p_out)
    return wet.astype(np.float32)
