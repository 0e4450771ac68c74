"""Which clips of a dataset carry the band above 8 kHz (the wide-band models' training data).

A clip qualifies when its *native* rate is at least ``min_rate``, its codec is lossless (lossy
codecs cut or smear the top band at low bit rates) and, measured, the band is there
(:func:`voxguard.audio.bandwidth.has_top_band`: a 16-kHz recording saved at 44.1 kHz has nothing
above 8 kHz). That is the gate a wide-band model is used behind when scanning, so it is trained on
what it will see. The rate and codec come from the manifest's ``sample_rate`` and ``codec``
columns when it has them, otherwise from the file's header (:func:`voxguard.audio.probe`).
"""

from __future__ import annotations

from voxguard.audio import load, probe
from voxguard.audio.bandwidth import has_top_band
from voxguard.datasets.base import Dataset, Item
from voxguard.errors import VoxguardError

#: Codec names (substrings, lower case) that mark a lossy clip.
LOSSY_CODECS = ("opus", "vorbis", "mp3", "aac", "amr", "gsm", "speex", "ulaw", "alaw", "mu-law", "a-law")


def native_rate_and_codec(item: Item) -> tuple[int, str]:
    """The clip's native rate (Hz) and codec name, from the manifest or else the file header."""
    rate, codec = str(item.get("sample_rate", "")), str(item.get("codec", ""))
    if rate.isdigit() and codec:
        return int(rate), codec
    info = probe(item.path)
    return info.sample_rate, info.codec


def is_lossy(codec: str) -> bool:
    """Whether a codec name (``"flac_pcm_16"``, ``"mp3"``, ``"opus"``, ...) names a lossy codec.

    Manifest codec strings may describe a clip's history ("flac_pcm_16 (10 s segment of decoded
    mp3)"): any lossy stage counts.
    """
    name = codec.lower()
    return any(lossy in name for lossy in LOSSY_CODECS)


def wide_band_subset(dataset: Dataset, min_rate: int = 22_050, *, measure: bool = True) -> Dataset:
    """The lossless clips whose native rate is at least ``min_rate`` Hz (and, with ``measure``,
    whose band above 8 kHz is there when decoded at ``min_rate``).

    Raises
    ------
    VoxguardError
        No clip qualifies, or only one class does (nothing to train on).
    """

    def wide(item: Item) -> bool:
        try:
            rate, codec = native_rate_and_codec(item)
        except VoxguardError:
            return False  # unreadable: training reports it elsewhere
        if rate < min_rate or is_lossy(codec):
            return False
        if not measure:
            return True
        try:
            audio = load(item.path, sr=min_rate)
        except VoxguardError:
            return False
        return has_top_band(audio.samples, audio.sample_rate)

    subset = dataset.filter(wide)
    classes = {item.label for item in subset}
    if len(classes) < 2:
        raise VoxguardError(
            f"{len(subset)} of {len(dataset)} clips are lossless at {min_rate} Hz or more with the band above "
            f"8 kHz present, with classes {sorted(classes) or 'none'}: a wide-band model needs both real and fake clips"
        )
    return subset
