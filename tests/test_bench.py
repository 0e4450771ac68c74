"""Scan-path benchmark: every stage is timed, the seed pipeline is there, peak RSS is measured."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import soundfile as sf
import typer
from typer.testing import CliRunner

from voxguard.bench import (
    SCAN_STAGE,
    SEED_STAGE,
    bench_scan,
    format_scan_bench,
    peak_rss_scan,
    write_speech_wav,
)
from voxguard.cli_bench import bench_scan_cmd

EXPECTED = {
    "decode (voxguard.audio.load)",
    "preprocess (canonical)",
    "features: lfcc_4_8k_hann",
    "features: band_flatness",
    "features: all views",
    "pooling (segment mean/std)",
    "ONNX inference",
    SCAN_STAGE,
    "seed-svm via voxguard (deepvoice + ONNX)",
    "seed-svm scan (load_detector('seed-svm').scan)",
    SEED_STAGE,
}


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return bench_scan(5.0, repeats=1, seed_support_vectors=300)


def test_every_stage_has_positive_finite_speeds(rows: list[dict]) -> None:
    assert {r["stage"] for r in rows} == EXPECTED
    for r in rows:
        assert r["audio_s"] == pytest.approx(5.0)
        if r["stage"] == SEED_STAGE and r["note"] == "not installed":
            continue
        for key in ("cpu_s", "wall_s", "xrt_cpu", "xrt_wall"):
            assert r[key] is not None and math.isfinite(r[key]) and r[key] > 0, (r["stage"], key)


def test_seed_row_and_ratios(rows: list[dict]) -> None:
    seed = next(r for r in rows if r["stage"] == SEED_STAGE)
    if seed["note"] == "not installed":
        assert seed["xrt_cpu"] is None
        assert all(r["vs_seed_cpu"] is None for r in rows)
        return
    assert "support vectors" in seed["note"]
    assert seed["vs_seed_cpu"] == pytest.approx(1.0)
    for r in rows:
        assert r["vs_seed_cpu"] == pytest.approx(seed["cpu_s"] / r["cpu_s"])
        assert math.isfinite(r["vs_seed_wall"]) and r["vs_seed_wall"] > 0


def test_tables(rows: list[dict]) -> None:
    text = format_scan_bench(rows)
    md = format_scan_bench(rows, markdown=True)
    for r in rows:
        assert r["stage"] in text and r["stage"] in md
    assert md.splitlines()[1].startswith("|:---")


def test_write_speech_wav_is_deterministic_and_exact(tmp_path: Path) -> None:
    a, b = tmp_path / "a.wav", tmp_path / "b.wav"
    assert write_speech_wav(a, 2.5, block_s=1.0) == pytest.approx(2.5)
    write_speech_wav(b, 2.5, block_s=1.0)
    ya, sr = sf.read(a, dtype="int16")
    assert sr == 16000 and len(ya) == 40000
    assert (ya == sf.read(b, dtype="int16")[0]).all()


def test_peak_rss_scan_reports_megabytes() -> None:
    rss = peak_rss_scan(60.0, block_s=5.0, timeout_s=120)
    assert rss["audio_s"] == pytest.approx(60.0)
    assert 0 < rss["baseline_rss_mb"] <= rss["peak_rss_mb"] < 4096
    assert rss["scan_wall_s"] > 0 and rss["model"] == "voxguard-v1"


def test_cli_command_writes_markdown(tmp_path: Path) -> None:
    app = typer.Typer()
    app.command()(bench_scan_cmd)
    out = tmp_path / "perf.md"
    result = CliRunner().invoke(app, ["--duration", "3", "--repeats", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert SCAN_STAGE in result.output
    text = out.read_text()
    assert "| stage |" in text and "Machine:" in text and "onnxruntime" in text


def test_cli_rejects_bad_options() -> None:
    app = typer.Typer()
    app.command()(bench_scan_cmd)
    assert CliRunner().invoke(app, ["--repeats", "0"]).exit_code == 1
