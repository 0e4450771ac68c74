"""Export Resemble AI's Perth watermark *decoder* to ONNX for ``voxguard scan --watermark``.

Chatterbox TTS (Resemble AI, MIT) marks everything it generates with Perth's implicit
watermark. The ``resemble-perth`` wheel on PyPI (MIT) ships the trained network as a PyTorch
checkpoint; voxguard ships only its decoder, as an ONNX graph with float16 weights, so that the
inference path needs neither torch nor the wheel.

What goes into the graph: the decoder's three convolution stacks (one per time scale: the
spectrogram stretched by 1.25, as is, and squeezed to 0.75). Everything around them (the STFT,
the dB normalisation, the linear time interpolation, the speech mask, the masked means and the
softmax over the three scales) is NumPy in :mod:`voxguard.models.watermark`, so the graph has
fixed shapes apart from time.

Usage (a development step, needs torch; downloads the wheel from PyPI unless ``--wheel``)::

    .venv/bin/python scripts/export_perth.py                         # or: make model-perth
    .venv/bin/python scripts/export_perth.py --wheel resemble_perth-1.0.1-py3-none-any.whl

Writes ``src/voxguard/models/watermarks/perth-implicit.onnx`` and its card.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import onnx
import yaml
from onnx import TensorProto, helper, numpy_helper

PACKAGE = "resemble-perth==1.0.1"
CHECKPOINT = "perth/perth_net/pretrained/implicit/perth_net_250000.pth.tar"
HPARAMS = "perth/perth_net/pretrained/implicit/hparams.yaml"
OUT_DIR = Path(__file__).resolve().parents[1] / "src/voxguard/models/watermarks"
BRANCHES = ("slow", "normal", "fast")
#: Time scales of the three branches (``Decoder.forward`` in perth_net_implicit/model/decoder.py).
SCALES = {"slow": 1.25, "normal": 1.0, "fast": 0.75}
#: Layers per branch: a 1x1 conv in, five k=7 convs, a 1x1 conv out (2 channels: attention, mark).
N_LAYERS = 7
LEAKY_SLOPE = 0.01  # torch.nn.LeakyReLU's default


def fetch_wheel(dest: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", PACKAGE, "-d", str(dest)], check=True
    )
    return next(dest.glob("resemble_perth-*.whl"))


def read_checkpoint(wheel: Path, part: str = "decoder") -> tuple[dict[str, np.ndarray], dict, str]:
    """One part's weights (``decoder`` or ``encoder``; float32 arrays), the hyperparameters and
    the wheel's licence text."""
    import torch  # development only: the checkpoint is a torch pickle

    with zipfile.ZipFile(wheel) as zf:
        hparams = yaml.safe_load(zf.read(HPARAMS))
        licence = next(zf.read(n).decode() for n in zf.namelist() if n.endswith("LICENSE"))
        # weights_only: tensors and plain containers only, no arbitrary code from the pickle
        state = torch.load(io.BytesIO(zf.read(CHECKPOINT)), map_location="cpu", weights_only=True)["model"]
    prefix = part + "."
    weights = {k.removeprefix(prefix): v.numpy().astype(np.float32) for k, v in state.items() if k.startswith(prefix)}
    return weights, hparams, licence


def conv_stack(
    weights: dict[str, np.ndarray], prefix: str, x: str, out: str
) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """Perth's ``Conv`` layers ``{prefix}.{i}.conv``: Conv + LeakyRelu, the last one without."""
    nodes, inits = [], []
    for i in range(N_LAYERS):
        w, b = weights[f"{prefix}.{i}.conv.weight"], weights[f"{prefix}.{i}.conv.bias"]
        wname, bname = f"{prefix}.{i}.w", f"{prefix}.{i}.b"
        # float16 storage halves the file; a Cast restores float32, which ONNX Runtime folds at load
        inits += [numpy_helper.from_array(w.astype(np.float16), wname + "16"), numpy_helper.from_array(b, bname)]
        nodes.append(helper.make_node("Cast", [wname + "16"], [wname], to=TensorProto.FLOAT))
        k = w.shape[2]
        conv = out if i == N_LAYERS - 1 else f"{prefix}.{i}.conv"
        nodes.append(helper.make_node("Conv", [x, wname, bname], [conv], kernel_shape=[k], pads=[k // 2, k // 2]))
        if i < N_LAYERS - 1:
            x = f"{prefix}.{i}.act"
            nodes.append(helper.make_node("LeakyRelu", [conv], [x], alpha=LEAKY_SLOPE))
    return nodes, inits


def _model(nodes, inits, inputs, outputs, name: str) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, name, inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="voxguard")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def decoder_graph(weights: dict[str, np.ndarray], subband: int) -> onnx.ModelProto:
    """Three stacks, inputs ``slow``/``normal``/``fast`` (batch, subband, time) -> outputs
    ``slow_out``/... (batch, 2, time): channel 0 the attention logit, channel 1 the mark."""
    nodes, inits, inputs, outputs = [], [], [], []
    for branch in BRANCHES:
        n, i = conv_stack(weights, f"{branch}_layers", branch, f"{branch}_out")
        nodes, inits = nodes + n, inits + i
        inputs.append(helper.make_tensor_value_info(branch, TensorProto.FLOAT, ["batch", subband, f"t_{branch}"]))
        outputs.append(helper.make_tensor_value_info(f"{branch}_out", TensorProto.FLOAT, ["batch", 2, f"t_{branch}"]))
    return _model(nodes, inits, inputs, outputs, "perth_implicit_decoder")


def encoder_graph(weights: dict[str, np.ndarray], subband: int) -> onnx.ModelProto:
    """The embedder's stack (not shipped; ``scripts/watermark_eval.py`` marks test audio with it):
    ``subband`` (batch, subband, time) -> ``residual`` (batch, subband, time), to be added to the
    normalised magnitudes of the frames Perth's mask keeps."""
    nodes, inits = conv_stack(weights, "layers", "subband", "residual")
    shape = ["batch", subband, "time"]
    inputs = [helper.make_tensor_value_info("subband", TensorProto.FLOAT, shape)]
    outputs = [helper.make_tensor_value_info("residual", TensorProto.FLOAT, shape)]
    return _model(nodes, inits, inputs, outputs, "perth_implicit_encoder")


def subband_bins(hp: dict) -> int:
    return int(round((hp["n_fft"] // 2 + 1) * hp["max_wmark_freq"] / (hp["sample_rate"] / 2)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wheel", type=Path, help="a resemble-perth wheel (default: pip download it)")
    parser.add_argument("--out-dir", type=Path, default=OUT_DIR)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or fetch_wheel(Path(tmp))
        weights, hp, licence = read_checkpoint(wheel)
    subband = subband_bins(hp)
    model = decoder_graph(weights, subband)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = args.out_dir / "perth-implicit.onnx"
    onnx.save(model, onnx_path)
    (args.out_dir / "perth-implicit.LICENSE").write_text(licence)
    card = {
        "name": "perth-implicit",
        "kind": "watermark-decoder",
        "description": (
            "Decoder of Resemble AI's Perth implicit audio watermark (resemble-perth 1.0.1, MIT; "
            "Chatterbox TTS marks its output with it). A mark says the audio came out of a Perth "
            "watermarker; its absence says nothing about whether speech is real."
        ),
        "source": {"package": PACKAGE, "checkpoint": CHECKPOINT, "licence": "MIT (perth-implicit.LICENSE)"},
        "frontend": {
            "sample_rate": int(hp["sample_rate"]),
            "n_fft": int(hp["n_fft"]),
            "hop": int(hp["hop_size"]),
            "window": hp["window_fn"],
            "magnitude_floor": float(hp["stft_magnitude_min"]),
            "headroom_db": 15.0,
            "subband_bins": subband,
            "mask_fraction": 0.05,
        },
        "branches": {b: SCALES[b] for b in BRANCHES},
        # Perth rounds at 0.5; on unmarked corpora that flags 2.6 % (DEV) to 11.6 % (the synthetic
        # corpus) of the clips: voxguard claims a mark from 0.95 over at least 2 s of signal
        # (docs/watermark.md)
        "threshold": 0.95,
        "min_signal_s": 2.0,
        "storage": "float16 weights, float32 compute",
        "exported": dt.date.today().isoformat(),
        "reproduce": "make model-perth  (scripts/export_perth.py; needs torch)",
    }
    card_file = args.out_dir / "perth-implicit.card.json"
    if card_file.exists():  # keep the measured figures that docs/watermark.md reports
        card["metrics"] = json.loads(card_file.read_text()).get("metrics", {})
    card_file.write_text(json.dumps(card, indent=2) + "\n")
    print(f"wrote {onnx_path} ({onnx_path.stat().st_size / 1e6:.1f} MB), subband {subband} bins")


if __name__ == "__main__":
    main()
