"""voxguard.evaluate.robustness and `voxguard robustness`: conditions, both protocols, the report."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from signals import speechlike, write_tiny_corpus
from voxguard.cli import app
from voxguard.errors import VoxguardError
from voxguard.evaluate import robustness as rb

SR = 16_000


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory):
    return write_tiny_corpus(tmp_path_factory.mktemp("robust"), n=24)


def test_condition_sets_resolve_and_always_include_clean():
    quick = rb.resolve_conditions("quick")
    assert quick[0].name == "clean" and len(quick) == len(rb.CONDITION_SETS["quick"])
    assert [c.name for c in rb.resolve_conditions("mp3-64k, babble-10dB")] == ["clean", "mp3-64k", "babble-10dB"]
    assert len(rb.resolve_conditions("default")) == len(rb.CONDITIONS)
    with pytest.raises(VoxguardError, match="unknown condition"):
        rb.resolve_conditions("clean,mp3-1k")


def test_every_condition_keeps_length_and_is_seeded():
    y = speechlike(SR, 2.0)
    bank = [speechlike(SR, 2.0, f0=f0, seed=k) for k, f0 in enumerate((110, 170, 230))]
    for cond in rb.CONDITIONS.values():
        if cond.name == "room-0.5s":
            pytest.importorskip("pyroomacoustics")
        out = cond.apply(y, SR, 5, bank)
        assert len(out) == len(y) and np.isfinite(out).all(), cond.name
        np.testing.assert_array_equal(out, cond.apply(y, SR, 5, bank), err_msg=cond.name)
        assert (cond.name in ("clean", "gain-x0.1", "gain-x10")) or not np.allclose(out, y, atol=1e-4), cond.name


def test_grouped_protocol_sees_what_each_condition_does(tiny_corpus):
    from voxguard.datasets import load_manifest
    from voxguard.features.segmental import SegmentalConfig
    from voxguard.models.segmental import SegmentalClassifier

    dataset = load_manifest(tiny_corpus)
    recipe = SegmentalClassifier(features=SegmentalConfig(), C=1.0, segment_s=2.0, hop_s=1.0)
    conditions = rb.resolve_conditions("clean,gain-x0.1,tel-ulaw")
    result = rb.evaluate_grouped(dataset, recipe, conditions, augment=False, folds=3, workers=1, progress=False)
    rows = {r["condition"]: r for r in result.rows()}
    assert rows["clean"]["eer"] < 0.2  # the generated fakes are separable on purpose
    # Loudness normalisation makes a gain change invisible to the model...
    assert rows["gain-x0.1"]["eer"] == pytest.approx(rows["clean"]["eer"], abs=0.05)
    assert rows["gain-x0.1"]["flips_vs_clean"] < 0.1
    # ...while a telephone channel removes the 4-8 kHz band both "generators" live in.
    assert rows["tel-ulaw"]["eer"] > rows["clean"]["eer"] + 0.15
    assert result.extra["condition_rows"] and result.extra["policy"] == "none"

    # A second recipe reuses the degraded clips (no recomputation) and trains with augmentation.
    again = rb.evaluate_grouped(
        dataset,
        recipe,
        conditions,
        policy="chain",
        folds=3,
        workers=1,
        progress=False,
        condition_rows=result.extra["condition_rows"],
    )
    assert again.extra["condition_rows"] is result.extra["condition_rows"]
    assert again.extra["train_table"].augmented.any()
    result.extra["label"], again.extra["label"] = "none", "chain"
    html = rb.write_robustness_report([result, again], dataset, tiny_corpus.parent / "report")
    out = html.parent
    assert html.is_file() and (out / "condition_eer.png").stat().st_size > 1000
    md = (out / "robustness.md").read_text()
    assert "## Comparison" in md and "tel-ulaw" in md and "EER chain" in md
    assert "condition" in json.loads((out / "metrics.json").read_text())["groups"]


def test_fixed_protocol_and_cli(tiny_corpus, tmp_path):
    runner = CliRunner()
    out = tmp_path / "rep"
    res = runner.invoke(
        app,
        [
            "robustness",
            "--corpus",
            str(tiny_corpus),
            "--protocol",
            "fixed",
            "--conditions",
            "gain-x10,resample-48-8-16",
            "--workers",
            "1",
            "--out",
            str(out),
            "--scores-out",
            str(tmp_path / "scores.csv"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "| gain-x10 |" in res.output and (out / "report.html").is_file()
    md = (out / "robustness.md").read_text()
    from voxguard.models.registry import DEFAULT_MODEL

    assert f"{DEFAULT_MODEL} (fixed)" in md
    # Per-clip scores, one column per condition, readable as detector scores.
    from voxguard.evaluate.shortcuts import read_scores

    header = (tmp_path / "scores.csv").read_text().splitlines()[0].split(",")
    assert header[:3] == ["id", "label", "family"]
    assert [h.split(":")[-1] for h in header[3:]] == ["clean", "gain-x10", "resample-48-8-16"]
    clean = read_scores(tmp_path / "scores.csv", header[3])[1]
    loud = read_scores(tmp_path / "scores.csv", header[4])[1]
    assert clean and clean.keys() == loud.keys()
    # Gain x10 is an invariance of the default model: scores move by little.
    assert max(abs(clean[k] - loud[k]) for k in clean) < 0.1

    bad = runner.invoke(app, ["robustness", "--corpus", str(tiny_corpus), "--conditions", "nope"])
    assert bad.exit_code == 2 and "unknown condition" in bad.output
    listing = runner.invoke(app, ["robustness", "--list"])
    assert listing.exit_code == 0 and "babble-10dB" in listing.output
    missing = runner.invoke(app, ["robustness"])
    assert missing.exit_code == 1 and "--corpus" in missing.output


def test_fixed_protocol_scores_match_the_detector(tiny_corpus):
    from voxguard.datasets import load_manifest
    from voxguard.models.detector import Detector
    from voxguard.models.registry import resolve_model

    dataset = load_manifest(tiny_corpus)[:4]
    result = rb.evaluate_fixed(resolve_model(), dataset, rb.resolve_conditions("clean"), workers=1, progress=False)
    detector = Detector.load(resolve_model())
    for i, item in enumerate(dataset):
        y, sr, _ = detector.prepare(item.path)
        assert result.scores["clean"][i] == pytest.approx(float(np.mean(detector.window_scores(y, sr).scores)))


def test_recipe_from_card_reads_the_shipped_model():
    from voxguard.models.onnx_model import ModelCard, card_path
    from voxguard.models.registry import resolve_model

    card = ModelCard.load(card_path(resolve_model("voxguard-v2")))  # a segmental shipped model
    recipe = rb.recipe_from_card(card)
    assert recipe.features.views == tuple(card.features["segmental"]["views"])
    assert recipe.classifier == "svm" and recipe.C > 0
    seed = ModelCard.load(card_path(resolve_model("seed-svm")))
    with pytest.raises(VoxguardError, match="only segmental"):
        rb.recipe_from_card(seed)


def test_grouped_robustness_of_a_fusion_model(tiny_corpus, tmp_path):
    from voxguard.audio import PreprocessConfig
    from voxguard.datasets import load_manifest
    from voxguard.evaluate.training import train_fusion
    from voxguard.models.segmental import SegmentalClassifier

    pytest.importorskip("torch")
    from voxguard.models.frame_gmm import FrameGMMClassifier

    pre = PreprocessConfig()
    members = [
        ("svm", SegmentalClassifier(C=1.0, segment_s=2.0, hop_s=1.0), pre),
        ("gmm", FrameGMMClassifier(n_components=4, max_frames=20_000, segment_s=2.0, hop_s=1.0), pre),
    ]
    model = tmp_path / "fz.onnx"
    train_fusion(
        load_manifest(tiny_corpus), model, members, name="fz", folds=3, workers=1, progress=False,
        augment=False, lofo=False,
    )  # fmt: skip
    out = tmp_path / "rep"
    res = CliRunner().invoke(
        app,
        [
            "robustness", "--corpus", str(tiny_corpus), "--model", str(model), "--conditions", "gain-x10",
            "--folds", "3", "--workers", "1", "--out", str(out),
        ],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    md = (out / "robustness.md").read_text()
    assert "fz.svm recipe" in md and "fz.gmm recipe" in md and "fz (fusion, stacked per fold)" in md
    # --policies retrains every member with each policy and fuses once per policy (it was ignored).
    res = CliRunner().invoke(
        app,
        [
            "robustness", "--corpus", str(tiny_corpus), "--model", str(model), "--conditions", "gain-x10",
            "--folds", "3", "--workers", "1", "--out", str(out), "--policies", "none,v1",
        ],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    md = (out / "robustness.md").read_text()
    for label in ("fz.svm recipe + none", "fz.gmm recipe + v1", "fz (fusion, stacked per fold, none)",
                  "fz (fusion, stacked per fold, v1)"):  # fmt: skip
        assert label in md, label
