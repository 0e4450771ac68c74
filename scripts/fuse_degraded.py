"""Fusion weights fitted on degraded held-out scores, leaving out the condition under test.

Usage: python scripts/fuse_degraded.py SCORES.csv [--corpus MANIFEST] [--folds 5] [--seed 0]

SCORES.csv is ``voxguard robustness --model FUSION.onnx --scores-out SCORES.csv`` (grouped
protocol) on MANIFEST. For condition c and fold k the weights are fitted on folds != k, on the
clean scores plus the scores under every condition except c (so neither the test clips nor the
test degradation tune them), and compared with weights fitted on clean scores only (what
``voxguard robustness`` reports). Prints a Markdown table (docs/robustness.md).
"""

import argparse
import csv

import numpy as np

from voxguard.datasets import load_dataset
from voxguard.datasets.splits import group_kfold
from voxguard.evaluate.fusion import fit_fusion
from voxguard.evaluate.metrics import eer

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
conds = []
for c in cols:
    cond = c.rsplit(":", 1)[1]
    if cond not in conds:
        conds.append(cond)
print("members", members, "conditions", conds)
ds = load_dataset(args.corpus)
ids = ds.ids()
if [r["id"] for r in rows] != list(ids):
    raise SystemExit("the scores do not list the corpus clips in order: same --corpus as the robustness run?")
y = np.array([int(r["label"]) for r in rows])
S = {
    cond: np.column_stack([[float(r[f"{m}:{cond}"]) if r[f"{m}:{cond}"] else np.nan for r in rows] for m in members])
    for cond in conds
}
clean_ok = np.isfinite(S["clean"]).all(1)
splits = list(group_kfold(ds, args.folds, seed=args.seed))


def run(fit_conds_for):
    out = {}
    for cond in conds:
        fused = np.full(len(y), np.nan)
        for sp in splits:
            train = np.ones(len(y), bool)
            train[sp.test] = False
            Xs, ys = [], []
            for fc in fit_conds_for(cond):
                ok = train & np.isfinite(S[fc]).all(1)
                Xs.append(S[fc][ok])
                ys.append(y[ok])
            w = fit_fusion(np.vstack(Xs), np.concatenate(ys), members)
            t = np.asarray(sp.test)
            fused[t] = w.apply(S[cond][t])
        ok = np.isfinite(fused) & clean_ok
        out[cond] = eer(y[ok], fused[ok]).eer
    return out


clean_only = run(lambda c: ["clean"])
loco = run(lambda c: ["clean"] + [x for x in conds if x not in ("clean", c)])
single = {cond: [] for cond in conds}
for j in range(len(members)):
    for cond in conds:
        ok = np.isfinite(S[cond][:, j]) & clean_ok
        single[cond].append(eer(y[ok], S[cond][ok, j]).eer)
print(
    "| condition | "
    + " | ".join(members)
    + " | fusion, clean weights | × clean | fusion, weights from clean + the other conditions | × clean |"
)
print("|" + " --- |" * (len(members) + 5))
for cond in conds:
    print(
        f"| {cond} | "
        + " | ".join(f"{100 * e:.1f} %" for e in single[cond])
        + f" | {100 * clean_only[cond]:.1f} % | {clean_only[cond] / clean_only['clean']:.2f}"
        + f" | {100 * loco[cond]:.1f} % | {loco[cond] / loco['clean']:.2f} |"
    )
