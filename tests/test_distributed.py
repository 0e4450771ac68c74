"""Distributed scanning and features on Dask, fsspec inputs and outputs (voxguard.scan.distributed).

One LocalCluster (2 worker processes, 1 thread each) serves the module. Every Dask result is
compared with the local engine's on the same files: same verdicts, probabilities, timelines and
errors, in the same order.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from signals import speechlike
from voxguard.cli import app
from voxguard.datasets.base import Dataset, Item
from voxguard.datasets.cache import extract_features
from voxguard.scan import ScanInput, expand_inputs, load_detector, scan_many
from voxguard.scan.distributed import (
    BACKEND_PACKAGES,
    MissingDependencyError,
    expand_sources,
    extract_many,
    map_ordered,
    portable_params,
    read_manifest,
    scan_batch,
    scan_task,
)

distributed = pytest.importorskip("distributed", reason="Dask is not installed: pip install 'voxguard[dist]'")
fsspec = pytest.importorskip("fsspec", reason="fsspec is not installed: pip install 'voxguard[dist]'")

N_GOOD = 6


def _comparable(d: dict, *, path: bool = False) -> dict:
    """A result dict without what legitimately differs between engines (timing; the name for URLs)."""
    d = dict(d)
    d.pop("elapsed_s")
    if not path:
        d.pop("path")
    return d


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six speech-like clips of 2-4.5 s, a damaged WAV and a text file the walk skips."""
    root = tmp_path_factory.mktemp("clips")
    for i in range(N_GOOD):
        sf.write(root / f"clip{i}.wav", speechlike(16_000, 2.0 + 0.5 * i, f0=100 + 15 * i, seed=i), 16_000)
    (root / "broken.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEjunk")
    (root / "notes.txt").write_text("not audio")
    return root


@pytest.fixture(scope="module")
def scanner():
    return load_detector()


@pytest.fixture(scope="module")
def items(clips: Path):
    found = expand_inputs([str(clips)])
    return [*found, *expand_inputs([str(clips / "missing.wav")])]


@pytest.fixture(scope="module")
def local(scanner, items) -> list[dict]:
    return [r.to_dict() for r in scan_many(scanner, items)]


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=logging.ERROR
        ) as cluster,
        Client(cluster) as c,
    ):
        yield c


def test_local_reference_has_good_and_bad_files(local: list[dict]) -> None:
    assert [Path(d["path"]).name for d in local] == [
        "broken.wav",
        *(f"clip{i}.wav" for i in range(N_GOOD)),
        "missing.wav",
    ]
    assert local[0]["error"]["code"] == "corrupt_audio"
    assert local[-1]["error"]["code"] == "not_found"
    assert all(d["verdict"] is not None and d["probability"] is not None for d in local[1:-1])


def test_dask_scan_equals_local(scanner, items, local, client) -> None:
    results = [r.to_dict() for r in scan_batch(scanner, items, engine="dask", client=client)]
    assert [_comparable(d, path=True) for d in results] == [_comparable(d, path=True) for d in local]
    # Each worker that took part built one scanner (one model load) for all of its files.
    seen = client.run(lambda: len(__import__("voxguard.scan.distributed").scan.distributed._SCANNERS))
    assert set(seen.values()) <= {0, 1} and sum(seen.values()) >= 1
    nanny_env = client.run(lambda: "MALLOC_TRIM_THRESHOLD_" in os.environ)
    if sys.platform.startswith("linux") and all(nanny_env.values()):
        # The nanny's malloc setting halves the scan speed; each worker that scanned has undone it.
        tuned = client.run(lambda: __import__("voxguard.scan.distributed").scan.distributed._MALLOC_TUNED)
        assert all(tuned[addr] for addr, n in seen.items() if n)


def test_worker_killed_mid_run_loses_no_file(scanner, items, local, client, tmp_path: Path) -> None:
    marker = str(tmp_path / "killed-once")

    def dying_scan(item, params):
        # The first task to run takes its worker process down with it (no exception, no cleanup).
        if not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(1)
        return scan_task(item, params)

    params = portable_params(scanner)
    results = list(map_ordered(client, dying_scan, [(i, params) for i in items], retries=0))
    assert os.path.exists(marker), "no worker was killed: the test did not test anything"
    assert [_comparable(r.to_dict(), path=True) for r in results] == [_comparable(d, path=True) for d in local]
    client.wait_for_workers(2, timeout=60)  # the nanny restarts the dead worker for the other tests


def test_task_errors_are_retried_then_reported(client, tmp_path: Path) -> None:
    attempts = tmp_path / "attempts"
    attempts.mkdir()

    def flaky(i: int) -> int:
        if i == 1:
            with open(attempts / f"{os.getpid()}-{len(os.listdir(attempts))}", "w"):
                pass
            raise ConnectionError("network down")
        return i * 10

    out = list(map_ordered(client, flaky, [(i,) for i in range(4)], retries=2, on_error=lambda a, e: f"{a[0]}:{e}"))
    assert out == [0, "1:network down", 20, 30]
    assert len(os.listdir(attempts)) == 3  # the first run and two retries
    with pytest.raises(ConnectionError):
        list(map_ordered(client, flaky, [(1,)], retries=0))


def test_memory_and_file_urls(scanner, clips: Path, local, client) -> None:
    mem = fsspec.filesystem("memory")
    for i in range(N_GOOD):
        mem.pipe(f"/vgtest/in/clip{i}.wav", (clips / f"clip{i}.wav").read_bytes())
    mem.pipe("/vgtest/in/readme.md", b"skipped by the listing")
    mem_items = expand_sources(["memory://vgtest/in/", "memory://vgtest/in/nothing.wav"])
    assert [i.name for i in mem_items] == [*(f"memory:///vgtest/in/clip{i}.wav" for i in range(N_GOOD)),
                                           "memory:///vgtest/in/nothing.wav"]  # fmt: skip
    file_items = expand_sources([clips.as_uri()])
    assert [i.name for i in file_items] == [Path(d["path"]).as_uri() for d in local[:-1]]

    mem_res = [r.to_dict() for r in scan_batch(scanner, mem_items, engine="dask", client=client)]
    assert [_comparable(d) for d in mem_res[:-1]] == [_comparable(d) for d in local[1:-1]]
    assert mem_res[-1]["error"]["code"] == "not_found"
    file_res = [r.to_dict() for r in scan_batch(scanner, file_items, engine="dask", client=client)]
    assert [_comparable(d) for d in file_res] == [_comparable(d) for d in local[:-1]]
    # The local engine reads URLs too (here a file:// URL: the worker-side reader, in this process).
    in_process = [r.to_dict() for r in scan_batch(scanner, file_items[:2])]
    assert [_comparable(d) for d in in_process] == [_comparable(d) for d in local[:2]]


def test_missing_backend_names_the_package(monkeypatch: pytest.MonkeyPatch, clips: Path) -> None:
    fsspec.register_implementation("vgnobackend", "voxguard_no_such_package.FS", clobber=True, errtxt="absent")
    monkeypatch.setitem(BACKEND_PACKAGES, "vgnobackend", "vg-no-such-fs")
    with pytest.raises(MissingDependencyError, match="pip install vg-no-such-fs"):
        expand_sources(["vgnobackend://bucket/a.wav"])
    res = CliRunner().invoke(app, ["scan", str(clips / "clip0.wav"), "vgnobackend://bucket/a.wav"])
    assert res.exit_code == 1
    assert "pip install vg-no-such-fs" in res.output and "Traceback" not in res.output
    try:
        import s3fs  # noqa: F401
    except ImportError:
        with pytest.raises(MissingDependencyError, match="pip install s3fs"):
            expand_sources(["s3://bucket/a.wav"])


def test_cli_dask_scheduler_jsonl_to_memory_url(clips: Path, local, client) -> None:
    url = "memory://vgtest/out/results.jsonl"
    args = ["scan", str(clips), str(clips / "missing.wav"), "--format", "jsonl", "--out", url]
    res = CliRunner().invoke(app, [*args, "--engine", "dask", "--scheduler", client.scheduler.address])
    assert res.exit_code == 2, res.output  # broken.wav and missing.wav failed, the rest was scanned
    lines = fsspec.filesystem("memory").cat_file("/vgtest/out/results.jsonl").decode().splitlines()
    assert [_comparable(json.loads(line), path=True) for line in lines] == [_comparable(d, path=True) for d in local]


def test_cli_usage_errors(clips: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    env = {k: v for k, v in os.environ.items() if k != "DASK_SCHEDULER_ADDRESS"}
    res = runner.invoke(app, ["scan", str(clips), "--engine", "dask"], env=env)
    assert res.exit_code == 1 and "--scheduler" in res.output
    res = runner.invoke(app, ["scan", str(clips), "--engine", "dask-local", "--plot", str(tmp_path)])
    assert res.exit_code == 1 and "--plot needs --engine local" in res.output
    res = runner.invoke(app, ["scan", str(clips), "--format", "parquet"])
    assert res.exit_code == 1 and "--out" in res.output
    import dask

    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):  # nobody listens on port 1
        res = runner.invoke(app, ["scan", "--engine", "dask", "--scheduler", "tcp://127.0.0.1:1", str(clips)])
    assert res.exit_code == 1 and "Traceback" not in res.output and "127.0.0.1:1" in res.output


def test_parquet_output(clips: Path, local, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow is not installed")
    out = tmp_path / "r.parquet"
    res = CliRunner().invoke(app, ["scan", str(clips), "--format", "parquet", "--out", str(out)])
    assert res.exit_code == 2, res.output
    rows = pq.read_table(out).to_pylist()
    assert [r["path"] for r in rows] == [d["path"] for d in local[:-1]]
    assert [r["probability"] for r in rows] == [d["probability"] for d in local[:-1]]
    assert rows[0]["error_code"] == "corrupt_audio" and rows[0]["timeline"] == []
    assert rows[1]["timeline"] == local[1]["timeline"]
    monkeypatch.setitem(__import__("sys").modules, "pyarrow.parquet", None)  # as if not installed
    res = CliRunner().invoke(app, ["scan", str(clips), "--format", "parquet", "--out", str(out)])
    assert res.exit_code == 1 and "pip install pyarrow" in res.output


def test_manifest(clips: Path, tmp_path: Path) -> None:
    (tmp_path / "m.csv").write_text(f"path,label\n{clips / 'clip1.wav'},spoof\n")
    rel = os.path.relpath(clips / "clip0.wav", tmp_path)
    (tmp_path / "m.txt").write_text(f"# inputs\n{rel}\n\n{clips.as_uri()}/clip2.wav\n")
    assert read_manifest(tmp_path / "m.csv") == [str(clips / "clip1.wav")]
    assert read_manifest(tmp_path / "m.txt") == [str(clips / "clip0.wav"), f"{clips.as_uri()}/clip2.wav"]
    items = expand_sources([str(clips / "clip1.wav")], manifest=tmp_path / "m.csv")
    assert [i.name for i in items] == [str(clips / "clip1.wav")]  # duplicates are dropped
    (tmp_path / "bad.csv").write_text("file\nx.wav\n")
    res = CliRunner().invoke(app, ["scan", "--manifest", str(tmp_path / "bad.csv")])
    assert res.exit_code == 1 and "'path' column" in res.output


def test_features_on_dask_equal_local_and_share_the_cache(clips: Path, client, tmp_path: Path) -> None:
    items = expand_inputs([str(clips)])
    cache = tmp_path / "cache"
    remote = list(extract_many(items, "lfcc", engine="dask", client=client, cache_dir=cache))
    assert [r["path"] for r in remote] == [i.name for i in items]
    assert remote[0]["ok"] is False and remote[0]["error"]["code"] == "corrupt_audio"
    assert all(r["ok"] and not r["cached"] for r in remote[1:])
    # The library's dataset extraction (local, no cache) gives the same tables...
    ds = Dataset([Item(path=Path(i.name), label="spoof", system="x", family="x") for i in items[1:]])
    ref = extract_features(ds, "lfcc", use_cache=False, progress=False)
    for r, table in zip(remote[1:], ref.features, strict=True):
        np.testing.assert_array_equal(r["table"].values, table.values)
    # ...and it finds what the workers cached, under the same content-hash keys.
    again = extract_features(ds, "lfcc", cache_dir=cache, progress=False)
    assert again.n_cached == N_GOOD and again.n_computed == 0


def test_cli_features_batch_on_dask(clips: Path, client, tmp_path: Path) -> None:
    out = tmp_path / "feats"
    args = ["features", str(clips), "--kind", "mfcc", "--cache-dir", str(tmp_path / "c"), "--out", out.as_uri()]
    res = CliRunner().invoke(app, [*args, "--engine", "dask", "--scheduler", client.scheduler.address])
    assert res.exit_code == 2, res.output  # broken.wav
    index = [json.loads(line) for line in (out / "index.jsonl").read_text().splitlines()]
    assert [Path(r["path"]).name for r in index] == ["broken.wav", *(f"clip{i}.wav" for i in range(N_GOOD))]
    single = CliRunner().invoke(
        app, ["features", str(clips / "clip3.wav"), "--kind", "mfcc", "-o", str(tmp_path / "one.npy")]
    )
    assert single.exit_code == 0, single.output
    np.testing.assert_array_equal(np.load(out / "clip3.wav.npy"), np.load(tmp_path / "one.npy"))


def test_read_errors_locally_are_results(scanner) -> None:
    from fsspec.spec import AbstractFileSystem

    class FlakyFS(AbstractFileSystem):
        protocol = "vgflaky"

        def cat_file(self, path, start=None, end=None, **kwargs):
            if "gone" in path:
                raise FileNotFoundError(path)
            raise ConnectionError("connection reset by peer")

    fsspec.register_implementation("vgflaky", FlakyFS, clobber=True)
    urls = ["vgflaky://bucket/a.wav", "vgflaky://bucket/gone.wav"]
    items = [ScanInput(u, u) for u in urls]
    # In this process (a pool's spawned workers would not know the in-test protocol).
    results = list(scan_batch(scanner, items))
    assert [r.path for r in results] == urls
    assert results[0].error is not None and results[0].error.code == "task_failed"
    assert "connection reset" in results[0].error.message
    assert results[1].error is not None and results[1].error.code == "not_found"
