"""The two ways to install (pip and conda) install the same thing, pinned by one lock file."""

from __future__ import annotations

import re

import tomllib

LOCK = "requirements.lock"


def _name(requirement: str) -> str:
    """Normalised distribution name of a requirement (PEP 503)."""
    return re.sub(r"[-_.]+", "-", re.split(r"[<>=!~\[ ;]", requirement.strip())[0]).lower()


def test_environment_yml_installs_the_declared_package(repo_root):
    pyproject = tomllib.loads((repo_root / "pyproject.toml").read_text())
    env = (repo_root / "environment.yml").read_text()
    # conda installs python + pip, then the project itself with the same extras: any
    # dependency listed in pyproject.toml is therefore installed by both routes.
    assert re.search(r"^\s*-\s*python=3\.11\s*$", env, re.M)
    assert re.search(r"^\s*-\s*-e \.\[dev\]\s*$", env, re.M), "environment.yml must pip-install -e .[dev]"
    assert re.search(rf"^\s*-\s*-c {re.escape(LOCK)}\s*$", env, re.M), f"conda must use {LOCK}"
    deps = env.split("dependencies:", 1)[1]
    conda_pkgs = [re.split(r"[<>=]", p)[0] for p in re.findall(r"^  - ([A-Za-z0-9_.=<>-]+)\s*$", deps, re.M)]
    assert set(conda_pkgs) <= {"python", "pip"}, (
        f"conda-only packages {set(conda_pkgs) - {'python', 'pip'}} would diverge from pyproject.toml"
    )
    assert pyproject["project"]["optional-dependencies"]["dev"], "dev extra must exist"
    test_extra = {re.split(r"[<>=\[ ]", d)[0] for d in pyproject["project"]["optional-dependencies"]["test"]}
    dev_extra = {re.split(r"[<>=\[ ]", d)[0] for d in pyproject["project"]["optional-dependencies"]["dev"]}
    assert test_extra <= dev_extra, "the conda route (dev) must include everything the tests need"


def test_declared_dependencies_are_importable():
    import importlib

    names = {"tensorflow": "tensorflow", "keras": "keras", "keras-tuner": "keras_tuner",
             "scipy": "scipy", "statsmodels": "statsmodels", "pandas": "pandas",
             "sqlalchemy": "sqlalchemy", "nibabel": "nibabel", "papermill": "papermill",
             "seaborn": "seaborn", "tqdm": "tqdm", "scikit-learn": "sklearn",
             "tensorboard": "tensorboard"}
    for dist, module in names.items():
        assert importlib.util.find_spec(module) is not None, f"{dist} declared but not installed"


def test_lock_pins_every_declared_dependency_exactly(repo_root):
    """requirements.lock (pip-compile) pins every dependency of every extra to one version;
    pyproject.toml keeps ranges; CI and the README use the lock."""
    pyproject = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]
    lock = (repo_root / LOCK).read_text()
    pins = dict(re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)\s*$", lock, re.M))
    requirements = [line for line in lock.splitlines() if line and not line.startswith((" ", "#"))]
    assert len(requirements) == len(pins), "every requirement line is an exact name==version pin"
    pinned = {_name(n) for n in pins}
    declared = pyproject["dependencies"] + [d for extra in pyproject["optional-dependencies"].values()
                                            for d in extra]
    missing = {_name(d) for d in declared} - pinned
    assert not missing, f"{LOCK} lacks {sorted(missing)}: regenerate it (see the README)"
    assert not any("==" in d for d in pyproject["dependencies"]), "pyproject keeps ranges"
    header = re.search(r"^#\s+(pip-compile .*)$", lock, re.M).group(1)
    readme = (repo_root / "README.md").read_text()
    assert header in readme, "the README gives the command that regenerates the lock"
    assert f'PIP_CONSTRAINT="$PWD/{LOCK}"' in (repo_root / ".ci" / "run").read_text()
    assert "python -m pip install -e . && python run_all.py" in readme, "install stays one line"
