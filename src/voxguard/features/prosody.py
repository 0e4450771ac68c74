"""Prosody and voice-source features: F0 (YIN), voicing, jitter, shimmer, formants, flatness.

All functions are pure and vectorised over frames (the only Python loops run over a small, fixed
number of lags, LPC orders or blocks of frames). Frame-level outputs follow the package layout
``(n_features, n_frames)`` in float32 on the grid of :func:`voxguard.features.framing.frame_signal`
with ``center=True``: frame ``t`` describes the signal around sample ``t * hop_length``, and
``n_frames = 1 + len(y) // hop_length`` for every feature here, whatever its window length, so
the rows can be stacked.

Unvoiced or silent frames hold ``NaN`` where a value is undefined (F0, formants); summaries use
nan-aware statistics and are ``NaN`` when nothing defines them (e.g. no voiced frame at all).

References
----------
.. [1] A. de Cheveigné and H. Kawahara, "YIN, a fundamental frequency estimator for speech and
   music", J. Acoust. Soc. Am. 111(4), 1917-1930, 2002.
.. [2] P. Boersma and D. Weenink, Praat: doing phonetics by computer. Conventions borrowed here:
   jitter/shimmer (local) definitions with the 1.3 period and 1.6 amplitude factors, and the
   5500 Hz formant ceiling with resampling to twice it (Praat fits LPC by Burg's method; this
   module uses the autocorrelation method).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.fft
import scipy.signal

from voxguard.errors import FeatureError
from voxguard.features.framing import frame_signal

__all__ = [
    "PROSODY_FEATURE_NAMES",
    "PROSODY_SUMMARY_NAMES",
    "f0_yin",
    "formants",
    "glottal_cycles",
    "jitter",
    "prosody_features",
    "prosody_summary",
    "shimmer",
]

PROSODY_FEATURE_NAMES: tuple[str, ...] = (
    "f0_hz",
    "voiced",
    "aperiodicity",
    "f1_hz",
    "f2_hz",
    "f3_hz",
    "spectral_flatness",
)

PROSODY_SUMMARY_NAMES: tuple[str, ...] = (
    "f0_mean_hz",
    "f0_std_hz",
    "f0_min_hz",
    "f0_max_hz",
    "f0_p05_hz",
    "f0_p50_hz",
    "f0_p95_hz",
    "f0_std_st",
    "f0_range_st",
    "voicing_rate",
    "aperiodicity_mean",
    "jitter_local",
    "shimmer_local",
    "f1_mean_hz",
    "f1_std_hz",
    "f2_mean_hz",
    "f2_std_hz",
    "f3_mean_hz",
    "f3_std_hz",
    "flatness_mean",
)

# Frames are processed in blocks of this many so memory stays bounded on long inputs
# (a block of 2048 YIN frames of 1024 samples needs ~50 MB of float64 work arrays).
_BLOCK = 2048
_TINY = np.finfo(np.float64).tiny


# ----------------------------------------------------------------------------------------------
# helpers


def _check_signal(y: np.ndarray, sr: float, frame_length: int) -> np.ndarray:
    """Validate ``y`` and return it as float64; raise FeatureError when unusable."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise FeatureError(f"expected a mono 1-D signal, got shape {y.shape}")
    if not sr or sr <= 0:
        raise FeatureError(f"sample rate must be positive, got {sr}")
    if len(y) < frame_length:
        raise FeatureError(
            f"signal of {len(y)} samples ({len(y) / sr:.3f} s) is shorter than one analysis frame "
            f"of {frame_length} samples ({frame_length / sr:.3f} s)"
        )
    y = y.astype(np.float64, copy=False)
    if not np.all(np.isfinite(y)):
        raise FeatureError("signal contains NaN or infinite samples")
    return y


def _default_hop(sr: float) -> int:
    # 10 ms: the usual prosody rate, and fine enough to follow F0 movement.
    return max(1, round(0.010 * sr))


def _next_pow2(n: float) -> int:
    return 1 << max(0, math.ceil(math.log2(max(n, 1))))


def _energy_gate(power: np.ndarray, threshold_db: float) -> np.ndarray:
    """Frames whose mean power is within ``threshold_db`` of the loudest frame (and not zero)."""
    ref = float(power.max()) if power.size else 0.0
    # The absolute floor keeps digital silence (and dithering near it) out even when the whole
    # signal is silent, where the relative gate alone would accept everything.
    floor = max(ref * 10.0 ** (threshold_db / 10.0), 1e-12)
    return power > floor


def _nan_stats(x: np.ndarray) -> tuple[float, float, float, float]:
    """Mean, std, min and max of the finite values of ``x``; NaN (without warnings) if none."""
    x = x[np.isfinite(x)]
    if x.size == 0:
        return (math.nan,) * 4
    return float(x.mean()), float(x.std()), float(x.min()), float(x.max())


# ----------------------------------------------------------------------------------------------
# F0: YIN


def _cmnd(frames: np.ndarray, window: int, max_period: int) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative mean normalised difference d'(tau), tau = 0..max_period, for a block of frames.

    Uses the fixed integration window of [1]_ eq. (6): ``d(tau) = sum_{j<W} (x_j - x_{j+tau})^2``
    with ``W = frame_length - max_period``, expanded as ``E_0 + E_tau - 2 r(tau)`` where ``r`` is
    the cross-correlation of the first ``W`` samples with the whole frame (one FFT each) and the
    energies ``E_tau`` come from a cumulative sum. Because ``W + max_period = frame_length``, no
    circular wrap-around can reach lags <= max_period, so an FFT of ``frame_length`` suffices.

    Returns ``(cmnd (n, max_period + 1), power (n,))`` with ``power = E_0 / W``.
    """
    x = np.asarray(frames, dtype=np.float64)
    n_fft = scipy.fft.next_fast_len(x.shape[-1], real=True)
    spec = scipy.fft.rfft(x, n=n_fft, axis=-1)
    spec_w = scipy.fft.rfft(x[:, :window], n=n_fft, axis=-1)
    r = scipy.fft.irfft(np.conj(spec_w) * spec, n=n_fft, axis=-1)[:, : max_period + 1]

    cs = np.zeros((x.shape[0], x.shape[1] + 1))
    np.cumsum(np.square(x), axis=-1, out=cs[:, 1:])
    taus = np.arange(max_period + 1)
    e_tau = cs[:, taus + window] - cs[:, taus]
    e_0 = e_tau[:, :1]
    d = np.maximum(e_0 + e_tau - 2.0 * r, 0.0)  # clip FFT round-off below zero
    d[:, 0] = 0.0

    cmnd = np.ones_like(d)
    running = np.cumsum(d[:, 1:], axis=-1)
    # d'(tau) = d(tau) / ((1/tau) sum_{j=1..tau} d(j)); defined as 1 where the mean is 0 (silence),
    # so that silent frames look aperiodic rather than perfectly periodic.
    cmnd[:, 1:] = np.where(running > _TINY, d[:, 1:] * taus[1:] / np.maximum(running, _TINY), 1.0)
    return cmnd, e_0[:, 0] / window


def _yin_pick(yin: np.ndarray, min_period: int, trough_threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Period (samples, fractional) and aperiodicity from d'(tau) restricted to the search range.

    ``yin`` has shape (n, n_lags) and covers tau = min_period .. max_period. Steps 3 and 5 of [1]_:
    the first local minimum below ``trough_threshold`` (else the global minimum), refined by
    parabolic interpolation (librosa's conventions, so the two agree).
    """
    n, n_lags = yin.shape
    is_trough = np.zeros_like(yin, dtype=bool)
    is_trough[:, 1:-1] = (yin[:, 1:-1] < yin[:, :-2]) & (yin[:, 1:-1] <= yin[:, 2:])
    is_trough[:, 0] = yin[:, 0] < yin[:, 1]
    is_trough[:, -1] = yin[:, -1] < yin[:, -2]
    below = is_trough & (yin < trough_threshold)
    idx = np.where(below.any(axis=1), np.argmax(below, axis=1), np.argmin(yin, axis=1))

    rows = np.arange(n)
    inner = (idx > 0) & (idx < n_lags - 1)
    i0 = np.clip(idx - 1, 0, n_lags - 1)
    i2 = np.clip(idx + 1, 0, n_lags - 1)
    a, b, c = yin[rows, i0], yin[rows, idx], yin[rows, i2]
    curv = a - 2.0 * b + c
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.where(inner & (curv > 0), 0.5 * (a - c) / curv, 0.0)
    shift = np.where(np.abs(shift) <= 1.0, shift, 0.0)  # optimum outside [i-1, i+1]: keep the bin
    period = min_period + idx + shift
    return period, b


def _median_smooth_voiced(f0: np.ndarray, size: int) -> np.ndarray:
    """Running median of ``size`` frames, applied only where the whole window is voiced.

    Removes isolated octave errors without bridging unvoiced gaps (windows touching a NaN keep the
    raw value).
    """
    if size <= 1 or f0.size == 0:
        return f0
    half = size // 2
    padded = np.pad(f0, half, constant_values=np.nan)
    med = np.median(np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1), axis=-1)
    return np.where(np.isfinite(med), med, f0).astype(f0.dtype, copy=False)


def f0_yin(
    y: np.ndarray,
    sr: float,
    *,
    fmin: float = 50.0,
    fmax: float = 500.0,
    frame_length: int | None = None,
    hop_length: int | None = None,
    trough_threshold: float = 0.1,
    voicing_threshold: float = 0.3,
    energy_threshold_db: float = -50.0,
    median_size: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fundamental frequency by YIN [1]_, with a voicing decision.

    The cumulative mean normalised difference function (CMND) is computed for all frames at once
    from FFT cross-correlations (see ``_cmnd``), the period is the first CMND trough below
    ``trough_threshold`` (else the global minimum) in ``[sr/fmax, sr/fmin]``, refined by parabolic
    interpolation. On voiced frames this agrees with :func:`librosa.yin` (which uses the same
    search; it differs only in using a shrinking instead of a fixed integration window).

    A frame is voiced when its CMND value at the chosen period (the *aperiodicity*) is below
    ``voicing_threshold`` and its power is within ``energy_threshold_db`` of the loudest frame.
    No pYIN-style Viterbi decoding is done; optional smoothing is a running median over
    ``median_size`` frames inside voiced runs only (``median_size=1``: none, the raw YIN track).

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
        Mono signal.
    sr : float
        Sample rate in Hz.
    fmin, fmax : float
        F0 search range in Hz (``0 < fmin < fmax <= sr / 2``).
    frame_length : int, optional
        Samples per analysis frame; at least ``2 * ceil(sr / fmin)`` so that the integration window
        ``W = frame_length - ceil(sr / fmin)`` holds a full longest period. Default: the smallest
        power of two >= ``3 * ceil(sr / fmin)`` (1024 at 16 kHz, 2048 at 22.05 kHz for 50 Hz).
    hop_length : int, optional
        Samples between frames. Default: 10 ms.
    trough_threshold : float
        Absolute CMND threshold of YIN's step 4 (the paper's 0.1).
    voicing_threshold : float
        Largest aperiodicity counted as voiced.
    energy_threshold_db : float
        Frames quieter than the loudest frame by more than this (dB, negative) are unvoiced.
    median_size : int
        Length of the running median applied to F0 inside voiced runs (1 disables it).

    Returns
    -------
    f0 : np.ndarray, shape (n_frames,), float32
        F0 in Hz; NaN on unvoiced frames.
    voiced_flag : np.ndarray, shape (n_frames,), bool
        Voicing decision.
    aperiodicity : np.ndarray, shape (n_frames,), float32
        CMND value at the chosen period, in [0, ~1.5]: 0 for a perfectly periodic frame, about 1
        for noise, 1 for silence.

    Notes
    -----
    Frame ``t`` is centred on sample ``t * hop_length`` as in librosa, but its content is
    advanced by ``ceil(sr/fmin) // 2`` samples so that the span the fixed window actually compares
    (``W + period`` samples at the start of the frame) is centred within half a period of
    ``t * hop_length``. ``n_frames = 1 + n_samples // hop_length``.

    Raises
    ------
    FeatureError
        Bad parameters, a non-mono or non-finite signal, or one shorter than ``frame_length``.
    """
    if not (0 < fmin < fmax <= sr / 2):
        raise FeatureError(f"need 0 < fmin < fmax <= sr/2, got fmin={fmin}, fmax={fmax}, sr={sr}")
    max_period = math.ceil(sr / fmin)
    min_period = max(2, math.floor(sr / fmax))
    if frame_length is None:
        frame_length = _next_pow2(3 * max_period)
    if hop_length is None:
        hop_length = _default_hop(sr)
    if frame_length < 2 * max_period:
        raise FeatureError(f"frame_length={frame_length} is too short for fmin={fmin} Hz: need >= {2 * max_period}")
    if min_period >= max_period - 1:
        raise FeatureError(f"F0 range fmin={fmin}, fmax={fmax} is too narrow at sr={sr}")
    y = _check_signal(y, sr, frame_length)

    # Shift the content so the compared span is centred on the frame centre (see Notes); the total
    # pad equals frame_signal's centring pad, so the frame count is the same as everywhere else.
    shift = max_period // 2
    half = frame_length // 2
    padded = np.pad(y, (half - shift, half + shift))
    frames = frame_signal(padded, frame_length, hop_length, center=False)
    window = frame_length - max_period

    n = frames.shape[0]
    period = np.empty(n)
    aper = np.empty(n)
    power = np.empty(n)
    for start in range(0, n, _BLOCK):  # blocks of frames, to bound memory
        blk = slice(start, start + _BLOCK)
        cmnd, power[blk] = _cmnd(frames[blk], window, max_period)
        period[blk], aper[blk] = _yin_pick(cmnd[:, min_period:], min_period, trough_threshold)

    loud = _energy_gate(power, energy_threshold_db)
    aper = np.where(loud, aper, 1.0)
    voiced = loud & (aper < voicing_threshold)
    f0 = np.where(voiced, sr / period, np.nan)
    f0 = _median_smooth_voiced(f0, median_size)
    return f0.astype(np.float32), voiced, aper.astype(np.float32)


# ----------------------------------------------------------------------------------------------
# jitter and shimmer


def _local_perturbation(values: np.ndarray, linked: np.ndarray, max_ratio: float) -> float:
    """Mean |v[i+1] - v[i]| over linked pairs within ``max_ratio`` of each other, over mean v.

    The mean in the denominator runs over the values that take part in at least one pair.
    """
    a, b = values[:-1], values[1:]
    with np.errstate(invalid="ignore"):
        ok = linked & (a > 0) & (b > 0) & (np.maximum(a, b) <= max_ratio * np.minimum(a, b))
    if not ok.any():
        return math.nan
    used = np.zeros(values.shape, dtype=bool)
    used[:-1] |= ok
    used[1:] |= ok
    return float(np.abs(b - a)[ok].mean() / values[used].mean())


def jitter(f0: np.ndarray, *, max_period_ratio: float = 1.3) -> float:
    """Local jitter: mean absolute difference of consecutive periods over the mean period.

    Periods are ``1 / f0`` of consecutive entries that are both voiced (finite, positive F0) and
    whose ratio does not exceed ``max_period_ratio`` (Praat's *maximum period factor*, which keeps
    octave jumps and voicing onsets out).

    What "consecutive" means depends on the sequence passed in. With per-cycle F0 from
    :func:`glottal_cycles` (``sr / diff(marks)``, NaN where marks are not adjacent cycles), as
    :func:`prosody_summary` does, this is Praat's cycle-to-cycle *jitter (local)*. On a 10 ms
    :func:`f0_yin` track it is a frame-based approximation: each frame's period is an average
    over the cycles in its window, so cycle-to-cycle perturbation is largely smoothed away and
    slow intonation adds a little.

    Parameters
    ----------
    f0 : np.ndarray, shape (n,)
        F0 sequence in Hz, NaN (or <= 0) where unvoiced.
    max_period_ratio : float
        Largest ratio between consecutive periods that is still counted.

    Returns
    -------
    float
        Jitter as a fraction (0.01 = 1 %); NaN if no valid pair of consecutive entries exists.
    """
    f0 = np.asarray(f0, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        period = np.where(f0 > 0, 1.0 / f0, np.nan)
    linked = np.isfinite(period[:-1]) & np.isfinite(period[1:])
    return _local_perturbation(period, linked, max_period_ratio)


def glottal_cycles(
    y: np.ndarray, sr: float, f0: np.ndarray, *, hop_length: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mark glottal cycles by waveform peak picking guided by an F0 track.

    Analysis windows of one local period (``sr / f0`` of the nearest track frame) are placed every
    ``floor(T_min / 2)`` samples, ``T_min`` the shortest voiced period; the maximum of each window
    is a candidate mark. A window of one period holds exactly one main peak, and the window
    centred within a quarter period of a peak excludes its neighbours, so every cycle's peak is
    found (usually several times; duplicates are merged). Candidates that are not local maxima
    (window-edge picks) are dropped. The polarity with the larger extreme is used.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
        Mono signal.
    sr : float
        Sample rate in Hz.
    f0 : np.ndarray, shape (n_frames,)
        F0 track in Hz on the ``frame_signal`` grid with ``hop_length`` (NaN = unvoiced).
    hop_length : int, optional
        Hop of the F0 track in samples. Default: 10 ms.

    Returns
    -------
    marks : np.ndarray, shape (n_marks,), float64
        Peak positions in samples (sub-sample, by parabolic interpolation), ascending.
    amplitudes : np.ndarray, shape (n_marks,), float32
        Peak amplitudes (of the chosen polarity, > 0).
    consecutive : np.ndarray, shape (max(n_marks - 1, 0),), bool
        True where mark ``i + 1`` follows mark ``i`` after one local period (ratio within
        [1/1.3, 1.3]), i.e. the two peaks belong to adjacent cycles of one voiced run.

    Raises
    ------
    FeatureError
        When ``len(f0)`` does not match the frame count ``1 + n_samples // hop_length``.
    """
    if hop_length is None:
        hop_length = _default_hop(sr)
    y = _check_signal(y, sr, 1)
    f0 = np.asarray(f0, dtype=np.float64)
    if f0.ndim != 1 or abs(len(f0) - (1 + len(y) // hop_length)) > 1:
        raise FeatureError(
            f"f0 track of shape {f0.shape} does not fit a signal of {len(y)} samples at hop "
            f"{hop_length} ({1 + len(y) // hop_length} frames)"
        )
    with np.errstate(invalid="ignore"):
        voiced = np.isfinite(f0) & (f0 > 0)
    empty = (np.zeros(0), np.zeros(0, dtype=np.float32), np.zeros(0, dtype=bool))
    if not voiced.any():
        return empty
    t_min = sr / f0[voiced].max()
    t_max = sr / f0[voiced].min()
    step = max(1, int(t_min // 2))
    length = 2 * (math.ceil(t_max / 2) + 1)
    ys = y if y.max() >= -y.min() else -y

    frames = frame_signal(ys, length, step)
    centres = np.arange(frames.shape[0]) * step
    track = np.minimum(np.round(centres / hop_length).astype(np.int64), len(f0) - 1)
    local_t = np.where(voiced[track], sr / np.where(voiced[track], f0[track], 1.0), np.nan)
    rows = np.flatnonzero(np.isfinite(local_t))
    offsets = np.arange(length) - length // 2
    picks = np.empty(rows.size, dtype=np.int64)
    for start in range(0, rows.size, _BLOCK):  # blocks of windows, to bound memory
        r = rows[start : start + _BLOCK]
        half = 0.5 * local_t[r, None]
        inside = (offsets >= -half) & (offsets < half)
        picks[start : start + _BLOCK] = centres[r] + offsets[np.argmax(np.where(inside, frames[r], -np.inf), 1)]

    picks = np.unique(picks[(picks >= 1) & (picks <= len(ys) - 2)])
    a, b, c = ys[picks - 1], ys[picks], ys[picks + 1]
    keep = (b > a) & (b >= c) & (b > 0)
    picks, a, b, c = picks[keep], a[keep], b[keep], c[keep]
    curv = a - 2.0 * b + c
    with np.errstate(divide="ignore", invalid="ignore"):
        delta = np.where(curv < 0, 0.5 * (a - c) / curv, 0.0)
    delta = np.clip(delta, -0.5, 0.5)
    marks = picks + delta
    amps = b - 0.25 * (a - c) * delta

    period_here = (
        sr / np.where(voiced, f0, np.nan)[np.minimum(np.round(marks[:-1] / hop_length).astype(np.int64), len(f0) - 1)]
    )
    with np.errstate(invalid="ignore"):
        ratio = np.diff(marks) / period_here
        consecutive = (ratio >= 1 / 1.3) & (ratio <= 1.3)
    return marks, amps.astype(np.float32), consecutive


def shimmer(
    y: np.ndarray,
    sr: float,
    f0: np.ndarray,
    *,
    hop_length: int | None = None,
    max_amplitude_ratio: float = 1.6,
) -> float:
    """Local shimmer: mean absolute difference of consecutive cycle peak amplitudes over their mean.

    Cycles are marked by :func:`glottal_cycles` (peak picking guided by ``f0``); pairs of adjacent
    cycles whose peak amplitudes differ by at most ``max_amplitude_ratio`` (Praat's *maximum
    amplitude factor*) enter the average. This follows Praat's *shimmer (local)* definition
    (peak amplitude per period) with simpler cycle marking: no cross-correlation refinement of
    the marks, so waveforms with two near-equal peaks per cycle lose the affected pairs.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
        Mono signal.
    sr : float
        Sample rate in Hz.
    f0 : np.ndarray, shape (n_frames,)
        F0 track in Hz on the ``frame_signal`` grid with ``hop_length`` (NaN = unvoiced), e.g. from
        :func:`f0_yin` with the same ``hop_length``.
    hop_length : int, optional
        Hop of the F0 track in samples. Default: 10 ms.
    max_amplitude_ratio : float
        Largest ratio between consecutive amplitudes that is still counted.

    Returns
    -------
    float
        Shimmer as a fraction (0.05 = 5 %); NaN if no pair of adjacent cycles was found.
    """
    _, amps, consecutive = glottal_cycles(y, sr, f0, hop_length=hop_length)
    if amps.size < 2:
        return math.nan
    return _local_perturbation(amps.astype(np.float64), consecutive, max_amplitude_ratio)


# ----------------------------------------------------------------------------------------------
# formants: LPC


def _levinson(r: np.ndarray, order: int) -> tuple[np.ndarray, np.ndarray]:
    """Levinson-Durbin recursion vectorised over frames.

    Parameters
    ----------
    r : np.ndarray, shape (n, order + 1)
        Autocorrelation lags 0..order of each frame (``r[:, 0] > 0``).

    Returns
    -------
    a : np.ndarray, shape (n, order + 1)
        Prediction polynomial ``1 + a1 z^-1 + ... + ap z^-p``.
    err : np.ndarray, shape (n,)
        Final prediction error power.
    """
    n = r.shape[0]
    a = np.zeros((n, order + 1))
    a[:, 0] = 1.0
    err = r[:, 0].copy()
    for i in range(1, order + 1):  # loop over the LPC order, not over frames
        acc = r[:, i] + np.einsum("nj,nj->n", a[:, 1:i], r[:, i - 1 : 0 : -1])
        k = -acc / np.maximum(err, _TINY)
        a[:, 1:i] = a[:, 1:i] + k[:, None] * a[:, i - 1 : 0 : -1]
        a[:, i] = k
        err = err * (1.0 - k * k)
    return a, err


def _lpc_roots(a: np.ndarray) -> np.ndarray:
    """Roots of each LPC polynomial as eigenvalues of a stack of companion matrices.

    ``a`` has shape (n, p + 1) with ``a[:, 0] == 1``; returns complex roots of shape (n, p).
    """
    n, p1 = a.shape
    p = p1 - 1
    comp = np.zeros((n, p, p))
    comp[:, 0, :] = -a[:, 1:]
    comp[:, np.arange(1, p), np.arange(p - 1)] = 1.0
    return np.linalg.eigvals(comp)


def formants(
    y: np.ndarray,
    sr: float,
    *,
    n_formants: int = 3,
    order: int | None = None,
    max_formant: float = 5500.0,
    window_length: float = 0.025,
    hop_length: int | None = None,
    pre_emphasis_hz: float = 50.0,
    min_frequency: float = 90.0,
    max_bandwidth: float = 400.0,
    energy_threshold_db: float = -50.0,
) -> np.ndarray:
    """Formant frequencies F1..Fn by LPC root solving.

    The signal is resampled to ``2 * max_formant`` (when ``sr`` is higher; Praat's convention, so
    the LPC poles are spent on the formant region), pre-emphasised (first-order, from
    ``pre_emphasis_hz``), cut into Hamming-windowed frames, and modelled by LPC of ``order``
    (autocorrelation method, Levinson-Durbin vectorised across frames). The roots of every
    prediction polynomial come from one batched eigenvalue call on the stacked companion matrices.
    Roots with positive angle, frequency above ``min_frequency`` (and below Nyquist - 50 Hz) and
    bandwidth below ``max_bandwidth`` are formant candidates; the lowest ``n_formants`` are kept.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
        Mono signal.
    sr : float
        Sample rate in Hz.
    n_formants : int
        Number of formants returned.
    order : int, optional
        LPC order. Default ``int(2 + sr_lpc / 1000)`` with ``sr_lpc`` the analysis rate (13 at the
        default 11 kHz).
    max_formant : float
        Formant ceiling in Hz; the analysis rate is ``min(sr, 2 * max_formant)``.
    window_length : float
        Analysis window in seconds.
    hop_length : int, optional
        Hop in samples *of the input rate* ``sr``. Default: 10 ms.
    pre_emphasis_hz : float
        Pre-emphasis ``y[n] - exp(-2 pi f / sr_lpc) y[n-1]``; 0 disables it.
    min_frequency, max_bandwidth : float
        Candidate filter in Hz (bandwidth ``-ln|z| sr / pi``).
    energy_threshold_db : float
        Frames quieter than the loudest by more than this (dB) give NaN.

    Returns
    -------
    np.ndarray, shape (n_formants, n_frames), float32
        Formant frequencies in Hz, ascending per frame; NaN where fewer candidates were found or
        the frame is (near) silent. ``n_frames = 1 + n_samples // hop_length``.

    Raises
    ------
    FeatureError
        Bad parameters, or a signal shorter than one analysis window.
    """
    if hop_length is None:
        hop_length = _default_hop(sr)
    if n_formants < 1 or max_formant <= 0 or window_length <= 0 or hop_length <= 0:
        raise FeatureError("n_formants, max_formant, window_length and hop_length must be positive")
    y = _check_signal(y, sr, max(1, round(window_length * sr)))
    n_in = len(y)

    # Resample to 2 * max_formant with a rational polyphase filter when that lowers the rate.
    sr_lpc = float(sr)
    target = round(2 * max_formant)
    if sr > target:
        g = math.gcd(round(sr), target)
        up, down = target // g, round(sr) // g
        y = scipy.signal.resample_poly(y, up, down)
        sr_lpc = sr * up / down
    if order is None:
        order = int(2 + sr_lpc / 1000)
    frame_length = max(order + 2, round(window_length * sr_lpc))
    if len(y) < frame_length:
        raise FeatureError(f"signal is shorter than one formant window of {window_length} s")

    if pre_emphasis_hz > 0:
        alpha = math.exp(-2.0 * math.pi * pre_emphasis_hz / sr_lpc)
        y = np.concatenate([y[:1], y[1:] - alpha * y[:-1]])

    # Frame centres on the input grid (t * hop in input samples), mapped to the analysis rate. The
    # mapped hop need not be an integer, so take rows of a hop-1 view at the rounded starts.
    n_out = 1 + n_in // hop_length  # frame_signal's count (center=True) at the input rate
    centres = np.round(np.arange(n_out) * hop_length * sr_lpc / sr).astype(np.int64)
    half = frame_length // 2
    padded = np.pad(y, (half, frame_length))
    frames = frame_signal(padded, frame_length, 1, center=False)[centres]
    frames = frames * np.hamming(frame_length)

    r = np.stack(
        [np.einsum("nj,nj->n", frames[:, : frame_length - k], frames[:, k:]) for k in range(order + 1)],
        axis=1,
    )
    loud = _energy_gate(r[:, 0] / frame_length, energy_threshold_db)
    # A tiny white-noise floor (lag-0 boost) keeps Levinson stable on near-singular frames.
    r[:, 0] = np.where(loud, r[:, 0] * (1.0 + 1e-9), 1.0)
    a, _ = _levinson(r, order)
    roots = _lpc_roots(a)

    freq = np.angle(roots) * sr_lpc / (2.0 * np.pi)
    bw = -np.log(np.maximum(np.abs(roots), _TINY)) * sr_lpc / np.pi
    ok = (roots.imag > 0) & (freq > min_frequency) & (freq < sr_lpc / 2 - 50.0) & (bw < max_bandwidth)
    cand = np.sort(np.where(ok, freq, np.inf), axis=1)
    if cand.shape[1] < n_formants:
        cand = np.pad(cand, ((0, 0), (0, n_formants - cand.shape[1])), constant_values=np.inf)
    out = cand[:, :n_formants]
    out[~np.isfinite(out) | ~loud[:, None]] = np.nan
    return out.T.astype(np.float32)


# ----------------------------------------------------------------------------------------------
# spectral flatness (local helper; the general one lives in features.spectral)


def _spectral_flatness_local(
    y: np.ndarray, sr: float, *, n_fft: int | None = None, hop_length: int | None = None
) -> np.ndarray:
    """Spectral flatness (Wiener entropy) of the power spectrum per frame, shape (n_frames,).

    Geometric over arithmetic mean of ``|STFT|^2`` (Hann window, ``amin = 1e-10``), the same
    definition as :func:`librosa.feature.spectral_flatness`. Kept private here so prosody does not
    depend on ``features.spectral``.
    """
    if n_fft is None:
        n_fft = _next_pow2(0.025 * sr)  # 512 at 16 kHz
    if hop_length is None:
        hop_length = _default_hop(sr)
    frames = frame_signal(y, n_fft, hop_length)
    window = scipy.signal.get_window("hann", n_fft)  # periodic, like librosa
    flat = np.empty(frames.shape[0])
    for start in range(0, frames.shape[0], _BLOCK):
        blk = slice(start, start + _BLOCK)
        power = np.abs(scipy.fft.rfft(frames[blk] * window, axis=-1)) ** 2
        power = np.maximum(power, 1e-10)
        flat[blk] = np.exp(np.mean(np.log(power), axis=-1)) / np.mean(power, axis=-1)
    return flat


# ----------------------------------------------------------------------------------------------
# stacked features and utterance summary


def _prosody_frames(y: np.ndarray, sr: float, fmin: float, fmax: float, hop_length: int | None) -> dict[str, Any]:
    """Compute every frame-level track once (shared by features and summary)."""
    if hop_length is None:
        hop_length = _default_hop(sr)
    yf = _check_signal(y, sr, _next_pow2(3 * math.ceil(sr / fmin)) if fmin > 0 else 1)
    f0_raw, voiced, aper = f0_yin(yf, sr, fmin=fmin, fmax=fmax, hop_length=hop_length)
    fmt = formants(yf, sr, hop_length=hop_length)
    flat = _spectral_flatness_local(yf, sr, hop_length=hop_length)
    return {
        "f0_raw": f0_raw,
        "f0": _median_smooth_voiced(f0_raw, 3),
        "voiced": voiced,
        "aperiodicity": aper,
        "formants": fmt,
        "flatness": flat.astype(np.float32),
        "signal": yf,
        "hop": hop_length,
    }


def prosody_features(
    y: np.ndarray,
    sr: float,
    *,
    fmin: float = 50.0,
    fmax: float = 500.0,
    hop_length: int | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Frame-level prosody and voice-source features, stacked.

    Rows (see :data:`PROSODY_FEATURE_NAMES`): F0 in Hz (YIN, 3-frame running median inside
    voiced runs, NaN when unvoiced), voiced flag (0/1), YIN aperiodicity (0 = periodic),
    F1, F2, F3 in Hz (LPC, NaN when not found or silent; computed on unvoiced frames too) and
    spectral flatness (0..1).

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
        Mono signal.
    sr : float
        Sample rate in Hz.
    fmin, fmax : float
        F0 search range in Hz.
    hop_length : int, optional
        Hop in samples. Default: 10 ms.

    Returns
    -------
    X : np.ndarray, shape (7, n_frames), float32
        ``n_frames = 1 + n_samples // hop_length``.
    names : list of str
        Row names.

    Raises
    ------
    FeatureError
        Signal shorter than one YIN frame (``next_pow2(3 * sr / fmin)`` samples, 64 ms at 16 kHz
        for 50 Hz), non-mono or non-finite, or bad parameters.
    """
    tr = _prosody_frames(y, sr, fmin, fmax, hop_length)
    X = np.vstack(
        [
            tr["f0"],
            tr["voiced"].astype(np.float32),
            tr["aperiodicity"],
            tr["formants"],
            tr["flatness"],
        ]
    ).astype(np.float32, copy=False)
    return X, list(PROSODY_FEATURE_NAMES)


def prosody_summary(
    y: np.ndarray,
    sr: float,
    *,
    fmin: float = 50.0,
    fmax: float = 500.0,
    hop_length: int | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Utterance-level prosody statistics.

    Entries (see :data:`PROSODY_SUMMARY_NAMES`), all over voiced frames unless stated:

    - ``f0_mean_hz``, ``f0_std_hz``, ``f0_min_hz``, ``f0_max_hz``, ``f0_p05_hz``, ``f0_p50_hz``,
      ``f0_p95_hz``: F0 statistics in Hz (smoothed track as in :func:`prosody_features`);
    - ``f0_std_st``: std of ``12 log2(f0 / median)`` in semitones (speaker-independent spread);
      ``f0_range_st``: ``12 log2(p95 / p5)`` in semitones;
    - ``voicing_rate``: voiced frames / all frames (leading and trailing silence lower it);
    - ``aperiodicity_mean``: mean YIN aperiodicity;
    - ``jitter_local``, ``shimmer_local``: cycle-to-cycle jitter and shimmer (fractions) from
      the periods and peak amplitudes of the cycles marked by :func:`glottal_cycles` on the raw
      (unsmoothed) F0 track, as :func:`jitter` and :func:`shimmer` compute them;
    - ``f1_mean_hz`` ... ``f3_std_hz``: formant means and stds in Hz;
    - ``flatness_mean``: mean spectral flatness over all frames.

    Entries without data (e.g. F0 statistics of an unvoiced signal) are NaN.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
        Mono signal.
    sr : float
        Sample rate in Hz.
    fmin, fmax : float
        F0 search range in Hz.
    hop_length : int, optional
        Hop of the frame-level tracks in samples. Default: 10 ms.

    Returns
    -------
    vector : np.ndarray, shape (20,), float32
    names : list of str

    Raises
    ------
    FeatureError
        As :func:`prosody_features`.
    """
    tr = _prosody_frames(y, sr, fmin, fmax, hop_length)
    f0 = tr["f0"].astype(np.float64)
    voiced = tr["voiced"]
    v = f0[np.isfinite(f0)]
    if v.size:
        mean, std, fmin_v, fmax_v = _nan_stats(v)
        p5, p50, p95 = (float(p) for p in np.percentile(v, [5, 50, 95]))
        st = 12.0 * np.log2(v / p50)
        f0_stats = [mean, std, fmin_v, fmax_v, p5, p50, p95, float(st.std()), 12.0 * math.log2(p95 / p5)]
    else:
        f0_stats = [math.nan] * 9

    aper_mean = float(tr["aperiodicity"][voiced].mean()) if voiced.any() else math.nan
    jit = shim = math.nan
    marks, amps, consecutive = glottal_cycles(tr["signal"], sr, tr["f0_raw"], hop_length=tr["hop"])
    if marks.size > 1:
        jit = jitter(np.where(consecutive, sr / np.diff(marks), np.nan))
        shim = _local_perturbation(amps.astype(np.float64), consecutive, 1.6)

    fmt_stats: list[float] = []
    for row in tr["formants"]:
        m, s, _, _ = _nan_stats(row[voiced].astype(np.float64))
        fmt_stats += [m, s]

    values = [
        *f0_stats,
        float(voiced.mean()),
        aper_mean,
        jit,
        shim,
        *fmt_stats,
        float(tr["flatness"].mean()),
    ]
    return np.asarray(values, dtype=np.float32), list(PROSODY_SUMMARY_NAMES)
