"""Retrain a segmental detector on its base corpus plus users' feedback, and keep it only if it is better.

``voxguard retrain`` (:mod:`voxguard.cli_retrain`) reads the labelled scans from the service's
database and calls :func:`retrain`, which

1. reads the base model's card: its feature settings, segment length, classifier and
   preprocessing (only segmental models, the kind ``voxguard train`` makes, can be retrained);
2. computes the segment vectors of the base corpus (a manifest, optional) exactly as
   ``voxguard train`` does, with degraded copies when ``augment``;
3. takes the feedback rows: the vectors the service stored with each scan (when they were
   computed with the same feature settings) or, failing that, vectors computed from the kept
   audio. One example per uploaded file (SHA-256): a file uploaded twice is one recording, and
   its most recent label wins;
4. makes **one** grouped validation split of corpus and feedback together (corpus clips grouped
   by ``utt_group``, feedback by file hash, so no recording straddles train and validation),
   scores the validation clips with the old model and with a new one trained on the rest, and
   compares their EERs;
5. refuses when the new EER is worse than the old one (plus ``tolerance``), unless ``force``:
   nothing is written then. Otherwise the final model is fitted on everything, calibrated on
   grouped out-of-fold scores like ``voxguard train``, exported to ONNX and written with its card.

Caveat, stated in the output: when the base model was trained on the same corpus, it has seen
the corpus clips of the validation split, so its EER there is optimistic. The comparison is then
biased towards *keeping* the old model, which is the safe direction for an automatic gate.

Nothing here imports the service or a web framework: the caller hands over the feedback as
:class:`FeedbackExample` objects.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from voxguard import __version__
from voxguard.errors import VoxguardError
from voxguard.models.fisher_stages import add_stages_if_fisher

FEEDBACK_DATASET = "feedback"
# Feedback labels are the service's ("real"/"fake"); datasets use "bonafide"/"spoof".
_LABELS = {"real": "bonafide", "fake": "spoof"}


class RetrainError(VoxguardError):
    """Retraining cannot proceed: unsuitable base model, no usable feedback, or too little data to compare."""

    code = "retrain_error"
    http_status = 422


@dataclass(frozen=True)
class FeedbackExample:
    """One scanned recording with the label a user gave it.

    Attributes
    ----------
    key : str
        Identifier shown in messages (the scan id).
    file_sha256 : str
        Hash of the uploaded bytes: the grouping key, so copies of one file stay on one side.
    label : {"real", "fake"}
    vectors : np.ndarray or None
        Segment vectors stored with the scan, shape (n_segments, n_dims).
    vectors_spec : dict or None
        :func:`vector_spec` of the model that computed ``vectors``.
    audio : bytes or None
        The upload itself, when the service kept it.
    """

    key: str
    file_sha256: str
    label: str
    vectors: np.ndarray | None = None
    vectors_spec: Mapping[str, Any] | None = None
    audio: bytes | None = None


def vector_spec(features: Mapping[str, Any]) -> dict[str, Any]:
    """What fixes a segment vector, from a model card's ``features`` block.

    Two models with equal specs turn the same audio into the same vectors, so vectors stored by
    one are training rows for the other.
    """
    return {
        "kind": features.get("kind"),
        "segmental": features.get("segmental"),
        "sample_rate": features.get("sample_rate"),
        "preprocess": features.get("preprocess"),
        "segment_s": float(features.get("segment_s", 4.0)),
        "n_columns": len(features.get("columns") or []),
        # Only frame models say so, so that specs stored before frame models existed still match.
        **({"input": "frames"} if features.get("input") == "frames" else {}),
    }


def fusion_vector_spec(member_features: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The spec of a fusion's stored vectors: its members' vectors side by side, in member order."""
    return {"kind": "fusion", "members": [vector_spec(f) for f in member_features]}


def stored_vectors(example: FeedbackExample, spec: Mapping[str, Any]) -> np.ndarray | None:
    """The vectors stored with a scan that are rows for a model of ``spec``, or ``None``.

    Either the scan's model had the same spec, or it was a fusion with such a member: then that
    member's columns of the stored vectors (see :func:`fusion_vector_spec`).
    """
    if example.vectors is None or example.vectors_spec is None:
        return None
    X = np.asarray(example.vectors, dtype=np.float32)
    if spec_matches(example.vectors_spec, spec):
        return X
    if example.vectors_spec.get("kind") != "fusion" or X.ndim != 2:
        return None
    start = 0
    for member in example.vectors_spec.get("members") or []:
        width = int(member.get("n_columns") or 0)
        if spec_matches(member, spec) and width and start + width <= X.shape[1]:
            return X[:, start : start + width]
        start += width
    return None


def spec_matches(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> bool:
    """Equal specs, compared as JSON (a spec read back from a database has JSON types)."""
    if a is None or b is None:
        return False
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


@dataclass
class BaseModel:
    """A segmental model to retrain: its file, card and how to build an untrained copy."""

    path: Path
    card: Any  # ModelCard
    template: Any  # SegmentalClassifier
    preprocess: Any  # PreprocessConfig
    spec: dict[str, Any]

    def new_classifier(self) -> Any:
        """An unfitted classifier with the base model's settings."""
        return self.template.clone()


def load_base_model(name_or_path: str | os.PathLike[str]) -> BaseModel:
    """Resolve a shipped model name or ``.onnx`` path and read what retraining needs from its card.

    Raises
    ------
    ModelError
        No such model.
    RetrainError
        The model is not segmental (e.g. ``seed-svm``), so there is nothing to retrain it with.
    """
    from voxguard.models.onnx_model import ModelCard, card_path
    from voxguard.models.registry import resolve_model
    from voxguard.models.segmental import preprocess_from_card, recipe_from_card

    path = resolve_model(os.fspath(name_or_path))
    card = ModelCard.load(card_path(path))
    feats = card.features
    if feats.get("kind") != "segmental" or not feats.get("segmental"):
        raise RetrainError(
            f"model {card.name!r} is not a segmental model (kind {feats.get('kind')!r}); "
            "only models made by 'voxguard train' can be retrained"
        )
    return BaseModel(
        path=path,
        card=card,
        template=recipe_from_card(card),
        preprocess=preprocess_from_card(card),
        spec=vector_spec(feats),
    )


# --------------------------------------------------------------------------- feedback rows


@dataclass
class FeedbackRows:
    """Usable feedback: one example per file, with its segment vectors; and why others were left out."""

    examples: list[FeedbackExample]
    vectors: list[np.ndarray]
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def counts(self) -> dict[str, int]:
        c = Counter(e.label for e in self.examples)
        return {"real": c["real"], "fake": c["fake"]}


def _vectors_from_audio(audio: bytes, base: BaseModel) -> np.ndarray:
    from voxguard.audio import load, preprocess
    from voxguard.models.segmental import clip_segments

    t = base.template
    decoded = load(audio, sr=base.preprocess.sample_rate)
    pre = preprocess(decoded.samples, decoded.sample_rate, base.preprocess)
    return clip_segments(pre.samples, pre.sample_rate, t.features, t.segment_s, t.hop_s, t.row_kind)


def feedback_rows(
    feedback: Sequence[FeedbackExample], base: BaseModel, *, log: Callable[[str], None] = lambda _m: None
) -> FeedbackRows:
    """Segment vectors for each labelled file: stored ones when their spec matches, else from kept audio.

    ``feedback`` is taken in order, oldest first: for a file labelled several times, the last
    label wins (a recording has one true label; a user's later correction replaces the earlier).
    """
    latest: dict[str, FeedbackExample] = {}
    skipped: Counter[str] = Counter()
    for ex in feedback:
        if ex.label not in _LABELS:
            skipped["unknown label"] += 1
            continue
        if ex.file_sha256 in latest:
            skipped["same file labelled again (latest label kept)"] += 1
        latest[ex.file_sha256] = ex
    n_dims = base.spec["n_columns"]
    examples, vectors = [], []
    for ex in latest.values():
        X = stored_vectors(ex, base.spec)
        if X is None and ex.audio:
            try:
                X = _vectors_from_audio(ex.audio, base)
            except VoxguardError as exc:
                skipped[f"kept audio unreadable ({exc.code})"] += 1
                continue
        elif X is None:
            why = "stored vectors are of other features" if ex.vectors is not None else "no stored vectors"
            skipped[f"{why} and no kept audio"] += 1
            continue
        if base.template.row_kind == "frames":
            # Frame crops (from kept audio): NaN marks gated frames; every crop has a finite one.
            bad = X.ndim != 3 or len(X) == 0 or not np.isfinite(X).all(axis=1).any(axis=1).all()
        else:
            bad = X.ndim != 2 or len(X) == 0 or bool(n_dims and X.shape[1] != n_dims) or not np.all(np.isfinite(X))
        if bad:
            skipped["vectors of the wrong shape"] += 1
            continue
        examples.append(ex)
        vectors.append(X)
    rows = FeedbackRows(examples=examples, vectors=vectors, skipped=dict(skipped))
    c = rows.counts
    log(f"feedback: {len(examples)} labelled files usable ({c['real']} real, {c['fake']} fake)")
    for why, n in rows.skipped.items():
        log(f"feedback: {n} left out: {why}")
    return rows


# --------------------------------------------------------------------------- retraining


@dataclass
class RetrainResult:
    """What :func:`retrain` measured and decided.

    Attributes
    ----------
    accepted : bool
        The new model is at least as good as the old on the validation split (within ``tolerance``).
    written : bool
        The model was written (accepted, or ``force``).
    old_eer, new_eer : float
        EERs of both models on the same validation clips.
    old_feedback_eer, new_feedback_eer : float or None
        The same on the feedback clips of the validation split alone (``None`` unless both
        classes are there).
    validation : dict
        Sizes of the split (clips, feedback clips, per class) and its description.
    feedback : FeedbackRows
    model_path : Path or None
    card : ModelCard or None
    """

    accepted: bool
    written: bool
    old_eer: float
    new_eer: float
    old_feedback_eer: float | None
    new_feedback_eer: float | None
    validation: dict[str, Any]
    feedback: FeedbackRows
    model_path: Path | None = None
    card: Any = None


def _clip_mean(scores: np.ndarray, clip: np.ndarray, clips: np.ndarray) -> np.ndarray:
    """Mean segment score of each of ``clips`` (the protocol's clip score)."""
    from voxguard.models.segmental import clip_scores

    n = int(max(clip.max(initial=-1), clips.max(initial=-1))) + 1
    return clip_scores(scores, clip, n)[clips]


def _eer(labels: np.ndarray, scores: np.ndarray) -> float | None:
    from voxguard.evaluate import metrics

    if len(labels) == 0 or labels.min() == labels.max():
        return None
    return float(metrics.eer(labels, scores).eer)


def _finite(x: float) -> float | None:
    """JSON-safe number (a card is written with ``allow_nan=False``)."""
    return float(x) if x is not None and math.isfinite(x) else None


def _write_atomically(path: Path, data: bytes) -> None:
    """Write next to the target and rename: a crash never leaves a half-written model in place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass
class _Combined:
    """The corpus clips, then one item per feedback file, with one row table per model.

    Every table's rows point into ``dataset``; ``has_rows`` marks the clips with rows in all of
    them (a clip that failed for one member is left out for every member, so a fusion's members
    are compared and fused on the same clips).
    """

    dataset: Any
    tables: list[Any]
    has_rows: np.ndarray
    is_feedback: np.ndarray
    n_corpus: int


def _combine(
    corpus: Any,
    bases: Sequence[BaseModel],
    rows: Sequence[FeedbackRows],
    *,
    augment: bool,
    seed: int,
    workers: int,
    progress: bool,
    log: Callable[[str], None],
) -> _Combined:
    from voxguard.datasets.base import Dataset, Item
    from voxguard.models.segmental import SegmentTable, build_segment_table

    corpus_items = list(corpus) if corpus is not None else []
    examples = rows[0].examples  # the same files, in the same order, for every model
    fb_items = []
    for ex in examples:
        label = _LABELS[ex.label]
        fb_items.append(
            Item(
                path=Path(FEEDBACK_DATASET) / ex.key,
                label=label,
                system=FEEDBACK_DATASET if label == "spoof" else "bonafide",
                family=FEEDBACK_DATASET if label == "spoof" else "bonafide",
                utt_group=f"sha256:{ex.file_sha256}",
                dataset=FEEDBACK_DATASET,
            )
        )
    combined = Dataset(corpus_items + fb_items, name="corpus+feedback" if corpus_items else FEEDBACK_DATASET)
    tables = []
    has_rows = np.ones(len(combined), dtype=bool)
    for base, fb in zip(bases, rows, strict=True):
        X_parts: list[np.ndarray] = []
        y_parts: list[np.ndarray] = []
        clip_parts: list[np.ndarray] = []
        aug_parts: list[np.ndarray] = []
        if corpus_items:
            copies = " (with degraded copies)" if augment else ""
            log(f"corpus: {len(corpus_items)} clips, computing {base.card.name}'s segment vectors{copies}")
            table = build_segment_table(
                corpus,
                base.template,
                preprocess_config=base.preprocess,
                augment=augment,
                # The base model's own augmentation (cards before voxguard-v2 name none: "v1").
                policy=base.card.training.get("augmentation_policy") or "v1",
                seed=seed,
                workers=workers,
                progress=progress,
            )
            if table.failures:
                log(f"corpus: {len(table.failures)} clips failed and are left out")
            X_parts.append(table.X)
            y_parts.append(table.y)
            clip_parts.append(table.clip)
            aug_parts.append(table.augmented)
        for k, (ex, X) in enumerate(zip(fb.examples, fb.vectors, strict=True)):
            X_parts.append(X)
            y_parts.append(np.full(len(X), int(ex.label == "fake")))
            clip_parts.append(np.full(len(X), len(corpus_items) + k))
            aug_parts.append(np.zeros(len(X), dtype=bool))
        table = SegmentTable(
            X=np.vstack(X_parts).astype(np.float32),
            y=np.concatenate(y_parts).astype(np.int64),
            clip=np.concatenate(clip_parts).astype(np.int64),
            augmented=np.concatenate(aug_parts),
            failures=[],
            audio_s=0.0,
        )
        present = np.zeros(len(combined), dtype=bool)
        present[np.unique(table.clip)] = True
        has_rows &= present
        tables.append(table)
    is_fb = np.arange(len(combined)) >= len(corpus_items)
    return _Combined(combined, tables, has_rows, is_fb, len(corpus_items))


def _validation_split(c: _Combined, validation_size: float, seed: int) -> tuple[Any, np.ndarray, np.ndarray]:
    """One grouped split for old and new: feedback grouped by file hash, corpus clips by utt_group."""
    from voxguard.datasets.splits import group_split

    labels = c.dataset.labels()
    split = group_split(c.dataset, by="utt_group", test_size=validation_size, seed=seed)
    val = split.test[c.has_rows[split.test]]
    train = split.train[c.has_rows[split.train]]
    y_val = labels[val]
    if len(val) == 0 or y_val.min() == y_val.max() or labels[train].min() == labels[train].max():
        raise RetrainError(
            f"too little data to compare the models: the validation split has {int((y_val == 0).sum())} real and "
            f"{int((y_val == 1).sum())} fake clips, training {int((labels[train] == 0).sum())} real and "
            f"{int((labels[train] == 1).sum())} fake; both need both classes"
        )
    return split, train, val


def _rows_of(table: Any, clips: np.ndarray, *, clean: bool = False) -> np.ndarray:
    rows = np.isin(table.clip, clips)
    return rows & ~table.augmented if clean else rows


def _restricted(table: Any, rows: np.ndarray) -> Any:
    from voxguard.models.segmental import SegmentTable

    return SegmentTable(
        X=table.X[rows],
        y=table.y[rows],
        clip=table.clip[rows],
        augmented=table.augmented[rows],
        failures=[],
        audio_s=0.0,
    )


def _compare(
    c: _Combined,
    val: np.ndarray,
    old_scores: np.ndarray,
    new_scores: np.ndarray,
    base_card: Any,
    corpus: Any,
    tolerance: float,
    log: Callable[[str], None],
) -> tuple[float, float, float | None, float | None, bool]:
    from voxguard.evaluate.training import dataset_fingerprint

    y_val = c.dataset.labels()[val]
    old_eer, new_eer = _eer(y_val, old_scores), _eer(y_val, new_scores)
    assert old_eer is not None and new_eer is not None  # both classes checked by _validation_split
    fb_val = c.is_feedback[val]
    old_fb, new_fb = _eer(y_val[fb_val], old_scores[fb_val]), _eer(y_val[fb_val], new_scores[fb_val])
    log(f"old model ({base_card.name}) EER on the validation split: {old_eer * 100:.2f} %")
    log(f"new model EER on the same split:               {new_eer * 100:.2f} %")
    if old_fb is not None and new_fb is not None:
        log(f"  on its feedback clips alone: old {old_fb * 100:.2f} %, new {new_fb * 100:.2f} %")
    if c.n_corpus and base_card.training.get("data_fingerprint") == dataset_fingerprint(corpus):
        log(
            "note: the base model was trained on this corpus, so it has seen the corpus clips of the validation "
            "split and its EER there is optimistic; the comparison favours keeping it"
        )
    return old_eer, new_eer, old_fb, new_fb, bool(new_eer <= old_eer + tolerance + 1e-12)


def _log_split(c: _Combined, train: np.ndarray, val: np.ndarray, train_rows: int, log: Callable[[str], None]) -> None:
    y_val = c.dataset.labels()[val]
    log(
        f"validation: {len(val)} clips ({int((y_val == 0).sum())} real, {int((y_val == 1).sum())} fake; "
        f"{int(c.is_feedback[val].sum())} from feedback), training: {len(train)} clips, {train_rows} segment rows"
    )


def _validation_record(c: _Combined, split: Any, train: np.ndarray, val: np.ndarray, seed: int) -> dict[str, Any]:
    y_val = c.dataset.labels()[val]
    return {
        "clips": int(len(val)),
        "real": int((y_val == 0).sum()),
        "fake": int((y_val == 1).sum()),
        "feedback_clips": int(c.is_feedback[val].sum()),
        "training_clips": int(len(train)),
        "split": split.description,
        "seed": seed,
    }


def _retrained_training(
    c: _Combined,
    base: BaseModel,
    rows: FeedbackRows,
    table: Any,
    *,
    corpus: Any,
    augment: bool,
    seed: int,
    command: str,
    data_description: str,
    start: float,
) -> dict[str, Any]:
    """The ``training`` block of a retrained model's card."""
    from voxguard.evaluate.training import dataset_fingerprint

    cnt = rows.counts
    corpus_text = (data_description or getattr(corpus, "name", "")) if c.n_corpus else ""
    feedback_text = f"{len(rows.examples)} feedback files ({cnt['real']} real, {cnt['fake']} fake)"
    return {
        "data": " + ".join(p for p in (corpus_text, feedback_text) if p),
        "data_fingerprint": dataset_fingerprint(c.dataset),
        "base_model": base.card.name,
        "clips": int(len(c.dataset)),
        "clips_used": int(c.has_rows.sum()),
        "feedback_files": len(rows.examples),
        "feedback_skipped": rows.skipped,
        "segments": int(table.X.shape[0]),
        "augmentation": "one degraded copy of every corpus clip (voxguard.augment); none for feedback"
        if augment and c.n_corpus
        else "none",
        "class_weight": base.template.class_weight,
        "recipe": base.template.recipe(),
        "augmentation_policy": base.card.training.get("augmentation_policy") if augment and c.n_corpus else None,
        "seed": seed,
        "calibration": "Platt scaling on grouped out-of-fold clip scores",
        "command": command,
        "wall_s": round(time.perf_counter() - start, 1),
    }


def _grouped_metrics(k: int, summary: dict[str, Any]) -> dict[str, Any]:
    return {
        "split": f"grouped {k}-fold by utt_group (feedback: by file hash)",
        "eer": _finite(summary["pooled_eer"]),
        "mean_fold_eer": _finite(summary["mean_fold_eer"]),
        "auc": _finite(summary["auc"]),
        "clips": summary["clips"],
    }


def _retrain_metrics(
    validation: dict[str, Any],
    old_name: str,
    compared: tuple[float, float, float | None, float | None, bool],
    force: bool,
    k: int,
    summary: dict[str, Any],
) -> dict[str, Any]:
    old_eer, new_eer, old_fb, new_fb, accepted = compared
    return {
        "retrain_validation": {
            **{k_: v for k_, v in validation.items() if k_ != "seed"},
            "old_model": old_name,
            "old_eer": old_eer,
            "new_eer": new_eer,
            "old_feedback_eer": old_fb,
            "new_feedback_eer": new_fb,
            "accepted": accepted,
            "forced": bool(force and not accepted),
        },
        "grouped_cv": _grouped_metrics(k, summary),
    }


def _write_card(path: Path, card: Any) -> None:
    from voxguard.models.onnx_model import card_path

    _write_atomically(card_path(path), (json.dumps(card.to_dict(), indent=2, allow_nan=False) + "\n").encode())
    if path.is_file():  # the model file is written first: a Fisher model gets its two-stage form
        add_stages_if_fisher(path)


def _decide(
    compared: tuple[float, float, float | None, float | None, bool],
    validation: dict[str, Any],
    feedback: FeedbackRows,
    force: bool,
    log: Callable[[str], None],
) -> RetrainResult:
    """The outcome of the comparison; says whether the new model is refused or forced."""
    old_eer, new_eer, old_fb, new_fb, accepted = compared
    if not accepted:
        log(
            "the new model is worse, but --force: writing it anyway"
            if force
            else f"refused: the new model is worse ({new_eer * 100:.2f} % > {old_eer * 100:.2f} %); nothing written"
        )
    return RetrainResult(
        accepted=accepted,
        written=False,
        old_eer=old_eer,
        new_eer=new_eer,
        old_feedback_eer=old_fb,
        new_feedback_eer=new_fb,
        validation=validation,
        feedback=feedback,
    )


def _final_folds(c: _Combined, folds: int) -> int:
    """Grouped folds for the final calibration: ``folds``, fewer when there are fewer groups."""
    return max(2, min(folds, len(np.unique(c.dataset.groups("utt_group")[c.has_rows]))))


def _fit_final(
    base: BaseModel, c: _Combined, table: Any, groups: np.ndarray, k: int, seed: int, name: str, log: Any
) -> tuple[Any, Any, bytes, dict[str, Any]]:
    """Grouped out-of-fold scores (calibration, thresholds), then the model fitted on every row and exported.

    Returns ``(grouped ProtocolResult, fitted model, ONNX bytes, output block of its card)``.
    """
    from voxguard.evaluate.protocols import run_protocol
    from voxguard.evaluate.training import calibrate_oof

    grouped = run_protocol(
        c.dataset, table, base.new_classifier, protocol="grouped", folds=k, seed=seed, name=name, log=log
    )
    calibration, _, thresholds = calibrate_oof(grouped.scores, c.dataset.labels())
    final = base.new_classifier().fit(table.X, table.y, groups)
    probe = table.X[:: max(1, len(table.X) // 256)][:256]
    onx, output = final.to_onnx(probe)
    output |= {"meaning": "decision value, higher = more likely fake", "calibration": calibration}
    output["thresholds"] = thresholds
    return grouped, final, onx, output


def retrain(
    base_model: str | os.PathLike[str],
    feedback: Sequence[FeedbackExample],
    out_path: str | os.PathLike[str],
    *,
    corpus: Any = None,
    name: str | None = None,
    validation_size: float = 0.25,
    tolerance: float = 0.0,
    force: bool = False,
    augment: bool = True,
    folds: int = 5,
    seed: int = 0,
    workers: int = 2,
    command: str = "",
    data_description: str = "",
    log: Callable[[str], None] = lambda _m: None,
    progress: bool = True,
) -> RetrainResult:
    """Retrain ``base_model`` on ``corpus`` plus ``feedback``; write it to ``out_path`` only if it is not worse.

    Parameters
    ----------
    base_model : str or path
        Shipped model name or ``.onnx`` path of a segmental model, or of a fusion of segmental
        models (``voxguard train --model A+B``): then every member is retrained on the same
        clips, the fusion weights are fitted again on the new members' grouped out-of-fold
        scores, and the members are written beside ``out_path`` as ``NAME.LABEL.onnx``; or of a
        routed model: every expert likewise, the router kept
        (:func:`voxguard.evaluate.retrain_routed.retrain_routed`).
    feedback : sequence of FeedbackExample
        Labelled scans, oldest feedback first.
    out_path : path
        The ``.onnx`` to write (its ``.card.json`` goes beside it). Untouched when refusing.
    corpus : voxguard.datasets.Dataset, optional
        The base corpus (e.g. the manifest the base model was trained on).
    name : str, optional
        Model name in the card (default: the file stem).
    validation_size : float
        Fraction of the groups held out to compare the models.
    tolerance : float
        Accept a new EER up to ``old + tolerance`` (default 0: never worse).
    force : bool
        Write the new model even when it is worse.
    augment : bool
        Add the base model's degraded copies of every corpus clip to the training rows (as
        ``voxguard train``).
    folds : int
        Grouped folds for the calibration of the final model.
    seed, workers, command, data_description, progress
        As in :func:`voxguard.evaluate.training.train_segmental`.
    log : callable
        Receives one line per step (progress of long work).

    Returns
    -------
    RetrainResult

    Raises
    ------
    RetrainError
        Base model not segmental (nor a fusion of segmental models), no usable feedback, or a
        validation split without both classes.
    """
    from voxguard.models.onnx_model import ModelCard, card_path
    from voxguard.models.registry import resolve_model

    if not 0 < validation_size < 1:
        raise ValueError("validation_size must be between 0 and 1")
    path = resolve_model(os.fspath(base_model))
    base_card = ModelCard.load(card_path(path))
    if "routing" in base_card.output or base_card.features.get("kind") == "fusion":
        from voxguard.evaluate.retrain_routed import retrain_routed

        retrain_several = retrain_routed if "routing" in base_card.output else _retrain_fusion
        return retrain_several(
            path,
            feedback,
            Path(out_path),
            corpus=corpus,
            name=name,
            validation_size=validation_size,
            tolerance=tolerance,
            force=force,
            augment=augment,
            folds=folds,
            seed=seed,
            workers=workers,
            command=command,
            data_description=data_description,
            log=log,
            progress=progress,
        )
    from voxguard.models.onnx_model import OnnxModel

    start = time.perf_counter()
    out = Path(out_path)
    base = load_base_model(path)
    log(f"base model: {base.card.name} ({base.card.model_type})")
    rows = feedback_rows(feedback, base, log=log)
    if not rows.examples:
        raise RetrainError("no usable feedback: no labelled scan has vectors for this model's features or kept audio")
    c = _combine(corpus, [base], [rows], augment=augment, seed=seed, workers=workers, progress=progress, log=log)
    table = c.tables[0]
    labels = c.dataset.labels()
    split, train, val = _validation_split(c, validation_size, seed)
    val_rows = _rows_of(table, val, clean=True)
    train_rows = _rows_of(table, train)
    _log_split(c, train, val, int(train_rows.sum()), log)
    old_scores = _clip_mean(OnnxModel(base.path).score(table.X[val_rows]), table.clip[val_rows], val)
    log("fitting the new model on the training part ...")
    row_groups = c.dataset.groups("utt_group")[table.clip]
    new_model = base.new_classifier().fit(table.X[train_rows], table.y[train_rows], row_groups[train_rows])
    new_scores = _clip_mean(new_model.decision_function(table.X[val_rows]), table.clip[val_rows], val)
    compared = _compare(c, val, old_scores, new_scores, base.card, corpus, tolerance, log)
    validation = _validation_record(c, split, train, val, seed)
    result = _decide(compared, validation, rows, force, log)
    if not result.accepted and not force:
        return result

    # The final model: every clip, calibrated on grouped out-of-fold scores (never training scores).
    k = _final_folds(c, folds)
    log(f"final model: fitting on all {int(c.has_rows.sum())} clips, calibrating on grouped {k}-fold scores ...")
    grouped, final, onx, output = _fit_final(base, c, table, row_groups, k, seed, "retrained", log)
    card = ModelCard(
        name=name or out.name.removesuffix(".onnx"),
        model_type=final.describe(),
        features=dict(base.card.features),  # unchanged: the service and a later retrain read the same vectors
        output=output,
        training=_retrained_training(
            c,
            base,
            rows,
            table,
            corpus=corpus,
            augment=augment,
            seed=seed,
            command=command,
            data_description=data_description,
            start=start,
        ),
        metrics=_retrain_metrics(validation, base.card.name, compared, force, k, grouped.summary(labels)),
        created=date.today().isoformat(),
        voxguard_version=__version__,
        notes=[
            f"Retrained from {base.card.name} with user feedback (voxguard retrain).",
            "Feedback labels are users' claims; a wrong or malicious label is trained on like any other.",
        ],
    )
    _write_atomically(out, onx)
    _write_card(out, card)
    log(f"wrote {out} (and {card_path(out).name})")
    result.written = True
    result.model_path = out
    result.card = card
    return result


def _common_feedback(rows: Sequence[FeedbackRows]) -> list[FeedbackRows]:
    """The files usable for every member, in the first member's order (one dataset for all)."""
    keys = set.intersection(*({e.file_sha256 for e in r.examples} for r in rows))
    order = [e.file_sha256 for e in rows[0].examples if e.file_sha256 in keys]
    out = []
    for r in rows:
        by_key = {e.file_sha256: (e, X) for e, X in zip(r.examples, r.vectors, strict=True)}
        skipped = dict(r.skipped)
        if len(r.examples) > len(order):
            skipped["not usable for every fusion member"] = len(r.examples) - len(order)
        out.append(FeedbackRows([by_key[k][0] for k in order], [by_key[k][1] for k in order], skipped))
    return out


def _members_on_split(
    bases: Sequence[BaseModel],
    c: _Combined,
    row_groups: Sequence[np.ndarray],
    train: np.ndarray,
    val: np.ndarray,
    folds: int,
    seed: int,
    log: Callable[[str], None],
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Each member of a fusion (or expert of a routed model) on one validation split.

    Returns three lists, one array per member: the old model's clip scores of ``val``, the clip
    scores of ``val`` by a new model fitted on the training part, and grouped out-of-fold clip
    scores over the training part alone (all clips; NaN outside ``train``), to fit how the new
    members are combined.
    """
    from voxguard.evaluate.protocols import run_protocol
    from voxguard.models.onnx_model import OnnxModel

    k_train = max(2, min(folds, len(np.unique(c.dataset.groups("utt_group")[train]))))
    old_cols, new_cols, oof_cols = [], [], []
    for base, table, groups in zip(bases, c.tables, row_groups, strict=True):
        val_rows = _rows_of(table, val, clean=True)
        train_rows = _rows_of(table, train)
        old_cols.append(_clip_mean(OnnxModel(base.path).score(table.X[val_rows]), table.clip[val_rows], val))
        log(f"fitting the new {base.card.name} on the training part ...")
        model = base.new_classifier().fit(table.X[train_rows], table.y[train_rows], groups[train_rows])
        new_cols.append(_clip_mean(model.decision_function(table.X[val_rows]), table.clip[val_rows], val))
        # Out-of-fold scores of the training clips alone (validation clips have no rows here).
        oof = run_protocol(
            c.dataset, _restricted(table, train_rows), base.new_classifier, protocol="grouped", folds=k_train, seed=seed
        )
        oof_cols.append(oof.scores)
    return old_cols, new_cols, oof_cols


def _final_members(
    bases: Sequence[BaseModel],
    c: _Combined,
    row_groups: Sequence[np.ndarray],
    labels_of: Sequence[str],
    out: Path,
    parent_name: str,
    k: int,
    rows: FeedbackRows,
    role: str,
    corpus: Any,
    augment: bool,
    seed: int,
    command: str,
    data_description: str,
    start: float,
    log: Callable[[str], None],
) -> tuple[list[tuple[Path, bytes, Any]], list[Any]]:
    """Every member fitted on all clips, with its grouped out-of-fold result and card.

    Returns ``([(path beside out, ONNX bytes, card) per member], [grouped ProtocolResult per
    member])``; member ``LABEL`` is named ``PARENT.LABEL`` and goes to ``STEM.LABEL.onnx``.
    Nothing is written here.
    """
    from voxguard.models.onnx_model import ModelCard

    stem = out.name.removesuffix(".onnx")
    labels = c.dataset.labels()
    written, grouped_results = [], []
    for base, table, groups, label in zip(bases, c.tables, row_groups, labels_of, strict=True):
        member_name = f"{parent_name}.{label}"
        both = _rows_of(table, np.flatnonzero(c.has_rows))
        table = _restricted(table, both)
        grouped, final, onx, output = _fit_final(base, c, table, groups[both], k, seed, member_name, log)
        grouped_results.append(grouped)
        member_card = ModelCard(
            name=member_name,
            model_type=final.describe(),
            features=dict(base.card.features),
            output=output,
            training=_retrained_training(
                c,
                base,
                rows,
                table,
                corpus=corpus,
                augment=augment,
                seed=seed,
                command=command,
                data_description=data_description,
                start=start,
            ),
            metrics={"grouped_cv": _grouped_metrics(k, grouped.summary(labels))},
            created=date.today().isoformat(),
            voxguard_version=__version__,
            notes=[f"{role} of {parent_name}, retrained from {base.card.name} with user feedback (voxguard retrain)."],
        )
        written.append((out.with_name(f"{stem}.{label}.onnx"), onx, member_card))
    return written, grouped_results


def _retrain_fusion(
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
    """:func:`retrain` for a fusion: every member on the same clips, then new fusion weights.

    Old and new are compared as fusions on one validation split: the old members with the old
    weights, the new members (fitted on the training part) with weights fitted on their grouped
    out-of-fold scores over the training part. The written fusion's weights and calibration come
    from grouped out-of-fold scores over every clip, as in ``voxguard train``.
    """
    from voxguard.evaluate.fusion import FusionWeights, fit_fusion, fuse_protocol, fusion_to_onnx
    from voxguard.evaluate.training import calibrate_oof, dataset_fingerprint
    from voxguard.models.onnx_model import ModelCard, card_path

    start = time.perf_counter()
    card = ModelCard.load(card_path(path))
    member_files = [str(m) for m in card.features.get("members") or []]
    if len(member_files) < 2:
        raise RetrainError(f"fusion model {card.name!r} names fewer than two members")
    bases = []
    for member in member_files:
        try:
            bases.append(load_base_model(path.parent / member))
        except RetrainError as exc:
            raise RetrainError(f"fusion model {card.name!r}: member {member}: {exc.message}") from None
    log(f"base model: {card.name} (fusion of {', '.join(b.card.name for b in bases)})")
    rows = _common_feedback([feedback_rows(feedback, b, log=log) for b in bases])
    if not rows[0].examples:
        raise RetrainError("no usable feedback: no labelled scan has vectors for every member's features or kept audio")
    c = _combine(corpus, bases, rows, augment=augment, seed=seed, workers=workers, progress=progress, log=log)
    labels = c.dataset.labels()
    split, train, val = _validation_split(c, validation_size, seed)
    _log_split(c, train, val, int(_rows_of(c.tables[0], train).sum()), log)
    row_groups = [c.dataset.groups("utt_group")[t.clip] for t in c.tables]
    old_cols, new_cols, oof_cols = _members_on_split(bases, c, row_groups, train, val, folds, seed, log)
    old_weights = FusionWeights(**card.output["fusion"])
    oof_scores = np.column_stack(oof_cols)
    fit_rows = np.isfinite(oof_scores).all(axis=1)
    new_weights = fit_fusion(oof_scores[fit_rows], labels[fit_rows], [b.card.name for b in bases])
    compared = _compare(
        c,
        val,
        old_weights.apply(np.column_stack(old_cols)),
        new_weights.apply(np.column_stack(new_cols)),
        card,
        corpus,
        tolerance,
        log,
    )
    validation = _validation_record(c, split, train, val, seed)
    result = _decide(compared, validation, rows[0], force, log)
    if not result.accepted and not force:
        return result

    # The final members on every clip; weights and calibration from grouped out-of-fold scores.
    k = _final_folds(c, folds)
    log(f"final models: fitting on all {int(c.has_rows.sum())} clips, fusing on grouped {k}-fold scores ...")
    fused_name = name or out.name.removesuffix(".onnx")
    labels_of = [m.removesuffix(".onnx").rsplit(".", 1)[-1] for m in member_files]
    written, grouped_results = _final_members(
        bases, c, row_groups, labels_of, out, fused_name, k, rows[0], "Member", corpus, augment, seed, command,
        data_description, start, log,
    )  # fmt: skip
    member_names = [member_card.name for _, _, member_card in written]
    member_metrics = {member_card.name: member_card.metrics for _, _, member_card in written}
    fused = fuse_protocol(c.dataset, grouped_results, folds=k, seed=seed, name=fused_name)
    calibration, _, thresholds = calibrate_oof(fused.scores, labels)
    member_oof = np.column_stack([g.scores for g in grouped_results])
    have = np.isfinite(member_oof).all(axis=1)
    weights = fit_fusion(member_oof[have], labels[have], member_names)
    features = dict(card.features) | {"members": [p.name for p, _, _ in written], "columns": member_names}
    output = dict(card.output) | {"fusion": weights.to_dict(), "calibration": calibration, "thresholds": thresholds}
    fused_card = ModelCard(
        name=fused_name,
        model_type=card.model_type,
        features=features,
        output=output,
        training={
            "data": written[0][2].training["data"],  # the same clips for every member
            "data_fingerprint": dataset_fingerprint(c.dataset),
            "base_model": card.name,
            "clips": int(len(c.dataset)),
            "clips_used": int(c.has_rows.sum()),
            "feedback_files": len(rows[0].examples),
            "feedback_skipped": rows[0].skipped,
            "members": member_metrics,
            "augmentation_policy": bases[0].card.training.get("augmentation_policy")
            if augment and c.n_corpus
            else None,
            "fusion": "class-balanced logistic regression on standardised member clip scores, fitted on the "
            "members' grouped out-of-fold scores",
            "seed": seed,
            "calibration": "Platt scaling on stacked grouped out-of-fold fused clip scores",
            "command": command,
            "wall_s": round(time.perf_counter() - start, 1),
        },
        metrics=_retrain_metrics(validation, card.name, compared, force, k, fused.summary(labels)),
        created=date.today().isoformat(),
        voxguard_version=__version__,
        notes=[
            f"Retrained from {card.name} with user feedback (voxguard retrain): every member, then the fusion.",
            "Feedback labels are users' claims; a wrong or malicious label is trained on like any other.",
        ],
    )
    # Members first, the fusion last: a fusion file never names members that are not written yet.
    for member_path, onx, member_card in written:
        _write_atomically(member_path, onx)
        _write_card(member_path, member_card)
    _write_atomically(out, fusion_to_onnx(weights))
    _write_card(out, fused_card)
    log(f"wrote {out} (and {card_path(out).name}; members {', '.join(p.name for p, _, _ in written)})")
    result.written = True
    result.model_path = out
    result.card = fused_card
    return result
