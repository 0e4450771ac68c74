"""Measure the Perth watermark check (``voxguard scan --watermark``) on a corpus.

Two questions, both on the scanner's path (every clip decoded at 16 kHz, as ``voxguard scan``
does, then checked):

1. **False marks.** The confidence on every clip of the corpus as it is (no clip there is
   marked): how many cross the threshold, real and fake separately.
2. **Detection under degradations.** A seeded sample of clips is marked as Chatterbox marks its
   output (resampled to 24 kHz, Perth's embedder at 32 kHz, back to 24 kHz), then degraded with
   ``voxguard robustness`` conditions; the same clips unmarked go through the same conditions.
   Reports the share detected (marked) and falsely detected (unmarked) per condition.

The embedder (Perth's encoder) is *not* shipped: this script rebuilds it from the
``resemble-perth`` wheel (downloaded from PyPI unless ``--wheel``; reading the checkpoint needs
torch), so it is a development command::

    OMP_NUM_THREADS=1 .venv/bin/python scripts/watermark_eval.py --corpus ../shared/corpus/manifest.csv \\
        --out reports/watermark --n-marked 120 --workers 2

Writes ``scores.csv`` (one row per clip and condition), ``summary.md`` and ``confidence.png``.

``--splices N`` measures the *passage* rule instead (a marked stretch inside a longer recording):
N recordings of about 60 s, each concatenated from random DEV clips at 16 kHz, are scanned with
``Scanner(watermark=True)`` twice: as they are, and with one clip of 3-10 s replaced by its marked
version. It writes ``splices.csv`` (one row per timeline segment) and ``splices.md``: for each
candidate rule (segment confidence threshold, consecutive segments), the share of unmarked
recordings with a false passage and of marked ones whose passage is found.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import scipy.fft

sys.path.insert(0, str(Path(__file__).resolve().parent))
from export_perth import encoder_graph, fetch_wheel, read_checkpoint, subband_bins

CHATTERBOX_RATE = 24_000
DEFAULT_CONDITIONS = (
    "clean,mp3-64k,mp3-32k,aac-32k,opus-32k,opus-12k,tel-ulaw,tel-amr,babble-10dB,white-10dB,"
    "reverb-0.3s,resample-48-8-16,gain-x0.1,loss-5%"
)
_STATE: dict = {}


class PerthEmbedder:
    """Perth's ``apply_watermark`` in NumPy + ONNX Runtime (magnitudes changed, phases kept)."""

    def __init__(self, encoder_path: Path, decoder) -> None:
        import onnxruntime as ort

        self.dec = decoder  # a voxguard PerthDecoder: same front end
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        self.session = ort.InferenceSession(str(encoder_path), options, providers=["CPUExecutionProvider"])

    def mark(self, y: np.ndarray, sr: int) -> np.ndarray:
        from voxguard.audio.load import resample

        d = self.dec
        x = resample(y, sr, d.sample_rate)
        half = d.n_fft // 2
        xp = np.pad(x, half, mode="reflect")
        frames = np.lib.stride_tricks.sliding_window_view(xp, d.n_fft)[:: d.hop]
        spec = scipy.fft.rfft(frames * d._window, axis=1).T  # (bins, frames)
        mag = np.abs(spec)
        norm = (20 * np.log10(np.maximum(mag, 1e-9)) - d.floor_db) / (d.headroom_db - d.floor_db)
        energy = norm.sum(axis=0)
        mask = (energy > energy.max() * d.mask_fraction).astype(np.float32)
        residual = self.session.run(["residual"], {"subband": norm[None, : d.subband].astype(np.float32)})[0][0]
        norm[: d.subband] += residual * mask
        db = norm * (d.headroom_db - d.floor_db) + d.floor_db
        new = (10.0 ** np.minimum(db / 20, 10)) * np.exp(1j * np.angle(spec))
        # inverse STFT as torch.istft(center=True): overlap-add, divided by the summed squared window
        seg = scipy.fft.irfft(new.T, n=d.n_fft, axis=1) * d._window
        n_out = d.n_fft + d.hop * (seg.shape[0] - 1)
        out, env = np.zeros(n_out), np.zeros(n_out)
        for i in range(d.n_fft // d.hop + 1):  # a handful of strided adds, not a loop over frames
            rows = seg[i :: d.n_fft // d.hop + 1]
            starts = (np.arange(i, seg.shape[0], d.n_fft // d.hop + 1) * d.hop)[:, None] + np.arange(d.n_fft)
            np.add.at(out, starts.ravel(), rows.ravel())
            np.add.at(env, starts.ravel(), np.tile(d._window**2, len(rows)))
        out = (out / np.maximum(env, 1e-11))[half : n_out - half]
        return resample(out.astype(np.float32), d.sample_rate, sr)


def _init(encoder_path: str) -> None:
    from voxguard.evaluate.robustness import CONDITIONS
    from voxguard.models.watermark import PerthDecoder

    dec = PerthDecoder()
    _STATE.update(dec=dec, emb=PerthEmbedder(Path(encoder_path), dec), conditions=CONDITIONS)


def _job(args: tuple) -> list[dict]:
    path, label, family, conditions, marked, seed, bank_paths = args
    from voxguard.audio import load
    from voxguard.audio.load import resample
    from voxguard.errors import VoxguardError

    dec = _STATE["dec"]
    rows = []
    try:
        audio = load(path, sr=None)
        y, sr = audio.samples, audio.sample_rate
        if bank_paths and "bank" not in _STATE:  # babble talkers, loaded once per worker
            _STATE["bank"] = [load(p, sr=16_000).samples for p in bank_paths]
        bank = _STATE.get("bank", [])
        versions = {"no": resample(y, sr, CHATTERBOX_RATE)}
        if marked:
            versions["yes"] = _STATE["emb"].mark(versions["no"], CHATTERBOX_RATE)
        for name in conditions:
            cond = _STATE["conditions"][name]
            for mark, z in versions.items():
                z16 = resample(z, CHATTERBOX_RATE, 16_000)  # degrade at the scanner's rate
                degraded = cond.apply(z16, 16_000, seed, bank)
                check = dec.check(degraded, 16_000)
                rows.append(
                    {
                        "path": path,
                        "label": label,
                        "family": family,
                        "condition": name,
                        "marked": mark,
                        "confidence": check.confidence,
                        "detected": int(check.detected),
                    }
                )
    except VoxguardError as exc:
        rows.append(
            {
                "path": path,
                "label": label,
                "family": family,
                "condition": "error",
                "marked": "",
                "confidence": None,
                "detected": 0,
                "error": exc.message,
            }
        )
    return rows


SPLICE_RECORDING_S = 60.0


def _splice_job(args: tuple) -> list[dict]:
    rec, paths, marked_index, _seed = args
    from voxguard.audio import load
    from voxguard.audio.load import resample
    from voxguard.scan import Scanner

    if "scanner" not in _STATE:
        _STATE["scanner"] = Scanner(watermark=True)
    parts = [load(p, sr=16_000).samples for p in paths]
    marked = list(parts)
    z = resample(parts[marked_index], 16_000, CHATTERBOX_RATE)
    marked[marked_index] = resample(_STATE["emb"].mark(z, CHATTERBOX_RATE), CHATTERBOX_RATE, 16_000)
    start = sum(len(p) for p in parts[:marked_index]) / 16_000
    span = (start, start + len(marked[marked_index]) / 16_000)
    rows = []
    for version, pieces in (("no", parts), ("yes", marked)):
        result = _STATE["scanner"].scan(np.concatenate(pieces), 16_000)
        tl = result.timeline
        for a, b, c in zip(tl.starts_s, tl.ends_s, tl.watermark, strict=True):
            rows.append(
                {
                    "recording": rec,
                    "marked": version,
                    "start_s": round(float(a), 3),
                    "end_s": round(float(b), 3),
                    "confidence": None if not np.isfinite(c) else float(c),
                    "mark_start_s": round(span[0], 3),
                    "mark_end_s": round(span[1], 3),
                    "file_detected": int(result.watermark.detected),
                }
            )
    return rows


def passages(starts: np.ndarray, ends: np.ndarray, conf: np.ndarray, threshold: float, k: int) -> list[tuple]:
    """Runs of at least ``k`` consecutive segments with confidence >= threshold: (start_s, end_s)."""
    hit = np.nan_to_num(conf, nan=0.0) >= threshold
    out, i = [], 0
    while i < len(hit):
        if hit[i]:
            j = i
            while j + 1 < len(hit) and hit[j + 1]:
                j += 1
            if j - i + 1 >= k:
                out.append((float(starts[i]), float(ends[j])))
            i = j + 1
        else:
            i += 1
    return out


def splice_study(args: argparse.Namespace) -> None:
    import onnx

    rows = list(csv.DictReader(args.corpus.open()))
    root = args.corpus.parent
    rng = np.random.default_rng(args.seed)
    clips = [(str(root / r["path"]), float(r["duration_s"])) for r in rows if float(r["duration_s"]) >= 1.0]
    insertable = [i for i, (_, d) in enumerate(clips) if 3.0 <= d <= 10.0]
    jobs = []
    for rec in range(args.splices):
        picked, total = [], 0.0
        while total < SPLICE_RECORDING_S:
            i = int(rng.integers(len(clips)))
            picked.append(clips[i][0])
            total += clips[i][1]
        at = int(rng.integers(len(picked)))
        picked[at] = clips[int(rng.choice(insertable))][0]
        jobs.append((rec, picked, at, args.seed + rec))
    args.out.mkdir(parents=True, exist_ok=True)
    out_rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or fetch_wheel(Path(tmp))
        weights, hp, _ = read_checkpoint(wheel, "encoder")
        enc_path = Path(tmp) / "perth-encoder.onnx"
        onnx.save(encoder_graph(weights, subband_bins(hp)), enc_path)
        t0 = time.perf_counter()
        with ProcessPoolExecutor(args.workers, initializer=_init, initargs=(str(enc_path),)) as pool:
            for k, res in enumerate(pool.map(_splice_job, jobs), 1):
                out_rows += res
                if k % 10 == 0 or k == len(jobs):
                    el = time.perf_counter() - t0
                    print(f"{k}/{len(jobs)} recordings, {el:.0f} s, ETA {el / k * (len(jobs) - k):.0f} s", flush=True)
    with (args.out / "splices.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, list(out_rows[0]))
        w.writeheader()
        w.writerows(out_rows)
    lines = [f"# Marked passages in {args.splices} recordings of about {SPLICE_RECORDING_S:g} s", ""]
    lines += [
        "| segment threshold | consecutive segments | unmarked recordings with a passage "
        "| marked recordings whose marked stretch is found | file-level claim (marked) |",
        "| --- | --- | --- | --- | --- |",
    ]
    by_rec: dict[tuple, list[dict]] = {}
    for r in out_rows:
        by_rec.setdefault((r["recording"], r["marked"]), []).append(r)
    for threshold in (0.9, 0.95, 0.98, 0.99):
        for k in (1, 2, 3):
            false = found = 0
            for (_rec, version), segs in by_rec.items():
                st = np.array([s["start_s"] for s in segs])
                en = np.array([s["end_s"] for s in segs])
                cf = np.array([np.nan if s["confidence"] is None else s["confidence"] for s in segs])
                runs = passages(st, en, cf, threshold, k)
                if version == "no":
                    false += bool(runs)
                else:
                    m0, m1 = segs[0]["mark_start_s"], segs[0]["mark_end_s"]
                    found += any(a < m1 and b > m0 for a, b in runs)
            file_level = sum(segs[0]["file_detected"] for (r, v), segs in by_rec.items() if v == "yes")
            n = args.splices
            lines.append(f"| {threshold} | {k} | {false}/{n} | {found}/{n} | {file_level}/{n} |")
    (args.out / "splices.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, required=True, help="manifest.csv")
    parser.add_argument("--out", type=Path, default=Path("reports/watermark"))
    parser.add_argument("--n-marked", type=int, default=120, help="clips marked and degraded (half real, half fake)")
    parser.add_argument("--conditions", default=DEFAULT_CONDITIONS)
    parser.add_argument("--min-duration", type=float, default=1.0, help="shortest clip to mark (s)")
    parser.add_argument("--max-duration", type=float, default=15.0, help="longest clip to mark (s)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--wheel", type=Path)
    parser.add_argument("--splices", type=int, default=0, help="measure the passage rule on N spliced recordings")
    args = parser.parse_args()
    if args.splices:
        splice_study(args)
        return

    import onnx

    rows = list(csv.DictReader(args.corpus.open()))
    root = args.corpus.parent
    clips = [(str(root / r["path"]), r["label"], r["family"], float(r["duration_s"])) for r in rows]
    rng = np.random.default_rng(args.seed)
    eligible = [c for c in clips if args.min_duration <= c[3] <= args.max_duration]
    chosen: set[str] = set()
    for lab in ("bonafide", "spoof"):
        pool = [c[0] for c in eligible if c[1] == lab]
        chosen.update(rng.choice(pool, size=min(len(pool), args.n_marked // 2), replace=False).tolist())
    conditions = [c.strip() for c in args.conditions.split(",") if c.strip()]
    bank = [c[0] for c in eligible if c[1] == "bonafide" and c[0] not in chosen][:24]  # babble talkers
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or fetch_wheel(Path(tmp))
        weights, hp, _ = read_checkpoint(wheel, "encoder")
        enc_path = Path(tmp) / "perth-encoder.onnx"
        onnx.save(encoder_graph(weights, subband_bins(hp)), enc_path)
        jobs = []
        for i, (path, label, family, _dur) in enumerate(clips):
            marked = path in chosen
            jobs.append(
                (
                    path,
                    label,
                    family,
                    conditions if marked else ["clean"],
                    marked,
                    args.seed + i,
                    bank if marked else [],
                )
            )
        out_rows: list[dict] = []
        t0, audio_s = time.perf_counter(), 0.0
        with ProcessPoolExecutor(args.workers, initializer=_init, initargs=(str(enc_path),)) as pool:
            for k, res in enumerate(pool.map(_job, jobs, chunksize=4), 1):
                out_rows += res
                audio_s += clips[k - 1][3]
                if k % 100 == 0 or k == len(jobs):
                    el = time.perf_counter() - t0
                    eta = el / k * (len(jobs) - k)
                    print(f"{k}/{len(jobs)} clips, {audio_s:.0f} s of audio, {el:.0f} s, ETA {eta:.0f} s", flush=True)
    fields = ["path", "label", "family", "condition", "marked", "confidence", "detected", "error"]
    with (args.out / "scores.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fields)
        w.writeheader()
        w.writerows(out_rows)
    write_summary(out_rows, conditions, args)


def _perth_rule(r: dict) -> int:
    """Perth's own decision: the confidence rounded at 0.5."""
    return int(r["confidence"] is not None and float(r["confidence"]) >= 0.5)


def write_summary(rows: list[dict], conditions: list[str], args: argparse.Namespace) -> None:
    ok = [r for r in rows if r["condition"] != "error"]
    errors = [r for r in rows if r["condition"] == "error"]
    lines = ["# Perth watermark check on " + str(args.corpus), ""]
    lines += ["voxguard's rule: confidence >= 0.95 over >= 2 s of signal; Perth's: confidence >= 0.5.", ""]
    corpus = [r for r in ok if r["condition"] == "clean" and r["marked"] == "no"]
    lines += [
        "## Unmarked corpus clips (false marks)",
        "",
        "| label | clips | voxguard's rule | Perth's rule | max confidence | 99th pct |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for lab in ("bonafide", "spoof"):
        sel = [r for r in corpus if r["label"] == lab and r["confidence"] is not None]
        c = np.array([r["confidence"] for r in sel], float)
        if len(c):
            det, perth = sum(r["detected"] for r in sel), sum(_perth_rule(r) for r in sel)
            lines.append(f"| {lab} | {len(c)} | {det} | {perth} | {c.max():.3f} | {np.quantile(c, 0.99):.3f} |")
    lines += ["", f"Clips that could not be checked: {len(errors)}", ""]
    marked_paths = {r["path"] for r in ok if r["marked"] == "yes"}
    if marked_paths:
        lines += [
            f"## {len(marked_paths)} clips marked as Chatterbox marks them, then degraded",
            "",
            "| condition | marked: detected (voxguard) | (Perth) | median confidence "
            "| unmarked: false (voxguard) | (Perth) |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
    for cond in conditions:
        m = [r for r in ok if r["condition"] == cond and r["marked"] == "yes"]
        u = [r for r in ok if r["condition"] == cond and r["marked"] == "no" and r["path"] in marked_paths]
        if not m:
            continue
        conf = np.array([r["confidence"] if r["confidence"] is not None else 0.0 for r in m])
        det = np.array([r["detected"] for r in m])
        lines.append(
            f"| {cond} | {det.sum()}/{len(m)} ({100 * det.mean():.1f} %) | {sum(_perth_rule(r) for r in m)} "
            f"| {np.median(conf):.3f} | {sum(r['detected'] for r in u)}/{len(u)} | {sum(_perth_rule(r) for r in u)} |"
        )
    (args.out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(7, 4))
    bins = np.linspace(0, 1, 41)
    for lab, style in (("bonafide", "tab:green"), ("spoof", "tab:orange")):
        c = [r["confidence"] for r in corpus if r["label"] == lab and r["confidence"] is not None]
        ax.hist(c, bins, alpha=0.6, color=style, label=f"unmarked {lab} ({len(c)})", log=True)
    for cond, style in (("clean", "tab:red"), ("opus-12k", "tab:purple")):
        c = [r["confidence"] or 0.0 for r in ok if r["condition"] == cond and r["marked"] == "yes"]
        if c:
            ax.hist(c, bins, histtype="step", lw=2, color=style, label=f"marked, {cond} ({len(c)})", log=True)
    ax.axvline(0.5, color="k", ls="--", lw=1)
    ax.set_xlabel("Perth decoder confidence")
    ax.set_ylabel("clips")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out / "confidence.png", dpi=120)


if __name__ == "__main__":
    main()
