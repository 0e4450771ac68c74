"""Tests of voxguard.evaluate.report: files, embedded PNGs, consistency with compute_all, CSV reading."""

from __future__ import annotations

import base64
import json
import math
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from voxguard.errors import VoxguardError
from voxguard.evaluate import metrics as M
from voxguard.evaluate.report import (
    ReportError,
    ReportSection,
    ScoresFileError,
    ScoreTable,
    read_scores_csv,
    write_report,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _trials(seed: int = 0) -> dict[str, Any]:
    """Bonafide trials plus three attack systems, two speakers per class, a constant and an id-like column."""
    rng = np.random.default_rng(seed)
    n_b = 240
    systems = ["A01"] * 80 + ["A02"] * 80 + ["A03"] * 80
    scores = np.r_[rng.normal(size=n_b), rng.normal(2.0, 1, 80), rng.normal(0.8, 1, 80), rng.normal(3.5, 1, 80)]
    n = scores.size
    return {
        "path": [f"audio/{i:04d}.flac" for i in range(n)],
        "label": ["bonafide"] * n_b + ["spoof"] * 240,
        "score": scores,
        "system": ["-"] * n_b + systems,
        "speaker": [f"spk{i % 3}" for i in range(n)],
        "corpus": ["dev"] * n,
        "utterance": [f"u{i}" for i in range(n)],
    }


class _Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.images.append(dict(attrs))


def _decode_png(data: bytes) -> np.ndarray:
    from matplotlib.image import imread
    from PIL import Image

    assert data.startswith(PNG_SIGNATURE)
    with Image.open(_bytes_io(data)) as im:
        im.verify()  # checks chunk CRCs and structure
    with Image.open(_bytes_io(data)) as im:
        assert im.format == "PNG" and im.width > 100 and im.height > 100
    pixels = imread(_bytes_io(data), format="png")
    assert pixels.ndim == 3 and pixels.std() > 0  # not a blank image
    return pixels


def _bytes_io(data: bytes):
    import io

    return io.BytesIO(data)


def _same(json_value: Any, value: Any) -> bool:
    if isinstance(value, float) and math.isnan(value):
        return json_value is None
    if isinstance(value, float) and math.isinf(value):
        return json_value == ("inf" if value > 0 else "-inf")
    if isinstance(value, float):
        return json_value == pytest.approx(value, rel=1e-12, abs=1e-15)
    return json_value == value


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, dict[str, Any]]:
    data = _trials()
    out = tmp_path_factory.mktemp("report")
    cv = [{"fold": 1, "eer": 0.101, "model": "lfcc-gmm"}, {"fold": 2, "eer": 0.124, "model": "lfcc-gmm"}]
    paths = write_report(
        data,
        out,
        title="Unit <test> report",
        extra_sections=[
            ReportSection("Cross-validation", markdown="Five *folds*.", table=cv),
            {"title": "Raw HTML note", "html": "<p id='note'>hello</p>"},
        ],
        dpi=60,
    )
    return paths, data


def test_all_files_written(report) -> None:
    paths, _ = report
    for p in (paths.html, paths.markdown, paths.metrics_json, *paths.figures.values()):
        assert p.is_file() and p.stat().st_size > 0
        assert p.parent == paths.out_dir
    assert {"roc", "det", "score_histogram", "confusion_matrix", "eer_by_system", "eer_by_speaker"} == set(
        paths.figures
    )


def test_html_images_are_embedded_valid_pngs(report) -> None:
    paths, _ = report
    text = paths.html.read_text(encoding="utf-8")
    parser = _Images()
    parser.feed(text)
    assert len(parser.images) == len(paths.figures)
    for attrs in parser.images:
        src = attrs["src"] or ""
        prefix = "data:image/png;base64,"
        assert src.startswith(prefix), "images must be embedded, the HTML is self-contained"
        png = base64.b64decode(src[len(prefix) :], validate=True)
        _decode_png(png)
        # The same PNG is also written next to the HTML.
        file = paths.out_dir / (attrs["data-file"] or "")
        assert file.is_file() and file.read_bytes() == png
        assert attrs["alt"]
    # No reference to anything outside the file.
    assert not re.search(r'(src|href)="(?!data:)', text)
    assert "Unit &lt;test&gt; report" in text  # title escaped
    assert "<p id='note'>hello</p>" in text  # trusted HTML section verbatim
    assert "lfcc-gmm" in text and "Cross-validation" in text


def test_figure_files_decode(report) -> None:
    paths, _ = report
    for png in paths.figures.values():
        _decode_png(png.read_bytes())


def test_metrics_json_consistent_with_compute_all(report) -> None:
    paths, data = report
    payload = json.loads(
        paths.metrics_json.read_text(encoding="utf-8"),
        parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"),
    )
    expected = M.compute_all(data["label"], data["score"])
    assert set(payload["overall"]) == set(expected)
    for key, value in expected.items():
        assert _same(payload["overall"][key], value), key
    rows = M.metrics_by_group(data["label"], data["score"], data["system"], group_name="system")
    assert len(payload["groups"]["system"]) == len(rows)
    for got, want in zip(payload["groups"]["system"], rows, strict=True):
        for key, value in want.items():
            assert _same(got[key], value), (want["value"], key)
    assert [r["value"] for r in payload["groups"]["system"]] == ["-", "A01", "A02", "A03"]
    assert payload["groups"]["system"][0]["eer"] is None  # bonafide-only group: no EER
    assert all(r["paired_with_all_bonafide"] for r in payload["groups"]["system"][1:])
    # Constant and id-like columns are not used for automatic grouping.
    assert set(payload["groups"]) == {"system", "speaker"}
    assert set(payload["skipped_group_columns"]) == {"corpus", "utterance"}
    assert payload["figures"] == {k: f"{k}.png" for k in paths.figures}
    assert payload["extra_sections"][0]["table"][1]["eer"] == 0.124
    report_dict = M.classification_report(
        data["label"], data["score"], expected["threshold"], zero_division=float("nan")
    )
    assert payload["classification_report"]["spoof"]["f1-score"] == pytest.approx(report_dict["spoof"]["f1-score"])


def test_summary_markdown_consistent(report) -> None:
    paths, data = report
    md = paths.markdown.read_text(encoding="utf-8")
    expected = M.compute_all(data["label"], data["score"])
    assert f"| EER (%) | {100 * expected['eer']:.2f} |" in md
    assert f"| ROC AUC | {expected['auc']:.4f} |" in md
    assert f"| minDCF | {expected['min_dcf']:.4f} |" in md
    for link in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md):
        assert (paths.out_dir / link).is_file()
    assert len(re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)) == len(paths.figures)
    assert "## By system" in md and "## By speaker" in md
    assert "| A02 | 80 | 80 | 240 | yes |" in md
    assert "## Cross-validation" in md and "Five *folds*." in md and "| fold | eer | model |" in md


def test_given_threshold_and_explicit_groups(tmp_path: Path) -> None:
    data = _trials(1)
    paths = write_report(data, tmp_path, threshold=1.0, group_columns=["speaker"], dpi=50)
    payload = json.loads(paths.metrics_json.read_text())
    assert payload["overall"]["threshold"] == 1.0 and payload["overall"]["threshold_source"] == "given"
    assert set(payload["groups"]) == {"speaker"}
    assert all(r["threshold"] == 1.0 for r in payload["groups"]["speaker"])
    assert "was given" in paths.markdown.read_text()
    with pytest.raises(ReportError, match="unknown group column"):
        write_report(data, tmp_path, group_columns=["nope"])


def test_other_inputs(tmp_path: Path) -> None:
    data = _trials(2)
    n = len(data["score"])
    records = [{k: v[i] for k, v in data.items()} for i in range(n)]
    a = write_report(records, tmp_path / "records", group_columns=(), dpi=40)

    class FrameLike:  # the bits of a DataFrame write_report relies on
        columns = tuple(data)

        def __getitem__(self, name: str) -> Any:
            return data[name]

    b = write_report(FrameLike(), tmp_path / "frame", group_columns=(), dpi=40)
    ja, jb = (json.loads(p.metrics_json.read_text())["overall"] for p in (a, b))
    assert ja == jb
    assert set(a.figures) == {"roc", "det", "score_histogram", "confusion_matrix"}
    with pytest.raises(M.MetricError, match="both spoof and bonafide"):
        write_report({"label": [1, 1, 1], "score": [0.1, 0.2, 0.3]}, tmp_path / "x")
    with pytest.raises(ReportError, match="missing column"):
        write_report({"label": [1, 0]}, tmp_path / "x")
    with pytest.raises(ReportError, match="unknown key"):
        write_report(data, tmp_path / "x", extra_sections=[{"title": "t", "body": "?"}])


# ------------------------------------------------------------------------------------------------
# read_scores_csv
# ------------------------------------------------------------------------------------------------


def _write_csv(path: Path, header: list[str], rows: list[list[Any]], sep: str = ",") -> Path:
    lines = [sep.join(header)] + [sep.join(str(c) for c in r) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_read_scores_csv_and_report_roundtrip(tmp_path: Path) -> None:
    data = _trials(3)
    header = ["path", "label", "score", "system", "speaker"]
    rows = [[data[c][i] for c in header] for i in range(len(data["score"]))]
    csv_path = _write_csv(tmp_path / "scores.csv", header, rows)
    table = read_scores_csv(csv_path)
    assert isinstance(table, ScoreTable) and len(table) == len(rows)
    assert table.id_column == "path" and table.ids[0] == "audio/0000.flac"
    np.testing.assert_array_equal(table.labels, M.normalise_labels(data["label"]))
    np.testing.assert_allclose(table.scores, data["score"])
    assert list(table.groups) == ["system", "speaker"]
    assert table.source == str(csv_path)
    paths = write_report(table, tmp_path / "out", dpi=40)  # what `voxguard report scores.csv --out DIR` does
    payload = json.loads(paths.metrics_json.read_text())
    assert payload["source"] == str(csv_path)
    assert payload["overall"]["eer"] == pytest.approx(M.eer(data["label"], data["score"]).eer)


def test_read_scores_csv_variants(tmp_path: Path) -> None:
    p = _write_csv(tmp_path / "t.tsv", ["id", "label", "score"], [["a", "Spoof", 0.5], ["b", "real", -1]], "\t")
    table = read_scores_csv(p)
    assert table.labels.tolist() == [1, 0] and table.groups == {}
    p.write_text("\ufeffid;label;score\n\na;1;2.5\n\nb;0;1e-3\n", encoding="utf-8")  # BOM, blank lines
    assert read_scores_csv(p).scores.tolist() == [2.5, 0.001]
    p = _write_csv(tmp_path / "c.csv", ["id", "truth", "llr"], [["a", "fake", 1], ["b", "bonafide", 0]])
    assert read_scores_csv(p, label_column="truth", score_column="llr").labels.tolist() == [1, 0]


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("", "empty file"),
        ("id,label,score\n", "no data rows"),
        ("name,label,score\na,spoof,1\n", r"missing column\(s\) id \(or path\)"),
        ("id,score\na,1\n", r"missing column\(s\) label"),
        ("id,label\na,spoof\n", r"missing column\(s\) score"),
        ("id,label,score,label\na,spoof,1,spoof\n", "duplicate column"),
        ("id,label,score\na,spoof,1\nb,bonafide\n", "line 3: expected 3 fields"),
        ("id,label,score\na,spoof,1\nb,maybe,2\nc,spoof,1\nd,??,0\n", r"lines 3, 5: unrecognised label"),
        ("id,label,score\na,spoof,1\nb,bonafide,high\n", "line 3: score is not a number"),
        ("id,label,score\na,spoof,nan\nb,bonafide,1\n", "line 2: score is NaN or infinite"),
        ("id,label,score\na,spoof,\n", "line 2: score is not a number"),
    ],
)
def test_read_scores_csv_errors(tmp_path: Path, content: str, match: str) -> None:
    p = tmp_path / "bad.csv"
    p.write_text(content, encoding="utf-8")
    with pytest.raises(ScoresFileError, match=match) as info:
        read_scores_csv(p)
    assert isinstance(info.value, VoxguardError) and info.value.path == str(p)
    assert info.value.code == "scores_file_error"


def test_read_scores_csv_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ScoresFileError, match="file not found"):
        read_scores_csv(tmp_path / "absent.csv")
