"""Write a chapter notebook from a list of cells (a maintainer's tool, not part of the library).

    from tools.notebook import write_notebook
    write_notebook("notebooks/01_synthetic_data.ipynb", [
        ("markdown", "# 1. Synthetic data\\n..."),
        ("colab", None),                        # the standard Colab install cell
        ("parameters", 'profile: str = "quick"  # smoke | quick | thesis\\n...'),
        ("code", "from heatmaploss import synthetic"),
    ])

The result has outputs stripped, clean metadata and exactly one cell tagged ``parameters``,
as ``tests/test_notebooks.py`` requires.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

COLAB_CELL = """\
# Colab: install the project into this runtime (does nothing elsewhere).
import importlib.util, os, subprocess, sys
if "google.colab" in sys.modules and importlib.util.find_spec("heatmaploss") is None:
    repo = os.environ.get("HEATMAPLOSS_REPO", "")  # the git URL this notebook's repository lives at
    if not repo:
        raise RuntimeError('set the repository to install first, e.g. os.environ["HEATMAPLOSS_REPO"] '
                           '= "https://github.com/<you>/<repo>.git", then run this cell again')
    subprocess.run(["git", "clone", "--depth", "1", repo, "/content/heatmaploss"], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", "/content/heatmaploss"], check=True)
    sys.path.insert(0, "/content/heatmaploss/lib")"""


def write_notebook(path: str | Path, cells: list[tuple[str, str | None]]) -> Path:
    """Write ``cells`` as a clean notebook at ``path``.

    Args:
        path: destination ``.ipynb``.
        cells: ``(kind, source)`` pairs; kind is ``markdown``, ``code``, ``parameters`` or
            ``colab`` (source ignored).
    """
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    for index, (kind, source) in enumerate(cells):
        if kind == "markdown":
            cell = nbformat.v4.new_markdown_cell(source)
        elif kind == "colab":
            cell = nbformat.v4.new_code_cell(COLAB_CELL)
        elif kind == "parameters":
            cell = nbformat.v4.new_code_cell(source, metadata={"tags": ["parameters"]})
        elif kind == "code":
            cell = nbformat.v4.new_code_cell(source)
        else:
            raise ValueError(f"cell kind {kind!r}: allowed markdown, code, parameters, colab")
        cell["id"] = f"cell-{index:02d}"  # stable ids keep diffs small
        nb.cells.append(cell)
    nbformat.validate(nb)
    path = Path(path)
    path.write_text(nbformat.writes(nb) + "\n", encoding="utf-8")
    return path
