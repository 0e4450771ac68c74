"""Deterministic train/validation/test splits that keep related clips on one side.

Every function takes a :class:`~voxguard.datasets.base.Dataset` and a ``seed`` and returns
:class:`Split` objects (index arrays into the dataset, plus the item ids and a description of how
the split was made), which save to and load from JSON.

Why grouping matters: public corpora hold a real recording next to its vocoded or converted
copies, one speaker in many clips, and overlapping windows of one recording. A split that puts a
clip in training and its twin in test measures memorisation of the recording, not detection. So:

- :func:`random_split` — stratified by label, item by item. Only safe when items are independent;
  its description says so.
- :func:`group_split` — whole groups (``utt_group``, ``speaker``, or both via union-find: items
  sharing a speaker *or* an utterance group are one group) go to one side; stratified by label as
  far as the groups allow.
- :func:`group_kfold` — the same as k folds.
- :func:`leave_one_family_out` — one fold per generator family: its fakes are the test set,
  together with a share of the bona fide groups, so each fold has both classes.
- :func:`corpus_split` / :func:`cross_corpus_split` — train on corpus A, test on corpus B.

Group assignment is greedy and deterministic: groups are shuffled with the seed, taken largest
first, and each goes to the partition furthest below its target count (per class when
stratified); a final pass moves a small group where a partition lacks a class.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from voxguard.datasets.base import Dataset, DatasetError

__all__ = [
    "PARTITIONS",
    "Split",
    "corpus_split",
    "cross_corpus_split",
    "group_kfold",
    "group_split",
    "leave_one_family_out",
    "random_split",
]

PARTITIONS = ("train", "validation", "test", "unused")
_FORMAT = "voxguard-split"
_LEAK_WARNING = (
    "WARNING: items were assigned one by one, so overlapping windows of one recording and paired "
    "real/fake copies of one utterance (or one speaker's clips) can straddle train and test and leak; "
    "use group_split(by='utt_group') or by=('speaker', 'utt_group') for such data."
)


def _idx(a: Any) -> np.ndarray:
    return np.sort(np.asarray(a, dtype=np.int64).reshape(-1))


@dataclass
class Split:
    """A partition of a dataset's items into train / validation / test (/ unused).

    Attributes
    ----------
    train, validation, test : np.ndarray of int64
        Sorted indices into the dataset.
    unused : np.ndarray of int64
        Items deliberately left out (e.g. fakes that share an utterance with a test item in a
        leave-one-family-out fold). Every item is in exactly one of the four arrays.
    ids : list of str
        Id of every item of the dataset (:meth:`Dataset.ids`), in dataset order; lets a saved
        split be re-applied to a reloaded or reordered dataset (:meth:`resolve`).
    method : str
        Name of the function that made it.
    params : dict
        Its arguments (seed, sizes, grouping columns, ...), JSON-serialisable.
    description : str
        Human-readable account of how it was made, with caveats.
    dataset : str
        The dataset's name.
    """

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    unused: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    ids: list[str] = field(default_factory=list)
    method: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    dataset: str = ""

    def __post_init__(self) -> None:
        for p in PARTITIONS:
            setattr(self, p, _idx(getattr(self, p)))

    @property
    def n_items(self) -> int:
        return len(self.ids) if self.ids else sum(len(getattr(self, p)) for p in PARTITIONS)

    @property
    def sizes(self) -> dict[str, int]:
        return {p: len(getattr(self, p)) for p in PARTITIONS}

    def partition_of(self) -> np.ndarray:
        """``(n_items,)`` array of partition names (``"train"``, ... ``"unused"``)."""
        out = np.full(self.n_items, "", dtype=object)
        for p in PARTITIONS:
            out[getattr(self, p)] = p
        return out

    def check(self) -> None:
        """Raise ``ValueError`` unless every item is in exactly one partition."""
        all_idx = np.concatenate([getattr(self, p) for p in PARTITIONS])
        if len(all_idx) != self.n_items or not np.array_equal(np.sort(all_idx), np.arange(self.n_items)):
            raise ValueError(f"split does not assign each of {self.n_items} items exactly once")

    def subsets(self, dataset: Dataset) -> dict[str, Dataset]:
        """The partitions as datasets (``{"train": ..., "validation": ..., "test": ..., "unused": ...}``)."""
        if len(dataset) != self.n_items:
            raise DatasetError(f"split is for {self.n_items} items, dataset has {len(dataset)}; use resolve()")
        return {p: dataset.subset(getattr(self, p)) for p in PARTITIONS}

    # --- serialisation -------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        ids = self.ids
        return {
            "format": _FORMAT,
            "version": 1,
            "dataset": self.dataset,
            "method": self.method,
            "params": self.params,
            "description": self.description,
            "n_items": self.n_items,
            "sizes": self.sizes,
            **{p: [ids[i] for i in getattr(self, p)] if ids else [] for p in PARTITIONS},
            "indices": {p: getattr(self, p).tolist() for p in PARTITIONS},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Split:
        if data.get("format") != _FORMAT:
            raise DatasetError(f"not a voxguard split (format {data.get('format')!r})")
        n = int(data["n_items"])
        ids = [""] * n
        for p in PARTITIONS:
            for i, item_id in zip(data["indices"][p], data.get(p) or [], strict=False):
                ids[i] = item_id
        return cls(
            **{p: np.asarray(data["indices"][p], dtype=np.int64) for p in PARTITIONS},
            ids=ids if all(ids) else [],
            method=data.get("method", ""),
            params=data.get("params", {}),
            description=data.get("description", ""),
            dataset=data.get("dataset", ""),
        )

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the split as JSON (item ids per partition, indices, method, params, description)."""
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(self.to_dict(), indent=1) + "\n", encoding="utf-8")
        return out

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Split:
        """Read a split written by :meth:`save`."""
        p = Path(path)
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise DatasetError(f"cannot read split: {e}", path=p) from None
        return cls.from_dict(data)

    def resolve(self, dataset: Dataset) -> Split:
        """The same split with indices re-derived from the item ids for ``dataset``.

        Raises
        ------
        DatasetError
            An id of the split is not in ``dataset`` or a dataset item is not in the split.
        """
        if not self.ids:
            raise DatasetError("split has no item ids to resolve")
        where = {item_id: i for i, item_id in enumerate(dataset.ids())}
        new: dict[str, list[int]] = {}
        for p in PARTITIONS:
            try:
                new[p] = [where[self.ids[i]] for i in getattr(self, p)]
            except KeyError as e:
                raise DatasetError(f"item {e.args[0]!r} of the split is not in dataset {dataset.name!r}") from None
        if sum(len(v) for v in new.values()) != len(dataset):
            raise DatasetError(f"dataset {dataset.name!r} has {len(dataset)} items, the split covers {self.n_items}")
        return Split(
            **{p: np.asarray(v, dtype=np.int64) for p, v in new.items()},
            ids=dataset.ids(),
            method=self.method,
            params=self.params,
            description=self.description,
            dataset=dataset.name,
        )


# --- group assignment ----------------------------------------------------------------------------


def _check_sizes(test_size: float, validation_size: float) -> np.ndarray:
    if not (0 <= test_size < 1 and 0 <= validation_size < 1 and test_size + validation_size < 1):
        raise ValueError("test_size and validation_size must be in [0, 1) and sum to less than 1")
    return np.array([1 - test_size - validation_size, validation_size, test_size])


def _assign(
    comp: np.ndarray, y: np.ndarray, fractions: np.ndarray, rng: np.random.Generator, stratify: bool
) -> np.ndarray:
    """Partition index of every item; whole components stay together (see the module docstring)."""
    n_groups = int(comp.max()) + 1 if len(comp) else 0
    counts = np.zeros((n_groups, 2), dtype=np.int64)
    np.add.at(counts, (comp, y), 1)
    totals = counts.sum(axis=0).astype(float)
    active = np.flatnonzero(fractions > 0)
    target = fractions[:, None] * totals[None, :]  # (n_parts, 2)
    filled = np.zeros_like(target)
    sizes = counts.sum(axis=1)
    order = rng.permutation(n_groups)
    order = order[np.argsort(-sizes[order], kind="stable")]  # largest first, random among equals
    part_of_group = np.zeros(n_groups, dtype=np.int64)
    weight = 1.0 / np.maximum(totals, 1.0)
    for g in order:
        # Stratified: how far each partition is below target for this group's classes, relative
        # to each class' size; otherwise just the shortfall in items.
        gap = target - filled
        deficit = (gap * weight[None, :]) @ counts[g] if stratify else gap.sum(axis=1)
        p = active[np.argmax(deficit[active])]
        part_of_group[g] = p
        filled[p] += counts[g]
    _repair_class_presence(part_of_group, counts, active)
    return part_of_group[comp]


def _repair_class_presence(part_of_group: np.ndarray, counts: np.ndarray, active: np.ndarray) -> None:
    """Move the smallest suitable group into a partition that lacks a class, when another has spare."""
    for c in (0, 1):
        for p in active:
            has = counts[part_of_group == p, c].sum() > 0
            if has:
                continue
            # Donor: the partition with the most groups of class c, if it can spare one.
            n_with = {q: int(np.sum((part_of_group == q) & (counts[:, c] > 0))) for q in active if q != p}
            if not n_with:
                continue
            donor = max(n_with, key=lambda q: n_with[q])
            if n_with[donor] < 2:
                continue
            cand = np.flatnonzero((part_of_group == donor) & (counts[:, c] > 0))
            # Prefer a group that does not strip the donor of the other class.
            other_left = [
                counts[(part_of_group == donor), 1 - c].sum() - counts[g, 1 - c] > 0 or counts[:, 1 - c].sum() == 0
                for g in cand
            ]
            cand = cand[np.asarray(other_left)] if any(other_left) else cand
            g = cand[np.argmin(counts[cand].sum(axis=1))]
            part_of_group[g] = p


def _pct(f: float) -> str:
    return f"{100 * f:.0f}%"


def _make(dataset: Dataset, part: np.ndarray, method: str, params: dict[str, Any], description: str) -> Split:
    return Split(
        train=np.flatnonzero(part == 0),
        validation=np.flatnonzero(part == 1),
        test=np.flatnonzero(part == 2),
        unused=np.flatnonzero(part == 3),
        ids=dataset.ids(),
        method=method,
        params=params,
        description=description,
        dataset=dataset.name,
    )


def _by_list(by: str | Sequence[str]) -> list[str]:
    return [by] if isinstance(by, str) else list(by)


def _largest(comp: np.ndarray) -> int:
    return int(np.bincount(comp).max()) if len(comp) else 0


def _class_note(split: Split, y: np.ndarray) -> str:
    missing = [
        f"{p} has no {'spoof' if c else 'bonafide'}"
        for p in ("train", "validation", "test")
        if len(getattr(split, p))
        for c in (0, 1)
        if not np.any(y[getattr(split, p)] == c)
    ]
    return (" Class presence: " + "; ".join(missing) + ".") if missing else ""


# --- public split functions ----------------------------------------------------------------------


def random_split(
    dataset: Dataset,
    *,
    test_size: float = 0.2,
    validation_size: float = 0.0,
    stratify: bool = True,
    seed: int = 0,
) -> Split:
    """Stratified random split, item by item.

    Only for independent items: overlapping windows or paired real/fake copies leak across it
    (the description carries that warning). Prefer :func:`group_split`.

    Parameters
    ----------
    dataset : Dataset
    test_size, validation_size : float
        Fractions of the items (per class when ``stratify``).
    stratify : bool
        Keep the bona fide/spoof ratio in every partition.
    seed : int

    Returns
    -------
    Split
    """
    fr = _check_sizes(test_size, validation_size)
    y = dataset.labels()
    part = _assign(np.arange(len(dataset)), y, fr, np.random.default_rng(seed), stratify)
    params = {"test_size": test_size, "validation_size": validation_size, "stratify": stratify, "seed": seed}
    desc = (
        f"{'Stratified random' if stratify else 'Random'} split of {len(dataset)} items of {dataset.name!r} "
        f"(seed {seed}): {_pct(fr[0])} train / {_pct(fr[1])} validation / {_pct(fr[2])} test. {_LEAK_WARNING}"
    )
    split = _make(dataset, part, "random_split", params, desc)
    split.description += _class_note(split, y)
    return split


def group_split(
    dataset: Dataset,
    *,
    by: str | Sequence[str] = "utt_group",
    test_size: float = 0.2,
    validation_size: float = 0.0,
    stratify: bool = True,
    seed: int = 0,
) -> Split:
    """Split whole groups: no group has items on two sides.

    Parameters
    ----------
    dataset : Dataset
    by : str or sequence of str
        Grouping column(s). Several columns are joined by union-find: items sharing a value in
        *any* of them form one group (``("speaker", "utt_group")`` keeps a speaker's clips and a
        recording's fakes together even where the fake has another target speaker). Empty values
        are unknown and do not link.
    test_size, validation_size : float
        Target fractions of the items; groups are indivisible, so the result is approximate.
    stratify : bool
        Aim at the same bona fide/spoof ratio in each partition.
    seed : int

    Returns
    -------
    Split
    """
    fr = _check_sizes(test_size, validation_size)
    cols = _by_list(by)
    comp = dataset.groups(cols)
    y = dataset.labels()
    part = _assign(comp, y, fr, np.random.default_rng(seed), stratify)
    n_groups = int(comp.max()) + 1 if len(comp) else 0
    params = {
        "by": cols,
        "test_size": test_size,
        "validation_size": validation_size,
        "stratify": stratify,
        "seed": seed,
    }
    join = " (union-find: items sharing any of these values are one group)" if len(cols) > 1 else ""
    desc = (
        f"Grouped split of {len(dataset)} items of {dataset.name!r} by {'+'.join(cols)}{join}: {n_groups} groups, "
        f"seed {seed}, targets {_pct(fr[0])} train / {_pct(fr[1])} validation / {_pct(fr[2])} test"
        f"{', stratified by label' if stratify else ''}. No group straddles two partitions; sizes are approximate"
        f" (largest group: {_largest(comp)} items)."
    )
    split = _make(dataset, part, "group_split", params, desc)
    split.description += _class_note(split, y)
    return split


def group_kfold(
    dataset: Dataset,
    n_splits: int = 5,
    *,
    by: str | Sequence[str] = "utt_group",
    stratify: bool = True,
    seed: int = 0,
) -> Iterator[Split]:
    """Grouped (and stratified) k-fold: each group is in the test set of exactly one fold.

    Parameters
    ----------
    dataset : Dataset
    n_splits : int
        Number of folds (at least 2, at most the number of groups).
    by, stratify, seed
        As in :func:`group_split`.

    Yields
    ------
    Split
        Fold ``k``: test = the groups assigned to ``k``, train = the rest, no validation.
    """
    cols = _by_list(by)
    comp = dataset.groups(cols)
    n_groups = int(comp.max()) + 1 if len(comp) else 0
    if not 2 <= n_splits <= max(n_groups, 2) or n_splits > n_groups:
        raise ValueError(f"n_splits must be between 2 and the number of groups ({n_groups}), got {n_splits}")
    y = dataset.labels()
    fold = _assign(comp, y, np.full(n_splits, 1.0 / n_splits), np.random.default_rng(seed), stratify)
    for k in range(n_splits):
        part = np.where(fold == k, 2, 0)
        params = {"by": cols, "n_splits": n_splits, "fold": k, "stratify": stratify, "seed": seed}
        desc = (
            f"Grouped {n_splits}-fold split of {dataset.name!r} by {'+'.join(cols)} ({n_groups} groups, seed {seed}"
            f"{', stratified' if stratify else ''}), fold {k + 1} of {n_splits}: test = groups of fold {k + 1}, "
            "train = all other folds. No group straddles train and test."
        )
        split = _make(dataset, part, "group_kfold", params, desc)
        split.description += _class_note(split, y)
        yield split


def leave_one_family_out(
    dataset: Dataset,
    *,
    by: str | Sequence[str] = "utt_group",
    families: Sequence[str] | None = None,
    seed: int = 0,
) -> Iterator[Split]:
    """One fold per spoof family: train without that family, test on it.

    Fold ``k`` (family ``F``): test = every spoof of ``F`` plus the bona fide items of the groups
    whose "home fold" is ``k``; train = every other item whose group has no test item; unused =
    the rest (e.g. fakes of other families made from a test utterance). Each group with bona fide
    items gets one home fold: one of its own fakes' families where it has any (so real recordings
    are tested with their fakes), otherwise whichever fold has the fewest bona fide items so far.
    So bona fide is spread across folds by group and each fold's test set has both classes
    (given at least as many bona fide groups as families).

    Parameters
    ----------
    dataset : Dataset
    by : str or sequence of str
        Grouping column(s), as in :func:`group_split`.
    families : sequence of str, optional
        Families to leave out, one fold each; default every spoof family (sorted).
    seed : int
        Breaks ties in the bona fide assignment.

    Yields
    ------
    Split
    """
    cols = _by_list(by)
    comp = dataset.groups(cols)
    y = dataset.labels()
    fam = dataset.column("family")
    spoof_fams = sorted(set(fam[y == 1]))
    fams = list(families) if families is not None else spoof_fams
    unknown = sorted(set(fams) - set(spoof_fams))
    if unknown:
        raise ValueError(f"no spoof items of family {', '.join(unknown)}")
    if not fams:
        raise ValueError("the dataset has no spoof items")
    fold_of = {f: k for k, f in enumerate(fams)}
    n_groups = int(comp.max()) + 1 if len(comp) else 0
    bona = np.bincount(comp[y == 0], minlength=n_groups)
    group_fams: list[set[int]] = [set() for _ in range(n_groups)]
    for g, f in zip(comp[y == 1], fam[y == 1], strict=True):
        if f in fold_of:
            group_fams[g].add(fold_of[f])
    rng = np.random.default_rng(seed)
    order = rng.permutation(n_groups)
    # Paired groups first (their choice is constrained), then larger before smaller.
    order = order[np.lexsort((-bona[order], [0 if group_fams[g] else 1 for g in order]))]
    load = np.zeros(len(fams))
    home = np.full(n_groups, -1)
    for g in order:
        if bona[g] == 0:
            continue
        cands = sorted(group_fams[g]) or list(range(len(fams)))
        k = min(cands, key=lambda c: (load[c], c))
        home[g] = k
        load[k] += bona[g]
    for k, f in enumerate(fams):
        test = ((y == 1) & (fam == f)) | ((y == 0) & (home[comp] == k))
        touched = np.zeros(n_groups, dtype=bool)
        touched[comp[test]] = True
        part = np.where(test, 2, np.where(touched[comp], 3, 0))
        params = {"by": cols, "family": f, "fold": k, "families": fams, "seed": seed}
        desc = (
            f"Leave-one-family-out fold {k + 1} of {len(fams)} on {dataset.name!r}: test = all spoofs of family "
            f"{f!r} + the bona fide of {int(np.sum(home == k))} {'+'.join(cols)} groups; train = the other families "
            "and the other bona fide groups; unused = items that share a group with a test item but are not "
            "test items themselves."
        )
        split = _make(dataset, part, "leave_one_family_out", params, desc)
        split.description += _class_note(split, y)
        yield split


def _corpus_parts(
    dataset: Dataset, is_tr: np.ndarray, is_te: np.ndarray, cols: list[str], validation_size: float, seed: int
) -> tuple[np.ndarray, int, str]:
    """Partition codes for a train-on-A/test-on-B split, the number of group clashes, and a note."""
    y = dataset.labels()
    part = np.where(is_te, 2, np.where(is_tr, 0, 3))
    comp = dataset.groups(cols) if cols else np.arange(len(dataset))
    conflicts = 0
    note = ""
    if cols:
        touched = np.zeros(int(comp.max()) + 1 if len(comp) else 0, dtype=bool)
        touched[comp[is_te]] = True
        clash = (part == 0) & touched[comp]
        conflicts = int(clash.sum())
        part[clash] = 3
        note += f" {conflicts} training item(s) shared a {'+'.join(cols)} group with a test item and were left unused."
    if validation_size > 0:
        sub = np.flatnonzero(part == 0)
        _, comp_sub = np.unique(comp[sub], return_inverse=True)
        inner = _assign(comp_sub, y[sub], _check_sizes(0.0, validation_size), np.random.default_rng(seed), True)
        part[sub[inner == 1]] = 1
        how = f"by {'+'.join(cols)} groups" if cols else "stratified random (paired copies could leak)"
        note += f" Validation: {_pct(validation_size)} of the training items, {how}, seed {seed}."
    return part, conflicts, note


def corpus_split(
    dataset: Dataset,
    train: str | Sequence[str],
    test: str | Sequence[str],
    *,
    column: str = "dataset",
    by: str | Sequence[str] | None = None,
    validation_size: float = 0.0,
    seed: int = 0,
) -> Split:
    """Train on some corpora, test on others (by the values of ``column``).

    Parameters
    ----------
    dataset : Dataset
    train, test : str or sequence of str
        Values of ``column`` for training and for testing (disjoint). Items with other values
        are unused.
    column : str
        ``"dataset"`` by default; any item field or ``extra`` key.
    by : str or sequence of str, optional
        If given, training items that share a group with a test item (the same speaker in both
        corpora, say) are moved to unused, and the validation part is taken by group.
    validation_size : float
        Fraction of the training items held out for validation (by group if ``by``, else
        stratified random).
    seed : int

    Returns
    -------
    Split
    """
    tr = {train} if isinstance(train, str) else set(train)
    te = {test} if isinstance(test, str) else set(test)
    if tr & te:
        raise ValueError(f"values in both train and test: {', '.join(sorted(tr & te))}")
    col = dataset.column(column)
    cols = _by_list(by) if by is not None else []
    part, _, note = _corpus_parts(dataset, np.isin(col, list(tr)), np.isin(col, list(te)), cols, validation_size, seed)
    params = {
        "train": sorted(tr),
        "test": sorted(te),
        "column": column,
        "by": cols,
        "validation_size": validation_size,
        "seed": seed,
    }
    desc = (
        f"Cross-corpus split of {dataset.name!r} on {column!r}: train = {', '.join(sorted(tr))}; "
        f"test = {', '.join(sorted(te))}; items with other values unused." + note
    )
    split = _make(dataset, part, "corpus_split", params, desc)
    split.description += _class_note(split, dataset.labels())
    return split


def cross_corpus_split(
    train: Dataset,
    test: Dataset,
    *,
    by: str | Sequence[str] | None = None,
    validation_size: float = 0.0,
    seed: int = 0,
) -> tuple[Dataset, Split]:
    """Train on dataset ``train``, test on dataset ``test``.

    Parameters
    ----------
    train, test : Dataset
    by, validation_size, seed
        As in :func:`corpus_split`.

    Returns
    -------
    (Dataset, Split)
        ``Dataset.concat([train, test])`` and the split over it (train items first).
    """
    joined = Dataset.concat([train, test])
    is_te = np.r_[np.zeros(len(train), dtype=bool), np.ones(len(test), dtype=bool)]
    cols = _by_list(by) if by is not None else []
    part, _, note = _corpus_parts(joined, ~is_te, is_te, cols, validation_size, seed)
    params = {"train": train.name, "test": test.name, "by": cols, "validation_size": validation_size, "seed": seed}
    desc = (
        f"Cross-corpus split: train on {train.name!r} ({len(train)} items), "
        f"test on {test.name!r} ({len(test)} items)." + note
    )
    split = _make(joined, part, "cross_corpus_split", params, desc)
    split.description += _class_note(split, joined.labels())
    return joined, split
