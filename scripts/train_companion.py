"""Train the wide-band companion of a main model and fit their mix (``make model-wb``).

1. The wide-band clips of the corpus: lossless, native rate of at least 22.05 kHz, and the band
   above 8 kHz measured present (:func:`voxguard.datasets.bandwidth.wide_band_subset`).
2. The companion preset trained on them, as ``voxguard train`` trains any segmental model
   (grouped 5-fold CV and leave-one-family-out, Platt calibration on the grouped out-of-fold
   scores, ONNX export): its card's metrics are those of the companion alone.
3. The mix (:func:`voxguard.evaluate.companion.fit_companion_fusion`), written into the card under
   ``output.companion``, from both models' grouped out-of-fold scores of the same clips, each
   calibrated with its own card:

   - the main model's come from a ``voxguard robustness`` scores CSV of the whole corpus
     (``--main-scores``);
   - the companion's from a ``voxguard robustness --wide-band-only`` run of the companion just
     trained (``--companion-scores``, with ``--fit-only`` so that it is not trained again); without
     them, from step 2, clean only.

   The mix is fitted on the ``--fit-conditions`` stacked (default: every condition both CSVs
   have). Fitted on clean clips alone, the companion gets twice the weight, which costs 2-3
   points under babble and codecs (docs/results.md, "A wide-band companion").

``make model-wb`` runs the whole chain (``voxguard robustness`` of the main model, about an hour
for its routed recipe; the rest about 20 minutes on 2 cores), with ``CONDS`` =
``clean,mp3-64k,opus-32k,babble-10dB,babble-20dB,white-10dB,reverb-0.3s``:

    voxguard robustness --corpus ../shared/corpus/manifest.csv --model voxguard-v9 --conditions CONDS \\
        --out reports/robustness-v9 --scores-out reports/robustness-v9/scores.csv
    python scripts/train_companion.py --corpus ../shared/corpus/manifest.csv --main voxguard-v9 \\
        --main-scores reports/robustness-v9/scores.csv --out src/voxguard/models/zoo/voxguard-wb.onnx
    voxguard robustness --corpus ../shared/corpus/manifest.csv --wide-band-only \\
        --model src/voxguard/models/zoo/voxguard-wb.onnx --conditions CONDS \\
        --out reports/robustness-wb --scores-out reports/robustness-wb/scores.csv
    python scripts/train_companion.py --fit-only --corpus ../shared/corpus/manifest.csv --main voxguard-v9 \\
        --main-scores reports/robustness-v9/scores.csv --companion-scores reports/robustness-wb/scores.csv \\
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
from voxguard.datasets import Dataset, load_dataset
from voxguard.datasets.bandwidth import wide_band_subset
from voxguard.evaluate.companion import fit_companion_fusion, write_companion_report
from voxguard.evaluate.training import train_segmental
from voxguard.models.companion import COMPANION_KEY
from voxguard.models.onnx_model import ModelCard, card_path, sigmoid
from voxguard.models.presets import get_preset
from voxguard.models.registry import resolve_model

DEFAULT_PRESET = "lfcc47h-810-flatness-wb-fisher-svm"


def robustness_scores(path: Path, dataset: Dataset, card: ModelCard, label: str | None) -> dict[str, np.ndarray]:
    """Calibrated P(fake) per condition for the clips of ``dataset``, from a ``voxguard robustness``
    scores CSV (columns ``LABEL:CONDITION``; ``id`` relative to the corpus folder or absolute).

    ``label``: the model column's label; by default the routed one (no ``recipe`` in it) if there
    is one, else the only one.
    """
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        columns = [c for c in reader.fieldnames or [] if ":" in c]
        rows = list(reader)
    labels = sorted({c.rsplit(":", 1)[0] for c in columns})
    if label is None:
        routed = [lab for lab in labels if "recipe" not in lab]
        candidates = routed or labels
        if len(candidates) != 1:
            raise SystemExit(f"{path}: say which model's scores to use; labels: {labels}")
        label = candidates[0]
    if label not in labels:
        raise SystemExit(f"{path}: no scores labelled {label!r}; labels: {labels}")
    root = dataset.root if dataset.root is not None else Path(".")
    by_path = {(root / row["id"]).resolve(): row for row in rows}
    cal = card.output["calibration"]
    out = {}
    for column in (c for c in columns if c.rsplit(":", 1)[0] == label):
        raw = np.array([_number(by_path.get(item.path.resolve(), {}).get(column)) for item in dataset])
        out[column.rsplit(":", 1)[1]] = sigmoid(cal["a"] * raw + cal["b"])
    return out


def _number(value: str | None) -> float:
    return float(value) if value else np.nan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, required=True, help="manifest CSV of the training corpus")
    parser.add_argument("--main", default="voxguard-v9", help="the main model (shipped name or .onnx)")
    parser.add_argument("--main-scores", type=Path, required=True, help="voxguard robustness scores.csv (main)")
    parser.add_argument("--main-label", default=None, help="the main model's label in that CSV")
    parser.add_argument("--companion-scores", type=Path, default=None, help="... of the companion (--wide-band-only)")
    parser.add_argument("--fit-conditions", default=None, help="comma-separated (default: all in both CSVs)")
    parser.add_argument("--fit-only", action="store_true", help="keep the trained companion at --out; refit the mix")
    parser.add_argument("--preset", default=DEFAULT_PRESET)
    parser.add_argument("--policy", default="chain*2")
    parser.add_argument("--out", type=Path, default=Path("src/voxguard/models/zoo/voxguard-wb.onnx"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--report", type=Path, default=None, help="write an HTML/Markdown report of the mix here")
    args = parser.parse_args()

    dataset = wide_band_subset(load_dataset(str(args.corpus)))
    print(f"wide-band clips: {len(dataset)} ({int(dataset.labels().sum())} fake)", file=sys.stderr)
    command = "python scripts/train_companion.py " + " ".join(sys.argv[1:])
    oof_clean = None
    if not args.fit_only:
        preset = get_preset(args.preset)
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
        oof_clean = result.oof_proba
    card_file = card_path(args.out)
    companion_card = ModelCard.load(card_file)
    main_card = ModelCard.load(card_path(resolve_model(args.main)))
    main = robustness_scores(args.main_scores, dataset, main_card, args.main_label)
    if args.companion_scores is not None:
        companion = robustness_scores(args.companion_scores, dataset, companion_card, None)
        fit_conditions = [c.strip() for c in args.fit_conditions.split(",")] if args.fit_conditions else None
    elif oof_clean is not None:
        companion, fit_conditions = {"clean": oof_clean}, ["clean"]
    else:
        raise SystemExit("--fit-only needs --companion-scores")
    fit = fit_companion_fusion(
        dataset,
        main,
        companion,
        main=main_card.name,
        min_top_band_db=MIN_TOP_BAND_DB,
        fit_conditions=fit_conditions,
    )
    card = json.loads(card_file.read_text())
    card["output"][COMPANION_KEY] = fit.fusion.to_dict()
    card["metrics"]["companion_mix"] = fit.metrics | {
        "main_scores": f"{main_card.name}: grouped out-of-fold scores from `voxguard robustness` "
        f"({args.main_scores.name})",
        "companion_scores": "grouped out-of-fold scores from `voxguard robustness --wide-band-only`"
        if args.companion_scores is not None
        else "grouped out-of-fold scores of its training (clean only)",
    }
    card["training"]["mix_command"] = command
    note = (
        f"A wide-band companion of {main_card.name}: the scanner mixes it in only for recordings whose "
        "band above 8 kHz is there (measured); alone it refuses audio without that band."
    )
    card["notes"] = [n for n in card["notes"] if not n.startswith("A wide-band companion")] + [note]
    card_file.write_text(json.dumps(card, indent=2) + "\n")
    print(json.dumps(fit.metrics["eer_percent_by_condition"], indent=2))
    print(f"mix: {fit.fusion.to_dict()}")
    if args.report is not None:
        html = write_companion_report(args.report, dataset, fit, main=main_card.name, companion=card["name"])
        print(f"report: {html}", file=sys.stderr)


if __name__ == "__main__":
    main()
