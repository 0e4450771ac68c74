"""Typed exceptions: every failure a user can cause has its own class and a readable message.

The shells (CLI, server) map these in one place: the CLI prints ``message`` and carries on with the
next file; the server turns ``http_status`` into a 4xx JSON reply. Nothing else should escape
from the library for bad *input*; an exception of another type is a bug.
"""

from __future__ import annotations


class VoxguardError(Exception):
    """Base class of every voxguard error.

    Attributes
    ----------
    code : str
        Stable machine-readable identifier (used in JSON output and API replies).
    http_status : int
        Status the REST API answers with.
    """

    code = "voxguard_error"
    http_status = 400

    def __init__(self, message: str, *, path: str | None = None) -> None:
        self.message = message
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)

    def to_dict(self) -> dict[str, str | None]:
        return {"error": self.code, "message": self.message, "path": self.path}


class AudioError(VoxguardError):
    """The input could not be used as audio."""

    code = "audio_error"
    http_status = 422


class InputNotFoundError(AudioError):
    """The path does not exist or is not a regular file."""

    code = "not_found"
    http_status = 404


class EmptyFileError(AudioError):
    """The file has zero bytes."""

    code = "empty_file"


class NotAudioError(AudioError):
    """The content is not a recognised audio container or codec."""

    code = "not_audio"
    http_status = 415


class CorruptAudioError(AudioError):
    """The container was recognised but decoding failed (truncated or damaged data)."""

    code = "corrupt_audio"


class ZeroLengthAudioError(AudioError):
    """The file is valid audio but holds no samples."""

    code = "zero_length"


class InvalidSamplesError(AudioError):
    """The decoded signal contains NaN or infinite values."""

    code = "invalid_samples"


class UnsupportedSampleRateError(AudioError):
    """The sample rate is outside the range voxguard accepts."""

    code = "unsupported_sample_rate"


class NoWideBandError(AudioError):
    """A wide-band model was asked to score a recording with nothing above 8 kHz."""

    code = "no_wide_band"


class TooManyChannelsError(AudioError):
    """More channels than voxguard accepts (a multitrack file, not a recording of speech)."""

    code = "too_many_channels"


class SilentAudioError(AudioError):
    """The signal is digital silence or contains no detectable speech."""

    code = "silent_audio"


class TooShortError(AudioError):
    """Less speech than the minimum needed for a reliable decision."""

    code = "too_short"


class TooLongError(AudioError):
    """The audio exceeds the configured maximum duration."""

    code = "too_long"
    http_status = 413


class FeatureError(VoxguardError):
    """Invalid feature request (unknown kind, bad parameters, signal too short for the frame)."""

    code = "feature_error"


class ModelError(VoxguardError):
    """A model file is missing, malformed, or incompatible with this version."""

    code = "model_error"
    http_status = 500
