"""Grouped 5-fold CV of the 2-D LCNN (lfbe7k-gated-cnn2d) on frames from scripts/export_frames.py.

Written for a lent GPU machine (docs/results.md, "2-D LCNN"): the table and folds in ``.gpu/``
travel with the working tree; on the machine, from the repository root,

    PYTHONPATH=src CONFIGS='{"w64-p8": {"width": 64, "patience": 8, "max_epochs": 40}}' \
        python3 scripts/cnn2d_cv.py OUT_DIR

prints each fold's clip-level EER and writes ``results2d.json`` and the out-of-fold clip scores
(``scores_NAME.npy``, in the table's clip order). ``DRY=1`` runs a quick check on the CPU.
"""

import json
import os
import sys
import time

import numpy as np
import torch

from voxguard.evaluate.metrics import eer
from voxguard.features.segmental import SegmentalConfig, segment_crops
from voxguard.models.frame_cnn import FrameCNNClassifier
from voxguard.models.frame_nets import run_batched

T0 = time.time()
BUDGET_S = float(os.environ.get("BUDGET_S", "420"))
DRY = os.environ.get("DRY") == "1"  # a quick check here on the CPU: few clips, one epoch
DEVICE = "cpu" if DRY else "cuda"
out_dir = sys.argv[1]
d = np.load(".gpu/lfbe.npz")
folds = np.load(".gpu/folds.npy")
q, off, labels, groups = d["q"], d["offsets"], d["labels"].astype(np.float32), d["groups"]
frames = np.where(q == 255, np.nan, q.astype(np.float32) * float(d["step"]) + float(d["lo"]))
hop, seg, seg_hop = 160, 64_000, 32_000

# The segment grid of voxguard.audio.segment_bounds (4-s segments every 2 s, the last one aligned
# to the end), written out here: importing voxguard.audio needs libsndfile, which the GPU
# machine's image lacks.
rows, row_clip = [], []
for i in range(len(labels)):
    if DRY and i % 12:
        rows.append(np.zeros((0, frames.shape[0], 400), np.float32))
        continue
    F = frames[:, off[i] : off[i + 1]]
    n = (F.shape[1] - 1) * hop
    if n <= seg:
        bounds = np.array([[0, max(n, 1)]])
    else:
        starts = np.arange(0, n - seg + 1, seg_hop)
        if starts[-1] + seg < n:
            starts = np.append(starts, n - seg)
        bounds = np.stack([starts, starts + seg], axis=1)
    crops = segment_crops(F, bounds, hop, n_frames=400)
    ok = np.isfinite(crops).all(axis=1).any(axis=1)
    rows.append(crops[ok])
    row_clip += [i] * int(ok.sum())
X = np.concatenate(rows)
row_clip = np.array(row_clip)
y_row, g_row, f_row = labels[row_clip], groups[row_clip], folds[row_clip]
device_name = "cpu" if DRY else torch.cuda.get_device_name(0)
print(f"{len(labels)} clips, {len(X)} crops {X.shape}, {device_name}, {time.time() - T0:.0f} s", flush=True)

CONFIGS = (
    json.loads(os.environ["CONFIGS"])
    if "CONFIGS" in os.environ
    else {
        "default": {},
        "masks-lr5e-4": {"lr": 5e-4, "time_masks": 2, "feature_masks": 2, "patience": 6, "max_epochs": 30},
    }
)
features = SegmentalConfig(views=("lfbe_7k",), gate_db=40.0)
results = {}
for name, params in CONFIGS.items():
    clip_scores = np.full(len(labels), np.nan)
    fold_eers, epochs = [], []
    for k in range(int(folds.max()) + 1):
        if time.time() - T0 > BUDGET_S:
            print(f"budget reached before {name} fold {k + 1}", flush=True)
            break
        tr, te = f_row != k, f_row == k
        extra = {"max_epochs": 1} if DRY else {}
        model = FrameCNNClassifier(features=features, arch="lcnn2d", device=DEVICE, threads=8, **(params | extra))
        t = time.time()
        model.fit(X[tr], y_row[tr], groups=g_row[tr])
        net = model.network_.to(DEVICE).eval()
        s = run_batched(net, X[te], device=DEVICE).astype(np.float64)
        model.network_.cpu()
        clips = np.unique(row_clip[te])
        per_clip = np.array([s[row_clip[te] == c].mean() for c in clips])
        clip_scores[clips] = per_clip
        e = float(eer(labels[clips], per_clip).eer)
        fold_eers.append(e)
        epochs.append(len(model.history_))
        took = time.time() - t
        print(f"{name} fold{k + 1}: EER {e * 100:.1f} % ({len(model.history_)} epochs, {took:.0f} s)", flush=True)
    done = np.isfinite(clip_scores)
    pooled = float(eer(labels[done], clip_scores[done]).eer) if done.any() else float("nan")
    results[name] = {
        "params": params,
        "fold_eer": fold_eers,
        "mean_fold_eer": float(np.mean(fold_eers)) if fold_eers else None,
        "pooled_eer": pooled,
        "clips_scored": int(done.sum()),
        "epochs": epochs,
    }
    np.save(os.path.join(out_dir, f"scores_{name}.npy"), clip_scores)
    print(name, json.dumps(results[name]), flush=True)
with open(os.path.join(out_dir, "results2d.json"), "w") as fh:
    json.dump(results, fh, indent=1)
print(f"total {time.time() - T0:.0f} s")
