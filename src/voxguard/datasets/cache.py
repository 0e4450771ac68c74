"""Feature extraction over a dataset: parallel, with progress, cached on disk by file content.

:func:`extract_features` runs, for every item, ``voxguard.audio.load`` → ``voxguard.audio.preprocess``
(with a :class:`~voxguard.audio.PreprocessConfig`) → ``voxguard.features.registry.extract`` for one
feature kind, and returns every item's :class:`~voxguard.features.registry.FeatureTable` (or a
pooled vector) plus the files that failed.

Cache
-----
Entries live in ``<cache_dir>/<kind>/<config digest>/<hh>/<content hash>.npz`` where

- the *content hash* is BLAKE2b (160 bit) of the file's bytes, streamed: a renamed or copied file
  hits, an edited file misses, whatever its name or timestamp;
- the *config digest* hashes the kind, the full preprocessing config, :data:`FEATURE_VERSION` and
  the voxguard version, so a changed config never reuses stale features (the old entries stay
  until the folder is deleted; ``config.json`` in each folder says what made it).

``cache_dir`` defaults to ``$VOXGUARD_CACHE`` if set, else ``~/.cache/voxguard/features``.
Entries are ``.npz`` files read with ``allow_pickle=False`` and written atomically (temporary file
+ rename), so concurrent workers or runs never see half-written entries; an unreadable entry is
recomputed. Failures are not cached.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import multiprocessing
import os
import tempfile
import time
import zipfile
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from voxguard.audio import PreprocessConfig, load, preprocess
from voxguard.datasets.base import Dataset
from voxguard.errors import FeatureError, InputNotFoundError, VoxguardError
from voxguard.features import registry
from voxguard.features.registry import FeatureTable

__all__ = [
    "FEATURE_VERSION",
    "FeatureCache",
    "FeatureConfig",
    "FeatureFailure",
    "FeatureResult",
    "content_hash",
    "default_cache_dir",
    "extract_features",
    "mean_std_pool",
]

#: Bump whenever an extractor's output changes for the same input, to invalidate cached features.
FEATURE_VERSION = "1"

_CHUNK = 1 << 20


def _voxguard_version() -> str:
    from voxguard import __version__

    return __version__


def default_cache_dir() -> Path:
    """``$VOXGUARD_CACHE`` if set, else ``~/.cache/voxguard/features``."""
    env = os.environ.get("VOXGUARD_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "voxguard" / "features"


def content_hash(path: str | os.PathLike[str]) -> str:
    """BLAKE2b-160 hex digest of a file's bytes, read in 1 MiB chunks.

    Raises
    ------
    InputNotFoundError
        The path is missing, a directory, or unreadable.
    """
    h = hashlib.blake2b(digest_size=20)
    try:
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise InputNotFoundError("no such file", path=os.fspath(path)) from None
    except OSError as e:
        raise InputNotFoundError(f"cannot read the file: {e.strerror or e}", path=os.fspath(path)) from None
    return h.hexdigest()


@dataclass(frozen=True)
class FeatureConfig:
    """What determines the features of a file: the kind and the preprocessing.

    Attributes
    ----------
    kind : str
        One of :data:`voxguard.features.registry.FEATURE_KINDS`.
    preprocess : PreprocessConfig
    """

    kind: str = "lfcc"
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "preprocess": self.preprocess.to_dict(),
            "feature_version": FEATURE_VERSION,
            "voxguard_version": _voxguard_version(),
        }

    def digest(self) -> str:
        """Short hash of :meth:`to_dict` (the cache folder name)."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.blake2b(blob, digest_size=10).hexdigest()


class FeatureCache:
    """On-disk store of feature tables for one :class:`FeatureConfig`, keyed by content hash.

    Parameters
    ----------
    config : FeatureConfig
    root : path, optional
        The cache directory (default :func:`default_cache_dir`).
    """

    def __init__(self, config: FeatureConfig, root: str | os.PathLike[str] | None = None):
        self.config = config
        self.root = Path(root) if root is not None else default_cache_dir()
        self.dir = self.root / config.kind / config.digest()

    def path(self, key: str) -> Path:
        return self.dir / key[:2] / f"{key}.npz"

    def get(self, key: str) -> tuple[FeatureTable, dict[str, Any]] | None:
        """The cached table and metadata, or ``None`` on a miss (or an unreadable entry)."""
        p = self.path(key)
        if not p.is_file():
            return None
        try:
            with np.load(p, allow_pickle=False) as z:
                table = FeatureTable(values=z["values"], columns=[str(c) for c in z["columns"]], times_s=z["times_s"])
                meta = json.loads(str(z["meta"]))
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError):
            return None  # damaged entry (e.g. a killed run on a filesystem without atomic rename)
        return table, meta

    def put(self, key: str, table: FeatureTable, meta: dict[str, Any]) -> Path:
        """Store an entry atomically; writes ``config.json`` next to the entries the first time."""
        p = self.path(key)
        p.parent.mkdir(parents=True, exist_ok=True)
        cfg = self.dir / "config.json"
        if not cfg.exists():
            _atomic_write(cfg, lambda f: f.write(json.dumps(self.config.to_dict(), indent=1).encode()))
        _atomic_write(
            p,
            lambda f: np.savez(
                f,
                values=np.asarray(table.values),
                columns=np.asarray(table.columns, dtype=str),
                times_s=np.asarray(table.times_s),
                meta=np.asarray(json.dumps(meta)),
            ),
        )
        return p


def _atomic_write(path: Path, write: Callable[[Any], Any]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class FeatureFailure:
    """A file that could not be turned into features."""

    index: int
    path: Path
    code: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "path": str(self.path), "error": self.code, "message": self.message}


@dataclass
class FeatureResult:
    """Output of :func:`extract_features`.

    Attributes
    ----------
    dataset : Dataset
    config : FeatureConfig
    features : list
        Per item, in dataset order: a :class:`FeatureTable`, the pooled vector if a ``pool`` was
        given, or ``None`` where the item failed.
    failures : list of FeatureFailure
        In dataset order.
    n_cached, n_computed : int
        Items served from the cache and items extracted in this run.
    audio_s : float
        Seconds of input audio covered (cached items included).
    elapsed_s : float
    """

    dataset: Dataset
    config: FeatureConfig
    features: list[Any]
    failures: list[FeatureFailure]
    n_cached: int = 0
    n_computed: int = 0
    audio_s: float = 0.0
    elapsed_s: float = 0.0

    @property
    def ok(self) -> np.ndarray:
        """Indices of the items that have features."""
        return np.array([i for i, f in enumerate(self.features) if f is not None], dtype=np.int64)

    def to_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(X, y, indices)`` over the successful items: stacked pooled vectors, labels (1 = spoof).

        Raises
        ------
        ValueError
            The features are tables (no ``pool`` was given).
        """
        idx = self.ok
        vecs = [self.features[i] for i in idx]
        if any(isinstance(v, FeatureTable) for v in vecs):
            raise ValueError("features are per-frame tables; pass pool= to extract_features to get vectors")
        X = np.stack([np.asarray(v) for v in vecs]) if vecs else np.zeros((0, 0), dtype=np.float32)
        return X, self.dataset.labels()[idx], idx


def _work(path: str, config: FeatureConfig, cache_root: str | None) -> dict[str, Any]:
    """Features of one file (runs in a worker process): from the cache, or extracted and stored."""
    try:
        key = content_hash(path)
        cache = FeatureCache(config, cache_root) if cache_root is not None else None
        if cache is not None and (hit := cache.get(key)) is not None:
            table, meta = hit
            return {"ok": True, "table": table, "meta": meta, "cached": True}
        audio = load(path, sr=config.preprocess.sample_rate)
        pre = preprocess(audio.samples, audio.sample_rate, config.preprocess)
        table = registry.extract(config.kind, pre.samples, pre.sample_rate)
        meta = {
            "input_duration_s": audio.duration_s,
            "duration_s": pre.duration_s,
            "speech_s": pre.speech_s,
            "offset_s": pre.offset_s,
        }
        if cache is not None:
            cache.put(key, table, meta)
        return {"ok": True, "table": table, "meta": meta, "cached": False}
    except VoxguardError as e:  # bad input: report and go on; anything else is a bug and propagates
        return {"ok": False, "code": e.code, "message": e.message}


def mean_std_pool(table: FeatureTable) -> np.ndarray:
    """Per-column mean then standard deviation over rows (NaN-aware): a simple ``pool`` callable."""
    from voxguard.features.pooling import pool_stats

    vec, _ = pool_stats(np.asarray(table.values).T, stats=("mean", "std"), percentiles=())
    return vec


def extract_features(
    dataset: Dataset,
    kind: str = "lfcc",
    *,
    preprocess_config: PreprocessConfig | None = None,
    pool: Callable[[FeatureTable], np.ndarray] | None = None,
    workers: int = 1,
    cache_dir: str | os.PathLike[str] | None = None,
    use_cache: bool = True,
    progress: bool = True,
) -> FeatureResult:
    """Compute feature ``kind`` for every item of ``dataset``, reusing cached results.

    Parameters
    ----------
    dataset : Dataset
    kind : str
        A key of :data:`voxguard.features.registry.FEATURE_KINDS` (``mfcc``, ``lfcc``, ...).
    preprocess_config : PreprocessConfig, optional
        The canonical preprocessing by default.
    pool : callable, optional
        ``FeatureTable -> 1-D array`` applied to every table (e.g. :func:`mean_std_pool`); runs in
        this process, so it need not be picklable. Without it the tables are returned; every
        item's table is then held in memory, so pool when the corpus is large.
    workers : int
        Processes to use; 1 (default) runs in this process. Workers are spawned, not forked, so
        a calling script needs the usual ``if __name__ == "__main__":`` guard (and code piped
        to ``python -`` cannot use workers).
    cache_dir : path, optional
        Cache directory (default :func:`default_cache_dir`).
    use_cache : bool
        ``False`` neither reads nor writes the cache.
    progress : bool
        Show files done/total, audio seconds processed and the ETA on stderr.

    Returns
    -------
    FeatureResult
        Per-item features (in dataset order) and per-file failures (path, error code, message);
        a failing file never stops the others.

    Raises
    ------
    FeatureError
        ``kind`` is not a known feature kind.
    """
    if kind not in registry.FEATURE_KINDS:
        raise FeatureError(f"unknown feature kind {kind!r}; choose from {', '.join(registry.FEATURE_KINDS)}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    config = FeatureConfig(kind=kind, preprocess=preprocess_config or PreprocessConfig())
    root = None if not use_cache else str(Path(cache_dir) if cache_dir is not None else default_cache_dir())
    n = len(dataset)
    result = FeatureResult(dataset=dataset, config=config, features=[None] * n, failures=[])
    failures: dict[int, FeatureFailure] = {}
    t0 = time.perf_counter()

    with _Progress(n, enabled=progress, label=f"{kind} features") as bar:

        def handle(i: int, out: dict[str, Any]) -> None:
            path = dataset[i].path
            if out["ok"]:
                table = out["table"]
                try:
                    result.features[i] = pool(table) if pool is not None else table
                except VoxguardError as e:
                    failures[i] = FeatureFailure(i, path, e.code, e.message)
                else:
                    result.n_cached += out["cached"]
                    result.n_computed += not out["cached"]
                    result.audio_s += float(out["meta"].get("input_duration_s", 0.0))
            else:
                failures[i] = FeatureFailure(i, path, out["code"], out["message"])
            bar.advance(result.audio_s)

        if workers == 1 or n <= 1:
            for i, item in enumerate(dataset):
                handle(i, _work(str(item.path), config, root))
        else:
            # spawn: a forked child could inherit a lock held by another thread (rich's refresh
            # thread, BLAS pools) and hang.
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as ex:
                # A bounded window of pending tasks: a million futures at once would cost memory.
                todo = iter(enumerate(dataset))
                pending: dict[Future[dict[str, Any]], int] = {}
                for i, item in itertools.islice(todo, 4 * workers):
                    pending[ex.submit(_work, str(item.path), config, root)] = i
                while pending:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in done:
                        handle(pending.pop(fut), fut.result())
                    for i, item in itertools.islice(todo, len(done)):
                        pending[ex.submit(_work, str(item.path), config, root)] = i

    result.failures = [failures[i] for i in sorted(failures)]
    result.elapsed_s = time.perf_counter() - t0
    return result


class _Progress:
    """A rich progress bar on stderr (files done/total, audio seconds, elapsed, ETA), or nothing."""

    def __init__(self, total: int, *, enabled: bool, label: str):
        self.enabled = enabled
        self.total = total
        self.label = label
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                TextColumn("[progress.description]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("files, {task.fields[audio]} audio"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self._progress.__enter__()
            self._task = self._progress.add_task(self.label, total=self.total, audio="0 s")
        return self

    def advance(self, audio_s: float) -> None:
        if self._progress is not None:
            shown = f"{audio_s:.0f} s" if audio_s < 600 else f"{audio_s / 3600:.2f} h"
            self._progress.update(self._task, advance=1, audio=shown)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)
