"""The two ways to install (pip and conda) install the same thing."""

from __future__ import annotations

import re

import tomllib


def test_environment_yml_installs_the_declared_package(repo_root):
    pyproject = tomllib.loads((repo_root / "pyproject.toml").read_text())
    env = (repo_root / "environment.yml").read_text()
    # conda installs python + pip, then the project itself with the same extras: any
    # dependency listed in pyproject.toml is therefore installed by both routes.
    assert re.search(r"^\s*-\s*python=3\.11\s*$", env, re.M)
    assert re.search(r"^\s*-\s*-e \.\[dev\]\s*$", env, re.M), "environment.yml must pip-install -e .[dev]"
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
