"""End to end: ``python run_all.py --profile smoke`` regenerates every chapter."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

#: Where each chapter puts its statistics in summary.json.
SUMMARY_KEYS = {
    "01_synthetic_data": ("synthetic",),
    "02_thesis_reanalysis": ("reanalysis",),
    "03_experiment_1": ("experiments", "exp1"),
    "04_experiment_2": ("experiments", "exp2"),
    "05_acdc": ("acdc",),
    "06_beyond_the_thesis": ("experiments", "decoy"),
}


@pytest.fixture(scope="module")
def smoke_run(repo_root, tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    proc = subprocess.run(
        [sys.executable, "run_all.py", "--profile", "smoke", "--results-dir", str(root), "--no-progress"],
        cwd=repo_root, capture_output=True, text=True, timeout=1500,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return root / "smoke", proc


def test_every_notebook_executed_without_errors(smoke_run, repo_root):
    results, _ = smoke_run
    for nb in sorted((repo_root / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        executed = json.loads((results / "notebooks" / nb.name).read_text())
        errors = [o for c in executed["cells"] if c["cell_type"] == "code"
                  for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert not errors, f"{nb.name}: {errors[0]['ename']}: {errors[0]['evalue']}"


def test_summary_index_has_every_chapter(smoke_run, repo_root):
    results, _ = smoke_run
    summary = json.loads((results / "summary.json").read_text())
    for nb in sorted((repo_root / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        assert summary["notebooks"][nb.stem]["status"] == "completed"
        node = summary
        for key in SUMMARY_KEYS.get(nb.stem, ()):
            assert key in node, f"summary.json lacks {'.'.join(SUMMARY_KEYS[nb.stem])} ({nb.stem})"
            node = node[key]


def test_figures_and_report(smoke_run):
    results, _ = smoke_run
    pngs = sorted((results / "figures").glob("*.png"))
    assert pngs, "no figures written"
    for png in pngs:
        assert png.with_suffix(".pdf").exists(), f"{png.name} has no PDF twin"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (results / "report.md").read_text()
    assert "| " in report and (results / "report.html").read_text().startswith("<!DOCTYPE html>")
    assert not list(results.rglob(".*.running.ipynb")), "a half-executed notebook was left behind"


def test_second_run_skips_finished_notebooks(smoke_run, repo_root):
    results, _ = smoke_run
    proc = subprocess.run(
        [sys.executable, "run_all.py", "--profile", "smoke", "--results-dir", str(results.parent),
         "--no-progress", "--only", "01,02"],
        cwd=repo_root, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0 and proc.stdout.count("skip ") == 2, proc.stdout
