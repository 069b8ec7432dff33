"""One run's settings, resolved once at the entry point and passed down.

A notebook (or ``run_all.py``, or a test) turns its parameters into a :class:`RunContext` with
:func:`open_run`; library functions take the context (or the part of its profile they need)
instead of re-resolving a profile name or a results folder themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .paths import OutputDirs, output_dirs, results_dir as default_results_dir
from .profiles import Profile, get_profile


@dataclass(frozen=True)
class RunContext:
    """What every chapter needs to know about the run it is part of.

    Attributes:
        profile: the resolved :class:`~heatmaploss.project.profiles.Profile`.
        seed: base seed; every dataset, search and model derives its seed from it.
        out: the profile's output folders.
        database_url: results-database URL, or ``None`` for ``$HEATMAPLOSS_DATABASE_URL`` /
            the SQLite file in ``out.root``.
        progress: show progress bars on long work.
    """

    profile: Profile
    seed: int
    out: OutputDirs
    database_url: str | None = None
    progress: bool = True

    @property
    def results(self) -> Path:
        """The profile's results folder (``out.root``)."""
        return self.out.root


def open_run(profile: str | Profile, seed: int = 0, results_dir: str = "",
             database_url: str = "", progress: bool = True) -> RunContext:
    """Resolve a notebook's standard parameters into a :class:`RunContext`.

    Args:
        profile: ``smoke``, ``quick`` or ``thesis`` (or a profile object).
        seed: base seed (an integer >= 0).
        results_dir: the profile's results folder; empty means ``results/<profile>`` in the
            repository.
        database_url: registry URL; empty means ``$HEATMAPLOSS_DATABASE_URL`` or the SQLite
            file in the results folder.
        progress: show progress bars.

    Raises:
        ValueError: an unknown profile or a negative or non-integer seed.
    """
    prof = profile if isinstance(profile, Profile) else get_profile(profile)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed={seed!r}: must be an integer >= 0")
    folder = Path(results_dir) if results_dir else default_results_dir(prof.name)
    return RunContext(profile=prof, seed=seed, out=output_dirs(folder),
                      database_url=database_url or None, progress=bool(progress))


__all__ = ["RunContext", "open_run"]
