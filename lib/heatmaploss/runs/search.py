"""Keras Tuner searches whose every trial trains, saves and records one model.

A search is identified by its *key* (:attr:`SearchSpec.key`), which names a fixed Keras Tuner
project folder and the folder of its saved models, and described by its *fingerprint*
(everything that determines its models: the group's configuration, the data, the searched
space, the trial count). Running a search whose folder already exists continues it
(``overwrite=False``: finished trials are kept, a trial interrupted mid-way is run again with
the same trial id and hyperparameters); running it with another fingerprint raises
:class:`SearchMismatchError` instead of silently mixing two searches.

Two kinds of search, both Keras Tuner projects (so both resume, and both can be shared by
several processes through Keras Tuner's distributed mode):

* a **search** — Bayesian optimisation over :attr:`SearchSpec.space` (e.g. the learning rate);
* **replicates** — the same fixed hyperparameters, one trial per independent seed (a grid
  over the replicate index): the models a comparison treats as independent samples.

Each trial keeps its best epoch (``EarlyStopping(restore_best_weights=True)``, explicit
``mode``) unless told to keep the last one, saves the model under
``<results>/models/<key>/trial_<id>.keras`` and calls ``record`` *inside* the trial, keyed by
(search key, trial id): a trial re-run after a crash overwrites its own row, so every model is
recorded exactly once. The parts are module-level classes: :class:`StudyHyperModel` declares the
hyperparameters and builds the model, :class:`RecordingTuner` hands each trial to
:func:`train_trial` and records what it returns.

Trials train in a worker process that is replaced every few trials
(:class:`~heatmaploss.runs.processes.WorkerPool`), so a long search does not accumulate the
memory TensorFlow keeps from every ``fit``; the searching process only runs the oracle and
records. Before a search is reopened, its Keras Tuner files are checked and healed
(:mod:`heatmaploss.runs.tuner_project`). See ``docs/design.md`` § The study runner.
"""

from __future__ import annotations

import contextlib
import io as stdio
import json
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Collection, Mapping

import keras
import keras_tuner as kt
from keras_tuner.src.distribute import utils as dist_utils

from ..models.reuse import fresh_session, training_pool
from ..project import files
from ..project.paths import OutputDirs
from . import tuner_project
from .processes import WorkerPool, shared_pool
from .spec import REPLICATE, SearchSpec

logger = logging.getLogger(__name__)

FINGERPRINT_FILE = "heatmaploss_search.json"


class SearchMismatchError(RuntimeError):
    """An existing search folder belongs to a search with a different fingerprint."""


def project_dir(spec: SearchSpec, out: OutputDirs) -> Path:
    """The Keras Tuner project folder of a search: ``<results>/tuner/<key>``."""
    return out.tuner / spec.key


def model_path(spec: SearchSpec, out: OutputDirs, trial_id: str) -> Path:
    """Where a trial's model is saved."""
    return out.models / spec.key / f"trial_{trial_id}.keras"


def check_fingerprint(spec: SearchSpec, out: OutputDirs) -> Path:
    """Refuse to continue a different search in the same folder; write the fingerprint.

    Returns:
        The search's project folder (created).

    Raises:
        SearchMismatchError: the folder holds a search with another fingerprint.
    """
    directory = project_dir(spec, out)
    marker = directory / FINGERPRINT_FILE
    mine = spec.fingerprint()
    if marker.exists():
        stored = json.loads(marker.read_text())["fingerprint"]
        if stored != mine:
            differing = sorted(k for k in set(stored) | set(mine) if stored.get(k) != mine.get(k))
            raise SearchMismatchError(
                f"search {spec.key!r}: {directory} holds a search with different settings "
                f"({', '.join(differing)} differ); delete that folder to start over, or use "
                "another seed or results_dir")
    elif (directory / "oracle.json").exists():
        raise SearchMismatchError(
            f"search {spec.key!r}: {directory} holds a Keras Tuner project without a "
            f"{FINGERPRINT_FILE}; delete that folder to start over")
    directory.mkdir(parents=True, exist_ok=True)
    files.write_json(marker, {"fingerprint": mine, "hash": spec.fingerprint_hash()})
    return directory


def best_epoch(history: Mapping[str, list], objective: str) -> int:
    """Index of the epoch with the lowest finite ``objective`` (the last one if none is finite)."""
    values = history.get(objective) or []
    finite = [(v, i) for i, v in enumerate(values) if v is not None and math.isfinite(v)]
    return min(finite)[1] if finite else max(len(values) - 1, 0)


class StudyHyperModel(kt.HyperModel):
    """Declares a search's hyperparameters on Keras Tuner's ``hp`` and builds the model.

    Args:
        spec: the search.
        build_model: ``build_model(**hyperparameters)`` → a compiled Keras model (the
            replicate index is not passed: it only seeds the trial).
    """

    def __init__(self, spec: SearchSpec, build_model: Callable[..., Any]) -> None:
        super().__init__(name=spec.key)
        self.spec = spec
        self.build_model = build_model

    def declare(self, hp: kt.HyperParameters) -> dict[str, Any]:
        """Declare every hyperparameter on ``hp`` and return the trial's values."""
        values: dict[str, Any] = {}
        if self.spec.replicates:
            values[REPLICATE] = hp.Int(REPLICATE, 0, self.spec.max_trials - 1)
        for name, value in self.spec.fixed.items():
            values[name] = hp.Fixed(name, value)
        for item in self.spec.space:
            values[item.name] = hp.Float(item.name, item.low, item.high, sampling=item.sampling)
        return values

    def build(self, hp: kt.HyperParameters) -> Any:
        values = self.declare(hp)
        values.pop(REPLICATE, None)
        return self.build_model(**values)


@dataclass(frozen=True)
class TrialWork:
    """What training a trial needs; sent (pickled) to the worker process that trains it.

    Attributes:
        spec: the search.
        build_model: ``build_model(**hyperparameters)`` → a compiled Keras model.
        make_data: ``make_data(shuffle_seed)`` → ``(train, validation)``.
        out: the profile's output folders.
        save_model: ``save_model(model, path)``; None: :func:`heatmaploss.models.save_model`.
    """

    spec: SearchSpec
    build_model: Callable[..., Any]
    make_data: Callable[[int], tuple]
    out: OutputDirs
    save_model: Callable[[Any, Path], None] | None = None


def train_trial(work: TrialWork, trial_id: str, values: Mapping[str, Any]) -> dict:
    """Train one trial, keep its best (or last) epoch, save the model; return its record.

    Runs in a worker process (or in the searching process with ``tasks_per_process=0``); the
    registry is written by the caller, from the returned record.

    Args:
        work: the search's model builder, data and output folders.
        trial_id: Keras Tuner's trial id.
        values: the trial's hyperparameter values (the replicate index included).

    Returns:
        The record described in :func:`run_search`.
    """
    spec, settings = work.spec, work.spec.training
    fresh_session()
    values = dict(values)
    trial_seed = spec.trial_seed(trial_id, values)
    keras.utils.set_random_seed(trial_seed)
    # A model of an architecture this process has trained before takes over that model's
    # traced train step (same initial weights and fresh optimizer: the same training).
    model = training_pool.adopt(
        work.build_model(**{k: v for k, v in values.items() if k != REPLICATE}))
    patience = settings.early_stopping_patience
    callbacks = [keras.callbacks.TerminateOnNaN()]
    if settings.keep_best_epoch or patience is not None:
        # patience = epochs never stops early but still restores the best epoch.
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor=settings.objective, mode="min",
            restore_best_weights=settings.keep_best_epoch,
            patience=patience if patience is not None else settings.epochs))
    train, validation = work.make_data(spec.shuffle_seed(trial_id, values))
    start = time.perf_counter()
    # The datasets shuffle themselves (seeded per trial).
    history = model.fit(train, validation_data=validation, epochs=settings.epochs,
                        shuffle=False, verbose=0, callbacks=callbacks).history
    seconds = time.perf_counter() - start
    epochs_run = len(history.get("loss", []))
    kept = best_epoch(history, settings.objective) if settings.keep_best_epoch \
        else max(epochs_run - 1, 0)
    kept_metrics = {k: float(v[kept]) for k, v in history.items() if len(v) > kept}
    target = model_path(spec, work.out, trial_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    save = work.save_model
    if save is None:
        from ..models import save_model as save
    with files.atomic_path(target) as tmp:
        save(model, tmp)
        digest = files.sha256(tmp)  # recorded: a resumed run checks the file against it
    del model, train, validation
    fresh_session()
    return {
        "search_key": spec.key, "fingerprint": spec.fingerprint_hash(),
        "trial_id": trial_id, "hyperparameters": values, "trial_seed": trial_seed,
        "epochs_run": epochs_run, "best_epoch": kept + 1, "train_seconds": seconds,
        "validation": kept_metrics, "history": history,
        "model_path": str(target.relative_to(work.out.root)), "model_sha256": digest,
    }


class RecordingTuner(kt.Tuner):
    """A tuner whose trial trains, saves and records its model before the trial ends.

    Args:
        spec: the search.
        hypermodel: its :class:`StudyHyperModel` (declares the hyperparameters; the models
            are built by :func:`train_trial`).
        work: what :func:`train_trial` needs.
        pool: the worker processes that run :func:`train_trial`.
        record: called once per finished trial with the model's record (see
            :func:`run_search`), in this process, before the trial ends.
        on_trial_done: called after every trial (e.g. to advance a progress bar).
        **kwargs: passed to :class:`keras_tuner.Tuner` (oracle, directory, project_name ...).
    """

    def __init__(self, spec: SearchSpec, hypermodel: StudyHyperModel, work: TrialWork,
                 pool: WorkerPool, record: Callable[[dict], None],
                 on_trial_done: Callable[[], None] = lambda: None, **kwargs: Any) -> None:
        self.spec = spec
        self.work = work
        self.pool = pool
        self.record = record
        self.on_trial_done = on_trial_done
        super().__init__(hypermodel=hypermodel, **kwargs)

    def _populate_initial_space(self) -> None:
        # Keras Tuner builds the model to discover conditional hyperparameters; a search has
        # none, and building (a VGG16) in the searching process is what the workers avoid.
        hp = self.oracle.get_space()
        self.hypermodel.declare(hp)
        self.oracle.update_space(hp)

    def run_trial(self, trial: Any, *_: Any, **__: Any) -> dict[str, float]:
        try:
            rec = self.pool.call(train_trial, self.work, trial.trial_id,
                                 dict(trial.hyperparameters.values), name=f"search {self.spec.key}")
            self.record(rec)
        except Exception as exc:
            # Keras Tuner would mark the trial failed and go on; a bug, a lost worker or an
            # unreachable registry must stop the search instead (the trial is re-run on resume).
            raise kt.errors.FatalError(
                f"search {self.spec.key} trial {trial.trial_id}: {type(exc).__name__}: {exc}"
            ) from exc
        settings = self.spec.training
        value = rec["validation"].get(settings.objective, float("nan"))
        if not math.isfinite(value):
            logger.warning("search %s trial %s (%s) diverged; scored as chance", self.spec.key,
                           trial.trial_id, rec["hyperparameters"])
            value = settings.chance_objective
        return {settings.objective: value}

    def on_trial_end(self, trial: Any) -> None:
        super().on_trial_end(trial)
        status = self.oracle.get_trial(trial.trial_id).status
        if status != "COMPLETED":
            logger.warning("search %s trial %s ended %s: %s", self.spec.key, trial.trial_id,
                           status, (trial.message or "").strip().splitlines()[-1:])
        self.on_trial_done()


def _oracle(spec: SearchSpec) -> Any:
    objective = kt.Objective(spec.training.objective, direction="min")
    if spec.replicates:
        return tuner_project.GridOracle(objective=objective, max_trials=spec.max_trials,
                                        seed=spec.tuner_seed)
    return tuner_project.BayesianOracle(objective=objective, max_trials=spec.max_trials,
                                        seed=spec.tuner_seed, max_consecutive_failed_trials=3)


def run_search(spec: SearchSpec, build_model: Callable[..., Any],
               make_data: Callable[[int], tuple], out: OutputDirs,
               record: Callable[[dict], None],
               save_model: Callable[[Any, Path], None] | None = None,
               progress: bool = True, tasks_per_process: int | None = None,
               recorded: Mapping[str, Mapping[str, Any]] | None = None,
               redo: Collection[str] = ()) -> list[str]:
    """Run (or continue) one search.

    Args:
        spec: the search.
        build_model: ``build_model(**hyperparameters)`` → a compiled Keras model.
        make_data: ``make_data(shuffle_seed)`` → ``(train, validation)`` datasets.
        out: the profile's output folders (tuner and model folders live there).
        record: called once per finished trial with the model's record, a dict: search key,
            fingerprint hash, trial id, hyperparameters (every value), trial seed, epochs run,
            kept epoch, wall time, validation metrics of the kept epoch, history, model path
            relative to ``out.root`` and the SHA-256 of the saved model; it must upsert on
            (search key, trial id).
        save_model: ``save_model(model, path)``; default :func:`heatmaploss.models.save_model`.
        progress: show a progress bar over trials.
        tasks_per_process: trials per worker process (None: the default of
            :mod:`heatmaploss.runs.processes`; 0: train in this process). ``build_model``,
            ``make_data`` and ``save_model`` are pickled for the workers.
        recorded: trial id → hyperparameter values of the trials already recorded (a trial
            whose Keras Tuner file is damaged is run again with its own values).
        redo: ids of trials to run again although they finished (their model was damaged).

    Returns:
        Trial ids of this search's completed trials.

    Raises:
        TypeError: the callables cannot be sent to a worker process.
    """
    from tqdm.auto import tqdm

    directory = check_fingerprint(spec, out)
    work = TrialWork(spec, build_model, make_data, out, save_model)
    worker = dist_utils.has_chief_oracle() and not dist_utils.is_chief_oracle()
    # The chief (or the only process) owns the project's files; workers leave them alone.
    damage = (tuner_project.Damage() if worker else
              tuner_project.check_project(directory, os.environ.get("KERASTUNER_TUNER_ID",
                                                                    "tuner0")))
    pool = shared_pool(tasks_per_process)
    pool.prepare(work, f"search {spec.key}")
    bar = tqdm(total=spec.max_trials, desc=spec.key, unit="trial", disable=not progress,
               leave=False)
    # Keras Tuner prints "Reloading Tuner from ..." on stdout; send it to the log instead.
    captured = stdio.StringIO()
    with contextlib.redirect_stdout(captured):
        tuner = RecordingTuner(
            spec, StudyHyperModel(spec, build_model), work, pool, record,
            on_trial_done=lambda: bar.update(1), oracle=_oracle(spec),
            directory=str(directory.parent), project_name=directory.name, overwrite=False)
    if captured.getvalue().strip():
        logger.info(captured.getvalue().strip())
    if not worker:
        queued = tuner_project.heal(tuner.oracle, directory, damage, recorded or {}, redo)
        if queued:
            logger.warning("search %s: trials %s run again", spec.key, ", ".join(queued))
    # A worker of a distributed search holds a client of the chief's oracle, which has no
    # local trial list: its progress starts at zero.
    trials = getattr(tuner.oracle, "trials", None) or {}
    bar.update(sum(t.status == "COMPLETED" for t in trials.values()))
    try:
        tuner.search(verbose=0)
    finally:
        bar.close()
    trials = getattr(tuner.oracle, "trials", None) or {}
    return sorted((t.trial_id for t in trials.values() if t.status == "COMPLETED"), key=_order)


def _order(trial_id: str) -> tuple:
    return (len(trial_id), trial_id)


__all__ = ["FINGERPRINT_FILE", "RecordingTuner", "SearchMismatchError", "StudyHyperModel",
           "TrialWork", "best_epoch", "check_fingerprint", "model_path", "project_dir",
           "run_search", "train_trial"]
