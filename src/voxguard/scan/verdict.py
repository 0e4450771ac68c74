"""From segment probabilities to one file verdict.

Aggregation (why top-k and not the mean)
----------------------------------------
A scan answers "does this recording contain synthetic speech?", and the synthetic part may be a
single cloned sentence spliced into a long genuine call. The file-level probability is therefore
the **top-k mean** of the segment probabilities:

1. only *eligible* segments count: those with at least ``min_segment_speech`` (default 50 %) of
   their duration marked as speech by the voice-activity detector, and a finite score. Silent or
   nearly silent segments are still shown in the timeline but never vote, so long pauses and
   hold music neither dilute nor inflate the result;
2. ``k = ceil(top_fraction * n_eligible)`` with ``top_fraction = 0.25``, at least 1, and at most
   the number of segments that fit in ``max_top_s`` seconds (8 s: 3 segments at the default
   4-s windows and 2-s hop);
3. ``P(fake)`` of the file = the mean of the k highest segment probabilities; the file's raw
   score is the mean raw score of the same k segments.

For a short clip (up to ~25 s) this is the mean of its most suspicious quarter; for a long call it
asks whether its most suspicious ~8 s look synthetic, so a 5-s cloned sentence spliced into an
hour of genuine speech still decides the verdict instead of being averaged away (without the cap,
k would be 450 segments for an hour). The price is the usual one of a maximum: the longer a
genuine recording, the higher its top-k mean, so the false-alarm rate grows with length — long
files are better judged with the timeline (the most suspicious segment is reported) at hand.
The top-k mean is a calibrated probability only for k = n; the model's operating points are
per-segment probabilities, and the UNCERTAIN margin (below) absorbs part of that bias.

Decision
--------
``FAKE`` if ``P >= threshold + m``, ``REAL`` if ``P < threshold - m``, otherwise ``UNCERTAIN``,
where ``m = min(margin, threshold / 2, (1 - threshold) / 2)`` — the band is narrowed near 0 and 1
so that both verdicts stay reachable (``margin=0`` gives a plain threshold). A file is also
``UNCERTAIN`` when it has less than ``min_speech_s`` seconds of speech or no eligible segment.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from voxguard.scan.result import Verdict

#: Operating point used when a threshold is given explicitly.
CUSTOM = "custom"


def resolve_threshold(
    available: dict[str, float], threshold: float | None = None, operating_point: str = "eer"
) -> tuple[float, str]:
    """The P(fake) threshold and the name of its operating point.

    Parameters
    ----------
    available : dict
        The model's operating points (``Detector.thresholds()``), e.g. ``{"eer": 0.5}``.
    threshold : float, optional
        An explicit probability in [0, 1]; overrides ``operating_point``.
    operating_point : str
        Name looked up in ``available`` (``"eer"`` or ``"low-fa"``).

    Raises
    ------
    ValueError
        Threshold out of range, or an operating point the model does not define.
    """
    if threshold is not None:
        if not 0.0 <= threshold <= 1.0 or not math.isfinite(threshold):
            raise ValueError(f"threshold must be a probability in [0, 1], got {threshold}")
        return float(threshold), CUSTOM
    if operating_point not in available:
        names = ", ".join(sorted(available)) or "none"
        raise ValueError(f"the model has no {operating_point!r} operating point (available: {names})")
    return float(available[operating_point]), operating_point


def effective_margin(threshold: float, margin: float) -> float:
    """The UNCERTAIN half-band actually applied around ``threshold`` (see module docstring)."""
    return max(0.0, min(margin, threshold / 2.0, (1.0 - threshold) / 2.0))


def decide(probability: float, threshold: float, margin: float) -> Verdict:
    """FAKE / REAL / UNCERTAIN for a file probability (``margin`` as given, narrowed here)."""
    m = effective_margin(threshold, margin)
    if probability >= threshold + m:
        return Verdict.FAKE
    if probability < threshold - m:
        return Verdict.REAL
    return Verdict.UNCERTAIN


@dataclass(frozen=True)
class Aggregate:
    """File-level numbers from the segments.

    Attributes
    ----------
    probability, score : float
        Top-k means (NaN when no segment could be used).
    k, n_used : int
        How many segments were averaged, out of how many usable ones.
    """

    probability: float
    score: float
    k: int
    n_used: int


def top_k_mean(
    proba: np.ndarray,
    scores: np.ndarray,
    use: np.ndarray,
    *,
    top_fraction: float = 0.25,
    max_k: int | None = None,
) -> Aggregate:
    """Mean of the ``k`` highest probabilities among the ``use``-d segments.

    Parameters
    ----------
    proba, scores : np.ndarray, shape (n_segments,)
    use : np.ndarray, shape (n_segments,), bool
        Segments allowed to vote (non-finite probabilities are dropped as well).
    top_fraction : float
        In (0, 1]: ``k = ceil(top_fraction * n_used)``; 1 gives the plain mean.
    max_k : int, optional
        Upper bound on ``k`` (see :func:`max_top_segments`).

    Returns
    -------
    Aggregate
    """
    if not 0.0 < top_fraction <= 1.0:
        raise ValueError("top_fraction must be in (0, 1]")
    mask = use & np.isfinite(proba)
    n = int(mask.sum())
    if n == 0:
        return Aggregate(float("nan"), float("nan"), 0, 0)
    k = max(1, math.ceil(top_fraction * n))
    if max_k is not None:
        k = max(1, min(k, max_k))
    p, s = proba[mask], scores[mask]
    top = np.argsort(-p, kind="stable")[:k]
    top_scores = s[top]
    score = float(top_scores[np.isfinite(top_scores)].mean()) if np.isfinite(top_scores).any() else float("nan")
    return Aggregate(float(p[top].mean()), score, k, n)


def max_top_segments(max_top_s: float, segment_s: float, hop_s: float) -> int:
    """How many segments of a ``segment_s``/``hop_s`` grid fit in a span of ``max_top_s`` seconds (>= 1)."""
    return max(1, math.floor((max_top_s - segment_s) / hop_s + 1e-9) + 1)
