"""Schemathesis against the service's own OpenAPI document: whatever the schema allows a client to
send (and a good deal it does not), the answer is never a 5xx, and every error is our JSON.

In-process (ASGI), at most ``MAX_EXAMPLES`` generated requests per operation, derandomised by the
tests' Hypothesis profile so CI runs the same requests every time (about 10 s on 2 cores, so not
marked slow). Schemathesis also sends methods the schema does not list (405s).
"""

from __future__ import annotations

import io
import shutil
import tempfile
import zlib
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("sqlalchemy")
pytest.importorskip("multipart")
pytest.importorskip("schemathesis", reason="schemathesis is not installed: pip install -e '.[dev]'")

import schemathesis
import soundfile as sf
from hypothesis import HealthCheck, settings

from signals import speechlike
from voxguard.server import Settings, create_app

MAX_EXAMPLES = 50
# Legitimate 503s: /readyz while not ready, and a full scan queue (``busy``); anything else >= 500 is a bug.
ALLOWED_503 = {"not_ready", "busy"}


# The schema is built when the module is collected, without starting the app: ``app.openapi()`` is
# pure, and the app's lifespan (model, database) starts with the first generated request.
# (schemathesis.pytest.from_fixture would defer this, but it breaks on pytest 9's node ids.)
_DATA_DIR = Path(tempfile.mkdtemp(prefix="voxguard-fuzz-"))
_APP = create_app(Settings(data_dir=_DATA_DIR, max_concurrent=2, request_timeout_s=30))
schema = schemathesis.openapi.from_dict(_APP.openapi())
schema.app = _APP
schema.location = "/openapi.json"


@pytest.fixture(scope="module", autouse=True)
def _remove_data_dir():
    yield
    shutil.rmtree(_DATA_DIR, ignore_errors=True)


@pytest.fixture(scope="module")
def real_scan_id() -> str:
    """A stored scan, so generated feedback and look-ups also reach existing rows, not only 404s."""
    from schemathesis.python import asgi

    clip = io.BytesIO()
    sf.write(clip, speechlike(16_000, 5.0), 16_000, format="WAV")
    with asgi.get_client(_APP) as client:  # the same app and lifespan the generated requests use
        r = client.post("/v1/scan", files={"file": ("clip.wav", clip.getvalue(), "audio/wav")})
    assert r.status_code == 200, r.text
    return r.json()["id"]


def test_schema_covers_the_api() -> None:
    assert {"/v1/scan", "/v1/scans/{scan_id}", "/v1/scans/{scan_id}/feedback", "/v1/models"} <= set(
        _APP.openapi()["paths"]
    )


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case, real_scan_id: str) -> None:
    params = case.path_parameters or {}
    if "scan_id" in params and zlib.crc32(str(params["scan_id"]).encode()) % 2:  # stable across runs
        params["scan_id"] = real_scan_id  # half the cases: bodies and methods on a scan that exists
    response = case.call()
    status = response.status_code
    body = response.json() if "json" in response.headers.get("content-type", [""])[0] else None
    if status == 503:
        code = (body or {}).get("error") or (body or {}).get("status")
        assert code in ALLOWED_503, (case.method, case.path, response.text[:300])
        return
    assert status < 500, (case.method, case.formatted_path, status, response.text[:300])
    if status >= 400:
        assert isinstance(body, dict) and {"error", "message"} <= set(body), (status, response.text[:300])
