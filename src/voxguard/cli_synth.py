"""``voxguard corpus synth``: build the offline real-vs-fake corpus from Debian/PyPI packages.

The command function :func:`synth` is Typer-compatible; the CLI registers it with
``corpus_app.command("synth")(synth)``. The work is done by
:func:`voxguard.datasets.synth.build_corpus`; this shell only parses options, prints the summary
on stdout (progress goes to stderr) and maps errors to exit codes (1: the corpus could not be
built).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from voxguard.datasets.synth import SynthConfig, SynthError, build_corpus, format_summary

__all__ = ["synth"]


def synth(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (audio/, manifest.csv, build.json).")],
    small: Annotated[bool, typer.Option("--small", help="A few dozen clips in well under 2 minutes (CI).")] = False,
    workers: Annotated[int, typer.Option("--workers", "-j", min=1, help="Worker processes.")] = 2,
    fakes_per_real: Annotated[
        int, typer.Option("--fakes-per-real", min=1, help="Fakes per real recording (1 keeps the classes balanced).")
    ] = 1,
    codec: Annotated[
        str, typer.Option("--codec", help="Lossy round-trip applied to every clip: vorbis or none.")
    ] = "vorbis",
    tts_translations: Annotated[
        bool,
        typer.Option(
            "--tts-translations",
            help="Let English voices read the English original of Dutch lines (language then predicts the label).",
        ),
    ] = False,
    match_band: Annotated[
        bool,
        typer.Option(
            "--match-band/--no-match-band",
            help="Low-pass each recording's real clip and fakes at their lowest cut-off (hides bandwidth, but most "
            "clips then stop near 4.8 kHz).",
        ),
    ] = False,
    match_group: Annotated[
        bool,
        typer.Option(
            "--match-group/--no-match-group",
            help="Give each fake its recording's spectrum, and every clip of a group the same loudness, peak and "
            "noise floor.",
        ),
    ] = True,
    match_pace: Annotated[
        bool,
        typer.Option(
            "--match-pace/--no-match-pace",
            help="Let TTS voices with a rate setting (eSpeak, Piper) read each line at the recording's pace.",
        ),
    ] = True,
    skip_families: Annotated[
        str,
        typer.Option(
            "--skip-families",
            help="Generator families to leave out, comma-separated ('' for none). eSpeak's formant synthesis is "
            "told from its recordings by the metadata audit alone (docs/synth-corpus.md).",
        ),
    ] = "espeak",
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Use at most this many real recordings.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Base seed of every random choice.")] = 0,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing corpus in --out.")] = False,
) -> None:
    """Build a balanced real-vs-fake speech corpus offline, from registry packages alone.

    Real speech comes from Debian packages (Fish Fillets NG Dutch dialogue, PocketSphinx/LibriVox
    test clips, the ALSA test voice, Codec 2 reference recordings); fakes are copies of the same
    recordings through WORLD, MLSA, Griffin-Lim, LPC and Codec 2, and TTS of their transcripts
    (Piper, Flite, Festival; eSpeak NG with --skip-families ''). Tools that are not installed are
    skipped with a warning; scripts/install-corpus-tools.sh installs them all.
    """
    if codec not in ("vorbis", "none"):
        raise typer.BadParameter("must be 'vorbis' or 'none'", param_hint="--codec")
    config = SynthConfig(
        small=small,
        workers=workers,
        fakes_per_real=fakes_per_real,
        codec=codec,
        tts_translations=tts_translations,
        match_band=match_band,
        match_group=match_group,
        match_pace=match_pace,
        skip_families=tuple(f.strip() for f in skip_families.split(",") if f.strip()),
        seed=seed,
        limit=limit,
        force=force,
    )
    try:
        result = build_corpus(out, config, progress=sys.stderr)
    except SynthError as exc:
        print(f"error: {exc.message}" + (f" ({exc.path})" if exc.path else ""), file=sys.stderr)
        raise typer.Exit(1) from None
    print(format_summary(result))
