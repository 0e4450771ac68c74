"""The DEEP-VOICE 26-feature set (Bird & Lotfi 2023), computed as the seed study did.

The DEEP-VOICE table (``DATASET-balanced.csv``) has one row per second of audio: the mean over the
second's frames of ``chroma_stft, rms, spectral_centroid, spectral_bandwidth, rolloff,
zero_crossing_rate`` and ``mfcc1 .. mfcc20``, each from librosa with its default parameters at
the audio's native sample rate (``n_fft=2048``, ``hop_length=512``, Hann window, centred frames
with zero padding, 128 mel bands, ``power_to_db`` with an 80 dB range, chroma with estimated
tuning; ZCR and RMS over 2048-sample frames). Each one-second chunk of samples is analysed on its
own, as if passed to librosa separately, so the centring pads, the dB range and the tuning
estimate are per chunk. ``mfcc1`` is librosa's coefficient 0.

This module reproduces those numbers without librosa (tests check agreement with the librosa
reference loop), sharing one STFT between all the spectral features of a chunk.
"""

from __future__ import annotations

import numpy as np

from voxguard.errors import FeatureError
from voxguard.features import spectral as sp

__all__ = ["DEEPVOICE_COLUMNS", "deepvoice_features"]

DEEPVOICE_COLUMNS: tuple[str, ...] = (
    "chroma_stft",
    "rms",
    "spectral_centroid",
    "spectral_bandwidth",
    "rolloff",
    "zero_crossing_rate",
    *(f"mfcc{i}" for i in range(1, 21)),
)

# librosa's defaults, which the seed study used.
_N_FFT = 2048
_HOP = 512
_N_MELS = 128
_N_MFCC = 20


def _chunk_features(chunks: np.ndarray, sr: float) -> np.ndarray:
    """Features of equally long chunks ``(n_chunks, n_samples)`` -> ``(n_chunks, 26)``."""
    window = sp._window("hann", _N_FFT)
    # One STFT per chunk (a loop over seconds, not frames), stacked (n_chunks, n_frames, n_bins).
    power = np.stack(
        [
            sp._power_frames(
                sp._frames(c, _N_FFT, _HOP, _N_FFT, center=True, pad_mode="constant"),
                window,
                _N_FFT,
                2.0,
            )
            for c in chunks
        ]
    )
    mag = np.sqrt(power)
    freq = sp.fft_frequencies(sr, _N_FFT)

    centroid = sp._centroid(mag, freq)
    bandwidth = sp._bandwidth(mag, freq, centroid, 2.0, True)
    rolloff = sp._rolloff(mag, freq, 0.85)

    n_chunks, n_frames, n_bins = power.shape
    # 2-D products: one BLAS call for all chunks rather than one per chunk.
    mel = (power.reshape(-1, n_bins) @ sp.mel_filterbank(sr, _N_FFT, _N_MELS).T).reshape(n_chunks, n_frames, -1)
    sp._db_inplace(mel, top_db=80.0, axis=(1, 2))  # librosa clips 80 dB below each chunk's peak
    mfcc = (mel.reshape(-1, _N_MELS) @ sp._dct_matrix(_N_MFCC, _N_MELS).T).reshape(n_chunks, n_frames, -1)

    # Tuning is estimated per chunk, as librosa.feature.chroma_stft(y=chunk) does.
    chroma = np.array(
        [sp._chroma_from_power(p, sr, _N_FFT, norm=np.inf, tuning=None, n_chroma=12).mean() for p in power]
    )
    rms = np.array([sp.rms(c, frame_length=_N_FFT, hop_length=_HOP).mean() for c in chunks])
    zcr = np.array([sp.zero_crossing_rate(c, frame_length=_N_FFT, hop_length=_HOP).mean() for c in chunks])

    out = np.empty((len(chunks), len(DEEPVOICE_COLUMNS)), dtype=np.float32)
    out[:, 0] = chroma
    out[:, 1] = rms
    out[:, 2] = centroid.mean(axis=-1)
    out[:, 3] = bandwidth.mean(axis=-1)
    out[:, 4] = rolloff.mean(axis=-1)
    out[:, 5] = zcr
    out[:, 6:] = mfcc.mean(axis=1)
    return out


def deepvoice_features(
    y: np.ndarray,
    sr: float,
    window_s: float = 1.0,
    *,
    min_window_s: float = 0.5,
) -> np.ndarray:
    """DEEP-VOICE features, one row per non-overlapping window of ``window_s`` seconds.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
        Mono signal at its native rate (the seed study did not resample).
    sr : float
        Sample rate in Hz.
    window_s : float
        Window length in seconds (1 s in DEEP-VOICE); ``round(window_s * sr)`` samples.
    min_window_s : float
        Shortest trailing partial window that still gives a row. The samples after the last full
        window form one more row, computed on those samples alone, if they last at least
        ``min_window_s``; otherwise they are dropped. A clip shorter than one window therefore
        gives a single row if it lasts at least ``min_window_s``.

    Returns
    -------
    np.ndarray, shape (n_windows, 26), float32
        Columns in the order of :data:`DEEPVOICE_COLUMNS`: chroma (0-1), RMS (amplitude units),
        centroid, bandwidth and roll-off (Hz), zero-crossing rate (per sample), MFCC 1-20 (dB).

    Raises
    ------
    FeatureError
        If the clip is shorter than ``min_window_s`` (no row at all) or the parameters are
        invalid.
    """
    y = sp._as_signal(y)
    sr = sp._check_sr(sr)
    if window_s <= 0 or not 0 < min_window_s <= window_s:
        raise FeatureError("need window_s > 0 and 0 < min_window_s <= window_s")
    win = int(round(window_s * sr))
    min_len = int(np.ceil(min_window_s * sr))
    n_full, rest = divmod(len(y), win)
    rows = []
    if n_full:
        rows.append(_chunk_features(y[: n_full * win].reshape(n_full, win), sr))
    if rest and rest >= min_len:
        rows.append(_chunk_features(y[n_full * win :][None, :], sr))
    if not rows:
        raise FeatureError(f"clip of {len(y) / sr:.3f} s is shorter than the {min_window_s:g} s minimum window")
    return np.concatenate(rows)
