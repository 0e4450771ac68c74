"""A detector's EER within strata of a shortcut score (voxguard.evaluate.shortcuts)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from voxguard.evaluate.metrics import MetricError
from voxguard.evaluate.shortcuts import eer_within_strata, read_scores


def _corpus(n: int = 2_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels, a shortcut score that separates them well, and the voice evidence independent of it."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    shortcut = y * 2.0 + rng.normal(0, 1.0, n)  # a recording chain that gives the label away
    voice = y * 2.0 + rng.normal(0, 1.0, n)  # what a good detector hears, independent of the chain
    return y, shortcut, voice


def test_a_detector_that_copies_the_shortcut_is_at_chance_within_strata() -> None:
    y, shortcut, _ = _corpus()
    copycat = shortcut + np.random.default_rng(1).normal(0, 0.05, len(y))
    res = eer_within_strata(y, copycat, shortcut, n_strata=10)
    assert res.detector_eer < 0.2  # looks good on the whole corpus ...
    assert res.within_detector_eer > 0.4  # ... and knows nothing the chain does not
    assert res.spearman_bonafide > 0.9 and res.spearman_spoof > 0.9


def test_a_detector_with_its_own_evidence_keeps_it_within_strata() -> None:
    y, shortcut, voice = _corpus()
    res = eer_within_strata(y, voice, shortcut, n_strata=10)
    assert res.within_detector_eer < 0.25 and abs(res.within_detector_eer - res.detector_eer) < 0.06
    assert res.within_shortcut_eer > 0.35  # inside a stratum the chain hardly separates
    assert abs(res.spearman_bonafide) < 0.1 and abs(res.spearman_spoof) < 0.1
    assert sum(s.n for s in res.strata) == len(y) and len(res.strata) == 10


def test_strata_with_too_few_of_a_class_are_not_pooled() -> None:
    y = np.r_[np.zeros(50), np.ones(2), np.zeros(25), np.ones(25)].astype(int)
    shortcut = np.r_[np.zeros(52), np.ones(50)]  # two strata; the first has only two spoofs
    detector = np.random.default_rng(3).normal(size=len(y)) + y
    res = eer_within_strata(y, detector, shortcut, n_strata=2, min_per_class=5)
    assert [s.n for s in res.strata] == [52, 50]
    assert np.isnan(res.strata[0].detector_eer) and not np.isnan(res.strata[1].detector_eer)
    assert res.n_within == 50 and res.within_detector_eer == pytest.approx(res.strata[1].detector_eer)


def test_bad_input_is_refused() -> None:
    with pytest.raises(MetricError, match="lengths differ"):
        eer_within_strata([0, 1], [0.1, 0.2, 0.3], [0.1, 0.2])
    with pytest.raises(MetricError, match="finite"):
        eer_within_strata([0, 1], [0.1, np.nan], [0.1, 0.2])


def test_read_scores_picks_the_only_column_or_the_named_one(tmp_path: Path) -> None:
    path = tmp_path / "scores.csv"
    path.write_text("id,label,family,a:grouped\nx.flac,0,bonafide,0.25\ny.flac,1,tts,nan\nz.flac,1,tts,\n")
    assert read_scores(path) == ("a:grouped", {"x.flac": 0.25})
    path.write_text("id,label,a:grouped,b:lofo\nx.flac,0,0.25,0.5\n")
    with pytest.raises(ValueError, match="choose a score column: a:grouped, b:lofo"):
        read_scores(path)
    assert read_scores(path, "b:lofo") == ("b:lofo", {"x.flac": 0.5})
    with pytest.raises(ValueError, match="no column 'c'"):
        read_scores(path, "c")
    path.write_text("path,score\nx.flac,0.1\n")
    with pytest.raises(ValueError, match="no 'id' column"):
        read_scores(path)
