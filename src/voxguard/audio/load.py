"""Loading: decode, downmix to mono, resample with soxr to the analysis rate, validate samples.

:func:`load` returns a whole signal (bounded by ``max_duration_s``); :func:`iter_blocks` streams
a file of any length block by block with bounded memory, resampling continuously across block
boundaries (``soxr.ResampleStream``), so the blocks concatenate to exactly what :func:`load` gives.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import soxr

from voxguard.audio.decode import (
    AudioInfo,
    AudioSource,
    iter_frames,
    materialise,
    probe,
    source_name,
    validate_info,
)
from voxguard.errors import InvalidSamplesError, TooLongError, ZeroLengthAudioError

#: Analysis rate of every voxguard model: everything is resampled to it, so the native rate
#: (which predicts the label in public corpora) never reaches a feature.
ANALYSIS_RATE = 16_000
#: Default upper bound for whole-file loading; streaming (:func:`iter_blocks`) has none.
DEFAULT_MAX_DURATION_S = 4 * 3600.0


@dataclass(frozen=True)
class Audio:
    """A decoded mono signal.

    Attributes
    ----------
    samples : np.ndarray, shape (n_samples,), float32
    sample_rate : int
        Rate of ``samples`` in Hz (the analysis rate unless ``sr=None`` was asked for).
    info : AudioInfo
        The source stream's own parameters (native rate, channels, codec).
    """

    samples: np.ndarray
    sample_rate: int
    info: AudioInfo

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate


def to_mono(frames: np.ndarray) -> np.ndarray:
    """Average channels: ``(n, n_channels) -> (n,)`` float32 (a 1-D input is returned as is)."""
    if frames.ndim == 1:
        return frames.astype(np.float32, copy=False)
    if frames.shape[1] == 1:
        return frames[:, 0].astype(np.float32, copy=False)
    return frames.mean(axis=1, dtype=np.float32)


def check_finite(y: np.ndarray, name: str | None = None) -> None:
    """Raise :class:`InvalidSamplesError` if ``y`` holds NaN or infinite values."""
    if not np.isfinite(y).all():
        n_bad = int(np.count_nonzero(~np.isfinite(y)))
        raise InvalidSamplesError(f"{n_bad} samples are NaN or infinite", path=name)


def peak_amplitude(y: np.ndarray) -> float:
    """``max(|y|)`` (0.0 for an empty signal), without the temporary array of ``np.abs``."""
    return max(float(y.max()), -float(y.min())) if len(y) else 0.0


def resample(y: np.ndarray, orig_sr: int, target_sr: int, *, quality: str = "HQ") -> np.ndarray:
    """Resample a mono or ``(n, channels)`` signal with soxr (a no-op when the rates match).

    Returns float32 with ``round(len(y) * target_sr / orig_sr)`` samples.
    """
    if orig_sr == target_sr:
        return y.astype(np.float32, copy=False)
    return soxr.resample(y.astype(np.float32, copy=False), orig_sr, target_sr, quality=quality)


def _check_duration(info: AudioInfo, max_duration_s: float | None, name: str | None) -> None:
    if max_duration_s is not None and info.duration_s is not None and info.duration_s > max_duration_s:
        raise TooLongError(
            f"{info.duration_s:.1f} s exceeds the limit of {max_duration_s:.1f} s "
            "(raise the limit, or scan the file in streaming mode)",
            path=name,
        )


def iter_blocks(
    source: AudioSource,
    *,
    sr: int | None = ANALYSIS_RATE,
    block_s: float = 30.0,
    max_duration_s: float | None = None,
) -> Iterator[np.ndarray]:
    """Stream ``source`` as mono float32 blocks at rate ``sr`` with bounded memory.

    Parameters
    ----------
    source : path, bytes or binary file object
    sr : int or None
        Output rate in Hz; ``None`` keeps the native rate.
    block_s : float
        Approximate seconds of audio per decoded block.
    max_duration_s : float or None
        Refuse files longer than this (checked from the header and again while decoding).

    Yields
    ------
    np.ndarray, shape (n,), float32
    """
    for (y,) in iter_blocks_at(source, (sr,), block_s=block_s, max_duration_s=max_duration_s):
        if len(y):
            yield y


def iter_blocks_at(
    source: AudioSource,
    rates: Sequence[int | None],
    *,
    block_s: float = 30.0,
    max_duration_s: float | None = None,
) -> Iterator[tuple[np.ndarray, ...]]:
    """Stream ``source`` once, as mono float32 blocks at each of ``rates``.

    One decode feeds one soxr stream per rate (a compressed file costs as much to decode as a
    whole scan, so a second analysis rate should not decode it again). The blocks of each rate
    concatenate to exactly what :func:`iter_blocks` gives at that rate.

    Parameters
    ----------
    source : path, bytes or binary file object
    rates : sequence of int or None
        Output rates in Hz; ``None`` keeps the native rate.
    block_s, max_duration_s : float
        As for :func:`iter_blocks`.

    Yields
    ------
    tuple of np.ndarray, one per rate, shape (n_rate,), float32
        A resampler may hold samples back, so a block can be empty at some rates.
    """
    source = materialise(source)
    name = source_name(source)
    info = probe(source)
    _check_duration(info, max_duration_s, name)
    streams = [
        soxr.ResampleStream(info.sample_rate, rate, 1, dtype="float32", quality="HQ")
        if rate and rate != info.sample_rate
        else None
        for rate in rates
    ]
    limit = None if max_duration_s is None else int(max_duration_s * info.sample_rate) + 1
    n_in = 0
    for frames in iter_frames(source, block_frames=max(1024, int(block_s * info.sample_rate))):
        n_in += len(frames)
        if limit is not None and n_in > limit:  # headers can lie (or be absent)
            raise TooLongError(f"longer than the limit of {max_duration_s:.1f} s", path=name)
        y = to_mono(frames)
        check_finite(y, name)
        yield tuple(y if stream is None else stream.resample_chunk(y) for stream in streams)
    if any(stream is not None for stream in streams):
        empty = np.zeros(0, dtype=np.float32)
        yield tuple(empty if stream is None else stream.resample_chunk(empty, last=True) for stream in streams)


def load(
    source: AudioSource,
    *,
    sr: int | None = ANALYSIS_RATE,
    max_duration_s: float | None = DEFAULT_MAX_DURATION_S,
) -> Audio:
    """Decode ``source`` to a mono float32 signal at ``sr`` Hz.

    Parameters
    ----------
    source : path, bytes or binary file object
        Any format libsndfile or FFmpeg reads; the format is detected from content.
    sr : int or None
        Output rate (default 16 kHz, the analysis rate); ``None`` keeps the native rate.
    max_duration_s : float or None
        Raise :class:`TooLongError` beyond this duration (default 4 h); ``None`` for no limit.

    Returns
    -------
    Audio

    Raises
    ------
    voxguard.errors.AudioError
        A specific subclass for empty, non-audio, corrupt, zero-length, NaN/Inf-filled,
        too-long, too-many-channel or absurd-rate input.
    """
    return load_at(source, (sr,), max_duration_s=max_duration_s)[0]


def load_at(
    source: AudioSource,
    rates: Sequence[int | None],
    *,
    max_duration_s: float | None = DEFAULT_MAX_DURATION_S,
) -> tuple[Audio, ...]:
    """Decode ``source`` once and return it at each of ``rates`` (each equal to :func:`load` at that rate).

    Parameters
    ----------
    source : path, bytes or binary file object
    rates : sequence of int or None
        Output rates in Hz; ``None`` keeps the native rate.
    max_duration_s : float or None
        As for :func:`load`.

    Returns
    -------
    tuple of Audio, one per rate

    Raises
    ------
    voxguard.errors.AudioError
        As :func:`load`.
    """
    source = materialise(source)
    name = source_name(source)
    info = probe(source)
    parts: list[list[np.ndarray]] = [[] for _ in rates]
    for blocks in iter_blocks_at(source, rates, block_s=60.0, max_duration_s=max_duration_s):
        for part, y in zip(parts, blocks, strict=True):
            part.append(y)
    out = []
    for rate, part in zip(rates, parts, strict=True):
        y = np.concatenate(part) if part else np.zeros(0, dtype=np.float32)
        if len(y) == 0:
            raise ZeroLengthAudioError("the file is valid audio but contains no samples", path=name)
        out.append(Audio(samples=y, sample_rate=rate or info.sample_rate, info=info))
    return tuple(out)


def from_array(y: np.ndarray, sr: int, *, target_sr: int | None = ANALYSIS_RATE) -> Audio:
    """Validate an in-memory signal and bring it to ``target_sr``.

    Parameters
    ----------
    y : np.ndarray, shape (n,) or (n, n_channels)
        Float or integer samples (integers are scaled to [-1, 1]).
    sr : int
        Rate of ``y`` in Hz.
    """
    arr = np.asarray(y)
    if np.issubdtype(arr.dtype, np.integer):
        arr = arr.astype(np.float32) / np.float32(np.iinfo(arr.dtype).max + 1)
    if arr.ndim not in (1, 2):
        raise ZeroLengthAudioError(f"expected shape (n,) or (n, channels), got {arr.shape}")
    channels = 1 if arr.ndim == 1 else arr.shape[1]
    info = AudioInfo(
        container="array",
        codec=str(arr.dtype),
        sample_rate=int(sr),
        channels=int(channels),
        frames=int(arr.shape[0]),
        duration_s=arr.shape[0] / sr if sr else None,
        decoder="array",
    )
    validate_info(info, None)  # the same limits as for files
    mono = to_mono(arr.astype(np.float32, copy=False))
    check_finite(mono)
    out = resample(mono, int(sr), target_sr) if target_sr else mono
    return Audio(samples=out, sample_rate=target_sr or int(sr), info=info)
