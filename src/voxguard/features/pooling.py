"""Utterance-level pooling: a ``(n_features, n_frames)`` matrix to one fixed-length vector.

Statistics ignore NaN frames, so features that are undefined on some frames (F0 on unvoiced frames,
for instance) can be pooled as they are; a feature with no finite frame at all pools to NaN.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from voxguard.errors import FeatureError

__all__ = ["SUPPORTED_STATS", "pool_stats", "pooled_names"]

SUPPORTED_STATS = ("mean", "std", "min", "max", "median")


def _percentile_label(q: float) -> str:
    return f"p{q:g}"


def pooled_names(
    feature_names: Sequence[str],
    stats: Sequence[str] = ("mean", "std"),
    percentiles: Sequence[float] = (10, 50, 90),
) -> list[str]:
    """Names of the dimensions :func:`pool_stats` returns, ``"<feature>_<stat>"``.

    The order is statistic-major: every feature's mean, then every feature's std, ..., then each
    percentile (``p10``, ``p50``, ``p2.5`` ...).
    """
    labels = [*stats, *(_percentile_label(q) for q in percentiles)]
    return [f"{name}_{label}" for label in labels for name in feature_names]


def pool_stats(
    X: np.ndarray,
    stats: Sequence[str] = ("mean", "std"),
    percentiles: Sequence[float] = (10, 50, 90),
    *,
    feature_names: Sequence[str] | None = None,
    prefix: str = "f",
) -> tuple[np.ndarray, list[str]]:
    """Pool frame-level features into one vector of statistics over time.

    Parameters
    ----------
    X : np.ndarray, shape (n_features, n_frames) or (n_frames,)
        Frame-level features (librosa layout); a 1-D array is one feature. NaN marks a frame
        where the feature is undefined and is left out of that feature's statistics.
    stats : sequence of str
        Any of ``"mean"``, ``"std"`` (population, ddof=0), ``"min"``, ``"max"``, ``"median"``.
    percentiles : sequence of float
        Percentiles in [0, 100] (linear interpolation, as :func:`numpy.percentile`).
    feature_names : sequence of str, optional
        One name per feature row; default ``f"{prefix}{i}"``.
    prefix : str
        Prefix of the default feature names.

    Returns
    -------
    vector : np.ndarray, shape ((len(stats) + len(percentiles)) * n_features,), float32
        Statistic-major: all means, then all stds, ... then each percentile. A feature whose
        frames are all NaN gives NaN for every statistic.
    names : list of str
        ``"<feature>_<stat>"`` for each dimension (see :func:`pooled_names`).

    Raises
    ------
    FeatureError
        On zero frames, a non 1-D/2-D input, an unknown statistic, a percentile outside
        [0, 100], nothing to compute, or a wrong number of feature names.
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X[None, :]
    if X.ndim != 2:
        raise FeatureError(f"expected (n_features, n_frames), got shape {X.shape}")
    n_features, n_frames = X.shape
    if n_frames == 0:
        raise FeatureError("cannot pool features over zero frames")
    unknown = [s for s in stats if s not in SUPPORTED_STATS]
    if unknown:
        raise FeatureError(f"unknown statistics {unknown}; choose from {list(SUPPORTED_STATS)}")
    q = np.asarray(percentiles, dtype=np.float64)
    if q.size and (np.any(q < 0) | np.any(q > 100)):
        raise FeatureError(f"percentiles must lie in [0, 100], got {list(percentiles)}")
    if not stats and not q.size:
        raise FeatureError("nothing to pool: give at least one statistic or percentile")
    if feature_names is None:
        feature_names = [f"{prefix}{i}" for i in range(n_features)]
    elif len(feature_names) != n_features:
        raise FeatureError(f"{len(feature_names)} feature names for {n_features} features")

    has_nan = bool(np.isnan(X).any())
    # The plain reductions are several times faster; the nan-aware ones are only needed with NaN.
    funcs = {
        "mean": np.nanmean if has_nan else np.mean,
        "std": np.nanstd if has_nan else np.std,
        "min": np.nanmin if has_nan else np.min,
        "max": np.nanmax if has_nan else np.max,
        "median": np.nanmedian if has_nan else np.median,
    }
    parts: list[np.ndarray] = []
    with warnings.catch_warnings():
        # All-NaN rows legitimately pool to NaN (e.g. F0 of a fully unvoiced clip).
        warnings.simplefilter("ignore", RuntimeWarning)
        for s in stats:
            parts.append(funcs[s](X, axis=1))
        if q.size:
            pct = np.nanpercentile(X, q, axis=1) if has_nan else np.percentile(X, q, axis=1)
            parts.extend(pct)
    vector = np.concatenate(parts).astype(np.float32)
    return vector, pooled_names(feature_names, stats, q.tolist())
