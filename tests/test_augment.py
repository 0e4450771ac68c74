"""Degradations (voxguard.augment): measured SNR, decodable codecs, telephone band, seeds, policies."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf
from scipy import signal

from signals import speechlike
from voxguard import augment
from voxguard.audio import load
from voxguard.augment import channel, codecs, noise, policy, rawboost
from voxguard.errors import VoxguardError

SR = 16_000


def _band_energy(y: np.ndarray, lo: float, hi: float, sr: int = SR) -> float:
    f, p = signal.welch(y, sr, nperseg=1024)
    return float(p[(f >= lo) & (f < hi)].sum())


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return speechlike(SR, 3.0)


@pytest.fixture(scope="module")
def bank() -> list[np.ndarray]:
    return [speechlike(SR, 2.0, f0=f0, seed=k) for k, f0 in enumerate((100, 130, 180, 220))]


# --------------------------------------------------------------------------- noise


@pytest.mark.parametrize("colour", noise.COLOURS)
@pytest.mark.parametrize("snr", [0.0, 10.0, 25.0])
def test_coloured_noise_snr_is_measured_back(speech, colour, snr):
    noisy = augment.add_noise(speech, snr, seed=3, colour=colour)
    assert abs(augment.snr_db(speech, noisy) - snr) < 0.5
    np.testing.assert_array_equal(noisy, augment.add_noise(speech, snr, seed=3, colour=colour))
    assert not np.array_equal(noisy, augment.add_noise(speech, snr, seed=4, colour=colour))


def test_noise_colours_have_their_slopes():
    low, high = [], []
    for colour in noise.COLOURS:
        n = augment.coloured_noise(SR * 4, colour, seed=0)
        low.append(_band_energy(n, 100, 400))
        high.append(_band_energy(n, 3_000, 7_000))
    ratios = np.array(low) / np.array(high)
    assert ratios[0] < ratios[1] < ratios[2]  # white, then pink, then brown tilt towards low frequencies


@pytest.mark.parametrize("snr", [5.0, 10.0, 20.0])
def test_babble_and_music_snr_is_measured_back(speech, bank, snr):
    b = augment.babble(bank, len(speech), talkers=3, seed=1)
    m = augment.music_like(len(speech), SR, seed=1)
    for n in (b, m):
        assert len(n) == len(speech) and np.isfinite(n).all()
        assert abs(augment.snr_db(speech, augment.mix_at_snr(speech, n, snr)) - snr) < 0.5


def test_babble_is_speech_from_the_sources_and_seeded(bank):
    a = augment.babble(bank, SR * 3, talkers=3, seed=7)
    np.testing.assert_array_equal(a, augment.babble(bank, SR * 3, talkers=3, seed=7))
    assert not np.array_equal(a, augment.babble(bank, SR * 3, talkers=3, seed=8))
    # Its energy sits in the speech band, not spread like white noise.
    assert _band_energy(a, 80, 1_500) > 5 * _band_energy(a, 5_000, 8_000)
    with pytest.raises(VoxguardError, match="babble"):
        augment.babble([np.zeros(100, np.float32)], 100)


def test_mix_rejects_silent_noise(speech):
    with pytest.raises(VoxguardError, match="silent"):
        augment.mix_at_snr(speech, np.zeros(10, np.float32), 10)


# --------------------------------------------------------------------------- codecs


@pytest.mark.parametrize(
    ("codec", "bitrate", "rate", "name"),
    [
        ("mp3", 32_000, SR, "mp3"),
        ("mp3", 128_000, SR, "mp3"),
        ("aac", 64_000, SR, "aac"),
        ("opus", 12_000, 48_000, "opus"),
        ("opus", 64_000, 48_000, "opus"),
        ("amr_nb", 12_200, 8_000, "amr"),
        ("ulaw", None, 8_000, "ulaw"),
        ("alaw", None, 8_000, "alaw"),
        ("vorbis", None, SR, "vorbis"),
    ],
)
def test_codec_output_decodes_at_the_expected_rate(speech, codec, bitrate, rate, name):
    data, coded_rate = codecs.encode(speech, SR, codec, bitrate)
    assert coded_rate == rate
    audio = load(io.BytesIO(data))  # voxguard's own decoder, format sniffed from the bytes
    assert audio.info.sample_rate == rate
    assert name in f"{audio.info.codec} {audio.info.container}".lower().replace("_", "")
    assert abs(audio.info.duration_s - len(speech) / SR) < 0.2


def test_lower_bitrate_costs_more_fidelity(speech):
    def err(kbps: int) -> float:
        out = augment.codec_roundtrip(speech, SR, "mp3", kbps * 1000)
        return float(np.mean((out - speech) ** 2))

    assert err(32) > err(128)


@pytest.mark.parametrize("codec", ["opus", "mp3", "aac", "vorbis", "amr_nb", "ulaw"])
def test_codec_round_trip_is_aligned_and_lossy(speech, codec):
    out = augment.codec_roundtrip(speech, SR, codec, 32_000 if codec != "amr_nb" else 12_200)
    assert len(out) == len(speech) and out.dtype == np.float32
    reference = speech if codec not in ("amr_nb", "ulaw") else channel.band_limit(speech, SR, 3_900)
    assert np.corrcoef(reference, out)[0, 1] > 0.8  # aligned (codec delay removed)
    assert not np.allclose(speech, out, atol=1e-3)  # and really coded


def test_unknown_codec_is_a_clear_error(speech):
    with pytest.raises(VoxguardError, match="unknown codec"):
        augment.codec_roundtrip(speech, SR, "flac2000")
    with pytest.raises(VoxguardError, match="telephone codec"):
        augment.telephone(speech, SR, "gsm-hr")


@pytest.mark.parametrize("codec", ["ulaw", "alaw", "amr_nb", "none"])
def test_telephone_band_limit_is_visible_in_the_spectrum(codec):
    y = (np.random.default_rng(0).standard_normal(SR * 3) * 0.1).astype(np.float32)
    out = augment.telephone(y, SR, codec)
    assert len(out) == len(y)
    passband = _band_energy(out, 500, 3_000) / 2_500
    assert _band_energy(out, 4_100, 8_000) / 3_900 < 1e-3 * passband  # nothing above the 8 kHz Nyquist
    assert _band_energy(out, 20, 150) / 130 < 0.1 * passband  # the 300 Hz high-pass


# --------------------------------------------------------------------------- channel


def test_band_limit_removes_high_band():
    y = (np.random.default_rng(0).standard_normal(SR * 2) * 0.1).astype(np.float32)
    out = augment.band_limit(y, SR, 4_000)
    assert len(out) == len(y)
    assert _band_energy(out, 4_500, 8_000) < 1e-3 * _band_energy(y, 4_500, 8_000)
    assert _band_energy(out, 500, 3_000) > 0.8 * _band_energy(y, 500, 3_000)


def test_gain_and_clipping(speech):
    np.testing.assert_allclose(augment.gain(speech, 10.0), speech * 10, rtol=1e-6)
    clipped = augment.clip(speech, 0.3)
    peak = np.max(np.abs(speech))
    assert np.max(np.abs(clipped)) == pytest.approx(0.3 * peak, rel=1e-6)
    assert np.mean(np.abs(clipped) >= 0.3 * peak * 0.999) > 0.01  # flat tops exist
    np.testing.assert_array_equal(augment.clip(np.zeros(5, np.float32)), np.zeros(5, np.float32))


def test_resample_chain_band_limits_to_the_narrowest_rate():
    y = (np.random.default_rng(1).standard_normal(SR * 2) * 0.1).astype(np.float32)
    out = augment.resample_chain(y, SR, (48_000, 8_000, 16_000))
    assert len(out) == len(y)
    assert _band_energy(out, 4_300, 8_000) < 1e-3 * _band_energy(y, 4_300, 8_000)
    assert np.corrcoef(channel.band_limit(y, SR, 4_000), out)[0, 1] > 0.95


def test_packet_loss_zeroes_whole_packets(speech):
    out = augment.packet_loss(speech, SR, 0.2, packet_ms=20, seed=2)
    packets = out[: len(out) // 320 * 320].reshape(-1, 320)
    lost = np.all(packets == 0, axis=1)
    assert 0.1 < lost.mean() < 0.3
    kept = ~lost
    np.testing.assert_array_equal(packets[kept], speech[: len(packets) * 320].reshape(-1, 320)[kept])
    np.testing.assert_array_equal(out, augment.packet_loss(speech, SR, 0.2, packet_ms=20, seed=2))


@pytest.mark.parametrize("method", channel.REVERB_METHODS)
def test_reverb_decays_at_its_rt60(method):
    if method == "room":
        pytest.importorskip("pyroomacoustics", reason="room reverb needs pyroomacoustics (the train extra)")
    make = channel.exponential_rir if method == "exponential" else channel.room_rir
    for rt60 in (0.3, 0.8):
        rir = make(SR, rt60, seed=1).astype(np.float64)
        # Schroeder backward integration: the time from -5 dB to -25 dB, times 3, estimates RT60.
        edc = np.cumsum(rir[::-1] ** 2)[::-1]
        edc_db = 10 * np.log10(edc / edc[0] + 1e-20)
        t5, t25 = np.argmax(edc_db < -5) / SR, np.argmax(edc_db < -25) / SR
        assert 3 * (t25 - t5) == pytest.approx(rt60, rel=0.35)
    y = speechlike(SR, 2.0)
    wet = augment.reverb(y, SR, 0.5, method=method, seed=3)
    assert len(wet) == len(y)
    assert np.mean(wet**2) == pytest.approx(np.mean(y.astype(np.float64) ** 2), rel=1e-3)
    np.testing.assert_array_equal(wet, augment.reverb(y, SR, 0.5, method=method, seed=3))
    with pytest.raises(VoxguardError, match="reverb method"):
        augment.reverb(y, SR, 0.5, method="plate")


# --------------------------------------------------------------------------- RawBoost


@pytest.mark.parametrize("algorithm", ["lnl", "isd", "ssi", "lnl+isd", "lnl+isd+ssi"])
def test_rawboost_is_seeded_and_changes_the_signal(speech, algorithm):
    a = rawboost.apply(speech, SR, algorithm, seed=1)
    assert len(a) == len(speech) and a.dtype == np.float32 and np.isfinite(a).all()
    np.testing.assert_array_equal(a, rawboost.apply(speech, SR, algorithm, seed=1))
    assert not np.array_equal(a, rawboost.apply(speech, SR, algorithm, seed=2))
    assert not np.allclose(a, speech, atol=1e-4)
    with pytest.raises(VoxguardError, match="RawBoost"):
        rawboost.apply(speech, SR, "lnl+xyz")


def test_rawboost_isd_touches_only_a_few_samples(speech):
    out = rawboost.impulsive(speech, fraction=0.1, seed=0)
    changed = np.mean(out != speech)
    assert 0 < changed <= 0.1


def test_rawboost_ssi_snr_is_in_range(speech):
    for seed in range(5):
        snr = augment.snr_db(speech, rawboost.stationary(speech, SR, snr_range=(10, 40), seed=seed))
        assert 9.5 < snr < 40.5


# --------------------------------------------------------------------------- policies


def test_every_step_keeps_length_rate_and_is_seeded(speech, bank):
    for kind, step in policy.STEPS.items():
        out, how = step(speech, SR, np.random.default_rng(3), bank)
        again, how_again = step(speech, SR, np.random.default_rng(3), bank)
        assert len(out) == len(speech) and out.dtype == np.float32 and np.isfinite(out).all(), kind
        assert how == how_again and np.array_equal(out, again), kind


@pytest.mark.parametrize("name", ["chain", "chain-cb"])
def test_chain_policy_applies_distinct_steps_in_chain_order(speech, bank, name):
    chain = augment.get_policy(name)
    kinds_seen: set[str] = set()
    for seed in range(200):
        kinds = chain.draw(np.random.default_rng(seed))
        assert 1 <= len(kinds) <= 2 and len(set(kinds)) == len(kinds)
        stages = [policy._STAGE[k] for k in kinds]
        assert stages == sorted(stages)  # e.g. babble before the codec, never the reverse
        kinds_seen.update(kinds)
    # Every kind is drawn at some point (babble_low is babble at lower SNRs, for one expert only).
    assert kinds_seen == set(policy.STEPS) - {"babble_low"}
    for seed in range(4):
        out, how = chain(speech, SR, seed=seed, babble_sources=bank)
        assert len(out) == len(speech) and 1 <= len(how.split(" + ")) <= 2
        np.testing.assert_array_equal(out, chain(speech, SR, seed=seed, babble_sources=bank)[0])
    assert "codec" in chain.describe()


def test_v1_policy_is_the_single_degradation_of_voxguard_v1(speech):
    v1 = augment.get_policy("v1")
    for seed in range(6):
        out, how = v1(speech, SR, seed=seed)
        expected, how_expected = augment.random_degradation(speech, SR, seed=seed)
        assert how == how_expected and np.array_equal(out, expected)
        assert " + " not in how
    with pytest.raises(VoxguardError, match="augmentation policy"):
        augment.get_policy("nope")


def test_babble_without_sources_falls_back_to_noise(speech):
    out, how = policy.STEPS["babble"](speech, SR, np.random.default_rng(0), ())
    assert "noise" in how and len(out) == len(speech)


def test_vorbis_quality_sets_the_bit_rate(speech):
    sizes = []
    for quality in (0.1, 0.9):
        buf = io.BytesIO()
        sf.write(buf, speech, SR, format="OGG", subtype="VORBIS", compression_level=quality)
        sizes.append(len(buf.getvalue()))
    assert sizes[0] > sizes[1]


def test_low_snr_babble_policy_draws_its_own_copies_at_5_to_15_db(speech, bank):
    """voxguard-v7's third babble expert: babble at 5-15 dB, independent of "only-babble"'s copies."""
    low, full = augment.get_policy("only-babble-low"), augment.get_policy("only-babble")
    snrs = []
    for seed in range(12):
        out, how = low(speech, SR, seed=seed, babble_sources=bank)
        np.testing.assert_array_equal(out, low(speech, SR, seed=seed, babble_sources=bank)[0])
        snr = float(how.split()[-2])
        assert how.startswith("babble") and 5 <= snr <= 15
        assert abs(augment.snr_db(speech, out) - snr) <= 1.0  # the description rounds to whole dB
        snrs.append(snr)
        # The salt makes a different draw from the same seed (talkers, babble), not a rescaled copy.
        other, _ = full(speech, SR, seed=seed, babble_sources=bank)
        residual = other - speech
        noise = out - speech
        corr = abs(float(np.dot(residual, noise))) / float(np.linalg.norm(residual) * np.linalg.norm(noise))
        assert corr < 0.9
    assert max(snrs) - min(snrs) > 4  # spread over the range, not one value
