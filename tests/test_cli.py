"""The command-line shell: version, info (batch with bad files, stdin), features, exit codes."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from signals import speechlike
from voxguard import __version__
from voxguard.cli import app

runner = CliRunner()
SR = 16_000


@pytest.fixture
def clip(tmp_path):
    path = tmp_path / "clip.flac"
    sf.write(path, speechlike(22_050, 2.0), 22_050)
    return path


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.stdout


def test_info_json(clip):
    result = runner.invoke(app, ["info", "--json", str(clip)])
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout.strip())
    assert row["container"] == "FLAC" and row["sample_rate"] == 22_050 and row["channels"] == 1
    assert row["duration_s"] == pytest.approx(2.0, abs=0.01)
    assert 1.5 < row["speech_s"] <= 2.0


def test_info_batch_reports_bad_file_and_continues(clip, tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all" * 50)
    result = runner.invoke(app, ["info", "--json", str(bad), str(clip)])
    assert result.exit_code == 2
    assert "not_audio" in result.stderr
    assert "Traceback" not in result.output
    lines = [json.loads(x) for x in result.stdout.strip().splitlines()]
    assert [x["path"] for x in lines] == [str(clip)]


def test_info_reads_stdin(clip):
    result = runner.invoke(app, ["info", "--json", "-"], input=clip.read_bytes())
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["container"] == "FLAC"


def test_info_table(clip):
    result = runner.invoke(app, ["info", str(clip)])
    assert result.exit_code == 0
    assert "FLAC" in result.stdout and "22050 Hz" in result.stdout


@pytest.mark.parametrize("kind", ["mfcc", "lfcc", "deepvoice", "prosody"])
def test_features_to_npy_and_csv(clip, tmp_path, kind):
    npy = tmp_path / f"{kind}.npy"
    result = runner.invoke(app, ["features", str(clip), "--kind", kind, "--out", str(npy)])
    assert result.exit_code == 0, result.output
    values = np.load(npy)
    assert values.ndim == 2 and values.shape[0] >= 1 and values.dtype == np.float32
    csv_path = tmp_path / f"{kind}.csv"
    result = runner.invoke(app, ["features", str(clip), "--kind", kind, "--out", str(csv_path)])
    assert result.exit_code == 0, result.output
    header = csv_path.read_text().splitlines()[0].split(",")
    assert header[0] == "time_s" and len(header) == values.shape[1] + 1
    table = np.loadtxt(csv_path, delimiter=",", skiprows=1, ndmin=2)
    assert table.shape == (values.shape[0], values.shape[1] + 1)
    assert np.all(np.diff(table[:, 0]) > 0) if len(table) > 1 else True


def test_features_bad_input_exit_code(tmp_path):
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(SR * 2, np.float32), SR)
    result = runner.invoke(app, ["features", str(silent), "--kind", "mfcc"])
    assert result.exit_code == 2
    assert "silent_audio" in result.stderr


def test_unknown_kind_is_usage_error(clip):
    result = runner.invoke(app, ["features", str(clip), "--kind", "nope"])
    assert result.exit_code == 1  # usage error, not "a file failed" (2)


def test_features_stdout_csv(clip):
    buf = io.BytesIO()
    sf.write(buf, speechlike(SR, 1.5), SR, format="WAV")
    result = runner.invoke(app, ["features", "-", "--kind", "mfcc"], input=buf.getvalue())
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("time_s,mfcc1,")


def test_report_command(tmp_path):
    rng = np.random.default_rng(0)
    lines = ["id,label,score,system"]
    for i in range(60):
        label = "spoof" if i % 2 else "bonafide"
        score = rng.normal(1.0 if i % 2 else -1.0)
        lines.append(f"u{i},{label},{score:.4f},{'A01' if i % 4 == 1 else ('A02' if i % 2 else 'bonafide')}")
    scores = tmp_path / "scores.csv"
    scores.write_text("\n".join(lines) + "\n")
    result = runner.invoke(app, ["report", str(scores), "--out", str(tmp_path / "rep")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "rep" / "report.html").is_file()
    assert "EER" in result.stdout
    bad = tmp_path / "bad.csv"
    bad.write_text("id,label\nx,spoof\n")
    result = runner.invoke(app, ["report", str(bad), "--out", str(tmp_path / "rep2")])
    assert result.exit_code == 2 and "score" in result.stderr


def test_models_command():
    from voxguard.models.registry import DEFAULT_MODEL

    result = runner.invoke(app, ["models"])
    assert result.exit_code == 0 and DEFAULT_MODEL in result.stdout and "seed-svm" in result.stdout
    assert "watermark decoder perth-implicit" in result.stdout and "0.95" in result.stdout
    card = runner.invoke(app, ["models", DEFAULT_MODEL])
    assert card.exit_code == 0 and json.loads(card.stdout)["name"] == DEFAULT_MODEL
    assert runner.invoke(app, ["models", "no-such-model"]).exit_code == 1
    # A fused model's members are listed as such (tests/conftest.py makes the console wide enough
    # that rich does not wrap the cell).
    wide = runner.invoke(app, ["models"])
    row = next(line for line in wide.stdout.splitlines() if "voxguard-v3.svm2" in line)
    assert "member of voxguard-v3" in row
    row = next(line for line in wide.stdout.splitlines() if "voxguard-wb " in line)
    assert f"wide-band companion of {DEFAULT_MODEL}" in row
