"""Group matching for the synthetic corpus: a recording and its fakes end with the same levels and spectrum.

The corpus audit (:mod:`voxguard.datasets.audit`) trains a classifier on clip properties that say
nothing about the voice: peak level, noise floor, share of zero samples, spectral roll-off, ...
After a fixed post-processing chain these still differ between a recording and its vocoder copy,
because the generators change them (pulse excitation is peakier, a vocoder resynthesises the
room noise at its own level, formant synthesis has its own spectral tilt). A corpus whose fakes
differ from their originals in such properties teaches detectors to look at them.

:func:`match_group` removes the differences *within each group* (the real clip and the fakes made
from it), so that the two classes have the same distribution of every matched property whatever
the generator did:

1. the long-term spectrum of each fake is equalised to that of the recording
   (:func:`match_spectrum`, a smooth zero-phase EQ): roll-off and cut-off are then the group's;
2. loudness and peak level (:func:`fit_level`): every clip at the target loudness with its peaks
   at the group's ceiling, the lowest natural peak of the group (at most ``ceiling_dbfs``), so the
   peakier clips are limited down to the others;
3. noise floor: noise shaped like the recording's spectrum fills every 20-ms frame quieter than
   the group's highest floor up to it (:func:`fill_quiet_frames`, comfort noise) and is then
   added to every clip whose floor is still below it until it matches (:func:`raise_noise_floor`);
   levels are fitted again.

All functions are pure ``(y, sr, ...) -> ndarray`` on float32 mono signals at one rate.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from voxguard.audio.preprocess import integrated_loudness
from voxguard.datasets.audit import LEVEL_FRAME_S, long_term_spectrum, noise_floor_dbfs

__all__ = [
    "fill_quiet_frames",
    "fit_level",
    "limit_peaks",
    "match_group",
    "match_spectrum",
    "raise_noise_floor",
    "shaped_noise",
]


def limit_peaks(y: np.ndarray, sr: int, ceiling_dbfs: float, *, hold_ms: float = 5.0) -> np.ndarray:
    """A look-ahead peak limiter: no sample above ``ceiling_dbfs``, gain changes smoothed over ``hold_ms``.

    The gain needed at each sample (ceiling / the peak within ``hold_ms``) is held with a minimum
    filter and then smoothed with a moving average of the same width, so it falls before a peak
    and recovers after it without steps, and the largest peak lands exactly on the ceiling. No
    hard clip: clipping an asymmetric waveform adds a DC offset (which the corpus audit then finds).

    Parameters
    ----------
    y : np.ndarray, shape (n,)
        Mono signal.
    sr : int
        Its rate in Hz.
    ceiling_dbfs : float
        The highest sample level allowed (dBFS).
    hold_ms : float
        Half-width of the look-ahead and of the gain's release (ms).

    Returns
    -------
    np.ndarray, shape (n,), float32
    """
    from scipy import ndimage

    ceiling = np.float32(10.0 ** (ceiling_dbfs / 20.0))
    width = max(1, int(round(hold_ms * sr / 1000.0)))
    envelope = ndimage.maximum_filter1d(np.abs(y).astype(np.float32), size=2 * width + 1)
    gain = np.minimum(np.float32(1.0), ceiling / np.maximum(envelope, np.float32(1e-9)))
    gain = ndimage.uniform_filter1d(ndimage.minimum_filter1d(gain, size=2 * width + 1), size=width + 1)
    return (y * gain).astype(np.float32)


def _smooth_log_spectrum(psd: np.ndarray, bins: int) -> np.ndarray:
    """10 log10 of a power spectrum smoothed over ``bins`` bins (edges reflected)."""
    padded = np.pad(psd, bins, mode="reflect")
    smooth = np.convolve(padded, np.ones(bins) / bins, mode="same")[bins:-bins]
    return 10.0 * np.log10(np.maximum(smooth, 1e-20))


def _apply_gain_curve(y: np.ndarray, sr: int, freqs: np.ndarray, gain_db: np.ndarray) -> np.ndarray:
    """Zero-phase filtering of the whole clip by a gain curve given on ``freqs`` (dB)."""
    n = len(y)
    spectrum = np.fft.rfft(y.astype(np.float64))
    curve = np.interp(np.fft.rfftfreq(n, 1.0 / sr), freqs, gain_db)
    spectrum *= 10.0 ** (curve / 20.0)
    return np.fft.irfft(spectrum, n=n).astype(np.float32)


def match_spectrum(
    y: np.ndarray,
    reference: np.ndarray,
    sr: int,
    *,
    smooth_hz: float = 250.0,
    max_gain_db: float = 20.0,
) -> np.ndarray:
    """Equalise ``y`` so that its long-term spectrum follows that of ``reference``.

    The gain curve is the ratio of the two long-term spectra (:func:`long_term_spectrum`, about
    31 Hz resolution at 16 kHz), each smoothed over ``smooth_hz`` so that harmonics and formants
    of one utterance are not copied onto the other, limited to ``±max_gain_db``, and applied
    without phase change over the whole clip. Where the reference has no energy (under the
    quietest level ``max_gain_db`` allows) the gain is the most negative allowed.

    Parameters
    ----------
    y : np.ndarray, shape (n,)
        The clip to equalise.
    reference : np.ndarray, shape (m,)
        The clip whose spectral balance ``y`` should get (any length).
    sr : int
        Rate of both, in Hz.
    smooth_hz : float
        Width of the moving average over frequency (Hz).
    max_gain_db : float
        Largest boost or cut (dB).

    Returns
    -------
    np.ndarray, shape (n,), float32
    """
    freqs, psd_y = long_term_spectrum(y, sr)
    _, psd_ref = long_term_spectrum(reference, sr)
    bins = max(1, int(round(smooth_hz / (freqs[1] - freqs[0]))))
    gain_db = _smooth_log_spectrum(psd_ref, bins) - _smooth_log_spectrum(psd_y, bins)  # dB of power = dB of gain
    return _apply_gain_curve(y, sr, freqs, np.clip(gain_db, -max_gain_db, max_gain_db))


def shaped_noise(reference: np.ndarray, n: int, sr: int, *, seed: int, smooth_hz: float = 250.0) -> np.ndarray:
    """Seeded Gaussian noise of unit RMS with the (smoothed) long-term spectrum of ``reference``.

    Adding it to a clip with that spectrum raises its noise floor without changing its spectral
    balance (roll-off, cut-off).

    Returns
    -------
    np.ndarray, shape (n,), float32
    """
    rng = np.random.default_rng([seed % 2**32, 0x666C])
    white = rng.standard_normal(n).astype(np.float32)
    freqs, psd = long_term_spectrum(reference, sr)
    bins = max(1, int(round(smooth_hz / (freqs[1] - freqs[0]))))
    level = _smooth_log_spectrum(psd, bins)
    noise = _apply_gain_curve(white, sr, freqs, level - level.max())
    rms = float(np.sqrt(np.mean(np.square(noise, dtype=np.float64)))) or 1.0
    return (noise / rms).astype(np.float32)


def raise_noise_floor(
    y: np.ndarray, noise: np.ndarray, sr: int, target_dbfs: float, *, tolerance_db: float = 0.01
) -> np.ndarray:
    """Add ``noise`` (any level) scaled so that the noise floor of the sum is ``target_dbfs``.

    The floor is the audit's (:func:`voxguard.datasets.audit.noise_floor_dbfs`); it grows
    monotonically with the noise level, which is found by bisection in dB. A clip whose floor is
    already at or above the target is returned unchanged.

    Returns
    -------
    np.ndarray, shape (n,), float32
    """
    if not noise_floor_dbfs(y, sr) < target_dbfs - tolerance_db:
        return y.astype(np.float32)
    noise_rms = float(np.sqrt(np.mean(np.square(noise, dtype=np.float64))))
    if noise_rms == 0.0:
        return y.astype(np.float32)
    unit = (noise / noise_rms).astype(np.float32)
    # The noise level in dB RMS: the floor of noise alone is a little under its RMS, so
    # target + 10 dB is always enough, and 40 dB below the target never is too much.
    low, high = target_dbfs - 40.0, target_dbfs + 10.0
    for _ in range(30):
        mid = 0.5 * (low + high)
        floor = noise_floor_dbfs(y + np.float32(10.0 ** (mid / 20.0)) * unit, sr)
        if abs(floor - target_dbfs) <= tolerance_db:
            break
        low, high = (mid, high) if floor < target_dbfs else (low, mid)
    return (y + np.float32(10.0 ** (mid / 20.0)) * unit).astype(np.float32)


def fill_quiet_frames(y: np.ndarray, noise: np.ndarray, sr: int, floor_dbfs: float) -> np.ndarray:
    """Add ``noise`` where ``y`` is quieter than ``floor_dbfs``, so that those 20-ms frames reach the floor.

    Comfort noise, as telephone systems add it: the noise gain is set per frame (the power that
    frame lacks) and interpolated linearly between frame centres, so it follows the signal
    smoothly. Frames at or above the floor get none. Used before :func:`raise_noise_floor`: a
    clip whose quietest frames sit far below its noise floor (a vocoder's digital pauses) has
    more samples at exactly zero than one whose pauses are at the floor.

    Returns
    -------
    np.ndarray, shape (n,), float32
    """
    frame = max(1, int(LEVEL_FRAME_S * sr))
    n_frames = len(y) // frame
    if n_frames == 0:
        return y.astype(np.float32)
    power = np.mean(np.square(y[: n_frames * frame].reshape(n_frames, frame), dtype=np.float64), axis=1)
    noise_power = np.mean(np.square(noise[: n_frames * frame].reshape(n_frames, frame), dtype=np.float64), axis=1)
    missing = np.maximum(10.0 ** (floor_dbfs / 10.0) - power, 0.0)
    gain = np.sqrt(missing / np.maximum(noise_power, 1e-30))
    centres = (np.arange(n_frames) + 0.5) * frame
    envelope = np.interp(np.arange(len(y)), centres, gain).astype(np.float32)
    return (y + envelope * noise[: len(y)]).astype(np.float32)


def _loudness(y: np.ndarray, sr: int) -> float:
    lufs = integrated_loudness(y, sr)
    if not np.isfinite(lufs):
        raise ValueError("loudness cannot be measured (under 0.4 s, or silent)")
    return lufs


def natural_peak_dbfs(y: np.ndarray, sr: int, target_lufs: float) -> float:
    """Peak level of ``y`` once scaled to ``target_lufs`` (dBFS), i.e. its crest over loudness.

    Raises
    ------
    ValueError
        The loudness of ``y`` cannot be measured (under 0.4 s, or silent).
    """
    peak = float(np.max(np.abs(y)))
    return 20.0 * np.log10(max(peak, 1e-12)) + target_lufs - _loudness(y, sr)


def fit_level(
    y: np.ndarray, sr: int, *, target_lufs: float, ceiling_dbfs: float, tolerance_db: float = 1e-5
) -> np.ndarray:
    """Scale and limit ``y`` so that its loudness is ``target_lufs`` and no peak exceeds ``ceiling_dbfs``.

    Limiting lowers the loudness, so the gain in front of the limiter is raised until the output's
    loudness meets the target. The output loudness grows monotonically with that gain but ever
    more slowly as the limiter works harder, so the gain is bracketed and then found by the
    Illinois variant of regula falsi (a few limiter passes). The largest peak lands on the ceiling
    whenever the clip needed limiting.

    Returns
    -------
    np.ndarray, shape (n,), float32
        At the target loudness within ``tolerance_db``, or as close as 30 dB of extra gain gets
        (a clip made of nothing but peaks cannot be made louder under a low ceiling).

    Raises
    ------
    ValueError
        The loudness of ``y`` cannot be measured (under 0.4 s, or silent).
    """

    def attempt(gain_db: float) -> tuple[np.ndarray, float]:
        out = limit_peaks(y * np.float32(10.0 ** (gain_db / 20.0)), sr, ceiling_dbfs)
        return out, integrated_loudness(out, sr) - target_lufs

    low = target_lufs - _loudness(y, sr)
    out, f_low = attempt(low)
    if f_low >= -tolerance_db:  # no limiting needed (or it cost nothing)
        return out
    high, f_high = low, f_low
    while f_high < 0.0:  # the limiter turns 1 dB of gain into at most 1 dB of loudness: step by the error
        if high - low > 30.0:
            return out
        high = high + max(-f_high, 0.5)
        out, f_high = attempt(high)
    side = 0
    for _ in range(40):
        if abs(f_high) <= tolerance_db:
            return out
        mid = high - f_high * (high - low) / (f_high - f_low)
        out, f_mid = attempt(mid)
        if abs(f_mid) <= tolerance_db:
            return out
        if f_mid > 0.0:
            high, f_high = mid, f_mid
            if side == 1:
                f_low /= 2.0
            side = 1
        else:
            low, f_low = mid, f_mid
            if side == -1:
                f_high /= 2.0
            side = -1
    return out


def match_group(
    signals: Sequence[np.ndarray],
    sr: int,
    *,
    seeds: Sequence[int],
    reference: int = 0,
    target_lufs: float = -23.0,
    ceiling_dbfs: float = -9.0,
    match_spectra: bool = True,
) -> list[np.ndarray]:
    """Match spectrum, loudness, peak level and noise floor of a group's clips (see the module docstring).

    Parameters
    ----------
    signals : sequence of np.ndarray, each shape (n_i,)
        The group: the real recording and the fakes made from it, after the common chain.
    sr : int
        Their rate in Hz.
    seeds : sequence of int
        One seed per clip (its added noise).
    reference : int
        Index of the recording whose spectrum the others take.
    target_lufs : float
        Integrated loudness of every output (LUFS).
    ceiling_dbfs : float
        Highest peak level allowed; the group's ceiling is the lowest natural peak of its clips
        at ``target_lufs`` when that is lower.
    match_spectra : bool
        Equalise the fakes' long-term spectra to the reference's (step 1).

    Returns
    -------
    list of np.ndarray, float32, the same lengths as ``signals``
    """
    if len(seeds) != len(signals):
        raise ValueError(f"{len(signals)} signals but {len(seeds)} seeds")
    ref = np.asarray(signals[reference], dtype=np.float32)
    clips = [np.asarray(s, dtype=np.float32) for s in signals]
    if match_spectra:
        clips = [c if i == reference else match_spectrum(c, ref, sr) for i, c in enumerate(clips)]
    ceiling = min([ceiling_dbfs, *(natural_peak_dbfs(c, sr, target_lufs) for c in clips)])
    clips = [fit_level(c, sr, target_lufs=target_lufs, ceiling_dbfs=ceiling) for c in clips]
    noises = [shaped_noise(ref, len(c), sr, seed=seed) for c, seed in zip(clips, seeds, strict=True)]
    # Comfort noise first; it spills a little into the frames next to a pause, which can lift a
    # floor above the target, so the common floor is only decided after it.
    target_floor = max(noise_floor_dbfs(c, sr) for c in clips)
    clips = [fill_quiet_frames(c, n, sr, target_floor) for c, n in zip(clips, noises, strict=True)]
    target_floor = max(noise_floor_dbfs(c, sr) for c in clips)
    out = []
    for c, noise in zip(clips, noises, strict=True):
        c = raise_noise_floor(c, noise, sr, target_floor)
        out.append(fit_level(c, sr, target_lufs=target_lufs, ceiling_dbfs=ceiling))
    return out
