"""Study: does the 8-10 kHz band tell fakes from real speech better than 4-8 kHz on *unseen* families?

Every voxguard detector analyses speech at 16 kHz, so nothing above 8 kHz is ever seen. Many neural
vocoders leave artefacts above 8 kHz. This study measures how much that band is worth, on the DEV
clips that have it:

- lossless clips with a native rate of at least 22.05 kHz;
- resampled to 22.05 kHz (soxr);
- frames within 35 dB of the loudest kept.

Three views, each with 20 linear triangular filters:
- 0-4 kHz;
- 4-8 kHz;
- 8-9.8 kHz, which stays under the resampler's transition band.

Each view's features are the cepstra's mean and std, the std of their deltas, and the band's
spectral flatness mean and std (62 numbers). The model is a standardised logistic regression.

Protocol, leave-one-family-out: each fake family with at least 5 clips is held out in turn,
together with a fifth of the real utterance groups (a fixed hash); the model is trained on the
rest. Two subsets:
- ``wide``: every such clip;
- ``matched``: only clips whose native rate is 22.05 or 24 kHz, so that real clips are not the
  ones a resampler band-limited (DEV's 44.1/48-kHz clips are all real).

    OMP_NUM_THREADS=2 .venv/bin/python scripts/wideband_study.py --corpus ../shared/corpus/manifest.csv
    OMP_NUM_THREADS=1 .venv/bin/python scripts/wideband_study.py --corpus ../shared/corpus/manifest.csv --codecs

``--codecs`` also round-trips every clip through MP3 64k, AAC 32k and Opus 32k (at 22.05 kHz) and
reports LOFO with the model trained on clean clips only, and trained on clean plus one copy per
codec of both classes (about 5 minutes on 2 cores).

A study, not a detector: the subset is small (147 real clips in ``matched``), and reals and fakes
come from different datasets, so the numbers are leads, not product figures (docs/results.md).
"""

from __future__ import annotations

import argparse
import csv
import zlib
from pathlib import Path

import numpy as np
import scipy.fft

SR = 22_050
N_FFT = 512
HOP = 220  # 10 ms
VIEWS = {"0-4k": (100.0, 4000.0), "4-8k": (4000.0, 8000.0), "8-10k": (8000.0, 9800.0)}
LOSSY = ("opus", "vorbis", "mp3", "aac")


def _filterbank(lo: float, hi: float, n: int = 20) -> np.ndarray:
    freqs = np.fft.rfftfreq(N_FFT, 1 / SR)
    edges = np.linspace(lo, hi, n + 2)
    a, c, b = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    return np.clip(np.minimum((freqs - a) / (c - a), (b - freqs) / (b - c)), 0, None).astype(np.float32)


def clip_features(path: Path) -> dict[str, np.ndarray]:
    """Per view: cepstral mean, std, delta std (20 each), flatness mean and std -> (62,)."""
    from voxguard.audio import load
    from voxguard.audio.load import resample

    audio = load(path, sr=None)
    y = resample(audio.samples, audio.sample_rate, SR)
    window = np.hanning(N_FFT + 1)[:-1].astype(np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(np.pad(y, N_FFT // 2), N_FFT)[::HOP] * window
    power = np.abs(scipy.fft.rfft(frames, axis=1)) ** 2 + 1e-12
    level = 10 * np.log10(power.sum(axis=1))
    power = power[level > level.max() - 35]
    freqs = np.fft.rfftfreq(N_FFT, 1 / SR)
    out = {}
    for name, (lo, hi) in VIEWS.items():
        cep = scipy.fft.dct(np.log(power @ _filterbank(lo, hi).T + 1e-10), type=2, norm="ortho", axis=1)
        band = power[:, (freqs >= lo) & (freqs < hi)]
        flat = np.exp(np.log(band).mean(axis=1)) / band.mean(axis=1)
        delta = np.diff(cep, axis=0)
        out[name] = np.concatenate([cep.mean(0), cep.std(0), delta.std(0), [flat.mean(), flat.std()]])
    return out


CODECS = {"mp3-64k": ("mp3", 64_000), "aac-32k": ("aac", 32_000), "opus-32k": ("opus", 32_000)}


def codec_features(path: Path) -> dict[str, dict[str, np.ndarray]]:
    """:func:`clip_features` of the clip after each codec round trip (at 22.05 kHz)."""
    import tempfile

    import soundfile as sf

    from voxguard.audio import load
    from voxguard.audio.load import resample
    from voxguard.augment.codecs import codec_roundtrip

    audio = load(path, sr=None)
    y = resample(audio.samples, audio.sample_rate, SR)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (codec, bitrate) in CODECS.items():
            f = Path(tmp) / f"{name}.wav"
            sf.write(f, codec_roundtrip(y, SR, codec, bitrate), SR, subtype="FLOAT")
            out[name] = clip_features(f)
    return out


def eer(y: np.ndarray, s: np.ndarray) -> float:
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(y, s)
    i = int(np.nanargmin(np.abs(1 - tpr - fpr)))
    return 100 * (fpr[i] + 1 - tpr[i]) / 2


def lofo(
    X: np.ndarray,
    label: np.ndarray,
    family: np.ndarray,
    group: np.ndarray,
    extra_train: list[np.ndarray] = (),
    tests: dict[str, np.ndarray] | None = None,
) -> dict[str, dict[str, float]]:
    """EER per held-out family, per test condition (``tests``: condition -> features; default
    ``{"clean": X}``). ``extra_train``: more feature matrices of the same clips (augmented copies)
    added to each fold's training rows."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    tests = tests or {"clean": X}
    real_fold = np.array([zlib.crc32(g.encode()) % 5 for g in group])
    families = [f for f in sorted(set(family[label == 1])) if (family == f).sum() >= 5]
    out: dict[str, dict[str, float]] = {cond: {} for cond in tests}
    for j, fam in enumerate(families):
        test = (family == fam) | ((label == 0) & (real_fold == j % 5))
        model = make_pipeline(StandardScaler(), LogisticRegression(C=0.3, class_weight="balanced", max_iter=3000))
        model.fit(np.vstack([X[~test], *(E[~test] for E in extra_train)]), np.tile(label[~test], 1 + len(extra_train)))
        for cond, T in tests.items():
            out[cond][fam] = eer(label[test], model.decision_function(T[test]))
    return out


def _summary(r: dict[str, float]) -> str:
    worst = max(r, key=r.get)
    return f"{np.mean(list(r.values())):.1f} | {r[worst]:.1f} ({worst})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--codecs", action="store_true", help="also measure under MP3/AAC/Opus round trips")
    args = parser.parse_args()
    rows = [
        r
        for r in csv.DictReader(args.corpus.open())
        if int(r["sample_rate"]) >= SR and not any(k in r["codec"].lower() for k in LOSSY)
    ]
    paths = [args.corpus.parent / r["path"] for r in rows]
    feats = [clip_features(p) for p in paths]
    label = np.array([r["label"] == "spoof" for r in rows], dtype=int)
    family = np.array([r["family"] for r in rows])
    group = np.array([r["utt_group"] for r in rows])
    rate = np.array([int(r["sample_rate"]) for r in rows])

    def stack(fs: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        views = {name: np.array([f[name] for f in fs]) for name in VIEWS}
        views["4-8k + 8-10k"] = np.hstack([views["4-8k"], views["8-10k"]])
        return views

    clean = stack(feats)
    coded: dict[str, dict[str, np.ndarray]] = {}
    if args.codecs:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(2) as pool:
            per_clip = list(pool.map(codec_features, paths, chunksize=8))
        coded = {c: stack([p[c] for p in per_clip]) for c in CODECS}
    for subset, keep in (("wide", np.ones(len(rows), bool)), ("matched", np.isin(rate, (22_050, 24_000)))):
        n_real, n_fake = int((label[keep] == 0).sum()), int(label[keep].sum())
        print(f"\n## {subset}: {n_real} real, {n_fake} fake clips\n")
        print("| view | LOFO mean EER % | worst family |")
        print("| --- | --- | --- |")
        args_k = (label[keep], family[keep], group[keep])
        for name, X in clean.items():
            print(f"| {name} | {_summary(lofo(X[keep], *args_k)['clean'])} |")
        if not coded:
            continue
        print(f"\n### {subset}, under codecs: LOFO mean / worst family EER %\n")
        print("| view | training | " + " | ".join(["clean", *CODECS]) + " |")
        print("| --- | --- | " + " | ".join("---" for _ in range(1 + len(CODECS))) + " |")
        for name, X in clean.items():
            if name == "0-4k":
                continue
            tests = {"clean": X[keep], **{c: coded[c][name][keep] for c in CODECS}}
            for training, extra in (("clean", []), ("clean + codecs", [coded[c][name][keep] for c in CODECS])):
                r = lofo(X[keep], *args_k, extra_train=extra, tests=tests)
                cells = " | ".join(f"{np.mean(list(v.values())):.1f} / {max(v.values()):.1f}" for v in r.values())
                print(f"| {name} | {training} | {cells} |")


if __name__ == "__main__":
    main()
