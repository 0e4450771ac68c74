"""Honest evaluation protocols for segment-level detectors on a dataset.

- ``grouped``: grouped, stratified k-fold by ``utt_group`` (a real recording and its fakes never
  straddle train and test);
- ``lofo``: leave-one-family-out — train without a generator family, test on it (plus held-out
  real clips); the number that predicts behaviour on new generators;
- ``cross``: train on one corpus, test on another (``split`` from
  :func:`voxguard.datasets.splits.cross_corpus_split`): new speakers, texts, recording chains and
  generators at once.

Training rows may include degraded copies (augmentation); test rows are always the clean clips.
A clip's score is the mean of its segment scores.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from voxguard.evaluate import metrics
from voxguard.models.segmental import SegmentTable, clip_scores

PROTOCOLS = ("grouped", "lofo", "cross")


@dataclass
class ProtocolResult:
    """Out-of-fold clip scores and per-fold EERs of one model under one protocol."""

    protocol: str
    model: str
    scores: np.ndarray  # clip-level, NaN where a clip was never tested
    fold_eer: dict[str, float]
    fit_s: float
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self, labels: np.ndarray) -> dict[str, Any]:
        tested = ~np.isnan(self.scores)
        eers = np.array(list(self.fold_eer.values()))
        y, s = labels[tested], self.scores[tested]
        at_eer = metrics.compute_all(y, s)  # threshold: the EER point of the pooled scores
        row: dict[str, Any] = {
            "model": self.model,
            "protocol": self.protocol,
            "clips": int(tested.sum()),
            "pooled_eer": at_eer["eer"],
            "auc": at_eer["auc"],
            "min_dcf": at_eer.get("min_dcf"),
            "accuracy_at_eer": at_eer.get("accuracy"),
            "f1_at_eer": at_eer.get("f1"),
            "mean_fold_eer": float(np.nanmean(eers)) if len(eers) else float("nan"),
            "fit_s": self.fit_s,
            **{k: v for k, v in self.extra.items() if k == "scoring_x_realtime"},
        }
        if self.protocol == "lofo":
            worst = max(self.fold_eer, key=lambda k: self.fold_eer[k])
            row |= {"worst_family": worst, "worst_eer": self.fold_eer[worst]}
        return row


def _fit_and_score(
    make: Callable[[], Any],
    table: SegmentTable,
    train: np.ndarray,
    test: np.ndarray,
    n_clips: int,
    clip_groups: np.ndarray | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[np.ndarray, float, float]:
    """Fit on every row (clean + augmented) of the train clips, score the clean rows of the test clips.

    ``clip_groups`` (n_clips,): recording group per clip, passed on per row so that models which
    hold out a validation split for early stopping hold out whole recordings. Returns the clip
    scores and the CPU seconds of fitting and of scoring the test rows.
    """
    train_rows = np.isin(table.clip, train)
    test_rows = np.isin(table.clip, test) & ~table.augmented
    groups = None if clip_groups is None else clip_groups[table.clip[train_rows]]
    start = time.process_time()
    model = make().fit(table.X[train_rows], table.y[train_rows], groups, log=log)
    fit_s = time.process_time() - start
    start = time.process_time()
    seg = model.decision_function(table.X[test_rows])
    score_s = time.process_time() - start
    return clip_scores(seg, table.clip[test_rows], n_clips), fit_s, score_s


def protocol_splits(
    dataset: Any,
    protocol: str,
    *,
    folds: int = 5,
    seed: int = 0,
    split: Any = None,
    families: Sequence[str] | None = None,
) -> list[tuple[str, Any]]:
    """The named folds ``[(key, Split), ...]`` of a protocol (as :func:`run_protocol` uses them).

    Keys: ``fold1`` ... for ``grouped``, the held-out family for ``lofo``, ``cross`` for ``cross``.
    ``families``: LOFO over these families only (one fold each; the real clips are spread over
    these folds, so a family's figure can differ a little from a full LOFO run's).
    """
    from voxguard.datasets.splits import group_kfold, leave_one_family_out

    if protocol == "grouped":
        return [(f"fold{k + 1}", s) for k, s in enumerate(group_kfold(dataset, folds, seed=seed))]
    if protocol == "lofo":
        labels = dataset.labels()
        family_of = dataset.column("family")
        splits = []
        for s in leave_one_family_out(dataset, seed=seed, families=families):
            spoof_test = s.test[labels[s.test] == 1]
            splits.append((str(family_of[spoof_test[0]]) if len(spoof_test) else "?", s))
        return splits
    if protocol == "cross":
        if split is None:
            raise ValueError("the cross protocol needs a split (datasets.splits.cross_corpus_split)")
        return [("cross", split)]
    raise ValueError(f"unknown protocol {protocol!r}; choose from {', '.join(PROTOCOLS)}")


def run_protocol(
    dataset: Any,
    table: SegmentTable,
    make: Callable[[], Any],
    *,
    protocol: str = "grouped",
    folds: int = 5,
    seed: int = 0,
    name: str = "model",
    split: Any = None,
    log: Callable[[str], None] = lambda _m: None,
    verbose_log: Callable[[str], None] | None = None,
    families: Sequence[str] | None = None,
) -> ProtocolResult:
    """Out-of-fold clip scores of ``make()`` on ``dataset`` under ``protocol``.

    ``make``: returns an unfitted model with ``fit(X, y, groups, log=)`` and ``decision_function``
    (:class:`~voxguard.models.segmental.SegmentalClassifier` or a frame model). ``verbose_log``
    receives the models' own training lines (epochs). ``split`` (a
    :class:`voxguard.datasets.splits.Split`) is required for ``cross`` and ignored otherwise.
    """
    labels = dataset.labels()
    n = len(labels)
    clip_groups = dataset.groups("utt_group")
    scores = np.full(n, np.nan)
    fold_eer: dict[str, float] = {}
    fit_total = score_total = 0.0
    splits = protocol_splits(dataset, protocol, folds=folds, seed=seed, split=split, families=families)
    for key, split in splits:
        train = np.concatenate([split.train, split.validation])
        fold_scores, fit_s, score_s = _fit_and_score(make, table, train, split.test, n, clip_groups, verbose_log)
        fit_total += fit_s
        score_total += score_s
        tested = split.test[~np.isnan(fold_scores[split.test])]
        y_t = labels[tested]
        fold_eer[key] = metrics.eer(y_t, fold_scores[tested]).eer if 0 < y_t.sum() < len(y_t) else float("nan")
        # Every clip is tested in at most one fold (a real clip in one LOFO fold, a fake in its family's).
        scores[tested] = fold_scores[tested]
        log(f"{name} {protocol} {key}: EER {fold_eer[key] * 100:.1f} % ({fit_s:.0f} CPU s)")
    extra: dict[str, Any] = {"score_cpu_s": score_total}
    if table.clip_seconds is not None:
        # Model only (features excluded): seconds of the scored clips per CPU second of scoring.
        extra["scoring_x_realtime"] = float(table.clip_seconds[~np.isnan(scores)].sum() / max(score_total, 1e-9))
    return ProtocolResult(protocol=protocol, model=name, scores=scores, fold_eer=fold_eer, fit_s=fit_total, extra=extra)
