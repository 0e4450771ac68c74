"""Shortcut audit: planted chain shortcuts are found and named, none is found where none was planted,
the preprocessing removes the chain shortcuts, bad files are reported, report + CLI, DEV corpus."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import typer
from typer.testing import CliRunner

from signals import speechlike
from voxguard.cli_corpus import corpus_app
from voxguard.datasets import Dataset, Item, load_dataset, write_manifest
from voxguard.datasets.audit import (
    PROPERTIES,
    AuditResult,
    audit,
    clip_metadata,
    interpret_auc,
    preprocessed_metadata,
    write_audit_report,
)

N_PER_CLASS = 20
# The shortcuts planted in the "fake" half: rate, float storage, leading silence, loudness.
CHAIN_SHORTCUTS = (
    "sample_rate",
    "float_storage",
    "effective_bits",
    "on_16bit_grid",
    "leading_silence_s",
    "loudness_lufs",
)


def _speech(sr: int, rng: np.random.Generator, duration: float = 1.2) -> np.ndarray:
    return speechlike(sr, duration, f0=float(rng.uniform(100, 220)), seed=int(rng.integers(1 << 30)))


def _planted(folder: Path) -> Dataset:
    """Fakes: 22.05 kHz float WAV, 1 s of leading digital silence, loud. Reals: 16 kHz PCM_16, none, quiet."""
    rng = np.random.default_rng(1)
    folder.mkdir(parents=True, exist_ok=True)
    items = []
    for i in range(2 * N_PER_CLASS):
        fake = i % 2 == 1
        path = folder / f"clip{i:02d}.wav"
        if fake:
            sr = 22_050
            y = np.concatenate([np.zeros(sr, np.float32), 1.6 * _speech(sr, rng)])
            sf.write(path, y, sr, subtype="FLOAT")
        else:
            sr = 16_000
            sf.write(path, 0.3 * _speech(sr, rng), sr, subtype="PCM_16")
        label = "spoof" if fake else "bonafide"
        system = "tts_a" if fake else "bonafide"
        items.append(Item(path, label, system, system, speaker=f"spk{i % 5}", utt_group=f"utt{i // 2}"))
    return Dataset(items, name="planted", root=folder)


def _no_shortcut(folder: Path) -> Dataset:
    """One chain for everything (16 kHz PCM_16), random levels and silences, random labels."""
    rng = np.random.default_rng(2)
    folder.mkdir(parents=True, exist_ok=True)
    # More clips than the planted set: the AUC of an uninformative score has SD ~0.05 at 60 + 60.
    labels = rng.permutation(np.repeat(["bonafide", "spoof"], 3 * N_PER_CLASS))
    items = []
    for i, label in enumerate(labels):
        sr = 16_000
        lead = np.zeros(int(rng.uniform(0, 0.5) * sr), np.float32)
        y = np.concatenate([lead, float(rng.uniform(0.1, 0.9)) * _speech(sr, rng, float(rng.uniform(1.0, 1.6)))])
        path = folder / f"clip{i:02d}.flac"
        sf.write(path, y, sr, subtype="PCM_16")
        system = "bonafide" if label == "bonafide" else "tts_b"
        items.append(Item(path, str(label), system, system, utt_group=f"u{i}"))
    return Dataset(items, name="null", root=folder)


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> Dataset:
    return _planted(tmp_path_factory.mktemp("planted"))


@pytest.fixture(scope="module")
def planted_raw(planted) -> AuditResult:
    return audit(planted, use_cache=False, progress=False)


@pytest.fixture(scope="module")
def planted_pre(planted) -> AuditResult:
    return audit(planted, preprocessed=True, use_cache=False, progress=False)


@pytest.fixture(scope="module")
def null_raw(tmp_path_factory) -> AuditResult:
    return audit(_no_shortcut(tmp_path_factory.mktemp("null")), use_cache=False, progress=False)


def _by_name(result: AuditResult) -> dict[str, float]:
    return {p.name: p.auc_cv for p in result.properties}


# --- single clips -------------------------------------------------------------------------------------------


def test_clip_metadata_float_wav_with_silence(tmp_path):
    sr = 22_050
    y = np.concatenate([np.zeros(sr, np.float32), speechlike(sr, 1.5) + np.float32(0.01)])
    path = tmp_path / "f.wav"
    sf.write(path, y, sr, subtype="FLOAT")
    m = clip_metadata(path)
    assert set(PROPERTIES) <= set(m)
    assert m["sample_rate"] == sr and m["channels"] == 1 and m["container"] == "WAV" and m["codec"] == "FLOAT"
    assert m["float_storage"] and not m["lossy"] and m["bit_depth"] == 32
    assert m["effective_bits"] == 32 and not m["on_16bit_grid"]
    assert m["duration_s"] == pytest.approx(2.5, abs=1e-3)
    assert m["leading_silence_s"] == pytest.approx(1.0, abs=0.07)
    assert m["trailing_silence_s"] < 0.1
    assert m["zero_fraction"] == pytest.approx(0.4, abs=0.01)
    assert m["dc_offset"] == pytest.approx(0.006, abs=0.002)  # 0.01 over 60 % of the clip
    assert m["peak_dbfs"] == pytest.approx(20 * np.log10(np.abs(y).max()), abs=0.01)
    assert -40 < m["loudness_lufs"] < -5
    assert 1_000 < m["bandwidth_hz"] <= m["cutoff_hz"] <= sr / 2


def test_clip_metadata_pcm_grid_bandwidth_and_lossy(tmp_path):
    from scipy import signal

    sr = 16_000
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(2 * sr)
    narrow = signal.sosfiltfilt(signal.butter(10, 3_400, fs=sr, output="sos"), noise)  # telephone-like band
    narrow = (0.2 * narrow / np.abs(narrow).max()).astype(np.float32)
    pcm, on_grid_float = tmp_path / "n.flac", tmp_path / "g.wav"
    sf.write(pcm, narrow, sr, subtype="PCM_16")
    sf.write(on_grid_float, np.round(narrow * 32768) / 32768, sr, subtype="FLOAT")  # float data on the 16-bit grid
    m = clip_metadata(pcm)
    assert m["codec"] == "PCM_16" and m["bit_depth"] == 16 and m["effective_bits"] == 16 and m["on_16bit_grid"]
    assert 3_000 < m["cutoff_hz"] < 4_500 and m["bandwidth_hz"] < 3_600
    g = clip_metadata(on_grid_float)
    assert g["float_storage"] and g["on_16bit_grid"]
    ogg = tmp_path / "v.ogg"
    sf.write(ogg, speechlike(sr, 1.5), sr, format="OGG", subtype="VORBIS")
    v = clip_metadata(ogg)
    assert v["lossy"] and math.isnan(v["bit_depth"]) and v["effective_bits"] == 32


def test_preprocessed_metadata_makes_the_chain_constant():
    sr = 22_050
    y = np.concatenate([np.zeros(sr, np.float32), 0.9 * speechlike(sr, 1.5)])
    m = preprocessed_metadata(y, sr)
    assert m["sample_rate"] == 16_000 and m["codec"] == "PCM_16" and not m["float_storage"]
    assert m["on_16bit_grid"]
    assert m["loudness_lufs"] == pytest.approx(-23.0, abs=0.5)
    assert m["leading_silence_s"] < 0.2 and m["input_duration_s"] == pytest.approx(2.5, abs=1e-3)


def test_interpret_auc():
    assert interpret_auc(0.95)[0] == "severe"
    assert interpret_auc(0.75)[0] == "strong"
    assert interpret_auc(0.65)[0] == "weak"
    assert interpret_auc(0.5)[0] == "none"
    assert interpret_auc(float("nan"))[0] == "n/a"


# --- the audit ----------------------------------------------------------------------------------------------


def test_planted_shortcut_is_found_and_named(planted_raw):
    c = planted_raw.classifier
    assert c is not None and c.auc > 0.9 and c.eer < 0.1 and c.level == "severe" and c.significant
    assert c.n_folds == 5 and c.group_by == ["utt_group"] and len(c.scores) == 2 * N_PER_CLASS
    leaked = {p.name for p in planted_raw.leaks(0.9)}
    assert set(CHAIN_SHORTCUTS) <= leaked, _by_name(planted_raw)
    assert "sample_rate" in planted_raw.verdict() and "severe shortcut" in planted_raw.verdict()
    auc = _by_name(planted_raw)
    assert auc["channels"] == 0.5 and auc["container"] == 0.5  # identical in both classes


def test_exclude_properties_from_the_classifier(planted):
    chain = [p for p in PROPERTIES if p not in ("channels", "container", "lossy")]  # constant in this set
    result = audit(planted, exclude=chain, use_cache=False, progress=False)
    assert result.classifier is not None and result.classifier.auc == 0.5 and result.classifier.features == []
    assert "without sample_rate" in result.classifier.model
    assert _by_name(result)["sample_rate"] == 1.0  # still measured and reported
    with pytest.raises(ValueError, match="unknown property"):
        audit(planted[:4], exclude=["sample_rates"], use_cache=False, progress=False)


def test_no_planted_difference_is_near_chance(null_raw):
    c = null_raw.classifier
    assert c is not None and c.auc < 0.7, c.auc
    assert c.level in ("none", "weak") and c.chance_sd == pytest.approx(0.053, abs=0.001)
    for name in ("sample_rate", "codec", "effective_bits", "float_storage"):
        assert _by_name(null_raw)[name] == 0.5


def test_preprocessing_removes_the_chain_shortcuts(planted_raw, planted_pre):
    raw, pre = _by_name(planted_raw), _by_name(planted_pre)
    assert not planted_pre.failures
    for name in CHAIN_SHORTCUTS:
        assert raw[name] > 0.9
        assert pre[name] < 0.7, (name, pre[name])
    for name in ("sample_rate", "float_storage", "effective_bits", "on_16bit_grid", "codec"):
        assert pre[name] == 0.5  # constant after preprocessing
    assert planted_pre.preprocessed and not planted_raw.preprocessed


def test_summary_tables(planted_raw):
    rows = {(r["label"], r["property"]): r for r in planted_raw.by_label}
    assert rows[("spoof", "sample_rate")]["p50"] == 22_050 and rows[("bonafide", "sample_rate")]["p50"] == 16_000
    assert rows[("spoof", "float_storage")]["mean"] == 1.0 and rows[("bonafide", "float_storage")]["mean"] == 0.0
    assert rows[("spoof", "codec")]["values"] == "FLOAT 20" and rows[("spoof", "codec")]["n_items"] == 20
    assert rows[("bonafide", "codec")]["values"] == "PCM_16 20"
    systems = {r["system"] for r in planted_raw.by_system}
    assert systems == {"bonafide", "tts_a"}
    prop = {p.name: p for p in planted_raw.properties}
    assert prop["sample_rate"].spoof.startswith("22050") and prop["sample_rate"].auc_rank > 0.9


def test_bad_files_are_reported_and_the_rest_goes_on(tmp_path, planted):
    bad_text = tmp_path / "text.wav"
    bad_text.write_text("not audio\n" * 50)
    empty = tmp_path / "empty.flac"
    empty.write_bytes(b"")
    items = [*planted.items[:12], Item(bad_text, "spoof", "x", "x"), Item(empty, "bonafide", "bonafide", "bonafide")]
    items.append(Item(tmp_path / "missing.wav", "spoof", "x", "x"))
    result = audit(Dataset(items, name="bad"), use_cache=False, progress=False)
    codes = {f.path.name: f.code for f in result.failures}
    assert codes == {"text.wav": "not_audio", "empty.flac": "empty_file", "missing.wav": "not_found"}
    assert [f.index for f in result.failures] == [12, 13, 14]
    assert len(result.ok) == 12 and result.classifier is not None
    assert result.errors == result.failures and not result.rejected
    assert any("could not be measured" in w for w in result.warnings)


def test_preprocessing_rejections_are_not_errors(tmp_path):
    sr = 16_000
    items = []
    for i in range(6):
        p = tmp_path / f"c{i}.wav"
        sf.write(p, speechlike(sr, 0.3 if i == 0 else 1.2, seed=i), sr)  # the first is too short
        items.append(Item(p, "spoof" if i % 2 else "bonafide", "s", "s", utt_group=f"g{i}"))
    result = audit(Dataset(items), preprocessed=True, use_cache=False, progress=False)
    assert [f.code for f in result.rejected] == ["too_short"] and not result.errors


def test_workers_and_cache(tmp_path, planted):
    ds = planted[:8]
    first = audit(ds, workers=2, cache_dir=tmp_path, progress=False)
    assert first.n_computed == 8 and first.n_cached == 0
    assert list((tmp_path / "audit").glob("*/*/*.json"))
    again = audit(ds, workers=1, cache_dir=tmp_path, progress=False)
    assert again.n_cached == 8 and again.n_computed == 0
    for a, b in zip(first.metadata, again.metadata, strict=True):
        assert a is not None and b is not None
        assert all(a[k] == b[k] or (isinstance(a[k], float) and math.isnan(a[k]) and math.isnan(b[k])) for k in a)
    # The preprocessed view has its own cache entries.
    pre = audit(ds, preprocessed=True, cache_dir=tmp_path, progress=False)
    assert pre.n_computed == 8


def test_single_class_has_no_classifier(tmp_path, planted):
    only_real = planted.filter(label="bonafide")[:5]
    result = audit(only_real, use_cache=False, progress=False)
    assert result.classifier is None and result.level == "n/a"
    assert any("one class" in w for w in result.warnings)
    paths = write_audit_report(result, tmp_path / "r")
    assert paths.metrics_json is None and "By label" in paths.markdown.read_text()
    assert json.loads(paths.audit_json.read_text())["classifier"] is None


def test_write_audit_report(tmp_path, planted_raw):
    paths = write_audit_report(planted_raw, tmp_path / "report")
    md = paths.markdown.read_text()
    for heading in ("Shortcut audit verdict", "Leakage per property", "By label", "By system (medians)"):
        assert f"## {heading}" in md
    assert "roc" in paths.figures and "det" in paths.figures and paths.figures["roc"].is_file()
    assert "<img" in paths.html.read_text()
    data = json.loads(paths.audit_json.read_text())  # strict JSON: NaN written as null
    assert data["classifier"]["auc"] > 0.9 and data["preprocessed"] is False
    assert data["properties"][0]["auc_cv"] >= data["properties"][-1]["auc_cv"]
    assert len(data["items"]) == 2 * N_PER_CLASS and "score" in data["items"][0]
    lines = paths.metadata_csv.read_text().splitlines()
    assert len(lines) == 1 + 2 * N_PER_CLASS and lines[0].startswith("id,label,system,dataset,score,sample_rate")


# --- the command line ---------------------------------------------------------------------------------------


@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(corpus_app, name="corpus")
    return app


def test_cli_audit(tmp_path, planted, cli, monkeypatch):
    monkeypatch.setenv("VOXGUARD_CACHE", str(tmp_path / "cache"))
    manifest = write_manifest(planted, tmp_path / "manifest.csv")
    runner = CliRunner()
    res = runner.invoke(cli, ["corpus", "audit", str(manifest), "--out", str(tmp_path / "out"), "-q"])
    assert res.exit_code == 0, res.output
    assert "metadata classifier: AUC" in res.output and "SEVERE" in res.output and "sample_rate" in res.output
    assert (tmp_path / "out" / "report.html").is_file() and (tmp_path / "out" / "audit.json").is_file()
    res = runner.invoke(cli, ["corpus", "audit", str(manifest), "--preprocessed", "-q", "--group-by", "speaker"])
    assert res.exit_code == 0, res.output
    assert "(preprocessed)" in res.output and "speaker" in res.output
    res = runner.invoke(cli, ["corpus", "audit", str(manifest), "-q", "-x", "duration_s", "-x", "bogus"])
    assert res.exit_code == 1


def test_cli_unreadable_manifest(tmp_path, cli):
    bad = tmp_path / "manifest.csv"
    bad.write_text("path,label\nmissing.wav,spoof\n")
    runner = CliRunner()
    assert runner.invoke(cli, ["corpus", "audit", str(bad)]).exit_code == 2
    assert runner.invoke(cli, ["corpus", "audit", str(tmp_path / "nope.csv")]).exit_code == 2


# --- the DEV corpus -----------------------------------------------------------------------------------------


@pytest.mark.corpus
@pytest.mark.slow
def test_dev_corpus_audit(corpus, tmp_path):
    ds = load_dataset(corpus / "manifest.csv")
    result = audit(ds, workers=2, cache_dir=tmp_path, progress=False)
    assert len(result.ok) == len(ds) == 2208 and not result.failures
    assert result.classifier is not None and result.classifier.auc > 0.9  # SOURCES.md: known biases
    assert "sample_rate" in {p.name for p in result.leaks(0.7)}


def test_cli_audit_compares_a_detector_within_metadata_strata(tmp_path, planted, cli, monkeypatch):
    monkeypatch.setenv("VOXGUARD_CACHE", str(tmp_path / "cache"))
    manifest = write_manifest(planted, tmp_path / "manifest.csv")
    ds = load_dataset(manifest)
    rng = np.random.default_rng(0)
    lines = ["id,label,family,det:grouped"]
    for item_id, item in zip(ds.ids(), ds, strict=True):
        spoof = item.label == "spoof"
        lines.append(f"{item_id},{int(spoof)},{item.family},{float(spoof) + rng.normal(0, 0.3):.4f}")
    scores = tmp_path / "scores.csv"
    scores.write_text("\n".join(lines) + "\n")
    runner = CliRunner()
    args = ["corpus", "audit", str(manifest), "-q", "--detector-scores", str(scores), "--out", str(tmp_path / "o")]
    res = runner.invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert "det:grouped on" in res.output and "within strata" in res.output
    saved = json.loads((tmp_path / "o" / "detector_strata.json").read_text())
    assert saved["column"] == "det:grouped" and saved["n"] == 2 * N_PER_CLASS and saved["detector_eer"] < 0.2
    # Ids from another corpus: nothing to compare, a usage error rather than a silent empty table.
    scores.write_text("id,det\nelsewhere.wav,0.5\n")
    res = runner.invoke(cli, ["corpus", "audit", str(manifest), "-q", "--detector-scores", str(scores)])
    assert res.exit_code == 1 and "no clip of the audit" in res.output
