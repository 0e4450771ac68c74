"""Hand-written ONNX graphs of a router's heads match scikit-learn (voxguard.models.router_graph)."""

from __future__ import annotations

import numpy as np
import pytest

from voxguard.errors import ModelError
from voxguard.models.router_graph import _below_or_equal_float32, logistic_logits, posterior_graph, tree_logits


def _posteriors(onx: bytes, X: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(onx, providers=["CPUExecutionProvider"])
    return session.run(["probabilities"], {"features": np.asarray(X, np.float32)})[0]


def _data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = (rng.normal(size=(n, 12)) * rng.uniform(0.01, 100, 12)).astype(np.float32)
    kinds = (X[:, 0] > 0).astype(int) + 2 * (np.abs(X[:, 1]) > np.median(np.abs(X[:, 1]))) + (X[:, 2] > X[:, 3])
    return X, kinds  # classes 0..4, not linearly separable


@pytest.fixture(scope="module")
def heads():
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, kinds = _data(3000, 0)
    linear = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(X, kinds)
    trees = HistGradientBoostingClassifier(max_iter=40, random_state=0).fit(X, kinds)
    return linear, trees


def test_float32_thresholds_keep_every_comparison():
    rng = np.random.default_rng(3)
    t = rng.normal(size=2000) * 10.0 ** rng.integers(-3, 4, 2000)
    t32 = _below_or_equal_float32(t)
    assert t32.dtype == np.float32 and np.all(t32.astype(np.float64) <= t)
    # The next float32 up is above the float64 threshold, so no float32 input lies between.
    assert np.all(np.nextafter(t32, np.float32(np.inf)).astype(np.float64) > t)


def test_each_head_and_their_mean_match_scikit_learn(heads):
    linear, trees = heads
    X, _ = _data(1000, 1)
    np.testing.assert_allclose(
        _posteriors(posterior_graph([logistic_logits(linear)], 12), X), linear.predict_proba(X), atol=1e-5
    )
    np.testing.assert_allclose(
        _posteriors(posterior_graph([tree_logits(trees)], 12), X), trees.predict_proba(X), atol=1e-5
    )
    both = posterior_graph([logistic_logits(linear), tree_logits(trees)], 12)
    expected = 0.5 * (linear.predict_proba(X) + trees.predict_proba(X))
    np.testing.assert_allclose(_posteriors(both, X), expected, atol=1e-5)


def test_a_two_class_logistic_head_matches_scikit_learn():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, kinds = _data(800, 7)
    linear = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, kinds > 2)
    np.testing.assert_allclose(
        _posteriors(posterior_graph([logistic_logits(linear)], 12), X), linear.predict_proba(X), atol=1e-5
    )


def test_trees_take_sklearns_branch_at_and_beside_every_threshold(heads):
    _, trees = heads
    X, _ = _data(1, 2)
    rows = []
    for iteration in trees._predictors[:10]:
        for predictor in iteration:
            nodes = predictor.nodes[~predictor.nodes["is_leaf"].astype(bool)]
            for feature, threshold in zip(nodes["feature_idx"], nodes["num_threshold"], strict=True):
                at = _below_or_equal_float32(np.array([threshold]))[0]
                for value in (at, np.nextafter(at, np.float32(np.inf))):
                    row = X[0].copy()
                    row[feature] = value
                    rows.append(row)
    rows = np.array(rows)
    onx = posterior_graph([tree_logits(trees)], 12)
    np.testing.assert_allclose(_posteriors(onx, rows), trees.predict_proba(rows), atol=1e-5)


def test_missing_values_follow_the_learnt_side():
    from sklearn.ensemble import HistGradientBoostingClassifier

    X, kinds = _data(2000, 4)
    X[::7, 0] = np.nan  # training rows with gaps teach each split a side for them
    trees = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(X, kinds)
    test, _ = _data(300, 5)
    test[::3, 0] = np.nan
    np.testing.assert_allclose(
        _posteriors(posterior_graph([tree_logits(trees)], 12), test), trees.predict_proba(test), atol=1e-5
    )


def test_unsupported_models_are_refused():
    from sklearn.ensemble import HistGradientBoostingClassifier

    X, kinds = _data(500, 6)
    binary = HistGradientBoostingClassifier(max_iter=5).fit(X, kinds > 2)
    with pytest.raises(ModelError, match="multiclass"):
        tree_logits(binary)
    categorical = HistGradientBoostingClassifier(max_iter=5, categorical_features=[11])
    X[:, 11] = np.arange(len(X)) % 4
    with pytest.raises(ModelError, match="categorical"):
        tree_logits(categorical.fit(X, kinds))
    with pytest.raises(ModelError, match="at least one head"):
        posterior_graph([], 12)
