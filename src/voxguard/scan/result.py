"""What a scan returns: :class:`ScanResult` (one per input) and its :class:`Timeline` of segments.

Everything here is plain data. :meth:`ScanResult.to_dict` gives a JSON-safe dict (no NaN or
infinity: missing numbers are ``None``), the shape used by ``voxguard scan --format json`` and,
later, the REST API.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np

from voxguard.models.watermark import WatermarkCheck


class Verdict(StrEnum):
    """File-level decision."""

    REAL = "REAL"
    FAKE = "FAKE"
    UNCERTAIN = "UNCERTAIN"


def _num(x: float | None, digits: int) -> float | None:
    """A JSON-safe rounded float, ``None`` for missing, NaN or infinite values."""
    if x is None:
        return None
    x = float(x)
    return round(x, digits) if math.isfinite(x) else None


@dataclass(frozen=True)
class Segment:
    """One sliding window of the timeline (times in seconds of the original recording)."""

    start_s: float
    end_s: float
    probability: float | None
    score: float | None
    speech_fraction: float
    eligible: bool
    watermark: float | None = None
    wide_band: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "start_s": _num(self.start_s, 3),
            "end_s": _num(self.end_s, 3),
            "probability": _num(self.probability, 6),
            "score": _num(self.score, 6),
            "speech_fraction": _num(self.speech_fraction, 3),
            "eligible": self.eligible,
            "watermark": _num(self.watermark, 4),  # None unless the scan checked for a watermark
            "wide_band": _num(self.wide_band, 6),  # None unless the wide-band companion was used
        }


@dataclass(frozen=True, eq=False)  # arrays: compare ``to_list()`` outputs instead
class Timeline:
    """Per-segment results as arrays (cheap for long files); iterate for :class:`Segment` objects.

    Attributes
    ----------
    starts_s, ends_s : np.ndarray, shape (n_segments,)
        Segment bounds in seconds of the original recording.
    proba : np.ndarray, shape (n_segments,)
        Calibrated P(fake) per segment; NaN where the segment could not be scored.
    scores : np.ndarray, shape (n_segments,)
        Raw model score per segment (higher = more likely fake); NaN where not scored.
    speech_fraction : np.ndarray, shape (n_segments,)
        Fraction of the segment that the voice-activity detector marks as speech.
    eligible : np.ndarray, shape (n_segments,), bool
        Whether the segment counts towards the file verdict (enough speech and a score).
    watermark : np.ndarray, shape (n_segments,), or None
        Watermark decoder confidence per segment (:mod:`voxguard.models.watermark`; NaN where
        nothing could be decoded); ``None`` when the scan did not check for a watermark.
    wide_band : np.ndarray, shape (n_segments,), or None
        The wide-band companion's own calibrated P(fake) per segment, from the band up to
        9.8 kHz (:mod:`voxguard.models.companion`; NaN where it could not score), when the
        scan used it; ``proba`` is then the mix of the main model's and this. ``None`` when the
        companion was not used.
    """

    starts_s: np.ndarray
    ends_s: np.ndarray
    proba: np.ndarray
    scores: np.ndarray
    speech_fraction: np.ndarray
    eligible: np.ndarray
    watermark: np.ndarray | None = None
    wide_band: np.ndarray | None = None

    @classmethod
    def empty(cls) -> Timeline:
        z = np.zeros(0)
        return cls(z, z, z, z, z, np.zeros(0, dtype=bool))

    def __len__(self) -> int:
        return len(self.starts_s)

    def __iter__(self) -> Iterator[Segment]:
        for i in range(len(self)):
            yield self[i]

    def __getitem__(self, i: int) -> Segment:
        return Segment(
            start_s=float(self.starts_s[i]),
            end_s=float(self.ends_s[i]),
            probability=float(self.proba[i]),
            score=float(self.scores[i]),
            speech_fraction=float(self.speech_fraction[i]),
            eligible=bool(self.eligible[i]),
            watermark=float(self.watermark[i]) if self.watermark is not None else None,
            wide_band=float(self.wide_band[i]) if self.wide_band is not None else None,
        )

    def to_list(self) -> list[dict[str, Any]]:
        return [seg.to_dict() for seg in self]

    def most_suspicious(self) -> Segment | None:
        """The eligible segment with the highest P(fake) (any scored one if none is eligible)."""
        finite = np.isfinite(self.proba)
        pool = self.eligible & finite if (self.eligible & finite).any() else finite
        if not pool.any():
            return None
        return self[int(np.flatnonzero(pool)[np.argmax(self.proba[pool])])]


@dataclass(frozen=True, eq=False)
class Envelope:
    """Peak absolute amplitude per ``frame_s`` frame of the original signal (for plots only)."""

    frame_s: float
    peak: np.ndarray


@dataclass(frozen=True)
class ErrorInfo:
    """Why an input could not be scanned: a stable ``code`` (see :mod:`voxguard.errors`) and a message."""

    code: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True)
class WideBandUse:
    """What the wide-band companion did for one recording (:mod:`voxguard.models.companion`).

    Attributes
    ----------
    model : str
        The companion's name.
    used : bool
        Whether its scores were mixed into the segment probabilities (and the verdict used the
        mix's threshold).
    top_band_db : float or None
        The recording's 8-9.8 kHz power relative to its total (dB); ``None`` when not measured
        (a rate that cannot hold the band, or a streamed scan).
    segments : int
        Segments whose probability is the mix.
    note : str or None
        Why it was not used.
    """

    model: str
    used: bool = False
    top_band_db: float | None = None
    segments: int = 0
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "used": self.used,
            "top_band_db": _num(self.top_band_db, 1),
            "segments": self.segments,
            "note": self.note,
        }


@dataclass
class ScanResult:
    """The outcome of scanning one recording.

    Attributes
    ----------
    path : str
        The input as given (a path, ``"-"`` for standard input, ``"<array>"`` for an array).
    verdict : Verdict or None
        ``REAL``, ``FAKE`` or ``UNCERTAIN``; ``None`` when the input failed (see ``error``).
    probability : float or None
        File-level P(fake): the top-k mean of the eligible segments' calibrated probabilities
        (see :mod:`voxguard.scan.verdict`).
    score : float or None
        Mean raw model score of the same top-k segments (higher = more likely fake).
    threshold : float
        The P(fake) threshold the verdict used.
    operating_point : str
        ``"eer"``, ``"low-fa"`` or ``"custom"`` (an explicit threshold).
    margin : float
        Half-width of the UNCERTAIN band around the threshold, as applied.
    model : str
        Model name.
    duration_s, speech_s : float or None
        Length of the recording and seconds of detected speech.
    segment_s, hop_s : float
        Timeline window and hop in seconds.
    mode : str
        ``"whole"`` (decoded at once) or ``"stream"`` (long input, scored block by block).
    timeline : Timeline
    reason : str or None
        Why the verdict is UNCERTAIN (too little speech, too close to the threshold), or why it
        is FAKE although the detector's P(fake) is not over the threshold (a watermark).
    watermark : WatermarkCheck or None
        The watermark check over the whole recording, when the scan ran one
        (``Scanner(watermark=True)``, ``voxguard scan --watermark``).
    wide_band : WideBandUse or None
        What the detector's wide-band companion did (``None``: the detector has none, or it was
        turned off).
    error : ErrorInfo or None
    elapsed_s : float
        Processing time in seconds.
    plot : str or None
        Path of the PNG written for this input, if any.
    envelope : Envelope or None
        Waveform envelope kept only while a plot is drawn (not serialised).
    """

    path: str
    model: str
    threshold: float
    operating_point: str
    margin: float
    segment_s: float
    hop_s: float
    verdict: Verdict | None = None
    probability: float | None = None
    score: float | None = None
    duration_s: float | None = None
    speech_s: float | None = None
    mode: str | None = None
    timeline: Timeline = field(default_factory=Timeline.empty)
    reason: str | None = None
    error: ErrorInfo | None = None
    elapsed_s: float = 0.0
    plot: str | None = None
    watermark: WatermarkCheck | None = None
    wide_band: WideBandUse | None = None
    envelope: Envelope | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self, *, timeline: bool = True) -> dict[str, Any]:
        """JSON-safe dict (``None`` for missing numbers); ``timeline=False`` omits the segments."""
        out: dict[str, Any] = {
            "path": self.path,
            "verdict": self.verdict.value if self.verdict is not None else None,
            "probability": _num(self.probability, 6),
            "score": _num(self.score, 6),
            "threshold": _num(self.threshold, 6),
            "operating_point": self.operating_point,
            "margin": _num(self.margin, 6),
            "model": self.model,
            "duration_s": _num(self.duration_s, 3),
            "speech_s": _num(self.speech_s, 3),
            "segment_s": _num(self.segment_s, 3),
            "hop_s": _num(self.hop_s, 3),
            "mode": self.mode,
            "reason": self.reason,
            "error": self.error.to_dict() if self.error is not None else None,
            "elapsed_s": _num(self.elapsed_s, 3),
            "plot": self.plot,
            "watermark": self.watermark.to_dict() if self.watermark is not None else None,
            "wide_band": self.wide_band.to_dict() if self.wide_band is not None else None,
        }
        if timeline:
            out["timeline"] = self.timeline.to_list()
        return out
