"""Chapter 2: the thesis's statistics recomputed from its published per-model results, and
the same pipeline on a held-out explainer (no training).

* :mod:`.analysis` — the comparisons, tables, ``summary.json`` entry, report rows (no TF);
* :mod:`.figures` — the thesis's figures redrawn (no TF).

The published data and the thesis's selection rules are :mod:`heatmaploss.reanalysis`.
"""
