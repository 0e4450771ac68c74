"""Export the DEV frames of the 2-D LCNN preset as a compact table, for training on another machine.

Used for the 2-D LCNN measured on a lent GPU (docs/results.md, "The 2-D LCNN"), whose image
lacks libsndfile, soxr and PyAV: decoding, preprocessing and the augmentation are done here.
Every usable clip contributes its clean frames and, with ``--policy NAME*K``, K degraded copies
made exactly as ``voxguard train --augment-policy NAME*K`` makes them (same per-clip seeds,
babble voices and preprocessing). The frames are quantised (``--step-db`` steps from -90 dB),
gated frames are kept as a bit mask, and the rest is coded as differences along frequency and
compressed with xz (``frames.xz``; ``scripts/cnn2d_cv.py``'s ``read_frames`` decodes it), so that the table fits the
machine's 64 MB transfer limit together with the repository: DEV with ``chain*2`` at 1.5-dB
steps is about 50 MB.

The folds of both protocols travel with the table, drawn over the whole manifest as
``voxguard compare`` draws them, so the out-of-fold scores line up with any other model's:
``grouped_fold`` (the utterance-grouped 5-fold test fold of each clip), ``lofo_fold`` (the
leave-one-family-out fold that tests it) and ``lofo_train`` (folds x clips: the clips each LOFO
fold trains on; the rest of a fold's clips are unused, see ``leave_one_family_out``).

    .venv/bin/python scripts/export_frames.py ../shared/corpus/manifest.csv .gpu --policy 'chain*2'
"""

import argparse
import lzma
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from cnn2d_cv import read_frames  # scripts/: the reader that runs on the GPU machine

from voxguard.audio import load
from voxguard.audio.preprocess import preprocess
from voxguard.augment import get_policy
from voxguard.datasets import load_manifest
from voxguard.errors import VoxguardError
from voxguard.evaluate.protocols import protocol_splits
from voxguard.features.segmental import frame_matrix
from voxguard.models import segmental
from voxguard.models.presets import get_preset

PRESET = get_preset("lfbe7k-gated-cnn2d")
FEATURES = PRESET.model().features
PREPROCESS = PRESET.preprocess()
LOWEST_DB = -90.0


def frames_of(job: tuple[str, int, str | None]) -> list[np.ndarray] | str:
    """Clean frames and those of each degraded copy, or the error code of an unusable clip."""
    path, augment_seed, policy = job
    try:
        audio = load(path, sr=PREPROCESS.sample_rate)
        versions = [audio.samples]
        if policy:
            name, copies = segmental.parse_policy(policy)
            degrade = get_policy(name)
            for k in range(copies):  # the seeds of models.segmental._clip_job
                degraded, _ = degrade(
                    audio.samples, audio.sample_rate, seed=augment_seed + 7_919 * k, babble_sources=segmental._BABBLE
                )
                versions.append(degraded)
        out = []
        for y in versions:
            pre = preprocess(y, audio.sample_rate, PREPROCESS).samples
            out.append(frame_matrix(pre, PREPROCESS.sample_rate, FEATURES))
        return out
    except VoxguardError as exc:
        return exc.code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifest")
    parser.add_argument("out_dir")
    parser.add_argument("--policy", default="", help="augmentation policy, e.g. chain*2 (default: clean only)")
    parser.add_argument("--step-db", type=float, default=0.5, help="quantisation step (dB)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    dataset = load_manifest(args.manifest)
    jobs = [(str(item.path), args.seed * 100_003 + i, args.policy or None) for i, item in enumerate(dataset)]
    start = time.time()
    bank = (segmental.babble_paths(dataset, seed=args.seed), PREPROCESS.sample_rate)
    outs: list = []
    with ProcessPoolExecutor(
        args.workers, mp_context=get_context("spawn"), initializer=segmental._init_babble, initargs=bank
    ) as pool:
        for i, out in enumerate(pool.map(frames_of, jobs, chunksize=8)):
            outs.append(out)
            if (i + 1) % 200 == 0:
                print(f"{i + 1}/{len(jobs)} clips, {time.time() - start:.0f} s", flush=True)
    keep = np.array([i for i, o in enumerate(outs) if not isinstance(o, str)])
    print(f"{len(dataset)} clips, {len(keep)} usable, {time.time() - start:.0f} s")

    mats, row_clip, row_copy = [], [], []
    for j, i in enumerate(keep):
        for k, m in enumerate(outs[i]):
            mats.append(m)
            row_clip.append(j)
            row_copy.append(k)
    table = np.concatenate(mats, axis=1)
    q = np.where(np.isfinite(table), np.clip(np.round((table - LOWEST_DB) / args.step_db), 0, 254), 255)
    gated = np.all(q == 255, axis=0)  # the gate drops whole frames
    # Differences along frequency compress better (neighbouring bands move together); mod 256.
    delta = np.diff(q[:, ~gated].astype(np.int16), axis=0, prepend=0).astype(np.uint8)
    Path(args.out_dir).mkdir(parents=True, exist_ok=True)
    (Path(args.out_dir) / "frames.xz").write_bytes(lzma.compress(delta.tobytes(), preset=6))

    grouped = np.full(len(dataset), -1)
    for k, (_, split) in enumerate(protocol_splits(dataset, "grouped", seed=args.seed)):
        grouped[split.test] = k
    lofo = protocol_splits(dataset, "lofo", seed=args.seed)
    lofo_fold = np.full(len(dataset), -1)
    lofo_train = np.zeros((len(lofo), len(dataset)), dtype=bool)
    for k, (_, split) in enumerate(lofo):
        lofo_fold[split.test] = k
        lofo_train[k, np.concatenate([split.train, split.validation])] = True
    usable = dataset[keep]
    np.savez_compressed(
        Path(args.out_dir) / "lfbe.npz",
        gated=np.packbits(gated),
        n_features=q.shape[0],
        n_frames=q.shape[1],
        offsets=np.cumsum([0] + [m.shape[1] for m in mats]),
        row_clip=np.array(row_clip),
        row_copy=np.array(row_copy),
        labels=usable.labels().astype(np.int8),
        groups=usable.column("utt_group").astype(str),
        families=usable.column("family").astype(str),
        paths=np.array([str(item.path) for item in usable]),
        grouped_fold=grouped[keep],
        lofo_fold=lofo_fold[keep],
        lofo_train=lofo_train[:, keep],
        lofo_names=np.array([key for key, _ in lofo]),
        lo=LOWEST_DB,
        step=args.step_db,
        policy=args.policy,
    )
    # The round trip: what the GPU machine will read back.
    back, _ = read_frames(args.out_dir)
    expected = np.where(q == 255, np.nan, q * args.step_db + LOWEST_DB)
    step_ok = np.array_equal(np.isnan(back), np.isnan(expected)) and np.allclose(
        back[~np.isnan(back)], expected[~np.isnan(expected)], atol=1e-3
    )
    if not step_ok:
        raise SystemExit("the written table does not decode to the quantised frames")
    size = sum((Path(args.out_dir) / name).stat().st_size for name in ("lfbe.npz", "frames.xz"))
    print(f"{len(mats)} frame matrices, {table.shape[1]} frames, {size / 1e6:.1f} MB, {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
