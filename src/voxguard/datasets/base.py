"""The one dataset model every loader returns: :class:`Item` (one clip) and :class:`Dataset`.

Every corpus, whatever its on-disk layout, becomes a :class:`Dataset` of :class:`Item` objects with
the same fields, so splits, feature caching, training and reports work on any of them.

Conventions
-----------
- ``label`` is ``"bonafide"`` or ``"spoof"``; :meth:`Dataset.labels` codes them as 0/1 with
  **1 = spoof** (the positive class of every voxguard detector and metric).
- Bona fide items have ``system == family == "bonafide"`` (as in the DEV corpus manifest).
- A spoof whose generator is not known has ``system == family == "unknown"``.
- An empty ``speaker`` or ``utt_group`` means *unknown*: grouping treats each such item as its own
  group (an unknown speaker must not merge every unlabelled clip into one giant group).
- ``extra`` holds whatever else the source says (codec, subset, language, ...), as strings.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, overload

import numpy as np

from voxguard.errors import VoxguardError

__all__ = [
    "AUDIO_EXTENSIONS",
    "BONAFIDE",
    "ITEM_FIELDS",
    "LABELS",
    "SPOOF",
    "Dataset",
    "DatasetError",
    "Item",
    "absolute_path",
    "connected_groups",
    "normalise_label",
]

BONAFIDE = "bonafide"
SPOOF = "spoof"
LABELS = (BONAFIDE, SPOOF)

#: File name endings treated as audio by the folder-based loaders (compared case-insensitively).
AUDIO_EXTENSIONS = (
    ".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aac", ".aif", ".aiff", ".webm", ".amr", ".au",
    ".wma", ".mp4",
)  # fmt: skip

# Spellings found in public corpora ("bona-fide" in In-the-Wild, "genuine" in older ASVspoof).
_LABEL_ALIASES = {
    "bonafide": BONAFIDE,
    "bona-fide": BONAFIDE,
    "bona fide": BONAFIDE,
    "bona_fide": BONAFIDE,
    "genuine": BONAFIDE,
    "real": BONAFIDE,
    "human": BONAFIDE,
    "spoof": SPOOF,
    "spoofed": SPOOF,
    "fake": SPOOF,
    "deepfake": SPOOF,
    "synthetic": SPOOF,
}


class DatasetError(VoxguardError):
    """A corpus could not be read: missing file, malformed protocol/manifest line, unknown layout.

    Attributes
    ----------
    path : str or None
        The file (manifest, protocol) or folder at fault.
    line : int or None
        1-based line number in ``path`` (the header of a CSV is line 1).
    """

    code = "dataset_error"
    http_status = 422

    def __init__(self, message: str, *, path: str | os.PathLike[str] | None = None, line: int | None = None):
        self.line = line
        where = None if path is None else (f"{os.fspath(path)}:{line}" if line is not None else os.fspath(path))
        super().__init__(message, path=where)
        # Keep the bare file in ``path`` for programs; the line number has its own attribute.
        self.path = None if path is None else os.fspath(path)

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "line": self.line}


def normalise_label(value: str, *, path: str | os.PathLike[str] | None = None, line: int | None = None) -> str:
    """Map a corpus' label spelling to ``"bonafide"`` or ``"spoof"``.

    Raises
    ------
    DatasetError
        The value is not a known spelling of either class.
    """
    key = value.strip().lower()
    try:
        return _LABEL_ALIASES[key]
    except KeyError:
        raise DatasetError(
            f"unknown label {value!r}; expected one of {', '.join(LABELS)}", path=path, line=line
        ) from None


@dataclass(frozen=True)
class Item:
    """One audio clip and what is known about it.

    Attributes
    ----------
    path : Path
        Where the audio is (absolute, or relative to the working directory).
    label : {"bonafide", "spoof"}
    system : str
        The generator (e.g. ``"hifigan_v1"``, ``"A07"``); ``"bonafide"`` for real speech.
    family : str
        Generator family for leave-one-family-out evaluation; ``"bonafide"`` for real speech.
    speaker : str
        Speaker id (for voice conversion the *target* speaker); ``""`` when unknown.
    utt_group : str
        Key shared by a real recording and every fake made from it; ``""`` when unknown.
    dataset : str
        The corpus the recording comes from.
    extra : dict
        Everything else (codec, subset, language, ...). Not part of the hash.
    """

    path: Path
    label: str
    system: str
    family: str
    speaker: str = ""
    utt_group: str = ""
    dataset: str = ""
    extra: dict[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        # Frozen: normalise through object.__setattr__ so loaders may pass str paths.
        object.__setattr__(self, "path", Path(self.path))
        if self.label not in LABELS:
            object.__setattr__(self, "label", normalise_label(str(self.label), path=self.path))

    @property
    def is_spoof(self) -> bool:
        return self.label == SPOOF

    def get(self, column: str, default: Any = "") -> Any:
        """Value of a field or of an ``extra`` key (``default`` when absent)."""
        if column in ITEM_FIELDS and column != "extra":
            return getattr(self, column)
        return self.extra.get(column, default)


#: Names of :class:`Item`'s fields, in order.
ITEM_FIELDS = tuple(f.name for f in fields(Item))


def absolute_path(path: str | os.PathLike[str]) -> Path:
    """Absolute, normalised path (``..`` folded) without resolving symlinks (links in corpora stay)."""
    return Path(os.path.abspath(path))


def _as_columns(by: str | Sequence[str]) -> tuple[str, ...]:
    return (by,) if isinstance(by, str) else tuple(by)


def connected_groups(values: Sequence[Sequence[str]]) -> np.ndarray:
    """Union-find over several grouping columns: items sharing *any* non-empty value are joined.

    Parameters
    ----------
    values : sequence of sequences of str
        One sequence per column, each with one value per item. Empty strings mean "unknown" and
        link nothing.

    Returns
    -------
    np.ndarray, shape (n_items,), int64
        Component id of each item, numbered 0, 1, ... in order of first appearance.
    """
    n = len(values[0]) if values else 0
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]  # path halving keeps the trees flat
            i = parent[i]
        return i

    for col_index, col in enumerate(values):
        first: dict[str, int] = {}
        for i, v in enumerate(col):
            if v == "":
                continue
            # Prefix with the column so that equal strings in different columns do not link.
            key = f"{col_index}\0{v}"
            j = first.setdefault(key, i)
            if j != i:
                ri, rj = find(i), find(j)
                if ri != rj:
                    parent[max(ri, rj)] = min(ri, rj)
    roots = [find(i) for i in range(n)]
    codes: dict[int, int] = {}
    return np.array([codes.setdefault(r, len(codes)) for r in roots], dtype=np.int64)


class Dataset(Sequence[Item]):
    """An ordered, immutable collection of :class:`Item` objects.

    Parameters
    ----------
    items : iterable of Item
    name : str
        Short name used in reports and split files.
    root : path, optional
        Folder the item ids are relative to (the manifest's folder, the corpus root).

    Examples
    --------
    >>> ds = load_manifest("corpus/manifest.csv")           # doctest: +SKIP
    >>> y = ds.labels()                                     # 1 = spoof
    >>> vctk = ds.filter(dataset="vctk")
    >>> no_hifigan = ds.exclude(family="hifigan")
    >>> groups = ds.groups("utt_group")                     # for sklearn's GroupKFold
    """

    def __init__(self, items: Iterable[Item], *, name: str = "dataset", root: str | os.PathLike[str] | None = None):
        self._items: tuple[Item, ...] = tuple(items)
        for it in self._items:
            if not isinstance(it, Item):
                raise TypeError(f"Dataset holds Item objects, got {type(it).__name__}")
        self.name = name
        self.root = None if root is None else Path(root)

    # --- sequence protocol -------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._items)

    @overload
    def __getitem__(self, index: int) -> Item: ...

    @overload
    def __getitem__(self, index: slice | Sequence[int] | np.ndarray) -> Dataset: ...

    def __getitem__(self, index: int | slice | Sequence[int] | np.ndarray) -> Item | Dataset:
        if isinstance(index, (int, np.integer)):
            return self._items[int(index)]
        if isinstance(index, slice):
            return self._derive(self._items[index])
        return self.subset(index)

    def __iter__(self) -> Iterator[Item]:
        return iter(self._items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Dataset) and self._items == other._items

    __hash__ = None  # type: ignore[assignment]  # mutable name/root: not hashable

    def __repr__(self) -> str:
        c = Counter(it.label for it in self._items)
        return f"Dataset({self.name!r}, {len(self)} items: {c[BONAFIDE]} bonafide, {c[SPOOF]} spoof)"

    def __add__(self, other: Dataset) -> Dataset:
        return Dataset.concat([self, other])

    # --- construction --------------------------------------------------------------------------

    def _derive(self, items: Iterable[Item], name: str | None = None) -> Dataset:
        return Dataset(items, name=name or self.name, root=self.root)

    @classmethod
    def concat(cls, datasets: Sequence[Dataset], *, name: str | None = None) -> Dataset:
        """Join datasets (e.g. to train on corpus A and test on corpus B, see :mod:`.splits`).

        The root becomes the deepest folder common to every part's root (``None`` if there is none).
        """
        roots = [d.root for d in datasets]
        root: Path | None = None
        if roots and all(r is not None for r in roots):
            try:
                root = Path(os.path.commonpath([str(absolute_path(r)) for r in roots if r is not None]))
            except ValueError:  # different drives
                root = None
        items = [it for d in datasets for it in d]
        return cls(items, name=name or "+".join(d.name for d in datasets), root=root)

    def subset(self, indices: Sequence[int] | np.ndarray) -> Dataset:
        """The items at ``indices`` (integer positions, or a boolean mask of length ``len(self)``)."""
        idx = np.asarray(indices)
        if idx.dtype == bool:
            if idx.shape != (len(self),):
                raise ValueError(f"boolean mask has shape {idx.shape}, expected ({len(self)},)")
            idx = np.flatnonzero(idx)
        return self._derive(self._items[int(i)] for i in idx.reshape(-1))

    # --- columns -------------------------------------------------------------------------------

    @property
    def items(self) -> tuple[Item, ...]:
        return self._items

    def column(self, name: str) -> np.ndarray:
        """Values of a field or ``extra`` key for every item, ``(n_items,)`` object array of str.

        ``"path"`` gives the path as a string; a missing ``extra`` key gives ``""``.
        """
        return np.array([str(it.get(name)) for it in self._items], dtype=object)

    def labels(self) -> np.ndarray:
        """Binary targets, ``(n_items,)`` int64: **1 = spoof**, 0 = bona fide."""
        return np.fromiter((it.label == SPOOF for it in self._items), dtype=np.int64, count=len(self))

    def ids(self) -> list[str]:
        """Stable string id of each item: its path relative to :attr:`root` (POSIX), else absolute."""
        return [self.item_id(it) for it in self._items]

    def item_id(self, item: Item) -> str:
        path = absolute_path(item.path)
        if self.root is not None:
            try:
                return path.relative_to(absolute_path(self.root)).as_posix()
            except ValueError:
                pass
        return path.as_posix()

    def groups(self, by: str | Sequence[str]) -> np.ndarray:
        """Integer group code of every item, usable as scikit-learn's ``groups`` argument.

        Parameters
        ----------
        by : str or sequence of str
            One column (``"speaker"``, ``"utt_group"``, ``"dataset"``, an ``extra`` key ...) or
            several: items sharing a value in *any* of them end up in one group (union-find), e.g.
            ``("speaker", "utt_group")`` keeps both a speaker and a recording with its fakes together.
            An empty value means unknown and makes the item its own group.

        Returns
        -------
        np.ndarray, shape (n_items,), int64
            Codes 0, 1, ... in order of first appearance.
        """
        cols = _as_columns(by)
        return connected_groups([[str(it.get(c)) for it in self._items] for c in cols])

    def counts(self, column: str) -> dict[str, int]:
        """Number of items per value of ``column``, most common first."""
        return dict(Counter(str(it.get(column)) for it in self._items).most_common())

    def split_by(self, column: str) -> dict[str, Dataset]:
        """One sub-dataset per value of ``column`` (in order of first appearance)."""
        out: dict[str, list[Item]] = {}
        for it in self._items:
            out.setdefault(str(it.get(column)), []).append(it)
        return {k: self._derive(v, name=f"{self.name}[{column}={k}]") for k, v in out.items()}

    # --- filtering -----------------------------------------------------------------------------

    def _mask(self, predicate: Callable[[Item], bool] | None, criteria: Mapping[str, Any]) -> np.ndarray:
        tests: list[Callable[[Item], bool]] = [] if predicate is None else [predicate]
        for col, want in criteria.items():
            tests.append(_criterion(col, want))
        return np.fromiter((all(t(it) for t in tests) for it in self._items), dtype=bool, count=len(self))

    def filter(self, predicate: Callable[[Item], bool] | None = None, /, **criteria: Any) -> Dataset:
        """Keep the items that satisfy ``predicate`` and every ``column=value`` criterion.

        A criterion's value may be a string (equality), a collection of strings (membership), a
        compiled regular expression (search) or a callable applied to the value.

        Examples
        --------
        >>> ds.filter(label="spoof", family={"hifigan", "melgan"})     # doctest: +SKIP
        >>> ds.filter(lambda it: it.extra.get("codec", "").startswith("flac"))  # doctest: +SKIP
        """
        return self.subset(self._mask(predicate, criteria))

    def exclude(self, predicate: Callable[[Item], bool] | None = None, /, **criteria: Any) -> Dataset:
        """The complement of :meth:`filter` with the same arguments."""
        return self.subset(~self._mask(predicate, criteria))

    # --- export --------------------------------------------------------------------------------

    def to_manifest(self, path: str | os.PathLike[str]) -> Path:
        """Write the project's manifest CSV (the DEV corpus format); see :mod:`.manifest`."""
        from voxguard.datasets.manifest import write_manifest

        return write_manifest(self, path)

    def summary(self) -> dict[str, Any]:
        """Counts per label, family, system and dataset (for reports and the CLI)."""
        return {
            "name": self.name,
            "n_items": len(self),
            "label": self.counts("label"),
            "family": self.counts("family"),
            "system": self.counts("system"),
            "dataset": self.counts("dataset"),
        }


def _criterion(column: str, want: Any) -> Callable[[Item], bool]:
    if callable(want) and not isinstance(want, re.Pattern):
        return lambda it: bool(want(it.get(column)))
    if isinstance(want, re.Pattern):
        return lambda it: want.search(str(it.get(column))) is not None
    if isinstance(want, (str, bytes)) or not isinstance(want, Iterable):
        target = str(want)
        return lambda it: str(it.get(column)) == target
    allowed = {str(w) for w in want}
    return lambda it: str(it.get(column)) in allowed


def check_missing_policy(missing: str) -> Literal["error", "skip", "keep"]:
    """Validate a loader's ``missing=`` argument."""
    if missing not in ("error", "skip", "keep"):
        raise ValueError(f"missing must be 'error', 'skip' or 'keep', not {missing!r}")
    return missing  # type: ignore[return-value]


def iter_audio_files(root: Path, extensions: Sequence[str] = AUDIO_EXTENSIONS) -> Iterator[Path]:
    """Audio files under ``root`` at any depth, in a deterministic (sorted) order."""
    exts = {e.lower() for e in extensions}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()  # os.walk order is filesystem-dependent; sorting makes loaders reproducible
        for fn in sorted(filenames):
            if not fn.startswith(".") and os.path.splitext(fn)[1].lower() in exts:
                yield Path(dirpath) / fn
