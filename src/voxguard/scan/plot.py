"""One PNG per scanned file: the waveform envelope with speech shading, and the segment
probabilities over time against the threshold and its UNCERTAIN band.

matplotlib is optional (``pip install "voxguard[plot]"``) and imported only here, with the
non-interactive Agg backend, so scanning without ``--plot`` never loads it.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from voxguard.errors import VoxguardError
from voxguard.scan.result import ScanResult, Verdict


class MissingDependencyError(VoxguardError):
    """An optional dependency needed for the requested feature is not installed."""

    code = "missing_dependency"
    http_status = 501


def require_matplotlib() -> Any:
    """Import matplotlib with the Agg backend, or raise :class:`MissingDependencyError`."""
    try:
        import matplotlib
    except ImportError as exc:
        raise MissingDependencyError(
            'plotting needs matplotlib: pip install "voxguard[plot]" (or pip install matplotlib)'
        ) from exc
    matplotlib.use("Agg", force=True)
    return matplotlib


_COLOURS = {Verdict.REAL: "#2a9d4a", Verdict.FAKE: "#d62728", Verdict.UNCERTAIN: "#e6a700"}


def plot_result(result: ScanResult, path: str | os.PathLike[str], *, dpi: int = 110) -> None:
    """Draw ``result`` (scanned with a plot requested, so it carries its envelope) to a PNG.

    Top: the waveform's peak envelope (time in seconds of the original recording). Bottom: one
    horizontal bar per segment at its P(fake) (segments that do not count towards the verdict
    in grey), the threshold line and the UNCERTAIN band; with a watermark check, the decoder's
    confidence per segment as a dotted purple line.
    """
    require_matplotlib()
    from matplotlib.figure import Figure  # the OO API: no pyplot state, safe in worker processes

    fig = Figure(figsize=(11, 4.6), layout="constrained")
    ax_wave, ax_p = fig.subplots(2, 1, sharex=True, height_ratios=(1, 1.4))
    duration = result.duration_s or 0.0

    env = result.envelope
    if env is not None and len(env.peak):
        # Reduce to at most ~4,000 columns: the max of each group keeps every peak visible.
        step = max(1, int(np.ceil(len(env.peak) / 4000)))
        n = len(env.peak) // step * step
        peaks = env.peak[:n].reshape(-1, step).max(axis=1) if n else env.peak
        t = (np.arange(len(peaks)) + 0.5) * env.frame_s * step
        ax_wave.fill_between(t, -peaks, peaks, color="#4a6fa5", linewidth=0)
        lim = max(float(peaks.max()), 1e-3)
        ax_wave.set_ylim(-1.05 * lim, 1.05 * lim)
    ax_wave.set_ylabel("amplitude")
    ax_wave.set_yticks([])

    tl = result.timeline
    if len(tl):
        p = np.where(np.isfinite(tl.proba), tl.proba, np.nan)
        colour = np.where(tl.eligible, "#d62728", "#9a9a9a")
        # Overlapping segments: draw each as a bar at its probability, thin so overlaps stay readable.
        ax_p.hlines(p, tl.starts_s, tl.ends_s, colors=colour, linewidth=2.5, alpha=0.85)
        centres = (tl.starts_s + tl.ends_s) / 2
        ax_p.plot(centres, p, color="#444444", linewidth=0.8, alpha=0.6)
        if tl.watermark is not None:  # scanned with --watermark: the decoder's confidence per segment
            ax_p.plot(centres, tl.watermark, color="#7b3fa0", linewidth=1.2, linestyle=":", marker=".")
            ax_p.plot([], [], color="#7b3fa0", linestyle=":", marker=".", label="Perth watermark confidence")
        if tl.wide_band is not None:  # the companion was used: its own P(fake); the bars are the mix
            ax_p.plot(centres, tl.wide_band, color="#00838f", linewidth=1.2, linestyle="--")
            ax_p.plot([], [], color="#00838f", linestyle="--", label="wide-band companion P(fake) (bars: the mix)")
        if tl.watermark is not None or tl.wide_band is not None:
            ax_p.legend(loc="upper left", fontsize=8, frameon=False)
    m = result.margin
    ax_p.axhspan(result.threshold - m, result.threshold + m, color="#e6a700", alpha=0.15, linewidth=0)
    ax_p.axhline(result.threshold, color="black", linestyle="--", linewidth=1)
    ax_p.text(
        1.0,
        result.threshold,
        f" threshold {result.threshold:.2f} ({result.operating_point})",
        transform=ax_p.get_yaxis_transform(),
        va="center",
        ha="left",
        fontsize=8,
        clip_on=False,
    )
    ax_p.set_ylim(-0.02, 1.02)
    ax_p.set_ylabel("P(fake) per segment")
    ax_p.set_xlabel("time (s)")
    ax_p.set_xlim(0, max(duration, 1e-3))
    verdict = result.verdict.value if result.verdict is not None else "FAILED"
    ok = result.probability is not None and np.isfinite(result.probability)
    prob = f"P(fake) {result.probability:.2f}" if ok else "P(fake) n/a"
    if result.watermark is not None and result.watermark.detected:
        prob += ", Perth watermark"
    fig.suptitle(
        f"{os.path.basename(result.path) or result.path} — {verdict} ({prob}, model {result.model})",
        color=_COLOURS.get(result.verdict, "black") if result.verdict is not None else "black",
        fontsize=11,
    )
    fig.savefig(os.fspath(path), dpi=dpi)
