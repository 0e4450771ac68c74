"""Feature-extraction speed: voxguard against librosa on the same synthetic speech.

:func:`bench_features` measures CPU time (``time.process_time``, best of ``repeats``) of each feature
kind in this process, for voxguard and, when librosa is installed, for the equivalent librosa
computation with the same parameters. Speed is reported as x-real-time: seconds of audio processed
per CPU second.

Both sides run single-threaded: scipy's FFT uses one worker, and BLAS (which librosa's ``einsum``
and voxguard's filterbank products call) is limited to one thread through ``threadpoolctl`` when
it is installed. Without it, a multi-threaded BLAS may add the CPU time of idle-spinning threads
to both sides; the table says which case applied.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import scipy.fft
import scipy.signal

from voxguard.features import spectral as sp
from voxguard.features.deepvoice import deepvoice_features

__all__ = ["bench_features", "format_bench_table", "synth_speech"]

# voxguard's speech front-end parameters at 16 kHz, used for both sides of every comparison.
_STFT = {"n_fft": 512, "hop_length": 160, "win_length": 400}
_N_MELS = 40
_LFCC = {"n_fft": 512, "hop_length": 160, "win_length": 320, "window": "hamming"}


def synth_speech(duration_s: float, sr: int = 16000, seed: int = 0) -> np.ndarray:
    """Deterministic speech-like test signal (float32, peak 0.5).

    A glottal-like harmonic source (F0 100-180 Hz with declination and vibrato) through three
    formant resonators per vowel, crossfading between five vowels at a syllable rate of ~4 Hz,
    with a syllabic amplitude envelope, short noise bursts standing in for fricatives, and a
    -60 dB noise floor.
    """
    rng = np.random.default_rng(seed)
    n = int(round(duration_s * sr))
    t = np.arange(n) / sr
    f0 = 140.0 + 30.0 * np.sin(2 * np.pi * 0.2 * t) + 4.0 * np.sin(2 * np.pi * 5.5 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    n_harm = int(sr / 2 / 200)
    k = np.arange(1, n_harm + 1)[:, None]
    source = (np.sin(k * phase[None, :]) / k).sum(axis=0)

    vowels = ((730, 1090, 2440), (270, 2290, 3010), (530, 1840, 2480), (570, 840, 2410), (300, 870, 2240))
    voiced = np.zeros((len(vowels), n))
    for v, formants in enumerate(vowels):
        x = source
        for fc, bw in zip(formants, (80.0, 100.0, 120.0), strict=True):
            r = np.exp(-np.pi * bw / sr)
            x = scipy.signal.lfilter([1 - r], [1, -2 * r * np.cos(2 * np.pi * fc / sr), r * r], x)
        voiced[v] = x
    syllable = 0.25  # seconds per vowel
    pos = t / syllable
    idx = np.floor(pos).astype(int)
    order = rng.integers(0, len(vowels), size=idx.max() + 2)
    frac = pos - idx
    w = 0.5 - 0.5 * np.cos(np.pi * frac)  # raised-cosine crossfade to the next vowel
    cols = np.arange(n)
    y = (1 - w) * voiced[order[idx], cols] + w * voiced[order[idx + 1], cols]
    y /= np.max(np.abs(y)) + 1e-12
    envelope = 0.25 + 0.75 * np.sin(np.pi * frac) ** 2
    y *= envelope
    fricative = (frac > 0.85) & (order[idx] % 2 == 0)
    hiss = scipy.signal.lfilter([1, -0.9], [1], rng.standard_normal(n)) * 0.15
    y = np.where(fricative, hiss, y) + 1e-3 * rng.standard_normal(n)
    return (0.5 * y / np.max(np.abs(y))).astype(np.float32)


@contextlib.contextmanager
def _single_thread() -> Iterator[bool]:
    """Limit BLAS/OpenMP pools to one thread if threadpoolctl is available; yields whether it is."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield False
        return
    with threadpool_limits(limits=1):
        yield True


def _cpu_seconds(fn: Callable[[], Any], repeats: int) -> float:
    best = float("inf")
    for _ in range(max(1, repeats)):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return max(best, 1e-9)


def _voxguard_kinds(y: np.ndarray, sr: int) -> dict[str, Callable[[], Any]]:
    return {
        "stft/log-spec": lambda: sp.log_spectrogram(y, sr, **_STFT),
        "log-mel": lambda: sp.log_mel_spectrogram(y, sr, n_mels=_N_MELS, **_STFT),
        "mfcc": lambda: sp.mfcc(y, sr, 20, n_mels=_N_MELS, **_STFT),
        "mfcc+deltas": lambda: sp.with_deltas(sp.mfcc(y, sr, 20, n_mels=_N_MELS, **_STFT)),
        "lfcc": lambda: sp.lfcc(y, sr, 20, **_LFCC),
        "lfcc+deltas": lambda: sp.with_deltas(sp.lfcc(y, sr, 20, **_LFCC)),
        "cqcc": lambda: sp.cqcc(y, sr, 20),
        "deepvoice": lambda: deepvoice_features(y, sr),
    }


def _librosa_kinds(y: np.ndarray, sr: int, librosa: Any) -> dict[str, Callable[[], Any]]:
    """The same computations written with librosa (+ numpy/scipy where librosa has no such feature)."""
    lin_fb = np.array(sp.linear_filterbank(sr, _LFCC["n_fft"], 20))

    def log_spec() -> np.ndarray:
        return librosa.power_to_db(np.abs(librosa.stft(y, **_STFT)) ** 2, top_db=None)

    def log_mel() -> np.ndarray:
        return librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=sr, n_mels=_N_MELS, **_STFT))

    def mfcc() -> np.ndarray:
        return librosa.feature.mfcc(y=y, sr=sr, n_mfcc=20, n_mels=_N_MELS, **_STFT)

    def lfcc() -> np.ndarray:
        # librosa has no LFCC: its STFT and pre-emphasis, the same triangular bank, log10, DCT.
        pre = librosa.effects.preemphasis(y, coef=0.97)
        power = np.abs(librosa.stft(pre, **_LFCC)) ** 2
        energies = np.log10(np.maximum(lin_fb @ power, 1e-10))
        return scipy.fft.dct(energies, type=2, norm="ortho", axis=0)[:20]

    def stack(x: np.ndarray) -> np.ndarray:
        return np.concatenate([x, librosa.feature.delta(x), librosa.feature.delta(x, order=2)])

    def cqcc() -> np.ndarray:
        # librosa's CQT at the same resolution (hop 160 is not a multiple of 2**6, so librosa
        # cannot downsample and filters at full rate), then log and the same resampling + DCT.
        fmin = sr / 2 / 2**7
        cq = np.abs(librosa.cqt(y, sr=sr, hop_length=160, fmin=fmin, n_bins=672, bins_per_octave=96))
        return sp._cqcc_matrix(fmin, 672, 96, 16, 20) @ np.log(np.maximum(cq**2, 1e-10))

    def deepvoice() -> np.ndarray:
        rows = []
        for start in range(0, len(y) - sr + 1, sr):
            c = y[start : start + sr]
            row = [
                np.mean(librosa.feature.chroma_stft(y=c, sr=sr)),
                np.mean(librosa.feature.rms(y=c)),
                np.mean(librosa.feature.spectral_centroid(y=c, sr=sr)),
                np.mean(librosa.feature.spectral_bandwidth(y=c, sr=sr)),
                np.mean(librosa.feature.spectral_rolloff(y=c, sr=sr)),
                np.mean(librosa.feature.zero_crossing_rate(c)),
            ]
            rows.append(row + list(np.mean(librosa.feature.mfcc(y=c, sr=sr), axis=1)))
        return np.array(rows)

    return {
        "stft/log-spec": log_spec,
        "log-mel": log_mel,
        "mfcc": mfcc,
        "mfcc+deltas": lambda: stack(mfcc()),
        "lfcc": lfcc,
        "lfcc+deltas": lambda: stack(lfcc()),
        "cqcc": cqcc,
        "deepvoice": deepvoice,
    }


def bench_features(duration_s: float = 60.0, sr: int = 16000, repeats: int = 3) -> list[dict[str, Any]]:
    """Time every voxguard feature kind, and librosa's equivalent, on the same synthetic speech.

    Parameters
    ----------
    duration_s : float
        Length of the generated signal (:func:`synth_speech`, seed 0) in seconds.
    sr : int
        Sample rate in Hz; the frame parameters are voxguard's 16 kHz defaults in samples.
    repeats : int
        Timed runs per measurement; the best (smallest CPU time) is kept. Each function runs
        once untimed first (caches, numba compilation in librosa).

    Returns
    -------
    list of dict
        One row per kind with ``kind``, ``audio_s``, ``voxguard_cpu_s``, ``voxguard_xrt``
        (audio seconds per CPU second), ``librosa_cpu_s``, ``librosa_xrt`` and ``speedup``
        (librosa CPU time / voxguard CPU time; the librosa fields are None when librosa is not
        installed or fails on that kind), and ``single_thread`` (whether BLAS was limited to one
        thread).
    """
    y = synth_speech(duration_s, sr)
    warm = y[: min(len(y), 2 * sr)]
    try:
        import librosa
    except ImportError:
        librosa = None

    rows: list[dict[str, Any]] = []
    # librosa warns about its own internal short signals (e.g. in the CQT's octave recursion).
    with _single_thread() as limited, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ours = _voxguard_kinds(y, sr)
        ours_warm = _voxguard_kinds(warm, sr)
        theirs = _librosa_kinds(y, sr, librosa) if librosa is not None else {}
        theirs_warm = _librosa_kinds(warm, sr, librosa) if librosa is not None else {}
        for kind, fn in ours.items():
            ours_warm[kind]()
            cpu = _cpu_seconds(fn, repeats)
            row: dict[str, Any] = {
                "kind": kind,
                "audio_s": duration_s,
                "voxguard_cpu_s": cpu,
                "voxguard_xrt": duration_s / cpu,
                "librosa_cpu_s": None,
                "librosa_xrt": None,
                "speedup": None,
                "single_thread": limited,
            }
            if kind in theirs:
                try:
                    theirs_warm[kind]()
                    ref = _cpu_seconds(theirs[kind], repeats)
                except Exception:  # a librosa version that rejects these settings: report voxguard only
                    ref = None
                if ref is not None:
                    row.update(librosa_cpu_s=ref, librosa_xrt=duration_s / ref, speedup=ref / cpu)
            rows.append(row)
    return rows


def format_bench_table(rows: list[dict[str, Any]]) -> str:
    """Plain-text table of :func:`bench_features` rows (x-real-time = audio s / CPU s)."""

    def num(v: float | None, fmt: str) -> str:
        return "-" if v is None else format(v, fmt)

    header = f"{'kind':<14} {'voxguard xRT':>13} {'librosa xRT':>12} {'speed-up':>9}"
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(
            f"{r['kind']:<14} {num(r['voxguard_xrt'], '13.0f')} {num(r['librosa_xrt'], '12.0f')} "
            f"{num(r['speedup'], '8.1f') + ('x' if r['speedup'] is not None else ''):>9}"
        )
    if rows:
        threads = "BLAS limited to 1 thread" if rows[0]["single_thread"] else "BLAS threads not limited"
        lines.append(f"({rows[0]['audio_s']:g} s of synthetic speech, CPU time, best run; {threads})")
    return "\n".join(lines)
