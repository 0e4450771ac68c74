"""Robustness of a detector to the recording chain: EER per degradation condition.

Every clip of a corpus is degraded under each named condition (clean, codecs and bit-rates,
noise at SNRs, telephone, reverberation, gain, resampling, ...) with a per-clip seed, then
preprocessed and scored as usual. Two ways to get honest scores:

- ``fixed``: a trained model (a shipped ``.onnx``) scores every clip. Honest only when the corpus
  is not the model's training data (a held-out corpus or split);
- ``grouped``: the model's *recipe* is retrained per grouped fold (clean + augmented training
  rows) and scores the degraded copies of its held-out clips. This is how the shipped model's
  robustness is measured on DEV, which it was trained on.

The test babble uses real clips of the corpus (a different seeded draw than training's), never
the clip under test.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from voxguard.augment import channel, codecs, noise, rawboost
from voxguard.errors import VoxguardError
from voxguard.evaluate import metrics
from voxguard.models.segmental import preprocess_from_card, recipe_from_card  # noqa: F401 (this module's API)

Degrade = Callable[[np.ndarray, int, int, Sequence[np.ndarray]], np.ndarray]


@dataclass(frozen=True)
class Condition:
    """A named, seeded degradation: ``apply(y, sr, seed, babble_sources) -> y``."""

    name: str
    group: str
    description: str
    apply: Degrade


def _codec(codec: str, kbps: int) -> Degrade:
    return lambda y, sr, seed, bank: codecs.codec_roundtrip(y, sr, codec, kbps * 1000)


def _noise(colour: str, snr: float) -> Degrade:
    return lambda y, sr, seed, bank: noise.add_noise(y, snr, seed=seed, colour=colour)


def _babble(snr: float) -> Degrade:
    def apply(y: np.ndarray, sr: int, seed: int, bank: Sequence[np.ndarray]) -> np.ndarray:
        return noise.mix_at_snr(y, noise.babble(bank, len(y), talkers=6, seed=seed), snr)

    return apply


def _music(snr: float) -> Degrade:
    return lambda y, sr, seed, bank: noise.mix_at_snr(y, noise.music_like(len(y), sr, seed=seed), snr)


def _reverb(rt60: float, method: str) -> Degrade:
    return lambda y, sr, seed, bank: channel.reverb(y, sr, rt60, method=method, seed=seed)


def _all_conditions() -> list[Condition]:
    c = Condition
    return [
        c("clean", "clean", "no degradation", lambda y, sr, seed, bank: y),
        c("mp3-32k", "codec", "MP3 32 kbit/s (LAME)", _codec("mp3", 32)),
        c("mp3-64k", "codec", "MP3 64 kbit/s (LAME)", _codec("mp3", 64)),
        c("mp3-128k", "codec", "MP3 128 kbit/s (LAME)", _codec("mp3", 128)),
        c("aac-32k", "codec", "AAC-LC 32 kbit/s", _codec("aac", 32)),
        c("aac-64k", "codec", "AAC-LC 64 kbit/s", _codec("aac", 64)),
        c("opus-12k", "codec", "Opus 12 kbit/s", _codec("opus", 12)),
        c("opus-32k", "codec", "Opus 32 kbit/s", _codec("opus", 32)),
        c("opus-64k", "codec", "Opus 64 kbit/s", _codec("opus", 64)),
        c(
            "vorbis-q0.7",
            "codec",
            "Ogg Vorbis, quality 0.7 (~40 kbit/s)",
            lambda y, sr, s, b: codecs.vorbis_roundtrip(y, sr, 0.7),
        ),
        c(
            "tel-ulaw",
            "telephone",
            "300-3400 Hz, 8 kHz, G.711 μ-law",
            lambda y, sr, s, b: codecs.telephone(y, sr, "ulaw"),
        ),
        c(
            "tel-alaw",
            "telephone",
            "300-3400 Hz, 8 kHz, G.711 A-law",
            lambda y, sr, s, b: codecs.telephone(y, sr, "alaw"),
        ),
        c(
            "tel-amr",
            "telephone",
            "300-3400 Hz, AMR-NB 12.2 kbit/s",
            lambda y, sr, s, b: codecs.telephone(y, sr, "amr_nb"),
        ),
        c("white-20dB", "noise", "white noise, 20 dB SNR", _noise("white", 20)),
        c("white-10dB", "noise", "white noise, 10 dB SNR", _noise("white", 10)),
        c("pink-10dB", "noise", "pink noise, 10 dB SNR", _noise("pink", 10)),
        c("babble-20dB", "noise", "6-talker babble from corpus speech, 20 dB SNR", _babble(20)),
        c("babble-10dB", "noise", "6-talker babble from corpus speech, 10 dB SNR", _babble(10)),
        c("music-10dB", "noise", "synthetic music, 10 dB SNR", _music(10)),
        c("reverb-0.3s", "reverb", "exponential-decay RIR, RT60 0.3 s", _reverb(0.3, "exponential")),
        c("reverb-0.8s", "reverb", "exponential-decay RIR, RT60 0.8 s", _reverb(0.8, "exponential")),
        c("room-0.5s", "reverb", "image-source shoebox room, RT60 0.5 s", _reverb(0.5, "room")),
        c("gain-x0.1", "level", "gain x0.1 (-20 dB)", lambda y, sr, s, b: channel.gain(y, 0.1)),
        c("gain-x10", "level", "gain x10 (+20 dB, float: no clipping)", lambda y, sr, s, b: channel.gain(y, 10.0)),
        c("clip-30%", "level", "hard clipping at 30 % of peak", lambda y, sr, s, b: channel.clip(y, 0.3)),
        c(
            "resample-48-8-16",
            "resample",
            "resampled 48 -> 8 -> 16 kHz",
            lambda y, sr, s, b: channel.resample_chain(y, sr),
        ),
        c(
            "loss-5%",
            "channel",
            "5 % of 20 ms packets lost",
            lambda y, sr, s, b: channel.packet_loss(y, sr, 0.05, seed=s),
        ),
        c("rawboost", "channel", "RawBoost LnL + ISD", lambda y, sr, s, b: rawboost.apply(y, sr, "lnl+isd", seed=s)),
    ]


CONDITIONS: dict[str, Condition] = {c.name: c for c in _all_conditions()}
CONDITION_SETS: dict[str, tuple[str, ...]] = {
    "default": tuple(CONDITIONS),
    "quick": ("clean", "mp3-64k", "opus-32k", "tel-ulaw", "babble-10dB", "white-10dB", "reverb-0.3s", "gain-x0.1"),
}


def resolve_conditions(spec: str) -> tuple[Condition, ...]:
    """A set name (``default``, ``quick``) or a comma-separated list of condition names."""
    names = CONDITION_SETS.get(spec) or tuple(n.strip() for n in spec.split(",") if n.strip())
    unknown = [n for n in names if n not in CONDITIONS]
    if unknown or not names:
        raise VoxguardError(
            f"unknown condition(s) {', '.join(unknown) or spec!r}; choose a set ({', '.join(CONDITION_SETS)}) "
            f"or names from: {', '.join(CONDITIONS)}"
        )
    if "clean" not in names:
        names = ("clean", *names)  # every ratio is against clean
    return tuple(CONDITIONS[n] for n in names)


# --------------------------------------------------------------------------- workers

_STATE: dict[str, Any] = {}


@dataclass(frozen=True)
class _Setup:
    conditions: tuple[str, ...]
    babble: tuple[str, ...]
    mode: str  # "features" (segment rows per condition) or "scores" (a fixed model's clip score)
    model_path: str | None = None
    features: Any = None  # SegmentalConfig
    preprocess: Any = None  # PreprocessConfig
    segment_s: float = 4.0
    hop_s: float = 2.0
    sample_rate: int = 16_000
    row_kind: str = "pooled"  # "frames" for frame models (CNN, GMM)


def _init(setup: _Setup) -> None:
    from voxguard.audio import load

    _STATE.clear()
    _STATE["setup"] = setup
    bank = []
    for path in setup.babble:
        try:
            bank.append((path, load(path, sr=setup.sample_rate).samples))
        except VoxguardError:
            continue
    _STATE["bank"] = bank
    if setup.mode == "scores":
        from voxguard.models.detector import Detector

        _STATE["detector"] = Detector.load(setup.model_path)


def _job(args: tuple[int, str, int]) -> dict[str, Any]:
    """Every condition of one clip: segment rows (``features``) or a clip score (``scores``)."""
    from voxguard.audio import load, preprocess
    from voxguard.models.segmental import clip_segments

    index, path, seed = args
    setup: _Setup = _STATE["setup"]
    out: dict[str, Any] = {"index": index, "ok": True, "rows": {}, "scores": {}, "errors": {}}
    try:
        audio = load(path, sr=setup.sample_rate)
    except VoxguardError as exc:
        return {"index": index, "ok": False, "code": exc.code, "message": exc.message}
    bank = [y for p, y in _STATE["bank"] if p != path]  # never babble made of the clip itself
    out["audio_s"] = audio.duration_s
    for name in setup.conditions:
        try:
            degraded = CONDITIONS[name].apply(audio.samples, audio.sample_rate, seed, bank)
            if setup.mode == "scores":
                detector = _STATE["detector"]
                y, sr, _ = detector.prepare_array(degraded, audio.sample_rate)
                out["scores"][name] = float(np.mean(detector.window_scores(y, sr).scores))
            else:
                pre = preprocess(degraded, audio.sample_rate, setup.preprocess)
                rows = clip_segments(
                    pre.samples, pre.sample_rate, setup.features, setup.segment_s, setup.hop_s, setup.row_kind
                )
                out["rows"][name] = rows.astype(np.float32)
        except VoxguardError as exc:
            out["errors"][name] = f"{exc.code}: {exc.message}"
    return out


def _run(dataset: Any, setup: _Setup, *, seed: int, workers: int, progress: bool) -> list[dict[str, Any]]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    jobs = [(i, str(item.path), seed * 100_003 + i) for i, item in enumerate(dataset)]
    results: list[dict[str, Any]] = []
    columns = (
        TextColumn(f"{len(setup.conditions)} conditions"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[audio]}"),
        TimeRemainingColumn(),
    )
    audio_s = 0.0
    with Progress(*columns, disable=not progress) as bar:
        task = bar.add_task("robustness", total=len(jobs), audio="0 min audio")
        pool = None
        if workers > 1:
            context = multiprocessing.get_context("spawn")
            pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_init, initargs=(setup,))
        else:
            _init(setup)
        try:
            for res in pool.map(_job, jobs, chunksize=4) if pool else map(_job, jobs):
                audio_s += res.get("audio_s", 0.0)
                results.append(res)
                bar.update(task, advance=1, audio=f"{audio_s / 60:.1f} min audio x {len(setup.conditions)}")
        finally:
            if pool is not None:
                pool.shutdown()
    return results


# --------------------------------------------------------------------------- evaluation


@dataclass
class RobustnessResult:
    """Clip scores per condition (NaN where a clip was not scored) and how they were obtained."""

    conditions: tuple[Condition, ...]
    scores: dict[str, np.ndarray]
    labels: np.ndarray
    mode: str
    model: str
    failures: list[tuple[int, str]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def rows(self) -> list[dict[str, Any]]:
        """One row per condition: EER, AUC, minDCF, ratio to clean, verdict flips against clean."""
        clean = self.scores["clean"]
        ok = ~np.isnan(clean)
        clean_eer = metrics.eer(self.labels[ok], clean[ok])
        out = []
        for cond in self.conditions:
            s = self.scores[cond.name]
            # The same clips in every row: those scored clean and under the condition (added noise can
            # make a clip with too little speech "speechy" enough to score).
            tested = ~np.isnan(s) & ok
            y = self.labels[tested]
            e = metrics.eer(y, s[tested])
            # Flips: verdicts at the clean EER threshold that change under the condition.
            flips = float(np.mean((s[tested] >= clean_eer.threshold) != (clean[tested] >= clean_eer.threshold)))
            out.append(
                {
                    "condition": cond.name,
                    "group": cond.group,
                    "clips": int(tested.sum()),
                    "eer": e.eer,
                    "eer_vs_clean": e.eer / clean_eer.eer if clean_eer.eer > 0 else float("nan"),
                    "auc": metrics.roc_auc(y, s[tested]),
                    "min_dcf": metrics.min_dcf(y, s[tested]).min_dcf,
                    "flips_vs_clean": flips,
                    "description": cond.description,
                }
            )
        return out


def evaluate_fixed(
    model_path: str | Path,
    dataset: Any,
    conditions: Sequence[Condition],
    *,
    seed: int = 0,
    workers: int = 2,
    progress: bool = True,
) -> RobustnessResult:
    """Score every clip under every condition with a trained model (see the module notes on honesty)."""
    from voxguard.models.detector import Detector
    from voxguard.models.segmental import babble_paths

    detector = Detector.load(model_path)
    setup = _Setup(
        conditions=tuple(c.name for c in conditions),
        babble=babble_paths(dataset, seed=seed + 1),
        mode="scores",
        model_path=str(model_path),
        sample_rate=detector.sample_rate or 16_000,
    )
    results = _run(dataset, setup, seed=seed, workers=workers, progress=progress)
    n = len(dataset)
    scores = {c.name: np.full(n, np.nan) for c in conditions}
    failures = []
    for res in results:
        if not res["ok"]:
            failures.append((res["index"], f"{res['code']}: {res['message']}"))
            continue
        for name, value in res["scores"].items():
            scores[name][res["index"]] = value
        failures.extend((res["index"], f"{k}: {v}") for k, v in res["errors"].items())
    return RobustnessResult(tuple(conditions), scores, dataset.labels(), "fixed", detector.name, failures)


def degraded_rows(
    dataset: Any,
    model: Any,
    conditions: Sequence[Condition],
    preprocess_config: Any,
    *,
    seed: int = 0,
    workers: int = 2,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Every clip under every condition, as ``model``'s input rows (its view, segments and row kind).

    One dict per clip: ``index``, ``ok``, ``rows`` (condition -> rows), ``errors``; the babble is
    drawn with ``seed + 1``, never from the clip itself.
    """
    from voxguard.models.segmental import babble_paths

    setup = _Setup(
        conditions=tuple(c.name for c in conditions),
        babble=babble_paths(dataset, seed=seed + 1),
        mode="features",
        features=model.features,
        preprocess=preprocess_config,
        segment_s=model.segment_s,
        hop_s=model.hop_s,
        sample_rate=preprocess_config.sample_rate,
        row_kind=getattr(model, "row_kind", "pooled"),
    )
    return _run(dataset, setup, seed=seed, workers=workers, progress=progress)


def evaluate_grouped(
    dataset: Any,
    model: Any,
    conditions: Sequence[Condition],
    *,
    policy: str = "v1",
    augment: bool = True,
    folds: int = 5,
    seed: int = 0,
    workers: int = 2,
    name: str = "model",
    progress: bool = True,
    log: Callable[[str], None] = lambda _m: None,
    train_table: Any = None,
    condition_rows: list[dict[str, Any]] | None = None,
    preprocess_config: Any = None,
) -> RobustnessResult:
    """Retrain ``model`` (a :class:`SegmentalClassifier` recipe) per grouped fold; score degraded test clips.

    ``train_table`` (from :func:`build_segment_table`) and ``condition_rows`` (from an earlier call's
    ``extra["condition_rows"]``) can be passed in to compare recipes on the same degraded clips
    without recomputing them. ``preprocess_config``: the recipe's (default: the canonical one).
    """
    from voxguard.audio import PreprocessConfig
    from voxguard.datasets.splits import group_kfold
    from voxguard.models.segmental import build_segment_table, clip_scores

    labels = dataset.labels()
    n = len(labels)
    start = time.perf_counter()
    pre = preprocess_config or PreprocessConfig()
    if train_table is None:
        train_table = build_segment_table(
            dataset,
            model,
            preprocess_config=pre,
            augment=augment,
            policy=policy,
            seed=seed,
            workers=workers,
            progress=progress,
        )
    if condition_rows is None:
        condition_rows = degraded_rows(dataset, model, conditions, pre, seed=seed, workers=workers, progress=progress)
    tables: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    failures: list[tuple[int, str]] = []
    for cond in conditions:
        X, clip = [], []
        for res in condition_rows:
            if res["ok"] and cond.name in res["rows"] and len(res["rows"][cond.name]):
                X.append(res["rows"][cond.name])
                clip.append(np.full(len(res["rows"][cond.name]), res["index"]))
        tables[cond.name] = (np.vstack(X), np.concatenate(clip))
    for res in condition_rows:
        if not res["ok"]:
            failures.append((res["index"], f"{res['code']}: {res['message']}"))
        else:
            failures.extend((res["index"], f"{k}: {v}") for k, v in res.get("errors", {}).items())
    scores = {c.name: np.full(n, np.nan) for c in conditions}
    for k, split in enumerate(group_kfold(dataset, folds, seed=seed)):
        train = np.concatenate([split.train, split.validation])
        rows = np.isin(train_table.clip, train)
        groups = dataset.groups("utt_group")[train_table.clip[rows]]
        fitted = model.clone().fit(train_table.X[rows], train_table.y[rows], groups)
        for cond in conditions:
            X, clip = tables[cond.name]
            test_rows = np.isin(clip, split.test)
            fold_scores = clip_scores(fitted.decision_function(X[test_rows]), clip[test_rows], n)
            scores[cond.name][split.test] = fold_scores[split.test]
        log(f"{name}: fold {k + 1}/{folds} scored under {len(conditions)} conditions")
    result = RobustnessResult(tuple(conditions), scores, labels, "grouped", name, failures)
    result.extra = {
        "condition_rows": condition_rows,
        "train_table": train_table,
        "policy": policy if augment else "none",
        "folds": folds,
        "wall_s": time.perf_counter() - start,
    }
    return result


def route_grouped(
    dataset: Any,
    experts: Sequence[RobustnessResult],
    expert_labels: Sequence[str],
    class_experts: Mapping[str, Sequence[str]],
    router: Any,
    conditions: Sequence[Condition],
    *,
    preprocess_config: Any = None,
    folds: int = 5,
    seed: int = 0,
    workers: int = 2,
    name: str = "routed",
    progress: bool = True,
) -> RobustnessResult:
    """A routed model's grouped robustness: its experts' results mixed by a router retrained per fold.

    ``experts``: :func:`evaluate_grouped` results of the experts' recipes (same ``folds`` and
    ``seed``), in the order of ``expert_labels``. The router (a
    :class:`~voxguard.models.routing.ConditionRouter`) is trained per fold on the other folds'
    clips, clean and degraded by its classes' policies, and gives clip-mean posteriors of every
    held-out clip under every condition; experts are standardised on their clean held-out scores
    (no labels) as :func:`~voxguard.models.routing.fit_routing` does in training.
    """
    from voxguard.audio import PreprocessConfig
    from voxguard.evaluate.training import fold_routers, router_rows, router_tables
    from voxguard.models.routing import fit_routing

    pre = preprocess_config or PreprocessConfig()
    labels = dataset.labels()
    n, k = len(labels), len(router.classes)
    training_rows = router_rows(router_tables(dataset, router, pre, seed=seed, workers=workers, progress=progress))
    rows = degraded_rows(dataset, router, conditions, pre, seed=seed, workers=workers, progress=progress)
    rows = [r for r in rows if r["ok"]]
    posteriors = {c.name: np.full((n, k), np.nan) for c in conditions}
    for split, fitted in fold_routers(dataset, training_rows, router, folds=folds, seed=seed):
        test = set(split.test.tolist())
        for res in rows:
            if res["index"] not in test:
                continue
            for cond in conditions:
                segment_rows = res["rows"].get(cond.name)
                if segment_rows is not None and len(segment_rows):
                    finite = segment_rows[np.isfinite(segment_rows).all(axis=1)]
                    if len(finite):
                        posteriors[cond.name][res["index"]] = fitted.predict_proba(finite).mean(axis=0)
    weights = fit_routing(
        np.column_stack([e.scores["clean"] for e in experts]), expert_labels, class_experts, router.classes
    )
    scores = {
        c.name: weights.apply(np.column_stack([e.scores[c.name] for e in experts]), posteriors[c.name])
        for c in conditions
    }
    failures = sorted({f for e in experts for f in e.failures})
    return RobustnessResult(tuple(conditions), scores, labels, "grouped", name, failures)


def fuse_grouped(
    dataset: Any,
    members: Sequence[RobustnessResult],
    *,
    folds: int = 5,
    seed: int = 0,
    name: str = "fusion",
    fit_conditions: Callable[[str], Sequence[str]] | None = None,
) -> RobustnessResult:
    """Logistic-regression fusion of members' grouped robustness scores, stacked per fold.

    The members must come from :func:`evaluate_grouped` with the same ``folds`` and ``seed`` (the
    same grouped folds). For each fold the weights are fitted on the *clean* out-of-fold scores of
    the other folds' clips (as a shipped fusion is fitted on clean scores), then applied to every
    condition's member scores of this fold's clips. ``fit_conditions`` maps a condition's name to
    the conditions whose scores (of the other folds) fit the weights applied under it instead,
    e.g. clean plus every other condition (``scripts/fuse_degraded.py``).
    """
    from voxguard.datasets.splits import group_kfold
    from voxguard.evaluate.fusion import fit_fusion

    labels = dataset.labels()
    conditions = members[0].conditions
    stacked = {c.name: np.column_stack([m.scores[c.name] for m in members]) for c in conditions}
    scores = {c.name: np.full(len(labels), np.nan) for c in conditions}
    for split in group_kfold(dataset, folds, seed=seed):
        train = np.ones(len(labels), dtype=bool)
        train[split.test] = False
        fitted: dict[tuple[str, ...], Any] = {}  # one fit per distinct set of fitting conditions
        for cond in conditions:
            fit_on = tuple(fit_conditions(cond.name)) if fit_conditions is not None else ("clean",)
            if fit_on not in fitted:
                rows = [train & np.isfinite(stacked[f]).all(axis=1) for f in fit_on]
                fitted[fit_on] = fit_fusion(
                    np.vstack([stacked[f][r] for f, r in zip(fit_on, rows, strict=True)]),
                    np.concatenate([labels[r] for r in rows]),
                    [m.model for m in members],
                )
            # NaN where any member is NaN
            scores[cond.name][split.test] = fitted[fit_on].apply(stacked[cond.name][split.test])
    failures = sorted({f for m in members for f in m.failures})
    result = RobustnessResult(tuple(conditions), scores, labels, "grouped", name, failures)
    result.extra = {"policy": members[0].extra.get("policy"), "folds": folds, "members": [m.model for m in members]}
    return result


# --------------------------------------------------------------------------- recipe and report


def comparison_rows(results: Sequence[RobustnessResult]) -> list[dict[str, Any]]:
    """Condition × result EER table (one EER column per result, keyed by its label)."""
    per = [{r["condition"]: r for r in res.rows()} for res in results]
    out = []
    for cond in results[0].conditions:
        row: dict[str, Any] = {"condition": cond.name, "group": cond.group}
        for res, rows in zip(results, per, strict=True):
            row[f"EER {res.extra.get('label', res.model)}"] = rows[cond.name]["eer"]
            row[f"x clean {res.extra.get('label', res.model)}"] = rows[cond.name]["eer_vs_clean"]
        out.append(row)
    return out


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    """Rows as a Markdown table; ``eer`` columns in percent, ratios with two decimals."""

    def cell(key: str, value: Any) -> str:
        if isinstance(value, float):
            if np.isnan(value):
                return "—"
            if key.startswith("EER") or key in ("eer", "flips_vs_clean"):
                return f"{value * 100:.1f} %"
            return f"{value:.2f}" if "clean" in key or key == "eer_vs_clean" else f"{value:.3f}"
        return str(value)

    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "|".join("---" for _ in keys) + "|"]
    lines += ["| " + " | ".join(cell(k, r[k]) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def plot_condition_eers(results: Sequence[RobustnessResult]) -> bytes:
    """Bar chart: EER per condition, one bar per result, dashed lines at 2x each clean EER. PNG bytes."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [c.name for c in results[0].conditions]
    width = 0.8 / len(results)
    fig, ax = plt.subplots(figsize=(max(7.0, 0.42 * len(names) + 2), 4.2), layout="constrained")
    for k, res in enumerate(results):
        rows = {r["condition"]: r for r in res.rows()}
        eers = [rows[n]["eer"] * 100 for n in names]
        x = np.arange(len(names)) + (k - (len(results) - 1) / 2) * width
        bars = ax.bar(x, eers, width, label=str(res.extra.get("label", res.model)))
        ax.axhline(2 * rows["clean"]["eer"] * 100, color=bars.patches[0].get_facecolor(), ls="--", lw=1)
    ax.set_xticks(np.arange(len(names)), names, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("EER (%)")
    ax.set_title("EER per condition (dashed: 2x the clean EER)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def write_scores(results: Sequence[RobustnessResult], dataset: Any, path: str | Path) -> Path:
    """Every clip's score per result and condition, one row per clip (CSV).

    Columns: ``id``, ``label`` (1 = spoof), ``family``, then ``RESULT:CONDITION`` for every result
    and condition (empty where the clip was not scored). The ids and the format are those of
    ``voxguard compare --scores-out``, so ``voxguard corpus audit --detector-scores`` and
    ``voxguard report`` read it; scores under a condition are held-out scores like the clean ones.
    """
    import csv

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    columns = [
        (f"{res.extra.get('label', res.model)}:{cond.name}", res.scores[cond.name])
        for res in results
        for cond in res.conditions
    ]
    ids, families = dataset.ids(), dataset.column("family")
    labels = results[0].labels
    with open(out, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "label", "family", *(name for name, _ in columns)])
        for i in range(len(labels)):
            values = ("" if np.isnan(s[i]) else f"{s[i]:.6g}" for _, s in columns)
            writer.writerow([ids[i], int(labels[i]), families[i], *values])
    return out


def write_robustness_report(results: Sequence[RobustnessResult], dataset: Any, out_dir: str | Path) -> Path:
    """``report.html`` (+ ``summary.md``, ``robustness.md``, ``metrics.json``, PNGs) for one or more results.

    The main score plots pool every condition of the first result (grouped per condition); the
    robustness sections give each result's per-condition table and the EER bar chart.
    """
    import base64

    from voxguard.evaluate.report import ReportSection, write_report

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    first = results[0]
    ids, labels, scores, conds = [], [], [], []
    for cond in first.conditions:
        s = first.scores[cond.name]
        idx = np.flatnonzero(~np.isnan(s))
        ids += [str(dataset[int(i)].path) for i in idx]
        labels.append(first.labels[idx])
        scores.append(s[idx])
        conds += [cond.name] * len(idx)
    png = plot_condition_eers(results)
    (out / "condition_eer.png").write_bytes(png)
    b64 = base64.b64encode(png).decode("ascii")
    sections = [
        ReportSection(
            title="EER per condition",
            html=f'<figure><img src="data:image/png;base64,{b64}" alt="EER per condition" '
            'data-file="condition_eer.png"><figcaption>EER per condition</figcaption></figure>',
            markdown="![EER per condition](condition_eer.png)",
        )
    ]
    md = [f"# Robustness: {', '.join(str(r.extra.get('label', r.model)) for r in results)}\n"]
    if len(results) > 1:
        table = comparison_rows(results)
        sections.append(ReportSection(title="Comparison", table=table))
        md += ["## Comparison (EER per condition)\n", markdown_table(table), ""]
    for res in results:
        label = str(res.extra.get("label", res.model))
        rows = res.rows()
        sections.append(ReportSection(title=f"{label}: per condition ({res.mode})", table=rows))
        md += [f"## {label} ({res.mode})\n", markdown_table(rows), ""]
        if res.failures:
            md.append(f"{len(res.failures)} clip/condition failures (first: {res.failures[0][1]})\n")
    (out / "robustness.md").write_text("\n".join(md) + "\n")
    paths = write_report(
        {"id": ids, "label": np.concatenate(labels), "score": np.concatenate(scores), "condition": conds},
        out,
        title=f"{first.extra.get('label', first.model)}: scores under every condition ({first.mode})",
        group_columns=("condition",),
        extra_sections=sections,
        max_groups=100,
    )
    return paths.html
