"""Does a second corpus in training help on the first corpus's held-out families?

Usage: python scripts/extra_training_data.py EXTRA_MANIFEST [--corpus MANIFEST] [--preset NAME]
       [--policy 'chain*2'] [--protocols lofo,grouped]

The folds are those of ``voxguard compare --protocol lofo`` / ``grouped`` on MANIFEST alone (the
same clips are tested, clean). Each fold is trained twice on the same feature rows: on its
training clips of MANIFEST (what ``voxguard compare`` reports), and on those plus *every* clip of
EXTRA_MANIFEST (clean and augmented; none of them is ever tested). Both corpora get the same
augmentation policy, each with babble from its own real clips. Prints per-fold EER and the
summary of both (docs/results.md, "Adding the synthetic corpus").
"""

import argparse
import json
import time

import numpy as np

from voxguard.datasets import load_dataset
from voxguard.evaluate import metrics
from voxguard.evaluate.protocols import _fit_and_score, protocol_splits
from voxguard.models.presets import get_preset
from voxguard.models.segmental import SegmentTable, build_segment_table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("extra", help="manifest of the corpus added to every fold's training data")
    ap.add_argument("--corpus", default="../shared/corpus/manifest.csv")
    ap.add_argument("--preset", default="lfcc47h-flatness7k-gated-svm")
    ap.add_argument("--policy", default="chain*2")
    ap.add_argument("--protocols", default="lofo,grouped")
    args = ap.parse_args()
    base, extra = load_dataset(args.corpus), load_dataset(args.extra)
    preset = get_preset(args.preset)
    model = preset.model()
    tables = [
        build_segment_table(d, model, preprocess_config=preset.preprocess(), policy=args.policy, workers=2)
        for d in (base, extra)
    ]
    n_base, n_extra = len(base), len(extra)
    table = SegmentTable(
        X=np.concatenate([t.X for t in tables]),
        y=np.concatenate([t.y for t in tables]),
        clip=np.concatenate([tables[0].clip, tables[1].clip + n_base]),
        augmented=np.concatenate([t.augmented for t in tables]),
        failures=[],
        audio_s=sum(t.audio_s for t in tables),
    )
    base_groups = base.groups("utt_group")
    groups = np.concatenate([base_groups, extra.groups("utt_group") + base_groups.max() + 1])
    labels = base.labels()
    extra_clips = n_base + np.arange(n_extra)
    print(f"rows: {len(tables[0].y)} ({args.corpus}) + {len(tables[1].y)} ({args.extra})", flush=True)
    for protocol in args.protocols.split(","):
        scores = {v: np.full(n_base, np.nan) for v in ("base", "base+extra")}
        fold_eer: dict[str, dict[str, float]] = {v: {} for v in scores}
        for key, split in protocol_splits(base, protocol):
            train = np.concatenate([split.train, split.validation])
            for variant, clips in (("base", train), ("base+extra", np.concatenate([train, extra_clips]))):
                start = time.process_time()
                s, _, _ = _fit_and_score(model.clone, table, clips, split.test, n_base + n_extra, groups)
                s = s[:n_base]
                tested = split.test[~np.isnan(s[split.test])]
                y_t = labels[tested]
                fold_eer[variant][key] = metrics.eer(y_t, s[tested]).eer if 0 < y_t.sum() < len(y_t) else np.nan
                scores[variant][tested] = s[tested]
                print(
                    f"{protocol} {key} {variant}: EER {100 * fold_eer[variant][key]:.1f} % "
                    f"({time.process_time() - start:.0f} CPU s)",
                    flush=True,
                )
        for variant in scores:
            ok = ~np.isnan(scores[variant])
            pooled = metrics.eer(labels[ok], scores[variant][ok]).eer
            eers = {k: round(100 * e, 1) for k, e in fold_eer[variant].items()}
            mean = float(np.nanmean(list(fold_eer[variant].values())))
            summary = {"pooled_eer": round(100 * pooled, 2), "mean_fold_eer": round(100 * mean, 2), "folds": eers}
            print(protocol, variant, json.dumps(summary), flush=True)


if __name__ == "__main__":  # worker processes are spawned: they must not rerun the script
    main()
