"""Deterministic synthetic test signals (no corpus needed)."""

from __future__ import annotations

import numpy as np
from scipy import signal

# Formant frequencies (Hz) of a few vowels, used to make the source sound vowel-like.
VOWELS = ((730, 1090, 2440), (270, 2290, 3010), (300, 870, 2240), (530, 1840, 2480))


def tone(freq: float, sr: int, duration: float, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(sr * duration)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def speechlike(sr: int = 16_000, duration: float = 3.0, f0: float = 120.0, seed: int = 0) -> np.ndarray:
    """Voiced syllables: a glottal pulse train with vibrato through vowel formant resonators,
    amplitude-modulated at a syllable rate of 4 Hz, with short noise bursts like fricatives."""
    rng = np.random.default_rng(seed)
    n = int(sr * duration)
    t = np.arange(n) / sr
    inst_f0 = f0 * (1 + 0.05 * np.sin(2 * np.pi * 5 * t))
    phase = np.cumsum(inst_f0) / sr
    source = (np.diff(np.floor(phase), prepend=0) > 0).astype(np.float64)
    source = signal.lfilter([1.0], [1.0, -0.95], source)  # glottal roll-off
    out = np.zeros(n)
    seg = sr // 4
    for i, start in enumerate(range(0, n, seg)):
        chunk = source[start : start + seg]
        y = chunk
        for fc in VOWELS[i % len(VOWELS)]:
            b, a = signal.iirpeak(fc, Q=fc / 80.0, fs=sr)
            y = signal.lfilter(b, a, y)
        out[start : start + seg] = y
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 4 * t - np.pi / 2)
    out *= envelope
    bursts = rng.standard_normal(n) * (np.sin(2 * np.pi * 2 * t) > 0.97)
    out += 0.05 * bursts * np.abs(out).max()
    out /= np.abs(out).max()
    return (0.5 * out).astype(np.float32)


def encode_with_av(
    path, y: np.ndarray, sr: int, *, container: str, codec: str, rate: int | None = None, channels: int = 1
) -> None:
    """Encode mono float ``y`` with FFmpeg (PyAV) into ``path`` (e.g. M4A/AAC, WebM/Opus, MP3)."""
    import av

    rate = rate or sr
    layout = "mono" if channels == 1 else "stereo"
    with av.open(str(path), mode="w", format=container) as out:
        stream = out.add_stream(codec, rate=rate, layout=layout)
        frame_size = 1024
        resampler = av.AudioResampler(format=stream.codec_context.format.name, layout=layout, rate=rate)
        data = np.tile(y[None, :], (channels, 1)).astype(np.float32)
        for start in range(0, data.shape[1], frame_size):
            chunk = np.ascontiguousarray(data[:, start : start + frame_size])
            packed = chunk.T.reshape(1, -1) if channels > 1 else chunk
            frame = av.AudioFrame.from_ndarray(packed, format="flt", layout=layout)
            frame.sample_rate = sr
            for f in resampler.resample(frame):
                for packet in stream.encode(f):
                    out.mux(packet)
        for f in resampler.resample(None):
            for packet in stream.encode(f):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def make_clip(kind: str, seed: int, sr: int = 16_000, duration: float = 3.0) -> np.ndarray:
    """A clip of a tiny two-class corpus: ``real`` speech-like sound, or a "generator" artefact.

    ``lowpass`` loses the band above 3.5 kHz; ``buzz`` adds a 6 kHz tone (in the 4-7 kHz band).
    """
    rng = np.random.default_rng(seed)
    y = speechlike(sr, duration, f0=float(rng.uniform(90, 220)), seed=seed)
    if kind == "lowpass":
        y = signal.sosfilt(signal.butter(8, 3_500, fs=sr, output="sos"), y)
    elif kind == "buzz":
        y = y + 0.05 * np.sin(2 * np.pi * 6_000 * np.arange(len(y)) / sr)
    return (y * rng.uniform(0.3, 0.9)).astype(np.float32)


def write_tiny_corpus(root, n: int = 36, sr: int = 16_000, duration: float = 3.0):
    """WAVs of :func:`make_clip` (half real, half two fake "families") and a manifest CSV; returns its path."""
    import csv

    import soundfile as sf

    rows = []
    for i in range(n):
        kind = ["real", "real", "lowpass", "buzz"][i % 4]
        path = root / f"{kind}_{i}.wav"
        sf.write(path, make_clip(kind, i, sr, duration), sr, subtype="PCM_16")
        label = "bonafide" if kind == "real" else "spoof"
        rows.append(
            {
                "path": path.name,
                "label": label,
                "system": kind if label == "spoof" else "bonafide",
                "attack_type": "vocoder" if label == "spoof" else "bonafide",
                "speaker": f"spk{i % 6}",
                "dataset": "generated",
                "family": kind if label == "spoof" else "bonafide",
                "utt_group": f"u{i}",
            }
        )
    with open(root / "manifest.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return root / "manifest.csv"
