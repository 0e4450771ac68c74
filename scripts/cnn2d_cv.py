"""Grouped CV and LOFO of the 2-D LCNN (lfbe7k-gated-cnn2d) on the table of scripts/export_frames.py.

Written for a lent GPU machine (docs/results.md, "The 2-D LCNN"): the table in ``.gpu/`` travels
with the working tree; on the machine, from the repository root,

    PYTHONPATH=src CONFIGS='{"w64": {"width": 64, "patience": 8, "max_epochs": 40}}' \
        python3 scripts/cnn2d_cv.py OUT_DIR --protocols lofo,grouped --jobs 8

Each fold trains on every row (clean and degraded copies) of its training clips and scores the
clean crops of its test clips; clip score = mean crop logit, as ``voxguard compare`` scores a
frame model. Folds run in ``--jobs`` processes at once (a model this small leaves a GPU mostly
idle). Written as folds finish: ``scores_CONFIG_PROTOCOL.npy`` (out-of-fold clip scores in the
table's clip order, NaN where not scored) and ``results2d.json`` (fold EERs, epochs, seconds).
No new fold starts after ``--budget`` seconds, and whatever has finished is kept at
``--deadline``. ``--dry`` runs a quick check here on the CPU: few clips, one epoch.
"""

import argparse
import json
import lzma
import multiprocessing
import os
import time
from pathlib import Path

import numpy as np

from voxguard.evaluate.metrics import eer
from voxguard.features.segmental import SegmentalConfig, segment_crops

T0 = time.time()
HOP, SEGMENT, SEGMENT_HOP = 160, 64_000, 32_000
FEATURES = SegmentalConfig(views=("lfbe_7k",), gate_db=40.0)

# Filled in the parent before the pool forks, so the children share them without copying.
X = ROW_CLIP = ROW_CLEAN = LABELS = GROUPS = None
BUDGET_S = float("inf")


def segment_grid(n_samples: int) -> np.ndarray:
    """voxguard.audio.segment_bounds (4-s segments every 2 s, the last aligned to the end),
    written out here: importing voxguard.audio needs libsndfile, which the GPU image lacks."""
    if n_samples <= SEGMENT:
        return np.array([[0, max(n_samples, 1)]])
    starts = np.arange(0, n_samples - SEGMENT + 1, SEGMENT_HOP)
    if starts[-1] + SEGMENT < n_samples:
        starts = np.append(starts, n_samples - SEGMENT)
    return np.stack([starts, starts + SEGMENT], axis=1)


def read_frames(out_dir: str | Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The table written by :func:`main`: frames (n_features, n_frames) in dB, NaN = gated, and the
    other arrays (``offsets``: where each frame matrix starts; ``row_clip``, ``row_copy``: its clip
    and copy, 0 = clean; labels, groups, families, paths and folds per usable clip)."""
    meta = dict(np.load(Path(out_dir) / "lfbe.npz"))
    n_features, n_frames = int(meta["n_features"]), int(meta["n_frames"])
    gated = np.unpackbits(meta["gated"], count=n_frames).astype(bool)
    delta = np.frombuffer(lzma.decompress((Path(out_dir) / "frames.xz").read_bytes()), dtype=np.uint8)
    q = np.cumsum(delta.reshape(n_features, -1), axis=0, dtype=np.uint8)  # wraps mod 256, as coded
    frames = np.full((n_features, n_frames), np.nan, dtype=np.float32)
    frames[:, ~gated] = q.astype(np.float32) * float(meta["step"]) + float(meta["lo"])
    return frames, meta


def load_table(path: str, dry: bool) -> dict:
    global X, ROW_CLIP, ROW_CLEAN, LABELS, GROUPS
    frames, d = read_frames(path)
    off = d["offsets"]
    rows, clip, clean = [], [], []
    for r, (c, copy) in enumerate(zip(d["row_clip"], d["row_copy"], strict=True)):
        if dry and c % 12:
            continue
        F = frames[:, off[r] : off[r + 1]]
        crops = segment_crops(F, segment_grid((F.shape[1] - 1) * HOP), HOP, n_frames=400)
        ok = np.isfinite(crops).all(axis=1).any(axis=1)
        rows.append(crops[ok])
        clip += [int(c)] * int(ok.sum())
        clean += [copy == 0] * int(ok.sum())
    X = np.concatenate(rows)
    ROW_CLIP, ROW_CLEAN = np.array(clip), np.array(clean)
    LABELS, GROUPS = d["labels"].astype(np.float32), d["groups"]
    return {k: d[k] for k in ("grouped_fold", "lofo_fold", "lofo_train", "lofo_names", "families")}


def run_fold(task: tuple) -> dict:
    """Fit one fold and score its test clips (in a pool process)."""
    import torch

    from voxguard.models.frame_cnn import FrameCNNClassifier
    from voxguard.models.frame_nets import run_batched

    name, params, protocol, key, train_clips, test_clips, device, threads = task
    start = time.time()
    tr = np.isin(ROW_CLIP, train_clips)
    te = np.isin(ROW_CLIP, test_clips) & ROW_CLEAN
    if start - T0 > BUDGET_S or not te.any():
        return {"name": name, "protocol": protocol, "key": key, "skipped": True}
    torch.backends.cudnn.benchmark = True  # fixed crop shapes
    model = FrameCNNClassifier(features=FEATURES, arch="lcnn2d", device=device, threads=threads, **params)
    model.fit(X[tr], LABELS[ROW_CLIP[tr]], groups=GROUPS[ROW_CLIP[tr]])
    net = model.network_.to(device).eval()
    s = run_batched(net, X[te], device=device).astype(np.float64)
    del net
    if device == "cuda":
        torch.cuda.empty_cache()
    clips = np.unique(ROW_CLIP[te])
    per_clip = np.bincount(ROW_CLIP[te], weights=s, minlength=len(LABELS))[clips] / np.bincount(ROW_CLIP[te])[clips]
    y = LABELS[clips]
    fold_eer = float(eer(y, per_clip).eer) if 0 < y.sum() < len(y) else float("nan")
    return {
        "name": name,
        "protocol": protocol,
        "key": key,
        "clips": clips,
        "scores": per_clip,
        "eer": fold_eer,
        "epochs": len(model.history_),
        "seconds": time.time() - start,
        "device": torch.cuda.get_device_name(0) if device == "cuda" else device,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out_dir")
    parser.add_argument("--table", default=".gpu", help="folder of scripts/export_frames.py's table")
    parser.add_argument("--protocols", default="grouped")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--budget", type=float, default=420.0, help="no fold starts after this many seconds")
    parser.add_argument("--deadline", type=float, default=540.0, help="stop waiting after this many seconds")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dry", action="store_true")
    args = parser.parse_args()
    global BUDGET_S
    BUDGET_S = args.budget  # read by the forked pool processes
    os.makedirs(args.out_dir, exist_ok=True)
    folds = load_table(args.table, args.dry)
    # No CUDA call in this process: CUDA cannot be used again in a forked child once initialised.
    device = "cpu" if args.dry else args.device
    n_clips = len(LABELS)
    print(f"{n_clips} clips, {len(X)} crops {X.shape} ({ROW_CLEAN.sum()} clean), {time.time() - T0:.0f} s")

    configs = json.loads(os.environ.get("CONFIGS", '{"w64": {"width": 64, "patience": 8, "max_epochs": 40}}'))
    extra = {"max_epochs": 1} if args.dry else {}
    threads = max(1, (os.cpu_count() or 2) // max(1, args.jobs))
    everything = np.arange(n_clips)
    tasks = []
    for protocol in args.protocols.split(","):  # all configurations' folds of a protocol first
        for name, params in configs.items():
            if protocol == "grouped":
                fold = folds["grouped_fold"]
                for k in range(int(fold.max()) + 1):
                    tasks.append((name, params | extra, protocol, f"fold{k + 1}", everything[fold != k],
                                  everything[fold == k], device, threads))  # fmt: skip
            else:
                fold, train = folds["lofo_fold"], folds["lofo_train"]
                for k, family in enumerate(folds["lofo_names"]):
                    tasks.append((name, params | extra, protocol, str(family), everything[train[k]],
                                  everything[fold == k], device, threads))  # fmt: skip
    scores = {}
    results: dict = {}

    def save() -> None:
        for (name, protocol), s in scores.items():
            np.save(os.path.join(args.out_dir, f"scores_{name}_{protocol}.npy"), s)
        with open(os.path.join(args.out_dir, "results2d.json"), "w") as fh:
            json.dump(results, fh, indent=1)

    pool = multiprocessing.get_context("fork").Pool(args.jobs)
    pending = []
    for t in tasks:
        pending.append((t, pool.apply_async(run_fold, (t,))))
    done: set[int] = set()
    while len(done) < len(pending) and time.time() - T0 < args.deadline:
        for i, (t, res) in enumerate(pending):
            if i in done or not res.ready():
                continue
            done.add(i)
            try:
                r = res.get()
            except Exception as exc:  # one failed fold is reported, the others go on
                print(f"{t[0]} {t[2]} {t[3]}: failed: {exc!r}", flush=True)
                continue
            if r.get("skipped"):
                print(f"{r['name']} {r['protocol']} {r['key']}: not started (budget) or nothing to test", flush=True)
                continue
            key = (r["name"], r["protocol"])
            scores.setdefault(key, np.full(n_clips, np.nan))[r["clips"]] = r["scores"]
            entry = results.setdefault(f"{r['name']}:{r['protocol']}", {"folds": {}})
            entry["folds"][r["key"]] = {"eer": r["eer"], "epochs": r["epochs"], "seconds": round(r["seconds"], 1)}
            s = scores[key]
            ok = np.isfinite(s)
            entry["pooled_eer"] = float(eer(LABELS[ok], s[ok]).eer) if 0 < LABELS[ok].sum() < ok.sum() else None
            fold_eers = [f["eer"] for f in entry["folds"].values() if np.isfinite(f["eer"])]
            entry["mean_fold_eer"] = float(np.mean(fold_eers)) if fold_eers else float("nan")
            took = f"{r['epochs']} epochs, {r['seconds']:.0f} s, {r['device']}; at {time.time() - T0:.0f} s"
            print(f"{r['name']} {r['protocol']} {r['key']}: EER {r['eer'] * 100:.1f} % ({took})", flush=True)
            save()
        time.sleep(1)
    pool.terminate()
    save()
    for k, v in results.items():
        print(k, f"{len(v['folds'])} folds, mean fold EER {v['mean_fold_eer'] * 100:.1f} %", flush=True)
    print(f"total {time.time() - T0:.0f} s")


if __name__ == "__main__":
    main()
