"""Shared test set-up: make tests/signals.py importable and locate the optional DEV corpus."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hypothesis import settings

# CI must be reproducible: the same examples on every run (failures found locally are still
# replayed from the example database).
settings.register_profile("ci", derandomize=True, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

sys.path.insert(0, str(Path(__file__).parent))

# rich wraps CLI messages at the console width, which it reads from COLUMNS once, when voxguard.cli
# is imported (80 without a terminal): a long temporary path could then split the phrase a test
# looks for. A wide console keeps messages on one line under any runner (plain, xdist, CI).
os.environ["COLUMNS"] = "400"


def corpus_dir() -> Path | None:
    """The DEV corpus from VOXGUARD_CORPUS or ../shared/corpus, or None when absent."""
    candidates = [os.environ.get("VOXGUARD_CORPUS"), Path(__file__).parents[2] / "shared" / "corpus"]
    for c in candidates:
        if c and (Path(c) / "manifest.csv").is_file():
            return Path(c)
    return None


@pytest.fixture
def corpus() -> Path:
    path = corpus_dir()
    if path is None:
        pytest.skip("DEV corpus not found: set VOXGUARD_CORPUS to a folder with manifest.csv")
    return path
