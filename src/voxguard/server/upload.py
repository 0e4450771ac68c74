"""Reading a multipart upload with the size limit enforced *while* the body streams in.

FastAPI's ``UploadFile`` parameters parse the whole body before the endpoint runs, so a limit
checked there comes after a 2 GB upload has been spooled to disk. Here the request stream is
wrapped in a counter that stops at the limit, and Starlette's multipart parser reads from it.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from pathlib import PurePosixPath, PureWindowsPath

from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from voxguard.server.errors import BadRequestError, UnsupportedMediaTypeError, UploadTooLargeError

FILE_FIELD = "file"
# Room for boundaries, part headers and the small form fields around the file itself.
_MULTIPART_OVERHEAD = 64 * 1024


@dataclass
class Upload:
    """The uploaded file's bytes, its (sanitised) name and the other form fields."""

    data: bytes
    filename: str
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def _too_large(limit: int) -> UploadTooLargeError:
    return UploadTooLargeError(f"the upload exceeds the limit of {limit:,} bytes")


def clean_filename(name: str | None) -> str:
    """The base name of a client-supplied file name (no directories), at most 200 characters."""
    if not name:
        return "upload"
    base = PureWindowsPath(PurePosixPath(name).name).name.strip()
    base = "".join(ch for ch in base if ch.isprintable())
    return base[:200] or "upload"


async def read_upload(request: Request, max_bytes: int) -> Upload:
    """Parse ``multipart/form-data`` with one file in the field ``file``.

    Raises
    ------
    UnsupportedMediaTypeError
        The body is not multipart/form-data.
    UploadTooLargeError
        ``Content-Length`` or the bytes actually received exceed the limit.
    BadRequestError
        Malformed multipart data, no ``file`` field, or more than one file.
    """
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise UnsupportedMediaTypeError(
            "send the audio as multipart/form-data with the file in the field 'file' (curl -F file=@clip.wav ...)"
        )
    body_limit = max_bytes + _MULTIPART_OVERHEAD
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > body_limit:
        raise _too_large(max_bytes)  # refuse before reading a byte

    async def limited() -> AsyncGenerator[bytes, None]:
        received = 0
        async for chunk in request.stream():
            received += len(chunk)
            if received > body_limit:
                raise _too_large(max_bytes)
            yield chunk

    parser = MultiPartParser(request.headers, limited(), max_files=1, max_fields=20, max_part_size=64 * 1024)
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise BadRequestError(f"malformed multipart upload: {exc.message}") from None
    try:
        part = form.get(FILE_FIELD)
        if part is None:
            names = ", ".join(repr(k) for k in form) or "none"
            raise BadRequestError(f"no file in the multipart field 'file' (fields sent: {names})")
        if not isinstance(part, UploadFile):
            raise BadRequestError("the field 'file' must be a file upload (curl -F file=@clip.wav)")
        data = await part.read()
        if len(data) > max_bytes:
            raise _too_large(max_bytes)
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        return Upload(data=data, filename=clean_filename(part.filename), fields=fields)
    finally:
        await form.close()
