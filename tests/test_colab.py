"""The notebooks' Colab install cell, run as on Colab: a fake ``google.colab`` module, a
throwaway Python environment without the project, ``HEATMAPLOSS_REPO`` pointing at a local
clone of this repository.

The environment borrows this one's packages (TensorFlow and the rest are not installed again:
pip runs with ``--no-deps``, no build isolation and no index), so the test checks what the cell
itself does — clone, install, import — without touching the network.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _colab_cell(notebook: Path) -> str:
    cells = [c for c in json.loads(notebook.read_text())["cells"] if c["cell_type"] == "code"
             and "".join(c["source"]).startswith("# Colab:")]
    assert len(cells) == 1, f"{notebook.name}: expected one Colab install cell"
    return "".join(cells[0]["source"])


def test_every_notebook_has_the_same_colab_cell_before_its_parameters():
    first = _colab_cell(NOTEBOOKS[0])
    for notebook in NOTEBOOKS:
        code = [c for c in json.loads(notebook.read_text())["cells"] if c["cell_type"] == "code"]
        assert "".join(code[0]["source"]) == first, notebook.name
        assert "parameters" in code[1].get("metadata", {}).get("tags", []), notebook.name


@pytest.fixture
def colab_python(tmp_path) -> Path:
    """A fresh environment that sees this one's packages but not the project."""
    folder = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(folder)
    python = folder / "bin" / "python"
    if not python.exists():  # Windows layout
        python = folder / "Scripts" / "python.exe"
    inner = subprocess.run([str(python), "-c", "import site; print(site.getsitepackages()[0])"],
                           capture_output=True, text=True, check=True).stdout.strip()
    # Put this environment's packages (pip, setuptools, TensorFlow ...) on its path, first.
    outer = [p for p in site.getsitepackages() if Path(p).is_dir()]
    (Path(inner) / "borrowed.pth").write_text(
        "import sys; sys.path[1:1] = " + repr(outer) + "\n")
    probe = subprocess.run([str(python), "-c", "import importlib.util as u; "
                            "print(u.find_spec('heatmaploss') is None)"],
                           capture_output=True, text=True, env=_clean_env(), check=True)
    assert probe.stdout.strip() == "True", "the throwaway environment already sees heatmaploss"
    return python


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HEATMAPLOSS_REPO")}
    env.update(PIP_NO_DEPS="1", PIP_NO_BUILD_ISOLATION="0", PIP_NO_INDEX="1",
               PIP_DISABLE_PIP_VERSION_CHECK="1", **extra)
    return env


def _run_cell(python: Path, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    script = tmp_path / "colab_cell.py"
    script.write_text(
        "import sys, types\n"
        "sys.modules['google.colab'] = types.ModuleType('google.colab')  # as on Colab\n"
        + _colab_cell(NOTEBOOKS[0]) + "\n"
        "import importlib.util\n"
        "spec = importlib.util.find_spec('heatmaploss')\n"
        "print('heatmaploss at', spec.origin if spec else None)\n")
    return subprocess.run([str(python), str(script)], capture_output=True, text=True,
                          cwd=tmp_path, env=_clean_env(**env), timeout=600)


def _local_clone(tmp_path: Path) -> Path:
    """A clone of this repository with the working tree's notebooks and library committed."""
    if shutil.which("git") is None:
        pytest.fail("git is needed to clone the repository, as the Colab cell does")
    source = tmp_path / "source"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(source)], check=True)
    # The working tree may hold changes not yet committed: the clone gets them too.
    for part in ("lib", "notebooks", "pyproject.toml", "README.md"):
        src, dst = ROOT / part, source / part
        if src.is_dir():
            shutil.rmtree(dst, ignore_errors=True)
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(src, dst)
    git = ["git", "-C", str(source), "-c", "user.name=test", "-c", "user.email=test@example.org"]
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "working tree"], check=True)
    return source


def test_colab_cell_clones_installs_and_imports_the_project(colab_python, tmp_path):
    source = _local_clone(tmp_path)
    target = tmp_path / "content" / "heatmaploss"
    done = _run_cell(colab_python, tmp_path, HEATMAPLOSS_REPO=str(source),
                     HEATMAPLOSS_CLONE=str(target))
    assert done.returncode == 0, done.stderr[-3000:]
    assert (target / ".git").is_dir() and (target / "lib" / "heatmaploss").is_dir()
    assert f"heatmaploss at {target / 'lib' / 'heatmaploss' / '__init__.py'}" in done.stdout
    # Installed into the environment (not only on sys.path): a new process imports it too.
    check = subprocess.run([str(colab_python), "-c", "import heatmaploss, heatmaploss.stats; "
                            "print(heatmaploss.__file__)"], capture_output=True, text=True,
                           cwd=tmp_path, env=_clean_env(), timeout=300)
    assert check.returncode == 0, check.stderr[-3000:]
    assert check.stdout.strip() == str(target / "lib" / "heatmaploss" / "__init__.py")
    # Run again (a restarted runtime whose disk survived): nothing is cloned twice.
    again = _run_cell(colab_python, tmp_path, HEATMAPLOSS_REPO=str(source),
                      HEATMAPLOSS_CLONE=str(target))
    assert again.returncode == 0 and "cannot clone" not in again.stdout


@pytest.mark.parametrize("repo", ["", "missing-repository"])
def test_colab_cell_says_in_one_line_what_to_set_when_the_clone_fails(colab_python, tmp_path,
                                                                     repo):
    done = _run_cell(colab_python, tmp_path, HEATMAPLOSS_REPO=repo,
                     HEATMAPLOSS_CLONE=str(tmp_path / "content" / "heatmaploss"))
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line for line in done.stdout.splitlines() if not line.startswith("heatmaploss at")]
    assert len(lines) == 1, done.stdout
    assert f"cannot clone HEATMAPLOSS_REPO={repo!r}" in lines[0]
    assert "os.environ['HEATMAPLOSS_REPO']" in lines[0]
    assert "heatmaploss at None" in done.stdout
    assert done.stderr.strip() == ""


def test_colab_cell_does_nothing_outside_colab(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "HEATMAPLOSS_REPO"}
    done = subprocess.run([sys.executable, "-c", _colab_cell(NOTEBOOKS[0])], capture_output=True,
                          text=True, cwd=tmp_path, env=env, timeout=120)
    assert done.returncode == 0 and done.stdout == "" and done.stderr == ""
    assert not (tmp_path / "content").exists()
