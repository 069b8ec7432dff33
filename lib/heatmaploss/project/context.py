"""One run's settings, resolved once at the entry point and passed down.

A notebook (or ``run_all.py``, or a test) turns its parameters into a :class:`RunContext` with
:func:`open_run`; library functions take the context (or the part of its profile they need)
instead of re-resolving a profile name or a results folder themselves.
"""

from __future__ import annotations

import os
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
        vgg16_weights: local copy of Keras's VGG16 no-top ImageNet weights, or ``None`` (Keras's
            cache, then the network).
    """

    profile: Profile
    seed: int
    out: OutputDirs
    database_url: str | None = None
    progress: bool = True
    vgg16_weights: Path | None = None

    @property
    def results(self) -> Path:
        """The profile's results folder (``out.root``)."""
        return self.out.root


#: Environment variable holding the path of a local copy of Keras's VGG16 no-top ImageNet
#: weights: how the ``vgg16_weights`` parameter reaches model builders, here and in the worker
#: processes a run starts (read by :func:`heatmaploss.models.vgg16_weights_file`).
VGG16_WEIGHTS_ENV = "HEATMAPLOSS_VGG16_WEIGHTS"


def open_run(profile: str | Profile, seed: int = 0, results_dir: str = "",
             database_url: str = "", progress: bool = True,
             vgg16_weights: str = "") -> RunContext:
    """Resolve a notebook's standard parameters into a :class:`RunContext`.

    Args:
        profile: ``smoke``, ``quick`` or ``thesis`` (or a profile object).
        seed: base seed (an integer >= 0).
        results_dir: the profile's results folder; empty means ``results/<profile>`` in the
            repository.
        database_url: registry URL; empty means ``$HEATMAPLOSS_DATABASE_URL`` or the SQLite
            file in the results folder.
        progress: show progress bars.
        vgg16_weights: path of Keras's VGG16 no-top ImageNet weights file
            (``vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5``) for machines without
            internet; empty means Keras's cache, then the network. Set for the whole process
            (and the processes it starts) through ``$HEATMAPLOSS_VGG16_WEIGHTS``.

    A toy-size profile (``thesis-tiny``) prints one line saying so, so that no executed
    notebook of it can be mistaken for results.

    Raises:
        ValueError: an unknown profile, a negative or non-integer seed, or a
            ``vgg16_weights`` file that does not exist.
    """
    prof = profile if isinstance(profile, Profile) else get_profile(profile)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed={seed!r}: must be an integer >= 0")
    folder = Path(results_dir) if results_dir else default_results_dir(prof.name)
    weights = None
    if vgg16_weights:
        weights = Path(vgg16_weights).expanduser().resolve()
        if not weights.is_file():
            raise ValueError(f"vgg16_weights={vgg16_weights!r}: no such file (expected Keras's "
                             "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5)")
        os.environ[VGG16_WEIGHTS_ENV] = str(weights)
    if prof.is_tiny:
        print(f"profile {prof.name}: {prof.description} (VGG16 built with weights=None)")
    return RunContext(profile=prof, seed=seed, out=output_dirs(folder),
                      database_url=database_url or None, progress=bool(progress),
                      vgg16_weights=weights)


__all__ = ["VGG16_WEIGHTS_ENV", "RunContext", "open_run"]
