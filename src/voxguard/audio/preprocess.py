"""The canonical preprocessing, applied identically in training and at inference.

Public corpora leak the label through the recording chain rather than the voice: sample rate,
bit depth (float WAVs off the 16-bit grid), loudness and the length of leading/trailing silence
(a known ASVspoof 2019 shortcut). Every signal therefore goes through the same steps:

1. resample to the analysis rate (16 kHz) — done by :func:`voxguard.audio.load.load`;
2. DC removal (subtract the mean, or a causal DC blocker: ``dc_filter``);
3. speech detection (:mod:`voxguard.audio.vad`) and trimming of leading/trailing non-speech at
   the detected speech bounds, or at energy bounds (``trim_mode``). No margin by default: a
   zero-padded margin gave real clips with short lead-in a digital-silence noise floor, which
   the corpus audit found predictive; models that gate silent frames out of their features
   (voxguard-v2) use a margin so that no speech onset is ever cut;
4. loudness normalisation to ``target_lufs`` (ITU-R BS.1770 integrated loudness via pyloudnorm),
   scaled down if the peak would exceed ``peak_limit``;
5. re-quantisation to a 16-bit grid with seeded TPDF dither, so float and integer sources end up
   indistinguishable at the LSB level.

The configuration is a small frozen dataclass that is saved with every model, so inference can
never preprocess differently from training.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import pyloudnorm

from voxguard.audio.iir import sosfilt_blocked
from voxguard.audio.load import ANALYSIS_RATE, check_finite, peak_amplitude, resample
from voxguard.audio.vad import SpeechActivity, detect_speech, frame_levels_db
from voxguard.errors import SilentAudioError, TooShortError

# Below this peak the signal is digital silence (about -100 dBFS: under the 16-bit LSB).
_SILENCE_PEAK = 1e-5


@dataclass(frozen=True)
class PreprocessConfig:
    """Parameters of :func:`preprocess` (saved in every model's config)."""

    sample_rate: int = ANALYSIS_RATE
    remove_dc: bool = True
    #: ``"mean"``: subtract the clip's mean (voxguard-v1). ``"highpass"``: a causal one-pole DC
    #: blocker (:func:`block_dc`), whose output on the speech does not depend on how much silence
    #: precedes it — the mean of a clip does, so padding a DC-offset recording changed its levels.
    dc_filter: str = "mean"
    trim_silence: bool = True
    #: ``"vad"``: trim at WebRTC's speech bounds (voxguard-v1). ``"energy"``: at the first and last
    #: 10 ms frame within ``trim_range_db`` of the loudest — WebRTC's decisions on a weak onset flip
    #: with the silence before it (0.8 s of speech lost or kept), an energy threshold does not.
    trim_mode: str = "vad"
    trim_range_db: float = 40.0
    trim_margin_s: float = 0.0
    vad_aggressiveness: int = 2
    min_speech_s: float = 0.5
    normalise_loudness: bool = True
    target_lufs: float = -23.0
    peak_limit: float = 0.95
    requantise_bits: int | None = 16
    dither_seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PreprocessConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class Preprocessed:
    """Output of :func:`preprocess`.

    Attributes
    ----------
    samples : np.ndarray, shape (n,), float32
        The canonical signal at ``sample_rate``.
    sample_rate : int
    offset_s : float
        Where ``samples[0]`` lies in the input, in seconds (trimming moves it; negative when a
        zero margin was added before the first sample), so that times computed on ``samples``
        can be mapped back to the original recording.
    input_duration_s : float
    speech_s : float
        Seconds of detected speech in the input.
    input_lufs : float
        Integrated loudness of the (trimmed) input before normalisation, LUFS (``-inf`` if unmeasurable).
    activity : SpeechActivity
        Frame-level speech mask of the *input* (before trimming).
    """

    samples: np.ndarray
    sample_rate: int
    offset_s: float
    input_duration_s: float
    speech_s: float
    input_lufs: float
    activity: SpeechActivity

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate


def remove_dc(y: np.ndarray) -> np.ndarray:
    """Subtract the mean; float32 ``(n,) -> (n,)``."""
    return (y - y.mean(dtype=np.float64)).astype(np.float32)


def block_dc(y: np.ndarray, sr: int, cutoff_hz: float = 20.0) -> np.ndarray:
    """Causal DC blocker ``H(z) = (1 - z^-1) / (1 - R z^-1)``, -3 dB at about ``cutoff_hz``; float32 ``(n,) -> (n,)``.

    Starting from rest, leading digital silence leaves the filter state at zero, so the output on
    the following speech is the same with or without the silence.
    """
    r = float(np.float32(np.exp(-2.0 * np.pi * cutoff_hz / sr)))
    # As block matrix products (voxguard.audio.iir): half the cost of lfilter, same output.
    return sosfilt_blocked(np.array([[1.0, -1.0, 0.0, 1.0, -r, 0.0]]), y)


@functools.lru_cache(maxsize=8)
def _k_weighting_sos(sr: int) -> np.ndarray:
    """BS.1770 K-weighting (high shelf + RLB high-pass) as second-order sections, designed by pyloudnorm."""
    meter = pyloudnorm.Meter(sr)
    sections = []
    for stage in meter._filters.values():
        b = np.asarray(stage.b, dtype=np.float64) * stage.passband_gain
        a = np.asarray(stage.a, dtype=np.float64)
        sections.append(np.concatenate([b / a[0], a / a[0]]))
    return np.array(sections)


def integrated_loudness(y: np.ndarray, sr: int) -> float:
    """ITU-R BS.1770-4 integrated loudness of a mono signal in LUFS (gated).

    The same computation as ``pyloudnorm.Meter(sr).integrated_loudness`` (K-weighting from
    pyloudnorm's filter design; 400 ms blocks, 75 % overlap; absolute gate -70 LUFS, relative
    gate -10 LU), but with the block energies from sums of 100 ms steps instead of a Python loop
    over blocks (and the K-weighting as block matrix products, :mod:`voxguard.audio.iir`): every
    scan measures loudness.

    Returns ``-inf`` for signals under 0.4 s or without blocks above the gates.
    """
    block = int(0.4 * sr)
    if len(y) < block + 1:
        return float("-inf")
    weighted = sosfilt_blocked(_k_weighting_sos(sr), y)
    n_blocks = int(np.round((len(y) / sr - 0.4) / (0.4 * 0.25))) + 1
    step = 0.1 * sr
    if step == int(step):
        # Blocks are four consecutive 100 ms steps: energies of the steps (one pass), then sums of four.
        step = int(step)
        e = np.zeros(n_blocks + 3)
        n_full = min(len(weighted) // step, len(e))
        steps = weighted[: n_full * step].reshape(n_full, step)
        e[:n_full] = np.einsum("ij,ij->i", steps, steps)  # float32 SIMD sums of 100 ms: ~1e-6 relative
        if n_full < len(e):  # a last partial step (beyond the signal, steps are empty)
            tail = weighted[n_full * step : (n_full + 1) * step].astype(np.float64)
            e[n_full] = tail @ tail
        z = (e[:-3] + e[1:-2] + e[2:-1] + e[3:]) / block
    else:
        csum = np.concatenate([[0.0], np.cumsum(np.square(weighted, dtype=np.float64))])
        starts = (0.4 * 0.25 * np.arange(n_blocks) * sr).astype(np.int64)
        stops = np.minimum((0.4 * (0.25 * np.arange(n_blocks) + 1) * sr).astype(np.int64), len(y))
        z = (csum[stops] - csum[starts]) / block
    with np.errstate(divide="ignore"):
        block_lufs = -0.691 + 10.0 * np.log10(z)
        gated = z[block_lufs >= -70.0]
        if gated.size == 0:
            return float("-inf")
        relative = -0.691 + 10.0 * np.log10(gated.mean()) - 10.0
        final = z[(block_lufs > relative) & (block_lufs > -70.0)]
        return float(-0.691 + 10.0 * np.log10(final.mean())) if final.size else float("-inf")


def loudness_gain(
    y: np.ndarray,
    sr: int,
    *,
    target_lufs: float = -23.0,
    peak_limit: float = 0.95,
    input_lufs: float | None = None,
) -> tuple[float, float]:
    """The gain that brings ``y`` to ``target_lufs`` (RMS-based when BS.1770 gating cannot measure it).

    Returns
    -------
    (gain, input_lufs) : (float, float)
        Linear gain, reduced if the peak would exceed ``peak_limit`` (no clipping is introduced).
    """
    lufs = integrated_loudness(y, sr) if input_lufs is None else input_lufs
    if np.isfinite(lufs):
        gain_db = target_lufs - lufs
    else:
        # Short clips: match RMS to the level a BS.1770-normalised speech signal typically has.
        rms_db = 10.0 * np.log10(float(np.mean(np.square(y, dtype=np.float64))) + 1e-20)
        gain_db = (target_lufs - 0.7) - rms_db  # LUFS ≈ dBFS RMS - 0.691 for mid-band content
    gain = 10.0 ** (gain_db / 20.0)
    peak = peak_amplitude(y)
    if peak * gain > peak_limit:
        gain = peak_limit / peak
    return float(gain), lufs


def normalise_loudness(
    y: np.ndarray,
    sr: int,
    *,
    target_lufs: float = -23.0,
    peak_limit: float = 0.95,
    input_lufs: float | None = None,
) -> tuple[np.ndarray, float]:
    """Scale ``y`` to ``target_lufs`` (:func:`loudness_gain`).

    Returns
    -------
    (y_scaled, input_lufs) : (np.ndarray float32, float)
    """
    gain, lufs = loudness_gain(y, sr, target_lufs=target_lufs, peak_limit=peak_limit, input_lufs=input_lufs)
    return (y * np.float32(gain)).astype(np.float32), lufs


@functools.lru_cache(maxsize=4)
def _tpdf_table(seed: int, n: int = 1 << 16) -> np.ndarray:
    rng = np.random.default_rng(seed)
    table = rng.random(n, dtype=np.float32) - rng.random(n, dtype=np.float32)
    table.setflags(write=False)
    return table


def requantise(y: np.ndarray, *, bits: int = 16, seed: int = 0, gain: float = 1.0) -> np.ndarray:
    """Round ``gain * y`` to a ``bits``-bit grid with TPDF dither (seeded, hence reproducible); float32 out.

    The dither is a fixed 65,536-sample TPDF sequence (4 s at 16 kHz) repeated: drawing fresh
    random numbers for every sample cost as much as a feature view, and a periodic dither of
    this length is inaudible and invisible to 25 ms frames. ``gain`` is applied in the same pass
    (the result equals ``requantise(float32(y * gain))``: the grid scale is a power of two).
    """
    scale = np.float32(2 ** (bits - 1))
    table = _tpdf_table(seed)
    q = np.multiply(y, np.float32(np.float32(gain) * scale), dtype=np.float32)
    # Add the periodic dither in place: whole periods as one broadcast, then the remainder.
    n_periods = len(q) // len(table)
    if n_periods:
        q[: n_periods * len(table)].reshape(n_periods, len(table))[...] += table
    rest = len(q) - n_periods * len(table)
    q[n_periods * len(table) :] += table[:rest]
    np.round(q, out=q)
    np.clip(q, -scale, scale - 1, out=q)
    q *= np.float32(1.0) / scale
    return q


def refine_bounds(
    y: np.ndarray, sr: int, start_s: float, end_s: float, *, max_extend_s: float = 0.3, floor_db: float = -40.0
) -> tuple[float, float]:
    """Move VAD speech bounds outwards to the sound's own onset/offset, at 10 ms resolution.

    WebRTC's decisions on the first and last frames depend on where its 30 ms grid falls, so the
    same recording with some silence in front could be trimmed 200 ms differently. Here the
    bounds are extended over adjacent 10 ms frames whose level is within ``floor_db`` of the
    loudest frame (at most ``max_extend_s``), which does not depend on the grid.
    """
    hop = max(1, sr // 100)
    levels = frame_levels_db(y, hop)
    if levels.size == 0:
        return start_s, end_s
    loud = levels > float(levels.max()) + floor_db
    reach = int(round(max_extend_s * 100))
    first, last = int(start_s * 100), min(len(levels), int(np.ceil(end_s * 100)))
    # Frames before the onset, nearest first: extend while they stay loud.
    before = loud[max(0, first - reach) : first][::-1]
    first -= int(np.argmin(before)) if not before.all() else len(before)
    after = loud[last : last + reach]
    last += int(np.argmin(after)) if not after.all() else len(after)
    return first * hop / sr, min(len(y), last * hop) / sr


def energy_bounds(y: np.ndarray, sr: int, range_db: float = 40.0) -> tuple[float, float] | None:
    """(start, end) in s of the first and last 10 ms frame within ``range_db`` of the loudest frame.

    Relative to the loudest frame, so neither gain nor added silence moves the bounds (beyond the
    10 ms grid). ``None`` for an empty signal.
    """
    hop = max(1, sr // 100)
    levels = frame_levels_db(y, hop)
    if levels.size == 0:
        return None
    loud = np.flatnonzero(levels > float(levels.max()) - range_db)
    return loud[0] * hop / sr, min(len(y), (loud[-1] + 1) * hop) / sr


def preprocess(
    y: np.ndarray, sr: int, config: PreprocessConfig | None = None, *, activity: SpeechActivity | None = None
) -> Preprocessed:
    """Apply the canonical preprocessing to a mono signal.

    Parameters
    ----------
    y : np.ndarray, shape (n,)
        Mono float signal.
    sr : int
        Its rate in Hz; resampled to ``config.sample_rate`` if different.
    config : PreprocessConfig, optional
    activity : SpeechActivity, optional
        Speech detection already run on this same signal at ``config.sample_rate`` (the scanner
        needs it anyway); reused instead of running the VAD a second time. Ignored when ``y``
        has to be resampled first.

    Returns
    -------
    Preprocessed

    Raises
    ------
    InvalidSamplesError
        NaN or infinite samples.
    SilentAudioError
        Digital silence, or no speech detected.
    TooShortError
        Less than ``config.min_speech_s`` seconds of speech.
    """
    cfg = config or PreprocessConfig()
    check_finite(y)
    given = y
    if sr != cfg.sample_rate:
        activity = None  # computed on another grid
    y = resample(y, sr, cfg.sample_rate)
    sr = cfg.sample_rate
    input_duration = len(y) / sr
    if len(y) == 0 or peak_amplitude(y) < _SILENCE_PEAK:
        raise SilentAudioError("the audio is digital silence")
    if cfg.remove_dc:
        if cfg.dc_filter == "highpass":
            y = block_dc(y, sr)
        elif cfg.dc_filter == "mean":
            y = remove_dc(y)
        else:
            raise ValueError(f"unknown dc_filter {cfg.dc_filter!r}; use 'mean' or 'highpass'")
    if activity is None:
        activity = detect_speech(y, sr, aggressiveness=cfg.vad_aggressiveness)
    bounds = activity.bounds_s()
    if bounds is None:
        raise SilentAudioError("no speech detected")
    if activity.speech_s < cfg.min_speech_s:
        raise TooShortError(
            f"only {activity.speech_s:.2f} s of speech detected; at least {cfg.min_speech_s:.2f} s is needed"
        )
    offset = 0.0
    if cfg.trim_silence:
        if cfg.trim_mode == "energy":
            bounds = energy_bounds(y, sr, cfg.trim_range_db) or bounds
        elif cfg.trim_mode == "vad":
            bounds = refine_bounds(y, sr, *bounds)
        else:
            raise ValueError(f"unknown trim_mode {cfg.trim_mode!r}; use 'vad' or 'energy'")
        # Cut speech plus a fixed margin; where the input has less than the margin, pad with
        # zeros, so that the output length does not depend on how much silence surrounded it.
        margin = int(cfg.trim_margin_s * sr)
        start, stop = int(bounds[0] * sr) - margin, int(np.ceil(bounds[1] * sr)) + margin
        # The common case is a view: no padded copy of the whole signal.
        y = y[start:stop] if start >= 0 and stop <= len(y) else np.pad(y, margin)[start + margin : stop + margin]
        offset = start / sr
    lufs = integrated_loudness(y, sr)
    gain = 1.0
    if cfg.normalise_loudness:
        gain, lufs = loudness_gain(y, sr, target_lufs=cfg.target_lufs, peak_limit=cfg.peak_limit, input_lufs=lufs)
    if cfg.requantise_bits:
        y = requantise(y, bits=cfg.requantise_bits, seed=cfg.dither_seed, gain=gain)
    elif gain != 1.0:
        y = (y * np.float32(gain)).astype(np.float32)
    if np.may_share_memory(y, given):
        y = y.copy()  # the result never aliases the caller's array (trimming takes a view)
    return Preprocessed(
        samples=y,
        sample_rate=sr,
        offset_s=offset,
        input_duration_s=input_duration,
        speech_s=activity.speech_s,
        input_lufs=lufs,
        activity=activity,
    )
