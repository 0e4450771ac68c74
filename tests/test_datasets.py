"""The dataset model and every corpus loader, on small generated trees in each corpus' exact layout."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voxguard.datasets import (
    Dataset,
    DatasetError,
    Item,
    detect_format,
    family_from_name,
    load_asvspoof2019,
    load_asvspoof2021,
    load_dataset,
    load_deep_voice,
    load_fake_or_real,
    load_folder,
    load_in_the_wild,
    load_manifest,
    load_mlaad,
    load_wavefake,
    write_manifest,
)
from voxguard.errors import VoxguardError

SR = 16_000


def audio(path: Path, seconds: float = 0.05, seed: int = 0) -> Path:
    """A tiny valid audio file (loaders never decode, but the files should be real audio)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    y = 0.1 * np.random.default_rng(seed).standard_normal(int(SR * seconds)).astype(np.float32)
    fmt = "FLAC" if path.suffix == ".flac" else "WAV"
    sf.write(path, y, SR, format=fmt)
    return path


def item(name: str, label: str = "bonafide", **kw) -> Item:
    system = kw.pop("system", "bonafide" if label == "bonafide" else "sysA")
    family = kw.pop("family", "bonafide" if label == "bonafide" else "famA")
    return Item(Path(f"/data/{name}.wav"), label, system, family, **kw)


# --- the model -------------------------------------------------------------------------------------


def test_item_and_dataset_basics():
    ds = Dataset(
        [
            item("r1", speaker="s1", utt_group="u1", dataset="a"),
            item("f1", "spoof", speaker="s2", utt_group="u1", dataset="a", extra={"codec": "flac"}),
            item("r2", speaker="s2", utt_group="u2", dataset="b"),
            item("f2", "spoof", family="famB", speaker="s3", utt_group="u3", dataset="b"),
        ],
        name="toy",
        root="/data",
    )
    assert len(ds) == 4 and ds[1].is_spoof and ds[1].get("codec") == "flac" and ds[0].get("codec") == ""
    np.testing.assert_array_equal(ds.labels(), [0, 1, 0, 1])
    assert ds.ids() == ["r1.wav", "f1.wav", "r2.wav", "f2.wav"]
    assert [it.path.stem for it in ds.filter(label="spoof")] == ["f1", "f2"]
    assert [it.path.stem for it in ds.filter(family={"famA", "famB"}, dataset="b")] == ["f2"]
    assert [it.path.stem for it in ds.exclude(lambda it: it.speaker == "s2")] == ["r1", "f2"]
    assert [it.path.stem for it in ds.filter(codec=re.compile("^fl"))] == ["f1"]
    assert isinstance(ds[1:3], Dataset) and len(ds[np.array([True, False, True, False])]) == 2
    np.testing.assert_array_equal(ds.groups("utt_group"), [0, 0, 1, 2])
    np.testing.assert_array_equal(ds.groups("speaker"), [0, 1, 1, 2])
    np.testing.assert_array_equal(ds.groups(("speaker", "utt_group")), [0, 0, 0, 1])  # union-find
    assert ds.counts("label") == {"bonafide": 2, "spoof": 2}
    assert set(ds.split_by("dataset")) == {"a", "b"}
    both = ds + ds.filter(dataset="a")
    assert len(both) == 6 and both.root == Path("/data")
    assert "2 bonafide, 2 spoof" in repr(ds)


def test_unknown_group_values_are_singletons():
    ds = Dataset([item("a", speaker=""), item("b", speaker=""), item("c", speaker="x"), item("d", speaker="x")])
    np.testing.assert_array_equal(ds.groups("speaker"), [0, 1, 2, 2])


def test_item_rejects_unknown_label_and_normalises_aliases():
    assert Item(Path("x.wav"), "bona-fide", "bonafide", "bonafide").label == "bonafide"
    assert Item(Path("x.wav"), "FAKE", "s", "f").label == "spoof"
    with pytest.raises(DatasetError, match="unknown label"):
        Item(Path("x.wav"), "maybe", "s", "f")


def test_dataset_error_carries_file_and_line():
    err = DatasetError("bad line", path="/x/proto.txt", line=7)
    assert isinstance(err, VoxguardError) and err.code == "dataset_error"
    assert str(err) == "/x/proto.txt:7: bad line" and err.path == "/x/proto.txt" and err.line == 7
    assert err.to_dict() == {"error": "dataset_error", "message": "bad line", "path": "/x/proto.txt", "line": 7}


# --- manifest ------------------------------------------------------------------------------------------

HEADER = (
    "path,label,system,attack_type,speaker,dataset,source_repo,license,sample_rate,duration_s,codec,family,"
    "utt_group,source_path,source_commit,note"
)


def make_manifest(root: Path) -> Path:
    audio(root / "audio/r/a.flac")
    audio(root / "audio/f/a_hifigan.wav")
    rows = [
        "audio/r/a.flac,bonafide,bonafide,bonafide,lj,ljspeech,o/r,CC0,22050,1.0,flac_pcm_16,bonafide,lj_a,x/a.wav,"
        'abc,"a note, with comma"',
        "audio/f/a_hifigan.wav,spoof,hifigan_v1,vocoder,lj,ljspeech,o/r,unknown,22050,1.0,wav_float,hifigan,lj_a,,,",
    ]
    m = root / "manifest.csv"
    m.write_text(HEADER + "\n" + "\n".join(rows) + "\n")
    return m


def test_manifest_load_and_round_trip(tmp_path):
    m = make_manifest(tmp_path / "corpus")
    ds = load_manifest(m)
    assert ds.name == "corpus" and len(ds) == 2 and ds.root == tmp_path / "corpus"
    real, fake = ds
    assert real.path == tmp_path / "corpus/audio/r/a.flac" and real.path.is_file()
    assert (fake.label, fake.system, fake.family, fake.utt_group) == ("spoof", "hifigan_v1", "hifigan", "lj_a")
    assert real.extra["note"] == "a note, with comma" and real.extra["attack_type"] == "bonafide"
    assert "source_path" not in fake.extra  # empty cells are left out
    # Same folder and another folder (paths then go relative to the new manifest or absolute).
    for out in (tmp_path / "corpus" / "copy.csv", tmp_path / "elsewhere" / "m.csv"):
        back = load_manifest(ds.to_manifest(out))
        assert list(back) == list(ds)
    with open(tmp_path / "corpus" / "copy.csv") as f:
        assert next(csv.reader(f)) == HEADER.split(",")


def test_manifest_round_trips_items_from_other_loaders(tmp_path):
    audio(tmp_path / "tree/train/real/src1/a.wav")
    audio(tmp_path / "tree/train/fake/melgan/b.wav")
    ds = load_folder(tmp_path / "tree")
    back = load_manifest(write_manifest(ds, tmp_path / "tree" / "manifest.csv"))
    assert list(back) == list(ds)
    assert back.filter(label="bonafide")[0].extra == {"subset": "train", "source": "src1"}


@pytest.mark.parametrize(
    ("edit", "line", "message"),
    [
        (lambda t: t.replace("path,label", "file,label", 1), 1, "lacks column"),
        (lambda t: t.replace(",spoof,", ",maybe,"), 3, "unknown label"),
        (lambda t: t.replace("a_hifigan.wav", "gone.wav"), 3, "audio file not found"),
        (lambda t: t + "audio/r/a.flac,bonafide\n", 4, "expected 16 cells"),
    ],
)
def test_manifest_errors_name_file_and_line(tmp_path, edit, line, message):
    m = make_manifest(tmp_path)
    m.write_text(edit(m.read_text()))
    with pytest.raises(DatasetError, match=message) as e:
        load_manifest(m)
    assert e.value.line == line and e.value.path == str(m) and f"manifest.csv:{line}:" in str(e.value)


def test_manifest_missing_skip_and_keep(tmp_path):
    m = make_manifest(tmp_path)
    (tmp_path / "audio/f/a_hifigan.wav").unlink()
    with pytest.warns(UserWarning, match="1 row"):
        assert len(load_manifest(m, missing="skip")) == 1
    assert len(load_manifest(m, missing="keep")) == 2
    with pytest.raises(DatasetError, match="manifest not found"):
        load_manifest(tmp_path / "nope.csv")


# --- folder layout -----------------------------------------------------------------------------------


def test_folder_layout_any_depth_and_case(tmp_path):
    root = tmp_path / "clips"
    audio(root / "REAL/a.wav")
    audio(root / "Genuine/speakerX/b.flac")
    audio(root / "data/train/Fake/ElevenLabs/v2/c.mp3".replace(".mp3", ".wav"))
    audio(root / "spoof/d.wav")
    audio(root / "deepfake/multi_band_melgan/a.wav")
    audio(root / "notes/e.wav")  # outside any class folder
    (root / "REAL/readme.txt").write_text("not audio")
    with pytest.warns(UserWarning, match="1 audio file"):
        ds = load_folder(root, utt_group="stem")
    by = {it.path.relative_to(root).as_posix(): it for it in ds}
    assert set(by) == {
        "REAL/a.wav",
        "Genuine/speakerX/b.flac",
        "data/train/Fake/ElevenLabs/v2/c.wav",
        "spoof/d.wav",
        "deepfake/multi_band_melgan/a.wav",
    }
    assert by["REAL/a.wav"].label == "bonafide" and by["REAL/a.wav"].system == "bonafide"
    assert by["Genuine/speakerX/b.flac"].extra == {"source": "speakerX"}
    c = by["data/train/Fake/ElevenLabs/v2/c.wav"]
    assert (c.label, c.system, c.extra) == ("spoof", "ElevenLabs", {"subset": "data/train"})
    assert by["spoof/d.wav"].system == "unknown" and by["spoof/d.wav"].family == "unknown"
    assert by["deepfake/multi_band_melgan/a.wav"].family == "melgan"
    # utt_group="stem" pairs a/a across real and fake
    assert by["REAL/a.wav"].utt_group == by["deepfake/multi_band_melgan/a.wav"].utt_group
    assert all(it.dataset == "clips" for it in ds)


def test_folder_layout_without_class_folders_fails(tmp_path):
    audio(tmp_path / "x/a.wav")
    with pytest.raises(DatasetError, match="no audio files"):
        load_folder(tmp_path, name="t")


# --- ASVspoof 2019 LA ----------------------------------------------------------------------------------

PROTO_2019 = {
    "train": [
        "LA_0079 LA_T_1138215 - - bonafide",
        "LA_0079 LA_T_1271820 - A01 spoof",
        "LA_0080 LA_T_1000001 - A04 spoof",
    ],
    "dev": ["LA_0069 LA_D_1047731 - - bonafide", "LA_0069 LA_D_1105538 - A02 spoof"],
    "eval": ["LA_0039 LA_E_2834763 - A11 spoof", "", "LA_0030 LA_E_5849185 - - bonafide"],
}
PROTO_NAMES = {"train": "train.trn", "dev": "dev.trl", "eval": "eval.trl"}


def make_asvspoof2019(top: Path, subsets=("train", "dev", "eval")) -> Path:
    la = top / "LA"
    for s in subsets:
        proto = la / "ASVspoof2019_LA_cm_protocols" / f"ASVspoof2019.LA.cm.{PROTO_NAMES[s]}.txt"
        proto.parent.mkdir(parents=True, exist_ok=True)
        proto.write_text("\n".join(PROTO_2019[s]) + "\n")
        for line in PROTO_2019[s]:
            if line:
                audio(la / f"ASVspoof2019_LA_{s}" / "flac" / f"{line.split()[1]}.flac")
    return la


def test_asvspoof2019(tmp_path):
    make_asvspoof2019(tmp_path)
    for root in (tmp_path, tmp_path / "LA"):  # the LA folder or its parent
        ds = load_asvspoof2019(root)
        assert len(ds) == 7 and ds.name == "asvspoof2019_la"
    by = {it.utt_group: it for it in ds}
    a01 = by["LA_T_1271820"]
    assert (a01.label, a01.system, a01.family, a01.speaker) == ("spoof", "A01", "wavenet", "LA_0079")
    assert a01.extra == {"subset": "train", "attack_type": "tts"}
    assert by["LA_T_1000001"].family == "concatenative" and by["LA_E_2834763"].family == "griffin_lim"
    bona = by["LA_T_1138215"]
    assert (bona.system, bona.family, bona.extra["subset"]) == ("bonafide", "bonafide", "train")
    assert bona.path == tmp_path / "LA/ASVspoof2019_LA_train/flac/LA_T_1138215.flac"
    assert len(load_asvspoof2019(tmp_path, subsets=["dev"])) == 2
    assert load_dataset(tmp_path).name == "asvspoof2019_la"


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("LA_0079 LA_T_9 - A01", "expected 5 columns"),
        ("LA_0079 LA_T_9 - A01 spooof", "key must be"),
        ("LA_0079 LA_T_9 - - spoof", "attack id"),
        ("LA_0079 LA_T_1138215 - A02 bonafide", "expected '-'"),
    ],
)
def test_asvspoof2019_malformed_line(tmp_path, bad, message):
    la = make_asvspoof2019(tmp_path, subsets=("dev",))
    proto = la / "ASVspoof2019_LA_cm_protocols" / "ASVspoof2019.LA.cm.dev.trl.txt"
    proto.write_text(proto.read_text() + "\n" + bad + "\n")  # blank line 3, bad line 4
    with pytest.raises(DatasetError, match=message) as e:
        load_asvspoof2019(la)
    assert e.value.line == 4 and e.value.path == str(proto)


def test_asvspoof2019_missing_audio_and_protocol(tmp_path):
    la = make_asvspoof2019(tmp_path, subsets=("train",))
    (la / "ASVspoof2019_LA_train/flac/LA_T_1271820.flac").unlink()
    with pytest.raises(DatasetError, match="audio file not found") as e:
        load_asvspoof2019(la)
    assert e.value.line == 2
    with pytest.warns(UserWarning, match="1 protocol line"):
        assert len(load_asvspoof2019(la, missing="skip")) == 2
    with pytest.raises(DatasetError, match="subset 'eval'"):
        load_asvspoof2019(la, subsets=["eval"])
    with pytest.raises(DatasetError, match="ASVspoof2019_LA_cm_protocols"):
        load_asvspoof2019(tmp_path / "LA" / "ASVspoof2019_LA_train")


# --- ASVspoof 2021 -------------------------------------------------------------------------------------

KEYS_LA = [
    "LA_0009 LA_E_9332881 alaw ita_tx A07 spoof notrim eval",
    "LA_0009 LA_E_1000001 none - bonafide bonafide notrim progress",
    "LA_0012 LA_E_1000002 gsm loc_tx A16 spoof trim hidden",
]
KEYS_DF = [
    "LA_0043 DF_E_2000011 nocodec asvspoof A14 spoof notrim progress traditional_vocoder - - - -",
    "LA_0043 DF_E_2000012 low_mp3 asvspoof - bonafide notrim eval - - - - -",
    "VCC2TM1 DF_E_2000013 high_m4a vcc2018 Task1-team20 spoof notrim eval neural_vocoder_autoregressive "
    "Task1 team20 M-M en",
]


def make_asvspoof2021(top: Path, track: str, lines: list[str], parts: bool = False) -> Path:
    keys = top / "keys" / "CM" / "trial_metadata.txt"
    keys.parent.mkdir(parents=True, exist_ok=True)
    keys.write_text("\n".join(lines) + "\n")
    for i, line in enumerate(lines):
        trial = line.split()[1]
        if parts:
            folder = top / f"ASVspoof2021_{track}_eval_part0{i % 2}" / f"ASVspoof2021_{track}_eval" / "flac"
        else:
            folder = top / f"ASVspoof2021_{track}_eval" / "flac"
        audio(folder / f"{trial}.flac")
    return keys


def test_asvspoof2021_la(tmp_path):
    make_asvspoof2021(tmp_path, "LA", KEYS_LA)
    ds = load_asvspoof2021(tmp_path)
    assert ds.name == "asvspoof2021_la" and len(ds) == 3
    a07, bona, a16 = ds
    assert (a07.system, a07.family, a07.speaker, a07.utt_group) == ("A07", "sps_world", "LA_0009", "LA_E_9332881")
    assert a07.extra == {
        "codec": "alaw",
        "transmission": "ita_tx",
        "trim": "notrim",
        "subset": "eval",
        "attack_type": "tts",
    }
    assert (bona.label, bona.system, bona.extra["codec"]) == ("bonafide", "bonafide", "none")
    assert "transmission" not in bona.extra  # "-" cells are left out
    assert a16.family == "concatenative" and a16.extra["trim"] == "trim"
    assert len(load_asvspoof2021(tmp_path, subsets=["eval"])) == 1
    assert detect_format(tmp_path) == "asvspoof2021"


def test_asvspoof2021_df_in_parts(tmp_path):
    make_asvspoof2021(tmp_path, "DF", KEYS_DF, parts=True)
    ds = load_dataset(tmp_path)
    assert ds.name == "asvspoof2021_df" and len(ds) == 3
    a14, bona, vcc = ds
    assert (a14.system, a14.family) == ("A14", "traditional_vocoder")
    assert a14.extra["codec"] == a14.extra["compression"] == "nocodec" and a14.extra["source"] == "asvspoof"
    assert bona.family == "bonafide" and bona.extra["codec"] == "low_mp3"
    assert (vcc.system, vcc.family, vcc.speaker) == ("Task1-team20", "neural_vocoder_autoregressive", "VCC2TM1")
    assert vcc.extra["gender_pair"] == "M-M" and vcc.extra["language"] == "en"
    assert "ASVspoof2021_DF_eval_part01" in str(bona.path)


def test_asvspoof2021_errors(tmp_path):
    keys = make_asvspoof2021(tmp_path, "LA", KEYS_LA)
    keys.write_text(keys.read_text() + "LA_0009 LA_E_1 alaw ita_tx A07 spoof notrim\n")
    with pytest.raises(DatasetError, match="expected 8 columns") as e:
        load_asvspoof2021(tmp_path)
    assert e.value.line == 4
    keys.write_text("\n".join(KEYS_LA) + "\nLA_0009 LA_E_7777777 alaw ita_tx A07 spoof notrim eval\n")
    with pytest.raises(DatasetError, match="LA_E_7777777") as e:
        load_asvspoof2021(tmp_path)
    assert e.value.line == 4 and e.value.path == str(keys)
    with pytest.warns(UserWarning, match="1 trial"):
        assert len(load_asvspoof2021(tmp_path, missing="skip")) == 3
    with pytest.raises(DatasetError, match="keys"):
        load_asvspoof2021(tmp_path / "ASVspoof2021_LA_eval")


# --- WaveFake ------------------------------------------------------------------------------------------


def test_wavefake(tmp_path):
    gen = tmp_path / "generated_audio"
    for folder in ("ljspeech_melgan", "ljspeech_hifiGAN", "ljspeech_parallel_wavegan"):
        audio(gen / folder / "LJ001-0001_gen.wav")
    audio(gen / "ljspeech_melgan" / "LJ001-0002_gen.wav")
    audio(gen / "jsut_multi_band_melgan" / "BASIC5000_0001_gen.wav")
    audio(gen / "common_voices_prompts_from_conformer_fastspeech2_pwg_ljspeech" / "generated" / "gen_0.wav")
    audio(tmp_path / "LJSpeech-1.1/wavs/LJ001-0001.wav")
    audio(tmp_path / "LJSpeech-1.1/wavs/LJ001-0002.wav")
    audio(tmp_path / "jsut_ver1.1/basic5000/wav/BASIC5000_0001.wav")
    ds = load_wavefake(gen, ljspeech=tmp_path / "LJSpeech-1.1", jsut=tmp_path / "jsut_ver1.1")
    assert len(ds) == 9 and ds.counts("label") == {"spoof": 6, "bonafide": 3}
    fam = {it.system: it.family for it in ds.filter(label="spoof")}
    assert fam == {
        "ljspeech_melgan": "melgan",
        "ljspeech_hifiGAN": "hifigan",
        "ljspeech_parallel_wavegan": "parallel_wavegan",
        "jsut_multi_band_melgan": "melgan",
        "common_voices_prompts_from_conformer_fastspeech2_pwg_ljspeech": "fastspeech",
    }
    lj1 = ds.filter(utt_group="ljspeech:LJ001-0001")
    assert lj1.counts("label") == {"spoof": 3, "bonafide": 1} and set(lj1.column("speaker")) == {"ljspeech"}
    assert ds.filter(utt_group="jsut:BASIC5000_0001").counts("label") == {"spoof": 1, "bonafide": 1}
    assert ds.filter(dataset="jsut")[0].extra["language"] == "ja"
    # the wavs folder works as well, and the real folders are optional
    assert len(load_wavefake(gen, ljspeech=tmp_path / "LJSpeech-1.1" / "wavs")) == 8
    assert len(load_dataset("wavefake:" + str(gen))) == 6
    with pytest.raises(DatasetError, match="ljspeech real-speech folder not found"):
        load_wavefake(gen, ljspeech=tmp_path / "missing")


# --- In-the-Wild ---------------------------------------------------------------------------------------


def test_in_the_wild(tmp_path):
    rel = tmp_path / "release_in_the_wild"
    for i in range(3):
        audio(rel / f"{i}.wav")
    (rel / "meta.csv").write_text(
        "file,speaker,label\n0.wav,Alec Guinness,spoof\n1.wav,Alec Guinness,bona-fide\n2.wav,Barack Obama,spoof\n"
    )
    for root in (tmp_path, rel, rel / "meta.csv"):
        ds = load_in_the_wild(root)
        assert len(ds) == 3
    assert detect_format(tmp_path) == detect_format(rel / "meta.csv") == "in_the_wild"
    assert list(ds.labels()) == [1, 0, 1] and ds[0].speaker == "Alec Guinness"
    assert ds[0].system == ds[0].family == "unknown" and ds[1].system == "bonafide"
    (rel / "meta.csv").write_text("file,speaker,label\n0.wav,A,spoof\n1.wav,A,maybe\n")
    with pytest.raises(DatasetError, match="unknown label") as e:
        load_in_the_wild(rel)
    assert e.value.line == 3


# --- Fake-or-Real --------------------------------------------------------------------------------------


def test_fake_or_real(tmp_path):
    norm = tmp_path / "for-norm"
    name = "file1.wav_16k.wav_norm.wav_mono.wav_silence.wav"
    for split in ("training", "validation", "testing"):
        audio(norm / split / "real" / name)
        audio(norm / split / "fake" / name.replace("file1", "file9"))
    audio(tmp_path / "for-2seconds" / "training" / "fake" / "file3.wav")
    ds = load_fake_or_real(norm)
    assert len(ds) == 6 and ds.counts("split") == {"training": 2, "validation": 2, "testing": 2}
    assert "version" not in ds[0].extra and ds.filter(label="spoof")[0].system == "unknown"
    both = load_dataset(tmp_path)
    assert len(both) == 7 and both.counts("version") == {"for-norm": 6, "for-2seconds": 1}
    assert len(set(both.column("utt_group"))) == 7


# --- DEEP-VOICE ----------------------------------------------------------------------------------------


def test_deep_voice(tmp_path):
    a = tmp_path / "KAGGLE" / "AUDIO"
    for who in ("biden", "linus", "taylor"):
        audio(a / "REAL" / f"{who}-original.wav")
    audio(a / "FAKE" / "biden-to-linus.wav")
    audio(a / "FAKE" / "linus-to-taylor.wav")
    (tmp_path / "KAGGLE" / "DATASET-balanced.csv").write_text("chroma_stft,LABEL\n")
    ds = load_dataset(tmp_path)
    assert ds.name == "deep_voice" and len(ds) == 5
    fake = ds.filter(lambda it: it.path.name == "biden-to-linus.wav")[0]
    assert (fake.speaker, fake.utt_group, fake.system, fake.family) == ("linus", "deep_voice:biden", "rvc", "rvc")
    assert fake.extra == {"source_speaker": "biden"}
    real_biden = ds.filter(speaker="biden")[0]
    assert real_biden.label == "bonafide" and real_biden.utt_group == fake.utt_group
    audio(a / "FAKE" / "mystery.wav")
    with pytest.raises(DatasetError, match="source>-to-<target"):
        load_deep_voice(a)


# --- MLAAD ---------------------------------------------------------------------------------------------


def test_mlaad(tmp_path):
    fake = tmp_path / "MLAAD" / "fake"
    models = {
        "de": ["tts_models_de_thorsten_vits", "facebook_mms-tts-deu", "tts_models_de_thorsten_tacotron2-DCA"],
        "en": ["tts_models_multilingual_multi-dataset_xtts_v2", "microsoft_speecht5_tts", "brand_new_model"],
    }
    for lang, names in models.items():
        for m in names:
            audio(fake / lang / m / "kleine_lord_01_f000001.wav")
    (fake / "de" / "tts_models_de_thorsten_vits" / "meta.csv").write_text("path|original_file\n")
    mailabs = tmp_path / "M-AILABS"
    audio(mailabs / "de_DE/by_book/female/eva_k/kleine_lord/wavs/kleine_lord_01_f000001.wav")
    audio(mailabs / "de_DE/by_book/mix/sammlung/wavs/sammlung_01_f000001.wav")
    ds = load_mlaad(tmp_path / "MLAAD", real=mailabs)
    assert len(ds) == 8
    fam = {it.system: it.family for it in ds.filter(label="spoof")}
    assert fam == {
        "tts_models_de_thorsten_vits": "vits",
        "facebook_mms-tts-deu": "vits",
        "tts_models_de_thorsten_tacotron2-DCA": "tacotron2",
        "tts_models_multilingual_multi-dataset_xtts_v2": "xtts",
        "microsoft_speecht5_tts": "speecht5",
        "brand_new_model": "brand_new_model",
    }
    assert set(ds.filter(label="spoof").column("language")) == {"de", "en"}
    real = ds.filter(label="bonafide")
    assert list(real.column("speaker")) == ["eva_k", ""] and set(real.column("dataset")) == {"m_ailabs"}
    assert set(real.column("language")) == {"de"}
    group = ds.filter(utt_group="mlaad_text:kleine_lord_01_f000001")
    assert group.counts("label") == {"spoof": 6, "bonafide": 1}
    assert len(load_dataset({"format": "mlaad", "path": tmp_path / "MLAAD" / "fake"})) == 6
    with pytest.raises(DatasetError, match="fake/<language>"):
        load_mlaad(mailabs)


# --- detection and families -------------------------------------------------------------------------


def test_load_dataset_detects_and_rejects(tmp_path):
    make_manifest(tmp_path / "m")
    assert detect_format(tmp_path / "m") == detect_format(tmp_path / "m" / "manifest.csv") == "manifest"
    assert len(load_dataset(str(tmp_path / "m" / "manifest.csv"))) == 2
    audio(tmp_path / "f" / "sub" / "Spoof" / "x.wav")
    assert detect_format(tmp_path / "f") == "folder"
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="unrecognised dataset layout"):
        load_dataset(tmp_path / "empty")
    with pytest.raises(DatasetError, match="not found"):
        load_dataset(tmp_path / "nothing")
    with pytest.raises(DatasetError, match="unknown dataset format"):
        load_dataset({"format": "nope", "path": tmp_path})
    assert load_dataset("folder:" + str(tmp_path / "f"), name="mine").name == "mine"


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("ljspeech_melgan_large", "melgan"),
        ("ljspeech_full_band_melgan", "melgan"),
        ("ljspeech_waveglow", "waveglow"),
        ("tts_models_en_ljspeech_glow-tts", "glowtts"),
        ("tts_models_multilingual_multi-dataset_your_tts", "yourtts"),
        ("tts_models_en_ljspeech_tacotron2-DDC_ph", "tacotron2"),
        ("tts_models_en_blizzard2013_capacitron-t2-c50", "tacotron"),
        ("tts_models_en_ljspeech_fast_pitch", "fastpitch"),
        ("suno_bark", "bark"),
        ("griffin_lim", "griffin_lim"),
        ("Some New-Model", "some_new_model"),
    ],
)
def test_family_rules(name, family):
    assert family_from_name(name) == family


# --- the real DEV corpus (skipped when absent) -------------------------------------------------------


@pytest.mark.corpus
def test_dev_corpus_manifest_loads_completely(corpus):
    ds = load_dataset(corpus)
    assert ds.name == corpus.name and len(ds) == 2208
    assert ds.counts("label") == {"bonafide": 1605, "spoof": 603}
    assert all(it.path.is_file() for it in ds)
    assert set(ds.filter(label="bonafide").column("family")) == {"bonafide"}
    assert len(set(ds.filter(label="spoof").column("family"))) == 21


def test_dataset_fingerprint_follows_the_data_not_the_checkout(tmp_path):
    import shutil

    from signals import write_tiny_corpus
    from voxguard.datasets import load_manifest
    from voxguard.evaluate.training import dataset_fingerprint

    (tmp_path / "a").mkdir()
    manifest = write_tiny_corpus(tmp_path / "a", n=6)
    shutil.copytree(tmp_path / "a", tmp_path / "elsewhere" / "b")
    moved = tmp_path / "elsewhere" / "b" / manifest.name
    assert dataset_fingerprint(load_manifest(manifest)) == dataset_fingerprint(load_manifest(moved))
    text = moved.read_text()
    relabelled = text.replace("bonafide", "spoof", 1) if "bonafide" in text else text.replace("spoof", "bonafide", 1)
    moved.write_text(relabelled)
    assert dataset_fingerprint(load_manifest(manifest)) != dataset_fingerprint(load_manifest(moved))
