"""Timeline building blocks: segment speech fractions, chunked segment scoring, waveform envelopes.

All functions are vectorised over segments; the only Python loops run over chunks of about a
minute of audio (so memory stays bounded however long the recording is).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np


class SegmentScorer(Protocol):
    """What the scanner needs from a detector (:class:`voxguard.models.detector.Detector` has it)."""

    sample_rate: int | None

    @property
    def name(self) -> str: ...

    @property
    def segment_s(self) -> float: ...

    def thresholds(self) -> dict[str, float]: ...

    def prepare_array(
        self, y: np.ndarray, sr: int, *, trim: bool = True, activity: Any = None
    ) -> tuple[np.ndarray, int, float]: ...

    def segment_scores(self, y: np.ndarray, sr: int, bounds: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


def _frame_index(t_s: np.ndarray, frame_s: float, n_frames: int) -> np.ndarray:
    """Index of the first frame whose centre is at or after ``t_s`` (clipped to the mask)."""
    return np.clip(np.ceil(np.asarray(t_s, dtype=np.float64) / frame_s - 0.5), 0, n_frames).astype(np.int64)


def speech_seconds(mask: np.ndarray, frame_s: float, starts_s: np.ndarray, ends_s: np.ndarray) -> np.ndarray:
    """Seconds of speech inside each ``[start, end)`` span (frames counted by their centre).

    Parameters
    ----------
    mask : np.ndarray, shape (n_frames,), bool
        Speech decision per frame (frame ``i`` covers ``[i * frame_s, (i + 1) * frame_s)``).
    frame_s : float
    starts_s, ends_s : np.ndarray, shape (n_segments,)
        Spans in seconds on the time axis of ``mask``; beyond the mask counts as non-speech.
    """
    csum = np.concatenate([[0], np.cumsum(mask, dtype=np.int64)])
    lo = _frame_index(starts_s, frame_s, len(mask))
    hi = np.maximum(_frame_index(ends_s, frame_s, len(mask)), lo)
    return (csum[hi] - csum[lo]) * frame_s


def speech_fraction(mask: np.ndarray, frame_s: float, starts_s: np.ndarray, ends_s: np.ndarray) -> np.ndarray:
    """Fraction in [0, 1] of each ``[start, end)`` span that is speech (see :func:`speech_seconds`)."""
    span = np.maximum(np.asarray(ends_s, dtype=np.float64) - np.asarray(starts_s, dtype=np.float64), frame_s)
    return np.clip(speech_seconds(mask, frame_s, starts_s, ends_s) / span, 0.0, 1.0)


def align_end(lo: int, hi: int, unit: int) -> int:
    """``hi`` moved up so that ``hi - lo`` is a whole number of ``unit`` samples."""
    return lo + -(-(hi - lo) // unit) * unit


def score_segments(
    detector: SegmentScorer, y: np.ndarray, sr: int, bounds: np.ndarray, *, chunk_n: int, window_n: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Score segments of a prepared signal a chunk at a time (bounded feature memory).

    Segments are grouped by ``start // chunk_n``; each group is scored on the slice of ``y`` it
    spans, extended to a whole number of ``window_n`` samples, so a window-level model sees the
    same complete windows as on the whole signal whenever ``chunk_n`` is a multiple of its window.

    Returns
    -------
    (scores, proba) : two float64 arrays of shape (n_segments,)
    """
    scores = np.full(len(bounds), np.nan)
    proba = np.full(len(bounds), np.nan)
    if len(bounds) == 0:
        return scores, proba
    group = bounds[:, 0] // max(1, chunk_n)
    # bounds are sorted by start, so each group is one contiguous run.
    edges = np.flatnonzero(np.diff(group)) + 1
    for idx in np.split(np.arange(len(bounds)), edges):
        lo, hi = int(bounds[idx, 0].min()), int(bounds[idx, 1].max())
        hi = min(len(y), align_end(lo, hi, window_n))
        s, p = detector.segment_scores(y[lo:hi], sr, bounds[idx] - lo)
        scores[idx], proba[idx] = s, p
    return scores, proba


def peak_envelope(y: np.ndarray, frame_n: int) -> np.ndarray:
    """Peak absolute amplitude of consecutive ``frame_n``-sample frames (a last partial frame included)."""
    if len(y) == 0:
        return np.zeros(0, dtype=np.float32)
    n_full = len(y) // frame_n
    peaks = np.abs(y[: n_full * frame_n]).reshape(n_full, frame_n).max(axis=1) if n_full else np.zeros(0)
    if len(y) > n_full * frame_n:
        peaks = np.append(peaks, np.abs(y[n_full * frame_n :]).max())
    return peaks.astype(np.float32)
