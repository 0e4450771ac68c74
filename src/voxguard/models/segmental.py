"""Segment-level detectors: pooled frame features of fixed-length segments -> a scikit-learn classifier.

Training rows are segments (default 4 s, hop 2 s) of preprocessed clips, optionally with one
degraded copy of every clip (codec, band-limit, noise — both classes alike); inference scores
segments the same way through ONNX (:class:`voxguard.models.detector.Detector`, kind
``"segmental"``). Scores: higher = more likely fake.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from voxguard.audio import PreprocessConfig, load, preprocess, segment_bounds
from voxguard.errors import ModelError, VoxguardError
from voxguard.features.segmental import SegmentalConfig, frame_matrix, pool_segments, segment_crops

CLASSIFIERS = ("svm", "logreg")


@dataclass
class SegmentalClassifier:
    """StandardScaler + SVM-RBF (or logistic regression) on pooled segment features.

    Parameters
    ----------
    features : SegmentalConfig
        Views and statistics.
    classifier : "svm" | "logreg"
    C : float
        Regularisation (larger = less).
    segment_s, hop_s : float
        Training segment length and hop; the scanner's default segment is ``segment_s``.
    class_weight : "balanced" or None
        DEV has 2.7 real clips per fake; balanced weights stop the majority class winning.
    """

    features: SegmentalConfig = field(default_factory=SegmentalConfig)
    classifier: str = "svm"
    C: float = 3.0
    segment_s: float = 4.0
    hop_s: float = 2.0
    class_weight: str | None = "balanced"
    row_kind: str = field(default="pooled", init=False)
    pipeline_: Any = field(default=None, init=False, repr=False)

    def _make(self):
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        from sklearn.svm import SVC

        if self.classifier == "svm":
            head = SVC(C=self.C, gamma="scale", class_weight=self.class_weight)
        elif self.classifier == "logreg":
            head = LogisticRegression(C=self.C, class_weight=self.class_weight, max_iter=5000)
        else:
            raise VoxguardError(f"unknown classifier {self.classifier!r}; choose from {', '.join(CLASSIFIERS)}")
        return make_pipeline(StandardScaler(), head)

    def clone(self) -> SegmentalClassifier:
        """An unfitted copy with the same parameters (scikit-learn's ``clone``)."""
        return SegmentalClassifier(
            features=self.features,
            classifier=self.classifier,
            C=self.C,
            segment_s=self.segment_s,
            hop_s=self.hop_s,
            class_weight=self.class_weight,
        )

    def fit(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None, *, log=None) -> SegmentalClassifier:
        """Fit on pooled rows ``X`` (n, n_dims); ``groups`` and ``log`` are accepted for a common
        interface with the frame models (which hold out groups for early stopping)."""
        self.pipeline_ = self._make().fit(np.asarray(X, dtype=np.float32), np.asarray(y))
        return self

    def recipe(self) -> dict[str, Any]:
        """What a card stores to retrain this recipe (see :func:`recipe_from_card`)."""
        return {"classifier": self.classifier, "C": self.C, "class_weight": self.class_weight}

    def to_onnx(self, probe: np.ndarray) -> tuple[bytes, dict[str, Any]]:
        """ONNX bytes and the card's ``output`` block, checked against scikit-learn on ``probe``."""
        from voxguard.models.export import sklearn_to_onnx

        return sklearn_to_onnx(self.pipeline_, probe, self.decision_function(probe))

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Score per row, higher = more likely fake."""
        return self.pipeline_.decision_function(np.asarray(X, dtype=np.float32)).astype(np.float64)

    def describe(self) -> str:
        head = f"SVC(rbf, C={self.C}, gamma='scale')" if self.classifier == "svm" else f"LogisticRegression(C={self.C})"
        return f"StandardScaler + {head} on mean/std of {'+'.join(self.features.views)} over {self.segment_s:g} s"


# --------------------------------------------------------------------------- recipes from model cards


def _classifier_of(model_type: str) -> tuple[str, float]:
    """Classifier kind and C from a card's ``model_type`` (as :meth:`SegmentalClassifier.describe` writes it)."""
    number = r"([0-9.]+(?:[eE][-+]?[0-9]+)?)"
    if m := re.search(r"SVC\([^)]*C=" + number, model_type):
        return "svm", float(m.group(1))
    if m := re.search(r"LogisticRegression\([^)]*C=" + number, model_type):
        return "logreg", float(m.group(1))
    raise ModelError(f"cannot tell the classifier from the model card ({model_type!r})")


def recipe_from_card(card: Any) -> Any:
    """The unfitted model a segmental model card describes (to retrain its recipe).

    A :class:`SegmentalClassifier`, or a frame model (:mod:`voxguard.models.frame_cnn`,
    :mod:`voxguard.models.frame_gmm`, :mod:`voxguard.models.frame_fisher`) when the recipe names
    one. Cards written since the ``recipe`` field existed state the classifier; older ones are
    read from ``model_type``.
    """
    spec = card.features
    if spec.get("kind") != "segmental" or not spec.get("segmental"):
        raise ModelError(
            f"model {card.name!r} has feature kind {spec.get('kind')!r}: only segmental models can be retrained "
            "per fold; use --protocol fixed on a corpus it was not trained on"
        )
    recipe = card.training.get("recipe") or {}
    if recipe.get("classifier") in FRAME_CLASSIFIERS:
        return frame_model(recipe, SegmentalConfig.from_dict(spec["segmental"]))
    classifier, C = (recipe["classifier"], float(recipe["C"])) if recipe else _classifier_of(card.model_type)
    segment_s = float(spec.get("segment_s", 4.0))
    return SegmentalClassifier(
        features=SegmentalConfig.from_dict(spec["segmental"]),
        classifier=classifier,
        C=C,
        segment_s=segment_s,
        hop_s=float(spec.get("training_hop_s", segment_s / 2)),
        class_weight=card.training.get("class_weight", "balanced"),
    )


FRAME_CLASSIFIERS = ("cnn", "cnn2d", "cnn-svm", "cnn2d-svm", "gmm", "fisher-svm")


def frame_model(recipe: dict[str, Any], features: SegmentalConfig) -> Any:
    """An unfitted frame model from a recipe dict (``classifier`` plus that model's parameters)."""
    kind = recipe["classifier"]
    if kind == "gmm":
        from voxguard.models.frame_gmm import FrameGMMClassifier as cls
    elif kind == "fisher-svm":
        from voxguard.models.frame_fisher import FrameFisherClassifier as cls
    elif kind in ("cnn", "cnn2d", "cnn-svm", "cnn2d-svm"):
        from voxguard.models.frame_cnn import FrameCNNClassifier as cls
    else:
        raise ModelError(f"unknown frame classifier {kind!r}; choose from {', '.join(FRAME_CLASSIFIERS)}")
    params = {k: recipe[k] for k in cls.recipe_keys() if k in recipe}
    if kind in ("cnn-svm", "cnn2d-svm"):
        params["head"] = "svm"
    if kind.startswith("cnn2d"):
        params["arch"] = "lcnn2d"
        params.setdefault("width", 16)
    return cls(features=features, **params)


def preprocess_from_card(card: Any) -> PreprocessConfig:
    """The :class:`PreprocessConfig` a model was trained with (the canonical one if the card has none)."""
    stored = card.features.get("preprocess")
    return PreprocessConfig.from_dict(stored) if stored else PreprocessConfig()


# --------------------------------------------------------------------------- data


def clip_segments(
    y: np.ndarray, sr: int, features: SegmentalConfig, segment_s: float, hop_s: float, row_kind: str = "pooled"
) -> np.ndarray:
    """Model rows of the segments of one preprocessed clip.

    ``row_kind="pooled"``: pooled vectors, shape (n_segments, n_dims); ``"frames"``: frame crops
    of ``segment_s`` each, shape (n_segments, n_features, n_frames), NaN-padded (frame models).
    """
    frames = frame_matrix(y, sr, features)
    bounds = segment_bounds(len(y), sr, segment_s, hop_s)
    if row_kind == "frames":
        crops = segment_crops(frames, bounds, features.hop_length, crop_frames(segment_s, features))
        return crops[np.isfinite(crops).all(axis=1).any(axis=1)]  # crops that are all silence teach nothing
    vectors = pool_segments(frames, bounds, features)
    return vectors[np.isfinite(vectors).all(axis=1)]  # segments that are all silence teach nothing


def crop_frames(segment_s: float, features: SegmentalConfig) -> int:
    """Frames in a crop of ``segment_s`` seconds."""
    return int(round(segment_s * features.sample_rate / features.hop_length))


@dataclass(frozen=True)
class _ClipJob:
    path: str
    features: SegmentalConfig
    preprocess: PreprocessConfig
    segment_s: float
    hop_s: float
    augment_seed: int | None
    policy: str = "v1"
    row_kind: str = "pooled"


# Speech for babble noise, loaded once per worker process (see _init_babble).
_BABBLE: list[np.ndarray] = []


def _init_babble(paths: tuple[str, ...], sr: int) -> None:
    _BABBLE.clear()
    for path in paths:
        try:
            _BABBLE.append(load(path, sr=sr).samples)
        except VoxguardError:  # an unreadable source only makes the babble less varied
            continue


def babble_paths(dataset: Any, *, n: int = 12, seed: int = 0) -> tuple[str, ...]:
    """Up to ``n`` real clips of distinct speakers (seeded draw): the voices of babble noise."""
    labels = dataset.labels()
    speakers = dataset.column("speaker")
    order = np.random.default_rng(seed).permutation(len(labels))
    chosen: dict[str, str] = {}
    for i in order:
        if labels[i] == 0 and str(speakers[i]) not in chosen:
            chosen[str(speakers[i])] = str(dataset[int(i)].path)
            if len(chosen) == n:
                break
    return tuple(chosen.values())


def parse_policy(spec: str) -> tuple[str, int]:
    """``"chain"`` -> ``("chain", 1)``; ``"chain*2"`` -> ``("chain", 2)`` (degraded copies per clip)."""
    name, _, copies = spec.partition("*")
    try:
        n = int(copies) if copies else 1
    except ValueError:
        n = 0
    if n < 1:
        raise VoxguardError(f"bad augmentation policy {spec!r}: use NAME or NAME*COPIES, e.g. chain*2")
    return name, n


def _clip_job(job: _ClipJob) -> dict[str, Any]:
    """Segments of one clip, clean and (optionally) one degraded copy; runs in a worker."""
    from voxguard.augment import get_policy

    try:
        audio = load(job.path, sr=job.preprocess.sample_rate)
        pre = preprocess(audio.samples, audio.sample_rate, job.preprocess)
        out: dict[str, Any] = {
            "ok": True,
            "clean": clip_segments(pre.samples, pre.sample_rate, job.features, job.segment_s, job.hop_s, job.row_kind),
            "audio_s": audio.duration_s,
        }
        if job.augment_seed is not None:
            # Degrade the decoded recording (what a channel does), then preprocess as usual.
            name, copies = parse_policy(job.policy)
            degrade = get_policy(name)
            rows, hows = [], []
            for k in range(copies):
                seed = job.augment_seed + 7_919 * k  # copy 0 keeps the single-copy seed
                degraded, how = degrade(audio.samples, audio.sample_rate, seed=seed, babble_sources=_BABBLE)
                pre_aug = preprocess(degraded, audio.sample_rate, job.preprocess)
                rows.append(
                    clip_segments(
                        pre_aug.samples, pre_aug.sample_rate, job.features, job.segment_s, job.hop_s, job.row_kind
                    )
                )
                hows.append(how)
            out["augmented"] = np.vstack(rows)
            out["augmentation"] = "; ".join(hows)
        return out
    except VoxguardError as exc:
        return {"ok": False, "code": exc.code, "message": exc.message}


@dataclass
class SegmentTable:
    """Training rows: pooled segment vectors (or frame crops) with the clip each came from.

    ``X`` (n_rows, n_dims), or (n_rows, n_features, n_frames) for frame models;
    ``y`` (n_rows,) 1 = fake, ``clip`` (n_rows,) index into the dataset,
    ``augmented`` (n_rows,) bool; ``failures`` lists (index, code, message) of clips that failed.
    """

    X: np.ndarray
    y: np.ndarray
    clip: np.ndarray
    augmented: np.ndarray
    failures: list[tuple[int, str, str]]
    audio_s: float
    #: Decoded seconds of every clip of the dataset (0 for failed clips), when known.
    clip_seconds: np.ndarray | None = None


def build_segment_table(
    dataset: Any,
    model: Any,
    *,
    preprocess_config: PreprocessConfig | None = None,
    augment: bool = True,
    policy: str = "v1",
    seed: int = 0,
    workers: int = 2,
    progress: bool = True,
) -> SegmentTable:
    """Segment rows for every clip of a :class:`voxguard.datasets.Dataset` (parallel, with progress).

    ``model``: a :class:`SegmentalClassifier` (pooled rows) or a frame model (``row_kind ==
    "frames"``: :class:`~voxguard.models.frame_cnn.FrameCNNClassifier`,
    :class:`~voxguard.models.frame_gmm.FrameGMMClassifier`), whose rows are frame crops.

    With ``augment``, every clip also gets one copy (``"NAME*K"``: K copies) degraded by the
    augmentation ``policy`` (:data:`voxguard.augment.POLICIES`), seeded per clip; babble noise
    uses real clips of the dataset (:func:`babble_paths`).
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from voxguard.augment import get_policy

    if augment:
        get_policy(parse_policy(policy)[0])  # an unknown name fails here, not once per clip in the workers
    pre_cfg = preprocess_config or PreprocessConfig()
    jobs = [
        _ClipJob(
            str(item.path),
            model.features,
            pre_cfg,
            model.segment_s,
            model.hop_s,
            seed * 100_003 + i if augment else None,
            policy,
            getattr(model, "row_kind", "pooled"),
        )
        for i, item in enumerate(dataset)
    ]
    labels = dataset.labels()
    X, y, clip, aug, failures = [], [], [], [], []
    audio_s = 0.0
    clip_seconds = np.zeros(len(jobs))
    columns = (
        TextColumn("segment features"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[audio]}"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, disable=not progress, transient=False) as bar:
        task = bar.add_task("features", total=len(jobs), audio="0 s")
        needs_babble = augment and parse_policy(policy)[0] != "v1"
        bank = (babble_paths(dataset, seed=seed), pre_cfg.sample_rate) if needs_babble else ((), 16_000)
        pool = None
        if workers > 1:
            context = multiprocessing.get_context("spawn")
            pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_init_babble, initargs=bank)
        else:
            _init_babble(*bank)
        try:
            results = pool.map(_clip_job, jobs, chunksize=8) if pool else map(_clip_job, jobs)
            for i, res in enumerate(results):
                if res["ok"]:
                    audio_s += res["audio_s"]
                    clip_seconds[i] = res["audio_s"]
                    for key, flag in (("clean", False), ("augmented", True)):
                        if key in res:
                            rows = res[key]
                            X.append(rows)
                            y.append(np.full(len(rows), labels[i]))
                            clip.append(np.full(len(rows), i))
                            aug.append(np.full(len(rows), flag))
                else:
                    failures.append((i, res["code"], res["message"]))
                bar.update(task, advance=1, audio=f"{audio_s / 60:.1f} min audio")
        finally:
            if pool is not None:
                pool.shutdown()
    return SegmentTable(
        X=np.vstack(X).astype(np.float32),
        y=np.concatenate(y).astype(np.int64),
        clip=np.concatenate(clip).astype(np.int64),
        augmented=np.concatenate(aug),
        failures=failures,
        audio_s=audio_s,
        clip_seconds=clip_seconds,
    )


def clip_scores(segment_scores: np.ndarray, clip: np.ndarray, n_clips: int) -> np.ndarray:
    """Mean segment score per clip (NaN for clips without rows)."""
    total = np.bincount(clip, weights=segment_scores, minlength=n_clips)
    count = np.bincount(clip, minlength=n_clips)
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / count
