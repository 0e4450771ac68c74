"""ONNX graphs of a router's heads, written by hand so that they match scikit-learn exactly.

skl2onnx (1.20) cannot convert ``HistGradientBoostingClassifier`` of scikit-learn 1.9 (it writes
boolean node attributes that ONNX refuses), and a router that averages two heads needs one graph
anyway; a logistic router alone is the one-head case. Both heads read the same ``features``
input (n, d) float32 and end in class posteriors:

- :func:`logistic_logits`: ``((x - mean) / scale) @ coef.T + intercept`` (StandardScaler +
  multinomial LogisticRegression);
- :func:`tree_logits`: the boosted trees summed per class plus the baseline
  (``ai.onnx.ml.TreeEnsembleRegressor``).

:func:`posterior_graph` turns a list of such heads into one model whose ``probabilities`` output is
the mean of the heads' softmax posteriors (scikit-learn's ``VotingClassifier(voting="soft")``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from voxguard.errors import ModelError

Head = tuple[list[Any], list[Any], str]  # (nodes, initializers, name of the logits output)


def _below_or_equal_float32(thresholds: np.ndarray) -> np.ndarray:
    """The largest float32 at or below each float64 threshold.

    For float32 inputs ``x``, ``x <= t`` holds exactly when ``x <= t32`` does, so the float32 tree
    takes the same branch as scikit-learn's float64 one (rounding to nearest could flip a row that
    lies between ``t`` and ``float32(t)``).
    """
    t = np.asarray(thresholds, np.float64)
    t32 = t.astype(np.float32)
    above = t32.astype(np.float64) > t
    t32[above] = np.nextafter(t32[above], np.float32(-np.inf))
    return t32


def logistic_logits(pipeline: Any, prefix: str = "lr") -> Head:
    """StandardScaler + LogisticRegression -> logits ``(n, n_classes)``.

    A two-class regression has one row of weights, P(class 1) = sigmoid(z): its logits are
    ``(0, z)``, whose softmax is the same posterior.
    """
    from onnx import helper, numpy_helper

    scaler, head = pipeline.steps[0][1], pipeline.steps[-1][1]
    coef = np.asarray(head.coef_, np.float64)
    intercept = np.asarray(head.intercept_, np.float64)
    if coef.shape[0] == 1:
        coef, intercept = np.vstack([np.zeros_like(coef), coef]), np.concatenate([[0.0], intercept])
    scale = np.asarray(scaler.scale_ if scaler.scale_ is not None else np.ones(coef.shape[1]), np.float64)
    # Fold the scaler into the weights: (x - m) / s @ W.T + b = x @ (W / s).T + (b - (m / s) @ W.T).
    weights = (coef / scale).T.astype(np.float32)
    bias = (intercept - (scaler.mean_ / scale) @ coef.T).astype(np.float32)
    inits = [numpy_helper.from_array(weights, f"{prefix}_W"), numpy_helper.from_array(bias, f"{prefix}_b")]
    nodes = [
        helper.make_node("MatMul", ["features", f"{prefix}_W"], [f"{prefix}_xw"]),
        helper.make_node("Add", [f"{prefix}_xw", f"{prefix}_b"], [f"{prefix}_logits"]),
    ]
    return nodes, inits, f"{prefix}_logits"


def tree_logits(model: Any, prefix: str = "trees") -> Head:
    """A fitted multiclass ``HistGradientBoostingClassifier`` -> raw class scores ``(n, n_classes)``.

    Numerical splits only (no categorical features); missing values follow each node's learnt side.
    """
    from onnx import helper, numpy_helper

    if getattr(model, "_preprocessor", None) is not None:
        raise ModelError("tree_logits does not support categorical features")
    n_classes = int(model.n_trees_per_iteration_)
    if n_classes < 2 or len(model.classes_) != n_classes:
        raise ModelError("tree_logits needs a multiclass HistGradientBoostingClassifier")
    attrs: dict[str, list[Any]] = {
        k: []
        for k in (
            "nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_modes", "nodes_values",
            "nodes_truenodeids", "nodes_falsenodeids", "nodes_missing_value_tracks_true",
            "target_treeids", "target_nodeids", "target_ids", "target_weights",
        )
    }  # fmt: skip
    tree_id = 0
    for iteration in model._predictors:
        for cls, predictor in enumerate(iteration):
            nodes = predictor.nodes
            if np.any(nodes["is_categorical"]):
                raise ModelError("tree_logits does not support categorical splits")
            leaf = nodes["is_leaf"].astype(bool)
            split = ~leaf
            n = len(nodes)
            attrs["nodes_treeids"] += [tree_id] * n
            attrs["nodes_nodeids"] += list(range(n))
            attrs["nodes_featureids"] += np.where(split, nodes["feature_idx"], 0).astype(int).tolist()
            attrs["nodes_modes"] += np.where(split, "BRANCH_LEQ", "LEAF").tolist()
            attrs["nodes_values"] += _below_or_equal_float32(np.where(split, nodes["num_threshold"], 0.0)).tolist()
            attrs["nodes_truenodeids"] += np.where(split, nodes["left"], 0).astype(int).tolist()
            attrs["nodes_falsenodeids"] += np.where(split, nodes["right"], 0).astype(int).tolist()
            missing_left = split & nodes["missing_go_to_left"].astype(bool)
            attrs["nodes_missing_value_tracks_true"] += missing_left.astype(int).tolist()
            leaves = np.flatnonzero(leaf)
            attrs["target_treeids"] += [tree_id] * len(leaves)
            attrs["target_nodeids"] += leaves.tolist()
            attrs["target_ids"] += [cls] * len(leaves)
            attrs["target_weights"] += nodes["value"][leaves].astype(np.float32).tolist()
            tree_id += 1
    base = np.asarray(model._baseline_prediction, np.float64).reshape(-1).astype(np.float32)
    node = helper.make_node(
        "TreeEnsembleRegressor",
        ["features"],
        [f"{prefix}_raw"],
        domain="ai.onnx.ml",
        n_targets=n_classes,
        aggregate_function="SUM",
        post_transform="NONE",
        **attrs,
    )
    inits = [numpy_helper.from_array(base.reshape(1, -1), f"{prefix}_base")]
    add = helper.make_node("Add", [f"{prefix}_raw", f"{prefix}_base"], [f"{prefix}_logits"])
    return [node, add], inits, f"{prefix}_logits"


def posterior_graph(heads: Sequence[Head], n_features: int) -> bytes:
    """One ONNX model: ``features`` (n, n_features) -> ``probabilities``, the heads' mean softmax."""
    from onnx import TensorProto, helper, numpy_helper

    if not heads:
        raise ModelError("posterior_graph needs at least one head")
    nodes: list[Any] = []
    inits: list[Any] = []
    softmaxes = []
    for i, (head_nodes, head_inits, logits) in enumerate(heads):
        nodes += head_nodes
        inits += head_inits
        nodes.append(helper.make_node("Softmax", [logits], [f"p{i}"], axis=1))
        softmaxes.append(f"p{i}")
    inits.append(numpy_helper.from_array(np.asarray(1.0 / len(heads), np.float32), "inv_heads"))
    nodes.append(helper.make_node("Sum", softmaxes, ["p_sum"]))
    nodes.append(helper.make_node("Mul", ["p_sum", "inv_heads"], ["probabilities"]))
    graph = helper.make_graph(
        nodes,
        "voxguard_router",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, [None, n_features])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, None])],
        initializer=inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)],
        producer_name="voxguard",
    )
    model.ir_version = 8  # readable by every onnxruntime >= 1.16 (the floor in pyproject)
    return model.SerializeToString()
