"""Feature extraction over a dataset: cache hits by content, config-keyed misses, failures, parallel runs."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from signals import speechlike
from voxguard.audio import PreprocessConfig
from voxguard.datasets import (
    Dataset,
    FeatureCache,
    FeatureConfig,
    Item,
    content_hash,
    default_cache_dir,
    extract_features,
    mean_std_pool,
)
from voxguard.errors import FeatureError
from voxguard.features import registry

SR = 16_000


@pytest.fixture
def clips(tmp_path) -> Dataset:
    """Three short speech-like clips (one spoof) and one text file posing as audio."""
    items = []
    for i, (label, f0) in enumerate((("bonafide", 110.0), ("spoof", 180.0), ("bonafide", 140.0))):
        p = tmp_path / "audio" / f"clip{i}.wav"
        p.parent.mkdir(parents=True, exist_ok=True)
        sf.write(p, speechlike(SR, 0.8, f0=f0, seed=i), SR, subtype="PCM_16")
        items.append(Item(p, label, "bonafide" if label == "bonafide" else "x", "bonafide" if i != 1 else "x"))
    bad = tmp_path / "audio" / "broken.wav"
    bad.write_text("this is not audio at all\n" * 20)
    items.insert(2, Item(bad, "spoof", "x", "x"))
    return Dataset(items, name="clips", root=tmp_path)


@pytest.fixture
def counted(monkeypatch):
    """Count calls of the feature extractor (in this process)."""
    calls: list[str] = []
    real = registry.extract

    def extract(kind, y, sr):
        calls.append(kind)
        return real(kind, y, sr)

    monkeypatch.setattr(registry, "extract", extract)
    return calls


def run(ds, cache, **kw):
    kw.setdefault("kind", "mfcc")
    return extract_features(ds, cache_dir=cache, progress=False, **kw)


def test_second_run_hits_the_cache(clips, counted, tmp_path):
    cache = tmp_path / "cache"
    first = run(clips, cache)
    assert len(counted) == 3 and (first.n_computed, first.n_cached) == (3, 0)
    second = run(clips, cache)
    assert len(counted) == 3, "the extractor ran again on cached files"
    assert (second.n_computed, second.n_cached) == (0, 3)
    for a, b in zip(first.features, second.features, strict=True):
        if a is None:
            assert b is None
            continue
        np.testing.assert_array_equal(a.values, b.values)
        np.testing.assert_array_equal(a.times_s, b.times_s)
        assert a.columns == b.columns
    assert second.audio_s == pytest.approx(first.audio_s) and first.audio_s == pytest.approx(2.4, abs=0.05)
    # entries are plain .npz files that load without pickle
    entries = sorted(cache.rglob("*.npz"))
    assert len(entries) == 3
    with np.load(entries[0], allow_pickle=False) as z:
        assert {"values", "columns", "times_s", "meta"} <= set(z.files)


def test_changed_config_misses(clips, counted, tmp_path):
    cache = tmp_path / "cache"
    run(clips, cache)
    run(clips, cache, preprocess_config=PreprocessConfig(target_lufs=-20.0))
    assert len(counted) == 6
    run(clips, cache, kind="lfcc")
    assert counted[-3:] == ["lfcc"] * 3
    run(clips, cache, preprocess_config=PreprocessConfig(target_lufs=-20.0))
    assert len(counted) == 9  # each config keeps its own entries
    a = FeatureConfig("mfcc", PreprocessConfig())
    assert a.digest() == FeatureConfig("mfcc").digest()
    assert a.digest() != FeatureConfig("mfcc", PreprocessConfig(dither_seed=1)).digest()


def test_same_content_under_another_name_hits(clips, counted, tmp_path):
    cache = tmp_path / "cache"
    run(clips, cache)
    copy = tmp_path / "elsewhere" / "renamed.flac.wav"
    copy.parent.mkdir()
    shutil.copy(clips[0].path, copy)
    assert content_hash(copy) == content_hash(clips[0].path) != content_hash(clips[1].path)
    out = run(Dataset([Item(copy, "bonafide", "bonafide", "bonafide")]), cache)
    assert out.n_cached == 1 and len(counted) == 3


def test_bad_file_is_reported_and_the_rest_processed(clips, tmp_path):
    (tmp_path / "audio" / "gone.wav").write_bytes(b"")
    ds = clips + Dataset([Item(tmp_path / "audio" / "missing.wav", "spoof", "x", "x")])
    out = run(ds, tmp_path / "cache", use_cache=False)
    assert [(f.index, f.path.name, f.code) for f in out.failures] == [
        (2, "broken.wav", "not_audio"),
        (4, "missing.wav", "not_found"),
    ]
    assert all(f.message for f in out.failures) and out.failures[0].to_dict()["error"] == "not_audio"
    assert [f is not None for f in out.features] == [True, True, False, True, False]
    assert list(out.ok) == [0, 1, 3]
    assert not (tmp_path / "cache").exists()  # use_cache=False writes nothing


def test_pooled_vectors(clips, tmp_path):
    tables = run(clips, tmp_path / "cache")
    with pytest.raises(ValueError, match="pool="):
        tables.to_arrays()
    out = run(clips, tmp_path / "cache", pool=mean_std_pool)
    X, y, idx = out.to_arrays()
    n_cols = len(tables.features[0].columns)
    assert X.shape == (3, 2 * n_cols) and list(y) == [0, 1, 0] and list(idx) == [0, 1, 3]
    np.testing.assert_allclose(X[0, :n_cols], tables.features[0].values.mean(axis=0), rtol=1e-5, atol=1e-5)


def test_two_workers_match_one(clips, tmp_path):
    one = run(clips, tmp_path / "c1", workers=1)
    # Separate caches, so both really compute; 12 items exceed the pool's window of 8 pending tasks.
    two = run(clips + clips + clips, tmp_path / "c2", workers=2)
    assert two.n_computed + two.n_cached == 9 and [f.index for f in two.failures] == [2, 6, 10]
    for a, b in zip(one.features * 3, two.features, strict=True):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_array_equal(a.values, b.values)


def test_progress_goes_to_stderr(clips, tmp_path, capsys):
    extract_features(clips, "mfcc", cache_dir=tmp_path / "cache", progress=True)
    captured = capsys.readouterr()
    assert "4/4" in captured.err and captured.out == ""


def test_cache_location_and_damaged_entries(clips, tmp_path, monkeypatch):
    monkeypatch.setenv("VOXGUARD_CACHE", str(tmp_path / "envcache"))
    assert default_cache_dir() == tmp_path / "envcache"
    monkeypatch.delenv("VOXGUARD_CACHE")
    assert default_cache_dir() == Path.home() / ".cache" / "voxguard" / "features"
    cache = FeatureCache(FeatureConfig("mfcc"), tmp_path / "cache")
    key = content_hash(clips[0].path)
    run(clips[:1], tmp_path / "cache")
    assert cache.get(key) is not None and (cache.dir / "config.json").is_file()
    cache.path(key).write_bytes(b"garbage")  # a damaged entry is a miss, then rewritten
    assert cache.get(key) is None
    assert run(clips[:1], tmp_path / "cache").n_computed == 1 and cache.get(key) is not None


def test_unknown_kind_fails_early(clips, tmp_path):
    with pytest.raises(FeatureError, match="unknown feature kind"):
        run(clips, tmp_path / "cache", kind="nope")
