"""Scanning and feature extraction at scale: Dask clusters, inputs and outputs through fsspec.

Engines
-------
``local``
    Today's behaviour: this process, or ``workers`` spawned processes
    (:func:`voxguard.scan.batch.scan_many`).
``dask-local``
    A :class:`distributed.LocalCluster` of ``workers`` processes with one thread each, started
    and stopped around the batch.
``dask``
    An existing cluster (``scheduler="tcp://HOST:8786"``, or ``DASK_SCHEDULER_ADDRESS``), started
    by hand (``dask scheduler`` / ``dask worker``), on Kubernetes or through SLURM
    (``docs/performance.md``, "Running on a cluster").

Guarantees
----------
- Results come back **in input order** and equal those of the local engine (same scanner
  parameters, same code; only ``elapsed_s`` differs).
- One task per file. A file that cannot be scanned is a *result* with an ``error``, as locally.
  Tasks are pure (their key is a hash of the file reference and the parameters) and idempotent
  (they only read, and the feature cache writes atomically), so Dask may run one twice: when a
  worker dies mid-task, the scheduler re-runs the task elsewhere and no file is lost; an
  exception escaping a task (a network error while reading) is retried ``retries`` times, and
  only then reported as that file's error (``task_failed``). A file that kills every worker it
  lands on (``distributed.scheduler.allowed-failures``, default 3) becomes a ``worker_died``
  error instead of stopping the batch.
- Each worker process builds the scanner once per set of parameters (:func:`worker_scanner`),
  so the model is loaded once per worker, not once per file.
- At most ``window`` tasks are in flight at a time, so a manifest of millions of files costs
  neither the client nor the scheduler memory.

Inputs
------
Local paths, folders and globs behave as in :func:`voxguard.scan.inputs.expand_inputs`. URLs
(``file://``, ``memory://``, ``s3://``, ``gs://``, ``http(s)://``, any fsspec protocol) are
expanded with fsspec on the client (folders listed, globs matched) and read by the workers:
local files stay paths (decoded and streamed from disk), remote ones are fetched whole into the
worker's memory. ``memory://`` exists only in the process that wrote it, so it is read on the
client and shipped to the workers. A protocol whose fsspec backend is missing is a
:class:`MissingDependencyError` naming the package to install (``s3fs``, ``gcsfs``, ``aiohttp``).

Dask and fsspec are optional (``pip install "voxguard[dist]"``) and imported only when used.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import multiprocessing
import os
import posixpath
import sys
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import BrokenExecutor, CancelledError, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from itertools import islice, repeat
from pathlib import Path
from typing import Any

from voxguard.errors import InputNotFoundError, VoxguardError
from voxguard.scan.batch import plot_paths, scan_many, scan_one
from voxguard.scan.inputs import AUDIO_EXTENSIONS, NON_AUDIO_EXTENSIONS, ScanInput, expand_inputs
from voxguard.scan.plot import MissingDependencyError
from voxguard.scan.result import ErrorInfo, ScanResult
from voxguard.scan.scanner import Scanner

__all__ = [
    "ENGINES",
    "MissingDependencyError",
    "ParquetResultWriter",
    "UnsupportedURLError",
    "dask_client",
    "expand_sources",
    "extract_many",
    "feature_task",
    "is_url",
    "map_ordered",
    "open_output",
    "portable_params",
    "read_manifest",
    "read_source",
    "scan_batch",
    "scan_item",
    "scan_task",
    "tune_worker_malloc",
    "worker_scanner",
]

log = logging.getLogger(__name__)

#: Execution engines accepted by ``voxguard scan --engine`` and ``voxguard features --engine``.
ENGINES = ("local", "dask", "dask-local")

#: fsspec protocol -> the package that provides its backend (for the "please install" message).
BACKEND_PACKAGES = {
    "s3": "s3fs",
    "s3a": "s3fs",
    "gs": "gcsfs",
    "gcs": "gcsfs",
    "http": "aiohttp",
    "https": "aiohttp",
    "az": "adlfs",
    "abfs": "adlfs",
    "abfss": "adlfs",
    "hf": "huggingface_hub",
    "sftp": "paramiko",
    "ssh": "paramiko",
    "webhdfs": "requests",
}
# Filesystems that live in one process's memory: the workers cannot see them.
_PROCESS_LOCAL = frozenset({"memory"})
_GLOB_CHARS = frozenset("*?[")


class UnsupportedURLError(VoxguardError):
    """A URL whose protocol fsspec does not know."""

    code = "unsupported_url"


# ---------------------------------------------------------------------------------------------
# optional dependencies


def require_dask() -> Any:
    """Import ``distributed``, or raise :class:`MissingDependencyError` saying what to install."""
    try:
        import distributed
    except ImportError as exc:
        raise MissingDependencyError(
            'the dask engines need Dask: pip install "voxguard[dist]" (or pip install "dask[distributed]")'
        ) from exc
    return distributed


def require_fsspec() -> Any:
    """Import ``fsspec``, or raise :class:`MissingDependencyError` saying what to install."""
    try:
        import fsspec
    except ImportError as exc:
        raise MissingDependencyError('URLs need fsspec: pip install "voxguard[dist]" (or pip install fsspec)') from exc
    return fsspec


def require_pyarrow() -> Any:
    """Import ``pyarrow.parquet``, or raise :class:`MissingDependencyError` saying what to install."""
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise MissingDependencyError("Parquet output needs pyarrow: pip install pyarrow") from exc
    return pq


# ---------------------------------------------------------------------------------------------
# fsspec: URLs, listing, reading, writing


def is_url(arg: str) -> bool:
    """Whether ``arg`` is a URL (``protocol://...``) rather than a local path or ``-``."""
    head, sep, _ = arg.partition("://")
    return bool(sep) and head.replace("+", "").replace("-", "").replace(".", "").isalnum()


def _protocol(url: str) -> str:
    return url.partition("://")[0].lower()


def url_to_fs(url: str) -> tuple[Any, str]:
    """The fsspec filesystem and path of ``url``.

    Raises
    ------
    MissingDependencyError
        fsspec, or the backend of the URL's protocol, is not installed (the message names the package).
    UnsupportedURLError
        fsspec does not know the protocol.
    """
    fsspec = require_fsspec()
    protocol = _protocol(url)
    try:
        fsspec.get_filesystem_class(protocol)
    except ImportError as exc:
        package = BACKEND_PACKAGES.get(protocol)
        hint = f"pip install {package}" if package else str(exc)  # fsspec's own hint otherwise
        raise MissingDependencyError(f"{protocol}:// URLs need their fsspec backend: {hint}", path=url) from None
    except ValueError:
        raise UnsupportedURLError(f"unknown protocol {protocol}://", path=url) from None
    from fsspec.core import url_to_fs as _url_to_fs

    return _url_to_fs(url)


def _is_local(fs: Any) -> bool:
    protocols = fs.protocol if isinstance(fs.protocol, tuple | list) else (fs.protocol,)
    return "file" in protocols or "local" in protocols


def _keep(path: str) -> bool:
    """Folder listings keep audio extensions, skip clearly non-audio ones, try the rest (as locally)."""
    suffix = posixpath.splitext(path)[1].lower()
    return suffix in AUDIO_EXTENSIONS or suffix not in NON_AUDIO_EXTENSIONS


def _list_url_dir(fs: Any, root: str, recursive: bool) -> list[str]:
    listing = fs.find if recursive else lambda r: [e["name"] for e in fs.ls(r, detail=True) if e["type"] == "file"]
    found = listing(root)
    root_s = root.rstrip("/") + "/"
    out = []
    for p in found:
        rel = p[len(root_s) :] if p.startswith(root_s) else posixpath.basename(p)
        if any(part.startswith(".") for part in rel.split("/")) or not _keep(p):
            continue
        out.append(p)
    return sorted(out)


def _expand_url(url: str, recursive: bool) -> list[ScanInput]:
    fs, path = url_to_fs(url)
    if _is_local(fs):
        # Local files get exactly the local walk (magic-byte sniffing included), named as URLs.
        return [
            ScanInput(fs.unstrip_protocol(i.name) if i.error is None else url, i.source, i.error)
            for i in expand_inputs([path], recursive=recursive)
        ]
    read_here = _protocol(url) in _PROCESS_LOCAL

    def item(p: str) -> ScanInput:
        name = fs.unstrip_protocol(p)
        if not read_here:
            return ScanInput(name, name)
        try:
            return ScanInput(name, fs.cat_file(p))
        except FileNotFoundError:
            return ScanInput(name, name, ErrorInfo("not_found", "no such file"))

    if any(ch in _GLOB_CHARS for ch in path) and not fs.exists(path):
        matches = sorted(fs.glob(path))
        if not matches:
            return [ScanInput(url, url, ErrorInfo("not_found", "no file matches this pattern"))]
        out: list[ScanInput] = []
        for m in matches:
            out += [item(p) for p in _list_url_dir(fs, m, recursive)] if fs.isdir(m) else [item(m)]
        return out
    if fs.isdir(path):
        return [item(p) for p in _list_url_dir(fs, path, recursive)]
    return [item(path)]


def read_manifest(manifest: str | os.PathLike[str]) -> list[str]:
    """The inputs listed in a manifest: a CSV with a ``path`` column, or one path or URL per line.

    Blank lines and lines starting with ``#`` are skipped; relative entries are resolved against
    the manifest's folder (or URL prefix), as :func:`voxguard.datasets.load_manifest` does.

    Raises
    ------
    InputNotFoundError
        The manifest cannot be read.
    UnsupportedURLError
        A CSV manifest without a ``path`` column.
    """
    name = os.fspath(manifest)
    try:
        if is_url(name):
            fs, path = url_to_fs(name)
            text = fs.cat_file(path).decode("utf-8-sig")
        else:
            text = Path(name).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputNotFoundError(f"cannot read the manifest: {exc}", path=name) from None
    if name.lower().endswith((".csv", ".tsv")):
        rows = csv.DictReader(io.StringIO(text), delimiter="\t" if name.lower().endswith(".tsv") else ",")
        if rows.fieldnames is None or "path" not in rows.fieldnames:
            raise UnsupportedURLError("a CSV manifest needs a 'path' column", path=name)
        entries = [(row.get("path") or "").strip() for row in rows]
    else:
        entries = [line.strip() for line in text.splitlines()]
    entries = [e for e in entries if e and not e.startswith("#")]
    base = name.rsplit("/", 1)[0] if is_url(name) else str(Path(name).resolve().parent)
    out = []
    for e in entries:
        if is_url(e) or e == "-" or os.path.isabs(e):
            out.append(e)
        else:
            out.append(f"{base}/{e}" if is_url(name) else os.path.normpath(os.path.join(base, e)))
    return out


def expand_sources(
    args: Iterable[str],
    *,
    recursive: bool = False,
    manifest: str | os.PathLike[str] | None = None,
    read_stdin: Callable[[], bytes] | None = None,
) -> list[ScanInput]:
    """Expand paths, folders, globs, ``-``, URLs and a manifest into inputs, in order, without duplicates.

    Parameters
    ----------
    args : iterable of str
        As for :func:`~voxguard.scan.inputs.expand_inputs`, plus fsspec URLs.
    recursive : bool
        Walk folders (local and remote) recursively.
    manifest : path or URL, optional
        A list of further inputs (:func:`read_manifest`), appended after ``args``.
    read_stdin : callable, optional
        Returns the bytes of standard input.

    Returns
    -------
    list of ScanInput

    Raises
    ------
    MissingDependencyError, UnsupportedURLError
        A URL cannot be handled here (missing fsspec backend, unknown protocol).
    InputNotFoundError
        The manifest cannot be read.
    """
    all_args = list(args) + (read_manifest(manifest) if manifest is not None else [])
    items: list[ScanInput] = []
    seen: set[str] = set()
    for arg in all_args:
        found = (
            _expand_url(arg, recursive)
            if is_url(arg)
            else expand_inputs([arg], recursive=recursive, read_stdin=read_stdin)
        )
        for it in found:
            if it.error is not None or (isinstance(it.source, bytes) and not is_url(it.name)):
                items.append(it)  # failures and standard input are never merged
                continue
            key = it.name if is_url(it.name) else os.path.normpath(it.name)
            if key not in seen:
                seen.add(key)
                items.append(it)
    return items


def read_source(source: str) -> str | bytes:
    """What the decoders get for an input reference: local files stay paths, remote files are fetched.

    Raises
    ------
    InputNotFoundError
        The remote file does not exist, is a folder, or may not be read.
    MissingDependencyError
        The protocol's fsspec backend is not installed on this machine.

    Other exceptions (network errors, time-outs) propagate: under Dask they are retried.
    """
    if not is_url(source):
        return source
    fs, path = url_to_fs(source)
    if _is_local(fs):
        return path  # decoded (and, when long, streamed) straight from disk, as in local mode
    try:
        return fs.cat_file(path)
    except FileNotFoundError:
        raise InputNotFoundError("no such file", path=source) from None
    except (IsADirectoryError, NotADirectoryError):
        raise InputNotFoundError("is a directory, not an audio file", path=source) from None
    except PermissionError as exc:
        raise InputNotFoundError(f"cannot read the file: {exc}", path=source) from None


def open_output(target: str | os.PathLike[str], mode: str = "w") -> Any:
    """Open a local path or an fsspec URL for writing (``"w"`` text, ``"wb"`` binary); the caller closes it.

    Missing parent folders are created (a no-op on object stores).
    """
    name = os.fspath(target)
    if not is_url(name):
        Path(name).parent.mkdir(parents=True, exist_ok=True)
        return open(name, mode, **({"newline": ""} if "b" not in mode else {}))
    fs, path = url_to_fs(name)
    if _is_local(fs) or _protocol(name) in _PROCESS_LOCAL:
        fs.makedirs(posixpath.dirname(path), exist_ok=True)
    if "b" in mode:
        return fs.open(path, mode)
    return io.TextIOWrapper(fs.open(path, "wb"), encoding="utf-8", newline="")


# ---------------------------------------------------------------------------------------------
# ordered execution on a pool or a Dask client


def _task_failed(fut: Any, exc: BaseException) -> bool:
    """Whether ``exc`` came from the task itself (a per-file failure) rather than the executor."""
    status = getattr(fut, "status", None)
    if status is not None:  # a Dask future: "error" covers raised exceptions and KilledWorker
        return status == "error"
    return not isinstance(exc, BrokenExecutor | CancelledError)


def _ordered(
    submit: Callable[[tuple[Any, ...]], Any],
    arg_tuples: Iterable[tuple[Any, ...]],
    window: int,
    on_error: Callable[[tuple[Any, ...], BaseException], Any] | None,
) -> Iterator[Any]:
    todo = iter(arg_tuples)
    pending: deque[tuple[Any, tuple[Any, ...]]] = deque((submit(a), a) for a in islice(todo, window))
    try:
        while pending:
            fut, args = pending.popleft()
            try:
                value = fut.result()
            except Exception as exc:
                if on_error is None or not _task_failed(fut, exc):
                    raise
                value = on_error(args, exc)
            if hasattr(fut, "release"):
                fut.release()
            # Refill before yielding, so the workers stay busy while the caller writes.
            pending.extend((submit(a), a) for a in islice(todo, 1))
            yield value
    finally:
        for fut, _ in pending:  # the consumer stopped early (Ctrl-C, closed pipe): drop the rest
            fut.cancel()


def map_ordered(
    client: Any,
    fn: Callable[..., Any],
    arg_tuples: Iterable[tuple[Any, ...]],
    *,
    retries: int = 2,
    window: int | None = None,
    on_error: Callable[[tuple[Any, ...], BaseException], Any] | None = None,
) -> Iterator[Any]:
    """``fn(*args)`` for every tuple on a Dask cluster, yielded in input order.

    Parameters
    ----------
    client : distributed.Client
    fn : callable
        Must be importable on the workers (or a closure, which Dask pickles by value).
    arg_tuples : iterable of tuple
        Consumed lazily: at most ``window`` tasks are in flight.
    retries : int
        Times Dask re-runs a task that raised. A task whose worker *died* is re-run by the
        scheduler anyway (up to ``distributed.scheduler.allowed-failures`` times).
    window : int, optional
        Tasks in flight (default: 4 per worker thread, at least 32).
    on_error : callable, optional
        ``on_error(args, exc)`` turns a task that still failed (after its retries, or with
        ``KilledWorker``) into a value; without it the exception propagates. Losing the
        connection to the scheduler always propagates.

    Yields
    ------
    object
        ``fn(*args)`` (or ``on_error``'s value), in the order of ``arg_tuples``.
    """
    if window is None:
        threads = sum(client.nthreads().values())
        window = max(32, 4 * threads)

    def submit(args: tuple[Any, ...]) -> Any:
        # pure: the key is a hash of fn and args, so a re-run after a lost worker is the same task.
        return client.submit(fn, *args, pure=True, retries=retries)

    return _ordered(submit, arg_tuples, window, on_error)


def _pool_map(
    fn: Callable[..., Any],
    arg_tuples: Iterable[tuple[Any, ...]],
    workers: int,
    on_error: Callable[[tuple[Any, ...], BaseException], Any] | None,
) -> Iterator[Any]:
    """``fn(*args)`` in this process (``workers == 1``) or a spawned process pool, in order."""
    if workers <= 1:
        for args in arg_tuples:
            try:
                yield fn(*args)
            except Exception as exc:
                if on_error is None:
                    raise
                yield on_error(args, exc)
        return
    # spawn: ONNX Runtime's and BLAS's thread pools must not be forked.
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        yield from _ordered(lambda a: pool.submit(fn, *a), arg_tuples, 4 * workers, on_error)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


@contextmanager
def dask_client(engine: str, *, scheduler: str | None = None, workers: int = 1) -> Iterator[Any]:
    """A Dask client for ``engine``: a new local cluster (``dask-local``) or an existing one (``dask``).

    Parameters
    ----------
    engine : {"dask", "dask-local"}
    scheduler : str, optional
        ``tcp://HOST:8786`` for ``dask`` (default ``$DASK_SCHEDULER_ADDRESS``).
    workers : int
        Worker processes of a ``dask-local`` cluster (one thread each: ONNX Runtime and BLAS are
        single-threaded here, so processes, not threads, are the unit of parallelism).

    Raises
    ------
    MissingDependencyError
        Dask is not installed.
    ValueError
        Unknown engine, or ``dask`` without a scheduler address.
    OSError
        The scheduler cannot be reached.
    """
    require_dask()
    from distributed import Client, LocalCluster

    if engine == "dask":
        address = scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS")
        if not address:
            raise ValueError("--engine dask needs --scheduler tcp://HOST:8786 (or DASK_SCHEDULER_ADDRESS)")
        # Connect time-out: dask's distributed.comm.timeouts.connect (30 s unless configured).
        with Client(address) as client:
            yield client
    elif engine == "dask-local":
        if workers < 1:
            raise ValueError("workers must be at least 1")
        with (
            LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.ERROR,
            ) as cluster,
            Client(cluster) as client,
        ):
            yield client
    else:
        raise ValueError(f"not a dask engine: {engine!r} (choose from {', '.join(ENGINES[1:])})")


# ---------------------------------------------------------------------------------------------
# scanning

_SCANNERS: dict[str, Scanner] = {}
_SCANNERS_LOCK = threading.Lock()
_MAX_SCANNERS = 4
_MALLOC_TUNED = False


def tune_worker_malloc(force: bool = False) -> bool:
    """Undo the Dask nanny's ``MALLOC_TRIM_THRESHOLD_`` in this process (glibc only; once).

    The nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536`` to hand freed memory back to
    the OS. That also switches off glibc's adaptive mmap threshold, so every array over 128 KiB
    is a fresh ``mmap`` with page faults on first touch: measured on the 2-core VM, a scan ran
    **1.9x slower** under that variable (40 clips, 1.9 s instead of 1.0 s, in-process). Setting the
    mmap threshold to 32 MiB and the trim threshold to 64 MiB brings the speed back (1.0 s) while
    still returning memory beyond 64 MiB of free heap.

    Fresh worker processes without the variable fault too: in a spawned ``--workers 2`` pool the
    default glibc settings cost ~125,000 minor page faults per 40 clips (none once tuned) and
    15-90 % more CPU time than tuned workers on the 2-core VM (two measurements, shared machine);
    ``force=True`` applies the same thresholds there.

    Parameters
    ----------
    force : bool
        Tune even without ``MALLOC_TRIM_THRESHOLD_`` in the environment.

    Returns
    -------
    bool
        Whether the thresholds were changed (``False`` without the variable, or off glibc).
    """
    global _MALLOC_TUNED
    if _MALLOC_TUNED or not (force or "MALLOC_TRIM_THRESHOLD_" in os.environ) or not sys.platform.startswith("linux"):
        return False
    _MALLOC_TUNED = True
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
        return bool(libc.mallopt(m_mmap_threshold, 32 << 20)) and bool(libc.mallopt(m_trim_threshold, 64 << 20))
    except (OSError, AttributeError):  # not glibc (musl, ...): leave malloc alone
        return False


def portable_params(scanner: Scanner) -> dict[str, Any]:
    """:meth:`Scanner.get_params` with a shipped model given by name, so workers resolve it in their
    own installation (a model file of one's own must be at the same path on every worker)."""
    from voxguard.models.registry import ZOO_DIR

    params = scanner.get_params()
    path = Path(params["detector"])
    if path.parent.resolve() == ZOO_DIR.resolve():
        params["detector"] = path.name.removesuffix(".onnx")
    return params


def worker_scanner(params: dict[str, Any]) -> Scanner:
    """The scanner for ``params`` in this process, built (and its model loaded) on first use."""
    tune_worker_malloc()
    key = json.dumps(params, sort_keys=True, default=str)
    with _SCANNERS_LOCK:  # a worker with several threads must not load the model twice
        scanner = _SCANNERS.get(key)
        if scanner is None:
            if len(_SCANNERS) >= _MAX_SCANNERS:
                _SCANNERS.pop(next(iter(_SCANNERS)))
            scanner = _SCANNERS[key] = Scanner(**params)
    return scanner


def scan_item(scanner: Scanner, item: ScanInput, plot: Path | None = None) -> ScanResult:
    """:func:`~voxguard.scan.batch.scan_one`, after fetching a URL input (local files stay paths).

    A missing or unreadable remote file is a result with an ``error``; transient read errors raise
    (so that Dask retries them).
    """
    if item.error is None and isinstance(item.source, str) and is_url(item.source):
        try:
            item = ScanInput(item.name, read_source(item.source))
        except VoxguardError as exc:
            return scanner.failure(item.name, exc)
    return scan_one(scanner, item, plot)


def scan_task(item: ScanInput, params: dict[str, Any], plot: Path | None = None) -> ScanResult:
    """One file on a worker: the per-process scanner for ``params``, then :func:`scan_item`."""
    return scan_item(worker_scanner(params), item, plot)


def _failed_result(scanner: Scanner, retries: int) -> Callable[[tuple[Any, ...], BaseException], ScanResult]:
    def on_error(args: tuple[Any, ...], exc: BaseException) -> ScanResult:
        item: ScanInput = args[0]
        if type(exc).__name__ == "KilledWorker":
            info = ErrorInfo("worker_died", f"the file's task killed its worker repeatedly: {exc}")
        else:
            info = ErrorInfo("task_failed", f"{type(exc).__name__}: {exc} (after {retries} retries)")
        log.warning("%s: %s", item.name, info.message)
        return scanner.failure(item.name, info)

    return on_error


def scan_batch(
    scanner: Scanner,
    items: Sequence[ScanInput],
    *,
    engine: str = "local",
    workers: int = 1,
    scheduler: str | None = None,
    client: Any = None,
    retries: int = 2,
    window: int | None = None,
    plot_dir: str | Path | None = None,
) -> Iterator[ScanResult]:
    """Scan ``items`` with any engine, yielding one result per input in input order.

    Parameters
    ----------
    scanner : Scanner
        Its parameters are sent to the workers, which build their own copy once.
    items : sequence of ScanInput
        From :func:`expand_sources` (or :func:`~voxguard.scan.inputs.expand_inputs`).
    engine : {"local", "dask", "dask-local"}
    workers : int
        Processes for ``local`` and ``dask-local``.
    scheduler : str, optional
        Scheduler address for ``dask``.
    client : distributed.Client, optional
        Use this client (any engine but ``local``) instead of connecting or starting a cluster.
    retries : int
        Dask retries of a task that raised.
    window : int, optional
        Dask tasks in flight (see :func:`map_ordered`).
    plot_dir : path, optional
        One PNG per input (``local`` engine only: remote workers cannot write to this machine).

    Yields
    ------
    ScanResult
        With ``error`` set for inputs that failed; identical to the local engine's apart from
        ``elapsed_s``.

    Raises
    ------
    ValueError
        Unknown engine, ``workers < 1``, or ``plot_dir`` with a dask engine.
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r} (choose from {', '.join(ENGINES)})")
    if workers < 1:
        raise ValueError("workers must be at least 1")
    if engine == "local":
        if not any(isinstance(i.source, str) and is_url(i.source) for i in items):
            yield from scan_many(scanner, items, workers=workers, plot_dir=plot_dir)
            return
        plots: list[Path | None] = [None] * len(items)
        if plot_dir is not None:
            Path(plot_dir).mkdir(parents=True, exist_ok=True)
            plots = list(plot_paths(items, Path(plot_dir)))
        if min(workers, len(items)) <= 1:
            # scan_item only raises for transient read errors: without Dask there is no retry,
            # so they become this file's error, as they would after Dask's retries.
            args = zip(items, plots, strict=True)
            yield from _pool_map(partial(scan_item, scanner), args, 1, _failed_result(scanner, 0))
            return
        args = zip(items, repeat(portable_params(scanner)), plots, strict=False)
        yield from _pool_map(scan_task, args, min(workers, len(items)), _failed_result(scanner, 0))
        return
    if plot_dir is not None:
        raise ValueError("--plot needs --engine local (dask workers may not share this machine's disk)")
    params = portable_params(scanner)
    on_error = _failed_result(scanner, retries)
    work = ((i, params) for i in items)
    if client is not None:
        yield from map_ordered(client, scan_task, work, retries=retries, window=window, on_error=on_error)
    else:
        yield from _on_own_client(engine, scheduler, workers, scan_task, work, retries, window, on_error)


# ---------------------------------------------------------------------------------------------
# feature extraction


def feature_task(
    name: str, source: str | bytes, config: Any, cache_root: str | None, keep_table: bool = True
) -> dict[str, Any]:
    """Features of one input on a worker, through the content-hash cache of :mod:`voxguard.datasets.cache`.

    Exactly what :func:`voxguard.datasets.extract_features` computes for a file (the canonical
    preprocessing of ``config``, then its feature kind), and the same cache entries: the key is
    the hash of the file's bytes, so a file read from ``s3://`` hits the entry its local copy made.

    Parameters
    ----------
    name : str
        How the input is reported.
    source : str or bytes
        A path, a URL (fetched with :func:`read_source`) or the file's bytes.
    config : FeatureConfig
    cache_root : str or None
        Cache directory, shared by the workers (``None``: no cache).
    keep_table : bool
        Return the feature table (``False``: only fill the cache and report shapes).

    Returns
    -------
    dict
        ``path``, ``ok``, ``cached``, ``rows``, ``columns``, ``input_duration_s``, ``duration_s``,
        ``speech_s``, ``error`` (``{"code", "message"}`` or ``None``) and, with ``keep_table``, ``table``.
    """
    from voxguard.datasets.cache import _work

    tune_worker_malloc()
    try:
        src = read_source(source) if isinstance(source, str) else source
    except VoxguardError as exc:
        out: dict[str, Any] = {"ok": False, "code": exc.code, "message": exc.message}
    else:
        if isinstance(src, bytes):
            # The cache keys on a file's bytes; a temporary copy gives the same key and decoding.
            suffix = posixpath.splitext(name)[1][:16]
            with tempfile.TemporaryDirectory(prefix="voxguard-") as tmp:
                path = os.path.join(tmp, f"input{suffix}")
                with open(path, "wb") as fh:
                    fh.write(src)
                out = _work(path, config, cache_root)
        else:
            out = _work(src, config, cache_root)
    return _feature_record(name, out, keep_table)


def _feature_record(name: str, out: dict[str, Any], keep_table: bool) -> dict[str, Any]:
    if not out["ok"]:
        return {"path": name, "ok": False, "error": {"code": out["code"], "message": out["message"]}}
    table, meta = out["table"], out["meta"]
    rec: dict[str, Any] = {
        "path": name,
        "ok": True,
        "cached": bool(out["cached"]),
        "rows": int(table.values.shape[0]),
        "columns": int(table.values.shape[1]) if table.values.ndim == 2 else 0,
        **{k: meta.get(k) for k in ("input_duration_s", "duration_s", "speech_s")},
        "error": None,
    }
    if keep_table:
        rec["table"] = table
    return rec


def extract_many(
    items: Sequence[ScanInput],
    kind: str = "lfcc",
    *,
    preprocess_config: Any = None,
    engine: str = "local",
    workers: int = 1,
    scheduler: str | None = None,
    client: Any = None,
    cache_dir: str | os.PathLike[str] | None = None,
    use_cache: bool = True,
    keep_tables: bool = True,
    retries: int = 2,
    window: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Features of many inputs with any engine, one record per input in input order.

    Parameters
    ----------
    items : sequence of ScanInput
        From :func:`expand_sources`.
    kind : str
        A feature kind (:data:`voxguard.features.registry.FEATURE_KINDS`).
    preprocess_config : PreprocessConfig, optional
        The canonical preprocessing by default.
    engine, workers, scheduler, client, retries, window
        As for :func:`scan_batch`.
    cache_dir : path, optional
        The feature cache (default :func:`voxguard.datasets.cache.default_cache_dir`); with a remote
        cluster it must be a folder every worker sees at the same path (a shared filesystem).
    use_cache : bool
        ``False`` neither reads nor writes the cache.
    keep_tables : bool
        Send each feature table back (``False``: the workers only fill the cache).

    Yields
    ------
    dict
        :func:`feature_task` records; a failed file has ``ok`` false and an ``error``.

    Raises
    ------
    FeatureError
        Unknown feature kind.
    ValueError
        Unknown engine or ``workers < 1``.
    """
    from voxguard.audio import PreprocessConfig
    from voxguard.datasets.cache import FeatureConfig, default_cache_dir
    from voxguard.errors import FeatureError
    from voxguard.features.registry import FEATURE_KINDS

    if kind not in FEATURE_KINDS:
        raise FeatureError(f"unknown feature kind {kind!r}; choose from {', '.join(FEATURE_KINDS)}")
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r} (choose from {', '.join(ENGINES)})")
    if workers < 1:
        raise ValueError("workers must be at least 1")
    config = FeatureConfig(kind=kind, preprocess=preprocess_config or PreprocessConfig())
    root = None
    if use_cache:
        root = str(Path(cache_dir).expanduser().resolve() if cache_dir is not None else default_cache_dir())

    def on_error(args: tuple[Any, ...], exc: BaseException) -> dict[str, Any]:
        code = "worker_died" if type(exc).__name__ == "KilledWorker" else "task_failed"
        return {"path": args[0], "ok": False, "error": {"code": code, "message": f"{type(exc).__name__}: {exc}"}}

    # Inputs already known to fail (a pattern matching nothing) never go to the workers.
    work = ((it.name, it.source, config, root, keep_tables) for it in items if it.error is None)
    n_work = sum(it.error is None for it in items)
    if engine == "local":
        computed = _pool_map(feature_task, work, min(workers, max(1, n_work)), on_error)
    elif client is not None:
        computed = map_ordered(client, feature_task, work, retries=retries, window=window, on_error=on_error)
    else:
        computed = _on_own_client(engine, scheduler, workers, feature_task, work, retries, window, on_error)
    try:
        for it in items:
            if it.error is not None:
                yield {"path": it.name, "ok": False, "error": it.error.to_dict()}
            else:
                yield next(computed)
    finally:
        computed.close()


def _on_own_client(
    engine: str,
    scheduler: str | None,
    workers: int,
    fn: Callable[..., Any],
    work: Iterable[tuple[Any, ...]],
    retries: int,
    window: int | None,
    on_error: Callable[[tuple[Any, ...], BaseException], Any],
) -> Iterator[Any]:
    """:func:`map_ordered` on a client opened for the duration of the iteration."""
    with dask_client(engine, scheduler=scheduler, workers=workers) as client:
        yield from map_ordered(client, fn, work, retries=retries, window=window, on_error=on_error)


# ---------------------------------------------------------------------------------------------
# Parquet output


@dataclass
class ParquetResultWriter:
    """Write scan results as Parquet (one row per file, the timeline as a list of structs).

    Rows are written in row groups of ``row_group`` results, so memory stays bounded.

    Parameters
    ----------
    target : path or URL
    meta : dict
        Stored as the file's key-value metadata (``voxguard`` key, JSON).
    row_group : int
    """

    target: str
    meta: dict[str, Any]
    row_group: int = 1000

    def __post_init__(self) -> None:
        pq = require_pyarrow()
        import pyarrow as pa

        self._pa = pa
        seg = pa.struct(
            [
                ("start_s", pa.float64()),
                ("end_s", pa.float64()),
                ("probability", pa.float64()),
                ("score", pa.float64()),
                ("speech_fraction", pa.float64()),
                ("eligible", pa.bool_()),
                ("watermark", pa.float64()),
                ("wide_band", pa.float64()),
            ]
        )
        f64, s = pa.float64(), pa.string()
        cols = [("path", s), ("verdict", s), ("probability", f64), ("score", f64), ("threshold", f64)]
        cols += [("operating_point", s), ("margin", f64), ("model", s), ("duration_s", f64), ("speech_s", f64)]
        cols += [("segment_s", f64), ("hop_s", f64), ("mode", s), ("reason", s), ("error_code", s)]
        cols += [("error_message", s), ("elapsed_s", f64), ("watermark_confidence", f64)]
        cols += [("watermark_detected", pa.bool_()), ("wide_band_used", pa.bool_()), ("timeline", pa.list_(seg))]
        self.schema = pa.schema(cols, metadata={"voxguard": json.dumps(self.meta)})
        self._stream = open_output(self.target, "wb")
        self._writer = pq.ParquetWriter(self._stream, self.schema)
        self._rows: list[dict[str, Any]] = []

    def write(self, result: ScanResult) -> None:
        d = result.to_dict()
        err = d.pop("error") or {}
        d.pop("plot", None)
        d["error_code"], d["error_message"] = err.get("code"), err.get("message")
        mark = d.pop("watermark", None) or {}  # null unless the scan checked for a watermark
        d["watermark_confidence"], d["watermark_detected"] = mark.get("confidence"), mark.get("detected")
        d["wide_band_used"] = (d.pop("wide_band", None) or {}).get("used")  # null without a companion
        self._rows.append(d)
        if len(self._rows) >= self.row_group:
            self._flush()

    def _flush(self) -> None:
        if self._rows:
            self._writer.write_table(self._pa.Table.from_pylist(self._rows, schema=self.schema))
            self._rows = []

    def close(self, summary: Any = None) -> None:
        """Write the last rows and close the file (``summary`` is accepted for symmetry, unused)."""
        self._flush()
        self._writer.close()
        self._stream.close()
