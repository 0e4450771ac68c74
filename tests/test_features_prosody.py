"""Tests of voxguard.features.prosody on generated signals with known ground truth.

Tolerances: F0 within 1 % (median) / 2 % (95 % of voiced frames) of the true value; formants
within 10 % (LPC is biased towards harmonics for low F1 at high F0, so vowels use F0 <= 120 Hz
except /a/); jitter and shimmer within a factor of two of the synthesis value.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.linalg
import scipy.signal

from voxguard.errors import FeatureError
from voxguard.features import prosody as P

SR = 16000
HOP = 160


# ----------------------------------------------------------------------------------------------
# signal generators


def _tone(f0: float, dur: float = 1.0) -> np.ndarray:
    t = np.arange(int(dur * SR)) / SR
    return (0.5 * np.sin(2 * np.pi * f0 * t)).astype(np.float32)


def _harmonic(f0: float, dur: float = 1.0, n_harm: int = 8) -> np.ndarray:
    t = np.arange(int(dur * SR)) / SR
    y = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, n_harm + 1))
    return (0.3 * y).astype(np.float32)


def _glide(f_start: float, f_end: float, dur: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    """Exponential glide (harmonic complex); returns the signal and its F0 at every sample."""
    t = np.arange(int(dur * SR)) / SR
    ratio = f_end / f_start
    inst = f_start * ratio ** (t / dur)
    phase = 2 * np.pi * f_start * dur / np.log(ratio) * (ratio ** (t / dur) - 1)
    y = sum(np.sin(k * phase) / k for k in range(1, 7))
    return (0.3 * y).astype(np.float32), inst


def _voice(
    f0: float,
    dur: float = 1.0,
    formants: tuple[float, ...] = (730.0, 1090.0, 2440.0),
    bandwidths: tuple[float, ...] = (60.0, 90.0, 120.0),
    jitter: float = 0.0,
    shimmer: float = 0.0,
    seed: int = 0,
) -> np.ndarray:
    """Source-filter vowel: pulse train (optionally with uniform random period and amplitude
    perturbation of +-jitter, +-shimmer per cycle) -> glottal tilt -> resonators -> radiation."""
    rng = np.random.default_rng(seed)
    n = int(dur * SR)
    period = SR / f0
    n_cycles = int(n / period) + 2
    periods = period * (1 + jitter * rng.uniform(-1, 1, n_cycles))
    amps = 1 + shimmer * rng.uniform(-1, 1, n_cycles)
    pos = np.cumsum(periods)
    keep = pos < n - 1
    pos, amps = pos[keep], amps[keep]
    x = np.zeros(n)
    i = np.floor(pos).astype(int)
    frac = pos - i
    # splitting each pulse over two samples keeps sub-sample timing for the jittered signals
    np.add.at(x, i, amps * (1 - frac))
    np.add.at(x, i + 1, amps * frac)
    x = scipy.signal.lfilter([1.0], [1.0, -1.94, 0.9409], x)  # glottal source, -12 dB/oct
    for f, b in zip(formants, bandwidths, strict=True):
        r = np.exp(-np.pi * b / SR)
        x = scipy.signal.lfilter([1 - r], [1, -2 * r * np.cos(2 * np.pi * f / SR), r * r], x)
    x = np.diff(x, prepend=0.0)  # lip radiation, +6 dB/oct
    return (0.5 * x / np.abs(x).max()).astype(np.float32)


def _n_frames(y: np.ndarray) -> int:
    return 1 + len(y) // HOP


# ----------------------------------------------------------------------------------------------
# F0


@pytest.mark.parametrize("f0", [120.0, 220.0])
@pytest.mark.parametrize("kind", ["tone", "harmonic"])
def test_f0_of_periodic_signals(kind: str, f0: float) -> None:
    y = _tone(f0) if kind == "tone" else _harmonic(f0)
    est, voiced, aper = P.f0_yin(y, SR, hop_length=HOP)
    assert est.shape == voiced.shape == aper.shape == (_n_frames(y),)
    assert est.dtype == np.float32 and aper.dtype == np.float32 and voiced.dtype == bool
    assert voiced.mean() > 0.95
    assert np.all(np.isnan(est[~voiced])) and np.all(np.isfinite(est[voiced]))
    rel = np.abs(est[voiced] / f0 - 1)
    assert np.median(rel) < 0.01
    assert np.quantile(rel, 0.95) < 0.02
    assert np.median(aper[voiced]) < 0.05


def test_f0_follows_glide() -> None:
    y, inst = _glide(100.0, 250.0)
    est, voiced, _ = P.f0_yin(y, SR, hop_length=HOP)
    truth = inst[np.minimum(np.arange(len(est)) * HOP, len(y) - 1)]
    inner = slice(5, -5)  # frames touching the zero padding at the ends
    assert voiced[inner].mean() > 0.95
    rel = np.abs(est[inner] / truth[inner] - 1)[voiced[inner]]
    assert np.median(rel) < 0.01
    assert np.quantile(rel, 0.95) < 0.02


@pytest.mark.parametrize(
    "make",
    [lambda: _harmonic(220.0), lambda: _voice(120.0), lambda: _glide(100.0, 250.0)[0]],
    ids=["harmonic220", "vowel120", "glide"],
)
def test_f0_agrees_with_librosa_yin(make) -> None:
    librosa = pytest.importorskip("librosa")
    y = make()
    est, voiced, _ = P.f0_yin(y, SR, fmin=50.0, fmax=500.0, frame_length=1024, hop_length=HOP)
    ref = librosa.yin(y, fmin=50.0, fmax=500.0, sr=SR, frame_length=1024, hop_length=HOP)
    assert ref.shape == est.shape
    inner = np.zeros_like(voiced)
    inner[5:-5] = True
    rel = np.abs(est / ref - 1)[voiced & inner]
    assert rel.size > 0.9 * (len(est) - 10)
    assert np.median(rel) < 0.005
    assert np.quantile(rel, 0.95) < 0.02


def test_noise_is_mostly_unvoiced() -> None:
    y = (0.1 * np.random.default_rng(1).standard_normal(SR)).astype(np.float32)
    _, voiced, aper = P.f0_yin(y, SR, hop_length=HOP)
    assert voiced.mean() < 0.05
    assert np.median(aper) > 0.5


def test_silence_is_unvoiced_and_summary_is_nan() -> None:
    y = np.zeros(SR, dtype=np.float32)
    est, voiced, aper = P.f0_yin(y, SR, hop_length=HOP)
    assert not voiced.any() and np.all(np.isnan(est)) and np.all(aper == 1)
    assert np.all(np.isnan(P.formants(y, SR, hop_length=HOP)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "mean of empty slice" noise
        vec, names = P.prosody_summary(y, SR)
    d = dict(zip(names, vec, strict=True))
    assert np.isnan(d["f0_mean_hz"]) and np.isnan(d["jitter_local"]) and np.isnan(d["f1_mean_hz"])
    assert d["voicing_rate"] == 0


def test_voicing_onset_is_on_the_frame_grid() -> None:
    # 0.5 s silence, then a vowel: the first voiced frames are those centred after 0.5 s
    y = np.concatenate([np.zeros(SR // 2, np.float32), _voice(150.0, dur=0.5)])
    _, voiced, _ = P.f0_yin(y, SR, hop_length=HOP)
    onset = np.argmax(voiced)
    assert abs(onset - (SR // 2) // HOP) <= 3
    fm = P.formants(y, SR, hop_length=HOP)
    assert abs(np.argmax(np.isfinite(fm[0])) - (SR // 2) // HOP) <= 3


def test_median_smoothing_removes_an_octave_blip() -> None:
    f0 = np.full(20, 120.0, dtype=np.float32)
    f0[10] = 240.0
    f0[15:] = np.nan
    out = P._median_smooth_voiced(f0, 3)
    assert out[10] == 120.0
    assert np.all(np.isnan(out[15:])) and out[14] == 120.0


# ----------------------------------------------------------------------------------------------
# formants


@pytest.mark.parametrize(
    ("f0", "truth"),
    [
        (120.0, (730.0, 1090.0, 2440.0)),  # /a/
        (220.0, (730.0, 1090.0, 2440.0)),  # /a/, female F0
        (120.0, (270.0, 2290.0, 3010.0)),  # /i/
        (120.0, (300.0, 870.0, 2240.0)),  # /u/
    ],
)
def test_formants_of_synthetic_vowels(f0: float, truth: tuple[float, float, float]) -> None:
    y = _voice(f0, formants=truth)
    fm = P.formants(y, SR, hop_length=HOP)
    assert fm.shape == (3, _n_frames(y)) and fm.dtype == np.float32
    inner = fm[:, 5:-5]
    assert np.isfinite(inner).mean() > 0.9
    est = np.nanmedian(inner, axis=1)
    np.testing.assert_allclose(est, truth, rtol=0.10)
    assert np.all(np.diff(inner, axis=0)[np.isfinite(np.diff(inner, axis=0))] > 0)  # ascending


def test_formants_options_and_other_rates() -> None:
    y = _voice(120.0)
    y22 = scipy.signal.resample_poly(y, 441, 320).astype(np.float32)  # 22.05 kHz
    fm = P.formants(y22, 22050, hop_length=220)
    assert fm.shape == (3, 1 + len(y22) // 220)
    np.testing.assert_allclose(np.nanmedian(fm[:, 5:-5], axis=1), (730, 1090, 2440), rtol=0.10)
    assert P.formants(y, SR, n_formants=4, order=12).shape == (4, _n_frames(y))


def test_lpc_roots_match_numpy_roots() -> None:
    rng = np.random.default_rng(0)
    a = np.concatenate([np.ones((5, 1)), 0.3 * rng.standard_normal((5, 6))], axis=1)
    got = np.sort_complex(P._lpc_roots(a))
    want = np.stack([np.sort_complex(np.roots(row)) for row in a])
    np.testing.assert_allclose(got, want, atol=1e-8)


def test_levinson_matches_linear_solve() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 400))
    order = 8
    r = np.stack([np.einsum("nj,nj->n", x[:, : 400 - k], x[:, k:]) for k in range(order + 1)], 1)
    a, _ = P._levinson(r, order)
    for row, coef in zip(r, a, strict=True):
        toeplitz = scipy.linalg.toeplitz(row[:order])
        np.testing.assert_allclose(coef[1:], np.linalg.solve(toeplitz, -row[1:]), rtol=1e-8)


# ----------------------------------------------------------------------------------------------
# jitter and shimmer


def test_jitter_on_known_sequences() -> None:
    assert P.jitter(np.full(10, 100.0)) == 0.0
    # periods alternate 10 ms / 8 ms: |diff| = 2 ms, mean period 9 ms
    assert P.jitter(np.array([100.0, 125.0, 100.0, 125.0])) == pytest.approx(2 / 9)
    assert np.isnan(P.jitter(np.array([100.0, np.nan, 125.0])))
    assert np.isnan(P.jitter(np.array([100.0, 200.0])))  # octave jump: beyond the 1.3 factor


def test_jitter_and_shimmer_zero_for_periodic_voice() -> None:
    y = _voice(125.0)  # 128-sample period: exactly periodic
    f0, _, _ = P.f0_yin(y, SR, hop_length=HOP)
    marks, _, consecutive = P.glottal_cycles(y, SR, f0, hop_length=HOP)
    assert marks.size >= 120 and consecutive.mean() > 0.95
    # after the filters' start-up transient (first cycles) the marks are exactly one period apart
    np.testing.assert_allclose(np.diff(marks)[3:][consecutive[3:]], 128.0, atol=0.02)
    assert P.jitter(np.where(consecutive, SR / np.diff(marks), np.nan)) < 1e-3
    assert P.shimmer(y, SR, f0, hop_length=HOP) < 1e-3
    assert P.jitter(f0) < 1e-3  # frame-based


@pytest.mark.parametrize("amount", [0.01, 0.03])
def test_jitter_grows_with_period_perturbation(amount: float) -> None:
    y = _voice(125.0, jitter=amount, seed=3)
    vec, names = P.prosody_summary(y, SR)
    d = dict(zip(names, vec, strict=True))
    expected = 2 * amount / 3  # E|u1 - u2| for u ~ U(-a, a)
    assert 0.5 * expected < d["jitter_local"] < 1.5 * expected


@pytest.mark.parametrize("amount", [0.05, 0.15])
def test_shimmer_grows_with_amplitude_perturbation(amount: float) -> None:
    y = _voice(160.0, shimmer=amount, seed=4)  # 100-sample period
    f0, _, _ = P.f0_yin(y, SR, hop_length=HOP)
    value = P.shimmer(y, SR, f0, hop_length=HOP)
    expected = 2 * amount / 3
    assert 0.5 * expected < value < 2.0 * expected
    vec, names = P.prosody_summary(y, SR)
    assert dict(zip(names, vec, strict=True))["shimmer_local"] == pytest.approx(value, rel=1e-5)


def test_shimmer_rejects_mismatched_track() -> None:
    y = _voice(125.0, dur=0.5)
    with pytest.raises(FeatureError):
        P.glottal_cycles(y, SR, np.full(7, 125.0), hop_length=HOP)


# ----------------------------------------------------------------------------------------------
# stacked features and summary


def test_prosody_features_layout() -> None:
    y = _voice(120.0)
    X, names = P.prosody_features(y, SR)
    assert X.shape == (len(names), _n_frames(y)) and X.dtype == np.float32
    assert names == list(P.PROSODY_FEATURE_NAMES)
    row = dict(zip(names, X, strict=True))
    inner = slice(5, -5)
    assert np.nanmedian(row["f0_hz"][inner]) == pytest.approx(120.0, rel=0.01)
    assert row["voiced"][inner].mean() > 0.95
    assert set(np.unique(row["voiced"])) <= {0.0, 1.0}
    assert np.nanmedian(row["f1_hz"][inner]) == pytest.approx(730.0, rel=0.10)
    assert np.all((row["spectral_flatness"] >= 0) & (row["spectral_flatness"] <= 1))


def test_local_flatness_matches_librosa() -> None:
    librosa = pytest.importorskip("librosa")
    y = np.concatenate([_voice(120.0, dur=0.5), 0.1 * np.random.default_rng(2).standard_normal(SR // 2)])
    y = y.astype(np.float32)
    ours = P._spectral_flatness_local(y, SR, n_fft=512, hop_length=HOP)
    ref = librosa.feature.spectral_flatness(y=y, n_fft=512, hop_length=HOP)[0]
    np.testing.assert_allclose(ours, ref, rtol=1e-3, atol=1e-6)


def test_prosody_summary_of_a_vowel() -> None:
    vec, names = P.prosody_summary(_voice(120.0), SR)
    assert vec.shape == (len(names),) and vec.dtype == np.float32
    assert names == list(P.PROSODY_SUMMARY_NAMES)
    d = dict(zip(names, vec, strict=True))
    assert d["f0_p50_hz"] == pytest.approx(120.0, rel=0.01)
    assert d["f0_mean_hz"] == pytest.approx(120.0, rel=0.01)
    assert d["f0_min_hz"] <= d["f0_p05_hz"] <= d["f0_p50_hz"] <= d["f0_p95_hz"] <= d["f0_max_hz"]
    assert d["f0_range_st"] < 0.5 and d["f0_std_st"] < 0.5
    assert d["voicing_rate"] > 0.9
    assert d["jitter_local"] < 0.01 and d["shimmer_local"] < 0.02
    assert d["f1_mean_hz"] == pytest.approx(730.0, rel=0.10)
    assert d["f3_mean_hz"] == pytest.approx(2440.0, rel=0.10)
    assert 0 < d["flatness_mean"] < 0.5


def test_prosody_summary_glide_range_in_semitones() -> None:
    y, _ = _glide(100.0, 200.0, dur=1.0)
    vec, names = P.prosody_summary(y, SR)
    d = dict(zip(names, vec, strict=True))
    # the 5th-95th percentile span of a one-octave exponential glide is 0.9 octave
    assert d["f0_range_st"] == pytest.approx(0.9 * 12, abs=0.5)


# ----------------------------------------------------------------------------------------------
# errors


@pytest.mark.parametrize(
    "call",
    [
        lambda y: P.f0_yin(y, SR),
        lambda y: P.formants(y, SR),
        lambda y: P.prosody_features(y, SR),
        lambda y: P.prosody_summary(y, SR),
    ],
    ids=["f0_yin", "formants", "features", "summary"],
)
def test_too_short_signal_raises(call) -> None:
    with pytest.raises(FeatureError, match="shorter than one"):
        call(np.zeros(200, dtype=np.float32))


def test_bad_input_raises() -> None:
    y = _tone(120.0, dur=0.3)
    with pytest.raises(FeatureError):
        P.f0_yin(np.stack([y, y]), SR)
    with pytest.raises(FeatureError):
        P.f0_yin(np.where(np.arange(len(y)) == 5, np.nan, y), SR)
    with pytest.raises(FeatureError):
        P.f0_yin(y, SR, fmin=300.0, fmax=200.0)
    with pytest.raises(FeatureError):
        P.f0_yin(y, SR, fmax=9000.0)
    with pytest.raises(FeatureError):
        P.f0_yin(y, SR, frame_length=256)  # < 2 * sr / fmin
