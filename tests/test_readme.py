"""The README as a new user reads it: every Python block runs as shown, and its option list,
figure names and Python versions agree with the code."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import tomllib

import figure_names
import run_all
from heatmaploss.project.paths import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()
BLOCKS = re.findall(r"^```python\n(.*?)^```", README, re.M | re.S)


def _first_line(block: str) -> str:
    return next(line for line in block.splitlines() if line.strip())[:60]


def test_the_readme_has_python_blocks():
    assert len(BLOCKS) >= 7, "the README's examples are the tests' subject"


@pytest.mark.slow
@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_every_python_block_runs_as_shown(block, tmp_path):
    """Each block is self-contained (its imports, its inputs; toy sizes where it trains) and
    runs in a fresh interpreter in an empty folder, quietly (no warning on stderr)."""
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL",)}
    done = subprocess.run([sys.executable, "-c", block], cwd=tmp_path, capture_output=True,
                          text=True, timeout=900, env={**env, "MPLBACKEND": "Agg"})
    assert done.returncode == 0, f"{_first_line(block)!r} failed:\n{done.stderr[-3000:]}"
    noise = [line for line in done.stderr.splitlines()
             if re.search(r"Warning|WARNING|^[IWEF]\d{4} |absl", line)]
    assert not noise, f"{_first_line(block)!r} printed:\n" + "\n".join(noise[:10])


def _options_in_readme() -> set[str]:
    table = README.split("Every option (`python run_all.py --help`", 1)[1].split("\n\n", 2)[1]
    return set(re.findall(r"^\| `(--[a-z0-9-]+)", table, re.M))


def test_the_option_list_is_run_alls():
    parser_options = {option for action in run_all.build_parser()._actions
                      for option in action.option_strings if option.startswith("--")}
    parser_options.discard("--help")
    assert _options_in_readme() == parser_options


def test_figure_names_in_the_readme_are_the_chapters():
    """Every figure name the README gives exists in a chapter's FIGURES, and every figure of
    chapters 1-4 is listed."""
    names = set()
    for token in re.findall(r"`([a-z0-9_{},<>]+)`", README):
        if token.startswith(figure_names.PREFIXES) and ("_" in token):
            names.add(token)
    assert names, "the README lists the figures"
    unknown = sorted(n for n in names if n not in figure_names.FIGURES
                     and not figure_names.matches(n))
    assert not unknown, f"the README names figures no chapter writes: {unknown}"
    assert set(figure_names.FIGURES) <= names, \
        f"not in the README: {sorted(set(figure_names.FIGURES) - names)}"


def test_python_versions_agree_with_pyproject():
    requires = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"][
        "requires-python"]
    assert f'`requires-python = "{requires}"`' in README
    assert not re.search(r"Python 3\.\d+\s*[–-]\s*3\.\d+", README), "no range the code does not state"


def test_the_colab_cell_installs_no_placeholder(repo_root):
    from tools.notebook import COLAB_CELL

    assert "github.com/heatmaploss" not in COLAB_CELL and "HEATMAPLOSS_REPO" in COLAB_CELL
    assert "HEATMAPLOSS_REPO" in README
