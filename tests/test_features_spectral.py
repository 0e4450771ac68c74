"""voxguard.features.spectral and .pooling against librosa and small hand-computed cases.

librosa is the reference implementation and a test-only dependency. Tolerances, stated per test,
allow for voxguard's float32 FFT (librosa runs its FFT in float64 and rounds to complex64): about
1e-6 relative on spectra, 1e-4 dB-ish on cepstra; descriptors that pick an FFT bin (roll-off) may
move by one bin when a cumulative sum lands on the threshold.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.fft
import scipy.signal

from voxguard.errors import FeatureError
from voxguard.features import spectral as sp
from voxguard.features.framing import n_frames
from voxguard.features.pooling import pool_stats, pooled_names

librosa = pytest.importorskip("librosa")

RATES = (16000, 22050, 44100)
LIBROSA_DEFAULTS = {"n_fft": 2048, "hop_length": 512, "win_length": None}
SPEECH = {"n_fft": 512, "hop_length": 160, "win_length": 400}


# --------------------------------------------------------------------------------------------
# Signals (short and deterministic)
# --------------------------------------------------------------------------------------------


def _tone(sr: int, f: float = 440.0, dur: float = 0.5, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(sr * dur)) / sr
    return (amp * np.sin(2 * np.pi * f * t)).astype(np.float32)


def _chirp(sr: int, dur: float = 0.5) -> np.ndarray:
    t = np.arange(int(sr * dur)) / sr
    return (0.4 * scipy.signal.chirp(t, 100.0, dur, 0.45 * sr, method="logarithmic")).astype(np.float32)


def _noise(sr: int, dur: float = 0.5, seed: int = 1) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(int(sr * dur))).astype(np.float32)


def _vowel(sr: int, dur: float = 1.0, f0: float = 120.0, seed: int = 0) -> np.ndarray:
    """Harmonic source with vibrato, three formant resonators, 4 Hz amplitude modulation."""
    t = np.arange(int(sr * dur)) / sr
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.05 * np.sin(2 * np.pi * 3 * t))) / sr
    k = np.arange(1, int(sr / 2 / f0 / 1.1))[:, None]
    y = (np.sin(k * phase) / k).sum(axis=0)
    for fc, bw in ((700, 80), (1200, 90), (2600, 120)):
        r = np.exp(-np.pi * bw / sr)
        y = scipy.signal.lfilter([1 - r], [1, -2 * r * np.cos(2 * np.pi * fc / sr), r * r], y)
    y *= 0.6 + 0.4 * np.sin(2 * np.pi * 4 * t)
    y += 1e-3 * np.random.default_rng(seed).standard_normal(len(y))
    return (0.3 * y / np.abs(y).max()).astype(np.float32)


SIGNALS = {"tone": _tone, "chirp": _chirp, "noise": _noise, "vowel": _vowel}
CASES = [(name, sr) for sr in RATES for name in SIGNALS]


def _signal(name: str, sr: int) -> np.ndarray:
    return SIGNALS[name](sr)


def _max_rel(a: np.ndarray, b: np.ndarray) -> float:
    """Largest absolute difference relative to the reference's peak."""
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


# --------------------------------------------------------------------------------------------
# Spectrograms and filterbanks
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "sr"), CASES)
def test_stft_power_matches_librosa(name: str, sr: int) -> None:
    y = _signal(name, sr)
    for params in (LIBROSA_DEFAULTS, SPEECH):
        ours = sp.stft_power(y, sr, **params)
        ref = np.abs(librosa.stft(y, **params)) ** 2
        assert ours.shape == ref.shape
        assert ours.dtype == np.float32
        # float32 vs float64 FFT: differences are ~1e-7 of the spectrogram's peak.
        assert _max_rel(ours, ref) < 1e-5
    mag = sp.stft_power(y, sr, power=1.0, **SPEECH)
    np.testing.assert_allclose(mag, np.abs(librosa.stft(y, **SPEECH)), rtol=0, atol=1e-5 * mag.max())


@pytest.mark.parametrize(
    ("sr", "n_fft", "n_mels", "fmin", "fmax", "htk", "norm"),
    [
        (16000, 512, 40, 0.0, None, False, "slaney"),
        (22050, 2048, 128, 0.0, None, False, "slaney"),
        (44100, 2048, 64, 50.0, 16000.0, True, None),
        (16000, 1024, 80, 20.0, 7600.0, False, 2.0),
    ],
)
def test_mel_filterbank_matches_librosa(sr, n_fft, n_mels, fmin, fmax, htk, norm) -> None:
    ours = sp.mel_filterbank(sr, n_fft, n_mels, fmin, fmax, htk, norm)
    ref = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=htk, norm=norm)
    assert ours.dtype == np.float32 and not ours.flags.writeable
    np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-9)
    assert sp.mel_filterbank(sr, n_fft, n_mels, fmin, fmax, htk, norm) is ours  # cached


def test_linear_filterbank_hand_computed() -> None:
    fb = sp.linear_filterbank(16000, 512, n_filters=20)
    assert fb.shape == (20, 257) and fb.dtype == np.float32
    freqs = np.arange(257) * 16000 / 512
    edges = np.linspace(0, 8000, 22)
    for i in range(20):
        # Unit-peak triangle rising from edges[i] to edges[i + 1] and falling to edges[i + 2].
        expected = np.clip(
            np.minimum(
                (freqs - edges[i]) / (edges[i + 1] - edges[i]),
                (edges[i + 2] - freqs) / (edges[i + 2] - edges[i + 1]),
            ),
            0,
            None,
        )
        np.testing.assert_allclose(fb[i], expected, atol=1e-6)
    # Linearly spaced triangles tile the band between the first and last peaks.
    inside = (freqs >= edges[1]) & (freqs <= edges[-2])
    np.testing.assert_allclose(fb.sum(axis=0)[inside], 1.0, atol=1e-5)


def test_power_to_db_matches_librosa() -> None:
    rng = np.random.default_rng(3)
    S = (rng.random((64, 50)) ** 8).astype(np.float32)
    S[0, :5] = 0.0
    for kwargs in ({}, {"ref": np.max}, {"top_db": None}, {"ref": 0.5, "amin": 1e-6, "top_db": 40.0}):
        ours = sp.power_to_db(S, **kwargs)
        assert ours.dtype == np.float32
        np.testing.assert_allclose(ours, librosa.power_to_db(S, **kwargs), rtol=0, atol=1e-4)
    # Hand-computed: 10 log10(100 / 1) = 20 dB, floor at amin.
    np.testing.assert_allclose(sp.power_to_db(np.array([100.0, 0.0]), top_db=None), [20.0, -100.0])
    with pytest.raises(FeatureError):
        sp.power_to_db(S, amin=0.0)


@pytest.mark.parametrize("sr", RATES)
def test_log_spectrogram_and_mel(sr: int) -> None:
    y = _vowel(sr)
    p = sp.stft_power(y, sr, **SPEECH)
    np.testing.assert_allclose(
        sp.log_spectrogram(y, sr, **SPEECH), 10 * np.log10(np.maximum(p, 1e-10)), rtol=0, atol=1e-4
    )
    mel = sp.mel_spectrogram(y, sr, n_mels=40, **SPEECH)
    ref = librosa.feature.melspectrogram(y=y, sr=sr, n_mels=40, **SPEECH)
    assert _max_rel(mel, ref) < 1e-5
    logmel = sp.log_mel_spectrogram(y, sr, n_mels=40, **SPEECH)
    np.testing.assert_allclose(logmel, librosa.power_to_db(ref), rtol=0, atol=1e-3)


# --------------------------------------------------------------------------------------------
# Cepstra
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "sr"), CASES)
def test_mfcc_matches_librosa(name: str, sr: int) -> None:
    y = _signal(name, sr)
    # librosa's defaults, then the speech front-end with liftering.
    ours = sp.mfcc(y, sr, 20, n_mels=128, **LIBROSA_DEFAULTS)
    ref = librosa.feature.mfcc(y=y, sr=sr)
    assert ours.shape == ref.shape and ours.dtype == np.float32
    # Coefficients are sums of up to 128 dB values (|c0| reaches ~1000 on quiet frames): float32
    # rounding leaves errors of ~1e-6 of the largest coefficient, so allow 1e-5 of it.
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-5 * np.abs(ref).max())
    ours = sp.mfcc(y, sr, 13, n_mels=40, lifter=22, **SPEECH)
    ref = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=13, n_mels=40, lifter=22, **SPEECH)
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-5 * np.abs(ref).max())


@pytest.mark.parametrize("sr", [16000, 44100])
def test_lfcc_matches_reference_pipeline(sr: int) -> None:
    y = _vowel(sr)
    ours = sp.lfcc(y, sr)
    # The same pipeline written out with librosa/scipy: pre-emphasis with zero initial state,
    # 320-sample periodic Hamming in a 512 FFT, linear bank, log10, orthonormal DCT-II.
    pre = scipy.signal.lfilter([1, -0.97], [1], y).astype(np.float32)
    power = np.abs(librosa.stft(pre, n_fft=512, hop_length=160, win_length=320, window="hamming")) ** 2
    energies = np.log10(np.maximum(sp.linear_filterbank(sr, 512, 20) @ power, 1e-10))
    ref = scipy.fft.dct(energies, type=2, norm="ortho", axis=0)[:20]
    assert ours.shape == ref.shape and ours.dtype == np.float32
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4)


def test_cqt_tone_lands_in_its_bin_with_expected_power() -> None:
    sr, fmin, bpo = 16000, 62.5, 96
    for k in (10, 300, 671):
        f = fmin * 2 ** (k / bpo)
        y = _tone(sr, f, dur=0.6, amp=0.5)
        C = sp.cqt_power(y, sr)
        assert C.shape == (672, n_frames(len(y), 4096, 160)) and C.dtype == np.float32
        mid = C[:, C.shape[1] // 2]
        assert int(np.argmax(mid)) == k
        # L1-normalised kernels: a sinusoid of amplitude A at a bin centre has power A**2 / 4.
        assert mid[k] == pytest.approx(0.25**2, rel=0.02)


def test_cqcc_shape_and_gain_invariance() -> None:
    sr = 16000
    y = _noise(sr, dur=0.6)
    c = sp.cqcc(y, sr)
    assert c.shape == (20, n_frames(len(y), 4096, 160)) and c.dtype == np.float32
    assert np.isfinite(c).all()
    # A gain g adds 2 ln g to every log-power value, which the orthonormal DCT puts in c0 only.
    c2 = sp.cqcc(4.0 * y, sr)
    np.testing.assert_allclose(c2[1:], c[1:], rtol=0, atol=2e-3 * np.abs(c).max())
    assert np.all(c2[0] > c[0])


# --------------------------------------------------------------------------------------------
# Deltas
# --------------------------------------------------------------------------------------------


def test_deltas_match_librosa() -> None:
    X = sp.mfcc(_vowel(16000), 16000)
    for width in (3, 5, 9):
        for order in (1, 2):
            ours = sp.deltas(X, width=width, order=order)
            assert ours.dtype == np.float32
            ref = librosa.feature.delta(X, width=width, order=order)
            np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-4)


def test_deltas_of_linear_ramp_are_constant() -> None:
    t = np.arange(30, dtype=np.float32)
    X = np.stack([2.0 + 0.5 * t, -3.0 * t])
    np.testing.assert_allclose(sp.deltas(X), [[0.5] * 30, [-3.0] * 30], atol=1e-5)
    np.testing.assert_allclose(sp.deltas(X, order=2), 0.0, atol=1e-5)
    stacked = sp.with_deltas(X, width=5)
    assert stacked.shape == (6, 30) and stacked.dtype == np.float32
    np.testing.assert_allclose(stacked[:2], X)
    np.testing.assert_allclose(stacked[2:4, :], [[0.5] * 30, [-3.0] * 30], atol=1e-5)


# --------------------------------------------------------------------------------------------
# Descriptors
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "sr"), CASES)
def test_descriptors_match_librosa(name: str, sr: int) -> None:
    y = _signal(name, sr)
    kw = LIBROSA_DEFAULTS
    t = n_frames(len(y), 2048, 512)

    def check(ours: np.ndarray, ref: np.ndarray, rtol: float, atol: float = 0.0) -> None:
        assert ours.shape == ref.shape == (ref.shape[0], t)
        assert ours.dtype == np.float32
        np.testing.assert_allclose(ours, ref, rtol=rtol, atol=atol)

    # A pure tone or chirp has no noise floor: far from the signal its spectrum is the FFT's own
    # rounding (~-140 dB in float32, lower in librosa's float64), which weighs on the centroid
    # (2e-4 relative) and dominates the bandwidth, flatness and contrast of such frames. Those
    # three are compared on signals with a real noise floor (noise; vowel at -50 dB), as speech.
    floor = name in ("noise", "vowel")
    centroid_rtol = 1e-5 if floor else 2e-4
    check(sp.spectral_centroid(y, sr, **kw), librosa.feature.spectral_centroid(y=y, sr=sr), centroid_rtol)
    if floor:
        check(sp.spectral_bandwidth(y, sr, **kw), librosa.feature.spectral_bandwidth(y=y, sr=sr), 1e-5)
        check(sp.spectral_flatness(y, sr, **kw), librosa.feature.spectral_flatness(y=y), 1e-4, 1e-7)
        # Contrast valleys are near-empty bins in dB: 0.05 dB.
        check(sp.spectral_contrast(y, sr, **kw), librosa.feature.spectral_contrast(y=y, sr=sr), 0, 0.05)
    check(sp.rms(y, frame_length=2048, hop_length=512), librosa.feature.rms(y=y), 1e-5, 1e-8)
    zcr = sp.zero_crossing_rate(y, frame_length=2048, hop_length=512)
    check(zcr, librosa.feature.zero_crossing_rate(y), 0)
    # Roll-off is an FFT-bin frequency: allow a one-bin move on at most one frame in 20.
    ours = sp.spectral_rolloff(y, sr, **kw)
    ref = librosa.feature.spectral_rolloff(y=y, sr=sr)
    assert ours.shape == ref.shape
    assert np.all(np.abs(ours - ref) <= sr / 2048 + 1e-3)
    assert np.mean(ours != ref) <= 0.05


@pytest.mark.parametrize(("name", "sr"), CASES)
def test_chroma_matches_librosa(name: str, sr: int) -> None:
    y = _signal(name, sr)
    S = np.abs(librosa.stft(y)) ** 2
    # The tuning estimate is quantised to 0.01 bins and must agree exactly.
    assert sp.estimate_tuning(y, sr, n_fft=2048, hop_length=512) == pytest.approx(
        librosa.estimate_tuning(S=S, sr=sr, bins_per_octave=12), abs=1e-12
    )
    ours = sp.chroma_stft(y, sr, **LIBROSA_DEFAULTS)
    ref = librosa.feature.chroma_stft(y=y, sr=sr)
    assert ours.shape == ref.shape == (12, n_frames(len(y), 2048, 512)) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-5)
    np.testing.assert_allclose(
        sp.chroma_filterbank(sr, 2048, tuning=0.13), librosa.filters.chroma(sr=sr, n_fft=2048, tuning=0.13)
    )


def test_rms_and_zcr_hand_computed() -> None:
    sr = 16000
    # 500 Hz sine: 32 samples per period, 400-sample frames hold 12.5 periods -> RMS ~ A / sqrt(2).
    y = _tone(sr, 500.0, dur=0.2, amp=0.8)
    r = sp.rms(y)[0, 3:-3]
    np.testing.assert_allclose(r, 0.8 / np.sqrt(2), rtol=5e-3)
    # Alternating signs: every one of the frame_length - 1 neighbour pairs crosses zero.
    alt = np.tile(np.array([0.5, -0.5], dtype=np.float32), 500)
    z = sp.zero_crossing_rate(alt, frame_length=400, hop_length=160)[0, 2:-2]
    np.testing.assert_allclose(z, 399 / 400)


# --------------------------------------------------------------------------------------------
# Shapes, dtypes and errors
# --------------------------------------------------------------------------------------------


def test_shapes_and_dtypes_on_speech_grid() -> None:
    sr = 16000
    y = _vowel(sr, dur=0.5)
    t = 1 + len(y) // 160
    expected = {
        "stft_power": (sp.stft_power(y, sr), 257),
        "log_spectrogram": (sp.log_spectrogram(y, sr), 257),
        "mel_spectrogram": (sp.mel_spectrogram(y, sr), 40),
        "log_mel_spectrogram": (sp.log_mel_spectrogram(y, sr), 40),
        "mfcc": (sp.mfcc(y, sr), 20),
        "lfcc": (sp.lfcc(y, sr), 20),
        "centroid": (sp.spectral_centroid(y, sr), 1),
        "bandwidth": (sp.spectral_bandwidth(y, sr), 1),
        "rolloff": (sp.spectral_rolloff(y, sr), 1),
        "flatness": (sp.spectral_flatness(y, sr), 1),
        "contrast": (sp.spectral_contrast(y, sr), 7),
        "zcr": (sp.zero_crossing_rate(y, sr), 1),
        "rms": (sp.rms(y, sr), 1),
        "chroma": (sp.chroma_stft(y, sr), 12),
        "with_deltas": (sp.with_deltas(sp.mfcc(y, sr)), 60),
    }
    for name, (x, n_feat) in expected.items():
        assert x.shape == (n_feat, t), name
        assert x.dtype == np.float32, name
        assert np.isfinite(x).all(), name


def test_silence_gives_finite_features() -> None:
    sr = 16000
    y = np.zeros(sr // 4, dtype=np.float32)
    assert np.all(sp.spectral_centroid(y, sr) == 0)
    assert np.all(sp.spectral_rolloff(y, sr) == 0)
    assert np.isfinite(sp.chroma_stft(y, sr)).all()
    np.testing.assert_allclose(sp.mfcc(y, sr)[1:], 0.0, atol=1e-4)


def test_errors_on_bad_input() -> None:
    sr = 16000
    y = _vowel(sr, dur=0.2)
    with pytest.raises(FeatureError):
        sp.mfcc(np.zeros(0, dtype=np.float32), sr)
    with pytest.raises(FeatureError):
        sp.mfcc(np.zeros((2, 100), dtype=np.float32), sr)
    with pytest.raises(FeatureError):
        sp.mfcc(np.array([0.0, np.nan, 0.1], dtype=np.float32), sr)
    with pytest.raises(FeatureError):
        sp.mfcc(y, 0)
    with pytest.raises(FeatureError):
        sp.mfcc(y, sr, n_mfcc=41, n_mels=40)
    with pytest.raises(FeatureError):
        sp.stft_power(y, n_fft=512, win_length=600)
    with pytest.raises(FeatureError):
        sp.stft_power(y, window="no-such-window")
    with pytest.raises(FeatureError):  # 3 frames are too few for 9-frame deltas
        sp.deltas(sp.mfcc(np.ones(400, dtype=np.float32), sr))
    with pytest.raises(FeatureError):
        sp.deltas(np.zeros((2, 20)), width=4)
    with pytest.raises(FeatureError):
        sp.spectral_contrast(y, 8000)  # 6 octave bands from 200 Hz exceed 4 kHz
    with pytest.raises(FeatureError):
        sp.cqt_power(y, sr, fmin=100.0, n_bins=700)  # top bin above Nyquist


# --------------------------------------------------------------------------------------------
# Pooling
# --------------------------------------------------------------------------------------------


def test_pool_stats_values_and_names() -> None:
    X = np.array([[1.0, 2.0, 3.0, 4.0], [10.0, 10.0, 10.0, 10.0]], dtype=np.float32)
    vec, names = pool_stats(X, stats=("mean", "std", "min", "max", "median"), percentiles=(50, 25))
    assert vec.dtype == np.float32
    assert names == pooled_names(["f0", "f1"], ("mean", "std", "min", "max", "median"), (50, 25))
    assert names[:4] == ["f0_mean", "f1_mean", "f0_std", "f1_std"]
    assert names[-2:] == ["f0_p25", "f1_p25"]
    expected = [2.5, 10, np.sqrt(1.25), 0, 1, 10, 4, 10, 2.5, 10, 2.5, 10, 1.75, 10]
    np.testing.assert_allclose(vec, expected, rtol=1e-6)


def test_pool_stats_ignores_nan_frames() -> None:
    f0 = np.array([np.nan, 100.0, 200.0, np.nan, 300.0])
    X = np.stack([f0, np.full(5, np.nan)])
    vec, names = pool_stats(X, percentiles=(50,), feature_names=["f0", "unvoiced"])
    assert names == ["f0_mean", "unvoiced_mean", "f0_std", "unvoiced_std", "f0_p50", "unvoiced_p50"]
    np.testing.assert_allclose(vec[[0, 2, 4]], [200.0, np.std([100, 200, 300]), 200.0], rtol=1e-6)
    assert np.isnan(vec[[1, 3, 5]]).all()  # all-NaN feature pools to NaN
    one, _ = pool_stats(np.array([1.0, 3.0]), stats=("mean",), percentiles=())
    np.testing.assert_allclose(one, [2.0])


def test_pool_stats_errors() -> None:
    with pytest.raises(FeatureError):
        pool_stats(np.zeros((3, 0)))
    with pytest.raises(FeatureError):
        pool_stats(np.zeros((3, 5)), stats=("kurtosis",))
    with pytest.raises(FeatureError):
        pool_stats(np.zeros((3, 5)), percentiles=(120,))
    with pytest.raises(FeatureError):
        pool_stats(np.zeros((3, 5)), feature_names=["a"])
    with pytest.raises(FeatureError):
        pool_stats(np.zeros((2, 3, 5)))
