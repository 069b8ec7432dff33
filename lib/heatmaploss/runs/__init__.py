"""The run machinery every chapter shares: searches, the study runner, evaluation, workers.

* :mod:`.spec` — :class:`SearchSpec`: what one group of models is (TensorFlow-free);
* :mod:`.search` — Keras Tuner parts: :class:`StudyHyperModel`, :class:`RecordingTuner`,
  :func:`run_search`;
* :mod:`.tuner_project` — Keras Tuner project files written atomically, checked and healed on
  resume;
* :mod:`.processes` — worker processes for trials and evaluations, replaced as their memory
  grows;
* :mod:`.study` — the study runner: register → check saved models → skip if recorded → train
  with recording inside the trial → evaluate once → resume;
* :mod:`.evaluate` — accuracy and attribution mass per region on a streamed test set;
* :mod:`.distributed` — launching a Keras Tuner chief and workers on one machine.

See ``docs/design.md`` § The study runner. Submodules are imported on demand (:mod:`.spec`,
:mod:`.processes` and :mod:`.study` load without TensorFlow).
"""
