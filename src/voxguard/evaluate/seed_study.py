"""Reproduction of the seed study on the DEEP-VOICE feature table, and what its numbers mean.

The seed: 26 per-second features (``chroma_stft`` ... ``mfcc20``) with a ``LABEL`` column
(``REAL``/``FAKE``); ``StandardScaler`` fitted on *all* rows, a stratified 80/20 split with
``random_state=42`` (labels encoded alphabetically: FAKE=0, REAL=1, as ``LabelEncoder`` does),
``SVC(kernel="rbf", C=1.0, gamma="scale")`` -> 0.9962 accuracy on 2,356 test rows; and a 1D CNN
(:mod:`voxguard.models.seed_cnn`) -> 0.9919.

This module runs that protocol exactly, the same with the scaler fitted on the training rows only
(the honest variant: the seed's scaler saw the test rows), and 5-fold stratified cross-validation
of both. All these splits are *random over one-second windows*: neighbouring windows of the same
recording (same speaker, same conversion) fall on both sides, so the figures measure
in-distribution fit, not generalisation to unseen speakers or generators.

Scores follow voxguard's convention: higher = more likely fake.
"""

from __future__ import annotations

import csv
import hashlib
import html
import io
import multiprocessing
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from voxguard import __version__
from voxguard.errors import VoxguardError
from voxguard.evaluate import metrics

SVM_PARAMS = {"kernel": "rbf", "C": 1.0, "gamma": "scale"}
SEED_TEST_SIZE = 0.2
SEED_RANDOM_STATE = 42
SCALER_VARIANTS = {
    "all-rows": "scaler fitted on all rows, test rows included (the seed's protocol; leaks test statistics)",
    "train-only": "scaler fitted on the training rows only (no leak)",
}


class FeatureTableError(VoxguardError):
    """The feature table is missing, malformed or has bad labels."""

    code = "feature_table_error"


@dataclass(frozen=True)
class FeatureTable:
    """A per-window feature table: ``X`` (n_rows, n_features) float64, ``y`` 1 = fake, 0 = real."""

    X: np.ndarray
    y: np.ndarray
    columns: list[str]
    source: str = ""
    sha256: str = ""


def read_feature_table(path: str | Path, *, label_column: str = "LABEL") -> FeatureTable:
    """Read a DEEP-VOICE-style CSV: numeric feature columns plus a REAL/FAKE label column."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise FeatureTableError(f"cannot read: {exc.strerror}", path=str(path)) from exc
    reader = csv.reader(io.StringIO(raw.decode("utf-8-sig")))
    header = next(reader, None)
    if not header or label_column not in header:
        raise FeatureTableError(f"no {label_column!r} column in the header", path=str(path))
    label_idx = header.index(label_column)
    columns = [c for i, c in enumerate(header) if i != label_idx]
    rows, labels = [], []
    for line_no, row in enumerate(reader, start=2):
        if not row:
            continue
        if len(row) != len(header):
            raise FeatureTableError(f"line {line_no}: {len(row)} fields, expected {len(header)}", path=str(path))
        label = row[label_idx].strip().upper()
        if label not in ("REAL", "FAKE"):
            raise FeatureTableError(f"line {line_no}: label {row[label_idx]!r} is not REAL or FAKE", path=str(path))
        try:
            rows.append([float(v) for i, v in enumerate(row) if i != label_idx])
        except ValueError as exc:
            raise FeatureTableError(f"line {line_no}: {exc}", path=str(path)) from None
        labels.append(label == "FAKE")
    if not rows:
        raise FeatureTableError("no data rows", path=str(path))
    X = np.asarray(rows, dtype=np.float64)
    if not np.isfinite(X).all():
        raise FeatureTableError("the table contains NaN or infinite values", path=str(path))
    return FeatureTable(
        X=X,
        y=np.asarray(labels, dtype=np.int64),
        columns=columns,
        source=str(path),
        sha256=hashlib.sha256(raw).hexdigest(),
    )


def stratified_sample(table: FeatureTable, n_rows: int, *, seed: int = 0) -> FeatureTable:
    """A class-stratified random subset of ``n_rows`` rows (for quick runs and tests)."""
    from sklearn.model_selection import train_test_split

    if n_rows >= len(table.y):
        return table
    idx, _ = train_test_split(np.arange(len(table.y)), train_size=n_rows, stratify=table.y, random_state=seed)
    idx = np.sort(idx)
    return FeatureTable(table.X[idx], table.y[idx], table.columns, table.source, table.sha256)


def seed_split(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The seed's split: stratified 80/20, ``random_state=42``, on LabelEncoder labels (REAL=1)."""
    from sklearn.model_selection import train_test_split

    y_encoded = 1 - y  # LabelEncoder sorts "FAKE" < "REAL"; the split depends on the encoding
    return train_test_split(
        np.arange(len(y)),
        test_size=SEED_TEST_SIZE,
        random_state=SEED_RANDOM_STATE,
        stratify=y_encoded,
    )


# --------------------------------------------------------------------------- one fit = one task


@dataclass(frozen=True)
class _Task:
    model: str  # "svm" | "cnn"
    scaler: str  # key of SCALER_VARIANTS
    protocol: str  # "seed-split" | "cv"
    fold: int
    train_idx: np.ndarray
    test_idx: np.ndarray
    cnn_epochs: int
    export: bool


def _standardise(X: np.ndarray, train_idx: np.ndarray, scaler: str):
    from sklearn.preprocessing import StandardScaler

    fit_rows = X if scaler == "all-rows" else X[train_idx]
    return StandardScaler().fit(fit_rows)


def _export_svm(X_train: np.ndarray, y_train: np.ndarray, scaler, svm) -> tuple[bytes, dict[str, Any]]:
    """ONNX of scaler + SVC, checked against scikit-learn, with Platt calibration."""
    from sklearn.model_selection import cross_val_predict
    from sklearn.pipeline import Pipeline
    from sklearn.svm import SVC

    from voxguard.models.export import fit_platt, sklearn_to_onnx

    pipeline = Pipeline([("scaler", scaler), ("svc", svm)])
    probe = X_train[:256]
    # The SVC was trained on the seed's encoding (REAL=1): negate for "higher = fake".
    onx, output = sklearn_to_onnx(pipeline, probe, -pipeline.decision_function(probe))
    # Platt scaling on out-of-fold decision values of the training rows (never the test rows).
    oof = -cross_val_predict(
        SVC(**SVM_PARAMS), scaler.transform(X_train), 1 - y_train, cv=5, method="decision_function"
    )
    output |= {"meaning": "SVM decision value, higher = more likely fake", "calibration": fit_platt(oof, y_train)}
    return onx, output


def _export_cnn(cnn, scaler) -> tuple[bytes, dict[str, Any]]:
    """ONNX of standardisation + CNN (so the model takes raw features), plus the torch weights
    as safetensors + JSON so that ``voxguard export`` can convert them again."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cnn.onnx"
        cnn.to_onnx(str(path), mean=scaler.mean_, scale=scaler.scale_)
        onx = path.read_bytes()
        weights = Path(tmp) / "cnn.safetensors"
        cnn.save(str(weights), mean=scaler.mean_, scale=scaler.scale_)
        native = {"safetensors": weights.read_bytes(), "json": Path(str(weights) + ".json").read_text()}
    output = {
        "name": "logit",
        "index": None,
        "sign": 1,
        "meaning": "logit of P(fake)",
        "calibration": {"type": "logistic", "a": 1.0, "b": 0.0},
        "_native": native,
    }
    return onx, output


def _run_task(X: np.ndarray, y: np.ndarray, task: _Task) -> dict[str, Any]:
    """Fit one model on one split and score its held-out rows (runs in a worker process)."""
    start = time.process_time()
    scaler = _standardise(X, task.train_idx, task.scaler)
    X_train, X_test = scaler.transform(X[task.train_idx]), scaler.transform(X[task.test_idx])
    y_train = y[task.train_idx]
    exported: tuple[bytes, dict[str, Any]] | None = None
    if task.model == "svm":
        from sklearn.svm import SVC

        svm = SVC(**SVM_PARAMS).fit(X_train, 1 - y_train)  # seed encoding: REAL=1
        scores = -svm.decision_function(X_test)
        if task.export:
            exported = _export_svm(X[task.train_idx], y_train, scaler, svm)
    else:
        from voxguard.models.seed_cnn import SeedCNNClassifier

        cnn = SeedCNNClassifier(epochs=task.cnn_epochs).fit(X_train, y_train)
        scores = cnn.decision_function(X_test)
        if task.export:
            exported = _export_cnn(cnn, scaler)
    return {
        "model": task.model,
        "scaler": task.scaler,
        "protocol": task.protocol,
        "fold": task.fold,
        "test_idx": task.test_idx,
        "scores": scores,
        "cpu_s": time.process_time() - start,
        "exported": exported,
    }


def _run_task_star(args: tuple[np.ndarray, np.ndarray, _Task]) -> dict[str, Any]:
    return _run_task(*args)


# --------------------------------------------------------------------------- the study


@dataclass
class SeedStudyResult:
    """Everything the study measured.

    ``split_rows``: one row per (model, scaler) on the seed's 80/20 split, with accuracy at the
    natural threshold (0 for both models' scores), EER, AUC and a classification report.
    ``cv_rows``: mean and std over the folds of the same metrics.
    """

    split_rows: list[dict[str, Any]]
    cv_rows: list[dict[str, Any]]
    test_scores: dict[str, dict[str, np.ndarray]]
    exported: dict[str, tuple[bytes, dict[str, Any]]]
    n_rows: int
    n_test: int
    wall_s: float
    cpu_s: float
    table: FeatureTable
    settings: dict[str, Any] = field(default_factory=dict)


def _point_metrics(y: np.ndarray, scores: np.ndarray) -> dict[str, Any]:
    return {
        "accuracy": metrics.accuracy(y, scores, 0.0),
        "eer": metrics.eer(y, scores).eer,
        "auc": metrics.roc_auc(y, scores),
        "report": metrics.classification_report(y, scores, 0.0),
    }


def run_seed_study(
    table: FeatureTable,
    *,
    models: Sequence[str] = ("svm", "cnn"),
    cv_folds: int = 5,
    cnn_epochs: int = 20,
    workers: int = 2,
    export: bool = True,
    log: Callable[[str], None] = lambda _msg: None,
) -> SeedStudyResult:
    """Run the seed protocol, its honest variant and stratified k-fold CV for each model.

    Parameters
    ----------
    table : FeatureTable
    models : "svm" and/or "cnn"
    cv_folds : int
        Folds of the stratified CV (0 to skip).
    cnn_epochs : int
        The seed used 20.
    workers : int
        Processes for the independent fits (1 = in this process).
    export : bool
        Also export the models fitted on the seed split with the train-only scaler to ONNX.
    log : callable
        Receives one progress line per finished fit.
    """
    from sklearn.model_selection import StratifiedKFold

    wall_start = time.perf_counter()
    X, y = table.X, table.y
    train_idx, test_idx = seed_split(y)
    tasks: list[_Task] = []
    for model in models:
        for scaler in SCALER_VARIANTS:
            tasks.append(
                _Task(
                    model,
                    scaler,
                    "seed-split",
                    0,
                    train_idx,
                    test_idx,
                    cnn_epochs,
                    export and scaler == "train-only",
                )
            )
        if cv_folds:
            folds = StratifiedKFold(n_splits=cv_folds, shuffle=True, random_state=SEED_RANDOM_STATE)
            for k, (tr, te) in enumerate(folds.split(X, y)):
                for scaler in SCALER_VARIANTS:
                    tasks.append(_Task(model, scaler, "cv", k, tr, te, cnn_epochs, False))
    # Long CNN fits first, so the two workers finish together.
    tasks.sort(key=lambda t: t.model != "cnn")
    results: list[dict[str, Any]] = []
    if workers <= 1:
        iterator = (_run_task(X, y, t) for t in tasks)
        pool = None
    else:
        # spawn: torch and fork do not mix (a forked child can deadlock in torch's thread pool).
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
        iterator = pool.map(_run_task_star, [(X, y, t) for t in tasks])
    try:
        for i, res in enumerate(iterator, start=1):
            results.append(res)
            log(
                f"[{i}/{len(tasks)}] {res['model']} {res['protocol']} fold {res['fold']} "
                f"scaler={res['scaler']}: {res['cpu_s']:.1f} CPU s"
            )
    finally:
        if pool is not None:
            pool.shutdown()

    split_rows, cv_rows = [], []
    test_scores: dict[str, dict[str, np.ndarray]] = {}
    exported: dict[str, tuple[bytes, dict[str, Any]]] = {}
    for model in models:
        for scaler in SCALER_VARIANTS:
            (main,) = [r for r in results if (r["model"], r["scaler"], r["protocol"]) == (model, scaler, "seed-split")]
            row = {"model": model, "scaler": scaler, **_point_metrics(y[main["test_idx"]], main["scores"])}
            split_rows.append(row)
            test_scores.setdefault(model, {})[scaler] = main["scores"]
            if main["exported"] is not None:
                exported[model] = main["exported"]
            fold_rows = [r for r in results if (r["model"], r["scaler"], r["protocol"]) == (model, scaler, "cv")]
            if fold_rows:
                per_fold = [_point_metrics(y[r["test_idx"]], r["scores"]) for r in fold_rows]
                cv = {"model": model, "scaler": scaler, "folds": len(per_fold)}
                for key in ("accuracy", "eer", "auc"):
                    values = np.array([m[key] for m in per_fold])
                    cv[f"{key}_mean"], cv[f"{key}_std"] = float(values.mean()), float(values.std(ddof=1))
                cv_rows.append(cv)
    return SeedStudyResult(
        split_rows=split_rows,
        cv_rows=cv_rows,
        test_scores=test_scores,
        exported=exported,
        n_rows=len(y),
        n_test=len(test_idx),
        wall_s=time.perf_counter() - wall_start,
        cpu_s=sum(r["cpu_s"] for r in results),
        table=table,
        settings={"models": list(models), "cv_folds": cv_folds, "cnn_epochs": cnn_epochs, "workers": workers},
    )


# --------------------------------------------------------------------------- output


MEANING = """\
**What these numbers mean.** Every split here is random over one-second windows. The DEEP-VOICE
table has no recording or speaker id, so neighbouring windows of the same speech (same speaker,
same voice conversion) fall into both training and test sets. The accuracy therefore measures how
well a model recognises *these eight speakers and this one converter* again — an in-distribution
figure. It says nothing about unseen speakers, unseen generators (the product's real task),
other recording chains or compressed audio. The seed also fitted its StandardScaler on all rows
(test included): the `all-rows` lines reproduce that, the `train-only` lines are the clean
protocol; on this table the leak changes little, because 9,422 training rows estimate the same
means and variances.
"""


def format_summary(result: SeedStudyResult) -> str:
    """Markdown tables of the split and CV results."""
    lines = [
        f"Seed split: stratified 80/20, random_state=42 — {result.n_rows} rows, {result.n_test} test rows.",
        "",
        "| model | scaler | accuracy | EER | AUC | F1 (fake) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in result.split_rows:
        f1 = r["report"].get("spoof", r["report"].get("1", {})).get("f1-score", float("nan"))
        lines.append(
            f"| {r['model']} | {r['scaler']} | {r['accuracy']:.4f} | {r['eer']:.4f} | {r['auc']:.5f} | {f1:.4f} |"
        )
    if result.cv_rows:
        lines += [
            "",
            f"Stratified {result.cv_rows[0]['folds']}-fold cross-validation (shuffle, random_state=42), mean ± std:",
            "",
            "| model | scaler | accuracy | EER | AUC |",
            "| --- | --- | --- | --- | --- |",
        ]
        for r in result.cv_rows:
            lines.append(
                f"| {r['model']} | {r['scaler']} | {r['accuracy_mean']:.4f} ± {r['accuracy_std']:.4f} "
                f"| {r['eer_mean']:.4f} ± {r['eer_std']:.4f} | {r['auc_mean']:.5f} ± {r['auc_std']:.5f} |"
            )
    lines += ["", "Scaler variants: " + "; ".join(f"`{k}` = {v}" for k, v in SCALER_VARIANTS.items()) + "."]
    lines += ["", f"Time: {result.wall_s:.0f} s wall, {result.cpu_s:.0f} CPU s.", "", MEANING]
    return "\n".join(lines)


def write_outputs(result: SeedStudyResult, out_dir: str | Path, *, command: str) -> dict[str, Path]:
    """Write ``summary.md``, one HTML report per model, and the exported models with their cards."""
    from voxguard.evaluate.report import ReportSection, write_report
    from voxguard.models.onnx_model import ModelCard, card_path

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = format_summary(result)
    (out / "summary.md").write_text("# Seed study reproduction\n\n" + summary + "\n")
    paths: dict[str, Path] = {"summary": out / "summary.md"}
    _, test_idx = seed_split(result.table.y)
    labels = result.table.y[test_idx]
    for model, by_scaler in result.test_scores.items():
        report = write_report(
            {"id": [str(i) for i in test_idx], "label": labels, "score": by_scaler["all-rows"]},
            out / model,
            title=f"Seed study: {model.upper()} on DEEP-VOICE (seed protocol, test rows of the 80/20 split)",
            threshold=0.0,
            extra_sections=[
                ReportSection(
                    title="Seed split, every model and scaler variant",
                    table=[{k: v for k, v in r.items() if k != "report"} for r in result.split_rows],
                ),
                ReportSection(title="Stratified cross-validation (mean and std over folds)", table=result.cv_rows),
                ReportSection(title="What these numbers mean", markdown=MEANING, html=f"<p>{html.escape(MEANING)}</p>"),
            ],
        )
        paths[f"report_{model}"] = report.html
    models_dir = out / "models"
    for model, (onx, output) in result.exported.items():
        models_dir.mkdir(exist_ok=True)
        onnx_path = models_dir / f"seed-{model}.onnx"
        onnx_path.write_bytes(onx)
        native = output.pop("_native", None)
        if native is not None:  # the torch weights, safe format, for `voxguard export`
            (models_dir / f"seed-{model}.safetensors").write_bytes(native["safetensors"])
            (models_dir / f"seed-{model}.safetensors.json").write_text(native["json"])
        split_row = next(r for r in result.split_rows if r["model"] == model and r["scaler"] == "train-only")
        card = ModelCard(
            name=f"seed-{model}",
            model_type=(
                "StandardScaler + SVC(rbf, C=1, gamma='scale')"
                if model == "svm"
                else "standardisation + seed 1D CNN (Conv64-Pool-Conv128-Pool-Dense128-Dropout-1)"
            ),
            features={
                "kind": "deepvoice",
                "columns": result.table.columns,
                "window_s": 1.0,
                "sample_rate": "native (as the seed computed its table)",
            },
            output=output,
            training={
                "data": result.table.source,
                "data_sha256": result.table.sha256,
                "rows": int(len(result.table.y) - len(test_idx)),
                "split": "seed split: stratified random 80/20 over 1-s windows, random_state=42; "
                "the scaler is fitted on the training rows only",
                "leakage_warning": "windows of the same recording fall on both sides of the split",
                "command": command,
            },
            metrics={
                "split": "seed 80/20 test rows (random over windows; in-distribution)",
                "n_test": int(len(test_idx)),
                "accuracy": split_row["accuracy"],
                "eer": split_row["eer"],
                "auc": split_row["auc"],
            },
            created=date.today().isoformat(),
            voxguard_version=__version__,
            notes=[
                "Trained on 8 public figures and one voice-conversion system (RVC); do not expect it to "
                "generalise to other speakers, generators or channels."
            ],
        )
        card.save(card_path(onnx_path))
        paths[f"model_{model}"] = onnx_path
    return paths
