"""Fusion weights fitted on degraded held-out scores, leaving out the condition under test.

Usage: python scripts/fuse_degraded.py SCORES.csv [--corpus MANIFEST] [--folds 5] [--seed 0]

SCORES.csv is ``voxguard robustness --model FUSION.onnx --scores-out SCORES.csv`` (grouped
protocol) on MANIFEST. For condition c and fold k the weights are fitted on folds != k, on the
clean scores plus the scores under every condition except c (so neither the test clips nor the
test degradation tune them), and compared with weights fitted on clean scores only (what
``voxguard robustness`` reports). Both go through ``voxguard.evaluate.robustness.fuse_grouped``.
Prints a Markdown table (docs/robustness.md).
"""

import argparse
import csv

import numpy as np

from voxguard.datasets import load_dataset
from voxguard.evaluate.robustness import RobustnessResult, fuse_grouped, resolve_conditions

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("scores")
ap.add_argument("--corpus", default="../shared/corpus/manifest.csv")
ap.add_argument("--folds", type=int, default=5)
ap.add_argument("--seed", type=int, default=0)
args = ap.parse_args()
with open(args.scores, encoding="utf-8") as fh:
    rows = list(csv.DictReader(fh))
cols = [c for c in rows[0] if ":" in c]
members = sorted({c.rsplit(":", 1)[0] for c in cols if "fusion, stacked" not in c})
names = list(dict.fromkeys(c.rsplit(":", 1)[1] for c in cols))
conditions = resolve_conditions(",".join(names))
ds = load_dataset(args.corpus)
if [r["id"] for r in rows] != list(ds.ids()):
    raise SystemExit("the scores do not list the corpus clips in order: same --corpus as the robustness run?")
labels = ds.labels()


def column(name: str) -> np.ndarray:
    return np.array([float(r[name]) if r[name] else np.nan for r in rows])


results = [
    RobustnessResult(conditions, {c.name: column(f"{m}:{c.name}") for c in conditions}, labels, "grouped", m)
    for m in members
]
clean_weights = fuse_grouped(ds, results, folds=args.folds, seed=args.seed).rows()
others = fuse_grouped(
    ds,
    results,
    folds=args.folds,
    seed=args.seed,
    fit_conditions=lambda c: ["clean", *(n for n in names if n not in ("clean", c))],
).rows()
singles = [r.rows() for r in results]
print(
    "| condition | "
    + " | ".join(members)
    + " | fusion, clean weights | × clean | fusion, weights from clean + the other conditions | × clean |"
)
print("|" + " --- |" * (len(members) + 5))
for i, cond in enumerate(names):
    a, b = clean_weights[i], others[i]
    print(
        f"| {cond} | "
        + " | ".join(f"{100 * s[i]['eer']:.1f} %" for s in singles)
        + f" | {100 * a['eer']:.1f} % | {a['eer_vs_clean']:.2f} | {100 * b['eer']:.1f} % | {b['eer_vs_clean']:.2f} |"
    )
