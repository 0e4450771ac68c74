"""Persistence of scans and feedback with SQLAlchemy 2.0 Core (any SQLAlchemy URL).

Tables
------
``scans``
    One row per scan: id (UUID text), time, model, SHA-256 of the upload, duration, the result
    JSON (``ScanResult.to_dict()``) and ``features``: the per-segment arrays (start, end,
    P(fake), raw score, speech fraction). That is what a later recalibration or retraining from
    feedback needs; the raw audio is stored only when ``keep_audio`` is on (privacy by default).
``feedback``
    A user's correction of a scan: true label ``real`` / ``fake`` and an optional note.
``schema_version``
    One row per applied migration; :func:`migrate` applies the missing ones in order, so a
    database created by an older version is upgraded at start-up.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

metadata = sa.MetaData()

schema_version = sa.Table(
    "schema_version",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("applied", sa.DateTime(timezone=True), nullable=False),
)

scans = sa.Table(
    "scans",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("created", sa.DateTime(timezone=True), nullable=False),
    sa.Column("model", sa.String(200), nullable=False),
    sa.Column("file_sha256", sa.String(64), nullable=False, index=True),
    sa.Column("filename", sa.String(500)),
    sa.Column("duration_s", sa.Float),
    sa.Column("verdict", sa.String(16)),
    sa.Column("probability", sa.Float),
    sa.Column("result", sa.JSON, nullable=False),
    sa.Column("features", sa.JSON),
    sa.Column("audio", sa.LargeBinary),  # only with keep_audio
)

feedback = sa.Table(
    "feedback",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("scan_id", sa.String(36), sa.ForeignKey("scans.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("label", sa.String(8), nullable=False),
    sa.Column("note", sa.Text),
    sa.Column("created", sa.DateTime(timezone=True), nullable=False),
)

LABELS = ("real", "fake")


def _v1(conn: Connection) -> None:
    metadata.create_all(conn, tables=[scans, feedback])


#: Ordered migrations ``(version, function)``; append new ones, never edit applied ones.
MIGRATIONS: list[tuple[int, Callable[[Connection], None]]] = [(1, _v1)]
SCHEMA_VERSION = MIGRATIONS[-1][0]


def _now() -> datetime:
    return datetime.now(UTC)


def create_db_engine(url: str) -> Engine:
    """An engine for ``url``; in-memory SQLite shares one connection (otherwise each would be a new DB)."""
    kwargs: dict[str, Any] = {"future": True} if sa.__version__.startswith("1.") else {}
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        # Scans are stored from worker threads.
        kwargs["connect_args"] = {"check_same_thread": False}
        if parsed.database in (None, "", ":memory:"):
            kwargs["poolclass"] = StaticPool
    return sa.create_engine(url, **kwargs)


def current_version(conn: Connection) -> int:
    if not sa.inspect(conn).has_table("schema_version"):
        return 0
    return int(conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar() or 0)


def migrate(engine: Engine) -> int:
    """Bring the schema up to :data:`SCHEMA_VERSION`; returns the version now in place."""
    with engine.begin() as conn:
        metadata.create_all(conn, tables=[schema_version])
        version = current_version(conn)
        for target, step in MIGRATIONS:
            if target > version:
                step(conn)
                conn.execute(sa.insert(schema_version).values(version=target, applied=_now()))
                version = target
    return version


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:  # SQLite returns naive datetimes
        value = value.replace(tzinfo=UTC)
    return value.isoformat()


def _valid_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        return False
    return True


class Storage:
    """Scans and feedback in one database (thread-safe: one short transaction per call)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_db_engine(url)

    def migrate(self) -> int:
        return migrate(self.engine)

    def ping(self) -> bool:
        """Whether the database answers."""
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError:
            return False
        return True

    def version(self) -> int:
        with self.engine.connect() as conn:
            return current_version(conn)

    def close(self) -> None:
        self.engine.dispose()

    def add_scan(
        self,
        *,
        model: str,
        file_sha256: str,
        result: dict[str, Any],
        features: dict[str, Any] | None,
        filename: str | None = None,
        audio: bytes | None = None,
    ) -> dict[str, Any]:
        """Store a scan; returns its ``id`` and ``created`` time."""
        row = {
            "id": str(uuid.uuid4()),
            "created": _now(),
            "model": model,
            "file_sha256": file_sha256,
            "filename": filename[:500] if filename else None,
            "duration_s": result.get("duration_s"),
            "verdict": result.get("verdict"),
            "probability": result.get("probability"),
            "result": result,
            "features": features,
            "audio": audio,
        }
        with self.engine.begin() as conn:
            conn.execute(sa.insert(scans).values(**row))
        return {"id": row["id"], "created": _iso(row["created"])}

    def get_scan(self, scan_id: str, *, with_audio: bool = False) -> dict[str, Any] | None:
        """The stored scan with its feedback, or ``None``."""
        if not _valid_uuid(scan_id):
            return None
        cols = [c for c in scans.c if with_audio or c.name != "audio"]
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(*cols).where(scans.c.id == scan_id)).mappings().first()
            if row is None:
                return None
            fb = conn.execute(
                sa.select(feedback).where(feedback.c.scan_id == scan_id).order_by(feedback.c.created)
            ).mappings()
            out = dict(row)
            out["created"] = _iso(out["created"])
            out["feedback"] = [{**dict(f), "created": _iso(f["created"])} for f in fb]
        return out

    def add_feedback(self, scan_id: str, label: str, note: str | None) -> dict[str, Any] | None:
        """Store feedback on a scan; ``None`` when the scan does not exist."""
        if label not in LABELS:
            raise ValueError(f"label must be one of {LABELS}")
        if not _valid_uuid(scan_id):
            return None
        row = {"id": str(uuid.uuid4()), "scan_id": scan_id, "label": label, "note": note, "created": _now()}
        with self.engine.begin() as conn:
            exists = conn.execute(sa.select(scans.c.id).where(scans.c.id == scan_id)).first()
            if exists is None:
                return None
            conn.execute(sa.insert(feedback).values(**row))
        return {**row, "created": _iso(row["created"])}

    def count(self, table: sa.Table) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar() or 0)
