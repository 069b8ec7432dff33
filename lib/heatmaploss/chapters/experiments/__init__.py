"""Chapters 3 and 4: the thesis's experiments 1 and 2 regenerated (CCE vs heatmap loss).

* :mod:`.plan` — what is trained: protocols, group recipes, data plans, searches (no TF);
* :mod:`.run` — running it through the study runner (:func:`run_experiment`);
* :mod:`.workers` — the chief / worker command line of a distributed search;
* :mod:`.results` — the trained models as tidy tables, read from the registry (no TF);
* :mod:`.analysis` — statistics, ``summary.json`` entry, report rows (no TF);
* :mod:`.figures` — histograms, sex-marker distributions, attribution overlays.
"""
