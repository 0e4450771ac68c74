"""HTTP endpoints. Thin: parse, call :class:`~voxguard.server.service.Service`, return JSON.

Errors are raised, never turned into replies here; :mod:`voxguard.server.errors` maps them.
"""

from __future__ import annotations

import hmac
import math
from typing import Annotated, Any, Literal

import anyio.to_thread
from fastapi import APIRouter, Depends, Query, Request, Security
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from voxguard.models.registry import DEFAULT_MODEL, available_models
from voxguard.server.errors import BadRequestError, BusyError, ScanNotFoundError, UnauthorizedError
from voxguard.server.page import PAGE
from voxguard.server.schemas import (
    ErrorReply,
    FeedbackIn,
    FeedbackOut,
    HealthOut,
    ModelInfo,
    ModelsOut,
    ReadyOut,
    ScanOut,
    StoredScanOut,
)
from voxguard.server.service import ScanOptions, Service
from voxguard.server.settings import parse_bool
from voxguard.server.upload import read_upload

# auto_error=False: a missing key is answered by our own 401 JSON, and only when keys are set.
_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key (VOXGUARD_API_KEYS).")
_bearer = HTTPBearer(auto_error=False, description="The same API key as a bearer token.")

# Bounds keep one request from asking for millions of segments.
MIN_SEGMENT_S, MAX_SEGMENT_S = 0.5, 60.0
MIN_HOP_S = 0.1


def get_service(request: Request) -> Service:
    return request.app.state.service


ServiceDep = Annotated[Service, Depends(get_service)]


def require_api_key(
    service: ServiceDep,
    api_key: Annotated[str | None, Security(_api_key_header)] = None,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)] = None,
) -> None:
    """401 unless a configured key is sent (``X-API-Key`` or ``Authorization: Bearer``)."""
    keys = service.settings.api_keys
    if not keys:
        return
    given = api_key or (bearer.credentials if bearer is not None else None)
    if not given:
        raise UnauthorizedError("an API key is required (header X-API-Key or Authorization: Bearer)")
    # Constant-time comparison against every key, so timing does not reveal a prefix.
    if not any(hmac.compare_digest(given.encode(), k.encode()) for k in keys):
        raise UnauthorizedError("invalid API key")


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {s: {"model": ErrorReply} for s in statuses}


health = APIRouter(tags=["health"])
ui = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/v1", dependencies=[Depends(require_api_key)], responses=_errors(401))


@health.get("/healthz", response_model=HealthOut, summary="The process is alive")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@health.get(
    "/readyz", response_model=ReadyOut, responses=_errors(503), summary="The model is loaded and the database answers"
)
def readyz(service: ServiceDep) -> Any:
    model = service.scanner.model_name if service.scanner is not None else None
    db_ok = service.storage.ping()
    body = {
        "status": "ready" if (model and db_ok) else "not_ready",
        "model": model,
        "database": "ok" if db_ok else "unreachable",
        "schema_version": service.storage.version() if db_ok else None,
        "scans_running": service.running,
    }
    return body if body["status"] == "ready" else JSONResponse(body, status_code=503)


def _form_float(fields: dict[str, str], name: str, query: float | None, lo: float, hi: float) -> float | None:
    """A parameter from the query, or from a form field of the same name (the form wins)."""
    raw = fields.get(name)
    if raw is None or raw.strip() == "":
        return query
    try:
        value = float(raw)
    except ValueError:
        raise BadRequestError(f"{name}: expected a number, got {raw[:40]!r}") from None
    if not (math.isfinite(value) and lo <= value <= hi):
        raise BadRequestError(f"{name}: must be between {lo:g} and {hi:g}, got {raw[:40]!r}")
    return value


#: Named thresholds a request may ask for (the model card must have the one asked for).
OPERATING_POINTS = ("eer", "low-fa", "unseen-eer")
OperatingPointName = Literal["eer", "low-fa", "unseen-eer"]


def _form_choice(fields: dict[str, str], name: str, query: str | None, choices: tuple[str, ...]) -> str | None:
    """One of ``choices`` from the query, or from a form field of the same name (the form wins)."""
    raw = fields.get(name)
    if raw is None or raw.strip() == "":
        return query
    if raw.strip() not in choices:
        raise BadRequestError(f"{name}: one of {', '.join(choices)}, got {raw[:40]!r}")
    return raw.strip()


def _form_bool(fields: dict[str, str], name: str, query: bool | None) -> bool | None:
    """A yes/no parameter from the query, or from a form field of the same name (the form wins)."""
    raw = fields.get(name)
    if raw is None or raw.strip() == "":
        return query
    try:
        return parse_bool(name, raw[:40])
    except ValueError as exc:
        raise BadRequestError(str(exc)) from None


_MULTIPART_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary", "description": "The recording, any format."},
                        "segment": {"type": "number", "description": "Timeline window in seconds."},
                        "hop": {"type": "number", "description": "Hop between windows in seconds."},
                        "threshold": {"type": "number", "description": "P(fake) threshold in [0, 1]."},
                        "operating_point": {
                            "type": "string",
                            "enum": list(OPERATING_POINTS),
                            "description": "A threshold of the model card (eer, low-fa, unseen-eer); threshold wins.",
                        },
                        "watermark": {
                            "type": "boolean",
                            "description": "Also look for the Perth watermark (Chatterbox TTS); slower.",
                        },
                    },
                }
            }
        },
    }
}


@api.post(
    "/scan",
    response_model=ScanOut,
    responses=_errors(400, 413, 415, 422, 503, 504),
    openapi_extra=_MULTIPART_BODY,
    summary="Scan a recording",
    description=(
        "Upload one recording (multipart field `file`; the format is detected from the content). "
        "Returns the verdict, P(fake) and the per-segment timeline, stored under `id`."
    ),
)
async def scan(
    request: Request,
    service: ServiceDep,
    segment: Annotated[
        float | None, Query(ge=MIN_SEGMENT_S, le=MAX_SEGMENT_S, description="Timeline window (s).")
    ] = None,
    hop: Annotated[float | None, Query(ge=MIN_HOP_S, le=MAX_SEGMENT_S, description="Hop (s).")] = None,
    threshold: Annotated[float | None, Query(ge=0.0, le=1.0, description="P(fake) threshold.")] = None,
    operating_point: Annotated[
        OperatingPointName | None,
        Query(
            description="A threshold of the model card: eer, low-fa, or unseen-eer (the EER point on generator "
            "families the model never saw: catches more new generators, flags more real speech). "
            "`threshold` wins."
        ),
    ] = None,
    watermark: Annotated[
        bool | None,
        Query(description="Look for Resemble AI's Perth watermark (Chatterbox TTS; default: the service's setting)."),
    ] = None,
) -> Any:
    if not service.has_free_slot():  # fail fast, before receiving a large upload
        raise BusyError(f"all {service.settings.max_concurrent} scan slots are busy; retry in a few seconds")
    upload = await read_upload(request, service.settings.max_upload_bytes)
    options = ScanOptions(
        segment_s=_form_float(upload.fields, "segment", segment, MIN_SEGMENT_S, MAX_SEGMENT_S),
        hop_s=_form_float(upload.fields, "hop", hop, MIN_HOP_S, MAX_SEGMENT_S),
        threshold=_form_float(upload.fields, "threshold", threshold, 0.0, 1.0),
        watermark=_form_bool(upload.fields, "watermark", watermark),
        operating_point=_form_choice(upload.fields, "operating_point", operating_point, OPERATING_POINTS),
    )
    return await service.scan(upload, options)


@api.get("/scans/{scan_id}", response_model=StoredScanOut, responses=_errors(404), summary="A stored scan")
def get_scan(scan_id: str, service: ServiceDep) -> Any:
    row = service.storage.get_scan(scan_id)
    if row is None:
        raise ScanNotFoundError(f"no scan with id {scan_id[:64]!r}")
    return {
        **row["result"],
        "id": row["id"],
        "created": row["created"],
        "sha256": row["file_sha256"],
        "feedback": row["feedback"],
    }


@api.post(
    "/scans/{scan_id}/feedback",
    response_model=FeedbackOut,
    status_code=201,
    responses=_errors(404, 422),
    summary="Report the true label of a scanned recording",
)
def add_feedback(scan_id: str, body: FeedbackIn, service: ServiceDep) -> Any:
    row = service.storage.add_feedback(scan_id, body.label, body.note)
    if row is None:
        raise ScanNotFoundError(f"no scan with id {scan_id[:64]!r}")
    return row


@api.get("/models", response_model=ModelsOut, summary="Shipped models and the one loaded")
async def models(service: ServiceDep) -> Any:
    loaded = service.scanner.model_name
    cards = await anyio.to_thread.run_sync(available_models)  # reads files
    out = []
    for name, card in cards.items():
        out.append(
            ModelInfo(
                name=name,
                model_type=card.model_type,
                created=card.created,
                loaded=name == loaded,
                default=name == DEFAULT_MODEL,
                segment_s=card.features.get("segment_s"),
                thresholds={k: float(v) for k, v in (card.output.get("thresholds") or {}).items()},
                metrics=card.metrics,
                notes=card.notes,
            )
        )
    if loaded not in cards:  # a custom .onnx given by path
        out.append(ModelInfo(name=loaded, model_type="custom", created="", loaded=True, default=False))
    return ModelsOut(loaded=loaded, models=out)


@ui.get("/", response_class=HTMLResponse)
def index() -> HTMLResponse:
    """The web page (static; its API calls carry the key the user types in)."""
    return HTMLResponse(PAGE)
