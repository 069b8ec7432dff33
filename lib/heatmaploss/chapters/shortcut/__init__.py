"""Chapter 6: beyond the thesis — a real shortcut (a class-coded decoy marker) and the heatmap
losses, penalty forms and weightings that do or do not remove it.

* :mod:`.plan` — groups, data plans, searches, model builders (no TF until a model is built);
* :mod:`.run` — training and evaluating every group through the study runner;
* :mod:`.analysis` — statistics, ``summary.json`` entry, report rows, tables (no TF);
* :mod:`.figures` — the chapter's figures (no TF).
"""
