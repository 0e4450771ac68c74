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
3. noise floor: noise shaped like the recording's room tone (the spectrum of its quietest
   frames) fills every 20-ms frame quieter than the group's highest floor up to it
   (:func:`fill_quiet_frames`, comfort noise); each fake's quietest frames are raised to the
   recording's frame levels at the same rank (:func:`match_quiet_levels`); the noise is then
   added to every clip whose floor is still below the group's until it matches
   (:func:`raise_noise_floor`); the ceiling is decided again on the noisier clips and levels
   are fitted again.

Two more steps apply to TTS readings only, before the group is matched (called from
:func:`voxguard.datasets.synth.paced_tts`): :func:`match_pauses` inserts silence where the
recording paused, and :func:`match_envelope` copies its slow (400-ms) level contour, since a
synthetic voice neither hesitates nor trails off as a speaker does.

All functions are pure ``(y, sr, ...) -> ndarray`` on float32 mono signals at one rate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from voxguard.audio.preprocess import integrated_loudness
from voxguard.audio.vad import frame_levels_db
from voxguard.datasets.audit import LEVEL_FRAME_S, long_term_spectrum, noise_floor_dbfs

__all__ = [
    "fill_quiet_frames",
    "find_pauses",
    "fit_level",
    "limit_peaks",
    "match_envelope",
    "match_group",
    "match_pauses",
    "match_quiet_levels",
    "match_spectrum",
    "quiet_spectrum",
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


def quiet_spectrum(y: np.ndarray, sr: int, *, share: float = 0.2, min_frames: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Average power spectrum of the quietest ``share`` of a clip's 32-ms frames: its room tone.

    The frames are those of :func:`voxguard.datasets.audit.long_term_spectrum` (periodic Hann,
    50 % overlap); at least ``min_frames`` of them are averaged (all of a clip with fewer).

    Returns
    -------
    (freqs, psd) : (np.ndarray, np.ndarray), shape (n_fft // 2 + 1,), float64
    """
    n_fft = 1 << math.ceil(math.log2(max(sr * 0.032, 16)))
    x = np.asarray(y, dtype=np.float32)
    if len(x) < n_fft:
        x = np.pad(x, (0, n_fft - len(x)))
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[:: n_fft // 2]
    energy = np.einsum("ij,ij->i", frames, frames, dtype=np.float64)
    keep = min(len(frames), max(min_frames, int(round(share * len(frames)))))
    quiet = np.sort(np.argpartition(energy, keep - 1)[:keep])
    window = np.hanning(n_fft + 1)[:-1].astype(np.float32)
    spec = np.fft.rfft(frames[quiet] * window, axis=1)
    psd = np.mean(spec.real**2 + spec.imag**2, axis=0, dtype=np.float64)
    return np.fft.rfftfreq(n_fft, 1.0 / sr), psd


def shaped_noise(
    reference: np.ndarray,
    n: int,
    sr: int,
    *,
    seed: int,
    smooth_hz: float = 250.0,
    quiet_share: float | None = None,
) -> np.ndarray:
    """Seeded Gaussian noise of unit RMS with the (smoothed) spectrum of ``reference``.

    ``quiet_share=None``: the long-term spectrum; adding the noise to a clip with that spectrum
    raises its noise floor without changing its spectral balance (roll-off, cut-off). A share
    (e.g. 0.2): the spectrum of the reference's quietest frames (:func:`quiet_spectrum`), i.e. its
    room tone, which is what fills a recording's pauses. Speech-shaped noise in a pause looks
    like speech to a voice-activity detector; room tone does not.

    Returns
    -------
    np.ndarray, shape (n,), float32
    """
    rng = np.random.default_rng([seed % 2**32, 0x666C])
    white = rng.standard_normal(n).astype(np.float32)
    if quiet_share is None:
        freqs, psd = long_term_spectrum(reference, sr)
    else:
        freqs, psd = quiet_spectrum(reference, sr, share=quiet_share)
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


def _frame_powers(y: np.ndarray, frame: int) -> np.ndarray:
    n_frames = len(y) // frame
    return np.mean(np.square(y[: n_frames * frame].reshape(n_frames, frame), dtype=np.float64), axis=1)


def _fill_frames(y: np.ndarray, noise: np.ndarray, sr: int, target_power: np.ndarray | float) -> np.ndarray:
    """Add ``noise`` with a per-frame gain so that each 20-ms frame under ``target_power`` reaches it."""
    frame = max(1, int(LEVEL_FRAME_S * sr))
    power = _frame_powers(y, frame)
    if len(power) == 0:
        return y.astype(np.float32)
    noise_power = _frame_powers(noise, frame)
    missing = np.maximum(target_power - power, 0.0)
    gain = np.sqrt(missing / np.maximum(noise_power, 1e-30))
    centres = (np.arange(len(power)) + 0.5) * frame
    envelope = np.interp(np.arange(len(y)), centres, gain).astype(np.float32)
    return (y + envelope * noise[: len(y)]).astype(np.float32)


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
    return _fill_frames(y, noise, sr, 10.0 ** (floor_dbfs / 10.0))


def match_quiet_levels(
    y: np.ndarray, noise: np.ndarray, reference: np.ndarray, sr: int, *, share: float = 0.3
) -> np.ndarray:
    """Raise the quietest ``share`` of ``y``'s 20-ms frames to the levels of ``reference``'s at the same rank.

    A flat floor (:func:`fill_quiet_frames`) leaves a voice that drops to silence between sounds
    (formant synthesis closes its stops with digital silence) with many frames *at* the floor,
    where a recording's quiet frames spread above it; the share of samples at exactly zero then
    told them apart. Here the frame at quantile q of ``y``'s levels (for q up to ``share``) is
    filled with comfort noise up to the quantile q of the reference's levels, so the two quiet
    tails end alike. Frames are only ever raised.

    Returns
    -------
    np.ndarray, shape (n,), float32
    """
    frame = max(1, int(LEVEL_FRAME_S * sr))
    power, ref_power = _frame_powers(y, frame), _frame_powers(np.asarray(reference, dtype=np.float32), frame)
    if len(power) == 0 or len(ref_power) == 0:
        return y.astype(np.float32)
    rank = np.empty(len(power))
    rank[np.argsort(power, kind="stable")] = (np.arange(len(power)) + 0.5) / len(power)
    target = np.where(rank <= share, np.quantile(ref_power, np.minimum(rank, 1.0)), 0.0)
    return _fill_frames(y, noise, sr, target)


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
    noise_share: float | None = 0.2,
    match_quiet: bool = True,
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
    noise_share : float or None
        The added noise has the spectrum of the reference's quietest ``noise_share`` of frames
        (its room tone, :func:`quiet_spectrum`); ``None``: its long-term (speech) spectrum.
    match_quiet : bool
        Also raise each fake's quiet frames to the reference's levels at the same rank
        (:func:`match_quiet_levels`), after the flat floor.

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
    noises = [shaped_noise(ref, len(c), sr, seed=s, quiet_share=noise_share) for c, s in zip(clips, seeds, strict=True)]
    # Comfort noise first; it spills a little into the frames next to a pause, which can lift a
    # floor above the target, so the common floor is only decided after it.
    target_floor = max(noise_floor_dbfs(c, sr) for c in clips)
    clips = [fill_quiet_frames(c, n, sr, target_floor) for c, n in zip(clips, noises, strict=True)]
    if match_quiet:
        # Against the reference as it is now (levelled and filled), not as it came in.
        levelled = clips[reference]
        clips = [
            c if i == reference else match_quiet_levels(c, n, levelled, sr)
            for i, (c, n) in enumerate(zip(clips, noises, strict=True))
        ]
    target_floor = max(noise_floor_dbfs(c, sr) for c in clips)
    clips = [raise_noise_floor(c, n, sr, target_floor) for c, n in zip(clips, noises, strict=True)]
    # The added noise makes a clip louder, so its natural peak at the target loudness falls: the
    # ceiling is decided again, or the clips that got most noise would end under it.
    ceiling = min([ceiling, *(natural_peak_dbfs(c, sr, target_lufs) for c in clips)])
    return [fit_level(c, sr, target_lufs=target_lufs, ceiling_dbfs=ceiling) for c in clips]


# ----------------------------------------------------------------------------------------------
# pauses


_PAUSE_FRAME_S = 0.01


def _pause_threshold_db(levels: np.ndarray, depth_db: float) -> float:
    """Level under which a 10-ms frame counts as pause: ``depth_db`` under the loud frames, and at
    least 6 dB over the noise floor (a noisy recording's pauses are at its floor, not at -100 dB)."""
    loud, floor = float(np.percentile(levels, 95)), float(np.percentile(levels, 5))
    return min(loud - 6.0, max(floor + 6.0, loud - depth_db))


def _quiet_runs(quiet: np.ndarray) -> np.ndarray:
    """(start, stop) frame indices of the runs of True in ``quiet``, shape (k, 2)."""
    edges = np.diff(np.concatenate([[0], quiet.astype(np.int8), [0]]))
    return np.stack([np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)], axis=1)


def find_pauses(y: np.ndarray, sr: int, *, min_pause_s: float = 0.15, depth_db: float = 25.0) -> np.ndarray:
    """Pauses inside the speech of ``y``: runs of quiet 10-ms frames of at least ``min_pause_s``.

    A frame is quiet ``depth_db`` under the clip's loud frames (95th percentile of frame levels)
    or within 6 dB of its noise floor (5th percentile), whichever is higher. Runs that touch the
    start or the end of the clip (leading and trailing silence) are not pauses.

    Returns
    -------
    np.ndarray, shape (n_pauses, 2), int64
        Start and stop of each pause in samples.
    """
    frame = max(1, int(round(_PAUSE_FRAME_S * sr)))
    levels = frame_levels_db(np.asarray(y, dtype=np.float32), frame)
    if len(levels) < 3:
        return np.zeros((0, 2), dtype=np.int64)
    runs = _quiet_runs(levels < _pause_threshold_db(levels, depth_db))
    inside = (runs[:, 0] > 0) & (runs[:, 1] < len(levels))
    long_enough = (runs[:, 1] - runs[:, 0]) * frame >= min_pause_s * sr
    return (runs[inside & long_enough] * frame).astype(np.int64)


def match_pauses(
    y: np.ndarray,
    reference: np.ndarray,
    sr: int,
    *,
    min_pause_s: float = 0.15,
    search_s: float = 0.4,
    fade_s: float = 0.005,
) -> np.ndarray:
    """Give ``y`` (a TTS reading) the pauses of ``reference`` (the recording it reads).

    Formant and concatenative voices pause only at punctuation, and briefly, while people pause
    where they breathe or hesitate; at equal loudness such a reading has a higher RMS level and
    no quiet 400-ms blocks, so the pauses alone told it from the recording. For every pause of
    the reference (:func:`find_pauses`), at the same relative position in ``y`` (within
    ``search_s``, at its quietest 10-ms frame, or inside a pause it already has there) silence is
    inserted until ``y`` pauses as long. The silence is digital zeros with ``fade_s`` fades on
    both sides; the group's comfort noise fills it later (:func:`match_group`).

    Returns
    -------
    np.ndarray, shape (n + inserted,), float32
    """
    y = np.asarray(y, dtype=np.float32)
    pauses = find_pauses(reference, sr, min_pause_s=min_pause_s)
    frame = max(1, int(round(_PAUSE_FRAME_S * sr)))
    levels = frame_levels_db(y, frame)
    if not len(pauses) or len(levels) < 3 or len(reference) == 0:
        return y
    quiet = levels < _pause_threshold_db(levels, 25.0)
    runs = _quiet_runs(quiet)
    run_of = np.full(len(levels), -1)
    for k, (a, b) in enumerate(runs):
        run_of[a:b] = k
    reach = max(1, int(round(search_s / _PAUSE_FRAME_S)))
    cuts: list[tuple[int, int]] = []  # (sample position in y, samples of silence to insert)
    last_frame = -1
    for start, stop in pauses:
        centre = int((start + stop) / 2 / len(reference) * len(levels))
        lo, hi = max(last_frame + 1, centre - reach), min(len(levels) - 1, centre + reach)
        if lo >= hi:
            continue
        at = lo + int(np.argmin(levels[lo:hi]))
        have = 0
        if run_of[at] >= 0:  # inside a pause of its own: insert in its middle, only what is missing
            a, b = runs[run_of[at]]
            have, at = (b - a) * frame, (a + b) // 2
        if at <= last_frame:  # the previous pause already went into this one of y's
            continue
        missing = int(stop - start) - have
        if missing > 0:
            cuts.append((at * frame + frame // 2, missing))
        last_frame = at
    if not cuts:
        return y
    fade = max(1, int(round(fade_s * sr)))
    fade_out = np.linspace(1.0, 0.0, fade, dtype=np.float32)
    bounds = [0, *(at for at, _ in cuts), len(y)]
    pieces = []
    for k in range(len(bounds) - 1):
        piece = y[bounds[k] : bounds[k + 1]].copy()
        m = min(fade, len(piece))
        if k > 0:
            piece[:m] *= fade_out[::-1][:m]
        if k < len(cuts):
            piece[len(piece) - m :] *= fade_out[fade - m :]
            pieces += [piece, np.zeros(cuts[k][1], dtype=np.float32)]
        else:
            pieces.append(piece)
    return np.concatenate(pieces)


def _block_levels_db(y: np.ndarray, block: int, hop: int) -> tuple[np.ndarray, np.ndarray]:
    """Levels (dB) of ``block``-sample windows every ``hop`` samples, and their centres in samples."""
    x = np.asarray(y, dtype=np.float32)
    if len(x) < block:
        x = np.pad(x, (0, block - len(x)))
    sq = np.concatenate([[0.0], np.cumsum(np.square(x, dtype=np.float64))])
    starts = np.arange(0, len(x) - block + 1, hop)
    power = (sq[starts + block] - sq[starts]) / block
    return 10.0 * np.log10(power + 1e-20), starts + block / 2


def match_envelope(
    y: np.ndarray,
    reference: np.ndarray,
    sr: int,
    *,
    block_s: float = 0.4,
    hop_s: float = 0.1,
    max_cut_db: float = 15.0,
    max_boost_db: float = 6.0,
) -> np.ndarray:
    """Give ``y`` the slow level contour of ``reference``, stretched to ``y``'s length.

    People get quieter towards the end of an utterance and between phrases; a TTS voice keeps
    its level to the last syllable. Measured over the 400-ms blocks of gated loudness, the
    recording then has quiet blocks where the reading has none, so RMS level against loudness
    told the two apart. The gain in each block is the recording's level at the same relative
    position minus the reading's (both relative to their mean block level), at most
    ``max_cut_db`` down and ``max_boost_db`` up, interpolated smoothly between block centres.
    Blocks where the reading itself is a pause (20 dB under its mean) keep their level.

    Returns
    -------
    np.ndarray, shape (n,), float32
    """
    y = np.asarray(y, dtype=np.float32)
    block, hop = max(1, int(round(block_s * sr))), max(1, int(round(hop_s * sr)))
    if len(y) < block or len(reference) < block:
        return y
    own, centres = _block_levels_db(y, block, hop)
    ref, ref_centres = _block_levels_db(reference, block, hop)
    if ref.max() < -120.0 or own.max() < -120.0:  # digital silence has no contour to copy or change
        return y
    target = np.interp(centres / len(y), ref_centres / len(reference), ref - ref.mean())
    gain_db = np.clip(target - (own - own.mean()), -max_cut_db, max_boost_db)
    gain_db[own < own.mean() - 20.0] = 0.0
    curve = np.interp(np.arange(len(y)), centres, gain_db)
    return (y * 10.0 ** (curve / 20.0)).astype(np.float32)
