"""voxguard: tell real human speech from AI-generated or manipulated speech.

Layers, each only importing the ones before it::

    audio (decode, resample, preprocess, segment) -> features -> models -> scan / evaluate
    cli and server are thin shells on top; datasets feed training only.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("voxguard")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = ["ScanResult", "Scanner", "__version__", "load_detector"]

# The scanner pulls in numpy, ONNX Runtime and the audio stack: loaded on first use, so that
# `import voxguard` (and `voxguard --version`) stays light.
_LAZY = {"load_detector": "voxguard.scan", "Scanner": "voxguard.scan", "ScanResult": "voxguard.scan"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from importlib import import_module

        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value  # cache: __getattr__ runs only once per name
        return value
    raise AttributeError(f"module 'voxguard' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # for type checkers and IDEs only
    from voxguard.scan import Scanner, ScanResult, load_detector
