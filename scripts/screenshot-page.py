#!/usr/bin/env python3
"""Screenshot of the service's web page after a scan, for the documentation (docs/img/service-page.png).

Starts ``voxguard serve`` on 127.0.0.1, opens ``/`` in Debian's headless Chromium (through
Playwright), uploads a recording spliced from the bundled examples (real, fake, real) so the
timeline shows a fake passage, and saves a full-page PNG::

    .venv/bin/python scripts/screenshot-page.py                 # -> docs/img/service-page.png
    .venv/bin/python scripts/screenshot-page.py --out /tmp/page.png --chromium /usr/bin/chromium

Needs the server and dev extras and ``apt-get install chromium`` (scripts/install-service-tools.sh).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SPLICE = (
    "real_librispeech_1688-142285-0002.flac",
    "fake_melgan_reconstructed_0.flac",
    "real_melgan-page_unseen-speaker_0.flac",
)
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


def spliced_clip(path: Path) -> Path:
    """The three examples end to end at 16 kHz: a fake passage inside a real recording."""
    import numpy as np
    import soundfile as sf

    from voxguard.audio import load

    parts = [load(EXAMPLES / name, sr=16_000).samples for name in SPLICE]
    sf.write(path, np.concatenate(parts), 16_000, subtype="PCM_16")
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "service-page.png")
    parser.add_argument("--chromium", default="/usr/bin/chromium", help="Chromium executable (Debian's)")
    parser.add_argument("--width", type=int, default=1000)
    args = parser.parse_args()
    if not Path(args.chromium).is_file():
        print(f"no Chromium at {args.chromium}: apt-get install chromium", file=sys.stderr)
        return 1
    from playwright.sync_api import sync_playwright

    from voxguard.server.local import LocalServer

    with tempfile.TemporaryDirectory(prefix="voxguard-shot-") as tmp:
        clip = spliced_clip(Path(tmp) / "spliced-call.wav")
        with LocalServer(data_dir=Path(tmp) / "data") as server, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=args.chromium, headless=True, args=FLAGS)
            page = browser.new_page(viewport={"width": args.width, "height": 900})
            page.goto(server.url + "/")
            page.set_input_files("#file", str(clip))
            page.wait_for_selector("#result:not([hidden])", timeout=60_000)
            page.click("#result details summary")  # show the table too
            page.locator("#drop").blur()
            args.out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.out), full_page=True)
            print(f"{page.inner_text('#verdict')} {page.inner_text('#prob')}: wrote {args.out}")
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
