"""Evaluation reports: a self-contained HTML page, Markdown summary, JSON of every number, PNG plots.

Typical use (all a command-line shell needs)::

    table = read_scores_csv("scores.csv")
    paths = write_report(table, "report_dir", title="LA eval")

Conventions are those of :mod:`voxguard.evaluate.metrics`: label 1 = spoof, higher score = more likely spoof,
spoof flagged when ``score >= threshold``.

Plots are drawn with matplotlib's object API on an explicit Agg canvas: no pyplot global state, no display
needed, safe to call from worker threads. matplotlib and scipy are imported inside the functions that need
them, so importing this module stays cheap.
"""

from __future__ import annotations

import base64
import csv
import datetime as _dt
import html
import io
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from voxguard import __version__
from voxguard.errors import VoxguardError
from voxguard.evaluate import metrics as M

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "ReportError",
    "ReportPaths",
    "ReportSection",
    "ScoreTable",
    "ScoresFileError",
    "plot_det",
    "plot_roc",
    "read_scores_csv",
    "write_report",
]

ID_COLUMNS = ("id", "path")
_DELIMITERS = (",", "\t", ";")


class ReportError(VoxguardError):
    """Invalid report request (unknown group column, malformed table or section)."""

    code = "report_error"
    http_status = 422


class ScoresFileError(ReportError):
    """A scores CSV cannot be used: missing columns, bad labels or scores, ragged rows."""

    code = "scores_file_error"


@dataclass(frozen=True, eq=False)  # arrays: element-wise == would make equality ambiguous
class ScoreTable:
    """Scored trials: one id, label, score and any number of group columns per trial.

    Attributes
    ----------
    ids : ndarray of str, shape (n,)
    labels : ndarray of int8, shape (n,)
        1 = spoof, 0 = bonafide.
    scores : ndarray of float64, shape (n,)
        Higher = more likely spoof.
    groups : dict of str -> ndarray of str
        Extra columns (attack system, speaker, codec, ...), in file order.
    id_column : str
        Name of the id column in the source (``"id"`` or ``"path"``).
    source : str or None
        Where the table came from (file path), shown in reports.
    """

    ids: NDArray[np.str_]
    labels: NDArray[np.int8]
    scores: NDArray[np.float64]
    groups: dict[str, NDArray[np.str_]] = field(default_factory=dict)
    id_column: str = "id"
    source: str | None = None

    def __len__(self) -> int:
        return int(self.labels.size)

    def to_columns(self) -> dict[str, NDArray[Any]]:
        """Columns by name, as in the source file (labels as 0/1)."""
        return {self.id_column: self.ids, "label": self.labels, "score": self.scores, **self.groups}


@dataclass(frozen=True)
class ReportSection:
    """An extra block appended to the report (e.g. cross-validation results, a model card, notes).

    Attributes
    ----------
    title : str
        Section heading.
    markdown : str, optional
        Markdown text. Written verbatim into ``summary.md``; in the HTML it is shown as preformatted text
        unless ``html`` is given.
    html : str, optional
        Trusted HTML fragment for ``report.html`` (not escaped). Also embedded verbatim in ``summary.md``
        when ``markdown`` is absent (Markdown allows inline HTML).
    table : sequence of mappings, optional
        Rows rendered as a table in both outputs and stored in ``metrics.json``; columns are the union of
        the keys in first-seen order.
    """

    title: str
    markdown: str | None = None
    html: str | None = None
    table: Sequence[Mapping[str, Any]] | None = None


@dataclass(frozen=True)
class ReportPaths:
    """Files written by :func:`write_report`; ``figures`` maps a figure name to its PNG file."""

    out_dir: Path
    html: Path
    markdown: Path
    metrics_json: Path
    figures: dict[str, Path]


# --------------------------------------------------------------------------------------------------
# Reading and normalising tables
# --------------------------------------------------------------------------------------------------


def _lines(numbers: Sequence[int]) -> str:
    shown = ", ".join(str(n) for n in numbers[:5])
    return f"line {shown}" if len(numbers) == 1 else f"lines {shown}" + (" ..." if len(numbers) > 5 else "")


def read_scores_csv(
    path: str | Path,
    *,
    label_column: str = "label",
    score_column: str = "score",
    delimiter: str | None = None,
) -> ScoreTable:
    """Read a scores file: one trial per row with an ``id`` or ``path`` column, a label and a score.

    Parameters
    ----------
    path : str or Path
        CSV file with a header row (UTF-8, optional BOM). Every column other than the id, label and score
        columns is kept as a group column (strings), e.g. ``system``, ``speaker``, ``codec``.
    label_column, score_column : str
        Header names of the label (``spoof``/``fake``/``1`` or ``bonafide``/``real``/``0``, any case) and
        score (float, higher = more likely spoof) columns.
    delimiter : str, optional
        Field separator; by default the most frequent of ``,``, tab and ``;`` in the header line.

    Returns
    -------
    ScoreTable

    Raises
    ------
    ScoresFileError
        Missing file or columns, duplicate headers, no data rows, rows with the wrong number of fields,
        unrecognised labels, non-numeric or non-finite scores. Messages give line numbers.
    """
    path = Path(path)
    where = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ScoresFileError("file not found", path=where) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScoresFileError(f"cannot read file as UTF-8 text ({exc})", path=where) from None
    first_line = text.split("\n", 1)[0]
    if not first_line.strip():
        raise ScoresFileError("empty file: expected a header row with id/path, label and score", path=where)
    if delimiter is None:
        delimiter = max(_DELIMITERS, key=first_line.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = [h.strip() for h in next(reader)]
    duplicates = sorted({h for h in header if header.count(h) > 1})
    if duplicates:
        raise ScoresFileError(f"duplicate column name(s) in header: {duplicates}", path=where)
    id_column = next((c for c in ID_COLUMNS if c in header), None)
    missing = [c for c in (label_column, score_column) if c not in header]
    if id_column is None:
        missing.insert(0, "id (or path)")
    if missing:
        raise ScoresFileError(f"missing column(s) {', '.join(missing)}; header has {header}", path=where)
    rows: list[list[str]] = []
    line_numbers: list[int] = []
    ragged: list[int] = []
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue  # blank lines are harmless
        if len(row) != len(header):
            ragged.append(reader.line_num)
        rows.append(row)
        line_numbers.append(reader.line_num)
    if ragged:
        raise ScoresFileError(f"{_lines(ragged)}: expected {len(header)} fields as in the header", path=where)
    if not rows:
        raise ScoresFileError("no data rows after the header", path=where)
    cols = {name: [r[i].strip() for r in rows] for i, name in enumerate(header)}
    lines = np.asarray(line_numbers)

    raw_labels = np.asarray(cols[label_column])
    try:
        labels = M.normalise_labels(raw_labels)
    except M.MetricError:
        bad = [str(v) for v in np.unique(raw_labels) if not _is_label(v)]
        bad_lines = lines[np.isin(raw_labels, bad)].tolist()
        raise ScoresFileError(
            f"{_lines(bad_lines)}: unrecognised label(s) {bad[:5]} in column {label_column!r}; "
            "expected spoof/fake/1 or bonafide/real/0",
            path=where,
        ) from None

    try:
        scores = np.asarray(cols[score_column], dtype=np.float64)  # fast path; cells are str
    except ValueError:
        not_numeric = [int(lines[k]) for k, cell in enumerate(cols[score_column]) if not _is_float(cell)]
        raise ScoresFileError(
            f"{_lines(not_numeric)}: score is not a number in column {score_column!r}", path=where
        ) from None
    non_finite = lines[~np.isfinite(scores)].tolist()
    if non_finite:
        raise ScoresFileError(f"{_lines(non_finite)}: score is NaN or infinite", path=where)

    skip = {id_column, label_column, score_column}
    groups = {name: np.asarray(values, dtype=str) for name, values in cols.items() if name not in skip}
    return ScoreTable(
        ids=np.asarray(cols[id_column], dtype=str),
        labels=labels,
        scores=scores,
        groups=groups,
        id_column=id_column,
        source=where,
    )


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _is_label(value: str) -> bool:
    try:
        M.normalise_labels([value])
    except M.MetricError:
        return False
    return True


def _as_table(data: Any, label_column: str, score_column: str) -> ScoreTable:
    """Accept a ScoreTable, a mapping of columns, a DataFrame-like object or an iterable of records."""
    if isinstance(data, ScoreTable):
        return data
    columns: dict[str, Any]
    if isinstance(data, Mapping):
        columns = dict(data)
    elif hasattr(data, "columns") and hasattr(data, "__getitem__"):  # pandas/polars without importing them
        columns = {str(c): np.asarray(data[c]) for c in data.columns}
    elif isinstance(data, Iterable) and not isinstance(data, str | bytes):
        records = list(data)
        if not records or not all(isinstance(r, Mapping) for r in records):
            raise ReportError("records must be a non-empty sequence of mappings (one per trial)")
        names = list(dict.fromkeys(k for r in records for k in r))
        try:
            columns = {k: [r[k] for r in records] for k in names}
        except KeyError as exc:
            raise ReportError(f"record without key {exc.args[0]!r}; every record needs the same keys") from None
    else:
        raise ReportError(f"cannot make a score table from {type(data).__name__}")
    missing = [c for c in (label_column, score_column) if c not in columns]
    if missing:
        raise ReportError(f"missing column(s) {missing}; have {list(columns)}")
    labels = M.normalise_labels(np.asarray(columns[label_column]))
    scores = np.asarray(columns[score_column], dtype=np.float64)
    n = labels.size
    id_column = next((c for c in ID_COLUMNS if c in columns), "id")
    ids = np.asarray(columns[id_column], dtype=str) if id_column in columns else np.arange(n).astype(str)
    groups = {}
    for name, values in columns.items():
        if name in (id_column, label_column, score_column):
            continue
        arr = np.asarray(values)
        if arr.ndim != 1 or arr.size != n:
            raise ReportError(f"column {name!r} has shape {arr.shape}, expected ({n},)")
        groups[str(name)] = arr.astype(str)
    if scores.shape != (n,) or ids.shape != (n,):
        raise ReportError(f"columns have different lengths (labels {n}, scores {scores.shape}, ids {ids.shape})")
    return ScoreTable(ids=ids, labels=labels, scores=scores, groups=groups, id_column=id_column)


# --------------------------------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------------------------------

_COLOURS = {"spoof": "#c0392b", "bonafide": "#2471a3", "curve": "#1f4e79", "eer": "#e67e22"}
_DET_TICKS = (
    0.0001,
    0.0002,
    0.0005,
    0.001,
    0.002,
    0.005,
    0.01,
    0.02,
    0.05,
    0.1,
    0.2,
    0.4,
    0.6,
    0.8,
    0.9,
    0.95,
    0.98,
    0.99,
)


def _new_figure(width: float = 5.2, height: float = 4.4) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)  # explicit Agg canvas: headless, independent of the pyplot backend
    return fig


def _png_bytes(fig: Figure, dpi: int) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return buf.getvalue()


def plot_roc(ax: Axes, labels: ArrayLike, scores: ArrayLike, *, label: str | None = None) -> None:
    """Draw the ROC curve (spoof = positive) with its EER point on a matplotlib ``Axes``.

    Call repeatedly on the same axes to compare systems.
    """
    roc = M.roc_curve_points(labels, scores)
    e = M.eer(labels, scores)
    auc = M.roc_auc(labels, scores)
    text = f"{label + ': ' if label else ''}AUC = {auc:.4f}, EER = {100 * e.eer:.2f}%"
    (line,) = ax.plot(roc.fpr, roc.tpr, lw=1.6, label=text, drawstyle="default")
    ax.plot([e.eer], [1 - e.eer], "o", ms=5, color=line.get_color())
    ax.plot([0, 1], [0, 1], ls=":", lw=0.8, color="grey")
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1),
        xlabel="False alarm rate (bonafide flagged)",
        ylabel="Detection rate (spoof flagged)",
        title="ROC",
    )
    ax.set_aspect("equal")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")


def plot_det(
    ax: Axes,
    labels: ArrayLike,
    scores: ArrayLike,
    *,
    label: str | None = None,
    limits: tuple[float, float] | None = None,
) -> None:
    """Draw the DET curve on normal-deviate axes (probit scale, as in Martin et al. 1997) on ``ax``.

    Both axes show error probabilities (false alarm = bonafide flagged, miss = spoof not flagged) placed at
    ``scipy.stats.norm.ppf(p)``, so Gaussian score distributions give straight lines. ``limits`` are
    probabilities; by default 0.1 % (0.01 % for large sets) to 50 % (99 % for poor systems).
    """
    from scipy.stats import norm

    det = M.det_curve(labels, scores)
    e = M.eer(labels, scores)
    if limits is None:
        y = M.normalise_labels(labels)
        n_min = min(int(y.sum()), int(y.size - y.sum()))
        lo = 1e-4 if n_min >= 5000 else 1e-3  # below ~1/n the curve has no resolution
        hi = 0.5 if e.eer < 0.3 else 0.99
        limits = (lo, hi)
    eps = 1e-9  # 0 and 1 map to -inf/+inf; clip just outside the axes so the curve runs off the edge
    x = norm.ppf(np.clip(det.fpr, eps, 1 - eps))
    y = norm.ppf(np.clip(det.fnr, eps, 1 - eps))
    text = f"{label + ': ' if label else ''}EER = {100 * e.eer:.2f}%"
    (line,) = ax.plot(x, y, lw=1.6, label=text)
    p_eer = float(np.clip(e.eer, eps, 1 - eps))
    ax.plot([norm.ppf(p_eer)], [norm.ppf(p_eer)], "o", ms=5, color=line.get_color())
    lo_z, hi_z = norm.ppf(limits[0]), norm.ppf(limits[1])
    ax.plot([lo_z, hi_z], [lo_z, hi_z], ls=":", lw=0.8, color="grey")
    ticks = [t for t in _DET_TICKS if limits[0] <= t <= limits[1]]
    tick_labels = [f"{100 * t:g}" for t in ticks]
    ax.set_xticks(norm.ppf(ticks), tick_labels)
    ax.set_yticks(norm.ppf(ticks), tick_labels)
    ax.set(
        xlim=(lo_z, hi_z),
        ylim=(lo_z, hi_z),
        xlabel="False alarm rate (%)",
        ylabel="Miss rate (%)",
        title="DET",
    )
    ax.set_aspect("equal")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize="small")


def _fig_roc(y: NDArray[np.int8], s: NDArray[np.float64]) -> Figure:
    fig = _new_figure()
    plot_roc(fig.subplots(), y, s)
    return fig


def _fig_det(y: NDArray[np.int8], s: NDArray[np.float64]) -> Figure:
    fig = _new_figure()
    plot_det(fig.subplots(), y, s)
    return fig


def _fig_histogram(y: NDArray[np.int8], s: NDArray[np.float64], threshold: float, source: str) -> Figure:
    fig = _new_figure(6.4, 3.8)
    ax = fig.subplots()
    lo, hi = float(s.min()), float(s.max())
    if hi == lo:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.histogram_bin_edges(s, bins=min(80, max(10, int(np.sqrt(s.size)))), range=(lo, hi))
    for code, name in ((0, "bonafide"), (1, "spoof")):
        part = s[y == code]
        if part.size:
            ax.hist(
                part,
                bins=edges,
                density=True,
                histtype="stepfilled",
                alpha=0.35,
                color=_COLOURS[name],
                edgecolor=_COLOURS[name],
                label=f"{name} (n={part.size})",
            )
    if np.isfinite(threshold):
        ax.axvline(threshold, color="black", ls="--", lw=1.2, label=f"threshold = {threshold:.4g} ({source})")
    ax.set(xlabel="score (higher = more likely spoof)", ylabel="density", title="Score distributions")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    return fig


def _fig_confusion(overall: Mapping[str, Any]) -> Figure:
    fig = _new_figure(4.2, 3.8)
    ax = fig.subplots()
    counts = np.array([[overall["tn"], overall["fp"]], [overall["fn"], overall["tp"]]], dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = counts / counts.sum(axis=1, keepdims=True)
    ax.imshow(np.nan_to_num(rates), cmap="Blues", vmin=0, vmax=1)
    for i in range(2):
        for j in range(2):
            colour = "white" if rates[i, j] > 0.6 else "black"
            ax.text(
                j,
                i,
                f"{int(counts[i, j])}\n({100 * rates[i, j]:.1f}%)",
                ha="center",
                va="center",
                color=colour,
            )
    ax.set_xticks([0, 1], ["bonafide", "spoof"])
    ax.set_yticks([0, 1], ["bonafide", "spoof"])
    ax.set(xlabel="decision", ylabel="true class", title=f"Confusion at threshold {overall['threshold']:.4g}")
    return fig


def _fig_group_eer(column: str, rows: Sequence[Mapping[str, Any]]) -> Figure:
    fig = _new_figure(6.4, max(2.2, 0.32 * len(rows) + 1.2))
    ax = fig.subplots()
    names = [str(r["value"]) for r in rows]
    values = np.array([r["eer"] for r in rows], dtype=float) * 100
    pos = np.arange(len(rows))
    ax.barh(pos, np.nan_to_num(values), color=_COLOURS["curve"])
    for p, v in zip(pos, values, strict=True):
        ax.text(
            0 if math.isnan(v) else v,
            p,
            " n/a" if math.isnan(v) else f" {v:.2f}",
            va="center",
            fontsize="small",
        )
    ax.set_yticks(pos, names)
    ax.invert_yaxis()
    finite = values[np.isfinite(values)]
    ax.set_xlim(0, max(1.0, float(finite.max()) * 1.15 if finite.size else 1.0))
    ax.set(xlabel="EER (%)", title=f"EER by {column}")
    ax.grid(axis="x", alpha=0.3)
    return fig


# --------------------------------------------------------------------------------------------------
# Formatting
# --------------------------------------------------------------------------------------------------

# (key, heading, description, is_percent) for the summary table.
_SUMMARY_ROWS: tuple[tuple[str, str, str, bool], ...] = (
    ("n", "Trials", "number of scored trials", False),
    ("n_spoof", "Spoof trials", "label 1 (fake)", False),
    ("n_bonafide", "Bonafide trials", "label 0 (real)", False),
    ("eer", "EER (%)", "equal error rate, ASVspoof nearest-point method", True),
    ("eer_rocch", "ROCCH-EER (%)", "EER of the ROC convex hull", True),
    ("auc", "ROC AUC", "P(spoof scores above bonafide)", False),
    ("min_dcf", "minDCF", "normalised minimum detection cost (spoof = target)", False),
    ("min_cllr", "min Cllr", "Cllr after optimal monotone calibration (bits)", False),
    ("cllr", "Cllr", "log-likelihood-ratio cost of the scores as LLRs (bits)", False),
    ("threshold", "Threshold", "spoof flagged when score >= threshold", False),
    ("accuracy", "Accuracy", "at the threshold", False),
    ("balanced_accuracy", "Balanced accuracy", "mean of per-class recalls", False),
    ("precision", "Precision", "flagged trials that are spoof", False),
    ("recall", "Recall (TPR)", "spoof trials flagged", False),
    ("f1", "F1", "of the spoof class", False),
    ("fpr", "False alarm rate", "bonafide trials flagged", False),
    ("fnr", "Miss rate", "spoof trials not flagged", False),
    ("dcf", "DCF at threshold", "normalised detection cost at the threshold", False),
)

# (key, heading, is_percent) for per-group tables.
_GROUP_COLUMNS: tuple[tuple[str, str, bool], ...] = (
    ("value", "value", False),
    ("n_group", "n (group)", False),
    ("n_spoof", "spoof", False),
    ("n_bonafide", "bonafide", False),
    ("paired_with_all_bonafide", "paired", False),
    ("eer", "EER (%)", True),
    ("eer_rocch", "ROCCH-EER (%)", True),
    ("auc", "AUC", False),
    ("min_dcf", "minDCF", False),
    ("min_cllr", "min Cllr", False),
    ("accuracy", "accuracy", False),
    ("precision", "precision", False),
    ("recall", "recall", False),
    ("f1", "F1", False),
    ("fpr", "FA rate", False),
    ("fnr", "miss rate", False),
)


def _fmt(value: Any, percent: bool = False) -> str:
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        v = float(value)
        if math.isnan(v):
            return "n/a"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        if percent:
            return f"{100 * v:.2f}"
        if v != 0 and (abs(v) >= 1e4 or abs(v) < 1e-3):
            return f"{v:.4g}"
        return f"{v:.4f}"
    return str(value)


def _json_safe(value: Any) -> Any:
    """NaN -> null, +-inf -> "inf"/"-inf" (strict JSON has neither), numpy scalars -> Python."""
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_json_safe(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
    if isinstance(value, Path):
        return str(value)
    return value


def _table_columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    return list(dict.fromkeys(k for r in rows for k in r))


def _html_table(headings: Sequence[str], body: Sequence[Sequence[str]], numeric: Sequence[bool]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headings)
    lines = []
    for cells in body:
        tds = "".join(
            f'<td class="num">{html.escape(c)}</td>' if num else f"<td>{html.escape(c)}</td>"
            for c, num in zip(cells, numeric, strict=True)
        )
        lines.append(f"<tr>{tds}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(lines)}</tbody></table>"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_table(headings: Sequence[str], body: Sequence[Sequence[str]], numeric: Sequence[bool]) -> str:
    out = ["| " + " | ".join(_md_cell(h) for h in headings) + " |"]
    out.append("|" + "|".join("---:" if num else "---" for num in numeric) + "|")
    out += ["| " + " | ".join(_md_cell(c) for c in cells) + " |" for cells in body]
    return "\n".join(out)


def _generic_table(rows: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[list[str]], list[bool]]:
    cols = _table_columns(rows)
    body = [[_fmt(r.get(c, "")) for c in cols] for r in rows]
    numeric = [
        all(isinstance(r.get(c), int | float | np.number) and not isinstance(r.get(c), bool) for r in rows)
        for c in cols
    ]
    return cols, body, numeric


def _group_table(rows: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[list[str]], list[bool]]:
    headings = [h for _, h, _ in _GROUP_COLUMNS]
    body = [[_fmt(r[k], pct) for k, _, pct in _GROUP_COLUMNS] for r in rows]
    numeric = [k not in ("value", "paired_with_all_bonafide") for k, _, _ in _GROUP_COLUMNS]
    return headings, body, numeric


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "group"


def _as_section(section: ReportSection | Mapping[str, Any]) -> ReportSection:
    if isinstance(section, ReportSection):
        return section
    if isinstance(section, Mapping) and "title" in section:
        unknown = set(section) - {"title", "markdown", "html", "table"}
        if unknown:
            raise ReportError(f"extra section has unknown key(s) {sorted(unknown)}")
        return ReportSection(**section)
    raise ReportError("extra_sections entries must be ReportSection or mappings with a 'title'")


#: The style sheet of voxguard's HTML reports (also :mod:`voxguard.scan.report`).
REPORT_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:72rem;
padding:0 1rem;color:#222;line-height:1.45}
h1{margin-bottom:.2rem}h2{margin-top:2.2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
.meta{color:#666;font-size:.9rem}
table{border-collapse:collapse;margin:.8rem 0;font-size:.88rem}
th,td{border:1px solid #ddd;padding:.25rem .55rem;text-align:left}
th{background:#f3f5f8}td.num{text-align:right;font-variant-numeric:tabular-nums}
tbody tr:nth-child(even){background:#fafbfc}
.figures{display:flex;flex-wrap:wrap;gap:1rem}
figure{margin:0;border:1px solid #eee;padding:.4rem}figure img{max-width:100%;height:auto;display:block}
figcaption{font-size:.85rem;color:#555;text-align:center}
pre{background:#f6f8fa;padding:.8rem;overflow-x:auto}
"""


# --------------------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------------------


def write_report(
    data: ScoreTable | Mapping[str, ArrayLike] | Iterable[Mapping[str, Any]] | Any,
    out_dir: str | Path,
    *,
    title: str = "voxguard evaluation report",
    group_columns: Sequence[str] | None = None,
    threshold: float | None = None,
    p_target: float = M.DEFAULT_COSTS.p_target,
    c_miss: float = M.DEFAULT_COSTS.c_miss,
    c_fa: float = M.DEFAULT_COSTS.c_fa,
    scores_are_llrs: bool = False,
    pair_with_all_bonafide: bool = True,
    max_groups: int = 50,
    extra_sections: Sequence[ReportSection | Mapping[str, Any]] = (),
    label_column: str = "label",
    score_column: str = "score",
    dpi: int = 110,
) -> ReportPaths:
    """Evaluate scored trials and write ``report.html``, ``summary.md``, ``metrics.json`` and PNG figures.

    Parameters
    ----------
    data : ScoreTable, mapping of columns, DataFrame-like, or iterable of record mappings
        Needs a label column and a score column (names below); an ``id``/``path`` column is optional
        here. Every other column is a candidate group column. A pandas DataFrame works without pandas
        being a dependency (anything with ``.columns`` and ``df[name]``).
    out_dir : str or Path
        Created if needed; existing report files in it are overwritten.
    title : str
        Report title.
    group_columns : sequence of str, optional
        Columns to break the metrics down by (one table, and an EER bar plot, per column). By default every
        extra column with 2 to ``max_groups`` distinct values; columns outside that range are listed as
        skipped. Naming a column that does not exist raises :class:`ReportError`.
    threshold : float, optional
        Decision threshold for accuracy/precision/recall/F1/confusion, flag spoof when
        ``score >= threshold``. Defaults to the EER threshold of all trials (optimistic: tuned on this data;
        the report says so). The same threshold is used for every group.
    p_target, c_miss, c_fa : float
        DCF parameters with spoof as the target class (default 0.5, 1, 1); see
        :func:`voxguard.evaluate.metrics.min_dcf`.
    scores_are_llrs : bool
        Scores are calibrated natural-log LLRs: also report Cllr.
    pair_with_all_bonafide : bool
        Evaluate spoof-only groups (one attack system) together with all bonafide trials (ASVspoof
        convention); see :func:`voxguard.evaluate.metrics.metrics_by_group`.
    max_groups : int
        Largest number of distinct values for a column to be picked automatically.
    extra_sections : sequence of ReportSection or mappings
        Additional blocks (title plus markdown/html/table) appended to HTML and Markdown, e.g.
        cross-validation tables; their tables are also stored in ``metrics.json``.
    label_column, score_column : str
        Column names in ``data`` (ignored for a ScoreTable).
    dpi : int
        Resolution of the PNG figures.

    Returns
    -------
    ReportPaths
        Paths of everything written. The HTML embeds every figure as a base64 ``data:`` URI (one
        self-contained file); the same PNGs are written next to it and linked from ``summary.md``.

    Raises
    ------
    MetricError
        Invalid labels/scores, or a single class overall.
    ReportError
        Unusable ``data``, unknown group column or malformed extra section.
    """
    table = _as_table(data, label_column, score_column)
    sections = [_as_section(s) for s in extra_sections]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    y, s = table.labels, table.scores
    costs = {"p_target": p_target, "c_miss": c_miss, "c_fa": c_fa}

    overall = M.compute_all(y, s, threshold, scores_are_llrs=scores_are_llrs, **costs)
    thr = float(overall["threshold"])
    report_dict = M.classification_report(y, s, thr, zero_division=float("nan"))

    # Group columns: explicit ones must exist; automatic ones must have a useful number of values.
    skipped: dict[str, str] = {}
    if group_columns is None:
        chosen = []
        for name, values in table.groups.items():
            k = int(np.unique(values).size)
            if 2 <= k <= max_groups:
                chosen.append(name)
            else:
                skipped[name] = f"{k} distinct value(s); automatic grouping needs 2 to {max_groups}"
    else:
        chosen = list(group_columns)
        unknown = [c for c in chosen if c not in table.groups]
        if unknown:
            raise ReportError(f"unknown group column(s) {unknown}; available: {list(table.groups)}")
    group_rows: dict[str, list[dict[str, Any]]] = {}
    for name in chosen:
        group_rows[name] = M.metrics_by_group(
            y,
            s,
            table.groups[name],
            threshold=thr,
            group_name=name,
            pair_with_all_bonafide=pair_with_all_bonafide,
            scores_are_llrs=scores_are_llrs,
            **costs,
        )
        for row in group_rows[name]:
            row["threshold_source"] = overall["threshold_source"]

    # Figures: (file stem, caption, figure factory).
    source_word = "EER" if overall["threshold_source"] == "eer" else "given"
    plan: list[tuple[str, str, Any]] = [
        ("roc", "ROC curve (spoof = positive class)", lambda: _fig_roc(y, s)),
        ("det", "DET curve on normal-deviate axes", lambda: _fig_det(y, s)),
        (
            "score_histogram",
            "Score distributions per class with the decision threshold",
            lambda: _fig_histogram(y, s, thr, source_word),
        ),
        (
            "confusion_matrix",
            "Confusion matrix at the threshold (row-normalised)",
            lambda: _fig_confusion(overall),
        ),
    ]
    for name, rows in group_rows.items():
        if any(math.isfinite(r["eer"]) for r in rows):
            plan.append(
                (
                    f"eer_by_{_slug(name)}",
                    f"EER by {name}",
                    lambda rows=rows, name=name: _fig_group_eer(name, rows),
                )
            )
    figures: dict[str, Path] = {}
    images: dict[str, tuple[str, bytes]] = {}
    for stem, caption, factory in plan:
        png = _png_bytes(factory(), dpi)
        file = out / f"{stem}.png"
        file.write_bytes(png)
        figures[stem] = file
        images[stem] = (caption, png)

    generated = _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat()
    threshold_note = (
        f"Threshold {_fmt(thr)} is the EER threshold of these trials (tuned on the evaluation data, so "
        "accuracy/precision/recall/F1 are optimistic)."
        if overall["threshold_source"] == "eer"
        else f"Threshold {_fmt(thr)} was given."
    )
    conventions = (
        "Label 1 = spoof (fake), 0 = bonafide (real); higher score = more likely spoof; a trial is flagged "
        f"as spoof when score >= threshold. DCF: spoof is the target, p_target = {p_target:g}, "
        f"c_miss = {c_miss:g}, c_fa = {c_fa:g}."
    )
    pairing_note = (
        "Groups containing only spoof trials are evaluated together with all bonafide trials (ASVspoof "
        "per-attack convention; marked 'paired'). Metrics that need both classes are n/a for groups with one "
        "class."
        if pair_with_all_bonafide
        else "Metrics that need both classes are n/a for groups with one class."
    )
    summary_rows = [(h, d, k, pct) for k, h, d, pct in _SUMMARY_ROWS if k in overall]
    summary_body = [[h, _fmt(overall[k], pct), d] for h, d, k, pct in summary_rows]
    summary_numeric = [False, True, False]
    meta = f"Generated {generated} by voxguard {__version__}" + (f" from {table.source}" if table.source else "")

    # ---- HTML ---------------------------------------------------------------------------------------
    h: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title><style>{REPORT_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="meta">{html.escape(meta)}</p>',
        "<h2>Summary</h2>",
        _html_table(["metric", "value", "meaning"], summary_body, summary_numeric),
        f"<p>{html.escape(threshold_note)}</p>",
        f"<p>{html.escape(conventions)}</p>",
        "<h2>Figures</h2>",
        '<div class="figures">',
    ]
    group_fig = {name: f"eer_by_{_slug(name)}" for name in group_rows}
    for stem, (caption, png) in images.items():
        if stem in group_fig.values():
            continue
        h.append(_html_figure(stem, caption, png))
    h.append("</div>")
    for name, rows in group_rows.items():
        h.append(f"<h2>By {html.escape(name)}</h2>")
        h.append(f"<p>{html.escape(pairing_note)}</p>")
        h.append(_html_table(*_group_table(rows)))
        stem = group_fig[name]
        if stem in images:
            h.append(_html_figure(stem, *images[stem]))
    if skipped:
        h.append("<h2>Columns not used for grouping</h2><ul>")
        h += [f"<li>{html.escape(k)}: {html.escape(v)}</li>" for k, v in skipped.items()]
        h.append("</ul>")
    for sec in sections:
        h.append(f"<h2>{html.escape(sec.title)}</h2>")
        if sec.html is not None:
            h.append(sec.html)
        elif sec.markdown is not None:
            h.append(f"<pre>{html.escape(sec.markdown)}</pre>")
        if sec.table:
            h.append(_html_table(*_generic_table(sec.table)))
    h.append("</body></html>")
    html_path = out / "report.html"
    html_path.write_text("\n".join(h) + "\n", encoding="utf-8")

    # ---- Markdown -----------------------------------------------------------------------------------
    md: list[str] = [f"# {title}", "", meta, "", "## Summary", ""]
    md += [_md_table(["metric", "value", "meaning"], summary_body, summary_numeric), ""]
    md += [threshold_note, "", conventions, "", "## Figures", ""]
    for stem, (caption, _) in images.items():
        if stem not in group_fig.values():
            md += [f"![{caption}]({stem}.png)", ""]
    for name, rows in group_rows.items():
        md += [f"## By {name}", "", pairing_note, "", _md_table(*_group_table(rows)), ""]
        if group_fig[name] in images:
            md += [f"![EER by {name}]({group_fig[name]}.png)", ""]
    if skipped:
        md += ["## Columns not used for grouping", ""] + [f"- {k}: {v}" for k, v in skipped.items()] + [""]
    for sec in sections:
        md += [f"## {sec.title}", ""]
        if sec.markdown is not None:
            md += [sec.markdown, ""]
        elif sec.html is not None:
            md += [sec.html, ""]
        if sec.table:
            md += [_md_table(*_generic_table(sec.table)), ""]
    md_path = out / "summary.md"
    md_path.write_text("\n".join(md), encoding="utf-8")

    # ---- JSON ---------------------------------------------------------------------------------------
    payload = {
        "title": title,
        "generated_at": generated,
        "voxguard_version": __version__,
        "source": table.source,
        "conventions": {
            "labels": {"1": "spoof", "0": "bonafide"},
            "score": "higher = more likely spoof",
            "decision": "spoof if score >= threshold",
            "dcf_target": "spoof",
            "non_finite": "NaN is written as null, infinities as the strings 'inf' / '-inf'",
        },
        "overall": overall,
        "classification_report": report_dict,
        "groups": group_rows,
        "pair_with_all_bonafide": pair_with_all_bonafide,
        "skipped_group_columns": skipped,
        "figures": {stem: f"{stem}.png" for stem in figures},
        "extra_sections": [{"title": sec.title, "table": list(sec.table) if sec.table else None} for sec in sections],
    }
    json_path = out / "metrics.json"
    json_path.write_text(json.dumps(_json_safe(payload), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return ReportPaths(out_dir=out, html=html_path, markdown=md_path, metrics_json=json_path, figures=figures)


def _html_figure(stem: str, caption: str, png: bytes) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(caption)}" '
        f'data-file="{html.escape(stem)}.png"><figcaption>{html.escape(caption)}</figcaption></figure>'
    )
