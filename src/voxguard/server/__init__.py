"""The REST service (``pip install 'voxguard[server]'``; run with ``voxguard serve``).

Modules: :mod:`~voxguard.server.app` (the app factory), :mod:`~voxguard.server.settings`
(``VOXGUARD_*`` configuration), :mod:`~voxguard.server.routes` (endpoints),
:mod:`~voxguard.server.service` (scanning within limits), :mod:`~voxguard.server.upload`
(size-limited multipart parsing), :mod:`~voxguard.server.storage` (SQLAlchemy tables and
migrations), :mod:`~voxguard.server.errors` (every error reply) and
:mod:`~voxguard.server.schemas` (request/response models).
"""

from __future__ import annotations

from voxguard.server.app import create_app
from voxguard.server.settings import Settings

__all__ = ["Settings", "create_app"]
