"""Export of scikit-learn classifiers to ONNX, checked against the framework's own scores."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from voxguard.errors import ModelError


def sklearn_to_onnx(
    estimator: Any, X_probe: np.ndarray, fake_scores: np.ndarray, *, atol: float = 1e-3
) -> tuple[bytes, dict[str, Any]]:
    """Convert a fitted binary scikit-learn pipeline and locate its "fake" score in the outputs.

    skl2onnx writes decision values into a ``probabilities`` output whose column order and sign
    depend on the estimator and the label encoding; instead of trusting that, the column and sign
    that reproduce ``fake_scores`` on ``X_probe`` are searched and verified.

    Parameters
    ----------
    estimator : fitted scikit-learn estimator or pipeline
    X_probe : np.ndarray, shape (n, n_features)
        Rows to check the conversion on.
    fake_scores : np.ndarray, shape (n,)
        The framework's scores for ``X_probe``, higher = more likely fake.

    Returns
    -------
    (onnx_bytes, output_spec) : the model and the ``output`` block of its card (without calibration).
    """
    import onnxruntime as ort

    fast = _rbf_svc_onnx(estimator)
    if fast is not None:
        onx, output_name = fast
    else:
        from skl2onnx import to_onnx
        from skl2onnx.common.data_types import FloatTensorType

        final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
        onx = to_onnx(
            estimator,
            initial_types=[("features", FloatTensorType([None, X_probe.shape[1]]))],
            # Linear models output probabilities unless asked for raw decision values (SVC gives those).
            options={id(final): {"zipmap": False, **({"raw_scores": True} if hasattr(final, "coef_") else {})}},
            target_opset=17,
        ).SerializeToString()
        output_name = "probabilities"
    session = ort.InferenceSession(onx, providers=["CPUExecutionProvider"])
    out = session.run([output_name], {"features": np.asarray(X_probe, dtype=np.float32)})[0]
    scale = max(1.0, float(np.max(np.abs(fake_scores))))
    for index in range(out.shape[1]):
        for sign in (1, -1):
            if np.max(np.abs(sign * out[:, index] - fake_scores)) <= atol * scale:
                return onx, {"name": output_name, "index": index, "sign": sign}
    raise ModelError("the ONNX conversion does not reproduce the scikit-learn scores")


#: Arithmetic of :func:`rbf_svm_graph`: float32 MatMuls run several times faster than float64 in
#: ONNX Runtime (MLAS SGEMM), and after centring (below) match float64 scores within ~1e-5.
SVM_PRECISIONS = ("float32", "float64")


def rbf_svm_graph(
    support_vectors: np.ndarray,
    dual_coef: np.ndarray,
    intercept: float,
    gamma: float,
    *,
    offset: np.ndarray | None = None,
    scale: np.ndarray | None = None,
    precision: str = "float32",
    storage: str | None = None,
) -> bytes:
    """A binary RBF SVM (optionally after a ``(x - offset) * scale`` scaler) as plain ONNX ops.

    ``score(x) = sum_i dual_coef[i] * exp(-gamma * |z - sv_i|^2) + intercept`` with
    ``z = (x - offset) * scale``, computed as ``|z|^2 - 2 z.sv + |sv|^2`` with two matrix
    products. ONNX Runtime's ``SVMClassifier`` evaluates the kernel row by row without BLAS; this
    graph gives the same decision values about ten times faster (MatMul runs on MLAS), which
    makes the SVM a small part of a scan.

    The scaler is folded into the graph: ``|z - sv|^2 = |x * scale - (sv + offset * scale)|^2``.
    Both sides are then centred on the mean support vector (distances do not change): the
    expansion ``|z|^2 - 2 z.sv + |sv|^2`` cancels terms of the size of ``|z|^2``, and centring
    keeps them small enough for float32. Only the distances and kernels run at ``precision``;
    their weighted sum is always float64.

    Parameters
    ----------
    support_vectors : np.ndarray, shape (n_sv, n_features)
    dual_coef : np.ndarray, shape (n_sv,)
    intercept, gamma : float
    offset, scale : np.ndarray, shape (n_features,), optional
    precision : {"float32", "float64"}
        Arithmetic of the distances and kernels; float32 is several times faster.
    storage : {"float16"}, optional
        Store the support vectors (the bulk of the file) in half precision, cast to ``precision``
        when ONNX Runtime loads the graph (constant folding: no cost per call). The file shrinks
        to about half; the graph is then exactly the SVM whose support vectors are rounded to
        float16 (``|sv|^2`` is computed from the rounded values), which moves decision values by
        about 1e-3 of their range (:func:`optimise_svm_file` measures it). Support vectors beyond
        float16's range (±32,752 after scaling and centring) raise ``ValueError``.

    Returns
    -------
    bytes
        ONNX model (opset 17): input ``features`` (n, n_features) float32, output ``scores`` (n, 1).
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if precision not in SVM_PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; use one of {SVM_PRECISIONS}")
    if storage not in (None, "float16"):
        raise ValueError(f"unknown storage {storage!r}; use None or 'float16'")
    dtype = np.float32 if precision == "float32" else np.float64
    sv = np.asarray(support_vectors, dtype=np.float64)
    n_sv, n_features = sv.shape
    scale64 = np.ones(n_features) if scale is None else np.asarray(scale, dtype=np.float64)
    if offset is not None:
        sv = sv + np.asarray(offset, dtype=np.float64) * scale64
    centre = sv.mean(axis=0)
    sv = sv - centre
    if storage == "float16":
        # -2 sv is stored; doubling is exact in binary, so rounding -2 sv rounds sv itself.
        half = (-2.0 * sv).astype(np.float16)
        if not np.isfinite(half).all():
            raise ValueError("support vectors out of float16 range; keep them in float32")
        sv = half.astype(np.float64) / -2.0

    def const(name: str, value: np.ndarray) -> onnx.TensorProto:
        return numpy_helper.from_array(np.asarray(value, dtype=dtype), name)

    initializers = [
        const("scale", scale64.reshape(1, -1)),
        const("minus_centre", -centre.reshape(1, -1)),
        const("ones", np.ones((n_features, 1))),
        (
            numpy_helper.from_array(np.asarray(-2.0 * sv.T, dtype=np.float16), "minus_two_sv_t_half")
            if storage == "float16"
            else const("minus_two_sv_t", -2.0 * sv.T)
        ),
        const("sv_sq", np.sum(sv * sv, axis=1).reshape(1, -1)),
        const("zero", np.zeros(1)),
        const("minus_gamma", np.full(1, -float(gamma))),
        # The weighted sum stays float64 at either precision: thousands of terms of both signs
        # summed in float32 lose ~1e-3 of a decision value; in float64 the cost is one GEMV.
        numpy_helper.from_array(np.asarray(dual_coef, dtype=np.float64).reshape(n_sv, 1), "dual_coef"),
        numpy_helper.from_array(np.full(1, float(intercept)), "intercept"),
    ]
    node = helper.make_node
    inner = TensorProto.FLOAT if precision == "float32" else TensorProto.DOUBLE
    nodes = [
        *([node("Cast", ["minus_two_sv_t_half"], ["minus_two_sv_t"], to=inner)] if storage == "float16" else []),
        node("Cast", ["features"], ["x"], to=inner),
        node("Mul", ["x", "scale"], ["x_scaled"]),
        node("Add", ["x_scaled", "minus_centre"], ["z"]),
        node("Mul", ["z", "z"], ["z2"]),
        node("MatMul", ["z2", "ones"], ["z_sq"]),  # (n, 1); MatMul keeps opsets 13-21 alike
        node("MatMul", ["z", "minus_two_sv_t"], ["cross"]),  # (n, n_sv)
        node("Add", ["cross", "z_sq"], ["partial"]),
        node("Add", ["partial", "sv_sq"], ["dist_raw"]),
        # Rounding can take a distance a hair below zero next to a support vector.
        node("Max", ["dist_raw", "zero"], ["dist"]),
        node("Mul", ["dist", "minus_gamma"], ["exponent"]),
        node("Exp", ["exponent"], ["kernel_inner"]),
        node("Cast", ["kernel_inner"], ["kernel"], to=TensorProto.DOUBLE),
        node("MatMul", ["kernel", "dual_coef"], ["weighted"]),
        node("Add", ["weighted", "intercept"], ["scores64"]),
        node("Cast", ["scores64"], ["scores"], to=TensorProto.FLOAT),
    ]
    graph = helper.make_graph(
        nodes,
        "rbf_svm",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, [None, n_features])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [None, 1])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="voxguard")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _rbf_svc_onnx(estimator: Any) -> tuple[bytes, str] | None:
    """:func:`rbf_svm_graph` for a binary RBF ``SVC``, alone or after a ``StandardScaler``; else ``None``."""
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    steps = [s for _, s in estimator.steps] if hasattr(estimator, "steps") else [estimator]
    svc = steps[-1]
    if not isinstance(svc, SVC) or svc.kernel != "rbf" or len(svc.classes_) != 2 or len(steps) > 2:
        return None
    offset = scale = None
    if len(steps) == 2:
        scaler = steps[0]
        if not isinstance(scaler, StandardScaler):
            return None
        offset = scaler.mean_ if scaler.with_mean else None
        scale = 1.0 / scaler.scale_ if scaler.with_std else None
    graph = rbf_svm_graph(
        svc.support_vectors_, svc.dual_coef_[0], float(svc.intercept_[0]), float(svc._gamma), offset=offset, scale=scale
    )
    return graph, "scores"


def _svm_classifier_parts(onnx_bytes: bytes) -> dict[str, Any] | None:
    """The arguments of :func:`rbf_svm_graph` read from a skl2onnx ``[Scaler ->] SVMClassifier`` graph.

    ``None`` unless the graph is a binary RBF ``SVMClassifier`` without post-transform.
    """
    import onnx
    from onnx import helper

    model = onnx.load_from_string(onnx_bytes)
    nodes = {n.op_type: n for n in model.graph.node}
    svm = nodes.get("SVMClassifier")
    if svm is None or len(model.graph.input) != 1:
        return None
    attrs = {a.name: helper.get_attribute_value(a) for a in svm.attribute}
    if attrs.get("kernel_type") != b"RBF" or len(attrs.get("classlabels_ints", [])) != 2:
        return None
    if attrs.get("post_transform", b"NONE") != b"NONE":
        return None
    offset = scale = None
    if "Scaler" in nodes:
        scaler = {a.name: helper.get_attribute_value(a) for a in nodes["Scaler"].attribute}
        offset, scale = np.asarray(scaler["offset"]), np.asarray(scaler["scale"])
    coef = np.asarray(attrs["coefficients"], dtype=np.float64)
    return {
        "support_vectors": np.asarray(attrs["support_vectors"], dtype=np.float64).reshape(len(coef), -1),
        "dual_coef": coef,
        "intercept": float(attrs["rho"][0]),
        "gamma": float(attrs["kernel_params"][0]),
        "offset": offset,
        "scale": scale,
    }


def _rbf_graph_parts(onnx_bytes: bytes) -> dict[str, Any] | None:
    """The arguments of :func:`rbf_svm_graph` read back from a graph it wrote (any precision).

    The scaler's offset is already folded into the support vectors there, so ``offset`` is
    ``None`` and the support vectors are in ``x * scale`` coordinates. ``None`` for other graphs.
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load_from_string(onnx_bytes)
    if model.graph.name != "rbf_svm":
        return None
    init = {i.name: numpy_helper.to_array(i).astype(np.float64) for i in model.graph.initializer}
    init_types = {i.name: i.data_type for i in model.graph.initializer}
    half = "minus_two_sv_t_half" in init
    if half:
        init["minus_two_sv_t"] = init["minus_two_sv_t_half"]
        init_types["minus_two_sv_t"] = onnx.TensorProto.FLOAT
    sv = -0.5 * init["minus_two_sv_t"].T
    if "minus_centre" in init:
        sv = sv - init["minus_centre"]
    return {
        "support_vectors": sv,
        "dual_coef": init["dual_coef"][:, 0],
        "intercept": float(init["intercept"][0]),
        "gamma": -float(init["minus_gamma"][0]),
        "offset": None,
        "scale": init["scale"][0],
        "precision": "float64" if init_types["minus_two_sv_t"] == onnx.TensorProto.DOUBLE else "float32",
        "storage": "float16" if half else None,
    }


def optimise_svm_onnx(onnx_bytes: bytes) -> bytes | None:
    """Rewrite a skl2onnx graph ``[Scaler ->] SVMClassifier(RBF, 2 classes) -> ...`` as :func:`rbf_svm_graph`.

    The new graph's ``scores`` output is the classifier's decision value; which sign of it matches
    the old output is for the caller to verify (:func:`optimise_svm_file` does). Returns ``None``
    for any other graph.
    """
    parts = _svm_classifier_parts(onnx_bytes)
    return None if parts is None else rbf_svm_graph(**parts)


def _probe_rows(parts: dict[str, Any], n: int, seed: int) -> np.ndarray:
    """Input rows where an RBF SVM's kernel is alive: support vectors plus noise, mapped back to inputs."""
    rng = np.random.default_rng(seed)
    sv = parts["support_vectors"]
    z = sv[rng.integers(0, len(sv), n)] + 0.5 * sv.std(axis=0) * rng.standard_normal((n, sv.shape[1]))
    scale = np.ones(sv.shape[1]) if parts["scale"] is None else parts["scale"]
    x = z / scale + (0.0 if parts["offset"] is None else parts["offset"])
    return x.astype(np.float32)


#: How far :func:`optimise_svm_file` may move decision values, relative to the largest probe score:
#: a float32 rewrite is the same SVM; half-precision support vectors round them (about 1e-3).
_REWRITE_TOLERANCE = {None: 1e-4, "float16": 5e-3}


def optimise_svm_file(
    path: str | Path,
    out_path: str | Path | None = None,
    *,
    n_probe: int = 512,
    seed: int = 0,
    storage: str | None = None,
) -> float:
    """Rewrite an RBF SVM model file as a float32 :func:`rbf_svm_graph`.

    Two sources: a graph exported through ONNX-ML's ``SVMClassifier`` (older voxguard), or a
    float64 :func:`rbf_svm_graph` (voxguard before float32 kernels). The card's ``output`` block
    is updated (output name and sign) and a note records the rewrite; calibration and thresholds
    are kept, since the decision values are the same. The new graph is checked on ``n_probe``
    rows drawn around the support vectors.

    ``storage="float16"`` also stores the support vectors in half precision (:func:`rbf_svm_graph`;
    the file about halves), from any of these graphs including a float32 one; the decision values
    then move by about 1e-3 of their range, checked against a tolerance of 5e-3.

    Returns
    -------
    float
        The largest absolute difference between the old and new fake scores on the probe rows.

    Raises
    ------
    ModelError
        The file is not a binary RBF SVM graph, it is already in the form asked for, or the
        rewrite does not reproduce its scores within the tolerance (1e-4 relative to the largest
        score; 5e-3 with ``storage="float16"``).
    """
    import datetime

    import onnxruntime as ort

    from voxguard.models.onnx_model import OnnxModel, card_path

    source = Path(path)
    target = Path(out_path) if out_path is not None else source
    old_bytes = source.read_bytes()
    parts, origin = _svm_classifier_parts(old_bytes), "SVMClassifier"
    if parts is None:
        parts, origin = _rbf_graph_parts(old_bytes), "float64 MatMul ops"
        if parts is not None:
            precision, old_storage = parts.pop("precision"), parts.pop("storage")
            if precision == "float32" and old_storage == storage:
                message = "already a float32 RBF SVM graph in that storage; nothing to rewrite"
                raise ModelError(message, path=str(source))
            origin = f"{precision} MatMul ops" + (" (float16 support vectors)" if old_storage else "")
    if parts is None:
        raise ModelError("not a binary RBF SVM graph; nothing to rewrite", path=str(source))
    try:
        new_bytes = rbf_svm_graph(**parts, storage=storage)
    except ValueError as exc:
        raise ModelError(f"{exc}; left unchanged", path=str(source)) from exc
    old = OnnxModel(source)
    probe = _probe_rows(parts, n_probe, seed)
    old_scores = old.score(probe)
    new = ort.InferenceSession(new_bytes, providers=["CPUExecutionProvider"]).run(["scores"], {"features": probe})[0]
    scale = max(1.0, float(np.max(np.abs(old_scores))))
    diffs = {sign: float(np.max(np.abs(sign * new[:, 0] - old_scores))) for sign in (1, -1)}
    sign = min(diffs, key=diffs.__getitem__)
    if not diffs[sign] <= _REWRITE_TOLERANCE[storage] * scale:  # also refuses NaN
        raise ModelError(f"the rewritten graph differs by {diffs[sign]:.2e}; left unchanged", path=str(source))
    target.write_bytes(new_bytes)
    card = old.card
    card.output = card.output | {"name": "scores", "index": 0, "sign": sign}
    today = datetime.date.today().isoformat()
    card.notes = [
        *card.notes,
        f"{today}: ONNX graph rewritten from {origin} to float32 MatMul ops"
        + (" with float16 support vectors" if storage else "")
        + f" (voxguard export); same decision values within {diffs[sign]:.1e} on {n_probe} probe rows.",
    ]
    card.save(card_path(target))
    return diffs[sign]


def fit_platt(scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Logistic calibration ``P(fake) = sigmoid(a * score + b)`` fitted on held-out scores."""
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=1e6).fit(np.asarray(scores).reshape(-1, 1), np.asarray(labels))
    return {"type": "logistic", "a": float(lr.coef_[0, 0]), "b": float(lr.intercept_[0])}


def export_seed_cnn(weights_path: str, out_path: str, *, n_probe: int = 256, seed: int = 0) -> float:
    """Convert a seed CNN saved as safetensors + JSON to ONNX and check it against torch.

    The card beside the weights (``NAME.card.json``) is copied next to the ONNX file when it
    exists. Returns the largest absolute difference between the ONNX and torch logits on
    ``n_probe`` random feature rows around the training distribution.

    Raises
    ------
    ModelError
        The weights cannot be read, or ONNX and torch disagree by more than 1e-4.
    """
    import shutil
    from pathlib import Path

    import onnxruntime as ort

    from voxguard.models.onnx_model import card_path
    from voxguard.models.seed_cnn import SeedCNNClassifier

    try:
        model, meta = SeedCNNClassifier.load(weights_path)
    except (OSError, KeyError, ValueError, RuntimeError) as exc:
        raise ModelError(f"cannot read the model weights: {exc}", path=weights_path) from exc
    mean = np.asarray(meta["mean"] or np.zeros(model.n_features_in_))
    scale = np.asarray(meta["scale"] or np.ones(model.n_features_in_))
    model.to_onnx(out_path, mean=mean, scale=scale)
    rng = np.random.default_rng(seed)
    probe = (rng.standard_normal((n_probe, model.n_features_in_)) * scale + mean).astype(np.float32)
    reference = model.decision_function((probe - mean) / scale)
    session = ort.InferenceSession(out_path, providers=["CPUExecutionProvider"])
    onnx_out = session.run(None, {"features": probe})[0].reshape(-1)
    diff = float(np.max(np.abs(onnx_out - reference)))
    if diff > 1e-4:
        raise ModelError(f"ONNX and torch disagree by {diff:.2e} (> 1e-4)", path=out_path)
    stem = Path(weights_path).name.removesuffix(".safetensors")
    card = Path(weights_path).with_name(stem + ".card.json")
    if card.is_file() and card.resolve() != card_path(out_path).resolve():
        shutil.copyfile(card, card_path(out_path))
    return diff
