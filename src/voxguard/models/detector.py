"""Inference detectors: audio in, per-window fake scores out, using only the model's own card.

The card's ``features`` block fixes how audio becomes model input, so inference can never use
other features than training (the seed study trained on a table and had no audio path at all):

- ``kind``: a feature kind (``"deepvoice"``: the seed's 26 features per window);
- ``sample_rate``: the analysis rate, or ``null``/a string for the file's native rate (the seed
  computed its table at the native rate);
- ``preprocess``: a :class:`~voxguard.audio.PreprocessConfig` dict, or ``null`` for none;
- ``window_s``: window length in seconds.

Only numpy, soundfile/PyAV, soxr and onnxruntime are used here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voxguard.audio import Audio, AudioSource, PreprocessConfig, SpeechActivity, from_array, load, preprocess
from voxguard.errors import ModelError, NoWideBandError
from voxguard.features.segmental import (
    SegmentalConfig,
    frame_matrices,
    frame_matrix,
    pool_segments,
    pool_segments_many,
    segment_crops,
    segment_frame_ranges,
)
from voxguard.models.fisher_stages import FisherStages
from voxguard.models.onnx_model import OnnxModel
from voxguard.models.routing import is_router_card


@dataclass(frozen=True)
class WindowScores:
    """Scores of consecutive analysis windows of one signal.

    Attributes
    ----------
    starts_s, ends_s : np.ndarray, shape (n_windows,)
        Window bounds in seconds, relative to the start of the *input* recording.
    scores : np.ndarray, shape (n_windows,)
        Raw model scores, higher = more likely fake.
    proba : np.ndarray, shape (n_windows,)
        Calibrated P(fake) per window.
    """

    starts_s: np.ndarray
    ends_s: np.ndarray
    scores: np.ndarray
    proba: np.ndarray


class Detector:
    """A trained model plus the feature pipeline its card prescribes.

    Parameters
    ----------
    model : OnnxModel
    """

    def __init__(self, model: OnnxModel) -> None:
        self.model = model
        spec = model.card.features
        self.kind: str = spec.get("kind", "")
        if self.kind not in ("deepvoice", "segmental", "fusion"):
            raise ModelError(f"unsupported feature kind {self.kind!r} in the model card", path=str(model.path))
        #: Fusion models: the member detectors whose segment scores the model's ONNX graph combines.
        self.members: list[Detector] = self._load_members(spec) if self.kind == "fusion" else []
        rate = spec.get("sample_rate")
        self.sample_rate: int | None = rate if isinstance(rate, int) else None
        pre = spec.get("preprocess")
        self.preprocess_config: PreprocessConfig | None = PreprocessConfig.from_dict(pre) if pre else None
        self.window_s: float = float(spec.get("window_s", 1.0))
        self.segmental: SegmentalConfig | None = (
            SegmentalConfig.from_dict(spec["segmental"]) if self.kind == "segmental" else None
        )
        if self.members:
            # Scanning treats a fusion like its first member (rate, preprocessing, segment frames).
            self.segmental = self.members[0].segmental
        #: Frame models (CNN, GMM) read crops of the frame matrix instead of pooled statistics.
        self.frame_input: bool = spec.get("input") == "frames"
        #: Fisher models with a head graph score overlapping segments without encoding frames twice.
        self.stages: FisherStages | None = (
            FisherStages.for_model(model.path, model.card.output, threads=model.threads) if self.frame_input else None
        )
        if self.members and self.members[0].is_router:
            raise ModelError("a routed model's first member must be an expert, not the router", path=str(model.path))

    @classmethod
    def load(cls, path: str | Path, *, threads: int = 1) -> Detector:
        return cls(OnnxModel(path, threads=threads))

    def _load_members(self, spec: dict) -> list[Detector]:
        """Member detectors of a fusion card (files beside the fusion model), checked to agree on input."""
        names = spec.get("members") or []
        if len(names) < 2:
            raise ModelError("a fusion model needs at least two members", path=str(self.model.path))
        members = [Detector.load(self.model.path.parent / str(name)) for name in names]
        if any(m.kind != "segmental" for m in members):
            raise ModelError("fusion members must be segmental models", path=str(self.model.path))
        first = members[0]
        for other in members[1:]:
            same = (other.sample_rate, other.preprocess_config, other.segment_s) == (
                first.sample_rate,
                first.preprocess_config,
                first.segment_s,
            )
            if not same:
                raise ModelError(
                    "fusion members must share sample rate, preprocessing and segment length",
                    path=str(self.model.path),
                )
        return members

    @property
    def name(self) -> str:
        return self.model.name

    def prepare(self, source: AudioSource | Audio) -> tuple[np.ndarray, int, float]:
        """Decode and preprocess as the model expects; returns ``(y, sr, offset_s)``."""
        audio = source if isinstance(source, Audio) else load(source, sr=self.sample_rate)
        return self.prepare_array(audio.samples, audio.sample_rate)

    def prepare_array(
        self,
        y: np.ndarray,
        sr: int,
        *,
        trim: bool = True,
        activity: SpeechActivity | None = None,
        check_band: bool = True,
    ) -> tuple[np.ndarray, int, float]:
        """Bring a decoded mono signal to the model's rate and preprocessing.

        ``trim=False`` keeps leading/trailing non-speech (for blocks of a stream, whose edges are
        not the recording's edges). ``activity``: speech detection already run on ``y`` (reused
        when no resampling is needed). ``check_band=False``: a wide-band model skips its check that
        the band above 8 kHz is there (the caller measured it). Returns ``(y, sr, offset_s)``;
        ``offset_s`` is where the output starts in the input.
        """
        if self.sample_rate is not None and sr != self.sample_rate:
            audio = from_array(y, sr, target_sr=self.sample_rate)
            y, sr = audio.samples, audio.sample_rate
        if check_band and trim and self.segmental is not None and self.segmental.wide_band:
            self._check_wide_band(y, sr)
        offset = 0.0
        if self.preprocess_config is not None:
            config = self.preprocess_config
            if not trim and config.trim_silence:
                config = PreprocessConfig.from_dict(config.to_dict() | {"trim_silence": False})
            pre = preprocess(y, sr, config, activity=activity)
            y, sr, offset = pre.samples, pre.sample_rate, pre.offset_s
        return y, sr, offset

    def _check_wide_band(self, y: np.ndarray, sr: int) -> None:
        """Refuse a recording without the band a wide-band model reads (upsampled, or band-limited)."""
        from voxguard.audio.bandwidth import MIN_TOP_BAND_DB, top_band_db

        level = top_band_db(y, sr)
        if not level >= MIN_TOP_BAND_DB:
            raise NoWideBandError(
                f"{self.name} reads 8-9.8 kHz, and this recording has nothing there ({level:.0f} dB under its total "
                f"power; at least {-MIN_TOP_BAND_DB:.0f} dB needed): scan it with a 16-kHz model such as the default"
            )

    @property
    def segment_s(self) -> float:
        """Segment length the model was trained on (the scanner's default window)."""
        return float(self.model.card.features.get("segment_s", 4.0))

    def thresholds(self) -> dict[str, float]:
        """Operating points as probabilities of fake: ``eer`` and (when the card has them) ``low-fa``
        and ``unseen-eer``."""
        stored = self.model.card.output.get("thresholds") or {}
        return {"eer": 0.5, **{k: float(v) for k, v in stored.items()}}

    def features(self, y: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
        """Model input rows and their window start times (s) for a prepared signal."""
        from voxguard.features.deepvoice import deepvoice_features

        X = deepvoice_features(y, sr, window_s=self.window_s)
        return X, np.arange(len(X)) * self.window_s

    def window_scores(self, y: np.ndarray, sr: int, *, offset_s: float = 0.0) -> WindowScores:
        """Score every window of a prepared signal (see :meth:`prepare`)."""
        if self.segmental is not None:
            from voxguard.audio import segment_bounds

            bounds = segment_bounds(len(y), sr, self.segment_s, self.segment_s / 2)
            scores, proba = self.segment_scores(y, sr, bounds)
            return WindowScores(bounds[:, 0] / sr + offset_s, bounds[:, 1] / sr + offset_s, scores, proba)
        X, starts = self.features(y, sr)
        scores = self.model.score(X)
        ends = np.minimum(starts + self.window_s, len(y) / sr)
        return WindowScores(
            starts_s=starts + offset_s,
            ends_s=ends + offset_s,
            scores=scores,
            proba=self.model.calibrate(scores),
        )

    def segment_scores(self, y: np.ndarray, sr: int, bounds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Score arbitrary segments of a prepared signal.

        Parameters
        ----------
        y : np.ndarray, shape (n_samples,)
            A signal returned by :meth:`prepare`.
        sr : int
        bounds : np.ndarray, shape (n_segments, 2)
            Start/stop sample indices (e.g. from :func:`voxguard.audio.segment_bounds`).

        Returns
        -------
        (scores, proba) : two arrays of shape (n_segments,)
            Raw score (higher = more likely fake) and calibrated P(fake) per segment.
        """
        if self.members:
            # Each member scores the same segments of the same prepared signal; frame features
            # are computed once for what the members share (frame_matrices).
            # Members with equal configs (experts of one recipe trained on different copies) get
            # one frame matrix and one pooled vector.
            configs = list(dict.fromkeys(member.segmental for member in self.members))
            assert all(cfg is not None for cfg in configs)
            slot = [configs.index(member.segmental) for member in self.members]
            matrices = frame_matrices(y, sr, configs)  # type: ignore[arg-type]
            # Pooling members, pooled together (members that differ in level_split share sums).
            pooling = sorted({slot[i] for i, member in enumerate(self.members) if not member.frame_input})
            pooled = pool_segments_many([matrices[j] for j in pooling], bounds, [configs[j] for j in pooling])  # type: ignore[misc]
            vectors = dict(zip(pooling, pooled, strict=True))
            columns = [
                member.posteriors_from_vectors(vectors[slot[i]])
                if member.is_router
                else member._crop_scores(matrices[slot[i]], bounds)
                if member.frame_input
                else member.scores_from_vectors(vectors[slot[i]])
                for i, member in enumerate(self.members)
            ]
            stacked = np.column_stack(columns)
            scores = np.full(len(bounds), np.nan)
            ok = np.isfinite(stacked).all(axis=1)
            if ok.any():
                scores[ok] = self.model.score(stacked[ok])
            return scores, self.model.calibrate(scores)
        if self.segmental is not None:
            # Frame features once for the whole signal, pooled per segment by cumulative sums
            # (or cut into crops for frame models, which pool inside the network).
            scores = self.scores_from_frames(frame_matrix(y, sr, self.segmental), bounds)
            return scores, self.model.calibrate(scores)
        # Window-level models: score fixed windows once, then average the windows each segment covers.
        windows = self.window_scores(y, sr)
        starts = np.round(windows.starts_s * sr).astype(np.int64)
        ends = np.round(windows.ends_s * sr).astype(np.int64)
        overlap = (starts[None, :] < bounds[:, 1:2]) & (ends[None, :] > bounds[:, 0:1])
        counts = overlap.sum(axis=1)
        with np.errstate(invalid="ignore"):
            scores = (overlap @ windows.scores) / counts
            proba = (overlap @ windows.proba) / counts
        return scores, proba

    def scores_from_frames(self, frames: np.ndarray, bounds: np.ndarray) -> np.ndarray:
        """Raw scores of segments from the frame matrix of the prepared signal (segmental models).

        Segments of silence only (all frames gated) get NaN rather than a guess.
        """
        assert self.segmental is not None
        if self.frame_input:
            return self._crop_scores(frames, bounds)
        return self.scores_from_vectors(pool_segments(frames, bounds, self.segmental))

    def scores_from_vectors(self, X: np.ndarray) -> np.ndarray:
        """Raw scores of pooled segment rows (:func:`~voxguard.features.segmental.pool_segments`); NaN rows stay NaN."""
        if self.is_router:
            raise ModelError(
                "this is the router of a routed model, not a detector: load the routed model", path=str(self.model.path)
            )
        ok = np.isfinite(X).all(axis=1)
        scores = np.full(len(X), np.nan)
        if ok.any():
            scores[ok] = self.model.score(X[ok])
        return scores

    @property
    def is_router(self) -> bool:
        """A routed model's router: its output is class posteriors, not a score (models.routing)."""
        return is_router_card(self.model.card)

    def posteriors_from_vectors(self, X: np.ndarray) -> np.ndarray:
        """A router's class posteriors of pooled segment rows, shape (n, n_classes); NaN rows stay NaN."""
        ok = np.isfinite(X).all(axis=1)
        out = np.full((len(X), len(self.model.card.output["classes"])), np.nan)
        if ok.any():
            out[ok] = self.model.posteriors(X[ok])
        return out

    def _crop_scores(self, frames: np.ndarray, bounds: np.ndarray, batch: int = 128) -> np.ndarray:
        """Frame-model scores of segments, in batches of crops (memory stays bounded on long audio)."""
        assert self.segmental is not None
        if self.stages is not None:
            first, last = segment_frame_ranges(bounds, self.segmental.hop_length, frames.shape[1])
            return self.stages.segment_scores(frames, first, last)
        scores = np.full(len(bounds), np.nan)
        for start in range(0, len(bounds), batch):
            crops = segment_crops(frames, bounds[start : start + batch], self.segmental.hop_length)
            ok = np.isfinite(crops).all(axis=1).any(axis=1)  # not silence only
            if ok.any():
                scores[start : start + batch][ok] = self.model.score(crops[ok])
        return scores

    def score(self, source: AudioSource | Audio) -> WindowScores:
        """Decode, prepare and score ``source`` window by window."""
        y, sr, offset = self.prepare(source)
        return self.window_scores(y, sr, offset_s=offset)
