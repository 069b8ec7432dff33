"""Where a result came from: the code's git commit and the versions of the libraries.

Versions are read from installed package metadata, so asking costs nothing and never imports
TensorFlow (the statistics side of the project must load without it).
"""

from __future__ import annotations

import functools
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from .paths import REPO_ROOT

#: Distributions recorded with every search; alternatives are tried in order (first found wins).
PACKAGES: dict[str, tuple[str, ...]] = {
    "heatmaploss": ("heatmaploss",),
    "tensorflow": ("tensorflow", "tensorflow-cpu", "tensorflow-macos", "tf-nightly"),
    "keras": ("keras",),
    "keras-tuner": ("keras-tuner",),
    "numpy": ("numpy",),
    "scipy": ("scipy",),
    "pandas": ("pandas",),
    "sqlalchemy": ("sqlalchemy",),
}


def library_versions() -> dict[str, str | None]:
    """Return the installed version of each package in :data:`PACKAGES` (None when absent).

    Returns:
        Mapping package name → version string, plus ``python``.
    """
    versions: dict[str, str | None] = {}
    for name, candidates in PACKAGES.items():
        versions[name] = None
        for dist in candidates:
            try:
                versions[name] = metadata.version(dist)
                break
            except metadata.PackageNotFoundError:
                continue
    versions["python"] = platform.python_version()
    return versions


def _git(repo: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                              timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


def git_commit(repo: str | Path = REPO_ROOT) -> str | None:
    """Return the checked-out commit of ``repo``, suffixed ``-dirty`` when tracked files changed.

    Args:
        repo: a folder inside a git work tree.

    Returns:
        The 40-hex commit, or None when git or the repository is unavailable (e.g. a pip
        install from an sdist).
    """
    commit = _git(Path(repo), "rev-parse", "HEAD")
    if not commit:
        return None
    status = _git(Path(repo), "status", "--porcelain", "--untracked-files=no")
    return f"{commit}-dirty" if status else commit


@functools.lru_cache(maxsize=None)
def collect(repo: str | Path = REPO_ROOT) -> dict:
    """Provenance of this process, computed once: ``{"git_commit": ..., "versions": {...}}``.

    Args:
        repo: repository whose commit is recorded.

    Returns:
        A JSON-ready dict (treat as read-only: it is cached).
    """
    return {"git_commit": git_commit(repo), "versions": library_versions()}
