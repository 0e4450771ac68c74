"""The wide-band companion: the band gate, the wide-band subset, the mix and its use by the scanner."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import soundfile as sf

from signals import speechlike
from voxguard.audio import resample
from voxguard.audio.bandwidth import MIN_TOP_BAND_DB, has_top_band, top_band_db
from voxguard.errors import VoxguardError

WIDE = 22_050


def _wide_clip(kind: str, seed: int, duration: float = 3.0) -> np.ndarray:
    """Speech-like sound with real content up to 11 kHz; ``airy`` fakes add a 9-kHz whistle."""
    rng = np.random.default_rng(seed)
    y = speechlike(WIDE, duration, f0=float(rng.uniform(90, 220)), seed=seed).astype(np.float64)
    y += 0.01 * rng.standard_normal(len(y)) * np.abs(y).max()  # breath noise: the top band is there
    if kind == "airy":
        y += 0.02 * np.sin(2 * np.pi * 9_000 * np.arange(len(y)) / WIDE)
    return (y * rng.uniform(0.3, 0.9)).astype(np.float32)


def _write_manifest(root, rows) -> str:
    path = root / "manifest.csv"
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return str(path)


def _row(name: str, label: str, i: int, rate: int, codec: str = "wav_pcm_16") -> dict[str, str]:
    return {
        "path": name,
        "label": label,
        "system": "airy" if label == "spoof" else "bonafide",
        "family": "airy" if label == "spoof" else "bonafide",
        "speaker": f"spk{i % 4}",
        "utt_group": f"u{i}",
        "dataset": "generated",
        "sample_rate": str(rate),
        "codec": codec,
    }


# --------------------------------------------------------------------------- the band gate


def test_top_band_tells_wide_band_audio_from_upsampled_audio():
    wide = _wide_clip("real", 1)
    narrow = resample(resample(wide, WIDE, 16_000), 16_000, WIDE)  # a 16-kHz recording saved at 22.05 kHz
    assert top_band_db(wide, WIDE) > -40.0
    assert top_band_db(narrow, WIDE) < -90.0
    assert has_top_band(wide, WIDE) and not has_top_band(narrow, WIDE)
    assert not has_top_band(speechlike(16_000, 2.0), 16_000)  # cannot hold the band
    # The measure does not depend on the gain, and silence is -inf, not an error.
    assert top_band_db(0.01 * wide, WIDE) == pytest.approx(top_band_db(wide, WIDE), abs=0.01)
    assert top_band_db(np.zeros(WIDE, dtype=np.float32), WIDE) == float("-inf")
    with pytest.raises(ValueError, match="no 8000-9800 Hz band"):
        top_band_db(wide[:16_000], 16_000)


def test_wide_band_subset_keeps_lossless_clips_that_have_the_band(tmp_path):
    from voxguard.datasets import load_manifest
    from voxguard.datasets.bandwidth import is_lossy, wide_band_subset

    rows = []
    for i in range(8):
        label = "spoof" if i % 2 else "bonafide"
        y = _wide_clip("airy" if i % 2 else "real", i)
        if i < 4:
            name = f"wide_{i}.wav"  # kept
            sf.write(tmp_path / name, y, WIDE)
            rows.append(_row(name, label, i, WIDE))
        elif i < 6:
            name = f"lossy_{i}.wav"  # the manifest says it went through MP3
            sf.write(tmp_path / name, y, WIDE)
            rows.append(_row(name, label, i, WIDE, codec="flac_pcm_16 (10 s segment of decoded mp3)"))
        else:
            name = f"upsampled_{i}.wav"  # 22.05 kHz on paper, nothing above 8 kHz
            sf.write(tmp_path / name, resample(resample(y, WIDE, 16_000), 16_000, WIDE), WIDE)
            rows.append(_row(name, label, i, WIDE))
    dataset = load_manifest(_write_manifest(tmp_path, rows))
    kept = wide_band_subset(dataset)
    assert sorted(item.path.name for item in kept) == [f"wide_{i}.wav" for i in range(4)]
    assert len(wide_band_subset(dataset, measure=False)) == 6  # the upsampled clips pass on paper
    assert is_lossy("ogg_opus") and is_lossy("MP3") and not is_lossy("flac_pcm_16 (lossless from wav_pcm_16)")
    with pytest.raises(VoxguardError, match="both real and fake"):
        wide_band_subset(dataset.filter(label="bonafide"))


# --------------------------------------------------------------------------- the mix


def test_fusion_mixes_log_odds_and_keeps_the_main_score_where_the_companion_has_none():
    from voxguard.models.companion import CompanionFusion

    fusion = CompanionFusion(
        main="m", intercept=0.0, w_main=1.0, w_companion=1.0, thresholds={"eer": 0.5}, min_top_band_db=-60.0
    )
    main = np.array([0.5, 0.8, 0.2, 0.9, np.nan])
    comp = np.array([0.5, 0.8, 0.8, np.nan, 0.7])
    mixed = fusion.fuse(main, comp)
    assert mixed[0] == pytest.approx(0.5)
    assert mixed[1] == pytest.approx(0.8**2 / (0.8**2 + 0.2**2))  # two agreeing 4:1 odds make 16:1
    assert mixed[2] == pytest.approx(0.5)  # opposite evidence cancels
    assert mixed[3] == pytest.approx(0.9) and np.isnan(mixed[4])
    assert CompanionFusion.from_dict(fusion.to_dict()) == fusion
    from voxguard.errors import ModelError

    with pytest.raises(ModelError, match="malformed companion"):
        CompanionFusion.from_dict({"main": "m"})


def _toy_dataset(tmp_path, n: int = 200):
    from voxguard.datasets import Dataset, Item

    labels = np.arange(n) % 2
    items = [
        Item(
            path=tmp_path / f"{i}.wav",
            label="spoof" if labels[i] else "bonafide",
            system="s",
            family="f",
            utt_group=f"g{i // 2}",
        )
        for i in range(n)
    ]
    return Dataset(items), labels


def _proba(labels: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    return 1 / (1 + np.exp(-(strength * (labels - 0.5) + rng.normal(0, 1.0, len(labels)))))


def test_fit_companion_fusion_weighs_the_informative_model_and_measures_out_of_fold(tmp_path):
    from voxguard.evaluate.companion import fit_companion_fusion

    rng = np.random.default_rng(0)
    dataset, labels = _toy_dataset(tmp_path)
    n = len(labels)
    informative, noise = _proba(labels, 3.0, rng), _proba(labels, 0.0, rng)
    fit = fit_companion_fusion(dataset, noise, informative, main="m", min_top_band_db=MIN_TOP_BAND_DB)
    assert fit.fusion.w_companion > 5 * abs(fit.fusion.w_main)
    eers = fit.metrics["eer_percent"]
    assert eers["companion"] < 20.0 < eers["main"] and eers["mix"] < 25.0
    assert 0.0 < fit.fusion.thresholds["eer"] <= fit.fusion.thresholds["low-fa"] < 1.0
    assert np.isfinite(fit.oof_proba["clean"]).all() and fit.metrics["clips"] == n
    with pytest.raises(ValueError, match="need at least 20"):
        fit_companion_fusion(dataset, np.full(n, np.nan), informative, main="m", min_top_band_db=-60.0)


def test_fit_on_degraded_conditions_lowers_the_weight_of_a_model_that_breaks_under_them(tmp_path):
    from voxguard.evaluate.companion import fit_companion_fusion

    rng = np.random.default_rng(1)
    dataset, labels = _toy_dataset(tmp_path)
    # The companion is the better model on clean clips, useless under noise; the main holds up.
    main = {"clean": _proba(labels, 2.0, rng), "noise": _proba(labels, 2.0, rng)}
    comp = {"clean": _proba(labels, 3.0, rng), "noise": _proba(labels, 0.0, rng)}
    clean_only = fit_companion_fusion(dataset, main, comp, main="m", min_top_band_db=-60.0, fit_conditions=["clean"])
    both = fit_companion_fusion(dataset, main, comp, main="m", min_top_band_db=-60.0)
    assert both.metrics["fitted_on"] == ["clean", "noise"]
    assert both.fusion.w_companion / both.fusion.w_main < clean_only.fusion.w_companion / clean_only.fusion.w_main
    by_condition = both.metrics["eer_percent_by_condition"]
    assert set(by_condition) == {"clean", "noise"}
    assert by_condition["noise"]["mix"] < clean_only.metrics["eer_percent_by_condition"]["noise"]["mix"]
    with pytest.raises(ValueError, match="no scores of both models"):
        fit_companion_fusion(dataset, main, comp, main="m", min_top_band_db=-60.0, fit_conditions=["reverb"])

    pytest.importorskip("matplotlib")
    from voxguard.evaluate.companion import write_companion_report

    html = write_companion_report(tmp_path / "report", dataset, both, main="m", companion="c")
    text = html.read_text()
    assert "EER per condition" in text and "noise" in text and "c mixed with m" in text
    assert {"det.png", "roc.png", "eer_by_family.png"} <= {p.name for p in html.parent.iterdir()}


# --------------------------------------------------------------------------- scanning with a companion


@pytest.fixture(scope="module")
def companion_pair(tmp_path_factory):
    """A tiny 16-kHz main model and a tiny wide-band companion whose card names it."""
    from signals import write_tiny_corpus
    from voxguard.datasets import load_manifest
    from voxguard.evaluate.training import train_segmental
    from voxguard.models.presets import get_preset
    from voxguard.models.segmental import SegmentalClassifier

    root = tmp_path_factory.mktemp("companion")
    main_dir = root / "main"
    main_dir.mkdir()
    main = train_segmental(
        load_manifest(write_tiny_corpus(main_dir, n=24)),
        root / "tiny-main.onnx",
        model=SegmentalClassifier(C=1.0, segment_s=2.0, hop_s=1.0),
        name="tiny-main",
        workers=1,
        folds=3,
        lofo=False,
        progress=False,
    )
    wide_dir = root / "wide"
    wide_dir.mkdir()
    rows = []
    for i in range(24):
        kind = "airy" if i % 2 else "real"
        sf.write(wide_dir / f"{kind}_{i}.wav", _wide_clip(kind, i), WIDE, subtype="PCM_16")
        rows.append(_row(f"{kind}_{i}.wav", "spoof" if i % 2 else "bonafide", i, WIDE))
    preset = get_preset("lfcc47h-810-flatness-wb-svm")
    features = preset.model().features
    wide = train_segmental(
        load_manifest(_write_manifest(wide_dir, rows)),
        root / "tiny-wb.onnx",
        model=SegmentalClassifier(features=features, C=1.0, segment_s=2.0, hop_s=1.0),
        name="tiny-wb",
        preprocess_config=preset.preprocess(),
        workers=1,
        folds=3,
        lofo=False,
        progress=False,
    )
    card_file = wide.model_path.with_name("tiny-wb.card.json")
    card = json.loads(card_file.read_text())
    card["output"]["companion"] = {
        "main": "tiny-main",
        "intercept": 0.0,
        "w_main": 0.2,
        "w_companion": 1.0,
        "thresholds": {"eer": 0.42, "low-fa": 0.77},
        "min_top_band_db": MIN_TOP_BAND_DB,
    }
    card_file.write_text(json.dumps(card))
    return main.model_path, wide.model_path


def test_scanner_mixes_the_companion_in_only_where_the_band_is(companion_pair, tmp_path):
    from voxguard.scan import Scanner

    main_path, wb_path = companion_pair
    plain = Scanner(str(main_path), wide_band=False)
    mixed = Scanner(str(main_path), wide_band=wb_path)
    assert plain.companion is None and mixed.companion is not None

    airy = _wide_clip("airy", 101, duration=6.0)
    path = tmp_path / "airy.wav"
    sf.write(path, airy, WIDE, subtype="PCM_16")
    alone, with_wb = plain.scan(path), mixed.scan(path)
    assert alone.wide_band is None and alone.to_dict()["wide_band"] is None
    use = with_wb.wide_band
    assert use is not None and use.used and use.segments == len(with_wb.timeline)
    assert use.top_band_db > MIN_TOP_BAND_DB
    # The whistle at 9 kHz is invisible at 16 kHz; the companion sees it and the mix follows.
    assert with_wb.probability > alone.probability
    assert with_wb.threshold == 0.42 and alone.threshold != 0.42  # the mix's own operating point
    assert with_wb.to_dict()["wide_band"]["used"] is True
    # The timeline keeps the companion's own P(fake) per segment; the probability is their mix.
    own = with_wb.timeline.wide_band
    assert alone.timeline.wide_band is None and own is not None and np.isfinite(own).all()
    mix = mixed.companion.fusion.fuse(alone.timeline.proba, own)
    np.testing.assert_allclose(with_wb.timeline.proba, mix, atol=1e-9)
    segment = with_wb.to_dict()["timeline"][0]
    assert segment["wide_band"] == pytest.approx(own[0], abs=1e-6)
    assert alone.to_dict()["timeline"][0]["wide_band"] is None
    # The same recording as an array gives the same result.
    from_array = mixed.scan(airy, sr=WIDE)
    assert from_array.wide_band.used and from_array.probability == pytest.approx(with_wb.probability, abs=1e-6)

    # A 16-kHz file: the companion is not used, and the result says why; the scores are the main model's.
    narrow = tmp_path / "narrow.wav"
    sf.write(narrow, resample(airy, WIDE, 16_000), 16_000, subtype="PCM_16")
    result = mixed.scan(narrow)
    assert not result.wide_band.used and "16000 Hz" in result.wide_band.note
    assert result.timeline.wide_band is None
    assert result.probability == pytest.approx(plain.scan(narrow).probability)
    assert result.threshold == plain.threshold

    # 44.1 kHz on paper, but resampled up from 16 kHz: measured, the band is not there.
    upsampled = tmp_path / "upsampled.wav"
    sf.write(upsampled, resample(resample(airy, WIDE, 16_000), 16_000, 44_100), 44_100, subtype="PCM_16")
    result = mixed.scan(upsampled)
    assert not result.wide_band.used and result.wide_band.top_band_db < MIN_TOP_BAND_DB
    assert "no wide-band content" in result.wide_band.note

    # An explicit threshold wins over the mix's.
    assert Scanner(str(main_path), wide_band=wb_path, threshold=0.6).scan(path).threshold == 0.6


def test_the_plot_draws_the_companions_own_probability(companion_pair, tmp_path):
    pytest.importorskip("matplotlib")
    from voxguard.scan import Scanner

    main_path, wb_path = companion_pair
    y = _wide_clip("airy", 103, duration=6.0)
    out = tmp_path / "t.png"
    result = Scanner(str(main_path), wide_band=wb_path).scan(y, sr=WIDE, plot=out)
    assert result.wide_band.used and result.timeline.wide_band is not None
    assert result.plot == str(out) and out.stat().st_size > 10_000


def test_a_companion_fitted_with_another_model_is_refused(companion_pair):
    from voxguard.errors import ModelError
    from voxguard.scan import Scanner

    _, wb_path = companion_pair
    with pytest.raises(ModelError, match="fitted with 'tiny-main'"):
        Scanner("seed-svm", wide_band=wb_path)


def test_streamed_scans_use_the_companion_like_whole_file_scans(companion_pair, tmp_path):
    from voxguard.scan import Scanner

    main_path, wb_path = companion_pair
    y = np.concatenate([_wide_clip("real", 7, duration=6.0), _wide_clip("airy", 8, duration=8.0)])
    whole = Scanner(str(main_path), wide_band=wb_path).scan(y, sr=WIDE)
    streaming = Scanner(str(main_path), wide_band=wb_path, stream_above_s=4.0, chunk_s=6.0)
    streamed = streaming.scan(y, sr=WIDE)
    assert (whole.mode, streamed.mode) == ("whole", "stream")
    assert streamed.wide_band.used and streamed.threshold == whole.threshold == 0.42  # the mix's
    assert streamed.wide_band.top_band_db > MIN_TOP_BAND_DB
    assert streamed.wide_band.segments == int(np.isfinite(streamed.timeline.wide_band).sum()) >= 4
    np.testing.assert_allclose(streamed.timeline.starts_s, whole.timeline.starts_s, atol=1e-9)
    # Per-chunk preprocessing (no trim, loudness per chunk) moves the numbers a little, not the story:
    # the companion sees the whistle in the second half in both modes.
    late = streamed.timeline.starts_s >= 6.0
    for res in (whole, streamed):
        own = res.timeline.wide_band
        assert np.nanmean(own[late]) > np.nanmean(own[~late]) + 0.2, (res.mode, own)
    np.testing.assert_allclose(streamed.timeline.wide_band, whole.timeline.wide_band, atol=0.05)
    assert streamed.probability == pytest.approx(whole.probability, abs=0.15)
    # A file is streamed from one decode at both rates, and agrees with the array.
    path = tmp_path / "long.wav"
    sf.write(path, y, WIDE, subtype="FLOAT")
    from_file = streaming.scan(path)
    assert from_file.mode == "stream" and from_file.wide_band.used
    np.testing.assert_allclose(from_file.timeline.proba, streamed.timeline.proba, atol=2e-3)

    # Without the band: a 16-kHz recording says why, and an upsampled one is measured on its first chunk.
    narrow = streaming.scan(resample(y, WIDE, 16_000), sr=16_000)
    assert narrow.mode == "stream" and not narrow.wide_band.used and "16000 Hz" in narrow.wide_band.note
    assert narrow.timeline.wide_band is None and narrow.threshold != 0.42
    upsampled = streaming.scan(resample(resample(y, WIDE, 16_000), 16_000, 44_100), sr=44_100)
    assert not upsampled.wide_band.used and upsampled.wide_band.top_band_db < MIN_TOP_BAND_DB
    assert "first chunk with speech" in upsampled.wide_band.note


def test_companion_for_finds_the_shipped_companion_of_a_model():
    from voxguard.models.companion import WideBandCompanion, companion_for
    from voxguard.models.registry import available_models

    for name, card in available_models().items():
        spec = card.output.get("companion")
        if isinstance(spec, dict):
            path = companion_for(spec["main"])
            assert path is not None and path.name == f"{name}.onnx"
            assert WideBandCompanion.load(path).fusion.main == spec["main"]
    assert companion_for("no-such-model") is None


def test_a_wide_band_model_on_its_own_refuses_audio_without_the_band(companion_pair, tmp_path):
    from voxguard.errors import NoWideBandError
    from voxguard.scan import Scanner, expand_inputs, scan_many

    _, wb_path = companion_pair
    scanner = Scanner(str(wb_path), wide_band=False)
    narrow = tmp_path / "narrow.wav"
    sf.write(narrow, speechlike(16_000, 4.0), 16_000, subtype="PCM_16")
    with pytest.raises(NoWideBandError, match="nothing there"):
        scanner.scan(narrow)
    wide = tmp_path / "wide.wav"
    sf.write(wide, _wide_clip("real", 3, duration=4.0), WIDE, subtype="PCM_16")
    results = list(scan_many(scanner, expand_inputs([narrow, wide])))
    assert results[0].error.code == "no_wide_band" and results[1].ok


def test_the_default_model_mixes_its_shipped_companion_in_for_wide_band_clips():
    from pathlib import Path

    from voxguard.scan import load_detector

    examples = Path(__file__).resolve().parent.parent / "examples"
    scanner = load_detector()
    if scanner.companion is None:
        pytest.skip("the default model has no shipped wide-band companion")
    wide = scanner.scan(examples / "fake_melgan_reconstructed_0.flac")  # 22.05 kHz, MelGAN
    assert wide.wide_band.used and wide.verdict.value == "FAKE"
    assert wide.threshold == pytest.approx(scanner.companion.fusion.thresholds["eer"])
    narrow = scanner.scan(examples / "real_librispeech_1688-142285-0002.flac")  # 16 kHz
    assert not narrow.wide_band.used and narrow.threshold == scanner.threshold


def test_the_unseen_eer_operating_point_of_the_default_model_and_its_mix():
    from pathlib import Path

    from voxguard.scan import load_detector

    examples = Path(__file__).resolve().parent.parent / "examples"
    scanner = load_detector(operating_point="unseen-eer")
    points = scanner.detector.thresholds()
    if "unseen-eer" not in points:
        pytest.skip("the default model has no unseen-eer operating point")
    # Set on families the model never saw, it lies under the eer point set on seen ones.
    assert scanner.threshold == points["unseen-eer"] < points["eer"]
    narrow = scanner.scan(examples / "real_librispeech_1688-142285-0002.flac")  # 16 kHz: the main model's point
    assert narrow.threshold == pytest.approx(points["unseen-eer"]) and narrow.operating_point == "unseen-eer"
    if scanner.companion is not None:
        mix = scanner.companion.fusion.thresholds
        assert mix["unseen-eer"] < mix["eer"]
        wide = scanner.scan(examples / "fake_melgan_reconstructed_0.flac")  # 22.05 kHz: the mix's point
        assert wide.wide_band.used and wide.threshold == pytest.approx(mix["unseen-eer"])
    with pytest.raises(ValueError, match="no 'unseen-eer' operating point"):
        load_detector("seed-svm", operating_point="unseen-eer")


def test_the_companions_own_probability_follows_the_fake_passage_in_time():
    """The shipped pair on the 22.05-kHz examples spliced real, fake, real (all three in DEV: this
    checks that the companion's segments line up with the main model's, not accuracy)."""
    from pathlib import Path

    from voxguard.audio import load
    from voxguard.scan import load_detector

    examples = Path(__file__).resolve().parent.parent / "examples"
    scanner = load_detector()
    if scanner.companion is None:
        pytest.skip("the default model has no shipped wide-band companion")
    real = load(examples / "real_melgan-page_unseen-speaker_0.flac", sr=WIDE).samples
    fake = load(examples / "fake_melgan_reconstructed_0.flac", sr=WIDE).samples
    result = scanner.scan(np.concatenate([real, fake, real]), sr=WIDE)
    assert result.wide_band.used and result.verdict.value == "FAKE"
    tl = result.timeline
    a, b = len(real) / WIDE, (len(real) + len(fake)) / WIDE
    inside = (tl.starts_s >= a - 0.5) & (tl.ends_s <= b + 0.5)
    outside = (tl.ends_s <= a + 0.5) | (tl.starts_s >= b - 0.5)
    assert inside.any() and outside.any()
    assert tl.wide_band[inside].min() > 0.9 and tl.wide_band[outside].max() < 0.1, tl.to_list()


def test_companion_eval_script_measures_the_mix_on_held_out_scores(companion_pair, tmp_path):
    """scripts/companion_eval.py on a small corpus: wide-band clips of two datasets (one without
    fakes), three lossy real clips, and out-of-fold score CSVs as `voxguard train --scores-out` writes them."""
    import subprocess
    import sys
    from pathlib import Path

    from signals import encode_with_av

    main_path, wb_path = companion_pair
    rows, main_rows, comp_rows = [], [], []
    rng = np.random.default_rng(0)
    for i in range(16):
        fake = i % 2 == 1
        kind = "airy" if fake else "real"
        name = f"{kind}_{i}.wav"
        sf.write(tmp_path / name, _wide_clip(kind, 200 + i), WIDE, subtype="PCM_16")
        row = _row(name, "spoof" if fake else "bonafide", i, WIDE)
        row["dataset"] = "with_fakes" if fake or i % 4 == 0 else "reals_only"
        rows.append(row)
        # Raw scores: the companion separates the classes better than the main model.
        main_rows.append((name, int(fake), row["family"], rng.normal(0.6 if fake else -0.6)))
        comp_rows.append((name, int(fake), row["family"], rng.normal(2.0 if fake else -2.0, 0.5)))
    for i in range(3):  # lossy real clips with the band: never in the companion's data
        name = f"opus_{i}.webm"
        encode_with_av(tmp_path / name, _wide_clip("real", 300 + i, duration=4.0), WIDE, container="webm",
                       codec="libopus", rate=48_000)  # fmt: skip
        row = _row(name, "bonafide", 100 + i, 48_000, codec="ogg_opus")
        rows.append(row)
        main_rows.append((name, 0, "bonafide", -1.0))
    manifest = _write_manifest(tmp_path, rows)

    def write_scores(path, label, entries):
        with open(path, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["id", "label", "family", f"{label}:grouped", f"{label}:lofo"])
            for name, y, family, raw in entries:
                writer.writerow([name, y, family, f"{raw:.6g}", f"{raw - 0.3 * (2 * y - 1):.6g}"])

    write_scores(tmp_path / "main.csv", "tiny-main", main_rows)
    write_scores(tmp_path / "comp.csv", "tiny-wb", comp_rows)
    script = Path(__file__).resolve().parent.parent / "scripts" / "companion_eval.py"
    args = [sys.executable, str(script), "--corpus", manifest, "--main", str(main_path),
            "--main-scores", str(tmp_path / "main.csv"), "--companion", str(wb_path),
            "--companion-scores", str(tmp_path / "comp.csv")]  # fmt: skip
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "16 wide-band clips (8 fake); real clips from datasets that also have fakes: 4 of 8" in out
    for protocol in ("grouped", "lofo"):
        for reals in ("all", "matched"):
            for model in ("tiny-main", "tiny-wb", "mix"):
                assert f"| {protocol} | {reals} | {model} |" in out, (protocol, reals, model)
    lines = {line.split("|")[3].strip(): line for line in out.splitlines() if line.startswith("| grouped | all |")}
    eers = {m: float(line.split("|")[4].strip().rstrip(" %")) for m, line in lines.items()}
    assert eers["tiny-wb"] < eers["tiny-main"]  # the scores were made so
    assert "Lossy real clips at >= 22.05 kHz (ogg_opus): 3" in out
    assert "| eer | " in out and "| low-fa | " in out
    for protocol in ("grouped", "lofo"):  # the operating points on seen and unseen families
        assert f"| {protocol} | eer (0.420) | wide-band | mix |" in out  # the fixture mix's threshold
        assert f"| {protocol} | low-fa (" in out


def test_train_and_compare_refuse_a_corpus_without_wide_band_clips(tmp_path):
    from typer.testing import CliRunner

    from voxguard.cli import app

    sf.write(tmp_path / "a.wav", speechlike(16_000, 2.0), 16_000)
    sf.write(tmp_path / "b.wav", speechlike(16_000, 2.0, seed=1), 16_000)
    manifest = _write_manifest(tmp_path, [_row("a.wav", "bonafide", 0, 16_000), _row("b.wav", "spoof", 1, 16_000)])
    for command in ("compare", "train"):
        args = [command, manifest, "--wide-band-only", "--model" + ("s" if command == "compare" else "")]
        result = CliRunner().invoke(app, [*args, "lfcc47h-810-flatness-wb-svm"])
        assert result.exit_code == 2, (command, result.output)
        assert "band above 8 kHz" in result.output and "Traceback" not in result.output


def test_lossy_wide_band_files_get_the_companion_when_the_band_survives(companion_pair, tmp_path):
    # MP3 at 128 kbit/s keeps 8-10 kHz: the band is measured, not inferred from the codec.
    from signals import encode_with_av
    from voxguard.scan import Scanner

    main_path, wb_path = companion_pair
    path = tmp_path / "airy.mp3"
    encode_with_av(path, _wide_clip("airy", 11, duration=5.0), WIDE, container="mp3", codec="libmp3lame")
    result = Scanner(str(main_path), wide_band=wb_path).scan(path)
    assert result.wide_band.used and result.wide_band.top_band_db > MIN_TOP_BAND_DB


def test_csv_and_parquet_say_whether_the_companion_was_used(tmp_path):
    from pathlib import Path

    from typer.testing import CliRunner

    from voxguard.cli import app
    from voxguard.scan import load_detector

    if load_detector().companion is None:
        pytest.skip("the default model has no shipped wide-band companion")
    examples = Path(__file__).resolve().parent.parent / "examples"
    wide, narrow = examples / "fake_melgan_reconstructed_0.flac", examples / "real_librispeech_1688-142285-0002.flac"
    out = tmp_path / "r.csv"
    r = CliRunner().invoke(app, ["scan", str(wide), str(narrow), "--format", "csv", "-o", str(out)])
    assert r.exit_code == 0, r.output
    rows = {Path(row["path"]).name: row for row in csv.DictReader(out.open())}
    assert rows[wide.name]["wide_band_used"] == "True" and rows[narrow.name]["wide_band_used"] == "False"
    table = CliRunner().invoke(app, ["scan", str(wide), str(narrow)])
    assert table.exit_code == 0, table.output
    wide_row = next(line for line in table.output.splitlines() if wide.name in line)
    narrow_row = next(line for line in table.output.splitlines() if narrow.name in line)
    assert " * " in wide_row and " * " not in narrow_row and "* wide-band companion voxguard-wb" in table.output
    pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow is not installed")
    target = tmp_path / "r.parquet"
    r = CliRunner().invoke(app, ["scan", str(wide), "--format", "parquet", "--out", str(target)])
    assert r.exit_code == 0, r.output
    assert pq.read_table(target).column("wide_band_used").to_pylist() == [True]


def test_the_service_setting_turns_the_companion_off(tmp_path):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from voxguard.server.app import create_app
    from voxguard.server.settings import Settings

    assert Settings.from_env({}).wide_band is True
    settings = Settings.from_env({"VOXGUARD_WIDE_BAND": "false", "VOXGUARD_DATA_DIR": str(tmp_path / "d")})
    assert settings.wide_band is False
    with pytest.raises(ValueError, match="VOXGUARD_WIDE_BAND"):
        Settings.from_env({"VOXGUARD_WIDE_BAND": "maybe"})
    wide = tmp_path / "wide.wav"
    sf.write(wide, _wide_clip("real", 5, duration=4.0), WIDE, subtype="PCM_16")
    with TestClient(create_app(settings)) as client:
        body = client.post("/v1/scan", files={"file": ("w.wav", wide.read_bytes(), "audio/wav")}).json()
    assert body["wide_band"] is None  # the service scans at 16 kHz only


def test_the_mix_does_not_move_with_gain_or_added_silence(companion_pair):
    # Both paths normalise loudness and trim silence, and the gate reads a level ratio.
    from voxguard.scan import Scanner

    main_path, wb_path = companion_pair
    scanner = Scanner(str(main_path), wide_band=wb_path)
    y = _wide_clip("airy", 21, duration=6.0)
    base = scanner.scan(y, sr=WIDE)
    quiet = scanner.scan(0.1 * y, sr=WIDE)
    padded = scanner.scan(
        np.concatenate([np.zeros(WIDE, dtype=np.float32), y, np.zeros(WIDE // 2, dtype=np.float32)]), sr=WIDE
    )
    for other in (quiet, padded):
        assert other.wide_band.used
        assert other.wide_band.top_band_db == pytest.approx(base.wide_band.top_band_db, abs=1.0)
        assert other.probability == pytest.approx(base.probability, abs=0.05)
