"""The ASVspoof baseline LFCC-GMM: one Gaussian mixture per class, scored by the log-likelihood ratio.

Every frame (10 ms; gated silence left out) of the training crops of each class trains a
diagonal-covariance GMM on standardised frame features; a crop's score is the mean over its
frames of ``log p(x | fake) - log p(x | real)`` (higher = more likely fake). The ASVspoof 2019/
2021 baseline uses 512 components on full-band LFCC + Δ + ΔΔ; 64 components and at most
``max_frames`` frames per class fit the CPU budget with little loss.

The exported ONNX graph takes raw crops (NaN = gated) and computes the same mean LLR.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from voxguard.errors import ModelError
from voxguard.features.segmental import SegmentalConfig
from voxguard.models.frame_nets import (
    RecipeMixin,
    build_frame_input,
    check_onnx,
    checked_crops,
    export_frame_model,
    finite_frames,
    frame_statistics,
    masked_mean,
    run_batched,
    torch_modules,
)


def build_llr_module(mean: np.ndarray, std: np.ndarray, real: Any, fake: Any):
    """``crops -> mean frame LLR`` for two fitted diagonal ``GaussianMixture`` models."""
    torch, nn = torch_modules()

    def gmm_terms(gmm) -> tuple[Any, Any, Any]:
        precision = 1.0 / gmm.covariances_  # (K, D)
        const = (
            np.log(gmm.weights_)
            - 0.5 * np.log(2 * np.pi * gmm.covariances_).sum(axis=1)
            - 0.5 * (gmm.means_**2 * precision).sum(axis=1)
        )
        as_tensor = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
        return as_tensor(-0.5 * precision), as_tensor(gmm.means_ * precision), as_tensor(const)

    class MeanLLR(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.input = build_frame_input(mean, std)
            for name, gmm in (("real", real), ("fake", fake)):
                quad, lin, const = gmm_terms(gmm)
                self.register_buffer(f"{name}_quad", quad)
                self.register_buffer(f"{name}_lin", lin)
                self.register_buffer(f"{name}_const", const)

        def loglik(self, x, quad, lin, const):
            # x: (B, T, D); log N per component as x^2 . quad + x . lin + const, then log-sum-exp.
            per_component = x.pow(2) @ quad.T + x @ lin.T + const
            return torch.logsumexp(per_component, dim=2)

        def forward(self, crops):
            x, mask = self.input(crops)
            x = x.transpose(1, 2)
            llr = self.loglik(x, self.fake_quad, self.fake_lin, self.fake_const) - self.loglik(
                x, self.real_quad, self.real_lin, self.real_const
            )
            return masked_mean(llr.unsqueeze(1), mask).squeeze(1)

    return MeanLLR()


@dataclass
class FrameGMMClassifier(RecipeMixin):
    """Two diagonal GMMs on frame features (LFCC-GMM), scikit-learn style.

    Parameters
    ----------
    features : SegmentalConfig
        Frame views (the ASVspoof baseline: ``("lfcc",)``).
    n_components : int
    max_frames : int
        Frames per class the GMMs are fitted on (a seeded random draw).
    max_iter : int
        EM iterations.
    seed : int
    segment_s, hop_s : float
        Crop length and hop of the rows.
    """

    features: SegmentalConfig = field(default_factory=lambda: SegmentalConfig(views=("lfcc",)))
    n_components: int = 64
    max_frames: int = 150_000
    max_iter: int = 100
    seed: int = 0
    segment_s: float = 4.0
    hop_s: float = 2.0
    class_weight: str | None = None  # each class has its own model: weights do not apply
    row_kind: str = field(default="frames", init=False)
    classifier: str = field(default="gmm", init=False)
    module_: Any = field(default=None, init=False, repr=False)

    @staticmethod
    def recipe_keys() -> tuple[str, ...]:
        return ("n_components", "max_frames", "max_iter", "seed", "segment_s", "hop_s")

    def describe(self) -> str:
        return (
            f"two diagonal GMMs ({self.n_components} components each), mean frame log-likelihood ratio "
            f"over {self.segment_s:g}-s crops of {'+'.join(self.features.views)} frames"
        )

    def fit(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None, *, log=None) -> FrameGMMClassifier:
        from sklearn.mixture import GaussianMixture

        X, y = checked_crops(X, y, "GMM baseline")
        rng = np.random.default_rng(self.seed)
        mean, std = frame_statistics(X, seed=self.seed)
        gmms = []
        for label in (0, 1):
            frames = (finite_frames(X[y == label], self.max_frames, rng) - mean) / std
            if len(frames) < self.n_components:
                raise ModelError(
                    f"{len(frames)} finite frames of class {label}: fewer than {self.n_components} components"
                )
            gmm = GaussianMixture(
                self.n_components, covariance_type="diag", max_iter=self.max_iter, reg_covar=1e-4,
                random_state=self.seed,
            ).fit(frames)  # fmt: skip
            if log is not None:
                log(f"GMM class {label}: {len(frames)} frames, converged={gmm.converged_} ({gmm.n_iter_} iterations)")
            gmms.append(gmm)
        self.module_ = build_llr_module(mean, std, gmms[0], gmms[1]).eval()
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Mean frame log-likelihood ratio per crop, higher = more likely fake."""
        if self.module_ is None:
            raise ModelError("the model is not fitted")
        return run_batched(self.module_, X, batch=128).astype(np.float64)

    def to_onnx(self, probe: np.ndarray) -> tuple[bytes, dict[str, Any]]:
        onx = export_frame_model(self.module_, probe.shape[1], "llr")
        check_onnx(onx, "llr", probe, self.decision_function(probe))
        return onx, {"name": "llr", "index": None, "sign": 1}
