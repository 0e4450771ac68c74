"""Command-line shell. Thin: parses arguments, calls the library, prints, maps errors to exit codes.

Exit codes: 0 success; 1 usage error; 2 at least one input failed (the others were still processed).
"""

from __future__ import annotations

import json
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

# One BLAS/OpenMP thread per process, unless the user says otherwise: voxguard scales out with
# processes (--workers), and idle BLAS threads spinning next to them cost CPU time (measured: the
# scan path runs at ~690x real time per CPU second with one thread against ~455x with two).
# Must be set before numpy is imported.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import typer  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.markup import escape  # noqa: E402
from rich.table import Table  # noqa: E402
from typer.core import TyperGroup  # noqa: E402

from voxguard import __version__  # noqa: E402
from voxguard.errors import VoxguardError  # noqa: E402
from voxguard.features.registry import FEATURE_KINDS  # noqa: E402

EXIT_OK, EXIT_USAGE, EXIT_FILE_FAILED = 0, 1, 2

out = Console()
err = Console(stderr=True)


class _VoxguardGroup(TyperGroup):
    """Click's default exit status for a usage error is 2; voxguard reserves 2 for "a file failed"."""

    def main(self, *args, standalone_mode: bool = True, **kwargs):  # type: ignore[override]
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            rv = super().main(*args, standalone_mode=False, **kwargs)
        except typer.TyperException as exc:  # usage errors and other parser failures
            show = getattr(exc, "show", None)
            if callable(show):
                show()
            else:
                err.print(f"error: {exc.message}")
            sys.exit(EXIT_USAGE)
        except typer.Abort:
            err.print("Aborted!")
            sys.exit(EXIT_USAGE)
        sys.exit(rv if isinstance(rv, int) else EXIT_OK)


app = typer.Typer(
    cls=_VoxguardGroup,
    name="voxguard",
    help="Tell real human speech from AI-generated or manipulated speech.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
bench_app = typer.Typer(help="Benchmarks (throughput in seconds of audio per CPU second).", no_args_is_help=True)
app.add_typer(bench_app, name="bench")


def _report_error(path: str, exc: VoxguardError) -> None:
    """The one place where library errors become user-facing messages."""
    err.print(f"[red]error[/red] {escape(path)}: {escape(exc.message)} [dim]({exc.code})[/dim]", highlight=False)


def _version_callback(value: bool) -> None:
    if value:
        print(f"voxguard {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version_callback, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """voxguard command-line interface."""


def _read_input(path: str) -> str | bytes:
    """``-`` means standard input (read whole: decoders need to seek); anything else is a path."""
    return sys.stdin.buffer.read() if path == "-" else path


@app.command()
def info(
    files: Annotated[list[str], typer.Argument(help="Audio files ('-' for standard input).")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Show format, rate, channels, duration and detected speech duration of audio files."""
    from voxguard.audio import detect_speech, load

    table = Table("format", "codec", "rate", "ch", "duration", "speech")
    table.add_column("file", overflow="fold")
    failed = False
    for path in files:
        try:
            audio = load(_read_input(path), max_duration_s=None)
            meta = audio.info
            speech_s = detect_speech(audio.samples, audio.sample_rate).speech_s
        except VoxguardError as exc:
            _report_error(path, exc)
            failed = True
            continue
        row = meta.to_dict() | {"path": path, "duration_s": audio.duration_s, "speech_s": speech_s}
        if as_json:
            print(json.dumps(row))
        else:
            table.add_row(
                meta.container,
                meta.codec,
                f"{meta.sample_rate} Hz",
                str(meta.channels),
                f"{audio.duration_s:.2f} s",
                f"{speech_s:.2f} s",
                path,
            )
    if not as_json and table.row_count:
        out.print(table)
    raise typer.Exit(EXIT_FILE_FAILED if failed else EXIT_OK)


# The choices come from the one registry of feature kinds, so a new kind needs no CLI change.
FeatureKind = StrEnum("FeatureKind", {kind: kind for kind in FEATURE_KINDS})


@app.command()
def features(
    files: Annotated[
        list[str] | None,
        typer.Argument(
            help="Audio file ('-' for standard input); several files, folders, globs or URLs for batch mode.",
            show_default=False,
        ),
    ] = None,
    kind: Annotated[FeatureKind, typer.Option("--kind", "-k", help="Feature kind.")] = FeatureKind("mfcc"),
    out_path: Annotated[
        str | None,
        typer.Option(
            "--out",
            "-o",
            help="Output .npy or .csv (default: CSV on stdout); batch mode: a folder or URL for <name>.npy + "
            "index.jsonl (default: fill the cache, index on stdout).",
            show_default=False,
        ),
    ] = None,
    raw: Annotated[
        bool,
        typer.Option(
            "--raw",
            help="Skip the canonical preprocessing (trim/normalise). 'deepvoice' always uses the native "
            "rate without preprocessing, as the seed study did.",
        ),
    ] = False,
    engine: Annotated[
        str, typer.Option(help="Batch mode: local (--workers processes), dask-local or dask (--scheduler).")
    ] = "local",
    workers: Annotated[int, typer.Option("--workers", "-j", min=1, help="Batch mode: worker processes.")] = 1,
    scheduler: Annotated[
        str | None, typer.Option(help="Dask scheduler for --engine dask.", metavar="tcp://HOST:8786")
    ] = None,
    manifest: Annotated[
        str | None, typer.Option(help="Batch mode: inputs listed one per line, or a CSV with a 'path' column.")
    ] = None,
    recursive: Annotated[bool, typer.Option("--recursive", "-r", help="Batch mode: walk folders.")] = False,
    cache_dir: Annotated[
        Path | None, typer.Option(help="Batch mode: feature cache (default $VOXGUARD_CACHE or ~/.cache).")
    ] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Batch mode: neither read nor write the cache.")] = False,
) -> None:
    """Extract frame- or window-level features from one file, or (batch mode) from many, on any engine.

    Batch mode (several inputs, a folder, a URL, --manifest or a dask engine) computes the dataset
    cache's features (canonical preprocessing at 16 kHz, content-hash cache) and writes .npy files.
    """
    from voxguard.audio import load, preprocess
    from voxguard.features.registry import extract

    files = files or []
    one = Path(files[0]) if len(files) == 1 else None
    pattern = one is not None and not one.exists() and any(c in files[0] for c in "*?[")
    if one is None or manifest or engine != "local" or one.is_dir() or pattern or "://" in files[0]:
        from voxguard.cli_scan import Engine, features_batch

        if engine not in {e.value for e in Engine} or raw or (not files and manifest is None):
            err.print("error: batch mode needs inputs, an --engine of local, dask-local or dask, and no --raw")
            raise typer.Exit(EXIT_USAGE)
        raise typer.Exit(
            features_batch(
                files,
                kind=kind.value,
                out=out_path,
                engine=Engine(engine),
                workers=workers,
                scheduler=scheduler,
                manifest=manifest,
                recursive=recursive,
                cache_dir=cache_dir,
                use_cache=not no_cache,
            )
        )
    file = files[0]
    out_file = Path(out_path) if out_path is not None else None
    try:
        source = _read_input(file)
        if kind == "deepvoice":
            audio = load(source, sr=None)  # the seed computed its table at the native rate
            y, sr = audio.samples, audio.sample_rate
        else:
            audio = load(source)
            y, sr = audio.samples, audio.sample_rate
            if not raw:
                pre = preprocess(y, sr)
                y = pre.samples
        table = extract(kind.value, y, sr)
    except VoxguardError as exc:
        _report_error(file, exc)
        raise typer.Exit(EXIT_FILE_FAILED) from None
    if out_file is not None and out_file.suffix == ".npy":
        np.save(out_file, table.values)
        err.print(f"wrote {table.values.shape[0]} x {table.values.shape[1]} array to {out_file}")
        return
    header = "time_s," + ",".join(table.columns)
    body = np.column_stack([table.times_s, table.values])
    if out_file is None:
        np.savetxt(sys.stdout, body, delimiter=",", header=header, comments="", fmt="%.6g")
    else:
        np.savetxt(out_file, body, delimiter=",", header=header, comments="", fmt="%.6g")
        err.print(f"wrote {body.shape[0]} rows to {out_file}")


@app.command()
def report(
    scores_csv: Annotated[Path, typer.Argument(help="CSV with id or path, label, score, optional group columns.")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("report"),
    title: Annotated[str, typer.Option(help="Report title.")] = "voxguard evaluation",
    threshold: Annotated[
        float | None, typer.Option(help="Decision threshold (default: the EER threshold of these scores).")
    ] = None,
) -> None:
    """Write an HTML + Markdown report (ROC, DET, histograms, confusion matrix, per-group table)."""
    from voxguard.evaluate.report import read_scores_csv, write_report

    try:
        paths = write_report(read_scores_csv(scores_csv), out_dir, title=title, threshold=threshold)
    except VoxguardError as exc:
        _report_error(str(scores_csv), exc)
        raise typer.Exit(EXIT_FILE_FAILED) from None
    print(paths.markdown.read_text())
    err.print(f"report: {paths.html}")


@app.command("seed-study")
def seed_study(
    csv_path: Annotated[Path, typer.Option("--csv", help="DEEP-VOICE feature table (DATASET-balanced.csv).")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("reports/seed-study"),
    models: Annotated[str, typer.Option(help="Comma-separated: svm,cnn.")] = "svm,cnn",
    folds: Annotated[int, typer.Option(help="Stratified CV folds (0 to skip).")] = 5,
    epochs: Annotated[int, typer.Option(help="CNN epochs (the seed used 20).")] = 20,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 2,
    sample: Annotated[int | None, typer.Option(help="Use a stratified sample of this many rows.")] = None,
) -> None:
    """Reproduce the seed study (SVM and 1D CNN on DEEP-VOICE) and measure it properly."""
    from voxguard.evaluate import seed_study as study

    command = "voxguard " + " ".join(sys.argv[1:]) if sys.argv[1:] else "voxguard seed-study"
    try:
        table = study.read_feature_table(csv_path)
        if sample:
            table = study.stratified_sample(table, sample)
        result = study.run_seed_study(
            table,
            models=[m.strip() for m in models.split(",") if m.strip()],
            cv_folds=folds,
            cnn_epochs=epochs,
            workers=workers,
            log=lambda line: err.print(line, highlight=False),
        )
        paths = study.write_outputs(result, out_dir, command=command)
    except VoxguardError as exc:
        _report_error(str(csv_path), exc)
        raise typer.Exit(EXIT_FILE_FAILED) from None
    print(study.format_summary(result))
    for name, path in paths.items():
        err.print(f"{name}: {path}", highlight=False)


@app.command()
def models(
    name: Annotated[
        str | None, typer.Argument(help="Show this model's full card (a shipped name or .onnx path).")
    ] = None,
) -> None:
    """List the shipped models with their held-out metrics, or show one model card."""
    from voxguard.models.onnx_model import ModelCard, card_path
    from voxguard.models.registry import DEFAULT_MODEL, available_models, resolve_model

    if name is not None:
        try:
            print(json.dumps(ModelCard.load(card_path(resolve_model(name))).to_dict(), indent=2))
        except VoxguardError as exc:
            _report_error(name, exc)
            raise typer.Exit(EXIT_USAGE) from None
        return
    table = Table("model", "default", "features", "held-out metrics", "created")
    cards = available_models()
    # A fusion's members are models of their own; say whose member each is.
    member_of = {
        str(member).removesuffix(".onnx"): fused
        for fused, card in cards.items()
        if card.features.get("kind") == "fusion"
        for member in card.features.get("members") or []
    }
    for model_name, card in cards.items():
        m = card.metrics
        if "grouped_cv" in m:
            summary = f"grouped-CV EER {m['grouped_cv']['eer'] * 100:.1f} %"
            if "leave_one_family_out" in m:
                summary += f", LOFO mean EER {m['leave_one_family_out']['mean_eer'] * 100:.1f} %"
        else:
            summary = f"EER {m.get('eer', float('nan')) * 100:.2f} % ({m.get('split', '?')})"
        kind = card.features.get("kind", "?")
        companion = card.output.get("companion")
        if model_name in member_of:
            kind = f"{kind} (member of {member_of[model_name]})"
        elif isinstance(companion, dict):
            # A wide-band companion: used beside its main model, on recordings with the band above 8 kHz.
            kind = f"{kind} (wide-band companion of {companion.get('main')})"
        table.add_row(
            model_name,
            "yes" if model_name == DEFAULT_MODEL else "",
            kind,
            summary,
            card.created,
        )
    out.print(table)
    from voxguard.models.watermark import WATERMARK_DIR

    for card_file in sorted(WATERMARK_DIR.glob("*.card.json")):  # not detectors: `voxguard scan --watermark`
        wm = json.loads(card_file.read_text())
        out.print(
            f"watermark decoder [bold]{wm['name']}[/bold] (voxguard scan --watermark): claims a mark at "
            f"confidence >= {wm['threshold']} over >= {wm['min_signal_s']} s; docs/watermark.md",
            highlight=False,
        )


@bench_app.command("features")
def bench_features_cmd(
    duration: Annotated[float, typer.Option(help="Seconds of generated speech-like audio.")] = 60.0,
    repeats: Annotated[int, typer.Option(help="Best of this many runs.")] = 3,
) -> None:
    """Feature extraction speed, voxguard next to librosa on the same audio in the same process."""
    from voxguard.bench import bench_features, format_bench_table

    rows = bench_features(duration_s=duration, repeats=repeats)
    print(format_bench_table(rows))


from voxguard.cli_bench import bench_scale_cmd as _bench_scale  # noqa: E402
from voxguard.cli_bench import bench_scan_cmd as _bench_scan  # noqa: E402
from voxguard.cli_corpus import corpus_app as _corpus_app  # noqa: E402
from voxguard.cli_retrain import retrain as _retrain  # noqa: E402
from voxguard.cli_robustness import robustness as _robustness  # noqa: E402
from voxguard.cli_scan import scan as _scan  # noqa: E402
from voxguard.cli_serve import serve as _serve  # noqa: E402
from voxguard.cli_synth import synth as _synth  # noqa: E402
from voxguard.cli_train import compare as _compare  # noqa: E402
from voxguard.cli_train import export as _export  # noqa: E402
from voxguard.cli_train import train as _train  # noqa: E402

app.command("scan")(_scan)
bench_app.command("scan")(_bench_scan)
bench_app.command("scale")(_bench_scale)
app.command("serve")(_serve)
app.command("retrain")(_retrain)
app.command("train")(_train)
app.command("compare")(_compare)
app.command("export")(_export)
app.command("robustness")(_robustness)
_corpus_app.command("synth")(_synth)
app.add_typer(_corpus_app, name="corpus")

if __name__ == "__main__":  # pragma: no cover
    app()
