"""Where things live: the repository, committed data, and per-profile results.

Every path the project writes is built here from ``__file__`` so that notebooks, tests and
``run_all.py`` agree, wherever the repository was cloned.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent.parent
DATA_DIR = REPO_ROOT / "data"
THESIS_DATA_DIR = DATA_DIR / "thesis"
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
DEFAULT_RESULTS_ROOT = REPO_ROOT / "results"

#: Environment variable that overrides the results database URL (e.g. a PostgreSQL server).
DATABASE_URL_ENV = "HEATMAPLOSS_DATABASE_URL"


def results_dir(profile: str, root: str | os.PathLike | None = None) -> Path:
    """Return ``<root>/<profile>``, the folder that holds one profile's outputs.

    Args:
        profile: profile name (``smoke``, ``quick`` or ``thesis``).
        root: results root (holds one folder per profile); defaults to ``results/`` in the
            repository.

    Returns:
        The (not necessarily existing) results folder.
    """
    return Path(root or DEFAULT_RESULTS_ROOT) / profile


def output_dirs(results: str | os.PathLike) -> dict[str, Path]:
    """Create and return the standard sub-folders of a results folder.

    Args:
        results: a profile's results folder.

    Returns:
        Mapping with keys ``root``, ``notebooks``, ``figures``, ``stats``, ``models``,
        ``tuner`` and ``data`` to existing folders.
    """
    root = Path(results)
    dirs = {"root": root}
    for name in ("notebooks", "figures", "stats", "models", "tuner", "data"):
        dirs[name] = root / name
    for path in dirs.values():
        path.mkdir(parents=True, exist_ok=True)
    return dirs


def database_url(results: str | os.PathLike, url: str | None = None) -> str:
    """Return the results-database URL.

    Precedence: the explicit ``url`` argument, then ``$HEATMAPLOSS_DATABASE_URL``, then an
    embedded SQLite file ``<results>/registry.sqlite``.
    """
    if url:
        return url
    env = os.environ.get(DATABASE_URL_ENV)
    if env:
        return env
    return f"sqlite:///{Path(results).resolve() / 'registry.sqlite'}"
