"""Audio input: every format, content sniffing, mixdown, resampling, streaming, typed errors."""

from __future__ import annotations

import io
import struct
import tracemalloc

import numpy as np
import pytest
import soundfile as sf

from signals import encode_with_av, speechlike, tone
from voxguard import errors
from voxguard.audio import from_array, iter_blocks, load, probe, resample

SR = 16_000


def dominant_frequency(y: np.ndarray, sr: int) -> float:
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    return float(np.argmax(spec) * sr / len(y))


# --------------------------------------------------------------------------- formats

SOUNDFILE_FORMATS = [
    ("wav", "WAV", "PCM_U8"),
    ("wav", "WAV", "PCM_16"),
    ("wav", "WAV", "PCM_24"),
    ("wav", "WAV", "PCM_32"),
    ("wav", "WAV", "FLOAT"),
    ("wav", "WAV", "DOUBLE"),
    ("flac", "FLAC", "PCM_16"),
    ("flac", "FLAC", "PCM_24"),
    ("ogg", "OGG", "VORBIS"),
    ("opus", "OGG", "OPUS"),
    ("mp3", "MP3", "MPEG_LAYER_III"),
    ("aiff", "AIFF", "PCM_16"),
]


@pytest.mark.parametrize(("ext", "fmt", "subtype"), SOUNDFILE_FORMATS)
def test_soundfile_formats_load_at_analysis_rate(tmp_path, ext, fmt, subtype):
    native = 48_000 if subtype == "OPUS" else 22_050
    y = tone(440.0, native, 1.5, amp=0.4)
    path = tmp_path / f"clip.{ext}"
    sf.write(path, y, native, format=fmt, subtype=subtype)
    audio = load(path)
    assert audio.sample_rate == SR
    assert audio.samples.dtype == np.float32
    assert audio.info.decoder == "soundfile"
    assert audio.info.sample_rate == native
    assert abs(audio.duration_s - 1.5) < 0.1  # lossy codecs add a little padding
    assert abs(dominant_frequency(audio.samples, SR) - 440.0) < 2.0
    if subtype not in ("VORBIS", "OPUS", "MPEG_LAYER_III"):
        reference = resample(y, native, SR)
        tol = 1e-2 if subtype == "PCM_U8" else 1e-3
        assert np.max(np.abs(audio.samples - reference)) < tol


AV_FORMATS = [
    ("m4a", "ipod", "aac", None),
    ("webm", "webm", "libopus", 48_000),
    ("amr", "amr", "libopencore_amrnb", 8_000),
]


@pytest.mark.parametrize(("ext", "container", "codec", "rate"), AV_FORMATS)
def test_ffmpeg_formats_load(tmp_path, ext, container, codec, rate):
    y = tone(440.0, SR, 1.5, amp=0.4)
    path = tmp_path / f"clip.{ext}"
    encode_with_av(path, y, SR, container=container, codec=codec, rate=rate)
    audio = load(path)
    assert audio.info.decoder == "pyav"
    assert audio.sample_rate == SR
    assert abs(audio.duration_s - 1.5) < 0.15
    assert abs(dominant_frequency(audio.samples, SR) - 440.0) < 3.0


def test_format_detected_by_content_not_extension(tmp_path):
    y = tone(300.0, SR, 1.0)
    misnamed = tmp_path / "really_a_flac.mp3"
    sf.write(misnamed, y, SR, format="FLAC")
    assert probe(misnamed).container == "FLAC"
    m4a_as_wav = tmp_path / "really_m4a.wav"
    encode_with_av(m4a_as_wav, y, SR, container="ipod", codec="aac")
    assert probe(m4a_as_wav).codec == "aac"
    no_extension = tmp_path / "noext"
    sf.write(no_extension, y, SR, format="WAV")
    assert load(no_extension).info.container == "WAV"


def test_bytes_and_file_objects(tmp_path):
    y = tone(500.0, SR, 1.0)
    buf = io.BytesIO()
    sf.write(buf, y, SR, format="WAV")
    data = buf.getvalue()
    from_bytes = load(data)
    from_file = load(io.BytesIO(data))
    np.testing.assert_array_equal(from_bytes.samples, from_file.samples)

    class Pipe(io.RawIOBase):  # a non-seekable stream like stdin
        def __init__(self, payload: bytes) -> None:
            self._inner = io.BytesIO(payload)

        def readable(self) -> bool:
            return True

        def seekable(self) -> bool:
            return False

        def readinto(self, b) -> int:
            chunk = self._inner.read(len(b))
            b[: len(chunk)] = chunk
            return len(chunk)

    from_pipe = load(io.BufferedReader(Pipe(data)))
    np.testing.assert_array_equal(from_pipe.samples, from_bytes.samples)


def test_stereo_is_mixed_to_mono(tmp_path):
    left = tone(300.0, SR, 1.0, amp=0.4)
    right = tone(700.0, SR, 1.0, amp=0.4)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), SR, subtype="FLOAT")
    audio = load(path)
    assert audio.info.channels == 2
    np.testing.assert_allclose(audio.samples, (left + right) / 2, atol=1e-6)


def test_native_rate_kept_when_asked(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, tone(440.0, 44_100, 0.5), 44_100)
    audio = load(path, sr=None)
    assert audio.sample_rate == 44_100 and len(audio.samples) == 22_050


# --------------------------------------------------------------------------- resampling


@pytest.mark.parametrize("native", [8_000, 22_050, 44_100, 48_000])
@pytest.mark.parametrize("freq", [200.0, 1_000.0, 3_500.0])
def test_resampling_keeps_tone_frequency(native, freq):
    y = tone(freq, native, 1.0)
    out = resample(y, native, SR)
    assert len(out) == SR
    assert abs(dominant_frequency(out, SR) - freq) <= 1.0


def test_resampling_removes_content_above_new_nyquist():
    y = tone(7_000.0, 48_000, 1.0) + tone(1_000.0, 48_000, 1.0)
    out = resample(y, 48_000, 8_000)  # 7 kHz is above the 4 kHz Nyquist: must not alias to 1 kHz
    spec = np.abs(np.fft.rfft(out))
    freqs = np.fft.rfftfreq(len(out), 1 / 8_000)
    assert spec[np.argmin(np.abs(freqs - 1_000))] > 100 * spec[np.argmin(np.abs(freqs - 1_000)) + 50]


# --------------------------------------------------------------------------- streaming


def test_blocks_concatenate_to_whole_load(tmp_path):
    y = speechlike(44_100, 5.0)
    path = tmp_path / "a.flac"
    sf.write(path, y, 44_100)
    blocks = list(iter_blocks(path, block_s=0.7))
    assert len(blocks) > 5
    np.testing.assert_allclose(np.concatenate(blocks), load(path).samples, atol=1e-6)


def test_one_decode_gives_every_rate_as_load_would(tmp_path, monkeypatch):
    import importlib

    from voxguard.audio import iter_blocks_at, load_at

    load_module = importlib.import_module("voxguard.audio.load")  # the module, not the function

    y = speechlike(44_100, 5.0)
    path = tmp_path / "a.flac"
    sf.write(path, y, 44_100)
    expected = [load(path, sr=rate) for rate in (16_000, 22_050, None)]
    decodes = []
    real_iter_frames = load_module.iter_frames
    monkeypatch.setattr(load_module, "iter_frames", lambda *a, **k: decodes.append(1) or real_iter_frames(*a, **k))
    got = load_at(path, (16_000, 22_050, None))
    assert len(decodes) == 1  # one decode for the three rates
    for audio, ref in zip(got, expected, strict=True):
        assert audio.sample_rate == ref.sample_rate and audio.info == ref.info
        np.testing.assert_array_equal(audio.samples, ref.samples)  # bit for bit
    blocks = list(iter_blocks_at(path, (16_000, 22_050), block_s=0.7))
    assert len(blocks) > 5 and all(len(b) == 2 for b in blocks)
    for k, rate in enumerate((16_000, 22_050)):
        np.testing.assert_array_equal(
            np.concatenate([b[k] for b in blocks]), np.concatenate(list(iter_blocks(path, sr=rate, block_s=0.7)))
        )
    with pytest.raises(errors.TooLongError):
        load_at(path, (16_000, 22_050), max_duration_s=2.0)


def test_long_file_is_streamed_with_bounded_memory(tmp_path):
    # 30 min at 8 kHz int16 (29 MB on disk); decoded whole at 16 kHz float32 it would be 115 MB.
    sr, minutes = 8_000, 30
    path = tmp_path / "long.wav"
    block = (tone(220.0, sr, 60.0) * 32767).astype(np.int16)
    with sf.SoundFile(path, "w", sr, 1, subtype="PCM_16") as fh:
        for _ in range(minutes):
            fh.write(block)
    tracemalloc.start()
    total = 0
    for chunk in iter_blocks(path, block_s=10.0):
        total += len(chunk)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert abs(total - minutes * 60 * SR) <= 16
    assert peak < 12 * 2**20, f"peak traced memory {peak / 2**20:.1f} MiB"


# --------------------------------------------------------------------------- errors


def test_missing_file(tmp_path):
    with pytest.raises(errors.AudioError, match="not found"):
        load(tmp_path / "nope.wav")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(errors.EmptyFileError):
        load(path)
    with pytest.raises(errors.EmptyFileError):
        load(b"")


def test_random_bytes_are_not_audio(tmp_path):
    path = tmp_path / "noise.wav"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 20_000, dtype=np.uint8).tobytes())
    with pytest.raises(errors.NotAudioError):
        load(path)


def test_text_file_is_not_audio(tmp_path):
    path = tmp_path / "notes.mp3"
    path.write_text("this is not audio\n" * 100)
    with pytest.raises(errors.NotAudioError):
        load(path)


def test_truncated_file_is_corrupt(tmp_path):
    buf = io.BytesIO()
    sf.write(buf, tone(440.0, SR, 1.0), SR, format="FLAC")
    path = tmp_path / "cut.flac"
    path.write_bytes(buf.getvalue()[:40])  # magic and part of the header only
    with pytest.raises((errors.CorruptAudioError, errors.ZeroLengthAudioError)):
        load(path)


def test_garbage_after_audio_magic_is_corrupt(tmp_path):
    path = tmp_path / "bad.wav"
    path.write_bytes(b"RIFF\x24\x00\x00\x00WAVE" + bytes(range(256)) * 4)
    with pytest.raises(errors.CorruptAudioError):
        load(path)


def test_zero_length_audio(tmp_path):
    path = tmp_path / "zero.wav"
    sf.write(path, np.zeros(0, dtype=np.float32), SR)
    with pytest.raises(errors.ZeroLengthAudioError):
        load(path)


def test_nan_samples(tmp_path):
    y = tone(440.0, SR, 1.0)
    y[100:200] = np.nan
    path = tmp_path / "nan.wav"
    sf.write(path, y, SR, subtype="FLOAT")
    with pytest.raises(errors.InvalidSamplesError, match="100 samples"):
        load(path)
    with pytest.raises(errors.InvalidSamplesError):
        from_array(np.array([0.0, np.inf, 0.0] * 1000), SR)


def _wav_header(sr: int, channels: int, n_frames: int) -> bytes:
    data_bytes = n_frames * channels * 2
    return (
        b"RIFF"
        + struct.pack("<I", 36 + data_bytes)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, channels, sr, sr * channels * 2, channels * 2, 16)
        + b"data"
        + struct.pack("<I", data_bytes)
    )


@pytest.mark.parametrize("rate", [1, 100, 1_000_000])
def test_absurd_sample_rate(tmp_path, rate):
    path = tmp_path / "rate.wav"
    path.write_bytes(_wav_header(rate, 1, 1000) + bytes(2000))
    with pytest.raises(errors.UnsupportedSampleRateError, match=str(rate)):
        load(path)


def test_too_many_channels(tmp_path):
    path = tmp_path / "many.wav"
    sf.write(path, np.zeros((SR, 9), dtype=np.float32), SR, format="WAV", subtype="PCM_16")
    with pytest.raises(errors.TooManyChannelsError, match="9 channels"):
        load(path)


def test_too_long(tmp_path):
    path = tmp_path / "long.wav"
    sf.write(path, tone(440.0, SR, 5.0), SR)
    with pytest.raises(errors.TooLongError, match="exceeds"):
        load(path, max_duration_s=2.0)
    with pytest.raises(errors.TooLongError):
        list(iter_blocks(path, max_duration_s=2.0))
    assert load(path, max_duration_s=10.0).duration_s == pytest.approx(5.0)


def test_errors_carry_path_and_code(tmp_path):
    path = tmp_path / "x.wav"
    path.write_text("hello")
    with pytest.raises(errors.VoxguardError) as info:
        load(path)
    assert info.value.path == str(path)
    assert info.value.to_dict()["error"] == "not_audio"
    assert 400 <= info.value.http_status < 500
