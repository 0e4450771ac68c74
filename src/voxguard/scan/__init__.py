"""The scanner: verdicts and timelines for recordings, one file or thousands.

Typical use::

    import voxguard
    scanner = voxguard.load_detector()            # the default model; or a name / .onnx path
    result = scanner.scan("call.m4a")             # or scanner.scan(y, sr=16_000)
    result.verdict, result.probability            # REAL / FAKE / UNCERTAIN, file-level P(fake)
    for seg in result.timeline:                   # sliding segments, times of the original file
        print(seg.start_s, seg.end_s, seg.probability, seg.speech_fraction)
    result.to_dict()                              # JSON-safe

Modules, one concern each: :mod:`~voxguard.scan.scanner` (decoding, streaming, scoring),
:mod:`~voxguard.scan.timeline` (segment speech fractions, chunked scoring),
:mod:`~voxguard.scan.verdict` (thresholds, top-k aggregation, decision),
:mod:`~voxguard.scan.result` (result types), :mod:`~voxguard.scan.inputs` (files, folders,
globs, stdin), :mod:`~voxguard.scan.batch` (worker processes, summary),
:mod:`~voxguard.scan.output` (table/json/jsonl/csv) and :mod:`~voxguard.scan.plot` (PNG figures).
"""

from __future__ import annotations

from voxguard.scan.batch import Summary, scan_many, scan_one
from voxguard.scan.inputs import ScanInput, expand_inputs
from voxguard.scan.result import Envelope, ErrorInfo, ScanResult, Segment, Timeline, Verdict
from voxguard.scan.scanner import Scanner, load_detector

__all__ = [
    "Envelope",
    "ErrorInfo",
    "ScanInput",
    "ScanResult",
    "Scanner",
    "Segment",
    "Summary",
    "Timeline",
    "Verdict",
    "expand_inputs",
    "load_detector",
    "scan_many",
    "scan_one",
]
