"""Train/serve consistency: a model trained on a DEEP-VOICE-style table scores audio through the
same 26-feature extractor, on 1-second windows, and its ONNX export is all inference needs."""

from __future__ import annotations

import numpy as np
import soundfile as sf
from scipy import signal

from signals import speechlike
from voxguard.evaluate import seed_study as study
from voxguard.features.deepvoice import DEEPVOICE_COLUMNS, deepvoice_features
from voxguard.models.detector import Detector

SR = 22_050


def make_clip(label: int, seed: int) -> np.ndarray:
    """'real': a vowel-like signal; 'fake': the same kind of signal, band-limited to 3 kHz."""
    rng = np.random.default_rng(seed)
    y = speechlike(SR, 4.0, f0=float(rng.uniform(90, 220)), seed=seed)
    if label:
        sos = signal.butter(8, 3_000, fs=SR, output="sos")
        y = signal.sosfilt(sos, y).astype(np.float32)
    return y * np.float32(rng.uniform(0.3, 1.0))


def test_table_model_scores_audio_windows(tmp_path):
    rows, labels = [], []
    for seed in range(24):
        label = seed % 2
        X = deepvoice_features(make_clip(label, seed), SR)
        rows.append(X)
        labels += [label] * len(X)
    table = study.FeatureTable(np.vstack(rows).astype(np.float64), np.array(labels), list(DEEPVOICE_COLUMNS))
    result = study.run_seed_study(table, models=("svm",), cv_folds=0, workers=1)
    paths = study.write_outputs(result, tmp_path, command="pytest")
    detector = Detector.load(paths["model_svm"])
    assert detector.kind == "deepvoice" and detector.sample_rate is None  # native rate, as the table

    for label in (0, 1):
        path = tmp_path / f"heldout_{label}.wav"
        sf.write(path, make_clip(label, 1000 + label), SR)
        windows = detector.score(path)
        assert len(windows.scores) == 4  # one row per second
        np.testing.assert_allclose(windows.starts_s, [0, 1, 2, 3])
        # Per-file aggregation: the mean window probability decides.
        assert (windows.proba.mean() > 0.5) == bool(label)
        # The audio path computes exactly the features the model was trained on.
        y, sr = sf.read(path, dtype="float32")
        np.testing.assert_allclose(
            detector.model.score(deepvoice_features(y, sr)), windows.scores, rtol=1e-6, atol=1e-6
        )
