"""The manifest CSV: the DEV corpus' index (``../shared/corpus/manifest.csv``) and voxguard's export format.

Columns (see the corpus' ``SOURCES.md``)::

    path,label,system,attack_type,speaker,dataset,source_repo,license,sample_rate,duration_s,
    codec,family,utt_group,source_path,source_commit,note

Only ``path`` and ``label`` are required. ``path`` is relative to the manifest's folder (an
absolute path is kept as is). ``system``, ``family``, ``speaker``, ``utt_group`` and ``dataset``
fill the :class:`~voxguard.datasets.base.Item` fields; every other column, including columns
beyond the standard ones, goes into ``Item.extra`` (empty cells are left out, so a dataset
round-trips through :func:`write_manifest` / :func:`load_manifest` unchanged).
"""

from __future__ import annotations

import csv
import os
import warnings
from pathlib import Path
from typing import Literal

from voxguard.datasets.base import (
    BONAFIDE,
    Dataset,
    DatasetError,
    Item,
    absolute_path,
    check_missing_policy,
    normalise_label,
)

__all__ = ["MANIFEST_COLUMNS", "load_manifest", "write_manifest"]

#: The standard columns, in the order :func:`write_manifest` writes them.
MANIFEST_COLUMNS = (
    "path",
    "label",
    "system",
    "attack_type",
    "speaker",
    "dataset",
    "source_repo",
    "license",
    "sample_rate",
    "duration_s",
    "codec",
    "family",
    "utt_group",
    "source_path",
    "source_commit",
    "note",
)
_ITEM_COLUMNS = ("path", "label", "system", "family", "speaker", "utt_group", "dataset")
_REQUIRED = ("path", "label")


def load_manifest(
    path: str | os.PathLike[str],
    *,
    name: str | None = None,
    missing: Literal["error", "skip", "keep"] = "error",
) -> Dataset:
    """Read a manifest CSV.

    Parameters
    ----------
    path : path
        The CSV file, or a folder that holds ``manifest.csv``.
    name : str, optional
        Dataset name; default the manifest's folder name.
    missing : {"error", "skip", "keep"}
        What to do with a row whose audio file does not exist: raise :class:`DatasetError`
        (default), drop it with a warning, or keep it without checking.

    Returns
    -------
    Dataset
        Items in file order, with absolute paths; ``root`` is the manifest's folder.

    Raises
    ------
    DatasetError
        Missing file or required column, a row with the wrong number of cells, an unknown label
        or a missing audio file, with the manifest's path and line number.
    """
    policy = check_missing_policy(missing)
    mpath = Path(path)
    if mpath.is_dir():
        mpath = mpath / "manifest.csv"
    if not mpath.is_file():
        raise DatasetError("manifest not found", path=mpath)
    root = absolute_path(mpath.parent)
    items: list[Item] = []
    skipped = 0
    with open(mpath, newline="", encoding="utf-8-sig") as f:  # -sig: tolerate a BOM from spreadsheets
        reader = csv.reader(f)
        try:
            header = next(reader)
        except StopIteration:
            raise DatasetError("manifest is empty (no header line)", path=mpath, line=1) from None
        header = [h.strip() for h in header]
        absent = [c for c in _REQUIRED if c not in header]
        if absent:
            raise DatasetError(
                f"manifest header lacks column(s) {', '.join(absent)} (found: {', '.join(header)})",
                path=mpath,
                line=1,
            )
        for row in reader:
            line = reader.line_num
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != len(header):
                raise DatasetError(
                    f"expected {len(header)} cells, found {len(row)} (an unquoted comma?)", path=mpath, line=line
                )
            rec = dict(zip(header, row, strict=True))
            rel = rec["path"].strip()
            if not rel:
                raise DatasetError("empty path", path=mpath, line=line)
            audio = Path(rel) if os.path.isabs(rel) else root / rel
            if policy != "keep" and not audio.is_file():
                if policy == "error":
                    raise DatasetError(f"audio file not found: {audio}", path=mpath, line=line)
                skipped += 1
                continue
            label = normalise_label(rec["label"], path=mpath, line=line)
            default = BONAFIDE if label == BONAFIDE else "unknown"
            system = rec.get("system", "").strip() or default
            items.append(
                Item(
                    path=audio,
                    label=label,
                    system=system,
                    family=rec.get("family", "").strip() or (default if label == BONAFIDE else system),
                    speaker=rec.get("speaker", "").strip(),
                    utt_group=rec.get("utt_group", "").strip(),
                    dataset=rec.get("dataset", "").strip(),
                    extra={k: v for k, v in rec.items() if k not in _ITEM_COLUMNS and v != ""},
                )
            )
    if skipped:
        warnings.warn(f"{mpath}: {skipped} row(s) skipped because their audio file is missing", stacklevel=2)
    return Dataset(items, name=name or root.name, root=root)


def write_manifest(dataset: Dataset, path: str | os.PathLike[str]) -> Path:
    """Write ``dataset`` as a manifest CSV that :func:`load_manifest` reads back unchanged.

    Paths under the manifest's folder are written relative to it, others as absolute paths.
    The standard columns come first, then any other ``extra`` key in sorted order. Values are
    written with ``str``; loaders keep ``extra`` values as strings so they round-trip exactly.

    Returns
    -------
    Path
        The written file.
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    folder = absolute_path(out.parent)
    others = sorted({k for it in dataset for k in it.extra} - set(MANIFEST_COLUMNS))
    columns = [*MANIFEST_COLUMNS, *others]
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(columns)
        for it in dataset:
            p = absolute_path(it.path)
            try:
                rel = p.relative_to(folder).as_posix()
            except ValueError:
                rel = p.as_posix()
            row = []
            for c in columns:
                if c == "path":
                    row.append(rel)
                elif c in _ITEM_COLUMNS:
                    row.append(str(getattr(it, c)))
                else:
                    v = it.extra.get(c, "")
                    row.append("" if v is None else str(v))
            writer.writerow(row)
    os.replace(tmp, out)  # never leave a half-written manifest behind
    return out
