"""The FastAPI application factory.

``create_app()`` builds an app from :class:`~voxguard.server.settings.Settings` (default: the
``VOXGUARD_*`` environment); the model is loaded and the database migrated *once*, at start-up
(the lifespan), not per request. Run it with ``voxguard serve`` or any ASGI server::

    uvicorn --factory voxguard.server.app:create_app
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio.to_thread
from fastapi import FastAPI

import voxguard
from voxguard.scan import Scanner
from voxguard.server.errors import install_error_handlers
from voxguard.server.routes import api, health, ui
from voxguard.server.service import Service
from voxguard.server.settings import Settings
from voxguard.server.storage import Storage

log = logging.getLogger("voxguard.server")


def _prepare_storage(settings: Settings) -> Storage:
    url = settings.db_url
    if settings.database_url is None:  # the default SQLite file: make its folder
        Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    storage = Storage(url)
    storage.migrate()
    return storage


def create_app(settings: Settings | None = None, *, scanner: Scanner | None = None) -> FastAPI:
    """Build the service.

    Parameters
    ----------
    settings : Settings, optional
        Configuration; ``None`` reads the environment (:meth:`Settings.from_env`).
    scanner : Scanner, optional
        An already loaded scanner (tests share one); by default ``settings.model`` is loaded
        with :func:`voxguard.load_detector` when the app starts.
    """
    settings = settings if settings is not None else Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Loading a model takes a second or two: off the event loop, once per process.
        loaded = scanner or await anyio.to_thread.run_sync(
            lambda: voxguard.load_detector(settings.model, watermark=settings.watermark, wide_band=settings.wide_band)
        )
        storage = await anyio.to_thread.run_sync(_prepare_storage, settings)
        app.state.service = Service(settings=settings, scanner=loaded, storage=storage)
        log.info("voxguard service ready: model %s, database %s", loaded.model_name, storage.engine.url)
        try:
            yield
        finally:
            storage.close()

    app = FastAPI(
        title="voxguard",
        version=voxguard.__version__,
        description="Detect AI-generated or manipulated speech: upload a recording, get a verdict and a timeline.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    if settings.cors_origins:  # off unless configured: the API is not meant for arbitrary sites
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["X-API-Key", "Authorization", "Content-Type"],
        )
    app.include_router(health)
    app.include_router(api)
    app.include_router(ui)
    return app
