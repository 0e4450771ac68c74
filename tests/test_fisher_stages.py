"""Two-stage scoring of Fisher-vector models: per-stretch GMM statistics once, then the head graph."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from voxguard.errors import ModelError
from voxguard.features.segmental import SegmentalConfig, segment_frame_ranges
from voxguard.models import fisher_stages
from voxguard.models.fisher_stages import GmmParameters, stretch_statistics


def _gmm_parameters(gmm, mean, std) -> GmmParameters:
    precision = 1.0 / gmm.covariances_
    const = (
        np.log(gmm.weights_)
        - 0.5 * np.log(2 * np.pi * gmm.covariances_).sum(axis=1)
        - 0.5 * (gmm.means_**2 * precision).sum(axis=1)
    )
    return GmmParameters(mean, std, (-0.5 * precision).T, (gmm.means_ * precision).T, const)


def test_stretch_statistics_are_the_gmm_posterior_sums(monkeypatch):
    from sklearn.mixture import GaussianMixture

    rng = np.random.default_rng(0)
    d, n = 5, 900
    frames = (rng.standard_normal((d, n)) * 2 + 1).astype(np.float32)
    frames[:, rng.random(n) < 0.2] = np.nan
    frames[2, 37] = np.nan  # one feature gated gates the whole frame
    frames[:, 500:620] = np.nan  # a stretch of silence only
    mean, std = np.full(d, 1.0, np.float32), np.full(d, 2.0, np.float32)
    finite = np.isfinite(frames).all(axis=0)
    x = ((frames[:, finite].T - mean) / std).astype(np.float64)
    gmm = GaussianMixture(3, covariance_type="diag", random_state=0).fit(x)
    params = _gmm_parameters(gmm, mean, std)

    edges = np.array([0, 130, 131, 500, 620, 900])
    # Chunks of 64 frames: stretches longer than a chunk and chunks of several stretches.
    monkeypatch.setattr(fisher_stages, "CHUNK_FRAMES", 64)
    count, s0, s1, s2 = stretch_statistics(frames, edges, params)
    assert count.shape == (5, 1) and s0.shape == (5, 3) and s1.shape == s2.shape == (5, 3, d)
    for i, (a, b) in enumerate(itertools.pairwise(edges)):
        keep = finite[a:b]
        xi = ((frames[:, a:b][:, keep].T - mean) / std).astype(np.float64)
        g = gmm.predict_proba(xi) if len(xi) else np.zeros((0, 3))
        assert count[i, 0] == keep.sum()
        np.testing.assert_allclose(s0[i], g.sum(axis=0), atol=1e-4)
        np.testing.assert_allclose(s1[i], g.T @ xi, atol=1e-3)
        np.testing.assert_allclose(s2[i], g.T @ xi**2, atol=1e-3)
    assert count[3, 0] == 0 and not s1[3].any()
    # The chunk size only bounds memory.
    monkeypatch.setattr(fisher_stages, "CHUNK_FRAMES", 16_384)
    again = stretch_statistics(frames, edges, params)
    for a, b in zip(again, (count, s0, s1, s2), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    with pytest.raises(ModelError, match="expect 5 frame features"):
        stretch_statistics(frames[:4], edges, params)


def test_parameters_round_trip_through_the_card_exactly():
    rng = np.random.default_rng(1)
    params = GmmParameters(*(rng.standard_normal(s).astype(np.float32) for s in [(4,), (4,), (4, 3), (4, 3), (3,)]))
    back = GmmParameters.from_dict(json.loads(json.dumps(params.to_dict())))
    for name in ("mean", "std", "quad", "lin", "const"):
        assert np.array_equal(getattr(back, name), getattr(params, name))
    broken = params.to_dict()
    broken["lin"]["shape"] = [3, 4]
    with pytest.raises(ModelError, match="inconsistent"):
        GmmParameters.from_dict(broken)
    broken = params.to_dict()
    broken["const"]["data"] = "not base64!"
    with pytest.raises(ModelError, match="bad Fisher stage parameters"):
        GmmParameters.from_dict(broken)


# --------------------------------------------------------------------------- a trained Fisher model


@pytest.fixture(scope="module")
def fisher_model(tmp_path_factory):
    """A small Fisher-vector SVM on random 76-feature frames, exported with a card a Detector loads."""
    pytest.importorskip("torch")
    from voxguard.models.frame_fisher import FrameFisherClassifier
    from voxguard.models.onnx_model import ModelCard, card_path

    features = SegmentalConfig(views=("lfcc_4_8k_hann", "band_flatness"), gate_db=40.0)
    rng = np.random.default_rng(2)
    n, d, t = 80, 76, 100
    y = (np.arange(n) % 2).astype(np.int64)
    X = rng.standard_normal((n, d, t)).astype(np.float32)
    X[y == 1, :3] = rng.choice([-1.0, 1.0], size=(int(y.sum()), 3, t))  # fakes differ in shape only
    X[rng.random((n, t))[:, None, :].repeat(d, axis=1) < 0.1] = np.nan
    model = FrameFisherClassifier(features, n_components=4, n_pca=16, max_frames=20_000, seed=0).fit(X, y)
    onx, output = model.to_onnx(X[:8])
    path = tmp_path_factory.mktemp("fisher") / "fisher.onnx"
    path.write_bytes(onx)
    spec = {
        "kind": "segmental",
        "segmental": features.to_dict(),
        "input": "frames",
        "frame_columns": [f"f{i}" for i in range(d)],
        "crop_frames": 200,
        "sample_rate": 16_000,
        "preprocess": None,
        "segment_s": 2.0,
    }
    ModelCard(name="fisher", model_type=model.describe(), features=spec, output=output).save(card_path(path))
    return path


def _copy(path, target_dir):
    from voxguard.models.onnx_model import card_path

    target = target_dir / path.name
    target.write_bytes(path.read_bytes())
    card_path(target).write_text(card_path(path).read_text())
    return target


def test_stages_score_overlapping_segments_as_the_one_graph_model_does(fisher_model, tmp_path):
    from typer.testing import CliRunner

    from voxguard.cli import app
    from voxguard.models.detector import Detector
    from voxguard.models.onnx_model import ModelCard, card_path

    path = _copy(fisher_model, tmp_path)
    whole = Detector.load(path)
    assert whole.stages is None
    res = CliRunner().invoke(app, ["export", str(path), "--stages"])
    assert res.exit_code == 0, res.output
    head = tmp_path / "fisher.head.onnx"
    assert head.is_file() and "fisher.head.onnx" in res.output
    card = ModelCard.load(card_path(path))
    assert card.output["stages"]["head"] == head.name and "two-stage" in card.notes[-1]
    staged = Detector.load(path)
    assert staged.stages is not None

    rng = np.random.default_rng(3)
    frames = rng.standard_normal((76, 1500)).astype(np.float32)
    frames[:3, ::2] = 1.0  # part fake-like
    frames[:, rng.random(1500) < 0.15] = np.nan
    frames[:, 600:800] = np.nan  # silence covering a whole segment
    hop = staged.segmental.hop_length
    starts = np.arange(0, 1500 * hop, 100 * hop)  # 2-s segments at 1-s hops, the last ones cut short
    bounds = np.stack([starts, np.minimum(starts + 200 * hop, 1500 * hop)], axis=1)
    want = whole._crop_scores(frames, bounds)
    got = staged._crop_scores(frames, bounds)
    assert np.array_equal(np.isnan(got), np.isnan(want)) and np.isnan(got[6])
    ok = np.isfinite(want)
    np.testing.assert_allclose(got[ok], want[ok], atol=1e-4 * np.abs(want[ok]).max())
    # Each segment's frame range is what the crops hold.
    first, last = segment_frame_ranges(bounds, hop, frames.shape[1])
    assert first[1] == 100 and last[1] == 300 and last[-1] == 1500


def test_a_graph_that_is_not_a_fisher_model_is_refused(fisher_model, tmp_path):
    from typer.testing import CliRunner

    from voxguard.cli import app
    from voxguard.models.registry import resolve_model

    svm = resolve_model("voxguard-v9").with_name("voxguard-v9.main.onnx")
    with pytest.raises(ModelError, match="not a Fisher-vector graph"):
        fisher_stages.split_fisher_graph(svm.read_bytes())
    copy = _copy(svm, tmp_path)
    res = CliRunner().invoke(app, ["export", str(copy), "--stages"])
    assert res.exit_code != 0 and "not a frame-crop model" in res.output
    res = CliRunner().invoke(app, ["export", str(_copy(fisher_model, tmp_path)), "--stages", "--half"])
    assert res.exit_code == 1 and "--stages" in res.output  # a usage error
    assert not list(tmp_path.glob("*.head.onnx"))


def test_a_card_naming_a_missing_or_broken_head_is_an_error(fisher_model, tmp_path):
    from voxguard.models.detector import Detector
    from voxguard.models.onnx_model import ModelCard, card_path

    path = _copy(fisher_model, tmp_path)
    fisher_stages.add_stages(path)
    (tmp_path / "fisher.head.onnx").write_bytes(b"not onnx")
    with pytest.raises(ModelError, match="cannot load the Fisher head graph"):
        Detector.load(path)
    (tmp_path / "fisher.head.onnx").unlink()
    with pytest.raises(ModelError, match="missing"):
        Detector.load(path)
    card = ModelCard.load(card_path(path))
    card.output["stages"]["head"] = "../elsewhere.onnx"
    card.save(card_path(path))
    with pytest.raises(ModelError, match="bad Fisher head graph name"):
        Detector.load(path)


def test_the_shipped_fisher_experts_score_the_same_in_two_stages():
    """Every zoo model with stages: its head and card reproduce its one-graph scores on real-looking frames."""
    from voxguard.models.detector import Detector
    from voxguard.models.registry import ZOO_DIR, available_models

    staged = [name for name, card in available_models().items() if card.output.get("stages")]
    assert "voxguard-v9.fisher" in staged
    assert not any(name.endswith(".head") for name in available_models())
    rng = np.random.default_rng(4)
    for name in staged:
        detector = Detector.load(ZOO_DIR / f"{name}.onnx")
        params = detector.stages.params
        n = 1200
        frames = (params.mean[:, None] + params.std[:, None] * rng.standard_normal((params.mean.size, n))).astype(
            np.float32
        )
        frames[:, rng.random(n) < 0.1] = np.nan
        hop = detector.segmental.hop_length
        starts = np.arange(0, n * hop, 200 * hop)
        bounds = np.stack([starts, np.minimum(starts + 400 * hop, n * hop)], axis=1)
        want = _without_stages(detector)._crop_scores(frames, bounds)
        got = detector._crop_scores(frames, bounds)
        np.testing.assert_allclose(got, want, atol=1e-4 * np.abs(want).max())


def _without_stages(detector):
    import copy

    plain = copy.copy(detector)
    plain.stages = None
    return plain
