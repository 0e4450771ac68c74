"""Torch-free inference of exported models: an ONNX file plus a JSON model card beside it.

A model is two files, ``NAME.onnx`` and ``NAME.card.json``. The card states what the model
expects (feature kind and columns), what its output means, how raw outputs map to a calibrated
probability, and how it was trained and evaluated (data, split, metrics, date, command). Nothing
is ever unpickled.

Score convention everywhere in voxguard: higher = more likely fake (spoof).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from voxguard.errors import ModelError

CARD_SUFFIX = ".card.json"


@dataclass
class ModelCard:
    """Metadata saved next to every model file.

    Attributes
    ----------
    name : str
        Model identifier (e.g. ``"seed-svm"``).
    model_type : str
        Human-readable description of the estimator.
    features : dict
        Feature extraction config: at least ``kind`` and ``columns``; for audio models also the
        preprocessing config, so inference can never use other features than training did.
    output : dict
        ``name`` of the ONNX output, ``index`` of the column holding the fake score (or ``None``
        for a 1-D output), ``sign`` (+1/-1) to make higher = fake, and ``calibration``:
        ``{"type": "logistic", "a": a, "b": b}`` meaning ``P(fake) = sigmoid(a * score + b)``.
    training : dict
        Data (path, hash, rows), split description, seed, command to reproduce.
    metrics : dict
        Held-out metrics, each with the split it was measured on.
    created : str
        ISO date.
    voxguard_version : str
    """

    name: str
    model_type: str
    features: dict[str, Any]
    output: dict[str, Any]
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    created: str = ""
    voxguard_version: str = ""
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> ModelCard:
        try:
            data = json.loads(Path(path).read_text())
            return cls(**data)
        except (OSError, json.JSONDecodeError, TypeError) as exc:
            raise ModelError(f"cannot read model card: {exc}", path=str(path)) from exc


def card_path(model_path: str | Path) -> Path:
    """``x/NAME.onnx`` -> ``x/NAME.card.json``."""
    p = Path(model_path)
    return p.with_name(p.name.removesuffix(".onnx") + CARD_SUFFIX)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # overflow-free logistic


def fake_scores(out: np.ndarray, spec: dict[str, Any]) -> np.ndarray:
    """Raw scores, higher = more likely fake, shape (n,), from a graph's output and the card's ``output`` block."""
    out = out[:, spec["index"]] if spec.get("index") is not None else out.reshape(len(out))
    return spec.get("sign", 1) * out.astype(np.float64)


def cpu_session(path: Path, threads: int, failure: str) -> Any:
    """An ONNX Runtime session on the CPU with ``threads`` intra-op threads; ``failure`` prefixes the error."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors for bad files
        raise ModelError(f"{failure}: {exc}", path=str(path)) from exc


class OnnxModel:
    """An exported model, run by ONNX Runtime on the CPU.

    Parameters
    ----------
    path : str or Path
        The ``.onnx`` file; its card is read from ``NAME.card.json`` beside it.
    threads : int
        ONNX Runtime intra-op threads (1 is fastest per core for these small models; scale out
        with processes instead).
    """

    def __init__(self, path: str | Path, *, threads: int = 1) -> None:
        self.path = Path(path)
        self.threads = threads
        if not self.path.is_file():
            raise ModelError("model file not found", path=str(self.path))
        self.card = ModelCard.load(card_path(self.path))
        self.session = cpu_session(self.path, threads, "cannot load ONNX model")
        self.input_name = self.session.get_inputs()[0].name

    @property
    def name(self) -> str:
        return self.card.name

    def score(self, X: np.ndarray) -> np.ndarray:
        """Raw scores, higher = more likely fake.

        ``X``: pooled rows (n_rows, n_features), or for frame models (card ``input: frames``)
        crops (n_rows, n_frame_features, n_frames). Returns shape (n_rows,).
        """
        X = np.ascontiguousarray(X, dtype=np.float32)
        features = self.card.features
        if features.get("input") == "frames":
            expected = len(features.get("frame_columns", [])) or X.shape[1]
            if X.ndim != 3 or X.shape[1] != expected:
                raise ModelError(f"expected frame crops of shape (n, {expected}, n_frames), got {X.shape}")
        else:
            expected = len(features.get("columns", [])) or X.shape[1]
            if X.ndim != 2 or X.shape[1] != expected:
                raise ModelError(f"expected features of shape (n, {expected}), got {X.shape}")
        spec = self.card.output
        return fake_scores(self.session.run([spec["name"]], {self.input_name: X})[0], spec)

    def posteriors(self, X: np.ndarray) -> np.ndarray:
        """Class posteriors of a router (card ``output.classes``): pooled rows -> (n_rows, n_classes)."""
        classes = self.card.output.get("classes")
        if not classes:
            raise ModelError("this model has no class posteriors (it is not a router)", path=str(self.path))
        X = np.ascontiguousarray(X, dtype=np.float32)
        expected = len(self.card.features.get("columns", [])) or X.shape[1]
        if X.ndim != 2 or X.shape[1] != expected:
            raise ModelError(f"expected features of shape (n, {expected}), got {X.shape}")
        out = self.session.run([self.card.output["name"]], {self.input_name: X})[0]
        return np.asarray(out, dtype=np.float64).reshape(len(X), len(classes))

    def calibrate(self, scores: np.ndarray) -> np.ndarray:
        """Map raw scores to calibrated P(fake) with the card's calibration."""
        cal = self.card.output.get("calibration") or {"type": "logistic", "a": 1.0, "b": 0.0}
        return sigmoid(cal["a"] * np.asarray(scores) + cal["b"])

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Calibrated P(fake), shape (n_rows,)."""
        return self.calibrate(self.score(X))
