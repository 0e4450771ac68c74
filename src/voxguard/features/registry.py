"""Feature kinds by name: one place that maps ``--kind`` strings to extractor functions.

Every kind returns a frame (or window) matrix in *row-per-observation* layout with column names,
which is what files on disk, models and the CLI want; the underlying functions keep librosa's
``(n_features, n_frames)`` layout.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from voxguard.errors import FeatureError


@dataclass(frozen=True)
class FeatureTable:
    """Features of one signal.

    Attributes
    ----------
    values : np.ndarray, shape (n_rows, n_columns), float32
        One row per frame (or per window for window-level kinds such as ``deepvoice``).
    columns : list[str]
        Name of each column.
    times_s : np.ndarray, shape (n_rows,)
        Start time of each row's frame/window in seconds, relative to the signal's first sample.
    """

    values: np.ndarray
    columns: list[str]
    times_s: np.ndarray


def _cepstral(kind: str) -> Callable[[np.ndarray, int], FeatureTable]:
    def extract(y: np.ndarray, sr: int) -> FeatureTable:
        from voxguard.features import spectral

        hop = int(round(0.010 * sr))
        fn = spectral.mfcc if kind == "mfcc" else spectral.lfcc
        static = fn(y, sr, hop_length=hop)
        X = spectral.with_deltas(static)
        n = static.shape[0]
        names = [f"{kind}{i + 1}" for i in range(n)]
        columns = names + [f"d_{c}" for c in names] + [f"dd_{c}" for c in names]
        return FeatureTable(X.T.astype(np.float32), columns, np.arange(X.shape[1]) * hop / sr)

    return extract


def _deepvoice(y: np.ndarray, sr: int) -> FeatureTable:
    from voxguard.features.deepvoice import DEEPVOICE_COLUMNS, deepvoice_features

    values = deepvoice_features(y, sr)
    return FeatureTable(values.astype(np.float32), list(DEEPVOICE_COLUMNS), np.arange(len(values)) * 1.0)


def _prosody(y: np.ndarray, sr: int) -> FeatureTable:
    from voxguard.features.prosody import prosody_features

    hop = round(0.010 * sr)
    X, names = prosody_features(y, sr, hop_length=hop)
    return FeatureTable(X.T.astype(np.float32), list(names), np.arange(X.shape[1]) * hop / sr)


FEATURE_KINDS: dict[str, Callable[[np.ndarray, int], FeatureTable]] = {
    "mfcc": _cepstral("mfcc"),
    "lfcc": _cepstral("lfcc"),
    "deepvoice": _deepvoice,
    "prosody": _prosody,
}


def extract(kind: str, y: np.ndarray, sr: int) -> FeatureTable:
    """Compute feature ``kind`` (one of :data:`FEATURE_KINDS`) on a mono signal."""
    try:
        fn = FEATURE_KINDS[kind]
    except KeyError:
        raise FeatureError(f"unknown feature kind {kind!r}; choose from {', '.join(FEATURE_KINDS)}") from None
    return fn(y, sr)
