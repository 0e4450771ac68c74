"""``voxguard retrain``: a tiny generated corpus, a base model trained on it, feedback given through the
real service, and the accept / refuse decision on one grouped validation split."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("skl2onnx")
pytest.importorskip("fastapi")
pytest.importorskip("sqlalchemy")

import soundfile as sf
from fastapi.testclient import TestClient
from scipy import signal
from typer.testing import CliRunner

from signals import speechlike
from voxguard.cli import app as cli_app
from voxguard.cli_retrain import EXIT_REFUSED, database_url
from voxguard.datasets import load_dataset
from voxguard.evaluate.retrain import (
    FeedbackExample,
    RetrainError,
    feedback_rows,
    load_base_model,
    retrain,
    spec_matches,
)
from voxguard.evaluate.training import train_segmental
from voxguard.features.segmental import SegmentalConfig
from voxguard.models.onnx_model import ModelCard, card_path
from voxguard.models.segmental import SegmentalClassifier
from voxguard.scan import Scanner
from voxguard.server import Settings, create_app
from voxguard.server.storage import Storage

SR = 16_000
DUR = 5.0


# ----------------------------------------------------------------------------- signals


def real(i: int) -> np.ndarray:
    return speechlike(SR, DUR, f0=95 + 9 * (i % 12), seed=i)


def fake_lowpass(i: int) -> np.ndarray:
    """The generator the base model knows: nothing above 3.4 kHz (a band-limited vocoder)."""
    y = speechlike(SR, DUR, f0=100 + 9 * (i % 12), seed=1000 + i)
    return signal.sosfilt(signal.butter(10, 3400, fs=SR, output="sos"), y).astype(np.float32)


def fake_buzz(i: int) -> np.ndarray:
    """A new generator the base model calls real: a tonal buzz in 5-7 kHz that follows the envelope."""
    y = speechlike(SR, DUR, f0=105 + 9 * (i % 12), seed=2000 + i)
    t = np.arange(len(y)) / SR
    buzz = sum(np.sin(2 * np.pi * f * t) for f in (5200.0, 6100.0, 7000.0)) / 3
    env = signal.sosfilt(signal.butter(2, 20, fs=SR, output="sos"), np.abs(signal.hilbert(y)))
    z = y + 0.8 * buzz * env
    return (0.5 * z / np.abs(z).max()).astype(np.float32)


def real_hiss(i: int) -> np.ndarray:
    """Real speech over a hissy line (noise above 4.2 kHz that follows the speech): new to the base model too."""
    y = speechlike(SR, DUR, f0=110 + 9 * (i % 12), seed=3000 + i)
    n = signal.sosfilt(
        signal.butter(8, 4200, btype="high", fs=SR, output="sos"), np.random.default_rng(i).normal(size=len(y))
    )
    env = signal.sosfilt(signal.butter(2, 20, fs=SR, output="sos"), np.abs(signal.hilbert(y)))
    z = y + 0.3 * n * env / np.std(n)
    return (0.5 * z / np.abs(z).max()).astype(np.float32)


def wav_bytes(y: np.ndarray) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, y, SR, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def write_corpus(folder: Path, clips: list[tuple[str, np.ndarray, str]]) -> Path:
    """WAVs plus a manifest CSV (``path,label,system,family,utt_group``); returns the manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, y, label in clips:
        sf.write(folder / f"{name}.wav", y, SR)
        system = "bonafide" if label == "bonafide" else "synthetic"
        rows.append({"path": f"{name}.wav", "label": label, "system": system, "family": system, "utt_group": name})
    manifest = folder / "manifest.csv"
    with manifest.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return manifest


def train_base(manifest: Path, out: Path, C: float) -> Path:
    model = SegmentalClassifier(features=SegmentalConfig(views=("lfcc_4_8k",)), classifier="svm", C=C)
    train_segmental(
        load_dataset(str(manifest)), out, model=model, augment=False, lofo=False, folds=3, workers=1, progress=False
    )
    return out


def give_feedback(base: Path, data_dir: Path, clips: list[tuple[np.ndarray, str]], **settings: object) -> str:
    """Scan each clip through the real service with ``base`` loaded and label it; returns the database URL."""
    url = f"sqlite:///{data_dir / 'voxguard.db'}"
    app = create_app(Settings(data_dir=data_dir, **settings), scanner=Scanner(base))
    with TestClient(app) as client:
        for y, label in clips:
            r = client.post("/v1/scan", files={"file": ("clip.wav", wav_bytes(y), "audio/wav")})
            assert r.status_code == 200, r.text
            fb = client.post(f"/v1/scans/{r.json()['id']}/feedback", json={"label": label, "note": None})
            assert fb.status_code == 201, fb.text
    return url


def run_cli(*args: str):
    return CliRunner().invoke(cli_app, ["retrain", *args])


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("retrain")


@pytest.fixture(scope="module")
def good_base(work: Path) -> tuple[Path, Path]:
    """A base model that knows real vs low-pass fakes (and nothing about the buzz generator)."""
    clips = [(f"real{i}", real(i), "bonafide") for i in range(8)]
    clips += [(f"lowpass{i}", fake_lowpass(i), "spoof") for i in range(8)]
    manifest = write_corpus(work / "corpus", clips)
    return manifest, train_base(manifest, work / "base.onnx", C=1.0)


@pytest.fixture(scope="module")
def improving_feedback(work: Path, good_base: tuple[Path, Path]) -> str:
    """New conditions in both classes: users flag the new generator's clips as fake and confirm hissy real ones.

    The base model has seen neither; its RBF SVM gives both about its intercept, so it cannot rank them.
    """
    _, base = good_base
    clips = [(fake_buzz(i), "fake") for i in range(8)] + [(real_hiss(i), "real") for i in range(8)]
    return give_feedback(base, work / "fb-good", clips)


# ----------------------------------------------------------------------------- the service stores vectors


def test_service_stores_the_vectors_the_model_scored(improving_feedback: str, good_base) -> None:
    _, base = good_base
    storage = Storage(improving_feedback)
    scans = storage.labelled_scans()
    storage.close()
    assert len(scans) == 16 and {s.label for s in scans} == {"real", "fake"}
    model = load_base_model(base)
    s = scans[0]
    assert s.vectors is not None and s.vectors.dtype == np.float32
    assert s.vectors.shape[1] == model.spec["n_columns"] == 120
    assert spec_matches(s.vectors_spec, model.spec)
    # The stored rows are what the model scored: re-scoring them gives the stored timeline scores.
    from voxguard.models.onnx_model import OnnxModel

    row = Storage(improving_feedback).get_scan(s.scan_id)
    np.testing.assert_allclose(OnnxModel(base).score(s.vectors), row["features"]["score"], rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------- accept


def test_retrain_accepts_a_better_model(work: Path, good_base, improving_feedback: str, monkeypatch) -> None:
    import voxguard.models.companion as companion

    manifest, base = good_base
    base_name = ModelCard.load(card_path(base)).name
    # As if the base model shipped with a wide-band companion: the retrained one cannot use it.
    monkeypatch.setattr(companion, "companion_for", lambda name: Path("zoo/wb.onnx") if name == base_name else None)
    out = work / "new" / "retrained.onnx"
    args = ["--feedback-db", improving_feedback, "--base-model", str(base), "--out", str(out)]
    r = run_cli(*args, "--corpus", str(manifest), "--no-augment", "--workers", "1")
    assert r.exit_code == 0, r.output
    assert "old EER" in r.output and "new EER" in r.output and "accepted" in r.output
    assert "wide-band companion (wb) was fitted with" in r.output and "16 kHz only" in r.output
    assert out.is_file() and card_path(out).is_file()
    card = ModelCard.load(card_path(out))
    val = card.metrics["retrain_validation"]
    assert val["accepted"] and not val["forced"]
    # The new conditions in the validation split defeat the old model, not the new one.
    assert val["feedback_clips"] >= 2
    assert val["new_eer"] < val["old_eer"]
    assert val["new_feedback_eer"] < val["old_feedback_eer"]
    assert card.training["base_model"] == ModelCard.load(card_path(base)).name and card.training["feedback_files"] == 16
    assert card.features == ModelCard.load(card_path(base)).features  # same features: the service can load it
    # The written model is a working detector that now flags the new generator.
    old, new = Scanner(base), Scanner(out)
    fake_p, hiss_p = (new.scan(y, sr=SR).probability for y in (fake_buzz(500), real_hiss(500)))
    assert fake_p > 0.5 > hiss_p
    assert fake_p > old.scan(fake_buzz(500), sr=SR).probability
    assert new.scan(real(500), sr=SR).probability < 0.5
    assert new.scan(fake_lowpass(500), sr=SR).probability > 0.5  # what it knew, it still knows


# ----------------------------------------------------------------------------- fusions


@pytest.fixture(scope="module")
def fusion_base(work: Path, good_base) -> Path:
    """A fusion of two segmental members (4-8 kHz LFCC, and band flatness) on the same corpus."""
    from voxguard.audio.preprocess import PreprocessConfig
    from voxguard.evaluate.training import train_fusion

    manifest, _ = good_base

    def member(view: str) -> SegmentalClassifier:
        return SegmentalClassifier(features=SegmentalConfig(views=(view,)), classifier="svm")

    members = [
        ("lfcc", member("lfcc_4_8k"), PreprocessConfig()),
        ("flat", member("band_flatness_7k"), PreprocessConfig()),
    ]
    out = work / "fusion" / "fused.onnx"
    train_fusion(
        load_dataset(str(manifest)), out, members, name="fused", lofo=False, folds=3, augment=False, workers=1,
        progress=False,
    )  # fmt: skip
    return out


def test_service_stores_every_fusion_members_vectors(work: Path, fusion_base: Path) -> None:
    """A fused model's scans keep each member's vectors side by side; each member reads its own columns."""
    from voxguard.evaluate.retrain import _vectors_from_audio, stored_vectors

    y = fake_buzz(77)
    url = give_feedback(fusion_base, work / "fb-fusion-vectors", [(y, "fake")])
    storage = Storage(url)
    (scan,) = storage.labelled_scans()
    storage.close()
    assert scan.vectors_spec["kind"] == "fusion" and len(scan.vectors_spec["members"]) == 2
    card = ModelCard.load(card_path(fusion_base))
    widths = []
    for member in card.features["members"]:
        base = load_base_model(fusion_base.parent / member)
        ex = FeedbackExample(scan.scan_id, scan.file_sha256, scan.label, scan.vectors, scan.vectors_spec)
        X = stored_vectors(ex, base.spec)
        assert X is not None and X.shape[1] == base.spec["n_columns"]
        # The member's columns are what that member computes from the audio itself.
        np.testing.assert_allclose(X, _vectors_from_audio(wav_bytes(y), base), rtol=1e-4, atol=1e-4)
        widths.append(X.shape[1])
    assert scan.vectors.shape[1] == sum(widths)
    # A model that is neither the fusion nor one of its members gets nothing from these vectors.
    other = {**load_base_model(fusion_base.parent / card.features["members"][0]).spec, "segment_s": 2.0}
    assert stored_vectors(FeedbackExample("x", "h", "fake", scan.vectors, scan.vectors_spec), other) is None


def test_retrain_a_fusion(work: Path, good_base, fusion_base: Path) -> None:
    """Every member retrained on the same clips, new fusion weights, members written beside the fusion."""
    manifest, _ = good_base
    clips = [(fake_buzz(i), "fake") for i in range(8)] + [(real_hiss(i), "real") for i in range(8)]
    url = give_feedback(fusion_base, work / "fb-fusion", clips)
    out = work / "fusion-new" / "fused2.onnx"
    r = run_cli("--feedback-db", url, "--base-model", str(fusion_base), "--out", str(out),
                "--corpus", str(manifest), "--no-augment", "--workers", "1")  # fmt: skip
    assert r.exit_code == 0, r.output
    card = ModelCard.load(card_path(out))
    assert card.features["kind"] == "fusion"
    assert card.features["members"] == ["fused2.lfcc.onnx", "fused2.flat.onnx"]
    assert card.features["columns"] == ["fused2.lfcc", "fused2.flat"]
    for member in card.features["members"]:
        member_card = ModelCard.load(card_path(out.parent / member))
        assert member_card.features["kind"] == "segmental" and member_card.metrics["grouped_cv"]["clips"] > 16
    val = card.metrics["retrain_validation"]
    assert val["accepted"] and val["new_eer"] < val["old_eer"] and val["feedback_clips"] >= 2
    assert card.training["base_model"] == "fused" and card.training["feedback_files"] == 16
    assert list(card.output["fusion"]["models"]) == card.features["columns"]
    old, new = Scanner(fusion_base), Scanner(out)
    assert new.scan(fake_buzz(500), sr=SR).probability > max(0.5, old.scan(fake_buzz(500), sr=SR).probability)
    assert new.scan(real_hiss(500), sr=SR).probability < 0.5
    assert new.scan(fake_lowpass(500), sr=SR).probability > 0.5
    # The new fusion is itself retrainable: its scans store both new members' vectors.
    url2 = give_feedback(out, work / "fb-fusion-2", [(fake_buzz(600), "fake")])
    storage = Storage(url2)
    (scan,) = storage.labelled_scans()
    storage.close()
    assert [m["n_columns"] for m in scan.vectors_spec["members"]] == [120, scan.vectors.shape[1] - 120]


# ----------------------------------------------------------------------------- refuse


@pytest.fixture(scope="module")
def memorising_base(work: Path) -> tuple[Path, Path, str]:
    """A base model that memorised a corpus with labels unrelated to the audio.

    On the validation clips (which it was trained on) it is near perfect; a new model trained
    on the rest cannot be, so the retrained model is worse on the same split.
    """
    rng = np.random.default_rng(7)
    labels = rng.permutation(["bonafide"] * 8 + ["spoof"] * 8)
    clips = [(f"clip{i}", real(300 + i), str(label)) for i, label in enumerate(labels)]
    manifest = write_corpus(work / "noise-corpus", clips)
    base = train_base(manifest, work / "memorised.onnx", C=1000.0)
    url = give_feedback(base, work / "fb-noise", [(real(400 + i), ("real", "fake")[i % 2]) for i in range(4)])
    return manifest, base, url


def test_retrain_refuses_a_worse_model(work: Path, memorising_base) -> None:
    manifest, base, url = memorising_base
    out = work / "refused" / "model.onnx"
    out.parent.mkdir()
    out.write_bytes(b"the model in service")  # must survive a refusal untouched
    args = ["--feedback-db", url, "--base-model", str(base), "--out", str(out), "--corpus", str(manifest)]
    r = run_cli(*args, "--no-augment", "--workers", "1")
    assert r.exit_code == EXIT_REFUSED, r.output
    old_line = next(line for line in r.output.splitlines() if line.startswith("old EER"))
    new_line = next(line for line in r.output.splitlines() if line.startswith("new EER"))
    old_eer, new_eer = (float(line.split()[2]) for line in (old_line, new_line))
    assert new_eer > old_eer
    assert "refused" in r.output and "trained on this corpus" in r.output  # the caveat is stated
    assert out.read_bytes() == b"the model in service" and not card_path(out).exists()
    assert [p.name for p in out.parent.iterdir()] == ["model.onnx"]  # no temporary files left behind

    forced = run_cli(*args, "--no-augment", "--workers", "1", "--force")
    assert forced.exit_code == 0, forced.output
    assert "forced" in forced.output
    card = ModelCard.load(card_path(out))
    assert card.metrics["retrain_validation"]["forced"] and not card.metrics["retrain_validation"]["accepted"]
    Scanner(out)  # loadable


def test_tolerance_accepts_within_margin(work: Path, memorising_base) -> None:
    manifest, base, url = memorising_base
    from voxguard.datasets import load_dataset as load

    storage = Storage(url)
    fb = [
        FeedbackExample(s.scan_id, s.file_sha256, s.label, s.vectors, s.vectors_spec) for s in storage.labelled_scans()
    ]
    storage.close()
    kw = {"corpus": load(str(manifest)), "augment": False, "workers": 1, "progress": False}
    refused = retrain(base, fb, work / "tol" / "a.onnx", **kw)
    assert not refused.accepted and not refused.written and not (work / "tol" / "a.onnx").exists()
    gap = refused.new_eer - refused.old_eer
    assert gap > 0
    allowed = retrain(base, fb, work / "tol" / "b.onnx", tolerance=gap + 0.01, **kw)
    assert allowed.accepted and allowed.written and allowed.model_path.is_file()
    # Same data, same seed: the same split and the same two EERs.
    assert (allowed.old_eer, allowed.new_eer) == (refused.old_eer, refused.new_eer)


# ----------------------------------------------------------------------------- feedback rows


def test_feedback_rows_dedupe_spec_and_audio(good_base) -> None:
    _, base_path = good_base
    base = load_base_model(base_path)
    X = np.ones((2, 120), dtype=np.float32)
    other_spec = {**base.spec, "segment_s": 2.0}
    audio = wav_bytes(real(42))
    lines: list[str] = []
    rows = feedback_rows(
        [
            FeedbackExample("a", "h1", "fake", X, base.spec),
            FeedbackExample("b", "h1", "real", X * 2, base.spec),  # same file, later label: wins
            FeedbackExample("c", "h2", "fake", X, other_spec),  # other features, no audio: skipped
            FeedbackExample("d", "h3", "real", X, other_spec, audio),  # other features, kept audio: recomputed
            FeedbackExample("e", "h4", "real", None, None, None),  # nothing to train on
            FeedbackExample("f", "h5", "maybe", X, base.spec),
            FeedbackExample("g", "h6", "fake", np.ones((2, 7), dtype=np.float32), base.spec),  # wrong width
            FeedbackExample("h", "h7", "fake", None, None, b"not audio at all"),
        ],
        base,
        log=lines.append,
    )
    assert [e.key for e in rows.examples] == ["b", "d"]
    assert rows.examples[0].label == "real" and np.all(rows.vectors[0] == 2)
    assert rows.vectors[1].shape[1] == 120 and len(rows.vectors[1]) >= 1 and not np.all(rows.vectors[1] == 1)
    assert rows.skipped == {
        "unknown label": 1,
        "same file labelled again (latest label kept)": 1,
        "stored vectors are of other features and no kept audio": 1,
        "no stored vectors and no kept audio": 1,
        "vectors of the wrong shape": 1,
        "kept audio unreadable (not_audio)": 1,
    }
    assert rows.counts == {"real": 2, "fake": 0}
    assert any("2 labelled files usable" in line for line in lines)


def test_kept_audio_is_used_when_vectors_are_missing(work: Path, good_base) -> None:
    """Scans made at another segment length store no vectors; with kept audio they still train."""
    manifest, base = good_base
    url = give_feedback(
        base, work / "fb-audio", [(fake_buzz(60 + i), "fake") for i in range(4)] + [(real(60), "real")], keep_audio=True
    )
    storage = Storage(url)
    scans = storage.labelled_scans(with_audio=True)
    storage.close()
    assert all(s.audio is not None for s in scans)
    fb = [FeedbackExample(s.scan_id, s.file_sha256, s.label, None, None, s.audio) for s in scans]
    res = retrain(
        base, fb, work / "audio.onnx", corpus=load_dataset(str(manifest)), augment=False, workers=1, progress=False
    )
    assert len(res.feedback.examples) == 5 and res.written


# ----------------------------------------------------------------------------- errors and boundaries


def test_retrain_errors(work: Path, good_base, improving_feedback: str) -> None:
    _, base = good_base
    out = work / "err.onnx"
    r = run_cli("--feedback-db", improving_feedback, "--base-model", "seed-svm", "--out", str(out))
    assert r.exit_code == 2 and "not a segmental model" in r.output
    empty = Storage(f"sqlite:///{work / 'empty.db'}")
    empty.migrate()
    empty.close()
    r = run_cli("--feedback-db", str(work / "empty.db"), "--base-model", str(base), "--out", str(out))
    assert r.exit_code == 2 and "no usable feedback" in r.output
    r = run_cli("--feedback-db", "nosuchdriver://x", "--base-model", str(base), "--out", str(out))
    assert r.exit_code == 1 and "--feedback-db" in r.output
    r = run_cli("--feedback-db", f"sqlite:///{work / 'no-such.db'}", "--base-model", str(base), "--out", str(out))
    assert r.exit_code == 1 and "no database file" in r.output
    assert not (work / "no-such.db").exists()  # not created as a side effect
    (work / "not-a-db.db").write_bytes(b"this is not SQLite [at all]" * 100)
    r = run_cli("--feedback-db", str(work / "not-a-db.db"), "--base-model", str(base), "--out", str(out))
    assert r.exit_code == 2 and "cannot read the feedback database" in r.output
    assert not out.exists()
    # Feedback of one class only and no corpus: nothing to validate on.
    with pytest.raises(RetrainError, match="both classes"):
        retrain(base, [FeedbackExample("a", "h", "fake", np.ones((2, 120), np.float32), load_base_model(base).spec)],
                out, progress=False)  # fmt: skip


def test_database_url_accepts_a_path(tmp_path: Path) -> None:
    db = tmp_path / "v.db"
    db.write_bytes(b"")
    assert database_url(str(db)) == f"sqlite:///{db.resolve()}"
    assert database_url("postgresql+psycopg://u@127.0.0.1/x") == "postgresql+psycopg://u@127.0.0.1/x"


def test_library_does_not_import_the_service() -> None:
    code = (
        "import sys, voxguard.evaluate.retrain, voxguard.server.storage\n"
        "bad = ('fastapi', 'starlette', 'uvicorn', 'voxguard.server.app', 'voxguard.cli')\n"
        "bad = [m for m in bad if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_extras_are_a_usage_error(monkeypatch) -> None:
    import voxguard.cli_retrain as cr

    monkeypatch.setattr(cr, "_missing_extras", lambda: ["train"])
    r = run_cli("--feedback-db", "x.db", "--base-model", "voxguard-v1", "--out", "x.onnx")
    assert r.exit_code == 1 and "voxguard[train]" in r.output


def test_retrain_is_listed_in_the_cli() -> None:
    r = CliRunner().invoke(cli_app, ["retrain", "--help"])
    assert r.exit_code == 0
    for option in ("--feedback-db", "--base-model", "--out", "--corpus", "--force"):
        assert option in r.output
