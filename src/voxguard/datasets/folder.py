"""A plain folder layout: real clips under a ``real/`` folder, fakes under a ``fake/`` folder.

Recognised class folder names (case-insensitive): ``real``, ``bonafide``, ``bona_fide``,
``bona-fide``, ``genuine`` for bona fide; ``fake``, ``spoof``, ``spoofed``, ``deepfake`` for spoof.
They may sit at any depth (``data/train/REAL/...``); an audio file belongs to the class folder
closest to it. Files outside every class folder are ignored (with a warning).

Examples of accepted trees::

    clips/real/a.wav                  -> bonafide
    clips/fake/elevenlabs/b.mp3       -> spoof, system "elevenlabs"
    clips/train/Fake/x/y/c.flac       -> spoof, system "x", extra["subset"] = "train"

For spoof, ``system`` is the first sub-folder under the class folder (``"unknown"`` for files
directly in it) and ``family`` comes from :func:`~voxguard.datasets.families.family_from_name`.
For bona fide, ``system == family == "bonafide"`` and the first sub-folder, if any, is kept in
``extra["source"]``. The folders above the class folder are kept in ``extra["subset"]``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from typing import Literal

from voxguard.datasets.base import (
    AUDIO_EXTENSIONS,
    BONAFIDE,
    SPOOF,
    Dataset,
    DatasetError,
    Item,
    absolute_path,
    iter_audio_files,
)
from voxguard.datasets.families import family_from_name

__all__ = ["CLASS_FOLDERS", "class_of_folder", "load_folder"]

#: Folder name (lower case) -> label.
CLASS_FOLDERS: dict[str, str] = {
    "real": BONAFIDE,
    "bonafide": BONAFIDE,
    "bona_fide": BONAFIDE,
    "bona-fide": BONAFIDE,
    "genuine": BONAFIDE,
    "fake": SPOOF,
    "spoof": SPOOF,
    "spoofed": SPOOF,
    "deepfake": SPOOF,
}


def class_of_folder(name: str) -> str | None:
    """``"bonafide"``, ``"spoof"`` or ``None`` for a folder name."""
    return CLASS_FOLDERS.get(name.lower())


def load_folder(
    root: str | os.PathLike[str],
    *,
    name: str | None = None,
    utt_group: Literal["path", "stem"] = "path",
    extensions: Sequence[str] = AUDIO_EXTENSIONS,
) -> Dataset:
    """Read a ``real/`` vs ``fake/`` folder tree (see the module docstring).

    Parameters
    ----------
    root : path
        Top of the tree.
    name : str, optional
        Dataset name (also each item's ``dataset``); default the folder's name.
    utt_group : {"path", "stem"}
        ``"path"`` (default): every file is its own group. ``"stem"``: files with the same name
        stem (``fake/melgan/LJ001-0001.wav`` and ``real/LJ001-0001.wav``) share a group, for
        layouts where fakes are named after their source recording.
    extensions : sequence of str
        File endings counted as audio.

    Raises
    ------
    DatasetError
        ``root`` is not a folder, or holds no audio file in a class folder.
    """
    top = absolute_path(root)
    if not top.is_dir():
        raise DatasetError("not a folder", path=top)
    dsname = name or top.name
    items: list[Item] = []
    ignored = 0
    for f in iter_audio_files(top, extensions):
        parts = f.relative_to(top).parts[:-1]
        idx = next((i for i in range(len(parts) - 1, -1, -1) if class_of_folder(parts[i])), None)
        if idx is None:
            ignored += 1
            continue
        label = class_of_folder(parts[idx])
        sub = parts[idx + 1] if idx + 1 < len(parts) else ""
        extra: dict[str, str] = {}
        if idx > 0:
            extra["subset"] = "/".join(parts[:idx])
        if label == BONAFIDE:
            system = family = BONAFIDE
            if sub:
                extra["source"] = sub
        else:
            system = sub or "unknown"
            family = family_from_name(sub) if sub else "unknown"
        rel = f.relative_to(top).with_suffix("").as_posix()
        group = f"{dsname}:{f.stem}" if utt_group == "stem" else f"{dsname}:{rel}"
        items.append(Item(f, label, system, family, "", group, dsname, extra))
    if not items:
        raise DatasetError("no audio files found under a real/bonafide/genuine or fake/spoof/deepfake folder", path=top)
    if ignored:
        warnings.warn(f"{top}: {ignored} audio file(s) outside any real/fake folder were ignored", stacklevel=2)
    return Dataset(items, name=dsname, root=top)
