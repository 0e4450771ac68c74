"""Score-level fusion: logistic regression over the clip scores of several detectors.

Each detector's clip scores come from :func:`voxguard.evaluate.protocols.run_protocol` (out of
fold). The fusion is measured the same way: for every fold of the protocol, the weights are fitted
on the other folds' out-of-fold scores and applied to this fold's clips, so no clip's fused score
uses weights fitted on that clip (stacking). In ``grouped`` CV the other folds' scores come from
models that saw this fold's clips in training; with only one weight per detector that leak is small,
but it is there. ``cross`` has no held-out scores on the training corpus to fit weights on, so it
is not fused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from voxguard.evaluate import metrics
from voxguard.evaluate.protocols import ProtocolResult, protocol_splits


@dataclass(frozen=True)
class FusionWeights:
    """``fused = bias + sum_i weight_i * (score_i - mean_i) / scale_i`` (higher = more likely fake)."""

    models: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weight: tuple[float, ...]
    bias: float

    def apply(self, scores: np.ndarray) -> np.ndarray:
        """Fused score of rows of member scores, shape (n, n_models) -> (n,)."""
        z = (np.asarray(scores, dtype=np.float64) - np.asarray(self.mean)) / np.asarray(self.scale)
        return z @ np.asarray(self.weight) + self.bias

    def to_dict(self) -> dict[str, Any]:
        return {
            "models": list(self.models),
            "mean": list(self.mean),
            "scale": list(self.scale),
            "weight": list(self.weight),
            "bias": self.bias,
        }


def fit_fusion(scores: np.ndarray, labels: np.ndarray, models: Sequence[str], *, C: float = 1.0) -> FusionWeights:
    """Class-balanced logistic regression on standardised member scores, shape (n, n_models)."""
    from sklearn.linear_model import LogisticRegression

    scores = np.asarray(scores, dtype=np.float64)
    mean = scores.mean(axis=0)
    scale = scores.std(axis=0) + 1e-9
    lr = LogisticRegression(C=C, class_weight="balanced").fit((scores - mean) / scale, labels)
    return FusionWeights(
        models=tuple(models),
        mean=tuple(map(float, mean)),
        scale=tuple(map(float, scale)),
        weight=tuple(map(float, lr.coef_[0])),
        bias=float(lr.intercept_[0]),
    )


def fuse_protocol(
    dataset: Any,
    results: Sequence[ProtocolResult],
    *,
    folds: int = 5,
    seed: int = 0,
    name: str | None = None,
    families: Sequence[str] | None = None,
) -> ProtocolResult:
    """Out-of-fold fused clip scores of ``results`` (same protocol, dataset, seed and ``families``).

    Raises
    ------
    ValueError
        Fewer than two results, mixed protocols, or the ``cross`` protocol.
    """
    if len(results) < 2:
        raise ValueError("fusion needs at least two detectors")
    protocol = results[0].protocol
    if any(r.protocol != protocol for r in results):
        raise ValueError("fuse results of one protocol")
    if protocol == "cross":
        raise ValueError("the cross protocol has no held-out training scores to fit fusion weights on")
    labels = dataset.labels()
    members = np.column_stack([r.scores for r in results])
    have = np.isfinite(members).all(axis=1)
    fused = np.full(len(labels), np.nan)
    fold_eer: dict[str, float] = {}
    for key, split in protocol_splits(dataset, protocol, folds=folds, seed=seed, families=families):
        test = split.test[have[split.test]]
        fit_rows = have.copy()
        fit_rows[split.test] = False
        if not len(test) or len(np.unique(labels[fit_rows])) < 2:
            continue
        weights = fit_fusion(members[fit_rows], labels[fit_rows], [r.model for r in results])
        fused[test] = weights.apply(members[test])
        y_t = labels[test]
        fold_eer[key] = metrics.eer(y_t, fused[test]).eer if 0 < y_t.sum() < len(y_t) else float("nan")
    return ProtocolResult(
        protocol=protocol,
        model=name or "fusion(" + "+".join(r.model for r in results) + ")",
        scores=fused,
        fold_eer=fold_eer,
        fit_s=float(sum(r.fit_s for r in results)),
    )


def fusion_to_onnx(weights: FusionWeights) -> bytes:
    """A tiny ONNX graph ``member scores (n, n_models) -> fused score (n,)`` for :class:`FusionWeights`."""
    from onnx import TensorProto, helper, numpy_helper

    m = len(weights.models)
    consts = {
        "mean": np.asarray(weights.mean, np.float32).reshape(1, m),
        "scale": np.asarray(weights.scale, np.float32).reshape(1, m),
        "weight": np.asarray(weights.weight, np.float32).reshape(m, 1),
        "bias": np.asarray([weights.bias], np.float32),
        "shape": np.asarray([-1], np.int64),
    }
    nodes = [
        helper.make_node("Sub", ["scores", "mean"], ["centred"]),
        helper.make_node("Div", ["centred", "scale"], ["standard"]),
        helper.make_node("MatMul", ["standard", "weight"], ["weighted"]),
        helper.make_node("Add", ["weighted", "bias"], ["column"]),
        helper.make_node("Reshape", ["column", "shape"], ["fused"]),
    ]
    graph = helper.make_graph(
        nodes,
        "voxguard_fusion",
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [None, m])],
        [helper.make_tensor_value_info("fused", TensorProto.FLOAT, [None])],
        initializer=[numpy_helper.from_array(v, name=k) for k, v in consts.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="voxguard")
    model.ir_version = 8  # readable by every onnxruntime >= 1.16 (the floor in pyproject)
    return model.SerializeToString()
