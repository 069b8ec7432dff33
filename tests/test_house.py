"""The package's structure stays readable: no import cycles, no arrows up, small modules, no
prefix families, TensorFlow-free parts that load without TensorFlow, self-contained citations."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "lib" / "heatmaploss"
ROOT = PACKAGE.parent.parent

#: The layers of docs/design.md, lowest first: a module may import its own layer and below.
LAYERS = [
    ("names",),
    ("project",),
    ("stats",),
    ("synthetic", "acdc", "reanalysis"),
    ("resampling", "attribution", "losses", "pipeline", "models", "plots", "overlays"),
    ("registry",),
    ("runs",),
    ("report",),
    ("chapters",),
]
#: What must import with TensorFlow and Keras blocked (docs/design.md § The library's layers).
TENSORFLOW_FREE = [
    "heatmaploss", "heatmaploss.names", "heatmaploss.project", "heatmaploss.project.paths",
    "heatmaploss.project.files", "heatmaploss.project.profiles", "heatmaploss.project.provenance",
    "heatmaploss.project.context", "heatmaploss.project.logs", "heatmaploss.stats",
    "heatmaploss.plots", "heatmaploss.overlays", "heatmaploss.report.verdicts",
    "heatmaploss.report.check",
    "heatmaploss.synthetic", "heatmaploss.synthetic.plan", "heatmaploss.acdc",
    "heatmaploss.acdc.fixture", "heatmaploss.acdc.preprocess", "heatmaploss.acdc.measures",
    "heatmaploss.reanalysis",
    "heatmaploss.registry", "heatmaploss.report", "heatmaploss.report.claims",
    "heatmaploss.runs.spec", "heatmaploss.runs.study",
    *[f"heatmaploss.chapters.{chapter}.{verb}"
      for chapter, verbs in {"synthetic_data": ("analysis", "figures"),
                             "published_results": ("analysis", "figures"),
                             "experiments": ("plan", "results", "analysis", "figures"),
                             "acdc": ("plan", "data", "diagnosis", "analysis", "verdicts", "figures"),
                             "shortcut": ("plan", "analysis", "tables", "costs", "figures")}.items()
      for verb in verbs],
]


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Package modules imported anywhere in ``path`` (function-level imports included)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            targets = [f"{stem}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name and target.startswith("heatmaploss"):
                found.add(target)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _layer(module: str) -> int:
    part = module.split(".")[1] if "." in module else ""
    for index, names in enumerate(LAYERS):
        if part in names:
            return index
    raise AssertionError(f"{module} belongs to no layer of docs/design.md")


def test_no_import_cycles():
    graph = _graph()
    # Importing a package's own submodules from its __init__ is how a package hands names on;
    # a cycle needs an edge back from a submodule.
    done: set[str] = set()
    stack: list[str] = []

    def visit(node: str) -> None:
        if node in stack:
            cycle = stack[stack.index(node):] + [node]
            if not all(b.startswith(a + ".") or a.startswith(b + ".")
                       for a, b in zip(cycle, cycle[1:])):
                pytest.fail("import cycle: " + " -> ".join(cycle))
            return
        if node in done:
            return
        stack.append(node)
        for target in sorted(graph[node]):
            visit(target)
        stack.pop()
        done.add(node)

    for module in sorted(graph):
        visit(module)


def test_imports_point_down_the_layers_and_chapters_stay_apart():
    for module, targets in _graph().items():
        if module == "heatmaploss":
            continue
        for target in targets:
            if target == "heatmaploss":
                continue
            assert _layer(target) <= _layer(module), f"{module} imports {target}: an arrow up"
            if module.startswith("heatmaploss.chapters.") and target.startswith(
                    "heatmaploss.chapters."):
                assert module.split(".")[2] == target.split(".")[2], \
                    f"{module} imports another chapter's {target}"


def test_small_modules_few_top_level_modules_no_prefix_families():
    for name, path in _modules().items():
        lines = len(path.read_text().splitlines())
        assert lines <= 450, f"{name} has {lines} lines: split it"
    top = sorted(p.stem for p in PACKAGE.glob("*.py"))
    assert len(top) <= 14, top
    prefixes = [name.split("_")[0] for name in top if "_" in name and name != "__init__"]
    assert len(prefixes) == len(set(prefixes)), f"prefix family among {top}"
    stdlib = set(sys.stdlib_module_names)
    for name in _modules():
        assert name.rsplit(".", 1)[-1] not in stdlib, f"{name} shadows the standard library"


def test_tensorflow_free_parts_import_with_tensorflow_blocked():
    code = (
        "import importlib, sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('tensorflow', 'keras', 'keras_tuner'):\n"
        "            raise ModuleNotFoundError(f'{name} is blocked')\n"
        "sys.meta_path.insert(0, Block())\n"
        f"for name in {TENSORFLOW_FREE!r}:\n"
        "    importlib.import_module(name)\n"
        "assert not any(m.split('.')[0] in ('tensorflow', 'keras') for m in sys.modules)\n"
        "print('ok')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={"MPLBACKEND": "Agg", "PATH": ""}, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]


def test_a_saved_model_loads_after_importing_heatmaploss_alone(tmp_path):
    pytest.importorskip("keras")
    from heatmaploss import models
    from heatmaploss.losses import HeatmapLossConfig

    base = models.build_model("small_cnn", heatmap=HeatmapLossConfig(), seed=0)
    adaptive = models.GradientBalancedModel(base.backbone, base.head, heatmap=base.heatmap)
    models.save_model(adaptive, tmp_path / "m.keras")
    code = ("import heatmaploss, keras\n"
            f"model = keras.models.load_model({str(tmp_path / 'm.keras')!r}, compile=False)\n"
            "print(type(model).__name__)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert done.stdout.strip() == "GradientBalancedModel", done.stderr[-3000:]


def test_one_import_route_and_self_contained_citations():
    sources = [ROOT / "run_all.py", *sorted((ROOT / "tests").glob("*.py")),
               *sorted((ROOT / "benchmarks").glob("*.py")), *sorted(PACKAGE.rglob("*.py"))]
    for path in sources:
        text = path.read_text()
        assert "sys.path.insert" not in text or path.name == "test_house.py", \
            f"{path.name} edits sys.path: import the installed package"
    cited = [*sorted(PACKAGE.rglob("*.py")), *sorted((ROOT / "notebooks").glob("*.ipynb")),
             *sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
    for path in cited:
        text = path.read_text()
        assert not re.search(r"\bspec §|shared/spec|\.\./shared", text), \
            f"{path.name} cites a document outside the repository"
        for doc in re.findall(r"docs/([a-z-]+\.md)", text):
            assert (ROOT / "docs" / doc).exists(), f"{path.name} cites docs/{doc}, which is missing"
