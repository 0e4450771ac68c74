"""Fit a wide-band companion's mix with its main model (:mod:`voxguard.models.companion`).

Both models' out-of-fold clip scores on the wide-band clips go in, as calibrated log-odds, under
the clean condition and, optionally, under degradations (``voxguard robustness`` scores of both
models on the same clips). A logistic regression on the two, fitted on every given condition
stacked, gives the mix (intercept and two weights): fitted on clean clips alone, the companion
gets a weight that hurts under noise (docs/results.md, "A wide-band companion"). Its operating
points come from the mix's grouped out-of-fold probabilities on the *clean* clips, as every
model's do; the mix is fitted fold by fold, so neither the thresholds nor the reported EERs are
measured on the clips it was fitted on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from voxguard.datasets import Dataset, group_kfold
from voxguard.evaluate import metrics
from voxguard.evaluate.training import thresholds_from_scores
from voxguard.models.companion import CompanionFusion, log_odds
from voxguard.models.onnx_model import sigmoid

#: The condition the thresholds and the headline EERs are measured on.
CLEAN = "clean"


def _fit_mix(X: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    from sklearn.linear_model import LogisticRegression

    # Mild regularisation: two weights, a few thousand rows.
    model = LogisticRegression(C=1.0, class_weight="balanced").fit(X, y)
    return float(model.intercept_[0]), float(model.coef_[0, 0]), float(model.coef_[0, 1])


@dataclass(frozen=True)
class CompanionFit:
    """The fitted mix and what it was measured at (grouped out-of-fold on the same clips)."""

    fusion: CompanionFusion
    metrics: dict[str, Any]
    oof_proba: dict[str, np.ndarray]


def _as_conditions(proba: np.ndarray | Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {CLEAN: np.asarray(proba, dtype=np.float64)} if isinstance(proba, np.ndarray) else dict(proba)


def fit_companion_fusion(
    dataset: Dataset,
    main_proba: np.ndarray | Mapping[str, np.ndarray],
    companion_proba: np.ndarray | Mapping[str, np.ndarray],
    *,
    main: str,
    min_top_band_db: float,
    fit_conditions: Sequence[str] | None = None,
    n_splits: int = 5,
    seed: int = 0,
) -> CompanionFit:
    """Fit the mix of two models' calibrated clip probabilities.

    Parameters
    ----------
    dataset : Dataset
        The wide-band clips (their labels and utterance groups give the folds).
    main_proba, companion_proba : np.ndarray of shape (n_clips,), or dict of them by condition
        Each model's *out-of-fold* P(fake) per clip (NaN: not scored; such rows are left out). A
        plain array is the clean condition; a dict must hold ``"clean"``.
    main : str
        Name of the main model (stored: the companion is used only beside it).
    min_top_band_db : float
        The gate stored with the mix (:func:`voxguard.audio.bandwidth.has_top_band`).
    fit_conditions : sequence of str, optional
        Conditions whose rows the mix is fitted on (default: every condition both models have).

    Returns
    -------
    CompanionFit
        ``metrics["eer_percent"]``: per condition, the EER of each model alone and of the mix,
        pooled over the grouped folds of the mix.
    """
    labels = dataset.labels()
    mains, comps = _as_conditions(main_proba), _as_conditions(companion_proba)
    if CLEAN not in mains or CLEAN not in comps:
        raise ValueError("both models need clean scores")
    conditions = [c for c in mains if c in comps]
    fit_on = list(fit_conditions) if fit_conditions is not None else conditions
    missing = [c for c in fit_on if c not in conditions]
    if missing:
        raise ValueError(f"no scores of both models under {missing}")
    X = {c: np.column_stack([log_odds(mains[c]), log_odds(comps[c])]) for c in conditions}
    ok = {c: np.isfinite(mains[c]) & np.isfinite(comps[c]) for c in conditions}
    if ok[CLEAN].sum() < 20 or len(set(labels[ok[CLEAN]])) < 2:
        raise ValueError(f"only {int(ok[CLEAN].sum())} clips have both clean scores; need at least 20 of both classes")

    def fit(rows: np.ndarray) -> tuple[float, float, float]:
        stacked = [(X[c][rows][ok[c][rows]], labels[rows][ok[c][rows]]) for c in fit_on]
        return _fit_mix(np.vstack([x for x, _ in stacked]), np.concatenate([y for _, y in stacked]))

    oof = {c: np.full(len(labels), np.nan) for c in conditions}
    for split in group_kfold(dataset, n_splits=n_splits, seed=seed):
        b0, b1, b2 = fit(np.asarray(split.train))
        test = np.asarray(split.test)
        for c in conditions:
            rows = test[ok[c][test]]
            oof[c][rows] = sigmoid(b0 + X[c][rows] @ np.array([b1, b2]))
    tested = np.isfinite(oof[CLEAN])
    b0, b1, b2 = fit(np.arange(len(labels)))
    fusion = CompanionFusion(
        main=main,
        intercept=b0,
        w_main=b1,
        w_companion=b2,
        thresholds=thresholds_from_scores(labels[tested], oof[CLEAN][tested]),
        min_top_band_db=min_top_band_db,
    )

    def eer_of(p: np.ndarray, rows: np.ndarray) -> float:
        return round(100.0 * metrics.eer(labels[rows], p[rows]).eer, 2)

    per_condition = {}
    for c in conditions:
        rows = np.isfinite(oof[c])
        per_condition[c] = {
            "main": eer_of(mains[c], rows),
            "companion": eer_of(comps[c], rows),
            "mix": eer_of(oof[c], rows),
        }
    report = {
        "clips": int(tested.sum()),
        "real": int((labels[tested] == 0).sum()),
        "fake": int((labels[tested] == 1).sum()),
        "split": f"utterance-grouped {n_splits}-fold (seed {seed}) over the wide-band clips, for the mix; "
        "each model's own probabilities are its out-of-fold scores",
        "fitted_on": fit_on,
        "eer_percent": per_condition[CLEAN],
        "eer_percent_by_condition": per_condition,
    }
    return CompanionFit(fusion=fusion, metrics=report, oof_proba=oof)


def write_companion_report(out: str | Path, dataset: Dataset, fit: CompanionFit, *, main: str, companion: str) -> Path:
    """An HTML/Markdown report of a fitted mix; returns ``report.html``.

    ROC, DET, score histograms, the confusion matrix at the mix's EER threshold and the EER per
    family of the mix's clean out-of-fold probabilities, and a table of the EER per condition of
    both models and the mix (:func:`voxguard.evaluate.report.write_report`).
    """
    from voxguard.evaluate.report import write_report

    clean = fit.oof_proba[CLEAN]
    tested = np.isfinite(clean)
    table = [
        {"condition": cond, f"{main} EER %": e["main"], f"{companion} EER %": e["companion"], "mix EER %": e["mix"]}
        for cond, e in fit.metrics["eer_percent_by_condition"].items()
    ]
    paths = write_report(
        {
            "label": dataset.labels()[tested],
            "score": clean[tested],
            "family": np.asarray(dataset.column("family"))[tested],
            "id": np.asarray(dataset.ids())[tested],
        },
        out,
        title=f"{companion} mixed with {main}: wide-band clips, grouped out of fold",
        group_columns=["family"],
        threshold=fit.fusion.thresholds["eer"],
        extra_sections=[{"title": "EER per condition (grouped out of fold)", "table": table}],
    )
    return paths.html
