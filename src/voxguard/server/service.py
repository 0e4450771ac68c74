"""The service's state (model, database, scan slots) and the scan itself, independent of HTTP.

Scans are CPU-bound and run in worker threads. A slot (a counter under a lock) is taken
before a scan starts and given back by the worker thread when the scan really ends, so
a scan that outlived its request timeout (threads cannot be killed) still counts against
``max_concurrent`` and the limit holds for the CPU, not just for open requests.

Each scan of a segmental model also keeps the segment feature vectors its model scored (a
per-scan shallow copy of the detector records them, no second feature extraction), stored with
the scan so that feedback can later retrain the model (``voxguard retrain``).
"""

from __future__ import annotations

import copy
import math
import threading
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.to_thread
import numpy as np

from voxguard.audio import iter_blocks, probe
from voxguard.errors import TooLongError
from voxguard.evaluate.retrain import fusion_vector_spec, vector_spec
from voxguard.scan import Scanner, ScanResult
from voxguard.server.errors import BadRequestError, BusyError, ScanTimeoutError
from voxguard.server.settings import Settings
from voxguard.server.storage import Storage
from voxguard.server.upload import Upload


@dataclass(frozen=True)
class ScanOptions:
    """Per-request scanner overrides (``None``: the loaded scanner's own)."""

    segment_s: float | None = None
    hop_s: float | None = None
    threshold: float | None = None
    watermark: bool | None = None  # decode the Perth watermark (None: the service's setting)
    operating_point: str | None = None  # a named threshold of the model card (``threshold`` wins)

    @property
    def is_default(self) -> bool:
        return self.segment_s is None and self.hop_s is None and self.threshold is None and self.operating_point is None


def _finite_list(a: np.ndarray) -> list[float | None]:
    return [float(x) if math.isfinite(x) else None for x in np.asarray(a, dtype=np.float64)]


def segment_features(result: ScanResult) -> dict[str, Any]:
    """Per-segment arrays at full precision, column-wise (what ``scans.features`` stores)."""
    tl = result.timeline
    return {
        "model": result.model,
        "start_s": _finite_list(tl.starts_s),
        "end_s": _finite_list(tl.ends_s),
        "probability": _finite_list(tl.proba),
        "score": _finite_list(tl.scores),
        "speech_fraction": _finite_list(tl.speech_fraction),
        "eligible": [bool(x) for x in tl.eligible],
    }


class _RecordingModel:
    """Wraps a detector's ONNX model and keeps every feature matrix it scores, in call order."""

    def __init__(self, model: Any) -> None:
        self._model = model
        self.rows: list[np.ndarray] = []

    def __getattr__(self, name: str) -> Any:  # card, name, calibrate, ... of the real model
        return getattr(self._model, name)

    def score(self, X: np.ndarray) -> np.ndarray:
        self.rows.append(np.asarray(X, dtype=np.float32))
        return self._model.score(X)

    def posteriors(self, X: np.ndarray) -> np.ndarray:  # a routed model's router
        self.rows.append(np.asarray(X, dtype=np.float32))
        return self._model.posteriors(X)


def _recorded_members(detector: Any) -> list[Any]:
    """The detectors whose scored vectors a scan keeps: a fusion's members (a routed model's
    experts and router), one per distinct vector spec, in member order (a routed model's experts
    mostly share their features, and one copy of the same rows is enough; a router with a view of
    its own, such as ``voxguard-v9``'s, adds its rows, which ``voxguard retrain`` needs to mix
    the retrained experts); a single detector itself."""
    members = list(getattr(detector, "members", None) or [])
    if not members:
        return [detector]
    chosen, seen = [], []
    for member in members:
        spec = vector_spec(member.model.card.features)
        if spec in seen:
            continue
        chosen.append(member)
        seen.append(spec)
    return chosen


def recording_scanner(scanner: Scanner) -> tuple[Scanner, list[_RecordingModel] | None]:
    """A per-scan copy of ``scanner`` that keeps the segment vectors its model scores.

    Only for segmental detectors scanning at their training segment length, or fusions of them
    (then the vectors of every member with its own features are kept, see
    :func:`_recorded_members`): those vectors are training rows for models with the same features
    (``voxguard retrain``). The copies are shallow, so the loaded ONNX sessions are shared and the
    scanner used by other threads is never modified.
    """
    detector = scanner.detector
    if getattr(detector, "segmental", None) is None or getattr(detector, "model", None) is None:
        return scanner, None
    if not math.isclose(scanner.segment_s, detector.segment_s):
        return scanner, None
    members = list(getattr(detector, "members", None) or [])
    # Frame models score crops of frame features: far larger than pooled vectors and closer to
    # a recording, so they are not kept (retraining such a model uses kept audio).
    if any(getattr(d, "frame_input", False) for d in [detector, *members]):
        return scanner, None
    det = copy.copy(detector)
    if members:
        # A fusion's own input is its members' scores: keep what its members score instead.
        det.members = [copy.copy(m) for m in members]  # type: ignore[attr-defined]
        kept = {id(m) for m in _recorded_members(detector)}
        recorders = []
        for original, member in zip(members, det.members, strict=True):  # type: ignore[attr-defined]
            if id(original) in kept:
                member.model = _RecordingModel(member.model)
                recorders.append(member.model)
    else:
        recorders = [_RecordingModel(detector.model)]
        det.model = recorders[0]  # type: ignore[attr-defined]
    scan_copy = copy.copy(scanner)
    scan_copy.detector = det
    return scan_copy, recorders


def recorded_vectors(recorders: list[_RecordingModel] | None, n_segments: int) -> np.ndarray | None:
    """The recorded vectors when they are one row per timeline segment, else ``None``.

    Whole-file and streamed scans both score each segment once, in timeline order; should a
    scoring path ever not, nothing is stored rather than rows misaligned with the timeline. A
    fusion's members' vectors are stored side by side, in member order (see
    :func:`stored_vector_spec` and :func:`_recorded_members`).
    """
    if not recorders or n_segments == 0:
        return None
    blocks = []
    for recorder in recorders:
        if not recorder.rows:
            return None
        X = np.vstack(recorder.rows)
        if X.shape[0] != n_segments or not np.all(np.isfinite(X)):
            return None
        blocks.append(X)
    return np.hstack(blocks)


def stored_vector_spec(detector: Any) -> dict[str, Any] | None:
    """The :func:`~voxguard.evaluate.retrain.vector_spec` of what :func:`recorded_vectors` returns."""
    if getattr(detector, "members", None):
        return fusion_vector_spec([m.model.card.features for m in _recorded_members(detector)])
    card = getattr(getattr(detector, "model", None), "card", None)
    return vector_spec(card.features) if card is not None else None


class _Slot:
    """One taken scan slot, released exactly once.

    The worker thread ``claim``s it when it starts and releases it when it ends; if the request
    gives up before the thread started (timeout while queued), ``abandon`` releases it and the
    thread, should it still start, does nothing.
    """

    def __init__(self, service: Service) -> None:
        self._service = service
        self._lock = threading.Lock()
        self._state = "queued"  # -> running -> done, or queued -> abandoned

    def claim(self) -> bool:
        with self._lock:
            if self._state != "queued":
                return False
            self._state = "running"
            return True

    def abandon(self) -> None:
        with self._lock:
            if self._state == "queued":
                self._state = "abandoned"
                self._service._release()

    def release(self) -> None:
        with self._lock:
            if self._state == "running":
                self._state = "done"
                self._service._release()


@dataclass
class Service:
    """What the app holds between requests."""

    settings: Settings
    scanner: Scanner
    storage: Storage
    _busy: int = field(default=0, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def running(self) -> int:
        """Scans running or queued now (including ones whose requests already timed out)."""
        return self._busy

    def has_free_slot(self) -> bool:
        return self._busy < self.settings.max_concurrent

    def _take_slot(self) -> _Slot:
        with self._lock:
            if self._busy >= self.settings.max_concurrent:
                raise BusyError(f"all {self.settings.max_concurrent} scan slots are busy; retry in a few seconds")
            self._busy += 1
        return _Slot(self)

    def _release(self) -> None:
        with self._lock:
            self._busy -= 1

    def _scanner_for(self, options: ScanOptions) -> Scanner:
        base = self.scanner
        watermark = self.settings.watermark if options.watermark is None else options.watermark
        if options.is_default and watermark == (base.watermark is not None):
            return base
        point = (options.operating_point or base.operating_point) if options.threshold is None else "eer"
        try:
            return Scanner(
                base.detector,
                segment_s=options.segment_s,
                hop_s=options.hop_s,
                threshold=options.threshold,
                operating_point=point,
                margin=base.margin,
                watermark=watermark,
                wide_band=base.companion or False,
            )
        except ValueError as exc:  # inconsistent parameters
            raise BadRequestError(str(exc)) from None

    def _check_duration(self, data: bytes) -> None:
        """Refuse recordings over ``max_duration_s`` before scoring them."""
        limit = self.settings.max_duration_s
        info = probe(data)
        if info.duration_s is not None:
            if info.duration_s > limit:
                raise TooLongError(f"{info.duration_s:.1f} s exceeds the limit of {limit:g} s")
        else:
            # No length in the header (some streamed codecs): decode once, counting, to find out.
            for _ in iter_blocks(data, sr=None, max_duration_s=limit):
                pass

    def scan_sync(self, upload: Upload, options: ScanOptions) -> dict[str, Any]:
        """Check, scan and store one upload (runs in a worker thread)."""
        self._check_duration(upload.data)
        scanner, recorder = self._scanner_for(options), None
        if self.settings.store_vectors:
            scanner, recorder = recording_scanner(scanner)
        result = scanner.scan(upload.data, name=upload.filename)
        if result.duration_s is not None and result.duration_s > self.settings.max_duration_s + 0.5:
            # The header understated the length; the scan is done, but the contract is the limit.
            raise TooLongError(f"{result.duration_s:.1f} s exceeds the limit of {self.settings.max_duration_s:g} s")
        out = result.to_dict()
        out["path"] = upload.filename
        sha = upload.sha256
        vectors = recorded_vectors(recorder, len(result.timeline.starts_s))
        stored = self.storage.add_scan(
            model=result.model,
            file_sha256=sha,
            filename=upload.filename,
            result=out,
            features=segment_features(result),
            audio=upload.data if self.settings.keep_audio else None,
            vectors=vectors,
            vectors_spec=stored_vector_spec(scanner.detector) if vectors is not None else None,
        )
        return {"id": stored["id"], "created": stored["created"], "sha256": sha, **out}

    async def scan(self, upload: Upload, options: ScanOptions) -> dict[str, Any]:
        """Scan off the event loop, within the concurrency limit and the request timeout."""
        slot = self._take_slot()

        def work() -> dict[str, Any] | None:
            if not slot.claim():
                return None  # the request already gave up
            try:
                return self.scan_sync(upload, options)
            finally:
                slot.release()

        try:
            with anyio.fail_after(self.settings.request_timeout_s):
                out = await anyio.to_thread.run_sync(work, abandon_on_cancel=True)
        except TimeoutError:
            raise ScanTimeoutError(
                f"the scan took longer than {self.settings.request_timeout_s:g} s; try a shorter recording"
            ) from None
        finally:
            slot.abandon()  # no-op unless the thread never started
        assert out is not None
        return out
