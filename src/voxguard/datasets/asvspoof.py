"""ASVspoof 2019 LA protocols and ASVspoof 2021 LA/DF keys.

ASVspoof 2019 LA
----------------
Layout (as distributed in ``LA.zip``; ``root`` may be the ``LA`` folder or its parent)::

    ASVspoof2019_LA_cm_protocols/ASVspoof2019.LA.cm.{train.trn,dev.trl,eval.trl}.txt
    ASVspoof2019_LA_{train,dev,eval}/flac/<UTTERANCE>.flac

Each protocol line has 5 whitespace-separated columns::

    SPEAKER  UTTERANCE     -  SYSTEM  KEY
    LA_0079  LA_T_1138215  -  -       bonafide
    LA_0079  LA_T_1271820  -  A01     spoof

``system`` is the attack id (A01-A19; ``"bonafide"`` for bona fide), ``family`` and
``extra["attack_type"]`` come from :data:`~voxguard.datasets.families.ASVSPOOF2019_ATTACKS`,
``extra["subset"]`` is ``train``/``dev``/``eval``.

ASVspoof 2021 LA and DF
-----------------------
Audio: ``ASVspoof2021_{LA,DF}_eval/flac/<TRIAL>.flac`` (DF is distributed in four parts,
``ASVspoof2021_DF_eval_part0{0..3}/ASVspoof2021_DF_eval/flac``; all of these are searched).
Keys: ``keys/CM/trial_metadata.txt`` (or ``keys/{LA,DF}/CM/trial_metadata.txt`` as unpacked from
``{LA,DF}-keys-full.tar.gz``, or any file passed as ``keys=``). Column layouts follow the
organisers' evaluation package (``asvspoof-challenge/2021``, ``eval-package/config.py``):

LA, 8 columns::

    speaker trial codec transmission attack label trim subset
    LA_0009 LA_E_9332881 alaw ita_tx A07 spoof notrim eval

DF, 13 columns::

    speaker trial compression source attack label trim subset vocoder task team gender_pair language
    LA_0043 DF_E_2000011 nocodec asvspoof A14 spoof notrim progress traditional_vocoder - - - -

``system`` is the attack column. LA ``family`` comes from the ASVspoof 2019 attack table (the
2021 LA attacks are A07-A19); DF ``family`` is the key's own ``vocoder`` category
(``traditional_vocoder``, ``waveform_concatenation``, ``neural_vocoder_autoregressive``,
``neural_vocoder_nonautoregressive``, ``unknown``), the grouping the organisers report DF results
by (DF also holds VCC 2018/2020 systems that have no A-id). The codec/transmission/compression,
trim, subset and the DF metadata are kept in ``extra`` (``"-"`` cells are left out); ``codec`` is
set for both tracks. The trial id is the ``utt_group``: the keys do not link a trial to its
source utterance.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

from voxguard.datasets.base import (
    BONAFIDE,
    SPOOF,
    Dataset,
    DatasetError,
    Item,
    absolute_path,
    check_missing_policy,
)
from voxguard.datasets.families import ASVSPOOF2019_ATTACKS

__all__ = [
    "ASVSPOOF2019_PROTOCOLS",
    "ASVSPOOF2021_COLUMNS",
    "find_asvspoof2019_root",
    "find_asvspoof2021_keys",
    "load_asvspoof2019",
    "load_asvspoof2021",
]

#: Subset -> protocol file name (inside ``ASVspoof2019_LA_cm_protocols``).
ASVSPOOF2019_PROTOCOLS = {
    "train": "ASVspoof2019.LA.cm.train.trn.txt",
    "dev": "ASVspoof2019.LA.cm.dev.trl.txt",
    "eval": "ASVspoof2019.LA.cm.eval.trl.txt",
}
_PROTOCOL_DIR = "ASVspoof2019_LA_cm_protocols"

#: Column names of the 2021 ``trial_metadata.txt`` keys, per track.
ASVSPOOF2021_COLUMNS = {
    "LA": ("speaker", "trial", "codec", "transmission", "attack", "label", "trim", "subset"),
    "DF": (
        "speaker",
        "trial",
        "compression",
        "source",
        "attack",
        "label",
        "trim",
        "subset",
        "vocoder",
        "task",
        "team",
        "gender_pair",
        "language",
    ),
}
_ATTACK_ID = re.compile(r"^A\d\d$")


def _protocol_lines(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(1-based line number, whitespace-split fields) of the non-blank lines of ``path``."""
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            fields = line.split()
            if fields:
                yield number, fields


def _parse_key(value: str, path: Path, line: int) -> str:
    if value not in (BONAFIDE, SPOOF):
        raise DatasetError(f"key must be 'bonafide' or 'spoof', found {value!r}", path=path, line=line)
    return value


def find_asvspoof2019_root(root: str | os.PathLike[str]) -> Path | None:
    """The folder holding ``ASVspoof2019_LA_cm_protocols`` (``root`` itself or ``root/LA``)."""
    top = absolute_path(root)
    for cand in (top, top / "LA"):
        if (cand / _PROTOCOL_DIR).is_dir():
            return cand
    return None


def load_asvspoof2019(
    root: str | os.PathLike[str],
    *,
    subsets: Sequence[str] | None = None,
    missing: Literal["error", "skip", "keep"] = "error",
    name: str = "asvspoof2019_la",
) -> Dataset:
    """Read ASVspoof 2019 LA (see the module docstring for the layout).

    Parameters
    ----------
    root : path
        The ``LA`` folder or its parent.
    subsets : sequence of {"train", "dev", "eval"}, optional
        Which protocols to read; default every one present.
    missing : {"error", "skip", "keep"}
        A protocol line whose flac file is absent: raise (default), drop with a warning, or keep.
    name : str

    Raises
    ------
    DatasetError
        No protocol folder, a requested protocol missing, a malformed line, or a missing audio
        file, with the protocol's path and line number.
    """
    policy = check_missing_policy(missing)
    base = find_asvspoof2019_root(root)
    if base is None:
        raise DatasetError(f"no {_PROTOCOL_DIR} folder here or in LA/", path=absolute_path(root))
    wanted = list(subsets) if subsets is not None else list(ASVSPOOF2019_PROTOCOLS)
    items: list[Item] = []
    skipped = 0
    found_any = False
    for subset in wanted:
        if subset not in ASVSPOOF2019_PROTOCOLS:
            raise ValueError(
                f"unknown ASVspoof 2019 subset {subset!r}; choose from {', '.join(ASVSPOOF2019_PROTOCOLS)}"
            )
        proto = base / _PROTOCOL_DIR / ASVSPOOF2019_PROTOCOLS[subset]
        if not proto.is_file():
            if subsets is not None:
                raise DatasetError(f"protocol for subset {subset!r} not found", path=proto)
            continue
        found_any = True
        flac_dir = base / f"ASVspoof2019_LA_{subset}" / "flac"
        for line, fields in _protocol_lines(proto):
            if len(fields) != 5:
                raise DatasetError(
                    f"expected 5 columns (SPEAKER UTTERANCE - SYSTEM KEY), found {len(fields)}", path=proto, line=line
                )
            speaker, utt, _, system, key = fields
            label = _parse_key(key, proto, line)
            if label == SPOOF and not _ATTACK_ID.match(system):
                raise DatasetError(f"spoof line needs an attack id A01-A19, found {system!r}", path=proto, line=line)
            if label == BONAFIDE and system != "-":
                raise DatasetError(f"bonafide line has attack id {system!r}; expected '-'", path=proto, line=line)
            audio = flac_dir / f"{utt}.flac"
            if policy != "keep" and not audio.is_file():
                if policy == "error":
                    raise DatasetError(f"audio file not found: {audio}", path=proto, line=line)
                skipped += 1
                continue
            extra = {"subset": subset}
            if label == SPOOF:
                attack_type, family = ASVSPOOF2019_ATTACKS.get(system, ("unknown", system.lower()))
                extra["attack_type"] = attack_type
            else:
                system = family = BONAFIDE
                extra["attack_type"] = BONAFIDE
            items.append(Item(audio, label, system, family, speaker, utt, name, extra))
    if not found_any:
        raise DatasetError(f"no ASVspoof 2019 LA protocol file in {_PROTOCOL_DIR}", path=base / _PROTOCOL_DIR)
    if skipped:
        warnings.warn(f"{base}: {skipped} protocol line(s) skipped because their flac file is missing", stacklevel=2)
    return Dataset(items, name=name, root=base)


def find_asvspoof2021_keys(root: str | os.PathLike[str], track: str | None = None) -> Path | None:
    """Locate ``trial_metadata.txt`` (CM keys) under ``root`` without walking the audio folders."""
    top = absolute_path(root)
    tracks = [track] if track else ["LA", "DF"]
    cands = [top / "keys" / "CM", top / "CM"]
    for t in tracks:
        cands += [
            top / "keys" / t / "CM",
            top / f"{t}-keys-full" / "keys" / t / "CM",
            top / f"{t}-keys-stage-1" / "keys" / "CM",
        ]
    # One level down, for trees such as ``<root>/DF-keys-full/keys/CM``.
    if top.is_dir():
        for child in sorted(top.iterdir()):
            if child.is_dir() and "keys" in child.name.lower():
                cands += [child / "keys" / "CM", child / "CM", *(child / "keys" / t / "CM" for t in tracks)]
    for c in cands:
        if (c / "trial_metadata.txt").is_file():
            return c / "trial_metadata.txt"
    return None


def _flac_index(top: Path, track: str) -> dict[str, Path]:
    """Trial id -> flac path over every ``ASVspoof2021_<track>_eval*`` folder (one listing each)."""
    index: dict[str, Path] = {}
    if not top.is_dir():
        return index
    dirs: list[Path] = []
    for child in sorted(top.iterdir()):
        if child.is_dir() and child.name.startswith(f"ASVspoof2021_{track}_eval"):
            dirs += [child / "flac", child / f"ASVspoof2021_{track}_eval" / "flac"]
    for d in dirs:
        if d.is_dir():
            with os.scandir(d) as it:
                for e in it:
                    if e.name.endswith(".flac"):
                        index.setdefault(e.name[:-5], Path(e.path))
    return index


def load_asvspoof2021(
    root: str | os.PathLike[str],
    *,
    track: Literal["LA", "DF"] | None = None,
    keys: str | os.PathLike[str] | None = None,
    subsets: Sequence[str] | None = None,
    missing: Literal["error", "skip", "keep"] = "error",
    name: str | None = None,
) -> Dataset:
    """Read the ASVspoof 2021 LA or DF evaluation data with its keys (see the module docstring).

    Parameters
    ----------
    root : path
        Folder holding ``ASVspoof2021_<track>_eval*`` (and usually ``keys/``).
    track : {"LA", "DF"}, optional
        Default: inferred from the keys' column count (8 = LA, 13 = DF).
    keys : path, optional
        The ``trial_metadata.txt`` file; default searched under ``root``.
    subsets : sequence of {"eval", "progress", "hidden"}, optional
        Keep only these key subsets; default all.
    missing : {"error", "skip", "keep"}
        A trial whose flac file is absent (e.g. only some DF parts downloaded): raise (default),
        drop with a warning, or keep with the path it would have.
    name : str, optional
        Default ``asvspoof2021_la`` / ``asvspoof2021_df``.

    Raises
    ------
    DatasetError
        Keys not found, a line with the wrong column count or an unknown label, or a missing
        audio file, with the keys file and line number.
    """
    policy = check_missing_policy(missing)
    top = absolute_path(root)
    kpath = absolute_path(keys) if keys is not None else find_asvspoof2021_keys(top, track)
    if kpath is None or not kpath.is_file():
        raise DatasetError("ASVspoof 2021 keys (keys/CM/trial_metadata.txt) not found", path=kpath or top)
    lines = _protocol_lines(kpath)
    first = next(lines, None)
    if first is None:
        raise DatasetError("keys file is empty", path=kpath)
    if track is None:
        by_count = {len(cols): t for t, cols in ASVSPOOF2021_COLUMNS.items()}
        if len(first[1]) not in by_count:
            raise DatasetError(f"expected 8 (LA) or 13 (DF) columns, found {len(first[1])}", path=kpath, line=first[0])
        track = by_count[len(first[1])]  # type: ignore[assignment]
    if track not in ASVSPOOF2021_COLUMNS:
        raise ValueError(f"track must be 'LA' or 'DF', not {track!r}")
    columns = ASVSPOOF2021_COLUMNS[track]
    dsname = name or f"asvspoof2021_{track.lower()}"
    index = _flac_index(top, track)
    if not index and policy != "keep":
        raise DatasetError(f"no flac files in ASVspoof2021_{track}_eval*/ folders", path=top)
    default_dir = top / f"ASVspoof2021_{track}_eval" / "flac"
    keep = None if subsets is None else set(subsets)
    items: list[Item] = []
    skipped = 0

    def rows() -> Iterator[tuple[int, list[str]]]:
        yield first
        yield from lines

    for line, fields in rows():
        if len(fields) != len(columns):
            raise DatasetError(
                f"expected {len(columns)} columns for track {track} ({' '.join(columns)}), found {len(fields)}",
                path=kpath,
                line=line,
            )
        rec = dict(zip(columns, fields, strict=True))
        if keep is not None and rec["subset"] not in keep:
            continue
        label = _parse_key(rec["label"], kpath, line)
        trial = rec["trial"]
        audio = index.get(trial)
        if audio is None:
            if policy == "error":
                raise DatasetError(f"audio file not found for trial {trial}", path=kpath, line=line)
            if policy == "skip":
                skipped += 1
                continue
            audio = default_dir / f"{trial}.flac"
        extra = {k: v for k, v in rec.items() if k not in ("speaker", "trial", "label", "attack") and v != "-"}
        if track == "DF" and "compression" in extra:
            extra["codec"] = extra["compression"]
        attack = rec["attack"]
        if label == BONAFIDE:
            system = family = BONAFIDE
            extra.pop("vocoder", None)
        else:
            if attack in ("-", BONAFIDE):
                raise DatasetError(f"spoof line needs an attack id, found {attack!r}", path=kpath, line=line)
            system = attack
            if track == "LA":
                attack_type, family = ASVSPOOF2019_ATTACKS.get(attack, ("unknown", attack.lower()))
                extra["attack_type"] = attack_type
            else:
                family = rec["vocoder"] if rec["vocoder"] != "-" else "unknown"
        items.append(Item(audio, label, system, family, rec["speaker"], trial, dsname, extra))
    if skipped:
        warnings.warn(f"{kpath}: {skipped} trial(s) skipped because their flac file is missing", stacklevel=2)
    return Dataset(items, name=dsname, root=top)
