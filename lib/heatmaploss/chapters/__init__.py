"""One package per chapter notebook, each with the same verbs.

* ``plan`` — what is trained (groups, data plans, searches); TensorFlow-free;
* ``run`` — training and evaluating it through :mod:`heatmaploss.runs.study`;
* ``analysis`` — statistics, the chapter's ``summary.json`` part and report rows;
  TensorFlow-free;
* ``figures`` — the chapter's figures.

Chapters: :mod:`.synthetic_data` (notebook 01), :mod:`.published_results` (02),
:mod:`.experiments` (03, 04), :mod:`.acdc` (05), :mod:`.shortcut` (06). A chapter without
training has only ``analysis`` and ``figures``. See ``docs/adding-a-chapter.md``.
"""
