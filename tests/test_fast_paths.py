"""The speed-ups of the scan path give the same results as the straightforward computations."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import soundfile as sf
from scipy import signal

from voxguard.audio.iir import sosfilt_blocked

preprocess_mod = importlib.import_module("voxguard.audio.preprocess")


# --------------------------------------------------------------------------- IIR as block products


@pytest.mark.parametrize("n", [5, 63, 64, 1000, 48_001])
@pytest.mark.parametrize("sr", [8_000, 16_000, 44_100])
def test_blocked_sosfilt_matches_scipy_on_the_k_weighting(sr, n):
    y = np.random.default_rng(n).standard_normal(n).astype(np.float32)
    sos = preprocess_mod._k_weighting_sos(sr)
    want = signal.sosfilt(sos, y.astype(np.float64))
    got = sosfilt_blocked(sos, y)
    assert got.dtype == np.float32 and got.shape == y.shape
    np.testing.assert_allclose(got, want, atol=2e-5 * np.abs(want).max())


def test_blocked_sosfilt_matches_scipy_on_other_filters():
    rng = np.random.default_rng(0)
    y = rng.standard_normal(20_000).astype(np.float32)
    for sos in (
        signal.butter(6, 0.1, output="sos"),  # three sections, poles near the unit circle
        signal.butter(2, [0.2, 0.4], btype="band", output="sos"),
        np.array([[1.0, -1.0, 0.0, 1.0, -0.99, 0.0]]),  # first order (the DC blocker)
    ):
        want = signal.sosfilt(sos, y.astype(np.float64))
        np.testing.assert_allclose(sosfilt_blocked(sos, y, block=32), want, atol=2e-5 * np.abs(want).max())


def test_dc_blocker_matches_its_difference_equation():
    y = np.random.default_rng(1).standard_normal(10_000).astype(np.float32) + 0.3
    r = float(np.float32(np.exp(-2.0 * np.pi * 20.0 / 16_000)))
    want = signal.lfilter([1.0, -1.0], [1.0, -r], y.astype(np.float64))
    np.testing.assert_allclose(preprocess_mod.block_dc(y, 16_000), want, atol=1e-5)


# --------------------------------------------------------------------------- loudness and re-quantisation


def test_requantise_with_gain_equals_scaling_first():
    rng = np.random.default_rng(2)
    for n in (10, 65_536, 70_001):
        y = (0.1 * rng.standard_normal(n)).astype(np.float32)
        gain = 1.7353
        scaled = (y * np.float32(gain)).astype(np.float32)
        np.testing.assert_array_equal(preprocess_mod.requantise(y, gain=gain), preprocess_mod.requantise(scaled))
        q = preprocess_mod.requantise(scaled)
        assert np.all(np.abs(q * 32768 - np.round(q * 32768)) == 0)  # on the 16-bit grid


def test_loudness_steps_match_the_cumulative_sum_definition():
    # 22.05 kHz has a whole number of samples per 100 ms step (2,205); 11.025 kHz does not (1,102.5)
    # and takes the general path: both must give pyloudnorm's value.
    import pyloudnorm

    rng = np.random.default_rng(3)
    for sr in (22_050, 11_025):
        y = (0.05 * rng.standard_normal(int(3.37 * sr))).astype(np.float32)
        ref = pyloudnorm.Meter(sr).integrated_loudness(y.astype(np.float64))
        assert preprocess_mod.integrated_loudness(y, sr) == pytest.approx(ref, abs=0.01)


# --------------------------------------------------------------------------- decoding


@pytest.mark.parametrize("fmt", ["WAV", "FLAC"])
def test_pcm16_fast_decode_equals_libsndfile_float(tmp_path, fmt):
    from voxguard.audio import load

    rng = np.random.default_rng(4)
    pcm = rng.integers(-32768, 32767, size=(20_000, 2), dtype=np.int16)
    pcm[:10] = [[-32768, 32767]] * 10  # the extremes
    path = tmp_path / f"x.{fmt.lower()}"
    sf.write(path, pcm, 16_000, subtype="PCM_16", format=fmt)
    want, _ = sf.read(path, dtype="float32")
    got = load(path, sr=None)
    np.testing.assert_array_equal(got.samples, want.mean(axis=1, dtype=np.float32))


# --------------------------------------------------------------------------- the RBF SVM as matrix products


def _svm_pipeline(n=300, d=12, seed=0):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    rng = np.random.default_rng(seed)
    X = (rng.standard_normal((n, d)) * rng.uniform(0.5, 20, d) + rng.uniform(-50, 50, d)).astype(np.float32)
    y = (X[:, 0] - X[:, 1] / 3 + rng.standard_normal(n) * 5 > X[:, 0].mean()).astype(int)
    return make_pipeline(StandardScaler(), SVC(C=3.0, gamma="scale", class_weight="balanced")).fit(X, y), X


def test_rbf_svm_graph_reproduces_decision_values():
    import onnxruntime as ort

    from voxguard.models.export import sklearn_to_onnx

    pipeline, X = _svm_pipeline()
    onx, spec = sklearn_to_onnx(pipeline, X[:50], pipeline.decision_function(X[:50]))
    assert spec == {"name": "scores", "index": 0, "sign": 1}
    out = ort.InferenceSession(onx, providers=["CPUExecutionProvider"]).run(["scores"], {"features": X})[0][:, 0]
    # float32 kernels (the default): decision values of order 1 agree to a few 1e-5.
    np.testing.assert_allclose(out, pipeline.decision_function(X), atol=5e-5)


def test_rbf_svm_graph_precisions_agree_and_float64_is_exact():
    import onnx
    import onnxruntime as ort

    from voxguard.models.export import rbf_svm_graph

    pipeline, X = _svm_pipeline(n=400, d=40, seed=3)
    scaler, svc = pipeline.steps[0][1], pipeline.steps[1][1]
    args = (svc.support_vectors_, svc.dual_coef_[0], float(svc.intercept_[0]), float(svc._gamma))
    kwargs = {"offset": scaler.mean_, "scale": 1.0 / scaler.scale_}
    expected = pipeline.decision_function(X)
    out = {}
    for precision in ("float32", "float64"):
        onx = rbf_svm_graph(*args, **kwargs, precision=precision)
        inner = {i.name: i.data_type for i in onnx.load_from_string(onx).graph.initializer}
        kernel_type = onnx.TensorProto.FLOAT if precision == "float32" else onnx.TensorProto.DOUBLE
        assert inner["minus_two_sv_t"] == kernel_type
        assert inner["dual_coef"] == onnx.TensorProto.DOUBLE  # the weighted sum is float64 at either precision
        session = ort.InferenceSession(onx, providers=["CPUExecutionProvider"])
        out[precision] = session.run(["scores"], {"features": X})[0][:, 0]
    np.testing.assert_allclose(out["float64"], expected, atol=1e-6)
    np.testing.assert_allclose(out["float32"], expected, atol=5e-5)
    assert np.array_equal(out["float32"] > 0, expected > 0)
    with pytest.raises(ValueError, match="precision"):
        rbf_svm_graph(*args, precision="float16")


def test_old_svm_classifier_files_are_rewritten_with_the_same_scores(tmp_path):
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    from voxguard.errors import ModelError
    from voxguard.models.export import optimise_svm_file
    from voxguard.models.onnx_model import ModelCard, OnnxModel, card_path

    pipeline, X = _svm_pipeline(seed=1)
    old = to_onnx(
        pipeline,
        initial_types=[("features", FloatTensorType([None, X.shape[1]]))],
        options={id(pipeline.steps[-1][1]): {"zipmap": False}},
        target_opset=17,
    ).SerializeToString()
    path = tmp_path / "old.onnx"
    path.write_bytes(old)
    # Which column and sign of skl2onnx's output hold the decision value (as older voxguard found it).
    import onnxruntime as ort

    out = ort.InferenceSession(old, providers=["CPUExecutionProvider"]).run(["probabilities"], {"features": X})[0]
    index, sign = min(
        ((i, s) for i in range(out.shape[1]) for s in (1, -1)),
        key=lambda c: np.abs(c[1] * out[:, c[0]] - pipeline.decision_function(X)).max(),
    )
    calibration = {"type": "logistic", "a": 2.0, "b": 0.0}
    ModelCard(
        name="old",
        model_type="svm",
        features={"kind": "test"},
        output={"name": "probabilities", "index": index, "sign": sign, "calibration": calibration},
    ).save(card_path(path))
    before = OnnxModel(path)
    old_scores = before.score(X)
    np.testing.assert_allclose(old_scores, pipeline.decision_function(X), atol=1e-4)

    diff = optimise_svm_file(path, tmp_path / "new.onnx")
    assert diff < 1e-4
    after = OnnxModel(tmp_path / "new.onnx")
    assert after.card.output["name"] == "scores" and after.card.output["calibration"]["a"] == 2.0
    assert "SVMClassifier" in after.card.notes[-1]
    np.testing.assert_allclose(after.score(X), old_scores, atol=1e-4)
    assert OnnxModel(path).card.output["name"] == "probabilities"  # --out leaves the original alone

    with pytest.raises(ModelError, match="already a float32"):
        optimise_svm_file(tmp_path / "new.onnx")  # already rewritten

    # The same through the CLI: a copy with --out, and a clear failure (exit 2) for a non-SVM file.
    from typer.testing import CliRunner

    from voxguard.cli import app

    runner = CliRunner()
    done = runner.invoke(app, ["export", str(path), "--out", str(tmp_path / "cli.onnx")])
    assert done.exit_code == 0, done.output
    assert "max |new - old score|" in done.output and (tmp_path / "cli.card.json").is_file()
    refused = runner.invoke(app, ["export", str(tmp_path / "cli.onnx")])
    assert refused.exit_code == 2 and "already a float32" in refused.output


def test_shipped_svm_models_use_the_fast_graph():
    import onnx

    from voxguard.models.export import _rbf_graph_parts
    from voxguard.models.registry import resolve_model

    experts = [f"voxguard-v4.{e}" for e in ("main", "main-split", "codec", "babble", "babble-split")]
    halved = [
        f"{m}.{e}"
        for m in ("voxguard-v8", "voxguard-v9")
        for e in ("main", "main-split", "codec", "babble-floor", "babble-split", "babble-low")
    ]
    for name in ("voxguard-v1", "voxguard-v2", "seed-svm", "voxguard-v3.svm", "voxguard-v3.svm2", *experts, *halved):
        path = resolve_model(name)
        ops = {n.op_type for n in onnx.load(path).graph.node}
        assert "SVMClassifier" not in ops and "MatMul" in ops, name
        parts = _rbf_graph_parts(path.read_bytes())
        assert parts["precision"] == "float32", name
        # voxguard-v9 and v8 (make default-model, make model-v8) store their support vectors in float16.
        assert parts["storage"] == ("float16" if name in halved else None), name


def test_float64_svm_graphs_are_rewritten_as_float32_with_the_same_scores(tmp_path):
    """Models exported before float32 kernels (float64 graphs, uncentred) are rewritten in place."""
    import onnxruntime as ort

    from voxguard.errors import ModelError
    from voxguard.models.export import _rbf_graph_parts, optimise_svm_file, rbf_svm_graph
    from voxguard.models.onnx_model import ModelCard, OnnxModel, card_path

    pipeline, X = _svm_pipeline(n=400, d=30, seed=5)
    scaler, svc = pipeline.steps[0][1], pipeline.steps[1][1]
    args = (svc.support_vectors_, svc.dual_coef_[0], float(svc.intercept_[0]), float(svc._gamma))
    old = rbf_svm_graph(*args, offset=scaler.mean_, scale=1.0 / scaler.scale_, precision="float64")
    # Read back, the parts rebuild the same function.
    parts = _rbf_graph_parts(old)
    assert parts is not None and parts.pop("precision") == "float64"
    again = ort.InferenceSession(rbf_svm_graph(**parts, precision="float64"), providers=["CPUExecutionProvider"])
    rebuilt = again.run(["scores"], {"features": X})[0][:, 0]
    np.testing.assert_allclose(rebuilt, pipeline.decision_function(X), atol=1e-6)

    path = tmp_path / "m.onnx"
    path.write_bytes(old)
    calibration = {"type": "logistic", "a": -1.5, "b": 0.2}
    ModelCard(
        name="m",
        model_type="svm",
        features={"kind": "x", "columns": [f"c{i}" for i in range(X.shape[1])]},
        output={"name": "scores", "index": 0, "sign": -1, "calibration": calibration},
    ).save(card_path(path))
    before = OnnxModel(path).score(X)
    assert optimise_svm_file(path) < 1e-4
    after = OnnxModel(path)
    assert after.card.output == {"name": "scores", "index": 0, "sign": -1, "calibration": calibration}
    assert "float64 MatMul ops" in after.card.notes[-1]
    np.testing.assert_allclose(after.score(X), before, atol=5e-5)
    assert _rbf_graph_parts(path.read_bytes())["precision"] == "float32"
    with pytest.raises(ModelError, match="already a float32"):
        optimise_svm_file(path)


def test_half_precision_support_vectors_halve_the_file_and_keep_the_scores(tmp_path):
    """storage="float16": the same SVM with rounded support vectors, about half the bytes."""
    import onnx
    import onnxruntime as ort

    from voxguard.errors import ModelError
    from voxguard.models.export import _rbf_graph_parts, optimise_svm_file, rbf_svm_graph
    from voxguard.models.onnx_model import ModelCard, OnnxModel, card_path

    pipeline, X = _svm_pipeline(n=600, d=60, seed=7)
    scaler, svc = pipeline.steps[0][1], pipeline.steps[1][1]
    args = (svc.support_vectors_, svc.dual_coef_[0], float(svc.intercept_[0]), float(svc._gamma))
    kwargs = {"offset": scaler.mean_, "scale": 1.0 / scaler.scale_}
    full = rbf_svm_graph(*args, **kwargs)
    half = rbf_svm_graph(*args, **kwargs, storage="float16")
    assert len(half) < 0.6 * len(full)
    types = {i.name: i.data_type for i in onnx.load_from_string(half).graph.initializer}
    assert types["minus_two_sv_t_half"] == onnx.TensorProto.FLOAT16 and "minus_two_sv_t" not in types
    expected = pipeline.decision_function(X)
    out = ort.InferenceSession(half, providers=["CPUExecutionProvider"]).run(["scores"], {"features": X})[0][:, 0]
    err = np.abs(out - expected).max()
    assert 0 < err < 5e-3 * np.abs(expected).max()  # rounded, but far below any decision's scale
    # Read back: the parts name the storage and rebuild the same graph.
    parts = _rbf_graph_parts(half)
    assert parts.pop("storage") == "float16" and parts.pop("precision") == "float32"
    again = ort.InferenceSession(rbf_svm_graph(**parts, storage="float16"), providers=["CPUExecutionProvider"])
    # (re-centred on the rounded vectors and rounded again: float32 noise apart, the same function)
    np.testing.assert_allclose(again.run(["scores"], {"features": X})[0][:, 0], out, atol=1e-4)
    with pytest.raises(ValueError, match="storage"):
        rbf_svm_graph(*args, storage="int8")
    wild = svc.support_vectors_.copy()
    wild[0, 0] = 1e9  # a support vector far outside float16's range once scaled: refused, not inf
    with pytest.raises(ValueError, match="float16 range"):
        rbf_svm_graph(wild, *args[1:], **kwargs, storage="float16")

    # A shipped-style float32 file rewritten in place: smaller, card noted, scores within tolerance.
    path = tmp_path / "m.onnx"
    path.write_bytes(full)
    ModelCard(
        name="m", model_type="svm", features={"kind": "x"}, output={"name": "scores", "index": 0, "sign": 1}
    ).save(card_path(path))
    before = OnnxModel(path).score(X)
    assert optimise_svm_file(path, storage="float16") < 5e-3 * np.abs(before).max()
    assert path.stat().st_size < 0.6 * len(full)
    assert "float16 support vectors" in OnnxModel(path).card.notes[-1]
    np.testing.assert_allclose(OnnxModel(path).score(X), out, atol=1e-5)
    with pytest.raises(ModelError, match="already"):
        optimise_svm_file(path, storage="float16")

    from typer.testing import CliRunner

    from voxguard.cli import app

    copy = tmp_path / "cli.onnx"
    copy.write_bytes(full)
    spec = {"name": "scores", "index": 0, "sign": 1}
    ModelCard(name="c", model_type="svm", features={"kind": "x"}, output=spec).save(card_path(copy))
    done = CliRunner().invoke(app, ["export", str(copy), "--half"])
    assert done.exit_code == 0, done.output
    assert copy.stat().st_size < 0.6 * len(full)
