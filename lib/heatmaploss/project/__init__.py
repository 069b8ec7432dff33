"""Project plumbing: run profiles, output folders, crash-safe files, provenance, run context.

* :mod:`~heatmaploss.project.profiles` — the ``smoke`` / ``quick`` / ``thesis`` sizes;
* :mod:`~heatmaploss.project.paths` — the repository's folders and a profile's outputs;
* :mod:`~heatmaploss.project.files` — atomic writes, JSON, figures, ``summary.json``;
* :mod:`~heatmaploss.project.provenance` — git commit and library versions of a result;
* :mod:`~heatmaploss.project.context` — :func:`open_run`, the settings of one run.

No TensorFlow.
"""

from .context import RunContext, open_run

__all__ = ["RunContext", "open_run"]
