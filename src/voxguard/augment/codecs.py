"""Lossy codecs and the telephone channel, round-tripped in memory.

Every function takes and returns mono float32 at ``sr`` with the input's length; the codec's
priming delay is removed so the output lines up with the input sample for sample.
"""

from __future__ import annotations

import io

import numpy as np

from voxguard.audio.load import resample
from voxguard.errors import VoxguardError

# name -> (container, FFmpeg encoder, fixed coding rate or None for "the input's rate")
CODECS: dict[str, tuple[str, str, int | None]] = {
    "mp3": ("mp3", "libmp3lame", None),
    "aac": ("adts", "aac", None),
    "opus": ("ogg", "libopus", 48_000),
    "amr_nb": ("amr", "libopencore_amrnb", 8_000),
    "ulaw": ("wav", "pcm_mulaw", 8_000),
    "alaw": ("wav", "pcm_alaw", 8_000),
}
# AMR-NB codes at one of eight fixed modes (bit/s); the encoder snaps to the nearest.
AMR_NB_RATES = (4_750, 5_150, 5_900, 6_700, 7_400, 7_950, 10_200, 12_200)


def fit_length(y: np.ndarray, n: int) -> np.ndarray:
    """Cut or zero-pad ``y`` to ``n`` samples."""
    return y[:n] if len(y) >= n else np.pad(y, (0, n - len(y)))


def _align(decoded: np.ndarray, reference: np.ndarray, sr: int) -> np.ndarray:
    """Drop the encoder's priming delay (≤ 200 ms: AAC's is 2112 samples, 132 ms at 16 kHz).

    The delay is the lag of the cross-correlation peak between the first second of the input and
    the decoded signal (FFT-based, so the long search window stays cheap).
    """
    from scipy.signal import correlate

    max_lag = min(int(0.2 * sr), len(decoded) - 1)
    if max_lag > 0 and len(reference) > max_lag:
        probe = reference[: min(len(reference), sr)]
        corr = correlate(decoded[: len(probe) + max_lag], probe, mode="valid", method="fft")
        decoded = decoded[int(np.argmax(corr)) :]
    return fit_length(decoded, len(reference))


def encode(y: np.ndarray, sr: int, codec: str = "opus", bitrate: int | None = 24_000) -> tuple[bytes, int]:
    """Encode mono ``y`` with ``codec`` in memory; returns ``(file bytes, coding rate)``.

    The bytes are a complete file (MP3, ADTS AAC, Ogg Opus, AMR, WAV G.711 or Ogg Vorbis) that
    any decoder, :func:`voxguard.audio.load` included, reads. For Vorbis, ``bitrate`` is not used
    (see :func:`vorbis_roundtrip` for its quality setting).
    """
    import av

    if codec == "vorbis":
        return _vorbis_bytes(y, sr, 0.5), sr
    if codec not in CODECS:
        raise VoxguardError(f"unknown codec {codec!r}; choose from {', '.join([*CODECS, 'vorbis'])}")
    container_format, encoder, rate = CODECS[codec]
    rate = rate or sr
    x = np.clip(resample(y, sr, rate), -1.0, 1.0) if codec.endswith("law") else resample(y, sr, rate)
    buf = io.BytesIO()
    with av.open(buf, mode="w", format=container_format) as container:
        stream = container.add_stream(encoder, rate=rate, layout="mono")
        if bitrate and not codec.endswith("law"):  # G.711 is always 64 kbit/s
            stream.bit_rate = bitrate
        resampler = av.AudioResampler(format=stream.codec_context.format.name, layout="mono", rate=rate)
        for start in range(0, len(x), 4096):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(x[None, start : start + 4096]), format="flt", layout="mono"
            )
            frame.sample_rate = rate
            for f in resampler.resample(frame):
                container.mux(stream.encode(f))
        for f in resampler.resample(None):
            container.mux(stream.encode(f))
        container.mux(stream.encode(None))
    return buf.getvalue(), rate


def _decode(data: bytes) -> np.ndarray:
    import av

    chunks = []
    with av.open(io.BytesIO(data), mode="r") as container:
        for frame in container.decode(audio=0):
            chunks.append(frame.to_ndarray().reshape(-1, frame.layout.nb_channels).mean(axis=1))
    return np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)


def codec_roundtrip(y: np.ndarray, sr: int, codec: str = "opus", bitrate: int | None = 24_000) -> np.ndarray:
    """Encode with a lossy codec in memory (FFmpeg through PyAV) and decode back at ``sr``.

    Parameters
    ----------
    y : np.ndarray, shape (n,)
        Mono signal.
    sr : int
        Its sample rate (Hz).
    codec : {"mp3", "aac", "opus", "amr_nb", "ulaw", "alaw"}
        Opus codes at 48 kHz; AMR-NB and G.711 (μ-law/A-law) at 8 kHz, so they also band-limit.
    bitrate : int or None
        Bit/s (ignored by G.711, which is always 64 kbit/s).

    Returns
    -------
    np.ndarray, shape (n,), float32
    """
    if codec == "vorbis":
        return vorbis_roundtrip(y, sr)
    data, rate = encode(y, sr, codec, bitrate)
    decoded = resample(_decode(data), rate, sr)
    return _align(decoded, y.astype(np.float32, copy=False), sr)


def _vorbis_bytes(y: np.ndarray, sr: int, quality: float) -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, y.astype(np.float32), sr, format="OGG", subtype="VORBIS", compression_level=float(quality))
    return buf.getvalue()


def vorbis_roundtrip(y: np.ndarray, sr: int, quality: float = 0.5) -> np.ndarray:
    """Ogg Vorbis through libsndfile; ``quality`` 0 (best, ~75 kbit/s at 16 kHz) to 1 (worst, ~35)."""
    import soundfile as sf

    decoded, _ = sf.read(io.BytesIO(_vorbis_bytes(y, sr, quality)), dtype="float32")
    return _align(decoded.reshape(len(decoded), -1).mean(axis=1), y.astype(np.float32, copy=False), sr)


def telephone(y: np.ndarray, sr: int, codec: str = "ulaw", *, bitrate: int = 12_200) -> np.ndarray:
    """A narrow-band telephone channel: 300-3400 Hz band-pass, 8 kHz, then G.711 or AMR-NB.

    Parameters
    ----------
    codec : {"ulaw", "alaw", "amr_nb", "none"}
        G.711 μ-law (North America, Japan), A-law (elsewhere), or AMR-NB (mobile) at ``bitrate``.
    """
    from scipy.signal import butter, sosfiltfilt

    x = resample(y, sr, 8_000)
    sos = butter(4, [300, 3_400], btype="bandpass", fs=8_000, output="sos")
    x = sosfiltfilt(sos, x).astype(np.float32)
    if codec != "none":
        if codec not in ("ulaw", "alaw", "amr_nb"):
            raise VoxguardError(f"unknown telephone codec {codec!r}; choose from ulaw, alaw, amr_nb, none")
        x = codec_roundtrip(x, 8_000, codec, bitrate)
    return fit_length(resample(x, 8_000, sr), len(y))
