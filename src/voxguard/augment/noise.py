"""Additive noise at a chosen signal-to-noise ratio: coloured noise, babble, music-like sound.

The SNR is the ratio of the mean power of ``y`` over the whole clip to that of the added noise
(what :func:`snr_db` measures back).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from voxguard.errors import VoxguardError

COLOURS = ("white", "pink", "brown")


def _power(x: np.ndarray) -> float:
    return float(np.mean(np.square(x, dtype=np.float64)))


def snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    """SNR (dB) of ``noisy`` against ``clean``: the noise is their difference."""
    return 10.0 * np.log10(_power(clean) / max(_power(noisy.astype(np.float64) - clean), 1e-30))


def mix_at_snr(y: np.ndarray, noise: np.ndarray, snr: float) -> np.ndarray:
    """Add ``noise`` (cut or looped to ``len(y)``) scaled so the result has ``snr`` dB SNR."""
    if len(noise) == 0 or _power(noise) == 0.0:
        raise VoxguardError("noise signal is empty or silent")
    noise = np.resize(noise, len(y)).astype(np.float64)  # np.resize loops a short noise
    scale = np.sqrt(_power(y) / _power(noise) / 10 ** (snr / 10))
    return (y + scale * noise).astype(np.float32)


def coloured_noise(n: int, colour: str = "white", *, seed: int = 0) -> np.ndarray:
    """Gaussian noise with a 1/f^0 (white), 1/f (pink) or 1/f² (brown) power spectrum, unit power."""
    if colour not in COLOURS:
        raise VoxguardError(f"unknown noise colour {colour!r}; choose from {', '.join(COLOURS)}")
    noise = np.random.default_rng(seed).standard_normal(n)
    if colour != "white":
        spec = np.fft.rfft(noise)
        exponent = 0.5 if colour == "pink" else 1.0  # amplitude ~ f^-exponent
        spec[1:] /= np.arange(1, len(spec)) ** exponent
        spec[0] = 0.0
        noise = np.fft.irfft(spec, n=n)
    return (noise / np.sqrt(_power(noise) + 1e-30)).astype(np.float32)


def add_noise(y: np.ndarray, snr_db: float, *, seed: int = 0, colour: str = "white") -> np.ndarray:
    """Add white, pink or brown noise at ``snr_db`` dB SNR."""
    return mix_at_snr(y, coloured_noise(len(y), colour, seed=seed), snr_db)


def babble(sources: Sequence[np.ndarray], n: int, *, talkers: int = 6, seed: int = 0) -> np.ndarray:
    """Babble noise: ``talkers`` speech signals at equal power, each from a random offset, looped to ``n``.

    Parameters
    ----------
    sources : sequence of np.ndarray
        Speech recordings at the rate of the target signal (e.g. real clips of a corpus).
    n : int
        Output length (samples).
    talkers : int
        How many voices overlap (drawn without replacement when there are enough sources).
    """
    usable = [s for s in sources if len(s) > 0 and _power(s) > 0]
    if not usable:
        raise VoxguardError("babble needs at least one non-silent speech source")
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(usable), size=talkers, replace=len(usable) < talkers)
    out = np.zeros(n, np.float64)
    for k in picks:
        s = usable[int(k)].astype(np.float64)
        s = np.roll(s, -int(rng.integers(len(s))))
        out += np.resize(s, n) / np.sqrt(_power(s))
    return (out / np.sqrt(_power(out) + 1e-30)).astype(np.float32)


def music_like(n: int, sr: int, *, seed: int = 0) -> np.ndarray:
    """Synthetic music-like background: chords of harmonic tones with decaying envelopes and drum hits.

    A stand-in for background music (no recordings ship with voxguard): tonal, with note onsets
    every 0.2-0.6 s and broadband percussive transients. Unit power.
    """
    rng = np.random.default_rng(seed)
    out = np.zeros(n, np.float64)
    pos = 0
    while pos < n:
        length = int(rng.uniform(0.2, 0.6) * sr)
        stop = min(n, pos + length)
        t = np.arange(stop - pos) / sr
        envelope = np.exp(-t * rng.uniform(2.0, 8.0))
        root = 110.0 * 2 ** (rng.integers(0, 24) / 12)  # A2..G#4
        for interval in (0, 4, 7):  # a major triad, 4 harmonics per note
            f0 = root * 2 ** (interval / 12)
            harmonics = np.arange(1, 5)[:, None]
            partials = np.sin(2 * np.pi * f0 * harmonics * t + rng.uniform(0, 2 * np.pi, (4, 1))) / harmonics
            out[pos:stop] += envelope * partials.sum(axis=0)
        if rng.random() < 0.5:  # a drum hit: a short burst of decaying noise
            hit = min(stop - pos, int(0.05 * sr))
            out[pos : pos + hit] += 2.0 * rng.standard_normal(hit) * np.exp(-np.arange(hit) / (0.01 * sr))
        pos = stop
    return (out / np.sqrt(_power(out) + 1e-30)).astype(np.float32)
