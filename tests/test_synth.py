"""The offline corpus builder: generators, planning, post-processing, manifest, CLI shell.

Generators whose tool is not installed are skipped (``scripts/install-corpus-tools.sh`` installs
them all); the end-to-end ``--small`` build is marked slow.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from signals import speechlike
from voxguard.datasets import load_manifest
from voxguard.datasets.manifest import MANIFEST_COLUMNS
from voxguard.datasets.synth import (
    OUTPUT_RATE,
    RealClip,
    SynthConfig,
    SynthError,
    add_noise_bed,
    applicable,
    band_limit,
    build_corpus,
    condition_clip,
    cutoff_hz,
    discover_sources,
    fillets_clips,
    finish_clip,
    finish_group,
    plan_jobs,
    store_clip,
    vorbis_round_trip,
)
from voxguard.datasets.synth_match import limit_peaks
from voxguard.datasets.synth_tools import GENERATORS, Generator, _dep5_license, available_generators

_BY_SYSTEM = {g.system: g for g in GENERATORS}


def _require(system: str) -> Generator:
    gen = _BY_SYSTEM[system]
    why = gen.missing()
    if why is not None:
        pytest.skip(f"{system}: {why}")
    return gen


@pytest.fixture(scope="module")
def vowel() -> np.ndarray:
    return speechlike(sr=16_000, duration=1.5, f0=120.0, seed=3)


# ----------------------------------------------------------------------------------------------
# vocoders: (y, sr) -> y


@pytest.mark.parametrize("system", ["world_dio", "mlsa_mcep24", "griffinlim_mel80", "lpc_pulse", "codec2_1300"])
@pytest.mark.parametrize("sr", [16_000, 8_000])
def test_vocoder_output_is_sane_different_and_deterministic(system: str, sr: int, vowel: np.ndarray) -> None:
    gen = _require(system)
    y = vowel if sr == 16_000 else speechlike(sr=sr, duration=1.5, f0=120.0, seed=3)
    z = gen.generate(y, sr, seed=7)
    assert z.dtype == np.float32 and z.shape == y.shape
    assert np.all(np.isfinite(z))
    rms_in, rms_out = float(np.sqrt(np.mean(y**2))), float(np.sqrt(np.mean(z**2)))
    assert 0.01 * rms_in < rms_out < 100 * rms_in
    # A copy, not the input: clearly different samples ...
    assert np.sqrt(np.mean((z - y) ** 2)) > 0.05 * rms_in
    # ... but still speech-like: most energy below 4 kHz, like the vowel input.
    spec = np.abs(np.fft.rfft(z)) ** 2
    freqs = np.fft.rfftfreq(len(z), 1 / sr)
    assert spec[freqs < 4000].sum() > 0.5 * spec.sum()
    z2 = gen.generate(y, sr, seed=7)
    np.testing.assert_array_equal(z, z2)


def test_seeded_vocoders_depend_on_the_seed(vowel: np.ndarray) -> None:
    gen = _require("lpc_pulse")
    assert not np.array_equal(gen.generate(vowel, 16_000, seed=1), gen.generate(vowel, 16_000, seed=2))


def test_vocoder_rejects_bad_input() -> None:
    gen = _BY_SYSTEM["lpc_pulse"]
    with pytest.raises(ValueError):
        gen.generate(np.zeros((10, 2), dtype=np.float32), 16_000)


# ----------------------------------------------------------------------------------------------
# text-to-speech: text -> (y, sr)


@pytest.mark.parametrize(
    ("system", "text"),
    [
        ("espeak_nl", "Wat is dit voor raar schip?"),
        ("espeak_en_us", "He was not an ill disposed young man."),
        ("flite_slt", "He was not an ill disposed young man."),
        ("festival_kal_diphone", "He was not an ill disposed young man."),
        ("piper_joe_medium", "He was not an ill disposed young man."),
    ],
)
def test_tts_output_is_sane_and_deterministic(system: str, text: str) -> None:
    gen = _require(system)
    y, sr = gen.generate(text, seed=11)
    assert sr in (16_000, 22_050, 32_000, 44_100, 48_000)
    assert y.dtype == np.float32 and y.ndim == 1
    assert 0.5 < len(y) / sr < 10.0
    assert np.all(np.isfinite(y)) and 0.01 < np.abs(y).max() <= 1.0
    y2, sr2 = gen.generate(text, seed=11)
    assert sr2 == sr
    np.testing.assert_array_equal(y, y2)


def test_tts_rejects_empty_text() -> None:
    gen = _require("espeak_en_us")
    with pytest.raises(ValueError):
        gen.generate("   ")


def test_missing_tool_is_reported() -> None:
    fake = Generator("nope", "nope", "tts", lambda text: (np.zeros(1), 16000), needs_commands=("no-such-tool-xyz",))
    ok, missing = available_generators((fake,))
    assert ok == [] and "no-such-tool-xyz" in missing["nope"]


# ----------------------------------------------------------------------------------------------
# provenance


def test_dep5_license_prefers_the_matching_files_stanza() -> None:
    text = (
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"
        "Upstream-Name: x\n\n"
        "Files: *\nCopyright: someone\nLicense: LGPL-2.1\n\n"
        "Files: octave/*\n wav/*\nCopyright: someone\nLicense: BSD-3-clause\n"
    )
    assert _dep5_license(text, "/usr/share/x/wav/a.wav") == "BSD-3-clause"
    assert _dep5_license(text, "/usr/share/x/raw/a.raw") == "LGPL-2.1"
    header_only = "Format: x\nCopyright: 2003 CMU\nLicense: EST-2003\n\nFiles:\n a/b.pdf\nLicense: BSD-3\n"
    assert _dep5_license(header_only, None) == "EST-2003"


def test_fillets_parser_reads_dutch_text_english_original_and_speaker(tmp_path: Path) -> None:
    (tmp_path / "script" / "lvl").mkdir(parents=True)
    (tmp_path / "sound" / "lvl" / "nl").mkdir(parents=True)
    (tmp_path / "script" / "lvl" / "dialogs_nl.lua").write_text(
        'dialogId("a-m-x", "font_small", "What is \\"that\\"?")\ndialogStr("Wat is \\"dat\\"?")\n\n'
        'dialogId("a-v-y", "font_big", "No sound file.")\ndialogStr("Geen geluid.")\n',
        encoding="utf-8",
    )
    sf.write(tmp_path / "sound" / "lvl" / "nl" / "a-m-x.ogg", np.zeros(1000, dtype=np.float32), 22050)
    clips = fillets_clips(tmp_path)
    assert len(clips) == 1
    c = clips[0]
    assert c.texts == {"nl": 'Wat is "dat"?', "en": 'What is "that"?'}
    assert c.speaker == "fillets_nl_small_fish" and c.language == "nl" and c.utt_group == "fillets_nl_lvl_a-m-x"


# ----------------------------------------------------------------------------------------------
# planning


def _dummy(system: str, family: str, language: str | None = None) -> Generator:
    kind = "tts" if language else "vocoder"
    return Generator(system, family, kind, lambda *a, **k: None, language=language)


def test_plan_balances_families_and_matches_tts_language() -> None:
    gens = [
        _dummy("w", "world"), _dummy("g", "griffinlim"), _dummy("c1", "codec2"), _dummy("c2", "codec2"),
        _dummy("e_nl", "espeak", "nl"), _dummy("f_en", "flite", "en"),
    ]  # fmt: skip
    reals = [RealClip(f"nl{i}", f"/x/nl{i}.ogg", "p", "d", "s", "nl", {"nl": "tekst", "en": "text"}) for i in range(40)]
    reals += [RealClip(f"en{i}", f"/x/en{i}.wav", "p", "d", "s", "en", {"en": "text"}) for i in range(4)]
    jobs = plan_jobs(reals, gens)
    assert [j.real for j in jobs] == reals
    first = {j.real.utt_group: j.candidates[0] for j in jobs}
    fam = {g.system: g.family for g in gens}
    counts: dict[str, int] = {}
    for s in first.values():
        counts[fam[s]] = counts.get(fam[s], 0) + 1
    # Families open to every recording share them evenly ...
    shared = [counts[f] for f in ("world", "griffinlim", "codec2", "espeak")]
    assert max(shared) - min(shared) <= 1
    # ... and the English voice reads only, and all of, the English recordings.
    assert all(first[f"nl{i}"] != "f_en" for i in range(40))
    assert counts["flite"] == 4
    # Codec 2's two systems share the family's clips.
    assert abs(sum(s == "c1" for s in first.values()) - sum(s == "c2" for s in first.values())) <= 1
    # Fallbacks are vocoders only, never the chosen one again.
    for j in jobs:
        assert len(set(j.candidates)) == len(j.candidates)
        assert all(not _by_name(gens, s).is_tts for s in j.candidates[1:])


def _by_name(gens: list[Generator], system: str) -> Generator:
    return next(g for g in gens if g.system == system)


def test_translations_flag_lets_english_voices_read_dutch_lines() -> None:
    voice = _dummy("f_en", "flite", "en")
    real = RealClip("nl0", "/x.ogg", "p", "d", "s", "nl", {"nl": "tekst", "en": "text"})
    assert not applicable(voice, real) and applicable(voice, real, tts_translations=True)
    untranscribed = RealClip("c0", "/x.wav", "p", "d", "s", "en")
    assert not applicable(voice, untranscribed) and applicable(_dummy("w", "world"), untranscribed)


def test_plan_several_fakes_per_real_use_distinct_families() -> None:
    gens = [_dummy("w", "world"), _dummy("g", "griffinlim"), _dummy("l", "lpc")]
    reals = [RealClip(f"r{i}", f"/x/{i}.wav", "p", "d", "s", "en") for i in range(6)]
    for job in plan_jobs(reals, gens, fakes_per_real=2):
        assert job.n_fakes == 2 and len(set(job.candidates[:2])) == 2
    with pytest.raises(ValueError):
        plan_jobs(reals, gens, fakes_per_real=0)


# ----------------------------------------------------------------------------------------------
# post-processing: the same chain for both classes


@pytest.mark.parametrize("sr", [8_000, 22_050])
def test_finish_clip_writes_16k_pcm16_flac_on_the_grid(tmp_path: Path, sr: int) -> None:
    y = speechlike(sr=sr, duration=1.2, seed=1)
    y = np.pad(y, (sr // 2, sr // 2))  # silence around the speech is trimmed to the fixed margin
    path = tmp_path / "a" / "clip.flac"
    dur = finish_clip(y, sr, path, config=SynthConfig(), seed=5)
    info = sf.info(str(path))
    assert (info.samplerate, info.channels, info.subtype, info.format) == (OUTPUT_RATE, 1, "PCM_16", "FLAC")
    assert abs(info.duration - dur) < 1e-6 and dur < 1.2 + 0.25 + 0.1
    data, _ = sf.read(str(path), dtype="int16")
    assert np.abs(data).max() > 1000
    # Deterministic: the same input and seed give the same file content.
    path2 = tmp_path / "b.flac"
    finish_clip(y, sr, path2, config=SynthConfig(), seed=5)
    np.testing.assert_array_equal(data, sf.read(str(path2), dtype="int16")[0])


def test_band_limit_and_noise_bed_equalise_the_extremes() -> None:
    sr = 16_000
    y = speechlike(sr=sr, duration=1.0, seed=4) + np.float32(0.05)  # a DC offset, like LPC drift
    z = band_limit(y, sr, (70.0, 7000.0))
    assert abs(float(z.mean())) < 1e-3
    spec = np.abs(np.fft.rfft(z)) ** 2
    freqs = np.fft.rfftfreq(len(z), 1 / sr)
    assert spec[freqs > 7600].sum() < 1e-3 * spec.sum()
    silent = np.zeros(sr, dtype=np.float32)
    bed = add_noise_bed(silent, sr, -60.0, seed=1, band_hz=(70.0, 7000.0))
    assert abs(20 * np.log10(np.sqrt(np.mean(bed**2))) + 60.0) < 0.1
    np.testing.assert_array_equal(bed, add_noise_bed(silent, sr, -60.0, seed=1, band_hz=(70.0, 7000.0)))


def test_vorbis_round_trip_keeps_length_and_changes_samples() -> None:
    y = speechlike(sr=16_000, duration=1.0, seed=2)
    z = vorbis_round_trip(y, 16_000)
    assert z.shape == y.shape and z.dtype == np.float32
    assert not np.array_equal(z, y) and np.corrcoef(z, y)[0, 1] > 0.9


def test_a_group_is_stored_at_its_lowest_cut_off(tmp_path: Path) -> None:
    # A wide-band "real" clip and a narrow-band "fake" of it (as Codec 2 makes): stored alone,
    # their cut-offs differ by kHz (bandwidth gives the label away); at the group's band they match.
    sr = 16_000
    wide = speechlike(sr=sr, duration=2.0, seed=7)
    wide = wide + np.float32(0.02) * np.random.default_rng(0).standard_normal(len(wide)).astype(np.float32)
    narrow = band_limit(wide, sr, (70.0, 3_800.0))
    config = SynthConfig(codec="none")
    z = [condition_clip(wide, sr, config=config), condition_clip(narrow, sr, config=config)]
    cut = [cutoff_hz(x) for x in z]
    assert cut[0] - cut[1] > 2_000
    top = min(cut)
    stored = []
    for i, x in enumerate(z):
        store_clip(x, tmp_path / f"{i}.flac", config=config, seed=i, top_hz=top)
        stored.append(cutoff_hz(sf.read(tmp_path / f"{i}.flac", dtype="float32")[0]))
    assert abs(stored[0] - stored[1]) < 400, stored
    assert max(stored) < top + 400


def test_peak_limiter_caps_peaks_and_leaves_quiet_parts_alone() -> None:
    sr = 16_000
    y = 0.05 * speechlike(sr=sr, duration=1.0, seed=2) / np.abs(speechlike(sr=sr, duration=1.0, seed=2)).max()
    y = y.astype(np.float32)
    y[8_000] = 0.9  # one click far above the ceiling of -13 dBFS (0.224)
    out = limit_peaks(y, sr, -13.0)
    assert np.abs(out).max() <= 10 ** (-13 / 20) * 1.05  # the smoothing lets a hair through
    far = np.r_[0:7_000, 9_000:16_000]  # beyond the 5 ms hold around the click
    np.testing.assert_array_equal(out[far], y[far])  # below the ceiling: untouched
    assert out.dtype == np.float32 and len(out) == len(y)


def test_every_clip_ends_a_fixed_time_after_its_speech(tmp_path: Path) -> None:
    sr = 16_000
    speech = speechlike(sr=sr, duration=1.0, seed=5)
    config = SynthConfig(codec="none", noise_floor_dbfs=None, match_band=False, peak_ceiling_dbfs=None)
    lengths = []
    for tail in (np.zeros(sr, np.float32), np.zeros(0, np.float32)):  # 1 s of silence after, or none
        y = np.concatenate([speech, tail])
        lengths.append(store_clip(y, tmp_path / f"{len(tail)}.flac", config=config, seed=1))
    # Both end at their speech (the tail step, then the final cut at the VAD's last speech frame).
    assert abs(lengths[0] - lengths[1]) < 0.05 and 0.9 < lengths[0] < 1.2, lengths


def test_codec_label_is_the_same_for_every_clip() -> None:
    assert SynthConfig().codec_label().startswith("flac_pcm_16 (16 kHz mono")
    assert "vorbis" not in SynthConfig(codec="none").codec_label()
    plain = SynthConfig(
        codec="none",
        band_hz=None,
        noise_floor_dbfs=None,
        match_band=False,
        match_group=False,
        peak_ceiling_dbfs=None,
        tail_s=None,
        end_margin_s=None,
    )
    assert plain.codec_label() == "flac_pcm_16 (16 kHz mono)"
    assert "lowest cut-off" in SynthConfig(match_band=True).codec_label()
    assert "lowest cut-off" not in SynthConfig().codec_label()


# ----------------------------------------------------------------------------------------------
# errors and a tiny build


def test_no_real_source_fails_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import voxguard.datasets.synth as synth

    monkeypatch.setattr(synth, "SOURCES", {"none": (lambda: [], ("no-such-package",))})
    with pytest.warns(UserWarning, match="skipping none"), pytest.raises(SynthError, match="no real speech source"):
        build_corpus(tmp_path / "out", SynthConfig(workers=1), progress=None)


def test_no_generator_fails_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import voxguard.datasets.synth as synth

    clip = RealClip("r", "/nonexistent.wav", "p", "d", "s", "en")
    monkeypatch.setattr(synth, "discover_sources", lambda small=False: ([clip], {}))
    monkeypatch.setattr(synth, "available_generators", lambda: ([], {"x": "missing"}))
    with pytest.warns(UserWarning, match="skipping x"), pytest.raises(SynthError, match="no fake-speech generator"):
        build_corpus(tmp_path / "out", SynthConfig(workers=1), progress=None)


def test_skipped_families_are_left_out_of_the_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """eSpeak is left out by default (the audit tells it apart); ``skip_families=()`` keeps it."""
    import voxguard.datasets.synth as synth

    clip = RealClip("r", "/nonexistent.wav", "p", "d", "s", "nl")
    monkeypatch.setattr(synth, "discover_sources", lambda small=False: ([clip], {}))
    monkeypatch.setattr(synth, "available_generators", lambda: ([_dummy("e_nl", "espeak", "nl")], {}))
    with pytest.raises(SynthError, match="no fake-speech generator"):
        build_corpus(tmp_path / "out", SynthConfig(workers=1), progress=None)
    planned = []
    monkeypatch.setattr(synth, "plan_jobs", lambda reals, gens, **kw: planned.extend(g.system for g in gens) or [])
    with pytest.raises(SynthError, match="no clip"):  # nothing planned: the stub stops the build there
        build_corpus(tmp_path / "out2", SynthConfig(workers=1, skip_families=()), progress=None)
    assert planned == ["e_nl"]
    assert "cut 0 s after the last speech" in SynthConfig().codec_label()


def test_cut_after_speech_ends_every_clip_at_its_last_speech_frame() -> None:
    from voxguard.audio.vad import detect_speech
    from voxguard.datasets.synth import cut_after_speech

    sr = OUTPUT_RATE
    speech = speechlike(sr=sr, duration=1.2, seed=7)
    for tail_s in (0.0, 0.04, 0.5):
        hiss = 1e-4 * np.random.default_rng(1).standard_normal(int(tail_s * sr)).astype(np.float32)
        y = np.concatenate([speech, hiss])
        cut = cut_after_speech(y, sr, 0.0)
        assert len(cut) <= len(y)  # never padded
        bounds = detect_speech(cut, sr).bounds_s()
        assert bounds is not None and len(cut) / sr - bounds[1] < 0.03, (tail_s, len(cut) / sr, bounds)
    assert len(cut_after_speech(y, sr, 0.1)) > len(cut_after_speech(y, sr, 0.0))
    silent = np.zeros(sr, np.float32)
    assert cut_after_speech(silent, sr, 0.0) is silent  # no speech: unchanged


def test_refuses_a_non_empty_output_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import voxguard.datasets.synth as synth

    clip = RealClip("r", "/nonexistent.wav", "p", "d", "s", "en")
    monkeypatch.setattr(synth, "discover_sources", lambda small=False: ([clip], {}))
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(SynthError, match="not empty"):
        build_corpus(tmp_path, SynthConfig(workers=1, force=True), progress=None)
    assert (tmp_path / "precious.txt").is_file()


def _installed_sources() -> int:
    return len(discover_sources(small=True)[0])


@pytest.fixture
def have_tools() -> None:
    if _installed_sources() == 0:
        pytest.skip("no real speech source installed (scripts/install-corpus-tools.sh)")
    ok, _ = available_generators()
    if len({g.family for g in ok}) < 2:
        pytest.skip("fewer than two generator families installed (scripts/install-corpus-tools.sh)")


def _check_corpus(out: Path, *, min_systems: int) -> None:
    header = (out / "manifest.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header.split(",") == list(MANIFEST_COLUMNS)
    ds = load_manifest(out / "manifest.csv")
    labels = ds.counts("label")
    assert set(labels) == {"bonafide", "spoof"} and labels["bonafide"] == labels["spoof"]
    assert len(set(ds.column("system")) - {"bonafide"}) >= min_systems
    groups_real = {it.utt_group for it in ds if it.label == "bonafide"}
    assert all(it.utt_group in groups_real for it in ds if it.label == "spoof")
    assert {it.extra["sample_rate"] for it in ds} == {"16000"}
    assert len({it.extra["codec"] for it in ds}) == 1
    for it in ds:
        info = sf.info(str(it.path))
        assert (info.samplerate, info.channels, info.subtype) == (16_000, 1, "PCM_16")
        assert it.extra["source_repo"].startswith("debian/") and it.extra["source_commit"]
        assert it.extra["license"]


def test_tiny_build_in_process(tmp_path: Path, have_tools: None) -> None:
    out = tmp_path / "corpus"
    result = build_corpus(out, SynthConfig(small=True, workers=1, limit=3), progress=None)
    assert result.n_clips == 6 and result.bytes > 0 and (out / "build.json").is_file()
    _check_corpus(out, min_systems=1)
    with pytest.raises(SynthError, match="--force"):
        build_corpus(out, SynthConfig(small=True, workers=1, limit=3), progress=None)


def test_cli_function_runs_and_maps_errors(tmp_path: Path, have_tools: None) -> None:
    import typer
    from typer.testing import CliRunner

    from voxguard.cli_synth import synth

    app = typer.Typer()
    app.command()(synth)
    runner = CliRunner()
    out = tmp_path / "c"
    res = runner.invoke(app, ["--out", str(out), "--small", "--limit", "2", "--workers", "1"])
    assert res.exit_code == 0, res.output
    assert "built 4 clips" in res.output
    res = runner.invoke(app, ["--out", str(out), "--small", "--limit", "2", "--workers", "1"])
    assert res.exit_code == 1
    res = runner.invoke(app, ["--out", str(out), "--codec", "mp3"])
    assert res.exit_code != 0


@pytest.mark.slow
def test_small_build_end_to_end(tmp_path: Path, have_tools: None) -> None:
    out = tmp_path / "small"
    result = build_corpus(out, SynthConfig(small=True, workers=min(2, os.cpu_count() or 1)), progress=None)
    assert result.seconds < 120
    assert 20 <= result.n_clips <= 80
    _check_corpus(out, min_systems=4)
    ds = load_manifest(out)
    assert len(set(ds.column("family"))) >= 5
    assert result.failures == []


def test_a_group_leaves_with_matched_levels_and_aligned_copies() -> None:
    from voxguard.audio.preprocess import integrated_loudness
    from voxguard.datasets.audit import noise_floor_dbfs

    sr = OUTPUT_RATE
    pause = np.zeros(sr // 2, np.float32)
    real = np.concatenate([pause, speechlike(sr=sr, duration=1.5, seed=11), pause])
    tts = np.concatenate([pause, speechlike(sr=sr, duration=2.0, seed=12), pause])
    # The final cut after the last speech (end_margin_s) shortens some tails and so moves the
    # measured floor a little (the corpus audit shows no floor leak: AUC 0.51); checked apart below.
    config = SynthConfig(codec="none", end_margin_s=None)
    z = [condition_clip(x, sr, config=config) for x in (real, tts)]
    copy = np.concatenate([1.6 * z[0], np.zeros(sr // 2, np.float32)])  # louder, 0.5 s longer
    copy[::97] *= 2.5  # and peakier
    z.insert(1, copy)
    out = finish_group(z, config=config, seeds=[1, 2, 3], copies=[False, True, False])
    cut = finish_group(z, config=SynthConfig(codec="none"), seeds=[1, 2, 3], copies=[False, True, False])
    assert all(len(c) <= len(x) for c, x in zip(cut, out, strict=True))
    assert len(out[1]) < len(z[1]) - sr // 4  # the copy is cut to the recording's length
    for x in out:
        assert np.array_equal(np.round(x * 32768), x * 32768)  # on the 16-bit grid
    loud = [integrated_loudness(x, sr) for x in out]
    peaks = [20 * np.log10(np.abs(x).max()) for x in out]
    floors = [noise_floor_dbfs(x, sr) for x in out]
    assert np.ptp(loud) < 0.01 and np.ptp(peaks) < 0.01 and np.ptp(floors) < 0.1, (loud, peaks, floors)
    plain = finish_group(z, config=SynthConfig(codec="none", match_group=False), seeds=[1, 2, 3])
    assert np.ptp([20 * np.log10(np.abs(x).max()) for x in plain]) > 0.1  # without matching they differ


# --------------------------------------------------------------------------- reading at the recording's pace


def _rate_voice(text: str, *, speed: int = 160) -> tuple[np.ndarray, int]:
    """A stand-in TTS whose speech lasts in proportion to 1 / speed (8 s at 80, 4 s at 160)."""
    n = int(OUTPUT_RATE * 640 / speed)
    return speechlike(OUTPUT_RATE, n / OUTPUT_RATE), OUTPUT_RATE


def test_pace_scales_rate_and_duration_parameters_within_limits() -> None:
    from voxguard.datasets.synth_tools import Pace

    rate = Pace("speed", default=160, inverse=True, low=80, high=450, integer=True)
    assert rate.params_for({}, 2.0) == {"speed": 80}  # twice as long: half the rate
    assert rate.params_for({"speed": 170}, 0.5) == {"speed": 340}
    assert rate.params_for({}, 0.1) == {"speed": 450}  # clamped to the voice's limit
    scale = Pace("length_scale", default=1.0, inverse=False, low=0.5, high=2.0)
    assert scale.params_for({"length_scale": 1.2}, 1.5) == pytest.approx({"length_scale": 1.8})
    with pytest.raises(ValueError):
        rate.params_for({}, 0.0)
    vocoder = next(g for g in GENERATORS if not g.is_tts)
    with pytest.raises(ValueError, match="no speaking-rate"):
        vocoder.paced(1.2)


def test_paced_tts_reads_at_the_recordings_length() -> None:
    from voxguard.datasets.synth import paced_tts
    from voxguard.datasets.synth_tools import Pace

    gen = Generator(
        "rate_voice", "test", "tts", _rate_voice, {}, language="en",
        pace=Pace("speed", default=160, inverse=True, low=80, high=450, integer=True),
    )  # fmt: skip
    config = SynthConfig()
    default = condition_clip(*_rate_voice("x"), config=config)

    def recording(scale: float) -> np.ndarray:
        return condition_clip(
            speechlike(OUTPUT_RATE, len(default) * scale / OUTPUT_RATE, seed=5), OUTPUT_RATE, config=config
        )

    longer = recording(1.4)
    clip, note = paced_tts(gen, "x", longer, seed=0, config=config)
    assert abs(len(clip) / len(longer) - 1.0) <= 0.05 and note.startswith(", speed=")
    assert int(note.split("=")[1]) < 160  # slower than the default
    # Already at the recording's length: no re-synthesis, no note.
    clip, note = paced_tts(gen, "x", recording(1.0), seed=0, config=config)
    assert note == "" and len(clip) == len(default)
    # Out of the voice's range: stops at its limit.
    _, note = paced_tts(gen, "x", recording(5.0), seed=0, config=config)
    assert note == ", speed=80"
    # A voice without a rate parameter is read once.
    fixed = Generator("fixed_voice", "test", "tts", _rate_voice, {}, language="en")
    clip, note = paced_tts(fixed, "x", longer, seed=0, config=config)
    assert note == "" and len(clip) == len(default)


def _tone_with_gaps(gaps: list[tuple[float, float]], total_s: float, sr: int = OUTPUT_RATE) -> np.ndarray:
    """A 200 Hz tone with silent gaps [(start_s, length_s)], over a -70 dBFS noise floor."""
    t = np.arange(int(total_s * sr)) / sr
    y = 0.3 * np.sin(2 * np.pi * 200 * t)
    for start, length in gaps:
        y[int(start * sr) : int((start + length) * sr)] = 0.0
    return (y + 10 ** (-70 / 20) * np.random.default_rng(0).standard_normal(len(y))).astype(np.float32)


def test_find_pauses_skips_leading_and_trailing_silence() -> None:
    from voxguard.datasets.synth_match import find_pauses

    y = _tone_with_gaps([(0.0, 0.3), (1.0, 0.4), (2.0, 0.05), (2.7, 0.3)], 3.0)
    pauses = find_pauses(y, OUTPUT_RATE) / OUTPUT_RATE
    assert pauses.shape == (1, 2)  # the 50-ms gap is too short; the edges are not pauses
    assert pauses[0, 0] == pytest.approx(1.0, abs=0.02) and pauses[0, 1] == pytest.approx(1.4, abs=0.02)


def test_match_pauses_copies_the_references_pauses_at_their_places() -> None:
    from voxguard.datasets.synth_match import find_pauses, match_pauses

    reference = _tone_with_gaps([(0.8, 0.5), (2.5, 0.3)], 4.0)
    reading = _tone_with_gaps([(1.7, 0.1)], 3.0)  # a short pause of its own near the second place
    out = match_pauses(reading, reference, OUTPUT_RATE)
    assert (len(out) - len(reading)) / OUTPUT_RATE == pytest.approx(0.5 + 0.3 - 0.1, abs=0.02)
    got = find_pauses(out, OUTPUT_RATE) / OUTPUT_RATE
    lengths = got[:, 1] - got[:, 0]
    assert len(got) == 2 and lengths == pytest.approx([0.5, 0.3], abs=0.03)
    # At the same relative places: 0.8/4 and 2.5/4 of the way.
    rel = got[:, 0] / (len(out) / OUTPUT_RATE)
    assert rel == pytest.approx([0.2, 0.6], abs=0.08)
    # Without pauses in the reference nothing changes.
    assert np.array_equal(match_pauses(reading, _tone_with_gaps([], 4.0), OUTPUT_RATE), reading)
