"""Spoof-detection metrics: ROC/DET curves, EER, minDCF, Cllr, threshold metrics, per-group tables.

Conventions (the same everywhere in voxguard)
---------------------------------------------
* **Labels**: ``1`` = spoof (fake, AI-generated), ``0`` = bonafide (real). Strings ``"spoof"``/``"fake"`` and
  ``"bonafide"``/``"real"`` are accepted too, see :func:`normalise_labels`.
* **Scores**: higher = more likely spoof.
* **Target class of detection = spoof.** A trial is *flagged as spoof* when ``score >= threshold``.
  A *miss* is a spoof that is not flagged (P_miss = FNR = 1 - TPR); a *false alarm* is a bonafide
  trial that is flagged (P_fa = FPR).

The ASVspoof evaluation code uses the opposite orientation (bona fide is the target, higher = bona
fide). The EER does not depend on which class is called the target, but DCF cost parameters must be
mapped; see :data:`ASVSPOOF5_COSTS`.

Everything here is numpy-only and vectorised, except the pool-adjacent-violators pass used by :func:`min_cllr`
and :func:`eer_rocch`, which is an inherently sequential O(n) loop over the distinct scores.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from voxguard.errors import VoxguardError

__all__ = [
    "ASVSPOOF5_COSTS",
    "BONAFIDE",
    "DEFAULT_COSTS",
    "LABEL_NAMES",
    "SPOOF",
    "DCFCosts",
    "DETCurve",
    "EERResult",
    "MetricError",
    "MinDCFResult",
    "ROCCurve",
    "accuracy",
    "balanced_accuracy",
    "bayes_threshold",
    "classification_report",
    "cllr",
    "compute_all",
    "confusion_matrix",
    "dcf",
    "det_curve",
    "eer",
    "eer_rocch",
    "f1",
    "metrics_by_group",
    "min_cllr",
    "min_dcf",
    "normalise_labels",
    "pav_llrs",
    "precision",
    "recall",
    "roc_auc",
    "roc_curve_points",
]


class MetricError(VoxguardError):
    """Invalid input to a metric: length mismatch, NaN scores, unknown labels, a class that is missing."""

    code = "metric_error"
    http_status = 422


SPOOF = 1
BONAFIDE = 0
LABEL_NAMES: dict[int, str] = {BONAFIDE: "bonafide", SPOOF: "spoof"}

# Accepted spellings (compared after strip + lower-case). "0"/"1" make numeric CSV columns work unchanged.
_LABEL_ALIASES: dict[str, int] = {
    "spoof": SPOOF,
    "spoofed": SPOOF,
    "fake": SPOOF,
    "1": SPOOF,
    "1.0": SPOOF,
    "bonafide": BONAFIDE,
    "bona-fide": BONAFIDE,
    "bona_fide": BONAFIDE,
    "bona fide": BONAFIDE,
    "real": BONAFIDE,
    "genuine": BONAFIDE,
    "0": BONAFIDE,
    "0.0": BONAFIDE,
}


class DCFCosts(NamedTuple):
    """Parameters of the detection cost function, with **spoof as the target class**.

    Attributes
    ----------
    p_target : float
        Prior probability of a spoof trial.
    c_miss : float
        Cost of a miss: a spoof trial that is not flagged.
    c_fa : float
        Cost of a false alarm: a bonafide trial that is flagged as spoof.
    """

    p_target: float
    c_miss: float
    c_fa: float


#: voxguard default: equal priors and equal costs. The normalised DCF is then ``P_miss + P_fa`` and minDCF is
#: twice the minimum half total error rate; it makes no assumption about the deployment.
DEFAULT_COSTS = DCFCosts(p_target=0.5, c_miss=1.0, c_fa=1.0)

#: ASVspoof 5 (track 1) minDCF parameters translated to voxguard's orientation. ASVspoof 5 states them
#: with bona fide as target: pi_spoof = 0.05, C_miss = 1 (rejecting bona fide), C_fa = 10 (accepting a
#: spoof). With spoof as target, accepting a spoof is a *miss*, hence ``c_miss=10`` and ``c_fa=1``; the
#: normalised values agree.
ASVSPOOF5_COSTS = DCFCosts(p_target=0.05, c_miss=10.0, c_fa=1.0)


class ROCCurve(NamedTuple):
    """ROC operating points by decreasing threshold (first: ``threshold=+inf``, nothing flagged)."""

    fpr: NDArray[np.float64]
    tpr: NDArray[np.float64]
    thresholds: NDArray[np.float64]


class DETCurve(NamedTuple):
    """DET operating points by increasing threshold (last: ``threshold=+inf``, nothing flagged)."""

    fpr: NDArray[np.float64]
    fnr: NDArray[np.float64]
    thresholds: NDArray[np.float64]


class EERResult(NamedTuple):
    """Equal error rate (a fraction in [0, 1]) and the threshold of the operating point it was read at."""

    eer: float
    threshold: float


class MinDCFResult(NamedTuple):
    """Normalised minimum DCF and the threshold that attains it (``+inf`` means "never flag spoof")."""

    min_dcf: float
    threshold: float


# --------------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------------


def normalise_labels(labels: ArrayLike) -> NDArray[np.int8]:
    """Convert labels to the voxguard integer convention (1 = spoof, 0 = bonafide).

    Parameters
    ----------
    labels : array-like of shape (n,)
        Booleans, integers/floats in {0, 1}, or strings. Strings are matched case-insensitively after
        stripping: ``spoof``, ``spoofed``, ``fake``, ``1`` -> 1 and ``bonafide``, ``bona-fide``,
        ``bona fide``, ``real``, ``genuine``, ``0`` -> 0.

    Returns
    -------
    ndarray of int8, shape (n,)

    Raises
    ------
    MetricError
        If the input is not one-dimensional or contains a value that is not a recognised label.
    """
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise MetricError(f"labels must be one-dimensional, got shape {arr.shape}")
    kind = arr.dtype.kind
    if kind == "b":
        return arr.astype(np.int8)
    if kind in "iuf":
        bad = ~np.isin(arr, (0, 1))  # NaN is caught here too
        if bad.any():
            raise MetricError(_bad_labels_message(np.unique(arr[bad])))
        return arr.astype(np.int8)
    if kind in "USO":
        # Map the distinct values only: label columns are long, their vocabularies tiny.
        uniq, inverse = np.unique(arr.astype(str), return_inverse=True)
        codes = np.array([_LABEL_ALIASES.get(u.strip().lower(), -1) for u in uniq], dtype=np.int8)
        if (codes < 0).any():
            raise MetricError(_bad_labels_message(uniq[codes < 0]))
        return codes[inverse.reshape(-1)]
    raise MetricError(f"labels have unsupported dtype {arr.dtype}")


def _bad_labels_message(values: NDArray[Any]) -> str:
    shown = ", ".join(repr(v.item() if hasattr(v, "item") else v) for v in values[:5])
    more = f" (and {values.size - 5} more)" if values.size > 5 else ""
    return f"unrecognised label value(s): {shown}{more}; expected 1/'spoof'/'fake' or 0/'bonafide'/'real'"


def _as_float_array(values: ArrayLike, name: str, *, allow_inf: bool) -> NDArray[np.float64]:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise MetricError(f"{name} must be numeric ({exc})") from None
    if arr.ndim != 1:
        raise MetricError(f"{name} must be one-dimensional, got shape {arr.shape}")
    bad = np.isnan(arr) if allow_inf else ~np.isfinite(arr)
    if bad.any():
        idx = np.flatnonzero(bad)
        what = "NaN" if allow_inf else "non-finite (NaN or inf)"
        raise MetricError(f"{name} contain {idx.size} {what} value(s), first at index {idx[:5].tolist()}")
    return arr


def _validate(
    labels: ArrayLike,
    scores: ArrayLike,
    *,
    both_classes: bool = True,
    name: str = "scores",
    allow_inf: bool = False,
    what: str = "this metric",
) -> tuple[NDArray[np.int8], NDArray[np.float64]]:
    y = normalise_labels(labels)
    s = _as_float_array(scores, name, allow_inf=allow_inf)
    if y.size != s.size:
        raise MetricError(f"labels and {name} have different lengths ({y.size} vs {s.size})")
    if y.size == 0:
        raise MetricError("no trials: labels and scores are empty")
    if both_classes:
        n_spoof = int(y.sum())
        if n_spoof == 0 or n_spoof == y.size:
            present = "spoof" if n_spoof else "bonafide"
            raise MetricError(f"{what} needs both spoof and bonafide trials, but all {y.size} trials are {present}")
    return y, s


def _validate_costs(p_target: float, c_miss: float, c_fa: float) -> None:
    if not 0.0 < p_target < 1.0:
        raise MetricError(f"p_target must be strictly between 0 and 1, got {p_target}")
    if not (c_miss > 0 and c_fa > 0):
        raise MetricError(f"c_miss and c_fa must be positive, got c_miss={c_miss}, c_fa={c_fa}")


# --------------------------------------------------------------------------------------------------
# Operating points
# --------------------------------------------------------------------------------------------------


class _Counts(NamedTuple):
    thresholds: NDArray[np.float64]  # distinct scores, decreasing
    tp: NDArray[np.int64]  # spoof trials with score >= threshold
    fp: NDArray[np.int64]  # bonafide trials with score >= threshold
    n_spoof: int
    n_bonafide: int


def _counts(y: NDArray[np.int8], s: NDArray[np.float64]) -> _Counts:
    order = np.argsort(s, kind="mergesort")[::-1]
    s_sorted = s[order]
    # Only the last index of a run of tied scores is a realisable operating point ("flag all >= this score").
    ends = np.r_[np.flatnonzero(np.diff(s_sorted)), s_sorted.size - 1]
    tp = np.cumsum(y[order], dtype=np.int64)[ends]
    fp = (ends + 1) - tp
    n_spoof = int(y.sum())
    return _Counts(s_sorted[ends], tp, fp, n_spoof, int(y.size) - n_spoof)


def _det_counts(
    y: NDArray[np.int8], s: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.int64], int, int]:
    """Integer miss / false-alarm counts at every threshold, increasing, with the ``+inf`` end point."""
    c = _counts(y, s)
    thresholds = np.r_[c.thresholds[::-1], np.inf]
    misses = np.r_[(c.n_spoof - c.tp)[::-1], c.n_spoof]
    false_alarms = np.r_[c.fp[::-1], 0]
    return thresholds, misses, false_alarms, c.n_spoof, c.n_bonafide


def roc_curve_points(labels: ArrayLike, scores: ArrayLike, *, drop_intermediate: bool = False) -> ROCCurve:
    """Receiver operating characteristic with spoof as the positive class.

    Parameters
    ----------
    labels : array-like of shape (n,)
        1/``"spoof"`` or 0/``"bonafide"``.
    scores : array-like of shape (n,)
        Higher = more likely spoof. Must be finite.
    drop_intermediate : bool, default False
        Drop operating points that lie on a straight line between their neighbours (as scikit-learn's
        ``roc_curve`` does by default). They change neither the curve's shape nor its area.

    Returns
    -------
    ROCCurve
        ``fpr``, ``tpr`` and ``thresholds``, ordered by decreasing threshold. Point ``i`` flags every
        trial with ``score >= thresholds[i]``; the first point has ``threshold=+inf`` (nothing flagged,
        FPR = TPR = 0). With ``drop_intermediate=False`` this equals
        ``sklearn.metrics.roc_curve(..., drop_intermediate=False)``.
    """
    y, s = _validate(labels, scores, what="a ROC curve")
    c = _counts(y, s)
    tp, fp, thresholds = c.tp, c.fp, c.thresholds
    if drop_intermediate and tp.size > 2:
        keep = np.flatnonzero(np.r_[True, np.logical_or(np.diff(fp, 2), np.diff(tp, 2)), True])
        tp, fp, thresholds = tp[keep], fp[keep], thresholds[keep]
    return ROCCurve(
        fpr=np.r_[0, fp] / c.n_bonafide,
        tpr=np.r_[0, tp] / c.n_spoof,
        thresholds=np.r_[np.inf, thresholds],
    )


def _auc(y: NDArray[np.int8], s: NDArray[np.float64]) -> float:
    c = _counts(y, s)
    tp = np.r_[0, c.tp]
    fp = np.r_[0, c.fp]
    # Trapezoids on integer counts; equals the Mann-Whitney U statistic with ties counted 1/2.
    area = np.sum(np.diff(fp) * (tp[1:] + tp[:-1]))
    return float(area / (2.0 * c.n_spoof * c.n_bonafide))


def roc_auc(labels: ArrayLike, scores: ArrayLike) -> float:
    """Area under the ROC curve: the probability that a random spoof trial scores above a random bonafide one.

    Ties count one half. Equals ``sklearn.metrics.roc_auc_score(labels, scores)`` for 0/1 labels.

    Parameters
    ----------
    labels : array-like of shape (n,)
    scores : array-like of shape (n,)
        Higher = more likely spoof.

    Returns
    -------
    float
        AUC in [0, 1]; 0.5 is chance, values below 0.5 mean the score sign is inverted.
    """
    y, s = _validate(labels, scores, what="ROC AUC")
    return _auc(y, s)


def det_curve(labels: ArrayLike, scores: ArrayLike) -> DETCurve:
    """Detection error trade-off: false-alarm and miss rates at every threshold.

    Parameters
    ----------
    labels : array-like of shape (n,)
    scores : array-like of shape (n,)
        Higher = more likely spoof.

    Returns
    -------
    DETCurve
        ``fpr`` (P_fa, bonafide flagged), ``fnr`` (P_miss, spoof not flagged) and ``thresholds``, ordered by
        increasing threshold as in the ASVspoof ``compute_det_curve``: the first point flags every trial
        (FNR = 0, FPR = 1), the last has ``threshold=+inf`` and flags none (FNR = 1, FPR = 0). Point
        ``i`` flags trials with ``score >= thresholds[i]``. Tied scores give a single point.
    """
    y, s = _validate(labels, scores, what="a DET curve")
    thresholds, misses, false_alarms, n_spoof, n_bonafide = _det_counts(y, s)
    return DETCurve(fpr=false_alarms / n_bonafide, fnr=misses / n_spoof, thresholds=thresholds)


# --------------------------------------------------------------------------------------------------
# EER
# --------------------------------------------------------------------------------------------------


def _eer(y: NDArray[np.int8], s: NDArray[np.float64], method: str) -> EERResult:
    thresholds, misses, false_alarms, n_spoof, n_bonafide = _det_counts(y, s)
    # (FNR - FPR) * n_spoof * n_bonafide, in exact integers so that ties between points are genuine ties.
    # FNR rises and FPR falls with the threshold, so d is non-decreasing: -n_s*n_b first, +n_s*n_b last.
    d = misses * n_bonafide - false_alarms * n_spoof
    if method == "asvspoof":
        # On an exact tie take the higher threshold: the reference code scans bona-fide-oriented scores
        # (-score) upwards and keeps the first minimum, i.e. our last one. The +inf point is never
        # strictly nearest (|d| is maximal there); leaving it out keeps the threshold finite.
        i = d.size - 2 - int(np.argmin(np.abs(d[-2::-1])))
        value = 0.5 * (misses[i] / n_spoof + false_alarms[i] / n_bonafide)
    elif method == "interp":
        i = int(np.argmax(d >= 0))  # first point at or past the crossing; i >= 1 because d[0] < 0
        if d[i] == 0:
            value = misses[i] / n_spoof
        else:
            # Where the straight segment between the two neighbouring points meets FNR = FPR; that point is
            # attainable by randomising between the two thresholds.
            alpha = -d[i - 1] / (d[i] - d[i - 1])
            value = (misses[i - 1] + alpha * (misses[i] - misses[i - 1])) / n_spoof
            if -d[i - 1] < d[i]:
                i -= 1  # report the threshold of the nearer point, the higher one on a tie
    else:
        raise MetricError(f"unknown EER method {method!r}; expected 'asvspoof' or 'interp'")
    return EERResult(float(value), float(thresholds[i]))


def eer(labels: ArrayLike, scores: ArrayLike, *, method: Literal["asvspoof", "interp"] = "asvspoof") -> EERResult:
    """Equal error rate: the operating point where the miss rate equals the false-alarm rate.

    Parameters
    ----------
    labels : array-like of shape (n,)
        1/``"spoof"`` or 0/``"bonafide"``; both classes must be present.
    scores : array-like of shape (n,)
        Higher = more likely spoof. Must be finite.
    method : {"asvspoof", "interp"}, default "asvspoof"
        ``"asvspoof"`` (the standard ASVspoof computation): sort the scores, take the cumulative miss
        rate FNR(t) = #{spoof: score < t} / N_spoof and false-alarm rate
        FPR(t) = #{bonafide: score >= t} / N_bonafide at every distinct score t (plus t = +inf), pick the
        point that minimises ``|FNR - FPR|`` and return ``(FNR + FPR) / 2`` there. If two points are
        equally near, the one with the higher threshold wins. Without tied scores this is exactly the value
        ``compute_eer`` of the ASVspoof 2019/2021/5 evaluation packages returns for the same system in
        their orientation (bona fide = target, scores ``-score``); with tied scores it only uses
        thresholds that can actually be set (the reference code also visits points inside a run of
        ties). Because it reads one empirical point it can be off by up to half a step (about
        ``1 / (2 N)`` of the smaller class) and is not exactly symmetric under swapping the classes.

        ``"interp"``: linear interpolation between the two neighbouring DET points that bracket
        FNR = FPR; exactly symmetric and never below :func:`eer_rocch`.

    Returns
    -------
    EERResult
        ``eer`` (fraction in [0, 1]; 0.5 is chance, above 0.5 means the score sign is inverted) and
        ``threshold``, the threshold of the chosen point: flag spoof when ``score >= threshold``. The ASVspoof
        code reports the previous sorted score under the rule ``score > threshold``; both describe the same
        decisions.

    Raises
    ------
    MetricError
        On mismatched lengths, NaN/inf scores, unknown labels or a single class.
    """
    y, s = _validate(labels, scores, what="the EER")
    return _eer(y, s, method)


def _pav_blocks(
    y: NDArray[np.int8], s: NDArray[np.float64]
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64], NDArray[np.intp]]:
    """Pool-adjacent-violators on the spoof indicator, ordered by increasing score.

    Tied scores form one unit first (an optimal monotone map must give them the same value). Returns, per PAV
    block (increasing score): spoof count, trial count, number of distinct scores merged, and for every trial
    the index of its block.
    """
    s_unique, inverse = np.unique(s, return_inverse=True)
    inverse = inverse.reshape(-1)
    spoof = np.bincount(inverse, weights=y, minlength=s_unique.size).astype(np.int64)
    total = np.bincount(inverse, minlength=s_unique.size).astype(np.int64)
    # Stack-based PAV; integer cross-multiplication compares block means exactly. Equal means are pooled too,
    # which removes collinear hull vertices and leaves the fit unchanged.
    st_spoof: list[int] = []
    st_total: list[int] = []
    st_width: list[int] = []
    for a, b in zip(spoof.tolist(), total.tolist(), strict=True):
        width = 1
        while st_spoof and st_spoof[-1] * b >= a * st_total[-1]:
            a += st_spoof.pop()
            b += st_total.pop()
            width += st_width.pop()
        st_spoof.append(a)
        st_total.append(b)
        st_width.append(width)
    widths = np.asarray(st_width, dtype=np.int64)
    block_of_unique = np.repeat(np.arange(widths.size), widths)
    return (
        np.asarray(st_spoof, dtype=np.int64),
        np.asarray(st_total, dtype=np.int64),
        widths,
        block_of_unique[inverse],
    )


def _eer_rocch(y: NDArray[np.int8], s: NDArray[np.float64]) -> float:
    spoof, total, _, _ = _pav_blocks(y, s)
    n_spoof = int(y.sum())
    n_bonafide = int(y.size) - n_spoof
    # Hull vertices: thresholds at PAV block boundaries (flag block k and above).
    p_miss = np.r_[0, np.cumsum(spoof)] / n_spoof
    p_fa = (n_bonafide - np.r_[0, np.cumsum(total - spoof)]) / n_bonafide
    x1, x2, y1, y2 = p_fa[:-1], p_fa[1:], p_miss[:-1], p_miss[1:]
    dx, dy = x1 - x2, y2 - y1
    # Each hull segment's line a*P_fa + b*P_miss = 1 meets the diagonal at 1/(a+b); the EER is the largest of
    # these (BOSARIS rocch2eer). Horizontal/vertical segments only occur at the ends and contribute 0.
    with np.errstate(divide="ignore", invalid="ignore"):
        candidates = (x1 * y2 - x2 * y1) / (dx + dy)
    candidates = np.where((dx == 0) | (dy == 0), 0.0, candidates)
    return float(max(0.0, candidates.max()))


def eer_rocch(labels: ArrayLike, scores: ArrayLike) -> float:
    """EER of the ROC convex hull (ROCCH-EER, as in BOSARIS ``rocch2eer`` and NIST SRE tools).

    The convex hull of the empirical ROC is obtained from the pool-adjacent-violators fit of the labels
    on the scores; the EER is where the hull's DET meets FNR = FPR. It is the EER that an optimally
    *calibrated* (and, where useful, randomised) decision could reach, so it never exceeds 0.5, is exactly
    symmetric under swapping the classes, and is never above ``eer(..., method="interp")``.

    Parameters
    ----------
    labels : array-like of shape (n,)
    scores : array-like of shape (n,)
        Higher = more likely spoof.

    Returns
    -------
    float
        ROCCH-EER in [0, 0.5].
    """
    y, s = _validate(labels, scores, what="the ROCCH-EER")
    return _eer_rocch(y, s)


# --------------------------------------------------------------------------------------------------
# Detection cost
# --------------------------------------------------------------------------------------------------


def _min_dcf(y: NDArray[np.int8], s: NDArray[np.float64], costs: DCFCosts) -> MinDCFResult:
    thresholds, misses, false_alarms, n_spoof, n_bonafide = _det_counts(y, s)
    p, c_miss, c_fa = costs
    cost = c_miss * p * (misses / n_spoof) + c_fa * (1 - p) * (false_alarms / n_bonafide)
    i = int(np.argmin(cost))
    # Normalised by the best trivial system (always or never flag), so minDCF <= 1 and 1 means "useless".
    return MinDCFResult(float(cost[i] / min(c_miss * p, c_fa * (1 - p))), float(thresholds[i]))


def min_dcf(
    labels: ArrayLike,
    scores: ArrayLike,
    *,
    p_target: float = DEFAULT_COSTS.p_target,
    c_miss: float = DEFAULT_COSTS.c_miss,
    c_fa: float = DEFAULT_COSTS.c_fa,
) -> MinDCFResult:
    """Normalised minimum detection cost, with **spoof as the target class**.

    ``DCF(t) = c_miss * p_target * P_miss(t) + c_fa * (1 - p_target) * P_fa(t)``, divided by
    ``min(c_miss * p_target, c_fa * (1 - p_target))`` (the cost of the better of "always flag" and "never
    flag"), minimised over all thresholds including the two trivial ones. Hence ``0 <= minDCF <= 1``.

    Parameters
    ----------
    labels : array-like of shape (n,)
    scores : array-like of shape (n,)
        Higher = more likely spoof.
    p_target : float, default 0.5
        Prior probability of a spoof trial.
    c_miss : float, default 1
        Cost of a spoof that is not flagged.
    c_fa : float, default 1
        Cost of a bonafide trial flagged as spoof.

    Returns
    -------
    MinDCFResult
        ``min_dcf`` and the ``threshold`` attaining it (flag when ``score >= threshold``; ``+inf`` means
        never flag).

    Notes
    -----
    The default (0.5, 1, 1) is assumption-free: the normalised DCF is then ``P_miss + P_fa``. For the
    ASVspoof 5 operating point use ``**ASVSPOOF5_COSTS._asdict()`` (p_target=0.05, c_miss=10, c_fa=1 in
    this orientation).
    """
    _validate_costs(p_target, c_miss, c_fa)
    y, s = _validate(labels, scores, what="minDCF")
    return _min_dcf(y, s, DCFCosts(p_target, c_miss, c_fa))


def bayes_threshold(
    p_target: float = DEFAULT_COSTS.p_target,
    c_miss: float = DEFAULT_COSTS.c_miss,
    c_fa: float = DEFAULT_COSTS.c_fa,
) -> float:
    """Bayes decision threshold for calibrated natural-log LLR scores: ``log(c_fa (1-p) / (c_miss p))``.

    Flagging spoof when ``llr >= bayes_threshold(...)`` minimises the expected cost if the LLRs are
    calibrated.
    """
    _validate_costs(p_target, c_miss, c_fa)
    return float(np.log(c_fa * (1 - p_target) / (c_miss * p_target)))


def dcf(
    labels: ArrayLike,
    scores: ArrayLike,
    threshold: float,
    *,
    p_target: float = DEFAULT_COSTS.p_target,
    c_miss: float = DEFAULT_COSTS.c_miss,
    c_fa: float = DEFAULT_COSTS.c_fa,
) -> float:
    """Normalised detection cost at a fixed threshold ("actual DCF"); see :func:`min_dcf` for the definition.

    With calibrated LLR scores and ``threshold=bayes_threshold(p_target, c_miss, c_fa)`` this is the actDCF
    of the ASVspoof 5 evaluation.
    """
    _validate_costs(p_target, c_miss, c_fa)
    y, s = _validate(labels, scores, what="the DCF")
    tn, fp, fn, tp = _confusion(y, s, threshold)
    cost = c_miss * p_target * fn / (fn + tp) + c_fa * (1 - p_target) * fp / (fp + tn)
    return float(cost / min(c_miss * p_target, c_fa * (1 - p_target)))


# --------------------------------------------------------------------------------------------------
# Calibration: Cllr
# --------------------------------------------------------------------------------------------------


def _cllr(y: NDArray[np.int8], llrs: NDArray[np.float64]) -> float:
    # log(1 + e^-x) via logaddexp: stable for large |x| and exact 0 for a correct infinite LLR.
    spoof_cost = np.logaddexp(0.0, -llrs[y == 1]).mean()
    bonafide_cost = np.logaddexp(0.0, llrs[y == 0]).mean()
    return float((spoof_cost + bonafide_cost) / (2.0 * np.log(2.0)))


def cllr(labels: ArrayLike, llrs: ArrayLike) -> float:
    """Log-likelihood-ratio cost (Brümmer & du Preez), in bits.

    ``Cllr = 1/2 [ mean_spoof log2(1 + e^-llr) + mean_bonafide log2(1 + e^llr) ]``

    Parameters
    ----------
    labels : array-like of shape (n,)
        Both classes must be present.
    llrs : array-like of shape (n,)
        Natural-log likelihood ratios ``log p(x | spoof) / p(x | bonafide)``. ``±inf`` is allowed (a certain
        decision: cost 0 if right, ``inf`` if wrong); NaN is not.

    Returns
    -------
    float
        0 for perfect, 1 for an uninformative system that always outputs 0; above 1 means the LLRs are
        harmful (miscalibrated).
    """
    y, s = _validate(labels, llrs, name="llrs", allow_inf=True, what="Cllr")
    return _cllr(y, s)


def _pav_llrs(y: NDArray[np.int8], s: NDArray[np.float64]) -> NDArray[np.float64]:
    spoof, total, _, block = _pav_blocks(y, s)
    n_spoof = int(y.sum())
    n_bonafide = int(y.size) - n_spoof
    # Posterior log-odds of the PAV fit minus the empirical prior log-odds = LLR. Blocks with a single
    # class give ±inf, which is what the optimal monotone map assigns there.
    with np.errstate(divide="ignore"):
        block_llr = np.log(spoof) - np.log(total - spoof) - np.log(n_spoof / n_bonafide)
    return block_llr[block]


def pav_llrs(labels: ArrayLike, scores: ArrayLike) -> NDArray[np.float64]:
    """Optimally calibrated LLRs: the monotone (non-decreasing) map of the scores that minimises Cllr.

    Computed with pool-adjacent-violators (isotonic regression of the labels on the scores, ties pooled),
    converting the fitted posteriors to LLRs by removing the empirical prior. This is an "oracle" calibration
    fitted on the evaluation labels; use it to measure discrimination (:func:`min_cllr`), not to calibrate.

    Returns
    -------
    ndarray of float64, shape (n,)
        Natural-log LLRs, possibly ``±inf`` at the extremes.
    """
    y, s = _validate(labels, scores, what="PAV calibration")
    return _pav_llrs(y, s)


def min_cllr(labels: ArrayLike, scores: ArrayLike) -> float:
    """Minimum Cllr: Cllr after the optimal monotone calibration of the scores (:func:`pav_llrs`).

    Measures discrimination only: invariant to any strictly increasing transform of the scores, and
    ``min_cllr <= cllr`` for any LLRs that are a non-decreasing function of the scores. ``cllr - min_cllr`` is
    the calibration loss.

    Returns
    -------
    float
        In [0, 1]; 1 means no discrimination.
    """
    y, s = _validate(labels, scores, what="min Cllr")
    return _cllr(y, _pav_llrs(y, s))


# --------------------------------------------------------------------------------------------------
# Threshold metrics (positive class = spoof, flagged when score >= threshold)
# --------------------------------------------------------------------------------------------------


def _confusion(y: NDArray[np.int8], s: NDArray[np.float64], threshold: float) -> tuple[int, int, int, int]:
    if np.isnan(threshold):
        raise MetricError("threshold is NaN")
    flagged = s >= threshold
    tp = int(np.count_nonzero(flagged & (y == 1)))
    fp = int(np.count_nonzero(flagged)) - tp
    n_spoof = int(y.sum())
    fn = n_spoof - tp
    tn = int(y.size) - n_spoof - fp
    return tn, fp, fn, tp


def _ratio(num: float, den: float, zero_division: float) -> float:
    return float(num / den) if den else float(zero_division)


def confusion_matrix(labels: ArrayLike, scores: ArrayLike, threshold: float) -> NDArray[np.int64]:
    """2x2 confusion matrix at a threshold, laid out as scikit-learn's for labels ``[0, 1]``.

    Returns
    -------
    ndarray of int64, shape (2, 2)
        ``[[TN, FP], [FN, TP]]``: rows are the true class (bonafide, spoof), columns the decision
        (bonafide, spoof); spoof is decided when ``score >= threshold``.
    """
    y, s = _validate(labels, scores, both_classes=False)
    tn, fp, fn, tp = _confusion(y, s, threshold)
    return np.array([[tn, fp], [fn, tp]], dtype=np.int64)


def accuracy(labels: ArrayLike, scores: ArrayLike, threshold: float) -> float:
    """Fraction of trials decided correctly when flagging spoof at ``score >= threshold``."""
    y, s = _validate(labels, scores, both_classes=False)
    tn, _, _, tp = _confusion(y, s, threshold)
    return (tn + tp) / y.size


def balanced_accuracy(
    labels: ArrayLike, scores: ArrayLike, threshold: float, *, zero_division: float = np.nan
) -> float:
    """Mean of the per-class recalls, ``(TPR + TNR) / 2`` (= 1 - half total error rate).

    ``zero_division`` is returned when a class is absent.
    """
    y, s = _validate(labels, scores, both_classes=False)
    tn, fp, fn, tp = _confusion(y, s, threshold)
    if tp + fn == 0 or tn + fp == 0:
        return float(zero_division)
    return 0.5 * (tp / (tp + fn) + tn / (tn + fp))


def precision(labels: ArrayLike, scores: ArrayLike, threshold: float, *, zero_division: float = 0.0) -> float:
    """Fraction of flagged trials that are spoof, TP / (TP + FP); ``zero_division`` if nothing is flagged."""
    y, s = _validate(labels, scores, both_classes=False)
    _, fp, _, tp = _confusion(y, s, threshold)
    return _ratio(tp, tp + fp, zero_division)


def recall(labels: ArrayLike, scores: ArrayLike, threshold: float, *, zero_division: float = 0.0) -> float:
    """Fraction of spoof trials flagged (TPR, 1 - P_miss); ``zero_division`` if there is no spoof trial."""
    y, s = _validate(labels, scores, both_classes=False)
    _, _, fn, tp = _confusion(y, s, threshold)
    return _ratio(tp, tp + fn, zero_division)


def f1(labels: ArrayLike, scores: ArrayLike, threshold: float, *, zero_division: float = 0.0) -> float:
    """F1 of the spoof class, ``2 TP / (2 TP + FP + FN)``; ``zero_division`` when TP + FP + FN = 0."""
    y, s = _validate(labels, scores, both_classes=False)
    _, fp, fn, tp = _confusion(y, s, threshold)
    return _ratio(2 * tp, 2 * tp + fp + fn, zero_division)


def classification_report(
    labels: ArrayLike, scores: ArrayLike, threshold: float, *, zero_division: float = 0.0
) -> dict[str, Any]:
    """Per-class precision/recall/F1/support at a threshold, shaped like scikit-learn's ``output_dict=True``.

    Returns
    -------
    dict
        ``{"bonafide": {...}, "spoof": {...}, "accuracy": float, "macro avg": {...}, "weighted avg": {...}}``;
        each inner dict has ``precision``, ``recall``, ``f1-score`` and ``support``. For the bonafide row the
        bonafide class is treated as positive (decided when ``score < threshold``).
    """
    y, s = _validate(labels, scores, both_classes=False)
    tn, fp, fn, tp = _confusion(y, s, threshold)

    def row(tp_: int, fp_: int, fn_: int) -> dict[str, float]:
        return {
            "precision": _ratio(tp_, tp_ + fp_, zero_division),
            "recall": _ratio(tp_, tp_ + fn_, zero_division),
            "f1-score": _ratio(2 * tp_, 2 * tp_ + fp_ + fn_, zero_division),
            "support": tp_ + fn_,
        }

    per_class = {"bonafide": row(tn, fn, fp), "spoof": row(tp, fp, fn)}
    n = y.size
    report: dict[str, Any] = dict(per_class)
    report["accuracy"] = (tn + tp) / n
    keys = ("precision", "recall", "f1-score")
    macro = {k: float(np.mean([r[k] for r in per_class.values()])) for k in keys}
    report["macro avg"] = macro | {"support": n}
    report["weighted avg"] = {k: float(sum(r[k] * r["support"] for r in per_class.values()) / n) for k in keys} | {
        "support": n
    }
    return report


# --------------------------------------------------------------------------------------------------
# Everything at once, and per group
# --------------------------------------------------------------------------------------------------

_NAN = float("nan")


def _summary(
    y: NDArray[np.int8],
    s: NDArray[np.float64],
    threshold: float,
    costs: DCFCosts,
    scores_are_llrs: bool,
) -> dict[str, Any]:
    """All metrics for validated arrays; metrics that need both classes are NaN when one is missing."""
    n_spoof = int(y.sum())
    n_bonafide = int(y.size) - n_spoof
    both = n_spoof > 0 and n_bonafide > 0
    out: dict[str, Any] = {"n": int(y.size), "n_spoof": n_spoof, "n_bonafide": n_bonafide}
    if both:
        e = _eer(y, s, "asvspoof")
        m = _min_dcf(y, s, costs)
        out |= {
            "eer": e.eer,
            "eer_threshold": e.threshold,
            "eer_rocch": _eer_rocch(y, s),
            "auc": _auc(y, s),
            "min_dcf": m.min_dcf,
            "min_dcf_threshold": m.threshold,
            "min_cllr": _cllr(y, _pav_llrs(y, s)),
        }
        if scores_are_llrs:
            out["cllr"] = _cllr(y, s)
    else:
        out |= dict.fromkeys(
            ("eer", "eer_threshold", "eer_rocch", "auc", "min_dcf", "min_dcf_threshold", "min_cllr"), _NAN
        )
        if scores_are_llrs:
            out["cllr"] = _NAN
    tn, fp, fn, tp = _confusion(y, s, threshold)
    nan = _NAN
    fnr = _ratio(fn, fn + tp, nan)
    fpr = _ratio(fp, fp + tn, nan)
    p, c_miss, c_fa = costs
    out |= {
        "threshold": float(threshold),
        "tn": tn,
        "fp": fp,
        "fn": fn,
        "tp": tp,
        "accuracy": (tn + tp) / y.size,
        "balanced_accuracy": 0.5 * ((1 - fnr) + (1 - fpr)),  # NaN propagates when a class is missing
        "precision": _ratio(tp, tp + fp, nan),
        "recall": 1 - fnr,
        "f1": _ratio(2 * tp, 2 * tp + fp + fn, nan),
        "fpr": fpr,
        "fnr": fnr,
        "dcf": (c_miss * p * fnr + c_fa * (1 - p) * fpr) / min(c_miss * p, c_fa * (1 - p)),
    }
    return out


def compute_all(
    labels: ArrayLike,
    scores: ArrayLike,
    threshold: float | None = None,
    *,
    p_target: float = DEFAULT_COSTS.p_target,
    c_miss: float = DEFAULT_COSTS.c_miss,
    c_fa: float = DEFAULT_COSTS.c_fa,
    scores_are_llrs: bool = False,
) -> dict[str, Any]:
    """Every metric of this module in one flat dict (JSON-friendly: Python ints, floats and strings).

    Parameters
    ----------
    labels : array-like of shape (n,)
        Both classes must be present.
    scores : array-like of shape (n,)
        Higher = more likely spoof. Must be finite.
    threshold : float, optional
        Decision threshold for the threshold metrics (flag spoof when ``score >= threshold``). Defaults to the
        EER threshold of these very trials (``eer(...).threshold``, ASVspoof method). That threshold is tuned
        on the evaluation data, so the accuracy/F1 it gives are optimistic; pass a threshold fixed on
        development data (or :func:`bayes_threshold` for calibrated LLRs) to measure a deployable system.
    p_target, c_miss, c_fa : float
        DCF parameters, spoof as target; see :func:`min_dcf`. Default 0.5, 1, 1.
    scores_are_llrs : bool, default False
        The scores are calibrated natural-log LLRs: also report ``cllr``.

    Returns
    -------
    dict
        Keys: ``n, n_spoof, n_bonafide, eer, eer_threshold, eer_rocch, auc, min_dcf, min_dcf_threshold,
        min_cllr, [cllr], threshold, tn, fp, fn, tp, accuracy, balanced_accuracy, precision, recall, f1, fpr,
        fnr, dcf, threshold_source ("eer" or "given"), p_target, c_miss, c_fa``. ``recall`` = TPR =
        1 - ``fnr``; ``dcf`` is the normalised DCF at ``threshold``. A ratio with a zero denominator (e.g.
        precision when nothing is flagged) is NaN.
    """
    _validate_costs(p_target, c_miss, c_fa)
    y, s = _validate(labels, scores, what="compute_all")
    source = "given"
    if threshold is None:
        threshold = _eer(y, s, "asvspoof").threshold
        source = "eer"
    out = _summary(y, s, float(threshold), DCFCosts(p_target, c_miss, c_fa), scores_are_llrs)
    out |= {"threshold_source": source, "p_target": p_target, "c_miss": c_miss, "c_fa": c_fa}
    return out


def _group_sort_key(value: str) -> tuple[int, float, str]:
    # Numeric group values sort numerically ("2" before "10"), the rest alphabetically after them.
    try:
        return (0, float(value), value)
    except ValueError:
        return (1, 0.0, value)


def metrics_by_group(
    labels: ArrayLike,
    scores: ArrayLike,
    groups: ArrayLike | Mapping[str, ArrayLike],
    *,
    threshold: float | None = None,
    pair_with_all_bonafide: bool = True,
    group_name: str = "group",
    p_target: float = DEFAULT_COSTS.p_target,
    c_miss: float = DEFAULT_COSTS.c_miss,
    c_fa: float = DEFAULT_COSTS.c_fa,
    scores_are_llrs: bool = False,
) -> list[dict[str, Any]]:
    """Every metric of :func:`compute_all` for each value of one or more grouping columns.

    Parameters
    ----------
    labels, scores : array-like of shape (n,)
        As in :func:`compute_all`.
    groups : array-like of shape (n,) or mapping of column name -> array-like
        Group value of each trial (attack system, family, speaker, codec, ...), compared as strings.
        With a mapping, every column is processed in turn and rows are concatenated.
    threshold : float, optional
        One threshold for the threshold metrics of *all* groups, so that they describe the same operating
        point. Defaults to the EER threshold of all trials pooled (which then needs both classes).
    pair_with_all_bonafide : bool, default True
        A group with spoof trials only (typically one attack system) has no EER of its own. Following the
        ASVspoof per-attack convention, such a group is evaluated together with *all* bonafide trials of the
        input; every metric of the row then refers to that union (``recall``/``fnr`` still concern the group's
        spoofs only, ``fpr`` is the pooled bonafide rate). Groups with bonafide trials only are never paired.
    group_name : str, default "group"
        Column name written in each row when ``groups`` is not a mapping.
    p_target, c_miss, c_fa, scores_are_llrs
        As in :func:`compute_all`.

    Returns
    -------
    list of dict
        One row per (column, value), values in natural order: ``group`` (column name), ``value`` (str),
        ``n_group`` (trials carrying that value), ``paired_with_all_bonafide`` (bool), then the keys of
        :func:`compute_all` computed on the evaluated trials (``n``, ``n_spoof``, ``n_bonafide`` count those).
        Metrics that need both classes are NaN for a group that still has a single class; nothing raises.
    """
    _validate_costs(p_target, c_miss, c_fa)
    y, s = _validate(labels, scores, both_classes=False)
    columns: dict[str, ArrayLike] = dict(groups) if isinstance(groups, Mapping) else {group_name: groups}
    source = "given"
    if threshold is None:
        if y.min() == y.max():
            raise MetricError(
                "cannot derive the default threshold (pooled EER) from single-class trials; pass threshold="
            )
        threshold = _eer(y, s, "asvspoof").threshold
        source = "eer"
    costs = DCFCosts(p_target, c_miss, c_fa)
    bonafide = y == 0
    has_bonafide = bool(bonafide.any())
    rows: list[dict[str, Any]] = []
    for column, values in columns.items():
        g = np.asarray(values)
        if g.ndim != 1 or g.size != y.size:
            raise MetricError(
                f"group column {column!r} must be one-dimensional with {y.size} values, got shape {g.shape}"
            )
        g = g.astype(str)
        uniq, inverse = np.unique(g, return_inverse=True)
        inverse = inverse.reshape(-1)
        for k in sorted(range(uniq.size), key=lambda i: _group_sort_key(str(uniq[i]))):
            mask = inverse == k
            paired = False
            if pair_with_all_bonafide and has_bonafide and not (bonafide & mask).any():
                mask = mask | bonafide
                paired = True
            row: dict[str, Any] = {
                "group": column,
                "value": str(uniq[k]),
                "n_group": int(np.count_nonzero(inverse == k)),
                "paired_with_all_bonafide": paired,
            }
            row |= _summary(y[mask], s[mask], float(threshold), costs, scores_are_llrs)
            row |= {"threshold_source": source, "p_target": p_target, "c_miss": c_miss, "c_fa": c_fa}
            rows.append(row)
    return rows
