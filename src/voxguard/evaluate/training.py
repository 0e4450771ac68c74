"""Train a segment-level detector, measure it honestly, calibrate it and export it with its card.

One command does it all (``voxguard train``): segment features of every clip (with degraded
copies of both classes), grouped 5-fold out-of-fold scores (for calibration, thresholds and the
grouped-CV metrics), leave-one-family-out (for the generalisation metrics), the final fit on all
clips, ONNX export checked against scikit-learn, and a model card with data, split, metrics, date
and the command to reproduce.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from voxguard import __version__
from voxguard.audio import PreprocessConfig
from voxguard.augment import get_policy
from voxguard.evaluate import metrics
from voxguard.evaluate.protocols import ProtocolResult, run_protocol
from voxguard.models.export import fit_platt
from voxguard.models.fisher_stages import add_stages_if_fisher
from voxguard.models.onnx_model import ModelCard, card_path, sigmoid
from voxguard.models.segmental import SegmentTable, build_segment_table, parse_policy

LOW_FA_RATE = 0.01


@dataclass
class TrainingResult:
    """What :func:`train_segmental` measured and wrote."""

    model_path: Path
    card: ModelCard
    protocols: dict[str, ProtocolResult]
    oof_proba: np.ndarray
    table: SegmentTable
    summary_rows: list[dict[str, Any]] = field(default_factory=list)


#: How every trained card's operating points were chosen.
THRESHOLDS_TEXT = "eer: EER point of grouped out-of-fold probabilities; low-fa: at most 1 % of real clips flagged"


def thresholds_from_scores(labels: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """Operating points on held-out probabilities: the EER point, and ≤ 1 % of real clips flagged."""
    eer_point = metrics.eer(labels, proba)
    real = np.sort(proba[labels == 0])
    # Flag when P(fake) > threshold: the (1 - rate) quantile of real scores lets ≤ rate through.
    low_fa = float(real[min(len(real) - 1, int(np.ceil((1 - LOW_FA_RATE) * len(real))) - 1)]) if len(real) else 0.5
    return {"eer": float(eer_point.threshold), "low-fa": max(low_fa, float(eer_point.threshold))}


def calibrate_oof(scores: np.ndarray, labels: np.ndarray) -> tuple[dict[str, float], np.ndarray, dict[str, float]]:
    """Platt calibration and operating points from out-of-fold clip scores (NaN = never tested).

    Returns ``(calibration, proba, thresholds)``; ``proba`` is NaN where ``scores`` is.
    """
    tested = ~np.isnan(scores)
    calibration = fit_platt(scores[tested], labels[tested])
    proba = np.full(len(labels), np.nan)
    proba[tested] = sigmoid(calibration["a"] * scores[tested] + calibration["b"])
    return calibration, proba, thresholds_from_scores(labels[tested], proba[tested])


def _input_spec(model: Any) -> dict[str, Any]:
    """The card's description of the model input: pooled columns, or frame crops."""
    if getattr(model, "row_kind", "pooled") == "frames":
        from voxguard.models.segmental import crop_frames

        return {
            "input": "frames",
            "frame_columns": model.features.frame_names(),
            "crop_frames": crop_frames(model.segment_s, model.features),
        }
    return {"input": "pooled", "columns": model.features.vector_names()}


def _card_metrics(
    results: dict[str, ProtocolResult],
    summary_rows: list[dict[str, Any]],
    labels: np.ndarray,
    proba: np.ndarray,
    thresholds: dict[str, float],
    folds: int,
) -> dict[str, Any]:
    """The card's ``metrics``: grouped CV (with accuracy/F1 at the EER threshold) and, when run, LOFO."""
    tested = ~np.isnan(proba)
    grouped_summary = summary_rows[0]
    at_eer = metrics.compute_all(labels[tested], proba[tested], threshold=thresholds["eer"])
    card_metrics: dict[str, Any] = {
        "grouped_cv": {
            "split": f"grouped stratified {folds}-fold by utt_group (real recordings and their fakes never straddle)",
            "eer": grouped_summary["pooled_eer"],
            "mean_fold_eer": grouped_summary["mean_fold_eer"],
            "auc": grouped_summary["auc"],
            "accuracy_at_eer_threshold": at_eer.get("accuracy"),
            "f1_at_eer_threshold": at_eer.get("f1"),
            "clips": grouped_summary["clips"],
        }
    }
    if "lofo" in results:
        lofo_summary = summary_rows[1]
        card_metrics["leave_one_family_out"] = {
            "split": "one fold per spoof family; real clips spread across folds by utt_group",
            "mean_eer": lofo_summary["mean_fold_eer"],
            "pooled_eer": lofo_summary["pooled_eer"],
            "worst_family": lofo_summary["worst_family"],
            "worst_eer": lofo_summary["worst_eer"],
            "per_family_eer": results["lofo"].fold_eer,
        }
    return card_metrics


def dataset_fingerprint(dataset: Any) -> str:
    """Hash of the item list (ids, labels, systems), to tell which data a card refers to.

    Ids are paths relative to the dataset's root (:meth:`Dataset.ids`), so the same corpus read
    from another checkout or machine has the same fingerprint (cards before 2026-11-27 hashed
    absolute paths).
    """
    h = hashlib.sha256()
    for item_id, item in zip(dataset.ids(), dataset, strict=True):
        h.update(f"{item_id}|{item.label}|{item.system}\n".encode())
    return h.hexdigest()


def train_segmental(
    dataset: Any,
    out_path: str | Path,
    *,
    model: Any = None,
    name: str = "voxguard-segmental",
    preprocess_config: PreprocessConfig | None = None,
    augment: bool = True,
    policy: str = "v1",
    lofo: bool = True,
    folds: int = 5,
    seed: int = 0,
    workers: int = 2,
    command: str = "",
    data_description: str = "",
    log: Callable[[str], None] = lambda _m: None,
    progress: bool = True,
    verbose_log: Callable[[str], None] | None = None,
) -> TrainingResult:
    """Train, evaluate (grouped CV + LOFO), calibrate and export a segment-level model.

    Parameters
    ----------
    dataset : voxguard.datasets.Dataset
    model : SegmentalClassifier or a frame model (FrameCNNClassifier, FrameGMMClassifier)
        Unfitted; every fold and the final fit use ``model.clone()``.
    out_path : path of the ``.onnx`` to write (its card goes beside it).
    """
    if model is None:
        from voxguard.models.segmental import SegmentalClassifier

        model = SegmentalClassifier()
    pre_cfg = preprocess_config or PreprocessConfig()
    start = time.perf_counter()
    table = build_segment_table(
        dataset,
        model,
        preprocess_config=pre_cfg,
        augment=augment,
        policy=policy,
        seed=seed,
        workers=workers,
        progress=progress,
    )
    log(f"segment table: {table.X.shape[0]} rows x {table.X.shape[1]} features, {len(table.failures)} clips failed")
    labels = dataset.labels()

    results = {
        "grouped": run_protocol(
            dataset,
            table,
            model.clone,
            protocol="grouped",
            folds=folds,
            seed=seed,
            name=name,
            log=log,
            verbose_log=verbose_log,
        )
    }
    if lofo:
        results["lofo"] = run_protocol(
            dataset, table, model.clone, protocol="lofo", seed=seed, name=name, log=log, verbose_log=verbose_log
        )

    # Calibration and thresholds from grouped out-of-fold clip scores: never from training scores.
    calibration, proba, thresholds = calibrate_oof(results["grouped"].scores, labels)

    final = model.clone().fit(table.X, table.y, dataset.groups("utt_group")[table.clip], log=verbose_log)
    probe = table.X[:: max(1, len(table.X) // 256)][:256]
    onx, output = final.to_onnx(probe)
    output |= {
        "meaning": "decision value, higher = more likely fake",
        "calibration": calibration,
        "thresholds": thresholds,
    }

    summary_rows = [r.summary(labels) for r in results.values()]
    card_metrics = _card_metrics(results, summary_rows, labels, proba, thresholds, folds)
    card = ModelCard(
        name=name,
        model_type=final.describe(),
        features={
            "kind": "segmental",
            "segmental": model.features.to_dict(),
            **_input_spec(model),
            "sample_rate": pre_cfg.sample_rate,
            "preprocess": pre_cfg.to_dict(),
            "segment_s": model.segment_s,
            "training_hop_s": model.hop_s,
        },
        output=output,
        training={
            "data": data_description or getattr(dataset, "name", ""),
            "data_fingerprint": dataset_fingerprint(dataset),
            "clips": int(len(labels)),
            "clips_used": int(len(labels) - len(table.failures)),
            "clips_failed": len(table.failures),
            "segments": int(table.X.shape[0]),
            "augmentation": f"{parse_policy(policy)[1]} degraded copy(ies) of every clip, both classes; "
            f"{get_policy(parse_policy(policy)[0]).describe()} (voxguard.augment)"
            if augment
            else "none",
            "augmentation_policy": policy if augment else None,
            "class_weight": model.class_weight,
            "recipe": model.recipe(),
            "seed": seed,
            "calibration": "Platt scaling on grouped out-of-fold clip scores",
            "thresholds": THRESHOLDS_TEXT,
            "command": command,
            "wall_s": round(time.perf_counter() - start, 1),
        },
        metrics=card_metrics,
        created=date.today().isoformat(),
        voxguard_version=__version__,
        notes=[
            "Trained and measured on research corpora; see docs/results.md for what the numbers do and do not mean.",
            "The DEV corpus confounds recording chain with label (see docs/corpus-audit.md); augmentation of both "
            "classes reduces but does not remove that.",
        ],
    )
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(onx)
    card.save(card_path(out))
    add_stages_if_fisher(out)  # a Fisher model ships with its two-stage form (faster scans, same scores)
    return TrainingResult(
        model_path=out, card=card, protocols=results, oof_proba=proba, table=table, summary_rows=summary_rows
    )


def _ensemble_result(
    out: Path,
    card: ModelCard,
    results: dict[str, ProtocolResult],
    proba: np.ndarray,
    trained: Sequence[TrainingResult],
    summary_rows: list[dict[str, Any]],
) -> TrainingResult:
    """What a model of several trained members (fusion, routed) returns: its rows after theirs."""
    return TrainingResult(
        model_path=out,
        card=card,
        protocols=results,
        oof_proba=proba,
        table=trained[0].table,
        summary_rows=[row for r in trained for row in r.summary_rows] + summary_rows,
    )


def train_fusion(
    dataset: Any,
    out_path: str | Path,
    members: Sequence[tuple[str, Any, PreprocessConfig]],
    *,
    name: str = "voxguard-fusion",
    lofo: bool = True,
    folds: int = 5,
    seed: int = 0,
    command: str = "",
    log: Callable[[str], None] = lambda _m: None,
    **member_kwargs: Any,
) -> TrainingResult:
    """Train each member with :func:`train_segmental`, then a logistic-regression fusion of their scores.

    Members are written beside ``out_path`` as ``NAME.LABEL.onnx`` (each a complete model with its
    card); ``out_path`` holds the fusion graph (member scores -> fused score) and a card of kind
    ``"fusion"`` naming the members. Fusion weights and calibration come from the members'
    grouped out-of-fold clip scores; the fusion's own grouped and LOFO figures are stacked out of
    fold (:func:`voxguard.evaluate.fusion.fuse_protocol`).

    Parameters
    ----------
    members : sequence of (label, unfitted model, PreprocessConfig)
        At least two; all with the same preprocessing and segment length.
    member_kwargs : passed on to :func:`train_segmental` (augmentation, workers, progress ...).
    """
    from voxguard.errors import ModelError
    from voxguard.evaluate.fusion import fit_fusion, fuse_protocol, fusion_to_onnx

    if len(members) < 2:
        raise ModelError("a fusion needs at least two members")
    pre = members[0][2]
    if any(m[2] != pre or m[1].segment_s != members[0][1].segment_s for m in members):
        raise ModelError("fusion members must share preprocessing and segment length")
    out = Path(out_path)
    stem = out.name.removesuffix(".onnx")
    start = time.perf_counter()
    trained = []
    for label, model, member_pre in members:
        log(f"member {label}: {model.describe()}")
        trained.append(
            train_segmental(
                dataset,
                out.with_name(f"{stem}.{label}.onnx"),
                model=model,
                name=f"{name}.{label}",
                preprocess_config=member_pre,
                lofo=lofo,
                folds=folds,
                seed=seed,
                command=command,
                log=log,
                **member_kwargs,
            )
        )
    labels = dataset.labels()
    member_names = [r.card.name for r in trained]
    results = {
        key: fuse_protocol(dataset, [r.protocols[key] for r in trained], folds=folds, seed=seed, name=name)
        for key in (("grouped", "lofo") if lofo else ("grouped",))
    }
    summary_rows = [r.summary(labels) for r in results.values()]
    for row in summary_rows:
        log(f"{name} {row['protocol']}: EER {row['pooled_eer'] * 100:.2f} % (stacked out of fold)")

    member_scores = np.column_stack([r.protocols["grouped"].scores for r in trained])
    have = np.isfinite(member_scores).all(axis=1)
    weights = fit_fusion(member_scores[have], labels[have], member_names)
    calibration, proba, thresholds = calibrate_oof(results["grouped"].scores, labels)
    first = trained[0].card
    card = ModelCard(
        name=name,
        model_type="logistic-regression fusion of " + " and ".join(r.card.model_type for r in trained),
        features={
            "kind": "fusion",
            "members": [f"{stem}.{label}.onnx" for label, _, _ in members],
            "columns": member_names,
            "sample_rate": first.features["sample_rate"],
            "preprocess": first.features["preprocess"],
            "segment_s": first.features["segment_s"],
        },
        output={
            "name": "fused",
            "index": None,
            "sign": 1,
            "meaning": "fused member scores, higher = more likely fake",
            "fusion": weights.to_dict(),
            "calibration": calibration,
            "thresholds": thresholds,
        },
        training={
            "data": first.training.get("data", ""),
            "data_fingerprint": dataset_fingerprint(dataset),
            "clips": int(len(labels)),
            "members": {r.card.name: r.card.metrics for r in trained},
            "augmentation": first.training.get("augmentation"),
            "augmentation_policy": first.training.get("augmentation_policy"),
            "fusion": "class-balanced logistic regression on standardised member clip scores, fitted on the "
            "members' grouped out-of-fold scores",
            "seed": seed,
            "calibration": "Platt scaling on stacked grouped out-of-fold fused clip scores",
            "thresholds": THRESHOLDS_TEXT,
            "command": command,
            "wall_s": round(time.perf_counter() - start, 1),
        },
        metrics=_card_metrics(results, summary_rows, labels, proba, thresholds, folds),
        created=date.today().isoformat(),
        voxguard_version=__version__,
        notes=[
            *first.notes,
            "Fused figures are stacked: each fold's fusion weights are fitted on the other folds' out-of-fold "
            "scores (in grouped CV those came from members that saw this fold in training; a small leak).",
        ],
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(fusion_to_onnx(weights))
    card.save(card_path(out))
    return _ensemble_result(out, card, results, proba, trained, summary_rows)


def router_rows(tables: Sequence[SegmentTable]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The router's training rows ``(X, class index, clip)`` from one table per degraded class.

    Class 0 (clean) takes the first table's clean rows; class k the k-th table's degraded copies.
    """
    clean = ~tables[0].augmented
    X = [tables[0].X[clean]]
    kinds = [np.zeros(int(clean.sum()), dtype=int)]
    clips = [tables[0].clip[clean]]
    for k, table in enumerate(tables, 1):
        X.append(table.X[table.augmented])
        kinds.append(np.full(int(table.augmented.sum()), k))
        clips.append(table.clip[table.augmented])
    finite = np.isfinite(np.vstack(X)).all(axis=1)
    return np.vstack(X)[finite], np.concatenate(kinds)[finite], np.concatenate(clips)[finite]


def router_tables(
    dataset: Any, router: Any, preprocess_config: PreprocessConfig, *, seed: int, workers: int, progress: bool
) -> list[SegmentTable]:
    """One table per degraded router class: every clip clean plus one copy degraded by that class's policy."""
    from voxguard.models.routing import ROUTER_POLICIES

    return [
        build_segment_table(
            dataset,
            router,
            preprocess_config=preprocess_config,
            augment=True,
            policy=ROUTER_POLICIES[cls],
            seed=seed + 10 + k,
            workers=workers,
            progress=progress,
        )
        for k, cls in enumerate(router.classes[1:])
    ]


def fold_routers(
    dataset: Any, rows: tuple[np.ndarray, np.ndarray, np.ndarray], router: Any, *, folds: int = 5, seed: int = 0
) -> Iterator[tuple[Any, Any]]:
    """``(split, router)`` per grouped fold, the router fitted on :func:`router_rows` of the other folds' clips."""
    from voxguard.datasets.splits import group_kfold

    X, kinds, clip = rows
    for split in group_kfold(dataset, folds, seed=seed):
        held_out = np.isin(clip, split.test)
        yield split, router.clone().fit(X[~held_out], kinds[~held_out])


def router_oof_posteriors(
    dataset: Any,
    rows: tuple[np.ndarray, np.ndarray, np.ndarray],
    router: Any,
    *,
    folds: int = 5,
    seed: int = 0,
) -> np.ndarray:
    """Out-of-fold router posteriors of every clip's clean segments, shape (n_clips, n_classes).

    ``rows``: :func:`router_rows`. The router of each grouped fold never saw the fold's clips,
    degraded or not; a clip's posterior is the mean over its clean segments (NaN if it has none).
    """
    X, kinds, clip = rows
    clean = kinds == 0
    row_posteriors = np.full((len(X), len(router.classes)), np.nan)
    for split, fitted in fold_routers(dataset, rows, router, folds=folds, seed=seed):
        test_rows = np.isin(clip, split.test) & clean
        if test_rows.any():
            row_posteriors[test_rows] = fitted.predict_proba(X[test_rows])
    return clip_mean_rows(row_posteriors[clean], clip[clean], len(dataset.labels()))


def clip_mean_rows(values: np.ndarray, clip: np.ndarray, n_clips: int) -> np.ndarray:
    """Mean of the rows of each clip: ``values`` (n_rows, k), ``clip`` (n_rows,) -> (n_clips, k), NaN
    for a clip without rows."""
    values = np.asarray(values, np.float64)
    sums, counts = np.zeros((n_clips, values.shape[1])), np.zeros(n_clips)
    np.add.at(sums, clip, values)
    np.add.at(counts, clip, 1)
    out = np.full_like(sums, np.nan)
    have = counts > 0
    out[have] = sums[have] / counts[have, None]
    return out


def train_routed(
    dataset: Any,
    out_path: str | Path,
    experts: Sequence[tuple[str, Any, str]],
    class_experts: dict[str, Sequence[str]],
    *,
    router: Any = None,
    router_views: Sequence[str] = (),
    router_head: str = "logistic",
    preprocess_config: PreprocessConfig | None = None,
    name: str = "voxguard-routed",
    lofo: bool = True,
    folds: int = 5,
    seed: int = 0,
    workers: int = 2,
    command: str = "",
    log: Callable[[str], None] = lambda _m: None,
    progress: bool = True,
) -> TrainingResult:
    """Train condition experts and a router, and write a routed model (:mod:`voxguard.models.routing`).

    Parameters
    ----------
    experts : sequence of (label, unfitted SegmentalClassifier, augmentation policy)
        Each is trained with :func:`train_segmental` and its own policy (e.g. ``("main", v2,
        "chain*2")``, ``("codec", v2, "only-codec*2")``) and written beside ``out_path`` as
        ``NAME.LABEL.onnx``. All share the preprocessing and segment length.
    class_experts : router class -> expert labels
        Which experts score a segment the router puts in each class (several are averaged); its
        keys, in order, are the router's classes: ``"clean"`` first, then classes of
        :data:`~voxguard.models.routing.ROUTER_POLICIES`.
    router : ConditionRouter, optional
        Default: :func:`~voxguard.models.routing.router_view` of the first expert's view and
        ``router_views``, with the head ``router_head`` (:data:`~voxguard.models.routing.ROUTER_HEADS`).

    The routed model's grouped (and LOFO) figures mix the experts' out-of-fold clip scores with
    the router's out-of-fold posteriors of the clips' clean segments (clip means; the scanner
    mixes per segment). The router never sees labels, so its grouped-fold posteriors also serve
    the LOFO figures.
    """
    from voxguard.errors import ModelError
    from voxguard.evaluate.protocols import protocol_splits
    from voxguard.models.routing import ROUTER_POLICIES, ConditionRouter, fit_routing, router_view, routing_to_onnx

    if len(experts) < 2:
        raise ModelError("a routed model needs at least two experts")
    pre = preprocess_config or PreprocessConfig()
    segment_s = experts[0][1].segment_s
    if any(model.segment_s != segment_s for _, model, _ in experts):
        raise ModelError("the experts of a routed model must share their segment length")
    classes = tuple(class_experts)
    if not classes or classes[0] != "clean" or any(c not in ROUTER_POLICIES for c in classes[1:]):
        raise ModelError(f"router classes must be 'clean' then some of {list(ROUTER_POLICIES)}, got {list(classes)}")
    router = router or ConditionRouter(
        features=router_view(experts[0][1].features, router_views),
        segment_s=segment_s,
        hop_s=experts[0][1].hop_s,
        classes=classes,
        head=router_head,
        seed=seed,
    )
    out = Path(out_path)
    stem = out.name.removesuffix(".onnx")
    start = time.perf_counter()
    trained = []
    for label, model, policy in experts:
        log(f"expert {label} ({policy}): {model.describe()}")
        trained.append(
            train_segmental(
                dataset,
                out.with_name(f"{stem}.{label}.onnx"),
                model=model,
                name=f"{name}.{label}",
                preprocess_config=pre,
                augment=policy != "none",
                policy=policy,
                lofo=lofo,
                folds=folds,
                seed=seed,
                workers=workers,
                command=command,
                log=log,
                progress=progress,
            )
        )
    log(f"router: {router.describe()}")
    rows = router_rows(router_tables(dataset, router, pre, seed=seed, workers=workers, progress=progress))
    posteriors = router_oof_posteriors(dataset, rows, router, folds=folds, seed=seed)
    X_router = rows[0]
    final_router = router.clone().fit(X_router, rows[1])
    probe = X_router[:: max(1, len(X_router) // 256)][:256]
    router_onnx, router_output = final_router.to_onnx(probe)
    router_path = out.with_name(f"{stem}.router.onnx")

    labels = dataset.labels()
    expert_labels = [label for label, _, _ in experts]
    weights = fit_routing(
        np.column_stack([r.protocols["grouped"].scores for r in trained]), expert_labels, class_experts, router.classes
    )
    results: dict[str, ProtocolResult] = {}
    for key in ("grouped", "lofo") if lofo else ("grouped",):
        mixed = weights.apply(np.column_stack([r.protocols[key].scores for r in trained]), posteriors)
        fold_eer = {}
        for fold, split in protocol_splits(dataset, key, folds=folds, seed=seed):
            test = split.test[np.isfinite(mixed[split.test])]
            if len(np.unique(labels[test])) == 2:
                fold_eer[fold] = metrics.eer(labels[test], mixed[test]).eer
        results[key] = ProtocolResult(key, name, mixed, fold_eer, sum(r.protocols[key].fit_s for r in trained))
    summary_rows = [r.summary(labels) for r in results.values()]
    for row in summary_rows:
        log(f"{name} {row['protocol']}: EER {row['pooled_eer'] * 100:.2f} % (routed, out of fold)")
    calibration, proba, thresholds = calibrate_oof(results["grouped"].scores, labels)

    first = trained[0].card
    common = {"sample_rate": pre.sample_rate, "preprocess": pre.to_dict(), "segment_s": segment_s}
    router_card = ModelCard(
        name=f"{name}.router",
        model_type=final_router.describe(),
        features={
            "kind": "segmental",
            "segmental": router.features.to_dict(),
            **_input_spec(router),
            **common,
            "training_hop_s": router.hop_s,
        },
        output=router_output | {"meaning": "posterior of each degradation class (never trained on real/fake)"},
        training={
            "data": first.training.get("data", ""),
            "data_fingerprint": dataset_fingerprint(dataset),
            "rows": int(len(X_router)),
            "classes": {cls: ROUTER_POLICIES.get(cls, "the clean clips") for cls in router.classes},
            "recipe": router.recipe(),
            "seed": seed,
            "command": command,
        },
        metrics={},
        created=date.today().isoformat(),
        voxguard_version=__version__,
        notes=["A member of a routed model: it routes segments to experts and scores nothing by itself."],
    )
    member_files = [f"{stem}.{label}.onnx" for label in expert_labels] + [router_path.name]
    card = ModelCard(
        name=name,
        model_type="condition-routed mix of " + ", ".join(f"{label} ({p})" for label, _, p in experts),
        features={
            "kind": "fusion",
            "members": member_files,
            "columns": [r.card.name for r in trained] + [f"P({cls})" for cls in router.classes],
            **common,
        },
        output={
            "name": "routed",
            "index": None,
            "sign": 1,
            "meaning": "router-weighted standardised expert scores, higher = more likely fake",
            "routing": weights.to_dict(),
            "calibration": calibration,
            "thresholds": thresholds,
        },
        training={
            "data": first.training.get("data", ""),
            "data_fingerprint": dataset_fingerprint(dataset),
            "clips": int(len(labels)),
            "experts": {
                r.card.name: {"policy": p, **r.card.metrics} for r, (_, _, p) in zip(trained, experts, strict=True)
            },
            "class_experts": {k: list(v) for k, v in class_experts.items()},
            "routing": "experts standardised on their grouped out-of-fold clip scores (no labels); per router "
            "class the mean of its experts, rescaled to unit spread; weighted by the router's posteriors",
            "seed": seed,
            "calibration": "Platt scaling on grouped out-of-fold routed clip scores",
            "thresholds": THRESHOLDS_TEXT,
            "command": command,
            "wall_s": round(time.perf_counter() - start, 1),
        },
        metrics=_card_metrics(results, summary_rows, labels, proba, thresholds, folds),
        created=date.today().isoformat(),
        voxguard_version=__version__,
        notes=[
            *first.notes,
            "Routed figures mix out-of-fold expert clip scores with out-of-fold router posteriors of the clean "
            "segments (clip means); the scanner mixes per segment.",
        ],
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    router_path.write_bytes(router_onnx)
    router_card.save(card_path(router_path))
    out.write_bytes(routing_to_onnx(weights))
    card.save(card_path(out))
    return _ensemble_result(out, card, results, proba, trained, summary_rows)


def write_training_report(result: TrainingResult, dataset: Any, out_dir: str | Path) -> Path:
    """HTML/Markdown report of the grouped out-of-fold scores, with per-family and per-dataset tables."""
    from voxguard.evaluate.report import ReportSection, write_report

    labels = dataset.labels()
    tested = ~np.isnan(result.oof_proba)
    idx = np.flatnonzero(tested)
    data = {
        "id": [str(dataset[i].path) for i in idx],
        "label": labels[idx],
        "score": result.oof_proba[idx],
        "family": [dataset[i].family for i in idx],
        "dataset": [dataset[i].dataset for i in idx],
    }
    sections = [ReportSection(title="Protocols", table=result.summary_rows)]
    if "lofo" in result.protocols:
        sections.append(
            ReportSection(
                title="Leave-one-family-out EER per held-out family",
                table=[{"family": k, "eer": v} for k, v in sorted(result.protocols["lofo"].fold_eer.items())],
            )
        )
    paths = write_report(
        data,
        out_dir,
        title=f"{result.card.name}: grouped 5-fold out-of-fold scores (calibrated probabilities)",
        threshold=result.card.output["thresholds"]["eer"],
        group_columns=("family", "dataset"),
        extra_sections=sections,
    )
    return paths.html


def describe_protocol_rows(rows: Sequence[dict[str, Any]]) -> str:
    """Markdown table of :meth:`ProtocolResult.summary` rows."""
    lines = [
        "| model | protocol | clips | EER (pooled) | mean fold EER | AUC | minDCF | accuracy / F1 at EER threshold "
        "| worst family | fit CPU s | scoring × real time |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]

    def number(value: Any, fmt: str) -> str:
        return "—" if value is None or not np.isfinite(value) else format(value, fmt)

    for r in rows:
        worst = f"{r['worst_family']} ({r['worst_eer'] * 100:.1f} %)" if "worst_family" in r else "—"
        acc_f1 = f"{number(r.get('accuracy_at_eer'), '.3f')} / {number(r.get('f1_at_eer'), '.3f')}"
        speed = number(r.get("scoring_x_realtime"), ",.0f")
        lines.append(
            f"| {r['model']} | {r['protocol']} | {r['clips']} | {r['pooled_eer'] * 100:.1f} % | "
            f"{r['mean_fold_eer'] * 100:.1f} % | {r['auc']:.3f} | {number(r.get('min_dcf'), '.3f')} | {acc_f1} | "
            f"{worst} | {r['fit_s']:.0f} | {speed} |"
        )
    return "\n".join(lines)
