"""Condition experts and a router: an experiment towards issue 8's MP3 and babble targets (docs/robustness.md).

Usage::

    python scripts/condition_experts.py experts [--work DIR]   # about 45 min on the 2-core VM
    python scripts/condition_experts.py router  [--work DIR]   # about 12 min
    python scripts/condition_experts.py lofo    [--work DIR]   # about 20 min
    python scripts/condition_experts.py combine [--work DIR]   # seconds

``experts`` retrains the ``voxguard-v2`` recipe (``lfcc47h-flatness7k-gated-svm``) on each of
the 5 grouped folds of ``voxguard robustness --conditions quick`` (same folds, seeds and degraded
test clips), once per training policy: ``chain*2`` (the shipped policy, the *main* model), only
codecs (``codec*2``), only babble (``babble*4``), and only babble with the louder and quieter
frames pooled apart (``babble*2``, ``level_split="halves"``). It saves every model's held-out
scores per condition (``scores_NAME.npy``, conditions x clips).

``router`` trains a 4-way logistic regression (clean / codec / babble / any other degradation)
on pooled statistics of the experts' view with louder and quieter frames apart (``--router-view
7k``, what routed models use) or of a wider view (``8k``: LFCC 4-8 kHz and 16-band flatness,
better at MP3 but not invariant to the input rate), per grouped fold, on the training clips'
clean rows and one degraded copy per kind, and saves its posteriors for the held-out degraded
test clips (``router_post.pkl``).

``lofo`` scores every expert leave-one-family-out on clean clips (the numbers that predict unseen
generators), trained on the same rows (clean + the policy's copies) as ``voxguard compare
--protocol lofo`` would (``scores_lofo_NAME.npy``).

``combine`` mixes the experts' scores (each standardised on the clean scores of all clips: no
labels) with the router's posteriors: clean and "other" go to the main model, codec to the codec
expert, babble to the mean of the two babble experts. It prints EER and EER / clean per
condition for soft routing (posterior-weighted), hard routing (argmax) and an oracle router.
"""

import argparse
import json
import pickle
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from voxguard.augment.policy import _CHAIN_WEIGHTS, POLICIES, AugmentPolicy

# Registered at import, so that spawned feature workers see the same policies.
POLICIES["codec"] = AugmentPolicy("codec", (("codec", 1.0),), 1, 1)
POLICIES["babble"] = AugmentPolicy("babble", (("babble", 1.0),), 1, 1)
POLICIES["other"] = AugmentPolicy(
    "other", tuple((k, w) for k, w in _CHAIN_WEIGHTS if k not in ("codec", "babble")), 1, 1
)

CONDITIONS = ("clean", "mp3-64k", "opus-32k", "tel-ulaw", "babble-10dB", "white-10dB", "reverb-0.3s", "gain-x0.1")
#: name -> (training policy, level_split)
EXPERTS = {
    "main": ("chain*2", None),
    "codec": ("codec*2", None),
    "babble": ("babble*4", None),
    "babble-split": ("babble*2", "halves"),
}
ROUTER_KINDS = ("codec", "babble", "other")  # class 0 is clean


def _setup(corpus: str):
    from voxguard.datasets import load_dataset
    from voxguard.models.presets import get_preset

    preset = get_preset("lfcc47h-flatness7k-gated-svm")
    return load_dataset(corpus), preset


def run_experts(corpus: str, work: Path) -> None:
    from voxguard.evaluate import robustness as rb

    dataset, preset = _setup(corpus)
    conditions = rb.resolve_conditions(",".join(CONDITIONS))
    rows_by_split: dict[str | None, list] = {}  # degraded test rows depend on the pooling only
    start = time.perf_counter()
    for name, (policy, split) in EXPERTS.items():
        model = preset.model()
        model.features = replace(model.features, level_split=split)
        result = rb.evaluate_grouped(
            dataset,
            model,
            conditions,
            policy=policy,
            name=name,
            preprocess_config=preset.preprocess(),
            condition_rows=rows_by_split.get(split),
            progress=False,
        )
        rows_by_split.setdefault(split, result.extra["condition_rows"])
        np.save(work / f"scores_{name}.npy", np.array([result.scores[c] for c in CONDITIONS]))
        table = {r["condition"]: [round(100 * r["eer"], 2), round(r["eer_vs_clean"], 2)] for r in result.rows()}
        print(name, policy, f"{time.perf_counter() - start:.0f} s", json.dumps(table), flush=True)


def run_router(corpus: str, work: Path, C: float = 1.0, view: str = "7k") -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from voxguard.datasets.splits import group_kfold
    from voxguard.evaluate import robustness as rb
    from voxguard.models.segmental import build_segment_table

    dataset, preset = _setup(corpus)
    pre = preset.preprocess()
    model = preset.model()
    views = ("lfcc_4_8k_hann", "band_flatness") if view == "8k" else model.features.views
    model.features = replace(model.features, views=views, level_split="halves")
    model.classifier = "logreg"
    tables = {
        kind: build_segment_table(
            dataset, model, preprocess_config=pre, augment=True, policy=kind, seed=10 + k, workers=2, progress=False
        )
        for k, kind in enumerate(ROUTER_KINDS)
    }
    # The degraded test rows under the router's own pooling (the fitted real/fake model is unused).
    probe = rb.evaluate_grouped(
        dataset,
        model,
        rb.resolve_conditions(",".join(CONDITIONS)),
        policy="codec",
        name="router",
        preprocess_config=pre,
        train_table=tables["codec"],
        progress=False,
    )
    first = tables[ROUTER_KINDS[0]]
    clean = ~first.augmented
    X, kind, clip = [first.X[clean]], [np.zeros(int(clean.sum()), int)], [first.clip[clean]]
    for k, name in enumerate(ROUTER_KINDS, 1):
        t = tables[name]
        X.append(t.X[t.augmented])
        kind.append(np.full(int(t.augmented.sum()), k))
        clip.append(t.clip[t.augmented])
    X, kind, clip = np.vstack(X), np.concatenate(kind), np.concatenate(clip)
    n = len(dataset.labels())
    posteriors = {c: np.full((n, 4), np.nan) for c in CONDITIONS}
    confusion = np.zeros((4, 4), int)
    for split in group_kfold(dataset, 5, seed=0):
        train = ~np.isin(clip, split.test)
        router = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=3000)).fit(X[train], kind[train])
        np.add.at(confusion, (kind[~train], router.predict(X[~train])), 1)
        test = set(split.test.tolist())
        for res in probe.extra["condition_rows"]:
            if res["ok"] and res["index"] in test:
                for c in CONDITIONS:
                    if len(res["rows"].get(c, ())):
                        posteriors[c][res["index"]] = router.predict_proba(res["rows"][c]).mean(axis=0)
    with open(work / "router_post.pkl", "wb") as f:
        pickle.dump(posteriors, f)
    print("held-out training copies, rows true clean/codec/babble/other, columns predicted:")
    print(confusion)
    print("recall", np.round(confusion.diagonal() / confusion.sum(1), 3).tolist())
    for c in CONDITIONS:
        ok = np.isfinite(posteriors[c][:, 0])
        share = np.bincount(posteriors[c][ok].argmax(1), minlength=4) / ok.sum()
        print(f"{c}: routed to clean/codec/babble/other {np.round(share, 2).tolist()}")


def run_lofo(corpus: str, work: Path) -> None:
    from voxguard.evaluate.protocols import run_protocol
    from voxguard.models.segmental import build_segment_table

    dataset, preset = _setup(corpus)
    start = time.perf_counter()
    for name, (policy, split) in EXPERTS.items():
        model = preset.model()
        model.features = replace(model.features, level_split=split)
        table = build_segment_table(
            dataset, model, preprocess_config=preset.preprocess(), augment=True, policy=policy, seed=0, progress=False
        )
        result = run_protocol(dataset, table, model.clone, protocol="lofo", name=name)
        np.save(work / f"scores_lofo_{name}.npy", result.scores)
        summary = result.summary(dataset.labels())
        keys = ("pooled_eer", "mean_fold_eer", "worst_family", "worst_eer")
        figures = json.dumps({k: summary[k] for k in keys})
        print(name, "LOFO", f"{time.perf_counter() - start:.0f} s", figures, flush=True)


def _routed_lofo(corpus: str, work: Path, clean_posteriors: np.ndarray) -> None:
    """LOFO of the routed mix on clean clips, with the router's (grouped-fold) posteriors of the clean clips.

    The router never sees labels, so its grouped-fold posteriors stand in for per-family ones.
    """
    from voxguard.datasets import load_dataset
    from voxguard.evaluate.protocols import protocol_splits

    dataset = load_dataset(corpus)
    labels = dataset.labels()
    names = ("main", "codec", "babble", "babble-split")
    if not all((work / f"scores_lofo_{n}.npy").exists() for n in names):
        print("no LOFO scores: run the lofo step first")
        return
    lofo = {n: np.load(work / f"scores_lofo_{n}.npy") for n in names}
    splits = protocol_splits(dataset, "lofo")

    def z(s: np.ndarray) -> np.ndarray:  # over all clips, as the grouped mix (no labels)
        return (s - np.nanmean(s)) / np.nanstd(s)

    babble = z(z(lofo["babble"]) + z(lofo["babble-split"]))
    experts = (z(lofo["main"]), z(lofo["codec"]), babble, z(lofo["main"]))
    for mode in ("main only", "routed soft", "routed hard"):
        p = clean_posteriors
        if mode == "main only":
            p = np.where(np.isfinite(p), np.eye(4)[0], np.nan)
        elif mode == "routed hard":
            p = np.where(np.isfinite(p), np.eye(4)[np.nan_to_num(p).argmax(1)], np.nan)
        score = sum(p[:, k] * experts[k] for k in range(4))
        per_family = {family: _eer_percent(labels[split.test], score[split.test]) for family, split in splits}
        worst = max(per_family, key=per_family.__getitem__)
        mean = np.mean(list(per_family.values()))
        print(
            f"LOFO {mode:11s} mean {mean:.2f}  pooled {_eer_percent(labels, score):.2f}"
            f"  worst {worst} {per_family[worst]:.2f}"
        )


def _eer_percent(labels: np.ndarray, scores: np.ndarray) -> float:
    from voxguard.evaluate.metrics import eer

    ok = np.isfinite(scores)
    return 100 * eer(labels[ok], scores[ok]).eer


def combine(corpus: str, work: Path) -> None:
    from voxguard.datasets import load_dataset

    labels = load_dataset(corpus).labels()
    with open(work / "router_post.pkl", "rb") as f:
        posteriors = pickle.load(f)

    def standardised(name: str) -> np.ndarray:
        s = np.load(work / f"scores_{name}.npy")
        ok = np.isfinite(s[0])
        return (s - s[0][ok].mean()) / s[0][ok].std()

    main, codec = standardised("main"), standardised("codec")
    babble = standardised("babble") + standardised("babble-split")
    babble = (babble - np.nanmean(babble[0])) / np.nanstd(babble[0])
    experts = (main, codec, babble, main)  # router classes: clean, codec, babble, other
    oracle_class = {"mp3-64k": 1, "opus-32k": 1, "babble-10dB": 2}
    for name, expert in (("main", main), ("codec", codec), ("babble pair", babble)):
        row = [_eer_percent(labels, s) for s in expert]
        print(f"{name:12s}", "  ".join(f"{c} {r:.2f}" for c, r in zip(CONDITIONS, row, strict=True)))
    for mode in ("soft", "hard", "oracle"):
        row = []
        for i, c in enumerate(CONDITIONS):
            p = posteriors[c]
            if mode == "hard":
                p = np.where(np.isfinite(p), np.eye(4)[np.nan_to_num(p).argmax(1)], np.nan)
            elif mode == "oracle":
                p = np.where(np.isfinite(p), np.eye(4)[oracle_class.get(c, 0)], np.nan)
            score = sum(p[:, k] * experts[k][i] for k in range(4))
            row.append(_eer_percent(labels, score))
        cells = (f"{c} {r:.2f} ({r / row[0]:.2f})" for c, r in zip(CONDITIONS, row, strict=True))
        print(f"routed {mode:5s}", "  ".join(cells))
    _routed_lofo(corpus, work, posteriors["clean"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("step", choices=("experts", "router", "lofo", "combine"))
    ap.add_argument("--corpus", default="../shared/corpus/manifest.csv")
    ap.add_argument("--work", default="reports/condition-experts", help="where the scores and posteriors go")
    ap.add_argument("--router-view", choices=("7k", "8k"), default="7k")
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    if args.step == "router":
        run_router(args.corpus, work, view=args.router_view)
    else:
        {"experts": run_experts, "lofo": run_lofo, "combine": combine}[args.step](args.corpus, work)


if __name__ == "__main__":  # feature workers are spawned: they must not rerun the script
    main()
