"""Shipped models: lookup by name or path, cards, safe loading."""

from __future__ import annotations

import numpy as np
import pytest

from voxguard.errors import ModelError
from voxguard.models.detector import Detector
from voxguard.models.registry import DEFAULT_MODEL, available_models, resolve_model


def test_default_model_is_shipped_with_card():
    cards = available_models()
    assert DEFAULT_MODEL in cards
    card = cards[DEFAULT_MODEL]
    for key in ("training", "metrics", "created"):
        assert getattr(card, key)
    assert "command" in card.training


def test_default_model_with_its_members_is_under_20_mb():
    """Issue 5: the default ships inside the package, under 20 MB with every file it loads."""
    path = resolve_model(DEFAULT_MODEL)
    members = available_models()[DEFAULT_MODEL].features.get("members") or []
    files = [path, *(path.parent / m for m in members)]
    assert sum(f.stat().st_size for f in files) < 20 * 1024 * 1024


def test_resolve_by_name_and_path(tmp_path):
    path = resolve_model(DEFAULT_MODEL)
    assert resolve_model(None) == path and resolve_model(str(path)) == path
    with pytest.raises(ModelError, match="shipped models"):
        resolve_model("no-such-model")


def test_default_detector_scores_features():
    detector = Detector.load(resolve_model())
    X = np.zeros((3, len(detector.model.card.features["columns"])), dtype=np.float32)
    proba = detector.model.predict_proba(X)
    assert proba.shape == (3,) and np.all((proba >= 0) & (proba <= 1))


def test_corrupt_model_file(tmp_path):
    import shutil

    src = resolve_model()
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00not onnx")
    shutil.copy(src.with_name(src.name.removesuffix(".onnx") + ".card.json"), tmp_path / "bad.card.json")
    with pytest.raises(ModelError, match="cannot load"):
        Detector.load(bad)


def test_every_shipped_model_loads_and_scans_an_example():
    """Every model in the zoo (the default and the alternatives: v1-v4, voxguard-fisher, the seed
    SVM) loads from its card without torch and scans a bundled example to a probability."""
    from pathlib import Path

    from voxguard.scan import Scanner

    examples = Path(__file__).parents[1] / "examples"
    narrow = examples / "real_librispeech_1688-142285-0002.flac"  # 16 kHz
    wide = examples / "real_melgan-page_unseen-speaker_0.flac"  # 22.05 kHz, the band above 8 kHz there
    names = [n for n, card in available_models().items() if "." not in n]  # members load with their model
    assert DEFAULT_MODEL in names
    for name in names:
        # A wide-band companion reads 8-9.8 kHz: a 16-kHz example has nothing there.
        is_companion = isinstance(available_models()[name].output.get("companion"), dict)
        result = Scanner(name).scan(wide if is_companion else narrow)
        assert 0.0 <= result.probability <= 1.0, name
