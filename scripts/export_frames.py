"""Export the clean DEV frames of a frame preset as a compact table, for training on another machine.

Used for the 2-D LCNN measured on a lent GPU (docs/results.md): the table (uint8, 0.5 dB steps
from -90 dB, 255 = gated frame; about 37 MB for DEV) and the grouped 5-fold assignment of the
usable clips go to ``OUT_DIR``; ``scripts/cnn2d_cv.py`` trains on them there.

    .venv/bin/python scripts/export_frames.py ../shared/corpus/manifest.csv .gpu
"""

import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from voxguard.audio import load
from voxguard.audio.preprocess import preprocess
from voxguard.datasets import load_manifest
from voxguard.datasets.splits import group_kfold
from voxguard.errors import VoxguardError
from voxguard.features.segmental import frame_matrix
from voxguard.models.presets import get_preset

PRESET = get_preset("lfbe7k-gated-cnn2d")
FEATURES = PRESET.model().features
PREPROCESS = PRESET.preprocess()
LOWEST_DB, STEP_DB = -90.0, 0.5


def frames_of(path: str) -> np.ndarray | str:
    try:
        audio = load(path, sr=16000)
        y = preprocess(audio.samples, audio.sample_rate, PREPROCESS).samples
        return frame_matrix(y, 16000, FEATURES)
    except VoxguardError as exc:
        return exc.code


def main(manifest: str, out_dir: str) -> None:
    dataset = load_manifest(manifest)
    start = time.time()
    with ProcessPoolExecutor(2) as pool:
        outs = list(pool.map(frames_of, [str(item.path) for item in dataset], chunksize=16))
    keep = np.array([i for i, o in enumerate(outs) if not isinstance(o, str)])
    print(f"{len(dataset)} clips, {len(keep)} usable, {time.time() - start:.0f} s")
    frames = [outs[i] for i in keep]
    table = np.concatenate(frames, axis=1)
    q = np.where(np.isfinite(table), np.clip(np.round((table - LOWEST_DB) / STEP_DB), 0, 254), 255).astype(np.uint8)
    usable = dataset[keep]
    fold = np.full(len(keep), -1)
    for k, split in enumerate(group_kfold(usable, 5, seed=0)):
        fold[split.test] = k
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        Path(out_dir) / "lfbe.npz",
        q=q,
        offsets=np.cumsum([0] + [f.shape[1] for f in frames]),
        labels=usable.labels().astype(np.int8),
        groups=usable.column("utt_group").astype(str),
        families=usable.column("family").astype(str),
        paths=np.array([str(item.path) for item in usable]),
        lo=LOWEST_DB,
        step=STEP_DB,
    )
    np.save(Path(out_dir) / "folds.npy", fold)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
