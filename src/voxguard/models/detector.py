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

from voxguard.audio import Audio, AudioSource, PreprocessConfig, from_array, load, preprocess
from voxguard.errors import ModelError
from voxguard.models.onnx_model import OnnxModel


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
        if self.kind not in ("deepvoice",):
            raise ModelError(f"unsupported feature kind {self.kind!r} in the model card", path=str(model.path))
        rate = spec.get("sample_rate")
        self.sample_rate: int | None = rate if isinstance(rate, int) else None
        pre = spec.get("preprocess")
        self.preprocess_config: PreprocessConfig | None = PreprocessConfig.from_dict(pre) if pre else None
        self.window_s: float = float(spec.get("window_s", 1.0))

    @classmethod
    def load(cls, path: str | Path, *, threads: int = 1) -> Detector:
        return cls(OnnxModel(path, threads=threads))

    @property
    def name(self) -> str:
        return self.model.name

    def prepare(self, source: AudioSource | Audio) -> tuple[np.ndarray, int, float]:
        """Decode and preprocess as the model expects; returns ``(y, sr, offset_s)``."""
        audio = source if isinstance(source, Audio) else load(source, sr=self.sample_rate)
        y, sr = audio.samples, audio.sample_rate
        if self.sample_rate is not None and sr != self.sample_rate:
            audio = from_array(y, sr, target_sr=self.sample_rate)
            y, sr = audio.samples, audio.sample_rate
        offset = 0.0
        if self.preprocess_config is not None:
            pre = preprocess(y, sr, self.preprocess_config)
            y, sr, offset = pre.samples, pre.sample_rate, pre.offset_s
        return y, sr, offset

    def features(self, y: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
        """Model input rows and their window start times (s) for a prepared signal."""
        from voxguard.features.deepvoice import deepvoice_features

        X = deepvoice_features(y, sr, window_s=self.window_s)
        return X, np.arange(len(X)) * self.window_s

    def window_scores(self, y: np.ndarray, sr: int, *, offset_s: float = 0.0) -> WindowScores:
        """Score every window of a prepared signal (see :meth:`prepare`)."""
        X, starts = self.features(y, sr)
        scores = self.model.score(X)
        ends = np.minimum(starts + self.window_s, len(y) / sr)
        return WindowScores(
            starts_s=starts + offset_s,
            ends_s=ends + offset_s,
            scores=scores,
            proba=self.model.predict_proba(X),
        )

    def score(self, source: AudioSource | Audio) -> WindowScores:
        """Decode, prepare and score ``source`` window by window."""
        y, sr, offset = self.prepare(source)
        return self.window_scores(y, sr, offset_s=offset)
