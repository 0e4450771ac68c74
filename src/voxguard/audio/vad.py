"""Voice-activity detection with WebRTC's VAD (GMM-based, torch-free), plus an energy gate.

webrtcvad alone flags faint steady noise as speech at low aggressiveness, so a frame counts as
speech only when the VAD says so *and* its level is within ``dynamic_range_db`` of the loudest
frame and above an absolute floor. Short blips are removed and short pauses bridged, so that
"speech duration" means what a listener would call speech.
"""

from __future__ import annotations

from dataclasses import dataclass

import _webrtcvad  # the C module behind webrtcvad.Vad
import numpy as np
import webrtcvad
from scipy import ndimage

from voxguard.audio.load import peak_amplitude, resample

_VAD_RATES = (8_000, 16_000, 32_000, 48_000)


@dataclass(frozen=True)
class SpeechActivity:
    """Frame-level speech decisions.

    Attributes
    ----------
    mask : np.ndarray, shape (n_frames,), bool
        True where the frame is speech (after smoothing).
    frame_s : float
        Frame length and hop in seconds (frames do not overlap).
    """

    mask: np.ndarray
    frame_s: float

    @property
    def speech_s(self) -> float:
        """Seconds of speech."""
        return float(self.mask.sum()) * self.frame_s

    def bounds_s(self) -> tuple[float, float] | None:
        """(start, end) of the first and last speech frame in seconds, or ``None`` if no speech."""
        idx = np.flatnonzero(self.mask)
        if idx.size == 0:
            return None
        return float(idx[0] * self.frame_s), float((idx[-1] + 1) * self.frame_s)


def frame_levels_db(y: np.ndarray, frame_length: int) -> np.ndarray:
    """RMS level in dBFS of consecutive non-overlapping frames, shape ``(len(y) // frame_length,)``."""
    n = len(y) // frame_length
    frames = y[: n * frame_length].reshape(n, frame_length)
    # float32 sums (SIMD, 5x faster than accumulating in float64): ~1e-6 relative, far below a dB.
    power = np.einsum("ij,ij->i", frames, frames).astype(np.float64) / frame_length
    return (10.0 * np.log10(power + 1e-20)).astype(np.float32)


def detect_speech(
    y: np.ndarray,
    sr: int,
    *,
    aggressiveness: int = 2,
    frame_ms: int = 30,
    dynamic_range_db: float = 45.0,
    floor_dbfs: float = -60.0,
    min_speech_ms: float = 90.0,
    max_pause_ms: float = 300.0,
) -> SpeechActivity:
    """Speech/non-speech decision per ``frame_ms`` frame.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
        Mono float signal in [-1, 1].
    sr : int
        Rate in Hz (resampled internally to 16 kHz if WebRTC's VAD does not support it).
    aggressiveness : int
        WebRTC VAD mode 0 (least) to 3 (most aggressive at rejecting non-speech).
    frame_ms : int
        10, 20 or 30 ms (WebRTC's frame sizes).
    dynamic_range_db, floor_dbfs : float
        Energy gate: frames quieter than ``loudest - dynamic_range_db`` or ``floor_dbfs`` are not
        speech. Levels are measured after scaling the signal to a peak of 0.9, so the decision
        does not depend on the input gain.
    min_speech_ms, max_pause_ms : float
        Smoothing: speech runs shorter than ``min_speech_ms`` are dropped, pauses shorter than
        ``max_pause_ms`` inside speech are bridged.

    Returns
    -------
    SpeechActivity
    """
    if sr not in _VAD_RATES:
        y, sr = resample(y, sr, 16_000), 16_000
    # Decide on a peak-normalised copy: WebRTC's VAD and the absolute floor depend on level, and
    # the same recording at another gain must give the same speech bounds (the preprocessing
    # trims at them, so a gain change would otherwise change what the detector scores).
    peak = peak_amplitude(y)
    if peak > 0:
        y = y * np.float32(0.9 / peak)
    frame_length = sr * frame_ms // 1000
    n = len(y) // frame_length
    if n == 0:
        return SpeechActivity(mask=np.zeros(0, dtype=bool), frame_s=frame_ms / 1000)
    # |y| <= 0.9 after the normalisation above, so the 16-bit conversion needs no clipping.
    pcm = (y[: n * frame_length] * np.float32(32768)).astype("<i2")
    vad = webrtcvad.Vad(aggressiveness)
    # WebRTC's API is per frame; one C call per 30 ms frame (~3,000x real time), no NumPy work
    # inside. The module-level call skips the wrapper's per-frame length checks (the frames are
    # cut to length here), which were a tenth of the VAD's time.
    process, handle = _webrtcvad.process, vad._vad
    raw = memoryview(pcm).cast("B")  # bytes of the frames, without a copy
    step = frame_length * 2
    voiced = np.array(
        [process(handle, sr, raw[i : i + step], frame_length) for i in range(0, n * step, step)], dtype=bool
    )
    levels = frame_levels_db(y, frame_length)
    loud_enough = levels > max(floor_dbfs, float(levels.max()) - dynamic_range_db)
    raw = voiced & loud_enough
    mask = raw
    min_run = max(1, round(min_speech_ms / frame_ms))
    max_gap = max(1, round(max_pause_ms / frame_ms))
    if min_run > 1:
        mask = ndimage.binary_opening(raw, structure=np.ones(min_run, dtype=bool))
        # Short runs next to real speech (a plosive onset, a final consonant) are speech too: only
        # isolated blips are dropped. Without this the bounds jump by whole runs when the 30 ms
        # frame grid shifts, e.g. when silence is added in front of the same recording.
        near_speech = ndimage.binary_dilation(mask, structure=np.ones(2 * max_gap + 1, dtype=bool))
        mask = mask | (raw & near_speech)
    if max_gap > 1 and mask.any():
        closed = ndimage.binary_closing(mask, structure=np.ones(max_gap, dtype=bool))
        # binary_closing erodes at the array edges; keep the original decision there.
        mask = closed | mask
    return SpeechActivity(mask=mask, frame_s=frame_length / sr)


__all__ = ["SpeechActivity", "detect_speech", "frame_levels_db"]
