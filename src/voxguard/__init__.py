"""voxguard: tell real human speech from AI-generated or manipulated speech.

Layers, each only importing the ones before it::

    audio (decode, resample, preprocess, segment) -> features -> models -> scan / evaluate
    cli and server are thin shells on top; datasets feed training only.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("voxguard")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
