"""Service configuration: a plain dataclass read from ``VOXGUARD_*`` environment variables.

pydantic-settings would do the same, but one more dependency for ten variables is not worth it;
:meth:`Settings.from_env` parses and validates them and raises :class:`ValueError` with the
variable's name, so a misconfigured deployment fails at start-up, not on the first request.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

MB = 1_000_000


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/voxguard`` (``~/.local/share/voxguard`` when unset)."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "voxguard"


def parse_bool(name: str, value: str) -> bool:
    """``true/false``, ``1/0``, ``yes/no``, ``on/off`` (any case; empty is false); ValueError otherwise."""
    v = value.strip().lower()
    if v in {"1", "true", "yes", "on"}:
        return True
    if v in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"{name}: expected a boolean (true/false), got {value!r}")


def _number(name: str, value: str, kind: type[int] | type[float], minimum: float) -> Any:
    try:
        x = kind(value.strip())
    except ValueError:
        raise ValueError(f"{name}: expected a number, got {value!r}") from None
    if x < minimum:
        raise ValueError(f"{name}: must be at least {minimum}, got {value!r}")
    return x


def _list(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


@dataclass(frozen=True)
class Settings:
    """Everything the service can be told.

    Attributes
    ----------
    max_upload_bytes : int
        Largest accepted upload (``VOXGUARD_MAX_UPLOAD_BYTES``, default 50 MB); enforced while
        the request body streams in, so a huge upload is cut off, not buffered first.
    max_duration_s : float
        Longest accepted recording (``VOXGUARD_MAX_DURATION_S``, default 600 s).
    request_timeout_s : float
        Time limit of one scan (``VOXGUARD_REQUEST_TIMEOUT_S``, default 60 s); 504 beyond it.
    max_concurrent : int
        Scans running at once (``VOXGUARD_MAX_CONCURRENT``, default 4); 503 when all are busy.
    api_keys : tuple of str
        Accepted keys (``VOXGUARD_API_KEYS``, comma-separated); empty means no authentication.
    data_dir : Path
        Where the default SQLite database (and kept audio) live (``VOXGUARD_DATA_DIR``).
    database_url : str
        Any SQLAlchemy URL (``VOXGUARD_DATABASE_URL``; default ``sqlite:///<data_dir>/voxguard.db``).
    keep_audio : bool
        Store uploaded audio with each scan (``VOXGUARD_KEEP_AUDIO``, default false: only the
        result and per-segment scores are stored).
    store_vectors : bool
        Store the segment feature vectors the model scored, which ``voxguard retrain`` learns
        from (``VOXGUARD_STORE_VECTORS``, default true). Off: nothing derived from the audio
        beyond the scores is kept, and feedback on such scans cannot be used for retraining.
    model : str or None
        Shipped model name or ``.onnx`` path (``VOXGUARD_MODEL``; default: the default model).
    cors_origins : tuple of str
        Origins allowed by CORS (``VOXGUARD_CORS_ORIGINS``, comma-separated; empty = CORS off).
    watermark : bool
        Check every upload for the Perth watermark unless the request says otherwise
        (``VOXGUARD_WATERMARK``, default false: about 40× real time per core, docs/watermark.md).
    wide_band : bool
        Mix in the model's wide-band companion for uploads that have the band above 8 kHz
        (``VOXGUARD_WIDE_BAND``, default true; false scores everything at 16 kHz, faster).
    """

    max_upload_bytes: int = 50 * MB
    max_duration_s: float = 600.0
    request_timeout_s: float = 60.0
    max_concurrent: int = 4
    api_keys: tuple[str, ...] = ()
    data_dir: Path = field(default_factory=default_data_dir)
    database_url: str | None = None
    keep_audio: bool = False
    store_vectors: bool = True
    model: str | None = None
    cors_origins: tuple[str, ...] = ()
    watermark: bool = False
    wide_band: bool = True

    @property
    def db_url(self) -> str:
        """The database URL, defaulting to a SQLite file in ``data_dir``."""
        return self.database_url or f"sqlite:///{Path(self.data_dir) / 'voxguard.db'}"

    def with_(self, **changes: Any) -> Settings:
        """A copy with some fields changed (handy in tests)."""
        return replace(self, **changes)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``VOXGUARD_*`` variables; unset ones keep their defaults."""
        env = os.environ if environ is None else environ
        kw: dict[str, Any] = {}

        def get(name: str) -> str | None:
            value = env.get(f"VOXGUARD_{name}")
            return value if value is not None and value.strip() != "" else None

        if (v := get("MAX_UPLOAD_BYTES")) is not None:
            kw["max_upload_bytes"] = _number("VOXGUARD_MAX_UPLOAD_BYTES", v, int, 0)
        if (v := get("MAX_DURATION_S")) is not None:
            kw["max_duration_s"] = _number("VOXGUARD_MAX_DURATION_S", v, float, 0)
        if (v := get("REQUEST_TIMEOUT_S")) is not None:
            kw["request_timeout_s"] = _number("VOXGUARD_REQUEST_TIMEOUT_S", v, float, 0)
        if (v := get("MAX_CONCURRENT")) is not None:
            kw["max_concurrent"] = _number("VOXGUARD_MAX_CONCURRENT", v, int, 0)
        if (v := get("API_KEYS")) is not None:
            kw["api_keys"] = _list(v)
        if (v := get("DATA_DIR")) is not None:
            kw["data_dir"] = Path(v).expanduser()
        if (v := get("DATABASE_URL")) is not None:
            kw["database_url"] = v
        if (v := get("KEEP_AUDIO")) is not None:
            kw["keep_audio"] = parse_bool("VOXGUARD_KEEP_AUDIO", v)
        if (v := get("STORE_VECTORS")) is not None:
            kw["store_vectors"] = parse_bool("VOXGUARD_STORE_VECTORS", v)
        if (v := get("MODEL")) is not None:
            kw["model"] = v
        if (v := get("CORS_ORIGINS")) is not None:
            kw["cors_origins"] = _list(v)
        if (v := get("WATERMARK")) is not None:
            kw["watermark"] = parse_bool("VOXGUARD_WATERMARK", v)
        if (v := get("WIDE_BAND")) is not None:
            kw["wide_band"] = parse_bool("VOXGUARD_WIDE_BAND", v)
        return cls(**kw)
