"""A wide-band companion: a second detector for the band above 8 kHz, fused with the main model.

Every main detector analyses speech at 16 kHz, so it never sees 8-11 kHz, where many neural
vocoders leave artefacts (docs/results.md, "The 8-10 kHz band"). A companion is a segmental
detector at 22.05 kHz whose views include that band (``lfcc_8_10k_hann``, ``band_flatness_8_10k``),
trained only on clips that have it (:func:`voxguard.datasets.bandwidth.wide_band_subset`). When a
recording really has the band (:func:`voxguard.audio.bandwidth.has_top_band`, measured, not the
nominal rate), the scanner scores the same segments with it and mixes the two calibrated
log-odds per segment::

    logit P(fake) = intercept + w_main * logit p_main + w_companion * logit p_companion

The weights and the operating points of the mix (its own ``eer`` and ``low-fa`` thresholds) were
fitted on out-of-fold scores of wide-band clips and are stored in the companion's card under
``output.companion``, with the name of the main model they were fitted with: a companion is used
only beside that model. Input without the band is scored by the main model alone, as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voxguard.audio import SpeechActivity
from voxguard.audio.bandwidth import top_band_db
from voxguard.errors import ModelError, VoxguardError
from voxguard.models.detector import Detector
from voxguard.models.onnx_model import sigmoid

#: Card key (inside ``output``) of a companion's fusion.
COMPANION_KEY = "companion"
#: Segments shorter than this inside the companion's prepared signal keep the main model's score.
MIN_SEGMENT_S = 1.0
_EPS = 1e-6


def log_odds(p: np.ndarray) -> np.ndarray:
    """``log(p / (1 - p))`` of probabilities, clipped away from 0 and 1 (float64)."""
    p = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1.0 - _EPS)
    return np.log(p / (1.0 - p))


@dataclass(frozen=True)
class CompanionFusion:
    """How a companion's segment probabilities mix with its main model's (from the card).

    Attributes
    ----------
    main : str
        Name of the main model the weights were fitted with.
    intercept, w_main, w_companion : float
        Logistic mix of the two calibrated log-odds.
    thresholds : dict
        ``eer`` and ``low-fa`` thresholds on the mixed P(fake).
    min_top_band_db : float
        The gate: the recording's 8-9.8 kHz power relative to its total power must reach this.
    """

    main: str
    intercept: float
    w_main: float
    w_companion: float
    thresholds: dict[str, float]
    min_top_band_db: float

    @classmethod
    def from_dict(cls, data: dict) -> CompanionFusion:
        try:
            return cls(
                main=str(data["main"]),
                intercept=float(data["intercept"]),
                w_main=float(data["w_main"]),
                w_companion=float(data["w_companion"]),
                thresholds={str(k): float(v) for k, v in data["thresholds"].items()},
                min_top_band_db=float(data["min_top_band_db"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ModelError(f"malformed companion fusion in the model card: {exc}") from None

    def to_dict(self) -> dict[str, object]:
        return {
            "main": self.main,
            "intercept": self.intercept,
            "w_main": self.w_main,
            "w_companion": self.w_companion,
            "thresholds": dict(self.thresholds),
            "min_top_band_db": self.min_top_band_db,
        }

    def fuse(self, main_proba: np.ndarray, companion_proba: np.ndarray) -> np.ndarray:
        """Mixed P(fake) per segment; where the companion has no score (NaN) the main's stays.

        Parameters
        ----------
        main_proba, companion_proba : np.ndarray, shape (n_segments,)

        Returns
        -------
        np.ndarray, shape (n_segments,), float64
        """
        main = np.asarray(main_proba, dtype=np.float64)
        comp = np.asarray(companion_proba, dtype=np.float64)
        both = np.isfinite(main) & np.isfinite(comp)
        out = main.copy()
        z = self.intercept + self.w_main * log_odds(main[both]) + self.w_companion * log_odds(comp[both])
        out[both] = sigmoid(z)
        return out


@dataclass(frozen=True)
class CompanionScores:
    """What the companion made of one recording.

    ``proba`` is ``None`` when the recording does not have the band (``top_band_db`` under the
    gate): the main model's scores stand alone.
    """

    top_band_db: float
    proba: np.ndarray | None


class WideBandCompanion:
    """A wide-band detector and its fusion with one main model.

    Parameters
    ----------
    detector : Detector
        A segmental model whose card has ``output.companion``.
    """

    def __init__(self, detector: Detector) -> None:
        spec = detector.model.card.output.get(COMPANION_KEY)
        if not spec or detector.segmental is None or detector.sample_rate is None:
            raise ModelError(
                "not a wide-band companion (no output.companion in its card)", path=str(detector.model.path)
            )
        self.detector = detector
        self.fusion = CompanionFusion.from_dict(spec)

    @classmethod
    def load(cls, path: str | Path, *, threads: int = 1) -> WideBandCompanion:
        return cls(Detector.load(path, threads=threads))

    @property
    def name(self) -> str:
        return self.detector.name

    @property
    def path(self) -> Path:
        """The companion's model file."""
        return Path(self.detector.model.path)

    @property
    def sample_rate(self) -> int:
        """The rate to decode the recording at for :meth:`score` (Hz)."""
        assert self.detector.sample_rate is not None
        return self.detector.sample_rate

    def score(
        self,
        y: np.ndarray,
        sr: int,
        starts_s: np.ndarray,
        ends_s: np.ndarray,
        *,
        activity: SpeechActivity | None = None,
    ) -> CompanionScores:
        """The companion's P(fake) for the main model's segments.

        Parameters
        ----------
        y : np.ndarray, shape (n_samples,)
            The whole recording decoded at :attr:`sample_rate` (not preprocessed).
        sr : int
        starts_s, ends_s : np.ndarray, shape (n_segments,)
            The main model's segments, in seconds of the input recording.
        activity : SpeechActivity, optional
            Speech detection the scanner already ran on the same recording (at another rate:
            its decisions are in seconds), reused by the preprocessing instead of a second VAD.

        Returns
        -------
        CompanionScores
            ``proba`` NaN for segments that fall (almost) outside the companion's trimmed signal,
            or hold only silence.
        """
        if sr != self.sample_rate:
            raise ValueError(f"decode at {self.sample_rate} Hz for the companion, got {sr} Hz")
        band_db = top_band_db(y, sr)
        if not self.has_band(band_db):
            return CompanionScores(band_db, None)
        return CompanionScores(band_db, self.segment_proba(y, sr, starts_s, ends_s, activity=activity))

    def has_band(self, level_db: float) -> bool:
        """Whether a recording with this 8-9.8 kHz level (:func:`~voxguard.audio.bandwidth.top_band_db`)
        passes the gate (NaN does not)."""
        return bool(level_db >= self.fusion.min_top_band_db)

    def segment_proba(
        self,
        y: np.ndarray,
        sr: int,
        starts_s: np.ndarray,
        ends_s: np.ndarray,
        *,
        activity: SpeechActivity | None = None,
        trim: bool = True,
    ) -> np.ndarray:
        """The companion's P(fake) for segments of ``y``, without the gate.

        Parameters
        ----------
        y : np.ndarray, shape (n_samples,)
            Audio at :attr:`sample_rate` (not preprocessed): a whole recording, or with
            ``trim=False`` a block of a stream.
        starts_s, ends_s : np.ndarray, shape (n_segments,)
            Segments in seconds of ``y``.

        Returns
        -------
        np.ndarray, shape (n_segments,)
            NaN for segments that fall (almost) outside the prepared signal, or whose signal
            is too short or silent for the preprocessing.
        """
        proba = np.full(len(starts_s), np.nan)
        try:
            yp, srp, offset = self.detector.prepare_array(y, sr, activity=activity, check_band=False, trim=trim)
        except VoxguardError:
            return proba  # too little speech for its preprocessing
        # The same stretches of the recording, in samples of the companion's prepared signal.
        lo = np.clip(np.round((np.asarray(starts_s) - offset) * srp), 0, len(yp)).astype(np.int64)
        hi = np.clip(np.round((np.asarray(ends_s) - offset) * srp), 0, len(yp)).astype(np.int64)
        usable = hi - lo >= MIN_SEGMENT_S * srp
        if usable.any():
            _, proba[usable] = self.detector.segment_scores(yp, srp, np.column_stack([lo, hi])[usable])
        return proba


def companion_for(main_name: str) -> Path | None:
    """The shipped companion fitted with the model ``main_name``, if there is one."""
    from voxguard.models.registry import ZOO_DIR, available_models

    for name, card in available_models().items():
        spec = card.output.get(COMPANION_KEY)
        if isinstance(spec, dict) and spec.get("main") == main_name:
            return ZOO_DIR / f"{name}.onnx"
    return None
