"""RawBoost-style data boosting (Tak et al., ICASSP 2022): three seeded channel/noise models.

- :func:`convolutive` (LnL): linear and non-linear convolutive noise — a sum of the signal's
  powers ``x^j`` (j = 1..orders), each through its own random multi-band FIR filter;
- :func:`impulsive` (ISD): signal-dependent impulsive noise on a random few per cent of samples;
- :func:`stationary` (SSI): signal-independent coloured noise (white noise through a random
  multi-band filter) at a random SNR.

Written from the paper's description; parameter ranges follow its defaults for 16 kHz speech.
"""

from __future__ import annotations

import numpy as np

from voxguard.augment.noise import mix_at_snr


def _random_fir(rng: np.random.Generator, sr: int, *, bands: int = 5) -> np.ndarray:
    """A random multi-band FIR filter: the convolution of ``bands`` random band-pass filters, random gain."""
    from scipy.signal import firwin

    nyquist = sr / 2
    h = np.array([1.0])
    for _ in range(int(rng.integers(1, bands + 1))):
        centre = rng.uniform(20.0, min(8_000.0, nyquist - 200.0))
        width = rng.uniform(100.0, 1_000.0)
        low, high = max(centre - width / 2, 10.0), min(centre + width / 2, nyquist - 10.0)
        taps = int(rng.integers(10, 100)) | 1  # odd length: a type I linear-phase band-pass
        h = np.convolve(h, firwin(taps, [low, high], pass_zero=False, window="hamming", fs=sr))
    return h / (np.max(np.abs(np.fft.rfft(h, 1024))) + 1e-12)


def convolutive(y: np.ndarray, sr: int, *, orders: int = 5, seed: int = 0) -> np.ndarray:
    """LnL: ``sum_j g_j * (h_j * x^j)`` for j = 1..``orders``, peak-normalised to the input's peak."""
    from scipy.signal import fftconvolve

    rng = np.random.default_rng(seed)
    x = y.astype(np.float64)
    peak = float(np.max(np.abs(x))) or 1.0
    xn = x / peak
    out = np.zeros_like(x)
    for j in range(1, orders + 1):
        h = _random_fir(rng, sr)
        term = fftconvolve(xn**j, h)[len(h) // 2 : len(h) // 2 + len(x)]  # centre the linear-phase delay
        out += term * (1.0 if j == 1 else 10 ** (rng.uniform(-40, -10) / 20))
    out *= peak / (float(np.max(np.abs(out))) or 1.0)
    return out.astype(np.float32)


def impulsive(y: np.ndarray, *, fraction: float = 0.1, gain: float = 2.0, seed: int = 0) -> np.ndarray:
    """ISD: on up to ``fraction`` of the samples, add ``x[n] * g * u`` with ``u`` uniform in [-1, 1]."""
    rng = np.random.default_rng(seed)
    out = y.astype(np.float32).copy()
    k = int(rng.uniform(0, fraction) * len(y))
    where = rng.choice(len(y), size=k, replace=False) if k else np.zeros(0, np.int64)
    out[where] += (y[where] * gain * rng.uniform(-1.0, 1.0, k)).astype(np.float32)
    return out


def stationary(y: np.ndarray, sr: int, *, snr_range: tuple[float, float] = (10.0, 40.0), seed: int = 0) -> np.ndarray:
    """SSI: white noise through a random multi-band filter, added at an SNR drawn from ``snr_range`` dB."""
    from scipy.signal import fftconvolve

    rng = np.random.default_rng(seed)
    noise = fftconvolve(rng.standard_normal(len(y)), _random_fir(rng, sr), mode="same")
    return mix_at_snr(y, noise, float(rng.uniform(*snr_range)))


def apply(y: np.ndarray, sr: int, algorithm: str = "lnl+isd", *, seed: int = 0) -> np.ndarray:
    """Apply RawBoost algorithms in series: any of ``lnl``, ``isd``, ``ssi`` joined by ``+``."""
    from voxguard.errors import VoxguardError

    out = y
    for k, step in enumerate(algorithm.split("+")):
        step_seed = seed * 7 + k
        if step == "lnl":
            out = convolutive(out, sr, seed=step_seed)
        elif step == "isd":
            out = impulsive(out, seed=step_seed)
        elif step == "ssi":
            out = stationary(out, sr, seed=step_seed)
        else:
            raise VoxguardError(f"unknown RawBoost algorithm {step!r}; use lnl, isd, ssi joined by '+'")
    return out.astype(np.float32)
