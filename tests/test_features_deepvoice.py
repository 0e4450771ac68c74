"""DEEP-VOICE features against the seed study's recipe run with librosa.

Reference: each chunk of samples passed to librosa on its own with default parameters, each feature
averaged over its frames with ``np.mean`` (Bird & Lotfi 2023). Tolerances: 1e-5 relative for
chroma, RMS, centroid, bandwidth and ZCR (float32 vs float64 FFT on signals with a noise floor),
one FFT bin (``sr / 2048`` Hz) for the mean roll-off, and 1e-5 of the largest coefficient for
the mean MFCCs (dB).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.signal

from voxguard.errors import FeatureError
from voxguard.features.deepvoice import DEEPVOICE_COLUMNS, deepvoice_features

librosa = pytest.importorskip("librosa")

CSV = Path(__file__).parents[2] / "shared" / "deep-voice" / "DATASET-balanced.csv"
HEADER = (
    "chroma_stft,rms,spectral_centroid,spectral_bandwidth,rolloff,zero_crossing_rate,"
    "mfcc1,mfcc2,mfcc3,mfcc4,mfcc5,mfcc6,mfcc7,mfcc8,mfcc9,mfcc10,"
    "mfcc11,mfcc12,mfcc13,mfcc14,mfcc15,mfcc16,mfcc17,mfcc18,mfcc19,mfcc20"
)


def _speech(sr: int, dur: float, seed: int = 0) -> np.ndarray:
    """Voiced syllables: harmonic source with gliding F0 through vowel formants, 4 Hz envelope."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(sr * dur))) / sr
    f0 = 110.0 + 40.0 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    k = np.arange(1, int(sr / 2 / 150))[:, None]
    y = (np.sin(k * phase) / k).sum(axis=0)
    for fc, bw in ((650, 80), (1500, 100), (2700, 140)):
        r = np.exp(-np.pi * bw / sr)
        y = scipy.signal.lfilter([1 - r], [1, -2 * r * np.cos(2 * np.pi * fc / sr), r * r], y)
    y *= 0.3 + 0.7 * np.sin(np.pi * 4 * t) ** 2
    y += 0.02 * np.abs(y).max() * rng.standard_normal(len(y))
    return (0.4 * y / np.abs(y).max()).astype(np.float32)


def _librosa_row(c: np.ndarray, sr: int) -> list[float]:
    row = [
        np.mean(librosa.feature.chroma_stft(y=c, sr=sr)),
        np.mean(librosa.feature.rms(y=c)),
        np.mean(librosa.feature.spectral_centroid(y=c, sr=sr)),
        np.mean(librosa.feature.spectral_bandwidth(y=c, sr=sr)),
        np.mean(librosa.feature.spectral_rolloff(y=c, sr=sr)),
        np.mean(librosa.feature.zero_crossing_rate(c)),
    ]
    return row + list(np.mean(librosa.feature.mfcc(y=c, sr=sr), axis=1))


def _assert_rows_match(ours: np.ndarray, ref: np.ndarray, sr: int) -> None:
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours[:, [0, 1, 2, 3, 5]], ref[:, [0, 1, 2, 3, 5]], rtol=1e-5)
    np.testing.assert_allclose(ours[:, 4], ref[:, 4], rtol=0, atol=sr / 2048)
    np.testing.assert_allclose(ours[:, 6:], ref[:, 6:], rtol=1e-4, atol=1e-5 * np.abs(ref[:, 6:]).max())


def test_columns_are_the_csv_header() -> None:
    assert ",".join(DEEPVOICE_COLUMNS) == HEADER
    if CSV.is_file():
        with CSV.open() as f:
            assert f.readline().strip() == HEADER + ",LABEL"


@pytest.mark.parametrize("sr", [16000, 22050, 44100])
def test_matches_librosa_per_second(sr: int) -> None:
    y = _speech(sr, 2.6)
    ours = deepvoice_features(y, sr)
    assert ours.shape == (3, 26) and ours.dtype == np.float32
    # Two full seconds, then the 0.6 s tail on its own (kept: >= 0.5 s).
    chunks = [y[:sr], y[sr : 2 * sr], y[2 * sr :]]
    ref = np.array([_librosa_row(c, sr) for c in chunks])
    _assert_rows_match(ours, ref, sr)


def test_magnitudes_are_plausible() -> None:
    # Same ranges as the DEEP-VOICE table's rows for speech (sanity, not a reference).
    row = deepvoice_features(_speech(22050, 1.0), 22050)[0]
    feats = dict(zip(DEEPVOICE_COLUMNS, row, strict=True))
    assert 0 < feats["chroma_stft"] < 1
    assert 0 < feats["rms"] < 0.4
    assert 200 < feats["spectral_centroid"] < 8000
    assert 0 < feats["zero_crossing_rate"] < 0.5
    assert -800 < feats["mfcc1"] < 0


def test_trailing_window_and_short_clips() -> None:
    sr = 16000
    y = _speech(sr, 2.3)
    # 0.3 s tail is below min_window_s=0.5 and dropped.
    np.testing.assert_allclose(deepvoice_features(y, sr), deepvoice_features(y[: 2 * sr], sr), rtol=1e-6)
    assert deepvoice_features(y, sr, min_window_s=0.25).shape == (3, 26)
    assert deepvoice_features(y, sr, window_s=0.5).shape == (4, 26)
    # A clip shorter than one window but >= 0.5 s gives one row from the whole clip.
    short = y[: int(0.7 * sr)]
    out = deepvoice_features(short, sr)
    assert out.shape == (1, 26)
    _assert_rows_match(out, np.array([_librosa_row(short, sr)]), sr)
    with pytest.raises(FeatureError):
        deepvoice_features(y[: int(0.3 * sr)], sr)
    with pytest.raises(FeatureError):
        deepvoice_features(y, sr, window_s=0.0)
    with pytest.raises(FeatureError):
        deepvoice_features(np.zeros(0, dtype=np.float32), sr)


def test_windows_are_independent() -> None:
    sr = 16000
    a, b = _speech(sr, 1.0, seed=1), _speech(sr, 1.0, seed=2) * 0.1
    both = deepvoice_features(np.concatenate([a, b]), sr)
    # Equal up to BLAS summation order (the chunks are batched in one matrix product).
    np.testing.assert_allclose(both[0], deepvoice_features(a, sr)[0], rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(both[1], deepvoice_features(b, sr)[0], rtol=1e-6, atol=1e-5)
