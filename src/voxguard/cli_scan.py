"""``voxguard scan``: the scanner on the command line (registered in :mod:`voxguard.cli`).

Exit codes: ``0`` every input was scanned; ``1`` usage error (bad option, unknown model or
operating point, matplotlib missing for ``--plot``); ``2`` at least one input failed (the others
were still scanned and reported); ``3`` with ``--fail-on-fake``, at least one file is FAKE.

``--engine dask`` / ``dask-local`` run the batch on a Dask cluster and URLs (``s3://``, ``gs://``,
``memory://``, ...) are read through fsspec (:mod:`voxguard.scan.distributed`); a missing Dask,
fsspec backend or pyarrow (``--format parquet``) is a usage error naming the package to install.

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


class ScanFormat(StrEnum):
    """``--format``: the :class:`OutputFormat` values, plus ``parquet`` (written by
    :class:`voxguard.scan.distributed.ParquetResultWriter`, needs pyarrow)."""

    table = "table"
    json = "json"
    jsonl = "jsonl"
    csv = "csv"
    parquet = "parquet"


class Engine(StrEnum):
    """Where the batch runs (see :mod:`voxguard.scan.distributed`)."""

    local = "local"
    dask = "dask"
    dask_local = "dask-local"


class OperatingPoint(StrEnum):
    eer = "eer"
    low_fa = "low-fa"
    unseen_eer = "unseen-eer"


def scan(
    paths: Annotated[
        list[str] | None,
        typer.Argument(
            help="Audio files, folders, glob patterns ('*.wav', '**/*.flac' with -r), URLs (s3://, gs://, "
            "file://, ...; needs fsspec and its backend) or '-' for standard input.",
            metavar="PATH",
            show_default=False,
        ),
    ] = None,
    recursive: Annotated[bool, typer.Option("--recursive", "-r", help="Scan folders recursively.")] = False,
    fmt: Annotated[
        ScanFormat,
        typer.Option(
            "--format", "-f", help="table for people; json, jsonl, csv or parquet (needs pyarrow, --out) for programs."
        ),
    ] = ScanFormat.table,
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="Shipped model name or .onnx file (default: the default model)."),
    ] = None,
    threshold: Annotated[
        float | None,
        typer.Option(min=0.0, max=1.0, help="P(fake) threshold; overrides --operating-point.", show_default=False),
    ] = None,
    operating_point: Annotated[
        OperatingPoint,
        typer.Option(
            "--operating-point",
            help="Threshold from the model card: eer (equal errors on generator families seen in training), "
            "low-fa (at most 1 % of real clips flagged) or unseen-eer (equal errors on families the model "
            "never saw: a lower threshold that catches more new generators and flags more real speech).",
        ),
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
    workers: Annotated[
        int, typer.Option("--workers", "-j", min=1, help="Worker processes (local and dask-local engines).")
    ] = 1,
    engine: Annotated[
        Engine,
        typer.Option(
            help="local: this machine (--workers processes); dask-local: a local Dask cluster of "
            "--workers processes; dask: the cluster at --scheduler."
        ),
    ] = Engine.local,
    scheduler: Annotated[
        str | None,
        typer.Option(
            help="Dask scheduler address for --engine dask (default: $DASK_SCHEDULER_ADDRESS).",
            metavar="tcp://HOST:8786",
            show_default=False,
        ),
    ] = None,
    retries: Annotated[
        int, typer.Option(min=0, help="Dask engines: re-runs of a file's task that raised (e.g. a network error).")
    ] = 2,
    manifest: Annotated[
        str | None,
        typer.Option(
            help="A list of inputs: one path or URL per line, or a CSV with a 'path' column (path or URL).",
            show_default=False,
        ),
    ] = None,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Write one PNG per file to this folder (needs matplotlib).")
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option(
            "--report",
            help="Also write an HTML report to this folder: the verdicts, every file's P(fake) and each "
            "file's timeline (needs matplotlib).",
        ),
    ] = None,
    fail_on_fake: Annotated[bool, typer.Option("--fail-on-fake", help="Exit with 3 if any file is FAKE.")] = False,
    watermark: Annotated[
        bool,
        typer.Option(
            "--watermark",
            help="Also look for Resemble AI's Perth watermark (Chatterbox TTS output); a mark makes the "
            "verdict FAKE. About 40x real time per core, far slower than the detector alone.",
        ),
    ] = False,
    wide_band: Annotated[
        bool,
        typer.Option(
            "--wide-band/--no-wide-band",
            help="Mix in the model's wide-band companion (8-9.8 kHz at 22.05 kHz) for recordings that have "
            "that band (measured); --no-wide-band scores every file with the main model alone.",
        ),
    ] = True,
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            "--out",
            "-o",
            help="Write results to this file or URL (fsspec) instead of stdout.",
            show_default=False,
        ),
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
    from voxguard.scan import Summary, Verdict, expand_inputs, load_detector
    from voxguard.scan.distributed import (
        ParquetResultWriter,
        expand_sources,
        is_url,
        open_output,
        require_dask,
        scan_batch,
    )
    from voxguard.scan.output import ResultWriter
    from voxguard.scan.verdict import effective_margin

    if not paths and manifest is None:
        err.print("[red]error[/red] give at least one PATH or --manifest", highlight=False)
        raise typer.Exit(EXIT_USAGE)
    usage = _engine_usage_error(engine, scheduler, plot, fmt, output, report)
    if usage:
        err.print(f"[red]error[/red] {escape(usage)}", highlight=False)
        raise typer.Exit(EXIT_USAGE)
    try:
        if engine is not Engine.local:
            require_dask()
        if fmt is ScanFormat.parquet:
            from voxguard.scan.distributed import require_pyarrow

            require_pyarrow()
    except VoxguardError as exc:
        _report_error(f"--engine {engine.value}" if engine is not Engine.local else "--format parquet", exc)
        raise typer.Exit(EXIT_USAGE) from None
    if plot is not None or report is not None:
        from voxguard.scan.plot import require_matplotlib

        try:
            require_matplotlib()
        except VoxguardError as exc:
            _report_error("--plot" if plot is not None else "--report", exc)
            raise typer.Exit(EXIT_USAGE) from None
    try:
        scanner = load_detector(
            model,
            segment_s=segment,
            hop_s=hop,
            threshold=threshold,
            operating_point=operating_point.value,
            margin=margin,
            watermark=watermark,
            wide_band=wide_band,
        )
    except VoxguardError as exc:
        _report_error(model or "--model", exc)
        raise typer.Exit(EXIT_USAGE) from None
    except ValueError as exc:
        err.print(f"[red]error[/red] {escape(str(exc))}", highlight=False)
        raise typer.Exit(EXIT_USAGE) from None

    paths = paths or []
    try:
        if manifest is not None or any(is_url(p) for p in paths):
            items = expand_sources(paths, recursive=recursive, manifest=manifest)
        else:
            items = expand_inputs(paths, recursive=recursive)  # no fsspec needed for local paths
    except VoxguardError as exc:  # a URL without its fsspec backend, an unknown protocol, a bad manifest
        _report_error(exc.path or "input", exc)
        raise typer.Exit(EXIT_USAGE) from None
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
    html_report = None
    if report is not None:
        from voxguard.scan.report import ScanReport

        html_report = ScanReport(report, meta)
        plot = plot if plot is not None else html_report.timelines_dir
    summary = Summary()
    start = time.perf_counter()
    results = scan_batch(
        scanner, items, engine=engine.value, workers=workers, scheduler=scheduler, retries=retries, plot_dir=plot
    )
    try:
        with ExitStack() as stack:
            writer: ResultWriter | ParquetResultWriter
            if fmt is ScanFormat.parquet:
                assert output is not None
                writer = ParquetResultWriter(output, meta)
            else:
                stream = stack.enter_context(open_output(output)) if output is not None else sys.stdout
                writer = ResultWriter(fmt.value, stream, meta)
            bar = stack.enter_context(_progress(err, len(items)) if show_progress else nullcontext())
            for result in results:
                summary.add(result)
                if result.error is not None:
                    _report_error(result.path, _as_error(result.error.code, result.error.message))
                writer.write(result)
                if html_report is not None:
                    html_report.add(result)
                if bar is not None:
                    bar.update(bar.task_ids[0], advance=1, hours=summary.audio_s / 3600.0)
            summary.wall_s = time.perf_counter() - start
            writer.close(summary)
            if html_report is not None:
                index = html_report.write(summary)
    except VoxguardError as exc:  # the output URL's fsspec backend is missing
        _report_error(output or "--output", exc)
        raise typer.Exit(EXIT_USAGE) from None
    except OSError as exc:  # the scheduler is unreachable, or the output cannot be written
        err.print(f"[red]error[/red] {escape(type(exc).__name__)}: {escape(str(exc))}", highlight=False)
        raise typer.Exit(EXIT_USAGE) from None
    finally:
        results.close()
    if len(items) > 1 or fmt is ScanFormat.table:
        err.print(summary.text(), highlight=False, soft_wrap=True)
    if output is not None:
        err.print(f"results: {escape(str(output))}", highlight=False, soft_wrap=True)
    if html_report is not None:
        err.print(f"report: {escape(str(index))}", highlight=False, soft_wrap=True)
    if fail_on_fake and summary.verdicts[Verdict.FAKE.value]:
        raise typer.Exit(EXIT_FAKE_FOUND)
    raise typer.Exit(EXIT_FILE_FAILED if summary.failed else EXIT_OK)


def _engine_usage_error(
    engine: Engine,
    scheduler: str | None,
    plot: Path | None,
    fmt: ScanFormat,
    output: str | None,
    report: Path | None = None,
) -> str | None:
    """Why this combination of engine and output options cannot work, or ``None``."""
    import os

    if engine is Engine.dask and not (scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS")):
        return "--engine dask needs --scheduler tcp://HOST:8786 (or DASK_SCHEDULER_ADDRESS)"
    if scheduler and engine is not Engine.dask:
        return "--scheduler is for --engine dask"
    if plot is not None and engine is not Engine.local:
        return "--plot needs --engine local (dask workers may not share this machine's disk)"
    if report is not None and engine is not Engine.local:
        return "--report needs --engine local (its timelines are drawn where the files are scanned)"
    if fmt is ScanFormat.parquet and output is None:
        return "--format parquet needs --out FILE-OR-URL (Parquet is not written to a terminal)"
    return None


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


def features_batch(
    files: list[str],
    *,
    kind: str,
    out: str | None,
    engine: Engine,
    workers: int,
    scheduler: str | None,
    manifest: str | None,
    recursive: bool,
    cache_dir: Path | None,
    use_cache: bool,
) -> int:
    """``voxguard features`` on many inputs (several files, a folder, URLs, a manifest or a dask engine).

    Lives here, next to ``scan``, because it shares the engine options and input handling. Computes
    what :func:`voxguard.datasets.extract_features` computes (the canonical preprocessing, then
    ``kind``) through the same content-hash cache, so a later ``voxguard train`` on the same files
    hits it. With ``out`` (a folder or URL prefix) it writes one ``<file name>.npy`` per input and
    ``index.jsonl``; without it the workers only fill the cache and the index goes to stdout.

    Returns
    -------
    int
        The exit code: 0, 1 (usage) or 2 (an input failed).
    """
    import json

    import numpy as np

    from voxguard.cli import EXIT_FILE_FAILED, EXIT_OK, EXIT_USAGE, _report_error, err
    from voxguard.errors import VoxguardError
    from voxguard.scan.batch import plot_paths
    from voxguard.scan.distributed import expand_sources, extract_many, is_url, open_output, require_dask
    from voxguard.scan.inputs import expand_inputs

    usage = _engine_usage_error(engine, scheduler, None, ScanFormat.jsonl, None)
    if usage is None and out is None and not use_cache:
        usage = "with --no-cache, give --out: otherwise nothing would be kept"
    if usage:
        err.print(f"[red]error[/red] {escape(usage)}", highlight=False)
        return EXIT_USAGE
    try:
        if engine is not Engine.local:
            require_dask()
        if manifest is not None or any(is_url(f) for f in files):
            items = expand_sources(files, recursive=recursive, manifest=manifest)
        else:
            items = expand_inputs(files, recursive=recursive)
    except VoxguardError as exc:
        _report_error(exc.path or "input", exc)
        return EXIT_USAGE
    if not items:
        err.print("[yellow]nothing to do[/yellow]: no audio file found in the given folders", highlight=False)
        return EXIT_OK
    # One output name per input (the file's name + .npy, -2, -3 on clashes), as --plot names its PNGs.
    names = [p.name.removesuffix(".png") + ".npy" for p in plot_paths(items, Path("."))]
    prefix = out.rstrip("/") if out is not None else None
    start = time.perf_counter()
    failed = cached = 0
    audio_s = 0.0
    records = extract_many(
        items,
        kind,
        engine=engine.value,
        workers=workers,
        scheduler=scheduler,
        cache_dir=cache_dir,
        use_cache=use_cache,
        keep_tables=prefix is not None,
    )
    try:
        with ExitStack() as stack:
            index = stack.enter_context(open_output(f"{prefix}/index.jsonl")) if prefix is not None else sys.stdout
            for rec, name in zip(records, names, strict=True):
                table = rec.pop("table", None)
                if rec["ok"]:
                    cached += rec["cached"]
                    audio_s += rec.get("input_duration_s") or 0.0
                    if prefix is not None and table is not None:
                        rec["output"] = f"{prefix}/{name}"
                        with open_output(rec["output"], "wb") as fh:
                            np.save(fh, table.values)
                else:
                    failed += 1
                    _report_error(rec["path"], _as_error(rec["error"]["code"], rec["error"]["message"]))
                index.write(json.dumps(rec, allow_nan=False) + "\n")
                index.flush()
    except VoxguardError as exc:  # the output URL's fsspec backend is missing
        _report_error(out or "--out", exc)
        return EXIT_USAGE
    except OSError as exc:  # the scheduler is unreachable, or the output cannot be written
        err.print(f"[red]error[/red] {escape(type(exc).__name__)}: {escape(str(exc))}", highlight=False)
        return EXIT_USAGE
    finally:
        records.close()
    err.print(
        f"{len(items)} files: {len(items) - failed} ok ({cached} from the cache), {failed} failed; "
        f"{audio_s / 3600.0:.3f} h of audio in {time.perf_counter() - start:.1f} s"
        + (f"; wrote {prefix}/index.jsonl" if prefix is not None else ""),
        highlight=False,
        soft_wrap=True,
    )
    return EXIT_FILE_FAILED if failed else EXIT_OK
