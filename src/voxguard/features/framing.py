"""Framing of 1-D signals into overlapping windows, without copies where possible.

Every frame-level feature in voxguard goes through :func:`frame_signal`, so the frame grid is the
same for all kinds (and the same as librosa's with ``center=True``).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from voxguard.errors import FeatureError


def frame_signal(
    y: np.ndarray,
    frame_length: int,
    hop_length: int,
    *,
    center: bool = True,
    pad_mode: str = "constant",
) -> np.ndarray:
    """Cut ``y`` into overlapping frames.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
        Mono signal.
    frame_length : int
        Samples per frame.
    hop_length : int
        Samples between the starts of consecutive frames.
    center : bool
        Pad ``frame_length // 2`` samples on both sides so that frame ``t`` is centred on sample
        ``t * hop_length`` (librosa's convention).
    pad_mode : str
        ``numpy.pad`` mode for the centring pad (librosa >= 0.10 uses ``"constant"``, i.e. zeros).

    Returns
    -------
    np.ndarray, shape (n_frames, frame_length)
        A read-only strided view when no padding was needed, else a view of a padded copy.
        ``n_frames = 1 + (len(y_padded) - frame_length) // hop_length``.
    """
    if y.ndim != 1:
        raise FeatureError(f"expected a mono 1-D signal, got shape {y.shape}")
    if frame_length <= 0 or hop_length <= 0:
        raise FeatureError("frame_length and hop_length must be positive")
    if center:
        y = np.pad(y, frame_length // 2, mode=pad_mode)
    if len(y) < frame_length:
        raise FeatureError(f"signal of {len(y)} samples is shorter than one frame of {frame_length} samples")
    return sliding_window_view(y, frame_length)[::hop_length]


def n_frames(n_samples: int, frame_length: int, hop_length: int, *, center: bool = True) -> int:
    """Number of frames :func:`frame_signal` returns for a signal of ``n_samples``."""
    if center:
        n_samples += 2 * (frame_length // 2)
    return 0 if n_samples < frame_length else 1 + (n_samples - frame_length) // hop_length
