"""One decode for both rates against one decode per rate, in the same process (twentieth session).

For each file, alternates scans by the default scanner (which decodes a wide-band file once and
resamples it to 16 and 22.05 kHz, :func:`voxguard.audio.load_at`) with scans by the same scanner
whose ``load_at`` is replaced by one :func:`voxguard.audio.load` per rate (the behaviour before),
and prints the best × real time per CPU second of each. Files: 44.1-kHz WAV, FLAC, MP3 and AAC are
made from generated speech when none are given::

    OMP_NUM_THREADS=1 python scripts/bench_decode_once.py [--duration 60] [--repeats 5] [FILE ...]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import soundfile as sf

import voxguard.scan.scanner as scanner_module
from voxguard.audio import load, load_at
from voxguard.augment.codecs import encode
from voxguard.bench import write_speech_wav
from voxguard.scan import load_detector


def one_load_per_rate(source, rates, max_duration_s=None):
    """The scanner's decoding before the twentieth session."""
    return tuple(load(source, sr=rate, max_duration_s=max_duration_s) for rate in rates)


def make_files(folder: Path, duration: float) -> list[Path]:
    wav = folder / "speech_44k.wav"
    write_speech_wav(wav, duration, 44_100)
    y, sr = sf.read(wav, dtype="float32")
    flac = folder / "speech_44k.flac"
    sf.write(flac, y, sr)
    out = [wav, flac]
    for codec, suffix in (("mp3", "mp3"), ("aac", "m4a")):
        path = folder / f"speech_44k.{suffix}"
        path.write_bytes(encode(y, sr, codec, 128_000)[0])
        out.append(path)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    scanner = load_detector()
    with tempfile.TemporaryDirectory() as tmp:
        files = args.files or make_files(Path(tmp), args.duration)
        print("| file | one decode | one decode per rate | ratio |\n| --- | ---: | ---: | ---: |")
        for path in files:
            seconds = load(path, sr=None).duration_s
            best = {}
            for _ in range(args.repeats):
                for name, fn in (("once", load_at), ("per rate", one_load_per_rate)):
                    scanner_module.load_at = fn
                    scanner.scan(path)  # warm: file cache, lazy imports
                    start = time.process_time()
                    scanner.scan(path)
                    best[name] = max(best.get(name, 0.0), seconds / (time.process_time() - start))
            scanner_module.load_at = load_at
            ratio = best["once"] / best["per rate"]
            print(f"| {path.name} | {best['once']:.0f}× | {best['per rate']:.0f}× | {ratio:.2f} |")


if __name__ == "__main__":
    main()
