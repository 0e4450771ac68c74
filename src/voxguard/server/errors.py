"""Every error reply of the service is made here: ``{"error": code, "message": ...}``.

Service-level failures (upload too large, busy, timeout, unknown scan, bad key) are
:class:`~voxguard.errors.VoxguardError` subclasses like the library's own, so *one* handler maps
all of them to their ``http_status``. The framework's own errors (validation, unknown route,
wrong method) are reshaped into the same JSON, and anything else becomes a 500 without a
traceback in the reply (it is logged): a 500 means a bug, never bad input.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from voxguard.errors import VoxguardError

log = logging.getLogger("voxguard.server")


class ServiceError(VoxguardError):
    """Base of the errors only the service raises."""

    code = "service_error"
    http_status = 400
    headers: ClassVar[dict[str, str] | None] = None


class BadRequestError(ServiceError):
    """The request is malformed (not multipart, no ``file`` field, a bad parameter)."""

    code = "bad_request"
    http_status = 422


class UnsupportedMediaTypeError(ServiceError):
    """The request body is not ``multipart/form-data``."""

    code = "unsupported_media_type"
    http_status = 415


class UploadTooLargeError(ServiceError):
    """The upload exceeds ``max_upload_bytes``."""

    code = "upload_too_large"
    http_status = 413


class UnauthorizedError(ServiceError):
    """No API key, or a wrong one, while keys are configured."""

    code = "unauthorized"
    http_status = 401
    headers: ClassVar[dict[str, str] | None] = {"WWW-Authenticate": 'Bearer realm="voxguard", X-API-Key'}


class ScanNotFoundError(ServiceError):
    """No stored scan has this id."""

    code = "scan_not_found"
    http_status = 404


class BusyError(ServiceError):
    """All scan slots are taken; the client should retry later."""

    code = "busy"
    http_status = 503
    headers: ClassVar[dict[str, str] | None] = {"Retry-After": "5"}


class ScanTimeoutError(ServiceError):
    """The scan took longer than ``request_timeout_s``."""

    code = "timeout"
    http_status = 504


class NotReadyError(ServiceError):
    """The model or the database is not available (``/readyz``)."""

    code = "not_ready"
    http_status = 503


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": code, "message": message, **extra}


async def _voxguard_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, VoxguardError)
    # Library errors carry the path of a file; for uploads it is the client's own file name or
    # None, so it is left out of the reply.
    return JSONResponse(
        error_body(exc.code, exc.message),
        status_code=exc.http_status,
        headers=getattr(exc, "headers", None),
    )


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {}
    where = ".".join(str(p) for p in first.get("loc", ()))
    message = f"{where}: {first.get('msg', 'invalid request')}" if where else "invalid request"
    detail = [{"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")} for e in errors]
    return JSONResponse(error_body("invalid_request", message, detail=detail), status_code=422)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return JSONResponse(
        error_body(code, str(exc.detail)), status_code=exc.status_code, headers=getattr(exc, "headers", None)
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse(error_body("internal_error", "internal server error"), status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers: the single place where exceptions become HTTP replies."""
    app.add_exception_handler(VoxguardError, _voxguard_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
