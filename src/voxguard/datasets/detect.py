"""``load_dataset``: one entry point for the CLI that recognises a corpus from its path.

Recognised without a format prefix (checked in this order):

1. a ``.csv`` file with ``path`` and ``label`` columns, or a folder with ``manifest.csv``: manifest;
2. a folder with ``ASVspoof2019_LA_cm_protocols`` (here or in ``LA/``): ASVspoof 2019 LA;
3. a folder with ``ASVspoof2021_{LA,DF}_eval*`` or 2021 keys: ASVspoof 2021;
4. a ``meta.csv`` with ``file,speaker,label`` (or a folder holding it, or ``release_in_the_wild/``):
   In-the-Wild;
5. a folder with ``KAGGLE/AUDIO`` or ``AUDIO/{REAL,FAKE}``: DEEP-VOICE;
6. a folder with ``training``/``validation``/``testing`` holding ``real``/``fake``: Fake-or-Real;
7. anything with ``real``/``fake`` (or bonafide/spoof, ...) folders: the plain folder layout.

WaveFake and MLAAD need the real-speech folders as keyword arguments, and any format can be forced
with a prefix: ``"mlaad:/data/MLAAD"`` plus ``real="/data/M-AILABS"``; ``"asvspoof2021:/data/DF"``
plus ``track="DF"``. A mapping ``{"format": "mlaad", "path": ..., "real": ...}`` works too.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from voxguard.datasets.asvspoof import (
    find_asvspoof2019_root,
    find_asvspoof2021_keys,
    load_asvspoof2019,
    load_asvspoof2021,
)
from voxguard.datasets.base import Dataset, DatasetError, absolute_path
from voxguard.datasets.corpora import (
    _child,
    _for_split_dirs,
    load_deep_voice,
    load_fake_or_real,
    load_in_the_wild,
    load_mlaad,
    load_wavefake,
)
from voxguard.datasets.folder import class_of_folder, load_folder
from voxguard.datasets.manifest import load_manifest

__all__ = ["LOADERS", "detect_format", "load_dataset"]

#: Format name -> loader ``(path, **options) -> Dataset``.
LOADERS: dict[str, Callable[..., Dataset]] = {
    "manifest": load_manifest,
    "folder": load_folder,
    "asvspoof2019": load_asvspoof2019,
    "asvspoof2021": load_asvspoof2021,
    "wavefake": load_wavefake,
    "in_the_wild": load_in_the_wild,
    "fake_or_real": load_fake_or_real,
    "deep_voice": load_deep_voice,
    "mlaad": load_mlaad,
}


def _csv_header(path: Path) -> list[str]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            return [h.strip().lower() for h in next(csv.reader(f), [])]
    except (OSError, UnicodeDecodeError):
        return []


def _has_class_folders(top: Path, max_depth: int = 4) -> bool:
    """Whether a real/fake-style folder exists within ``max_depth`` levels (bounded: corpora are big)."""
    level = [top]
    for _ in range(max_depth):
        nxt: list[Path] = []
        for d in level:
            try:
                children = [c for c in d.iterdir() if c.is_dir()]
            except OSError:
                continue
            if any(class_of_folder(c.name) for c in children):
                return True
            nxt += children
        level = nxt
    return False


def detect_format(path: str | os.PathLike[str]) -> str:
    """Name of the :data:`LOADERS` entry that reads ``path`` (see the module docstring).

    Raises
    ------
    DatasetError
        The path does not exist or matches no known layout.
    """
    p = absolute_path(path)
    if p.is_file():
        header = _csv_header(p)
        if {"path", "label"} <= set(header):
            return "manifest"
        if {"file", "speaker", "label"} <= set(header):
            return "in_the_wild"
        raise DatasetError("file is neither a manifest (path,label,...) nor an In-the-Wild meta.csv", path=p)
    if not p.is_dir():
        raise DatasetError("dataset path not found", path=p)
    if (p / "manifest.csv").is_file():
        return "manifest"
    if find_asvspoof2019_root(p) is not None:
        return "asvspoof2019"
    if any(c.name.startswith(("ASVspoof2021_LA_eval", "ASVspoof2021_DF_eval")) for c in p.iterdir()) or (
        find_asvspoof2021_keys(p) is not None
    ):
        return "asvspoof2021"
    for meta in (p / "meta.csv", p / "release_in_the_wild" / "meta.csv"):
        if meta.is_file() and {"file", "speaker", "label"} <= set(_csv_header(meta)):
            return "in_the_wild"
    kaggle = _child(p, "KAGGLE")
    if (kaggle is not None and _child(kaggle, "AUDIO") is not None) or (
        (a := _child(p, "AUDIO")) is not None and _child(a, "REAL") is not None
    ):
        return "deep_voice"
    if any(_child(d, c) is not None for _, d in _for_split_dirs(p) for c in ("real", "fake")):
        return "fake_or_real"
    if _has_class_folders(p):
        return "folder"
    raise DatasetError(
        "unrecognised dataset layout: expected a manifest CSV, ASVspoof protocols/keys, In-the-Wild meta.csv, "
        "DEEP-VOICE, Fake-or-Real or real/fake folders; prefix the path with a format "
        f"({', '.join(LOADERS)}), e.g. 'mlaad:PATH'",
        path=p,
    )


def load_dataset(spec: str | os.PathLike[str] | Mapping[str, Any], **options: Any) -> Dataset:
    """Load a corpus from a path, a ``"format:path"`` string or a mapping.

    Parameters
    ----------
    spec : str, path or mapping
        ``"corpus/manifest.csv"``, ``"/data/LA"`` (auto-detected), ``"wavefake:/data/generated_audio"``
        (forced format), or ``{"format": "wavefake", "path": ..., "ljspeech": ...}``.
    **options
        Passed to the loader (``real=``, ``ljspeech=``, ``track=``, ``missing=``, ``name=`` ...).

    Returns
    -------
    Dataset

    Raises
    ------
    DatasetError
        Unknown format, unrecognised layout, or any loader error.
    """
    fmt: str | None = None
    if isinstance(spec, Mapping):
        opts = dict(spec)
        try:
            path = opts.pop("path")
        except KeyError:
            raise DatasetError("dataset spec mapping needs a 'path'") from None
        fmt = opts.pop("format", None)
        options = {**opts, **options}
    else:
        path = os.fspath(spec)
        head, sep, tail = str(path).partition(":")
        # Only a known format name counts as a prefix (so "C:\\data" or "./a:b" stay paths).
        if sep and head.lower() in LOADERS:
            fmt, path = head.lower(), tail
    if fmt is None:
        fmt = detect_format(path)
    elif fmt not in LOADERS:
        raise DatasetError(f"unknown dataset format {fmt!r}; choose from {', '.join(LOADERS)}")
    return LOADERS[fmt](path, **options)
