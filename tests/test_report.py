"""heatmaploss.report: persistent, idempotent report rows and their Markdown/HTML rendering."""

from __future__ import annotations

import base64
import json
import multiprocessing
import re

import numpy as np
import pytest
from heatmaploss import report
from heatmaploss.project import files as io
from heatmaploss.report import ReportRow, verdicts

PUBLISHED = verdicts.PUBLISHED_VS_THESIS
ROWS = [
    ReportRow("Experiment 1", "Cohen's d", thesis=-10.78, published_data=-10.7768,
              chapter="reanalysis", note="the thesis's table",
              published_verdict=verdicts.equal_at_rounding(thesis=-10.78, value=-10.7768,
                                                           compares=PUBLISHED)),
    ReportRow("Experiment 1", "p-value", thesis=1e-9, published_data=np.float64(3.16e-9),
              chapter="reanalysis",
              published_verdict=verdicts.same_order_of_magnitude(thesis=1e-9, value=3.16e-9,
                                                                 compares=PUBLISHED)),
    {"section": "Power", "claim": "n per group", "thesis": 2.69, "published_data": 2.6887,
     "chapter": "reanalysis", "published_verdict": verdicts.equal_at_rounding(
         thesis=2.69, value=2.6887, compares=PUBLISHED).to_dict()},
]


def test_add_rows_is_idempotent(tmp_path):
    report.add_rows(tmp_path, ROWS)
    first = report.rows_path(tmp_path).read_bytes()
    stored = report.add_rows(tmp_path, ROWS)
    assert report.rows_path(tmp_path).read_bytes() == first
    assert len(stored) == 3 and stored == report.read_rows(tmp_path)
    assert report.rows_path(tmp_path) == tmp_path / "stats" / "report_rows.json"


def test_later_rows_fill_columns_without_erasing(tmp_path):
    report.add_rows(tmp_path, ROWS)
    ours = verdicts.effect_size(thesis=-10.78, value=-3.2, p=1e-4,
                                compares=verdicts.OURS_VS_THESIS)
    report.add_rows(tmp_path, [
        ReportRow("Experiment 1", "Cohen's d", ours=-3.2, ours_verdict=ours,
                  ours_note="controlled protocol"),
        ReportRow("New section", "new claim", ours="yes"),
    ])
    rows = report.read_rows(tmp_path)
    assert [(r.section, r.claim) for r in rows] == [
        ("Experiment 1", "Cohen's d"), ("Experiment 1", "p-value"), ("Power", "n per group"),
        ("New section", "new claim")]
    d = rows[0]
    assert (d.thesis, d.published_data, d.ours) == (-10.78, -10.7768, -3.2)
    assert d.ours_verdict == ours and d.ours_verdict.verdict == "partly reproduced"
    assert d.published_verdict.verdict == "reproduced", "the published verdict is kept"
    assert d.note == "the thesis's table" and d.ours_note == "controlled protocol"
    assert rows[1].published_data == pytest.approx(3.16e-9)  # numpy value stored as float


def test_row_validation(tmp_path):
    with pytest.raises(ValueError, match="unknown"):
        report.add_rows(tmp_path, [{"section": "a", "claim": "b", "value": 1}])
    with pytest.raises(ValueError, match="section"):
        ReportRow("", "claim")
    with pytest.raises(TypeError):
        report.add_rows(tmp_path, ["not a row"])
    with pytest.raises(TypeError, match="Judgement"):
        ReportRow("a", "b", ours=1, ours_verdict="reproduced")
    with pytest.raises(ValueError, match="allowed"):
        ReportRow("a", "b", ours=1, ours_verdict={"verdict": "looks fine",
                                                 "compares": verdicts.OURS_VS_THESIS})


def _add_from_process(args):
    results, worker = args
    report.add_rows(results, [ReportRow(f"worker {worker}", f"claim {i}", ours=i)
                              for i in range(5)])


def test_parallel_writers_lose_nothing(tmp_path):
    with multiprocessing.get_context("fork").Pool(4) as pool:
        pool.map(_add_from_process, [(str(tmp_path), w) for w in range(8)])
    rows = report.read_rows(tmp_path)
    assert len(rows) == 40 and len({(r.section, r.claim) for r in rows}) == 40


def test_render_markdown_and_html(tmp_path):
    report.add_rows(tmp_path, ROWS + [
        ReportRow("Experiment 1", "pipe | and <script>alert(1)</script>", ours=[25, 23],
                  chapter="exp1", ours_verdict=verdicts.not_compared(
                      compares=verdicts.OURS_VS_THESIS, reason="the thesis states no n")),
        ReportRow("Power", "mixed", published_data=0.5, chapter="reanalysis",
                  published_verdict=verdicts.effect_size(thesis=2.0, value=0.5, p=0.01,
                                                         compares=PUBLISHED)),
    ])
    io.update_summary(tmp_path, {"notebooks": {"02_x": {"status": "completed", "seconds": 3.5}},
                                 "reanalysis": {}, "acdc": {"data": "fixture"}})
    (tmp_path / "figures").mkdir()
    png = b"\x89PNG\r\n\x1a\nfake"
    (tmp_path / "figures" / "thesis_exp1_heart_overlap_hist.png").write_bytes(png)
    written = report.render(tmp_path)
    assert written == {"markdown": tmp_path / "report.md", "html": tmp_path / "report.html"}
    md = written["markdown"].read_text()
    assert md.startswith(f"# Reproduction report — profile {tmp_path.name}")
    assert "## Chapter 2: the thesis's claims" in md and "### Power" in md
    assert ("| Cohen's d | -10.78 | -10.78 | reproduced (equal at the thesis's 2 decimals) | — "
            "| — | the thesis's table |") in md
    assert "pipe \\| and" in md and "25 / 23" in md and "undefined (the thesis states no n)" in md
    assert "partly reproduced" in md and "only the direction agrees" in md
    assert "(figures/thesis_exp1_heart_overlap_hist.png)" in md and "02_x" in md
    assert "## Chapter 5: ACDC" in md and "synthetic ACDC-format fixture" in md
    assert "but no report row names it." in md
    html = written["html"].read_text()
    assert html.startswith("<!DOCTYPE html>") and "<style>" in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert not re.search(r"(src|href)=\"(?!data:)", html), "no external files or links"
    assert 'class="ok"><b>reproduced</b>' in html
    assert 'class="partial"><b>partly reproduced</b>' in html
    assert "data:image/png;base64," + base64.b64encode(png).decode() in html
    # rendering again gives the same bytes
    before = written["html"].read_bytes()
    report.render(tmp_path)
    assert written["html"].read_bytes() == before


def test_smoke_banner_and_legacy_rows(tmp_path):
    results = tmp_path / "smoke"
    report.add_rows(results, [{"section": "Legacy", "claim": "c", "ours": 0.3,
                               "verdict": "shortcut used", "note": "old row"}])
    html = report.render(results)["html"].read_text()
    assert report.render.__module__ and report.REPORT_HTML == "report.html"
    assert 'class="banner"' in html and "mean nothing" in html
    assert "shortcut used" in html and "not computed by a report rule" in html
    problems = report.report_problems(report.read_rows(results))
    assert problems == ["[Legacy | c] free-text verdict 'shortcut used' not made by a rule of "
                        "heatmaploss.report.verdicts"]


def test_render_without_rows(tmp_path):
    written = report.render(tmp_path, title="Empty")
    assert "none yet" in written["markdown"].read_text()
    assert "<h1>Empty</h1>" in written["html"].read_text()


def test_format_value():
    f = report.format_value
    assert f(None) == "—" and f(float("nan")) == "—" and f(True) == "yes"
    assert f(3) == "3" and f(0.0) == "0" and f(-10.7768) == "-10.78"
    assert f(3.16152e-9) == "3.162e-09" and f(np.float32(0.5)) == "0.5"
    assert f((0.25971, 0.79566)) == "0.2597 / 0.7957" and f("text") == "text"


def test_update_json_helper(tmp_path):
    path = tmp_path / "sub" / "counter.json"
    assert io.update_json(path, lambda c: {"n": c["n"] + 1}, default={"n": 0}) == {"n": 1}
    io.update_json(path, lambda c: {"n": c["n"] + 1, "x": np.float64(0.5)})
    assert json.loads(path.read_text()) == {"n": 2, "x": 0.5}
    assert (tmp_path / "sub" / ".counter.lock").exists()
    merged = io.update_summary(tmp_path, {"a": {"b": 1}})
    assert io.update_summary(tmp_path, {"a": {"c": 2}}) == {"a": {"b": 1, "c": 2}} != merged


def test_toy_and_smoke_reports_open_with_a_banner():
    import importlib

    render = importlib.import_module("heatmaploss.report.render")
    assert render.banner("smoke") == render.SMOKE_BANNER
    assert render.banner("thesis-tiny") == render.TINY_BANNER and "mean nothing" in render.TINY_BANNER
    assert render.banner("quick") == render.banner("thesis") == ""
