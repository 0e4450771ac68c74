"""Writing scan results: ``table`` (for people), ``json``, ``jsonl`` and ``csv`` (for programs).

- ``json``: one document ``{"voxguard_version", "model", "threshold", "operating_point",
  "results": [...], "summary": {...}}``; each result is :meth:`ScanResult.to_dict` with its
  timeline.
- ``jsonl``: one result object per line (with timeline), written as each file finishes.
- ``csv``: one row per file, without the timeline (:data:`CSV_COLUMNS`), written as each file
  finishes; the most suspicious segment is given by its bounds.
- ``table``: a rich table, printed once the batch is done.

Missing numbers are ``null`` in JSON and empty cells in CSV, never NaN.
"""

from __future__ import annotations

import csv
import json
import math
from enum import StrEnum
from typing import Any, TextIO

from voxguard.scan.batch import Summary
from voxguard.scan.result import ScanResult, Verdict


class OutputFormat(StrEnum):
    table = "table"
    json = "json"
    jsonl = "jsonl"
    csv = "csv"


CSV_COLUMNS = (
    "path",
    "verdict",
    "probability",
    "score",
    "threshold",
    "operating_point",
    "margin",
    "model",
    "duration_s",
    "speech_s",
    "n_segments",
    "top_segment_start_s",
    "top_segment_end_s",
    "top_segment_probability",
    "watermark_confidence",
    "watermark_detected",
    "wide_band_used",
    "reason",
    "error_code",
    "error_message",
)

_VERDICT_STYLE = {Verdict.REAL: "green", Verdict.FAKE: "bold red", Verdict.UNCERTAIN: "yellow"}


def csv_row(result: ScanResult) -> dict[str, Any]:
    """The flat CSV record of a result (``None`` becomes an empty cell)."""
    d = result.to_dict(timeline=False)
    top = result.timeline.most_suspicious()
    top_d = top.to_dict() if top is not None else {}
    err = d["error"] or {}
    mark = d.get("watermark") or {}  # empty cells unless the scan checked for a watermark
    return {
        **{k: d[k] for k in CSV_COLUMNS if k in d},
        "n_segments": len(result.timeline) if result.ok else None,
        "top_segment_start_s": top_d.get("start_s"),
        "top_segment_end_s": top_d.get("end_s"),
        "top_segment_probability": top_d.get("probability"),
        "watermark_confidence": mark.get("confidence"),
        "watermark_detected": mark.get("detected"),
        # Empty unless the model has a wide-band companion.
        "wide_band_used": (d.get("wide_band") or {}).get("used"),
        "error_code": err.get("code"),
        "error_message": err.get("message"),
    }


def _fmt_p(p: float | None) -> str:
    return f"{p:.2f}" if p is not None and math.isfinite(p) else "—"


def _fmt_s(x: float | None) -> str:
    if x is None:
        return "—"
    if x >= 3600:
        return f"{x / 3600:.2f} h"
    if x >= 600:
        return f"{x / 60:.1f} min"
    return f"{x:.1f} s"


class ResultWriter:
    """Write results in one format to a text stream.

    Parameters
    ----------
    fmt : OutputFormat or str
    stream : text file object
    meta : dict
        ``model``, ``threshold``, ``operating_point``, ``margin``, ``segment_s``, ``hop_s`` for the
        JSON header and the table caption.
    """

    def __init__(self, fmt: OutputFormat | str, stream: TextIO, meta: dict[str, Any]) -> None:
        self.fmt = OutputFormat(fmt)
        self.stream = stream
        self.meta = meta
        self._results: list[ScanResult] = []
        self._csv: csv.DictWriter | None = None
        if self.fmt is OutputFormat.csv:
            self._csv = csv.DictWriter(stream, fieldnames=CSV_COLUMNS, lineterminator="\n")
            self._csv.writeheader()

    def write(self, result: ScanResult) -> None:
        """Add one result (streamed at once for ``jsonl`` and ``csv``)."""
        if self.fmt is OutputFormat.jsonl:
            self.stream.write(json.dumps(result.to_dict(), allow_nan=False) + "\n")
            self.stream.flush()
        elif self._csv is not None:
            self._csv.writerow(csv_row(result))
            self.stream.flush()
        else:
            self._results.append(result)

    def close(self, summary: Summary) -> None:
        """Write what was buffered (``json`` document, ``table``)."""
        if self.fmt is OutputFormat.json:
            doc = {
                "voxguard_version": _version(),
                **self.meta,
                "results": [r.to_dict() for r in self._results],
                "summary": summary.to_dict(),
            }
            self.stream.write(json.dumps(doc, indent=2, allow_nan=False) + "\n")
        elif self.fmt is OutputFormat.table:
            self._print_table()
        self.stream.flush()

    def _print_table(self) -> None:
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        m = self.meta
        caption = (
            f"model {m['model']} · threshold {m['threshold']:.2f} ({m['operating_point']}) ± {m['margin']:.2f}"
            f" · segments {m['segment_s']:g} s, hop {m['hop_s']:g} s"
        )
        mixed = [r for r in self._results if r.wide_band is not None and r.wide_band.used]
        if mixed:
            # Those files were decided by the mix, with its own threshold (docs/detectors.md).
            caption += (
                f"\n* wide-band companion {mixed[0].wide_band.model} mixed in"  # type: ignore[union-attr]
                f" (threshold {mixed[0].threshold:.2f})"
            )
        table = Table(caption=caption, caption_justify="left")
        table.add_column("verdict")
        table.add_column("P(fake)", justify="right")
        table.add_column("duration", justify="right")
        table.add_column("speech", justify="right")
        table.add_column("most suspicious", justify="right")
        table.add_column("file", overflow="fold")
        with_notes = any(r.error is not None or r.reason for r in self._results)
        if with_notes:
            table.add_column("note", overflow="fold")
        for r in self._results:
            if r.error is not None:
                note = escape(f"{r.error.code}: {r.error.message}")
                table.add_row("[red]FAILED[/red]", "—", "—", "—", "—", escape(r.path), note)
                continue
            top = r.timeline.most_suspicious()
            where = (
                f"{top.start_s:.1f}–{top.end_s:.1f} s ({top.probability:.2f})"
                if top is not None and top.probability is not None
                else "—"
            )
            assert r.verdict is not None
            table.add_row(
                f"[{_VERDICT_STYLE[r.verdict]}]{r.verdict.value}[/]",
                _fmt_p(r.probability) + (" *" if any(r is m for m in mixed) else ""),
                _fmt_s(r.duration_s),
                _fmt_s(r.speech_s),
                where,
                escape(r.path),
                *([escape(r.reason or "")] if with_notes else []),
            )
        console = Console(file=self.stream, highlight=False)
        if not console.is_terminal:
            # Files and pipes have no width to follow: as wide as the table needs, so that no
            # path or note is folded over lines (people grep this).
            from rich.measure import Measurement

            wide = console.options.update_width(10_000)
            console.width = max(160, Measurement.get(console, wide, table).maximum)
        console.print(table)


def _version() -> str:
    from voxguard import __version__

    return __version__
