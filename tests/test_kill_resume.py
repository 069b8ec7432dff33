"""Interrupted runs: SIGKILL ``run_all.py`` at several points, run it again, get the same results.

An uninterrupted ``run_all.py --profile smoke --only 03`` is the reference. A second results
folder is then built by a run that is killed (the whole process group, as an out-of-memory
killer or a closed laptop would) at four points — while the kernel starts and generates data,
in the middle of the model search, in the middle of the evaluation, and while the figures are
being written — each time started again in the same folder, and finally run to completion.
Every model must be recorded exactly once, the statistics must equal the reference's, and no
half-written file may be left where a finished one is expected.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from heatmaploss.registry import Registry

pytestmark = pytest.mark.slow

NOTEBOOK = "03"


def _command(results_root: Path) -> list[str]:
    return [sys.executable, "run_all.py", "--profile", "smoke", "--only", NOTEBOOK,
            "--results-dir", str(results_root), "--no-progress"]


def _models(results: Path):
    if not (results / "registry.sqlite").exists():
        return None
    try:
        with Registry(results_dir=results) as registry:
            return registry.models(experiment="exp1", status=None)
    except Exception:  # the schema may not exist yet while the first process creates it
        return None


def _kill_when(results_root: Path, repo_root: Path, condition, limit: float = 600) -> str:
    """Start run_all, SIGKILL its process group once ``condition(results)`` holds."""
    results = results_root / "smoke"
    proc = subprocess.Popen(_command(results_root), cwd=repo_root, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + limit
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"run finished before the kill point: {proc.stderr.read().decode()[-1500:]}")
            reason = condition(results)
            if reason:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                return reason
            time.sleep(0.2)
        pytest.fail("kill point never reached")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _running(results: Path):
    return "kernel running" if list((results / "notebooks").glob(".*.running.ipynb")) else None


def _mid_search(results: Path):
    frame = _models(results)
    if frame is not None and 0 < (frame["status"] == "completed").sum():
        return f"search: {len(frame)} model rows"
    return None


def _mid_evaluation(results: Path):
    frame = _models(results)
    if frame is not None and frame["test_accuracy"].notna().any():
        return f"evaluation: {int(frame['test_accuracy'].notna().sum())} models evaluated"
    return None


def _writing_figures(results: Path):
    figures = list((results / "figures").glob("exp1_*"))
    return f"figures: {len(figures)} written" if figures else None


def _flatten(node, prefix=""):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _flatten(value, f"{prefix}.{key}")
    elif isinstance(node, list) and node and not isinstance(node[0], (dict, list)):
        for i, value in enumerate(node):
            yield f"{prefix}[{i}]", value
    else:
        yield prefix, node


def _assert_same(reference: dict, resumed: dict) -> None:
    ref, res = dict(_flatten(reference)), dict(_flatten(resumed))
    assert ref.keys() == res.keys()
    for key, value in ref.items():
        other = res[key]
        if isinstance(value, float) and isinstance(other, float):
            assert math.isclose(value, other, rel_tol=1e-5, abs_tol=1e-9), (key, value, other)
        elif not any(word in key for word in ("seconds", "wall_time", "time_s")):
            assert value == other, (key, value, other)


def test_killed_at_four_points_resumes_to_identical_statistics(repo_root, tmp_path):
    reference_root = tmp_path / "reference"
    done = subprocess.run(_command(reference_root), cwd=repo_root, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]

    resumed_root = tmp_path / "resumed"
    reached = [_kill_when(resumed_root, repo_root, condition)
               for condition in (_running, _mid_search, _mid_evaluation, _writing_figures)]
    final = subprocess.run(_command(resumed_root), cwd=repo_root, capture_output=True, text=True,
                           timeout=900)
    assert final.returncode == 0, (reached, final.stderr[-3000:])

    ref_results, res_results = reference_root / "smoke", resumed_root / "smoke"
    ref_models, res_models = _models(ref_results), _models(res_results)
    assert len(res_models) == len(ref_models), reached
    assert not res_models.duplicated(["search", "trial"]).any(), "a model was recorded twice"
    assert (res_models["status"] == "completed").all() and res_models["test_accuracy"].notna().all()

    ref_summary = json.loads((ref_results / "summary.json").read_text())["experiments"]["exp1"]
    res_summary = json.loads((res_results / "summary.json").read_text())["experiments"]["exp1"]
    _assert_same(ref_summary, res_summary)
    ref_models = ref_models.sort_values(["search", "trial"]).reset_index(drop=True)
    res_models = res_models.sort_values(["search", "trial"]).reset_index(drop=True)
    for column in ("hp_learning_rate", "val_accuracy", "test_accuracy"):
        assert res_models[column].tolist() == pytest.approx(ref_models[column].tolist(), rel=1e-5)

    # Every file where a finished one is expected is complete.
    for path in res_results.rglob("*"):
        if not path.is_file() or path.name.startswith("."):
            continue
        if path.suffix == ".json" or path.suffix == ".ipynb":
            json.loads(path.read_text())
        elif path.suffix == ".png":
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
        elif path.suffix == ".pdf":
            assert path.read_bytes().rstrip().endswith(b"%%EOF"), path
    assert not list(res_results.glob("notebooks/.*.running.ipynb"))
