"""Sliding windows over a signal, for per-segment scoring (the scanner's timeline)."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def segment_bounds(n_samples: int, sr: int, segment_s: float, hop_s: float) -> np.ndarray:
    """Start/stop sample indices of windows of ``segment_s`` every ``hop_s`` seconds.

    A signal shorter than one segment gives one window covering it; the last window is aligned
    to the end of the signal so that no trailing audio is left unscored.

    Returns
    -------
    np.ndarray, shape (n_segments, 2), int64
    """
    if segment_s <= 0 or hop_s <= 0:
        raise ValueError("segment_s and hop_s must be positive")
    seg, hop = int(round(segment_s * sr)), max(1, int(round(hop_s * sr)))
    if n_samples <= seg:
        return np.array([[0, n_samples]], dtype=np.int64)
    starts = np.arange(0, n_samples - seg + 1, hop, dtype=np.int64)
    if starts[-1] + seg < n_samples:
        starts = np.append(starts, n_samples - seg)
    return np.stack([starts, starts + seg], axis=1)


def segment(y: np.ndarray, sr: int, segment_s: float, hop_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Windows of ``y`` as a strided view.

    Returns
    -------
    (bounds, windows) : (np.ndarray (n_segments, 2), np.ndarray (n_segments, segment_len))
        ``windows`` is read-only; if ``y`` is shorter than one segment it is a single window of len(y).
    """
    bounds = segment_bounds(len(y), sr, segment_s, hop_s)
    seg = int(bounds[0, 1] - bounds[0, 0])
    view = sliding_window_view(y, seg)
    return bounds, view[bounds[:, 0]]
