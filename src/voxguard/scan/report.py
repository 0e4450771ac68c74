"""An HTML report of a batch scan: the verdicts as a table, the spread of P(fake), and each file's timeline.

``voxguard scan FILES --report DIR`` writes ``DIR/index.html``, ``DIR/p_fake.png`` (every file's
P(fake) against the threshold) and ``DIR/timelines/*.png`` (one :func:`voxguard.scan.plot.plot_result`
figure per scanned file, drawn during the scan). The page links the PNGs by relative path, so the
folder is the report: copy or zip it whole. Meant for people who read results (a newsroom, a
trust-and-safety queue), not for programs: those read ``--format json/csv/parquet``.

:class:`ScanReport` keeps one small :class:`ReportRow` per file, not the timelines, so a long batch
costs little memory. matplotlib is imported only when the report is written.
"""

from __future__ import annotations

import html
import math
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from voxguard.evaluate.report import REPORT_CSS
from voxguard.scan.result import ScanResult, Verdict

#: Name of the folder of per-file timeline PNGs inside the report folder.
TIMELINES_DIR = "timelines"

_VERDICT_COLOURS = {"REAL": "#2a9d4a", "FAKE": "#d62728", "UNCERTAIN": "#b58100", "FAILED": "#555555"}
# The evaluation reports' style, plus what this page adds.
_CSS = (
    REPORT_CSS
    + """
td{vertical-align:top}.verdict{font-weight:600}
figure{margin:.6rem 0 1.6rem}
"""
)


@dataclass(frozen=True)
class ReportRow:
    """What the report shows of one scanned file."""

    path: str
    verdict: str  # REAL, FAKE, UNCERTAIN or FAILED
    probability: float | None
    threshold: float
    duration_s: float | None
    speech_s: float | None
    suspicious: str  # the most suspicious segment, "a–b s (P)", or ""
    wide_band: str  # "mixed", the companion's note, or "" without a companion
    watermark: str  # "found (0.97)", "not found (0.12)" or "" without the check
    note: str  # the verdict's reason, or the error
    plot: str | None  # the timeline PNG

    @classmethod
    def from_result(cls, result: ScanResult) -> ReportRow:
        if result.error is not None:
            return cls(result.path, "FAILED", None, result.threshold, result.duration_s, None, "", "", "",
                       f"{result.error.code}: {result.error.message}", None)  # fmt: skip
        top = result.timeline.most_suspicious()
        suspicious = (
            f"{top.start_s:.1f}–{top.end_s:.1f} s ({top.probability:.2f})"
            if top is not None and top.probability is not None and math.isfinite(top.probability)
            else ""
        )
        wide = result.wide_band
        wide_text = "" if wide is None else ("mixed" if wide.used else (wide.note or "not used"))
        mark = result.watermark
        mark_text = "" if mark is None else f"{'found' if mark.detected else 'not found'} ({mark.confidence:.2f})"
        assert result.verdict is not None
        return cls(
            path=result.path,
            verdict=result.verdict.value,
            probability=result.probability,
            threshold=result.threshold,
            duration_s=result.duration_s,
            speech_s=result.speech_s,
            suspicious=suspicious,
            wide_band=wide_text,
            watermark=mark_text,
            note=result.reason or "",
            plot=result.plot,
        )


class ScanReport:
    """Collects results during a scan, then writes the report folder.

    Parameters
    ----------
    out_dir : path
        The report folder (created). Timelines go to ``out_dir / TIMELINES_DIR``: pass that to the
        scan as its plot folder.
    meta : dict
        ``model``, ``threshold``, ``operating_point``, ``margin``, ``segment_s``, ``hop_s`` (as
        :class:`voxguard.scan.output.ResultWriter` takes).
    """

    def __init__(self, out_dir: str | os.PathLike[str], meta: dict[str, Any]) -> None:
        self.out_dir = Path(out_dir)
        self.meta = dict(meta)
        self.rows: list[ReportRow] = []

    @property
    def timelines_dir(self) -> Path:
        return self.out_dir / TIMELINES_DIR

    def add(self, result: ScanResult) -> None:
        self.rows.append(ReportRow.from_result(result))

    def write(self, summary: Any = None) -> Path:
        """Write ``index.html`` and ``p_fake.png``; returns the path of ``index.html``.

        ``summary``: the batch's :class:`voxguard.scan.output.Summary` (its line goes under the title).
        """
        self.out_dir.mkdir(parents=True, exist_ok=True)
        scored = [r for r in self.rows if r.probability is not None and math.isfinite(r.probability)]
        figure = ""
        if scored:
            _plot_probabilities(scored, self.meta, self.out_dir / "p_fake.png")
            figure = (
                '<figure><img src="p_fake.png" alt="P(fake) of every scanned file against the threshold">'
                "<figcaption>P(fake) of every scanned file (a dot each; the dashed line is the threshold, "
                "the shaded band the UNCERTAIN margin).</figcaption></figure>"
            )
        index = self.out_dir / "index.html"
        index.write_text(self._html(figure, summary), encoding="utf-8")
        return index

    def _html(self, figure: str, summary: Any) -> str:
        from voxguard import __version__

        m = self.meta
        counts = {v: sum(r.verdict == v for r in self.rows) for v in ("FAKE", "UNCERTAIN", "REAL", "FAILED")}
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        meta = (
            f"{len(self.rows)} files · model {m['model']} · threshold {m['threshold']:.2f} "
            f"({m['operating_point']}) ± {m['margin']:.2f} · segments {m['segment_s']:g} s every "
            f"{m['hop_s']:g} s · voxguard {__version__} · {stamp}"
        )
        mixed = [r for r in self.rows if r.wide_band == "mixed"]
        parts = [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>voxguard scan report</title><style>{_CSS}</style></head><body>",
            "<h1>voxguard scan report</h1>",
            f'<p class="meta">{html.escape(meta)}</p>',
            "<p>" + " · ".join(f"{_verdict(v)} {n}" for v, n in counts.items() if n) + "</p>",
        ]
        if summary is not None:
            parts.append(f'<p class="meta">{html.escape(summary.text())}</p>')
        parts.append(
            "<p>P(fake) is the detector's calibrated probability that the speech is AI-generated or "
            "manipulated: the mean of the file's most suspicious segments. A verdict is a decision at the "
            "threshold, not a proof; read it with the timeline. UNCERTAIN means too little speech, or a "
            "probability too close to the threshold.</p>"
        )
        if mixed:
            parts.append(
                f"<p>{len(mixed)} file(s) had the band above 8 kHz: the wide-band companion was mixed in, and "
                f"they were decided at the mix's threshold ({mixed[0].threshold:.2f}).</p>"
            )
        parts += [figure, "<h2>Files</h2>", self._table(), "<h2>Timelines</h2>"]
        for k, row in enumerate(self.rows):
            if row.plot is None:
                continue
            src = _relative(row.plot, self.out_dir)
            caption = f"{row.path}: {row.verdict}" + (
                f", P(fake) {row.probability:.2f}" if row.probability is not None else ""
            )
            parts.append(
                f'<figure id="f{k}"><img src="{html.escape(src)}" alt="timeline of {html.escape(row.path)}" '
                f'loading="lazy"><figcaption>{html.escape(caption)}</figcaption></figure>'
            )
        parts.append("</body></html>")
        return "\n".join(parts) + "\n"

    def _table(self) -> str:
        show_wide = any(r.wide_band for r in self.rows)
        show_mark = any(r.watermark for r in self.rows)
        show_note = any(r.note for r in self.rows)
        head = ["file", "verdict", "P(fake)", "threshold", "duration", "speech", "most suspicious segment"]
        head += ["wide band"] * show_wide + ["watermark"] * show_mark + ["note"] * show_note
        lines = ["<table><thead><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr></thead><tbody>"]
        for k, r in enumerate(self.rows):
            name = html.escape(r.path)
            cell_file = f'<a href="#f{k}">{name}</a>' if r.plot is not None else name
            cells = [
                cell_file,
                _verdict(r.verdict),
                _num(r.probability),
                _num(r.threshold),
                _seconds(r.duration_s),
                _seconds(r.speech_s),
                html.escape(r.suspicious),
            ]
            cells += [html.escape(r.wide_band)] * show_wide + [html.escape(r.watermark)] * show_mark
            cells += [html.escape(r.note)] * show_note
            numeric = {2, 3, 4, 5}
            lines.append(
                "<tr>"
                + "".join(f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>" for i, c in enumerate(cells))
                + "</tr>"
            )
        lines.append("</tbody></table>")
        return "\n".join(lines)


def _verdict(verdict: str) -> str:
    return f'<span class="verdict" style="color:{_VERDICT_COLOURS[verdict]}">{verdict}</span>'


def _num(x: float | None) -> str:
    return f"{x:.2f}" if x is not None and math.isfinite(x) else "—"


def _seconds(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "—"
    return f"{x / 60:.1f} min" if x >= 600 else f"{x:.1f} s"


def _relative(path: str, root: Path) -> str:
    try:
        return Path(os.path.relpath(path, root)).as_posix()
    except ValueError:  # another drive (Windows)
        return Path(path).resolve().as_uri()


def _plot_probabilities(rows: list[ReportRow], meta: dict[str, Any], path: Path) -> None:
    """Every file's P(fake) as a dot on one axis, coloured by verdict, against the threshold(s)."""
    from voxguard.scan.plot import require_matplotlib

    require_matplotlib()
    from matplotlib.figure import Figure

    p = np.array([r.probability for r in rows], dtype=float)
    rng = np.random.default_rng(0)  # jitter so that equal probabilities stay visible
    y = rng.uniform(-0.3, 0.3, len(p))
    fig = Figure(figsize=(9, 2.6), layout="constrained")
    ax = fig.subplots()
    for verdict in (Verdict.REAL, Verdict.UNCERTAIN, Verdict.FAKE):
        sel = np.array([r.verdict == verdict.value for r in rows])
        if sel.any():
            ax.scatter(
                p[sel], y[sel], s=22, color=_VERDICT_COLOURS[verdict.value], label=f"{verdict.value} ({sel.sum()})"
            )
    threshold, margin = float(meta["threshold"]), float(meta["margin"])
    ax.axvspan(threshold - margin, threshold + margin, color="#e6a700", alpha=0.15, linewidth=0)
    ax.axvline(threshold, color="black", linestyle="--", linewidth=1)
    others = sorted({round(r.threshold, 3) for r in rows} - {round(threshold, 3)})
    for t in others:  # files decided at another threshold: the wide-band mix's
        ax.axvline(t, color="#00838f", linestyle=":", linewidth=1)
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.5, 0.5)
    ax.set_yticks([])
    ax.set_xlabel("P(fake)" + (" (dotted: the wide-band mix's threshold)" if others else ""))
    ax.legend(loc="upper center", ncols=3, fontsize=8, frameon=False, bbox_to_anchor=(0.5, 1.25))
    fig.savefig(os.fspath(path), dpi=110)
