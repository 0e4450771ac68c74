"""Speed benchmarks: feature extraction against librosa, and the whole scan path against the seed.

Feature-extraction speed: voxguard against librosa on the same synthetic speech.

:func:`bench_features` measures CPU time (``time.process_time``, best of ``repeats``) of each feature
kind in this process, for voxguard and, when librosa is installed, for the equivalent librosa
computation with the same parameters. Speed is reported as x-real-time: seconds of audio processed
per CPU second.

Both sides run single-threaded: scipy's FFT uses one worker, and BLAS (which librosa's ``einsum``
and voxguard's filterbank products call) is limited to one thread through ``threadpoolctl`` when
it is installed. Without it, a multi-threaded BLAS may add the CPU time of idle-spinning threads
to both sides; the table says which case applied.

:func:`bench_scan` times every stage of scanning (decoding, the canonical preprocessing, each
feature view of the model, ONNX inference, the whole ``Scanner.scan``) next to the seed study's
pipeline (librosa features per 1-s window + a scikit-learn RBF SVC) on the same audio in the same
process, in CPU seconds and wall seconds. :func:`peak_rss_scan` measures the peak resident memory
of scanning a long generated recording in a fresh subprocess. :func:`bench_scale` times one batch of
files on 1, 2, ... workers with the process pool and a local Dask cluster.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.fft
import scipy.signal

from voxguard.features import spectral as sp
from voxguard.features.deepvoice import deepvoice_features

__all__ = [
    "bench_features",
    "bench_scale",
    "bench_scan",
    "format_bench_table",
    "format_scale_bench",
    "format_scan_bench",
    "machine_info",
    "peak_rss_scan",
    "synth_speech",
    "write_scale_batch",
    "write_speech_wav",
]

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
        return librosa_deepvoice(librosa, y, sr)

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


# ---------------------------------------------------------------------------------------------
# The scan path, stage by stage, against the seed pipeline.

#: Row names of :func:`bench_scan` (feature rows are named ``features: VIEW`` after the model's views).
SEED_STAGE = "seed pipeline (librosa + sklearn SVC)"
SCAN_STAGE = "scan (load_detector().scan)"
#: Stages timed when the model has a wide-band companion (generated input only): the same speech
#: at 22.05 kHz scanned by the main model alone, and with the companion mixed in.
WIDE_MAIN_STAGE = "scan 22.05-kHz input, main model only"
WIDE_COMPANION_STAGE = "scan 22.05-kHz input with the wide-band companion"
#: The same at 44.1 kHz as a 128-kbit/s MP3, the usual form of a shared clip: decoding it costs
#: about as much as a scan, so it is decoded once for both rates (:func:`voxguard.audio.load_at`).
MP3_COMPANION_STAGE = "scan 44.1-kHz MP3 input with the wide-band companion"
_SYNTH_BLOCK_S = 30.0  # synth_speech's memory grows ~45 bytes per harmonic per sample: generate in blocks


def write_speech_wav(
    path: str | os.PathLike[str], duration_s: float, sr: int = 16000, *, block_s: float = _SYNTH_BLOCK_S
) -> float:
    """Write a deterministic speech-like 16-bit mono WAV, generated and written block by block.

    Block ``i`` is :func:`synth_speech` of ``block_s`` seconds with seed ``i``. At most 120 s of
    distinct audio is generated (and kept, float32); longer files repeat those blocks cyclically,
    so an hour-long file costs seconds to make and memory does not grow with its length.

    Parameters
    ----------
    path : path
        Output file (WAV, PCM 16-bit).
    duration_s : float
        Length in seconds.
    sr : int
        Sample rate in Hz.
    block_s : float
        Seconds generated per :func:`synth_speech` call.

    Returns
    -------
    float
        The duration written, in seconds.
    """
    import soundfile as sf

    if duration_s <= 0 or block_s <= 0:
        raise ValueError("duration_s and block_s must be positive")
    total = int(round(duration_s * sr))
    block_n = max(1, int(round(block_s * sr)))
    n_unique = max(1, min(math.ceil(total / block_n), math.ceil(120.0 / block_s)))
    cache: dict[int, np.ndarray] = {}
    written = 0
    with sf.SoundFile(str(path), mode="w", samplerate=sr, channels=1, subtype="PCM_16", format="WAV") as fh:
        i = 0
        while written < total:
            key = i % n_unique
            if key not in cache:
                cache[key] = synth_speech(block_n / sr, sr, seed=key)
            block = cache[key][: total - written]
            fh.write(block)
            written += len(block)
            i += 1
    return written / sr


def _timed_rounds(fns: Sequence[Callable[[], Any]], repeats: int) -> list[tuple[float, float]]:
    """Best CPU and best wall seconds of each function over ``repeats`` rounds, after one warm-up each.

    Every round runs all the functions once, in turn, so a slow spell of a shared machine hits
    every stage (and the seed pipeline) alike instead of whichever happened to run during it:
    the ratios between stages are then steadier than with all the repeats of one stage in a row.
    """
    for fn in fns:
        fn()
    best = [[float("inf"), float("inf")] for _ in fns]
    for _ in range(max(1, repeats)):
        for k, fn in enumerate(fns):
            c0, w0 = time.process_time(), time.perf_counter()
            fn()
            best[k][0] = min(best[k][0], time.process_time() - c0)
            best[k][1] = min(best[k][1], time.perf_counter() - w0)
    return [(max(c, 1e-9), max(w, 1e-9)) for c, w in best]


def _seed_classifier(n_support: int, n_features: int = 26, seed: int = 0) -> tuple[Any, Any]:
    """A ``StandardScaler`` + ``SVC(kernel="rbf")`` fitted on random data with about ``n_support``
    support vectors, so that its ``predict`` costs what the seed's SVM would (the cost of an RBF
    SVM is proportional to its support vectors, not to what it learned)."""
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    rng = np.random.default_rng(seed)
    n = round(n_support / 0.97)  # random labels: ~97 % of the points become support vectors
    X = rng.standard_normal((n, n_features))
    labels = rng.integers(0, 2, size=n)
    scaler = StandardScaler().fit(X)
    svc = SVC(kernel="rbf", C=1.0, gamma="scale").fit(scaler.transform(X), labels)
    return scaler, svc


def librosa_deepvoice(librosa: Any, y: np.ndarray, sr: int) -> np.ndarray:
    """The seed's 26 features per 1-s window computed with librosa itself (the reference that
    :func:`voxguard.features.deepvoice.deepvoice_features` reproduces), shape (n_windows, 26)."""
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
        rows.append(row + list(np.mean(librosa.feature.mfcc(y=c, sr=sr, n_mfcc=20), axis=1)))
    return np.array(rows, dtype=np.float64).reshape(-1, 26)


def _seed_pipeline(paths: Sequence[Path], librosa: Any, scaler: Any, svc: Any) -> Callable[[], list[np.ndarray]]:
    """The seed study's path: native-rate ``librosa.load``, its 26 features per 1-s window, SVC."""

    def run() -> list[np.ndarray]:
        out = []
        for p in paths:
            y, sr = librosa.load(str(p), sr=None)
            X = librosa_deepvoice(librosa, y, int(sr))
            out.append(svc.predict(scaler.transform(X)) if len(X) else np.zeros(0))
        return out

    return run


def bench_scan(
    files_or_duration: float | Sequence[str | os.PathLike[str]],
    *,
    repeats: int = 3,
    model: str | os.PathLike[str] | None = None,
    sr: int = 16000,
    seed_support_vectors: int = 2000,
    watermark: bool = False,
) -> list[dict[str, Any]]:
    """Time each stage of a scan, and the seed study's pipeline, on the same audio in one process.

    Stages (each over all inputs; the audio is decoded/prepared once beforehand for the stages
    that start from it):

    - ``decode``: :func:`voxguard.audio.load` at the model's rate (resampling included);
    - ``preprocess``: the model's canonical preprocessing (``Detector.prepare_array``: DC, VAD,
      trimming, BS.1770 loudness, re-quantisation) on the decoded signal;
    - ``features: VIEW``: :func:`~voxguard.features.segmental.frame_matrix` with one view of the
      model's config at a time, then ``features: all views`` (one shared STFT, as scanning does)
      and ``pooling`` (:func:`~voxguard.features.segmental.pool_segments`); for a window-level
      model (``seed-svm``) a single ``features: deepvoice`` row;
    - ``ONNX inference``: ``detector.model.score`` on precomputed segment vectors (segments of
      the model's ``segment_s`` every half of it, as the scanner cuts them);
    - ``scan``: ``load_detector(model).scan(path)``, everything included;
    - the seed pipeline: ``librosa.load(sr=None)``, the 26 DEEP-VOICE features per 1-s window
      computed with librosa as the seed did, ``StandardScaler`` + ``SVC(kernel="rbf").predict``
      (fitted beforehand on random data with ~``seed_support_vectors`` support vectors);
    - the seed model through voxguard: native-rate decode + :func:`deepvoice_features` +
      the shipped ``seed-svm`` ONNX model, and ``load_detector("seed-svm").scan``.

    Parameters
    ----------
    files_or_duration : float or sequence of paths
        Audio files, or a duration in seconds of :func:`synth_speech` audio written to a
        temporary 16-bit WAV (:func:`write_speech_wav`).
    repeats : int
        Timed rounds after one untimed warm-up run of every stage; each round runs every stage
        once, in turn (:func:`_timed_rounds`), and the best CPU time and the best wall time of
        each stage are kept (separately).
    model : str or path, optional
        Shipped model name or ``.onnx`` path (default: the default model).
    sr : int
        Sample rate of the generated WAV.
    seed_support_vectors : int
        Support vectors of the stand-in seed SVM.
    watermark : bool
        Also time the Perth watermark check (:mod:`voxguard.models.watermark`) on the decoded
        audio and a whole ``scan`` with it (``Scanner(watermark=True)``).

    Returns
    -------
    list of dict
        One row per stage: ``stage``, ``audio_s`` (seconds of input audio, before trimming),
        ``cpu_s``, ``wall_s``, ``xrt_cpu`` and ``xrt_wall`` (audio seconds per CPU / wall second),
        ``vs_seed_cpu`` and ``vs_seed_wall`` (seed pipeline time / this stage's time: how many
        times less time it takes than the whole seed pipeline on the same audio; ``None`` without
        librosa/scikit-learn), ``note``, ``model``, ``single_thread`` (BLAS limited to one thread).
        The seed row has ``None`` timings and ``note == "not installed"`` when librosa or
        scikit-learn is missing.
    """
    from voxguard.audio import load, segment_bounds
    from voxguard.features.segmental import SegmentalConfig, frame_matrix, pool_segments
    from voxguard.scan import load_detector

    with contextlib.ExitStack() as stack:
        if isinstance(files_or_duration, int | float):
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="voxguard-bench-")))
            paths = [tmp / f"speech_{files_or_duration:g}s.wav"]
            write_speech_wav(paths[0], float(files_or_duration), sr)
        else:
            paths = [Path(p) for p in files_or_duration]
            if not paths:
                raise ValueError("no input files")

        scanner = load_detector(model)
        det = scanner.detector
        seed_scanner = load_detector("seed-svm")
        seed_det = seed_scanner.detector
        decoded = [load(p, sr=det.sample_rate, max_duration_s=None) for p in paths]
        audio_s = sum(a.duration_s for a in decoded)
        prepared = [det.prepare_array(a.samples, a.sample_rate) for a in decoded]

        stages: list[tuple[str, Callable[[], Any], str]] = [
            (
                "decode (voxguard.audio.load)",
                lambda: [load(p, sr=det.sample_rate, max_duration_s=None) for p in paths],
                "",
            )
        ]
        if det.preprocess_config is not None:
            stages.append(
                (
                    "preprocess (canonical)",
                    lambda: [det.prepare_array(a.samples, a.sample_rate) for a in decoded],
                    "VAD, trim, BS.1770 loudness, re-quantise",
                )
            )
        cfg = det.segmental
        if cfg is not None:
            for view in cfg.views:
                one = SegmentalConfig(views=(view,), stats=cfg.stats, sample_rate=cfg.sample_rate)
                stages.append(
                    (f"features: {view}", lambda one=one: [frame_matrix(y, s, one) for y, s, _ in prepared], "")
                )
            bounds = [segment_bounds(len(y), s, det.segment_s, det.segment_s / 2) for y, s, _ in prepared]
            stages.append(
                (
                    "features: all views",
                    lambda: [frame_matrix(y, s, cfg) for y, s, _ in prepared],
                    "one shared STFT, as scanning computes them",
                )
            )
            if det.frame_input or det.members:
                # Frame models (crops into a network) and fusions (members, then the fusion graph)
                # have no pooled-vector input: time their whole model step on the computed frames.
                stages.append(
                    (
                        "model (crops/members + ONNX)",
                        lambda: [det.segment_scores(y, s, b) for (y, s, _), b in zip(prepared, bounds, strict=True)],
                        "includes the frame features",
                    )
                )
                vectors = None
            else:
                frames = [frame_matrix(y, s, cfg) for y, s, _ in prepared]
                stages.append(
                    (
                        "pooling (segment mean/std)",
                        lambda: [pool_segments(f, b, cfg) for f, b in zip(frames, bounds, strict=True)],
                        "",
                    )
                )
                vectors = [pool_segments(f, b, cfg) for f, b in zip(frames, bounds, strict=True)]
                vectors = [v[np.isfinite(v).all(axis=1)] for v in vectors]  # as scanning: silent segments unscored
        else:
            stages.append(
                (f"features: {det.kind}", lambda: [det.features(y, s) for y, s, _ in prepared], "per 1-s window")
            )
            vectors = [det.features(y, s)[0] for y, s, _ in prepared]
        if vectors is not None:
            n_vec = sum(len(v) for v in vectors)
            stages.append(
                (
                    "ONNX inference",
                    lambda: [det.model.score(v) for v in vectors],
                    f"{n_vec} vectors of {vectors[0].shape[1] if vectors else 0} features",
                )
            )
        stages.append((SCAN_STAGE, lambda: [scanner.scan(p) for p in paths], f"model {det.name}"))
        if scanner.companion is not None and isinstance(files_or_duration, int | float):
            # Wide-band input: the same generated speech at 22.05 kHz (it has the band above 8 kHz),
            # scanned by the main model alone and with the companion mixed in.
            wide_path = tmp / f"speech_{files_or_duration:g}s_22k.wav"
            write_speech_wav(wide_path, float(files_or_duration), 22_050)
            narrow_scanner = load_detector(model, wide_band=False)
            name = scanner.companion.name
            stages.append(
                (
                    WIDE_MAIN_STAGE,
                    lambda: narrow_scanner.scan(wide_path),
                    "--no-wide-band",
                )
            )
            stages.append(
                (
                    WIDE_COMPANION_STAGE,
                    lambda: scanner.scan(wide_path),
                    f"{det.name} + {name}",
                )
            )
            import soundfile as sf

            from voxguard.augment.codecs import encode

            wav44 = tmp / f"speech_{files_or_duration:g}s_44k.wav"
            write_speech_wav(wav44, float(files_or_duration), 44_100)
            mp3_path = tmp / f"speech_{files_or_duration:g}s_44k.mp3"
            mp3_path.write_bytes(encode(sf.read(wav44, dtype="float32")[0], 44_100, "mp3", 128_000)[0])
            stages.append((MP3_COMPANION_STAGE, lambda: scanner.scan(mp3_path), f"{det.name} + {name}"))
        if watermark:
            from voxguard.models.watermark import load_watermark_decoder

            mark_decoder = load_watermark_decoder()
            mark_scanner = load_detector(model, watermark=True)
            stages.append(
                (
                    "watermark check (Perth decoder)",
                    lambda: [mark_decoder.check(a.samples, a.sample_rate) for a in decoded],
                    "32-kHz STFT + three conv stacks (ONNX)",
                )
            )
            stages.append(
                ("scan with --watermark", lambda: [mark_scanner.scan(p) for p in paths], f"model {det.name} + Perth")
            )

        def seed_via_voxguard() -> list[np.ndarray]:
            out = []
            for p in paths:
                a = load(p, sr=None, max_duration_s=None)
                X, _ = seed_det.features(a.samples, a.sample_rate)
                out.append(seed_det.model.score(X))
            return out

        stages.append(
            (
                "seed-svm via voxguard (deepvoice + ONNX)",
                seed_via_voxguard,
                "native-rate decode, 26 features per 1-s window, seed-svm ONNX",
            )
        )
        stages.append(
            ("seed-svm scan (load_detector('seed-svm').scan)", lambda: [seed_scanner.scan(p) for p in paths], "")
        )

        try:
            import librosa

            scaler, svc = _seed_classifier(seed_support_vectors)
            seed_fn: Callable[[], Any] | None = _seed_pipeline(paths, librosa, scaler, svc)
            seed_note = f"librosa {librosa.__version__}, SVC with {int(svc.n_support_.sum())} support vectors"
        except ImportError:
            seed_fn, seed_note = None, "not installed"

        rows: list[dict[str, Any]] = []
        timed = [fn for _, fn, _ in stages] + ([seed_fn] if seed_fn is not None else [])
        with _single_thread() as limited, warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            best = _timed_rounds(timed, repeats)
            for (name, _, note), (cpu, wall) in zip(stages, best, strict=False):
                rows.append(_scan_row(name, audio_s, cpu, wall, note, det.name, limited))
            if seed_fn is not None:
                cpu, wall = best[-1]
                rows.append(_scan_row(SEED_STAGE, audio_s, cpu, wall, seed_note, "seed SVC (stand-in)", limited))
            else:
                rows.append(_scan_row(SEED_STAGE, audio_s, None, None, seed_note, "seed SVC (stand-in)", limited))

    seed = rows[-1]
    for r in rows:
        if seed["cpu_s"] is not None and r["cpu_s"] is not None:
            r["vs_seed_cpu"] = seed["cpu_s"] / r["cpu_s"]
            r["vs_seed_wall"] = seed["wall_s"] / r["wall_s"]
    return rows


def _scan_row(
    stage: str, audio_s: float, cpu: float | None, wall: float | None, note: str, model: str, limited: bool
) -> dict[str, Any]:
    return {
        "stage": stage,
        "audio_s": audio_s,
        "cpu_s": cpu,
        "wall_s": wall,
        "xrt_cpu": None if cpu is None else audio_s / cpu,
        "xrt_wall": None if wall is None else audio_s / wall,
        "vs_seed_cpu": None,
        "vs_seed_wall": None,
        "note": note,
        "model": model,
        "single_thread": limited,
    }


def format_scan_bench(rows: list[dict[str, Any]], *, markdown: bool = False) -> str:
    """Table of :func:`bench_scan` rows: x real time per CPU second and per wall second, and the
    ratio to the seed pipeline (seed time / stage time), as plain text or Markdown."""

    def num(v: float | None, fmt: str, suffix: str = "") -> str:
        return "-" if v is None else format(v, fmt) + suffix

    cols = ("stage", "x RT / CPU s", "x RT / wall s", "vs seed (CPU)", "vs seed (wall)", "note")
    body = [
        (
            r["stage"],
            num(r["xrt_cpu"], ",.0f"),
            num(r["xrt_wall"], ",.0f"),
            num(r["vs_seed_cpu"], ",.1f", "x"),
            num(r["vs_seed_wall"], ",.1f", "x"),
            r["note"],
        )
        for r in rows
    ]
    if markdown:
        lines = ["| " + " | ".join(cols) + " |", "|" + "|".join([":---", *["---:"] * 4, ":---"]) + "|"]
        lines += ["| " + " | ".join(b) + " |" for b in body]
    else:
        widths = [max(len(c), *(len(b[i]) for b in body)) if body else len(c) for i, c in enumerate(cols)]
        fmt = "  ".join(f"{{:<{w}}}" if i in (0, len(cols) - 1) else f"{{:>{w}}}" for i, w in enumerate(widths))
        lines = [fmt.format(*cols).rstrip(), "-" * sum(widths[:-1]) + "-" * (2 * (len(cols) - 1))]
        lines += [fmt.format(*b).rstrip() for b in body]
    if rows:
        threads = "BLAS limited to 1 thread" if rows[0]["single_thread"] else "BLAS threads not limited"
        lines.append("")
        lines.append(
            f"({rows[0]['audio_s']:g} s of audio; best run of each; ONNX Runtime 1 thread; {threads}; "
            f"'vs seed' = seed pipeline time / stage time)"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Peak memory of scanning a long recording.

_RSS_CHILD = r"""
import json, sys, time

def hwm_kb():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")

import voxguard
model = sys.argv[2] or None
scanner = voxguard.load_detector(model)
base = hwm_kb()
c0, w0 = time.process_time(), time.perf_counter()
result = scanner.scan(sys.argv[1])
cpu, wall = time.process_time() - c0, time.perf_counter() - w0
print(json.dumps({"baseline_kb": base, "peak_kb": hwm_kb(), "cpu_s": cpu, "wall_s": wall,
                  "verdict": None if result.verdict is None else str(result.verdict.value),
                  "duration_s": result.duration_s, "model": scanner.model_name}))
"""


def peak_rss_scan(
    duration_s: float = 3600.0,
    *,
    model: str | os.PathLike[str] | None = None,
    sr: int = 16000,
    block_s: float = _SYNTH_BLOCK_S,
    timeout_s: float | None = None,
) -> dict[str, Any]:
    """Peak resident memory of scanning a generated recording of ``duration_s`` seconds.

    The WAV is written block by block (:func:`write_speech_wav`) to a temporary folder and scanned
    by ``load_detector(model).scan(path)`` in a fresh Python subprocess, whose ``VmHWM`` (peak
    resident set size) is read from ``/proc/self/status``. ``ru_maxrss`` is not used: on Linux
    it carries the parent's high-water mark over ``execve``, so a child of a large process would
    report the parent's peak.

    Parameters
    ----------
    duration_s : float
        Length of the recording (default one hour; longer than ``Scanner.stream_above_s``, so it
        is streamed).
    model : str or path, optional
        Model name or ``.onnx`` path (default: the default model).
    sr : int
        Sample rate of the WAV.
    block_s : float
        Seconds of audio generated per block.
    timeout_s : float, optional
        Give up on the subprocess after this many seconds.

    Returns
    -------
    dict
        ``audio_s``, ``file_mb`` (size of the WAV), ``peak_rss_mb`` (VmHWM after the scan),
        ``baseline_rss_mb`` (VmHWM after importing voxguard and loading the model, before the
        scan), ``scan_cpu_s``, ``scan_wall_s``, ``verdict`` and ``model``. MB = 2**20 bytes.

    Raises
    ------
    RuntimeError
        The subprocess failed (its stderr is in the message), or ``/proc`` is unavailable.
    """
    if not Path("/proc/self/status").is_file():
        raise RuntimeError("peak_rss_scan needs Linux /proc/self/status")
    with tempfile.TemporaryDirectory(prefix="voxguard-rss-") as tmp:
        path = Path(tmp) / f"speech_{duration_s:g}s.wav"
        written = write_speech_wav(path, duration_s, sr, block_s=block_s)
        size = path.stat().st_size
        proc = subprocess.run(
            [sys.executable, "-c", _RSS_CHILD, str(path), "" if model is None else str(model)],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    if proc.returncode != 0:
        raise RuntimeError(f"scan subprocess failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    return {
        "audio_s": written,
        "file_mb": size / 2**20,
        "peak_rss_mb": data["peak_kb"] / 1024,
        "baseline_rss_mb": data["baseline_kb"] / 1024,
        "scan_cpu_s": data["cpu_s"],
        "scan_wall_s": data["wall_s"],
        "verdict": data["verdict"],
        "model": data["model"],
    }


def machine_info() -> dict[str, Any]:
    """CPU model, cores, RAM and library versions of this machine (for benchmark reports)."""
    info: dict[str, Any] = {"cpu": platform.processor() or platform.machine()}
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10, check=False).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                info["cpu"] = line.split(":", 1)[1].strip()
    info["cores"] = os.cpu_count()
    with contextlib.suppress(AttributeError):
        info["cores_usable"] = len(os.sched_getaffinity(0))
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["ram_gib"] = int(line.split()[1]) / 2**20
    info["python"] = platform.python_version()
    import onnxruntime
    import scipy

    import voxguard

    info["voxguard"] = voxguard.__version__
    info["numpy"] = np.__version__
    info["scipy"] = scipy.__version__
    info["onnxruntime"] = onnxruntime.__version__
    for name in ("librosa", "sklearn"):
        try:
            info[name] = __import__(name).__version__
        except ImportError:
            info[name] = None
    return info


# ---------------------------------------------------------------------------------------------
# Scaling: the same batch on 1, 2, ... workers, with the process pool and with a local Dask cluster.

#: Engines :func:`bench_scale` can time.
SCALE_ENGINES = ("process", "dask-local")


def write_scale_batch(
    folder: str | os.PathLike[str], n_files: int = 40, min_s: float = 10.0, max_s: float = 30.0, sr: int = 16000
) -> list[Path]:
    """Write ``n_files`` distinct speech-like WAVs of ``min_s`` to ``max_s`` seconds (evenly spread).

    Every file is a different excerpt of 4 blocks of :func:`synth_speech` of ``max(max_s, 5)``
    seconds each, so the batch costs a few seconds to make whatever its size.

    Returns
    -------
    list of Path
    """
    import soundfile as sf

    if n_files < 1 or not 0 < min_s <= max_s:
        raise ValueError("need n_files >= 1 and 0 < min_s <= max_s")
    block_s = min(max(max_s, 5.0), 120.0)  # long files repeat the blocks cyclically
    pool = np.concatenate([synth_speech(block_s, sr, seed=k) for k in range(4)])
    if len(pool) < 2 * max_s * sr:
        pool = np.tile(pool, math.ceil(2 * max_s * sr / len(pool)))
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n_files):
        dur = min_s + (max_s - min_s) * (i / (n_files - 1) if n_files > 1 else 0.0)
        n = int(round(dur * sr))
        start = int((i * 7.3 * sr) % max(1, len(pool) - n))
        path = root / f"clip{i:04d}.wav"
        sf.write(path, pool[start : start + n], sr, subtype="PCM_16")
        paths.append(path)
    return paths


def _warm_scanner(params: dict[str, Any]) -> None:
    """Load the model in a Dask worker before timing (returns nothing: a Scanner is not picklable)."""
    from voxguard.scan.distributed import worker_scanner

    worker_scanner(params)


def _tree_cpu_s() -> float | None:
    """CPU seconds used so far by this process and its live children (workers), or ``None``
    without psutil (a Dask dependency)."""
    try:
        import psutil
    except ImportError:
        return None
    total = 0.0
    me = psutil.Process()
    for proc in [me, *me.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            t = proc.cpu_times()
            total += t.user + t.system
    return total


def _best_and_median(fn: Callable[[], list[Any]], repeats: int) -> tuple[float, float, float | None, int]:
    """Best and median wall time of ``repeats`` runs of a batch, the CPU seconds of the best run,
    and the most results with an ``error`` in any run (a failed file is fast, so it skews timings)."""
    runs = []
    failed = 0
    for _ in range(repeats):
        c0, t0 = _tree_cpu_s(), time.perf_counter()
        results = fn()
        wall, c1 = time.perf_counter() - t0, _tree_cpu_s()
        runs.append((wall, c1 - c0 if c0 is not None and c1 is not None else None))
        failed = max(failed, sum(r.error is not None for r in results))
    best = min(runs, key=lambda r: r[0])
    return best[0], float(np.median([r[0] for r in runs])), best[1], failed


def bench_scale(
    files: Sequence[str | os.PathLike[str]] | None = None,
    *,
    n_files: int = 40,
    min_s: float = 10.0,
    max_s: float = 30.0,
    workers: Sequence[int] = (1, 2),
    engines: Sequence[str] = SCALE_ENGINES,
    repeats: int = 3,
    model: str | None = None,
) -> list[dict[str, Any]]:
    """Wall time of scanning one batch with 1, 2, ... workers, per engine.

    Workers are started and warmed up (model loaded, a few files scanned) before the timed runs,
    whose best and median wall times are kept; start-up (pool or cluster start plus model load)
    is reported separately. ``process`` with 1 worker is a scan in this process, as
    ``voxguard scan --workers 1`` does; with more it is the spawned pool of ``--workers N``.
    ``dask-local`` is a :class:`distributed.LocalCluster` of N one-thread worker processes, driven
    through :func:`voxguard.scan.distributed.scan_batch`, as ``--engine dask-local`` does.

    Parameters
    ----------
    files : sequence of path, optional
        The batch (default: :func:`write_scale_batch` of ``n_files`` files of ``min_s``-``max_s`` s).
    n_files, min_s, max_s : int, float, float
        The generated batch.
    workers : sequence of int
        Worker counts to time.
    engines : sequence of str
        Subset of :data:`SCALE_ENGINES`.
    repeats : int
        Timed runs per configuration.
    model : str, optional
        Model name or ``.onnx`` path (default model otherwise).

    Returns
    -------
    list of dict
        Per engine and worker count: ``engine``, ``workers``, ``files``, ``audio_s``,
        ``startup_s``, ``wall_s`` (best), ``wall_median_s``, ``xrt`` (audio seconds per wall
        second, best), ``cpu_s`` (CPU seconds of this process and its workers during the best
        run; ``None`` without psutil), ``cores_used`` (``cpu_s / wall_s``: fewer than ``workers``
        when other jobs hold the cores), ``speedup`` (the engine's 1-worker best wall / this best
        wall; ``None`` without a 1-worker row), ``speedup_vs_inprocess`` and ``load_avg``
        (1-minute load average before and after), ``failed`` (most files with an error in one
        run: should be 0, or the same in every row).
    """
    import concurrent.futures
    import multiprocessing

    import soundfile as sf

    from voxguard.scan import expand_inputs, load_detector
    from voxguard.scan.batch import _init_worker, _worker_scan, scan_one
    from voxguard.scan.distributed import dask_client, portable_params, scan_batch

    unknown = set(engines) - set(SCALE_ENGINES)
    if unknown or repeats < 1 or not workers or min(workers) < 1:
        raise ValueError(f"engines from {SCALE_ENGINES}, repeats >= 1 and worker counts >= 1 needed")
    with tempfile.TemporaryDirectory(prefix="voxguard-scale-") as tmp:
        paths = [Path(f) for f in files] if files else write_scale_batch(tmp, n_files, min_s, max_s)
        items = expand_inputs([str(p) for p in paths])
        audio_s = float(sum(sf.info(str(p)).duration for p in paths))
        scanner = load_detector(model)
        params = portable_params(scanner)
        warm = items[: max(2, 2 * max(workers))]
        rows: list[dict[str, Any]] = []
        for engine in engines:
            for n in workers:
                load_before = os.getloadavg()[0]
                t0 = time.perf_counter()
                if engine == "process" and n == 1:
                    for it in warm:
                        scan_one(scanner, it)
                    startup = time.perf_counter() - t0
                    best, median, cpu, failed = _best_and_median(
                        lambda: [scan_one(scanner, it) for it in items], repeats
                    )
                elif engine == "process":
                    with concurrent.futures.ProcessPoolExecutor(
                        max_workers=n,
                        mp_context=multiprocessing.get_context("spawn"),
                        initializer=_init_worker,
                        initargs=(params,),
                    ) as pool:
                        list(pool.map(_worker_scan, warm, [None] * len(warm), chunksize=1))
                        startup = time.perf_counter() - t0
                        plots = [None] * len(items)
                        best, median, cpu, failed = _best_and_median(
                            lambda pool=pool, plots=plots: list(pool.map(_worker_scan, items, plots, chunksize=1)),
                            repeats,
                        )
                else:
                    with dask_client("dask-local", workers=n) as client:
                        client.run(_warm_scanner, params)
                        list(scan_batch(scanner, warm, engine="dask", client=client))
                        startup = time.perf_counter() - t0
                        best, median, cpu, failed = _best_and_median(
                            lambda client=client: list(scan_batch(scanner, items, engine="dask", client=client)),
                            repeats,
                        )
                rows.append(
                    {
                        "engine": engine,
                        "workers": n,
                        "files": len(items),
                        "audio_s": audio_s,
                        "startup_s": startup,
                        "wall_s": best,
                        "wall_median_s": median,
                        "xrt": audio_s / best,
                        "cpu_s": cpu,
                        "failed": failed,
                        "cores_used": cpu / best if cpu is not None else None,
                        "load_avg": (load_before, os.getloadavg()[0]),
                    }
                )
    inproc = next((r["wall_s"] for r in rows if r["engine"] == "process" and r["workers"] == 1), None)
    for r in rows:
        one = next((o["wall_s"] for o in rows if o["engine"] == r["engine"] and o["workers"] == 1), None)
        r["speedup"] = one / r["wall_s"] if one else None
        r["speedup_vs_inprocess"] = inproc / r["wall_s"] if inproc else None
    return rows


def format_scale_bench(rows: list[dict[str, Any]], *, markdown: bool = False, price_per_core_hour: float = 0.04) -> str:
    """Table of :func:`bench_scale` rows, and the cost of 1,000 hours of audio at the best throughput.

    The cost line assumes one worker per core at the measured throughput per worker (the
    1-worker in-process row when present) and ``price_per_core_hour`` (an assumption, in USD).
    """
    cols = (
        "engine",
        "workers",
        "start-up s",
        "wall s (best)",
        "wall s (median)",
        "audio s / wall s",
        "speed-up",
        "cores used",
        "audio s / CPU s",
    )
    body = []
    for r in rows:
        name = "process pool" if r["engine"] == "process" and r["workers"] > 1 else r["engine"]
        if r["engine"] == "process" and r["workers"] == 1:
            name = "in-process"
        body.append(
            (
                name,
                str(r["workers"]),
                f"{r['startup_s']:.1f}",
                f"{r['wall_s']:.2f}",
                f"{r['wall_median_s']:.2f}",
                f"{r['xrt']:,.0f}",
                "-" if r["speedup"] is None else f"{r['speedup']:.2f}x",
                "-" if r.get("cores_used") is None else f"{r['cores_used']:.2f}",
                "-" if not r.get("cpu_s") else f"{r['audio_s'] / r['cpu_s']:,.0f}",
            )
        )
    if markdown:
        lines = ["| " + " | ".join(cols) + " |", "|" + "|".join([":---", *["---:"] * (len(cols) - 1)]) + "|"]
        lines += ["| " + " | ".join(b) + " |" for b in body]
    else:
        widths = [max(len(c), *(len(b[i]) for b in body)) if body else len(c) for i, c in enumerate(cols)]
        fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
        lines = [fmt.format(*cols), "-" * (sum(widths) + 2 * (len(cols) - 1))]
        lines += [fmt.format(*b) for b in body]
    if rows:
        r0 = rows[0]
        loads = [x for r in rows for x in r["load_avg"]]
        bad = {f"{r['engine']}/{r['workers']}": r["failed"] for r in rows if r.get("failed")}
        if bad:
            lines += ["", f"WARNING: files failed (failures are fast, so timings are off): {bad}"]
        lines += [
            "",
            f"({r0['files']} files, {r0['audio_s']:,.0f} s of audio; speed-up = the engine's 1-worker wall / this "
            f"wall; cores used = CPU seconds of this process and its workers / wall seconds; 1-min load "
            f"average {min(loads):.1f}-{max(loads):.1f} during the runs)",
        ]
        # Cost basis: audio per CPU second of the 1-worker in-process run (wall time when unmeasured).
        base = next((r for r in rows if r["workers"] == 1 and r["engine"] == "process"), None) or min(
            rows, key=lambda r: r["workers"]
        )
        per_core = base["audio_s"] / base["cpu_s"] if base.get("cpu_s") else base["xrt"] / base["workers"]
        core_h = 1000.0 / per_core
        lines.append(
            f"1,000 h of audio ≈ {core_h:.2f} core-hours at {per_core:,.0f}x real time per core "
            f"≈ ${core_h * price_per_core_hour:.2f} at ${price_per_core_hour:g} per core-hour (assumed price)"
        )
    return "\n".join(lines)
