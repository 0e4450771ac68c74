"""Shipped models by name: ``NAME.onnx`` + ``NAME.card.json`` inside ``voxguard/models/zoo``."""

from __future__ import annotations

from pathlib import Path

from voxguard.errors import ModelError
from voxguard.models.fisher_stages import HEAD_SUFFIX
from voxguard.models.onnx_model import ModelCard, card_path

ZOO_DIR = Path(__file__).parent / "zoo"
#: The model used when none is named: trained on audio of the DEV corpus (see its card,
#: docs/results.md and docs/robustness.md). ``voxguard-v8`` is a routed model
#: (:mod:`voxguard.models.routing`): ``voxguard-v3``'s two SVMs (retrained) for clean, telephone
#: and other audio, a codec expert and three babble experts (two leave the frames near the clip's
#: noise floor out; one of those was trained at 5-15 dB SNR), mixed per segment by a router that
#: tells which degradation a segment has suffered (a logistic regression's and boosted trees'
#: posteriors averaged; members ``voxguard-v8.*.onnx`` beside it; the experts' support vectors
#: stored in float16). ``voxguard-v4`` (the default before v6: other babble experts and a router
#: that reads only the experts' view), ``voxguard-v3`` (two SVMs fused), ``voxguard-v2`` (one
#: SVM), ``voxguard-v1`` (not invariant to the input's sample rate or to added silence) and
#: ``seed-svm`` (the seed study's SVM on DEEP-VOICE features) stay available.
DEFAULT_MODEL = "voxguard-v8"


def available_models() -> dict[str, ModelCard]:
    """Cards of the shipped models, by name."""
    files = [p for p in sorted(ZOO_DIR.glob("*.onnx")) if not p.name.endswith(HEAD_SUFFIX)]  # a head is part of a model
    return {p.name.removesuffix(".onnx"): ModelCard.load(card_path(p)) for p in files}


def resolve_model(name_or_path: str | Path | None = None) -> Path:
    """The ``.onnx`` file for a shipped model name, or an existing path; ``None`` = the default."""
    if name_or_path is None:
        name_or_path = DEFAULT_MODEL
    candidate = ZOO_DIR / f"{name_or_path}.onnx"
    if isinstance(name_or_path, str) and "/" not in name_or_path and candidate.is_file():
        return candidate
    path = Path(name_or_path)
    if path.is_file():
        return path
    names = ", ".join(available_models()) or "none"
    raise ModelError(f"no model named or found at {str(name_or_path)!r} (shipped models: {names})")
