"""Whether a recording really has the band above 8 kHz (the wide-band models' gate).

A file's nominal rate says little: a 16-kHz recording saved at 44.1 kHz, or a low-bit-rate codec,
leaves the top band empty. What the wide-band views need is measured instead: the power between
8 and 9.8 kHz relative to the whole spectrum, over the loud frames.

Measured on DEV (docs/results.md, "Wide-band companion"): clips resampled up from 8 or 16 kHz lie at
-99 dB or lower; lossless wide-band speech, real or synthetic, at -10 to -45 dB. The gate,
:data:`MIN_TOP_BAND_DB`, sits between the two.
"""

from __future__ import annotations

import numpy as np
import scipy.fft

#: The band the wide-band views read (Hz); equals :data:`voxguard.features.segmental.WIDE_BAND_HZ`.
TOP_BAND_HZ = (8_000.0, 9_800.0)
#: A recording "has the band" when its top band is at most this far below its total power (dB).
MIN_TOP_BAND_DB = -60.0
#: Frames within this many dB of the loud frames (95th percentile) count.
_LOUD_RANGE_DB = 30.0
_FRAME_S = 0.046  # about 1024 samples at 22.05 kHz; frames do not overlap (a cheap estimate)
#: At most this many frames are analysed, evenly spread over the recording (about 14 s of a long
#: one): a level ratio over the loud frames needs no more, and the gate stays cheap.
_MAX_FRAMES = 300


def holds_top_band(sr: int, band_hz: tuple[float, float] = TOP_BAND_HZ) -> bool:
    """Whether a signal at ``sr`` Hz can hold ``band_hz`` at all (its Nyquist frequency is above it)."""
    return sr > 2 * band_hz[1]


def top_band_db(y: np.ndarray, sr: int, band_hz: tuple[float, float] = TOP_BAND_HZ) -> float:
    """Power in ``band_hz`` relative to the total power of the loud frames, in dB.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
        Mono signal.
    sr : int
        Its rate (Hz); must be above twice ``band_hz[1]``.
    band_hz : (float, float)

    Returns
    -------
    float
        ``10 log10(P_band / P_total)`` (``-inf`` for silence or a signal shorter than one frame).
    """
    if not holds_top_band(sr, band_hz):
        raise ValueError(f"a {sr}-Hz signal has no {band_hz[0]:.0f}-{band_hz[1]:.0f} Hz band")
    n = 1 << max(0, round(_FRAME_S * sr) - 1).bit_length()
    count = len(y) // n
    if count == 0:
        return float("-inf")
    frames = np.asarray(y[: count * n], dtype=np.float32).reshape(count, n)
    if count > _MAX_FRAMES:
        frames = frames[np.linspace(0, count - 1, _MAX_FRAMES).round().astype(np.int64)]
    frames = frames * np.hanning(n).astype(np.float32)
    power = np.abs(scipy.fft.rfft(frames, axis=1)) ** 2
    total = power.sum(axis=1)
    if not total.any():
        return float("-inf")
    loud = total >= np.percentile(total, 95) * 10.0 ** (-_LOUD_RANGE_DB / 10)
    freqs = np.fft.rfftfreq(n, 1 / sr)
    in_band = (freqs >= band_hz[0]) & (freqs <= band_hz[1])
    band = power[loud][:, in_band].sum(axis=1).mean()
    return float(10.0 * np.log10((band + 1e-30) / (total[loud].mean() + 1e-30)))


def has_top_band(y: np.ndarray, sr: int, min_db: float = MIN_TOP_BAND_DB) -> bool:
    """Whether ``y`` carries real content in :data:`TOP_BAND_HZ` (see :func:`top_band_db`).

    ``False`` for any signal at or below 19.6 kHz, which cannot hold the band.
    """
    return holds_top_band(sr) and top_band_db(y, sr) >= min_db
