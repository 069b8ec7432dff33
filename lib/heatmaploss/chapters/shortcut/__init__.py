"""Chapter 6: beyond the thesis — a real shortcut (a class-coded decoy marker), the losses that
do or do not remove it, and whether attribution maps can tell.

* :mod:`.plan` — groups, data plans, setting searches and seeds, model builders (no TF until a
  model is built);
* :mod:`.run` — each group's search, its seeds and their evaluation through the study runner;
* :mod:`.evaluation` — one model's interventions, attribution at two layers, linear probes;
* :mod:`.analysis` — per-model verdicts, group statistics, detection (no TF);
* :mod:`.tables` — ``summary.json`` part, statistics files, report rows, tables (no TF);
* :mod:`.costs` — step times and wall times (no TF);
* :mod:`.figures` — the chapter's figures (no TF).
"""
