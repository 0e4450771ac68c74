"""Persistence of scans and feedback with SQLAlchemy 2.0 Core (any SQLAlchemy URL).

Tables
------
``scans``
    One row per scan: id (UUID text), time, model, SHA-256 of the upload, duration, the result
    JSON (``ScanResult.to_dict()``), ``features``: the per-segment arrays (start, end, P(fake),
    raw score, speech fraction), enough to recalibrate from feedback, and (schema 2) ``vectors``:
    the segment feature vectors the model scored (a float32 ``.npy``) with ``vectors_spec``, the
    feature settings they were computed with, enough to *retrain* a model with the same
    features (``voxguard retrain``). The raw audio is stored only when ``keep_audio`` is on
    (privacy by default); the vectors are pooled spectral statistics, not a recording.
``feedback``
    A user's correction of a scan: true label ``real`` / ``fake`` and an optional note.
``schema_version``
    One row per applied migration; :func:`migrate` applies the missing ones in order, so a
    database created by an older version is upgraded at start-up.

Migrations create or alter tables with their *own* frozen definitions (``_v1_tables``), never
with the live ones above: a fresh database goes through every step exactly like an old one.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

from voxguard.errors import VoxguardError


class SchemaTooNewError(VoxguardError):
    """The database's schema version is newer than the code's (:data:`SCHEMA_VERSION`)."""

    code = "schema_too_new"
    http_status = 503


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
    sa.Column("vectors", sa.LargeBinary),  # schema 2: float32 .npy, (n_segments, n_dims)
    sa.Column("vectors_spec", sa.JSON),  # schema 2: the feature settings of ``vectors``
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


def _v1_tables() -> tuple[sa.MetaData, list[sa.Table]]:
    """The schema as version 1 created it (frozen: later columns are added by later steps)."""
    md = sa.MetaData()
    v1_scans = sa.Table(
        "scans",
        md,
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
        sa.Column("audio", sa.LargeBinary),
    )
    v1_feedback = sa.Table(
        "feedback",
        md,
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("scan_id", sa.String(36), sa.ForeignKey("scans.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.Column("label", sa.String(8), nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
    )
    return md, [v1_scans, v1_feedback]


def _v1(conn: Connection) -> None:
    md, tables = _v1_tables()
    md.create_all(conn, tables=tables)


def _add_column(conn: Connection, table: str, name: str, type_: sa.types.TypeEngine[Any]) -> None:
    # Plain ALTER TABLE: SQLite and PostgreSQL both add a nullable column in place, no rewrite.
    preparer = conn.dialect.identifier_preparer
    ddl = type_.compile(dialect=conn.dialect)
    conn.execute(sa.text(f"ALTER TABLE {preparer.quote(table)} ADD COLUMN {preparer.quote(name)} {ddl}"))


def _v2(conn: Connection) -> None:
    """Segment feature vectors per scan, so feedback can retrain a model (``voxguard retrain``)."""
    _add_column(conn, "scans", "vectors", sa.LargeBinary())
    _add_column(conn, "scans", "vectors_spec", sa.JSON())


#: Ordered migrations ``(version, function)``; append new ones, never edit applied ones.
MIGRATIONS: list[tuple[int, Callable[[Connection], None]]] = [(1, _v1), (2, _v2)]
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


def migrate(engine: Engine, *, target: int | None = None) -> int:
    """Bring the schema up to ``target`` (default :data:`SCHEMA_VERSION`); returns the version now in place.

    All missing steps run in one transaction; on PostgreSQL, whose DDL is transactional, a failed
    step leaves the database at its old version.

    Raises
    ------
    SchemaTooNewError
        The database was migrated by a newer voxguard; running old code against it could corrupt it.
    """
    upto = SCHEMA_VERSION if target is None else target
    with engine.begin() as conn:
        metadata.create_all(conn, tables=[schema_version])
        version = current_version(conn)
        if version > SCHEMA_VERSION:
            raise SchemaTooNewError(
                f"the database has schema version {version}, newer than this voxguard knows ({SCHEMA_VERSION}); "
                "upgrade voxguard"
            )
        for step_version, step in MIGRATIONS:
            if version < step_version <= upto:
                step(conn)
                conn.execute(sa.insert(schema_version).values(version=step_version, applied=_now()))
                version = step_version
    return version


def encode_vectors(vectors: np.ndarray) -> bytes:
    """A 2-D float32 array as ``.npy`` bytes (no pickle: safe to read back from any database)."""
    arr = np.ascontiguousarray(vectors, dtype=np.float32)
    if arr.ndim != 2:
        raise ValueError(f"segment vectors must be 2-D (segments x features), got shape {arr.shape}")
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def decode_vectors(data: bytes | None) -> np.ndarray | None:
    """Inverse of :func:`encode_vectors`; ``None`` for a missing or unreadable value."""
    if not data:
        return None
    try:
        arr = np.load(io.BytesIO(bytes(data)), allow_pickle=False)
    except (ValueError, OSError, EOFError):
        return None
    return arr if arr.ndim == 2 else None


@dataclass(frozen=True)
class LabelledScan:
    """A scan with a user's label: one row of the training data ``voxguard retrain`` reads.

    Attributes
    ----------
    scan_id, file_sha256, model : str
    label : {"real", "fake"}
        The most recent feedback on the scan.
    created : str
        When that feedback was given (ISO 8601).
    vectors : np.ndarray or None
        The stored segment feature vectors, shape (n_segments, n_dims).
    vectors_spec : dict or None
        The feature settings of ``vectors`` (see ``voxguard.evaluate.retrain.feature_spec``).
    audio : bytes or None
        The upload, when the service kept it (``VOXGUARD_KEEP_AUDIO``) and it was asked for.
    """

    scan_id: str
    file_sha256: str
    model: str
    label: str
    created: str
    vectors: np.ndarray | None
    vectors_spec: dict[str, Any] | None
    audio: bytes | None = None


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
        vectors: np.ndarray | None = None,
        vectors_spec: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Store a scan; returns its ``id`` and ``created`` time.

        ``vectors`` (segments x features) and ``vectors_spec`` go together: vectors without the
        settings they were computed with could not be reused safely, so they are dropped.
        """
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
            "vectors": encode_vectors(vectors) if vectors is not None and vectors_spec is not None else None,
            "vectors_spec": vectors_spec if vectors is not None else None,
        }
        with self.engine.begin() as conn:
            conn.execute(sa.insert(scans).values(**row))
        return {"id": row["id"], "created": _iso(row["created"])}

    def get_scan(self, scan_id: str, *, with_audio: bool = False) -> dict[str, Any] | None:
        """The stored scan with its feedback, or ``None``."""
        if not _valid_uuid(scan_id):
            return None
        cols = [c for c in scans.c if (with_audio or c.name != "audio") and c.name != "vectors"]
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

    def labelled_scans(self, *, with_audio: bool = False) -> list[LabelledScan]:
        """Every scan that has feedback, with its latest label, stored vectors and (optionally) audio.

        Ordered by the time of that feedback, oldest first. A few queries, not one per scan, so
        reading thousands of labelled scans stays fast on a remote database. Read-only: a
        database at an older schema version is read as it is, not migrated.
        """
        with self.engine.connect() as conn:
            latest: dict[str, tuple[str, datetime]] = {}
            fb_rows = conn.execute(
                sa.select(feedback.c.scan_id, feedback.c.label, feedback.c.created).order_by(
                    feedback.c.created, feedback.c.id
                )
            )
            for scan_id, label, created in fb_rows:
                latest[scan_id] = (label, created)  # later rows overwrite: the latest label wins
            if not latest:
                return []
            cols = [scans.c.id, scans.c.file_sha256, scans.c.model]
            # A database still at schema 1 (not yet migrated by the service) is read without vectors.
            has_vectors = current_version(conn) >= 2
            if has_vectors:
                cols += [scans.c.vectors, scans.c.vectors_spec]
            if with_audio:
                cols.append(scans.c.audio)
            rows = {}
            ids = list(latest)
            for start in range(0, len(ids), 500):  # bounded IN lists
                chunk = ids[start : start + 500]
                for row in conn.execute(sa.select(*cols).where(scans.c.id.in_(chunk))).mappings():
                    rows[row["id"]] = row
        out = []
        for scan_id, (label, created) in sorted(latest.items(), key=lambda kv: (_iso(kv[1][1]) or "", kv[0])):
            row = rows.get(scan_id)
            if row is None:
                continue
            out.append(
                LabelledScan(
                    scan_id=scan_id,
                    file_sha256=row["file_sha256"],
                    model=row["model"],
                    label=label,
                    created=_iso(created) or "",
                    vectors=decode_vectors(row["vectors"]) if has_vectors else None,
                    vectors_spec=row["vectors_spec"] if has_vectors else None,
                    audio=bytes(row["audio"]) if with_audio and row["audio"] is not None else None,
                )
            )
        return out
