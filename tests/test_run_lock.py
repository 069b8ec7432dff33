"""One run per results folder: a second run_all.py is refused, naming the first; a killed run
leaves no stale lock; the --workers processes of a run are never refused."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from heatmaploss.project import files
from heatmaploss.project.paths import REPO_ROOT
from heatmaploss.registry import Registry

from tools.notebook import write_notebook

pytestmark = pytest.mark.slow

PARAMS = 'profile: str = "quick"  # profile\nseed: int = 0  # seed\nresults_dir: str = ""  # out'
WAIT = ("import time\nfrom pathlib import Path\ngo = Path(results_dir) / 'go'\n"
        "deadline = time.time() + 300\nwhile not go.exists() and time.time() < deadline:\n"
        "    time.sleep(0.2)")


def _command(*args: str) -> list[str]:
    return [sys.executable, "run_all.py", "--no-progress", *args]


def _wait_for_owner(results: Path, pid: int, proc: subprocess.Popen, limit: float = 300) -> dict:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read()[-2000:]
        try:
            owner = json.loads((results / files.RUN_OWNER_NAME).read_text())
            if owner["pid"] == pid:
                return owner
        except (OSError, ValueError):
            pass
        time.sleep(0.2)
    pytest.fail("the first run never took the lock")


def test_a_second_run_is_refused_and_a_killed_run_leaves_no_lock(tmp_path):
    notebooks = tmp_path / "nbs"
    notebooks.mkdir()
    write_notebook(notebooks / "01_wait.ipynb", [("markdown", "# wait"), ("colab", None),
                                                 ("parameters", PARAMS), ("code", WAIT)])
    args = ("--notebooks-dir", str(notebooks), "--results-dir", str(tmp_path / "r"))
    results = tmp_path / "r" / "quick"
    first = subprocess.Popen(_command(*args), cwd=REPO_ROOT, start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        owner = _wait_for_owner(results, first.pid, first)
        second = subprocess.run(_command(*args), cwd=REPO_ROOT, capture_output=True, text=True,
                                timeout=300)
        assert second.returncode == 2
        assert second.stderr.count("\n") == 1, second.stderr
        assert (f"error: results folder {results} is in use by process {first.pid} on "
                f"{socket.gethostname()} (run_all.py --no-progress") in second.stderr
        assert owner["started"] in second.stderr
        os.killpg(first.pid, signal.SIGKILL)  # a crash: nothing is cleaned up
        first.wait()
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
    (results / "go").write_text("")
    third = subprocess.run(_command(*args), cwd=REPO_ROOT, capture_output=True, text=True,
                           timeout=600)
    assert third.returncode == 0, third.stderr[-2000:]


def test_the_workers_of_a_run_are_not_refused(tmp_path):
    root = tmp_path / "r"
    results = root / "smoke"
    run = subprocess.Popen(_command("--profile", "smoke", "--only", "03", "--workers", "2",
                                    "--results-dir", str(root)),
                           cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           text=True)
    try:
        _wait_for_owner(results, run.pid, run)
        other = subprocess.run(_command("--profile", "smoke", "--only", "01",
                                        "--results-dir", str(root)),
                               cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
        assert other.returncode == 2 and f"in use by process {run.pid}" in other.stderr
        _, err = run.communicate(timeout=1800)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode == 0, err[-3000:]
    logs = sorted(p.name for p in (results / "tuner" / "logs").glob("*.log"))
    assert any(name.endswith("-worker1.log") for name in logs), logs
    with Registry(results_dir=results) as registry:
        models = registry.models(experiment="exp1")
    assert len(models) and models["test_accuracy"].notna().all()
