"""A light CNN (LCNN) over frame sequences: the seed's 1D CNN done right, and its SVM hybrid.

The seed study's CNN convolved over the 26 columns of one feature row (there was no time axis
at all). Here time is the convolution axis: the input is a 4-s crop of the frame matrix
(e.g. LFCC 4-7 kHz + Δ + ΔΔ and band flatness, 10 ms frames), the blocks use the max-feature-map
activation of LCNN (Wu et al., 2018; the ASVspoof 2019/2021 LCNN baselines), and masked
mean+std pooling over time makes the score independent of the crop length and of gated
silence::

    crops (B, D, T), NaN = gated  ->  standardise, mask
    MFM-conv(D -> 32, k=5)  MFM-conv(32 -> 32, k=3)  max-pool 2
    MFM-conv(32 -> 48, k=3) MFM-conv(48 -> 48, k=3)  max-pool 2
    MFM-conv(48 -> 64, k=3)
    masked mean + std over time (128)  ->  dropout  ->  MFM-linear(128 -> 32) = embedding
    linear(32 -> 1) = logit, higher = more likely fake

``head="svm"`` is the seed's proposed hybrid: the trained network's 32-d embeddings feed a
StandardScaler + SVM-RBF, exported as one ONNX graph (network then SVM).

Training: class-weighted BCE, AdamW, random 2-s sub-crops of the training crops (the network
is length-independent), early stopping on the segment EER of a *grouped* validation split
(15 % of the recordings: a real recording and its fakes stay on one side), fixed seeds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from voxguard.errors import ModelError
from voxguard.features.segmental import SegmentalConfig
from voxguard.models.frame_nets import (
    build_frame_input,
    check_onnx,
    export_frame_model,
    export_with_svm_head,
    frame_statistics,
    masked_mean,
    run_batched,
    torch_modules,
)

HEADS = ("linear", "svm")


def build_lcnn(
    n_features: int,
    mean: np.ndarray,
    std: np.ndarray,
    *,
    width: int = 32,
    dropout: float = 0.3,
    input_stats: bool = False,
):
    """The network of the module docstring; ``forward(crops) -> logit (B,)``, ``embed(crops) -> (B, width)``.

    ``input_stats``: also feed the masked mean and standard deviation of the standardised input
    frames to the embedding layer (a "wide" path: the pooled statistics the SVM models use, next
    to what the convolutions learn over time).
    """
    torch, nn = torch_modules()

    class MFMConv(nn.Module):
        """Conv1d to twice the channels, then the element-wise max of the two halves (max-feature-map)."""

        def __init__(self, c_in: int, c_out: int, kernel: int) -> None:
            super().__init__()
            self.conv = nn.Conv1d(c_in, 2 * c_out, kernel, padding=kernel // 2, bias=False)
            self.norm = nn.BatchNorm1d(c_out)

        def forward(self, x, mask):
            # Masking after every layer keeps gated frames and padding at exactly zero, so a
            # crop's score does not depend on how much padding or silence surrounds its frames.
            a, b = self.conv(x).chunk(2, dim=1)
            return self.norm(torch.maximum(a, b)) * mask

    class LCNN1d(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            w = width
            self.input = build_frame_input(mean, std)
            self.stage1 = nn.ModuleList([MFMConv(n_features, w, 5), MFMConv(w, w, 3)])
            self.stage2 = nn.ModuleList([MFMConv(w, w * 3 // 2, 3), MFMConv(w * 3 // 2, w * 3 // 2, 3)])
            self.stage3 = nn.ModuleList([MFMConv(w * 3 // 2, 2 * w, 3)])
            self.dropout = nn.Dropout(dropout)
            pooled = 4 * w + (2 * n_features if input_stats else 0)
            self.embedding = nn.Linear(pooled, 2 * w)  # MFM halves it to w
            self.out = nn.Linear(w, 1)

        def embed(self, crops):
            x, mask = self.input(crops)
            wide = []
            if input_stats:
                mu_in = masked_mean(x, mask)
                wide = [mu_in, (masked_mean(x * x, mask) - mu_in * mu_in).clamp(min=1e-6).sqrt()]
            for k, stage in enumerate((self.stage1, self.stage2, self.stage3)):
                if k:
                    x, mask = nn.functional.max_pool1d(x, 2), nn.functional.max_pool1d(mask, 2)
                for layer in stage:
                    x = layer(x, mask)
            mu = masked_mean(x, mask)
            sd = (masked_mean(x * x, mask) - mu * mu).clamp(min=1e-6).sqrt()
            a, b = self.embedding(self.dropout(torch.cat([mu, sd, *wide], dim=1))).chunk(2, dim=1)
            return torch.maximum(a, b)

        def forward(self, crops):
            return self.out(self.embed(crops)).squeeze(1)

    return LCNN1d()


def build_lcnn2d(n_features: int, mean: np.ndarray, std: np.ndarray, *, width: int = 16, dropout: float = 0.3):
    """A 2-D LCNN over a log-linear spectrogram crop (features = frequency bands, e.g. ``lfbe_7k``).

    ::

        crops (B, F, T) -> standardise, mask -> (B, 1, F, T)
        MFM-conv2d(1 -> w/2, 5x5)    max-pool 2x2
        MFM-conv2d(w/2 -> w, 3x3)    max-pool 2x2
        MFM-conv2d(w -> 3w/2, 3x3)   max-pool 2x2
        MFM-conv2d(3w/2 -> 2w, 3x3)
        flatten frequency x channels -> masked mean + std over time -> dropout
        MFM-linear -> embedding (w) -> linear -> logit

    Frequency is a spatial axis here, so local spectral patterns (a vocoder's periodic ripples,
    missing harmonics) can be learnt where the 1-D model only sees cepstra.
    """
    torch, nn = torch_modules()

    class MFMConv2d(nn.Module):
        def __init__(self, c_in: int, c_out: int, kernel: int) -> None:
            super().__init__()
            self.conv = nn.Conv2d(c_in, 2 * c_out, kernel, padding=kernel // 2, bias=False)
            self.norm = nn.BatchNorm2d(c_out)

        def forward(self, x, mask):
            a, b = self.conv(x).chunk(2, dim=1)
            return self.norm(torch.maximum(a, b)) * mask  # mask: (B, 1, 1, T)

    class LCNN2d(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            w = width
            channels = [1, w // 2, w, w * 3 // 2, 2 * w]
            kernels = [5, 3, 3, 3]
            self.input = build_frame_input(mean, std)
            self.blocks = nn.ModuleList([MFMConv2d(channels[i], channels[i + 1], kernels[i]) for i in range(4)])
            pooled_freq = n_features // 8
            self.dropout = nn.Dropout(dropout)
            self.embedding = nn.Linear(2 * 2 * w * pooled_freq, 2 * w)  # MFM halves it to w
            self.out = nn.Linear(w, 1)

        def embed(self, crops):
            x, mask = self.input(crops)
            x, mask = x.unsqueeze(1), mask.unsqueeze(1)  # (B, 1, F, T), (B, 1, 1, T)
            for k, block in enumerate(self.blocks):
                x = block(x, mask)
                if k < 3:
                    x = nn.functional.max_pool2d(x, 2)
                    mask = nn.functional.max_pool2d(mask, (1, 2))
            x = x.flatten(1, 2)  # (B, channels x freq, T')
            mask = mask.squeeze(1)  # (B, 1, T')
            mu = masked_mean(x, mask)
            sd = (masked_mean(x * x, mask) - mu * mu).clamp(min=1e-6).sqrt()
            a, b = self.embedding(self.dropout(torch.cat([mu, sd], dim=1))).chunk(2, dim=1)
            return torch.maximum(a, b)

        def forward(self, crops):
            return self.out(self.embed(crops)).squeeze(1)

    return LCNN2d()


ARCHITECTURES = ("lcnn1d", "lcnn2d")


@dataclass
class FrameCNNClassifier:
    """LCNN over frame-sequence crops (see the module docstring), scikit-learn style.

    Parameters
    ----------
    features : SegmentalConfig
        Frame views (the same as the segmental models'; the gate marks silence as NaN).
    head : "linear" | "svm"
        The network's own output layer, or the hybrid: an SVM-RBF on its embeddings.
    arch : "lcnn1d" | "lcnn2d"
        1-D convolution over time (any frame features), or 2-D over frequency x time (a
        log-linear spectrogram view such as ``lfbe_7k``; :func:`build_lcnn2d`).
    C : float
        SVM regularisation for ``head="svm"``.
    width : int
        Channels of the first stage (the others scale with it).
    max_epochs, patience : int
        Early stopping: stop after ``patience`` epochs without a better validation EER; the
        weights of the best epoch are kept.
    batch_size : int
    lr, weight_decay : float
        AdamW.
    train_frames : int
        Length of the random sub-crops trained on (frames of 10 ms).
    time_masks, feature_masks : int
        SpecAugment-style masking of every training crop: this many random spans of up to 10 % of
        the frames are gated (NaN, so masked like silence), and this many spans of up to 8
        features are set to their training mean.
    input_stats : bool
        Feed the pooled mean/std of the input frames to the embedding too (see :func:`build_lcnn`).
    validation : float
        Share of the recordings (groups) held out for early stopping.
    seed : int
    threads : int
        Torch intra-op threads.
    device : str
        Torch device to train on (``"cpu"``, ``"cuda"``). Only where training runs, not part of
        the recipe: the fitted network is moved back to the CPU, and export and scoring are the
        same wherever it was trained.
    segment_s, hop_s : float
        Crop length and hop of the training rows (as the segmental models).
    class_weight : "balanced" or None
    """

    features: SegmentalConfig = field(default_factory=SegmentalConfig)
    head: str = "linear"
    arch: str = "lcnn1d"
    C: float = 1.0
    width: int = 32
    max_epochs: int = 20
    patience: int = 4
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-3
    train_frames: int = 200
    time_masks: int = 0
    feature_masks: int = 0
    input_stats: bool = False
    validation: float = 0.15
    seed: int = 0
    threads: int = 2
    device: str = "cpu"
    segment_s: float = 4.0
    hop_s: float = 2.0
    class_weight: str | None = "balanced"
    row_kind: str = field(default="frames", init=False)
    network_: Any = field(default=None, init=False, repr=False)
    feature_mean_: Any = field(default=None, init=False, repr=False)
    svm_: Any = field(default=None, init=False, repr=False)
    history_: list[dict[str, float]] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.head not in HEADS:
            raise ModelError(f"unknown head {self.head!r}; choose from {', '.join(HEADS)}")
        if self.arch not in ARCHITECTURES:
            raise ModelError(f"unknown architecture {self.arch!r}; choose from {', '.join(ARCHITECTURES)}")

    @property
    def classifier(self) -> str:
        if self.arch == "lcnn2d":
            return "cnn2d" if self.head == "linear" else "cnn2d-svm"
        return "cnn" if self.head == "linear" else "cnn-svm"

    def clone(self) -> FrameCNNClassifier:
        return FrameCNNClassifier(
            **{k: getattr(self, k) for k in self.recipe_keys()} | {"features": self.features, "device": self.device}
        )

    @staticmethod
    def recipe_keys() -> tuple[str, ...]:
        return (
            "head", "arch", "C", "width", "max_epochs", "patience", "batch_size", "lr", "weight_decay",
            "train_frames", "time_masks", "feature_masks", "input_stats", "validation", "seed", "threads",
            "segment_s", "hop_s", "class_weight",
        )  # fmt: skip

    def recipe(self) -> dict[str, Any]:
        return {"classifier": self.classifier} | {k: getattr(self, k) for k in self.recipe_keys()}

    def describe(self) -> str:
        head = f" + SVC(rbf, C={self.C}) on its embeddings" if self.head == "svm" else ""
        return (
            f"LCNN-{self.arch[-2:]} (width {self.width}, max-feature-map, masked mean/std pooling){head} "
            f"over {self.segment_s:g}-s crops of {'+'.join(self.features.views)} frames"
        )

    # ------------------------------------------------------------------ training

    def fit(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None, *, log=None) -> FrameCNNClassifier:
        """Train on crops ``X`` (n, n_features, n_frames) with labels ``y`` (1 = fake).

        ``groups`` (n,): recording group of every row, for the grouped validation split; without
        it the validation rows are drawn at random (optimistic when rows overlap in time).
        """
        torch, nn = torch_modules()
        X = np.asarray(X, dtype=np.float32)
        y = np.asarray(y, dtype=np.float32)
        if X.ndim != 3 or len(X) != len(y):
            raise ModelError(f"expected crops of shape (n, n_features, n_frames) and n labels, got {X.shape}")
        torch.manual_seed(self.seed)
        torch.set_num_threads(max(1, self.threads))
        rng = np.random.default_rng(self.seed)
        train, val = self._validation_split(y, groups, rng)
        mean, std = frame_statistics(X[train], seed=self.seed)
        self.feature_mean_ = mean
        if self.arch == "lcnn2d":
            net = build_lcnn2d(X.shape[1], mean, std, width=self.width)
        else:
            net = build_lcnn(X.shape[1], mean, std, width=self.width, input_stats=self.input_stats)
        net = net.to(self.device)
        weight = (y[train] == 0).sum() / max(1, (y[train] == 1).sum()) if self.class_weight == "balanced" else 1.0
        loss_fn = nn.BCEWithLogitsLoss(pos_weight=torch.tensor(float(weight), device=self.device))
        optimiser = torch.optim.AdamW(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=self.max_epochs)
        best_eer, best_state, stale = np.inf, None, 0
        self.history_ = []
        for epoch in range(self.max_epochs):
            start = time.perf_counter()
            net.train()
            order = rng.permutation(train)
            total = 0.0
            for b in range(0, len(order), self.batch_size):
                rows = order[b : b + self.batch_size]
                if len(rows) < 2:  # batch norm needs two rows
                    continue
                batch = torch.from_numpy(self._sub_crops(X, rows, rng)).to(self.device)
                optimiser.zero_grad()
                loss = loss_fn(net(batch), torch.from_numpy(y[rows]).to(self.device))
                loss.backward()
                optimiser.step()
                total += loss.item() * len(rows)
            schedule.step()
            val_eer = self._eer(y[val], self._logits(net, X[val])) if len(val) else float("nan")
            self.history_.append({"epoch": epoch + 1, "loss": total / len(train), "val_eer": val_eer})
            if log is not None:
                log(
                    f"epoch {epoch + 1}/{self.max_epochs}: loss {total / len(train):.4f}, "
                    f"validation EER {val_eer * 100:.2f} % ({time.perf_counter() - start:.0f} s)"
                )
            if not len(val):
                continue
            if val_eer < best_eer - 1e-4:
                best_eer, stale = val_eer, 0
                best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            else:
                stale += 1
                if stale >= self.patience:
                    break
        if best_state is not None:
            net.load_state_dict(best_state)
        self.network_ = net.cpu().eval()
        if self.head == "svm":
            self.svm_ = self._make_svm().fit(self.embed(X), y.astype(np.int64))
        return self

    def _validation_split(self, y: np.ndarray, groups: np.ndarray | None, rng) -> tuple[np.ndarray, np.ndarray]:
        rows = np.arange(len(y))
        if self.validation <= 0:
            return rows, rows[:0]
        if groups is None:
            held = rng.random(len(y)) < self.validation
        else:
            unique = np.unique(groups)
            chosen = rng.permutation(unique)[: max(1, int(round(self.validation * len(unique))))]
            held = np.isin(groups, chosen)
        # Early stopping needs both classes on each side; otherwise train on everything, fixed epochs.
        if len(np.unique(y[held])) < 2 or len(np.unique(y[~held])) < 2:
            return rows, rows[:0]
        return rows[~held], rows[held]

    def _sub_crops(self, X: np.ndarray, rows: np.ndarray, rng) -> np.ndarray:
        width = min(self.train_frames, X.shape[2])
        starts = rng.integers(0, X.shape[2] - width + 1, size=len(rows))
        index = starts[:, None] + np.arange(width)[None, :]
        crops = np.take_along_axis(X[rows], index[:, None, :], axis=2)
        n, n_features, _ = crops.shape
        for _ in range(self.time_masks):
            length = rng.integers(0, max(1, width // 10) + 1, size=n)
            start = rng.integers(0, width, size=n)
            t = np.arange(width)[None, :]
            masked = (t >= start[:, None]) & (t < (start + length)[:, None])
            crops[np.broadcast_to(masked[:, None, :], crops.shape)] = np.nan
        for _ in range(self.feature_masks):
            length = rng.integers(0, 9, size=n)
            start = rng.integers(0, n_features, size=n)
            f = np.arange(n_features)[None, :]
            masked = (f >= start[:, None]) & (f < (start + length)[:, None])
            fill = np.broadcast_to(self.feature_mean_[None, :, None], crops.shape)
            where = np.broadcast_to(masked[:, :, None], crops.shape) & np.isfinite(crops)
            crops[where] = fill[where]
        return crops

    def _make_svm(self):
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        from sklearn.svm import SVC

        return make_pipeline(StandardScaler(), SVC(C=self.C, gamma="scale", class_weight=self.class_weight))

    @staticmethod
    def _eer(y: np.ndarray, scores: np.ndarray) -> float:
        from voxguard.evaluate.metrics import eer

        return float(eer(y, scores).eer) if 0 < y.sum() < len(y) else float("nan")

    def _logits(self, net, X: np.ndarray) -> np.ndarray:
        net.eval()
        out = run_batched(net, X, device=self.device)
        net.train()
        return out.astype(np.float64)

    # ------------------------------------------------------------------ inference

    def _check_fitted(self) -> None:
        if self.network_ is None:
            raise ModelError("the model is not fitted")

    def embed(self, X: np.ndarray) -> np.ndarray:
        """The 32-d (``width``) embedding of every crop, shape (n, width)."""
        self._check_fitted()
        return run_batched(self.network_.embed, X)

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Score per crop, higher = more likely fake."""
        self._check_fitted()
        if self.head == "svm":
            return self.svm_.decision_function(self.embed(X)).astype(np.float64)
        return run_batched(self.network_, X).astype(np.float64)

    def to_onnx(self, probe: np.ndarray) -> tuple[bytes, dict[str, Any]]:
        """ONNX bytes taking raw crops (NaN = gated) and the card's ``output`` block, checked on ``probe``."""
        self._check_fitted()
        reference = self.decision_function(probe)
        if self.head == "linear":
            onx = export_frame_model(self.network_, probe.shape[1], "logit")
            check_onnx(onx, "logit", probe, reference)
            return onx, {"name": "logit", "index": None, "sign": 1}
        return self._hybrid_onnx(probe, reference)

    def _hybrid_onnx(self, probe: np.ndarray, reference: np.ndarray) -> tuple[bytes, dict[str, Any]]:
        """Network (crops -> embedding) and SVM (embedding -> decision) merged into one graph."""
        _, nn = torch_modules()

        class Embedder(nn.Module):
            def __init__(self, net) -> None:
                super().__init__()
                self.net = net

            def forward(self, crops):
                return self.net.embed(crops)

        return export_with_svm_head(Embedder(self.network_), self.svm_, probe, self.embed(probe), reference)
