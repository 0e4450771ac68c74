"""The canonical preprocessing: DC, trimming, loudness, re-quantisation, invariances, errors."""

from __future__ import annotations

import numpy as np
import pytest

from signals import speechlike, tone
from voxguard import errors
from voxguard.audio import PreprocessConfig, detect_speech, preprocess
from voxguard.audio.preprocess import integrated_loudness, requantise

SR = 16_000


def with_silence(y: np.ndarray, lead_s: float, tail_s: float, sr: int = SR) -> np.ndarray:
    return np.concatenate([np.zeros(int(lead_s * sr), np.float32), y, np.zeros(int(tail_s * sr), np.float32)])


def test_speech_detected_and_silence_not():
    y = with_silence(speechlike(SR, 2.0), 1.0, 1.0)
    act = detect_speech(y, SR)
    start, end = act.bounds_s()
    assert abs(start - 1.0) < 0.1 and abs(end - 3.0) < 0.1
    assert 1.7 < act.speech_s < 2.2


def test_leading_and_trailing_silence_are_trimmed():
    speech = speechlike(SR, 2.0)
    cfg = PreprocessConfig()
    out = preprocess(with_silence(speech, 1.5, 2.0), SR, cfg)
    assert abs(out.offset_s - (1.5 - cfg.trim_margin_s)) < 0.06
    assert abs(out.duration_s - (2.0 + 2 * cfg.trim_margin_s)) < 0.12
    unpadded = preprocess(speech, SR, cfg)  # speech from the first sample: margin is zero-padded
    assert unpadded.offset_s == pytest.approx(-cfg.trim_margin_s, abs=0.031)
    assert abs(unpadded.duration_s - out.duration_s) <= 0.031
    assert out.input_duration_s == pytest.approx(5.5)


def test_loudness_is_normalised():
    for gain in (0.02, 0.3, 1.0):
        out = preprocess(gain * speechlike(SR, 3.0), SR)
        assert integrated_loudness(out.samples, SR) == pytest.approx(-23.0, abs=0.5)


def test_output_is_on_16_bit_grid_and_dc_free():
    y = speechlike(SR, 2.0) + 0.1  # a DC offset
    out = preprocess(y, SR).samples
    scaled = out * 32768
    np.testing.assert_array_equal(scaled, np.round(scaled))
    assert abs(float(out.mean())) < 1e-3
    assert out.dtype == np.float32


def test_deterministic():
    y = speechlike(SR, 2.0)
    np.testing.assert_array_equal(preprocess(y, SR).samples, preprocess(y, SR).samples)


def test_gain_silence_and_rate_invariance():
    """The same content at another level, padding or native rate gives (nearly) the same signal."""
    base = preprocess(speechlike(SR, 3.0), SR)
    quiet = preprocess(0.1 * speechlike(SR, 3.0), SR).samples
    padded = preprocess(with_silence(speechlike(SR, 3.0), 2.0, 3.0), SR)
    n = min(len(base.samples), len(quiet))
    assert np.max(np.abs(base.samples[:n] - quiet[:n])) < 3e-3
    # Trimming keeps a fixed margin (zero-padded where the input has none): same length up to
    # the VAD's 30 ms frame grid, and the same samples once aligned on the offsets.
    assert abs(len(padded.samples) - len(base.samples)) <= 0.03 * SR
    lag = round((padded.offset_s - 2.0 - base.offset_s) * SR)  # >= 0: padded starts later
    a = padded.samples[max(-lag, 0) :]
    b = base.samples[max(lag, 0) :]
    m = min(len(a), len(b))
    assert np.max(np.abs(a[:m] - b[:m])) < 3e-3
    base = base.samples
    hi = preprocess(speechlike(44_100, 3.0), 44_100).samples
    assert integrated_loudness(hi, SR) == pytest.approx(integrated_loudness(base, SR), abs=0.5)


def test_digital_silence_raises():
    with pytest.raises(errors.SilentAudioError, match="silence"):
        preprocess(np.zeros(SR * 2, np.float32), SR)


def test_no_speech_raises():
    # A steady, very quiet hum: not silence, but not speech either.
    hum = 1e-4 * tone(50.0, SR, 2.0)
    with pytest.raises((errors.SilentAudioError, errors.TooShortError)):
        preprocess(hum, SR)


def test_too_short_speech_raises():
    y = with_silence(speechlike(SR, 0.3), 1.0, 1.0)
    with pytest.raises(errors.TooShortError, match=r"0\.5"):
        preprocess(y, SR)


def test_nan_raises():
    y = speechlike(SR, 1.0)
    y[5] = np.nan
    with pytest.raises(errors.InvalidSamplesError):
        preprocess(y, SR)


def test_requantise_dither_is_seeded():
    y = (0.3 * np.sin(np.linspace(0, 100, 10_000))).astype(np.float32)
    a, b = requantise(y, seed=1), requantise(y, seed=1)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, requantise(y, seed=2))
    assert np.max(np.abs(a - y)) <= 2.0 / 32768 + 1e-7


def test_config_round_trip():
    cfg = PreprocessConfig(target_lufs=-20.0, trim_silence=False)
    assert PreprocessConfig.from_dict(cfg.to_dict() | {"unknown_future_key": 1}) == cfg


@pytest.mark.parametrize("sr", [16_000, 44_100])
def test_integrated_loudness_matches_pyloudnorm(sr):
    import pyloudnorm

    y = np.concatenate([speechlike(sr, 3.0), np.zeros(sr, np.float32), 0.2 * speechlike(sr, 2.0, seed=2)])
    for gain in (0.01, 0.5):
        ref = pyloudnorm.Meter(sr).integrated_loudness((gain * y).astype(np.float64))
        assert integrated_loudness(gain * y, sr) == pytest.approx(ref, abs=0.01)
    assert integrated_loudness(np.zeros(sr, np.float32), sr) == float("-inf")


def test_speech_bounds_do_not_depend_on_gain():
    y = with_silence(speechlike(SR, 2.0), 0.7, 0.4)
    reference = detect_speech(y, SR)
    for gain in (0.003, 0.1, 10.0):  # floats: no clipping at x10
        act = detect_speech(gain * y, SR)
        np.testing.assert_array_equal(act.mask, reference.mask)


def test_trim_is_stable_when_the_vad_grid_shifts():
    """Leading silence that is not a multiple of the 30 ms VAD frame shifts WebRTC's grid; the
    refined bounds (a 10 ms grid) keep the trimmed signal within two 10 ms frames of the unshifted one
    instead of whole VAD runs."""
    speech = speechlike(SR, 2.0)
    base = preprocess(with_silence(speech, 0.6, 0.3), SR)
    for lead in (0.61, 0.62, 0.75):
        out = preprocess(with_silence(speech, lead, 0.3), SR)
        assert abs((out.offset_s - lead) - (base.offset_s - 0.6)) <= 0.021
        assert abs(len(out.samples) - len(base.samples)) <= 0.031 * SR


# --------------------------------------------------------------------------- causal DC blocker


def test_block_dc_removes_offset_and_ignores_leading_silence():
    from voxguard.audio.preprocess import block_dc

    sr = 16_000
    rng = np.random.default_rng(0)
    y = (0.1 * rng.standard_normal(sr * 2) + 0.05).astype(np.float32)  # a 0.05 DC offset
    out = block_dc(y, sr)
    assert abs(float(out[sr:].mean())) < 1e-3  # settled: offset gone
    padded = block_dc(np.concatenate([np.zeros(12_345, np.float32), y]), sr)
    np.testing.assert_allclose(padded[12_345:], out, atol=1e-6)  # exactly the same on the speech
    # The mean-subtraction of voxguard-v1 is not invariant: that is why the option exists.
    from voxguard.audio.preprocess import remove_dc

    shifted = remove_dc(np.concatenate([np.zeros(12_345, np.float32), y]))[12_345:]
    assert np.max(np.abs(shifted - remove_dc(y))) > 1e-3


def test_preprocess_with_highpass_dc_is_invariant_to_leading_silence():
    from voxguard.audio import PreprocessConfig, preprocess

    sr = 16_000
    y = speechlike(sr, 3.0) + np.float32(0.02)
    cfg = PreprocessConfig(dc_filter="highpass", trim_margin_s=0.25)
    a = preprocess(y, sr, cfg)
    b = preprocess(np.concatenate([np.zeros(sr * 2, np.float32), y]), sr, cfg)
    assert abs(len(a.samples) - len(b.samples)) <= 0.03 * sr  # one 30 ms VAD frame of jitter at most
    with pytest.raises(ValueError, match="dc_filter"):
        preprocess(y, sr, PreprocessConfig(dc_filter="median"))


def test_energy_trim_is_invariant_to_silence_and_gain():
    from voxguard.audio.preprocess import energy_bounds

    sr = 16_000
    y = speechlike(sr, 2.0)
    cfg = PreprocessConfig(trim_mode="energy", trim_margin_s=0.25, dc_filter="highpass")
    ref = preprocess(y, sr, cfg)
    for lead, trail, gain in ((0.37, 1.13, 1.0), (3.0, 0.0, 0.1), (0.0, 3.0, 5.0)):
        z = np.concatenate([np.zeros(int(lead * sr), np.float32), y * np.float32(gain), np.zeros(int(trail * sr))])
        out = preprocess(z.astype(np.float32), sr, cfg)
        assert len(out.samples) == len(ref.samples)
        assert out.offset_s - lead == pytest.approx(ref.offset_s, abs=0.011)
    start, end = energy_bounds(np.concatenate([np.zeros(sr, np.float32), y]), sr)
    assert start == pytest.approx(1.0, abs=0.02) and end == pytest.approx(3.0, abs=0.02)
    assert energy_bounds(np.zeros(0, np.float32), sr) is None
    with pytest.raises(ValueError, match="trim_mode"):
        preprocess(y, sr, PreprocessConfig(trim_mode="psychic"))
