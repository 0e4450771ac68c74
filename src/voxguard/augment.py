"""Degradations applied to *both* classes during training, so the recording chain stops being a shortcut.

In the DEV corpus every lossy-coded and every narrow-band clip is real; a detector that learns
"compressed or band-limited = real" fails on real-world fakes, which are usually compressed. Each
function here is pure and seeded: ``(y, sr, ..., seed) -> y`` (mono float32, same rate and
length unless stated).
"""

from __future__ import annotations

import io

import numpy as np
import soxr

from voxguard.errors import VoxguardError

CODECS = {"opus": ("ogg", "libopus", 48_000), "mp3": ("mp3", "libmp3lame", None), "aac": ("adts", "aac", None)}


def band_limit(y: np.ndarray, sr: int, cutoff_hz: float) -> np.ndarray:
    """Remove content above ``cutoff_hz`` by resampling down to ``2 * cutoff_hz`` and back (soxr)."""
    low = int(2 * cutoff_hz)
    if low >= sr:
        return y.astype(np.float32, copy=False)
    out = soxr.resample(soxr.resample(y, sr, low, quality="HQ"), low, sr, quality="HQ")
    return _fit_length(out.astype(np.float32), len(y))


def _fit_length(y: np.ndarray, n: int) -> np.ndarray:
    return y[:n] if len(y) >= n else np.pad(y, (0, n - len(y)))


def codec_roundtrip(y: np.ndarray, sr: int, codec: str = "opus", bitrate: int = 24_000) -> np.ndarray:
    """Encode with a lossy codec through FFmpeg (PyAV) in memory and decode back at ``sr``.

    Codec delay is compensated by cross-correlation so the output stays aligned with the input.
    """
    import av

    if codec not in CODECS:
        raise VoxguardError(f"unknown codec {codec!r}; choose from {', '.join(CODECS)}")
    fmt, encoder, rate = CODECS[codec]
    rate = rate or sr
    x = soxr.resample(y, sr, rate, quality="HQ").astype(np.float32) if rate != sr else y.astype(np.float32)
    buf = io.BytesIO()
    with av.open(buf, mode="w", format=fmt) as container:
        stream = container.add_stream(encoder, rate=rate, layout="mono")
        stream.bit_rate = bitrate
        resampler = av.AudioResampler(format=stream.codec_context.format.name, layout="mono", rate=rate)
        for start in range(0, len(x), 4096):
            frame = av.AudioFrame.from_ndarray(x[None, start : start + 4096], format="flt", layout="mono")
            frame.sample_rate = rate
            for f in resampler.resample(frame):
                container.mux(stream.encode(f))
        for f in resampler.resample(None):
            container.mux(stream.encode(f))
        container.mux(stream.encode(None))
    buf.seek(0)
    chunks = []
    with av.open(buf, mode="r") as container:
        for frame in container.decode(audio=0):
            chunks.append(frame.to_ndarray().reshape(-1, frame.layout.nb_channels).mean(axis=1))
    decoded = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    if rate != sr:
        decoded = soxr.resample(decoded, rate, sr, quality="HQ").astype(np.float32)
    # Remove the encoder's priming delay (up to 50 ms) so frames line up with the input.
    max_lag = min(int(0.05 * sr), len(decoded) - 1)
    if max_lag > 0 and len(y) > max_lag:
        probe = y[: min(len(y), sr)]
        corr = np.correlate(decoded[: len(probe) + max_lag], probe, mode="valid")
        decoded = decoded[int(np.argmax(corr)) :]
    return _fit_length(decoded, len(y))


def add_noise(y: np.ndarray, snr_db: float, *, seed: int = 0, colour: str = "white") -> np.ndarray:
    """Add white or pink noise at ``snr_db`` relative to the signal's mean power."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(len(y))
    if colour == "pink":  # 1/f power: scale the spectrum by 1/sqrt(f)
        spec = np.fft.rfft(noise)
        spec[1:] /= np.sqrt(np.arange(1, len(spec)))
        noise = np.fft.irfft(spec, n=len(y))
    p_signal = float(np.mean(np.square(y, dtype=np.float64))) + 1e-20
    p_noise = float(np.mean(np.square(noise))) + 1e-20
    noise *= np.sqrt(p_signal / p_noise / 10 ** (snr_db / 10))
    return (y + noise).astype(np.float32)


def random_degradation(y: np.ndarray, sr: int, *, seed: int) -> tuple[np.ndarray, str]:
    """One degradation drawn from the default training policy; returns ``(y, description)``.

    Policy (uniform over kinds): band-limit to 3.4/4/5.5 kHz; Opus 12-48 kbit/s; MP3 32-128 kbit/s;
    white or pink noise at 10-30 dB SNR.
    """
    rng = np.random.default_rng(seed)
    kind = rng.choice(["band", "opus", "mp3", "noise"])
    if kind == "band":
        cutoff = float(rng.choice([3_400, 4_000, 5_500]))
        return band_limit(y, sr, cutoff), f"band_limit {cutoff:.0f} Hz"
    if kind == "opus":
        rate = int(rng.choice([12_000, 16_000, 24_000, 32_000, 48_000]))
        return codec_roundtrip(y, sr, "opus", rate), f"opus {rate // 1000} kbit/s"
    if kind == "mp3":
        rate = int(rng.choice([32_000, 64_000, 128_000]))
        return codec_roundtrip(y, sr, "mp3", rate), f"mp3 {rate // 1000} kbit/s"
    snr = float(rng.uniform(10, 30))
    colour = str(rng.choice(["white", "pink"]))
    return add_noise(y, snr, seed=seed, colour=colour), f"{colour} noise {snr:.0f} dB"
