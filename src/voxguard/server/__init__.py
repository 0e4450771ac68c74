"""The REST service (``pip install 'voxguard[server]'``; run with ``voxguard serve``).

Modules: :mod:`~voxguard.server.app` (the app factory), :mod:`~voxguard.server.settings`
(``VOXGUARD_*`` configuration), :mod:`~voxguard.server.routes` (endpoints),
:mod:`~voxguard.server.service` (scanning within limits), :mod:`~voxguard.server.upload`
(size-limited multipart parsing), :mod:`~voxguard.server.storage` (SQLAlchemy tables and
migrations), :mod:`~voxguard.server.errors` (every error reply) and
:mod:`~voxguard.server.schemas` (request/response models).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from voxguard.server.app import create_app
    from voxguard.server.settings import Settings

__all__ = ["Settings", "create_app"]


def __getattr__(name: str) -> Any:
    # Lazy, so that ``voxguard.server.storage`` (SQLAlchemy only) can be imported without FastAPI,
    # e.g. by ``voxguard retrain`` reading the feedback database.
    if name == "create_app":
        from voxguard.server.app import create_app

        return create_app
    if name == "Settings":
        from voxguard.server.settings import Settings

        return Settings
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
