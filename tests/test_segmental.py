"""Segment-level features, augmentation, and the train -> ONNX -> detector path on generated data."""

from __future__ import annotations

import json

import numpy as np
import pytest

from signals import make_clip, speechlike, write_tiny_corpus
from voxguard.audio import segment_bounds
from voxguard.errors import FeatureError
from voxguard.features.segmental import SegmentalConfig, frame_matrices, frame_matrix, segment_vectors

SR = 16_000


# --------------------------------------------------------------------------- features


def test_segment_vectors_match_direct_pooling():
    y = speechlike(SR, 9.0)
    cfg = SegmentalConfig()
    frames = frame_matrix(y, SR, cfg)
    assert frames.shape[0] == len(cfg.frame_names()) and frames.shape[1] == 1 + len(y) // cfg.hop_length
    bounds = segment_bounds(len(y), SR, 4.0, 2.0)
    vectors = segment_vectors(frames, bounds, cfg.hop_length)
    assert vectors.shape == (len(bounds), len(cfg.vector_names()))
    for k, (a, b) in enumerate(bounds):
        first, last = int(np.ceil(a / cfg.hop_length)), int(np.ceil(b / cfg.hop_length))
        direct = np.concatenate([frames[:, first:last].mean(1), frames[:, first:last].std(1)])
        np.testing.assert_allclose(vectors[k], direct, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("gaps", ["none", "whole frames", "single values"])
def test_segment_vectors_match_nan_aware_pooling_on_any_segment_grid(gaps):
    rng = np.random.default_rng(3)
    frames = (rng.standard_normal((5, 400)) * 3 + 40).astype(np.float32)  # large means: precision
    if gaps == "whole frames":
        frames[:, rng.random(400) < 0.3] = np.nan
    elif gaps == "single values":
        frames[rng.random(frames.shape) < 0.2] = np.nan
    hop = 10
    # Overlapping, unsorted, end-aligned and whole-signal segments (bounds in samples).
    bounds = np.array([[0, 4000], [0, 400], [390, 1990], [2005, 4000], [3000, 3999], [1000, 1005], [2600, 4000]])
    v = segment_vectors(frames, bounds, hop, empty_as_nan=True)
    for k, (a, b) in enumerate(bounds):
        first = int(np.ceil(a / hop))
        last = max(first + 1, min(400, int(np.ceil(b / hop))))
        seg = frames[:, first:last].astype(np.float64)
        with np.errstate(all="ignore"), __import__("warnings").catch_warnings():
            __import__("warnings").simplefilter("ignore")
            direct = np.concatenate([np.nanmean(seg, 1), np.nanstd(seg, 1)])
        if np.isnan(direct).all():
            assert np.isnan(v[k]).all()
            continue
        np.testing.assert_allclose(v[k], np.nan_to_num(direct), rtol=1e-5, atol=1e-4)


def test_segmental_config_validates_and_round_trips():
    cfg = SegmentalConfig(views=("lfcc_4_8k",), stats=("mean",))
    assert SegmentalConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(Exception, match="unknown views"):
        SegmentalConfig(views=("nope",))


# --------------------------------------------------------------------------- training end to end


_make_clip = make_clip


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory):
    return write_tiny_corpus(tmp_path_factory.mktemp("corpus"))


def test_train_export_and_scan(tiny_corpus, tmp_path):
    from voxguard.datasets import load_manifest
    from voxguard.evaluate.training import train_segmental, write_training_report
    from voxguard.models.detector import Detector
    from voxguard.models.segmental import SegmentalClassifier
    from voxguard.scan import Scanner

    dataset = load_manifest(tiny_corpus)
    model = SegmentalClassifier(C=1.0, segment_s=2.0, hop_s=1.0)
    result = train_segmental(dataset, tmp_path / "m.onnx", model=model, name="tiny", workers=1, folds=3, progress=False)
    card = result.card
    assert card.features["kind"] == "segmental" and card.training["clips_failed"] == 0
    assert set(card.metrics) == {"grouped_cv", "leave_one_family_out"}
    assert set(card.metrics["leave_one_family_out"]["per_family_eer"]) == {"lowpass", "buzz"}
    assert card.metrics["grouped_cv"]["eer"] < 0.2  # separable on purpose
    thresholds = card.output["thresholds"]
    assert 0.0 <= thresholds["eer"] <= thresholds["low-fa"] <= 1.0

    # ONNX parity with the scikit-learn model on real segment rows.
    detector = Detector.load(result.model_path)
    from voxguard.models.segmental import SegmentalClassifier as _SC

    final = _SC(C=1.0, segment_s=2.0, hop_s=1.0).fit(result.table.X, result.table.y)
    rows = result.table.X[:50]
    np.testing.assert_allclose(detector.model.score(rows), final.decision_function(rows), atol=1e-4, rtol=1e-4)

    # The scanner uses the model's own features and thresholds.
    scanner = Scanner(detector)
    real = scanner.scan(_make_clip("real", 999), sr=SR)
    fake = scanner.scan(_make_clip("lowpass", 998), sr=SR)
    assert fake.probability > real.probability
    html = write_training_report(result, dataset, tmp_path / "report")
    assert html.is_file()


def test_nan_frames_do_not_count_in_pooling():
    frames = np.array([[1.0, np.nan, 3.0, np.nan, 5.0, 7.0], [1.0, 1.0, 1.0, 1.0, 1.0, 1.0]], dtype=np.float32)
    bounds = np.array([[0, 4], [0, 6], [1, 2]])  # hop 1: frames [0, 4), [0, 6), [1, 2)
    v = segment_vectors(frames, bounds, hop_length=1)
    np.testing.assert_allclose(v[0, :2], [2.0, 1.0])  # mean of 1 and 3; the NaNs are skipped
    np.testing.assert_allclose(v[1, :2], [4.0, 1.0])
    np.testing.assert_allclose(v[0, 2:], [1.0, 0.0])  # std of 1 and 3
    assert v[2, 0] == 0.0 and np.isfinite(v).all()  # a segment of only NaN frames pools to 0


def test_full_feature_views_are_finite():
    cfg = SegmentalConfig(views=("spectral", "prosody"))
    y = np.concatenate([np.zeros(SR // 2, np.float32), speechlike(SR, 3.0)])
    frames = frame_matrix(y, SR, cfg)
    assert frames.shape[0] == len(cfg.frame_names())
    vectors = segment_vectors(frames, segment_bounds(len(y), SR, 2.0, 1.0), cfg.hop_length)
    assert np.isfinite(vectors).all()


def test_cross_corpus_protocol(tiny_corpus):
    from voxguard.datasets import load_manifest
    from voxguard.datasets.splits import cross_corpus_split
    from voxguard.evaluate.protocols import run_protocol
    from voxguard.models.segmental import SegmentalClassifier, build_segment_table

    full = load_manifest(tiny_corpus)
    half = np.arange(len(full)) < len(full) // 2
    corpus_a = full.filter(lambda item: half[int(item.utt_group[1:])])
    corpus_b = full.filter(lambda item: not half[int(item.utt_group[1:])])
    dataset, split = cross_corpus_split(corpus_a, corpus_b)
    model = SegmentalClassifier(C=1.0, segment_s=2.0, hop_s=1.0)
    table = build_segment_table(dataset, model, augment=False, workers=1, progress=False)
    result = run_protocol(
        dataset, table, lambda: SegmentalClassifier(C=1.0, segment_s=2.0, hop_s=1.0), protocol="cross", split=split
    )
    tested = ~np.isnan(result.scores)
    assert tested.sum() == len(corpus_b) and not tested[: len(corpus_a)].any()  # only corpus B is scored
    assert set(result.fold_eer) == {"cross"} and result.fold_eer["cross"] < 0.5


# --------------------------------------------------------------------------- capped band and silence gate


def test_capped_views_ignore_the_band_above_7khz():
    rng = np.random.default_rng(0)
    y = speechlike(SR, 3.0)
    spectrum = np.fft.rfft(rng.standard_normal(len(y)))
    spectrum[np.fft.rfftfreq(len(y), 1 / SR) < 7_500] = 0  # hiss only above 7.5 kHz, as resamplers differ there
    hiss = np.fft.irfft(spectrum, len(y))
    noisy = (y + 0.05 * hiss).astype(np.float32)
    capped = SegmentalConfig(views=("lfcc_4_7k_hann", "band_flatness_7k"))
    full = SegmentalConfig(views=("lfcc_4_8k_hann", "band_flatness"))
    assert len(capped.frame_names()) == 60 + 14

    def change(cfg: SegmentalConfig) -> float:
        a, b = frame_matrix(y, SR, cfg), frame_matrix(noisy, SR, cfg)
        return float(np.median(np.abs(a - b)))

    assert change(capped) < 0.2 * change(full)  # what is left is window leakage


def test_wide_band_views_read_8_to_10_khz_only_and_need_22khz():
    wide_sr = 22_050
    rng = np.random.default_rng(1)
    y = speechlike(wide_sr, 3.0)
    freqs = np.fft.rfftfreq(len(y), 1 / wide_sr)

    def band_noise(lo: float, hi: float) -> np.ndarray:
        spectrum = np.fft.rfft(rng.standard_normal(len(y)))
        spectrum[(freqs < lo) | (freqs > hi)] = 0
        return (0.05 * np.fft.irfft(spectrum, len(y))).astype(np.float32)

    wide = SegmentalConfig(views=("lfcc_8_10k_hann", "band_flatness_8_10k"), sample_rate=wide_sr)
    assert wide.wide_band and len(wide.frame_names()) == 60 + 4
    base = frame_matrix(y, wide_sr, wide)

    def change(extra: np.ndarray) -> float:
        return float(np.median(np.abs(frame_matrix(y + extra, wide_sr, wide) - base)))

    # Hiss inside 8.3-9.5 kHz moves the view; the same hiss at 1-3 kHz leaves it (almost) alone.
    assert change(band_noise(8_300, 9_500)) > 5 * change(band_noise(1_000, 3_000))
    with pytest.raises(FeatureError, match="22050"):
        SegmentalConfig(views=("lfcc_8_10k_hann",), sample_rate=16_000)


def test_shared_spectrum_grows_with_the_rate_and_keeps_16khz_as_it_was():
    from voxguard.features.segmental import shared_n_fft

    assert [shared_n_fft(r) for r in (8_000, 16_000, 22_050, 24_000, 48_000)] == [512, 512, 576, 600, 1200]
    # The 7-kHz views at 22.05 kHz describe the same band as at 16 kHz: a tone at 5 kHz moves
    # their flatness in the same band (the 11th of 14, 5-5.5 kHz) at both rates.
    cfg16 = SegmentalConfig(views=("band_flatness_7k",))
    cfg22 = SegmentalConfig(views=("band_flatness_7k",), sample_rate=22_050)
    for sr, cfg in ((16_000, cfg16), (22_050, cfg22)):
        t = np.arange(2 * sr) / sr
        noise = np.random.default_rng(2).standard_normal(len(t)).astype(np.float32) * 0.01
        tone = (0.5 * np.sin(2 * np.pi * 5_250 * t)).astype(np.float32)
        drop = np.nanmean(frame_matrix(noise, sr, cfg), axis=1) - np.nanmean(
            frame_matrix(noise + tone, sr, cfg), axis=1
        )
        assert int(np.argmax(drop)) == 10


def test_gate_leaves_silence_out_of_the_pooling():
    y = speechlike(SR, 3.0)
    padded = np.concatenate([y, np.zeros(SR * 2, np.float32)])
    dither = (np.random.default_rng(1).uniform(-1, 1, len(padded)) * 2**-16).astype(np.float32)
    padded = padded + dither  # what requantisation leaves in digital silence
    gated = SegmentalConfig(views=("lfcc_4_7k_hann", "band_flatness_7k"), gate_db=40.0)
    frames = frame_matrix(padded, SR, gated)
    quiet = np.isnan(frames).all(axis=0)
    assert 0.3 < quiet.mean() < 0.5  # the 2 s of silence out of 5 s, give or take the edges
    whole = segment_vectors(frames, np.array([[0, len(padded)]]), gated.hop_length, empty_as_nan=True)
    speech_only = segment_vectors(frame_matrix(y + dither[: len(y)], SR, gated), np.array([[0, len(y)]]), 160)
    np.testing.assert_allclose(whole, speech_only, rtol=0.05, atol=0.05)
    # A segment of silence only has no vector at all.
    silent = segment_vectors(frames, np.array([[len(y) + SR // 2, len(padded)]]), 160, empty_as_nan=True)
    assert np.isnan(silent).all()
    ungated = segment_vectors(
        frame_matrix(padded, SR, SegmentalConfig(views=gated.views)), np.array([[0, len(padded)]]), 160
    )
    assert np.abs(ungated - speech_only).max() > 5 * np.abs(whole - speech_only).max()


def test_gate_round_trips_through_the_card_dict():
    cfg = SegmentalConfig(views=("lfcc_4_7k_hann",), gate_db=40.0)
    assert SegmentalConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert SegmentalConfig.from_dict({"views": ["lfcc_4_8k_hann"]}).gate_db is None  # v1 cards


def test_band_gate_keeps_the_frames_where_the_band_is_loud():
    # 1 s of a loud 300 Hz tone, then 1 s of quieter 5 kHz-centred noise: a full-band gate keeps
    # both halves (the noise is only 10 dB down), a 4-7 kHz gate of 20 dB drops the tone.
    t = np.arange(SR) / SR
    tone = 0.5 * np.sin(2 * np.pi * 300 * t)
    spectrum = np.fft.rfft(np.random.default_rng(4).standard_normal(SR))
    f = np.fft.rfftfreq(SR, 1 / SR)
    spectrum[(f < 4_500) | (f > 6_500)] = 0
    hiss = np.fft.irfft(spectrum, SR)
    hiss *= 0.5 / np.sqrt(2) / np.sqrt(np.mean(hiss**2)) * 10 ** (-10 / 20)
    y = np.concatenate([tone, hiss]).astype(np.float32) + 1e-5 * np.random.default_rng(5).standard_normal(2 * SR)
    views = ("lfcc_4_7k_hann",)
    full = np.isnan(frame_matrix(y, SR, SegmentalConfig(views=views, gate_db=20.0))).all(axis=0)
    band_cfg = SegmentalConfig(views=views, gate_db=20.0, gate_band_hz=(4000.0, 7000.0))
    band = np.isnan(frame_matrix(y.astype(np.float32), SR, band_cfg)).all(axis=0)
    assert full[5:95].sum() == 0 and full[105:195].sum() == 0
    assert band[5:95].all() and not band[105:195].any()
    assert SegmentalConfig.from_dict(json.loads(json.dumps(band_cfg.to_dict()))) == band_cfg


def test_level_split_pools_the_louder_and_quieter_frames_apart():
    from voxguard.features.segmental import pool_segments

    y = speechlike(SR, 4.0)
    base = SegmentalConfig(views=("lfcc_4_7k_hann", "band_flatness_7k"), gate_db=40.0, drop_delta_means=True)
    split = SegmentalConfig(views=base.views, gate_db=40.0, drop_delta_means=True, level_split="halves")
    frames, compact = frame_matrix(y, SR, base), frame_matrix(y, SR, split)
    n = frames.shape[0]
    # The frames once, and a last row naming each frame's pool: 1 loud, 0 quiet, NaN gated.
    assert compact.shape == (n + 1, frames.shape[1]) and len(split.frame_names()) == 2 * n
    np.testing.assert_array_equal(compact[:n], frames)
    halves = _level_pools_copied(compact, "halves")
    loud = np.isfinite(halves[:n]).all(axis=0)
    quiet = np.isfinite(halves[n:]).all(axis=0)
    kept = np.isfinite(frames).all(axis=0)
    assert not (loud & quiet).any() and ((loud | quiet) == kept).all()
    assert abs(loud.sum() - quiet.sum()) <= 1  # split at the median level
    # The pooled loud statistics are those of the loud frames.
    whole = np.array([[0, len(y)]])
    pooled = pool_segments(compact, whole, SegmentalConfig(views=base.views, gate_db=40.0, level_split="halves"))
    inside = np.arange(frames.shape[1]) * 160 < len(y)  # frames whose centre is in the segment
    np.testing.assert_allclose(pooled[0, :n], frames[:, loud & inside].mean(axis=1), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(pooled[0, n : 2 * n], frames[:, quiet & inside].mean(axis=1), rtol=1e-4, atol=1e-4)
    assert len(split.vector_names()) == 2 * len(base.vector_names())
    assert all(not (v.startswith(("d_", "dd_")) and v.endswith("_mean")) for v in split.vector_names())
    assert SegmentalConfig.from_dict(json.loads(json.dumps(split.to_dict()))) == split
    # "loud": every kept frame, then the loud half again.
    added = frame_matrix(y, SR, SegmentalConfig(views=base.views, gate_db=40.0, level_split="loud"))
    np.testing.assert_array_equal(added, compact)  # the same frames and pools; pooling differs
    both = _level_pools_copied(added, "loud")
    np.testing.assert_array_equal(both[:n], frames)
    np.testing.assert_array_equal(both[n:], halves[:n])
    with pytest.raises(FeatureError, match="level_split"):
        SegmentalConfig(level_split="thirds")


def test_floor_gate_leaves_the_pauses_of_a_noisy_clip_out_and_clean_speech_alone():
    from voxguard.features.segmental import below_floor

    sr = 16_000
    pause = np.zeros(sr, np.float32)
    clean = np.concatenate([speechlike(sr, 2.0, seed=1), pause, speechlike(sr, 2.0, seed=2), pause])
    noise = np.random.default_rng(0).standard_normal(len(clean)).astype(np.float32)
    noisy = clean + noise * 0.3 * float(np.sqrt(np.mean(clean**2)))  # about 10 dB SNR
    base = SegmentalConfig(views=("lfcc_4_7k_hann", "band_flatness_7k"), gate_db=40.0)
    floor = SegmentalConfig(views=base.views, gate_db=40.0, floor_gate_db=6.0)
    # Clean: the floor is the digital silence, which the gate already left out: nothing changes.
    np.testing.assert_array_equal(frame_matrix(clean, sr, floor), frame_matrix(clean, sr, base))
    # Noisy: nothing is 40 dB down, but the pauses (noise only) are left out and the speech stays.
    kept_base = np.isfinite(frame_matrix(noisy, sr, base)).all(axis=0)
    kept = np.isfinite(frame_matrix(noisy, sr, floor)).all(axis=0)
    centre = np.arange(len(kept)) * base.hop_length
    in_pause = ((centre >= 2 * sr + 400) & (centre < 3 * sr - 400)) | (centre >= 5 * sr + 400)
    assert kept_base.all()
    assert not kept[in_pause].any()
    assert kept[~in_pause].mean() > 0.6  # most speech frames stay (the envelope's troughs may go)
    # The same without the 40-dB gate and on a view that does not read the shared STFT.
    mfcc_floor = np.isfinite(frame_matrix(noisy, sr, SegmentalConfig(views=("mfcc",), floor_gate_db=6.0))).all(axis=0)
    assert np.isfinite(frame_matrix(noisy, sr, SegmentalConfig(views=("mfcc",)))).all()
    assert not mfcc_floor[in_pause[: len(mfcc_floor)]].any() and mfcc_floor.mean() > 0.4
    # Never every frame: a signal that is all "floor" keeps its frames.
    assert not below_floor(np.ones(50), 6.0).any()
    assert SegmentalConfig.from_dict(json.loads(json.dumps(floor.to_dict()))) == floor
    with pytest.raises(FeatureError, match="floor_gate_db"):
        SegmentalConfig(floor_gate_db=0.0)


def test_loud_quarter_pools_every_kept_frame_and_the_loudest_quarter():
    y = speechlike(SR, 4.0)
    cfg = SegmentalConfig(views=("lfcc_4_7k_hann",), gate_db=40.0, level_split="loud-quarter")
    frames = frame_matrix(y, SR, cfg)
    code = frames[-1]
    kept = np.isfinite(code)
    assert abs((code[kept] > 0.5).mean() - 0.25) < 0.02
    assert [n.split("@")[1] for n in cfg.frame_names()[:2]] == ["all", "all"]
    assert cfg.frame_names()[-1].endswith("@loud")
    # The same frames and pool row as "loud" but for the threshold: the quarter is inside the half.
    half = frame_matrix(y, SR, SegmentalConfig(views=cfg.views, gate_db=40.0, level_split="loud"))
    np.testing.assert_array_equal(frames[:-1], half[:-1])
    assert ((code > 0.5) <= (half[-1] > 0.5)).all()


def test_fill_from_nearest_takes_the_closest_kept_frame():
    from voxguard.features.segmental import fill_from_nearest

    x = np.arange(8, dtype=np.float32)[None, :] * 10
    missing = np.array([True, True, False, True, True, True, False, True])
    np.testing.assert_array_equal(fill_from_nearest(x, missing)[0], [20, 20, 20, 20, 20, 60, 60, 60])
    assert fill_from_nearest(x, np.zeros(8, bool)) is x
    assert fill_from_nearest(x, np.ones(8, bool)) is x


def test_gated_deltas_do_not_depend_on_what_was_cut_off():
    y = speechlike(SR, 2.0)
    gated = SegmentalConfig(views=("lfcc_4_7k_hann",), gate_db=40.0)
    rms = float(np.sqrt(np.mean(y**2)))
    room_tone = (np.random.default_rng(2).standard_normal(SR) * rms * 1e-3).astype(np.float32)
    dither = (np.random.default_rng(3).uniform(-1, 1, SR) * 2**-16).astype(np.float32)
    a = frame_matrix(np.concatenate([room_tone, y]), SR, gated)
    b = frame_matrix(np.concatenate([dither, y]), SR, gated)
    ok = ~np.isnan(a).all(axis=0)
    assert (ok == ~np.isnan(b).all(axis=0)).all()
    # Only the first frames, whose 25 ms windows still reach into the cut-off part, may differ
    # (and the deltas and delta-deltas over them, 2 x 4 frames); beyond that, nothing.
    inner = np.flatnonzero(ok)[10:]
    np.testing.assert_allclose(a[:, inner], b[:, inner], atol=0.05)


def test_drop_delta_means_keeps_static_means_and_all_stds():
    from voxguard.features.segmental import pool_segments

    cfg = SegmentalConfig(views=("lfcc_4_7k_hann", "band_flatness_7k"), drop_delta_means=True)
    names = cfg.vector_names()
    assert "lfcc47h_1_mean" in names and "d_lfcc47h_1_std" in names and "dd_lfcc47h_20_std" in names
    assert not any(n.startswith(("d_", "dd_")) and n.endswith("_mean") for n in names)
    assert len(names) == 2 * (60 + 14) - 40
    y = speechlike(SR, 5.0)
    frames = frame_matrix(y, SR, cfg)
    bounds = segment_bounds(len(y), SR, 4.0, 2.0)
    pooled = pool_segments(frames, bounds, cfg)
    full = segment_vectors(frames, bounds, cfg.hop_length)
    assert pooled.shape == (len(bounds), len(names))
    np.testing.assert_array_equal(pooled, full[:, cfg.column_mask()])
    assert SegmentalConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


@pytest.mark.parametrize("classifier", ["svm", "logreg"])
def test_both_classifiers_export_to_onnx_with_their_decision_values(classifier):
    from voxguard.models.export import sklearn_to_onnx
    from voxguard.models.segmental import SegmentalClassifier

    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 6)).astype(np.float32)
    y = (X[:, 0] + 0.3 * rng.standard_normal(120) > 0).astype(int)
    model = SegmentalClassifier(classifier=classifier).fit(X, y)
    _, spec = sklearn_to_onnx(model.pipeline_, X[:40], model.decision_function(X[:40]))
    # The RBF SVM is written as plain matrix products (rbf_svm_graph), other models by skl2onnx.
    assert spec["name"] == ("scores" if classifier == "svm" else "probabilities") and spec["sign"] in (1, -1)


def test_augmentation_policy_specs_and_copies(tmp_path):
    from voxguard.datasets import load_manifest
    from voxguard.errors import VoxguardError
    from voxguard.models.segmental import SegmentalClassifier, build_segment_table, parse_policy

    assert parse_policy("chain") == ("chain", 1) and parse_policy("chain*2") == ("chain", 2)
    for bad in ("chain*0", "chain*x", "chain*-1"):
        with pytest.raises(VoxguardError, match="NAME\\*COPIES"):
            parse_policy(bad)
    dataset = load_manifest(write_tiny_corpus(tmp_path, n=8, duration=2.0))
    model = SegmentalClassifier(segment_s=1.0, hop_s=0.5)
    table = build_segment_table(dataset, model, policy="chain*2", workers=1, progress=False)
    clean, augmented = (~table.augmented).sum(), table.augmented.sum()
    assert clean > 0 and augmented >= 1.5 * clean  # two degraded copies per clip (lengths may differ a little)
    with pytest.raises(VoxguardError, match="augmentation policy"):
        build_segment_table(dataset, model, policy="nope*2", workers=1, progress=False)


def test_frame_matrices_equal_frame_matrix_with_one_stft_per_split_free_key(monkeypatch) -> None:
    """A fusion's members that differ only in level_split or in their STFT views share one STFT."""
    import dataclasses

    from voxguard.features import spectral

    sr = 16_000
    y = np.concatenate([np.zeros(sr // 2, np.float32), speechlike(sr, 3.0, seed=5)])
    base = SegmentalConfig(views=("lfcc_4_7k_hann", "band_flatness_7k"), gate_db=40.0)
    configs = [
        base,
        dataclasses.replace(base, level_split="halves"),
        dataclasses.replace(base, level_split="loud"),
        dataclasses.replace(base, level_split="loud-quarter", floor_gate_db=6.0),
        dataclasses.replace(base, floor_gate_db=6.0),
        dataclasses.replace(base, gate_db=None),
        base,
        # Other views of the same STFT and gate (a routed model's router; a subset in another order).
        dataclasses.replace(base, views=(*base.views, "lfbe_7k"), level_split="halves"),
        dataclasses.replace(base, views=("lfbe_7k", "band_flatness_7k")),
        dataclasses.replace(base, views=("mfcc",)),  # not from the shared STFT: alone
    ]
    expected = [frame_matrix(y, sr, cfg) for cfg in configs]
    calls = []
    original = spectral.stft_power_frames
    monkeypatch.setattr(spectral, "stft_power_frames", lambda *a, **k: calls.append(1) or original(*a, **k))
    got = frame_matrices(y, sr, configs)
    assert len(calls) == 3  # the gated group (8 configs, floor gates and other views included), the ungated one, mfcc
    for want, have in zip(expected, got, strict=True):
        np.testing.assert_array_equal(have, want)
    assert got[1].shape[0] == got[0].shape[0] + 1  # the frames once, plus the row naming each frame's pool
    assert set(np.unique(got[1][-1][np.isfinite(got[1][-1])])) == {0.0, 1.0}
    with pytest.raises(FeatureError):
        frame_matrices(y, 22_050, [base])


def test_pool_segments_many_pools_twins_from_shared_sums_to_the_bit(monkeypatch) -> None:
    """A fusion's members that differ only in level_split or read some of another's views are pooled in
    one pass, with the same vectors."""
    import dataclasses

    from voxguard.features import segmental
    from voxguard.features.segmental import pool_segments, pool_segments_many

    sr = 16_000
    y = np.concatenate([speechlike(sr, 3.0, seed=11), np.zeros(sr * 5, np.float32), speechlike(sr, 3.0, seed=12)])
    base = SegmentalConfig(views=("lfcc_4_7k_hann", "band_flatness_7k"), gate_db=40.0, drop_delta_means=True)
    configs = [
        base,
        dataclasses.replace(base, level_split="halves"),
        dataclasses.replace(base, level_split="loud", stats=("mean",)),
        dataclasses.replace(base, gate_db=None),  # another frame group: pooled alone
        dataclasses.replace(base, level_split="loud-quarter", floor_gate_db=6.0),  # its own kept frames
        dataclasses.replace(base, level_split="halves", floor_gate_db=6.0),
        # A router reading the same views and more: the "halves" configs above pool from its pass.
        dataclasses.replace(base, views=(*base.views, "lfbe_7k"), level_split="halves"),
        dataclasses.replace(base, views=("band_flatness_7k",)),  # a subset, unsplit: from the same pass
    ]
    matrices = frame_matrices(y, sr, configs)
    bounds = segment_bounds(len(y), sr, 4.0, 2.0)
    expected = [pool_segments(m, bounds, c) for m, c in zip(matrices, configs, strict=True)]
    calls = []
    original = segmental._level_sums
    monkeypatch.setattr(segmental, "_level_sums", lambda *a, **k: calls.append(1) or original(*a, **k))
    got = pool_segments_many(matrices, bounds, configs)
    # One pass per level split and floor gate; the unsplit twins and the "halves" config read the
    # router's "halves" pass (without it: 5 passes).
    assert len(calls) == 4
    for want, have, cfg in zip(expected, got, configs, strict=True):
        assert have.shape == (len(bounds), len(cfg.vector_names()))
        np.testing.assert_array_equal(have, want)
    assert np.isnan(got[0]).all(axis=1).any()  # the silent stretch stays NaN for the twin too


def _level_pools_copied(frames: np.ndarray, level_split: str) -> np.ndarray:
    """The split matrix as masked copies of the frames, one row block per pool (the plain definition)."""
    base, code = frames[:-1], frames[-1]
    kept = np.isfinite(code)
    loud = kept & (code > 0.5)
    pools = [loud, kept & ~loud] if level_split == "halves" else [kept, loud]
    return np.concatenate([np.where(m, base, np.nan) for m in pools], axis=0)


@pytest.mark.parametrize("level_split", ["halves", "loud", "loud-quarter"])
def test_level_split_pooling_equals_pooling_masked_copies(level_split: str) -> None:
    """pool_segments pools each level pool through a frame mask; the vectors equal pooling masked copies."""
    import dataclasses

    from voxguard.features.segmental import pool_segments

    sr = 16_000
    y = np.concatenate([speechlike(sr, 3.0, seed=9), np.zeros(sr * 5, np.float32), speechlike(sr, 2.0, seed=10)])
    cfg = dataclasses.replace(
        SegmentalConfig(views=("lfcc_4_7k_hann", "band_flatness_7k"), gate_db=40.0), level_split=level_split
    )
    frames = frame_matrix(y, sr, cfg)
    bounds = segment_bounds(len(y), sr, 4.0, 2.0)
    whole = segment_vectors(
        _level_pools_copied(frames, level_split), bounds, cfg.hop_length, cfg.stats, empty_as_nan=True
    )
    mask = cfg.column_mask()
    expected = whole if mask is None else whole[:, mask]
    got = pool_segments(frames, bounds, cfg)
    assert got.shape == (len(bounds), len(cfg.vector_names()))
    np.testing.assert_array_equal(got, expected)
    assert np.isnan(got).all(axis=1).any()  # the silent stretch: a segment with no frame at all
    assert np.isfinite(got).all(axis=1).sum() >= 2
    with pytest.raises(FeatureError, match="whole frames"):
        partly = frames[:-1].copy()
        partly[0, 5] = np.nan
        segment_vectors(partly, bounds, cfg.hop_length, frame_mask=np.ones(partly.shape[1], bool))
