"""Segment-level features, augmentation, and the train -> ONNX -> detector path on generated data."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import soundfile as sf
from scipy import signal

from signals import speechlike
from voxguard import augment
from voxguard.audio import segment_bounds
from voxguard.features.segmental import SegmentalConfig, frame_matrix, segment_vectors

SR = 16_000


# --------------------------------------------------------------------------- features


def test_segment_vectors_match_direct_pooling():
    y = speechlike(SR, 9.0)
    cfg = SegmentalConfig()
    frames = frame_matrix(y, SR, cfg)
    assert frames.shape[0] == len(cfg.frame_names()) and frames.shape[1] == 1 + len(y) // cfg.hop_length
    bounds = segment_bounds(len(y), SR, 4.0, 2.0)
    vectors = segment_vectors(frames, bounds, cfg.hop_length)
    assert vectors.shape == (len(bounds), len(cfg.vector_names()))
    for k, (a, b) in enumerate(bounds):
        first, last = int(np.ceil(a / cfg.hop_length)), int(np.ceil(b / cfg.hop_length))
        direct = np.concatenate([frames[:, first:last].mean(1), frames[:, first:last].std(1)])
        np.testing.assert_allclose(vectors[k], direct, rtol=1e-4, atol=1e-4)


def test_segmental_config_validates_and_round_trips():
    cfg = SegmentalConfig(views=("lfcc_4_8k",), stats=("mean",))
    assert SegmentalConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(Exception, match="unknown views"):
        SegmentalConfig(views=("nope",))


# --------------------------------------------------------------------------- augmentation


def _band_energy(y: np.ndarray, lo: float, hi: float) -> float:
    f, p = signal.welch(y, SR, nperseg=1024)
    return float(p[(f >= lo) & (f < hi)].sum())


def test_band_limit_removes_high_band():
    y = (np.random.default_rng(0).standard_normal(SR * 2) * 0.1).astype(np.float32)
    out = augment.band_limit(y, SR, 4_000)
    assert len(out) == len(y)
    assert _band_energy(out, 4_500, 8_000) < 1e-3 * _band_energy(y, 4_500, 8_000)
    assert _band_energy(out, 500, 3_000) > 0.8 * _band_energy(y, 500, 3_000)


@pytest.mark.parametrize("snr", [0.0, 10.0, 25.0])
def test_noise_snr_is_measured_back(snr):
    y = speechlike(SR, 2.0)
    noisy = augment.add_noise(y, snr, seed=3)
    noise = noisy - y
    measured = 10 * np.log10(np.mean(y.astype(np.float64) ** 2) / np.mean(noise.astype(np.float64) ** 2))
    assert abs(measured - snr) < 0.5
    np.testing.assert_array_equal(noisy, augment.add_noise(y, snr, seed=3))


@pytest.mark.parametrize("codec", ["opus", "mp3"])
def test_codec_round_trip_is_aligned_and_lossy(codec):
    y = speechlike(SR, 2.0)
    out = augment.codec_roundtrip(y, SR, codec, 32_000)
    assert len(out) == len(y)
    assert np.corrcoef(y, out)[0, 1] > 0.9  # aligned (codec delay removed)
    assert not np.allclose(y, out, atol=1e-3)  # and really coded


def test_random_degradation_is_seeded():
    y = speechlike(SR, 1.5)
    a, how = augment.random_degradation(y, SR, seed=5)
    b, how_b = augment.random_degradation(y, SR, seed=5)
    assert how == how_b and np.allclose(a, b, atol=1e-6)


# --------------------------------------------------------------------------- training end to end


def _make_clip(kind: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y = speechlike(SR, 3.0, f0=float(rng.uniform(90, 220)), seed=seed)
    if kind == "lowpass":  # a "generator" that loses the upper band
        y = signal.sosfilt(signal.butter(8, 3_500, fs=SR, output="sos"), y)
    elif kind == "buzz":  # a "generator" with a tonal artefact in the 4-8 kHz band
        y = y + 0.05 * np.sin(2 * np.pi * 6_000 * np.arange(len(y)) / SR)
    return (y * rng.uniform(0.3, 0.9)).astype(np.float32)


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    rows = []
    for i in range(36):
        kind = ["real", "real", "lowpass", "buzz"][i % 4]
        path = root / f"{kind}_{i}.wav"
        sf.write(path, _make_clip(kind, i), SR, subtype="PCM_16")
        label = "bonafide" if kind == "real" else "spoof"
        rows.append(
            {
                "path": path.name,
                "label": label,
                "system": kind if label == "spoof" else "bonafide",
                "attack_type": "vocoder" if label == "spoof" else "bonafide",
                "speaker": f"spk{i % 6}",
                "dataset": "generated",
                "family": kind if label == "spoof" else "bonafide",
                "utt_group": f"u{i}",
            }
        )
    with open(root / "manifest.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return root / "manifest.csv"


def test_train_export_and_scan(tiny_corpus, tmp_path):
    from voxguard.datasets import load_manifest
    from voxguard.evaluate.training import train_segmental, write_training_report
    from voxguard.models.detector import Detector
    from voxguard.models.segmental import SegmentalClassifier
    from voxguard.scan import Scanner

    dataset = load_manifest(tiny_corpus)
    model = SegmentalClassifier(C=1.0, segment_s=2.0, hop_s=1.0)
    result = train_segmental(dataset, tmp_path / "m.onnx", model=model, name="tiny", workers=1, folds=3, progress=False)
    card = result.card
    assert card.features["kind"] == "segmental" and card.training["clips_failed"] == 0
    assert set(card.metrics) == {"grouped_cv", "leave_one_family_out"}
    assert set(card.metrics["leave_one_family_out"]["per_family_eer"]) == {"lowpass", "buzz"}
    assert card.metrics["grouped_cv"]["eer"] < 0.2  # separable on purpose
    thresholds = card.output["thresholds"]
    assert 0.0 <= thresholds["eer"] <= thresholds["low-fa"] <= 1.0

    # ONNX parity with the scikit-learn model on real segment rows.
    detector = Detector.load(result.model_path)
    from voxguard.models.segmental import SegmentalClassifier as _SC

    final = _SC(C=1.0, segment_s=2.0, hop_s=1.0).fit(result.table.X, result.table.y)
    rows = result.table.X[:50]
    np.testing.assert_allclose(detector.model.score(rows), final.decision_function(rows), atol=1e-4, rtol=1e-4)

    # The scanner uses the model's own features and thresholds.
    scanner = Scanner(detector)
    real = scanner.scan(_make_clip("real", 999), sr=SR)
    fake = scanner.scan(_make_clip("lowpass", 998), sr=SR)
    assert fake.probability > real.probability
    html = write_training_report(result, dataset, tmp_path / "report")
    assert html.is_file()


def test_nan_frames_do_not_count_in_pooling():
    frames = np.array([[1.0, np.nan, 3.0, np.nan, 5.0, 7.0], [1.0, 1.0, 1.0, 1.0, 1.0, 1.0]], dtype=np.float32)
    bounds = np.array([[0, 4], [0, 6], [1, 2]])  # hop 1: frames [0, 4), [0, 6), [1, 2)
    v = segment_vectors(frames, bounds, hop_length=1)
    np.testing.assert_allclose(v[0, :2], [2.0, 1.0])  # mean of 1 and 3; the NaNs are skipped
    np.testing.assert_allclose(v[1, :2], [4.0, 1.0])
    np.testing.assert_allclose(v[0, 2:], [1.0, 0.0])  # std of 1 and 3
    assert v[2, 0] == 0.0 and np.isfinite(v).all()  # a segment of only NaN frames pools to 0


def test_full_feature_views_are_finite():
    cfg = SegmentalConfig(views=("spectral", "prosody"))
    y = np.concatenate([np.zeros(SR // 2, np.float32), speechlike(SR, 3.0)])
    frames = frame_matrix(y, SR, cfg)
    assert frames.shape[0] == len(cfg.frame_names())
    vectors = segment_vectors(frames, segment_bounds(len(y), SR, 2.0, 1.0), cfg.hop_length)
    assert np.isfinite(vectors).all()


def test_cross_corpus_protocol(tiny_corpus):
    from voxguard.datasets import load_manifest
    from voxguard.datasets.splits import cross_corpus_split
    from voxguard.evaluate.protocols import run_protocol
    from voxguard.models.segmental import SegmentalClassifier, build_segment_table

    full = load_manifest(tiny_corpus)
    half = np.arange(len(full)) < len(full) // 2
    corpus_a = full.filter(lambda item: half[int(item.utt_group[1:])])
    corpus_b = full.filter(lambda item: not half[int(item.utt_group[1:])])
    dataset, split = cross_corpus_split(corpus_a, corpus_b)
    model = SegmentalClassifier(C=1.0, segment_s=2.0, hop_s=1.0)
    table = build_segment_table(dataset, model, augment=False, workers=1, progress=False)
    result = run_protocol(
        dataset, table, lambda: SegmentalClassifier(C=1.0, segment_s=2.0, hop_s=1.0), protocol="cross", split=split
    )
    tested = ~np.isnan(result.scores)
    assert tested.sum() == len(corpus_b) and not tested[: len(corpus_a)].any()  # only corpus B is scored
    assert set(result.fold_eer) == {"cross"} and result.fold_eer["cross"] < 0.5
