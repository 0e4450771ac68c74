"""``voxguard train`` and ``voxguard compare``: thin shells over :mod:`voxguard.evaluate.training`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from voxguard.models.presets import DEFAULT_PRESET, MODEL_PRESETS, ROUTED_RECIPES


def _load(manifests: list[Path], wide_band_only: bool = False):
    from voxguard.datasets import load_dataset

    datasets = [load_dataset(str(m)) for m in manifests]
    dataset = datasets[0]
    for extra in datasets[1:]:
        dataset = dataset + extra
    if wide_band_only:
        from voxguard.datasets.bandwidth import wide_band_subset

        dataset = wide_band_subset(dataset)
    return dataset


WIDE_BAND_HELP = (
    "Keep only lossless clips whose native rate is at least 22.05 kHz (the data of the wide-band "
    "models, whose views read 8-9.8 kHz)."
)


POLICY_HELP = (
    "Augmentation policy: v1 (one of band-limit, Opus, MP3, noise; the shipped model's) or chain "
    "(1-2 of codecs, babble, noise, music, reverb, telephone, band-limit, resampling, clipping, "
    "packet loss, RawBoost); NAME*K adds K degraded copies per clip. See docs/robustness.md."
)


def _preset(name: str):
    from voxguard.errors import VoxguardError
    from voxguard.models.presets import get_preset

    try:
        return get_preset(name)
    except VoxguardError as exc:
        raise typer.BadParameter(exc.message) from None


def train(
    manifests: Annotated[list[Path], typer.Argument(help="Training data: manifest CSVs or dataset folders.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output .onnx (its .card.json goes beside it).")] = Path(
        "models/voxguard-segmental.onnx"
    ),
    model: Annotated[
        str,
        typer.Option(
            help=f"Model preset: {', '.join(MODEL_PRESETS)}; A+B trains both and a logistic-regression "
            "fusion of their scores (members are written beside --out); a routed recipe "
            f"({', '.join(ROUTED_RECIPES)}) trains condition experts, each with its own augmentation "
            "policy, and a router that mixes them (docs/robustness.md)."
        ),
    ] = DEFAULT_PRESET,
    name: Annotated[str | None, typer.Option(help="Model name in the card (default: the file stem).")] = None,
    C: Annotated[float | None, typer.Option("--C", help="Regularisation (default: the preset's).")] = None,
    augment: Annotated[bool, typer.Option(help="Add one degraded copy of every clip (both classes).")] = True,
    augment_policy: Annotated[str, typer.Option(help=POLICY_HELP)] = "v1",
    lofo: Annotated[bool, typer.Option(help="Also run leave-one-family-out.")] = True,
    report: Annotated[Path | None, typer.Option(help="Write an HTML/Markdown report to this folder.")] = None,
    workers: Annotated[int, typer.Option(help="Worker processes for feature extraction.")] = 2,
    seed: Annotated[int, typer.Option(help="Seed for folds and augmentation.")] = 0,
    wide_band_only: Annotated[bool, typer.Option("--wide-band-only", help=WIDE_BAND_HELP)] = False,
    scores_out: Annotated[
        Path | None,
        typer.Option("--scores-out", help="Write the out-of-fold clip scores (grouped, LOFO) to this CSV."),
    ] = None,
) -> None:
    """Train a detector on audio, measure it (grouped CV, LOFO), calibrate it and export it to ONNX."""
    from voxguard.cli import EXIT_FILE_FAILED, _report_error, err
    from voxguard.errors import VoxguardError
    from voxguard.evaluate.training import (
        describe_protocol_rows,
        train_fusion,
        train_routed,
        train_segmental,
        write_training_report,
    )

    command = "voxguard " + " ".join(sys.argv[1:])
    try:
        dataset = _load(manifests, wide_band_only)
        common = {
            "name": name or out.name.removesuffix(".onnx"),
            "augment": augment,
            "policy": augment_policy,
            "lofo": lofo,
            "seed": seed,
            "workers": workers,
            "command": command,
            "data_description": " + ".join(str(m) for m in manifests),
            "log": lambda line: err.print(line, highlight=False),
            "verbose_log": lambda line: err.print(f"  {line}", highlight=False),
        }
        if model in ROUTED_RECIPES:
            recipe = ROUTED_RECIPES[model]
            experts = [(label, _preset(preset).model(C), policy) for label, preset, policy in recipe.experts]
            result = train_routed(
                dataset,
                out,
                experts,
                {cls: list(labels) for cls, labels in recipe.classes},
                router_views=recipe.router_views,
                router_head=recipe.router_head,
                preprocess_config=_preset(recipe.experts[0][1]).preprocess(),
                **{k: common[k] for k in ("name", "lofo", "seed", "workers", "command", "log")},
            )
        elif "+" in model:
            members, seen = [], set()
            for preset in model.split("+"):
                member = _preset(preset.strip()).model(C)
                label = member.classifier if member.classifier not in seen else f"{member.classifier}{len(seen) + 1}"
                seen.add(label)
                members.append((label, member, _preset(preset.strip()).preprocess()))
            result = train_fusion(
                dataset,
                out,
                members,
                **common,
            )
        else:
            result = train_segmental(
                dataset,
                out,
                model=_preset(model).model(C),
                preprocess_config=_preset(model).preprocess(),
                **common,
            )
        if scores_out is not None:  # e.g. to fuse a routed model's LOFO scores with another model's
            _write_scores(scores_out, dataset, list(result.protocols.values()))
        if report is not None:
            html = write_training_report(result, dataset, report)
            err.print(f"report: {html}", highlight=False)
    except VoxguardError as exc:
        _report_error(", ".join(map(str, manifests)), exc)
        raise typer.Exit(EXIT_FILE_FAILED) from None
    print(describe_protocol_rows(result.summary_rows))
    print(f"\nthresholds (P(fake)): {result.card.output['thresholds']}")
    err.print(f"model: {result.model_path}", highlight=False)


def compare(
    manifests: Annotated[list[Path], typer.Argument(help="Manifest CSVs or dataset folders.")],
    models: Annotated[str, typer.Option(help="Comma-separated presets.")] = ",".join(MODEL_PRESETS),
    protocol: Annotated[str, typer.Option(help="grouped, lofo or grouped,lofo (ignored with --test-on).")] = (
        "grouped,lofo"
    ),
    test_on: Annotated[
        list[Path] | None,
        typer.Option("--test-on", help="Cross-corpus: train on MANIFESTS, test on these (repeatable)."),
    ] = None,
    augment: Annotated[bool, typer.Option(help="Train with one degraded copy of every clip.")] = True,
    augment_policy: Annotated[str, typer.Option(help=POLICY_HELP)] = "v1",
    out: Annotated[Path | None, typer.Option(help="Write the Markdown table to this file.")] = None,
    workers: Annotated[int, typer.Option(help="Worker processes for feature extraction.")] = 2,
    seed: Annotated[int, typer.Option(help="Seed for folds and augmentation.")] = 0,
    fuse: Annotated[
        bool, typer.Option(help="Also score a logistic-regression fusion of all the models (stacked out of fold).")
    ] = True,
    scores_out: Annotated[
        Path | None, typer.Option("--scores-out", help="Write every model's out-of-fold clip scores to this CSV.")
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option(help="Write an HTML/Markdown report (table, ROC/DET, per-family EER) to this folder."),
    ] = None,
    families: Annotated[
        str | None,
        typer.Option(help="LOFO over these families only (comma-separated), e.g. to spare a costly model's time."),
    ] = None,
    wide_band_only: Annotated[bool, typer.Option("--wide-band-only", help=WIDE_BAND_HELP)] = False,
) -> None:
    """Compare model presets under grouped CV and leave-one-family-out, or train on one corpus and
    test on another (--test-on)."""
    import time

    from voxguard.cli import err
    from voxguard.errors import VoxguardError
    from voxguard.evaluate.protocols import run_protocol
    from voxguard.evaluate.training import describe_protocol_rows
    from voxguard.models.segmental import build_segment_table

    split = None
    try:
        if test_on:
            from voxguard.datasets.splits import cross_corpus_split

            dataset, split = cross_corpus_split(_load(manifests, wide_band_only), _load(test_on, wide_band_only))
            protocol = "cross"
        else:
            dataset = _load(manifests, wide_band_only)
    except VoxguardError as exc:
        from voxguard.cli import EXIT_FILE_FAILED, _report_error

        _report_error(", ".join(map(str, manifests)), exc)
        raise typer.Exit(EXIT_FILE_FAILED) from None
    labels = dataset.labels()
    rows, results = [], []
    family_list = [f.strip() for f in families.split(",") if f.strip()] if families else None
    if family_list:
        known = set(dataset.column("family")[labels == 1])
        unknown = [f for f in family_list if f not in known]
        if unknown:
            from voxguard.cli import EXIT_USAGE

            err.print(f"--families: no fake clips of {', '.join(unknown)}; families: {', '.join(sorted(known))}")
            raise typer.Exit(EXIT_USAGE)
    for preset in [m.strip() for m in models.split(",") if m.strip()]:
        proto_model = _preset(preset).model()
        t0 = time.perf_counter()
        table = build_segment_table(
            dataset,
            proto_model,
            preprocess_config=_preset(preset).preprocess(),
            augment=augment,
            policy=augment_policy,
            seed=seed,
            workers=workers,
        )
        feat_s = time.perf_counter() - t0
        for proto in [p.strip() for p in protocol.split(",") if p.strip()]:
            result = run_protocol(
                dataset,
                table,
                lambda preset=preset: _preset(preset).model(),
                protocol=proto,
                split=split,
                seed=seed,
                name=preset,
                log=lambda line: err.print(line, highlight=False),
                verbose_log=lambda line: err.print(f"  {line}", highlight=False),
                families=family_list,
            )
            rows.append(result.summary(labels) | {"features_wall_s": feat_s})
            results.append(result)
        print(describe_protocol_rows([r for r in rows if r["model"] == preset]), flush=True)
    fused_results = []
    if fuse and len({r.model for r in results}) > 1:  # one model under several protocols: nothing to fuse
        from voxguard.evaluate.fusion import fuse_protocol

        for proto in dict.fromkeys(r.protocol for r in results if r.protocol != "cross"):
            fused = fuse_protocol(dataset, [r for r in results if r.protocol == proto], seed=seed, families=family_list)
            fused_results.append(fused)
            rows.append(fused.summary(labels) | {"features_wall_s": 0.0})
    text = describe_protocol_rows(rows)
    print(text)
    if out is not None:
        out.write_text(text + "\n")
    if scores_out is not None:
        _write_scores(scores_out, dataset, [*results, *fused_results])
    if report is not None:
        from voxguard.evaluate.comparison import write_comparison_report

        index = write_comparison_report(dataset, [*results, *fused_results], rows, report)
        err.print(f"report: {index}", highlight=False)


def _write_scores(path: Path, dataset, results) -> None:
    """Out-of-fold clip scores of every model and protocol as CSV (one row per clip)."""
    import csv

    labels = dataset.labels()
    families = dataset.column("family")
    ids = dataset.ids()
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "label", "family", *[f"{r.model}:{r.protocol}" for r in results]])
        for i in range(len(labels)):
            writer.writerow([ids[i], labels[i], families[i], *[f"{r.scores[i]:.6g}" for r in results]])


def export(
    weights: Annotated[
        Path,
        typer.Argument(
            help="Model weights in a safe format (seed CNN: NAME.safetensors + .json), or an SVM .onnx to rewrite."
        ),
    ],
    onnx: Annotated[bool, typer.Option("--onnx", help="Convert to ONNX (the only target).")] = True,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Output .onnx (default: beside the weights).")] = None,
    half: Annotated[
        bool,
        typer.Option(
            "--half",
            help="SVM .onnx: store the support vectors in float16 (about half the file; scores move by ~1e-3).",
        ),
    ] = False,
    stages: Annotated[
        bool,
        typer.Option(
            "--stages",
            help="Fisher-vector .onnx: add its two-stage form (NAME.head.onnx and the GMM in its card), "
            "so scans encode each frame once instead of twice; scores stay the same within 1e-4.",
        ),
    ] = False,
) -> None:
    """Convert a trained torch model to ONNX and check that both give the same outputs (within 1e-4).

    Models trained by `voxguard train` and the seed study's SVM are written as ONNX directly
    (their parity is checked at training time); this converts saved torch weights. Given an
    `.onnx` RBF SVM written by an older voxguard (ONNX-ML `SVMClassifier`, or matrix products in
    float64), it rewrites the graph as float32 matrix products (several times faster, the same
    scores within 1e-4) and updates its card; `--out` writes a copy instead of replacing it.
    `--half` also stores its support vectors in float16 (any RBF SVM graph, float32 ones too).
    `--stages` splits a Fisher-vector model (the `fisher-svm` recipes) for faster scans.
    """
    from voxguard.cli import EXIT_FILE_FAILED, EXIT_USAGE, _report_error, err
    from voxguard.errors import VoxguardError
    from voxguard.models.export import export_seed_cnn, optimise_svm_file

    if not onnx:
        err.print("only --onnx export is supported")
        raise typer.Exit(EXIT_USAGE)
    if stages:
        from voxguard.models.fisher_stages import add_stages

        if weights.suffix != ".onnx" or half or out is not None:
            err.print("--stages takes a Fisher-vector .onnx model and rewrites its card in place (no --half or --out)")
            raise typer.Exit(EXIT_USAGE)
        try:
            diff = add_stages(weights)
        except (VoxguardError, OSError) as exc:
            _report_error(str(weights), exc if isinstance(exc, VoxguardError) else VoxguardError(str(exc)))
            raise typer.Exit(EXIT_FILE_FAILED) from None
        print(
            f"wrote {weights.name.removesuffix('.onnx')}.head.onnx and updated the card; largest relative score "
            f"difference {diff:.1e} on 64 probe crops"
        )
        return
    if weights.suffix == ".onnx":
        try:
            diff = optimise_svm_file(weights, out, storage="float16" if half else None)
        except (VoxguardError, OSError) as exc:
            _report_error(str(weights), exc if isinstance(exc, VoxguardError) else VoxguardError(str(exc)))
            raise typer.Exit(EXIT_FILE_FAILED) from None
        print(f"wrote {out or weights}; max |new - old score| = {diff:.2e} on 512 probe rows")
        return
    target = out or weights.with_name(weights.name.removesuffix(".safetensors") + ".onnx")
    try:
        diff = export_seed_cnn(str(weights), str(target))
    except VoxguardError as exc:
        _report_error(str(weights), exc)
        raise typer.Exit(EXIT_FILE_FAILED) from None
    print(f"wrote {target}; max |ONNX - torch| = {diff:.2e} on 256 probe rows")
