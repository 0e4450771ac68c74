"""Robustness of the voxguard-v2 recipe with a different pooling of its frames (docs/robustness.md).

Usage: python scripts/pooling_variants.py VARIANT[,VARIANT...] [--corpus MANIFEST] [--conditions quick]

Each variant is the ``lfcc47h-flatness7k-gated-svm`` recipe with its pooling changed (the
silence gate, or louder and quieter frames pooled apart), run
through ``voxguard.evaluate.robustness.evaluate_grouped`` exactly like ``voxguard robustness
--model voxguard-v2 --conditions quick`` (5 grouped folds, ``chain*2`` augmentation, the same
seeds, so ``v2`` reproduces the shipped model's column). Prints EER and EER / clean per
condition, one line per variant (6-7 min each on the 2-core VM); ``--lofo`` adds the
leave-one-family-out EER of the same recipe on the same (clean + augmented) training rows
(about 3 min more), as ``voxguard compare --protocol lofo`` reports it.
"""

import argparse
import json
import time
from dataclasses import replace

from voxguard.datasets import load_dataset
from voxguard.evaluate import robustness as rb
from voxguard.evaluate.protocols import run_protocol
from voxguard.models.presets import get_preset

VARIANTS = {
    "v2": {},  # gate 40 dB under the 95th-percentile frame power, whole spectrum
    "gate20": {"gate_db": 20.0},
    "band30": {"gate_db": 30.0, "gate_band_hz": (4000.0, 7000.0)},  # power measured in 4-7 kHz only
    "band20": {"gate_db": 20.0, "gate_band_hz": (4000.0, 7000.0)},
    "split": {"level_split": "halves"},  # statistics of the louder and the quieter half of the frames apart
    "addloud": {"level_split": "loud"},  # v2's statistics plus those of the louder half
    "split-c1": {"level_split": "halves", "C": 1.0},  # the same, more regularised SVM
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("variants", help=f"comma-separated, from {', '.join(VARIANTS)}")
    ap.add_argument("--corpus", default="../shared/corpus/manifest.csv")
    ap.add_argument("--conditions", default="quick")
    ap.add_argument("--policy", default="chain*2")
    ap.add_argument("--lofo", action="store_true", help="also leave-one-family-out on the same training rows")
    args = ap.parse_args()
    conditions = rb.resolve_conditions(args.conditions)
    dataset = load_dataset(args.corpus)
    preset = get_preset("lfcc47h-flatness7k-gated-svm")
    for name in args.variants.split(","):
        changes = dict(VARIANTS[name])
        model = preset.model(C=changes.pop("C", None))
        model.features = replace(model.features, **changes)
        start = time.perf_counter()
        result = rb.evaluate_grouped(
            dataset, model, conditions, policy=args.policy, name=name, preprocess_config=preset.preprocess()
        )
        rows = {r["condition"]: [round(100 * r["eer"], 2), round(r["eer_vs_clean"], 2)] for r in result.rows()}
        print(name, f"{time.perf_counter() - start:.0f} s", json.dumps(rows), flush=True)
        if args.lofo:
            lofo = run_protocol(dataset, result.extra["train_table"], model.clone, protocol="lofo", name=name)
            summary = lofo.summary(dataset.labels())
            keys = ("pooled_eer", "mean_fold_eer", "worst_family", "worst_eer")
            print(name, "LOFO", json.dumps({k: summary[k] for k in keys}))
            print(name, "LOFO per family", json.dumps({f: round(100 * e, 1) for f, e in lofo.fold_eer.items()}))


if __name__ == "__main__":  # worker processes are spawned: they must not rerun the script
    main()
