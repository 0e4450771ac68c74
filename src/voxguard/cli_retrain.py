"""``voxguard retrain``: a thin shell over :func:`voxguard.evaluate.retrain.retrain`.

It reads the labelled scans from the service's database
(:meth:`voxguard.server.storage.Storage.labelled_scans`: SQLAlchemy only, no web framework),
hands them to the library and maps the outcome to an exit code. Registered in :mod:`voxguard.cli`.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

#: The new model was worse and nothing was written (0: written; 1: usage; 2: data or database error).
EXIT_REFUSED = 4
# sqlalchemy reads the database ([server]); scikit-learn and skl2onnx train and export ([train]).
_NEEDED = {"sqlalchemy": "server", "sklearn": "train", "skl2onnx": "train"}


def _missing_extras() -> list[str]:
    return sorted({extra for module, extra in _NEEDED.items() if importlib.util.find_spec(module) is None})


def database_url(value: str) -> str:
    """A SQLAlchemy URL; an existing file path is taken as a SQLite database (the service's default)."""
    if "://" not in value and Path(value).expanduser().is_file():
        return f"sqlite:///{Path(value).expanduser().resolve()}"
    return value


def retrain(
    feedback_db: Annotated[
        str,
        typer.Option(
            "--feedback-db",
            help="The service's database: a SQLAlchemy URL (VOXGUARD_DATABASE_URL) or a SQLite file path.",
        ),
    ],
    base_model: Annotated[
        str, typer.Option("--base-model", help="Shipped model name or .onnx path of the model to improve.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="The new .onnx (its .card.json goes beside it).")],
    corpus: Annotated[
        list[Path] | None,
        typer.Option("--corpus", help="Base corpus: manifest CSV or dataset folder (repeatable)."),
    ] = None,
    name: Annotated[str | None, typer.Option(help="Model name in the card (default: the file stem).")] = None,
    validation_size: Annotated[
        float, typer.Option(help="Share of the recordings held out to compare old and new.", min=0.05, max=0.9)
    ] = 0.25,
    tolerance: Annotated[
        float, typer.Option(help="Accept a new EER up to the old one plus this (0.01 = one point).", min=0.0)
    ] = 0.0,
    force: Annotated[bool, typer.Option("--force", help="Write the new model even when it is worse.")] = False,
    use_audio: Annotated[
        bool, typer.Option(help="Also use kept audio (VOXGUARD_KEEP_AUDIO) for scans without usable vectors.")
    ] = True,
    augment: Annotated[bool, typer.Option(help="Add one degraded copy of every corpus clip.")] = True,
    workers: Annotated[int, typer.Option(help="Worker processes for corpus feature extraction.", min=1)] = 2,
    seed: Annotated[int, typer.Option(help="Seed of the validation split, folds and augmentation.")] = 0,
) -> None:
    """Retrain a model on its corpus plus the feedback stored by `voxguard serve`; keep it only if it is better.

    Both models are scored on the same grouped validation split (corpus clips by utt_group, feedback by
    file hash). When the new EER is worse, both EERs are printed, nothing is written and the exit code is 4,
    unless --force.
    """
    from voxguard.cli import EXIT_FILE_FAILED, EXIT_USAGE, _report_error, err

    if missing := _missing_extras():
        extras = ",".join(missing)
        err.print(f"error: retraining needs the [{extras}] extra(s): pip install 'voxguard[{extras}]'", markup=False)
        raise typer.Exit(EXIT_USAGE)
    import sqlalchemy as sa
    from rich.markup import escape

    from voxguard.cli_train import _load
    from voxguard.errors import VoxguardError
    from voxguard.evaluate.retrain import FeedbackExample
    from voxguard.evaluate.retrain import retrain as run_retrain
    from voxguard.server.storage import Storage

    def log(line: str) -> None:
        err.print(line, highlight=False)

    url = database_url(feedback_db)
    try:
        parsed = sa.engine.make_url(url)
        sqlite_file = parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:")
        if sqlite_file and not Path(str(parsed.database)).is_file():  # SQLite would create an empty one
            raise typer.BadParameter(f"no database file at {parsed.database}", param_hint="--feedback-db")
        storage = Storage(url)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as exc:
        raise typer.BadParameter(f"not a usable database URL: {exc}", param_hint="--feedback-db") from None
    try:
        log(f"reading feedback from {storage.engine.url.render_as_string(hide_password=True)} ...")
        scans = storage.labelled_scans(with_audio=use_audio)
    except sa.exc.SQLAlchemyError as exc:
        # SQLAlchemy messages can span lines (SQL, a link): the first line says what went wrong.
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        err.print(f"[red]error[/red] cannot read the feedback database: {escape(first)}", highlight=False)
        raise typer.Exit(EXIT_FILE_FAILED) from None
    finally:
        storage.close()
    log(f"{len(scans)} scans have feedback")
    feedback = [
        FeedbackExample(
            key=s.scan_id,
            file_sha256=s.file_sha256,
            label=s.label,
            vectors=s.vectors,
            vectors_spec=s.vectors_spec,
            audio=s.audio,
        )
        for s in scans
    ]
    try:
        dataset = _load(corpus) if corpus else None
        result = run_retrain(
            base_model,
            feedback,
            out,
            corpus=dataset,
            name=name,
            validation_size=validation_size,
            tolerance=tolerance,
            force=force,
            augment=augment,
            seed=seed,
            workers=workers,
            command="voxguard " + " ".join(sys.argv[1:]),
            data_description=" + ".join(str(c) for c in corpus or []),
            log=log,
        )
    except VoxguardError as exc:
        _report_error(base_model if not corpus else ", ".join(map(str, corpus)), exc)
        raise typer.Exit(EXIT_FILE_FAILED) from None
    print(f"old EER: {result.old_eer * 100:.2f} %")
    print(f"new EER: {result.new_eer * 100:.2f} %")
    if not result.written:
        print(f"refused: the new model is worse; {out} was not written (use --force to write it anyway)")
        raise typer.Exit(EXIT_REFUSED)
    print(f"{'accepted' if result.accepted else 'forced'}: wrote {out}")
    _companion_note(out, log)


def _companion_note(out: Path, log: Callable[[str], None]) -> None:
    """Say so when the base model had a wide-band companion: its mix was fitted with the base
    model's scores, so the scanner does not pair it with the retrained model."""
    from voxguard.models.companion import companion_for
    from voxguard.models.onnx_model import ModelCard, card_path

    base = str(ModelCard.load(card_path(out)).training.get("base_model", ""))
    companion = companion_for(base) if base else None
    if companion is not None:
        log(
            f"note: {base}'s wide-band companion ({companion.stem}) was fitted with {base}'s scores; "
            f"{out.name} scans at 16 kHz only until a companion is fitted with it "
            "(scripts/train_companion.py --main, docs/detectors.md)"
        )
