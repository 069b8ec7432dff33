"""``python run_all.py --profile thesis --tiny``: every notebook through the thesis profile's code
paths at toy size, from a clean results folder, as a user would start it.

This is the check that the full ``thesis`` run (hours of GPU) reaches its end: the same
branches — VGG16, both protocols of experiments 1 and 2, batch size 1, every group of the
shortcut chapter, the searches, registry, evaluation, statistics, figures, summary and report —
with only the sizes shrunk (:func:`heatmaploss.project.profiles.tiny`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    results = tmp_path_factory.mktemp("tiny")
    env = {k: v for k, v in os.environ.items() if k != "HEATMAPLOSS_DATABASE_URL"}
    done = subprocess.run([sys.executable, "run_all.py", "--profile", "thesis", "--tiny",
                           "--results-dir", str(results), "--no-progress"], cwd=ROOT,
                          capture_output=True, text=True, env=env, timeout=3600)
    assert done.returncode == 0, (done.stdout[-4000:], done.stderr[-4000:])
    return results / "thesis-tiny", done


def test_every_notebook_completes_in_the_tiny_thesis_folder(tiny_run):
    out, done = tiny_run
    summary = json.loads((out / "summary.json").read_text())
    notebooks = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert sorted(summary["notebooks"]) == notebooks
    assert {n["status"] for n in summary["notebooks"].values()} == {"completed"}
    assert {n["parameters"]["profile"] for n in summary["notebooks"].values()} == {"thesis-tiny"}
    assert (out / "report.html").is_file() and (out / "report.md").is_file()
    assert any((out / "figures").glob("*.png"))


def test_both_protocols_of_both_experiments(tiny_run):
    out, _ = tiny_run
    experiments = json.loads((out / "summary.json").read_text())["experiments"]
    for experiment in ("exp1", "exp2"):
        assert set(experiments[experiment]) >= {"thesis", "controlled"}, experiment


def test_every_group_of_the_shortcut_chapter(tiny_run):
    from heatmaploss.chapters.shortcut.plan import chapter_groups
    from heatmaploss.project.profiles import get_profile

    out, _ = tiny_run
    decoy = json.loads((out / "summary.json").read_text())["experiments"]["decoy"]
    expected = {g.name for g in chapter_groups(get_profile("thesis-tiny").shortcut)}
    assert expected and expected <= set(decoy["groups"])
    assert all(decoy["groups"][g]["n_models"] >= 1 for g in expected)


def test_registry_records_the_thesis_recipes_that_ran(tiny_run):
    from heatmaploss.registry import Registry

    out, _ = tiny_run
    with Registry(results_dir=out) as registry:
        searches = registry.searches(experiment="exp1")
        models = registry.models(experiment="exp1")
    thesis = searches[searches["protocol"] == "thesis"].set_index("group")
    configs = {g: (c if isinstance(c, dict) else json.loads(c))
               for g, c in thesis["loss_config"].items()}
    assert configs["cce"]["classification"] == "sigmoid_cce"
    assert configs["cce"]["output_activation"] == "sigmoid"
    assert configs["heatmap"]["mask_resize"] == "bilinear"
    controlled = searches[searches["protocol"] == "controlled"]
    for config in controlled["loss_config"]:
        config = config if isinstance(config, dict) else json.loads(config)
        assert config.get("mask_resize", "area") == "area"
    assert (models["profile"] == "thesis-tiny").all() and len(models) > 0


def test_the_output_says_the_weights_are_random(tiny_run):
    out, _ = tiny_run
    for name in ("03_experiment_1", "06_beyond_the_thesis"):
        executed = json.loads((out / "notebooks" / f"{name}.ipynb").read_text())
        text = "".join("".join(o.get("text", "")) for c in executed["cells"]
                       for o in c.get("outputs", []))
        assert "weights=None" in text, name
