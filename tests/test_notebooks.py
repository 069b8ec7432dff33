"""Notebook hygiene: thin, parameterised, committed without outputs."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
REQUIRED = {"profile", "seed", "results_dir"}


def _code_cells(nb: dict) -> list[dict]:
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def _source(cell: dict) -> str:
    src = cell["source"]
    return "".join(src) if isinstance(src, list) else src


def test_there_are_chapter_notebooks():
    names = [p.name for p in NOTEBOOKS]
    assert names, "no notebooks found"
    assert all(n[:2].isdigit() and n[2] == "_" for n in names), names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_outputs_stripped_and_metadata_clean(path):
    nb = json.loads(path.read_text())
    for cell in _code_cells(nb):
        assert cell.get("outputs") == [], f"{path.name}: a code cell has outputs committed"
        assert cell.get("execution_count") is None, f"{path.name}: execution counts committed"
        assert set(cell.get("metadata", {})) <= {"tags"}, f"{path.name}: cell metadata not clean"
    assert set(nb["metadata"]) <= {"kernelspec", "language_info"}, nb["metadata"].keys()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_one_parameters_cell_with_plain_literals(path):
    nb = json.loads(path.read_text())
    tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: {len(tagged)} cells tagged 'parameters'"
    tree = ast.parse(_source(tagged[0]))
    names = set()
    for stmt in tree.body:
        assert isinstance(stmt, ast.AnnAssign), (
            f"{path.name}: parameters must be annotated assignments (`name: type = literal  # help`)"
        )
        ast.literal_eval(stmt.value)  # raises if not a plain literal
        names.add(stmt.target.id)
    lines = [ln for ln in _source(tagged[0]).splitlines() if ln.strip() and ":" in ln]
    assert all("#" in ln for ln in lines), f"{path.name}: every parameter needs a # comment"
    assert REQUIRED <= names, f"{path.name}: missing {REQUIRED - names}"
    order = [stmt.target.id for stmt in tree.body]
    assert order[:3] == ["profile", "seed", "results_dir"], f"{path.name}: starts with {order[:3]}"
    results_dir = tree.body[2]
    assert ast.literal_eval(results_dir.value) == "", f"{path.name}: results_dir must default to ''"
    trains = any("chapters." in _source(c) and " run" in _source(c) for c in _code_cells(nb))
    if trains:  # chapters that train take the registry URL and the progress switch
        assert {"database_url", "progress"} <= names, f"{path.name}: trains without them"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_thin_no_definitions(path):
    nb = json.loads(path.read_text())
    for cell in _code_cells(nb):
        src = "\n".join(ln for ln in _source(cell).splitlines() if not ln.lstrip().startswith(("%", "!")))
        tree = ast.parse(src)
        for node in ast.walk(tree):
            assert not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)), (
                f"{path.name}: notebooks call the library; move definitions into lib/heatmaploss"
            )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_short_cells(path):
    nb = json.loads(path.read_text())
    for index, cell in enumerate(_code_cells(nb)):
        src = _source(cell)
        if "google.colab" in src:  # the standard install cell
            continue
        lines = [ln for ln in src.splitlines() if ln.strip() and not ln.strip().startswith("#")]
        assert len(lines) <= 20, f"{path.name} code cell {index}: {len(lines)} lines"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_header_and_colab_cell(path):
    nb = json.loads(path.read_text())
    assert nb["cells"][0]["cell_type"] == "markdown" and _source(nb["cells"][0]).startswith("# ")
    first_code = _source(_code_cells(nb)[0])
    assert "google.colab" in first_code, f"{path.name}: first code cell must install on Colab"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_papermill_documents_every_parameter(path):
    """`papermill --help-notebook` must show each parameter with its type and help text."""
    import papermill

    declared = papermill.inspect_notebook(str(path))
    nb = json.loads(path.read_text())
    tagged = next(c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", []))
    names = {stmt.target.id for stmt in ast.parse(_source(tagged)).body}
    assert set(declared) == names
    for name, info in declared.items():
        assert info["inferred_type_name"] not in ("None", ""), f"{path.name}: {name} has no type"
        assert info["help"], f"{path.name}: {name} has no help text papermill can read"
