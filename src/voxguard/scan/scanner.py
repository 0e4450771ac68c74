"""The scanner: one recording in, a verdict plus a timeline of segment probabilities out.

How a recording is scanned
--------------------------
1. Decode at the detector's rate (``Detector.sample_rate``; ``None`` means the file's native
   rate, as the interim ``seed-svm`` model needs).
2. Run the voice-activity detector (:func:`voxguard.audio.detect_speech`) on the decoded signal:
   it gives the speech duration and each segment's speech fraction.
3. Prepare the signal as the model was trained (``Detector.prepare_array``: resampling and the
   canonical preprocessing, trimming included) and cut it into sliding segments of ``segment_s``
   every ``hop_s`` seconds (default: the model's ``segment_s`` and half of it). Segment times are
   mapped back to the original recording with the offset ``prepare_array`` returns.
4. Score the segments (``Detector.segment_scores``) a chunk of about a minute at a time, and
   aggregate them into one verdict (:mod:`voxguard.scan.verdict`).
5. With ``watermark=True``, also decode Resemble AI's Perth watermark (Chatterbox TTS marks its
   output with it; :mod:`voxguard.models.watermark`) over the whole recording and per segment. A
   detected mark makes the verdict FAKE whatever the detector says, with the reason stated.
6. When the detector has a wide-band companion (:mod:`voxguard.models.companion`) and the
   recording's native rate can hold 8-9.8 kHz, the same decode also gives the recording at the
   companion's rate (:func:`voxguard.audio.load_at`); if the band is measured there, the
   companion scores the same segments and their probabilities become the mix of both models.

Recordings longer than ``stream_above_s`` (10 minutes), or whose length the container does not
state, are *streamed*: decoded block by block (:func:`voxguard.audio.iter_blocks_at`) and processed in
chunks of ``chunk_s`` plus one segment of overlap, so every segment, including those spanning a
block edge, is scored whole, and memory does not grow with the length of the file (with a
companion, one decode feeds a block stream at each rate; the band is measured on the first
chunk with speech and that decision holds for the whole recording). In that mode
each chunk is prepared on its own with ``trim=False`` (loudness normalisation and the VAD's
energy gate are per chunk), so the numbers can differ slightly from a whole-file scan for models
with preprocessing; for window-level models without it (``seed-svm``) they are identical.

Failures: :meth:`Scanner.scan` raises the typed :mod:`voxguard.errors` exceptions; batch scanning
(:func:`voxguard.scan.batch.scan_many`) turns them into results with an ``error``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from voxguard.audio import (
    SpeechActivity,
    detect_speech,
    from_array,
    iter_blocks_at,
    load_at,
    probe,
    resample,
    segment_bounds,
)
from voxguard.audio.bandwidth import holds_top_band, top_band_db
from voxguard.audio.decode import AudioSource, materialise, source_name
from voxguard.audio.load import peak_amplitude
from voxguard.errors import (
    FeatureError,
    SilentAudioError,
    TooShortError,
    VoxguardError,
    ZeroLengthAudioError,
)
from voxguard.models.companion import WideBandCompanion, companion_for
from voxguard.models.watermark import (
    MarkFrames,
    PerthDecoder,
    confidence_from_sums,
    load_watermark_decoder,
    marked_passages,
)
from voxguard.scan.result import Envelope, ErrorInfo, ScanResult, Timeline, Verdict, WideBandUse
from voxguard.scan.timeline import (
    SegmentScorer,
    align_end,
    peak_envelope,
    score_segments,
    speech_fraction,
    speech_seconds,
)
from voxguard.scan.verdict import decide, effective_margin, max_top_segments, resolve_threshold, top_k_mean

# Below this peak the signal is digital silence (about -100 dBFS, under the 16-bit LSB).
_SILENCE_PEAK = 1e-5
# Errors that mean "not enough audio to score" rather than "bad input" when speech is scarce.
_TOO_LITTLE = (TooShortError, SilentAudioError, FeatureError)
_ENVELOPE_FRAME_S = 0.02
_DECODE_BLOCK_S = 30.0


@dataclass
class _Scored:
    """Timeline arrays and totals, before the verdict."""

    starts_s: np.ndarray
    ends_s: np.ndarray
    scores: np.ndarray
    proba: np.ndarray
    speech_fraction: np.ndarray
    duration_s: float
    speech_s: float
    mode: str
    envelope: Envelope | None = None
    note: str | None = None
    watermark_sums: np.ndarray | None = None  # (3, 3): MarkFrames.sums() over the recording
    watermark: np.ndarray | None = None  # per-segment confidence
    wide_band: WideBandUse | None = None  # what the wide-band companion did (None: no companion)
    wide_band_proba: np.ndarray | None = None  # the companion's own P(fake) per segment, when used


def _load_detector(name_or_path: str | os.PathLike[str] | None, threads: int) -> SegmentScorer:
    from voxguard.models.detector import Detector
    from voxguard.models.registry import resolve_model

    return Detector.load(resolve_model(name_or_path), threads=threads)


class Scanner:
    """Scan recordings with a detector: a verdict per file and a timeline of segment probabilities.

    Parameters
    ----------
    detector : Detector, str, path or None
        A loaded :class:`~voxguard.models.detector.Detector`, or a shipped model name / ``.onnx``
        path resolved by :func:`voxguard.models.registry.resolve_model` (``None``: the default model).
    segment_s : float, optional
        Timeline window in seconds (default: the detector's ``segment_s``).
    hop_s : float, optional
        Hop between windows (default: half of ``segment_s``).
    threshold : float, optional
        P(fake) threshold in [0, 1]; overrides ``operating_point``.
    operating_point : {"eer", "low-fa", "unseen-eer"}
        Threshold from the model card (``Detector.thresholds()``): ``eer`` and ``low-fa`` are set
        on grouped held-out scores (every generator family seen in training), ``unseen-eer``
        (where a card has it) on leave-one-family-out scores, a lower threshold for generators
        the model never saw. With the wide-band companion mixed in, the mix's own point of the
        same name is used.
    margin : float
        Half-width of the UNCERTAIN band around the threshold (narrowed near 0 and 1).
    min_speech_s : float
        Less detected speech than this gives UNCERTAIN.
    min_segment_speech : float
        Fraction of a segment that must be speech for it to count towards the verdict.
    top_fraction, max_top_s : float
        Top-k aggregation: ``k = ceil(top_fraction * n)``, capped at the segments fitting in
        ``max_top_s`` seconds (see :mod:`voxguard.scan.verdict`).
    stream_above_s : float
        Recordings longer than this are streamed in bounded memory.
    chunk_s : float
        Audio scored per model call (bounds feature memory).
    threads : int
        ONNX Runtime threads when the detector is loaded here.
    watermark : bool
        Also check for the Perth watermark (opt-in: the decoder runs at about 40× real time
        per core, far slower than the detectors).
    wide_band : bool, path or WideBandCompanion
        Use the detector's wide-band companion (:mod:`voxguard.models.companion`) on recordings
        that have the band above 8 kHz: ``True`` (default) the shipped one fitted with this
        detector, if any; a path or a loaded companion, that one; ``False``, never.

    Examples
    --------
    >>> scanner = Scanner("seed-svm")                       # doctest: +SKIP
    >>> result = scanner.scan("call.wav")                   # doctest: +SKIP
    >>> result.verdict, result.probability                  # doctest: +SKIP
    (<Verdict.REAL: 'REAL'>, 0.08)
    >>> [(s.start_s, s.probability) for s in result.timeline]  # doctest: +SKIP
    """

    def __init__(
        self,
        detector: SegmentScorer | str | os.PathLike[str] | None = None,
        *,
        segment_s: float | None = None,
        hop_s: float | None = None,
        threshold: float | None = None,
        operating_point: str = "eer",
        margin: float = 0.1,
        min_speech_s: float = 1.0,
        min_segment_speech: float = 0.5,
        top_fraction: float = 0.25,
        max_top_s: float = 8.0,
        stream_above_s: float = 600.0,
        chunk_s: float = 60.0,
        threads: int = 1,
        watermark: bool = False,
        wide_band: bool | str | os.PathLike[str] | WideBandCompanion = True,
    ) -> None:
        if detector is None or isinstance(detector, str | os.PathLike):
            detector = _load_detector(detector, threads)
        self.detector = detector
        self.segment_s = float(segment_s if segment_s is not None else detector.segment_s)
        self.hop_s = float(hop_s if hop_s is not None else self.segment_s / 2.0)
        if not (self.segment_s > 0 and self.hop_s > 0 and math.isfinite(self.segment_s + self.hop_s)):
            raise ValueError("segment and hop lengths must be positive")
        if margin < 0 or not 0 <= min_segment_speech <= 1 or min_speech_s < 0 or chunk_s <= 0:
            raise ValueError("need margin >= 0, 0 <= min_segment_speech <= 1, min_speech_s >= 0, chunk_s > 0")
        self.threshold, self.operating_point = resolve_threshold(detector.thresholds(), threshold, operating_point)
        self.margin = float(margin)
        self.min_speech_s = float(min_speech_s)
        self.min_segment_speech = float(min_segment_speech)
        self.top_fraction = float(top_fraction)
        self.max_top_s = float(max_top_s)
        self.stream_above_s = float(stream_above_s)
        self.chunk_s = float(chunk_s)
        self.threads = threads
        self.watermark: PerthDecoder | None = load_watermark_decoder(threads=threads) if watermark else None
        self.companion: WideBandCompanion | None = self._load_companion(wide_band, threads)
        self._params = {
            "segment_s": segment_s,
            "hop_s": hop_s,
            "threshold": threshold,
            "operating_point": operating_point,
            "margin": margin,
            "min_speech_s": min_speech_s,
            "min_segment_speech": min_segment_speech,
            "top_fraction": top_fraction,
            "max_top_s": max_top_s,
            "stream_above_s": stream_above_s,
            "chunk_s": chunk_s,
            "threads": threads,
            "watermark": watermark,
            # A loaded companion is passed on by its file (workers rebuild the scanner from these).
            "wide_band": wide_band if isinstance(wide_band, bool) else str(getattr(self.companion, "path", wide_band)),
        }

    def _load_companion(
        self, wide_band: bool | str | os.PathLike[str] | WideBandCompanion, threads: int
    ) -> WideBandCompanion | None:
        if wide_band is False:
            return None
        if isinstance(wide_band, WideBandCompanion):
            companion, path = wide_band, wide_band.path
        else:
            path = companion_for(self.detector.name) if wide_band is True else Path(wide_band)
            if path is None:
                return None
            companion = WideBandCompanion.load(path, threads=threads)
        if companion.fusion.main != self.detector.name:
            from voxguard.errors import ModelError

            raise ModelError(
                f"the wide-band companion {companion.name!r} was fitted with {companion.fusion.main!r}, "
                f"not with {self.detector.name!r}",
                path=str(path),
            )
        return companion

    # ------------------------------------------------------------------ configuration

    @property
    def model_name(self) -> str:
        return self.detector.name

    @property
    def model_path(self) -> Path | None:
        """The detector's model file, when it has one (needed to rebuild the scanner in workers)."""
        path = getattr(getattr(self.detector, "model", None), "path", None)
        return Path(path) if path is not None else None

    def get_params(self) -> dict[str, Any]:
        """Constructor arguments that rebuild an equivalent scanner (``Scanner(**params)``)."""
        if self.model_path is None:
            raise ValueError("this detector has no model file, so the scanner cannot be rebuilt elsewhere")
        return {"detector": str(self.model_path), **self._params}

    def __repr__(self) -> str:
        return (
            f"Scanner(model={self.model_name!r}, segment_s={self.segment_s:g}, hop_s={self.hop_s:g}, "
            f"threshold={self.threshold:g} ({self.operating_point}), margin={self.margin:g})"
        )

    # ------------------------------------------------------------------ public API

    def scan(
        self,
        source: AudioSource | np.ndarray,
        sr: int | None = None,
        *,
        name: str | None = None,
        plot: str | os.PathLike[str] | None = None,
    ) -> ScanResult:
        """Scan one recording.

        Parameters
        ----------
        source : path, bytes, binary file object, or np.ndarray
            A file in any supported format, or a mono (or ``(n, channels)``) float array.
        sr : int, optional
            Sample rate of an array input (required then, ignored otherwise).
        name : str, optional
            Name reported in the result (default: the path, ``"-"`` for bytes/streams,
            ``"<array>"`` for arrays).
        plot : path, optional
            Write a PNG of the waveform and segment probabilities here (needs matplotlib).

        Returns
        -------
        ScanResult

        Raises
        ------
        voxguard.errors.VoxguardError
            A typed error for unreadable, silent or otherwise unusable input.
        """
        start = time.perf_counter()
        want_env = plot is not None
        if plot is not None:
            from voxguard.scan.plot import require_matplotlib

            require_matplotlib()  # fail before the (possibly long) scan
        if isinstance(source, np.ndarray):
            if sr is None:
                raise ValueError("an array input needs its sample rate: scan(y, sr=...)")
            label = name or "<array>"
            scored = self._scan_array(source, int(sr), want_env)
        else:
            source = materialise(source)
            label = name or source_name(source) or "-"
            scored = self._scan_source(source, want_env)
        result = self._finish(label, scored)
        result.elapsed_s = time.perf_counter() - start
        if plot is not None:
            from voxguard.scan.plot import plot_result

            plot_result(result, plot)
            result.plot = str(plot)
            result.envelope = None  # only needed for the figure; keep results light
        return result

    def failure(self, path: str, error: VoxguardError | ErrorInfo, elapsed_s: float = 0.0) -> ScanResult:
        """A result recording that ``path`` could not be scanned (``verdict`` is ``None``)."""
        info = error if isinstance(error, ErrorInfo) else ErrorInfo(error.code, error.message)
        return self._blank(path, error=info, elapsed_s=elapsed_s)

    # ------------------------------------------------------------------ decoding

    @property
    def _rate(self) -> int | None:
        return self.detector.sample_rate

    def _scan_source(self, source: AudioSource, want_env: bool) -> _Scored:
        info = probe(source)
        wide_rate, why = self._wide_rate(info.sample_rate)
        # One decode for every rate needed: a compressed file costs about a scan to decode.
        rates = (self._rate,) if wide_rate is None else (self._rate, wide_rate)
        if info.duration_s is None or info.duration_s > self.stream_above_s:
            blocks = iter_blocks_at(source, rates, block_s=_DECODE_BLOCK_S)
            pairs = ((b[0], b[1] if len(b) > 1 else None) for b in blocks)
            rate = self._rate or info.sample_rate
            return self._scan_stream(pairs, rate, want_env, wide_rate=wide_rate, why_narrow=why)
        audio, *wide = load_at(source, rates, max_duration_s=None)
        return self._scan_whole(audio.samples, audio.sample_rate, want_env, wide[0].samples if wide else None, why)

    def _scan_array(self, y: np.ndarray, sr: int, want_env: bool) -> _Scored:
        native = from_array(y, sr, target_sr=None).samples  # validated and downmixed once for both rates
        wide_rate, why = self._wide_rate(sr)
        wide = None if wide_rate is None else resample(native, sr, wide_rate)
        y, rate = (resample(native, sr, self._rate), self._rate) if self._rate else (native, sr)
        if len(y) == 0:
            raise ZeroLengthAudioError("the array holds no samples")
        if len(y) / rate > self.stream_above_s:
            step = int(_DECODE_BLOCK_S * rate)
            if wide is None:
                blocks = ((y[i : i + step], None) for i in range(0, len(y), step))
                return self._scan_stream(blocks, rate, want_env, why_narrow=why)
            assert wide_rate is not None
            w_step, last = int(_DECODE_BLOCK_S * wide_rate), -(-len(y) // step) - 1  # the same time at each rate
            pairs = (
                (y[k * step : (k + 1) * step], wide[k * w_step : (k + 1) * w_step if k < last else None])
                for k in range(last + 1)
            )
            return self._scan_stream(pairs, rate, want_env, wide_rate=wide_rate)
        return self._scan_whole(y, rate, want_env, wide, why)

    def _wide_rate(self, native_rate: int) -> tuple[int | None, str | None]:
        """The companion's rate when it may apply to a recording at ``native_rate``, or ``None`` and why not."""
        if self.companion is None:
            return None, None
        if not holds_top_band(native_rate):
            return None, f"the recording's rate ({native_rate} Hz) holds nothing above 8 kHz"
        return self.companion.sample_rate, None

    # ------------------------------------------------------------------ whole-file mode

    def _grid(self, sr: int) -> tuple[int, int, int, int]:
        """Segment, hop, chunk and model-window lengths in samples.

        The chunk is a whole number of hops, so the segment grid is the same as on the whole
        signal, and, when the detector scores fixed windows (``window_s``), of windows too; with
        scored slices extended to whole windows (:func:`~voxguard.scan.timeline.align_end`), a
        window-level model then sees exactly the windows it would see on the whole signal.
        """
        seg_n = max(1, int(round(self.segment_s * sr)))
        hop_n = max(1, int(round(self.hop_s * sr)))
        target = max(1, int(round(self.chunk_s * sr)))
        unit = hop_n
        window_s = getattr(self.detector, "window_s", None)
        win_n = max(1, int(round(window_s * sr))) if isinstance(window_s, int | float) and window_s > 0 else 1
        aligned = math.lcm(hop_n, win_n)
        if aligned <= 2 * target:  # otherwise alignment would make chunks too long
            unit = aligned
        return seg_n, hop_n, unit * max(1, round(target / unit)), win_n

    def _scan_whole(
        self, y: np.ndarray, sr: int, want_env: bool, wide: np.ndarray | None = None, why_narrow: str | None = None
    ) -> _Scored:
        duration = len(y) / sr
        if len(y) == 0:
            raise ZeroLengthAudioError("the audio contains no samples")
        if peak_amplitude(y) < _SILENCE_PEAK:
            raise SilentAudioError("the audio is digital silence")
        activity = detect_speech(y, sr)
        if activity.speech_s == 0:
            raise SilentAudioError("no speech detected")
        envelope = self._envelope(y, sr) if want_env else None
        note = None
        try:
            yp, srp, offset = self.detector.prepare_array(y, sr, activity=activity)
            bounds = segment_bounds(len(yp), srp, self.segment_s, self.hop_s)
            _, _, chunk_n, win_n = self._grid(srp)
            scores, proba = score_segments(self.detector, yp, srp, bounds, chunk_n=chunk_n, window_n=win_n)
        except _TOO_LITTLE as exc:
            if activity.speech_s >= self.min_speech_s:
                raise
            bounds, srp, offset, note = np.zeros((0, 2), dtype=np.int64), sr, 0.0, exc.message
            scores = proba = np.zeros(0)
        starts = np.clip(bounds[:, 0] / srp + offset, 0.0, duration)
        ends = np.clip(bounds[:, 1] / srp + offset, 0.0, duration)
        proba, wide_band, wide_proba = self._with_companion(proba, starts, ends, wide, why_narrow, activity)
        marks = self._mark_frames(y, sr)
        return _Scored(
            wide_band=wide_band,
            wide_band_proba=wide_proba,
            watermark_sums=None if marks is None else marks.sums(),
            watermark=None if marks is None else confidence_from_sums(marks.segment_sums(starts, ends)),
            starts_s=starts,
            ends_s=ends,
            scores=scores,
            proba=proba,
            speech_fraction=speech_fraction(activity.mask, activity.frame_s, starts, ends),
            duration_s=duration,
            speech_s=activity.speech_s,
            mode="whole",
            envelope=envelope,
            note=note,
        )

    def _with_companion(
        self,
        proba: np.ndarray,
        starts: np.ndarray,
        ends: np.ndarray,
        wide: np.ndarray | None,
        why_narrow: str | None,
        activity: SpeechActivity | None = None,
    ) -> tuple[np.ndarray, WideBandUse | None, np.ndarray | None]:
        """The segment probabilities mixed with the wide-band companion's, when it applies
        (``wide``: the recording at its rate; ``None``, with ``why_narrow`` saying why not).

        Returns the (mixed) probabilities, what the companion did, and its own P(fake) per
        segment (``None`` unless it was used; NaN for segments it could not score).
        """
        companion = self.companion
        if companion is None:
            return proba, None, None
        use = WideBandUse(model=companion.name)
        if wide is None:
            return proba, dataclasses.replace(use, note=why_narrow), None
        if len(proba) == 0:
            return proba, dataclasses.replace(use, note="no segment to score"), None
        got = companion.score(wide, companion.sample_rate, starts, ends, activity=activity)
        gate = companion.fusion.min_top_band_db
        use = dataclasses.replace(use, top_band_db=got.top_band_db)
        if got.proba is None:
            note = f"8-9.8 kHz is at {got.top_band_db:.0f} dB of the total (gate {gate:.0f} dB): no wide-band content"
            return proba, dataclasses.replace(use, note=note), None
        count = int((np.isfinite(got.proba) & np.isfinite(proba)).sum())
        if count == 0:
            return proba, dataclasses.replace(use, note="no segment long enough for the wide-band model"), None
        mixed = companion.fusion.fuse(proba, got.proba)
        return mixed, dataclasses.replace(use, used=True, segments=count), got.proba

    def _mark_frames(self, y: np.ndarray, sr: int) -> MarkFrames | None:
        """The watermark decoder's frames of ``y`` (``None``: no check asked, or too short to decode)."""
        if self.watermark is None:
            return None
        try:
            return self.watermark.frames(y, sr)
        except TooShortError:
            return None

    def _envelope(self, y: np.ndarray, sr: int) -> Envelope:
        frame_n = max(1, int(round(_ENVELOPE_FRAME_S * sr)))
        return Envelope(frame_s=frame_n / sr, peak=peak_envelope(y, frame_n))

    # ------------------------------------------------------------------ streaming mode

    def _scan_stream(
        self,
        blocks: Iterable[tuple[np.ndarray, np.ndarray | None]],
        sr: int,
        want_env: bool,
        *,
        wide_rate: int | None = None,
        why_narrow: str | None = None,
    ) -> _Scored:
        """Score a stream of blocks at rate ``sr`` in chunks of ``chunk_n`` plus one segment of overlap.

        The segment grid is global (starts at 0, every hop, the last one aligned to the end, as
        :func:`voxguard.audio.segment_bounds` lays it out on a whole signal). Chunk ``c`` scores the
        segments starting in ``[c * chunk_n, (c + 1) * chunk_n)`` and needs audio up to the end of
        the last of them; the buffer keeps one segment of history so that the final end-aligned
        segment can reach back into the previous chunk.

        ``blocks`` yields ``(block, wide_block)``: ``wide_block`` is the same stretch of time at
        the companion's ``wide_rate`` (``None`` without; ``why_narrow`` says why), kept in a
        second buffer aligned in time with the first.
        """
        seg_n, hop_n, chunk_n, win_n = self._grid(sr)
        env_n = chunk_n // max(1, round(chunk_n / (_ENVELOPE_FRAME_S * sr)))  # divides chunk_n
        acc = _StreamAccumulator(want_env)
        main = _Buffer()
        wide = _Buffer() if wide_rate is not None else None
        c = 0  # start of the next chunk (absolute sample index)
        for block, wide_block in blocks:
            main.add(block)
            if wide is not None and wide_block is not None:
                wide.add(wide_block)
            while main.end >= c + align_end(0, chunk_n - hop_n + seg_n, win_n):
                starts = np.arange(c, c + chunk_n, hop_n, dtype=np.int64)
                self._stream_chunk(
                    acc, main, sr, starts, starts + seg_n, (c, c + chunk_n), env_n, win_n, wide, wide_rate
                )
                c += chunk_n
                keep = max(main.start, c - seg_n)
                main.drop_before(keep)
                if wide is not None and wide_rate is not None:
                    wide.drop_before(max(wide.start, keep * wide_rate // sr - 1))
        n = main.end
        if n == 0:
            raise ZeroLengthAudioError("the audio contains no samples")
        if n > c:
            last_end = c - hop_n + seg_n if c > 0 else 0
            if n <= seg_n:
                starts, ends = np.array([0]), np.array([n])
            elif n > last_end:
                starts = np.arange(c, n - seg_n + 1, hop_n, dtype=np.int64)
                if len(starts) == 0 or starts[-1] + seg_n < n:
                    starts = np.append(starts, n - seg_n)
                ends = starts + seg_n
            else:
                starts = ends = np.zeros(0, dtype=np.int64)
            self._stream_chunk(acc, main, sr, starts, ends, (c, n), env_n, win_n, wide, wide_rate)
        if acc.peak < _SILENCE_PEAK:
            raise SilentAudioError("the audio is digital silence")
        if acc.speech_s == 0:
            raise SilentAudioError("no speech detected")
        cat = np.concatenate
        wide_band, wide_proba = self._stream_wide_band(acc, why_narrow)
        return _Scored(
            starts_s=cat(acc.starts) / sr,
            ends_s=cat(acc.ends) / sr,
            scores=cat(acc.scores),
            proba=cat(acc.proba),
            speech_fraction=cat(acc.fractions),
            duration_s=n / sr,
            speech_s=acc.speech_s,
            mode="stream",
            envelope=Envelope(env_n / sr, cat(acc.env)) if want_env else None,
            watermark_sums=acc.watermark_sums if self.watermark is not None else None,
            watermark=cat(acc.watermark) if self.watermark is not None else None,
            wide_band=wide_band,
            wide_band_proba=wide_proba,
        )

    def _stream_chunk(
        self,
        acc: _StreamAccumulator,
        buf: _Buffer,
        sr: int,
        starts: np.ndarray,
        ends: np.ndarray,
        counted: tuple[int, int],
        env_n: int,
        win_n: int,
        wide: _Buffer | None = None,
        wide_rate: int | None = None,
    ) -> None:
        """VAD, envelope and scores of one chunk; totals count only ``counted`` (no double counting)."""
        c0, c1 = counted
        lo = min(c0, int(starts.min())) if len(starts) else c0
        hi = max(c1, int(ends.max())) if len(ends) else c1
        region = buf.get(lo, hi)
        own = buf.get(c0, c1)
        acc.peak = max(acc.peak, peak_amplitude(own))
        activity = detect_speech(region, sr)
        acc.speech_s += float(speech_seconds(activity.mask, activity.frame_s, [(c0 - lo) / sr], [(c1 - lo) / sr])[0])
        if acc.want_env:
            acc.env.append(peak_envelope(own, env_n))
        marks = self._mark_frames(region, sr)
        if marks is not None:  # frames are counted once, in the chunk they are centred in
            acc.watermark_sums += marks.sums((c0 - lo) / sr, (c1 - lo) / sr)
        if len(starts) == 0:
            return
        if self.watermark is not None:
            acc.watermark.append(
                np.full(len(starts), np.nan)
                if marks is None
                else confidence_from_sums(marks.segment_sums((starts - lo) / sr, (ends - lo) / sr))
            )
        scores = np.full(len(starts), np.nan)
        proba = np.full(len(starts), np.nan)
        wide_proba = np.full(len(starts), np.nan)
        if activity.speech_s > 0:  # a chunk without speech is not worth a model call (and would not count)
            s_lo, s_hi = int(starts.min()), int(ends.max())
            s_hi = min(buf.end, align_end(s_lo, s_hi, win_n))  # whole model windows
            try:
                yp, srp, _ = self.detector.prepare_array(buf.get(s_lo, s_hi), sr, trim=False)
                bounds = np.round((np.stack([starts, ends], axis=1) - s_lo) * (srp / sr)).astype(np.int64)
                scores, proba = self.detector.segment_scores(yp, srp, np.minimum(bounds, len(yp)))
            except _TOO_LITTLE:
                pass  # too little speech in this chunk to prepare: its segments stay unscored
            if wide is not None and wide_rate is not None:
                wide_proba = self._stream_companion(acc, wide, wide_rate, sr, (lo, hi), starts, ends)
                if acc.wide_gate:
                    proba = self.companion.fusion.fuse(proba, wide_proba)  # type: ignore[union-attr]
                    acc.wide_segments += int((np.isfinite(proba) & np.isfinite(wide_proba)).sum())
        acc.starts.append(starts)
        acc.ends.append(ends)
        acc.scores.append(np.asarray(scores, dtype=np.float64))
        acc.proba.append(np.asarray(proba, dtype=np.float64))
        acc.wide.append(wide_proba)
        acc.fractions.append(speech_fraction(activity.mask, activity.frame_s, (starts - lo) / sr, (ends - lo) / sr))

    def _stream_companion(
        self,
        acc: _StreamAccumulator,
        wide: _Buffer,
        wide_rate: int,
        sr: int,
        region: tuple[int, int],
        starts: np.ndarray,
        ends: np.ndarray,
    ) -> np.ndarray:
        """The companion's P(fake) for one chunk's segments (NaN when the gate is shut).

        The gate is decided once, on the first chunk with speech (``region``, in samples at
        ``sr``), and holds for the rest of the recording: one verdict needs one calibration.
        """
        assert self.companion is not None
        to_wide = wide_rate / sr
        if acc.wide_gate is None:
            level = top_band_db(wide.get(int(region[0] * to_wide), int(np.ceil(region[1] * to_wide))), wide_rate)
            acc.top_band_db, acc.wide_gate = level, self.companion.has_band(level)
        if not acc.wide_gate:
            return np.full(len(starts), np.nan)
        w_lo = int(starts.min() * to_wide)
        w_hi = min(wide.end, int(np.ceil(ends.max() * to_wide)))
        t0 = w_lo / wide_rate  # seconds of the recording where the slice starts
        return self.companion.segment_proba(
            wide.get(w_lo, w_hi), wide_rate, starts / sr - t0, ends / sr - t0, trim=False
        )

    def _stream_wide_band(
        self, acc: _StreamAccumulator, why_narrow: str | None
    ) -> tuple[WideBandUse | None, np.ndarray | None]:
        """What the companion did over a streamed recording, and its own P(fake) per segment when used."""
        if self.companion is None:
            return None, None
        use = WideBandUse(model=self.companion.name, top_band_db=acc.top_band_db)
        if acc.wide_gate is None:
            return dataclasses.replace(use, note=why_narrow or "no chunk with speech to measure the band on"), None
        if not acc.wide_gate:
            gate = self.companion.fusion.min_top_band_db
            note = (
                f"8-9.8 kHz is at {acc.top_band_db:.0f} dB of the total in the first chunk with speech "
                f"(gate {gate:.0f} dB): no wide-band content"
            )
            return dataclasses.replace(use, note=note), None
        if acc.wide_segments == 0:
            return dataclasses.replace(use, note="no segment long enough for the wide-band model"), None
        return dataclasses.replace(use, used=True, segments=acc.wide_segments), np.concatenate(acc.wide)

    # ------------------------------------------------------------------ verdict

    def _blank(self, path: str, threshold: float | None = None, **fields: Any) -> ScanResult:
        threshold = self.threshold if threshold is None else threshold
        return ScanResult(
            path=path,
            model=self.model_name,
            threshold=threshold,
            operating_point=self.operating_point,
            margin=effective_margin(threshold, self.margin),
            segment_s=self.segment_s,
            hop_s=self.hop_s,
            **fields,
        )

    def _threshold_for(self, scored: _Scored) -> float:
        """The verdict's threshold: the mix's own operating point when the companion was used
        (an explicit ``threshold`` always wins)."""
        if self.companion is None or scored.wide_band is None or not scored.wide_band.used:
            return self.threshold
        return self.companion.fusion.thresholds.get(self.operating_point, self.threshold)

    def _finish(self, path: str, scored: _Scored) -> ScanResult:
        finite = np.isfinite(scored.proba)
        eligible = (scored.speech_fraction >= self.min_segment_speech) & finite
        timeline = Timeline(
            starts_s=scored.starts_s,
            ends_s=scored.ends_s,
            proba=scored.proba,
            scores=scored.scores,
            speech_fraction=scored.speech_fraction,
            eligible=eligible,
            watermark=scored.watermark,
            wide_band=scored.wide_band_proba,
        )
        max_k = max_top_segments(self.max_top_s, self.segment_s, self.hop_s)
        # Without an eligible segment, report the segments with any speech, but do not decide.
        use = eligible if eligible.any() else finite & (scored.speech_fraction > 0)
        agg = top_k_mean(scored.proba, scored.scores, use, top_fraction=self.top_fraction, max_k=max_k)
        threshold = self._threshold_for(scored)
        reason = None
        if scored.speech_s < self.min_speech_s:
            verdict = Verdict.UNCERTAIN
            reason = f"too little speech: {scored.speech_s:.2f} s (at least {self.min_speech_s:g} s needed)"
            if scored.note:
                reason += f"; {scored.note}"
        elif not eligible.any() or not math.isfinite(agg.probability):
            verdict = Verdict.UNCERTAIN
            reason = f"too little speech: no segment is at least {self.min_segment_speech:.0%} speech"
        else:
            verdict = decide(agg.probability, threshold, self.margin)
            if verdict is Verdict.UNCERTAIN:
                m = effective_margin(threshold, self.margin)
                reason = f"P(fake) {agg.probability:.2f} is within {m:.2f} of the threshold {threshold:.2f}"
        mark = None
        if self.watermark is not None and scored.watermark_sums is not None:
            mark = self.watermark.result(scored.watermark_sums)
            runs = marked_passages(
                timeline.starts_s, timeline.ends_s, timeline.watermark, mark.threshold, self.watermark.min_signal_s
            )
            if runs:
                mark = dataclasses.replace(mark, passages=runs)
            if runs and not mark.detected:
                where = ", ".join(f"{a:.1f}–{b:.1f} s ({c:.2f})" for a, b, c in runs[:5])
                note = f"marked passage(s) at {where}; not claimed for the whole recording"
                mark = dataclasses.replace(mark, note=mark.note or note)
                reason = reason or f"possible Perth-watermarked passage(s) at {where}; the verdict is the detector's"
            if mark.detected and verdict is not Verdict.FAKE:
                # A decoded mark is evidence of its own: Perth marks what a generator produced.
                verdict = Verdict.FAKE
                detector_p = f"{agg.probability:.2f}" if math.isfinite(agg.probability) else "not available"
                reason = (
                    f"{mark.scheme} watermark detected (confidence {mark.confidence:.2f} >= {mark.threshold:.2f}): "
                    f"made by a Perth watermarker such as Chatterbox TTS; the detector's P(fake) is {detector_p}"
                )
        return self._blank(
            path,
            threshold=threshold,
            wide_band=scored.wide_band,
            verdict=verdict,
            probability=agg.probability,
            score=agg.score,
            duration_s=scored.duration_s,
            speech_s=scored.speech_s,
            mode=scored.mode,
            timeline=timeline,
            reason=reason,
            envelope=scored.envelope,
            watermark=mark,
        )


@dataclass
class _StreamAccumulator:
    """Per-chunk outputs of a streamed scan (arrays are concatenated once at the end)."""

    want_env: bool
    peak: float = 0.0
    speech_s: float = 0.0

    def __post_init__(self) -> None:
        self.starts: list[np.ndarray] = []
        self.ends: list[np.ndarray] = []
        self.scores: list[np.ndarray] = []
        self.proba: list[np.ndarray] = []
        self.fractions: list[np.ndarray] = []
        self.env: list[np.ndarray] = []
        self.watermark: list[np.ndarray] = []
        self.watermark_sums = np.zeros((3, 3))
        self.wide: list[np.ndarray] = []  # the companion's own P(fake) per segment
        self.wide_gate: bool | None = None  # decided on the first chunk with speech
        self.top_band_db: float | None = None
        self.wide_segments = 0


class _Buffer:
    """The recent samples of a stream, addressed by absolute sample index."""

    def __init__(self) -> None:
        self._parts: list[np.ndarray] = []
        self.start = 0  # absolute index of the first buffered sample
        self.end = 0  # one past the last

    def add(self, block: np.ndarray) -> None:
        if len(block):
            self._parts.append(block)
            self.end += len(block)

    def _joined(self) -> np.ndarray:
        if len(self._parts) != 1:
            self._parts = [np.concatenate(self._parts) if self._parts else np.zeros(0, dtype=np.float32)]
        return self._parts[0]

    def get(self, lo: int, hi: int) -> np.ndarray:
        """Samples ``[lo, hi)`` (clipped to what is buffered)."""
        return self._joined()[max(0, lo - self.start) : max(0, hi - self.start)]

    def drop_before(self, keep: int) -> None:
        """Forget the samples before ``keep``."""
        keep = min(max(keep, self.start), self.end)
        self._parts = [self._joined()[keep - self.start :]]
        self.start = keep


def load_detector(name_or_path: str | os.PathLike[str] | None = None, **scanner_options: Any) -> Scanner:
    """Load a model and wrap it in a :class:`Scanner`.

    Parameters
    ----------
    name_or_path : str or path, optional
        A shipped model name (``voxguard.models.registry.available_models()``) or an ``.onnx``
        file with its ``.card.json`` beside it; ``None`` loads the default model.
    **scanner_options
        Passed to :class:`Scanner` (``segment_s``, ``hop_s``, ``threshold``, ``operating_point``,
        ``margin``, ``threads``, ...).

    Returns
    -------
    Scanner

    Examples
    --------
    >>> import voxguard
    >>> scanner = voxguard.load_detector()               # doctest: +SKIP
    >>> scanner.scan("clip.wav").to_dict()["verdict"]    # doctest: +SKIP
    'REAL'
    """
    threads = int(scanner_options.pop("threads", 1))
    return Scanner(_load_detector(name_or_path, threads), threads=threads, **scanner_options)
