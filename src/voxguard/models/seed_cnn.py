"""The seed study's 1D CNN over the 26 DEEP-VOICE features, in PyTorch.

Structure as in the seed (Keras): the 26 per-second features are read as a length-26 sequence
with one channel::

    Conv1D(64, k=3, relu) -> MaxPool(2) -> Conv1D(128, k=3, relu) -> MaxPool(2)
    -> Flatten -> Dense(128, relu) -> Dropout(0.5) -> Dense(1, sigmoid)

trained with Adam (lr 1e-3) and binary cross-entropy for 20 epochs at batch size 32. Note that
convolving across a *feature vector* treats neighbouring, unrelated features (e.g. rms next to
spectral_centroid) as a signal: it works on this table, but the CNN over frame sequences
(time as the conv axis) in :mod:`voxguard.models` is the principled version.

Labels follow voxguard's convention: 1 = fake (spoof), 0 = real.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


def _torch():
    import torch  # training extra: never imported on the inference path

    return torch


def build_seed_cnn(n_features: int = 26):
    """The seed's network as a ``torch.nn.Sequential`` producing one logit per row."""
    torch = _torch()
    nn = torch.nn
    length = ((n_features - 2) // 2 - 2) // 2  # two valid convs (k=3) and two max-pools (2)
    return nn.Sequential(
        nn.Unflatten(1, (1, n_features)),  # (batch, 26) -> (batch, 1 channel, 26 steps)
        nn.Conv1d(1, 64, kernel_size=3),
        nn.ReLU(),
        nn.MaxPool1d(2),
        nn.Conv1d(64, 128, kernel_size=3),
        nn.ReLU(),
        nn.MaxPool1d(2),
        nn.Flatten(),
        nn.Linear(128 * length, 128),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(128, 1),  # sigmoid is applied in predict_proba / the loss
    )


@dataclass
class SeedCNNClassifier:
    """scikit-learn-style wrapper: ``fit(X, y)``, ``decision_function``, ``predict_proba``, ``predict``.

    Parameters
    ----------
    epochs, batch_size, learning_rate : training schedule (seed: 20, 32, 1e-3).
    seed : int
        Seeds torch and the shuffling; with ``torch.use_deterministic_algorithms`` and one thread
        the result is bit-identical across runs on CPU.
    threads : int
        torch intra-op threads during training.
    """

    epochs: int = 20
    batch_size: int = 32
    learning_rate: float = 1e-3
    seed: int = 42
    threads: int = 1
    network_: Any = field(default=None, init=False, repr=False)
    n_features_in_: int = field(default=0, init=False)

    def fit(self, X: np.ndarray, y: np.ndarray) -> SeedCNNClassifier:
        torch = _torch()
        torch.manual_seed(self.seed)
        torch.use_deterministic_algorithms(True)
        previous_threads = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            X_t = torch.as_tensor(np.asarray(X, dtype=np.float32))
            y_t = torch.as_tensor(np.asarray(y, dtype=np.float32))
            self.n_features_in_ = X_t.shape[1]
            net = build_seed_cnn(self.n_features_in_)
            optimiser = torch.optim.Adam(net.parameters(), lr=self.learning_rate)
            loss_fn = torch.nn.BCEWithLogitsLoss()
            generator = torch.Generator().manual_seed(self.seed)
            net.train()
            for _ in range(self.epochs):
                order = torch.randperm(len(X_t), generator=generator)
                for start in range(0, len(order), self.batch_size):
                    idx = order[start : start + self.batch_size]
                    optimiser.zero_grad()
                    loss = loss_fn(net(X_t[idx]).squeeze(1), y_t[idx])
                    loss.backward()
                    optimiser.step()
            net.eval()
            self.network_ = net
        finally:
            torch.set_num_threads(previous_threads)
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Logit of "fake", shape (n_rows,)."""
        torch = _torch()
        if self.network_ is None:
            raise RuntimeError("call fit() first")
        with torch.no_grad():
            out = self.network_(torch.as_tensor(np.asarray(X, dtype=np.float32))).squeeze(1)
        return out.numpy().astype(np.float64)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Shape (n_rows, 2): columns P(real), P(fake)."""
        p = 1.0 / (1.0 + np.exp(-self.decision_function(X)))
        return np.column_stack([1 - p, p])

    def predict(self, X: np.ndarray) -> np.ndarray:
        return (self.decision_function(X) > 0).astype(int)

    def save(self, path: str, *, mean: np.ndarray | None = None, scale: np.ndarray | None = None) -> None:
        """Save the weights as safetensors and the architecture/standardisation as JSON (no pickle).

        Writes ``path`` (``.safetensors``) and ``path`` + ``.json``; :meth:`load` reads them back.
        """
        import json

        from safetensors.torch import save_file

        state = {k: v.detach().contiguous() for k, v in self.network_.state_dict().items()}
        save_file(state, path)
        meta = {
            "model": "seed-cnn",
            "n_features": self.n_features_in_,
            "mean": None if mean is None else [float(v) for v in mean],
            "scale": None if scale is None else [float(v) for v in scale],
            "training": {
                "epochs": self.epochs,
                "batch_size": self.batch_size,
                "learning_rate": self.learning_rate,
                "seed": self.seed,
            },
        }
        with open(str(path) + ".json", "w") as fh:
            json.dump(meta, fh, indent=2)

    @classmethod
    def load(cls, path: str) -> tuple[SeedCNNClassifier, dict]:
        """Load a model written by :meth:`save`; returns ``(model, metadata)``."""
        import json

        from safetensors.torch import load_file

        with open(str(path) + ".json") as fh:
            meta = json.load(fh)
        model = cls(**{k: meta["training"][k] for k in ("epochs", "batch_size", "learning_rate", "seed")})
        model.n_features_in_ = int(meta["n_features"])
        net = build_seed_cnn(model.n_features_in_)
        net.load_state_dict(load_file(path))
        model.network_ = net.eval()
        return model, meta

    def to_onnx(self, path: str, *, mean: np.ndarray | None = None, scale: np.ndarray | None = None) -> None:
        """Export to ONNX: input ``features`` (batch, n_features) float32, output ``logit`` (batch,).

        With ``mean``/``scale`` the standardisation is baked in, so the model takes raw features.
        """
        import warnings

        torch = _torch()
        n = self.n_features_in_
        mean_t = torch.as_tensor(np.zeros(n) if mean is None else mean, dtype=torch.float32)
        scale_t = torch.as_tensor(np.ones(n) if scale is None else scale, dtype=torch.float32)

        class Standardised(torch.nn.Module):
            def __init__(self, net: torch.nn.Module) -> None:
                super().__init__()
                self.net = net
                self.register_buffer("mean", mean_t)
                self.register_buffer("scale", scale_t)

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return self.net((x - self.mean) / self.scale).squeeze(1)

        with warnings.catch_warnings():
            # The TorchScript exporter is deprecated but needs no extra package (onnxscript).
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(
                Standardised(self.network_).eval(),
                (torch.zeros(1, n),),
                path,
                input_names=["features"],
                output_names=["logit"],
                dynamic_axes={"features": {0: "batch"}, "logit": {0: "batch"}},
                dynamo=False,
            )
