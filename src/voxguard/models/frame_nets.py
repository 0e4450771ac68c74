"""Torch building blocks shared by the frame-sequence detectors (training only; never imported at inference).

Frame models read crops of the frame matrix (:func:`voxguard.features.segmental.segment_crops`):
shape ``(batch, n_features, n_frames)`` with NaN where a frame is gated (silence) or padding.
:class:`FrameInput` turns that into standardised features plus a validity mask inside the
network, so the exported ONNX graph takes the raw crops and inference needs no torch and no
extra preprocessing code.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from voxguard.errors import ModelError


def torch_modules() -> tuple[Any, Any]:
    """``(torch, torch.nn)``, or a clear error when the training extra is not installed."""
    try:
        import torch
        from torch import nn
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ModelError("frame models need torch: pip install 'voxguard[train]'") from exc
    return torch, nn


def checked_crops(X: np.ndarray, y: np.ndarray, model: str) -> tuple[np.ndarray, np.ndarray]:
    """Training crops as float32 (n, n_features, n_frames) and their labels, or a :class:`ModelError`."""
    X = np.asarray(X, dtype=np.float32)
    y = np.asarray(y)
    if X.ndim != 3 or len(X) != len(y):
        raise ModelError(f"expected crops of shape (n, n_features, n_frames) and n labels, got {X.shape}")
    if len(np.unique(y)) < 2:
        raise ModelError(f"the {model} needs training crops of both classes")
    return X, y


def finite_frames(X: np.ndarray, max_frames: int, rng: np.random.Generator) -> np.ndarray:
    """Up to ``max_frames`` finite frames of crops ``X`` (n, D, T) as float64 rows (m, D), a seeded draw."""
    frames = X.transpose(0, 2, 1).reshape(-1, X.shape[1])
    frames = frames[np.isfinite(frames).all(axis=1)]
    if len(frames) > max_frames:
        frames = frames[rng.choice(len(frames), max_frames, replace=False)]
    return frames.astype(np.float64)


class RecipeMixin:
    """``recipe()`` and ``clone()`` of a frame model whose parameters are ``features`` plus ``recipe_keys()``."""

    classifier: str
    features: Any

    @staticmethod
    def recipe_keys() -> tuple[str, ...]:
        raise NotImplementedError

    def recipe(self) -> dict[str, Any]:
        return {"classifier": self.classifier} | {k: getattr(self, k) for k in self.recipe_keys()}

    def clone(self) -> Any:
        return type(self)(features=self.features, **{k: getattr(self, k) for k in self.recipe_keys()})


def frame_statistics(X: np.ndarray, *, max_rows: int = 4000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and standard deviation over the finite frames of (a sample of) crops.

    Parameters
    ----------
    X : np.ndarray, shape (n_rows, n_features, n_frames)

    Returns
    -------
    (mean, std) : two float32 arrays of shape (n_features,)
    """
    rows = np.random.default_rng(seed).permutation(len(X))[:max_rows]
    frames = np.asarray(X[rows], dtype=np.float64).transpose(1, 0, 2).reshape(X.shape[1], -1)
    frames = frames[:, np.isfinite(frames).all(axis=0)]
    if frames.shape[1] < 2:
        raise ModelError("no finite frames to standardise on (all training audio is silence?)")
    return frames.mean(axis=1).astype(np.float32), (frames.std(axis=1) + 1e-5).astype(np.float32)


def build_frame_input(mean: np.ndarray, std: np.ndarray):
    """A module ``crops -> (x, mask)``: standardised frames with gated frames zeroed, and the mask.

    ``x``: (batch, n_features, n_frames); ``mask``: (batch, 1, n_frames), 1.0 where the frame is
    finite in every feature.
    """
    torch, nn = torch_modules()

    class FrameInput(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32).reshape(1, -1, 1))
            self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32).reshape(1, -1, 1))

        def forward(self, crops):
            finite = ~torch.isnan(crops)
            mask = finite.all(dim=1, keepdim=True).to(crops.dtype)
            x = torch.where(finite, (crops - self.mean) / self.std, torch.zeros_like(crops))
            return x * mask, mask

    return FrameInput()


def masked_mean(x, mask):
    """Mean over time of ``x`` (batch, channels, time) where ``mask`` (batch, 1, time) is 1."""
    return (x * mask).sum(dim=2) / mask.sum(dim=2).clamp(min=1.0)


def export_frame_model(module: Any, n_features: int, output: str) -> bytes:
    """ONNX bytes of a module ``crops (batch, n_features, time) -> output (batch, ...)``, dynamic batch and time."""
    import io
    import warnings

    torch, _ = torch_modules()
    buffer = io.BytesIO()
    # The TorchScript exporter is deprecated in favour of torch.export (dynamo), which needs
    # onnxscript; the legacy one handles these small static graphs exactly (parity is checked).
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            module.eval(),
            (torch.zeros(2, n_features, 64),),
            buffer,
            input_names=["crops"],
            output_names=[output],
            dynamic_axes={"crops": {0: "batch", 2: "frames"}, output: {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
    return buffer.getvalue()


def run_batched(fn: Any, X: np.ndarray, batch: int = 256, device: str = "cpu") -> np.ndarray:
    """``fn`` (a torch module or method) over crops ``X`` in batches, without gradients; numpy out."""
    torch, _ = torch_modules()
    with torch.no_grad():
        return np.concatenate(
            [
                fn(torch.from_numpy(np.ascontiguousarray(X[i : i + batch], dtype=np.float32)).to(device)).cpu().numpy()
                for i in range(0, len(X), batch)
            ]
        )


def check_onnx(
    onx: bytes,
    output: str,
    probe: np.ndarray,
    reference: np.ndarray,
    *,
    index: int | None = None,
    sign: int = 1,
    atol: float = 1e-3,
) -> None:
    """Raise :class:`ModelError` unless ONNX Runtime reproduces ``reference`` on ``probe``.

    ``index``/``sign``: as in a card's ``output`` block (the column of a 2-D output, and the sign
    that makes higher = more likely fake).
    """
    import onnxruntime as ort

    session = ort.InferenceSession(onx, providers=["CPUExecutionProvider"])
    got = session.run([output], {"crops": np.ascontiguousarray(probe, dtype=np.float32)})[0]
    got = sign * (got[:, index] if index is not None else got).reshape(len(probe), -1)
    want = np.asarray(reference).reshape(len(probe), -1)
    scale = max(1.0, float(np.max(np.abs(want))))
    diff = float(np.max(np.abs(got - want)))
    if not diff <= atol * scale:
        raise ModelError(f"the ONNX export does not reproduce the torch scores (max difference {diff:.2e})")


def export_with_svm_head(
    encoder: Any, svm: Any, probe: np.ndarray, vectors: np.ndarray, reference: np.ndarray
) -> tuple[bytes, dict[str, Any]]:
    """One ONNX graph: ``encoder`` (crops -> vectors) then the fitted scikit-learn ``svm`` (vectors -> decision).

    ``vectors``: the encoder's output on ``probe``; ``reference``: the scores the merged graph
    must reproduce on ``probe``. Returns the bytes and the card's ``output`` block.
    """
    import onnx
    from onnx import compose

    from voxguard.models.export import sklearn_to_onnx

    net_onx = onnx.load_from_string(export_frame_model(encoder, probe.shape[1], "embedding"))
    svm_bytes, output = sklearn_to_onnx(svm, vectors, svm.decision_function(vectors))
    svm_onx = onnx.load_from_string(svm_bytes)
    # Both must share one opset per domain to merge; the network's opset is the newer.
    svm_onx = onnx.version_converter.convert_version(svm_onx, net_onx.opset_import[0].version)
    svm_onx = compose.add_prefix(svm_onx, "svm_")
    svm_outputs = [o.name for o in svm_onx.graph.output]
    merged = compose.merge_models(net_onx, svm_onx, io_map=[("embedding", "svm_features")], outputs=svm_outputs)
    onx = merged.SerializeToString()
    name = "svm_" + output["name"]
    check_onnx(onx, name, probe, reference, index=output["index"], sign=output["sign"])
    return onx, output | {"name": name}
