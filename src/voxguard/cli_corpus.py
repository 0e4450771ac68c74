"""``voxguard corpus ...``: corpus checks (a Typer sub-app; ``cli.py`` mounts it as ``corpus``).

Exit codes follow the main CLI: 0 success; 1 usage error; 2 the manifest cannot be read, or at
least one clip could not be measured (the others were still audited). Clips that the canonical
preprocessing rejects (under 0.5 s of speech, silence) are listed but do not fail an audit with
``--preprocessed``: no model sees them either.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from voxguard.errors import VoxguardError

if TYPE_CHECKING:
    from voxguard.datasets.audit import AuditResult

EXIT_OK, EXIT_FAILED = 0, 2

out = Console()
err = Console(stderr=True)

corpus_app = typer.Typer(
    help="Corpus checks: does the recording chain (rate, codec, silence, loudness, ...) give the label away?",
    no_args_is_help=True,
)


def _auc(x: float) -> str:
    return f"{x:.3f}" if math.isfinite(x) else "n/a"


@corpus_app.command("audit")
def audit_command(
    manifest: Annotated[
        Path, typer.Argument(help="Manifest CSV, or any corpus folder/spec voxguard.datasets.load_dataset reads.")
    ],
    preprocessed: Annotated[
        bool,
        typer.Option(
            "--preprocessed", help="Measure after the canonical preprocessing (what a model sees) instead of raw."
        ),
    ] = False,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write report.html, summary.md, audit.json and metadata.csv here."),
    ] = None,
    workers: Annotated[int, typer.Option("--workers", "-j", min=1, help="Worker processes.")] = 1,
    group_by: Annotated[
        str,
        typer.Option(
            "--group-by", help="Grouping column(s) for the cross-validation, comma-separated (e.g. speaker,utt_group)."
        ),
    ] = "utt_group",
    seed: Annotated[int, typer.Option(help="Fold assignment and classifier seed.")] = 0,
    exclude: Annotated[
        list[str] | None,
        typer.Option("--exclude", "-x", help="Property the metadata classifier must not use (repeatable)."),
    ] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Neither read nor write the metadata cache.")] = False,
    detector_scores: Annotated[
        Path | None,
        typer.Option(
            "--detector-scores",
            help="A detector's held-out clip scores (CSV with an id column, as --scores-out writes): report its "
            "EER within strata of the metadata classifier's score.",
        ),
    ] = None,
    score_column: Annotated[
        str | None, typer.Option("--score-column", help="Column of --detector-scores (default: the only one).")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Shortcut audit: train a classifier on recording-chain metadata alone (grouped CV) and report its AUC.

    An AUC near 0.5 means the chain does not give the label away; >= 0.7 is a strong shortcut. The
    per-property AUCs name what leaks. With ``--detector-scores``, a detector's EER is also
    compared within strata of the metadata classifier's score: what it separates there, it did
    not learn from the recording chain.
    """
    from voxguard.datasets import DatasetError, load_dataset
    from voxguard.datasets.audit import PROPERTIES, audit, write_audit_report

    unknown = sorted(set(exclude or ()) - set(PROPERTIES))
    if unknown:
        err.print(f"error: unknown property {', '.join(unknown)}; known: {', '.join(PROPERTIES)}")
        raise typer.Exit(1)

    detector: tuple[str, dict[str, float]] | None = None
    if detector_scores is not None:
        from voxguard.evaluate.shortcuts import read_scores

        try:
            detector = read_scores(detector_scores, score_column)
        except (OSError, ValueError) as exc:
            err.print(f"error: --detector-scores: {exc}", highlight=False)
            raise typer.Exit(1) from None

    try:
        dataset = load_dataset(manifest)
    except DatasetError as exc:
        err.print(f"[red]error[/red] {exc} [dim]({exc.code})[/dim]", highlight=False)
        raise typer.Exit(EXIT_FAILED) from None
    if len(dataset) == 0:
        err.print(f"[red]error[/red] {manifest}: no items", highlight=False)
        raise typer.Exit(EXIT_FAILED)

    result = audit(
        dataset,
        preprocessed=preprocessed,
        workers=workers,
        group_by=group_by,
        seed=seed,
        exclude=exclude or (),
        use_cache=not no_cache,
        progress=not quiet,
    )
    for f in result.failures:
        kind = "rejected" if f in result.rejected else "error"
        colour = "yellow" if kind == "rejected" else "red"
        err.print(f"[{colour}]{kind}[/{colour}] {f.path}: {f.message} [dim]({f.code})[/dim]", highlight=False)

    view = "preprocessed" if preprocessed else "raw"
    out.print(f"[bold]Shortcut audit of {dataset.name} ({view})[/bold]")
    out.print(result.verdict(), highlight=False)
    c = result.classifier
    if c is not None:
        out.print(
            f"metadata classifier: AUC {_auc(c.auc)}, EER {100 * c.eer:.1f} % "
            f"(folds: {', '.join(_auc(a) for a in c.fold_aucs)}) -> {c.level.upper()}",
            highlight=False,
        )
    table = Table("property", "AUC (grouped CV)", "rank AUC", "shortcut", "bonafide", "spoof", title="per property")
    for p in result.properties:
        table.add_row(p.name, _auc(p.auc_cv), _auc(p.auc_rank), p.level, p.bonafide, p.spoof)
    out.print(table)
    for w in result.warnings:
        err.print(f"[yellow]warning[/yellow] {w}", highlight=False)
    out.print(
        f"{len(result.ok)} clips, {result.audio_s / 60:.1f} min of audio in {result.elapsed_s:.1f} s "
        f"({result.n_cached} from the cache)",
        highlight=False,
    )
    strata_json = _report_detector(result, detector) if detector is not None else None
    if out_dir is not None:
        try:
            paths = write_audit_report(result, out_dir)
            if strata_json is not None:
                (Path(out_dir) / "detector_strata.json").write_text(strata_json, encoding="utf-8")
        except (VoxguardError, OSError) as exc:
            err.print(f"[red]error[/red] cannot write the report to {out_dir}: {exc}", highlight=False)
            raise typer.Exit(EXIT_FAILED) from None
        err.print(f"report: {paths.html}")
    raise typer.Exit(EXIT_FAILED if result.errors else EXIT_OK)


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %" if math.isfinite(x) else "n/a"


def _report_detector(result: AuditResult, detector: tuple[str, dict[str, float]]) -> str:
    """Print the detector's EER within strata of the metadata score; returns the JSON for --out."""
    import dataclasses
    import json

    from voxguard.evaluate.metrics import MetricError
    from voxguard.evaluate.shortcuts import eer_within_strata

    column, scores = detector
    rows = [r for r in result.item_rows() if r["id"] in scores and math.isfinite(r["score"])]
    if not rows:
        err.print(
            f"error: no clip of the audit has a score in --detector-scores ({len(scores)} ids there; "
            "ids are paths relative to the manifest, as --scores-out writes them)",
            highlight=False,
        )
        raise typer.Exit(1)
    try:
        res = eer_within_strata([r["label"] for r in rows], [scores[r["id"]] for r in rows], [r["score"] for r in rows])
    except MetricError as exc:
        err.print(f"error: --detector-scores: {exc}", highlight=False)
        raise typer.Exit(1) from None
    out.print(
        f"[bold]{column}[/bold] on {len(rows)} audited clips: EER {_pct(res.detector_eer)} "
        f"(metadata alone {_pct(res.shortcut_eer)}); within strata of the metadata score "
        f"{_pct(res.within_detector_eer)} (metadata {_pct(res.within_shortcut_eer)}, {res.n_within} clips); "
        f"Spearman with the metadata score: bona fide {res.spearman_bonafide:.2f}, spoof {res.spearman_spoof:.2f}",
        highlight=False,
    )
    table = Table("metadata score", "clips", "spoofs", "detector EER", "metadata EER", title="within strata")
    for st in res.strata:
        table.add_row(
            f"{st.low:.3f}-{st.high:.3f}", str(st.n), str(st.n_spoof), _pct(st.detector_eer), _pct(st.shortcut_eer)
        )
    out.print(table)
    payload = {"column": column, "n": len(rows)} | dataclasses.asdict(res)
    return json.dumps(payload, indent=2, allow_nan=True)


__all__ = ["corpus_app"]
