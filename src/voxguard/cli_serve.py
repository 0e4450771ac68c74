"""``voxguard serve``: run the REST service with uvicorn (registered in :mod:`voxguard.cli`).

Options given here are passed to the app as ``VOXGUARD_*`` environment variables, so that every
worker process (``--workers N``) builds the same app with the factory
:func:`voxguard.server.app.create_app`; other settings (limits, API keys, database URL, CORS)
come from the environment directly (see ``docs/service.md``).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Annotated

import typer

_SERVER_MODULES = ("fastapi", "uvicorn", "multipart", "sqlalchemy")


def _missing_server_modules() -> list[str]:
    return [m for m in _SERVER_MODULES if importlib.util.find_spec(m) is None]


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on (0.0.0.0 for every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", min=1, max=65535)] = 8000,
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="Shipped model name or .onnx file (default: the default model)."),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Folder of the SQLite database (default: $VOXGUARD_DATA_DIR or ~/.local/share/voxguard)."),
    ] = None,
    keep_audio: Annotated[
        bool, typer.Option("--keep-audio", help="Store uploaded audio with each scan (default: results only).")
    ] = False,
    no_vectors: Annotated[
        bool,
        typer.Option(
            "--no-vectors", help="Do not store the segment feature vectors (then feedback cannot be retrained on)."
        ),
    ] = False,
    watermark: Annotated[
        bool,
        typer.Option("--watermark", help="Check every upload for the Perth watermark unless a request says otherwise."),
    ] = False,
    no_wide_band: Annotated[
        bool,
        typer.Option("--no-wide-band", help="Score every upload at 16 kHz only (no wide-band companion; faster)."),
    ] = False,
    workers: Annotated[int, typer.Option(help="Worker processes (each loads the model once).", min=1)] = 1,
) -> None:
    """Run the REST API (needs the "server" extra): POST /v1/scan, GET /v1/scans/{id}, /docs."""
    missing = _missing_server_modules()
    if missing:
        typer.echo(
            f"error: the server needs the [server] extra (missing: {', '.join(missing)}); "
            "install it with: pip install 'voxguard[server]'",
            err=True,
        )
        raise typer.Exit(1)
    if model is not None:
        os.environ["VOXGUARD_MODEL"] = model
    if data_dir is not None:
        os.environ["VOXGUARD_DATA_DIR"] = str(data_dir.expanduser())
    if keep_audio:
        os.environ["VOXGUARD_KEEP_AUDIO"] = "true"
    if no_vectors:
        os.environ["VOXGUARD_STORE_VECTORS"] = "false"
    if watermark:
        os.environ["VOXGUARD_WATERMARK"] = "true"
    if no_wide_band:
        os.environ["VOXGUARD_WIDE_BAND"] = "false"

    from voxguard.errors import ModelError
    from voxguard.models.registry import resolve_model
    from voxguard.server.settings import Settings

    try:  # fail here with a readable message, not in a worker's traceback
        settings = Settings.from_env()
        resolve_model(settings.model)
    except (ValueError, ModelError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None

    import uvicorn

    auth = f"{len(settings.api_keys)} API key(s)" if settings.api_keys else "no authentication"
    typer.echo(f"voxguard service on http://{host}:{port} ({auth}; API docs at /docs)", err=True)
    uvicorn.run("voxguard.server.app:create_app", factory=True, host=host, port=port, workers=workers)
