#!/usr/bin/env python3
"""The README's timeline figure (docs/img/timeline.png) and its JSON, from the bundled examples.

Splices the three example clips and a repeat of the first at 16 kHz (real, real, **fake**, real),
scans the result with a model (default: the default model), writes the timeline plot and prints
the scan's JSON with the timeline rounded as the README shows it::

    .venv/bin/python scripts/timeline-figure.py                        # -> docs/img/timeline.png
    .venv/bin/python scripts/timeline-figure.py --model voxguard-v2 --out /tmp/t.png
    .venv/bin/python scripts/timeline-figure.py --watermark          # -> docs/img/watermark-timeline.png

``--watermark`` splices real, real, **Perth-marked**, **fake**, real instead (the marked clip is
``examples/marked_perth_...``) and scans with the watermark check, so the figure shows both the
detector's P(fake) and the watermark decoder's per-segment confidence.

``--wide-band`` splices the two 22.05-kHz examples at 22.05 kHz (real, **fake**, real), which keep
the band above 8 kHz, so the default model's wide-band companion is mixed in and the figure shows
its own P(fake) per segment (dashed) beside the mix (``docs/img/wideband-timeline.png``).

Needs matplotlib (extra ``[plot]`` or ``[train]``). The clips are in the DEV corpus the shipped
models were trained on: the figure shows the mechanics, not accuracy.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SPLICE = (
    "real_librispeech_1688-142285-0002.flac",
    "real_melgan-page_unseen-speaker_0.flac",
    "fake_melgan_reconstructed_0.flac",
    "real_librispeech_1688-142285-0002.flac",
)
SPLICE_WATERMARK = (
    "real_librispeech_1688-142285-0002.flac",
    "real_melgan-page_unseen-speaker_0.flac",
    "marked_perth_librispeech_1688-142285-0002.flac",
    "marked_perth_librispeech_1688-142285-0002.flac",
    "fake_melgan_reconstructed_0.flac",
    "real_librispeech_1688-142285-0002.flac",
)
SPLICE_WIDE = (
    "real_melgan-page_unseen-speaker_0.flac",
    "fake_melgan_reconstructed_0.flac",
    "real_melgan-page_unseen-speaker_0.flac",
)
SR = 16_000
WIDE_SR = 22_050


def main() -> int:
    import numpy as np
    import soundfile as sf

    import voxguard
    from voxguard.audio import load

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model name or .onnx path (default: the default model)")
    parser.add_argument("--out", type=Path, default=None, help="PNG (default: docs/img/timeline.png)")
    parser.add_argument("--watermark", action="store_true", help="splice in the Perth-marked example too")
    parser.add_argument("--wide-band", action="store_true", help="splice the 22.05-kHz examples at 22.05 kHz")
    args = parser.parse_args()
    splice = SPLICE_WATERMARK if args.watermark else SPLICE_WIDE if args.wide_band else SPLICE
    figure = "watermark" if args.watermark else "wideband" if args.wide_band else ""
    args.out = args.out or ROOT / "docs" / "img" / (f"{figure}-timeline.png" if figure else "timeline.png")
    rate = WIDE_SR if args.wide_band else SR
    parts = [load(EXAMPLES / name, sr=rate).samples for name in splice]
    starts = np.cumsum([0] + [len(p) for p in parts]) / rate
    fake = splice.index("fake_melgan_reconstructed_0.flac")
    if args.watermark:
        marked = splice.index("marked_perth_librispeech_1688-142285-0002.flac")
        print(f"marked passage: {starts[marked]:.2f}-{starts[marked + 2]:.2f} s")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "spliced.flac"
        sf.write(path, np.concatenate(parts), rate)
        result = voxguard.load_detector(args.model, watermark=args.watermark).scan(path, plot=args.out)
    doc = result.to_dict()
    print(f"fake passage: {starts[fake]:.2f}-{starts[fake + 1]:.2f} s; plot: {args.out}")
    keep = ("start_s", "end_s", "probability", "speech_fraction") + (("watermark",) if args.watermark else ())
    keep += ("wide_band",) if args.wide_band else ()
    summary = {k: doc[k] for k in ("verdict", "probability", "model", "threshold", "reason")}
    summary["probability"], summary["threshold"] = round(summary["probability"], 3), round(summary["threshold"], 3)
    summary["timeline"] = [
        {k: round(seg[k], 3) if k in ("probability", "wide_band") and seg[k] is not None else seg[k] for k in keep}
        for seg in doc["timeline"]
    ]
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
