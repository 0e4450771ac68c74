"""The scanner library: timeline localisation, aggregation, streaming, inputs, workers, memory, imports.

A tiny DEEP-VOICE SVM is trained here on generated audio ("real" = a vowel-like signal, "fake" =
the same band-limited to 3 kHz), so that verdicts can be asserted; the shipped interim model's
verdicts on real audio mean nothing and are never asserted.
"""

from __future__ import annotations

import json
import math
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy import signal

from signals import speechlike
from voxguard.errors import SilentAudioError
from voxguard.scan import ScanInput, Scanner, Verdict, expand_inputs, load_detector, scan_many
from voxguard.scan.inputs import walk_directory
from voxguard.scan.verdict import decide, effective_margin, max_top_segments, resolve_threshold, top_k_mean

SR = 16_000
FAKE_SPAN = (8.0, 14.0)  # seconds of the 20-s test clip replaced by "synthetic" speech


def band_limit(y: np.ndarray) -> np.ndarray:
    sos = signal.butter(8, 3_000, fs=SR, output="sos")
    return signal.sosfilt(sos, y).astype(np.float32)


def make_clip(label: int, seed: int, duration: float = 4.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y = speechlike(SR, duration, f0=float(rng.uniform(90, 220)), seed=seed)
    return (band_limit(y) if label else y) * np.float32(rng.uniform(0.3, 1.0))


def spliced_clip(seed: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """A 20-s real clip, and the same with FAKE_SPAN replaced by its band-limited version."""
    real = speechlike(SR, 20.0, f0=140.0, seed=seed) * np.float32(0.7)
    spliced = real.copy()
    a, b = (int(t * SR) for t in FAKE_SPAN)
    spliced[a:b] = band_limit(real)[a:b]
    return real, spliced


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """An SVM on DEEP-VOICE features of generated clips, exported to ONNX with a model card."""
    from voxguard.evaluate import seed_study as study
    from voxguard.features.deepvoice import DEEPVOICE_COLUMNS, deepvoice_features
    from voxguard.models.onnx_model import ModelCard, card_path

    labels = np.arange(24) % 2
    clips = [make_clip(int(label), seed) for seed, label in enumerate(labels)]
    # Clips are whole seconds long, so one call gives exactly the per-clip 1-s rows.
    X = deepvoice_features(np.concatenate(clips), SR)
    y = np.repeat(labels, 4)
    table = study.FeatureTable(X.astype(np.float64), y, list(DEEPVOICE_COLUMNS))
    result = study.run_seed_study(table, models=("svm",), cv_folds=0, workers=1)
    onx, output = result.exported["svm"]
    path = tmp_path_factory.mktemp("model") / "tiny-svm.onnx"
    path.write_bytes(onx)
    ModelCard(
        name="tiny-svm",
        model_type="StandardScaler + SVC (test)",
        features={
            "kind": "deepvoice",
            "columns": list(DEEPVOICE_COLUMNS),
            "window_s": 1.0,
            "segment_s": 4.0,
            "sample_rate": "native",
        },
        output=output,
    ).save(card_path(path))
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("clips")
    real, spliced = spliced_clip()
    paths = {"real": folder / "real.wav", "spliced": folder / "spliced.flac"}
    sf.write(paths["real"], real, SR)
    sf.write(paths["spliced"], spliced, SR)
    return paths


# ------------------------------------------------------------------ timeline and verdict, trained model


def test_timeline_localises_spliced_fake(tiny_model, clips):
    scanner = load_detector(tiny_model)
    real = scanner.scan(clips["real"])
    spliced = scanner.scan(clips["spliced"])
    assert real.verdict is Verdict.REAL, real.to_dict(timeline=False)
    assert spliced.verdict is Verdict.FAKE, spliced.to_dict(timeline=False)

    tl = spliced.timeline
    assert len(tl) == 9  # 20 s, 4-s segments every 2 s
    np.testing.assert_allclose(tl.starts_s, np.arange(0, 17, 2))
    overlaps = (tl.starts_s < FAKE_SPAN[1]) & (tl.ends_s > FAKE_SPAN[0])
    high = tl.proba > 0.5
    assert high.any() and np.all(overlaps[high]), list(zip(tl.starts_s, tl.proba, strict=True))
    inside = (tl.starts_s >= FAKE_SPAN[0]) & (tl.ends_s <= FAKE_SPAN[1])
    assert np.all(tl.proba[inside] > 0.8)
    assert np.all(tl.proba[~overlaps] < 0.5)
    top = tl.most_suspicious()
    assert top is not None and top.start_s < FAKE_SPAN[1] and top.end_s > FAKE_SPAN[0]
    assert np.all(real.timeline.proba < 0.5)


def test_array_input_matches_file(tiny_model, clips):
    scanner = load_detector(tiny_model)
    y, sr = sf.read(clips["spliced"], dtype="float32")
    from_array = scanner.scan(y, sr=sr)
    from_file = scanner.scan(clips["spliced"])
    assert from_array.path == "<array>"
    np.testing.assert_allclose(from_array.timeline.proba, from_file.timeline.proba, atol=1e-9)
    with pytest.raises(ValueError, match="sample rate"):
        scanner.scan(y)


def test_streaming_matches_whole_file(tiny_model, tmp_path):
    """Chunked streaming (forced with tiny limits) scores the same segments as a whole-file scan,
    including segments across block edges and the final end-aligned one."""
    real, spliced = spliced_clip(seed=7)
    y = np.concatenate([real, spliced, real[: int(5.3 * SR)]])  # 45.3 s: not a whole number of hops
    path = tmp_path / "long.wav"
    sf.write(path, y, SR)
    whole = load_detector(tiny_model).scan(path)
    streamed = load_detector(tiny_model, stream_above_s=10.0, chunk_s=8.0).scan(path)
    assert (whole.mode, streamed.mode) == ("whole", "stream")
    assert len(whole.timeline) == len(streamed.timeline) == 22
    np.testing.assert_allclose(streamed.timeline.starts_s, whole.timeline.starts_s, atol=1e-9)
    np.testing.assert_allclose(streamed.timeline.ends_s, whole.timeline.ends_s, atol=1e-9)
    assert streamed.timeline.ends_s[-1] == pytest.approx(45.3)
    np.testing.assert_allclose(streamed.timeline.proba, whole.timeline.proba, atol=1e-6)
    assert streamed.speech_s == pytest.approx(whole.speech_s, rel=0.02)
    assert streamed.duration_s == pytest.approx(45.3)
    assert streamed.verdict is whole.verdict is Verdict.FAKE


def test_workers_give_the_same_results(tiny_model, clips, tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio" * 100)
    items = [ScanInput(str(p), str(p)) for p in (clips["real"], bad, clips["spliced"], clips["real"])]
    scanner = load_detector(tiny_model)
    one = [r.to_dict() for r in scan_many(scanner, items, workers=1)]
    two = [r.to_dict() for r in scan_many(scanner, items, workers=2)]
    for r in one + two:
        r.pop("elapsed_s")
    assert one == two
    assert [r["verdict"] for r in one] == ["REAL", None, "FAKE", "REAL"]
    assert one[1]["error"]["code"] == "not_audio"


# ------------------------------------------------------------------ aggregation rules, with a stub detector


class StubDetector:
    """Fast stand-in: trims leading near-silence (returning its offset, like the canonical
    preprocessing) and reports P(fake) = the segment's peak amplitude."""

    sample_rate = SR
    segment_s = 2.0
    name = "stub"

    def thresholds(self) -> dict[str, float]:
        return {"eer": 0.5, "low-fa": 0.8}

    def prepare_array(self, y, sr, *, trim=True, activity=None):
        offset = 0.0
        if trim:
            first = int(np.argmax(np.abs(y) > 1e-3))
            y, offset = y[first:], first / sr
        return y, sr, offset

    def segment_scores(self, y, sr, bounds):
        peaks = np.array([np.abs(y[a:b]).max() if b > a else np.nan for a, b in bounds])
        return 10 * peaks - 5, peaks


def speech(amp: float, seconds: float, seed: int = 0) -> np.ndarray:
    y = speechlike(SR, seconds, seed=seed)
    return y * np.float32(amp / np.abs(y).max())


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SR), dtype=np.float32)


def test_times_are_in_the_original_recording():
    y = np.concatenate([silence(3.0), speech(0.2, 6.0)])
    result = Scanner(StubDetector()).scan(y, sr=SR)
    assert result.timeline.starts_s[0] == pytest.approx(3.0, abs=0.01)  # the offset of the trimmed start
    assert result.timeline.ends_s[-1] == pytest.approx(9.0, abs=1e-6)
    assert result.duration_s == pytest.approx(9.0)
    assert result.verdict is Verdict.REAL


def test_silence_neither_dilutes_nor_votes():
    """A 6-s loud ("fake") passage in a long recording with long pauses is still FAKE (top-k over
    the most suspicious ~8 s, see voxguard.scan.verdict); silent segments are in the timeline but
    not eligible."""
    y = np.concatenate([speech(0.2, 20.0), silence(60.0), speech(0.9, 6.0, seed=1), silence(60.0), speech(0.2, 20.0)])
    result = Scanner(StubDetector()).scan(y, sr=SR)
    tl = result.timeline
    assert not tl.eligible[(tl.starts_s > 25) & (tl.ends_s < 75)].any()
    assert np.isfinite(tl.proba).all()  # silent segments are still scored and shown
    assert result.verdict is Verdict.FAKE
    assert result.probability > 0.7


def test_too_little_speech_is_uncertain_and_silence_fails():
    y = np.concatenate([silence(2.0), speech(0.5, 0.5), silence(3.0)])
    result = Scanner(StubDetector()).scan(y, sr=SR)
    assert result.verdict is Verdict.UNCERTAIN and "too little speech" in result.reason
    with pytest.raises(SilentAudioError):
        Scanner(StubDetector()).scan(silence(5.0), sr=SR)


def test_near_threshold_is_uncertain_and_json_is_nan_free():
    result = Scanner(StubDetector()).scan(speech(0.55, 6.0), sr=SR)
    assert result.verdict is Verdict.UNCERTAIN and "within" in result.reason
    assert Scanner(StubDetector(), margin=0.0).scan(speech(0.55, 6.0), sr=SR).verdict is Verdict.FAKE
    result.timeline.proba[0] = np.nan  # an unscored segment
    text = json.dumps(result.to_dict(), allow_nan=False)
    assert json.loads(text)["timeline"][0]["probability"] is None


def test_operating_points_and_thresholds():
    assert resolve_threshold({"eer": 0.5, "low-fa": 0.8}, None, "low-fa") == (0.8, "low-fa")
    assert resolve_threshold({"eer": 0.5}, 0.3, "low-fa") == (0.3, "custom")
    with pytest.raises(ValueError, match="low-fa"):
        resolve_threshold({"eer": 0.5}, None, "low-fa")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        resolve_threshold({"eer": 0.5}, 1.5)
    scanner = Scanner(StubDetector(), operating_point="low-fa", segment_s=3.0)
    assert (scanner.threshold, scanner.operating_point, scanner.hop_s) == (0.8, "low-fa", 1.5)
    # The UNCERTAIN band narrows near 0 and 1 so that both verdicts stay reachable.
    assert effective_margin(0.9, 0.1) == pytest.approx(0.05)
    assert decide(0.96, 0.9, 0.1) is Verdict.FAKE
    assert decide(0.9, 0.9, 0.1) is Verdict.UNCERTAIN
    assert decide(0.84, 0.9, 0.1) is Verdict.REAL
    assert decide(0.5, 0.5, 0.0) is Verdict.FAKE


def test_top_k_mean():
    p = np.array([0.1, 0.9, 0.2, 0.8, np.nan, 0.3, 0.1, 0.1])
    use = np.array([True] * 7 + [False])
    agg = top_k_mean(p, p * 2, use)  # 6 usable (NaN dropped): k = ceil(1.5) = 2
    assert (agg.k, agg.n_used) == (2, 6)
    assert agg.probability == pytest.approx(0.85) and agg.score == pytest.approx(1.7)
    assert max_top_segments(8.0, 4.0, 2.0) == 3
    many = np.full(1000, 0.1)
    many[:3] = 1.0
    capped = top_k_mean(many, many, np.ones(1000, bool), max_k=3)
    assert capped.k == 3 and capped.probability == pytest.approx(1.0)
    assert math.isnan(top_k_mean(p, p, np.zeros(8, bool)).probability)


# ------------------------------------------------------------------ inputs


def test_expand_inputs(tmp_path):
    wav = speech(0.3, 1.0)
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    sf.write(tmp_path / "a.wav", wav, SR)
    sf.write(tmp_path / "sub" / "b.flac", wav, SR)
    sf.write(tmp_path / "sub" / "deeper" / "c.ogg", wav, SR)
    sf.write(tmp_path / "recording.dat", wav, SR, format="WAV")  # audio content, odd extension
    (tmp_path / "notes.txt").write_text("skipped silently")
    (tmp_path / "mystery.bin").write_bytes(b"\x00\x01" * 100)  # unknown: tried, then reported
    (tmp_path / ".hidden.wav").write_bytes(b"x")

    flat = [Path(i.name).name for i in expand_inputs([str(tmp_path)])]
    assert flat == ["a.wav", "mystery.bin", "recording.dat"]
    deep = [Path(i.name).name for i in expand_inputs([str(tmp_path)], recursive=True)]
    assert deep == ["a.wav", "mystery.bin", "recording.dat", "b.flac", "c.ogg"]
    assert len(walk_directory(tmp_path, recursive=True)) == 5

    pattern = str(tmp_path / "**" / "*.flac")
    assert [Path(i.name).name for i in expand_inputs([pattern], recursive=True)] == ["b.flac"]
    none = expand_inputs([str(tmp_path / "*.mp3")])
    assert none[0].error is not None and none[0].error.code == "not_found"
    # '-' reads standard input once; duplicates are dropped; a missing path is kept (fails later).
    items = expand_inputs(
        ["-", str(tmp_path / "a.wav"), str(tmp_path / "a.wav"), "missing.wav"], read_stdin=lambda: b"RIFF"
    )
    assert (items[0].name, items[0].source) == ("-", b"RIFF")
    assert [i.name for i in items][1:] == [str(tmp_path / "a.wav"), "missing.wav"]


# ------------------------------------------------------------------ subprocess checks


def _run(code: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=timeout
    )


def test_scan_never_imports_torch_sklearn_librosa(tmp_path):
    """The inference path works when torch, scikit-learn, librosa (and matplotlib, unless --plot)
    cannot be imported at all, and then none of them is in sys.modules."""
    clip = tmp_path / "clip.wav"
    sf.write(clip, speech(0.4, 6.0), SR)
    plots, out = tmp_path / "plots", tmp_path / "out.json"
    code = f"""
        import json, sys
        BLOCKED = {{"torch", "sklearn", "librosa", "matplotlib"}}

        class Blocker:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ImportError(f"{{name}} is blocked in this test")
                return None

        sys.meta_path.insert(0, Blocker())
        from voxguard.cli import app

        def run(args):
            try:
                app(args)
            except SystemExit as exc:
                return exc.code

        codes = [run(["scan", {str(clip)!r}, "--format", "json", "--output", {str(out)!r}])]
        codes.append(run(["scan", {str(clip)!r}, "--plot", {str(plots)!r}]))  # matplotlib blocked: usage
        codes.append(run(["scan", {str(clip)!r}, "--report", {str(plots)!r}]))  # the same for the report
        BLOCKED.discard("matplotlib")
        codes.append(run(["scan", {str(clip)!r}, "--plot", {str(plots)!r}, "--format", "csv"]))
        loaded = sorted(m for m in ("torch", "sklearn", "librosa") if m in sys.modules)
        print("RESULT", json.dumps({{"codes": codes, "loaded": loaded}}))
    """
    proc = _run(code)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))[7:])
    assert report == {"codes": [0, 1, 1, 0], "loaded": []}, proc.stderr
    doc = json.loads(out.read_text())
    assert doc["results"][0]["verdict"] in ("REAL", "FAKE", "UNCERTAIN")  # the shipped model: runs, no claim
    assert 'pip install "voxguard[plot]"' in proc.stderr
    png = plots / "clip.wav.png"
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert width > 400 and height > 200


def test_long_file_streams_in_bounded_memory(tmp_path):
    """20 minutes at 8 kHz are streamed: peak RSS grows by far less than a whole-file scan needs
    (about 150 MB more for this file) and stays under 500 MB."""
    path = tmp_path / "long.wav"
    pieces = [
        signal.resample_poly(speech(a, 10.0, seed=i), 1, 2).astype(np.float32) for i, a in enumerate((0.2, 0.5, 0.8))
    ]
    with sf.SoundFile(path, "w", samplerate=8_000, channels=1, subtype="PCM_16") as fh:
        for i in range(120):  # written in 10-s pieces: the test itself never holds the file
            fh.write(pieces[i % 3])
    short = tmp_path / "short.wav"
    sf.write(short, speech(0.4, 3.0), SR)
    code = f"""
        import json

        def hwm_kb():
            # VmHWM belongs to this process image; ru_maxrss would carry over the high-water mark
            # of the (large) pytest process that forked us, since Linux keeps it across execve.
            for line in open("/proc/self/status"):
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        from voxguard.scan import load_detector

        scanner = load_detector()
        scanner.scan({str(short)!r})
        base = hwm_kb()
        result = scanner.scan({str(path)!r})
        peak = hwm_kb()
        print(json.dumps({{"mode": result.mode, "n": len(result.timeline), "duration": result.duration_s,
                          "base_mb": base / 1024, "peak_mb": peak / 1024}}))
    """
    proc = _run(code)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["mode"] == "stream" and report["duration"] == pytest.approx(1200.0)
    assert report["n"] == 599
    # One chunk of working memory (STFT, frame features, float64 sums): ~55 MB with the default
    # model, independent of the file length; a whole-file scan of this file needs ~150 MB more.
    assert report["peak_mb"] - report["base_mb"] < 100, report
    assert report["peak_mb"] < 500, report
