"""Train the wide-band companion of a main model and fit their mix (``make model-wb``).

1. The wide-band clips of the corpus: lossless, native rate of at least 22.05 kHz, and the band
   above 8 kHz measured present (:func:`voxguard.datasets.bandwidth.wide_band_subset`).
2. The companion preset trained on them, as ``voxguard train`` trains any segmental model
   (grouped 5-fold CV and leave-one-family-out, Platt calibration on the grouped out-of-fold
   scores, ONNX export): its card's metrics are those of the companion alone, on the wide-band
   clips.
3. The main model's grouped out-of-fold scores of the same clips, read from a
   ``voxguard robustness`` scores CSV (column ``--main-column``; condition ``clean``) and calibrated
   with the main model's own card.
4. The mix of the two (:func:`voxguard.evaluate.companion.fit_companion_fusion`), written into
   the companion's card under ``output.companion`` with its grouped out-of-fold EER.

The main model's scores come from (about 15 minutes for the clean condition alone):

    voxguard robustness --corpus ../shared/corpus/manifest.csv --model voxguard-v9 \\
        --conditions clean --out reports/robustness-v9-clean \\
        --scores-out reports/robustness-v9-clean/scores.csv

Then (about 10 minutes on 2 cores):

    .venv/bin/python scripts/train_companion.py --corpus ../shared/corpus/manifest.csv \\
        --main voxguard-v9 --main-scores reports/robustness-v9-clean/scores.csv \\
        --out src/voxguard/models/zoo/voxguard-wb.onnx
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

from voxguard.audio.bandwidth import MIN_TOP_BAND_DB
from voxguard.datasets import load_dataset
from voxguard.datasets.bandwidth import wide_band_subset
from voxguard.evaluate.companion import fit_companion_fusion
from voxguard.evaluate.training import train_segmental
from voxguard.models.companion import COMPANION_KEY
from voxguard.models.onnx_model import ModelCard, card_path, sigmoid
from voxguard.models.presets import get_preset
from voxguard.models.registry import resolve_model

DEFAULT_PRESET = "lfcc47h-810-flatness-wb-svm"


def main_scores(path: Path, column: str | None, corpus_root: Path) -> tuple[dict[Path, float], str]:
    """Raw clip scores of the main model by resolved clip path, and the column read."""
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        fields = reader.fieldnames or []
        if column is None:
            routed = [c for c in fields if c.endswith(":clean") and "recipe" not in c]
            if len(routed) != 1:
                raise SystemExit(f"say which column holds the main model's clean scores (--main-column): {fields}")
            column = routed[0]
        if column not in fields:
            raise SystemExit(f"no column {column!r} in {path}")
        out = {}
        for row in reader:
            value = row[column]
            out[(corpus_root / row["id"]).resolve()] = float(value) if value else np.nan
    return out, column


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, required=True, help="manifest CSV of the training corpus")
    parser.add_argument("--main", default="voxguard-v9", help="the main model (shipped name or .onnx)")
    parser.add_argument("--main-scores", type=Path, required=True, help="voxguard robustness scores.csv")
    parser.add_argument("--main-column", default=None, help="column of the main model's clean scores")
    parser.add_argument("--preset", default=DEFAULT_PRESET)
    parser.add_argument("--policy", default="chain*2")
    parser.add_argument("--out", type=Path, default=Path("src/voxguard/models/zoo/voxguard-wb.onnx"))
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    dataset = wide_band_subset(load_dataset(str(args.corpus)))
    print(f"wide-band clips: {len(dataset)} ({int(dataset.labels().sum())} fake)", file=sys.stderr)
    preset = get_preset(args.preset)
    command = "python scripts/train_companion.py " + " ".join(sys.argv[1:])
    result = train_segmental(
        dataset,
        args.out,
        model=preset.model(),
        name=args.out.name.removesuffix(".onnx"),
        preprocess_config=preset.preprocess(),
        policy=args.policy,
        workers=args.workers,
        command=command,
        data_description=f"{args.corpus}, wide-band clips only (lossless, >= 22.05 kHz, band above 8 kHz present)",
        log=lambda line: print(line, file=sys.stderr),
    )
    main_path = resolve_model(args.main)
    main_card = ModelCard.load(card_path(main_path))
    raw, column = main_scores(args.main_scores, args.main_column, args.corpus.parent)
    cal = main_card.output["calibration"]
    main_raw = np.array([raw.get(item.path.resolve(), np.nan) for item in dataset])
    fit = fit_companion_fusion(
        dataset,
        sigmoid(cal["a"] * main_raw + cal["b"]),
        result.oof_proba,
        main=main_card.name,
        min_top_band_db=MIN_TOP_BAND_DB,
    )
    card_file = card_path(args.out)
    card = json.loads(card_file.read_text())
    card["output"][COMPANION_KEY] = fit.fusion.to_dict()
    card["metrics"]["companion_mix"] = fit.metrics | {
        "main_scores": f"{args.main_scores} column {column!r} (grouped out-of-fold, clean)",
    }
    card["notes"].append(
        f"A wide-band companion of {main_card.name}: the scanner mixes it in only for recordings whose band "
        "above 8 kHz is there (measured); alone it refuses audio without that band."
    )
    card_file.write_text(json.dumps(card, indent=2) + "\n")
    print(json.dumps(fit.metrics, indent=2))
    print(f"mix: {fit.fusion.to_dict()}")


if __name__ == "__main__":
    main()
