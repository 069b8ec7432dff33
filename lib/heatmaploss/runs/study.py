"""The study runner: how every chapter trains, records and evaluates its groups of models.

A chapter describes each group of models as a :class:`Study` — its search (what is trained,
:class:`~heatmaploss.runs.search.SearchSpec`), a model builder, a data factory and an
evaluation — and hands the studies to :func:`run_studies`, which for each one

1. gets or creates the search's row in the registry;
2. skips training when every model of the search is recorded (so results another machine
   recorded in a shared registry are reused, and nothing is generated or loaded);
3. otherwise runs (or continues) the Keras Tuner search, whose trials record their models
   *inside* the trial (:mod:`heatmaploss.runs.search`) — or hands the search to a launcher
   that runs it in a chief and worker processes;
4. evaluates, once, every recorded model that has no test results yet, writing its metrics and
   test accuracy in one transaction (a model counts as evaluated when its ``test_accuracy``
   is set).

Killed at any point and started again, it continues where it stopped and records every model
exactly once. Before it trusts a saved model, it checks the file against the SHA-256 recorded
when it was written: a damaged model is moved aside with a warning, its row is discarded and
its trial is trained and evaluated again. Training and evaluation run in worker processes that
are replaced every few tasks (:mod:`heatmaploss.runs.processes`), so memory stays bounded over
long runs. See ``docs/design.md`` § The study runner.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd

from ..project import files
from ..project.paths import OutputDirs
from .processes import shared_pool
from .spec import SearchSpec


@dataclass
class Evaluation:
    """What evaluating one trained model produced.

    Attributes:
        rows: registry metric rows (``dataset``, ``metric``, ``explainer``, ``region``,
            ``class_name``, ``value``, ``n``).
        test_accuracy: the model's headline accuracy on its evaluation set.
    """

    rows: list[dict]
    test_accuracy: float


@dataclass(frozen=True)
class Study:
    """One group's models, as a chapter hands them to the study runner.

    Attributes:
        spec: the search (or replicates) that trains them.
        build_model: ``build_model(**hyperparameters)`` → a compiled model.
        make_data: ``make_data(shuffle_seed)`` → ``(train, validation)`` as ``fit`` takes them.
        evaluate: ``evaluate(model)`` → :class:`Evaluation` of a trained model; ``None`` for
            models that are never evaluated (a search that only chooses a setting).
        save_model: ``save_model(model, path)``; default
            :func:`heatmaploss.models.save_model` (no optimizer state).
        label: a name for progress bars (default the search key).
    """

    spec: SearchSpec
    build_model: Callable[..., Any]
    make_data: Callable[[int], tuple]
    evaluate: Callable[[Any], Evaluation] | None
    save_model: Callable[[Any, Path], None] | None = None
    label: str = field(default="")


def register(spec: SearchSpec, registry: Any) -> int:
    """The registry id of a search (recorded first when new)."""
    return registry.get_or_create_search(
        experiment=spec.experiment, protocol=spec.protocol, group=spec.group, name=spec.key,
        profile=spec.profile, seed=spec.seed,
        loss_config={**spec.config, "fingerprint": spec.fingerprint_hash()},
        hyperparameter_space=spec.space_record())


def recorder(registry: Any, search_id: int, spec: SearchSpec) -> Callable[[dict], None]:
    """The ``record`` callback of a search: upsert the trial's model row."""

    def record(rec: dict) -> None:
        val = rec["validation"]
        registry.record_model(
            search_id, rec["trial_id"], status="completed", seed=rec["trial_seed"],
            hyperparameters=rec["hyperparameters"], epochs=rec["epochs_run"],
            best_epoch=rec["best_epoch"], wall_time_s=rec["train_seconds"],
            val_accuracy=val.get("val_accuracy"), val_loss=val.get(spec.training.objective),
            model_path=rec["model_path"], model_sha256=rec.get("model_sha256"), scores=val)

    return record


def resume_state(registry: Any, search_id: int) -> tuple[dict[str, dict], list[str]]:
    """What a resumed search needs from the registry.

    Returns:
        ``(recorded, redo)``: trial id → hyperparameter values of the completed models, and
        the ids of discarded models (their trials must be trained again).
    """
    frame = registry.models(search_id=search_id, status=None)
    recorded = {row.trial: dict(row.hyperparameters or {}) for row in frame.itertuples()
                if row.status == "completed"}
    return recorded, [row.trial for row in frame.itertuples() if row.status == "discarded"]


def check_models(registry: Any, out: OutputDirs, search_id: int) -> list[str]:
    """Check the saved models of a search before they are trusted; discard damaged ones.

    A model file that exists but does not match the SHA-256 recorded when it was written (or,
    for models recorded without one, is not a complete ``.keras`` archive) is moved aside with
    a warning naming it, and its registry row is discarded (no test results, no metrics), so
    that its trial is trained and evaluated again. A missing file is left alone: in a
    distributed search it lives on the machine that trained it.

    Returns:
        The trial ids of the models discarded now.
    """
    frame = registry.models(search_id=search_id)
    discarded = []
    for row in frame.itertuples():
        if not row.model_path:
            continue
        path = out.root / row.model_path
        if not path.exists():
            continue
        reason = files.check_file(path, row.model_sha256 if isinstance(row.model_sha256, str)
                                  else None)
        if reason is not None:
            files.set_aside(path, reason)
            registry.discard_model(search_id, row.trial)
            discarded.append(row.trial)
    return discarded


def train(study: Study, registry: Any, out: OutputDirs, search_id: int,
          progress: bool = True, tasks_per_process: int | None = None) -> None:
    """Run (or continue) a study's search; every trial records itself.

    Trials train in worker processes (``tasks_per_process`` trials each; 0: in this process);
    trials whose model was discarded are trained again.
    """
    from .search import run_search

    recorded, redo = resume_state(registry, search_id)
    run_search(study.spec, study.build_model, study.make_data, out,
               record=recorder(registry, search_id, study.spec), save_model=study.save_model,
               progress=progress, tasks_per_process=tasks_per_process, recorded=recorded,
               redo=redo)


def evaluate_saved(work: tuple[Callable[[Any], Evaluation], OutputDirs],
                   model_path: str) -> Evaluation:
    """Load one saved model and evaluate it (what an evaluation worker process runs).

    Args:
        work: ``(evaluate, out)``: the study's evaluation and the output folders.
        model_path: the model's path relative to ``out.root``.

    Returns:
        The model's :class:`Evaluation`.
    """
    from ..models import load_model
    from ..models.reuse import for_evaluation, fresh_session

    evaluate, out = work
    fresh_session()
    # Loaded into a kept model of the same architecture: its compiled functions are reused.
    return evaluate(for_evaluation(load_model(out.root / model_path)))


def evaluate_recorded(study: Study, registry: Any, out: OutputDirs, search_id: int,
                      progress: bool = True, only_available: bool = False,
                      tasks_per_process: int | None = None) -> int:
    """Evaluate every recorded model of the study that has no test results yet.

    Args:
        only_available: skip models whose file is not under ``out`` (a worker of a
            distributed search evaluates the models it trained itself).
        tasks_per_process: evaluations per worker process (None: the default of
            :mod:`heatmaploss.runs.processes`; 0: in this process).

    Returns:
        The number of models evaluated now.
    """
    from tqdm.auto import tqdm

    if study.evaluate is None:
        return 0
    frame = registry.models(search_id=search_id)
    todo = [row for row in frame.itertuples() if pd.isna(row.test_accuracy)
            and (not only_available or (out.root / row.model_path).exists())]
    if not todo:
        return 0
    label = study.label or study.spec.key
    pool, work = shared_pool(tasks_per_process), (study.evaluate, out)
    for row in tqdm(todo, desc=f"evaluate {label}", unit="model", disable=not progress,
                    leave=False):
        result = pool.call(evaluate_saved, work, row.model_path, name=f"evaluate {label}")
        # Metrics and test accuracy in one transaction: a model is evaluated or it is not.
        registry.record_model(search_id, row.trial, test_accuracy=result.test_accuracy,
                              metrics=result.rows)
    return len(todo)


def run_study(study: Study, registry: Any, out: OutputDirs, progress: bool = True,
              launch: Callable[[SearchSpec], None] | None = None,
              tasks_per_process: int | None = None) -> int:
    """Train (or finish, or reuse) and evaluate one study; returns its registry search id.

    Args:
        study: the group's models.
        registry: an open :class:`~heatmaploss.registry.Registry`.
        out: the profile's output folders.
        progress: show progress bars.
        launch: runs the search in other processes instead of this one (a Keras Tuner chief
            and workers; see :mod:`heatmaploss.runs.distributed`); they record and evaluate
            their models themselves.
        tasks_per_process: trials (and evaluations) per worker process (None: the default of
            :mod:`heatmaploss.runs.processes`; 0: everything in this process).
    """
    search_id = register(study.spec, registry)
    check_models(registry, out, search_id)
    if len(registry.models(search_id=search_id)) < study.spec.max_trials:
        if launch is not None:
            launch(study.spec)
        else:
            train(study, registry, out, search_id, progress, tasks_per_process)
    evaluate_recorded(study, registry, out, search_id, progress,
                      tasks_per_process=tasks_per_process)
    return search_id


def run_studies(studies: Sequence[Study], registry: Any, out: OutputDirs,
                progress: bool = True,
                launch: Callable[[SearchSpec], None] | None = None,
                tasks_per_process: int | None = None) -> dict[str, int]:
    """:func:`run_study` for each study in order; returns search key → registry search id."""
    return {study.spec.key: run_study(study, registry, out, progress, launch, tasks_per_process)
            for study in studies}


__all__ = ["Evaluation", "Study", "check_models", "evaluate_recorded", "evaluate_saved",
           "recorder", "register", "resume_state", "run_studies", "run_study", "train"]
