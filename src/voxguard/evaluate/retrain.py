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
        X: np.ndarray | None = None
        if ex.vectors is not None and spec_matches(ex.vectors_spec, base.spec):
            X = np.asarray(ex.vectors, dtype=np.float32)
        elif ex.audio:
            try:
                X = _vectors_from_audio(ex.audio, base)
            except VoxguardError as exc:
                skipped[f"kept audio unreadable ({exc.code})"] += 1
                continue
        else:
            why = "stored vectors are of other features" if ex.vectors is not None else "no stored vectors"
            skipped[f"{why} and no kept audio"] += 1
            continue
        if X.ndim != 2 or len(X) == 0 or (n_dims and X.shape[1] != n_dims) or not np.all(np.isfinite(X)):
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
        Shipped model name or ``.onnx`` path of a segmental model.
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
        Add one degraded copy of every corpus clip to the training rows (as ``voxguard train``).
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
        Base model not segmental, no usable feedback, or a validation split without both classes.
    """
    from voxguard.datasets.base import Dataset, Item
    from voxguard.datasets.splits import group_split
    from voxguard.evaluate.protocols import run_protocol
    from voxguard.evaluate.training import calibrate_oof, dataset_fingerprint
    from voxguard.models.onnx_model import ModelCard, OnnxModel, card_path
    from voxguard.models.segmental import SegmentTable, build_segment_table

    if not 0 < validation_size < 1:
        raise ValueError("validation_size must be between 0 and 1")
    start = time.perf_counter()
    out = Path(out_path)
    base = load_base_model(base_model)
    log(f"base model: {base.card.name} ({base.card.model_type})")
    rows = feedback_rows(feedback, base, log=log)
    if not rows.examples:
        raise RetrainError("no usable feedback: no labelled scan has vectors for this model's features or kept audio")

    # The corpus first, then one item per feedback file; table rows point into this combined list.
    corpus_items: list[Item] = list(corpus) if corpus is not None else []
    X_parts: list[np.ndarray] = []
    y_parts: list[np.ndarray] = []
    clip_parts: list[np.ndarray] = []
    aug_parts: list[np.ndarray] = []
    if corpus_items:
        copies = " (with degraded copies)" if augment else ""
        log(f"corpus: {len(corpus_items)} clips, computing segment vectors{copies}")
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
    fb_items = []
    for k, (ex, X) in enumerate(zip(rows.examples, rows.vectors, strict=True)):
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
        X_parts.append(X)
        y_parts.append(np.full(len(X), int(label == "spoof")))
        clip_parts.append(np.full(len(X), len(corpus_items) + k))
        aug_parts.append(np.zeros(len(X), dtype=bool))
    combined = Dataset(corpus_items + fb_items, name="corpus+feedback" if corpus_items else FEEDBACK_DATASET)
    table = SegmentTable(
        X=np.vstack(X_parts).astype(np.float32),
        y=np.concatenate(y_parts).astype(np.int64),
        clip=np.concatenate(clip_parts).astype(np.int64),
        augmented=np.concatenate(aug_parts),
        failures=[],
        audio_s=0.0,
    )
    labels = combined.labels()
    has_rows = np.zeros(len(combined), dtype=bool)
    has_rows[np.unique(table.clip)] = True
    is_fb = np.arange(len(combined)) >= len(corpus_items)

    # One split for both models. Feedback files are grouped by hash, corpus clips by utt_group.
    split = group_split(combined, by="utt_group", test_size=validation_size, seed=seed)
    val = split.test[has_rows[split.test]]
    train = split.train[has_rows[split.train]]
    y_val = labels[val]
    if len(val) == 0 or y_val.min() == y_val.max() or labels[train].min() == labels[train].max():
        raise RetrainError(
            f"too little data to compare the models: the validation split has {int((y_val == 0).sum())} real and "
            f"{int((y_val == 1).sum())} fake clips, training {int((labels[train] == 0).sum())} real and "
            f"{int((labels[train] == 1).sum())} fake; both need both classes"
        )
    val_rows = np.isin(table.clip, val) & ~table.augmented
    train_rows = np.isin(table.clip, train)
    log(
        f"validation: {len(val)} clips ({int((y_val == 0).sum())} real, {int((y_val == 1).sum())} fake; "
        f"{int(is_fb[val].sum())} from feedback), training: {len(train)} clips, {int(train_rows.sum())} segment rows"
    )
    old_model = OnnxModel(base.path)
    old_scores = _clip_mean(old_model.score(table.X[val_rows]), table.clip[val_rows], val)
    log("fitting the new model on the training part ...")
    row_groups = combined.groups("utt_group")[table.clip]
    new_model = base.new_classifier().fit(table.X[train_rows], table.y[train_rows], row_groups[train_rows])
    new_scores = _clip_mean(new_model.decision_function(table.X[val_rows]), table.clip[val_rows], val)
    old_eer, new_eer = _eer(y_val, old_scores), _eer(y_val, new_scores)
    assert old_eer is not None and new_eer is not None  # both classes checked above
    fb_val = is_fb[val]
    old_fb, new_fb = _eer(y_val[fb_val], old_scores[fb_val]), _eer(y_val[fb_val], new_scores[fb_val])
    log(f"old model ({base.card.name}) EER on the validation split: {old_eer * 100:.2f} %")
    log(f"new model EER on the same split:               {new_eer * 100:.2f} %")
    if old_fb is not None and new_fb is not None:
        log(f"  on its feedback clips alone: old {old_fb * 100:.2f} %, new {new_fb * 100:.2f} %")
    if corpus_items and base.card.training.get("data_fingerprint") == dataset_fingerprint(corpus):
        log(
            "note: the base model was trained on this corpus, so it has seen the corpus clips of the validation "
            "split and its EER there is optimistic; the comparison favours keeping it"
        )
    accepted = bool(new_eer <= old_eer + tolerance + 1e-12)
    validation = {
        "clips": int(len(val)),
        "real": int((y_val == 0).sum()),
        "fake": int((y_val == 1).sum()),
        "feedback_clips": int(fb_val.sum()),
        "training_clips": int(len(train)),
        "split": split.description,
        "seed": seed,
    }
    result = RetrainResult(
        accepted=accepted,
        written=False,
        old_eer=old_eer,
        new_eer=new_eer,
        old_feedback_eer=old_fb,
        new_feedback_eer=new_fb,
        validation=validation,
        feedback=rows,
    )
    if not accepted and not force:
        log(f"refused: the new model is worse ({new_eer * 100:.2f} % > {old_eer * 100:.2f} %); nothing written")
        return result
    if not accepted:
        log("the new model is worse, but --force: writing it anyway")

    # The final model: every clip, calibrated on grouped out-of-fold scores (never training scores).
    n_groups = len(np.unique(combined.groups("utt_group")[has_rows]))
    k = max(2, min(folds, n_groups))
    log(f"final model: fitting on all {int(has_rows.sum())} clips, calibrating on grouped {k}-fold scores ...")
    grouped = run_protocol(
        combined, table, base.new_classifier, protocol="grouped", folds=k, seed=seed, name="retrained", log=log
    )
    calibration, _, thresholds = calibrate_oof(grouped.scores, labels)
    final = base.new_classifier().fit(table.X, table.y, row_groups)
    probe = table.X[:: max(1, len(table.X) // 256)][:256]
    onx, output = final.to_onnx(probe)
    output |= {"meaning": "decision value, higher = more likely fake", "calibration": calibration}
    output["thresholds"] = thresholds
    summary = grouped.summary(labels)
    c = rows.counts
    corpus_text = (data_description or getattr(corpus, "name", "")) if corpus_items else ""
    feedback_text = f"{len(rows.examples)} feedback files ({c['real']} real, {c['fake']} fake)"
    card = ModelCard(
        name=name or out.name.removesuffix(".onnx"),
        model_type=final.describe(),
        features=dict(base.card.features),  # unchanged: the service and a later retrain read the same vectors
        output=output,
        training={
            "data": " + ".join(p for p in (corpus_text, feedback_text) if p),
            "data_fingerprint": dataset_fingerprint(combined),
            "base_model": base.card.name,
            "clips": int(len(combined)),
            "clips_used": int(has_rows.sum()),
            "feedback_files": len(rows.examples),
            "feedback_skipped": rows.skipped,
            "segments": int(table.X.shape[0]),
            "augmentation": "one degraded copy of every corpus clip (voxguard.augment); none for feedback"
            if augment and corpus_items
            else "none",
            "class_weight": base.template.class_weight,
            "recipe": base.template.recipe(),
            "augmentation_policy": base.card.training.get("augmentation_policy") if augment and corpus_items else None,
            "seed": seed,
            "calibration": "Platt scaling on grouped out-of-fold clip scores",
            "command": command,
            "wall_s": round(time.perf_counter() - start, 1),
        },
        metrics={
            "retrain_validation": {
                **{k_: v for k_, v in validation.items() if k_ != "seed"},
                "old_model": base.card.name,
                "old_eer": old_eer,
                "new_eer": new_eer,
                "old_feedback_eer": old_fb,
                "new_feedback_eer": new_fb,
                "accepted": accepted,
                "forced": bool(force and not accepted),
            },
            "grouped_cv": {
                "split": f"grouped {k}-fold by utt_group (feedback: by file hash)",
                "eer": _finite(summary["pooled_eer"]),
                "mean_fold_eer": _finite(summary["mean_fold_eer"]),
                "auc": _finite(summary["auc"]),
                "clips": summary["clips"],
            },
        },
        created=date.today().isoformat(),
        voxguard_version=__version__,
        notes=[
            f"Retrained from {base.card.name} with user feedback (voxguard retrain).",
            "Feedback labels are users' claims; a wrong or malicious label is trained on like any other.",
        ],
    )
    _write_atomically(out, onx)
    _write_atomically(card_path(out), (json.dumps(card.to_dict(), indent=2, allow_nan=False) + "\n").encode())
    log(f"wrote {out} (and {card_path(out).name})")
    result.written = True
    result.model_path = out
    result.card = card
    return result
