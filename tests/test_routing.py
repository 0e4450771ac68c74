"""Routed models: condition experts mixed by a router's posteriors (voxguard.models.routing)."""

from __future__ import annotations

import numpy as np
import pytest

from signals import make_clip, write_tiny_corpus
from voxguard.errors import ModelError
from voxguard.models.routing import ROUTER_CLASSES, ConditionRouter, RoutingWeights, fit_routing, routing_to_onnx

SR = 16_000


def _run_graph(onx: bytes, X: np.ndarray, output: str | None = None) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(onx, providers=["CPUExecutionProvider"])
    names = [output] if output else None
    return session.run(names, {session.get_inputs()[0].name: X.astype(np.float32)})[0]


def test_fit_routing_standardises_experts_and_averages_a_class():
    rng = np.random.default_rng(0)
    scores = np.column_stack([rng.normal(3, 2, 500), rng.normal(-1, 0.5, 500), rng.normal(0, 4, 500)])
    classes = {"clean": ["main"], "codec": ["codec"], "babble": ["codec", "babble"], "other": ["main"]}
    w = fit_routing(scores, ["main", "codec", "babble"], classes)
    z = (scores - np.array(w.mean)) / np.array(w.scale)
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-9)
    np.testing.assert_allclose(z.std(axis=0), 1, atol=1e-9)
    per_class = z @ np.array(w.mixing)
    np.testing.assert_allclose(per_class.std(axis=0), 1, atol=1e-9)  # every class on one scale
    # A clip the router puts entirely in one class gets that class's experts only.
    only_clean = np.tile(np.eye(4)[0], (500, 1))
    np.testing.assert_allclose(w.apply(scores, only_clean), z[:, 0])
    # Serialisation keeps everything.
    assert RoutingWeights.from_dict(w.to_dict()) == w
    with pytest.raises(ModelError, match="router class 'codec'"):
        fit_routing(scores, ["main", "codec", "babble"], {**classes, "codec": ["nobody"]})


def test_routing_graph_matches_numpy():
    rng = np.random.default_rng(1)
    scores = rng.normal(size=(200, 3))
    w = fit_routing(scores, ["a", "b", "c"], {"clean": ["a"], "codec": ["b"], "babble": ["b", "c"], "other": ["a"]})
    posteriors = rng.dirichlet(np.ones(4), size=50)
    test = rng.normal(size=(50, 3))
    out = _run_graph(routing_to_onnx(w), np.hstack([test, posteriors]))
    np.testing.assert_allclose(out, w.apply(test, posteriors), rtol=1e-4, atol=1e-4)


def test_condition_router_fits_separable_classes_and_exports():
    rng = np.random.default_rng(2)
    k = len(ROUTER_CLASSES)
    centres = rng.normal(scale=3, size=(k, 6))
    kinds = np.repeat(np.arange(k), 60)
    X = centres[kinds] + rng.normal(size=(60 * k, 6))
    router = ConditionRouter().fit(X, kinds)
    p = router.predict_proba(X)
    assert p.shape == (60 * k, k)
    np.testing.assert_allclose(p.sum(axis=1), 1, atol=1e-6)
    assert (p.argmax(axis=1) == kinds).mean() > 0.9
    onx, output = router.to_onnx(X[:32])
    assert output["classes"] == list(ROUTER_CLASSES)
    np.testing.assert_allclose(_run_graph(onx, X[:32], output["name"]), p[:32], atol=1e-4)
    with pytest.raises(ModelError, match="every class"):
        ConditionRouter().fit(X[kinds < 3], kinds[kinds < 3])


def test_router_with_trees_averages_two_heads_and_round_trips_its_card():
    from types import SimpleNamespace

    from voxguard.models.routing import router_from_card

    rng = np.random.default_rng(4)
    k = len(ROUTER_CLASSES)
    X = rng.normal(size=(100 * k, 4))
    # Classes by the size of a feature, not its sign: a ring a linear head cannot tell apart.
    radius = np.hypot(X[:, 0], X[:, 1])
    kinds = np.minimum((radius / 0.5).astype(int), k - 1)
    linear = ConditionRouter().fit(X, kinds)
    both = ConditionRouter(head="logistic+trees", trees=50).fit(X, kinds)
    p = both.predict_proba(X)
    np.testing.assert_allclose(p, 0.5 * (linear.predict_proba(X) + both.trees_.predict_proba(X.astype(np.float32))))
    assert (p.argmax(1) == kinds).mean() > (linear.predict_proba(X).argmax(1) == kinds).mean() + 0.1
    onx, output = both.to_onnx(X[:64])
    np.testing.assert_allclose(_run_graph(onx, X[:64], output["name"]), p[:64], atol=1e-4)
    card = SimpleNamespace(
        features={"segmental": both.features.to_dict(), "segment_s": 4.0, "training_hop_s": 2.0},
        training={"recipe": both.recipe()},
        output={"classes": list(ROUTER_CLASSES)},
    )
    again = router_from_card(card)
    assert (again.head, again.trees, again.seed, again.C) == ("logistic+trees", 50, 0, 1.0)
    # Cards written before the trees' head keep meaning the linear router.
    card.training["recipe"] = {"classifier": "router", "C": 0.5}
    assert router_from_card(card).head == "logistic" and router_from_card(card).C == 0.5
    with pytest.raises(ModelError, match="unknown router head"):
        ConditionRouter(head="forest")


@pytest.fixture(scope="module")
def routed_model(tmp_path_factory):
    from voxguard.audio import PreprocessConfig
    from voxguard.datasets import load_manifest
    from voxguard.evaluate.training import train_routed
    from voxguard.models.segmental import SegmentalClassifier

    root = tmp_path_factory.mktemp("routed")
    (root / "corpus").mkdir()
    dataset = load_manifest(write_tiny_corpus(root / "corpus"))
    expert = SegmentalClassifier(classifier="logreg", C=1.0, segment_s=2.0, hop_s=1.0)
    out = root / "model" / "routed.onnx"
    result = train_routed(
        dataset,
        out,
        [("main", expert, "none"), ("codec", expert.clone(), "only-codec")],
        {"clean": ["main"], "codec": ["codec"], "babble": ["main", "codec"], "other": ["main"]},
        preprocess_config=PreprocessConfig(),
        name="routed",
        folds=3,
        workers=1,
        progress=False,
    )
    return result


def _mixed_by_hand(detector, prepared, sr, bounds) -> np.ndarray:
    """A routed detector's segment scores recomputed from its members and the card's routing weights."""
    from voxguard.features.segmental import frame_matrix, pool_segments

    *experts, router = detector.members
    scores = np.column_stack([m.segment_scores(prepared, sr, bounds)[0] for m in experts])
    posteriors = router.posteriors_from_vectors(
        pool_segments(frame_matrix(prepared, sr, router.segmental), bounds, router.segmental)
    )
    np.testing.assert_allclose(posteriors.sum(axis=1), 1, atol=1e-5)
    return RoutingWeights.from_dict(detector.model.card.output["routing"]).apply(scores, posteriors)


def test_routed_model_trains_ships_and_scans(routed_model):
    from voxguard.audio import segment_bounds
    from voxguard.models.detector import Detector
    from voxguard.scan import Scanner

    out = routed_model.model_path
    card = routed_model.card
    assert card.features["kind"] == "fusion"
    assert card.features["members"] == ["routed.main.onnx", "routed.codec.onnx", "routed.router.onnx"]
    for name in card.features["members"]:
        assert (out.parent / name).is_file() and (out.parent / name.replace(".onnx", ".card.json")).is_file()
    assert set(card.metrics) == {"grouped_cv", "leave_one_family_out"}
    assert card.metrics["grouped_cv"]["eer"] < 0.3  # the tiny corpus's fakes are easy
    assert card.training["experts"]["routed.codec"]["policy"] == "only-codec"

    detector = Detector.load(out)
    assert [m.is_router for m in detector.members] == [False, False, True]
    y = make_clip("lowpass", 998)
    prepared, sr, _ = detector.prepare_array(y, SR)
    bounds = segment_bounds(len(prepared), sr, 2.0, 1.0)
    scores, proba = detector.segment_scores(prepared, sr, bounds)
    np.testing.assert_allclose(scores, _mixed_by_hand(detector, prepared, sr, bounds), rtol=1e-4, atol=1e-4)
    assert np.all((proba >= 0) & (proba <= 1))
    real = Scanner(detector).scan(make_clip("real", 999), sr=SR)
    fake = Scanner(detector).scan(y, sr=SR)
    assert fake.probability > real.probability

    # The router alone is not a detector, and says so.
    alone = Detector.load(out.parent / "routed.router.onnx")
    with pytest.raises(ModelError, match="router of a routed model"):
        alone.segment_scores(prepared, sr, bounds)


def test_routed_model_with_a_missing_router_fails_to_load(routed_model, tmp_path):
    import shutil

    from voxguard.models.detector import Detector

    copy = tmp_path / "copy"
    shutil.copytree(routed_model.model_path.parent, copy)
    (copy / "routed.router.onnx").unlink()
    with pytest.raises(ModelError):
        Detector.load(copy / "routed.onnx")


def test_routed_model_refuses_what_it_cannot_do(routed_model, tmp_path):
    from typer.testing import CliRunner

    from voxguard.cli import app
    from voxguard.evaluate.retrain import RetrainError, retrain

    with pytest.raises(RetrainError, match="no usable feedback"):
        retrain(routed_model.model_path, [], tmp_path / "new.onnx")
    corpus = routed_model.model_path.parent.parent / "corpus" / "manifest.csv"
    model = str(routed_model.model_path)
    args = ["robustness", "--corpus", str(corpus), "--model", model, "--conditions", "gain-x10", "--policies", "v1"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code != 0 and "routed model" in res.output and "Traceback" not in res.output


def test_grouped_robustness_of_a_routed_model(routed_model, tmp_path):
    from typer.testing import CliRunner

    from voxguard.cli import app

    corpus = routed_model.model_path.parent.parent / "corpus" / "manifest.csv"
    out = tmp_path / "rep"
    model = str(routed_model.model_path)
    args = ["robustness", "--corpus", str(corpus), "--model", model, "--conditions", "clean,mp3-64k",
            "--folds", "3", "--workers", "1", "--out", str(out), "--scores-out", str(tmp_path / "s.csv")]  # fmt: skip
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    md = (out / "robustness.md").read_text()
    for label in ("routed.main recipe + none", "routed.codec recipe + only-codec", "routed (routed, router retrained"):
        assert label in md, label
    import csv

    with open(tmp_path / "s.csv") as fh:
        rows = list(csv.DictReader(fh))
    column = "routed (routed, router retrained per fold):clean"
    routed_clean = [float(r[column]) for r in rows if r[column] not in ("", "nan")]
    assert len(routed_clean) >= 20 and np.std(routed_clean) > 0


def test_train_command_trains_a_routed_recipe(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import voxguard.cli_train as cli_train
    from voxguard.cli import app
    from voxguard.models.onnx_model import ModelCard, card_path
    from voxguard.models.presets import RoutedRecipe

    recipe = RoutedRecipe(
        experts=(("main", "lfcc48-logreg", "none"), ("codec", "lfcc48-logreg", "only-codec")),
        classes=(("clean", ("main",)), ("codec", ("codec",)), ("telephone", ("main",)), ("other", ("main",))),
        router_views=("lfbe_7k",),
        router_head="logistic+trees",
    )
    monkeypatch.setitem(cli_train.ROUTED_RECIPES, "routed-test", recipe)
    (tmp_path / "corpus").mkdir()
    corpus = write_tiny_corpus(tmp_path / "corpus", n=24)
    out = tmp_path / "m" / "r.onnx"
    args = ["train", str(corpus), "--model", "routed-test", "--out", str(out), "--no-lofo", "--workers", "1",
            "--scores-out", str(tmp_path / "scores.csv")]  # fmt: skip
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    import csv

    from voxguard.evaluate.metrics import eer

    with open(tmp_path / "scores.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 24 and list(rows[0])[-1] == "r:grouped"  # no LOFO asked, no LOFO column
    scores = np.array([float(r["r:grouped"]) for r in rows])
    labels = np.array([int(r["label"]) for r in rows])
    grouped = ModelCard.load(card_path(out)).metrics["grouped_cv"]["eer"]
    assert eer(labels, scores).eer == pytest.approx(grouped)  # the routed mix's out-of-fold scores
    assert {p.name for p in out.parent.glob("*.onnx")} == {"r.onnx", "r.main.onnx", "r.codec.onnx", "r.router.onnx"}
    router_card = ModelCard.load(card_path(out.with_name("r.router.onnx")))
    assert router_card.output["classes"] == ["clean", "codec", "telephone", "other"]  # the recipe's classes
    assert router_card.training["classes"]["telephone"] == "only-telephone"
    assert router_card.training["recipe"]["head"] == "logistic+trees"  # the recipe's head
    expert_views = ModelCard.load(card_path(out.with_name("r.main.onnx"))).features["segmental"]["views"]
    assert router_card.features["segmental"]["views"] == [*expert_views, "lfbe_7k"]  # the recipe's extra view
    res = CliRunner().invoke(app, ["scan", "--model", str(out), str(corpus.parent / "real_0.wav")])
    assert res.exit_code == 0, res.output


def test_router_classes_must_start_clean_and_have_a_policy(tmp_path):
    from voxguard.evaluate.training import train_routed
    from voxguard.models.segmental import SegmentalClassifier

    expert = SegmentalClassifier(classifier="logreg")
    experts = [("main", expert, "none"), ("codec", expert.clone(), "only-codec")]
    for classes in ({"codec": ["codec"], "clean": ["main"]}, {"clean": ["main"], "hiss": ["codec"]}):
        with pytest.raises(ModelError, match="router classes"):
            train_routed(None, tmp_path / "r.onnx", experts, classes, progress=False)


def test_single_kind_policies_draw_only_their_kind():
    from voxguard.augment.policy import get_policy

    y = make_clip("real", 5)
    for seed in range(6):
        assert get_policy("only-telephone")(y, SR, seed=seed)[1].startswith("telephone")
        how = get_policy("only-other")(y, SR, seed=seed)[1]
        assert not how.startswith(("telephone", "babble", "mp3", "aac", "opus", "vorbis")), how


def test_service_keeps_a_routed_models_expert_vectors_once(routed_model):
    from voxguard.evaluate.retrain import FeedbackExample, stored_vectors, vector_spec
    from voxguard.models.detector import Detector
    from voxguard.scan import Scanner
    from voxguard.server.service import recorded_vectors, recording_scanner, stored_vector_spec

    detector = Detector.load(routed_model.model_path)
    scanner = Scanner(detector)
    copy_, recorders = recording_scanner(scanner)
    assert copy_ is not scanner and recorders is not None
    result = copy_.scan(make_clip("buzz", 997), sr=SR)
    vectors = recorded_vectors(recorders, len(result.timeline.scores))
    spec = stored_vector_spec(detector)
    # Both experts of the fixture share their features: one copy of their rows, then the router's
    # (its view pools the louder and quieter frames apart: rows of its own).
    expert_spec = vector_spec(detector.members[0].model.card.features)
    router_spec = vector_spec(detector.members[2].model.card.features)
    assert spec == {"kind": "fusion", "members": [expert_spec, router_spec]}
    width = expert_spec["n_columns"] + router_spec["n_columns"]
    assert vectors is not None and vectors.shape == (len(result.timeline.scores), width)
    # ... which are training rows for a model with those features (voxguard retrain).
    example = FeedbackExample(key="1", file_sha256="0" * 64, label="fake", vectors=vectors, vectors_spec=spec)
    np.testing.assert_array_equal(stored_vectors(example, expert_spec), vectors[:, : expert_spec["n_columns"]])
    # ... and the router's rows are what it read to route (retraining mixes new experts with it):
    # experts and router on the stored rows give the scan's segment scores.
    rows = stored_vectors(example, expert_spec)
    experts = np.column_stack([m.model.score(rows) for m in detector.members[:2]])
    posteriors = detector.members[2].model.posteriors(stored_vectors(example, router_spec))
    mixed = RoutingWeights.from_dict(detector.model.card.output["routing"]).apply(experts, posteriors)
    np.testing.assert_allclose(mixed, result.timeline.scores, rtol=1e-4, atol=1e-4)
    # The scanner in use is untouched.
    assert not any(type(m.model).__name__ == "_RecordingModel" for m in scanner.detector.members)


def test_retrain_a_routed_model_from_feedback(routed_model, tmp_path):
    """Every expert retrained on corpus + feedback, the router kept, a new routed model written."""
    import io

    import soundfile as sf

    from voxguard.datasets import load_manifest
    from voxguard.evaluate.retrain import FeedbackExample, retrain
    from voxguard.models.detector import Detector
    from voxguard.models.onnx_model import ModelCard, card_path
    from voxguard.scan import Scanner
    from voxguard.server.service import recorded_vectors, recording_scanner, stored_vector_spec

    base = routed_model.model_path
    detector = Detector.load(base)
    feedback = []
    for i, (kind, label) in enumerate([("buzz", "fake"), ("real", "real")] * 5):
        y = make_clip(kind, 700 + i)
        scanner, recorders = recording_scanner(Scanner(detector))
        result = scanner.scan(y, sr=SR)
        buf = io.BytesIO()
        sf.write(buf, y, SR, format="WAV", subtype="PCM_16")
        feedback.append(
            FeedbackExample(
                key=str(i),
                file_sha256=f"{i:064d}",
                label=label,
                vectors=recorded_vectors(recorders, len(result.timeline.scores)),
                vectors_spec=stored_vector_spec(detector),
                audio=buf.getvalue() if i % 2 else None,  # the router's rows come from the stored vectors
            )
        )
    corpus = load_manifest(base.parent.parent / "corpus" / "manifest.csv")
    out = tmp_path / "new" / "routed2.onnx"
    lines: list[str] = []
    result = retrain(base, feedback, out, corpus=corpus, augment=False, force=True, folds=3, workers=1,
                     progress=False, log=lines.append)  # fmt: skip
    assert result.written and result.feedback.counts == {"real": 5, "fake": 5}
    card = ModelCard.load(card_path(out))
    assert card.features["members"] == ["routed2.main.onnx", "routed2.codec.onnx", "routed2.router.onnx"]
    assert card.features["columns"][:2] == ["routed2.main", "routed2.codec"]
    assert card.output["routing"]["classes"] == list(routed_model.card.output["routing"]["classes"])
    assert card.training["base_model"] == "routed" and card.training["feedback_files"] == 10
    assert {"retrain_validation", "grouped_cv"} <= set(card.metrics)
    # The router is the base model's, byte for byte; the experts are new.
    assert (out.parent / "routed2.router.onnx").read_bytes() == (base.parent / "routed.router.onnx").read_bytes()
    assert (out.parent / "routed2.main.onnx").read_bytes() != (base.parent / "routed.main.onnx").read_bytes()
    assert any("router kept" in line for line in lines)
    new = Detector.load(out)
    assert [m.is_router for m in new.members] == [False, False, True]
    assert Scanner(new).scan(make_clip("buzz", 990), sr=SR).probability is not None


def test_a_routed_model_may_have_a_frame_model_expert(tmp_path):
    """A Fisher-vector expert (frame crops) beside a pooled one: trained, shipped, scanned, and
    mixed per segment exactly as the card's routing weights say."""
    pytest.importorskip("torch")
    from voxguard.audio import PreprocessConfig, segment_bounds
    from voxguard.datasets import load_manifest
    from voxguard.evaluate.training import train_routed
    from voxguard.features.segmental import SegmentalConfig
    from voxguard.models.detector import Detector
    from voxguard.models.frame_fisher import FrameFisherClassifier
    from voxguard.models.segmental import SegmentalClassifier
    from voxguard.scan import Scanner

    (tmp_path / "corpus").mkdir()
    dataset = load_manifest(write_tiny_corpus(tmp_path / "corpus", n=24))
    features = SegmentalConfig(views=("lfcc_4_8k_hann", "band_flatness"), gate_db=40.0)
    pooled = SegmentalClassifier(features=features, classifier="logreg", C=1.0, segment_s=2.0, hop_s=1.0)
    fisher = FrameFisherClassifier(
        features=features, n_components=4, n_pca=8, max_frames=20_000, segment_s=2.0, hop_s=1.0
    )
    result = train_routed(
        dataset,
        tmp_path / "model" / "r.onnx",
        [("main", pooled, "none"), ("fisher", fisher, "only-codec")],
        {"clean": ["main", "fisher"], "codec": ["fisher"], "babble": ["main"], "other": ["main", "fisher"]},
        preprocess_config=PreprocessConfig(),
        name="r",
        folds=3,
        workers=1,
        lofo=False,
        progress=False,
    )
    assert result.card.features["members"] == ["r.main.onnx", "r.fisher.onnx", "r.router.onnx"]
    detector = Detector.load(result.model_path)
    assert [m.frame_input for m in detector.members[:2]] == [False, True]
    y = make_clip("lowpass", 996)
    prepared, sr, _ = detector.prepare_array(y, SR)
    bounds = segment_bounds(len(prepared), sr, 2.0, 1.0)
    scores, _ = detector.segment_scores(prepared, sr, bounds)
    np.testing.assert_allclose(scores, _mixed_by_hand(detector, prepared, sr, bounds), rtol=1e-4, atol=1e-4)
    real = Scanner(detector).scan(make_clip("real", 995), sr=SR)
    assert Scanner(detector).scan(y, sr=SR).probability > real.probability
    # The service's feedback recording copes with the frame expert (it stores what it can, or
    # nothing) and scores exactly like the plain scanner.
    from voxguard.server.service import recorded_vectors, recording_scanner

    copy_, recorders = recording_scanner(Scanner(detector))
    recorded = copy_.scan(y, sr=SR)
    np.testing.assert_allclose(recorded.timeline.scores, Scanner(detector).scan(y, sr=SR).timeline.scores, atol=1e-5)
    if recorders is not None:
        vectors = recorded_vectors(recorders, len(recorded.timeline.scores))
        assert vectors is None or len(vectors) == len(recorded.timeline.scores)
    # Training wrote the Fisher expert's two-stage form, which the scans above used; the one-graph
    # form gives the same routed scores.
    import copy

    assert detector.members[1].stages is not None and (tmp_path / "model" / "r.fisher.head.onnx").is_file()
    one_graph = copy.copy(detector)
    one_graph.members = [copy.copy(m) for m in detector.members]
    one_graph.members[1].stages = None
    np.testing.assert_allclose(one_graph.segment_scores(prepared, sr, bounds)[0], scores, rtol=1e-4, atol=1e-4)
    # Retraining it from feedback with kept audio only (the service keeps no vectors for a model
    # with a frame expert): every expert retrained, the Fisher one with its stages again.
    import io

    import soundfile as sf

    from voxguard.evaluate.retrain import FeedbackExample, retrain

    feedback = []
    for i, (kind, label) in enumerate([("lowpass", "fake"), ("real", "real")] * 3):
        buf = io.BytesIO()
        sf.write(buf, make_clip(kind, 800 + i), SR, format="WAV", subtype="PCM_16")
        feedback.append(FeedbackExample(key=str(i), file_sha256=f"{i:064d}", label=label, vectors=None,
                                        vectors_spec=None, audio=buf.getvalue()))  # fmt: skip
    out = tmp_path / "new" / "r2.onnx"
    retrained = retrain(result.model_path, feedback, out, corpus=dataset, augment=False, force=True, folds=3,
                        workers=1, progress=False, log=lambda line: None)  # fmt: skip
    assert retrained.written and retrained.feedback.counts == {"real": 3, "fake": 3}
    again = Detector.load(out)
    assert again.members[1].frame_input and again.members[1].stages is not None
    assert (out.parent / "r2.fisher.head.onnx").is_file()
    assert np.isfinite(Scanner(again).scan(y, sr=SR).probability)
    # The robustness report retrains both experts per fold: the frame expert gets frame crops, not
    # the pooled expert's rows, though both read the same frames.
    from typer.testing import CliRunner

    from voxguard.cli import app

    args = ["robustness", "--corpus", str(tmp_path / "corpus" / "manifest.csv"), "--model", str(result.model_path),
            "--conditions", "clean", "--folds", "3", "--workers", "1", "--out", str(tmp_path / "rep")]  # fmt: skip
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    md = (tmp_path / "rep" / "robustness.md").read_text()
    assert "r.fisher recipe + only-codec" in md and "r (routed, router retrained" in md


def test_routed_v8_adds_a_fisher_expert_to_the_clean_and_other_classes():
    from voxguard.models.frame_fisher import FrameFisherClassifier
    from voxguard.models.presets import ROUTED_RECIPES, get_preset

    v7, v8 = ROUTED_RECIPES["routed-v7"], ROUTED_RECIPES["routed-v8"]
    assert v8.experts[: len(v7.experts)] == v7.experts and v8.router_head == v7.router_head
    label, preset, policy = v8.experts[-1]
    assert isinstance(get_preset(preset).model(), FrameFisherClassifier) and policy == "chain*2"
    classes = dict(v8.classes)
    for cls in ("clean", "other"):
        assert classes[cls] == (*dict(v7.classes)[cls], label)
    # Telephone audio keeps v7's experts: the Fisher-vector model alone is weak under G.711.
    for cls in ("codec", "babble", "telephone"):
        assert classes[cls] == dict(v7.classes)[cls]
    # All experts share the first expert's preprocessing and segment length (train_routed's rule).
    first = get_preset(v8.experts[0][1])
    assert get_preset(preset).preprocess() == first.preprocess()
    assert get_preset(preset).model().segment_s == first.model().segment_s
