"""Short-time spectral features: spectrograms, cepstra (MFCC, LFCC, CQCC) and spectral descriptors.

Every function is pure and vectorised (no per-frame Python loop) and returns float32 arrays in
librosa's layout ``(n_features, n_frames)`` on the frame grid of
:func:`voxguard.features.framing.frame_signal` (``center=True``, zero padding as in librosa >= 0.10).

Defaults are given in samples and chosen for 16 kHz speech (25 ms Hann window in a 512-point FFT,
10 ms hop), the usual set-up of anti-spoofing front-ends. Passing librosa's parameters
(``n_fft=2048, hop_length=512, win_length=None`` ...) reproduces librosa's output; the test-suite
checks each function against its librosa counterpart and states the tolerance.

Precision: the FFT runs in float32 (librosa: float64, rounded to complex64), so spectra agree to
~1e-6 of each frame's peak and cepstra to ~1e-6 of their largest coefficient. On signals with no
noise floor at all (synthetic pure tones, chirps) the bins far from the signal hold only FFT
rounding (about -140 dB in float32), which then dominates the spectral bandwidth, flatness and
contrast of those frames; any recording has a noise floor far above that, and there the two
implementations agree to ~1e-7 relative.

Why not just call librosa: the FFT runs on float32 frames with :func:`scipy.fft.rfft`, frames are
transformed in cache-sized blocks, and windows, filterbanks and DCT matrices are cached, which makes
the cepstra several times faster than librosa's (see :mod:`voxguard.bench`) and keeps librosa (and
numba) out of the inference dependencies.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.fft
import scipy.signal
import scipy.sparse

from voxguard.errors import FeatureError
from voxguard.features.framing import frame_signal

__all__ = [
    "chroma_filterbank",
    "chroma_stft",
    "cqcc",
    "cqt_power",
    "deltas",
    "estimate_tuning",
    "fft_frequencies",
    "lfcc",
    "linear_filterbank",
    "log_mel_spectrogram",
    "log_spectrogram",
    "mel_filterbank",
    "mel_frequencies",
    "mel_spectrogram",
    "mfcc",
    "power_to_db",
    "rms",
    "spectral_bandwidth",
    "spectral_centroid",
    "spectral_contrast",
    "spectral_flatness",
    "spectral_rolloff",
    "stft_power",
    "with_deltas",
    "zero_crossing_rate",
]

WindowSpec = str | tuple[Any, ...] | float | np.ndarray

# Frames per FFT block: about 1 MB of float32 frames at n_fft=512, so the frames, their spectrum
# and the power stay in cache between the window product, the FFT and the |X|^2.
_BLOCK_BYTES = 1 << 20

_FLOAT32_TINY = float(np.finfo(np.float32).tiny)


# --------------------------------------------------------------------------------------------
# Input checks and cached constants
# --------------------------------------------------------------------------------------------


def _as_signal(y: np.ndarray) -> np.ndarray:
    """Validate a mono signal and return it as a float32 array (no copy when already float32)."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise FeatureError(f"expected a mono 1-D signal, got shape {y.shape}")
    if y.size == 0:
        raise FeatureError("the signal is empty")
    if not np.issubdtype(y.dtype, np.floating) and not np.issubdtype(y.dtype, np.integer):
        raise FeatureError(f"expected a real-valued signal, got dtype {y.dtype}")
    y = y.astype(np.float32, copy=False)
    if not np.isfinite(y).all():
        raise FeatureError("the signal contains NaN or infinite samples")
    return y


def _check_sr(sr: float | None) -> float:
    if sr is None or not np.isfinite(sr) or sr <= 0:
        raise FeatureError(f"sample rate must be a positive number, got {sr!r}")
    return float(sr)


def _check_stft_params(n_fft: int, hop_length: int, win_length: int | None) -> int:
    """Validate STFT sizes and return the effective window length."""
    if n_fft < 2 or hop_length < 1:
        raise FeatureError(f"need n_fft >= 2 and hop_length >= 1, got {n_fft} and {hop_length}")
    win_length = n_fft if win_length is None else int(win_length)
    if not 0 < win_length <= n_fft:
        raise FeatureError(f"win_length={win_length} must be in (0, n_fft={n_fft}]")
    return win_length


def _readonly(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


@functools.lru_cache(maxsize=64)
def _cached_window(window: str | tuple[Any, ...] | float, win_length: int) -> np.ndarray:
    # fftbins=True gives the periodic window, as librosa.filters.get_window does.
    return _readonly(scipy.signal.get_window(window, win_length, fftbins=True).astype(np.float32))


def _window(window: WindowSpec, win_length: int) -> np.ndarray:
    """A float32 analysis window of ``win_length`` samples (cached unless given as an array)."""
    if isinstance(window, np.ndarray):
        if window.shape != (win_length,):
            raise FeatureError(f"window array has shape {window.shape}, expected ({win_length},)")
        return window.astype(np.float32, copy=False)
    try:
        return _cached_window(window, win_length)
    except (ValueError, TypeError) as exc:
        raise FeatureError(f"unknown window {window!r}: {exc}") from exc


def fft_frequencies(sr: float, n_fft: int) -> np.ndarray:
    """Centre frequency in Hz of each of the ``1 + n_fft // 2`` rFFT bins (float64)."""
    return np.fft.rfftfreq(n_fft, d=1.0 / sr)


@functools.lru_cache(maxsize=32)
def _dct_matrix(n_out: int, n_in: int) -> np.ndarray:
    """First ``n_out`` rows of the orthonormal DCT-II of size ``n_in`` (float32, read-only).

    Taken from :func:`scipy.fft.dct` itself so that ``X @ D.T`` equals
    ``scipy.fft.dct(X, type=2, norm="ortho")[..., :n_out]`` up to rounding.
    """
    d = scipy.fft.dct(np.eye(n_in), type=2, norm="ortho", axis=0)[:n_out]
    return _readonly(d.astype(np.float32))


# --------------------------------------------------------------------------------------------
# STFT core (frame-major internally: (..., n_frames, n_bins), bins contiguous)
# --------------------------------------------------------------------------------------------


def _frames(
    y: np.ndarray,
    n_fft: int,
    hop_length: int,
    win_length: int,
    *,
    center: bool,
    pad_mode: str,
) -> np.ndarray:
    """Frames of the window's support: a view ``(n_frames, win_length)``.

    librosa zero-pads a short window to ``n_fft`` around the middle of the frame; only the
    ``win_length`` samples under the window matter for a *power* spectrum (the offset is a circular
    shift, which leaves ``|X|`` unchanged), so we keep just those and let the FFT zero-pad.
    """
    frames = frame_signal(y, n_fft, hop_length, center=center, pad_mode=pad_mode)
    offset = (n_fft - win_length) // 2
    return frames[:, offset : offset + win_length]


def _power_frames(frames: np.ndarray, window: np.ndarray, n_fft: int, power: float) -> np.ndarray:
    """``|rfft(window * frame, n_fft)| ** power`` for each frame: ``(n_frames, 1 + n_fft // 2)``."""
    n, win_length = frames.shape
    n_bins = n_fft // 2 + 1
    out = np.empty((n, n_bins), dtype=np.float32)
    block = max(1, min(n, _BLOCK_BYTES // (4 * n_fft)))
    # Windowed frames go into a zeroed n_fft buffer: rfft(x, n=n_fft) would zero-pad by copying.
    buf = np.zeros((block, n_fft), dtype=np.float32)
    for start in range(0, n, block):
        stop = min(n, start + block)
        b = buf[: stop - start]
        np.multiply(frames[start:stop], window, out=b[:, :win_length])
        spec = scipy.fft.rfft(b, axis=-1, workers=1)
        mag = np.abs(spec, out=out[start:stop])
        if power == 2.0:
            np.square(mag, out=mag)
        elif power != 1.0:
            np.power(mag, power, out=mag)
    return out


def _stft_power_frames(
    y: np.ndarray,
    *,
    n_fft: int,
    hop_length: int,
    win_length: int | None,
    window: WindowSpec,
    power: float,
    center: bool = True,
    pad_mode: str = "constant",
) -> np.ndarray:
    """Frame-major power spectrogram ``(n_frames, 1 + n_fft // 2)`` of a validated signal."""
    if power <= 0:
        raise FeatureError(f"power must be positive, got {power}")
    win_length = _check_stft_params(n_fft, hop_length, win_length)
    frames = _frames(y, n_fft, hop_length, win_length, center=center, pad_mode=pad_mode)
    return _power_frames(frames, _window(window, win_length), n_fft, power)


def _to_features(x: np.ndarray) -> np.ndarray:
    """Frame-major ``(n_frames, n)`` to the public layout ``(n, n_frames)``, contiguous float32."""
    return np.ascontiguousarray(x.T, dtype=np.float32)


def stft_power(
    y: np.ndarray,
    sr: float | None = None,
    *,
    n_fft: int = 512,
    hop_length: int = 160,
    win_length: int | None = 400,
    window: WindowSpec = "hann",
    power: float = 2.0,
    center: bool = True,
    pad_mode: str = "constant",
) -> np.ndarray:
    """Magnitude (``power=1``) or power (``power=2``) spectrogram.

    Equals ``np.abs(librosa.stft(y, n_fft=..., hop_length=..., win_length=..., window=...)) ** power``
    (computed in float32 instead of librosa's float64 FFT: relative differences ~1e-6 of each
    frame's peak).

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
        Mono signal.
    sr : float, optional
        Sample rate in Hz. Not used; accepted so that every feature takes ``(y, sr, **params)``.
    n_fft : int
        FFT size in samples (default 512 = 32 ms at 16 kHz).
    hop_length : int
        Samples between frames (default 160 = 10 ms at 16 kHz).
    win_length : int or None
        Window length in samples, zero-padded to ``n_fft`` (default 400 = 25 ms at 16 kHz);
        ``None`` means ``n_fft`` (librosa's default).
    window : str, tuple or np.ndarray
        Any :func:`scipy.signal.get_window` spec (periodic) or an array of ``win_length`` samples.
    power : float
        Exponent applied to the magnitude.
    center, pad_mode
        See :func:`voxguard.features.framing.frame_signal`.

    Returns
    -------
    np.ndarray, shape (1 + n_fft // 2, n_frames), float32
        ``|STFT| ** power`` in (linear amplitude units) ** power.
    """
    y = _as_signal(y)
    p = _stft_power_frames(
        y,
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=win_length,
        window=window,
        power=power,
        center=center,
        pad_mode=pad_mode,
    )
    return _to_features(p)


# --------------------------------------------------------------------------------------------
# Decibels
# --------------------------------------------------------------------------------------------


def _db_inplace(
    s: np.ndarray,
    *,
    ref: float = 1.0,
    amin: float = 1e-10,
    top_db: float | None = 80.0,
    axis: int | tuple[int, ...] | None = None,
) -> np.ndarray:
    """``10 log10(max(s, amin) / ref)`` clipped to ``top_db`` below the max over ``axis``, in place."""
    np.maximum(s, amin, out=s)
    np.log10(s, out=s)
    s *= 10.0
    s -= 10.0 * np.log10(max(amin, abs(ref)))
    if top_db is not None:
        np.maximum(s, s.max(axis=axis, keepdims=True) - top_db, out=s)
    return s


def power_to_db(
    S: np.ndarray,
    *,
    ref: float | Callable[[np.ndarray], Any] = 1.0,
    amin: float = 1e-10,
    top_db: float | None = 80.0,
) -> np.ndarray:
    """Convert a power spectrogram to decibels, as :func:`librosa.power_to_db`.

    ``10 * log10(max(S, amin)) - 10 * log10(max(amin, ref))``, then values more than ``top_db``
    below the maximum of the *whole* array are raised to ``max - top_db``.

    Parameters
    ----------
    S : np.ndarray
        Non-negative power values, any shape (complex input is replaced by its magnitude).
    ref : float or callable
        Reference power (0 dB); a callable gets the magnitudes and returns it (e.g. ``np.max``).
    amin : float
        Floor on ``S`` and ``ref``, > 0.
    top_db : float or None
        Dynamic range kept below the peak, >= 0; ``None`` disables the clip.

    Returns
    -------
    np.ndarray, same shape as ``S``, float32
        Power in dB.
    """
    if amin <= 0:
        raise FeatureError("amin must be strictly positive")
    if top_db is not None and top_db < 0:
        raise FeatureError("top_db must be non-negative")
    S = np.asarray(S)
    mag = np.abs(S) if np.iscomplexobj(S) else S
    ref_value = float(ref(mag)) if callable(ref) else float(ref)
    out = np.array(mag, dtype=np.float32, copy=True)
    return _db_inplace(out, ref=ref_value, amin=amin, top_db=top_db)


def stft_power_frames(
    y: np.ndarray, *, n_fft: int = 512, hop_length: int = 160, win_length: int | None = 400, window: WindowSpec = "hann"
) -> np.ndarray:
    """Like :func:`stft_power` but frame-major, ``(n_frames, 1 + n_fft // 2)`` float32, without the transpose.

    For callers that derive several features from one spectrum (the ``*_from_power`` functions).
    """
    return _stft_power_frames(
        _as_signal(y), n_fft=n_fft, hop_length=hop_length, win_length=win_length, window=window, power=2.0
    )


def log_spectrogram(
    y: np.ndarray,
    sr: float | None = None,
    *,
    n_fft: int = 512,
    hop_length: int = 160,
    win_length: int | None = 400,
    window: WindowSpec = "hann",
    amin: float = 1e-10,
    top_db: float | None = None,
) -> np.ndarray:
    """Log-power linear-frequency spectrogram in dB: ``10 log10(max(|STFT|^2, amin))``.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
        Mono signal.
    sr : float, optional
        Not used (uniform signature).
    n_fft, hop_length, win_length, window
        As in :func:`stft_power`.
    amin : float
        Power floor before the log (-100 dB by default).
    top_db : float or None
        Optional dynamic-range clip below the utterance's peak (see :func:`power_to_db`).

    Returns
    -------
    np.ndarray, shape (1 + n_fft // 2, n_frames), float32
        Power in dB re 1 (full-scale sinusoid of amplitude 1 ~ ``20 log10(sum(window) / 2)`` dB).
    """
    y = _as_signal(y)
    p = _stft_power_frames(y, n_fft=n_fft, hop_length=hop_length, win_length=win_length, window=window, power=2.0)
    return _to_features(_db_inplace(p, amin=amin, top_db=top_db))


# --------------------------------------------------------------------------------------------
# Filterbanks
# --------------------------------------------------------------------------------------------


def _hz_to_mel(f: np.ndarray | float, htk: bool) -> np.ndarray:
    f = np.asanyarray(f, dtype=np.float64)
    if htk:
        return 2595.0 * np.log10(1.0 + f / 700.0)
    # Slaney's Auditory Toolbox scale: linear below 1 kHz, logarithmic above.
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    mels = f / f_sp
    log_t = f >= min_log_hz
    return np.where(log_t, min_log_mel + np.log(np.maximum(f, min_log_hz) / min_log_hz) / logstep, mels)


def _mel_to_hz(m: np.ndarray, htk: bool) -> np.ndarray:
    m = np.asanyarray(m, dtype=np.float64)
    if htk:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def mel_frequencies(n_mels: int, *, fmin: float = 0.0, fmax: float = 11025.0, htk: bool = False) -> np.ndarray:
    """``n_mels`` frequencies in Hz uniformly spaced on the mel scale (Slaney or HTK), float64."""
    lo, hi = _hz_to_mel(fmin, htk), _hz_to_mel(fmax, htk)
    return _mel_to_hz(np.linspace(lo, hi, n_mels), htk)


@functools.lru_cache(maxsize=32)
def _mel_filterbank(
    sr: float, n_fft: int, n_mels: int, fmin: float, fmax: float, htk: bool, norm: str | float | None
) -> np.ndarray:
    fftfreqs = fft_frequencies(sr, n_fft)
    mel_f = mel_frequencies(n_mels + 2, fmin=fmin, fmax=fmax, htk=htk)
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    # librosa stores the triangles in float32 before scaling them; do the same so the weights
    # agree to the last bit.
    weights = np.maximum(0.0, np.minimum(lower, upper)).astype(np.float32)
    if norm == "slaney":
        # Constant energy per channel: divide by the triangle's width in Hz.
        enorm = 2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels])
        weights = (weights * enorm[:, None]).astype(np.float32)
    elif norm is not None:
        if isinstance(norm, str) or norm <= 0:
            raise FeatureError(f"unsupported mel norm {norm!r} (use 'slaney', None or a p > 0)")
        length = np.sum(np.abs(weights.astype(np.float64)) ** norm, axis=1, keepdims=True) ** (1.0 / norm)
        length[length < _FLOAT32_TINY] = 1.0
        weights = (weights / length).astype(np.float32)
    return _readonly(weights)


def mel_filterbank(
    sr: float,
    n_fft: int,
    n_mels: int = 128,
    fmin: float = 0.0,
    fmax: float | None = None,
    htk: bool = False,
    norm: str | float | None = "slaney",
) -> np.ndarray:
    """Triangular mel filterbank, identical to :func:`librosa.filters.mel`.

    Parameters
    ----------
    sr : float
        Sample rate in Hz.
    n_fft : int
        FFT size the filters apply to.
    n_mels : int
        Number of filters.
    fmin, fmax : float
        Lowest and highest edge in Hz (``fmax=None`` means ``sr / 2``).
    htk : bool
        HTK mel formula instead of Slaney's.
    norm : {"slaney", None} or float
        "slaney" divides each triangle by its bandwidth (area normalisation); a number ``p``
        normalises each filter to unit p-norm; None keeps unit-peak triangles.

    Returns
    -------
    np.ndarray, shape (n_mels, 1 + n_fft // 2), float32, read-only
        Filter weights (cached: do not modify).
    """
    sr = _check_sr(sr)
    fmax = sr / 2.0 if fmax is None else float(fmax)
    if n_mels < 1 or not 0.0 <= fmin < fmax:
        raise FeatureError(f"invalid mel bank: n_mels={n_mels}, fmin={fmin}, fmax={fmax}")
    return _mel_filterbank(sr, int(n_fft), int(n_mels), float(fmin), fmax, bool(htk), norm)


@functools.lru_cache(maxsize=32)
def _linear_filterbank(sr: float, n_fft: int, n_filters: int, fmin: float, fmax: float) -> np.ndarray:
    f = fft_frequencies(sr, n_fft)
    edges = np.linspace(fmin, fmax, n_filters + 2)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    # MATLAB trimf, as in the ASVspoof 2019 LFCC baseline: unit-peak triangles, no area norm.
    weights = np.maximum(0.0, np.minimum((f - lo) / (mid - lo), (hi - f) / (hi - mid)))
    return _readonly(weights.astype(np.float32))


def linear_filterbank(
    sr: float,
    n_fft: int,
    n_filters: int = 20,
    fmin: float = 0.0,
    fmax: float | None = None,
) -> np.ndarray:
    """Linearly spaced triangular filterbank (ASVspoof 2019 LFCC baseline).

    Filter ``i`` rises from ``e[i]`` to a peak of 1 at ``e[i+1]`` and falls to 0 at ``e[i+2]``,
    with ``e = linspace(fmin, fmax, n_filters + 2)``.

    Parameters
    ----------
    sr : float
        Sample rate in Hz.
    n_fft : int
        FFT size the filters apply to.
    n_filters : int
        Number of triangles.
    fmin, fmax : float
        Band edges in Hz (``fmax=None`` means ``sr / 2``).

    Returns
    -------
    np.ndarray, shape (n_filters, 1 + n_fft // 2), float32, read-only
    """
    sr = _check_sr(sr)
    fmax = sr / 2.0 if fmax is None else float(fmax)
    if n_filters < 1 or not 0.0 <= fmin < fmax:
        raise FeatureError(f"invalid linear bank: n_filters={n_filters}, fmin={fmin}, fmax={fmax}")
    return _linear_filterbank(sr, int(n_fft), int(n_filters), float(fmin), fmax)


# --------------------------------------------------------------------------------------------
# Mel spectrogram and cepstra
# --------------------------------------------------------------------------------------------


def _mel_frames(
    y: np.ndarray,
    sr: float,
    *,
    n_fft: int,
    hop_length: int,
    win_length: int | None,
    window: WindowSpec,
    n_mels: int,
    fmin: float,
    fmax: float | None,
    htk: bool,
    norm: str | float | None,
    center: bool,
    pad_mode: str,
) -> np.ndarray:
    p = _stft_power_frames(
        y,
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=win_length,
        window=window,
        power=2.0,
        center=center,
        pad_mode=pad_mode,
    )
    fb = mel_filterbank(sr, n_fft, n_mels, fmin, fmax, htk, norm)
    return p @ fb.T


def mel_spectrogram(
    y: np.ndarray,
    sr: float,
    *,
    n_fft: int = 512,
    hop_length: int = 160,
    win_length: int | None = 400,
    window: WindowSpec = "hann",
    n_mels: int = 40,
    fmin: float = 0.0,
    fmax: float | None = None,
    htk: bool = False,
    norm: str | float | None = "slaney",
    center: bool = True,
    pad_mode: str = "constant",
) -> np.ndarray:
    """Mel power spectrogram, as :func:`librosa.feature.melspectrogram` (``power=2``).

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
    sr : float
        Sample rate in Hz.
    n_fft, hop_length, win_length, window, center, pad_mode
        As in :func:`stft_power`.
    n_mels, fmin, fmax, htk, norm
        As in :func:`mel_filterbank` (default 40 bands: enough for a 512-point FFT at 16 kHz).

    Returns
    -------
    np.ndarray, shape (n_mels, n_frames), float32
        Filterbank power (linear).
    """
    y = _as_signal(y)
    sr = _check_sr(sr)
    m = _mel_frames(
        y,
        sr,
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=win_length,
        window=window,
        n_mels=n_mels,
        fmin=fmin,
        fmax=fmax,
        htk=htk,
        norm=norm,
        center=center,
        pad_mode=pad_mode,
    )
    return _to_features(m)


def log_mel_spectrogram(
    y: np.ndarray,
    sr: float,
    *,
    n_fft: int = 512,
    hop_length: int = 160,
    win_length: int | None = 400,
    window: WindowSpec = "hann",
    n_mels: int = 40,
    fmin: float = 0.0,
    fmax: float | None = None,
    htk: bool = False,
    norm: str | float | None = "slaney",
    amin: float = 1e-10,
    top_db: float | None = 80.0,
) -> np.ndarray:
    """Log-mel spectrogram in dB: ``power_to_db(mel_spectrogram(y, sr, ...), top_db=top_db)``.

    Returns
    -------
    np.ndarray, shape (n_mels, n_frames), float32
        Mel power in dB re 1, clipped to ``top_db`` below the utterance's peak.
    """
    y = _as_signal(y)
    sr = _check_sr(sr)
    m = _mel_frames(
        y,
        sr,
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=win_length,
        window=window,
        n_mels=n_mels,
        fmin=fmin,
        fmax=fmax,
        htk=htk,
        norm=norm,
        center=True,
        pad_mode="constant",
    )
    return _to_features(_db_inplace(m, amin=amin, top_db=top_db))


def _lifter(c: np.ndarray, lifter: float) -> np.ndarray:
    """Sinusoidal cepstral liftering on frame-major coefficients, as librosa's ``lifter``."""
    if lifter < 0:
        raise FeatureError("lifter must be non-negative")
    if lifter > 0:
        n = np.arange(1, c.shape[-1] + 1, dtype=np.float64)
        c *= (1.0 + (lifter / 2.0) * np.sin(np.pi * n / lifter)).astype(np.float32)
    return c


def mfcc(
    y: np.ndarray,
    sr: float,
    n_mfcc: int = 20,
    *,
    n_fft: int = 512,
    hop_length: int = 160,
    win_length: int | None = 400,
    window: WindowSpec = "hann",
    n_mels: int = 40,
    fmin: float = 0.0,
    fmax: float | None = None,
    htk: bool = False,
    norm: str | float | None = "slaney",
    top_db: float | None = 80.0,
    lifter: float = 0.0,
    center: bool = True,
    pad_mode: str = "constant",
) -> np.ndarray:
    """Mel-frequency cepstral coefficients, as :func:`librosa.feature.mfcc`.

    Orthonormal DCT-II of the log-mel spectrogram in dB (``power_to_db`` with ``ref=1``,
    ``amin=1e-10`` and ``top_db`` over the whole signal), first ``n_mfcc`` coefficients, optional
    liftering. With ``n_fft=2048, hop_length=512, win_length=None, n_mels=128`` this is librosa's
    default call.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
    sr : float
        Sample rate in Hz.
    n_mfcc : int
        Number of coefficients kept (<= ``n_mels``); coefficient 0 is the log energy term.
    n_fft, hop_length, win_length, window, center, pad_mode
        As in :func:`stft_power`.
    n_mels, fmin, fmax, htk, norm
        As in :func:`mel_filterbank`.
    top_db : float or None
        Dynamic-range clip of the log-mel spectrogram (librosa's default 80 dB).
    lifter : float
        Cepstral liftering coefficient (0 = none).

    Returns
    -------
    np.ndarray, shape (n_mfcc, n_frames), float32
        Cepstral coefficients (dB units).
    """
    y = _as_signal(y)
    sr = _check_sr(sr)
    if not 0 < n_mfcc <= n_mels:
        raise FeatureError(f"n_mfcc={n_mfcc} must be in [1, n_mels={n_mels}]")
    m = _mel_frames(
        y,
        sr,
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=win_length,
        window=window,
        n_mels=n_mels,
        fmin=fmin,
        fmax=fmax,
        htk=htk,
        norm=norm,
        center=center,
        pad_mode=pad_mode,
    )
    _db_inplace(m, top_db=top_db)
    c = m @ _dct_matrix(n_mfcc, n_mels).T
    return _to_features(_lifter(c, lifter))


def _preemphasis(y: np.ndarray, coef: float) -> np.ndarray:
    """``y[n] - coef * y[n-1]`` with zero initial state (MATLAB ``filter([1 -coef], 1, y)``)."""
    out = np.empty_like(y)
    out[0] = y[0]
    np.subtract(y[1:], np.float32(coef) * y[:-1], out=out[1:])
    return out


def lfcc(
    y: np.ndarray,
    sr: float,
    n_lfcc: int = 20,
    *,
    n_fft: int = 512,
    hop_length: int = 160,
    win_length: int | None = 320,
    window: WindowSpec = "hamming",
    n_filters: int = 20,
    fmin: float = 0.0,
    fmax: float | None = None,
    preemphasis: float = 0.97,
    amin: float = 1e-10,
) -> np.ndarray:
    """Linear-frequency cepstral coefficients (ASVspoof 2019 baseline front-end).

    Pre-emphasis ``1 - 0.97 z^-1``, 20 ms Hamming window (320 samples at 16 kHz) in a 512-point
    FFT, 10 ms hop, power spectrum, ``n_filters`` linearly spaced triangles from ``fmin`` to
    ``fmax``, ``log10`` of the filter energies (floored at ``amin``), orthonormal DCT-II, first
    ``n_lfcc`` coefficients (coefficient 0 included). Differences from the MATLAB baseline
    (Sahidullah et al., Interspeech 2015): frames are centred on the voxguard grid (hop 10 ms
    rather than half a window) and the window is periodic; use :func:`with_deltas` with
    ``width=3`` for the baseline's deltas.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
    sr : float
        Sample rate in Hz.
    n_lfcc : int
        Coefficients kept (<= ``n_filters``).
    n_fft, hop_length, win_length, window
        As in :func:`stft_power`.
    n_filters, fmin, fmax
        As in :func:`linear_filterbank`.
    preemphasis : float
        Pre-emphasis coefficient; 0 disables it.
    amin : float
        Floor on filter energies before the log.

    Returns
    -------
    np.ndarray, shape (n_lfcc, n_frames), float32
        Cepstral coefficients (log10 power units).
    """
    y = _as_signal(y)
    sr = _check_sr(sr)
    if not 0 < n_lfcc <= n_filters:
        raise FeatureError(f"n_lfcc={n_lfcc} must be in [1, n_filters={n_filters}]")
    if amin <= 0:
        raise FeatureError("amin must be strictly positive")
    if preemphasis:
        y = _preemphasis(y, preemphasis)
    p = _stft_power_frames(y, n_fft=n_fft, hop_length=hop_length, win_length=win_length, window=window, power=2.0)
    return _to_features(cepstra_from_power(p, linear_filterbank(sr, n_fft, n_filters, fmin, fmax), n_lfcc, amin=amin))


# --------------------------------------------------------------------------------------------
# Constant-Q transform and CQCC
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _cqt_kernel(
    sr: float, n_fft: int, fmin: float, n_bins: int, bins_per_octave: int, sparsity: float
) -> scipy.sparse.csr_matrix:
    """Sparse spectral kernel ``(n_bins, 1 + n_fft // 2)`` (Brown & Puckette 1992).

    Row ``k`` is ``conj(FFT(kernel_k)) / n_fft`` restricted to non-negative frequencies, where
    ``kernel_k`` is a Hann-windowed complex exponential at ``f_k``, centred in the frame and
    L1-normalised (a sinusoid of amplitude A at ``f_k`` gives ``|X_k| = A / 2``). Its length is
    ``Q sr / f_k`` capped at ``n_fft``. Coefficients holding the smallest ``sparsity`` fraction of
    each row's L1 mass are dropped.
    """
    q = 1.0 / (2.0 ** (1.0 / bins_per_octave) - 1.0)
    freqs = fmin * 2.0 ** (np.arange(n_bins) / bins_per_octave)
    lengths = np.minimum(n_fft, np.ceil(q * sr / freqs)).astype(int)
    n_pos = n_fft // 2 + 1
    n = np.arange(n_fft)
    centre = n_fft // 2
    rows, cols, vals = [], [], []
    batch = 64  # rows per FFT batch: bounds the dense temporary to 64 x n_fft complex values
    for b0 in range(0, n_bins, batch):
        idx = np.arange(b0, min(n_bins, b0 + batch))
        starts = centre - lengths[idx] // 2
        rel = n[None, :] - starts[:, None]
        inside = (rel >= 0) & (rel < lengths[idx, None])
        # Periodic Hann of each bin's length, evaluated on the frame's sample grid.
        win = np.where(inside, 0.5 - 0.5 * np.cos(2.0 * np.pi * rel / lengths[idx, None]), 0.0)
        win /= win.sum(axis=1, keepdims=True)
        temporal = win * np.exp(2j * np.pi * freqs[idx, None] * (n[None, :] - centre) / sr)
        spec = np.conj(np.fft.fft(temporal, axis=1)[:, :n_pos]) / n_fft
        mag = np.abs(spec)
        srt = np.sort(mag, axis=1)
        csum = np.cumsum(srt, axis=1)
        # Per row, the magnitude below which the dropped coefficients hold <= sparsity of the mass.
        cut = np.argmax(csum > sparsity * csum[:, -1:], axis=1)
        thr = srt[np.arange(len(idx)), cut]
        r, c = np.nonzero(mag >= thr[:, None])
        rows.append(r + b0)
        cols.append(c)
        vals.append(spec[r, c])
    kernel = scipy.sparse.csr_matrix(
        (np.concatenate(vals).astype(np.complex64), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n_bins, n_pos),
    )
    return kernel


def _cqt_power_frames(
    y: np.ndarray,
    sr: float,
    *,
    hop_length: int,
    fmin: float,
    n_bins: int,
    bins_per_octave: int,
    n_fft: int,
    sparsity: float,
) -> np.ndarray:
    """Frame-major CQT power ``(n_frames, n_bins)``."""
    if hop_length < 1 or n_fft < 2:
        raise FeatureError("hop_length and n_fft must be positive")
    if fmin <= 0 or n_bins < 1 or bins_per_octave < 1:
        raise FeatureError("fmin, n_bins and bins_per_octave must be positive")
    f_top = fmin * 2.0 ** ((n_bins - 1) / bins_per_octave)
    if f_top >= sr / 2:
        raise FeatureError(f"highest CQT bin {f_top:.1f} Hz is not below Nyquist ({sr / 2:.1f} Hz)")
    kernel = _cqt_kernel(sr, n_fft, fmin, n_bins, bins_per_octave, sparsity)
    frames = frame_signal(y, n_fft, hop_length, center=True, pad_mode="constant")
    n = frames.shape[0]
    out = np.empty((n, n_bins), dtype=np.float32)
    block = max(1, min(n, (4 * _BLOCK_BYTES) // (4 * n_fft)))
    for start in range(0, n, block):
        stop = min(n, start + block)
        spec = scipy.fft.rfft(frames[start:stop], axis=-1, workers=1)
        cq = (kernel @ spec.T).T
        np.abs(cq, out=out[start:stop])
    np.square(out, out=out)
    return out


def cqt_power(
    y: np.ndarray,
    sr: float,
    *,
    hop_length: int = 160,
    fmin: float | None = None,
    n_bins: int = 672,
    bins_per_octave: int = 96,
    n_fft: int = 4096,
    sparsity: float = 0.01,
) -> np.ndarray:
    """Constant-Q power spectrogram via a sparse spectral kernel over ``n_fft``-sample frames.

    Bin ``k`` is centred on ``fmin * 2 ** (k / bins_per_octave)`` Hz with quality factor
    ``Q = 1 / (2 ** (1 / bins_per_octave) - 1)`` (Hann kernels, L1-normalised: a sinusoid of
    amplitude A at a bin centre gives power ``A**2 / 4``). Kernels whose constant-Q length
    ``Q sr / f_k`` exceeds ``n_fft`` are cut to ``n_fft`` samples, so below
    ``f = Q sr / n_fft`` (540 Hz at 16 kHz with the defaults) the transform keeps a constant
    bandwidth of about ``2 sr / n_fft``: a variable-Q transform that bounds the frame length
    (256 ms) instead of the 2 s a true 15 Hz constant-Q bin would need.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
    sr : float
        Sample rate in Hz.
    hop_length : int
        Samples between frames.
    fmin : float or None
        Centre of the lowest bin; default ``sr / 2 / 2 ** 7`` (62.5 Hz at 16 kHz).
    n_bins : int
        Number of bins (default 7 octaves of 96 bins).
    bins_per_octave : int
        Frequency resolution (96 as in the CQCC paper).
    n_fft : int
        Frame length and FFT size in samples: the longest kernel.
    sparsity : float
        Fraction of each kernel's L1 mass that may be dropped to make it sparse.

    Returns
    -------
    np.ndarray, shape (n_bins, n_frames), float32
        ``|X_cq| ** 2`` (linear power).
    """
    y = _as_signal(y)
    sr = _check_sr(sr)
    fmin = sr / 2.0 / 2.0**7 if fmin is None else float(fmin)
    p = _cqt_power_frames(
        y,
        sr,
        hop_length=hop_length,
        fmin=fmin,
        n_bins=n_bins,
        bins_per_octave=bins_per_octave,
        n_fft=n_fft,
        sparsity=sparsity,
    )
    return _to_features(p)


@functools.lru_cache(maxsize=8)
def _cqcc_matrix(fmin: float, n_bins: int, bins_per_octave: int, d: int, n_cqcc: int) -> np.ndarray:
    """Uniform resampling followed by the DCT, fused into one ``(n_cqcc, n_bins)`` matrix.

    Both steps are linear, so ``DCT[:n_cqcc] @ Interp`` applied to the log-CQT costs
    ``n_cqcc * n_bins`` per frame whatever the resampled length.
    """
    f_cq = fmin * 2.0 ** (np.arange(n_bins) / bins_per_octave)
    step = fmin / d  # d uniform samples in the first octave (Todisco et al. 2016)
    f_u = fmin + step * np.arange(int(np.floor((f_cq[-1] - fmin) / step)) + 1)
    # Linear interpolation in frequency between the two CQ bins around each uniform point.
    k = np.clip(np.searchsorted(f_cq, f_u, side="right") - 1, 0, n_bins - 2)
    frac = np.clip((f_u - f_cq[k]) / (f_cq[k + 1] - f_cq[k]), 0.0, 1.0)
    interp = np.zeros((len(f_u), n_bins))
    rows = np.arange(len(f_u))
    interp[rows, k] = 1.0 - frac
    interp[rows, k + 1] += frac
    # Orthonormal DCT-II rows written out: the resampled length (~2000) makes dct(eye) wasteful.
    n_u = len(f_u)
    dct = np.sqrt(2.0 / n_u) * np.cos(
        np.pi * np.arange(n_cqcc)[:, None] * (2 * np.arange(n_u)[None, :] + 1) / (2 * n_u)
    )
    dct[0] /= np.sqrt(2.0)
    return _readonly((dct @ interp).astype(np.float32))


def cqcc(
    y: np.ndarray,
    sr: float,
    n_cqcc: int = 20,
    *,
    hop_length: int = 160,
    fmin: float | None = None,
    n_bins: int = 672,
    bins_per_octave: int = 96,
    n_fft: int = 4096,
    d: int = 16,
    amin: float = 1e-10,
) -> np.ndarray:
    """Constant-Q cepstral coefficients (Todisco, Delgado & Evans, Odyssey 2016).

    :func:`cqt_power` -> natural log (floored at ``amin``) -> uniform resampling of the
    geometrically spaced log spectrum onto a linear grid with ``d`` points in the first octave
    (linear interpolation) -> orthonormal DCT-II -> first ``n_cqcc`` coefficients (coefficient 0
    included). Differs from the MATLAB reference in the capped kernel length (see
    :func:`cqt_power`), linear instead of polyphase resampling, and 7 instead of 9 octaves by
    default.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
    sr : float
        Sample rate in Hz.
    n_cqcc : int
        Coefficients kept.
    hop_length, fmin, n_bins, bins_per_octave, n_fft
        As in :func:`cqt_power`.
    d : int
        Uniform samples per first octave.
    amin : float
        Power floor before the log.

    Returns
    -------
    np.ndarray, shape (n_cqcc, n_frames), float32
        Cepstral coefficients (natural-log power units).
    """
    y = _as_signal(y)
    sr = _check_sr(sr)
    if amin <= 0 or d < 1:
        raise FeatureError("amin and d must be positive")
    fmin = sr / 2.0 / 2.0**7 if fmin is None else float(fmin)
    if n_cqcc < 1:
        raise FeatureError(f"n_cqcc must be positive, got {n_cqcc}")
    p = _cqt_power_frames(
        y,
        sr,
        hop_length=hop_length,
        fmin=fmin,
        n_bins=n_bins,
        bins_per_octave=bins_per_octave,
        n_fft=n_fft,
        sparsity=0.01,
    )
    m = _cqcc_matrix(fmin, n_bins, bins_per_octave, d, n_cqcc)
    if m.shape[0] < n_cqcc:
        raise FeatureError(f"n_cqcc={n_cqcc} exceeds the {m.shape[0]} resampled frequencies")
    np.maximum(p, amin, out=p)
    np.log(p, out=p)
    return _to_features(p @ m.T)


# --------------------------------------------------------------------------------------------
# Deltas
# --------------------------------------------------------------------------------------------


def deltas(X: np.ndarray, width: int = 9, order: int = 1, axis: int = -1) -> np.ndarray:
    """Local derivative estimate, as :func:`librosa.feature.delta` (``mode="interp"``).

    A Savitzky-Golay filter of ``width`` frames and polynomial order ``order`` returns the
    ``order``-th derivative per frame; at the edges the polynomial fitted to the first/last
    ``width`` frames is used.

    Parameters
    ----------
    X : np.ndarray, shape (n_features, n_frames)
        Frame-level features (any shape; differentiated along ``axis``).
    width : int
        Odd number of frames >= 3, at most the number of frames.
    order : int
        Derivative order (1 = delta, 2 = delta-delta).
    axis : int
        Time axis.

    Returns
    -------
    np.ndarray, same shape as ``X``, float32
        Derivative in units of X per frame.
    """
    X = np.asarray(X)
    if width < 3 or width % 2 != 1:
        raise FeatureError(f"width must be an odd integer >= 3, got {width}")
    if order < 1 or int(order) != order:
        raise FeatureError(f"order must be a positive integer, got {order}")
    if X.ndim == 0 or X.shape[axis] < width:
        n = 0 if X.ndim == 0 else X.shape[axis]
        raise FeatureError(f"deltas with width={width} need at least {width} frames, got {n}")
    M = _savgol_matrix(width, order)
    h = width // 2
    x = np.moveaxis(X, axis, -1).astype(np.float32, copy=False)
    n = x.shape[-1]
    out = np.empty(x.shape, dtype=np.float32)
    # Interior frames: the same taps everywhere (a short loop over taps, vectorised over frames).
    interior = out[..., h : n - h]
    np.multiply(x[..., : n - 2 * h], M[h, 0], out=interior)
    for j in range(1, width):
        interior += M[h, j] * x[..., j : n - 2 * h + j]
    # Edge frames: derivative of the polynomial fitted to the first / last `width` frames.
    out[..., :h] = x[..., :width] @ M[:h].T
    out[..., n - h :] = x[..., n - width :] @ M[h + 1 :].T
    return np.moveaxis(out, -1, axis)


@functools.lru_cache(maxsize=16)
def _savgol_matrix(width: int, order: int) -> np.ndarray:
    """``(width, width)`` matrix of ``savgol_filter(mode="interp")`` on a ``width``-frame input.

    The filter is linear, so filtering the identity gives it: row ``h = width // 2`` holds the
    interior taps, rows above/below it the edge fits, exactly as scipy (and librosa) apply them.
    """
    m = scipy.signal.savgol_filter(np.eye(width), width, polyorder=order, deriv=order, axis=0, mode="interp")
    return _readonly(m.astype(np.float32))


def with_deltas(X: np.ndarray, width: int = 9, order: int = 2) -> np.ndarray:
    """Stack static features with their derivatives up to ``order``: ``[X; ΔX; Δ²X; ...]``.

    Parameters
    ----------
    X : np.ndarray, shape (n_features, n_frames)
    width : int
        Savitzky-Golay window for every derivative (see :func:`deltas`).
    order : int
        Highest derivative (2 gives static + Δ + ΔΔ).

    Returns
    -------
    np.ndarray, shape ((order + 1) * n_features, n_frames), float32
    """
    X = np.asarray(X)
    if X.ndim != 2:
        raise FeatureError(f"expected (n_features, n_frames), got shape {X.shape}")
    parts = [X.astype(np.float32, copy=False)]
    parts += [deltas(X, width=width, order=k, axis=-1) for k in range(1, order + 1)]
    return np.concatenate(parts, axis=0)


# --------------------------------------------------------------------------------------------
# Spectral descriptors (helpers take frame-major magnitudes (..., n_frames, n_bins))
# --------------------------------------------------------------------------------------------


def _l1_norm(S: np.ndarray) -> np.ndarray:
    """Per-frame sum of a magnitude spectrum; frames with (almost) no energy keep 1, as librosa."""
    total = S.sum(axis=-1, keepdims=True, dtype=np.float64)
    total[total < _FLOAT32_TINY] = 1.0
    return total


def _centroid(S: np.ndarray, freq: np.ndarray) -> np.ndarray:
    return (S @ freq.astype(np.float32)) / _l1_norm(S)[..., 0]


def _bandwidth(S: np.ndarray, freq: np.ndarray, centroid: np.ndarray, p: float, norm: bool) -> np.ndarray:
    dev = np.abs(freq.astype(np.float32) - centroid[..., None].astype(np.float32))
    if p == 2.0:
        np.square(dev, out=dev)
    else:
        np.power(dev, p, out=dev)
    acc = np.einsum("...f,...f->...", S, dev, dtype=np.float64)
    if norm:
        acc /= _l1_norm(S)[..., 0]
    return acc ** (1.0 / p)


def _rolloff(S: np.ndarray, freq: np.ndarray, roll_percent: float) -> np.ndarray:
    # float32 cumulative sum, as librosa, so that frames at a bin boundary fall the same way.
    cum = np.cumsum(S, axis=-1)
    thr = np.float32(roll_percent) * cum[..., -1:]
    return freq[np.argmax(cum >= thr, axis=-1)]


def _descriptor_mag(
    y: np.ndarray,
    n_fft: int,
    hop_length: int,
    win_length: int | None,
    window: WindowSpec,
    center: bool,
    pad_mode: str,
) -> np.ndarray:
    return _stft_power_frames(
        _as_signal(y),
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=win_length,
        window=window,
        power=1.0,
        center=center,
        pad_mode=pad_mode,
    )


def spectral_centroid(
    y: np.ndarray,
    sr: float,
    *,
    n_fft: int = 512,
    hop_length: int = 160,
    win_length: int | None = 400,
    window: WindowSpec = "hann",
    center: bool = True,
    pad_mode: str = "constant",
) -> np.ndarray:
    """Magnitude-weighted mean frequency per frame, as :func:`librosa.feature.spectral_centroid`.

    Returns
    -------
    np.ndarray, shape (1, n_frames), float32
        Centroid in Hz (0 for silent frames).
    """
    sr = _check_sr(sr)
    S = _descriptor_mag(y, n_fft, hop_length, win_length, window, center, pad_mode)
    return _to_features(_centroid(S, fft_frequencies(sr, n_fft))[:, None])


def spectral_bandwidth(
    y: np.ndarray,
    sr: float,
    *,
    n_fft: int = 512,
    hop_length: int = 160,
    win_length: int | None = 400,
    window: WindowSpec = "hann",
    center: bool = True,
    pad_mode: str = "constant",
    p: float = 2.0,
    norm: bool = True,
) -> np.ndarray:
    """p-th order spread around the centroid, as :func:`librosa.feature.spectral_bandwidth`.

    ``(sum_f S_n[f] |f - centroid|^p) ** (1/p)`` with ``S_n`` the magnitude spectrum normalised
    to unit sum (``norm=True``).

    Returns
    -------
    np.ndarray, shape (1, n_frames), float32
        Bandwidth in Hz.
    """
    sr = _check_sr(sr)
    if p <= 0:
        raise FeatureError("p must be positive")
    S = _descriptor_mag(y, n_fft, hop_length, win_length, window, center, pad_mode)
    freq = fft_frequencies(sr, n_fft)
    return _to_features(_bandwidth(S, freq, _centroid(S, freq), p, norm)[:, None])


def spectral_rolloff(
    y: np.ndarray,
    sr: float,
    *,
    n_fft: int = 512,
    hop_length: int = 160,
    win_length: int | None = 400,
    window: WindowSpec = "hann",
    center: bool = True,
    pad_mode: str = "constant",
    roll_percent: float = 0.85,
) -> np.ndarray:
    """Lowest bin frequency below which ``roll_percent`` of the magnitude lies.

    As :func:`librosa.feature.spectral_rolloff`. Values are FFT bin frequencies, so a frame whose
    cumulative sum sits at the threshold can differ from librosa by one bin (``sr / n_fft``)
    because of float32 rounding.

    Returns
    -------
    np.ndarray, shape (1, n_frames), float32
        Roll-off frequency in Hz (0 for silent frames).
    """
    sr = _check_sr(sr)
    if not 0.0 < roll_percent < 1.0:
        raise FeatureError("roll_percent must lie in (0, 1)")
    S = _descriptor_mag(y, n_fft, hop_length, win_length, window, center, pad_mode)
    return _to_features(_rolloff(S, fft_frequencies(sr, n_fft), roll_percent)[:, None])


def spectral_flatness(
    y: np.ndarray,
    sr: float | None = None,
    *,
    n_fft: int = 512,
    hop_length: int = 160,
    win_length: int | None = 400,
    window: WindowSpec = "hann",
    center: bool = True,
    pad_mode: str = "constant",
    amin: float = 1e-10,
    power: float = 2.0,
) -> np.ndarray:
    """Geometric over arithmetic mean of ``max(|X|^power, amin)``, per frame (Wiener entropy).

    As :func:`librosa.feature.spectral_flatness`; ``sr`` is not used.

    Returns
    -------
    np.ndarray, shape (1, n_frames), float32
        Flatness in (0, 1]: 1 for white noise, near 0 for a pure tone.
    """
    if amin <= 0:
        raise FeatureError("amin must be strictly positive")
    s = _stft_power_frames(
        _as_signal(y),
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=win_length,
        window=window,
        power=power,
        center=center,
        pad_mode=pad_mode,
    )
    np.maximum(s, amin, out=s)
    amean = s.mean(axis=-1)
    gmean = np.exp(np.log(s).mean(axis=-1))
    return _to_features((gmean / amean)[:, None])


def band_flatness(
    y: np.ndarray,
    sr: float | None = None,
    *,
    n_bands: int = 16,
    n_fft: int = 512,
    hop_length: int = 160,
    win_length: int | None = 400,
    window: WindowSpec = "hann",
    center: bool = True,
    amin: float = 1e-10,
) -> np.ndarray:
    """Spectral flatness in each of ``n_bands`` equal-width frequency bands, per frame.

    Neural vocoders and resynthesis leave the noise-like parts of speech (fricatives, breath,
    the band above 4 kHz) too tonal or too flat; per-band flatness sees that where one
    full-band flatness value averages it away.

    Returns
    -------
    np.ndarray, shape (n_bands, n_frames), float32
        Geometric over arithmetic mean of the power in each band, in (0, 1].
    """
    if n_bands < 1 or n_bands > n_fft // 2 + 1:
        raise FeatureError(f"n_bands must be between 1 and {n_fft // 2 + 1}")
    s = _stft_power_frames(
        _as_signal(y),
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=win_length,
        window=window,
        power=2.0,
        center=center,
        pad_mode="constant",
    )
    return _to_features(band_flatness_from_power(s, n_bands, amin=amin))


def band_flatness_from_power(power_frames: np.ndarray, n_bands: int = 16, *, amin: float = 1e-10) -> np.ndarray:
    """Per-band flatness of a frame-major power spectrogram.

    Parameters
    ----------
    power_frames : np.ndarray, shape (n_frames, n_bins)
        Power spectrum per frame (e.g. ``stft_power(...).T``); not modified.

    Returns
    -------
    np.ndarray, shape (n_frames, n_bands), float32 (frame-major, like the input)
    """
    s = np.maximum(power_frames, np.float32(amin))
    edges = np.linspace(0, s.shape[-1], n_bands + 1).astype(np.int64)[:-1]
    widths = np.diff(np.append(edges, s.shape[-1])).astype(np.float32)
    # One reduceat per statistic over all bands at once (no loop over bands).
    amean = np.add.reduceat(s, edges, axis=-1) / widths
    gmean = np.exp(np.add.reduceat(np.log(s), edges, axis=-1) / widths)
    return (gmean / amean).astype(np.float32, copy=False)


def cepstra_from_power(
    power_frames: np.ndarray, filterbank: np.ndarray, n_ceps: int, *, amin: float = 1e-10
) -> np.ndarray:
    """Cepstra of a frame-major power spectrogram: ``DCT(log10(filterbank energies))``.

    Parameters
    ----------
    power_frames : np.ndarray, shape (n_frames, n_bins)
    filterbank : np.ndarray, shape (n_filters, n_bins)
        E.g. :func:`linear_filterbank` (LFCC) or :func:`mel_filterbank`.
    n_ceps : int
        Coefficients kept (orthonormal DCT-II, coefficient 0 included).

    Returns
    -------
    np.ndarray, shape (n_frames, n_ceps), float32 (frame-major)
    """
    e = power_frames @ filterbank.T
    np.maximum(e, amin, out=e)
    np.log10(e, out=e)
    return (e @ _dct_matrix(n_ceps, filterbank.shape[0]).T).astype(np.float32, copy=False)


def spectral_contrast(
    y: np.ndarray,
    sr: float,
    *,
    n_fft: int = 512,
    hop_length: int = 160,
    win_length: int | None = 400,
    window: WindowSpec = "hann",
    center: bool = True,
    pad_mode: str = "constant",
    fmin: float = 200.0,
    n_bands: int = 6,
    quantile: float = 0.02,
    linear: bool = False,
) -> np.ndarray:
    """Octave-band peak-to-valley contrast, as :func:`librosa.feature.spectral_contrast`.

    Band 0 spans ``[0, fmin]``, band ``k`` spans ``[fmin 2^(k-1), fmin 2^k]`` and the last band
    runs to Nyquist; in each, the mean of the top and bottom ``quantile`` of magnitudes
    (at least one bin) are the peak and valley.

    Returns
    -------
    np.ndarray, shape (n_bands + 1, n_frames), float32
        ``power_to_db(peak) - power_to_db(valley)`` in dB (each with ``top_db=80`` over the
        whole array, as librosa), or ``peak - valley`` if ``linear``.
    """
    sr = _check_sr(sr)
    if n_bands < 1 or not 0.0 < quantile < 1.0 or fmin <= 0:
        raise FeatureError("need n_bands >= 1, 0 < quantile < 1 and fmin > 0")
    octa = np.zeros(n_bands + 2)
    octa[1:] = fmin * 2.0 ** np.arange(n_bands + 1)
    if np.any(octa[:-1] >= 0.5 * sr):
        raise FeatureError("a contrast band starts above Nyquist: reduce fmin or n_bands")
    S = _descriptor_mag(y, n_fft, hop_length, win_length, window, center, pad_mode)
    freq = fft_frequencies(sr, n_fft)
    valley = np.zeros((n_bands + 1, S.shape[0]))
    peak = np.zeros_like(valley)
    # One iteration per band (7 by default), each vectorised over all frames.
    for k in range(n_bands + 1):
        band = (freq >= octa[k]) & (freq <= octa[k + 1])
        idx = np.flatnonzero(band)
        if idx.size == 0:
            raise FeatureError(f"contrast band {k} holds no FFT bin: increase n_fft")
        if k > 0:
            band[idx[0] - 1] = True  # share the edge bin with the band below, as librosa
        if k == n_bands:
            band[idx[-1] + 1 :] = True
        sub = S[:, band]
        if k < n_bands:
            sub = sub[:, :-1]
        n_q = max(int(np.rint(quantile * np.sum(band))), 1)
        srt = np.sort(sub, axis=-1)
        valley[k] = srt[:, :n_q].mean(axis=-1)
        peak[k] = srt[:, -n_q:].mean(axis=-1)
    if linear:
        return (peak - valley).astype(np.float32)
    return (power_to_db(peak) - power_to_db(valley)).astype(np.float32)


def zero_crossing_rate(
    y: np.ndarray,
    sr: float | None = None,
    *,
    frame_length: int = 400,
    hop_length: int = 160,
    center: bool = True,
    threshold: float = 1e-10,
) -> np.ndarray:
    """Fraction of sign changes per frame, as :func:`librosa.feature.zero_crossing_rate`.

    Samples with ``|y| <= threshold`` count as +0; the centring pad repeats the edge samples
    (librosa's ``mode="edge"``); a frame's count is divided by ``frame_length``. ``sr`` is not
    used.

    Returns
    -------
    np.ndarray, shape (1, n_frames), float32
        Crossings per sample, in [0, 1).
    """
    y = _as_signal(y)
    frames = frame_signal(y, frame_length, hop_length, center=center, pad_mode="edge")
    neg = np.signbit(frames) & (np.abs(frames) > threshold)
    count = np.count_nonzero(neg[:, 1:] != neg[:, :-1], axis=-1)
    return _to_features((count / frame_length)[:, None])


def rms(
    y: np.ndarray,
    sr: float | None = None,
    *,
    frame_length: int = 400,
    hop_length: int = 160,
    center: bool = True,
    pad_mode: str = "constant",
) -> np.ndarray:
    """Root-mean-square amplitude per frame (no window), as :func:`librosa.feature.rms`.

    Returns
    -------
    np.ndarray, shape (1, n_frames), float32
        RMS in signal amplitude units; ``sr`` is not used.
    """
    y = _as_signal(y)
    frames = frame_signal(y, frame_length, hop_length, center=center, pad_mode=pad_mode)
    return _to_features(np.sqrt(np.square(frames).mean(axis=-1))[:, None])


# --------------------------------------------------------------------------------------------
# Chroma
# --------------------------------------------------------------------------------------------


def _estimate_tuning_power(S: np.ndarray, sr: float, n_fft: int, n_chroma: int) -> float:
    """librosa's ``estimate_tuning(S=S)`` for a frame-major power spectrogram ``(n_frames, n_bins)``.

    piptrack (parabolic peak interpolation of local maxima above 0.1 x the frame's maximum,
    150 Hz <= f < 4 kHz), keep the peaks at or above the median peak height, histogram their
    deviation from the equal-tempered grid in 0.01-bin steps and return the mode. The dtype of
    every intermediate follows librosa's so that ties fall into the same histogram bin.
    """
    S = S.astype(np.float32, copy=False)
    fft_freqs = fft_frequencies(sr, n_fft)
    band = np.flatnonzero((fft_freqs >= 150.0) & (fft_freqs < min(4000.0, sr / 2.0)))
    if band.size == 0:
        return 0.0
    # The band never touches bin 0 or the Nyquist bin, so every candidate has two neighbours and
    # only the band (plus one bin each side) needs looking at.
    lo, hi = int(band[0]), int(band[-1]) + 1
    ref = np.float32(0.1) * S.max(axis=-1, keepdims=True)
    x = S[:, lo - 1 : hi + 1]
    x = x * (ref < x)  # keep only bins above 0.1 x the frame maximum
    peak = (x[:, 1:-1] > x[:, :-2]) & (x[:, 1:-1] >= x[:, 2:])
    t, f = np.nonzero(peak)
    if f.size == 0:
        return 0.0
    f = f + lo
    s0, s_prev, s_next = S[t, f], S[t, f - 1], S[t, f + 1]
    # Parabolic interpolation; librosa's numba stencil promotes to float64 here (int * float32)
    # and stores the shift as float32.
    a = (s_next + s_prev).astype(np.float64) - 2.0 * s0.astype(np.float64)
    b = (s_next - s_prev).astype(np.float64) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.where(np.abs(b) < np.abs(a), -b / a, 0.0).astype(np.float32)
    avg = (s_next - s_prev) / 2.0  # np.gradient, float32
    mag = s0 + 0.5 * avg * shift
    pitch = ((f + shift.astype(np.float64)) * float(sr) / n_fft).astype(np.float32)
    positive = pitch > 0
    if not positive.any():
        return 0.0
    threshold = np.median(mag[positive])
    freqs = pitch[(mag >= threshold) & positive]
    freqs = freqs[freqs > 0]
    if freqs.size == 0:
        return 0.0
    residual = np.mod(n_chroma * np.log2(freqs / np.float32(440.0 / 16)), 1.0)
    residual[residual >= 0.5] -= 1.0
    bins = np.linspace(-0.5, 0.5, int(np.ceil(1.0 / 0.01)) + 1)
    counts, edges = np.histogram(residual, bins)
    return float(edges[np.argmax(counts)])


def estimate_tuning(
    y: np.ndarray,
    sr: float,
    *,
    n_fft: int = 2048,
    hop_length: int | None = None,
    n_chroma: int = 12,
) -> float:
    """Tuning deviation from A440 in fractions of a chroma bin, in [-0.5, 0.5).

    Same estimate as ``librosa.estimate_tuning(S=|stft(y)|**2, sr=sr, bins_per_octave=n_chroma)``,
    i.e. what :func:`librosa.feature.chroma_stft` uses when ``tuning=None``.
    ``hop_length=None`` means ``n_fft // 4``; the window is a full-length Hann.
    """
    y = _as_signal(y)
    sr = _check_sr(sr)
    hop = n_fft // 4 if hop_length is None else hop_length
    s = _stft_power_frames(y, n_fft=n_fft, hop_length=hop, win_length=None, window="hann", power=2.0)
    return _estimate_tuning_power(s, sr, n_fft, n_chroma)


@functools.lru_cache(maxsize=256)
def _chroma_filterbank(
    sr: float,
    n_fft: int,
    n_chroma: int,
    tuning: float,
    ctroct: float,
    octwidth: float | None,
    norm: float | None,
    base_c: bool,
) -> np.ndarray:
    frequencies = np.linspace(0, sr, n_fft, endpoint=False)[1:]
    a440 = 440.0 * 2.0 ** (tuning / n_chroma)
    frqbins = n_chroma * np.log2(frequencies / (a440 / 16))
    # The 0 Hz bin gets a made-up position 1.5 octaves below bin 1 (Ellis' chromagram_E).
    frqbins = np.concatenate(([frqbins[0] - 1.5 * n_chroma], frqbins))
    binwidthbins = np.concatenate((np.maximum(frqbins[1:] - frqbins[:-1], 1.0), [1]))
    D = np.subtract.outer(frqbins, np.arange(0, n_chroma, dtype="d")).T
    n_chroma2 = np.round(float(n_chroma) / 2)
    D = np.remainder(D + n_chroma2 + 10 * n_chroma, n_chroma) - n_chroma2
    wts = np.exp(-0.5 * (2 * D / np.tile(binwidthbins, (n_chroma, 1))) ** 2)
    if norm is not None:
        wts = _normalize(wts, norm, axis=0)
    if octwidth is not None:
        wts *= np.tile(np.exp(-0.5 * (((frqbins / n_chroma - ctroct) / octwidth) ** 2)), (n_chroma, 1))
    if base_c:
        wts = np.roll(wts, -3 * (n_chroma // 12), axis=0)
    return _readonly(np.ascontiguousarray(wts[:, : int(1 + n_fft / 2)], dtype=np.float32))


def chroma_filterbank(
    sr: float,
    n_fft: int,
    n_chroma: int = 12,
    tuning: float = 0.0,
    ctroct: float = 5.0,
    octwidth: float | None = 2.0,
    norm: float | None = 2.0,
    base_c: bool = True,
) -> np.ndarray:
    """Chroma filterbank, identical to :func:`librosa.filters.chroma`.

    Returns
    -------
    np.ndarray, shape (n_chroma, 1 + n_fft // 2), float32, read-only
        Gaussian bumps per pitch class, weighted by a Gaussian over octaves centred on ``ctroct``.
    """
    sr = _check_sr(sr)
    return _chroma_filterbank(
        sr,
        int(n_fft),
        int(n_chroma),
        float(tuning),
        float(ctroct),
        None if octwidth is None else float(octwidth),
        None if norm is None else float(norm),
        bool(base_c),
    )


def _normalize(x: np.ndarray, norm: float, axis: int) -> np.ndarray:
    """librosa.util.normalize with ``fill=None``: vectors below float32 tiny are left as they are."""
    mag = np.abs(x).astype(np.float64)
    if norm == np.inf:
        length = mag.max(axis=axis, keepdims=True)
    elif norm > 0:
        length = np.sum(mag**norm, axis=axis, keepdims=True) ** (1.0 / norm)
    else:
        raise FeatureError(f"unsupported norm {norm!r}")
    length[length < _FLOAT32_TINY] = 1.0
    return x / length


def _chroma_from_power(
    S: np.ndarray,
    sr: float,
    n_fft: int,
    *,
    norm: float | None,
    tuning: float | None,
    n_chroma: int,
    ctroct: float = 5.0,
    octwidth: float | None = 2.0,
    base_c: bool = True,
) -> np.ndarray:
    """Frame-major chroma ``(n_frames, n_chroma)`` from a frame-major power spectrogram."""
    if tuning is None:
        tuning = _estimate_tuning_power(S, sr, n_fft, n_chroma)
    fb = chroma_filterbank(sr, n_fft, n_chroma, tuning, ctroct, octwidth, 2.0, base_c)
    raw = S @ fb.T
    if norm is None:
        return raw
    return _normalize(raw, norm, axis=-1).astype(np.float32)


def chroma_stft(
    y: np.ndarray,
    sr: float,
    *,
    n_fft: int = 512,
    hop_length: int = 160,
    win_length: int | None = 400,
    window: WindowSpec = "hann",
    center: bool = True,
    pad_mode: str = "constant",
    norm: float | None = np.inf,
    tuning: float | None = None,
    n_chroma: int = 12,
    ctroct: float = 5.0,
    octwidth: float | None = 2.0,
    base_c: bool = True,
) -> np.ndarray:
    """Chromagram of the power spectrogram, as :func:`librosa.feature.chroma_stft`.

    With ``tuning=None`` the tuning is estimated from the same power spectrogram exactly as
    librosa does (:func:`estimate_tuning`); each frame is then normalised to unit ``norm``
    (max-norm by default).

    Returns
    -------
    np.ndarray, shape (n_chroma, n_frames), float32
        Pitch-class energy, C first (``base_c``), in [0, 1] per frame with the max-norm.
    """
    y = _as_signal(y)
    sr = _check_sr(sr)
    s = _stft_power_frames(
        y,
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=win_length,
        window=window,
        power=2.0,
        center=center,
        pad_mode=pad_mode,
    )
    c = _chroma_from_power(
        s,
        sr,
        n_fft,
        norm=norm,
        tuning=tuning,
        n_chroma=n_chroma,
        ctroct=ctroct,
        octwidth=octwidth,
        base_c=base_c,
    )
    return _to_features(c)
