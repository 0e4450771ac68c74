"""Fit a wide-band companion's mix with its main model (:mod:`voxguard.models.companion`).

Both models' out-of-fold clip scores on the wide-band clips go in, as calibrated log-odds. A
logistic regression on the two gives the mix (intercept and two weights); its operating points
come from the mix's grouped out-of-fold probabilities, fitted fold by fold, so that neither the
thresholds nor the reported EERs are measured on the clips the mix was fitted on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from voxguard.datasets import Dataset, group_kfold
from voxguard.evaluate import metrics
from voxguard.evaluate.training import thresholds_from_scores
from voxguard.models.companion import CompanionFusion, log_odds


def _fit_mix(X: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    from sklearn.linear_model import LogisticRegression

    # Mild regularisation: two weights, a few hundred clips.
    model = LogisticRegression(C=1.0, class_weight="balanced").fit(X, y)
    return float(model.intercept_[0]), float(model.coef_[0, 0]), float(model.coef_[0, 1])


@dataclass(frozen=True)
class CompanionFit:
    """The fitted mix and what it was measured at (grouped out-of-fold on the same clips)."""

    fusion: CompanionFusion
    metrics: dict[str, Any]
    oof_proba: np.ndarray


def fit_companion_fusion(
    dataset: Dataset,
    main_proba: np.ndarray,
    companion_proba: np.ndarray,
    *,
    main: str,
    min_top_band_db: float,
    n_splits: int = 5,
    seed: int = 0,
) -> CompanionFit:
    """Fit the mix of two models' calibrated clip probabilities.

    Parameters
    ----------
    dataset : Dataset
        The wide-band clips (their labels and utterance groups give the folds).
    main_proba, companion_proba : np.ndarray, shape (n_clips,)
        Each model's *out-of-fold* P(fake) per clip (NaN: not scored; such clips are left out).
    main : str
        Name of the main model (stored: the companion is used only beside it).
    min_top_band_db : float
        The gate stored with the mix (:func:`voxguard.audio.bandwidth.has_top_band`).

    Returns
    -------
    CompanionFit
        ``metrics`` holds the EER of each model alone and of the mix (pooled over the grouped
        folds of the mix), the number of clips, and the fold layout.
    """
    labels = dataset.labels()
    ok = np.isfinite(main_proba) & np.isfinite(companion_proba)
    if ok.sum() < 20 or len(set(labels[ok])) < 2:
        raise ValueError(f"only {int(ok.sum())} clips have both scores; need at least 20 of both classes")
    X = np.column_stack([log_odds(main_proba), log_odds(companion_proba)])
    oof = np.full(len(labels), np.nan)
    for split in group_kfold(dataset, n_splits=n_splits, seed=seed):
        train = np.asarray(split.train)[ok[split.train]]
        test = np.asarray(split.test)[ok[split.test]]
        if len(test) == 0:
            continue
        b0, b1, b2 = _fit_mix(X[train], labels[train])
        oof[test] = 1.0 / (1.0 + np.exp(-(b0 + X[test] @ np.array([b1, b2]))))
    tested = np.isfinite(oof)
    b0, b1, b2 = _fit_mix(X[ok], labels[ok])
    fusion = CompanionFusion(
        main=main,
        intercept=b0,
        w_main=b1,
        w_companion=b2,
        thresholds=thresholds_from_scores(labels[tested], oof[tested]),
        min_top_band_db=min_top_band_db,
    )

    def eer_of(p: np.ndarray) -> float:
        return round(100.0 * metrics.eer(labels[tested], p[tested]).eer, 2)

    report = {
        "clips": int(tested.sum()),
        "real": int((labels[tested] == 0).sum()),
        "fake": int((labels[tested] == 1).sum()),
        "split": f"utterance-grouped {n_splits}-fold (seed {seed}) over the wide-band clips, for the mix; "
        "each model's own probabilities are its out-of-fold scores",
        "eer_percent": {"main": eer_of(main_proba), "companion": eer_of(companion_proba), "mix": eer_of(oof)},
    }
    return CompanionFit(fusion=fusion, metrics=report, oof_proba=oof)
