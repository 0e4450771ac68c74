"""Turn command-line arguments into a list of inputs: files, directories, glob patterns and ``-``.

Directory expansion keeps a file when its extension is an audio one *or* its first bytes are an
audio container's signature (so a ``.dat`` WAV is found). Other files are skipped silently only
when the extension is clearly not audio (text, data, images, documents, archives); anything
else is kept, tried, and reported as a failure, so that a mislabelled recording is never ignored
without a word. Hidden files and folders (names starting with ``.``) are skipped. Inputs are
returned in a stable order (per argument, paths sorted), without duplicates.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from voxguard.audio.decode import _looks_like_audio
from voxguard.scan.result import ErrorInfo

# fmt: off
#: Extensions of formats libsndfile or FFmpeg decode.
AUDIO_EXTENSIONS = frozenset({
    ".wav", ".wave", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".mp4", ".aac", ".webm", ".mka",
    ".mkv", ".aif", ".aiff", ".aifc", ".caf", ".au", ".snd", ".amr", ".3gp", ".3ga", ".wma", ".asf",
    ".w64", ".rf64", ".spx", ".ac3", ".mov", ".ra", ".voc", ".sd2", ".gsm",
})
#: Extensions skipped silently by a directory walk (clearly not audio).
NON_AUDIO_EXTENSIONS = frozenset({
    ".txt", ".md", ".rst", ".json", ".jsonl", ".csv", ".tsv", ".yaml", ".yml", ".toml", ".ini", ".cfg",
    ".xml", ".html", ".htm", ".log", ".py", ".sh", ".ipynb", ".npy", ".npz", ".pkl", ".pt", ".onnx",
    ".parquet", ".h5", ".lab", ".textgrid", ".srt", ".vtt", ".pdf", ".doc", ".docx", ".xls", ".xlsx",
    ".png", ".jpg", ".jpeg", ".gif", ".svg", ".bmp", ".tif", ".tiff", ".webp", ".zip", ".tar", ".gz",
    ".bz2", ".xz", ".7z", ".db", ".sqlite",
})
# fmt: on
_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class ScanInput:
    """One thing to scan.

    Attributes
    ----------
    name : str
        How it is reported (the path as found, ``"-"`` for standard input).
    source : str or bytes
        A path, or the bytes read from standard input.
    error : ErrorInfo or None
        Set when the argument itself is already known to fail (a pattern matching nothing).
    """

    name: str
    source: str | bytes
    error: ErrorInfo | None = None


def _head(path: Path, n: int = 16) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(n)
    except OSError:
        return b""


def keep_in_walk(path: Path) -> bool:
    """Whether a file found by a directory walk should be scanned (see module docstring)."""
    suffix = path.suffix.lower()
    if suffix in AUDIO_EXTENSIONS:
        return True
    if _looks_like_audio(_head(path)):
        return True
    return suffix not in NON_AUDIO_EXTENSIONS


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def walk_directory(root: Path, *, recursive: bool = False) -> list[Path]:
    """Files under ``root`` to scan, sorted (top level only unless ``recursive``)."""
    found = root.rglob("*") if recursive else root.iterdir()
    return sorted(p for p in found if p.is_file() and not _hidden(p, root) and keep_in_walk(p))


def _is_pattern(arg: str) -> bool:
    return any(ch in _GLOB_CHARS for ch in arg)


def expand_inputs(
    args: Iterable[str],
    *,
    recursive: bool = False,
    read_stdin: Callable[[], bytes] | None = None,
) -> list[ScanInput]:
    """Expand command-line arguments into inputs.

    Parameters
    ----------
    args : iterable of str
        Files, directories, glob patterns (``*``, ``?``, ``[...]``; ``**`` with ``recursive``)
        and ``-`` for standard input.
    recursive : bool
        Walk directories (and ``**`` in patterns) recursively.
    read_stdin : callable, optional
        Returns the bytes of standard input (default: ``sys.stdin.buffer.read``). Read whole:
        decoders need to seek.

    Returns
    -------
    list of ScanInput
        A missing file is kept (its scan fails with ``not_found``); a pattern that matches
        nothing becomes an input carrying that error.
    """
    items: list[ScanInput] = []
    seen: set[str] = set()

    def add(name: str, source: str | bytes, error: ErrorInfo | None = None) -> None:
        key = os.path.normpath(name) if isinstance(source, str) and error is None else f"\0{name}"
        if key not in seen:
            seen.add(key)
            items.append(ScanInput(name, source, error))

    for arg in args:
        if arg == "-":
            if read_stdin is None:
                import sys

                read_stdin = sys.stdin.buffer.read
            add("-", read_stdin())
            continue
        path = Path(arg)
        if path.is_dir():
            for p in walk_directory(path, recursive=recursive):
                add(str(p), str(p))
        elif not path.exists() and _is_pattern(arg):
            matches = sorted(glob.glob(arg, recursive=recursive))
            if not matches:
                add(arg, arg, ErrorInfo("not_found", "no file matches this pattern"))
            for m in matches:
                mp = Path(m)
                if mp.is_dir():
                    for p in walk_directory(mp, recursive=recursive):
                        add(str(p), str(p))
                elif mp.is_file():
                    add(m, m)
        else:
            add(arg, arg)  # a file, or a missing path whose scan reports not_found
    return items
