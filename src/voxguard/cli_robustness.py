"""``voxguard robustness``: EER per degradation condition, as a table, a plot and an HTML report."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer


def robustness(
    corpus: Annotated[
        list[Path] | None, typer.Option("--corpus", help="Manifest CSV(s) or dataset folder(s); repeatable.")
    ] = None,
    model: Annotated[str, typer.Option(help="Shipped model name or .onnx path.")] = "",
    conditions: Annotated[
        str, typer.Option(help="Condition set (default, quick) or comma-separated names; see --list.")
    ] = "default",
    protocol: Annotated[
        str,
        typer.Option(
            help="grouped: retrain the model's recipe per grouped fold and score held-out clips (honest on the "
            "model's own training corpus); fixed: score with the trained model as is (only honest on a corpus "
            "it never saw)."
        ),
    ] = "grouped",
    policies: Annotated[
        str,
        typer.Option(
            help="grouped: augmentation policies to compare (comma-separated, e.g. v1,chain; none = no "
            "augmentation). Default: the one the model was trained with."
        ),
    ] = "",
    folds: Annotated[int, typer.Option(min=2, help="Grouped folds.")] = 5,
    limit: Annotated[
        int, typer.Option(min=0, help="Use a seeded random subset of this many clips (0: all) for a quick look.")
    ] = 0,
    out: Annotated[Path, typer.Option("--out", "-o", help="Report folder.")] = Path("reports/robustness"),
    scores_out: Annotated[
        Path | None,
        typer.Option("--scores-out", help="Also write every clip's score per model and condition to this CSV."),
    ] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 2,
    seed: Annotated[int, typer.Option(help="Seed for subsets, folds and degradations.")] = 0,
    wide_band_only: Annotated[
        bool,
        typer.Option(
            "--wide-band-only",
            help="Keep only lossless clips whose native rate is at least 22.05 kHz and whose band above "
            "8 kHz is there (for a wide-band model such as voxguard-wb).",
        ),
    ] = False,
    list_conditions: Annotated[bool, typer.Option("--list", help="List the conditions and exit.")] = False,
) -> None:
    """Measure how EER changes under codecs, noise, telephone, reverberation, gain and resampling."""
    import numpy as np

    from voxguard.cli import EXIT_FILE_FAILED, EXIT_USAGE, _report_error, err
    from voxguard.errors import VoxguardError
    from voxguard.evaluate import robustness as rb
    from voxguard.models.onnx_model import ModelCard, card_path
    from voxguard.models.registry import DEFAULT_MODEL, resolve_model

    if list_conditions:
        for cond in rb.CONDITIONS.values():
            sets = [k for k, v in rb.CONDITION_SETS.items() if cond.name in v]
            print(f"{cond.name:18s} {cond.group:10s} {cond.description}  [{', '.join(sets)}]")
        return
    if not corpus:
        err.print("--corpus is required (a manifest CSV or dataset folder)")
        raise typer.Exit(EXIT_USAGE)
    if protocol not in ("grouped", "fixed"):
        err.print(f"unknown protocol {protocol!r}; choose grouped or fixed")
        raise typer.Exit(EXIT_USAGE)
    log = lambda line: err.print(line, highlight=False)  # noqa: E731
    try:
        from voxguard.cli_train import _load

        chosen = rb.resolve_conditions(conditions)
        dataset = _load(corpus, wide_band_only)
        if limit and limit < len(dataset):
            dataset = dataset[np.sort(np.random.default_rng(seed).choice(len(dataset), limit, replace=False))]
        model_path = resolve_model(model or DEFAULT_MODEL)
        card = ModelCard.load(card_path(model_path))
        log(f"{len(dataset)} clips, {len(chosen)} conditions, model {card.name}, protocol {protocol}")
        results = []

        def grouped(recipe_card: ModelCard, policy: str, name: str, rows: Any = None) -> rb.RobustnessResult:
            """The card's recipe retrained per grouped fold with ``policy``, scored under every condition."""
            return rb.evaluate_grouped(
                dataset,
                rb.recipe_from_card(recipe_card),
                chosen,
                policy=policy,
                augment=policy != "none",
                folds=folds,
                seed=seed,
                workers=workers,
                name=name,
                log=log,
                condition_rows=rows,
                preprocess_config=rb.preprocess_from_card(recipe_card),
            )

        if protocol == "fixed":
            res = rb.evaluate_fixed(model_path, dataset, chosen, seed=seed, workers=workers)
            res.extra["label"] = card.name
            results.append(res)
        elif "routing" in card.output:
            # A routed model: each expert's recipe retrained per fold with its own policy, the
            # router retrained per fold, and the experts mixed by its posteriors under every condition.
            if policies:
                raise VoxguardError("--policies does not apply to a routed model: its experts have their own")
            from voxguard.models.routing import is_router_card, router_from_card

            member_cards = [ModelCard.load(card_path(model_path.parent / m)) for m in card.features["members"]]
            expert_cards = [c for c in member_cards if not is_router_card(c)]
            router_card = next(c for c in member_cards if is_router_card(c))
            # Experts with the same features block share their degraded rows; the block tells pooled
            # rows from frame crops too (a Fisher expert may read the same frames as a pooled one).
            rows_by_view: dict[str, Any] = {}
            expert_results = []
            for expert_card in expert_cards:
                view = json.dumps(expert_card.features, sort_keys=True)
                policy = expert_card.training.get("augmentation_policy") or "none"
                res = grouped(expert_card, policy, expert_card.name, rows_by_view.get(view))
                rows_by_view.setdefault(view, res.extra["condition_rows"])
                res.extra["label"] = f"{expert_card.name} recipe + {policy}"
                expert_results.append(res)
            routing = card.output["routing"]
            routed = rb.route_grouped(
                dataset,
                expert_results,
                routing["experts"],
                card.training["class_experts"],
                router_from_card(router_card),
                chosen,
                preprocess_config=rb.preprocess_from_card(expert_cards[0]),
                folds=folds,
                seed=seed,
                workers=workers,
                name=card.name,
            )
            routed.extra["label"] = f"{card.name} (routed, router retrained per fold)"
            results += [*expert_results, routed]
        elif card.features.get("kind") == "fusion":
            # A fusion: each member's recipe retrained per fold, then the fusion stacked per fold;
            # once per --policies entry (every member trained with it), else with each member's own.
            member_cards = [ModelCard.load(card_path(model_path.parent / m)) for m in card.features["members"]]
            chosen_policies = [p.strip() for p in policies.split(",") if p.strip()] if policies else [None]
            # A member's degraded test rows are its own features: shared across policies, not members.
            member_rows: list[Any] = [None] * len(member_cards)
            for chosen_policy in chosen_policies:
                member_results = []
                for i, member_card in enumerate(member_cards):
                    policy = chosen_policy or member_card.training.get("augmentation_policy") or "none"
                    res = grouped(member_card, policy, member_card.name, member_rows[i])
                    member_rows[i] = res.extra["condition_rows"]
                    res.extra["label"] = f"{member_card.name} recipe + {policy}"
                    member_results.append(res)
                fused = rb.fuse_grouped(dataset, member_results, folds=folds, seed=seed, name=card.name)
                suffix = f", {chosen_policy}" if chosen_policy else ""
                fused.extra["label"] = f"{card.name} (fusion, stacked per fold{suffix})"
                results += [*member_results, fused]
        else:
            shared_rows = None
            augmented = card.training.get("augmentation") not in (None, "", "none")
            own = card.training.get("augmentation_policy") or ("v1" if augmented else "none")
            for policy in [p.strip() for p in (policies or own).split(",") if p.strip()]:
                res = grouped(card, policy, f"{card.name} recipe, {policy}", shared_rows)
                shared_rows = res.extra["condition_rows"]
                res.extra["label"] = f"{card.name} recipe + {policy}" if policy != "none" else f"{card.name} recipe"
                results.append(res)
        html = rb.write_robustness_report(results, dataset, out)
        if scores_out is not None:
            rb.write_scores(results, dataset, scores_out)
    except VoxguardError as exc:
        _report_error(", ".join(map(str, corpus)), exc)
        raise typer.Exit(EXIT_FILE_FAILED) from None
    print((out / "robustness.md").read_text())
    err.print(f"report: {html}", highlight=False)
    err.print(f"command: voxguard {' '.join(sys.argv[1:])}", highlight=False)
