"""Export of scikit-learn classifiers to ONNX, checked against the framework's own scores."""

from __future__ import annotations

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
    session = ort.InferenceSession(onx, providers=["CPUExecutionProvider"])
    out = session.run(["probabilities"], {"features": np.asarray(X_probe, dtype=np.float32)})[0]
    scale = max(1.0, float(np.max(np.abs(fake_scores))))
    for index in range(out.shape[1]):
        for sign in (1, -1):
            if np.max(np.abs(sign * out[:, index] - fake_scores)) <= atol * scale:
                return onx, {"name": "probabilities", "index": index, "sign": sign}
    raise ModelError("the ONNX conversion does not reproduce the scikit-learn scores")


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
