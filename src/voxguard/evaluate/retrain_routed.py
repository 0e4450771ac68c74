"""Feedback retraining of a routed model (:mod:`voxguard.models.routing`): new experts, the same router.

:func:`voxguard.evaluate.retrain.retrain` calls :func:`retrain_routed` for a routed base model. Like a
fusion's retraining, every expert is retrained on the same clips (the base corpus with the expert's
own degraded copies, plus the feedback files), and the old and new models are compared on one
grouped validation split; the new model is written only if it is not worse.

The router is kept as it is: it tells degradations apart and never saw a real/fake label, so a
user's label teaches it nothing. It still scores every clip: the mixing weights of the new
experts (standardisation on their grouped out-of-fold clean scores, no labels) and the
calibration of the mixed score use its posteriors, the clip means over clean segments, as
``voxguard train`` does for a routed model.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from voxguard import __version__
from voxguard.evaluate.retrain import (
    BaseModel,
    FeedbackExample,
    RetrainError,
    RetrainResult,
    _combine,
    _common_feedback,
    _compare,
    _decide,
    _final_folds,
    _final_members,
    _log_split,
    _members_on_split,
    _retrain_metrics,
    _rows_of,
    _validation_record,
    _validation_split,
    _write_atomically,
    _write_card,
    feedback_rows,
    load_base_model,
    vector_spec,
)


def _router_base(path: Path) -> BaseModel:
    """The router as a :class:`BaseModel`: what computes its vectors (it is never refitted)."""
    from voxguard.models.onnx_model import ModelCard, card_path
    from voxguard.models.routing import router_from_card
    from voxguard.models.segmental import preprocess_from_card

    card = ModelCard.load(card_path(path))
    return BaseModel(path, card, router_from_card(card), preprocess_from_card(card), vector_spec(card.features))


def _clip_posteriors(router_path: Path, table: Any, clips: np.ndarray, n: int) -> np.ndarray:
    """Mean router posterior over each clip's clean segments, shape (n, n_classes) (NaN: no rows)."""
    from voxguard.evaluate.training import clip_mean_rows
    from voxguard.models.onnx_model import OnnxModel

    rows = _rows_of(table, clips, clean=True)
    return clip_mean_rows(OnnxModel(router_path).posteriors(table.X[rows]), table.clip[rows], n)


def retrain_routed(
    path: Path,
    feedback: Sequence[FeedbackExample],
    out: Path,
    *,
    corpus: Any,
    name: str | None,
    validation_size: float,
    tolerance: float,
    force: bool,
    augment: bool,
    folds: int,
    seed: int,
    workers: int,
    command: str,
    data_description: str,
    log: Callable[[str], None],
    progress: bool,
) -> RetrainResult:
    """:func:`voxguard.evaluate.retrain.retrain` for a routed model (parameters as there).

    Old and new are compared on one validation split, both mixed by the (same) router: the old
    experts with the old weights, the new experts (fitted on the training part) with weights
    fitted on their grouped out-of-fold scores over the training part.
    """
    from voxguard.evaluate import metrics
    from voxguard.evaluate.protocols import ProtocolResult, protocol_splits
    from voxguard.evaluate.training import calibrate_oof, dataset_fingerprint
    from voxguard.models.onnx_model import ModelCard, card_path
    from voxguard.models.routing import RoutingWeights, fit_routing, is_router_card, routing_to_onnx

    start = time.perf_counter()
    card = ModelCard.load(card_path(path))
    old_weights = RoutingWeights.from_dict(card.output["routing"])
    members = [str(m) for m in card.features.get("members") or []]
    router_files = [m for m in members if is_router_card(ModelCard.load(card_path(path.parent / m)))]
    expert_files = [m for m in members if m not in router_files]
    if len(router_files) != 1 or len(expert_files) != len(old_weights.experts):
        n_experts = len(old_weights.experts)
        raise RetrainError(f"routed model {card.name!r} does not name one router and its {n_experts} experts")
    bases = []
    for member in expert_files:
        try:
            bases.append(load_base_model(path.parent / member))
        except RetrainError as exc:
            raise RetrainError(f"routed model {card.name!r}: expert {member}: {exc.message}") from None
    router = _router_base(path.parent / router_files[0])
    log(f"base model: {card.name} (routed: experts {', '.join(b.card.name for b in bases)}; router kept)")
    # The router needs its own rows of every clip too: same files for experts and router.
    rows = _common_feedback([feedback_rows(feedback, b, log=log) for b in [*bases, router]])
    if not rows[0].examples:
        raise RetrainError("no usable feedback: no labelled scan has vectors for every expert's features or kept audio")
    c = _combine(corpus, bases, rows[:-1], augment=augment, seed=seed, workers=workers, progress=progress, log=log)
    # The router reads only clean rows: an expert with its features (voxguard-v4's split experts)
    # already has them; otherwise the corpus is read once more for the router alone.
    same = [table for base, table in zip(bases, c.tables, strict=True) if base.spec == router.spec]
    if same:
        router_table = same[0]
    else:
        router_table = _combine(
            corpus, [router], rows[-1:], augment=False, seed=seed, workers=workers, progress=progress, log=log
        ).tables[0]
        present = np.zeros(len(c.dataset), dtype=bool)
        present[np.unique(router_table.clip)] = True
        c = replace(c, has_rows=c.has_rows & present)
    n, labels = len(c.dataset), c.dataset.labels()
    posteriors = _clip_posteriors(router.path, router_table, np.flatnonzero(c.has_rows), n)

    class_experts = {str(k): list(v) for k, v in (card.training.get("class_experts") or {}).items()}
    if not class_experts:
        raise RetrainError(f"routed model {card.name!r}: its card names no class_experts")
    labels_of = list(old_weights.experts)
    split, train, val = _validation_split(c, validation_size, seed)
    _log_split(c, train, val, int(_rows_of(c.tables[0], train).sum()), log)
    row_groups = [c.dataset.groups("utt_group")[t.clip] for t in c.tables]
    old_cols, new_cols, oof_cols = _members_on_split(bases, c, row_groups, train, val, folds, seed, log)
    new_weights = fit_routing(np.column_stack(oof_cols)[train], labels_of, class_experts, old_weights.classes)
    compared = _compare(
        c,
        val,
        old_weights.apply(np.column_stack(old_cols), posteriors[val]),
        new_weights.apply(np.column_stack(new_cols), posteriors[val]),
        card,
        corpus,
        tolerance,
        log,
    )
    validation = _validation_record(c, split, train, val, seed)
    result = _decide(compared, validation, rows[0], force, log)
    if not result.accepted and not force:
        return result

    # The final experts on every clip; mixing weights and calibration from grouped out-of-fold scores.
    k = _final_folds(c, folds)
    log(f"final experts: fitting on all {int(c.has_rows.sum())} clips, mixing grouped {k}-fold scores ...")
    stem = out.name.removesuffix(".onnx")
    routed_name = name or stem
    written, grouped_results = _final_members(
        bases, c, row_groups, labels_of, out, routed_name, k, rows[0], "Expert", corpus, augment, seed, command,
        data_description, start, log,
    )  # fmt: skip
    expert_metrics = {expert_card.name: expert_card.metrics for _, _, expert_card in written}
    grouped_scores = [g.scores for g in grouped_results]
    oof = np.column_stack(grouped_scores)
    weights = fit_routing(oof, labels_of, class_experts, old_weights.classes)
    mixed = weights.apply(oof, posteriors)
    fold_eer = {}
    for fold, fold_split in protocol_splits(c.dataset, "grouped", folds=k, seed=seed):
        test = fold_split.test[np.isfinite(mixed[fold_split.test])]
        if len(np.unique(labels[test])) == 2:
            fold_eer[fold] = metrics.eer(labels[test], mixed[test]).eer
    summary = ProtocolResult("grouped", routed_name, mixed, fold_eer, 0.0).summary(labels)
    calibration, _, thresholds = calibrate_oof(mixed, labels)

    router_out = out.with_name(f"{stem}.router.onnx")
    router_card = replace(
        router.card,
        name=f"{routed_name}.router",
        notes=[*router.card.notes, f"Kept unchanged from {router.card.name} when {routed_name} was retrained."],
    )
    member_files = [p.name for p, _, _ in written] + [router_out.name]
    features = dict(card.features) | {
        "members": member_files,
        "columns": [f"{routed_name}.{label}" for label in labels_of] + list(card.features["columns"][len(labels_of) :]),
    }
    output = dict(card.output) | {"routing": weights.to_dict(), "calibration": calibration, "thresholds": thresholds}
    routed_card = ModelCard(
        name=routed_name,
        model_type=card.model_type,
        features=features,
        output=output,
        training={
            "data": written[0][2].training["data"],  # the same clips for every expert
            "data_fingerprint": dataset_fingerprint(c.dataset),
            "base_model": card.name,
            "clips": int(n),
            "clips_used": int(c.has_rows.sum()),
            "feedback_files": len(rows[0].examples),
            "feedback_skipped": rows[0].skipped,
            "experts": expert_metrics,
            "class_experts": class_experts,
            "router": f"{router.card.name}, unchanged (it never sees real/fake labels)",
            "routing": "experts standardised on their grouped out-of-fold clip scores (no labels), mixed by the "
            "router's clip-mean posteriors",
            "seed": seed,
            "calibration": "Platt scaling on grouped out-of-fold routed clip scores",
            "command": command,
            "wall_s": round(time.perf_counter() - start, 1),
        },
        metrics=_retrain_metrics(validation, card.name, compared, force, k, summary),
        created=date.today().isoformat(),
        voxguard_version=__version__,
        notes=[
            f"Retrained from {card.name} with user feedback (voxguard retrain): every expert, the same router.",
            "Feedback labels are users' claims; a wrong or malicious label is trained on like any other.",
        ],
    )
    # Members first, the routed graph last: it never names members that are not written yet.
    for member_path, onx, member_card in written:
        _write_atomically(member_path, onx)
        _write_card(member_path, member_card)
    if router_out.resolve() != router.path.resolve():
        _write_atomically(router_out, router.path.read_bytes())
    _write_card(router_out, router_card)
    _write_atomically(out, routing_to_onnx(weights))
    _write_card(out, routed_card)
    log(f"wrote {out} (and {card_path(out).name}; members {', '.join(member_files)})")
    result.written = True
    result.model_path = out
    result.card = routed_card
    return result
