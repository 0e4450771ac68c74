"""Audio input: decode (content-sniffed), downmix, resample, canonical preprocessing, segmenting.

Typical use::

    from voxguard.audio import load, preprocess
    audio = load("clip.m4a")                      # mono float32 at 16 kHz
    clean = preprocess(audio.samples, audio.sample_rate)
"""

from voxguard.audio.decode import AudioInfo, AudioSource, iter_frames, probe
from voxguard.audio.load import (
    ANALYSIS_RATE,
    Audio,
    from_array,
    iter_blocks,
    iter_blocks_at,
    load,
    load_at,
    resample,
    to_mono,
)
from voxguard.audio.preprocess import PreprocessConfig, Preprocessed, preprocess
from voxguard.audio.segment import segment, segment_bounds
from voxguard.audio.vad import SpeechActivity, detect_speech

__all__ = [
    "ANALYSIS_RATE",
    "Audio",
    "AudioInfo",
    "AudioSource",
    "PreprocessConfig",
    "Preprocessed",
    "SpeechActivity",
    "detect_speech",
    "from_array",
    "iter_blocks",
    "iter_blocks_at",
    "iter_frames",
    "load",
    "load_at",
    "preprocess",
    "probe",
    "resample",
    "segment",
    "segment_bounds",
    "to_mono",
]
