"""Group matching of the synthetic corpus: each property the audit measures ends equal within a group."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from signals import speechlike
from voxguard.audio.preprocess import integrated_loudness
from voxguard.datasets.audit import _bandwidths, long_term_spectrum, noise_floor_dbfs
from voxguard.datasets.synth_match import (
    fill_quiet_frames,
    fit_level,
    limit_peaks,
    match_envelope,
    match_group,
    match_quiet_levels,
    match_spectrum,
    natural_peak_dbfs,
    quiet_spectrum,
    raise_noise_floor,
    shaped_noise,
)

SR = 16_000


def _peak_db(y: np.ndarray) -> float:
    return float(20 * np.log10(np.max(np.abs(y))))


def _rolloff(y: np.ndarray) -> float:
    return _bandwidths(*long_term_spectrum(y, SR))[0]


def _voice(seed: int, *, pulses: bool = False, tilt_hz: float | None = None, noise_db: float = -70.0) -> np.ndarray:
    """A speech-like clip with 0.3 s of near-silence on each side; optionally peakier or darker."""
    y = speechlike(sr=SR, duration=1.5, seed=seed)
    if pulses:  # sharp transients every 50 ms: about the same loudness, higher peaks
        y = y + np.float32(2.0 * np.abs(y).max()) * (np.arange(len(y)) % 800 == 0).astype(np.float32)
    if tilt_hz is not None:
        sos = signal.butter(2, tilt_hz, fs=SR, output="sos")
        y = signal.sosfilt(sos, y).astype(np.float32)
    pad = np.zeros(int(0.3 * SR), np.float32)
    y = np.concatenate([pad, y / np.abs(y).max() * np.float32(0.3), pad])
    rng = np.random.default_rng(seed + 100)
    return (y + np.float32(10 ** (noise_db / 20)) * rng.standard_normal(len(y)).astype(np.float32)).astype(np.float32)


def test_limiter_puts_the_largest_peak_on_the_ceiling() -> None:
    y = _voice(1, pulses=True)
    out = limit_peaks(y, SR, -12.0)
    assert abs(_peak_db(out) + 12.0) < 1e-3
    quiet = limit_peaks(y * np.float32(0.01), SR, -12.0)  # nothing above the ceiling: untouched
    np.testing.assert_array_equal(quiet, y * np.float32(0.01))


def test_fit_level_meets_loudness_and_ceiling_together() -> None:
    y = _voice(2, pulses=True)
    natural = natural_peak_dbfs(y, SR, -23.0)
    ceiling = natural - 4.0  # 4 dB of limiting: loudness drops unless the gain makes up for it
    out = fit_level(y, SR, target_lufs=-23.0, ceiling_dbfs=ceiling)
    assert abs(integrated_loudness(out, SR) + 23.0) < 0.01
    assert abs(_peak_db(out) - ceiling) < 0.01
    plain = fit_level(y, SR, target_lufs=-23.0, ceiling_dbfs=natural + 3.0)  # no limiting needed
    assert abs(_peak_db(plain) - natural) < 0.01


def test_fit_level_gives_up_within_the_ceiling_when_the_target_is_out_of_reach() -> None:
    # A pulse every 10 ms keeps a 5 ms limiter working all the time: no gain makes it louder.
    y = (np.arange(SR) % 160 == 0).astype(np.float32) * np.float32(0.5)
    out = fit_level(y, SR, target_lufs=-10.0, ceiling_dbfs=-20.0)
    assert _peak_db(out) <= -20.0 + 1e-3 and integrated_loudness(out, SR) < -10.0


def test_match_spectrum_moves_the_roll_off_to_the_reference() -> None:
    bright, dark = _voice(3), _voice(4, tilt_hz=1_500.0)
    before = abs(_rolloff(dark) - _rolloff(bright))
    after = abs(_rolloff(match_spectrum(dark, bright, SR)) - _rolloff(bright))
    assert before > 500 and after < before / 4, (before, after)


def test_shaped_noise_has_unit_rms_and_the_reference_balance() -> None:
    ref = _voice(5, tilt_hz=2_000.0)
    noise = shaped_noise(ref, 3 * SR, SR, seed=9)
    assert abs(float(np.sqrt(np.mean(noise.astype(np.float64) ** 2))) - 1.0) < 1e-4
    assert abs(_rolloff(noise) - _rolloff(ref)) < 400
    np.testing.assert_array_equal(noise, shaped_noise(ref, 3 * SR, SR, seed=9))
    assert not np.array_equal(noise, shaped_noise(ref, 3 * SR, SR, seed=10))


def _bursts_over_hiss() -> np.ndarray:
    """0.2-s bursts of a 300 Hz tone every 0.4 s, over a constant hiss at 5-6 kHz 40 dB down."""
    rng = np.random.default_rng(3)
    t = np.arange(4 * SR) / SR
    tone = 0.3 * np.sin(2 * np.pi * 300 * t) * ((t % 0.4) < 0.2)
    band = signal.butter(4, [5_000, 6_000], "bandpass", fs=SR, output="sos")
    hiss = signal.sosfilt(band, rng.standard_normal(len(t)))
    return (tone + 0.003 * hiss / np.std(hiss)).astype(np.float32)


def test_quiet_spectrum_is_the_room_tone_not_the_speech() -> None:
    y = _bursts_over_hiss()
    freqs, quiet = quiet_spectrum(y, SR)
    _, whole = long_term_spectrum(y, SR)
    assert 5_000 <= freqs[np.argmax(quiet)] <= 6_000
    assert freqs[np.argmax(whole)] < 400
    # Noise shaped like it fills pauses with hiss, not with a hum at the voice's pitch.
    noise = shaped_noise(y, 2 * SR, SR, seed=1, quiet_share=0.2)
    nf, npsd = long_term_spectrum(noise, SR)
    assert 5_000 <= nf[np.argmax(npsd)] <= 6_000
    np.testing.assert_array_equal(noise, shaped_noise(y, 2 * SR, SR, seed=1, quiet_share=0.2))


def _block_db(y: np.ndarray, start_s: float, stop_s: float) -> float:
    part = y[int(start_s * SR) : int(stop_s * SR)].astype(np.float64)
    return float(10 * np.log10(np.mean(part**2)))


def test_match_envelope_copies_the_slow_level_contour() -> None:
    # The recording fades: its last second is 12 dB down. The reading keeps its level to the end.
    reference = speechlike(sr=SR, duration=4.0, seed=11)
    reference[3 * SR :] *= 10 ** (-12 / 20)
    reading = speechlike(sr=SR, duration=3.0, f0=180.0, seed=12)
    out = match_envelope(reading, reference, SR)
    assert len(out) == len(reading)
    drop_before = _block_db(reading, 0.5, 1.5) - _block_db(reading, 2.5, 3.0)
    drop_after = _block_db(out, 0.5, 1.5) - _block_db(out, 2.5, 3.0)
    assert abs(drop_before) < 2.0 and 8.0 < drop_after - drop_before < 14.0
    # A reading that already has the contour keeps it (within a dB); a pause is not boosted.
    same = match_envelope(reference, reference, SR)
    assert abs(_block_db(same, 3.2, 3.8) - _block_db(reference, 3.2, 3.8)) < 1.0
    paused = reading.copy()
    paused[SR : 2 * SR] *= 1e-3
    out = match_envelope(paused, speechlike(sr=SR, duration=3.0, seed=13), SR)
    assert _block_db(out, 1.3, 1.7) < _block_db(paused, 1.3, 1.7) + 1.0


def _frame_db(y: np.ndarray) -> np.ndarray:
    frames = y[: len(y) // 320 * 320].reshape(-1, 320).astype(np.float64)
    return 10 * np.log10(np.mean(frames**2, axis=1) + 1e-30)


def test_match_quiet_levels_gives_the_quiet_tail_the_references_spread() -> None:
    rng = np.random.default_rng(8)
    n = 200  # 20-ms frames
    # The reading: loud frames, and 30 % of frames sitting exactly on a -60 dB floor.
    reading_db = np.where(np.arange(n) % 10 < 3, -60.0, rng.uniform(-30, -15, n))
    # The recording: its quiet frames spread from -55 to -40 dB.
    reference_db = np.where(np.arange(n) % 10 < 3, rng.uniform(-55, -40, n), rng.uniform(-30, -15, n))

    def render(levels_db: np.ndarray, seed: int) -> np.ndarray:
        noise = np.random.default_rng(seed).standard_normal(n * 320)
        return (noise * np.repeat(10 ** (levels_db / 20), 320)).astype(np.float32)

    reading, reference = render(reading_db, 1), render(reference_db, 2)
    noise = np.random.default_rng(3).standard_normal(len(reading)).astype(np.float32)
    out = match_quiet_levels(reading, noise, reference, SR, share=0.3)
    before, after, ref = _frame_db(reading), _frame_db(out), _frame_db(reference)
    quiet = np.arange(n) % 10 < 3
    # The quiet tail now spreads like the reference's (quantiles within 2 dB), loud frames keep their level.
    for q in (0.05, 0.15, 0.25):
        assert abs(np.quantile(after, q) - np.quantile(ref, q)) < 2.0
    assert np.abs(after[~quiet] - before[~quiet]).max() < 1.0
    assert (after >= before - 0.5).all()  # only ever raised


def test_raise_noise_floor_reaches_the_target_and_never_lowers() -> None:
    y = _voice(6, noise_db=-80.0)
    noise = shaped_noise(y, len(y), SR, seed=1)
    out = raise_noise_floor(y, noise, SR, -55.0)
    assert abs(noise_floor_dbfs(out, SR) + 55.0) < 0.05
    high = _voice(6, noise_db=-40.0)
    np.testing.assert_array_equal(raise_noise_floor(high, noise, SR, -55.0), high)


def test_match_group_equalises_every_level_property() -> None:
    real = _voice(7, noise_db=-62.0)
    fakes = [_voice(7, pulses=True, noise_db=-90.0), _voice(8, tilt_hz=1_200.0, noise_db=-75.0)]
    group = [real, *fakes]
    before_peaks = [natural_peak_dbfs(c, SR, -23.0) for c in group]
    assert np.ptp(before_peaks) > 3.0
    out = match_group(group, SR, seeds=[1, 2, 3], ceiling_dbfs=-9.0)
    assert [len(c) for c in out] == [len(c) for c in group]
    loud = [integrated_loudness(c, SR) for c in out]
    peaks = [_peak_db(c) for c in out]
    floors = [noise_floor_dbfs(c, SR) for c in out]
    rolloffs = [_rolloff(c) for c in out]
    assert np.ptp(loud) < 0.01 and abs(loud[0] + 23.0) < 0.01, loud
    assert np.ptp(peaks) < 0.02 and max(peaks) <= min(-9.0, *before_peaks) + 0.01, (peaks, before_peaks)
    assert np.ptp(floors) < 0.1, floors
    assert np.ptp(rolloffs) < np.ptp([_rolloff(c) for c in group]) / 3, rolloffs
    again = match_group(group, SR, seeds=[1, 2, 3], ceiling_dbfs=-9.0)
    for a, b in zip(out, again, strict=True):
        np.testing.assert_array_equal(a, b)


def test_fill_quiet_frames_lifts_only_the_frames_under_the_floor() -> None:
    y = _voice(9, noise_db=-100.0)  # pauses of near digital silence around the voice
    noise = shaped_noise(y, len(y), SR, seed=4)
    out = fill_quiet_frames(y, noise, SR, -50.0)
    frame = int(0.02 * SR)
    levels = 10 * np.log10(np.mean(out[: len(out) // frame * frame].reshape(-1, frame) ** 2, axis=1) + 1e-20)
    assert levels.min() > -52.0  # every pause frame is now near the floor
    loud = np.flatnonzero(10 * np.log10(np.mean(y[: len(y) // frame * frame].reshape(-1, frame) ** 2, axis=1)) > -40)
    inner = loud[1:-1]  # away from the interpolation at the edges of the pauses
    np.testing.assert_array_equal(
        out.reshape(-1)[inner[0] * frame : inner[-1] * frame], y[inner[0] * frame : inner[-1] * frame]
    )
    assert np.count_nonzero(np.round(out * 32768) == 0) < np.count_nonzero(np.round(y * 32768) == 0) / 5


def test_a_clip_without_measurable_loudness_is_refused() -> None:
    with pytest.raises(ValueError, match="loudness cannot be measured"):
        fit_level(np.zeros(SR, np.float32), SR, target_lufs=-23.0, ceiling_dbfs=-9.0)
    with pytest.raises(ValueError, match="loudness cannot be measured"):
        match_group([_voice(1), np.zeros(SR // 4, np.float32)], SR, seeds=[1, 2])
