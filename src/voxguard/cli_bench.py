"""``voxguard bench scan``: the speed of every stage of a scan next to the seed study's pipeline;
``bench scale``: one batch on 1, 2, ... workers (process pool and local Dask cluster).

Registered by :mod:`voxguard.cli` on its ``bench`` sub-app; this module only defines the commands
(``scripts/scaling.py`` runs ``bench_scale_cmd`` on its own).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["bench_scale_cmd", "bench_scan_cmd", "scan_bench_markdown"]


def scan_bench_markdown(
    rows: list[dict[str, Any]],
    rss: dict[str, Any] | None = None,
    *,
    machine: dict[str, Any] | None = None,
    command: str | None = None,
) -> str:
    """A Markdown report of :func:`voxguard.bench.bench_scan` rows (and a peak-RSS measurement).

    Parameters
    ----------
    rows : list of dict
        Rows of :func:`voxguard.bench.bench_scan`.
    rss : dict, optional
        Result of :func:`voxguard.bench.peak_rss_scan`.
    machine : dict, optional
        :func:`voxguard.bench.machine_info` (measured here when omitted).
    command : str, optional
        The command line that produced the numbers.

    Returns
    -------
    str
    """
    from voxguard.bench import format_scan_bench, machine_info

    m = machine or machine_info()
    lines = [f"# voxguard scan benchmark ({date.today().isoformat()})", ""]
    if command:
        lines += ["```sh", command, "```", ""]
    ram = f"{m['ram_gib']:.1f} GiB RAM" if m.get("ram_gib") else "RAM unknown"
    lines.append(
        f"Machine: {m.get('cpu')}, {m.get('cores_usable', m.get('cores'))} usable cores of {m.get('cores')}, {ram}; "
        f"Python {m.get('python')}, numpy {m.get('numpy')}, scipy {m.get('scipy')}, "
        f"onnxruntime {m.get('onnxruntime')}, librosa {m.get('librosa') or 'not installed'}, "
        f"scikit-learn {m.get('sklearn') or 'not installed'}, voxguard {m.get('voxguard')}."
    )
    lines += ["", format_scan_bench(rows, markdown=True)]
    if rss is not None:
        lines += [
            "",
            f"Peak RSS of `load_detector().scan()` on a {rss['audio_s'] / 3600:g}-hour generated WAV "
            f"({rss['file_mb']:.0f} MB, model {rss['model']}), in a fresh subprocess (VmHWM): "
            f"**{rss['peak_rss_mb']:.0f} MB** ({rss['baseline_rss_mb']:.0f} MB after importing voxguard and "
            f"loading the model); scan {rss['scan_wall_s']:.1f} s wall, {rss['scan_cpu_s']:.1f} s CPU.",
        ]
    return "\n".join(lines) + "\n"


def bench_scan_cmd(
    files: Annotated[
        list[Path] | None,
        typer.Argument(help="Audio files to time (default: generated speech-like audio of --duration seconds)."),
    ] = None,
    duration: Annotated[float, typer.Option(help="Seconds of generated audio when no files are given.")] = 120.0,
    repeats: Annotated[int, typer.Option(help="Timed runs per stage (best kept), after one warm-up run.")] = 3,
    rss_hours: Annotated[
        float, typer.Option(help="Also measure the peak RSS of scanning a generated file this many hours long.")
    ] = 0.0,
    model: Annotated[str | None, typer.Option(help="Model name or .onnx path (default: the default model).")] = None,
    out: Annotated[Path | None, typer.Option(help="Also write the results as Markdown to this file.")] = None,
    watermark: Annotated[
        bool, typer.Option("--watermark", help="Also time the Perth watermark check and a scan with it.")
    ] = False,
) -> None:
    """Speed of each scan stage, and of the seed pipeline (librosa + SVC), on the same audio."""
    from voxguard.bench import bench_scan, format_scan_bench, peak_rss_scan

    if repeats < 1 or (not files and duration <= 0) or rss_hours < 0:
        typer.echo("error: need --repeats >= 1, --duration > 0 and --rss-hours >= 0", err=True)
        raise typer.Exit(1)
    rows = bench_scan(list(files) if files else duration, repeats=repeats, model=model, watermark=watermark)
    print(format_scan_bench(rows))
    rss = None
    if rss_hours > 0:
        rss = peak_rss_scan(rss_hours * 3600.0, model=model)
        print(
            f"\npeak RSS scanning {rss['audio_s'] / 3600:g} h ({rss['file_mb']:.0f} MB WAV): "
            f"{rss['peak_rss_mb']:.0f} MB (after imports + model load: {rss['baseline_rss_mb']:.0f} MB); "
            f"scan {rss['scan_wall_s']:.1f} s wall"
        )
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(scan_bench_markdown(rows, rss))
        print(f"wrote {out}")


def bench_scale_cmd(
    files: Annotated[
        list[Path] | None,
        typer.Argument(help="Audio files of the batch (default: --files generated clips of 10-30 s)."),
    ] = None,
    n_files: Annotated[int, typer.Option("--files", min=1, help="Generated clips when no files are given.")] = 40,
    min_s: Annotated[float, typer.Option(help="Shortest generated clip in seconds.")] = 10.0,
    max_s: Annotated[float, typer.Option(help="Longest generated clip in seconds.")] = 30.0,
    workers: Annotated[str, typer.Option(help="Worker counts to time, comma-separated.")] = "1,2",
    engines: Annotated[str, typer.Option(help="Engines to time, comma-separated: process, dask-local.")] = (
        "process,dask-local"
    ),
    repeats: Annotated[int, typer.Option(min=1, help="Timed runs per configuration (best and median kept).")] = 3,
    price: Annotated[float, typer.Option(help="Assumed price of a core-hour (USD) for the cost line.")] = 0.04,
    model: Annotated[str | None, typer.Option(help="Model name or .onnx path (default: the default model).")] = None,
    out: Annotated[Path | None, typer.Option(help="Also write the results as Markdown to this file.")] = None,
) -> None:
    """Scaling: wall time of one batch on 1, 2, ... workers, process pool and dask-local, and the speed-up."""
    import shlex
    import sys

    from voxguard.bench import bench_scale, format_scale_bench, machine_info

    try:
        counts = [int(w) for w in workers.split(",") if w.strip()]
        names = [e.strip() for e in engines.split(",") if e.strip()]
        rows = bench_scale(
            list(files) if files else None,
            n_files=n_files,
            min_s=min_s,
            max_s=max_s,
            workers=counts,
            engines=names,
            repeats=repeats,
            model=model,
        )
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    print(format_scale_bench(rows, price_per_core_hour=price))
    if out is not None:
        m = machine_info()
        text = (
            f"# voxguard scaling ({date.today().isoformat()})\n\n```sh\n{shlex.join(sys.argv)}\n```\n\n"
            f"Machine: {m.get('cpu')}, {m.get('cores_usable', m.get('cores'))} usable cores of {m.get('cores')}; "
            f"Python {m.get('python')}, onnxruntime {m.get('onnxruntime')}, voxguard {m.get('voxguard')}.\n\n"
            + format_scale_bench(rows, markdown=True, price_per_core_hour=price)
            + "\n"
        )
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        print(f"wrote {out}")
