"""Measure the shipped mix of a main model and its wide-band companion on held-out data.

The mix's weights (``output.companion`` in the companion's card) are applied, unchanged, to
out-of-fold scores that ``voxguard train --scores-out`` writes for each model: grouped 5-fold and
leave-one-family-out (LOFO), so both models have never seen the clip's family in the LOFO column.
Three views, printed as Markdown:

1. **Grouped and LOFO** on the wide-band clips (pooled EER, and per family: its fakes against every
   real clip), for the main model alone, the companion alone and the mix.
2. **Real clips from datasets that also have fakes.** Most wide-band real clips in DEV are
   Turkish and Urdu recordings with no fakes made from them; the same figures without those.
3. **Lossy real clips** (Opus, Vorbis, MP3; native rate at least 22.05 kHz), which the companion
   never saw (its data is lossless): decoded at 22.05 kHz, the band gate, the companion's clip
   score, mixed with the main model's grouped out-of-fold score; how many are flagged at each
   operating point, with and without the companion. Clip scores are the mean of the segment
   scores (as in training), not the scanner's top-k verdict.

Usage (twentieth session; each ``voxguard train`` also writes a model, which is not needed here)::

    voxguard train ../shared/corpus/manifest.csv --model routed-v8 --name voxguard-v9 \\
        --out /tmp/v9/voxguard-v9.onnx --scores-out v9-scores.csv                 # about 75 min
    voxguard train ../shared/corpus/manifest.csv --wide-band-only --model lfcc47h-810-flatness-wb-fisher-svm \\
        --augment-policy 'chain*2' --name voxguard-wb --out /tmp/wb/voxguard-wb.onnx --scores-out wb-scores.csv
    python scripts/companion_eval.py --corpus ../shared/corpus/manifest.csv \\
        --main-scores v9-scores.csv --companion-scores wb-scores.csv
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

from voxguard.audio import load
from voxguard.audio.bandwidth import top_band_db
from voxguard.datasets import load_dataset
from voxguard.datasets.bandwidth import is_lossy
from voxguard.evaluate.metrics import eer
from voxguard.models.companion import WideBandCompanion, companion_for
from voxguard.models.onnx_model import ModelCard, card_path, sigmoid
from voxguard.models.registry import resolve_model


def read_scores(path: Path) -> tuple[dict[str, dict[str, str]], list[str]]:
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        rows = {row["id"]: row for row in reader}
        return rows, [c for c in reader.fieldnames or [] if ":" in c]


def calibrated(card: ModelCard, raw: np.ndarray) -> np.ndarray:
    cal = card.output["calibration"]
    return sigmoid(cal["a"] * raw + cal["b"])


def family_eers(labels: np.ndarray, families: np.ndarray, p: np.ndarray, keep: np.ndarray) -> dict[str, float]:
    """EER of each family's fakes against every kept real clip."""
    out = {}
    for family in sorted(set(families[labels == 1])):
        sel = keep & ((labels == 0) | (families == family))
        out[family] = eer(labels[sel], p[sel]).eer
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, required=True, help="the manifest CSV both runs trained on")
    parser.add_argument("--main", default="voxguard-v9", help="the main model (shipped name or .onnx): its card")
    parser.add_argument("--main-scores", type=Path, required=True, help="voxguard train --scores-out of the main")
    parser.add_argument("--companion", default=None, help="the companion (default: the main model's shipped one)")
    parser.add_argument("--companion-scores", type=Path, required=True, help="... of the companion")
    args = parser.parse_args()

    main_card = ModelCard.load(card_path(resolve_model(args.main)))
    companion_path = Path(args.companion) if args.companion else companion_for(main_card.name)
    if companion_path is None:
        raise SystemExit(f"{main_card.name} has no shipped companion: give --companion")
    companion = WideBandCompanion.load(resolve_model(str(companion_path)))
    comp_card, fusion = companion.detector.model.card, companion.fusion
    main_rows, main_cols = read_scores(args.main_scores)
    comp_rows, comp_cols = read_scores(args.companion_scores)
    ids = [i for i in comp_rows if i in main_rows]
    labels = np.array([int(comp_rows[i]["label"]) for i in ids])
    families = np.array([comp_rows[i]["family"] for i in ids])
    manifest = {r["path"]: r for r in csv.DictReader(args.corpus.open(newline=""))}
    datasets = np.array([manifest[i]["dataset"] for i in ids])
    matched = (labels == 1) | np.isin(datasets, sorted(set(datasets[labels == 1])))
    print(f"# The mix of {main_card.name} and {companion.name} on held-out scores\n")
    print(f"{len(ids)} wide-band clips ({int(labels.sum())} fake); real clips from datasets that also have "
          f"fakes: {int((matched & (labels == 0)).sum())} of {int((labels == 0).sum())}.\n")  # fmt: skip

    def column(rows: dict, columns: list[str], protocol: str) -> np.ndarray:
        name = next((c for c in columns if c.endswith(f":{protocol}")), None)
        if name is None:
            raise SystemExit(f"no {protocol} column in {columns}")
        return np.array([float(rows[i][name]) if rows[i][name] not in ("", "nan") else np.nan for i in ids])

    print("| protocol | reals | model | pooled EER | per-family mean | worst family |")
    print("| --- | --- | --- | --- | --- | --- |")
    lofo_families: dict[str, dict[str, float]] = {}
    for protocol in ("grouped", "lofo"):
        p_main = calibrated(main_card, column(main_rows, main_cols, protocol))
        p_comp = calibrated(comp_card, column(comp_rows, comp_cols, protocol))
        p_mix = fusion.fuse(p_main, p_comp)
        scored = np.isfinite(p_main) & np.isfinite(p_comp)
        for reals, keep in (("all", scored), ("matched", scored & matched)):
            for name, p in ((main_card.name, p_main), (companion.name, p_comp), ("mix", p_mix)):
                per = family_eers(labels, families, p, keep)
                worst = max(per, key=lambda f: per[f])
                pooled, mean = eer(labels[keep], p[keep]).eer, np.mean(list(per.values()))
                print(f"| {protocol} | {reals} | {name} | {100 * pooled:.1f} % | {100 * mean:.1f} % "
                      f"| {worst} {100 * per[worst]:.1f} % |")  # fmt: skip
                if protocol == "lofo" and reals == "all":
                    lofo_families[name] = per
    print("\nAt the cards' operating points (the mix's own for the mix): real clips flagged / fakes missed, in %.")
    print("The thresholds come from grouped out-of-fold scores; LOFO shows them on families the models never saw.\n")
    print("| protocol | operating point | clips | model | real flagged | fakes missed |")
    print("| --- | --- | --- | --- | --- | --- |")
    all_labels = np.array([int(row["label"]) for row in main_rows.values()])
    for protocol in ("grouped", "lofo"):
        p_main = calibrated(main_card, column(main_rows, main_cols, protocol))
        p_mix = fusion.fuse(p_main, calibrated(comp_card, column(comp_rows, comp_cols, protocol)))
        name = next(c for c in main_cols if c.endswith(f":{protocol}"))
        p_all = calibrated(main_card, np.array([float(r[name]) if r[name] not in ("", "nan") else np.nan
                                                for r in main_rows.values()]))  # fmt: skip
        for op in ("eer", "low-fa"):
            cases = (
                ("wide-band", main_card.name, labels, p_main, main_card.output["thresholds"][op]),
                ("wide-band", "mix", labels, p_mix, fusion.thresholds[op]),
                ("all", main_card.name, all_labels, p_all, main_card.output["thresholds"][op]),
            )
            for clips, model, y, p, threshold in cases:
                ok = np.isfinite(p)
                flagged = 100 * np.mean(p[ok & (y == 0)] > threshold)
                missed = 100 * np.mean(p[ok & (y == 1)] <= threshold)
                print(f"| {protocol} | {op} ({threshold:.3f}) | {clips} | {model} | {flagged:.1f} | {missed:.1f} |")

    # Where the EER point lies on families the models never saw: the cards' `unseen-eer` thresholds.
    lofo = next(c for c in main_cols if c.endswith(":lofo"))
    lofo_main = calibrated(main_card, np.array([float(r[lofo]) if r[lofo] not in ("", "nan") else np.nan
                                                for r in main_rows.values()]))  # fmt: skip
    lofo_mix = fusion.fuse(calibrated(main_card, column(main_rows, main_cols, "lofo")),
                           calibrated(comp_card, column(comp_rows, comp_cols, "lofo")))  # fmt: skip
    for label, y, p in (("main, all clips", all_labels, lofo_main), ("mix, wide-band clips", labels, lofo_mix)):
        ok = np.isfinite(p)
        point = eer(y[ok], p[ok])
        print(f"\nEER point of the LOFO scores ({label}): threshold {point.threshold:.4f}, EER {100 * point.eer:.1f} %")

    print("\nLOFO per family (its fakes against every real clip), EER in %:\n")
    names = list(lofo_families)
    print("| family | " + " | ".join(names) + " |")
    print("| --- | " + " | ".join("---" for _ in names) + " |")
    for family in lofo_families[names[0]]:
        print(f"| {family} | " + " | ".join(f"{100 * lofo_families[n][family]:.1f}" for n in names) + " |")

    # Lossy real clips: never in the companion's training data.
    dataset = load_dataset(str(args.corpus))
    root = dataset.root if dataset.root is not None else Path(".")
    by_path = {str((root / i).resolve()): row for i, row in main_rows.items()}
    grouped = next(c for c in main_cols if c.endswith(":grouped"))
    p_main, p_comp, gate, names = [], [], [], []
    for item in dataset:
        wide = int(item.extra.get("sample_rate") or 0) >= 22_050
        if item.label != "bonafide" or not wide or not is_lossy(str(item.extra.get("codec", ""))):
            continue
        row = by_path.get(str(Path(item.path).resolve()))
        if row is None or row[grouped] in ("", "nan"):
            continue
        audio = load(item.path, sr=companion.sample_rate)
        level = top_band_db(audio.samples, audio.sample_rate)
        raw = np.nan
        if companion.has_band(level):
            scores = np.asarray(companion.detector.score(audio).scores, dtype=float)
            raw = float(np.nanmean(scores)) if np.isfinite(scores).any() else np.nan
        p_main.append(float(calibrated(main_card, np.array([float(row[grouped])]))[0]))
        p_comp.append(float(calibrated(comp_card, np.array([raw]))[0]) if np.isfinite(raw) else np.nan)
        gate.append(np.isfinite(raw))
        names.append(str(item.extra.get("codec", "")).split()[0])
    pm, pc, used = np.array(p_main), np.array(p_comp), np.array(gate, dtype=bool)
    mixed = np.where(used, fusion.fuse(pm, pc), pm)
    print(f"\nLossy real clips at >= 22.05 kHz ({', '.join(sorted(set(names)))}): {len(pm)}, "
          f"{int(used.sum())} with the band (mixed). Flagged, grouped out of fold:\n")  # fmt: skip
    print(f"| operating point | {main_card.name} alone | with the companion | of the mixed clips: alone / mix |")
    print("| --- | --- | --- | --- |")
    main_thr = main_card.output["thresholds"]
    for op in ("eer", "low-fa"):
        thr = np.where(used, fusion.thresholds[op], main_thr[op])
        print(f"| {op} | {int(np.sum(pm > main_thr[op]))}/{len(pm)} | {int(np.sum(mixed > thr))}/{len(pm)} "
              f"| {int(np.sum(pm[used] > main_thr[op]))} / {int(np.sum(mixed[used] > fusion.thresholds[op]))} "
              f"of {int(used.sum())} |")  # fmt: skip
    sys.stdout.flush()


if __name__ == "__main__":
    main()
