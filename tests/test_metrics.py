"""Tests of voxguard.evaluate.metrics: against scikit-learn, against the ASVspoof reference algorithm, on
hand-computed cases, and property tests (invariances, symmetries, bounds)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from voxguard.errors import VoxguardError
from voxguard.evaluate import metrics as M

PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _random_trials(seed: int, n: int = 600, p_spoof: float = 0.4, ties: bool = False) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < p_spoof).astype(int)
    s = rng.normal(size=n) + 1.2 * y
    if ties:
        s = np.round(s, 1)  # many tied scores, across classes too
    return y, s


# ------------------------------------------------------------------------------------------------
# Reference implementations written from the published algorithms (bona fide = target in ASVspoof).
# ------------------------------------------------------------------------------------------------


def _asvspoof_det(target: np.ndarray, nontarget: np.ndarray) -> tuple[np.ndarray, ...]:
    scores = np.concatenate([target, nontarget])
    labels = np.concatenate([np.ones(target.size), np.zeros(nontarget.size)])
    order = np.argsort(scores, kind="mergesort")
    labels = labels[order]
    tar_sums = np.cumsum(labels)
    non_sums = nontarget.size - (np.arange(1, scores.size + 1) - tar_sums)
    frr = np.r_[0, tar_sums / target.size]
    far = np.r_[1, non_sums / nontarget.size]
    thr = np.r_[scores[order[0]] - 0.001, scores[order]]
    return frr, far, thr


def _asvspoof_eer(target: np.ndarray, nontarget: np.ndarray) -> tuple[float, float]:
    frr, far, thr = _asvspoof_det(target, nontarget)
    i = np.argmin(np.abs(frr - far))
    return float(np.mean([frr[i], far[i]])), float(thr[i])


def _asvspoof5_min_dcf(bonafide: np.ndarray, spoof: np.ndarray, p_spoof: float, c_miss: float, c_fa: float):
    frr, far, _ = _asvspoof_det(bonafide, spoof)
    p_target = 1 - p_spoof
    cost = c_miss * frr * p_target + c_fa * far * (1 - p_target)
    return float(cost.min() / min(c_miss * p_target, c_fa * (1 - p_target)))


# ------------------------------------------------------------------------------------------------
# scikit-learn agreement
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("ties", [False, True])
def test_roc_matches_sklearn(seed: int, ties: bool) -> None:
    y, s = _random_trials(seed, ties=ties)
    for drop in (False, True):
        ours = M.roc_curve_points(y, s, drop_intermediate=drop)
        fpr, tpr, thr = skm.roc_curve(y, s, drop_intermediate=drop)
        np.testing.assert_allclose(ours.fpr, fpr)
        np.testing.assert_allclose(ours.tpr, tpr)
        np.testing.assert_array_equal(ours.thresholds, thr)
    assert M.roc_auc(y, s) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)


@pytest.mark.parametrize("seed", [3, 4])
def test_threshold_metrics_match_sklearn(seed: int) -> None:
    y, s = _random_trials(seed, ties=True)
    for t in (-1.0, 0.3, float(np.median(s)), 2.5, 99.0):
        pred = (s >= t).astype(int)
        np.testing.assert_array_equal(M.confusion_matrix(y, s, t), skm.confusion_matrix(y, pred, labels=[0, 1]))
        p, r, f, _ = skm.precision_recall_fscore_support(y, pred, average="binary", pos_label=1, zero_division=0)
        assert M.precision(y, s, t) == pytest.approx(p)
        assert M.recall(y, s, t) == pytest.approx(r)
        assert M.f1(y, s, t) == pytest.approx(f)
        assert M.accuracy(y, s, t) == pytest.approx(skm.accuracy_score(y, pred))
        assert M.balanced_accuracy(y, s, t) == pytest.approx(skm.balanced_accuracy_score(y, pred))
        ref = skm.classification_report(
            y, pred, labels=[0, 1], target_names=["bonafide", "spoof"], output_dict=True, zero_division=0
        )
        ours = M.classification_report(y, s, t)
        for key in ("bonafide", "spoof", "macro avg", "weighted avg"):
            for metric in ("precision", "recall", "f1-score", "support"):
                assert ours[key][metric] == pytest.approx(ref[key][metric]), (key, metric)
        assert ours["accuracy"] == pytest.approx(ref["accuracy"])


def test_det_curve_is_roc_reversed() -> None:
    y, s = _random_trials(5, ties=True)
    roc = M.roc_curve_points(y, s)
    det = M.det_curve(y, s)
    np.testing.assert_allclose(det.fpr, roc.fpr[::-1])
    np.testing.assert_allclose(det.fnr, 1 - roc.tpr[::-1])
    np.testing.assert_array_equal(det.thresholds, roc.thresholds[::-1])
    assert np.all(np.diff(det.thresholds) > 0)
    assert (det.fnr[0], det.fpr[0], det.fnr[-1], det.fpr[-1]) == (0.0, 1.0, 1.0, 0.0)


# ------------------------------------------------------------------------------------------------
# ASVspoof reference agreement
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_eer_matches_asvspoof_reference_without_ties(seed: int) -> None:
    y, s = _random_trials(seed, n=500 + 37 * seed, p_spoof=0.2 + 0.1 * seed)
    if seed == 0:
        # Tiny sets where two DET points are equally near the diagonal: the tie-break must agree too.
        y, s = np.array([0, 1, 0, 1, 1]), np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    # ASVspoof: bona fide is the target and higher = bona fide, so negate.
    ref_eer, ref_thr = _asvspoof_eer(-s[y == 0], -s[y == 1])
    ours = M.eer(y, s)
    assert ours.eer == pytest.approx(ref_eer, abs=1e-12)
    # Reference: accept bona fide when -score > thr; ours: flag spoof when score >= threshold. Same decisions.
    np.testing.assert_array_equal(-s > ref_thr, ~(s >= ours.threshold))


@pytest.mark.parametrize("seed", range(3))
def test_min_dcf_asvspoof5_costs_match_reference_orientation(seed: int) -> None:
    y, s = _random_trials(seed, n=800)
    ref = _asvspoof5_min_dcf(-s[y == 0], -s[y == 1], p_spoof=0.05, c_miss=1.0, c_fa=10.0)
    ours = M.min_dcf(y, s, **M.ASVSPOOF5_COSTS._asdict())
    assert ours.min_dcf == pytest.approx(ref, abs=1e-12)


# ------------------------------------------------------------------------------------------------
# Hand-computed cases
# ------------------------------------------------------------------------------------------------


def test_perfect_separation() -> None:
    y = np.r_[np.zeros(50), np.ones(30)]
    s = np.r_[np.linspace(-3, -1, 50), np.linspace(1, 3, 30)]
    e = M.eer(y, s)
    assert e.eer == 0.0
    assert np.all((s >= e.threshold) == (y == 1))
    assert M.eer(y, s, method="interp").eer == 0.0
    assert M.eer_rocch(y, s) == 0.0
    assert M.roc_auc(y, s) == 1.0
    assert M.min_dcf(y, s).min_dcf == 0.0
    assert M.min_cllr(y, s) == 0.0
    all_ = M.compute_all(y, s)
    assert all_["accuracy"] == 1.0 and all_["f1"] == 1.0 and all_["fp"] == 0 and all_["fn"] == 0


def test_identical_distributions() -> None:
    base = np.arange(100, dtype=float)
    y = np.r_[np.zeros(100), np.ones(100)]
    s = np.r_[base, base]
    assert M.eer(y, s).eer == 0.5
    assert M.eer(y, s, method="interp").eer == 0.5
    assert M.eer_rocch(y, s) == pytest.approx(0.5)
    assert M.roc_auc(y, s) == 0.5
    assert M.min_dcf(y, s).min_dcf == pytest.approx(1.0)
    assert M.min_cllr(y, s) == pytest.approx(1.0)
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 4000)
    s = rng.normal(size=4000)
    assert M.eer(y, s).eer == pytest.approx(0.5, abs=0.04)


def test_small_handmade_example() -> None:
    # bonafide 1,2,3,4; spoof 3.5,5,6,7. At t=4: FNR = 1/4 (3.5 missed), FPR = 1/4 (4 flagged) -> EER 0.25.
    y = [0, 0, 0, 0, 1, 1, 1, 1]
    s = [1, 2, 3, 4, 3.5, 5, 6, 7]
    assert M.eer(y, s) == M.EERResult(0.25, 4.0)
    assert M.eer(y, s, method="interp").eer == 0.25
    # Convex hull pools (3.5 spoof, 4 bonafide): vertices (P_fa, P_miss) = (1/4, 0) and (0, 1/4) -> 1/8.
    assert M.eer_rocch(y, s) == pytest.approx(0.125)
    assert M.roc_auc(y, s) == pytest.approx(15 / 16)
    assert M.min_dcf(y, s) == M.MinDCFResult(0.25, 3.5)  # P_miss + P_fa = 0 + 1/4 at t = 3.5
    np.testing.assert_array_equal(M.confusion_matrix(y, s, 4.0), [[3, 1], [1, 3]])


def test_eer_nearest_point_versus_interpolation() -> None:
    # DET points (FNR, FPR) by threshold 0, 1, 2, inf: (0,1) (0,1/2) (1,1/2) (1,0). The two middle points are
    # equally near FNR = FPR; like the reference on -score, the higher threshold wins -> (1 + 1/2) / 2.
    # Interpolation crosses halfway -> 0.5.
    y, s = [0, 1, 0], [0.0, 1.0, 2.0]
    assert M.eer(y, s) == M.EERResult(0.75, 2.0)
    assert _asvspoof_eer(-np.array([0.0, 2.0]), -np.array([1.0]))[0] == 0.75
    assert M.eer(y, s, method="interp").eer == pytest.approx(0.5)


def test_tied_scores_use_only_realisable_thresholds() -> None:
    y = [0, 1, 0, 1]
    s = [1.0, 1.0, 1.0, 1.0]
    det = M.det_curve(y, s)
    assert det.thresholds.tolist() == [1.0, math.inf]
    assert M.eer(y, s) == M.EERResult(0.5, 1.0)
    assert M.roc_auc(y, s) == 0.5


# ------------------------------------------------------------------------------------------------
# Cllr
# ------------------------------------------------------------------------------------------------


def test_cllr_reference_values() -> None:
    y = np.r_[np.zeros(10), np.ones(10)]
    assert M.cllr(y, np.zeros(20)) == pytest.approx(1.0)
    assert M.cllr(y, np.r_[np.full(10, -np.inf), np.full(10, np.inf)]) == 0.0
    assert M.cllr(y, np.r_[np.full(10, np.inf), np.full(10, -np.inf)]) == math.inf
    # One spoof trial at LLR = log 3 and one bonafide at -log 3: each costs log2(1 + 1/3).
    assert M.cllr([1, 0], [math.log(3), -math.log(3)]) == pytest.approx(math.log2(4 / 3))


def test_cllr_calibrated_versus_miscalibrated() -> None:
    rng = np.random.default_rng(11)
    n = 4000
    y = rng.integers(0, 2, n)
    mu = 1.0
    x = rng.normal(size=n) + np.where(y == 1, mu, -mu)
    llr = 2 * mu * x  # exact LLR of N(+mu, 1) versus N(-mu, 1)
    calibrated = M.cllr(y, llr)
    min_c = M.min_cllr(y, x)
    assert min_c <= calibrated
    assert calibrated - min_c < 0.03  # calibrated: little calibration loss
    for bad in (4 * llr, llr + 3, 0.2 * llr, -llr):
        assert M.cllr(y, bad) > calibrated + 0.05
    assert M.cllr(y, -llr) > 1.0
    assert M.min_cllr(y, x) == pytest.approx(M.min_cllr(y, llr))


def test_pav_llrs_are_monotone_and_minimise_cllr() -> None:
    y, s = _random_trials(12, n=400, ties=True)
    llrs = M.pav_llrs(y, s)
    ordered = llrs[np.argsort(s, kind="mergesort")]
    assert np.all(ordered[1:] >= ordered[:-1])  # inf - inf is NaN, so compare rather than diff
    assert M.cllr(y, llrs) == pytest.approx(M.min_cllr(y, s))


# ------------------------------------------------------------------------------------------------
# compute_all and metrics_by_group
# ------------------------------------------------------------------------------------------------


def test_compute_all_default_and_given_threshold() -> None:
    y, s = _random_trials(13)
    res = M.compute_all(y, s)
    e = M.eer(y, s)
    assert res["eer"] == e.eer and res["threshold"] == e.threshold and res["threshold_source"] == "eer"
    assert res["auc"] == M.roc_auc(y, s)
    assert res["min_dcf"] == M.min_dcf(y, s).min_dcf
    assert res["n"] == len(y) and res["n_spoof"] == int(np.sum(y)) and res["tp"] + res["fn"] == res["n_spoof"]
    assert "cllr" not in res
    given = M.compute_all(y, s, threshold=0.7, scores_are_llrs=True)
    assert given["threshold_source"] == "given" and given["threshold"] == 0.7
    assert given["accuracy"] == pytest.approx(M.accuracy(y, s, 0.7))
    assert given["f1"] == pytest.approx(M.f1(y, s, 0.7))
    assert given["cllr"] == pytest.approx(M.cllr(y, s))
    assert given["dcf"] == pytest.approx(M.dcf(y, s, 0.7))
    assert given["balanced_accuracy"] == pytest.approx(M.balanced_accuracy(y, s, 0.7))


def test_metrics_by_group_pairs_spoof_only_groups_with_all_bonafide() -> None:
    rng = np.random.default_rng(14)
    n_b = 300
    attacks = ["A01"] * 100 + ["A02"] * 100 + ["A10"] * 50
    y = np.r_[np.zeros(n_b), np.ones(250)].astype(int)
    s = np.r_[rng.normal(size=n_b), rng.normal(2, 1, 100), rng.normal(0.5, 1, 100), rng.normal(4, 1, 50)]
    system = np.array(["-"] * n_b + attacks)
    rows = M.metrics_by_group(y, s, system, group_name="system")
    assert [r["value"] for r in rows] == ["-", "A01", "A02", "A10"]
    pooled_thr = M.eer(y, s).threshold
    bona_row = rows[0]
    assert bona_row["paired_with_all_bonafide"] is False
    assert math.isnan(bona_row["eer"]) and math.isnan(bona_row["auc"]) and math.isnan(bona_row["recall"])
    assert bona_row["accuracy"] == pytest.approx(M.accuracy(y[:n_b], s[:n_b], pooled_thr))
    for row in rows[1:]:
        mask = (system == row["value"]) | (y == 0)
        assert row["paired_with_all_bonafide"] is True
        assert row["n_group"] == int(np.sum(system == row["value"]))
        assert row["n_bonafide"] == n_b and row["n"] == int(mask.sum())
        assert row["eer"] == M.eer(y[mask], s[mask]).eer
        assert row["threshold"] == pooled_thr
        assert row["recall"] == pytest.approx(
            M.recall(y[system == row["value"]], s[system == row["value"]], pooled_thr)
        )
    assert rows[3]["eer"] < rows[1]["eer"] < rows[2]["eer"]
    unpaired = M.metrics_by_group(y, s, system, pair_with_all_bonafide=False, threshold=0.0)
    assert all(math.isnan(r["eer"]) for r in unpaired)
    assert all(r["threshold"] == 0.0 and r["threshold_source"] == "given" for r in unpaired)


def test_metrics_by_group_mixed_groups_and_several_columns() -> None:
    y, s = _random_trials(15, n=400)
    speaker = np.arange(400) % 3  # integers are fine, compared as strings
    codec = np.where(np.arange(400) < 200, "mp3", "opus")
    rows = M.metrics_by_group(y, s, {"speaker": speaker, "codec": codec})
    assert [(r["group"], r["value"]) for r in rows] == [
        ("speaker", "0"), ("speaker", "1"), ("speaker", "2"), ("codec", "mp3"), ("codec", "opus"),
    ]  # fmt: skip
    for r in rows:
        mask = (speaker.astype(str) if r["group"] == "speaker" else codec) == r["value"]
        assert not r["paired_with_all_bonafide"]
        assert r["eer"] == M.eer(y[mask], s[mask]).eer
        assert r["n"] == r["n_group"] == int(mask.sum())
    numeric = M.metrics_by_group(y, s, np.arange(400) % 12)
    assert [r["value"] for r in numeric] == [str(i) for i in range(12)]


# ------------------------------------------------------------------------------------------------
# Validation
# ------------------------------------------------------------------------------------------------


def test_label_normaliser() -> None:
    words = [" Spoof", "FAKE", "bonafide", "bona-fide", "Real", "genuine", "1", "0", "spoofed"]
    np.testing.assert_array_equal(M.normalise_labels(words), [1, 1, 0, 0, 0, 0, 1, 0, 1])
    np.testing.assert_array_equal(M.normalise_labels([True, False]), [1, 0])
    np.testing.assert_array_equal(M.normalise_labels(np.array([1.0, 0.0])), [1, 0])
    np.testing.assert_array_equal(M.normalise_labels(np.array(["spoof", 0], dtype=object)), [1, 0])
    assert M.normalise_labels(["spoof"]).dtype == np.int8
    for bad in (["spoof", "maybe"], [0, 2], [0.5], [[0, 1]]):
        with pytest.raises(M.MetricError):
            M.normalise_labels(bad)


@pytest.mark.parametrize(
    ("labels", "scores", "match"),
    [
        ([0, 1, 1], [0.1, 0.2], "different lengths"),
        ([0, 1], [0.1, float("nan")], "non-finite"),
        ([0, 1], [0.1, float("inf")], "non-finite"),
        ([1, 1, 1], [0.1, 0.2, 0.3], "all 3 trials are spoof"),
        (["real", "real"], [0.1, 0.2], "all 2 trials are bonafide"),
        ([0, "maybe"], [0.1, 0.2], "unrecognised label"),
        ([], [], "no trials"),
        ([0, 1], ["a", "b"], "must be numeric"),
        ([0, 1], [[0.1, 0.2]], "one-dimensional"),
    ],
)
def test_invalid_inputs_raise_metric_error(labels, scores, match) -> None:
    for fn in (M.eer, M.roc_auc, M.min_dcf, M.min_cllr, M.compute_all, M.det_curve, M.eer_rocch):
        with pytest.raises(M.MetricError, match=match) as info:
            fn(labels, scores)
        assert isinstance(info.value, VoxguardError)
        assert info.value.code == "metric_error"


def test_other_validation() -> None:
    with pytest.raises(M.MetricError, match="NaN"):
        M.cllr([0, 1], [0.0, float("nan")])
    with pytest.raises(M.MetricError, match="p_target"):
        M.min_dcf([0, 1], [0.0, 1.0], p_target=1.0)
    with pytest.raises(M.MetricError, match="positive"):
        M.min_dcf([0, 1], [0.0, 1.0], c_fa=0)
    with pytest.raises(M.MetricError, match="unknown EER method"):
        M.eer([0, 1], [0.0, 1.0], method="magic")  # type: ignore[arg-type]
    with pytest.raises(M.MetricError, match="group column"):
        M.metrics_by_group([0, 1], [0.0, 1.0], ["a"])
    with pytest.raises(M.MetricError, match="single-class"):
        M.metrics_by_group([1, 1], [0.0, 1.0], ["a", "b"])
    with pytest.raises(M.MetricError, match="NaN"):
        M.accuracy([0, 1], [0.0, 1.0], float("nan"))
    # Threshold metrics work on one class; metrics needing both give a clear error instead.
    assert M.accuracy([1, 1], [0.0, 1.0], 0.5) == 0.5
    assert M.recall([0, 0], [0.0, 1.0], 0.5) == 0.0


# ------------------------------------------------------------------------------------------------
# Properties
# ------------------------------------------------------------------------------------------------


@st.composite
def trials(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    n_spoof = draw(st.integers(1, 25))
    n_bonafide = draw(st.integers(1, 25))
    # Small integers: plenty of ties, and transforms below stay exactly strictly increasing.
    values = st.integers(-20, 20)
    spoof = draw(st.lists(values, min_size=n_spoof, max_size=n_spoof))
    bonafide = draw(st.lists(values, min_size=n_bonafide, max_size=n_bonafide))
    y = np.r_[np.ones(n_spoof, dtype=int), np.zeros(n_bonafide, dtype=int)]
    order = draw(st.permutations(range(y.size)))
    s = np.r_[spoof, bonafide].astype(float)
    return y[list(order)], s[list(order)]


INCREASING = [lambda x: 3 * x - 7, lambda x: x**3, lambda x: np.exp(x / 5), np.arctan]


@PROPERTY
@given(trials(), st.sampled_from(INCREASING))
def test_invariant_under_increasing_transforms(data, transform) -> None:
    y, s = data
    t = transform(s)
    assert M.eer(y, t).eer == M.eer(y, s).eer
    assert M.eer(y, t, method="interp").eer == pytest.approx(M.eer(y, s, method="interp").eer, abs=1e-12)
    assert M.eer_rocch(y, t) == pytest.approx(M.eer_rocch(y, s), abs=1e-12)
    assert M.roc_auc(y, t) == M.roc_auc(y, s)
    assert M.min_dcf(y, t).min_dcf == M.min_dcf(y, s).min_dcf
    assert M.min_dcf(y, t, p_target=0.05, c_fa=3).min_dcf == M.min_dcf(y, s, p_target=0.05, c_fa=3).min_dcf
    assert M.min_cllr(y, t) == pytest.approx(M.min_cllr(y, s), abs=1e-12)


@PROPERTY
@given(trials())
def test_symmetric_under_class_swap(data) -> None:
    y, s = data
    y2, s2 = 1 - y, -s
    assert M.eer(y2, s2, method="interp").eer == pytest.approx(M.eer(y, s, method="interp").eer, abs=1e-12)
    assert M.eer_rocch(y2, s2) == pytest.approx(M.eer_rocch(y, s), abs=1e-12)
    assert M.roc_auc(y2, s2) == pytest.approx(M.roc_auc(y, s), abs=1e-12)
    assert M.min_cllr(y2, s2) == pytest.approx(M.min_cllr(y, s), abs=1e-12)
    # The nearest-point (ASVspoof) EER can differ by at most half a step of one point when no
    # scores are tied; with ties a step can be several points high (found by hypothesis in CI).
    if len(np.unique(s)) == len(s):
        n_spoof, n_bonafide = int(y.sum()), int((1 - y).sum())
        step = 0.5 * (1 / n_spoof + 1 / n_bonafide)
        assert abs(M.eer(y2, s2).eer - M.eer(y, s).eer) <= step + 1e-12
    # Only negating the score mirrors the ROC.
    assert M.roc_auc(y, -s) == pytest.approx(1 - M.roc_auc(y, s), abs=1e-12)


@PROPERTY
@given(trials())
def test_bounds_and_orderings(data) -> None:
    y, s = data
    e = M.eer(y, s)
    interp = M.eer(y, s, method="interp").eer
    rocch = M.eer_rocch(y, s)
    assert 0.0 <= e.eer <= 1.0 and 0.0 <= interp <= 1.0
    assert 0.0 <= rocch <= 0.5 + 1e-12
    assert rocch <= interp + 1e-12
    dcf = M.min_dcf(y, s)
    assert 0.0 <= dcf.min_dcf <= 1.0 + 1e-12
    assert dcf.min_dcf <= 2 * e.eer + 1e-12  # at the EER point P_miss + P_fa = 2 EER
    assert 0.0 <= M.min_dcf(y, s, **M.ASVSPOOF5_COSTS._asdict()).min_dcf <= 1.0 + 1e-12
    assert 0.0 <= M.roc_auc(y, s) <= 1.0
    assert -1e-12 <= M.min_cllr(y, s) <= 1.0 + 1e-12
    flagged = s >= e.threshold  # the EER threshold reproduces the EER operating point
    fnr = np.mean(~flagged[y == 1])
    fpr = np.mean(flagged[y == 0])
    assert (fnr + fpr) / 2 == pytest.approx(e.eer, abs=1e-12)


@PROPERTY
@given(trials(), st.floats(0.05, 5.0), st.floats(-5.0, 5.0))
def test_min_cllr_not_above_cllr_of_monotone_llrs(data, scale, offset) -> None:
    y, s = data
    llrs = scale * s + offset
    assert M.min_cllr(y, s) <= M.cllr(y, llrs) + 1e-9
    assert M.min_cllr(y, s) <= M.cllr(y, np.zeros_like(s)) + 1e-9  # never worse than "no information"
