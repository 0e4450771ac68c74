"""Shipped models by name: ``NAME.onnx`` + ``NAME.card.json`` inside ``voxguard/models/zoo``."""

from __future__ import annotations

from pathlib import Path

from voxguard.errors import ModelError
from voxguard.models.fisher_stages import HEAD_SUFFIX
from voxguard.models.onnx_model import ModelCard, card_path

ZOO_DIR = Path(__file__).parent / "zoo"
#: The model used when none is named: trained on audio of the DEV corpus (see its card,
#: docs/results.md and docs/robustness.md). ``voxguard-v9`` is a routed model
#: (:mod:`voxguard.models.routing`): ``voxguard-v3``'s two SVMs (retrained) and a Fisher-vector
#: SVM for clean and other audio (the SVMs alone for telephone audio), a codec expert and three
#: babble experts (two leave the frames near the clip's noise floor out; one of those was trained
#: at 5-15 dB SNR), mixed per segment by a router that tells which degradation a segment has
#: suffered (a logistic regression's and boosted trees' posteriors averaged); members
#: ``voxguard-v9.*.onnx`` beside it, the SVM experts' support vectors stored in float16, the
#: Fisher expert in two stages (:mod:`voxguard.models.fisher_stages`). ``voxguard-v4``,
#: ``voxguard-v3`` (two SVMs fused), ``voxguard-v2`` (one SVM), ``voxguard-fisher`` (the
#: Fisher-vector SVM alone), ``voxguard-v1`` (not invariant to the input's sample rate or to
#: added silence) and ``seed-svm`` (the seed study's SVM on DEEP-VOICE features) stay available,
#: and so does ``voxguard-v8`` (v9 without the Fisher expert; the default before it, and the one
#: whose scans the service can keep as segment vectors for ``voxguard retrain``).
DEFAULT_MODEL = "voxguard-v9"


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
