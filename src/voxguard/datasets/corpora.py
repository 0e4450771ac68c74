"""Loaders for public deepfake corpora with their own layouts.

=================  ============================================================================
corpus             layout read
=================  ============================================================================
WaveFake           ``<root>/<voice>_<vocoder>/**/<UTT>_gen.wav`` (``ljspeech_melgan``,
                   ``ljspeech_hifiGAN``, ``jsut_multi_band_melgan``, ...); real speech from an
                   LJSpeech (``LJSpeech-1.1/wavs``) and/or JSUT folder passed as arguments
In-the-Wild        ``release_in_the_wild/meta.csv`` (``file,speaker,label``; labels ``spoof`` /
                   ``bona-fide``) next to the audio files
Fake-or-Real       ``[<version>/]{training,validation,testing}/{real,fake}/**`` (for-norm,
                   for-2sec, ...); the split goes to ``extra["split"]``
DEEP-VOICE         ``KAGGLE/AUDIO/REAL/<speaker>-original.wav`` and
                   ``KAGGLE/AUDIO/FAKE/<source>-to-<target>.wav``
MLAAD              ``fake/<language>/<model_name>/*.wav``; real speech (e.g. M-AILABS) from
                   folders passed as arguments
=================  ============================================================================

How the item fields are filled, per corpus:

- **WaveFake**: ``system`` = the vocoder folder name, ``family`` from
  :func:`~voxguard.datasets.families.family_from_name`; ``speaker`` = ``ljspeech`` or ``jsut``
  (single-speaker corpora); ``utt_group`` = ``ljspeech:<UTT>`` / ``jsut:<UTT>``, shared by a real
  recording and its vocoded copies (``LJ001-0001.wav`` and every ``LJ001-0001_gen.wav``).
  ``dataset`` = ``ljspeech`` / ``jsut``, the corpus the voice comes from, as in the DEV manifest.
  The TTS folder ``common_voices_prompts_from_conformer_fastspeech2_pwg_ljspeech`` has no real
  counterpart: each of its files is its own group.
- **In-the-Wild**: ``speaker`` from ``meta.csv``; generators are not annotated, so spoofs have
  ``system == family == "unknown"``; every file is its own group.
- **Fake-or-Real**: speakers and generators are not annotated per file (``""`` / ``"unknown"``);
  every file is its own group. Caveat: for-2sec clips cut from one recording cannot be linked.
- **DEEP-VOICE**: fakes are retrieval-based voice conversion (RVC) of one celebrity's recording
  into another's voice (Bird & Lotfi, 2023), so ``system == family == "rvc"``; ``speaker`` is the
  *target* (``linus`` in ``biden-to-linus.wav``), ``utt_group`` the *source* recording
  (``deep_voice:biden``, shared with ``biden-original.wav``), ``extra["source_speaker"]`` the source.
- **MLAAD**: ``system`` = the model folder name, ``family`` from ``family_from_name``,
  ``extra["language"]`` = the language folder. MLAAD names each clip after the M-AILABS utterance
  whose transcript it speaks, so ``utt_group`` = ``mlaad_text:<stem>`` for fakes and for real files
  alike: a real M-AILABS reading and every synthetic reading of the same text stay together.
  For M-AILABS real data (``<lang>/by_book/<female|male|mix>/<speaker>/<book>/wavs/*.wav``) the
  speaker and language are read from the path.
"""

from __future__ import annotations

import csv
import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from voxguard.datasets.base import (
    AUDIO_EXTENSIONS,
    BONAFIDE,
    SPOOF,
    Dataset,
    DatasetError,
    Item,
    absolute_path,
    check_missing_policy,
    iter_audio_files,
    normalise_label,
)
from voxguard.datasets.families import family_from_name

__all__ = ["load_deep_voice", "load_fake_or_real", "load_in_the_wild", "load_mlaad", "load_wavefake"]

PathLike = str | os.PathLike[str]


def _folder(path: PathLike, what: str) -> Path:
    p = absolute_path(path)
    if not p.is_dir():
        raise DatasetError(f"{what} folder not found", path=p)
    return p


def _child(parent: Path, name: str) -> Path | None:
    """``parent/name`` matched case-insensitively (corpora disagree on ``REAL`` vs ``real``)."""
    exact = parent / name
    if exact.is_dir():
        return exact
    if parent.is_dir():
        for c in sorted(parent.iterdir()):
            if c.is_dir() and c.name.lower() == name.lower():
                return c
    return None


# --- WaveFake -------------------------------------------------------------------------------------

_WAVEFAKE_VOICES = {"ljspeech": ("ljspeech", "en"), "jsut": ("jsut", "ja")}


def _real_single_speaker(folder: PathLike, corpus: str, language: str) -> list[Item]:
    top = _folder(folder, f"{corpus} real-speech")
    wavs = top / "wavs" if (top / "wavs").is_dir() else top  # LJSpeech-1.1/ or LJSpeech-1.1/wavs/
    items = [
        Item(f, BONAFIDE, BONAFIDE, BONAFIDE, corpus, f"{corpus}:{f.stem}", corpus, {"language": language})
        for f in iter_audio_files(wavs)
    ]
    if not items:
        raise DatasetError(f"no audio files in the {corpus} folder", path=wavs)
    return items


def load_wavefake(
    root: PathLike,
    *,
    ljspeech: PathLike | None = None,
    jsut: PathLike | None = None,
    name: str = "wavefake",
) -> Dataset:
    """Read WaveFake's generated audio, plus the real LJSpeech/JSUT recordings if given.

    Parameters
    ----------
    root : path
        The folder holding the vocoder folders (``generated_audio``).
    ljspeech : path, optional
        ``LJSpeech-1.1`` or its ``wavs`` folder.
    jsut : path, optional
        The JSUT folder (``jsut_ver1.1``, or just ``basic5000``); searched recursively.
    name : str

    Raises
    ------
    DatasetError
        A folder is missing or holds no audio.
    """
    top = _folder(root, "WaveFake")
    items: list[Item] = []
    for sub in sorted(p for p in top.iterdir() if p.is_dir()):
        voice = sub.name.split("_", 1)[0].lower()
        files = list(iter_audio_files(sub))
        if not files:
            continue
        family = family_from_name(sub.name)
        if voice in _WAVEFAKE_VOICES:
            corpus, lang = _WAVEFAKE_VOICES[voice]
            paired = True
        else:  # the Common Voice prompts TTS: LJSpeech voice, no source recording
            corpus, lang, paired = "ljspeech", "en", False
        for f in files:
            utt = f.stem[: -len("_gen")] if f.stem.endswith("_gen") else f.stem
            group = (
                f"{corpus}:{utt}" if paired else f"{name}:{sub.name}/{f.relative_to(sub).with_suffix('').as_posix()}"
            )
            items.append(Item(f, SPOOF, sub.name, family, corpus, group, corpus, {"language": lang}))
    if not items:
        raise DatasetError("no vocoder folders with audio (ljspeech_melgan/, jsut_multi_band_melgan/, ...)", path=top)
    if ljspeech is not None:
        items += _real_single_speaker(ljspeech, "ljspeech", "en")
    if jsut is not None:
        items += _real_single_speaker(jsut, "jsut", "ja")
    return Dataset(items, name=name, root=top)


# --- In-the-Wild ----------------------------------------------------------------------------------


def load_in_the_wild(
    root: PathLike,
    *,
    missing: Literal["error", "skip", "keep"] = "error",
    name: str = "in_the_wild",
) -> Dataset:
    """Read In-the-Wild (Müller et al., 2022) from ``release_in_the_wild/meta.csv``.

    Parameters
    ----------
    root : path
        ``release_in_the_wild``, its parent, or the ``meta.csv`` file itself.
    missing : {"error", "skip", "keep"}
        A row whose audio file is absent: raise (default), drop with a warning, or keep.

    Raises
    ------
    DatasetError
        ``meta.csv`` missing, a header without ``file,speaker,label``, a short row, an unknown
        label or a missing file, with the CSV's path and line number.
    """
    policy = check_missing_policy(missing)
    p = absolute_path(root)
    meta = (
        p
        if p.is_file()
        else next((c for c in (p / "meta.csv", p / "release_in_the_wild" / "meta.csv") if c.is_file()), p / "meta.csv")
    )
    if not meta.is_file():
        raise DatasetError("In-the-Wild meta.csv not found", path=meta)
    folder = meta.parent
    items: list[Item] = []
    skipped = 0
    with open(meta, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = [h.strip().lower() for h in next(reader, [])]
        if not {"file", "speaker", "label"} <= set(header):
            raise DatasetError(f"expected header 'file,speaker,label', found {','.join(header)!r}", path=meta, line=1)
        col = {h: i for i, h in enumerate(header)}
        for row in reader:
            line = reader.line_num
            if not row:
                continue
            if len(row) < len(header):
                raise DatasetError(f"expected {len(header)} cells, found {len(row)}", path=meta, line=line)
            file, speaker = row[col["file"]].strip(), row[col["speaker"]].strip()
            label = normalise_label(row[col["label"]], path=meta, line=line)
            audio = folder / file
            if policy != "keep" and not audio.is_file():
                if policy == "error":
                    raise DatasetError(f"audio file not found: {audio}", path=meta, line=line)
                skipped += 1
                continue
            system = BONAFIDE if label == BONAFIDE else "unknown"
            items.append(Item(audio, label, system, system, speaker, f"{name}:{Path(file).stem}", name, {}))
    if skipped:
        warnings.warn(f"{meta}: {skipped} row(s) skipped because their audio file is missing", stacklevel=2)
    return Dataset(items, name=name, root=folder)


# --- Fake-or-Real ---------------------------------------------------------------------------------

_FOR_SPLITS = ("training", "validation", "testing")


def _for_split_dirs(top: Path) -> list[tuple[str, Path]]:
    """(version, split folder) pairs, at ``top`` or one level down (``for-norm/training``)."""
    found = [("", d) for s in _FOR_SPLITS if (d := _child(top, s)) is not None]
    if found:
        return found
    for version in sorted(c for c in top.iterdir() if c.is_dir()):
        found += [(version.name, d) for s in _FOR_SPLITS if (d := _child(version, s)) is not None]
    return found


def load_fake_or_real(root: PathLike, *, name: str = "fake_or_real") -> Dataset:
    """Read Fake-or-Real (Reimao & Tzerpos, 2019): ``{training,validation,testing}/{real,fake}/``.

    Parameters
    ----------
    root : path
        A version folder (``for-norm``, ``for-2seconds``, ...) or a folder holding several; the
        version (if read one level down) goes to ``extra["version"]``, the split folder name to
        ``extra["split"]``.

    Raises
    ------
    DatasetError
        No split folders, or no audio in their real/fake folders.
    """
    top = _folder(root, "Fake-or-Real")
    splits = _for_split_dirs(top)
    if not splits:
        raise DatasetError("no training/validation/testing folders (here or one level down)", path=top)
    items: list[Item] = []
    for version, sdir in splits:
        for cls, label in (("real", BONAFIDE), ("fake", SPOOF)):
            cdir = _child(sdir, cls)
            if cdir is None:
                continue
            system = BONAFIDE if label == BONAFIDE else "unknown"
            for f in iter_audio_files(cdir):
                extra = {"split": sdir.name.lower()}
                if version:
                    extra["version"] = version
                group = f"{name}:{f.relative_to(top).with_suffix('').as_posix()}"
                items.append(Item(f, label, system, system, "", group, name, extra))
    if not items:
        raise DatasetError("no audio files in the real/ and fake/ folders of the splits", path=top)
    return Dataset(items, name=name, root=top)


# --- DEEP-VOICE -----------------------------------------------------------------------------------

_DV_FAKE = re.compile(r"^(?P<source>.+?)-to-(?P<target>.+)$", re.IGNORECASE)


def load_deep_voice(root: PathLike, *, name: str = "deep_voice") -> Dataset:
    """Read the DEEP-VOICE audio (Bird & Lotfi, 2023): ``KAGGLE/AUDIO/{REAL,FAKE}/*.wav``.

    Parameters
    ----------
    root : path
        The dataset folder, ``KAGGLE``, or ``AUDIO``.

    Raises
    ------
    DatasetError
        No ``REAL``/``FAKE`` folders, or a fake whose name is not ``<source>-to-<target>``.
    """
    top = _folder(root, "DEEP-VOICE")
    audio = None
    for cand in (top, _child(top, "AUDIO"), (k := _child(top, "KAGGLE")) and _child(k, "AUDIO")):
        if cand is not None and _child(cand, "REAL") is not None and _child(cand, "FAKE") is not None:
            audio = cand
            break
    if audio is None:
        raise DatasetError("no REAL/ and FAKE/ folders (looked in ., AUDIO/, KAGGLE/AUDIO/)", path=top)
    items: list[Item] = []
    real_dir, fake_dir = _child(audio, "REAL"), _child(audio, "FAKE")
    assert real_dir is not None and fake_dir is not None
    for f in iter_audio_files(real_dir):
        speaker = re.sub(r"-original$", "", f.stem, flags=re.IGNORECASE).lower()
        items.append(Item(f, BONAFIDE, BONAFIDE, BONAFIDE, speaker, f"{name}:{speaker}", name, {}))
    for f in iter_audio_files(fake_dir):
        m = _DV_FAKE.match(f.stem)
        if m is None:
            raise DatasetError("fake file name is not '<source>-to-<target>'", path=f)
        source, target = m["source"].lower(), m["target"].lower()
        items.append(Item(f, SPOOF, "rvc", "rvc", target, f"{name}:{source}", name, {"source_speaker": source}))
    if not items:
        raise DatasetError("no audio files in REAL/ or FAKE/", path=audio)
    return Dataset(items, name=name, root=audio)


# --- MLAAD ----------------------------------------------------------------------------------------

_LANG_DIR = re.compile(r"^[a-z]{2}_[A-Z]{2}$")  # M-AILABS language folders: de_DE, en_UK, ...


def _mailabs_fields(rel_parts: Sequence[str]) -> tuple[str, str]:
    """(speaker, language) from an M-AILABS relative path; ``""`` where it does not say."""
    speaker = language = ""
    for i, part in enumerate(rel_parts):
        if _LANG_DIR.match(part) and not language:
            language = part.split("_")[0]
        if part == "by_book" and i + 2 < len(rel_parts) and rel_parts[i + 1] in ("female", "male"):
            speaker = rel_parts[i + 2]
    return speaker, language


def load_mlaad(
    root: PathLike,
    *,
    real: PathLike | Sequence[PathLike] | None = None,
    real_name: str | None = None,
    name: str = "mlaad",
) -> Dataset:
    """Read MLAAD (Müller et al., 2024): ``fake/<language>/<model_name>/*.wav``, plus real speech.

    Parameters
    ----------
    root : path
        The MLAAD folder (holding ``fake/``) or the ``fake`` folder itself.
    real : path or sequence of paths, optional
        Folders of bona fide speech, e.g. M-AILABS (searched recursively).
    real_name : str, optional
        ``dataset`` of the real items; default ``m_ailabs`` for an M-AILABS tree (``by_book``
        folders), else the folder's name.
    name : str

    Raises
    ------
    DatasetError
        No ``fake/<language>/<model>/`` audio, or a real folder missing or empty.
    """
    top = _folder(root, "MLAAD")
    fake = _child(top, "fake") or top
    items: list[Item] = []
    for lang_dir in sorted(p for p in fake.iterdir() if p.is_dir()):
        for model_dir in sorted(p for p in lang_dir.iterdir() if p.is_dir()):
            family = family_from_name(model_dir.name)
            # Clips sit directly in the model folder; not recursing keeps other trees (an
            # M-AILABS ``<lang>/by_book/...`` passed by mistake) from passing as MLAAD.
            for f in sorted(p for p in model_dir.iterdir() if p.is_file()):
                if f.suffix.lower() not in AUDIO_EXTENSIONS or f.name.startswith("."):
                    continue
                items.append(
                    Item(
                        f, SPOOF, model_dir.name, family, "", f"mlaad_text:{f.stem}", name, {"language": lang_dir.name}
                    )
                )
    if not items:
        raise DatasetError("no audio under fake/<language>/<model_name>/", path=fake)
    reals = [] if real is None else [real] if isinstance(real, (str, os.PathLike)) else list(real)
    for r in reals:
        rtop = _folder(r, "real-speech")
        n_before = len(items)
        for f in iter_audio_files(rtop):
            parts = f.relative_to(rtop).parts
            speaker, language = _mailabs_fields((rtop.name, *parts))
            ds = real_name or ("m_ailabs" if "by_book" in parts or rtop.name == "by_book" else rtop.name)
            extra = {"language": language} if language else {}
            items.append(Item(f, BONAFIDE, BONAFIDE, BONAFIDE, speaker, f"mlaad_text:{f.stem}", ds, extra))
        if len(items) == n_before:
            raise DatasetError("no audio files in the real-speech folder", path=rtop)
    return Dataset(items, name=name, root=top)
