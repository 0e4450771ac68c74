"""The service's storage (voxguard.server.storage) on SQLite and on a real PostgreSQL server.

PostgreSQL: ``VOXGUARD_TEST_POSTGRES_URL`` if set (its voxguard tables are dropped and recreated),
otherwise a throwaway cluster started here on 127.0.0.1 with Debian's ``initdb``/``pg_ctl`` (as the
``postgres`` user when the tests run as root, since PostgreSQL refuses to run as root). The
PostgreSQL cases skip, saying why, only when no server can be had.
"""

from __future__ import annotations

import glob
import io
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("sqlalchemy")
pytest.importorskip("multipart")
pytest.importorskip("httpx")

import soundfile as sf
import sqlalchemy as sa
from fastapi.testclient import TestClient

import voxguard
from signals import speechlike
from voxguard.evaluate.retrain import vector_spec
from voxguard.models.onnx_model import OnnxModel
from voxguard.server import Settings, create_app
from voxguard.server import storage as st
from voxguard.server.service import stored_vector_spec

SR = 16_000


# ----------------------------------------------------------------------------- PostgreSQL


def _pg_bindir() -> Path | None:
    """The newest Debian PostgreSQL server binaries, or wherever ``initdb`` is on the PATH."""

    def major(p: str) -> int:
        try:
            return int(Path(p).parent.name.split(".")[0])
        except ValueError:
            return -1

    for cand in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=major, reverse=True):
        if (Path(cand) / "initdb").is_file() and (Path(cand) / "pg_ctl").is_file():
            return Path(cand)
    found = shutil.which("initdb")
    return Path(found).resolve().parent if found else None


def _driver() -> str | None:
    for module, dialect in (("psycopg", "postgresql+psycopg"), ("psycopg2", "postgresql+psycopg2")):
        try:
            __import__(module)
        except ImportError:
            continue
        return dialect
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server for the session: ``VOXGUARD_TEST_POSTGRES_URL``, or a throwaway cluster."""
    if url := os.environ.get("VOXGUARD_TEST_POSTGRES_URL"):
        yield url
        return
    dialect = _driver()
    if dialect is None:
        pytest.skip("no PostgreSQL driver: pip install 'psycopg[binary]' (in the dev extra)")
    bindir = _pg_bindir()
    if bindir is None:
        pytest.skip(
            "no PostgreSQL server binaries (initdb/pg_ctl): apt-get install postgresql "
            "(scripts/install-service-tools.sh), or set VOXGUARD_TEST_POSTGRES_URL"
        )
    as_user: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="voxguard-pg-"))
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            pw = None
        if runuser is None or pw is None:
            shutil.rmtree(root, ignore_errors=True)
            pytest.skip("running as root, and no 'postgres' user or runuser to start PostgreSQL as")
        as_user = [runuser, "-u", "postgres", "--"]
        os.chown(root, pw.pw_uid, pw.pw_gid)
    data, log = root / "data", root / "server.log"
    port = _free_port()
    started = False
    try:
        init = subprocess.run(
            [*as_user, str(bindir / "initdb"), "-D", str(data), "-U", "voxguard", "--auth=trust", "--no-locale",
             "-E", "UTF8", "--no-sync"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        if init.returncode != 0:
            pytest.skip(f"initdb failed: {init.stderr.strip()[-500:]}")
        # Loopback only, socket in the throwaway folder, no fsync: a test server, not a database.
        opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
        start = subprocess.run(
            [*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", opts, "-w", "-t", "60", "start"],
            capture_output=True, text=True, timeout=90,
        )  # fmt: skip
        if start.returncode != 0:
            tail = log.read_text()[-800:] if log.exists() else start.stderr[-800:]
            pytest.skip(f"PostgreSQL did not start: {tail}")
        started = True
        yield f"{dialect}://voxguard@127.0.0.1:{port}/postgres"
    finally:
        if started:
            subprocess.run(
                [*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                capture_output=True,
                timeout=60,
            )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path: Path) -> Iterator[str]:
    """An empty database: a SQLite file, or the PostgreSQL server with voxguard's tables dropped."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'voxguard.db'}"
        return
    url = request.getfixturevalue("postgres_url")
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE IF EXISTS feedback, scans, schema_version CASCADE"))
    finally:
        engine.dispose()
    yield url


@pytest.fixture(scope="module")
def scanner() -> voxguard.Scanner:
    # A routed model whose scans the service keeps as vectors (the default voxguard-v9 has a
    # frame-model expert, so it keeps none: test_a_model_with_a_frame_expert_keeps_no_vectors).
    return voxguard.load_detector("voxguard-v8")


def wav_bytes(y: np.ndarray) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, y, SR, format="WAV", subtype="PCM_16")
    return buf.getvalue()


VEC = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
SPEC = {"kind": "segmental", "segment_s": 4.0, "n_columns": 4}


# ----------------------------------------------------------------------------- migrations


def test_migrate_fresh_and_idempotent(db_url: str) -> None:
    s = st.Storage(db_url)
    try:
        assert s.migrate() == st.SCHEMA_VERSION == 2
        assert s.migrate() == st.SCHEMA_VERSION
        assert s.count(st.schema_version) == len(st.MIGRATIONS)
        with s.engine.connect() as conn:
            cols = {c["name"] for c in sa.inspect(conn).get_columns("scans")}
        assert {"vectors", "vectors_spec", "features", "audio"} <= cols
        assert s.ping() and s.version() == 2
    finally:
        s.close()


def test_upgrade_from_v1_keeps_rows(db_url: str) -> None:
    s = st.Storage(db_url)
    try:
        assert st.migrate(s.engine, target=1) == 1
        with s.engine.connect() as conn:
            cols = {c["name"] for c in sa.inspect(conn).get_columns("scans")}
        assert "vectors" not in cols  # version 1 is frozen: it never had them
        _, (v1_scans, v1_feedback) = st._v1_tables()
        scan_id = str(uuid.uuid4())
        with s.engine.begin() as conn:
            conn.execute(
                sa.insert(v1_scans).values(
                    id=scan_id, created=st._now(), model="voxguard-v1", file_sha256="a" * 64,
                    result={"verdict": "FAKE"}, features={"score": [1.0]},
                )
            )  # fmt: skip
            conn.execute(
                sa.insert(v1_feedback).values(id=str(uuid.uuid4()), scan_id=scan_id, label="real", created=st._now())
            )
        # retrain reads a database that the service has not migrated yet, without vectors
        (old,) = s.labelled_scans()
        assert (old.scan_id, old.label, old.vectors, old.vectors_spec) == (scan_id, "real", None, None)
        assert s.migrate() == 2
        assert s.get_scan(scan_id)["result"] == {"verdict": "FAKE"}
        (after,) = s.labelled_scans()
        assert after.vectors is None and after.label == "real"
        made = s.add_scan(model="m", file_sha256="b" * 64, result={}, features=None, vectors=VEC, vectors_spec=SPEC)
        s.add_feedback(made["id"], "fake", None)
        new = next(x for x in s.labelled_scans() if x.scan_id == made["id"])
        np.testing.assert_array_equal(new.vectors, VEC)
        assert new.vectors_spec == SPEC
    finally:
        s.close()


def test_schema_newer_than_code_is_refused(db_url: str) -> None:
    s = st.Storage(db_url)
    try:
        s.migrate()
        with s.engine.begin() as conn:
            conn.execute(sa.insert(st.schema_version).values(version=st.SCHEMA_VERSION + 1, applied=st._now()))
        with pytest.raises(st.SchemaTooNewError, match="newer"):
            s.migrate()
    finally:
        s.close()


# ----------------------------------------------------------------------------- rows


def test_scans_feedback_and_labelled_scans(db_url: str) -> None:
    s = st.Storage(db_url)
    try:
        s.migrate()
        a = s.add_scan(
            model="m", file_sha256="a" * 64, result={"verdict": "REAL"}, features={"score": [0.5]},
            filename="x" * 600, audio=b"RIFF-bytes", vectors=VEC, vectors_spec=SPEC,
        )  # fmt: skip
        b = s.add_scan(model="m", file_sha256="b" * 64, result={}, features=None, vectors=VEC)  # no spec: dropped
        c = s.add_scan(model="m", file_sha256="c" * 64, result={}, features=None)  # never labelled
        assert s.get_scan(a["id"])["filename"] == "x" * 500
        assert "vectors" not in s.get_scan(a["id"]) and "audio" not in s.get_scan(a["id"])
        assert s.get_scan(a["id"], with_audio=True)["audio"] == b"RIFF-bytes"
        s.add_feedback(a["id"], "fake", "first")
        s.add_feedback(b["id"], "real", None)
        s.add_feedback(a["id"], "real", "corrected")  # the latest label wins
        assert [f["note"] for f in s.get_scan(a["id"])["feedback"]] == ["first", "corrected"]
        rows = s.labelled_scans()
        assert [r.scan_id for r in rows] == [b["id"], a["id"]]  # by the time of the latest feedback
        by_id = {r.scan_id: r for r in rows}
        assert by_id[a["id"]].label == "real" and by_id[a["id"]].audio is None
        np.testing.assert_array_equal(by_id[a["id"]].vectors, VEC)
        assert by_id[b["id"]].vectors is None and by_id[b["id"]].vectors_spec is None
        assert c["id"] not in by_id
        assert s.labelled_scans(with_audio=True)[1].audio == b"RIFF-bytes"
        assert s.get_scan("not-a-uuid") is None and s.add_feedback("not-a-uuid", "real", None) is None
        assert s.add_feedback(str(uuid.uuid4()), "real", None) is None
        with pytest.raises(ValueError):
            s.add_feedback(a["id"], "maybe", None)
    finally:
        s.close()


def test_concurrent_writes(db_url: str) -> None:
    """Scans are stored from worker threads: parallel writers must neither fail nor lose rows."""
    s = st.Storage(db_url)
    errors: list[BaseException] = []
    try:
        s.migrate()

        def writer(k: int) -> None:
            try:
                for i in range(10):
                    made = s.add_scan(model="m", file_sha256=f"{k:02d}{i:062d}", result={"i": i}, features=None)
                    s.add_feedback(made["id"], ("real", "fake")[i % 2], None)
            except BaseException as exc:  # collected, so the assertion shows it
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        assert s.count(st.scans) == 40 and s.count(st.feedback) == 40
        assert len(s.labelled_scans()) == 40
    finally:
        s.close()


def test_vector_encoding_is_safe() -> None:
    blob = st.encode_vectors(VEC)
    np.testing.assert_array_equal(st.decode_vectors(blob), VEC)
    assert st.decode_vectors(None) is None and st.decode_vectors(b"garbage") is None
    pickled = io.BytesIO()
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    assert st.decode_vectors(pickled.getvalue()) is None  # never unpickles
    with pytest.raises(ValueError):
        st.encode_vectors(np.zeros(3))


# ----------------------------------------------------------------------------- the service on each database


def test_a_model_with_a_frame_expert_keeps_no_vectors(tmp_path: Path) -> None:
    """The default voxguard-v9 (a Fisher-vector expert reads frame crops): results and scores are
    stored, vectors are not, and the kept audio is what a retrain of it can learn from."""
    assert voxguard.load_detector().model_name == "voxguard-v9"
    settings = Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'v.db'}", keep_audio=True)
    clip = wav_bytes(speechlike(SR, 6.0))
    with TestClient(create_app(settings)) as client:
        body = client.post("/v1/scan", files={"file": ("a.wav", clip, "audio/wav")}).json()
        assert body["model"] == "voxguard-v9" and len(body["timeline"]) > 0
        assert client.post(f"/v1/scans/{body['id']}/feedback", json={"label": "fake", "note": None}).status_code == 201
        (row,) = client.app.state.service.storage.labelled_scans(with_audio=True)
    assert row.vectors is None and row.vectors_spec is None and row.audio == clip


def test_service_on_database(db_url: str, tmp_path: Path, scanner: voxguard.Scanner) -> None:
    clip = wav_bytes(speechlike(SR, 6.0))
    with TestClient(create_app(Settings(data_dir=tmp_path, database_url=db_url), scanner=scanner)) as client:
        assert client.get("/readyz").json()["schema_version"] == st.SCHEMA_VERSION
        body = client.post("/v1/scan", files={"file": ("a.wav", clip, "audio/wav")}).json()
        fb = client.post(f"/v1/scans/{body['id']}/feedback", json={"label": "fake", "note": "cloned voice"})
        assert fb.status_code == 201
        got = client.get(f"/v1/scans/{body['id']}").json()
        assert got["feedback"][0]["label"] == "fake" and got["feedback"][0]["note"] == "cloned voice"
        # a timeline at another segment length is not training data for this model: no vectors
        other = client.post("/v1/scan?segment=2", files={"file": ("b.wav", clip, "audio/wav")}).json()
        client.post(f"/v1/scans/{other['id']}/feedback", json={"label": "real", "note": None})
        storage = client.app.state.service.storage
        rows = {r.scan_id: r for r in storage.labelled_scans()}
    scored = rows[body["id"]]
    assert scored.file_sha256 == body["sha256"] and scored.label == "fake"
    assert scored.vectors is not None and scored.vectors.shape[0] == len(body["timeline"])
    model = OnnxModel(scanner.model_path)
    det = scanner.detector
    assert scored.vectors_spec == stored_vector_spec(det)
    # the stored rows are exactly what the model scored for the timeline (a fusion: each
    # member's columns through that member, then the fusion graph; a routed model stores each
    # distinct feature setting once, and its router reads the block of its own setting)
    if det.members:
        specs = scored.vectors_spec["members"]
        assert scored.vectors_spec["kind"] == "fusion" and len({json.dumps(x) for x in specs}) == len(specs)
        edges = np.cumsum([0, *[spec["n_columns"] for spec in specs]])
        assert scored.vectors.shape[1] == edges[-1]
        blocks = [json.dumps(spec, sort_keys=True) for spec in specs]
        columns = []
        for m in det.members:
            i = blocks.index(json.dumps(vector_spec(m.model.card.features), sort_keys=True))
            X = scored.vectors[:, edges[i] : edges[i + 1]]
            columns.append(m.model.posteriors(X) if m.is_router else m.model.score(X)[:, None])
        rescored = model.score(np.hstack(columns))
    else:
        assert scored.vectors_spec == vector_spec(model.card.features)
        rescored = model.score(scored.vectors)
    stored_scores = [seg["score"] for seg in body["timeline"]]
    np.testing.assert_allclose(rescored, stored_scores, rtol=1e-4, atol=1e-4)
    assert rows[other["id"]].vectors is None


def test_window_model_stores_no_vectors(tmp_path: Path) -> None:
    """seed-svm scores DEEP-VOICE windows, not segment vectors: nothing to retrain it with is stored."""
    clip = wav_bytes(speechlike(SR, 4.0))
    with TestClient(create_app(Settings(data_dir=tmp_path, model="seed-svm"))) as client:
        body = client.post("/v1/scan", files={"file": ("a.wav", clip, "audio/wav")}).json()
        client.post(f"/v1/scans/{body['id']}/feedback", json={"label": "real", "note": None})
        (row,) = client.app.state.service.storage.labelled_scans()
    assert row.vectors is None and row.vectors_spec is None


def test_vectors_are_not_stored_when_switched_off(tmp_path: Path) -> None:
    """VOXGUARD_STORE_VECTORS=false: only the result and scores are kept (privacy)."""
    settings = Settings.from_env({"VOXGUARD_STORE_VECTORS": "false", "VOXGUARD_DATA_DIR": str(tmp_path)})
    assert settings.store_vectors is False
    clip = wav_bytes(speechlike(SR, 4.0))
    with TestClient(create_app(settings)) as client:
        body = client.post("/v1/scan", files={"file": ("a.wav", clip, "audio/wav")}).json()
        assert body["verdict"] in ("REAL", "FAKE", "UNCERTAIN")
        client.post(f"/v1/scans/{body['id']}/feedback", json={"label": "fake", "note": None})
        (row,) = client.app.state.service.storage.labelled_scans()
    assert row.vectors is None and row.vectors_spec is None
    assert Settings.from_env({}).store_vectors is True
