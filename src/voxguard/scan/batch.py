"""Batch scanning: many inputs, one bad file never stops the rest, optional worker processes.

Each worker process loads the model once (pool initializer) and scans whole files; results come
back in input order. Workers are started with ``spawn`` (ONNX Runtime's thread pools must not
be forked) and run ONNX Runtime with one thread each: for these small models, scaling out over
files is faster than intra-op threads.
"""

from __future__ import annotations

import logging
import multiprocessing
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voxguard.errors import VoxguardError
from voxguard.scan.inputs import ScanInput
from voxguard.scan.result import ErrorInfo, ScanResult, Verdict
from voxguard.scan.scanner import Scanner

log = logging.getLogger(__name__)

_WORKER_SCANNER: Scanner | None = None


def scan_one(scanner: Scanner, item: ScanInput, plot: Path | None = None) -> ScanResult:
    """Scan one input; failures become a result with ``error`` (never raises for bad input)."""
    if item.error is not None:
        return scanner.failure(item.name, item.error)
    start = time.perf_counter()
    try:
        return scanner.scan(item.source, name=item.name, plot=plot)
    except VoxguardError as exc:
        return scanner.failure(item.name, exc, time.perf_counter() - start)
    except Exception as exc:  # a bug, but one file must not abort a batch of thousands
        log.exception("unexpected error while scanning %s", item.name)
        info = ErrorInfo("internal_error", f"unexpected {type(exc).__name__}: {exc} (please report this)")
        return scanner.failure(item.name, info, time.perf_counter() - start)


def _init_worker(params: dict[str, Any]) -> None:
    global _WORKER_SCANNER
    from voxguard.scan.distributed import tune_worker_malloc

    # Fresh spawned workers page-fault on every large array with glibc's default thresholds
    # (15-90 % more CPU measured on the 2-core VM); see tune_worker_malloc.
    tune_worker_malloc(force=True)
    _WORKER_SCANNER = Scanner(**params)


def _worker_scan(item: ScanInput, plot: Path | None) -> ScanResult:
    assert _WORKER_SCANNER is not None, "worker not initialised"
    return scan_one(_WORKER_SCANNER, item, plot)


def plot_paths(items: Sequence[ScanInput], plot_dir: Path) -> list[Path]:
    """One PNG path per input in ``plot_dir``, named after the file (``-2``, ``-3`` on name clashes)."""
    taken: set[str] = set()
    paths = []
    for item in items:
        stem = "stdin" if item.name == "-" else (Path(item.name).name or "input")
        name, i = f"{stem}.png", 1
        while name in taken:
            i += 1
            name = f"{stem}-{i}.png"
        taken.add(name)
        paths.append(plot_dir / name)
    return paths


def scan_many(
    scanner: Scanner,
    items: Sequence[ScanInput],
    *,
    workers: int = 1,
    plot_dir: str | Path | None = None,
) -> Iterator[ScanResult]:
    """Scan ``items``, yielding one result per input in input order.

    Parameters
    ----------
    scanner : Scanner
    items : sequence of ScanInput
        See :func:`voxguard.scan.inputs.expand_inputs`.
    workers : int
        Worker processes (1: scan in this process). Each worker loads the model once.
    plot_dir : path, optional
        Write one PNG per input there (created if missing).

    Yields
    ------
    ScanResult
        With ``error`` set for inputs that failed.
    """
    if workers < 1:
        raise ValueError("workers must be at least 1")
    plots: list[Path | None]
    if plot_dir is not None:
        Path(plot_dir).mkdir(parents=True, exist_ok=True)
        plots = list(plot_paths(items, Path(plot_dir)))
    else:
        plots = [None] * len(items)
    workers = min(workers, len(items))
    if workers <= 1:
        for item, plot in zip(items, plots, strict=True):
            yield scan_one(scanner, item, plot)
        return
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
        initargs=(scanner.get_params(),),
    )
    try:
        yield from pool.map(_worker_scan, items, plots, chunksize=1)
    finally:
        # Also reached when the consumer stops early (Ctrl-C, closed pipe): drop queued files.
        pool.shutdown(wait=True, cancel_futures=True)


@dataclass
class Summary:
    """Counts and throughput of a batch.

    Attributes
    ----------
    files : int
    verdicts : dict
        Count per verdict (``REAL``, ``FAKE``, ``UNCERTAIN``).
    failed : int
    audio_s : float
        Seconds of audio scanned successfully.
    wall_s : float
        Wall-clock time of the whole batch.
    """

    files: int = 0
    verdicts: dict[str, int] = field(default_factory=lambda: {v.value: 0 for v in Verdict})
    failed: int = 0
    audio_s: float = 0.0
    wall_s: float = 0.0

    def add(self, result: ScanResult) -> None:
        self.files += 1
        if result.error is not None or result.verdict is None:
            self.failed += 1
            return
        self.verdicts[result.verdict.value] += 1
        self.audio_s += result.duration_s or 0.0

    @property
    def x_real_time(self) -> float | None:
        return self.audio_s / self.wall_s if self.wall_s > 0 else None

    def to_dict(self) -> dict[str, Any]:
        xrt = self.x_real_time
        return {
            "files": self.files,
            **self.verdicts,
            "failed": self.failed,
            "audio_hours": round(self.audio_s / 3600.0, 4),
            "wall_s": round(self.wall_s, 3),
            "x_real_time": round(xrt, 1) if xrt is not None else None,
        }

    def text(self) -> str:
        counts = ", ".join(f"{n} {v}" for v, n in self.verdicts.items())
        xrt = self.x_real_time
        speed = f" ({xrt:,.0f}x real time)" if xrt is not None else ""
        return (
            f"{self.files} file{'s' if self.files != 1 else ''}: {counts}, {self.failed} failed; "
            f"{self.audio_s / 3600.0:.3f} h of audio in {self.wall_s:.1f} s{speed}"
        )
