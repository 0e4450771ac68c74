"""``voxguard scan``: the scanner on the command line (registered in :mod:`voxguard.cli`).

Exit codes: ``0`` every input was scanned; ``1`` usage error (bad option, unknown model or
operating point, matplotlib missing for ``--plot``); ``2`` at least one input failed (the others
were still scanned and reported); ``3`` with ``--fail-on-fake``, at least one file is FAKE.

When files failed *and* a file is FAKE under ``--fail-on-fake``, the exit code is ``3``: the
option exists to gate on fakes, and a detected fake is the finding a caller must not miss (a
script testing ``== 3`` would otherwise pass a batch with a fake in it because an unrelated file
was unreadable). Failures are still printed on stderr and listed in the output.
"""

from __future__ import annotations

import sys
import time
from contextlib import ExitStack, nullcontext
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

EXIT_FAKE_FOUND = 3


class OutputFormat(StrEnum):
    """Mirrors :class:`voxguard.scan.output.OutputFormat`; defined here so that registering the
    command (on every ``voxguard`` call) does not import the scanner and its audio stack."""

    table = "table"
    json = "json"
    jsonl = "jsonl"
    csv = "csv"


class OperatingPoint(StrEnum):
    eer = "eer"
    low_fa = "low-fa"


def scan(
    paths: Annotated[
        list[str],
        typer.Argument(
            help="Audio files, folders, glob patterns ('*.wav', '**/*.flac' with -r) or '-' for standard input.",
            metavar="PATH",
            show_default=False,
        ),
    ],
    recursive: Annotated[bool, typer.Option("--recursive", "-r", help="Scan folders recursively.")] = False,
    fmt: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="table for people; json, jsonl or csv for programs.")
    ] = OutputFormat.table,
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="Shipped model name or .onnx file (default: the default model)."),
    ] = None,
    threshold: Annotated[
        float | None,
        typer.Option(min=0.0, max=1.0, help="P(fake) threshold; overrides --operating-point.", show_default=False),
    ] = None,
    operating_point: Annotated[
        OperatingPoint, typer.Option("--operating-point", help="Threshold from the model card.")
    ] = OperatingPoint.eer,
    margin: Annotated[
        float, typer.Option(min=0.0, max=0.5, help="UNCERTAIN band half-width around the threshold.")
    ] = 0.1,
    segment: Annotated[
        float | None,
        typer.Option("--segment", min=0.05, help="Timeline segment in seconds (default: the model's, 4.0)."),
    ] = None,
    hop: Annotated[
        float | None, typer.Option("--hop", min=0.01, help="Hop between segments in seconds (default: segment / 2).")
    ] = None,
    workers: Annotated[int, typer.Option("--workers", "-j", min=1, help="Worker processes.")] = 1,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Write one PNG per file to this folder (needs matplotlib).")
    ] = None,
    fail_on_fake: Annotated[bool, typer.Option("--fail-on-fake", help="Exit with 3 if any file is FAKE.")] = False,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write results to this file instead of stdout.")
    ] = None,
    progress: Annotated[
        bool | None,
        typer.Option(
            "--progress/--no-progress",
            help="Progress bar on stderr (default: for batches when stderr is a terminal).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Scan recordings for AI-generated speech: a verdict per file and a timeline of segments.

    Each file gets REAL, FAKE or UNCERTAIN from the top-k mean of its segments' P(fake).
    Segments without enough speech are shown but do not count.
    Exit codes: 0 ok, 1 usage, 2 a file failed, 3 a FAKE with --fail-on-fake (3 wins over 2).
    """
    from voxguard.cli import EXIT_FILE_FAILED, EXIT_OK, EXIT_USAGE, _report_error, err
    from voxguard.errors import VoxguardError
    from voxguard.scan import Summary, Verdict, expand_inputs, load_detector, scan_many
    from voxguard.scan.output import ResultWriter
    from voxguard.scan.verdict import effective_margin

    if plot is not None:
        from voxguard.scan.plot import require_matplotlib

        try:
            require_matplotlib()
        except VoxguardError as exc:
            _report_error("--plot", exc)
            raise typer.Exit(EXIT_USAGE) from None
    try:
        scanner = load_detector(
            model,
            segment_s=segment,
            hop_s=hop,
            threshold=threshold,
            operating_point=operating_point.value,
            margin=margin,
        )
    except VoxguardError as exc:
        _report_error(model or "--model", exc)
        raise typer.Exit(EXIT_USAGE) from None
    except ValueError as exc:
        err.print(f"[red]error[/red] {escape(str(exc))}", highlight=False)
        raise typer.Exit(EXIT_USAGE) from None

    items = expand_inputs(paths, recursive=recursive)
    if not items:
        err.print("[yellow]nothing to scan[/yellow]: no audio file found in the given folders", highlight=False)
        raise typer.Exit(EXIT_OK)

    meta = {
        "model": scanner.model_name,
        "threshold": scanner.threshold,
        "operating_point": scanner.operating_point,
        "margin": effective_margin(scanner.threshold, scanner.margin),
        "segment_s": scanner.segment_s,
        "hop_s": scanner.hop_s,
    }
    show_progress = len(items) > 1 and (progress if progress is not None else err.is_terminal)
    summary = Summary()
    start = time.perf_counter()
    with ExitStack() as stack:
        stream = stack.enter_context(output.open("w", newline="")) if output is not None else sys.stdout
        writer = ResultWriter(fmt.value, stream, meta)
        bar = stack.enter_context(_progress(err, len(items)) if show_progress else nullcontext())
        for result in scan_many(scanner, items, workers=workers, plot_dir=plot):
            summary.add(result)
            if result.error is not None:
                _report_error(result.path, _as_error(result.error.code, result.error.message))
            writer.write(result)
            if bar is not None:
                bar.update(bar.task_ids[0], advance=1, hours=summary.audio_s / 3600.0)
        summary.wall_s = time.perf_counter() - start
        writer.close(summary)
    if len(items) > 1 or fmt is OutputFormat.table:
        err.print(summary.text(), highlight=False, soft_wrap=True)
    if output is not None:
        err.print(f"results: {escape(str(output))}", highlight=False, soft_wrap=True)
    if fail_on_fake and summary.verdicts[Verdict.FAKE.value]:
        raise typer.Exit(EXIT_FAKE_FOUND)
    raise typer.Exit(EXIT_FILE_FAILED if summary.failed else EXIT_OK)


def _as_error(code: str, message: str):
    """A per-file failure (stored as code + message) as an error for ``voxguard.cli._report_error``."""
    from voxguard.errors import VoxguardError

    exc = VoxguardError(message)
    exc.code = code
    return exc


def _progress(console, total: int):
    """A rich progress bar on stderr: files, hours of audio scanned, elapsed and remaining time."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn("scanning"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("files · {task.fields[hours]:.2f} h audio"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        redirect_stdout=False,  # results go to stdout, the bar stays on stderr
        redirect_stderr=False,
    )
    bar.add_task("scan", total=total, hours=0.0)
    return bar
