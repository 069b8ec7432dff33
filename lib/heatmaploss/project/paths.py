"""Where things live: the repository, committed data, and one profile's output folders.

Every path the project writes is built here, from ``__file__`` for the repository's own
folders, so that notebooks, tests and ``run_all.py`` agree wherever the repository was cloned.
A profile's outputs are described by :class:`OutputDirs` (``out.figures``, ``out.stats`` ...);
see ``docs/design.md`` § Outputs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent
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


@dataclass(frozen=True)
class OutputDirs:
    """The standard folders of one profile's results (all exist once built).

    Attributes:
        root: the profile's results folder (``summary.json``, the report, the SQLite registry).
        notebooks: executed notebooks.
        figures: every figure as PNG + PDF.
        stats: statistics as JSON / CSV.
        models: trained models.
        tuner: Keras Tuner projects (one folder per search).
        data: cached datasets (the ACDC fixture).
    """

    root: Path
    notebooks: Path
    figures: Path
    stats: Path
    models: Path
    tuner: Path
    data: Path

    @classmethod
    def at(cls, results: str | os.PathLike) -> "OutputDirs":
        """Create (if missing) and return the folders of the results folder ``results``."""
        root = Path(results)
        dirs = cls(root=root, **{f.name: root / f.name for f in fields(cls) if f.name != "root"})
        for item in fields(cls):
            getattr(dirs, item.name).mkdir(parents=True, exist_ok=True)
        return dirs


def output_dirs(results: str | os.PathLike) -> OutputDirs:
    """Create and return the standard sub-folders of a results folder (see :class:`OutputDirs`)."""
    return OutputDirs.at(results)


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


def absolute_sqlite_url(url: str, base: str | os.PathLike) -> str:
    """Return ``url`` with a relative SQLite file path made absolute against ``base``.

    ``sqlite:///rel/x.sqlite`` names ``rel/x.sqlite`` relative to the working directory of
    whichever process opens it; a notebook kernel runs in ``notebooks/``, so a URL typed in a
    shell elsewhere must be fixed to the folder the user meant before it is handed on.

    Args:
        url: a database URL; anything but a relative SQLite file (another database, an
            absolute path, ``:memory:``, a ``file:`` URI) is returned unchanged.
        base: the folder the relative path is meant from.

    Returns:
        The URL, e.g. ``sqlite:////home/me/rel/x.sqlite``.
    """
    scheme, sep, rest = url.partition(":///")
    if not sep or scheme.split("+", 1)[0].lower() != "sqlite":
        return url
    database, query, params = rest.partition("?")
    if not database or database.startswith("/") or database == ":memory:" \
            or database.startswith("file:") or Path(database).is_absolute():
        return url
    absolute = (Path(base) / Path(database).expanduser()).resolve()
    return f"{scheme}:///{absolute.as_posix()}{query}{params}"


__all__ = ["DATABASE_URL_ENV", "DATA_DIR", "DEFAULT_RESULTS_ROOT", "NOTEBOOKS_DIR",
           "OutputDirs", "PACKAGE_DIR", "REPO_ROOT", "THESIS_DATA_DIR", "absolute_sqlite_url",
           "database_url",
           "output_dirs", "results_dir"]
