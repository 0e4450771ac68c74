"""``voxguard scan``: output formats, exit codes, standard input, folders and globs, bad files.

These use the shipped interim model, whose verdicts on generated audio mean nothing: only that
the scan runs, what it reports and how it exits are checked (``--threshold 0 --margin 0`` makes
every scanned file FAKE where a FAKE is needed).
"""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from signals import speechlike
from voxguard.cli import app
from voxguard.scan.output import CSV_COLUMNS

runner = CliRunner()
SR = 16_000
ALL_FAKE = ["--threshold", "0", "--margin", "0"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Two good clips (one in a sub-folder), a notes file, and the bad inputs of a real batch."""
    root = tmp_path_factory.mktemp("batch")
    (root / "sub").mkdir()
    sf.write(root / "good.flac", speechlike(22_050, 5.0, seed=1), 22_050)
    sf.write(root / "sub" / "nested.wav", speechlike(SR, 3.0, seed=2), SR)
    (root / "README.md").write_text("not scanned, not reported")
    bad = root / "bad"
    bad.mkdir()
    (bad / "empty.wav").write_bytes(b"")
    (bad / "random.bin").write_bytes(np.random.default_rng(0).bytes(4000))
    (bad / "text.wav").write_text("this is text, not audio\n" * 20)
    sf.write(bad / "silent.wav", np.zeros(3 * SR, dtype=np.float32), SR)
    return root


def scan(*args: str, input: bytes | None = None):
    return runner.invoke(app, ["scan", *args], input=input)


def test_json_output(folder):
    result = scan(str(folder / "good.flac"), "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    from voxguard.models.registry import DEFAULT_MODEL

    assert doc["model"] == DEFAULT_MODEL and doc["operating_point"] == "eer"
    (row,) = doc["results"]
    assert row["verdict"] in ("REAL", "FAKE", "UNCERTAIN") and 0 <= row["probability"] <= 1
    assert row["duration_s"] == pytest.approx(5.0) and row["error"] is None
    # 4-s segments, the last one end-aligned (within the trim of the default model, whose margin
    # may pad beyond the file's edges: times are clipped to the file)
    from voxguard.models.detector import Detector
    from voxguard.models.registry import resolve_model

    margin = Detector.load(resolve_model()).preprocess_config.trim_margin_s
    assert [s["start_s"] for s in row["timeline"]] == pytest.approx([0.0, 1.0 + margin], abs=0.05)
    assert set(row["timeline"][0]) == {
        "start_s",
        "end_s",
        "probability",
        "score",
        "speech_fraction",
        "eligible",
        "watermark",
        "wide_band",
    }
    assert row["timeline"][0]["watermark"] is None and row["watermark"] is None  # only with --watermark
    # The companion's own P(fake) per segment, only where it was mixed in (good.flac is 22.05 kHz).
    used = bool(row["wide_band"] and row["wide_band"]["used"])
    assert (row["timeline"][0]["wide_band"] is not None) == used
    assert doc["summary"]["files"] == 1 and doc["summary"]["failed"] == 0


def test_formats_agree(folder):
    args = [str(folder), "--recursive"]
    as_json = json.loads(scan(*args, "--format", "json").stdout)["results"]
    lines = scan(*args, "--format", "jsonl").stdout.strip().splitlines()
    as_jsonl = [json.loads(line) for line in lines]
    rows = list(csv.DictReader(io.StringIO(scan(*args, "--format", "csv").stdout)))
    table = scan(*args, "--format", "table")  # not a terminal: as wide as needed, nothing folded
    assert table.exit_code == 2  # the bad/ folder
    assert [r["path"] for r in as_json] == [r["path"] for r in as_jsonl] == [r["path"] for r in rows]
    assert [r["verdict"] for r in as_json] == [r["verdict"] for r in as_jsonl]
    assert [r["verdict"] or "" for r in as_json] == [r["verdict"] for r in rows]
    assert list(rows[0]) == list(CSV_COLUMNS)
    for name in ("good.flac", "nested.wav", "empty.wav", "FAILED", "silent_audio"):
        assert name in table.stdout


def test_bad_files_are_reported_and_the_rest_scanned(folder):
    result = scan(str(folder / "good.flac"), str(folder / "bad"), str(folder / "sub" / "nested.wav"), "-f", "jsonl")
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    rows = {json.loads(line)["path"].rsplit("/", 1)[-1]: json.loads(line) for line in result.stdout.splitlines()}
    assert {k: (v["error"] or {}).get("code") for k, v in rows.items()} == {
        "good.flac": None,
        "empty.wav": "empty_file",
        "random.bin": "not_audio",
        "silent.wav": "silent_audio",
        "text.wav": "not_audio",
        "nested.wav": None,
    }
    for code in ("empty_file", "not_audio", "silent_audio"):
        assert code in result.stderr
    assert "4 failed" in result.stderr


def test_stdin(folder):
    data = (folder / "good.flac").read_bytes()
    result = scan("-", "--format", "jsonl", input=data)
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)
    assert row["path"] == "-" and row["duration_s"] == pytest.approx(5.0)


def test_recursion_and_glob(folder):
    flat = scan(str(folder), "-f", "jsonl")
    assert [json.loads(x)["path"].rsplit("/", 1)[-1] for x in flat.stdout.splitlines()] == ["good.flac"]
    deep = scan(str(folder), "-r", "-f", "jsonl")
    assert len(deep.stdout.splitlines()) == 6  # README.md skipped silently
    globbed = scan(str(folder / "**" / "*.wav"), "-r", "-f", "jsonl", "--segment", "2", "--hop", "1")
    names = sorted(json.loads(x)["path"].rsplit("/", 1)[-1] for x in globbed.stdout.splitlines())
    assert names == ["empty.wav", "nested.wav", "silent.wav", "text.wav"]
    nested = next(json.loads(x) for x in globbed.stdout.splitlines() if "nested" in x)
    # 3 s of speech plus the default model's trim margin on both sides, in 2-s segments every 1 s.
    from voxguard.audio import segment_bounds
    from voxguard.models.detector import Detector
    from voxguard.models.registry import resolve_model

    margin = Detector.load(resolve_model()).preprocess_config.trim_margin_s
    expected = len(segment_bounds(round((3.0 + 2 * margin) * SR), SR, 2.0, 1.0))
    assert nested["segment_s"] == 2.0 and len(nested["timeline"]) == expected
    missing = scan(str(folder / "*.mp3"))
    assert missing.exit_code == 2 and "no file matches" in missing.stderr


def test_exit_codes(folder, tmp_path):
    good, bad = str(folder / "good.flac"), str(folder / "bad" / "text.wav")
    assert scan(good).exit_code == 0
    assert scan(good, bad).exit_code == 2
    assert scan(good, "--fail-on-fake", *ALL_FAKE).exit_code == 3
    assert scan(good, bad, "--fail-on-fake", *ALL_FAKE).exit_code == 3  # a FAKE outranks a failure
    # Usage errors: 1.
    assert scan(good, "--threshold", "1.5").exit_code == 1
    assert scan(good, "--segment", "-1").exit_code == 1
    assert scan(good, "--format", "xml").exit_code == 1
    no_low_fa = scan(good, "--model", "seed-svm", "--operating-point", "low-fa")  # its card has no low-fa point
    assert no_low_fa.exit_code == 1 and "low-fa" in no_low_fa.stderr
    assert scan(good, "--operating-point", "low-fa").exit_code == 0  # the default model's card has one
    no_model = scan(good, "--model", str(tmp_path / "missing.onnx"))
    assert no_model.exit_code == 1 and "model_error" in no_model.stderr


def test_output_file_and_summary(folder, tmp_path):
    out = tmp_path / "results.csv"
    result = scan(str(folder / "good.flac"), str(folder / "sub"), "-f", "csv", "-o", str(out), *ALL_FAKE)
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    rows = list(csv.DictReader(out.open()))
    assert [r["verdict"] for r in rows] == ["FAKE", "FAKE"]
    assert rows[0]["operating_point"] == "custom" and float(rows[0]["threshold"]) == 0.0
    assert "2 files: 0 REAL, 2 FAKE, 0 UNCERTAIN, 0 failed" in result.stderr
    assert "real time" in result.stderr


def test_cli_formats_mirror_the_library():
    from voxguard.cli_scan import OutputFormat as CliFormat
    from voxguard.scan.output import OutputFormat

    assert [f.value for f in CliFormat] == [f.value for f in OutputFormat]


def test_html_report(folder, tmp_path):
    pytest.importorskip("matplotlib")
    odd = tmp_path / "in" / "<b>&clip.wav"  # a name that must be escaped in HTML
    odd.parent.mkdir()
    sf.write(odd, speechlike(SR, 4.0, seed=3), SR)
    report = tmp_path / "report"
    paths = [str(folder / "good.flac"), str(folder / "sub" / "nested.wav"), str(folder / "bad" / "text.wav"), str(odd)]
    result = scan(*paths, "--report", str(report), "--format", "csv", "--output", str(tmp_path / "r.csv"))
    assert result.exit_code == 2, result.output  # one file failed; the others are in the report
    index = report / "index.html"
    assert f"report: {index}" in result.output.replace("\n", "")
    page = index.read_text()
    assert page.startswith("<!DOCTYPE html>") and "voxguard scan report" in page
    rows = list(csv.DictReader(io.StringIO((tmp_path / "r.csv").read_text())))
    for row in rows:  # every file is in the table with its verdict; the failure with its code
        assert row["path"].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") in page
    assert "FAILED" in page and "not_audio" in page
    assert "<b>&clip" not in page and "&lt;b&gt;&amp;clip" in page
    # One timeline per scanned file, linked by relative path, and the spread of P(fake).
    timelines = sorted(p.name for p in (report / "timelines").iterdir())
    assert len(timelines) == 3
    for name in timelines:
        assert 'src="timelines/' + name.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") in page
    assert (report / "p_fake.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert 'src="p_fake.png"' in page
    # The wide-band companion's use is shown (good.flac is 22.05 kHz: the band is there or not, said either way).
    assert "wide band" in page


def test_html_report_needs_the_local_engine(folder, tmp_path):
    result = scan(str(folder / "good.flac"), "--report", str(tmp_path / "r"), "--engine", "dask-local")
    assert result.exit_code == 1 and "--report needs --engine local" in result.output


def test_unseen_eer_operating_point(folder):
    from voxguard.models.detector import Detector
    from voxguard.models.registry import resolve_model

    points = Detector.load(resolve_model()).thresholds()
    result = scan(str(folder / "sub" / "nested.wav"), "--operating-point", "unseen-eer", "--format", "json")
    if "unseen-eer" not in points:
        assert result.exit_code == 1 and "unseen-eer" in result.output
        return
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["operating_point"] == "unseen-eer" and doc["threshold"] == pytest.approx(points["unseen-eer"])
    refused = scan(str(folder / "good.flac"), "--model", "seed-svm", "--operating-point", "unseen-eer")
    assert refused.exit_code == 1 and "no 'unseen-eer' operating point" in refused.output
