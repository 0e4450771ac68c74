"""Does a detector know more than the recording chain? Its EER within strata of a shortcut score.

The corpus audit (:mod:`voxguard.datasets.audit`) gives every clip an out-of-fold score from a
classifier that sees only recording-chain metadata (rate, codec, silence, levels, bandwidth).
When that score already separates the classes, a detector's EER on the whole corpus cannot show
whether it listens to the voice or to the chain. Comparing it *within* strata of the shortcut
score can: inside one stratum the chain says about the same thing of every clip, so whatever the
detector still separates there, it did not get from the chain.

:func:`eer_within_strata` splits the clips into quantile strata of the shortcut score and
reports, per stratum and pooled (weighted by clips), the detector's EER and the shortcut's own;
and how strongly the detector's score follows the shortcut's within each class (Spearman). A
detector that only reproduced the shortcut would sit near 50 % within strata.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from voxguard.evaluate.metrics import MetricError, eer, normalise_labels

__all__ = ["StrataResult", "Stratum", "eer_within_strata", "read_scores"]


@dataclass(frozen=True)
class Stratum:
    """One quantile stratum of the shortcut score.

    Attributes
    ----------
    low, high : float
        Shortcut-score range of the stratum (inclusive).
    n, n_spoof : int
        Clips in it, and how many are spoofs.
    detector_eer, shortcut_eer : float
        EER of each score inside the stratum (fraction; NaN when a class has too few clips there).
    """

    low: float
    high: float
    n: int
    n_spoof: int
    detector_eer: float
    shortcut_eer: float


@dataclass(frozen=True)
class StrataResult:
    """What :func:`eer_within_strata` found.

    Attributes
    ----------
    strata : list of Stratum
    detector_eer, shortcut_eer : float
        EER of each score over all clips.
    within_detector_eer, within_shortcut_eer : float
        Mean EER over the strata where both classes are measured, weighted by their clips (NaN
        if none).
    n_within : int
        Clips in those strata.
    spearman_bonafide, spearman_spoof : float
        Rank correlation of the detector's score with the shortcut's among bona fide clips and
        among spoofs (NaN for a class with under 3 clips).
    """

    strata: list[Stratum]
    detector_eer: float
    shortcut_eer: float
    within_detector_eer: float
    within_shortcut_eer: float
    n_within: int
    spearman_bonafide: float
    spearman_spoof: float


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:  # undefined for a constant score
        return float("nan")
    from scipy.stats import spearmanr

    rho = spearmanr(a, b)[0]
    return float(rho) if np.isfinite(rho) else float("nan")


def eer_within_strata(
    labels: ArrayLike,
    detector_scores: ArrayLike,
    shortcut_scores: ArrayLike,
    *,
    n_strata: int = 5,
    min_per_class: int = 5,
) -> StrataResult:
    """EER of a detector within quantile strata of a shortcut (metadata) score.

    Parameters
    ----------
    labels : array-like, shape (n,)
        1 / "spoof" = fake, 0 / "bonafide" = real.
    detector_scores : array-like, shape (n,)
        Higher = more likely fake; out-of-fold or held-out scores, never training-set scores.
    shortcut_scores : array-like, shape (n,)
        The same clips' out-of-fold scores from a classifier on metadata alone (the audit's
        ``score`` column), higher = more likely fake.
    n_strata : int
        Number of quantile strata of the shortcut score (ties keep a stratum together, so there
        can be fewer).
    min_per_class : int
        A stratum's EERs are only measured (and pooled) when it holds at least this many clips of
        each class; an EER from one or two spoofs says nothing.

    Returns
    -------
    StrataResult

    Raises
    ------
    voxguard.evaluate.metrics.MetricError
        Lengths differ, a score is not finite, or a class is missing.
    """
    y = normalise_labels(labels)
    d = np.asarray(detector_scores, dtype=np.float64)
    m = np.asarray(shortcut_scores, dtype=np.float64)
    if not (len(y) == len(d) == len(m)):
        raise MetricError(f"lengths differ: {len(y)} labels, {len(d)} detector and {len(m)} shortcut scores")
    if not (np.all(np.isfinite(d)) and np.all(np.isfinite(m))):
        raise MetricError("scores must be finite")
    if n_strata < 1:
        raise MetricError(f"n_strata must be at least 1, not {n_strata}")
    edges = np.unique(np.quantile(m, np.linspace(0.0, 1.0, n_strata + 1)[1:-1]))
    bins = np.searchsorted(edges, m, side="left")  # a tie at an edge stays in the lower stratum
    strata: list[Stratum] = []
    for k in np.unique(bins):
        sel = bins == k
        ys, ds, ms = y[sel], d[sel], m[sel]
        mixed = min(int(ys.sum()), int(len(ys) - ys.sum())) >= max(1, min_per_class)
        strata.append(
            Stratum(
                low=float(ms.min()),
                high=float(ms.max()),
                n=int(sel.sum()),
                n_spoof=int(ys.sum()),
                detector_eer=eer(ys, ds).eer if mixed else float("nan"),
                shortcut_eer=eer(ys, ms).eer if mixed else float("nan"),
            )
        )
    mixed_strata = [s for s in strata if math.isfinite(s.detector_eer)]
    n_within = sum(s.n for s in mixed_strata)

    def pooled(attr: str) -> float:
        if not n_within:
            return float("nan")
        return sum(getattr(s, attr) * s.n for s in mixed_strata) / n_within

    return StrataResult(
        strata=strata,
        detector_eer=eer(y, d).eer,
        shortcut_eer=eer(y, m).eer,
        within_detector_eer=pooled("detector_eer"),
        within_shortcut_eer=pooled("shortcut_eer"),
        n_within=n_within,
        spearman_bonafide=_spearman(d[y == 0], m[y == 0]),
        spearman_spoof=_spearman(d[y == 1], m[y == 1]),
    )


def read_scores(path: str | os.PathLike[str], column: str | None = None) -> tuple[str, dict[str, float]]:
    """Clip scores from a CSV with an ``id`` column (``voxguard compare/train --scores-out``).

    Parameters
    ----------
    path : path
        The CSV.
    column : str, optional
        The score column; by default the only column besides ``id``, ``label``, ``family`` and
        ``path``.

    Returns
    -------
    (column, {id: score})
        Rows with an empty or non-finite score are left out.

    Raises
    ------
    ValueError
        No ``id`` column, an unknown column, or several candidates and none chosen (the message
        lists them).
    """
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        fields = list(reader.fieldnames or [])
        if "id" not in fields:
            raise ValueError(f"{os.fspath(path)}: no 'id' column (columns: {', '.join(fields)})")
        candidates = [f for f in fields if f not in ("id", "label", "family", "path")]
        if column is None:
            if len(candidates) != 1:
                raise ValueError(f"{os.fspath(path)}: choose a score column: {', '.join(candidates) or 'none'}")
            column = candidates[0]
        elif column not in fields:
            raise ValueError(f"{os.fspath(path)}: no column {column!r} (score columns: {', '.join(candidates)})")
        scores: dict[str, float] = {}
        for row in reader:
            try:
                value = float(row[column])
            except (TypeError, ValueError):
                continue
            if math.isfinite(value):
                scores[row["id"]] = value
    return column, scores
