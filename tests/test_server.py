"""The REST service (voxguard.server) through FastAPI's TestClient: endpoints, limits, auth,
storage and a battery of bad uploads that must all be answered with a 4xx JSON error."""

from __future__ import annotations

import io
import struct
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("sqlalchemy")
pytest.importorskip("multipart")
pytest.importorskip("httpx")

import soundfile as sf
import sqlalchemy as sa
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

import voxguard
from signals import speechlike
from voxguard.models.registry import DEFAULT_MODEL
from voxguard.server import Settings, create_app
from voxguard.server import storage as st
from voxguard.server.routes import api, health

SR = 16_000


def wav_bytes(y: np.ndarray, sr: int = SR, subtype: str = "PCM_16") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, y, sr, format="WAV", subtype=subtype)
    return buf.getvalue()


def wav_header(data_bytes: int, sr: int = SR, channels: int = 1, bits: int = 16) -> bytes:
    """A canonical 44-byte PCM WAV header declaring ``data_bytes`` of samples."""
    block = channels * bits // 8
    return (
        b"RIFF"
        + struct.pack("<I", 36 + data_bytes)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, channels, sr, sr * block, block, bits)
        + b"data"
        + struct.pack("<I", data_bytes)
    )


@pytest.fixture(scope="module")
def scanner() -> voxguard.Scanner:
    return voxguard.load_detector()  # loaded once for the whole module


@pytest.fixture(scope="module")
def speech_wav() -> bytes:
    return wav_bytes(speechlike(SR, 6.0))


@pytest.fixture
def make_client(tmp_path: Path, scanner: voxguard.Scanner):
    """``make_client(**settings)``: a started TestClient on a fresh SQLite database in tmp_path."""
    clients: list[TestClient] = []

    def make(**overrides: object) -> TestClient:
        settings = Settings(data_dir=tmp_path / f"data{len(clients)}", **overrides)
        client = TestClient(create_app(settings, scanner=scanner))
        client.__enter__()  # runs the lifespan: storage migrated, service ready
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.__exit__(None, None, None)


@pytest.fixture
def client(make_client) -> TestClient:
    return make_client()


def upload(client: TestClient, data: bytes, name: str = "clip.wav", **kw: object):
    return client.post("/v1/scan", files={"file": (name, data, "application/octet-stream")}, **kw)


def assert_error(r, status: int | tuple[int, ...], code: str | None = None) -> dict:
    statuses = (status,) if isinstance(status, int) else status
    assert r.status_code in statuses, (r.status_code, r.text)
    body = r.json()
    assert set(body) >= {"error", "message"}, body
    if code is not None:
        assert body["error"] == code, body
    return body


# ----------------------------------------------------------------------------- endpoints


def test_health_and_ready(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    assert ready.json()["model"] == DEFAULT_MODEL
    assert ready.json()["schema_version"] == st.SCHEMA_VERSION


def test_readyz_503_when_database_unreachable(client: TestClient, monkeypatch) -> None:
    service = client.app.state.service
    monkeypatch.setattr(service.storage, "ping", lambda: False)
    r = client.get("/readyz")
    assert r.status_code == 503
    assert r.json()["database"] == "unreachable"
    assert client.get("/healthz").status_code == 200  # alive, just not ready


def test_scan_get_roundtrip(client: TestClient, speech_wav: bytes) -> None:
    r = upload(client, speech_wav, name="../../etc/calls/clip.wav")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["verdict"] in {"REAL", "FAKE", "UNCERTAIN"}
    assert 0.0 <= body["probability"] <= 1.0
    assert body["model"] == DEFAULT_MODEL
    assert body["path"] == "clip.wav"  # directories of the client's name are dropped
    assert body["duration_s"] == pytest.approx(6.0, abs=0.01)
    assert len(body["timeline"]) >= 2
    uuid.UUID(body["id"])
    stored = client.get(f"/v1/scans/{body['id']}")
    assert stored.status_code == 200
    got = stored.json()
    for key in ("verdict", "probability", "timeline", "threshold", "sha256", "id"):
        assert got[key] == body[key]
    assert got["feedback"] == []


def test_scan_result_matches_library(client: TestClient, scanner, speech_wav: bytes) -> None:
    body = upload(client, speech_wav).json()
    expected = scanner.scan(speech_wav).to_dict()
    assert body["probability"] == expected["probability"]
    assert body["timeline"] == expected["timeline"]
    assert body["watermark"] is None and body["timeline"][0]["watermark"] is None  # not asked for
    assert body["wide_band"] == expected["wide_band"]


def test_scan_reports_the_wide_band_companion(client: TestClient, scanner) -> None:
    # A 16-kHz upload: the companion is not used and the reply says why; a 22.05-kHz one with
    # breath noise up to 11 kHz: it is, and the verdict used the mix's threshold.
    rng = np.random.default_rng(5)
    y = speechlike(22_050, 6.0) + 0.01 * rng.standard_normal(6 * 22_050).astype(np.float32)
    narrow = upload(client, wav_bytes(speechlike(SR, 6.0))).json()
    wide = upload(client, wav_bytes(y, sr=22_050)).json()
    if scanner.companion is None:  # a default model without a shipped companion
        assert narrow["wide_band"] is None and wide["wide_band"] is None
        return
    assert narrow["wide_band"]["used"] is False and "16000 Hz" in narrow["wide_band"]["note"]
    assert wide["wide_band"]["used"] is True and wide["wide_band"]["top_band_db"] > -60
    assert wide["threshold"] == pytest.approx(scanner.companion.fusion.thresholds["eer"], abs=1e-6)


def test_scan_options_query_and_form(client: TestClient, speech_wav: bytes) -> None:
    r = upload(client, speech_wav, params={"segment": 2, "hop": 1, "threshold": 0.99})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["segment_s"], body["hop_s"], body["threshold"]) == (2.0, 1.0, 0.99)
    assert body["operating_point"] == "custom"
    r = client.post("/v1/scan", files={"file": ("a.wav", speech_wav)}, data={"segment": "3", "hop": "1.5"})
    assert r.status_code == 200, r.text
    assert (r.json()["segment_s"], r.json()["hop_s"]) == (3.0, 1.5)


def test_scan_operating_point(client: TestClient, scanner, speech_wav: bytes) -> None:
    points = scanner.detector.thresholds()
    for how in ("params", "data"):
        for point in ("low-fa", "unseen-eer"):
            kwargs = {how: {"operating_point": point}}
            r = client.post("/v1/scan", files={"file": ("a.wav", speech_wav)}, **kwargs)
            if point not in points:  # the model has no such point: a 4xx saying so, not a 500
                assert point in assert_error(r, 422)["message"]
                continue
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["operating_point"] == point and body["threshold"] == pytest.approx(points[point], abs=1e-6)
    # An explicit threshold wins; an unknown name is refused.
    r = upload(client, speech_wav, params={"operating_point": "low-fa", "threshold": 0.7})
    assert r.json()["threshold"] == 0.7 and r.json()["operating_point"] == "custom"
    bad = {"file": ("a.wav", speech_wav)}
    assert_error(client.post("/v1/scan", files=bad, data={"operating_point": "max"}), 422)
    assert_error(client.post("/v1/scan", files=bad, params={"operating_point": "max"}), 422)


@pytest.mark.parametrize(
    ("params", "data"),
    [
        ({"segment": 0}, None),
        ({"hop": -1}, None),
        ({"threshold": 1.5}, None),
        ({"segment": "abc"}, None),
        (None, {"hop": "abc"}),
        (None, {"threshold": "nan"}),
        (None, {"segment": "1e9"}),
    ],
)
def test_scan_bad_options_422(client: TestClient, speech_wav: bytes, params, data) -> None:
    r = client.post("/v1/scan", files={"file": ("a.wav", speech_wav)}, params=params, data=data)
    assert_error(r, 422)


def test_get_unknown_scan_404(client: TestClient) -> None:
    assert_error(client.get(f"/v1/scans/{uuid.uuid4()}"), 404, "scan_not_found")
    assert_error(client.get("/v1/scans/not-a-uuid"), 404, "scan_not_found")


def test_feedback(client: TestClient, speech_wav: bytes) -> None:
    scan_id = upload(client, speech_wav).json()["id"]
    r = client.post(f"/v1/scans/{scan_id}/feedback", json={"label": "real", "note": "my own voice"})
    assert r.status_code == 201, r.text
    assert r.json()["label"] == "real" and r.json()["scan_id"] == scan_id
    client.post(f"/v1/scans/{scan_id}/feedback", json={"label": "fake"})
    fb = client.get(f"/v1/scans/{scan_id}").json()["feedback"]
    assert [(f["label"], f["note"]) for f in fb] == [("real", "my own voice"), ("fake", None)]
    assert client.app.state.service.storage.count(st.feedback) == 2


@pytest.mark.parametrize(
    "payload", [{"label": "maybe"}, {"label": "REAL "}, {}, {"label": "real", "extra": 1}, {"label": "fake", "note": 3}]
)
def test_feedback_bad_body_422(client: TestClient, speech_wav: bytes, payload) -> None:
    scan_id = upload(client, speech_wav).json()["id"]
    assert_error(client.post(f"/v1/scans/{scan_id}/feedback", json=payload), 422, "invalid_request")


def test_feedback_not_json_422(client: TestClient, speech_wav: bytes) -> None:
    scan_id = upload(client, speech_wav).json()["id"]
    r = client.post(f"/v1/scans/{scan_id}/feedback", content=b"{not json", headers={"content-type": "application/json"})
    assert_error(r, 422)


def test_feedback_unknown_scan_404(client: TestClient) -> None:
    assert_error(client.post(f"/v1/scans/{uuid.uuid4()}/feedback", json={"label": "fake"}), 404, "scan_not_found")
    assert_error(client.post("/v1/scans/xyz/feedback", json={"label": "fake"}), 404, "scan_not_found")


def test_models(client: TestClient) -> None:
    body = client.get("/v1/models").json()
    assert body["loaded"] == DEFAULT_MODEL
    names = {m["name"]: m for m in body["models"]}
    assert {DEFAULT_MODEL, "seed-svm"} <= set(names)
    assert names[DEFAULT_MODEL]["loaded"] and names[DEFAULT_MODEL]["default"]
    assert not names["seed-svm"]["loaded"]


def test_openapi_lists_every_route(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    # FastAPI nests included routers, so collect the routes from the routers themselves.
    routes = {r.path for router in (api, health) for r in router.routes if isinstance(r, APIRoute)}
    assert routes == set(spec["paths"])
    assert {"/v1/scan", "/v1/scans/{scan_id}", "/v1/scans/{scan_id}/feedback", "/v1/models"} <= routes
    assert {"/healthz", "/readyz"} <= routes
    body = spec["paths"]["/v1/scan"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert "file" in body["schema"]["properties"]


def test_unknown_route_and_method_are_json(client: TestClient) -> None:
    assert_error(client.get("/v1/nope"), 404, "not_found")
    assert_error(client.get("/v1/scan"), 405, "method_not_allowed")


# ----------------------------------------------------------------------------- bad uploads


def _bad_uploads() -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    y = speechlike(SR, 2.0)
    good = wav_bytes(y)
    nan = y.astype(np.float32).copy()
    nan[100:200] = np.nan
    return {
        "random bytes": rng.bytes(8192),
        "riff header only": good[:12],
        "wav header, no data": wav_header(0),
        "wav header claims 10 hours": wav_header(10 * 3600 * SR * 2) + rng.bytes(4000),
        "truncated wav": good[:30],
        "empty": b"",
        "one byte": b"\x00",
        "text file": b"This is a text file, not audio.\n" * 20,
        "json": b'{"file": "clip.wav"}',
        "html": b"<!doctype html><html><body>hi</body></html>",
        "silent wav": wav_bytes(np.zeros(SR * 3, dtype=np.float32)),
        "near-silent noise": wav_bytes(1e-7 * rng.standard_normal(SR * 2).astype(np.float32), subtype="FLOAT"),
        "nan samples": wav_bytes(nan, subtype="FLOAT"),
        "absurd sample rate": wav_header(2000, sr=1) + bytes(2000),
        "too many channels": wav_header(64 * 200, channels=32) + bytes(64 * 200),
        "fake mp3 sync": b"\xff\xfb\x90\x00" + rng.bytes(3000),
        "fake id3": b"ID3\x03\x00\x00\x00\x00\x00\x00" + rng.bytes(3000),
        "fake ogg": b"OggS" + rng.bytes(3000),
        "fake flac": b"fLaC" + rng.bytes(3000),
        "fake m4a": b"\x00\x00\x00\x20ftypM4A " + rng.bytes(3000),
        "fake webm": b"\x1a\x45\xdf\xa3" + rng.bytes(3000),
        "tiny clip": wav_bytes(y[:80]),
        "png": b"\x89PNG\r\n\x1a\n" + rng.bytes(500),
        "zip": b"PK\x03\x04" + rng.bytes(500),
    }


BAD = _bad_uploads()
# libsndfile sizes a WAV by the bytes actually present, not by the header's claim: this one is
# 0.125 s of audio, scanned as such and answered UNCERTAIN (too little speech), never a verdict.
MAY_BE_UNCERTAIN = {"wav header claims 10 hours"}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_upload_is_4xx_json(client: TestClient, name: str) -> None:
    r = upload(client, BAD[name], name="x.wav")  # a misleading extension: content decides
    if name in MAY_BE_UNCERTAIN and r.status_code == 200:
        assert r.json()["verdict"] == "UNCERTAIN"
        return
    body = assert_error(r, tuple(range(400, 500)))
    assert "Traceback" not in body["message"]


def test_bad_upload_codes(client: TestClient) -> None:
    assert_error(upload(client, BAD["empty"]), 422, "empty_file")
    assert_error(upload(client, BAD["text file"], name="clip.wav"), 415, "not_audio")
    assert_error(upload(client, BAD["silent wav"]), 422, "silent_audio")
    assert_error(upload(client, BAD["nan samples"]), 422, "invalid_samples")
    assert_error(upload(client, BAD["absurd sample rate"]), 422, "unsupported_sample_rate")


def test_truncated_wavs_never_500(client: TestClient, speech_wav: bytes) -> None:
    for cut in (44, 45, 100, 1001, 3 * SR, len(speech_wav) - 1):
        r = upload(client, speech_wav[:cut])
        assert r.status_code == 200 or 400 <= r.status_code < 500, (cut, r.status_code, r.text)


def test_malformed_requests(client: TestClient, speech_wav: bytes) -> None:
    # wrong field name
    r = client.post("/v1/scan", files={"audio": ("a.wav", speech_wav)})
    assert "'audio'" in assert_error(r, 422, "bad_request")["message"]
    # no body at all / not multipart
    assert_error(client.post("/v1/scan"), 415, "unsupported_media_type")
    assert_error(client.post("/v1/scan", content=speech_wav, headers={"content-type": "audio/wav"}), 415)
    assert_error(client.post("/v1/scan", json={"file": "x"}), 415)
    # multipart without boundary, or with garbage
    assert_error(client.post("/v1/scan", content=b"xx", headers={"content-type": "multipart/form-data"}), 422)
    r = client.post("/v1/scan", content=b"garbage", headers={"content-type": "multipart/form-data; boundary=zz"})
    assert_error(r, (400, 422))
    # 'file' as a plain text field, and two files
    r = client.post("/v1/scan", files={"other": ("o.txt", b"x")}, data={"file": "clip.wav"})
    assert "must be a file" in assert_error(r, 422, "bad_request")["message"]
    assert_error(client.post("/v1/scan", data={"file": "clip.wav"}), 415)  # urlencoded
    two = [("file", ("a.wav", speech_wav)), ("file", ("b.wav", speech_wav))]
    assert_error(client.post("/v1/scan", files=two), 422, "bad_request")
    # a 0-byte multipart body with the right content type
    r = client.post("/v1/scan", content=b"", headers={"content-type": "multipart/form-data; boundary=zz"})
    assert_error(r, (400, 422))


# ----------------------------------------------------------------------------- limits


def test_upload_too_large_by_content_length(make_client, speech_wav: bytes) -> None:
    c = make_client(max_upload_bytes=1000)
    assert_error(upload(c, speech_wav), 413, "upload_too_large")
    assert_error(upload(c, speech_wav[:900]), (413, 422))  # just under: goes on to the decoder


def test_upload_too_large_while_streaming(make_client, speech_wav: bytes) -> None:
    """Chunked upload without Content-Length: the limit stops the stream."""
    c = make_client(max_upload_bytes=1000)
    boundary = "vxb"
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'.encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    body = head + speech_wav * 2 + tail

    def chunks():  # a generator body is sent chunked, without Content-Length
        for i in range(0, len(body), 8192):
            yield body[i : i + 8192]

    r = c.post("/v1/scan", content=chunks(), headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    assert_error(r, 413, "upload_too_large")


def test_duration_limit(make_client, speech_wav: bytes) -> None:
    c = make_client(max_duration_s=2.0)
    body = assert_error(upload(c, speech_wav), 413, "too_long")
    assert "2 s" in body["message"]


def test_busy_503(make_client, speech_wav: bytes) -> None:
    c = make_client(max_concurrent=0)
    r = upload(c, speech_wav)
    assert_error(r, 503, "busy")
    assert r.headers.get("retry-after")


def test_concurrency_limit_with_slow_scan(make_client, speech_wav: bytes, monkeypatch) -> None:
    c = make_client(max_concurrent=1)
    service = c.app.state.service
    original = service.scan_sync
    gate = threading.Event()

    def slow(*args, **kwargs):
        gate.wait(5)
        return original(*args, **kwargs)

    monkeypatch.setattr(service, "scan_sync", slow)
    results: list[int] = []
    t = threading.Thread(target=lambda: results.append(upload(c, speech_wav).status_code))
    t.start()
    for _ in range(200):  # wait until the first scan holds the slot
        if service.running == 1:
            break
        time.sleep(0.01)
    assert service.running == 1
    assert_error(upload(c, speech_wav), 503, "busy")
    gate.set()
    t.join(10)
    assert results == [200]
    assert service.running == 0
    assert upload(c, speech_wav).status_code == 200  # the slot came back


def test_timeout_504_and_slot_released(make_client, speech_wav: bytes, monkeypatch) -> None:
    c = make_client(request_timeout_s=0.2, max_concurrent=1)
    service = c.app.state.service
    done = threading.Event()

    def slow(*args, **kwargs):
        time.sleep(0.6)
        done.set()
        return {}

    monkeypatch.setattr(service, "scan_sync", slow)
    assert_error(upload(c, speech_wav), 504, "timeout")
    assert service.running == 1  # the abandoned thread still holds the CPU slot
    assert_error(upload(c, speech_wav), 503, "busy")
    assert done.wait(5)
    for _ in range(100):
        if service.running == 0:
            break
        time.sleep(0.01)
    assert service.running == 0


# ----------------------------------------------------------------------------- auth


def test_api_keys(make_client, speech_wav: bytes) -> None:
    c = make_client(api_keys=("key-one", "key-two"))
    r = c.get("/v1/models")
    assert_error(r, 401, "unauthorized")
    assert "www-authenticate" in r.headers
    assert_error(c.get("/v1/models", headers={"X-API-Key": "wrong"}), 401, "unauthorized")
    assert_error(c.get("/v1/models", headers={"Authorization": "Bearer wrong"}), 401)
    assert_error(upload(c, speech_wav), 401)
    assert_error(c.get(f"/v1/scans/{uuid.uuid4()}"), 401)  # auth before lookup: no id probing
    assert c.get("/v1/models", headers={"X-API-Key": "key-one"}).status_code == 200
    assert c.get("/v1/models", headers={"Authorization": "Bearer key-two"}).status_code == 200
    r = upload(c, speech_wav, headers={"X-API-Key": "key-two"})
    assert r.status_code == 200
    assert c.get("/healthz").status_code == 200
    assert c.get("/readyz").status_code == 200
    assert c.get("/openapi.json").status_code == 200


def test_no_keys_means_open(client: TestClient) -> None:
    assert client.get("/v1/models", headers={"X-API-Key": "anything"}).status_code == 200


def test_cors_off_by_default_and_configurable(make_client) -> None:
    pre = {"Origin": "https://example.org", "Access-Control-Request-Method": "POST"}
    off = make_client()
    assert "access-control-allow-origin" not in off.get("/healthz", headers={"Origin": "https://example.org"}).headers
    on = make_client(cors_origins=("https://example.org",))
    r = on.options("/v1/scan", headers=pre)
    assert r.headers.get("access-control-allow-origin") == "https://example.org"


# ----------------------------------------------------------------------------- storage


def test_storage_roundtrip_no_audio_by_default(client: TestClient, speech_wav: bytes) -> None:
    body = upload(client, speech_wav).json()
    service = client.app.state.service
    assert service.settings.db_url.startswith("sqlite:///")
    assert Path(service.settings.db_url.removeprefix("sqlite:///")).is_file()
    with service.storage.engine.connect() as conn:
        row = conn.execute(sa.select(st.scans).where(st.scans.c.id == body["id"])).mappings().one()
        versions = conn.execute(sa.select(st.schema_version.c.version)).scalars().all()
    assert versions == [v for v, _ in st.MIGRATIONS] and versions[-1] == st.SCHEMA_VERSION
    assert row["audio"] is None
    assert row["file_sha256"] == body["sha256"]
    assert row["model"] == DEFAULT_MODEL
    assert row["verdict"] == body["verdict"]
    assert row["result"]["timeline"] == body["timeline"]
    feats = row["features"]
    assert len(feats["probability"]) == len(body["timeline"])
    assert feats["probability"][0] == pytest.approx(body["timeline"][0]["probability"], abs=1e-6)
    # nothing in the row is the audio itself
    assert speech_wav[44:1044] not in repr(dict(row)).encode()


def test_keep_audio_stores_upload(make_client, speech_wav: bytes) -> None:
    c = make_client(keep_audio=True)
    scan_id = upload(c, speech_wav).json()["id"]
    row = c.app.state.service.storage.get_scan(scan_id, with_audio=True)
    assert row["audio"] == speech_wav


def test_migrate_is_idempotent_and_upgrades(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    s = st.Storage(url)
    assert s.migrate() == st.SCHEMA_VERSION
    assert s.migrate() == st.SCHEMA_VERSION
    assert s.count(st.schema_version) == len(st.MIGRATIONS)
    assert s.ping()
    s.close()
    mem = st.Storage("sqlite://")  # in-memory: one shared connection
    mem.migrate()
    made = mem.add_scan(model="m", file_sha256="0" * 64, result={"verdict": "REAL"}, features=None)
    assert mem.get_scan(made["id"])["result"] == {"verdict": "REAL"}
    assert mem.add_feedback(made["id"], "fake", None)["label"] == "fake"
    assert mem.add_feedback(str(uuid.uuid4()), "fake", None) is None
    with pytest.raises(ValueError):
        mem.add_feedback(made["id"], "maybe", None)


def test_database_url_setting(make_client, tmp_path: Path, speech_wav: bytes) -> None:
    db = tmp_path / "elsewhere.db"
    c = make_client(database_url=f"sqlite:///{db}")
    assert upload(c, speech_wav).status_code == 200
    assert db.is_file()


# ----------------------------------------------------------------------------- settings and CLI


def test_settings_from_env(tmp_path: Path) -> None:
    env = {
        "VOXGUARD_MAX_UPLOAD_BYTES": "1000",
        "VOXGUARD_MAX_DURATION_S": "30.5",
        "VOXGUARD_REQUEST_TIMEOUT_S": "5",
        "VOXGUARD_MAX_CONCURRENT": "2",
        "VOXGUARD_API_KEYS": " a, b ,,",
        "VOXGUARD_DATA_DIR": str(tmp_path),
        "VOXGUARD_KEEP_AUDIO": "yes",
        "VOXGUARD_MODEL": "seed-svm",
        "VOXGUARD_CORS_ORIGINS": "https://x.org",
    }
    s = Settings.from_env(env)
    assert (s.max_upload_bytes, s.max_duration_s, s.request_timeout_s, s.max_concurrent) == (1000, 30.5, 5.0, 2)
    assert s.api_keys == ("a", "b") and s.keep_audio and s.model == "seed-svm"
    assert s.db_url == f"sqlite:///{tmp_path / 'voxguard.db'}"
    assert s.cors_origins == ("https://x.org",)
    d = Settings.from_env({})
    assert (d.max_upload_bytes, d.max_duration_s, d.request_timeout_s, d.max_concurrent) == (50_000_000, 600, 60, 4)
    assert d.api_keys == () and not d.keep_audio and d.model is None
    for bad in (
        {"VOXGUARD_MAX_CONCURRENT": "many"},
        {"VOXGUARD_KEEP_AUDIO": "perhaps"},
        {"VOXGUARD_MAX_DURATION_S": "-1"},
    ):
        with pytest.raises(ValueError, match="VOXGUARD_"):
            Settings.from_env(bad)


def test_app_loads_model_from_settings(tmp_path: Path) -> None:
    with TestClient(create_app(Settings(data_dir=tmp_path, model="seed-svm"))) as c:
        assert c.get("/readyz").json()["model"] == "seed-svm"
        assert c.get("/v1/models").json()["loaded"] == "seed-svm"


def _serve_app():
    import typer

    from voxguard.cli_serve import serve

    app = typer.Typer()
    app.command()(serve)
    return app


def test_cli_serve_runs_uvicorn_factory(monkeypatch, tmp_path: Path) -> None:
    import uvicorn
    from typer.testing import CliRunner

    calls: list[tuple] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: calls.append((a, kw)))
    for var in ("VOXGUARD_MODEL", "VOXGUARD_DATA_DIR", "VOXGUARD_KEEP_AUDIO"):
        # setenv first, so that monkeypatch restores the *absence* of the variables that serve sets
        # (delenv of an unset variable records nothing, and they leaked into later tests)
        monkeypatch.setenv(var, "")
        monkeypatch.delenv(var)
    args = ["--port", "8123", "--model", "seed-svm", "--data-dir", str(tmp_path), "--keep-audio", "--workers", "2"]
    r = CliRunner().invoke(_serve_app(), args)
    assert r.exit_code == 0, r.output
    (a, kw) = calls[0]
    assert a == ("voxguard.server.app:create_app",)
    assert kw["factory"] is True and kw["port"] == 8123 and kw["workers"] == 2 and kw["host"] == "127.0.0.1"
    s = Settings.from_env()
    assert s.model == "seed-svm" and s.keep_audio and s.data_dir == tmp_path


def test_cli_serve_errors(monkeypatch) -> None:
    from typer.testing import CliRunner

    import voxguard.cli_serve as cs

    monkeypatch.setenv("VOXGUARD_MODEL", "")  # restored to unset afterwards, whatever serve sets
    monkeypatch.delenv("VOXGUARD_MODEL")
    monkeypatch.setattr(cs, "_missing_server_modules", lambda: ["uvicorn"])
    r = CliRunner().invoke(_serve_app(), [])
    assert r.exit_code == 1 and "voxguard[server]" in r.output
    monkeypatch.setattr(cs, "_missing_server_modules", lambda: [])
    r = CliRunner().invoke(_serve_app(), ["--model", "no-such-model"])
    assert r.exit_code == 1 and "no-such-model" in r.output


# ----------------------------------------------------------------------------- web page


def test_index_page(make_client) -> None:
    c = make_client(api_keys=("k",))  # the page itself is open; its API calls carry the key
    r = c.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    html = r.text
    for needle in ('"/v1/scan"', '"/v1/scans/"', "/feedback", 'type="file"', "<svg", 'aria-live="polite"'):
        assert needle in html
    assert '<label for="apikey"' in html and '<label for="watermark"' in html and 'lang="en"' in html
    assert "http://" not in html and "https://" not in html  # offline: no external resources
    assert "/" not in c.get("/openapi.json").json()["paths"]
