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
    match_group,
    match_spectrum,
    natural_peak_dbfs,
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
