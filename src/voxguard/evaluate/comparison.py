"""The report of ``voxguard compare``: every model under every protocol, side by side.

``index.html`` (and ``comparison.md``) hold the comparison table, ROC and DET curves of all
models per protocol in one figure each, and the per-family EER of every model under
leave-one-family-out; each model × protocol also gets its own full report (histograms,
confusion matrix, per-family and per-dataset breakdowns) in a subfolder.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from voxguard.evaluate.protocols import ProtocolResult


def _curves_png(dataset: Any, results: Sequence[ProtocolResult]) -> bytes:
    import io

    from matplotlib.figure import Figure

    from voxguard.evaluate.report import plot_det, plot_roc

    labels = dataset.labels()
    legend_height = 0.28 * (len(results) + 1)  # inches: one line per model under the plots
    fig = Figure(figsize=(11, 5.2 + legend_height))
    roc_ax, det_ax = fig.subplots(1, 2)
    for r in results:
        tested = ~np.isnan(r.scores)
        plot_roc(roc_ax, labels[tested], r.scores[tested], label=r.model)
        plot_det(det_ax, labels[tested], r.scores[tested], label=r.model, limits=(0.01, 0.99))
    # Model names are long: one shared legend below both plots instead of one inside each.
    for ax in (roc_ax, det_ax):
        ax.get_legend().remove()
    handles, names = roc_ax.get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", fontsize="small", frameon=False)
    fig.suptitle(f"protocol: {results[0].protocol} (out-of-fold clip scores)")
    fig.tight_layout(rect=(0, legend_height / (5.2 + legend_height), 1, 1))
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def write_comparison_report(
    dataset: Any, results: Sequence[ProtocolResult], rows: Sequence[dict[str, Any]], out_dir: str | Path
) -> Path:
    """Write the comparison report; returns the path of ``index.html``."""
    from voxguard.evaluate.report import _slug, write_report
    from voxguard.evaluate.training import describe_protocol_rows

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    labels = dataset.labels()
    ids, families, corpora = dataset.ids(), dataset.column("family"), dataset.column("dataset")
    links = []
    for r in results:
        tested = np.flatnonzero(~np.isnan(r.scores))
        sub = out / f"{_slug(r.model)}-{r.protocol}"
        write_report(
            {
                "id": [ids[i] for i in tested],
                "label": labels[tested],
                "score": r.scores[tested],
                "family": families[tested],
                "dataset": corpora[tested],
            },
            sub,
            title=f"{r.model}, {r.protocol}: out-of-fold clip scores",
            group_columns=("family", "dataset"),
        )
        links.append((r.model, r.protocol, f"{sub.name}/report.html"))
    table_md = describe_protocol_rows(rows)
    parts_md = ["# Model comparison", "", table_md, ""]
    parts_html = [
        "<!doctype html><meta charset='utf-8'><title>voxguard compare</title>",
        "<style>body{font-family:sans-serif;max-width:1200px;margin:auto}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}td:first-child{text-align:left}</style>",
        "<h1>Model comparison</h1>",
        _md_table_to_html(table_md),
        "<p>EER threshold metrics use the EER point of the pooled out-of-fold scores (tuned on the test "
        "data: optimistic). Scoring speed: model only, seconds of audio per CPU second (features excluded).</p>",
    ]
    for protocol in dict.fromkeys(r.protocol for r in results):
        png = _curves_png(dataset, [r for r in results if r.protocol == protocol])
        (out / f"curves-{protocol}.png").write_bytes(png)
        parts_md += [f"![ROC and DET, {protocol}](curves-{protocol}.png)", ""]
        parts_html.append(
            f"<h2>{html.escape(protocol)}</h2><img alt='ROC and DET, {html.escape(protocol)}' "
            f"src='data:image/png;base64,{base64.b64encode(png).decode()}' style='max-width:100%'>"
        )
    lofo = [r for r in results if r.protocol == "lofo"]
    if lofo:
        families_ = sorted({f for r in lofo for f in r.fold_eer})
        head = "| family | " + " | ".join(r.model for r in lofo) + " |"
        body = [
            f"| {f} | " + " | ".join(f"{r.fold_eer.get(f, float('nan')) * 100:.1f} %" for r in lofo) + " |"
            for f in families_
        ]
        family_md = "\n".join([head, "|" + " --- |" * (len(lofo) + 1), *body])
        parts_md += ["## Leave-one-family-out EER per held-out family", "", family_md, ""]
        parts_html += ["<h2>Leave-one-family-out EER per held-out family</h2>", _md_table_to_html(family_md)]
    parts_md.append("## Full reports\n")
    parts_html.append("<h2>Full reports</h2><ul>")
    for model, protocol, link in links:
        parts_md.append(f"- [{model}, {protocol}]({link})")
        parts_html.append(f"<li><a href='{html.escape(link)}'>{html.escape(model)}, {html.escape(protocol)}</a></li>")
    parts_html.append("</ul>")
    (out / "comparison.md").write_text("\n".join(parts_md) + "\n")
    index = out / "index.html"
    index.write_text("\n".join(parts_html) + "\n")
    return index


def _md_table_to_html(table: str) -> str:
    """The Markdown tables of this report as HTML, with the report module's table writer."""
    from voxguard.evaluate.report import _html_table

    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in table.splitlines() if line.strip()]
    head, body = rows[0], rows[2:]
    return _html_table(head, body, [False] * len(head))
