"""Watermark check: does a recording carry Resemble AI's Perth implicit watermark?

Chatterbox TTS (Resemble AI, open source) marks everything it generates with the Perth
"implicit" watermark, a learnt residual in the magnitude spectrum below 2 kHz. Its decoder
ships in the ``resemble-perth`` wheel (MIT); ``scripts/export_perth.py`` turns it into
``watermarks/perth-implicit.onnx`` (the three convolution stacks, float16 weights) and this
module does the rest in NumPy, as Perth's ``PerthImplicitWatermarker.get_watermark`` does in
torch:

1. resample to 32 kHz; STFT (periodic Hann, 2048 points, hop 320, centred with reflection);
   magnitude in dB, floored at -180 dB and mapped to ``(dB + 180) / 195``;
2. a frame mask: frames whose summed normalised magnitude exceeds 5 % of the loudest frame's;
3. the lowest 128 bins (0-2 kHz) at three time scales (linearly stretched to 1.25×, as is, and
   squeezed to 0.75× the frame count) through the three stacks; each gives an attention logit
   and a mark value per frame;
4. per scale, the masked mean of both; the marks are averaged with the softmax of the
   attention means and clipped to [0, 1]: the *confidence* (about 1 for marked audio, about 0
   otherwise).

Perth's own decision rounds the confidence at 0.5. On corpora where nothing is marked, that
flags 2.6 % of DEV's clips (mostly short ones) and 11.6 % of the synthetic corpus's. voxguard
claims a mark only at a confidence of at least 0.95 over at least 2 s of decodable signal (the
card's ``threshold`` and ``min_signal_s``; docs/watermark.md has the measured rates).

A mark is strong evidence that the audio came out of a Perth watermarker (Chatterbox, Resemble
AI's services), but its absence says nothing: other generators do not mark, and a mark can be
removed. :meth:`PerthDecoder.segment_confidence` gives the same number over any span of the
recording, so a scan shows *where* marked speech is (e.g. a marked sentence spliced into a real
call). Cost: about 7 M multiply-adds per 10-ms frame, so this check runs far slower than the
detectors (see docs/watermark.md) and is opt-in (``voxguard scan --watermark``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.fft

from voxguard.audio.load import check_finite, resample
from voxguard.errors import ModelError, TooShortError
from voxguard.models.onnx_model import cpu_session

WATERMARK_DIR = Path(__file__).parent / "watermarks"
PERTH = "perth-implicit"
_BRANCHES = ("slow", "normal", "fast")
# Above this many frames (40 s at 100 frames/s) the stacks run on overlapping pieces, so
# memory stays bounded; the overlap covers the stacks' receptive field (5 convolutions of 7).
_PIECE_FRAMES = 4_000
_CONTEXT_FRAMES = 32


@dataclass(frozen=True)
class WatermarkCheck:
    """The outcome of a watermark check on one recording (or one span of it).

    Attributes
    ----------
    scheme : str
        The watermark looked for (``"perth-implicit"``).
    confidence : float or None
        Decoder output in [0, 1]; ``None`` when no frame had enough signal to decode.
    detected : bool
        ``confidence >= threshold`` over at least ``min_signal_s`` of signal.
    threshold : float
    signal_s : float
        Seconds of frames the decoder read (frames with enough signal, Perth's mask).
    note : str or None
        Why a confidence over the threshold is not a detection (too little signal), or where
        marked passages are when the recording as a whole is not claimed.
    passages : tuple of (start_s, end_s, confidence)
        Stretches of the timeline whose segments reach the threshold (:func:`marked_passages`),
        with their highest segment confidence. Information, not a claim: the verdict follows the
        whole-recording check only (docs/watermark.md has the measured rates).
    """

    scheme: str
    confidence: float | None
    detected: bool
    threshold: float
    signal_s: float = 0.0
    note: str | None = None
    passages: tuple[tuple[float, float, float], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        conf = None if self.confidence is None else round(float(self.confidence), 4)
        return {
            "scheme": self.scheme,
            "confidence": conf,
            "detected": self.detected,
            "threshold": self.threshold,
            "signal_s": round(float(self.signal_s), 3),
            "note": self.note,
            "passages": [
                {"start_s": round(a, 3), "end_s": round(b, 3), "confidence": round(c, 4)} for a, b, c in self.passages
            ],
        }


@dataclass(frozen=True, eq=False)
class MarkFrames:
    """Per-frame decoder outputs of one signal, at each of the three time scales.

    Attributes
    ----------
    times_s : dict of str to np.ndarray, shape (n_frames_branch,)
        Centre of each (stretched or squeezed) frame, in seconds from the signal's start.
    attention, mark : dict of str to np.ndarray, shape (n_frames_branch,)
        The stacks' two output channels.
    mask : dict of str to np.ndarray, shape (n_frames_branch,), float
        1 for frames with enough signal (Perth's ``magmask``), else 0.
    """

    times_s: dict[str, np.ndarray]
    attention: dict[str, np.ndarray]
    mark: dict[str, np.ndarray]
    mask: dict[str, np.ndarray]

    def sums(self, start_s: float = -np.inf, end_s: float = np.inf) -> np.ndarray:
        """Masked sums over frames centred in ``[start_s, end_s)``: shape (3, 3), rows
        ``slow/normal/fast``, columns ``sum(mask*attention), sum(mask*mark), sum(mask)``.

        Sums add up over pieces of a recording, so a streamed scan combines them chunk by chunk.
        """
        return self.segment_sums(np.array([start_s]), np.array([end_s]))[0]

    def segment_sums(self, starts_s: np.ndarray, ends_s: np.ndarray) -> np.ndarray:
        """:meth:`sums` for many spans at once (cumulative sums): shape (n_spans, 3, 3)."""
        starts_s, ends_s = np.asarray(starts_s, dtype=float), np.asarray(ends_s, dtype=float)
        out = np.zeros((len(starts_s), 3, 3))
        for i, b in enumerate(_BRANCHES):
            m = self.mask[b]
            cum = np.zeros((len(m) + 1, 3))
            cum[1:] = np.cumsum(np.stack([m * self.attention[b], m * self.mark[b], m], axis=1), axis=0)
            lo = np.searchsorted(self.times_s[b], starts_s, "left")
            hi = np.searchsorted(self.times_s[b], ends_s, "left")
            out[:, i] = cum[hi] - cum[lo]
        return out


def confidence_from_sums(sums: np.ndarray) -> np.ndarray:
    """Confidence in [0, 1] from :meth:`MarkFrames.sums` (shape (..., 3, 3)); NaN where a scale has no frame."""
    sums = np.asarray(sums, dtype=float)
    count = sums[..., 2]
    with np.errstate(invalid="ignore", divide="ignore"):
        attention = sums[..., 0] / count
        mark = sums[..., 1] / count
    weights = np.exp(attention - attention.max(axis=-1, keepdims=True))
    weights /= weights.sum(axis=-1, keepdims=True)
    conf = np.clip((weights * mark).sum(axis=-1), 0.0, 1.0)
    return np.where((count > 0).all(axis=-1), conf, np.nan)


def marked_passages(
    starts_s: np.ndarray, ends_s: np.ndarray, confidence: np.ndarray, threshold: float, min_segment_s: float
) -> tuple[tuple[float, float, float], ...]:
    """Stretches where consecutive timeline segments reach ``threshold``.

    Parameters
    ----------
    starts_s, ends_s : np.ndarray, shape (n_segments,)
        Segment bounds in seconds, in time order (they may overlap).
    confidence : np.ndarray, shape (n_segments,)
        Watermark confidence per segment (NaN: not decodable).
    threshold : float
    min_segment_s : float
        Segments shorter than this never count (a short segment's confidence is noisy).

    Returns
    -------
    tuple of (start_s, end_s, highest confidence), one per run of qualifying segments.
    """
    conf = np.nan_to_num(np.asarray(confidence, dtype=float), nan=0.0)
    hit = (conf >= threshold) & (np.asarray(ends_s) - np.asarray(starts_s) >= min_segment_s)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], hit.astype(np.int8), [0]])))
    return tuple(
        (float(starts_s[a]), float(ends_s[b - 1]), float(conf[a:b].max()))
        for a, b in zip(edges[::2], edges[1::2], strict=True)
    )


def _source_positions(n: int, size: int) -> np.ndarray:
    """Where each of ``size`` stretched frames falls on the ``n`` original ones (align_corners)."""
    return np.arange(size) * ((n - 1) / (size - 1)) if size > 1 else np.zeros(1)


def _stretch_linear(x: np.ndarray, size: int) -> np.ndarray:
    """``torch.nn.functional.interpolate(mode="linear", align_corners=True)`` along the last axis."""
    n = x.shape[-1]
    pos = _source_positions(n, size)
    lo = np.minimum(np.floor(pos).astype(np.int64), n - 1)
    hi = np.minimum(lo + 1, n - 1)
    w = (pos - lo).astype(np.float32)
    out = x[..., lo]
    out *= 1 - w
    out += x[..., hi] * w
    return out


def _stretch_nearest(x: np.ndarray, size: int) -> np.ndarray:
    """``interpolate(mode="nearest")``: torch's float32 scale and floor, so masks match exactly."""
    n = x.shape[-1]
    scale = np.float32(n) / np.float32(size)
    idx = np.minimum(np.floor(np.arange(size, dtype=np.float32) * scale).astype(np.int64), n - 1)
    return x[..., idx]


def _branch_length(n_frames: int, scale: float) -> int:
    return n_frames if scale == 1.0 else int(n_frames * scale)  # Python's truncation, as Perth's decoder


class PerthDecoder:
    """Perth implicit-watermark decoder on ONNX Runtime.

    Parameters
    ----------
    path : path, optional
        The exported decoder (default: the shipped ``watermarks/perth-implicit.onnx``); its
        ``.card.json`` beside it holds the front end's parameters and the threshold.
    threads : int
        ONNX Runtime intra-op threads.
    """

    def __init__(self, path: str | Path | None = None, *, threads: int = 1) -> None:
        self.path = Path(path) if path is not None else WATERMARK_DIR / f"{PERTH}.onnx"
        card_file = self.path.with_name(self.path.name.removesuffix(".onnx") + ".card.json")
        try:
            self.card: dict[str, Any] = json.loads(card_file.read_text())
            fe = self.card["frontend"]
            self.sample_rate = int(fe["sample_rate"])
            self.n_fft, self.hop, self.subband = int(fe["n_fft"]), int(fe["hop"]), int(fe["subband_bins"])
            self.floor_db = 20.0 * np.log10(float(fe["magnitude_floor"]))
            self.headroom_db = float(fe["headroom_db"])
            self.mask_fraction = float(fe["mask_fraction"])
            self.scales = {b: float(self.card["branches"][b]) for b in _BRANCHES}
            self.threshold = float(self.card["threshold"])
            self.min_signal_s = float(self.card["min_signal_s"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"unreadable watermark decoder card {card_file}: {exc}", path=str(card_file)) from exc
        self.scheme = str(self.card.get("name", PERTH))
        if not self.path.is_file():
            raise ModelError(f"watermark decoder not found: {self.path}", path=str(self.path))
        self._session = cpu_session(self.path, threads, "cannot load the watermark decoder")
        # periodic Hann (torch.hann_window's default), as Perth's spectrogram uses
        self._window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(self.n_fft) / self.n_fft)).astype(np.float32)

    # ------------------------------------------------------------------ front end

    def spectrogram(self, y: np.ndarray, sr: int) -> np.ndarray:
        """Normalised log-magnitude spectrogram, shape (n_fft // 2 + 1, n_frames), float32.

        ``y`` (mono, any rate) is resampled to the decoder's rate. Raises
        :class:`~voxguard.errors.TooShortError` below a few frames (Perth pads by reflection,
        which needs more than half a window of signal).
        """
        blocks = list(self._spectrogram_blocks(y, sr))
        return np.concatenate(blocks, axis=1)

    def _spectrogram_blocks(self, y: np.ndarray, sr: int, step: int = 2048) -> Iterator[np.ndarray]:
        """:meth:`spectrogram` ``step`` frames at a time (bounds the memory of long signals)."""
        check_finite(y)
        x = resample(np.asarray(y, dtype=np.float32), sr, self.sample_rate)
        half = self.n_fft // 2
        if len(x) <= half + 4 * self.hop:
            raise TooShortError(
                f"{len(x) / self.sample_rate:.3f} s is too short for the watermark check "
                f"(needs more than {(half + 4 * self.hop) / self.sample_rate:.3f} s)"
            )
        x = np.pad(x, half, mode="reflect")  # rebinds: the unpadded copy can be freed
        frames = np.lib.stride_tricks.sliding_window_view(x, self.n_fft)[:: self.hop]
        floor = np.float32(10.0 ** (self.floor_db / 20.0))
        for i in range(0, len(frames), step):
            mag = np.abs(scipy.fft.rfft(frames[i : i + step] * self._window, axis=1))
            db = 20.0 * np.log10(np.maximum(mag, floor))
            yield ((db - self.floor_db) / (self.headroom_db - self.floor_db)).T.astype(np.float32)

    def _front_end(self, y: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
        """The decoder's inputs without the whole spectrogram: the lowest ``subband`` bins,
        shape (subband, n_frames), and each frame's summed normalised magnitude, shape (n_frames,)."""
        n = 1 + (len(y) * self.sample_rate // sr) // self.hop + 1  # an upper bound on the frame count
        sub, energy = np.empty((self.subband, n), np.float32), np.empty(n, np.float32)
        i = 0
        for block in self._spectrogram_blocks(y, sr):
            sub[:, i : i + block.shape[1]] = block[: self.subband]
            energy[i : i + block.shape[1]] = block.sum(axis=0)
            i += block.shape[1]
        return sub[:, :i], energy[:i]

    # ------------------------------------------------------------------ decoder

    def frames(self, y: np.ndarray, sr: int) -> MarkFrames:
        """Per-frame outputs of the three stacks for a mono signal ``y`` at rate ``sr``."""
        sub, energy = self._front_end(y, sr)
        mask = (energy > energy.max() * self.mask_fraction).astype(np.float32)
        n = sub.shape[1]
        frame_s = self.hop / self.sample_rate
        stretched = {b: _stretch_linear(sub, _branch_length(n, s)) if s != 1.0 else sub for b, s in self.scales.items()}
        outputs = self._run(stretched)
        out: dict[str, dict[str, np.ndarray]] = {"times_s": {}, "attention": {}, "mark": {}, "mask": {}}
        for b in _BRANCHES:
            size = stretched[b].shape[1]
            out["times_s"][b] = _source_positions(n, size) * frame_s
            out["attention"][b], out["mark"][b] = outputs[b][0].astype(np.float64), outputs[b][1].astype(np.float64)
            out["mask"][b] = _stretch_nearest(mask, size).astype(np.float64)
        return MarkFrames(**out)

    def _run(self, xs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The three stacks: (subband, n_b) per branch -> (2, n_b) per branch.

        Long inputs run branch by branch on overlapping pieces (the other inputs get a one-frame
        placeholder, since a session needs every input), so memory stays bounded.
        """
        feed = {b: np.ascontiguousarray(x[None]) for b, x in xs.items()}
        names = [f"{b}_out" for b in _BRANCHES]
        if max(x.shape[1] for x in xs.values()) <= _PIECE_FRAMES:
            return {b: o[0] for b, o in zip(_BRANCHES, self._session.run(names, feed), strict=True)}
        results = {}
        for i, b in enumerate(_BRANCHES):
            x, n = xs[b], xs[b].shape[1]
            out = np.empty((2, n), dtype=np.float32)
            for lo in range(0, n, _PIECE_FRAMES):
                hi = min(n, lo + _PIECE_FRAMES)
                a, z = max(0, lo - _CONTEXT_FRAMES), min(n, hi + _CONTEXT_FRAMES)
                piece_feed = {o: np.zeros((1, self.subband, 1), np.float32) for o in _BRANCHES}
                piece_feed[b] = np.ascontiguousarray(x[None, :, a:z])
                out[:, lo:hi] = self._session.run(names, piece_feed)[i][0][:, lo - a : hi - a]
            results[b] = out
        return results

    # ------------------------------------------------------------------ results

    def result(self, sums: np.ndarray) -> WatermarkCheck:
        """The decision for a recording from its :meth:`MarkFrames.sums` (summed over pieces if streamed)."""
        confidence = float(confidence_from_sums(sums))
        signal_s = float(sums[_BRANCHES.index("normal"), 2]) * self.hop / self.sample_rate
        if not np.isfinite(confidence):
            return WatermarkCheck(self.scheme, None, False, self.threshold, signal_s, "no frame with enough signal")
        note = None
        if confidence >= self.threshold and signal_s < self.min_signal_s:
            note = f"only {signal_s:.2f} s of signal; a mark is claimed from {self.min_signal_s:g} s on"
        detected = confidence >= self.threshold and note is None
        return WatermarkCheck(self.scheme, confidence, detected, self.threshold, signal_s, note)

    def check(self, y: np.ndarray, sr: int) -> WatermarkCheck:
        """Decode the watermark of a whole mono signal (Perth's ``get_watermark``, unrounded)."""
        return self.result(self.frames(y, sr).sums())

    def segment_confidence(self, y: np.ndarray, sr: int, starts_s: np.ndarray, ends_s: np.ndarray) -> np.ndarray:
        """Confidence over each span ``[starts_s[i], ends_s[i])`` of ``y``, shape (n_spans,); NaN
        where a span has no decodable frame. The stacks run once over the whole signal."""
        return confidence_from_sums(self.frames(y, sr).segment_sums(starts_s, ends_s))


_DECODERS: dict[tuple[str, int], PerthDecoder] = {}


def load_watermark_decoder(path: str | Path | None = None, *, threads: int = 1) -> PerthDecoder:
    """A cached :class:`PerthDecoder` (loading parses 14 MB of weights)."""
    key = (str(path), threads)
    if key not in _DECODERS:
        _DECODERS[key] = PerthDecoder(path, threads=threads)
    return _DECODERS[key]
