"""Offline corpus builder: real speech from Debian packages, fakes of the same utterances.

``voxguard corpus synth --out DIR`` (:func:`build_corpus`) needs no network beyond the package
registries: it takes human recordings that Debian packages ship, makes fakes of the *same*
utterances with the generators of :mod:`voxguard.datasets.synth_tools` (analysis–resynthesis as
in WaveFake, and text-to-speech of the transcripts), and writes both classes through one
identical chain, with a manifest in the DEV corpus format (:mod:`voxguard.datasets.manifest`).

Real speech (see :func:`discover_sources`):

- ``fillets-ng-data-nl``: about 1,500 lines of Dutch game dialogue by two voice actors (Ogg
  Vorbis, 22.05 kHz stereo), with the Dutch text and the English original in
  ``fillets-ng-data``'s level scripts;
- ``pocketsphinx-testdata``: five LibriVox sentences and short read phrases, with transcripts;
- ``alsa-utils``: the speaker-test voice ("Front left", ...), short phrases;
- ``codec2-examples``: the clean reference recordings (no transcripts, so vocoder fakes only;
  ``f2400``/``m2400`` are already Codec 2 output and ``cross`` is mu-law, so they are left out).

Single words (``ktuberling-data``, ``klettres-data``) are not sentence-level speech and are
not used.

Balance and pairing: every real recording gets ``fakes_per_real`` fakes (default 1, so the classes
are balanced), each from a different family, chosen greedily so that every family gets about the
same number of clips; ``utt_group`` links a recording to its fakes. TTS voices only read text in
their own language unless ``tts_translations`` is set (an English voice reading the English
original of a Dutch line would make language predict the label).

Identical post-processing of both classes (:func:`finish_clip`): resample to 16 kHz, a 70 Hz –
7 kHz band-pass (removes the DC/rumble and spectral-edge differences the corpus audit flags), the
canonical :func:`voxguard.audio.preprocess` (DC removal, trimming of leading/trailing non-speech to
a fixed margin, loudness normalisation to -23 LUFS), a seeded noise bed at -60 dBFS (digital
silence no longer marks a clip), an Ogg Vorbis encode/decode round-trip (the Dutch originals are
Vorbis: coding the fakes the same way keeps "codec artefacts" from meaning "real"),
re-quantisation to 16 bits with seeded TPDF dither, and FLAC PCM_16 at 16 kHz mono.

Everything is deterministic for a given ``seed`` and set of installed package versions.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import math
import multiprocessing
import os
import re
import shutil
import sys
import time
import warnings
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np
import soundfile as sf

from voxguard.audio.load import ANALYSIS_RATE, load, resample
from voxguard.audio.preprocess import PreprocessConfig, normalise_loudness, preprocess, requantise
from voxguard.audio.vad import detect_speech
from voxguard.datasets.base import BONAFIDE, SPOOF, Dataset, Item
from voxguard.datasets.manifest import write_manifest
from voxguard.datasets.synth_match import limit_peaks, match_envelope, match_group, match_pauses
from voxguard.datasets.synth_tools import (
    GENERATORS,
    Generator,
    ToolError,
    available_generators,
    debian_license,
    debian_version,
)
from voxguard.errors import VoxguardError

__all__ = [
    "OUTPUT_RATE",
    "BuildResult",
    "RealClip",
    "SynthConfig",
    "SynthError",
    "build_corpus",
    "discover_sources",
    "finish_clip",
    "finish_group",
    "plan_jobs",
]

#: Rate of every clip in the corpus (the analysis rate: no rate difference between the classes).
OUTPUT_RATE = ANALYSIS_RATE

_FILLETS = Path("/usr/share/games/fillets-ng")
_POCKETSPHINX = Path("/usr/share/pocketsphinx/test/data")
_ALSA = Path("/usr/share/sounds/alsa")
_CODEC2 = Path("/usr/share/codec2")
# Clean Codec 2 reference recordings (f2400/m2400 are coded copies of forig/morig; cross is mu-law;
# ve9qrp, vk5qi, vk2tpm_004 and the raw/ extras are HF radio or overlap these).
_CODEC2_CLEAN = ("hts1a", "hts2a", "forig", "morig", "big_dog", "mmt1")


class SynthError(VoxguardError):
    """The corpus cannot be built (no real source, no generator, output folder in the way)."""

    code = "synth_error"
    http_status = 500


@dataclass(frozen=True)
class RealClip:
    """One human recording that a Debian package ships.

    Attributes
    ----------
    utt_group : str
        Key shared with every fake made from it (unique per recording).
    path : str
        The installed file.
    package : str
        The Debian package that ships it.
    dataset, speaker : str
        Manifest columns.
    language : str
        ``"nl"`` or ``"en"``.
    texts : dict
        Transcripts by language (the recording's own language, and for the Dutch game lines the
        English original); empty when unknown.
    level : {"sentence", "phrase"}
        Sentence-level speech, or a short read phrase.
    raw_rate : int or None
        Sample rate of a headerless 16-bit little-endian file; None for files with a header.
    """

    utt_group: str
    path: str
    package: str
    dataset: str
    speaker: str
    language: str
    texts: dict[str, str] = field(default_factory=dict, hash=False)
    level: str = "sentence"
    raw_rate: int | None = None

    @property
    def text(self) -> str:
        """Transcript in the recording's own language (``""`` if unknown)."""
        return self.texts.get(self.language, "")


@dataclass(frozen=True)
class SynthConfig:
    """Parameters of :func:`build_corpus` (saved in ``build.json``).

    Attributes
    ----------
    small : bool
        A few dozen clips (for CI) instead of the full corpus.
    workers : int
        Worker processes (1 runs everything in this process).
    fakes_per_real : int
        Fakes per real recording, each from a different family (1 gives balanced classes).
    codec : {"vorbis", "none"}
        The lossy round-trip applied to every clip before FLAC storage.
    vorbis_quality : float
        libsndfile's compression level for the round-trip (0 best quality, 1 smallest).
    band_hz : (float, float) or None
        Band-pass applied to every clip (None: none).
    noise_floor_dbfs : float or None
        RMS level of the noise bed added to every clip after loudness normalisation (None: none).
    tts_translations : bool
        Let English voices read the English original of Dutch lines (confounds language with
        the label; off by default).
    match_band : bool
        Low-pass every clip of a recording's group (the real clip and its fakes) at the group's
        lowest -50 dB cut-off, so that bandwidth says nothing about which of them is fake
        (vocoders keep energy up to the band edge, Codec 2 is narrow-band). Off by default since
        ``match_group`` equalises the fakes' spectra: the cut-off then leaks little (one-property
        AUC 0.57), while the low-pass took the median clip's band down to 4.8 kHz, under the
        4-7 kHz band where vocoders leave their artefacts.
    peak_ceiling_dbfs : float or None
        Limit every clip's peaks to this level after loudness normalisation (:func:`limit_peaks`):
        pulse-excited vocoders and formant synthesis are peakier at equal loudness, so the peak
        level alone told them from real speech. ``None``: no limiting.
    match_group : bool
        Give each fake its recording's long-term spectrum, and every clip of a group the same
        loudness, peak level and noise floor (:func:`voxguard.datasets.synth_match.match_group`);
        the codec round-trip then comes before these steps so that nothing changes a level
        after them. ``peak_ceiling_dbfs`` caps the group's peak level.
    match_pace : bool
        Let TTS voices read at the recording's pace (:func:`paced_tts`): they pause where the
        speaker paused, keep its slow level contour, and voices with a rate parameter (eSpeak,
        Piper) are synthesised again at the rate that ends their speech where the speaker's
        ends. At their default rates eSpeak's Dutch voices took 17 % longer than the speakers
        (median) and paused only briefly, so duration and RMS-against-loudness told them apart.
    tail_s : float or None
        End every clip this long after its last speech frame (WebRTC VAD, as the audit measures
        trailing silence): cut, or padded with silence that the noise bed then fills. ``None``:
        keep the preprocessing's trim.
    skip_families : tuple of str
        Generator families left out of the build. Default: eSpeak, whose formant synthesis the
        shortcut audit tells from its recordings on signal statistics alone (family AUC
        0.84-0.94: more samples at exactly zero and a higher RMS at equal loudness, from its
        pulse excitation and timing), which made the whole corpus audit "weak" (0.630 with it,
        0.585 without its groups). ``()`` builds every installed family.
    end_margin_s : float or None
        Last, after the group matching: cut every clip this long after its last speech frame as
        the VAD finds it *then* (never padded). Vocoder copies keep their recording's length
        through the tail step, but the VAD hears their last word a frame or two longer, so
        their trailing silence was shorter than their recording's (the audit's strongest single
        property). ``None``: no final cut.
    seed : int
        Base seed of every random choice (excitation noise, phases, dither, VITS sampling).
    limit : int or None
        Use at most this many real recordings (after the ``small`` selection).
    force : bool
        Replace an existing corpus in the output folder.
    """

    small: bool = False
    workers: int = 2
    fakes_per_real: int = 1
    codec: str = "vorbis"
    vorbis_quality: float = 0.5
    band_hz: tuple[float, float] | None = (70.0, 7000.0)
    noise_floor_dbfs: float | None = -60.0
    tts_translations: bool = False
    match_band: bool = False
    peak_ceiling_dbfs: float | None = -9.0
    match_group: bool = True
    match_pace: bool = True
    tail_s: float | None = 0.1
    end_margin_s: float | None = 0.0
    skip_families: tuple[str, ...] = ("espeak",)
    seed: int = 0
    limit: int | None = None
    force: bool = False

    def codec_label(self) -> str:
        """The manifest's ``codec`` value, the same for every clip: the chain in the order it runs."""
        steps = []
        if self.band_hz is not None:
            steps.append(f"band-pass {self.band_hz[0]:g}-{self.band_hz[1]:g} Hz")
        if self.tail_s is not None:
            steps.append(f"{self.tail_s:g} s after the last speech")
        if self.noise_floor_dbfs is not None:
            steps.append(f"noise bed {self.noise_floor_dbfs:g} dBFS")
        vorbis = f"ogg_vorbis round-trip at level {self.vorbis_quality:g}" if self.codec == "vorbis" else None
        if self.match_group and vorbis:
            steps.append(vorbis)
        if self.match_band:
            steps.append("low-pass at the group's lowest cut-off")
        ceiling = f" (peaks at most {self.peak_ceiling_dbfs:g} dBFS)" if self.peak_ceiling_dbfs is not None else ""
        if self.match_group:
            steps.append(f"spectrum, loudness, peak and noise floor matched within the group{ceiling}")
        else:
            if self.peak_ceiling_dbfs is not None:
                steps.append(f"peaks limited to {self.peak_ceiling_dbfs:g} dBFS")
            if vorbis:
                steps.append(vorbis)
        if self.end_margin_s is not None:
            steps.append(f"cut {self.end_margin_s:g} s after the last speech")
        chain = f"; {', '.join(steps)}" if steps else ""
        return f"flac_pcm_16 ({OUTPUT_RATE // 1000} kHz mono{chain})"


@dataclass
class BuildResult:
    """What :func:`build_corpus` produced.

    Attributes
    ----------
    manifest : Path
    n_clips : int
    bytes : int
        Size of the audio files.
    seconds : float
        Wall-clock build time.
    counts : dict
        Clips per label, family and system.
    skipped_generators : dict
        ``{system: reason}`` for generators that are not installed.
    failures : list of str
        Recordings (and their fakes) that could not be made, with the reason.
    fallbacks : list of str
        Generator attempts that failed and were replaced by a fallback vocoder (the recording
        still got its fakes).
    """

    manifest: Path
    n_clips: int
    bytes: int
    seconds: float
    audio_seconds: float
    counts: dict[str, dict[str, int]]
    skipped_generators: dict[str, str]
    skipped_sources: dict[str, str]
    failures: list[str]
    fallbacks: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------------------------
# real sources


_DIALOG = re.compile(
    r'dialogId\(\s*"([^"]+)"\s*,\s*"([^"]*)"\s*,\s*"((?:[^"\\]|\\.)*)"\s*\)\s*'
    r'dialogStr\(\s*"((?:[^"\\]|\\.)*)"\s*\)',
    re.S,
)
_FILLETS_SPEAKERS = {"font_small": "fillets_nl_small_fish", "font_big": "fillets_nl_big_fish"}


def _unescape(text: str) -> str:
    return " ".join(re.sub(r"\\(.)", r"\1", text).split())


def fillets_clips(root: Path = _FILLETS) -> list[RealClip]:
    """The Dutch voiced lines of Fish Fillets NG with their Dutch text and English original."""
    clips: dict[str, RealClip] = {}
    for script in sorted((root / "script").glob("*/dialogs_nl.lua")):
        level = script.parent.name
        text = script.read_text(encoding="utf-8", errors="replace")
        for m in _DIALOG.finditer(text):
            ident, font, english, dutch = m.groups()
            audio = root / "sound" / level / "nl" / f"{ident}.ogg"
            speaker = _FILLETS_SPEAKERS.get(font)
            if speaker is None or not audio.is_file() or str(audio) in clips or not _unescape(dutch):
                continue
            clips[str(audio)] = RealClip(
                utt_group=f"fillets_nl_{level}_{ident}",
                path=str(audio),
                package="fillets-ng-data-nl",
                dataset="fillets_ng_nl",
                speaker=speaker,
                language="nl",
                texts={"nl": _unescape(dutch), "en": _unescape(english)},
            )
    return list(clips.values())


def pocketsphinx_clips(root: Path = _POCKETSPHINX) -> list[RealClip]:
    """LibriVox sentences, the "cards" phrases and "go forward ten meters" from the test data."""
    out: list[RealClip] = []
    line = re.compile(r"<s>(.*?)</s>\s*\(([^)]+)\)")
    for sub, dataset, speaker, level in (
        ("librivox", "pocketsphinx_librivox", "librivox_sense_and_sensibility_reader", "sentence"),
        ("cards", "pocketsphinx_cards", "pocketsphinx_cards_unk", "phrase"),
    ):
        folder = root / sub
        trans = folder / ("transcription" if sub == "librivox" else "cards.transcription")
        if not trans.is_file():
            continue
        for m in line.finditer(trans.read_text(encoding="utf-8", errors="replace")):
            text, ident = " ".join(m.group(1).split()), m.group(2).strip()
            wav = folder / f"{ident}.wav"
            if wav.is_file() and text:
                out.append(
                    RealClip(
                        f"{dataset}_{ident}", str(wav), "pocketsphinx-testdata", dataset, speaker, "en",
                        {"en": text}, level,
                    )
                )  # fmt: skip
    raw = root / "goforward.raw"
    if raw.is_file():
        out.append(
            RealClip(
                "pocketsphinx_goforward", str(raw), "pocketsphinx-testdata", "pocketsphinx_goforward",
                "pocketsphinx_goforward_unk", "en", {"en": "go forward ten meters"}, "phrase", raw_rate=16000,
            )
        )  # fmt: skip
    return out


def alsa_clips(root: Path = _ALSA) -> list[RealClip]:
    """The speaker-test voice of alsa-utils ("Front left", "Rear center", ...); Noise.wav is not speech."""
    out = []
    for wav in sorted(root.glob("*_*.wav")):
        words = wav.stem.replace("_", " ").lower()
        out.append(
            RealClip(
                f"alsa_{wav.stem.lower()}", str(wav), "alsa-utils", "alsa_speaker_test", "alsa_voice", "en",
                {"en": words.capitalize()}, "phrase",
            )
        )  # fmt: skip
    return out


def codec2_clips(root: Path = _CODEC2) -> list[RealClip]:
    """The clean Codec 2 reference recordings (8 kHz, no transcripts)."""
    out = []
    for name in _CODEC2_CLEAN:
        wav = root / "wav" / f"{name}.wav"
        if wav.is_file():
            out.append(
                RealClip(f"codec2_{name}", str(wav), "codec2-examples", "codec2_examples", f"codec2_{name}", "en")
            )
    return out


#: Source name -> (finder, the packages it needs).
SOURCES: dict[str, tuple[Callable[[], list[RealClip]], tuple[str, ...]]] = {
    "fillets-ng-nl": (fillets_clips, ("fillets-ng-data-nl", "fillets-ng-data")),
    "pocketsphinx": (pocketsphinx_clips, ("pocketsphinx-testdata",)),
    "alsa": (alsa_clips, ("alsa-utils",)),
    "codec2": (codec2_clips, ("codec2-examples",)),
}


def discover_sources(small: bool = False) -> tuple[list[RealClip], dict[str, str]]:
    """Find the installed real recordings.

    Parameters
    ----------
    small : bool
        Keep a spread-out selection of a couple of dozen recordings (every source and speaker).

    Returns
    -------
    (clips, skipped) : (list of RealClip, dict)
        Clips in a deterministic order, and ``{source: reason}`` for sources that are absent.
    """
    clips: list[RealClip] = []
    skipped: dict[str, str] = {}
    for name, (finder, _packages) in SOURCES.items():
        found = finder()
        if not found:
            skipped[name] = f"not installed (Debian package(s): {', '.join(_packages)})"
            continue
        if small:
            found = _spread(found, {"fillets-ng-nl": 12, "pocketsphinx": 5, "alsa": 2, "codec2": 2}[name])
        clips.extend(found)
    return clips, skipped


def _spread(items: Sequence[RealClip], n: int) -> list[RealClip]:
    """``n`` items evenly spaced through ``items`` (so both speakers and many levels appear)."""
    if len(items) <= n:
        return list(items)
    idx = np.linspace(0, len(items) - 1, n).round().astype(int)
    return [items[i] for i in idx]


# ----------------------------------------------------------------------------------------------
# planning: which fake(s) each recording gets


@dataclass(frozen=True)
class Job:
    """One recording and the generators to try for it, in order (the first successes are kept)."""

    real: RealClip
    candidates: tuple[str, ...]
    n_fakes: int


def _hash01(*parts: object) -> float:
    """Stable pseudo-random number in [0, 1) (tie-breaking that does not follow file order)."""
    return zlib.crc32("\0".join(map(str, parts)).encode()) / 2**32


def clip_seed(base: int, utt_group: str, system: str) -> int:
    """Per-clip seed: the same clip gets the same noise, phases and dither in every build."""
    return zlib.crc32(f"{base}\0{utt_group}\0{system}".encode())


def applicable(gen: Generator, real: RealClip, tts_translations: bool = False) -> bool:
    """Whether ``gen`` can make a fake of ``real`` (TTS needs a transcript in the voice's language)."""
    if not gen.is_tts:
        return True
    if gen.language not in real.texts or not real.texts[gen.language]:
        return False
    return gen.language == real.language or tts_translations


def plan_jobs(
    reals: Sequence[RealClip],
    generators: Sequence[Generator],
    *,
    fakes_per_real: int = 1,
    tts_translations: bool = False,
    seed: int = 0,
) -> list[Job]:
    """Assign generators to recordings so that every family gets about the same number of fakes.

    Recordings with the fewest applicable families are planned first (the Dutch lines, which only
    vocoders and Dutch voices can copy), so the English voices end up on the English recordings.
    Each recording takes the ``fakes_per_real`` least-used families (ties broken by a stable hash)
    and, within a family, its least-used system; the other applicable vocoders follow as fallbacks.

    Returns
    -------
    list of Job
        In the order of ``reals``.
    """
    if fakes_per_real < 1:
        raise ValueError(f"fakes_per_real must be >= 1, got {fakes_per_real}")
    fam_count: Counter[str] = Counter()
    sys_count: Counter[str] = Counter()
    options = [[g for g in generators if applicable(g, r, tts_translations)] for r in reals]
    order = sorted(range(len(reals)), key=lambda i: (len({g.family for g in options[i]}), i))
    jobs: dict[int, Job] = {}
    for i in order:
        real, gens = reals[i], options[i]
        by_family: dict[str, list[Generator]] = {}
        for g in gens:
            by_family.setdefault(g.family, []).append(g)
        families = sorted(by_family, key=lambda f: (fam_count[f], _hash01(seed, real.utt_group, f)))
        chosen: list[str] = []
        for fam in families[:fakes_per_real]:
            g = min(by_family[fam], key=lambda g: (sys_count[g.system], _hash01(seed, real.utt_group, g.system)))
            chosen.append(g.system)
            fam_count[fam] += 1
            sys_count[g.system] += 1
        fallbacks = [
            g.system
            for fam in families[fakes_per_real:]
            for g in by_family[fam]
            if not g.is_tts and g.system not in chosen
        ]
        jobs[i] = Job(real, tuple(chosen + fallbacks), min(fakes_per_real, len(families)))
    return [jobs[i] for i in range(len(reals))]


# ----------------------------------------------------------------------------------------------
# one clip, one group


def _read_real(real: RealClip) -> tuple[np.ndarray, int]:
    if real.raw_rate is not None:
        pcm = np.fromfile(real.path, dtype="<i2")
        return (pcm.astype(np.float32) / 32768.0), real.raw_rate
    audio = load(real.path, sr=None)  # decodes Vorbis as float (no int16 wrap-around), downmixes
    return audio.samples, audio.sample_rate


def vorbis_round_trip(y: np.ndarray, sr: int, quality: float = 0.5) -> np.ndarray:
    """Encode to Ogg Vorbis in memory and decode again (float32, same length)."""
    import io

    buf = io.BytesIO()
    sf.write(buf, y, sr, format="OGG", subtype="VORBIS", compression_level=quality)
    buf.seek(0)
    z, _ = sf.read(buf, dtype="float32")
    return z[: len(y)] if len(z) >= len(y) else np.pad(z, (0, len(y) - len(z)))


def band_limit(y: np.ndarray, sr: int, band_hz: tuple[float, float]) -> np.ndarray:
    """Zero-phase band-pass (4th-order Butterworth on each edge, applied forwards and backwards).

    The low edge removes DC and sub-audio drift (which vocoders and recordings differ in), the high
    edge puts every clip's spectral cut-off at the same place whatever generator made it.
    """
    from scipy import signal

    low, high = band_hz
    nyq = sr / 2.0
    if high >= nyq:
        sos = signal.butter(4, low, btype="highpass", fs=sr, output="sos")
    else:
        sos = signal.butter(4, [low, high], btype="bandpass", fs=sr, output="sos")
    if len(y) <= 3 * (2 * sos.shape[0] + 1):
        return y.astype(np.float32)
    return signal.sosfiltfilt(sos, y.astype(np.float64)).astype(np.float32)


def add_noise_bed(
    y: np.ndarray, sr: int, level_dbfs: float, *, seed: int, band_hz: tuple[float, float] | None = None
) -> np.ndarray:
    """Add seeded Gaussian noise at ``level_dbfs`` RMS (band-limited like the clip when ``band_hz``).

    Every clip, real or fake, gets the same noise floor: digital silence (TTS pauses, the zero
    margins the preprocessing pads) and a quiet studio no longer differ from a noisy vocoder.
    """
    rng = np.random.default_rng([seed % 2**32, 0x6E6F])
    noise = rng.standard_normal(len(y))
    if band_hz is not None:
        noise = band_limit(noise.astype(np.float32), sr, band_hz).astype(np.float64)
    rms = float(np.sqrt(np.mean(noise**2))) or 1.0
    noise *= 10.0 ** (level_dbfs / 20.0) / rms
    return (y + noise).astype(np.float32)


def condition_clip(y: np.ndarray, sr: int, *, config: SynthConfig) -> np.ndarray:
    """The first half of :func:`finish_clip`: 16 kHz, band-pass, canonical preprocessing (float32).

    Raises
    ------
    voxguard.errors.AudioError
        No speech, or less than 0.5 s of it (the canonical preprocessing's checks).
    """
    y = resample(np.asarray(y, dtype=np.float32), sr, OUTPUT_RATE)
    if config.band_hz is not None:
        y = band_limit(y, OUTPUT_RATE, config.band_hz)
    return preprocess(y, OUTPUT_RATE, PreprocessConfig(sample_rate=OUTPUT_RATE, requantise_bits=None)).samples


def cutoff_hz(z: np.ndarray, sr: int = OUTPUT_RATE) -> float:
    """The -50 dB cut-off of a clip's long-term spectrum, as the corpus audit measures it (Hz)."""
    from voxguard.datasets.audit import _bandwidths, long_term_spectrum

    return _bandwidths(*long_term_spectrum(z, sr))[1]


def _brick_wall(z: np.ndarray, top_hz: float) -> np.ndarray:
    spectrum = np.fft.rfft(z.astype(np.float64))
    spectrum[np.fft.rfftfreq(len(z), 1.0 / OUTPUT_RATE) > top_hz] = 0.0
    return np.fft.irfft(spectrum, n=len(z)).astype(np.float32)


def finish_group(
    signals: Sequence[np.ndarray],
    *,
    config: SynthConfig,
    seeds: Sequence[int],
    top_hz: float | None = None,
    copies: Sequence[bool] | None = None,
) -> list[np.ndarray]:
    """The second half of :func:`finish_clip` for a recording's group (the real clip first, then its fakes).

    Per clip: the tail (``config.tail_s``), the noise bed, and ``top_hz``, the group's matched
    band (:attr:`SynthConfig.match_band`): everything above it is removed with a brick-wall
    filter on the whole clip's spectrum (a Butterworth low-pass leaves a clip that had energy up
    to 7 kHz 20 dB above one that never had, where the audit's -50 dB cut-off still sees it).
    Then, with ``config.match_group`` (the default), the codec round-trip comes first and
    :func:`voxguard.datasets.synth_match.match_group` gives every clip the recording's long-term
    spectrum, the same loudness, the same peak level and the same noise floor, so nothing after it
    changes a level; without it, each clip is limited at ``config.peak_ceiling_dbfs``,
    re-normalised and coded on its own. Last, 16-bit re-quantisation with seeded dither.

    ``copies`` flags the signals that are time-aligned copies of the first (vocoder
    resynthesis): with ``config.match_group`` they are cut or padded to its length after the
    tail step, since their own speech bounds differ from the recording's by a frame or two.

    Returns
    -------
    list of np.ndarray, float32 on the 16-bit grid, one per signal
    """
    clips: list[np.ndarray] = []
    coded_first = config.match_group and config.codec == "vorbis"
    for i, (z, seed) in enumerate(zip(signals, seeds, strict=True)):
        stop = None
        if config.match_group and copies is not None and copies[i] and clips:
            stop = len(clips[0])
        elif config.tail_s is not None:
            bounds = detect_speech(z, OUTPUT_RATE).bounds_s()
            if bounds is not None:
                stop = int(round((bounds[1] + config.tail_s) * OUTPUT_RATE))
        if stop is not None:
            z = z[:stop] if stop <= len(z) else np.pad(z, (0, stop - len(z)))
        if config.noise_floor_dbfs is not None:
            z = add_noise_bed(z, OUTPUT_RATE, config.noise_floor_dbfs, seed=seed, band_hz=config.band_hz)
        if coded_first:
            z = vorbis_round_trip(z, OUTPUT_RATE, config.vorbis_quality)
        if top_hz is not None and top_hz < OUTPUT_RATE / 2:
            z = _brick_wall(z, top_hz)
        clips.append(z)
    if config.match_group:
        ceiling = config.peak_ceiling_dbfs if config.peak_ceiling_dbfs is not None else 0.0
        clips = match_group(clips, OUTPUT_RATE, seeds=seeds, ceiling_dbfs=ceiling)
    else:
        for i, z in enumerate(clips):
            if config.peak_ceiling_dbfs is not None:
                # Limiting lowers the loudness of peaky clips a little more: normalise once more after it.
                z = limit_peaks(z, OUTPUT_RATE, config.peak_ceiling_dbfs)
                z, _lufs = normalise_loudness(z, OUTPUT_RATE, peak_limit=1.0)
            if config.codec == "vorbis":
                z = vorbis_round_trip(z, OUTPUT_RATE, config.vorbis_quality)
            clips[i] = z
    if config.end_margin_s is not None:
        clips = [cut_after_speech(z, OUTPUT_RATE, config.end_margin_s) for z in clips]
    return [requantise(np.clip(z, -1.0, 1.0), bits=16, seed=seed % 2**32) for z, seed in zip(clips, seeds, strict=True)]


def cut_after_speech(z: np.ndarray, sr: int, margin_s: float) -> np.ndarray:
    """``z`` cut ``margin_s`` after its last speech frame (WebRTC VAD, as the audit finds it); never longer."""
    bounds = detect_speech(z, sr).bounds_s()
    if bounds is None:
        return z
    stop = int(round((bounds[1] + margin_s) * sr))
    return z[:stop] if stop < len(z) else z


def write_clip(z: np.ndarray, path: Path) -> float:
    """Write a signal on the 16-bit grid as 16 kHz FLAC PCM_16; returns its duration in seconds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pcm = np.round(z * 32768.0).astype(np.int16)  # already on the 16-bit grid: exact
    sf.write(str(path), pcm, OUTPUT_RATE, format="FLAC", subtype="PCM_16")
    return len(pcm) / OUTPUT_RATE


def store_clip(z: np.ndarray, path: Path, *, config: SynthConfig, seed: int, top_hz: float | None = None) -> float:
    """:func:`finish_group` for one clip, then :func:`write_clip`; returns its duration in seconds."""
    return write_clip(finish_group([z], config=config, seeds=[seed], top_hz=top_hz)[0], path)


def finish_clip(y: np.ndarray, sr: int, path: Path, *, config: SynthConfig, seed: int) -> float:
    """The post-processing every clip gets, real or fake; writes ``path`` and returns its duration.

    :func:`condition_clip` then :func:`store_clip` (without a group's matched band).

    Parameters
    ----------
    y : np.ndarray, shape (n,)
        Mono signal (the decoded recording, a vocoder's copy or a TTS voice's output).
    sr : int
        Its rate in Hz.
    path : Path
        Where the FLAC file goes (folders are created).
    config : SynthConfig
        Band, noise bed and codec settings.
    seed : int
        Seed of the noise bed and the dither.

    Returns
    -------
    float
        Duration of the written clip in seconds.

    Raises
    ------
    voxguard.errors.AudioError
        No speech, or less than 0.5 s of it (the canonical preprocessing's checks).
    """
    return store_clip(condition_clip(y, sr, config=config), path, config=config, seed=seed)


@dataclass
class _GroupResult:
    rows: list[dict[str, str]]
    failures: list[str]
    fallbacks: list[str]
    seconds: float


def _conditioned(z: np.ndarray, sr: int, config: SynthConfig) -> np.ndarray:
    """:func:`condition_clip` of a generator's output, refusing NaN or infinite samples."""
    if not np.all(np.isfinite(z)):
        raise ToolError("non-finite output")
    return condition_clip(np.asarray(z, dtype=np.float32), sr, config=config)


def _provenance(real: RealClip) -> tuple[str, str, str]:
    version = debian_version(real.package) or "unknown"
    return f"debian/{real.package}", version, debian_license(real.package, real.path)


def _build_group(job: Job, out: Path, config: SynthConfig) -> _GroupResult:
    """Make the real clip and its fakes for one recording (runs in a worker process)."""
    t0 = time.perf_counter()
    real = job.real
    repo, version, licence = _provenance(real)
    base = {
        "dataset": real.dataset, "source_repo": repo, "source_path": real.path, "source_commit": version,
        "utt_group": real.utt_group, "sample_rate": str(OUTPUT_RATE), "codec": config.codec_label(),
    }  # fmt: skip
    attempts: list[str] = []  # failed generator attempts (replaced by a fallback when one works)
    try:
        y, sr = _read_real(real)
        work_sr = min(sr, OUTPUT_RATE)  # vocode at <= 16 kHz, never above the recording's own band
        y_work = resample(y, sr, work_sr)
        real_path = out / "audio" / BONAFIDE / real.dataset / f"{real.utt_group}.flac"
        real_z = condition_clip(y_work, work_sr, config=config)
    except (VoxguardError, OSError, RuntimeError, ValueError) as exc:
        msg = f"{real.utt_group}: real recording unusable: {exc}"
        return _GroupResult([], [msg], [], time.perf_counter() - t0)
    text_note = f"; transcript ({real.language}): {real.text}" if real.text else "; no transcript"
    # Conditioned signals of the group, stored once the group's band is known.
    pending: list[tuple[np.ndarray, Path, int, dict[str, str]]] = [
        (
            real_z, real_path, clip_seed(config.seed, real.utt_group, ""),
            {
                **base, "path": str(real_path), "label": BONAFIDE, "system": BONAFIDE, "attack_type": BONAFIDE,
                "family": BONAFIDE, "speaker": real.speaker, "license": licence,
                "note": f"{real.level}-level {real.language} speech{text_note}",
            },
        )
    ]  # fmt: skip
    by_name = {g.system: g for g in GENERATORS}
    made = 0
    for system in job.candidates:
        if made >= job.n_fakes:
            break
        gen = by_name[system]
        seed = clip_seed(config.seed, real.utt_group, system)
        path = out / "audio" / SPOOF / gen.family / f"{real.utt_group}__{system}.flac"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if gen.is_tts:
                    lang = gen.language or real.language
                    text = real.texts[lang]
                    if config.match_pace:
                        fake_z, pace_note = paced_tts(gen, text, real_z, seed=seed, config=config)
                    else:
                        (z, zsr), pace_note = gen.generate(text, seed=seed), ""
                        fake_z = _conditioned(z, zsr, config)
                    note = f"TTS of the {lang} transcript with {gen.tool_versions()}{pace_note}: {text}"
                    speaker, licence_fake = gen.speaker, f"text: {licence}; voice: {gen.tool_license()}"
                else:
                    fake_z = _conditioned(gen.generate(y_work, work_sr, seed=seed), work_sr, config)
                    note = f"copy-synthesis of the real clip with {gen.tool_versions()} {_params(gen)}".rstrip()
                    speaker, licence_fake = real.speaker, f"recording: {licence}; generator: {gen.tool_license()}"
        except (VoxguardError, ToolError, OSError, RuntimeError, ValueError, KeyError) as exc:
            attempts.append(f"{real.utt_group} / {system}: {exc}")
            continue
        made += 1
        pending.append(
            (
                fake_z, path, seed,
                {
                    **base, "path": str(path), "label": SPOOF, "system": system, "attack_type": gen.attack_type,
                    "family": gen.family, "speaker": speaker, "license": licence_fake, "note": note,
                },
            )
        )  # fmt: skip
    cutoffs = [c for c in (cutoff_hz(z) for z, *_ in pending) if np.isfinite(c)] if config.match_band else []
    top_hz = min(cutoffs) if cutoffs else None
    rows = []
    try:
        finished = finish_group(
            [z for z, *_ in pending],
            config=config,
            seeds=[s for _, _, s, _ in pending],
            top_hz=top_hz,
            copies=[row["attack_type"] != "tts" for *_, row in pending],
        )
    except (VoxguardError, RuntimeError, ValueError) as exc:
        return _GroupResult([], [f"{real.utt_group}: post-processing failed: {exc}"], [], time.perf_counter() - t0)
    for z, (_, path, _, row) in zip(finished, pending, strict=True):
        try:
            dur = write_clip(z, path)
        except (OSError, RuntimeError, ValueError) as exc:
            failure = f"{real.utt_group}: writing {path.name} failed: {exc}"
            return _GroupResult([], [failure], [], time.perf_counter() - t0)
        rows.append(row | {"duration_s": f"{dur:.3f}"})
    if made < job.n_fakes:
        failures = [*attempts, f"{real.utt_group}: only {made} of {job.n_fakes} fakes could be made"]
        return _GroupResult(rows, failures, [], time.perf_counter() - t0)
    return _GroupResult(rows, [], attempts, time.perf_counter() - t0)


def paced_tts(
    gen: Generator, text: str, recording: np.ndarray, *, seed: int, config: SynthConfig, rounds: int = 3
) -> tuple[np.ndarray, str]:
    """Read ``text`` at the pace of ``recording``: its pauses, and its length.

    The reading is conditioned (:func:`condition_clip`) and given the recording's pauses
    (:func:`voxguard.datasets.synth_match.match_pauses`) and slow level contour
    (:func:`~voxguard.datasets.synth_match.match_envelope`); then, if the voice has a rate
    parameter (:attr:`Generator.pace`), it is synthesised again with the rate that makes its
    speech end where the recording's does (by the voice-activity detector, as the tail step
    cuts there). The duration factor is refined up to ``rounds`` times (a voice's own pauses do
    not scale exactly with its rate) and stops within 3 %, or when the rate reaches the voice's
    limits.

    Returns
    -------
    (clip, note) : the conditioned 16 kHz reading, and e.g. ``", speed=142"`` for the manifest note
    """

    def render(g: Generator) -> np.ndarray:
        z, zsr = g.generate(text, seed=seed)
        clip = match_pauses(_conditioned(z, zsr, config), recording, OUTPUT_RATE)
        return match_envelope(clip, recording, OUTPUT_RATE)

    def speech_end(z: np.ndarray) -> float:
        bounds = detect_speech(z, OUTPUT_RATE).bounds_s()
        return bounds[1] if bounds is not None else len(z) / OUTPUT_RATE

    # Paced on where the speech ends (the VAD's), since the tail step cuts every clip there.
    target = speech_end(recording)
    clip, paced, factor = render(gen), gen, 1.0
    for _ in range(rounds if gen.pace is not None else 0):
        step = target / max(speech_end(clip), 1e-3)
        if abs(step - 1.0) <= 0.03:
            break
        candidate = gen.paced(factor * step)
        if candidate.params == paced.params:  # clamped at the voice's limit
            break
        factor, paced = factor * step, candidate
        clip = render(paced)
    if paced is gen or gen.pace is None:
        return clip, ""
    return clip, f", {gen.pace.param}={paced.params[gen.pace.param]:g}"


def _params(gen: Generator) -> str:
    return ", ".join(f"{k}={v}" for k, v in gen.params.items())


def _worker_init() -> None:
    # One BLAS/OpenMP thread per worker: the builder already runs one process per core.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    warnings.simplefilter("ignore")


# ----------------------------------------------------------------------------------------------
# the whole corpus


def _prepare_out(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise SynthError("output path exists and is not a folder", path=str(out))
    if out.is_dir() and any(out.iterdir()):
        ours = (out / "manifest.csv").is_file() or (out / "audio").is_dir()
        if not force:
            raise SynthError(
                "output folder is not empty" + ("; use --force to replace the corpus in it" if ours else ""),
                path=str(out),
            )
        if not ours:
            raise SynthError("output folder is not empty and holds no voxguard corpus; not touching it", path=str(out))
        shutil.rmtree(out / "audio", ignore_errors=True)
        for name in ("manifest.csv", "build.json"):
            (out / name).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)


class _Progress:
    """Progress lines on a stream (stderr): at most one every ``every_s`` seconds, plus the last."""

    def __init__(self, total: int, stream: TextIO | None, every_s: float = 5.0) -> None:
        self.total, self.stream, self.every_s = total, stream, every_s
        self.t0 = time.perf_counter()
        self.last = -math.inf

    def update(self, done: int, clips: int) -> None:
        now = time.perf_counter()
        if self.stream is None or (now - self.last < self.every_s and done < self.total):
            return
        self.last = now
        el = now - self.t0
        eta = el / done * (self.total - done) if done else float("nan")
        print(
            f"synth: {done}/{self.total} recordings ({100 * done / max(self.total, 1):.0f} %), {clips} clips, "
            f"{el:.0f} s elapsed, ~{eta:.0f} s left",
            file=self.stream,
            flush=True,
        )


def build_corpus(
    out: str | os.PathLike[str],
    config: SynthConfig | None = None,
    *,
    progress: TextIO | None = sys.stderr,
) -> BuildResult:
    """Build the corpus into ``out``: ``audio/``, ``manifest.csv`` and ``build.json``.

    Parameters
    ----------
    out : path
        Output folder (created; must be empty unless ``config.force``).
    config : SynthConfig, optional
    progress : text stream or None
        Where progress lines and warnings go (stderr by default; None for silence).

    Returns
    -------
    BuildResult

    Raises
    ------
    SynthError
        No real speech source or no generator is installed, nothing could be built, or the
        output folder is in the way.
    """
    cfg = config or SynthConfig()
    if cfg.codec not in ("vorbis", "none"):
        raise SynthError(f"codec must be 'vorbis' or 'none', not {cfg.codec!r}")
    t0 = time.perf_counter()
    out = Path(out)
    reals, skipped_sources = discover_sources(small=cfg.small)
    if cfg.limit is not None:
        reals = _spread(reals, cfg.limit) if cfg.limit < len(reals) else reals
    gens, missing = available_generators()
    left_out = sorted(g.system for g in gens if g.family in cfg.skip_families)
    gens = [g for g in gens if g.family not in cfg.skip_families]
    if left_out and progress is not None:  # a choice, not a problem: no warning
        print(f"synth: left out by --skip-families: {', '.join(left_out)}", file=progress, flush=True)
    for name, why in {**skipped_sources, **missing}.items():
        msg = f"synth: skipping {name}: {why}"
        if progress is not None:
            print(msg, file=progress, flush=True)
        else:
            warnings.warn(msg, stacklevel=2)
    if not reals:
        raise SynthError(
            "no real speech source is installed; install e.g. fillets-ng-data-nl and fillets-ng-data "
            "(scripts/install-corpus-tools.sh)"
        )
    if not gens:
        raise SynthError("no fake-speech generator is available (scripts/install-corpus-tools.sh installs them)")
    jobs = plan_jobs(reals, gens, fakes_per_real=cfg.fakes_per_real, tts_translations=cfg.tts_translations,
                     seed=cfg.seed)  # fmt: skip
    _prepare_out(out, cfg.force)
    if progress is not None:
        print(f"synth: {len(jobs)} real recordings, {len(gens)} generators, {cfg.workers} worker(s) -> {out}",
              file=progress, flush=True)  # fmt: skip

    rows: list[dict[str, str]] = []
    failures: list[str] = []
    fallbacks: list[str] = []
    bar = _Progress(len(jobs), progress)
    if cfg.workers <= 1:
        for i, job in enumerate(jobs, 1):
            res = _build_group(job, out, cfg)
            rows += res.rows
            failures += res.failures
            fallbacks += res.fallbacks
            bar.update(i, len(rows))
    else:
        # fork where available: this process has loaded no threaded library yet (piper and
        # onnxruntime load in the workers), and unlike spawn it needs no __main__ guard in scripts.
        methods = multiprocessing.get_all_start_methods()
        ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
        with cf.ProcessPoolExecutor(max_workers=cfg.workers, mp_context=ctx, initializer=_worker_init) as pool:
            futures = [pool.submit(_build_group, job, out, cfg) for job in jobs]
            for i, fut in enumerate(cf.as_completed(futures), 1):
                res = fut.result()
                rows += res.rows
                failures += res.failures
                fallbacks += res.fallbacks
                bar.update(i, len(rows))
    if not rows:
        raise SynthError("no clip could be built: " + "; ".join(failures[:5]))

    # Deterministic manifest order whatever the completion order: by recording, real first.
    rows.sort(key=lambda r: (r["utt_group"], r["label"] != BONAFIDE, r["system"]))
    items = [
        Item(
            path=Path(r["path"]), label=r["label"], system=r["system"], family=r["family"], speaker=r["speaker"],
            utt_group=r["utt_group"], dataset=r["dataset"],
            extra={k: r[k] for k in ("attack_type", "source_repo", "license", "sample_rate", "duration_s", "codec",
                                     "source_path", "source_commit", "note")},
        )
        for r in rows
    ]  # fmt: skip
    manifest = write_manifest(Dataset(items, name="synth", root=out), out / "manifest.csv")
    size = sum(os.path.getsize(r["path"]) for r in rows)
    seconds = time.perf_counter() - t0
    ds = Dataset(items)
    counts = {c: ds.counts(c) for c in ("label", "family", "system", "dataset")}
    result = BuildResult(
        manifest=manifest,
        n_clips=len(items),
        bytes=size,
        seconds=seconds,
        audio_seconds=float(sum(float(r["duration_s"]) for r in rows)),
        counts=counts,
        skipped_generators=missing,
        skipped_sources=skipped_sources,
        failures=failures,
        fallbacks=fallbacks,
    )
    info = {
        "config": asdict(cfg),
        "generators": {g.system: {"family": g.family, "tools": g.tool_versions(), "license": g.tool_license()}
                       for g in gens},
        "python": sys.version.split()[0],
        **{k: v for k, v in asdict(result).items() if k != "manifest"},
        "manifest": manifest.name,
    }  # fmt: skip
    (out / "build.json").write_text(json.dumps(info, indent=2, default=str) + "\n", encoding="utf-8")
    if progress is not None and failures:
        print(f"synth: {len(failures)} problem(s), see build.json; first: {failures[0]}", file=progress)
    return result


def format_summary(result: BuildResult) -> str:
    """Human-readable summary: clips per label and family, size, build time."""
    lines = [
        f"built {result.n_clips} clips ({result.audio_seconds / 60:.1f} min of audio) in {result.seconds:.1f} s; "
        f"{result.bytes / 1e6:.1f} MB -> {result.manifest}",
        "label:  " + ", ".join(f"{k} {v}" for k, v in result.counts["label"].items()),
        "family: " + ", ".join(f"{k} {v}" for k, v in result.counts["family"].items()),
    ]
    if result.skipped_generators:
        lines.append("not installed: " + ", ".join(sorted(result.skipped_generators)))
    if result.failures:
        lines.append(f"{len(result.failures)} recording(s) or fake(s) could not be made (see build.json)")
    if result.fallbacks:
        lines.append(f"{len(result.fallbacks)} generator attempt(s) replaced by a fallback vocoder (see build.json)")
    return "\n".join(lines)
