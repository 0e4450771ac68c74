"""Seed study: protocol, CV, exports with cards, ONNX parity; full-table check when the CSV exists."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from voxguard.cli import app
from voxguard.evaluate import seed_study as study
from voxguard.models.onnx_model import OnnxModel, card_path

COLUMNS = [
    "chroma_stft",
    "rms",
    "spectral_centroid",
    "spectral_bandwidth",
    "rolloff",
    "zero_crossing_rate",
    *[f"mfcc{i}" for i in range(1, 21)],
]


def write_table(path: Path, n_rows: int = 1000, seed: int = 0, separation: float = 1.2) -> Path:
    """A table with the DEEP-VOICE schema: two Gaussian classes with shifted means."""
    rng = np.random.default_rng(seed)
    y = np.arange(n_rows) % 2
    X = rng.standard_normal((n_rows, len(COLUMNS))) * 3 + 10
    X[y == 1, :6] += separation * 3
    lines = [",".join([*COLUMNS, "LABEL"])]
    lines += [",".join([*(f"{v:.6f}" for v in row), "FAKE" if lab else "REAL"]) for row, lab in zip(X, y, strict=True)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_read_table_and_errors(tmp_path):
    table = study.read_feature_table(write_table(tmp_path / "t.csv", 50))
    assert table.X.shape == (50, 26) and table.columns == COLUMNS
    assert set(np.unique(table.y)) == {0, 1} and len(table.sha256) == 64
    bad = tmp_path / "bad.csv"
    bad.write_text(",".join([*COLUMNS, "LABEL"]) + "\n" + ",".join(["1"] * 26 + ["MAYBE"]) + "\n")
    with pytest.raises(study.FeatureTableError, match="line 2"):
        study.read_feature_table(bad)
    (tmp_path / "nolabel.csv").write_text("a,b\n1,2\n")
    with pytest.raises(study.FeatureTableError, match="LABEL"):
        study.read_feature_table(tmp_path / "nolabel.csv")
    with pytest.raises(study.FeatureTableError, match="cannot read"):
        study.read_feature_table(tmp_path / "missing.csv")


def test_seed_split_matches_sklearn_protocol():
    y = np.array([0, 1] * 500)
    train, test = study.seed_split(y)
    assert len(test) == 200 and len(np.intersect1d(train, test)) == 0
    assert y[test].mean() == pytest.approx(0.5)  # stratified
    _, again_test = study.seed_split(y)
    np.testing.assert_array_equal(test, again_test)


def test_study_on_a_1000_row_sample(tmp_path):
    table = study.stratified_sample(study.read_feature_table(write_table(tmp_path / "t.csv", 1400)), 1000)
    assert len(table.y) == 1000 and table.y.mean() == pytest.approx(0.5)
    result = study.run_seed_study(table, cv_folds=3, cnn_epochs=4, workers=1)
    assert {(r["model"], r["scaler"]) for r in result.split_rows} == {
        (m, s) for m in ("svm", "cnn") for s in study.SCALER_VARIANTS
    }
    for row in result.split_rows:
        assert 0.85 < row["accuracy"] <= 1.0  # the classes are separable, but not trivially
        assert 0.0 <= row["eer"] < 0.15 and row["auc"] > 0.9
    assert all(r["folds"] == 3 and r["accuracy_std"] >= 0 for r in result.cv_rows)

    paths = study.write_outputs(result, tmp_path / "out", command="pytest")
    summary = paths["summary"].read_text()
    assert "train-only" in summary and "in-distribution" in summary
    for model in ("svm", "cnn"):
        assert paths[f"report_{model}"].is_file()
        onnx_path = paths[f"model_{model}"]
        card = json.loads(card_path(onnx_path).read_text())
        for key in ("training", "metrics", "created", "features"):
            assert card[key]
        assert card["training"]["command"] == "pytest"
        # ONNX scores agree with the framework scores on the test rows, within 1e-4.
        _, test_idx = study.seed_split(table.y)
        onnx_scores = OnnxModel(onnx_path).score(table.X[test_idx])
        reference = result.test_scores[model]["train-only"]
        np.testing.assert_allclose(onnx_scores, reference, atol=1e-4 * max(1.0, np.abs(reference).max()))
        proba = OnnxModel(onnx_path).predict_proba(table.X[test_idx])
        assert np.all((proba >= 0) & (proba <= 1))
        assert np.mean((proba > 0.5) == (table.y[test_idx] == 1)) > 0.85


def test_cnn_is_deterministic(tmp_path):
    from voxguard.models.seed_cnn import SeedCNNClassifier

    table = study.read_feature_table(write_table(tmp_path / "t.csv", 200))
    a = SeedCNNClassifier(epochs=2).fit(table.X, table.y).decision_function(table.X)
    b = SeedCNNClassifier(epochs=2).fit(table.X, table.y).decision_function(table.X)
    np.testing.assert_array_equal(a, b)


def test_cli_seed_study(tmp_path):
    csv_path = write_table(tmp_path / "t.csv", 300)
    result = CliRunner().invoke(
        app,
        [
            "seed-study",
            "--csv",
            str(csv_path),
            "--out",
            str(tmp_path / "o"),
            "--models",
            "svm",
            "--folds",
            "2",
            "--workers",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "| svm | all-rows |" in result.stdout
    assert (tmp_path / "o" / "models" / "seed-svm.onnx").is_file()


def test_full_deep_voice_table_reproduces_seed_svm():
    """The seed's SVM figure on the real table (skipped when ../shared is absent)."""
    import os

    csv_path = Path(
        os.environ.get("VOXGUARD_DEEPVOICE_CSV", Path(__file__).parents[2] / "shared/deep-voice/DATASET-balanced.csv")
    )
    if not csv_path.is_file():
        pytest.skip("DEEP-VOICE table not found: set VOXGUARD_DEEPVOICE_CSV to DATASET-balanced.csv")
    table = study.read_feature_table(csv_path)
    result = study.run_seed_study(table, models=("svm",), cv_folds=0, workers=1, export=False)
    row = next(r for r in result.split_rows if r["scaler"] == "all-rows")
    assert result.n_test == 2356
    assert round(row["accuracy"] * result.n_test) >= 2347  # 2347/2356 = 99.62 %, the seed's figure


def test_cnn_weights_are_safe_and_export_to_onnx(tmp_path):
    """The seed study also writes the CNN as safetensors + JSON; `voxguard export` converts it to
    ONNX with torch/ONNX parity within 1e-4, and copies the card."""
    table = study.read_feature_table(write_table(tmp_path / "t.csv", 300))
    result = study.run_seed_study(table, models=("cnn",), cv_folds=0, cnn_epochs=2, workers=1)
    paths = study.write_outputs(result, tmp_path / "o", command="pytest")
    weights = paths["model_cnn"].with_name("seed-cnn.safetensors")
    assert weights.is_file() and b"\x80\x04" not in weights.read_bytes()[:2]  # not a pickle
    out = tmp_path / "exported" / "cnn.onnx"
    out.parent.mkdir()
    cli = CliRunner().invoke(app, ["export", str(weights), "--onnx", "--out", str(out)])
    assert cli.exit_code == 0, cli.output
    assert "max |ONNX - torch|" in cli.stdout
    exported = OnnxModel(out)  # needs the copied card
    _, test_idx = study.seed_split(table.y)
    np.testing.assert_allclose(exported.score(table.X[test_idx]), result.test_scores["cnn"]["train-only"], atol=1e-4)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"nope")
    assert CliRunner().invoke(app, ["export", str(bad), "--out", str(tmp_path / "b.onnx")]).exit_code == 2
