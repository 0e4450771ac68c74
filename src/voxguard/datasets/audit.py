"""Shortcut audit: can the recording chain alone tell real from fake in a corpus?

Public corpora leak the label through properties that have nothing to do with the voice: the
native sample rate, the container and codec, float storage off the 16-bit grid, the loudness, the
silence around the speech, the bandwidth, the noise floor (see ``SOURCES.md``, "Known biases", of
the DEV corpus). A detector trained on such data learns the chain, not the speech.

This module measures those properties for every clip and trains a deliberately *trivial*
classifier on them alone (no speech features at all), evaluated with grouped k-fold
cross-validation (real recordings and their fakes always on one side). If that classifier reaches
an AUC well above 0.5, the corpus has a shortcut, and any detector's score on it is suspect until
the shortcut is removed (by preprocessing, augmentation of both classes, or re-balancing).
Per-property AUCs show *which* property leaks.

Typical use::

    from voxguard.datasets import load_dataset
    from voxguard.datasets.audit import audit, write_audit_report

    ds = load_dataset("../shared/corpus")
    raw = audit(ds, workers=2)                       # what the files say
    seen = audit(ds, preprocessed=True, workers=2)   # what a model sees after voxguard.audio.preprocess
    print(raw.classifier.auc, raw.classifier.interpretation)
    write_audit_report(raw, "reports/audit-raw")

Two views are measured:

- :func:`clip_metadata` — the file as stored: native rate, channels, container, codec, lossy or
  not, nominal and effective bit depth, then signal properties at the native rate;
- :func:`preprocessed_metadata` — the same signal properties on the output of
  :func:`voxguard.audio.preprocess` (rate, bit depth and codec are then constant by construction,
  but bandwidth, noise floor and residual loudness/silence differences can survive).
"""

from __future__ import annotations

import hashlib
import html
import itertools
import json
import math
import multiprocessing
import os
import re
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from voxguard.audio import PreprocessConfig, detect_speech, iter_frames, load, preprocess, probe, to_mono
from voxguard.audio.decode import AudioInfo
from voxguard.audio.load import DEFAULT_MAX_DURATION_S, check_finite
from voxguard.audio.preprocess import integrated_loudness
from voxguard.audio.vad import frame_levels_db
from voxguard.datasets.base import BONAFIDE, SPOOF, Dataset
from voxguard.datasets.cache import (
    FeatureFailure,
    _atomic_write,
    _Progress,
    _voxguard_version,
    content_hash,
    default_cache_dir,
)
from voxguard.errors import TooLongError, VoxguardError, ZeroLengthAudioError

__all__ = [
    "AUDIT_VERSION",
    "CATEGORICAL_PROPERTIES",
    "LEVEL_FRAME_S",
    "NUMERIC_PROPERTIES",
    "PROPERTIES",
    "AuditReportPaths",
    "AuditResult",
    "ClassifierResult",
    "PropertyLeak",
    "audit",
    "clip_metadata",
    "interpret_auc",
    "long_term_spectrum",
    "noise_floor_dbfs",
    "preprocessed_metadata",
    "write_audit_report",
]

#: Bump when a measurement changes, to invalidate cached metadata.
AUDIT_VERSION = "1"

#: Every property, its kind (``numeric``, ``bool`` or ``categorical``) and what it measures.
PROPERTIES: dict[str, tuple[str, str]] = {
    "sample_rate": ("numeric", "native sampling rate (Hz)"),
    "channels": ("numeric", "number of channels"),
    "container": ("categorical", "container format, detected from content"),
    "codec": ("categorical", "sample encoding / codec"),
    "lossy": ("bool", "stored with a lossy codec (Opus, Vorbis, MP3, AAC, G.711, ...)"),
    "bit_depth": ("numeric", "nominal bits per sample of the encoding (NaN for lossy codecs)"),
    "float_storage": ("bool", "samples stored as floating point"),
    "effective_bits": ("numeric", "coarsest grid (8/16/24 bit) all samples lie on; 32 = none (float or lossy)"),
    "on_16bit_grid": ("bool", "every sample is a multiple of 1/32768 (integer 16-bit data)"),
    "duration_s": ("numeric", "duration (s)"),
    "leading_silence_s": ("numeric", "non-speech before the first speech frame (s, WebRTC VAD + energy gate)"),
    "trailing_silence_s": ("numeric", "non-speech after the last speech frame (s)"),
    "zero_fraction": ("numeric", "share of samples that are exactly zero (digital silence, padding)"),
    "loudness_lufs": ("numeric", "integrated loudness, ITU-R BS.1770 (LUFS; NaN under 0.4 s)"),
    "rms_dbfs": ("numeric", "RMS level (dBFS)"),
    "peak_dbfs": ("numeric", "sample peak over all channels (dBFS)"),
    "dc_offset": ("numeric", "mean sample value (full scale = 1)"),
    "bandwidth_hz": ("numeric", "frequency below which 99 % of the long-term spectral energy lies (Hz)"),
    "cutoff_hz": ("numeric", "highest frequency whose smoothed long-term spectrum is within 50 dB of its peak (Hz)"),
    "noise_floor_dbfs": ("numeric", "5th percentile of 20-ms frame RMS levels (dBFS, floored at -140)"),
}
NUMERIC_PROPERTIES = tuple(k for k, (kind, _) in PROPERTIES.items() if kind != "categorical")
CATEGORICAL_PROPERTIES = tuple(k for k, (kind, _) in PROPERTIES.items() if kind == "categorical")

#: Errors with which the canonical preprocessing *rejects* a readable clip (no model ever sees it).
REJECTION_CODES = ("too_short", "silent_audio")

_LEVEL_FLOOR_DB = -140.0  # below any real noise floor; keeps means finite when frames are digital zero
_CUTOFF_DROP_DB = 50.0
_BANDWIDTH_FRACTION = 0.99
_NOISE_PERCENTILE = 5.0
#: Frame length of the noise-floor measurement (s).
LEVEL_FRAME_S = 0.02
# Lossless encodings: everything else (Vorbis, Opus, MPEG, AAC, G.711 A-/mu-law, ADPCM, GSM, ...) is lossy.
_LOSSLESS = re.compile(r"^(pcm_(?!alaw|mulaw)|float$|double$|flac$|alac$|wavpack$|tta$|ape$|mlp$|truehd$)", re.I)
_FLOAT = re.compile(r"^(float$|double$|pcm_f(32|64))", re.I)


# --------------------------------------------------------------------------------------------------
# Measurements
# --------------------------------------------------------------------------------------------------


def _chain_properties(info: AudioInfo) -> dict[str, Any]:
    """What the container says: rate, channels, container, codec, lossy, nominal bit depth."""
    codec = info.codec
    lossless = bool(_LOSSLESS.match(codec))
    is_float = bool(_FLOAT.match(codec))
    bits = float("nan")
    if lossless:
        if codec.upper() == "DOUBLE":
            bits = 64.0
        elif codec.upper() == "FLOAT":
            bits = 32.0
        elif (m := re.search(r"(\d+)", codec)) is not None:
            bits = float(m.group(1))  # PCM_16, PCM_S8, pcm_s24le, pcm_f32le, ...
    return {
        "sample_rate": int(info.sample_rate),
        "channels": int(info.channels),
        "container": info.container,
        "codec": codec,
        "lossy": not lossless,
        "bit_depth": bits,
        "float_storage": is_float,
    }


def _on_grid(x: np.ndarray, bits: int) -> bool:
    # Multiplying a float by a power of two is exact, so no float64 copy is needed.
    q = x * np.float32(2.0 ** (bits - 1))
    return bool(np.array_equal(q, np.rint(q)))


def _effective_bits(frames: np.ndarray) -> int:
    """Coarsest of the 8/16/24-bit grids every sample lies on; 32 when none does."""
    if not _on_grid(frames, 24):
        return 32
    if not _on_grid(frames, 16):
        return 24
    return 8 if _on_grid(frames, 8) else 16


def _db(power: float) -> float:
    return max(_LEVEL_FLOOR_DB, 10.0 * math.log10(power)) if power > 0 else _LEVEL_FLOOR_DB


def long_term_spectrum(y: np.ndarray, sr: int, *, block_frames: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Average power spectrum (Welch, Hann window of about 32 ms, 50 % overlap) of a mono signal.

    The FFT length is the power of two nearest above 32 ms at ``sr`` (512 at 16 kHz, 2048 at
    48 kHz), so the resolution is about 16-31 Hz at every rate. Frames are transformed in blocks
    of ``block_frames`` to bound memory on long files.

    Returns
    -------
    (freqs, psd) : (np.ndarray, np.ndarray), shape (n_fft // 2 + 1,), float64
    """
    n_fft = 1 << math.ceil(math.log2(max(sr * 0.032, 16)))
    hop = n_fft // 2
    x = np.asarray(y, dtype=np.float32)
    if len(x) < n_fft:
        x = np.pad(x, (0, n_fft - len(x)))
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop]  # a view: no copy
    window = np.hanning(n_fft + 1)[:-1].astype(np.float32)  # periodic Hann
    psd = np.zeros(n_fft // 2 + 1)
    for start in range(0, len(frames), block_frames):
        spec = np.fft.rfft(frames[start : start + block_frames] * window, axis=1)
        psd += np.sum(spec.real**2 + spec.imag**2, axis=0, dtype=np.float64)
    return np.fft.rfftfreq(n_fft, 1.0 / sr), psd / len(frames)


def _bandwidths(freqs: np.ndarray, psd: np.ndarray) -> tuple[float, float]:
    """(99 %-energy roll-off, -50 dB cut-off) of a long-term spectrum, in Hz (NaN if silent)."""
    total = float(psd.sum())
    if total <= 0:
        return float("nan"), float("nan")
    rolloff = float(freqs[np.searchsorted(np.cumsum(psd), _BANDWIDTH_FRACTION * total)])
    # Smooth over about 100 Hz so that a single harmonic or a notch does not decide the edge.
    k = max(1, round(100.0 / (freqs[1] - freqs[0])))
    smooth = np.convolve(psd, np.ones(k) / k, mode="same")
    with np.errstate(divide="ignore"):
        level = 10.0 * np.log10(smooth)
    above = np.flatnonzero(level > level.max() - _CUTOFF_DROP_DB)
    return rolloff, float(freqs[above[-1]])


def noise_floor_dbfs(y: np.ndarray, sr: int) -> float:
    """The audit's noise floor: 5th percentile of 20-ms frame RMS levels (dBFS, floored at -140).

    Parameters
    ----------
    y : np.ndarray, shape (n,)
        Mono signal, DC removed.
    sr : int
        Its rate in Hz.

    Returns
    -------
    float
        NaN when ``y`` is shorter than one frame.
    """
    levels = frame_levels_db(y, max(1, int(LEVEL_FRAME_S * sr)))
    if not len(levels):
        return float("nan")
    return max(_LEVEL_FLOOR_DB, float(np.percentile(levels, _NOISE_PERCENTILE)))


def _signal_properties(frames: np.ndarray, sr: int) -> dict[str, Any]:
    """Signal-level properties of ``(n, channels)`` float32 frames at rate ``sr``."""
    mono = to_mono(frames)
    n = len(mono)
    duration = n / sr
    bits = _effective_bits(frames)
    dc = float(mono.mean(dtype=np.float64))
    y = (mono - np.float32(dc)).astype(np.float32)  # DC removed, as preprocess does before the VAD
    activity = detect_speech(y, sr)
    bounds = activity.bounds_s()
    lufs = integrated_loudness(y, sr)
    freqs, psd = long_term_spectrum(y, sr)
    rolloff, cutoff = _bandwidths(freqs, psd)
    peak = float(np.max(np.abs(frames)))
    return {
        "effective_bits": bits,
        "on_16bit_grid": bits <= 16,
        "duration_s": duration,
        "leading_silence_s": float("nan") if bounds is None else bounds[0],
        "trailing_silence_s": float("nan") if bounds is None else max(0.0, duration - bounds[1]),
        "zero_fraction": float(np.count_nonzero(~frames.any(axis=1))) / n,
        "loudness_lufs": lufs if math.isfinite(lufs) else float("nan"),
        "rms_dbfs": _db(float(np.mean(np.square(mono, dtype=np.float64)))),
        "peak_dbfs": _db(peak * peak),
        "dc_offset": dc,
        "bandwidth_hz": rolloff,
        "cutoff_hz": cutoff,
        "noise_floor_dbfs": noise_floor_dbfs(y, sr),
    }


def clip_metadata(
    path: str | os.PathLike[str], *, max_duration_s: float | None = DEFAULT_MAX_DURATION_S
) -> dict[str, Any]:
    """Recording-chain properties of one file, measured at its native rate.

    None of these should predict real vs fake in a good corpus; see :data:`PROPERTIES` for the
    list and the meaning of each key.

    Parameters
    ----------
    path : path
        Any format :func:`voxguard.audio.load` reads.
    max_duration_s : float or None
        Refuse longer files (the whole signal is held in memory).

    Returns
    -------
    dict
        One value per key of :data:`PROPERTIES` (NaN where a property is not measurable, e.g.
        silence bounds when no speech is detected, loudness under 0.4 s).

    Raises
    ------
    voxguard.errors.AudioError
        The file cannot be decoded (the same typed errors as :func:`voxguard.audio.load`).
    """
    name = os.fspath(path)
    info = probe(name)
    if max_duration_s is not None and info.duration_s is not None and info.duration_s > max_duration_s:
        raise TooLongError(f"{info.duration_s:.1f} s exceeds the limit of {max_duration_s:.1f} s", path=name)
    blocks = list(iter_frames(name))
    if not blocks or sum(len(b) for b in blocks) == 0:
        raise ZeroLengthAudioError("the file is valid audio but contains no samples", path=name)
    frames = np.concatenate(blocks).astype(np.float32, copy=False)
    check_finite(frames, name)
    return _chain_properties(info) | _signal_properties(frames, info.sample_rate)


def preprocessed_metadata(y: np.ndarray, sr: int, config: PreprocessConfig | None = None) -> dict[str, Any]:
    """The properties of :func:`clip_metadata`, measured on what a model sees.

    ``y`` is run through :func:`voxguard.audio.preprocess` (resampling, DC removal, trimming to a
    fixed margin, loudness normalisation, 16-bit re-quantisation) and the output is measured.
    Rate, channels, codec and bit depth are then constant by construction; bandwidth, noise floor
    and any residual loudness or silence difference are not.

    Parameters
    ----------
    y : np.ndarray, shape (n,) or (n, channels)
        The decoded input signal (channels are averaged).
    sr : int
        Its rate in Hz.
    config : PreprocessConfig, optional
        The canonical preprocessing by default.

    Returns
    -------
    dict
        Keys of :data:`PROPERTIES`, plus ``input_duration_s`` and ``speech_s`` (of the input).

    Raises
    ------
    voxguard.errors.AudioError
        As :func:`voxguard.audio.preprocess` (e.g. :class:`~voxguard.errors.TooShortError` when it
        finds under ``config.min_speech_s`` of speech).
    """
    cfg = config or PreprocessConfig()
    pre = preprocess(to_mono(np.asarray(y, dtype=np.float32)), sr, cfg)
    bits = cfg.requantise_bits
    chain = {
        "sample_rate": pre.sample_rate,
        "channels": 1,
        "container": "preprocessed",
        "codec": f"PCM_{bits}" if bits else "FLOAT",
        "lossy": False,
        "bit_depth": float(bits or 32),
        "float_storage": not bits,
    }
    extra = {"input_duration_s": pre.input_duration_s, "speech_s": pre.speech_s}
    return chain | _signal_properties(pre.samples[:, None], pre.sample_rate) | extra


# --------------------------------------------------------------------------------------------------
# Per-file work (in worker processes) and its cache
# --------------------------------------------------------------------------------------------------


def _cache_digest(preprocessed: bool, config: PreprocessConfig) -> str:
    spec = {
        "audit_version": AUDIT_VERSION,
        "voxguard_version": _voxguard_version(),
        "preprocessed": preprocessed,
        "preprocess": config.to_dict() if preprocessed else None,
    }
    return hashlib.blake2b(json.dumps(spec, sort_keys=True).encode(), digest_size=10).hexdigest()


def _work(path: str, preprocessed: bool, config: PreprocessConfig, cache_dir: str | None) -> dict[str, Any]:
    """Metadata of one file: from the cache, or measured and stored. Bad input is returned, not raised."""
    try:
        entry: Path | None = None
        if cache_dir is not None:
            key = content_hash(path)
            entry = Path(cache_dir) / key[:2] / f"{key}.json"
            try:
                return {"ok": True, "meta": json.loads(entry.read_text()), "cached": True}
            except (OSError, ValueError):
                pass  # a miss, or a damaged entry: measure again
        if preprocessed:
            audio = load(path, sr=config.sample_rate)
            meta = preprocessed_metadata(audio.samples, audio.sample_rate, config)
        else:
            meta = clip_metadata(path)
        if entry is not None:
            entry.parent.mkdir(parents=True, exist_ok=True)
            text = json.dumps(meta)  # NaN round-trips through Python's json
            _atomic_write(entry, lambda f: f.write(text.encode()))
        return {"ok": True, "meta": meta, "cached": False}
    except VoxguardError as e:  # bad input: report and go on; anything else is a bug and propagates
        return {"ok": False, "code": e.code, "message": e.message}


# --------------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------------


def interpret_auc(auc: float) -> tuple[str, str]:
    """Severity and explanation of a metadata-only AUC (0.5 = the chain says nothing about the label).

    Returns
    -------
    (level, text) : (str, str)
        ``level`` is ``"severe"`` (>= 0.9), ``"strong"`` (>= 0.7), ``"weak"`` (>= 0.6), ``"none"``
        or ``"n/a"`` (NaN).
    """
    if not math.isfinite(auc):
        return "n/a", "not measurable (one class only, or too few groups)"
    if auc >= 0.9:
        return "severe", (
            "severe shortcut: the recording chain alone separates real from fake; detector scores on this "
            "data mostly measure the chain"
        )
    if auc >= 0.7:
        return "strong", "strong shortcut: the recording chain predicts the label well; results are suspect"
    if auc >= 0.6:
        return "weak", "weak shortcut: the recording chain carries some label information"
    return "none", "no notable shortcut (near chance)"


@dataclass
class ClassifierResult:
    """The metadata-only classifier, evaluated with grouped k-fold cross-validation.

    Attributes
    ----------
    model : str
        What was trained.
    auc, eer, eer_threshold : float
        Pooled over the out-of-fold scores (1 = spoof, higher = more likely spoof).
    fold_aucs : list of float
        Per fold (NaN where a test fold has one class).
    n_folds : int
    group_by : list of str
        The grouping columns; no group straddles a training and a test fold.
    features : list of str
        Design-matrix columns (numeric properties, one-hot categoricals; constant ones dropped).
    indices : np.ndarray of int64
        Dataset indices of the scored items.
    scores : np.ndarray of float64
        Out-of-fold spoof probabilities, aligned with ``indices``.
    level, interpretation : str
        See :func:`interpret_auc`.
    chance_sd : float
        Standard deviation of the AUC of an uninformative score at these class sizes
        (Mann-Whitney null, ``sqrt((n0 + n1 + 1) / (12 n0 n1))``): on a small corpus an AUC within
        about two of these of 0.5 is not evidence of a shortcut.
    """

    model: str
    auc: float
    eer: float
    eer_threshold: float
    fold_aucs: list[float]
    n_folds: int
    group_by: list[str]
    features: list[str]
    indices: np.ndarray
    scores: np.ndarray
    level: str
    interpretation: str
    chance_sd: float = float("nan")

    @property
    def significant(self) -> bool:
        """Whether the AUC is more than two chance standard deviations above 0.5."""
        return bool(self.auc - 0.5 > 2 * self.chance_sd)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "chance_sd": self.chance_sd,
            "significant": self.significant,
            "auc": self.auc,
            "eer": self.eer,
            "eer_threshold": self.eer_threshold,
            "fold_aucs": self.fold_aucs,
            "n_folds": self.n_folds,
            "group_by": self.group_by,
            "n_items": len(self.indices),
            "features": self.features,
            "level": self.level,
            "interpretation": self.interpretation,
        }


@dataclass
class PropertyLeak:
    """How well one property alone predicts the label.

    Attributes
    ----------
    name, kind : str
    auc_cv : float
        AUC of out-of-fold scores from a one-property histogram classifier (spoof rate per
        quantile bin or category, learnt on the training folds, same grouped folds as the
        metadata classifier). Catches non-monotone relations (e.g. 8 kHz and 44.1 kHz real,
        22.05 kHz fake).
    auc_rank : float
        Mann-Whitney AUC of the raw value over all items (numeric/bool only): > 0.5 means larger in
        spoof. Not cross-validated; a direction, not a leak measure.
    n_missing : int
        Items where the property is NaN (a separate bin for ``auc_cv``).
    bonafide, spoof : str
        Per-class summary: median [5th-95th percentile], share true, or the commonest values.
    level : str
        :func:`interpret_auc` of ``auc_cv``.
    """

    name: str
    kind: str
    auc_cv: float
    auc_rank: float
    n_missing: int
    bonafide: str
    spoof: str
    level: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "property": self.name,
            "kind": self.kind,
            "auc_cv": self.auc_cv,
            "auc_rank": self.auc_rank,
            "n_missing": self.n_missing,
            "bonafide": self.bonafide,
            "spoof": self.spoof,
            "level": self.level,
        }


@dataclass
class AuditResult:
    """Output of :func:`audit`.

    Attributes
    ----------
    dataset : Dataset
    preprocessed : bool
        Whether the properties were measured after the canonical preprocessing.
    preprocess_config : PreprocessConfig
    metadata : list of dict or None
        Per item, in dataset order; ``None`` where the item failed.
    failures : list of FeatureFailure
        Files that could not be measured (path, error code, message), in dataset order. With
        ``preprocessed=True`` this includes clips the preprocessing rejects (codes in
        :data:`REJECTION_CODES`): no model sees those either.
    classifier : ClassifierResult or None
        ``None`` when it could not be evaluated (see ``warnings``).
    properties : list of PropertyLeak
        Sorted by ``auc_cv``, most leaking first.
    by_label, by_system : list of dict
        Long summary tables: one row per (group value, property) with ``n``, ``mean``, ``p5``,
        ``p50``, ``p95`` (numeric and bool; the mean of a bool is the share true) or ``values``
        (value counts of categoricals).
    warnings : list of str
    n_cached, n_computed : int
    audio_s, elapsed_s : float
    """

    dataset: Dataset
    preprocessed: bool
    preprocess_config: PreprocessConfig
    metadata: list[dict[str, Any] | None]
    failures: list[FeatureFailure]
    classifier: ClassifierResult | None
    properties: list[PropertyLeak]
    by_label: list[dict[str, Any]]
    by_system: list[dict[str, Any]]
    warnings: list[str] = field(default_factory=list)
    n_cached: int = 0
    n_computed: int = 0
    audio_s: float = 0.0
    elapsed_s: float = 0.0

    @property
    def ok(self) -> np.ndarray:
        """Indices of the items that were measured."""
        return np.array([i for i, m in enumerate(self.metadata) if m is not None], dtype=np.int64)

    @property
    def level(self) -> str:
        """Severity of the shortcut found by the metadata classifier (:func:`interpret_auc`)."""
        return self.classifier.level if self.classifier is not None else "n/a"

    def leaks(self, min_auc: float = 0.6) -> list[PropertyLeak]:
        """Properties whose one-property AUC is at least ``min_auc``, most leaking first."""
        return [p for p in self.properties if math.isfinite(p.auc_cv) and p.auc_cv >= min_auc]

    @property
    def rejected(self) -> list[FeatureFailure]:
        """Failures that are rejections by the canonical preprocessing (``preprocessed=True`` only)."""
        return [f for f in self.failures if self.preprocessed and f.code in REJECTION_CODES]

    @property
    def errors(self) -> list[FeatureFailure]:
        """Failures other than preprocessing rejections: unreadable or broken files."""
        rejected = {f.index for f in self.rejected}
        return [f for f in self.failures if f.index not in rejected]

    def verdict(self) -> str:
        """One paragraph: the metadata classifier's AUC/EER and what it means."""
        view = "after the canonical preprocessing" if self.preprocessed else "as stored (raw files)"
        n_ok = len(self.ok)
        head = f"{n_ok} of {len(self.dataset)} clips measured {view}"
        if self.failures:
            head += f" ({len(self.errors)} failed, {len(self.rejected)} rejected by the preprocessing)"
        if self.classifier is None:
            return head + ". The metadata classifier could not be evaluated: " + "; ".join(self.warnings)
        c = self.classifier
        top = ", ".join(f"{p.name} ({p.auc_cv:.2f})" for p in self.leaks()[:5]) or "none above 0.6"
        caveat = (
            ""
            if c.significant or c.level == "none"
            else f" (but within two chance standard deviations of 0.5 at this corpus size: ±{c.chance_sd:.3f})"
        )
        return (
            f"{head}. A classifier on the recording-chain metadata alone reaches AUC {c.auc:.3f} "
            f"(EER {100 * c.eer:.1f} %; chance 0.5 ± {c.chance_sd:.3f}) in grouped {c.n_folds}-fold CV by "
            f"{'+'.join(c.group_by)}: {c.interpretation}{caveat}. Leaking properties (one-property AUC): {top}."
        )

    def to_dict(self, *, items: bool = True) -> dict[str, Any]:
        """Everything as JSON-ready Python (NaN kept as float; see :func:`write_audit_report`)."""
        out: dict[str, Any] = {
            "format": "voxguard-audit",
            "version": AUDIT_VERSION,
            "voxguard_version": _voxguard_version(),
            "dataset": self.dataset.name,
            "n_items": len(self.dataset),
            "n_measured": len(self.ok),
            "preprocessed": self.preprocessed,
            "preprocess_config": self.preprocess_config.to_dict() if self.preprocessed else None,
            "verdict": self.verdict(),
            "level": self.level,
            "classifier": None if self.classifier is None else self.classifier.to_dict(),
            "properties": [p.to_dict() for p in self.properties],
            "property_descriptions": {k: {"kind": v[0], "meaning": v[1]} for k, v in PROPERTIES.items()},
            "by_label": self.by_label,
            "by_system": self.by_system,
            "failures": [f.to_dict() for f in self.failures],
            "warnings": self.warnings,
            "timing": {
                "elapsed_s": self.elapsed_s,
                "audio_s": self.audio_s,
                "n_cached": self.n_cached,
                "n_computed": self.n_computed,
            },
        }
        if items:
            out["items"] = self.item_rows()
        return out

    def item_rows(self) -> list[dict[str, Any]]:
        """One row per measured item: id, label, system, dataset, out-of-fold score, properties."""
        ids = self.dataset.ids()
        score = {}
        if self.classifier is not None:
            score = dict(zip(self.classifier.indices.tolist(), self.classifier.scores.tolist(), strict=True))
        rows = []
        for i in self.ok:
            it = self.dataset[int(i)]
            meta = self.metadata[int(i)] or {}
            rows.append(
                {
                    "id": ids[int(i)],
                    "label": it.label,
                    "system": it.system,
                    "dataset": it.dataset,
                    "score": score.get(int(i), float("nan")),
                    **{k: meta.get(k) for k in PROPERTIES},
                }
            )
        return rows


# --------------------------------------------------------------------------------------------------
# Tables and classifiers
# --------------------------------------------------------------------------------------------------


def _column(rows: Sequence[Mapping[str, Any]], name: str) -> np.ndarray:
    """A property over items: float64 (NaN for missing) for numeric/bool, object of str for categoricals."""
    if PROPERTIES[name][0] == "categorical":
        return np.array([str(r.get(name, "")) for r in rows], dtype=object)
    vals = [r.get(name) for r in rows]
    return np.array([float("nan") if v is None else float(v) for v in vals], dtype=np.float64)


def _value_counts(values: np.ndarray, top: int = 4) -> str:
    counts = Counter(values.tolist()).most_common()
    shown = ", ".join(f"{v} {n}" for v, n in counts[:top])
    return shown + (f", +{len(counts) - top} more" if len(counts) > top else "")


def _describe(values: np.ndarray, kind: str) -> str:
    """Short per-class summary used in the property table."""
    if kind == "categorical":
        return _value_counts(values, top=3)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return "n/a"
    if kind == "bool":
        return f"{100 * finite.mean():.0f} % true"
    p5, p50, p95 = np.percentile(finite, (5, 50, 95))
    return f"{_num(p50)} [{_num(p5)}, {_num(p95)}]"


def _num(x: float) -> str:
    if not math.isfinite(x):
        return "n/a"
    if x != 0 and (abs(x) >= 1e5 or abs(x) < 1e-3):
        return f"{x:.2e}"
    return f"{x:.4g}" if abs(x) < 100 else f"{x:.0f}"


def summary_table(
    rows: Sequence[Mapping[str, Any]], groups: Sequence[str], *, group_name: str = "group"
) -> list[dict[str, Any]]:
    """Long summary: one row per (group value, property).

    Numeric and bool properties get ``n`` (non-missing), ``mean``, ``p5``, ``p50``, ``p95``;
    categoricals get ``values`` (value counts, commonest first).
    """
    g = np.asarray(groups, dtype=object)
    out: list[dict[str, Any]] = []
    order = list(dict.fromkeys(g.tolist()))
    columns = {name: _column(rows, name) for name in PROPERTIES}
    for value in order:
        mask = g == value
        for name, (kind, _) in PROPERTIES.items():
            v = columns[name][mask]
            row: dict[str, Any] = {group_name: value, "property": name, "n_items": int(mask.sum())}
            if kind == "categorical":
                row |= {"n": int(v.size), "mean": None, "p5": None, "p50": None, "p95": None}
                row["values"] = _value_counts(v, top=6)
            else:
                f = v[np.isfinite(v)]
                stats = np.percentile(f, (5, 50, 95)) if f.size else np.full(3, np.nan)
                row |= {
                    "n": int(f.size),
                    "mean": float(f.mean()) if f.size else float("nan"),
                    "p5": float(stats[0]),
                    "p50": float(stats[1]),
                    "p95": float(stats[2]),
                    "values": "",
                }
            out.append(row)
    return out


def _design_matrix(rows: Sequence[Mapping[str, Any]], properties: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Numeric/bool properties as they are (NaN kept), categoricals one-hot; constant columns dropped."""
    cols: list[np.ndarray] = []
    names: list[str] = []
    for name in properties:
        kind = PROPERTIES[name][0]
        v = _column(rows, name)
        if kind == "categorical":
            uniq, inv = np.unique(v.astype(str), return_inverse=True)
            if len(uniq) < 2:
                continue
            cols.append((inv[:, None] == np.arange(len(uniq))[None, :]).astype(np.float64))
            names += [f"{name}={u}" for u in uniq]
        else:
            finite = v[np.isfinite(v)]
            if finite.size and (np.ptp(finite) > 0 or finite.size < v.size):
                cols.append(v[:, None])
                names.append(name)
    if not cols:
        return np.zeros((len(rows), 0)), []
    return np.hstack(cols), names


def _fit_predict(X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray, seed: int) -> np.ndarray:
    """Gradient-boosted trees on the metadata; constant prior where training lacks a class."""
    if X_train.shape[1] == 0:
        return np.full(len(X_test), 0.5)  # nothing to learn from: every item scores the same
    if len(np.unique(y_train)) < 2:
        return np.full(len(X_test), float(y_train.mean()))
    from sklearn.ensemble import HistGradientBoostingClassifier  # lazy: scikit-learn is a [train] extra

    clf = HistGradientBoostingClassifier(
        max_iter=100,
        learning_rate=0.1,
        max_leaf_nodes=15,
        # Few items per leaf on small corpora, but never single-item leaves: a trivial model is the point.
        min_samples_leaf=max(5, min(20, len(y_train) // 10)),
        class_weight="balanced",  # corpora are often unbalanced (DEV: 2.7 bona fide per spoof)
        early_stopping=False,
        random_state=seed,
    )
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    # One OpenMP thread: metadata tables are tiny, and on a busy machine spinning OpenMP workers
    # make a fit of a few hundred rows take seconds instead of milliseconds.
    with threadpool_limits(limits=1, user_api="openmp"):
        clf.fit(X_train, y_train)
        return clf.predict_proba(X_test)[:, 1]


def _binned_scores(
    values: np.ndarray, kind: str, y: np.ndarray, folds: Sequence[np.ndarray], max_bins: int = 10
) -> np.ndarray:
    """Out-of-fold spoof rate of each item's bin (quantile bins or categories) learnt on the other folds."""
    n = len(values)
    codes: np.ndarray | None = None
    if kind == "categorical":
        categories, codes = np.unique(values.astype(str), return_inverse=True)
        constant = len(categories) < 2
    else:
        finite = values[np.isfinite(values)]
        constant = (finite.size == 0 or np.ptp(finite) == 0) and finite.size in (0, n)
    if constant:
        return np.full(n, 0.5)  # no information; also avoids fold-prior artefacts (AUC exactly 0.5)
    # One prior for every fold: a per-fold training prior would anti-correlate with the test fold's
    # class mix and push near-constant properties below 0.5.
    prior = float(y.mean())
    scores = np.full(n, np.nan)
    all_idx = np.arange(n)
    for test in folds:
        train = np.setdiff1d(all_idx, test, assume_unique=True)
        if codes is not None:
            bins = codes
        else:
            finite_train = values[train][np.isfinite(values[train])]
            n_bins = int(min(max_bins, max(2, len(train) // 10)))
            if finite_train.size:
                edges = np.unique(np.quantile(finite_train, np.linspace(0, 1, n_bins + 1)[1:-1]))
                # Each distinct training value gets its own side of an edge when there are few of them.
                uniq = np.unique(finite_train)
                if len(uniq) <= n_bins:
                    edges = uniq[1:]
            else:
                edges = np.zeros(0)
            bins = np.where(np.isfinite(values), np.searchsorted(edges, np.nan_to_num(values), side="right"), -1)
            bins = bins + 1  # NaN -> bin 0
        n_codes = int(bins.max()) + 1
        spoof = np.bincount(bins[train], weights=y[train], minlength=n_codes)
        total = np.bincount(bins[train], minlength=n_codes)
        rate = (spoof + 2.0 * prior) / (total + 2.0)  # shrunk towards the prior; empty bins get the prior
        scores[test] = rate[bins[test]]
    return scores


def _rank_auc(values: np.ndarray, y: np.ndarray) -> float:
    from voxguard.evaluate import metrics as M

    ok = np.isfinite(values)
    if len(np.unique(y[ok])) < 2:
        return float("nan")
    return M.roc_auc(y[ok], values[ok])


# --------------------------------------------------------------------------------------------------
# The audit
# --------------------------------------------------------------------------------------------------


def _group_columns(group_by: str | Sequence[str]) -> list[str]:
    if isinstance(group_by, str):
        return [c.strip() for c in group_by.split(",") if c.strip()]
    return list(group_by)


def audit(
    dataset: Dataset,
    *,
    preprocessed: bool = False,
    workers: int = 1,
    cache_dir: str | os.PathLike[str] | None = None,
    group_by: str | Sequence[str] = "utt_group",
    seed: int = 0,
    n_splits: int = 5,
    preprocess_config: PreprocessConfig | None = None,
    exclude: Sequence[str] = (),
    use_cache: bool = True,
    progress: bool = True,
) -> AuditResult:
    """Measure the recording chain of every item and test whether it predicts the label.

    Parameters
    ----------
    dataset : Dataset
    preprocessed : bool
        Measure after the canonical preprocessing (what a model sees) instead of the raw files.
    workers : int
        Processes (spawned, like :func:`voxguard.datasets.extract_features`: scripts need the
        ``if __name__ == "__main__":`` guard); 1 runs in this process.
    cache_dir : path, optional
        Cache root (default :func:`voxguard.datasets.default_cache_dir`); entries live under
        ``<root>/audit/<config digest>/`` keyed by the file's content hash, so a renamed or moved
        file is not measured again.
    group_by : str or sequence of str
        Grouping columns for the cross-validation (``"speaker,utt_group"`` joins both, see
        :meth:`Dataset.groups`). Never random: paired real/fake copies would leak.
    seed : int
        Fold assignment and classifier seed.
    n_splits : int
        Folds (reduced to the number of groups when there are fewer).
    preprocess_config : PreprocessConfig, optional
        Used with ``preprocessed=True``; the canonical preprocessing by default.
    exclude : sequence of str
        Properties the metadata classifier must not use (e.g. ``"duration_s"`` where clip length
        is a known difference handled elsewhere); they are still measured and get their own AUC.
    use_cache : bool
        ``False`` neither reads nor writes the cache.
    progress : bool
        Progress bar on stderr (files, audio seconds, ETA).

    Returns
    -------
    AuditResult
        Per-item metadata, failures, per-label/per-system summaries, the metadata classifier's
        grouped-CV AUC/EER with its interpretation, and one-property AUCs.
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    unknown = sorted(set(exclude) - set(PROPERTIES))
    if unknown:
        raise ValueError(f"unknown propert{'y' if len(unknown) == 1 else 'ies'} {unknown}; known: {list(PROPERTIES)}")
    cfg = preprocess_config or PreprocessConfig()
    cache: str | None = None
    if use_cache:
        root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        cache = str(root / "audit" / _cache_digest(preprocessed, cfg))
    n = len(dataset)
    metadata: list[dict[str, Any] | None] = [None] * n
    failures: dict[int, FeatureFailure] = {}
    counts = {"cached": 0, "computed": 0}
    audio_s = 0.0
    t0 = time.perf_counter()

    label = "audit (preprocessed)" if preprocessed else "audit (raw)"
    with _Progress(n, enabled=progress, label=label) as bar:

        def handle(i: int, out: dict[str, Any]) -> None:
            nonlocal audio_s
            if out["ok"]:
                meta = out["meta"]
                metadata[i] = meta
                counts["cached" if out["cached"] else "computed"] += 1
                audio_s += float(meta.get("input_duration_s", meta.get("duration_s", 0.0)))
            else:
                failures[i] = FeatureFailure(i, dataset[i].path, out["code"], out["message"])
            bar.advance(audio_s)

        if workers == 1 or n <= 1:
            for i, item in enumerate(dataset):
                handle(i, _work(str(item.path), preprocessed, cfg, cache))
        else:
            ctx = multiprocessing.get_context("spawn")  # as in cache.py: forking next to threads can hang
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as ex:
                todo = iter(enumerate(dataset))
                pending: dict[Future[dict[str, Any]], int] = {}
                for i, item in itertools.islice(todo, 4 * workers):
                    pending[ex.submit(_work, str(item.path), preprocessed, cfg, cache)] = i
                while pending:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in done:
                        handle(pending.pop(fut), fut.result())
                    for i, item in itertools.islice(todo, len(done)):
                        pending[ex.submit(_work, str(item.path), preprocessed, cfg, cache)] = i

    result = AuditResult(
        dataset=dataset,
        preprocessed=preprocessed,
        preprocess_config=cfg,
        metadata=metadata,
        failures=[failures[i] for i in sorted(failures)],
        classifier=None,
        properties=[],
        by_label=[],
        by_system=[],
        n_cached=counts["cached"],
        n_computed=counts["computed"],
        audio_s=audio_s,
    )
    used = [p for p in PROPERTIES if p not in set(exclude)]
    _analyse(result, _group_columns(group_by), seed=seed, n_splits=n_splits, properties=used)
    result.elapsed_s = time.perf_counter() - t0
    return result


def _analyse(result: AuditResult, group_by: list[str], *, seed: int, n_splits: int, properties: Sequence[str]) -> None:
    """Fill in the summaries, the metadata classifier and the per-property AUCs."""
    from voxguard.datasets.splits import group_kfold
    from voxguard.evaluate import metrics as M

    ok = result.ok
    if result.failures:
        result.warnings.append(
            f"{len(result.failures)} of {len(result.dataset)} items could not be measured and are left out"
        )
    rows = [result.metadata[int(i)] or {} for i in ok]
    sub = result.dataset.subset(ok)
    y = sub.labels()
    result.by_label = summary_table(rows, sub.column("label").tolist(), group_name="label")
    result.by_system = summary_table(rows, sub.column("system").tolist(), group_name="system")

    columns = {name: _column(rows, name) for name in PROPERTIES}
    per_class = {
        name: {cls: _describe(v[y == code], PROPERTIES[name][0]) for cls, code in ((BONAFIDE, 0), (SPOOF, 1))}
        for name, v in columns.items()
    }
    n_missing = {
        name: 0 if PROPERTIES[name][0] == "categorical" else int(np.count_nonzero(~np.isfinite(v)))
        for name, v in columns.items()
    }

    folds: list[np.ndarray] = []
    n_groups = int(sub.groups(group_by).max()) + 1 if len(sub) else 0
    if len(np.unique(y)) < 2:
        result.warnings.append("only one class was measured: no classifier, no per-property AUC")
    elif n_groups < 2:
        result.warnings.append(f"fewer than 2 groups by {'+'.join(group_by)}: no cross-validation possible")
    else:
        k = min(n_splits, n_groups)
        if k < n_splits:
            result.warnings.append(f"only {n_groups} groups: {k} folds instead of {n_splits}")
        # Tiny corpora can leave a fold empty; it scores nothing.
        folds = [s.test for s in group_kfold(sub, k, by=group_by, seed=seed) if len(s.test)]

    if folds:
        X, names = _design_matrix(rows, properties)
        scores = np.zeros(len(y))
        fold_aucs: list[float] = []
        for test in folds:
            train = np.setdiff1d(np.arange(len(y)), test, assume_unique=True)
            scores[test] = _fit_predict(X[train], y[train], X[test], seed)
            fold_aucs.append(M.roc_auc(y[test], scores[test]) if len(np.unique(y[test])) == 2 else float("nan"))
            if len(np.unique(y[train])) < 2:
                result.warnings.append("a training fold had one class only; its test fold got the prior")
        auc = M.roc_auc(y, scores)
        e = M.eer(y, scores)
        n_spoof = int(y.sum())
        level, text = interpret_auc(auc)
        result.classifier = ClassifierResult(
            model="HistGradientBoostingClassifier(max_iter=100, max_leaf_nodes=15, class_weight='balanced') "
            "on numeric properties + one-hot categoricals"
            + (
                f", without {', '.join(p for p in PROPERTIES if p not in properties)}"
                if len(properties) < len(PROPERTIES)
                else ""
            ),
            auc=auc,
            eer=e.eer,
            eer_threshold=e.threshold,
            fold_aucs=fold_aucs,
            n_folds=len(folds),
            group_by=group_by,
            features=names,
            indices=ok.copy(),
            scores=scores,
            level=level,
            interpretation=text,
            chance_sd=math.sqrt((len(y) + 1) / (12.0 * n_spoof * (len(y) - n_spoof))),
        )

    leaks: list[PropertyLeak] = []
    for name, (kind, _) in PROPERTIES.items():
        v = columns[name]
        auc_cv = auc_rank = float("nan")
        if folds:
            auc_cv = M.roc_auc(y, _binned_scores(v, kind, y, folds))
            if kind != "categorical":
                auc_rank = _rank_auc(v, y)
        leaks.append(
            PropertyLeak(
                name=name,
                kind=kind,
                auc_cv=auc_cv,
                auc_rank=auc_rank,
                n_missing=n_missing[name],
                bonafide=per_class[name][BONAFIDE],
                spoof=per_class[name][SPOOF],
                level=interpret_auc(auc_cv)[0],
            )
        )
    result.properties = sorted(leaks, key=lambda p: -p.auc_cv if math.isfinite(p.auc_cv) else 1.0)


# --------------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditReportPaths:
    """Files written by :func:`write_audit_report`.

    ``html``/``markdown``/``metrics_json``/``figures`` come from
    :func:`voxguard.evaluate.report.write_report` (ROC, DET, histograms of the metadata
    classifier's out-of-fold scores, the audit tables as extra sections); ``audit_json`` holds the
    whole :class:`AuditResult` and ``metadata_csv`` one row per item.
    """

    out_dir: Path
    html: Path
    markdown: Path
    metrics_json: Path | None
    audit_json: Path
    metadata_csv: Path
    figures: dict[str, Path]


# Properties shown (as medians) in the per-system table of the report.
_SYSTEM_COLUMNS = (
    "sample_rate",
    "effective_bits",
    "duration_s",
    "leading_silence_s",
    "trailing_silence_s",
    "loudness_lufs",
    "bandwidth_hz",
    "cutoff_hz",
    "noise_floor_dbfs",
)


def _property_rows(result: AuditResult) -> list[dict[str, Any]]:
    return [
        {
            "property": p.name,
            "AUC (grouped CV)": p.auc_cv,
            "rank AUC": p.auc_rank,
            "shortcut": p.level,
            "bonafide": p.bonafide,
            "spoof": p.spoof,
            "missing": p.n_missing,
        }
        for p in result.properties
    ]


def _system_rows(result: AuditResult) -> list[dict[str, Any]]:
    """Wide per-system table: count, label, medians of the main numeric properties, commonest codec."""
    by: dict[str, dict[str, Any]] = {}
    for r in result.by_system:
        row = by.setdefault(r["system"], {"system": r["system"], "n": r["n_items"]})
        if r["property"] in _SYSTEM_COLUMNS:
            row[r["property"]] = r["p50"]
        elif r["property"] == "lossy":
            row["lossy share"] = r["mean"]
        elif r["property"] == "codec":
            row["codec"] = r["values"].split(",")[0] if r["values"] else ""
    return list(by.values())


def _label_rows(result: AuditResult) -> list[dict[str, Any]]:
    return [
        {k: r[k] for k in ("label", "property", "n", "mean", "p5", "p50", "p95", "values")} for r in result.by_label
    ]


def _json_ready(value: Any) -> Any:
    from voxguard.evaluate.report import _json_safe

    return _json_safe(value)


def _write_metadata_csv(result: AuditResult, path: Path) -> None:
    import csv

    rows = result.item_rows()
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["id", "label", "system", "dataset", "score", *PROPERTIES])
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()})


def write_audit_report(result: AuditResult, out_dir: str | os.PathLike[str]) -> AuditReportPaths:
    """Write the audit as HTML + Markdown (with ROC/DET of the metadata classifier), JSON and CSV.

    Parameters
    ----------
    result : AuditResult
    out_dir : path
        Created if needed. Files: ``report.html``, ``summary.md``, ``metrics.json`` and PNG figures
        (from :func:`voxguard.evaluate.report.write_report`), ``audit.json``, ``metadata.csv``.

    Returns
    -------
    AuditReportPaths
    """
    from voxguard.evaluate.report import ReportSection, _generic_table, _html_table, _md_table, write_report

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    view = "preprocessed" if result.preprocessed else "raw"
    title = f"voxguard shortcut audit of {result.dataset.name} ({view})"
    how = (
        "Each clip's recording-chain properties were measured "
        + (
            "on the output of the canonical preprocessing (what a model sees). "
            if result.preprocessed
            else "on the file as stored, at its native rate. "
        )
        + "A classifier that sees only these properties (no speech features) was evaluated with grouped "
        "cross-validation; the ROC/DET figures and the summary above are its out-of-fold scores. An AUC near "
        "0.5 means the chain does not give the label away; >= 0.7 is a strong shortcut that any detector "
        "trained on this data can exploit. 'AUC (grouped CV)' of a property is a one-property histogram "
        "classifier on the same folds; 'rank AUC' > 0.5 means the value is larger in spoof."
    )
    sections = [
        ReportSection(title="Shortcut audit verdict", markdown=result.verdict() + "\n\n" + how),
        ReportSection(title="Leakage per property", table=_property_rows(result)),
        ReportSection(
            title="Properties measured",
            table=[{"property": k, "kind": v[0], "meaning": v[1]} for k, v in PROPERTIES.items()],
        ),
        ReportSection(title="By label", table=_label_rows(result)),
        ReportSection(title="By system (medians)", table=_system_rows(result)),
    ]
    if result.failures:
        sections.append(ReportSection(title="Files not measured", table=[f.to_dict() for f in result.failures]))
    if result.warnings:
        sections.append(ReportSection(title="Warnings", markdown="\n".join(f"- {w}" for w in result.warnings)))

    figures: dict[str, Path] = {}
    metrics_json: Path | None = None
    if result.classifier is not None:
        c = result.classifier
        sub = result.dataset.subset(c.indices)
        data = {
            "id": np.asarray(sub.ids(), dtype=str),
            "label": sub.labels(),
            "score": c.scores,
            "system": sub.column("system").astype(str),
            "dataset": sub.column("dataset").astype(str),
        }
        groups = [g for g in ("system", "dataset") if len(np.unique(data[g])) >= 2]
        paths = write_report(data, out, title=title, group_columns=groups, extra_sections=sections)
        html_path, md_path, metrics_json, figures = paths.html, paths.markdown, paths.metrics_json, paths.figures
    else:
        # No classifier (one class, too few groups): the tables alone, without curves.
        md = [f"# {title}", ""]
        h = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head><body>"]
        h.append(f"<h1>{html.escape(title)}</h1>")
        for sec in sections:
            md += [f"## {sec.title}", ""]
            h.append(f"<h2>{html.escape(sec.title)}</h2>")
            if sec.markdown:
                md += [sec.markdown, ""]
                h.append(f"<pre>{html.escape(sec.markdown)}</pre>")
            if sec.table:
                md += [_md_table(*_generic_table(sec.table)), ""]
                h.append(_html_table(*_generic_table(sec.table)))
        h.append("</body></html>")
        md_path, html_path = out / "summary.md", out / "report.html"
        md_path.write_text("\n".join(md), encoding="utf-8")
        html_path.write_text("\n".join(h) + "\n", encoding="utf-8")

    audit_json = out / "audit.json"
    audit_json.write_text(json.dumps(_json_ready(result.to_dict()), indent=1, allow_nan=False) + "\n", encoding="utf-8")
    metadata_csv = out / "metadata.csv"
    _write_metadata_csv(result, metadata_csv)
    return AuditReportPaths(
        out_dir=out,
        html=html_path,
        markdown=md_path,
        metrics_json=metrics_json,
        audit_json=audit_json,
        metadata_csv=metadata_csv,
        figures=figures,
    )
