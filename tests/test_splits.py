"""Splits: every item assigned once, no group straddles, deterministic with a seed, both classes present."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voxguard.datasets import (
    Dataset,
    DatasetError,
    Item,
    Split,
    corpus_split,
    cross_corpus_split,
    group_kfold,
    group_split,
    leave_one_family_out,
    random_split,
)

FAMILIES = ("hifigan", "melgan", "vits", "autovc")


def toy(n_utts: int = 60, seed: int = 0, corpus: str = "c") -> Dataset:
    """Utterances with a real recording and 0-3 fakes of random families; 12 speakers, two corpora.

    VC fakes get another (target) speaker of the same corpus, so grouping by speaker alone does
    not keep an utterance together but speaker+utt_group does (6 components).
    """
    rng = np.random.default_rng(seed)
    items = []
    for u in range(n_utts):
        spk = f"spk{u % 12}"
        ds = f"{corpus}{u % 2}"
        items.append(Item(Path(f"/toy/{corpus}/u{u}_real.wav"), "bonafide", "bonafide", "bonafide", spk, f"u{u}", ds))
        for k in range(int(rng.integers(0, 4))):
            fam = FAMILIES[int(rng.integers(len(FAMILIES)))]
            target = f"spk{(u % 12) ^ 2}" if fam == "autovc" else spk  # VC into a paired speaker
            path = Path(f"/toy/{corpus}/u{u}_{fam}_{k}.wav")
            items.append(Item(path, "spoof", f"{fam}_v1", fam, target, f"u{u}", ds))
    return Dataset(items, name=f"toy_{corpus}", root="/toy")


def assert_partition(split: Split, n: int) -> None:
    split.check()
    parts = [getattr(split, p) for p in ("train", "validation", "test", "unused")]
    assert sum(len(p) for p in parts) == n
    assert len(np.unique(np.concatenate(parts))) == n  # every item exactly once


def assert_no_straddle(ds: Dataset, split: Split, by) -> None:
    groups = ds.groups(by)
    where = split.partition_of()
    for g in np.unique(groups):
        sides = set(where[groups == g]) - {"unused"}
        assert len(sides) <= 1, f"group {g} in {sides}"


def assert_both_classes(ds: Dataset, idx: np.ndarray) -> None:
    assert set(ds.labels()[idx]) == {0, 1}


def test_random_split_stratified_and_deterministic():
    ds = toy()
    y = ds.labels()
    a = random_split(ds, test_size=0.25, validation_size=0.15, seed=3)
    assert_partition(a, len(ds))
    for part, frac in (("test", 0.25), ("validation", 0.15)):
        idx = getattr(a, part)
        for c in (0, 1):
            assert abs(np.sum(y[idx] == c) - frac * np.sum(y == c)) <= 1
    b = random_split(ds, test_size=0.25, validation_size=0.15, seed=3)
    np.testing.assert_array_equal(a.test, b.test)
    assert not np.array_equal(a.test, random_split(ds, test_size=0.25, validation_size=0.15, seed=4).test)
    assert "WARNING" in a.description and "leak" in a.description


@pytest.mark.parametrize("by", ["utt_group", "speaker", ("speaker", "utt_group")])
def test_group_split_keeps_groups_together(by):
    ds = toy()
    split = group_split(ds, by=by, test_size=0.2, validation_size=0.2, seed=1)
    assert_partition(split, len(ds))
    assert_no_straddle(ds, split, by)
    for part in ("train", "validation", "test"):
        assert_both_classes(ds, getattr(split, part))
    # approximate sizes: groups are indivisible
    assert 0.08 < len(split.test) / len(ds) < 0.35
    again = group_split(ds, by=by, test_size=0.2, validation_size=0.2, seed=1)
    np.testing.assert_array_equal(split.test, again.test)
    np.testing.assert_array_equal(split.validation, again.validation)


def test_grouping_by_both_columns_is_stricter_than_either():
    ds = toy()
    split = group_split(ds, by=("speaker", "utt_group"), seed=2)
    assert_no_straddle(ds, split, "speaker")
    assert_no_straddle(ds, split, "utt_group")
    # speaker alone lets a VC fake (another target speaker) leave its source utterance's side
    n_both = len(np.unique(ds.groups(("speaker", "utt_group"))))
    assert n_both < len(np.unique(ds.groups("speaker"))) or n_both < len(np.unique(ds.groups("utt_group")))
    assert "union-find" in split.description


def test_group_kfold_each_group_tested_once():
    ds = toy()
    folds = list(group_kfold(ds, 4, by="utt_group", seed=0))
    assert len(folds) == 4
    tested = np.concatenate([f.test for f in folds])
    assert sorted(tested) == list(range(len(ds)))  # every item in exactly one test fold
    for f in folds:
        assert_partition(f, len(ds))
        assert_no_straddle(ds, f, "utt_group")
        assert_both_classes(ds, f.test)
        assert_both_classes(ds, f.train)
    assert [f.params["fold"] for f in folds] == [0, 1, 2, 3]
    np.testing.assert_array_equal(folds[2].test, list(group_kfold(ds, 4, seed=0))[2].test)
    with pytest.raises(ValueError, match="n_splits"):
        next(group_kfold(ds, 1))


def test_leave_one_family_out():
    ds = toy()
    fam = ds.column("family")
    y = ds.labels()
    folds = list(leave_one_family_out(ds, by="utt_group", seed=0))
    assert [f.params["family"] for f in folds] == sorted(FAMILIES)
    bona_test = []
    for f in folds:
        family = f.params["family"]
        assert_partition(f, len(ds))
        assert_no_straddle(ds, f, "utt_group")
        # every fake of the family is in test, none in train
        assert set(np.flatnonzero((fam == family) & (y == 1))) <= set(f.test)
        assert not np.any(fam[f.train] == family)
        assert set(fam[f.test[y[f.test] == 1]]) == {family}
        assert_both_classes(ds, f.test)
        assert_both_classes(ds, f.train)
        bona_test.append(set(f.test[y[f.test] == 0]))
    # bona fide spread across folds by group: test bona fide sets are disjoint and cover all bona fide
    assert sum(len(b) for b in bona_test) == len(set().union(*bona_test)) == int(np.sum(y == 0))
    assert min(len(b) for b in bona_test) > 0.5 * max(len(b) for b in bona_test)
    only = list(leave_one_family_out(ds, families=["vits"]))
    assert len(only) == 1
    with pytest.raises(ValueError, match="no spoof items of family"):
        next(leave_one_family_out(ds, families=["wavenet"]))


def test_corpus_split_and_cross_corpus():
    # one c1 clip of a c0 speaker: that speaker's c0 items must not be trained on
    ds = toy() + Dataset([Item(Path("/toy/x.wav"), "spoof", "s", "vits", "spk0", "x", "c1")])
    split = corpus_split(ds, train="c0", test=["c1"], by="speaker", validation_size=0.2, seed=0)
    assert_partition(split, len(ds))
    col = ds.column("dataset")
    assert set(col[split.train]) | set(col[split.validation]) == {"c0"} and set(col[split.test]) == {"c1"}
    assert_no_straddle(ds, split, "speaker")  # the shared speakers' training items are unused
    assert len(split.unused) > 0 and "left unused" in split.description
    assert len(split.validation) > 0
    with pytest.raises(ValueError, match="both train and test"):
        corpus_split(ds, train="c0", test=["c0"])

    a, b = toy(30, seed=1, corpus="a"), toy(20, seed=2, corpus="b")
    joined, split = cross_corpus_split(a, b)
    assert len(joined) == len(a) + len(b) and joined.name == "toy_a+toy_b"
    np.testing.assert_array_equal(split.train, np.arange(len(a)))
    np.testing.assert_array_equal(split.test, np.arange(len(a), len(joined)))


def test_split_json_round_trip_and_resolve(tmp_path):
    ds = toy()
    split = group_split(ds, by="utt_group", test_size=0.3, validation_size=0.1, seed=5)
    path = split.save(tmp_path / "s.json")
    back = Split.load(path)
    for p in ("train", "validation", "test", "unused"):
        np.testing.assert_array_equal(getattr(back, p), getattr(split, p))
    assert back.ids == ds.ids() and back.description == split.description and back.params["seed"] == 5
    import json

    data = json.loads(path.read_text())
    assert data["test"] == [ds.ids()[i] for i in split.test] and data["method"] == "group_split"
    # the same split re-applied to a reordered dataset follows the ids
    rev = ds[::-1]
    moved = back.resolve(rev)
    assert sorted(rev.ids()[i] for i in moved.test) == sorted(data["test"])
    assert set(moved.subsets(rev)["test"]) == set(split.subsets(ds)["test"])
    with pytest.raises(DatasetError, match="not in dataset"):
        back.resolve(ds[:10])
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(DatasetError, match="not a voxguard split"):
        Split.load(tmp_path / "bad.json")


def test_class_presence_is_repaired_on_small_data():
    # 6 spoof groups and 6 bona fide groups: a 10% test set still gets both classes
    items = [Item(Path(f"/s/{i}.wav"), "spoof" if i < 6 else "bonafide", "s", "f", "", f"g{i}") for i in range(12)]
    ds = Dataset(items)
    for seed in range(5):
        split = group_split(ds, test_size=0.1, seed=seed)
        assert_both_classes(ds, split.test)
        assert_both_classes(ds, split.train)


@settings(max_examples=40, deadline=None)
@given(
    groups=st.lists(st.tuples(st.integers(0, 15), st.integers(0, 15), st.booleans()), min_size=4, max_size=60),
    seed=st.integers(0, 2**16),
)
def test_property_no_straddle_and_complete(groups, seed):
    items = [
        Item(Path(f"/p/{i}.wav"), "spoof" if spoof else "bonafide", "s", "f", f"s{s}", f"u{u}")
        for i, (s, u, spoof) in enumerate(groups)
    ]
    ds = Dataset(items)
    split = group_split(ds, by=("speaker", "utt_group"), test_size=0.3, validation_size=0.1, seed=seed)
    assert_partition(split, len(ds))
    assert_no_straddle(ds, split, ("speaker", "utt_group"))
    np.testing.assert_array_equal(
        split.test, group_split(ds, by=("speaker", "utt_group"), test_size=0.3, validation_size=0.1, seed=seed).test
    )


@pytest.mark.corpus
def test_dev_corpus_splits(corpus):
    from voxguard.datasets import load_manifest

    ds = load_manifest(corpus / "manifest.csv")
    split = group_split(ds, by=("speaker", "utt_group"), test_size=0.2, validation_size=0.1, seed=0)
    assert_no_straddle(ds, split, ("speaker", "utt_group"))
    folds = list(leave_one_family_out(ds, by="utt_group"))
    assert len(folds) == 21
    for f in folds:
        assert_partition(f, len(ds))
        assert_no_straddle(ds, f, "utt_group")
        assert_both_classes(ds, f.test)
