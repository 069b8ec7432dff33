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
exactly once. See ``docs/design.md`` § The study runner.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd

from ..project.paths import OutputDirs
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
            model_path=rec["model_path"], scores=val)

    return record


def train(study: Study, registry: Any, out: OutputDirs, search_id: int,
          progress: bool = True) -> None:
    """Run (or continue) a study's search in this process; every trial records itself."""
    from .search import run_search

    run_search(study.spec, study.build_model, study.make_data, out,
               record=recorder(registry, search_id, study.spec), save_model=study.save_model,
               progress=progress)


def evaluate_recorded(study: Study, registry: Any, out: OutputDirs, search_id: int,
                      progress: bool = True, only_available: bool = False) -> int:
    """Evaluate every recorded model of the study that has no test results yet.

    Args:
        only_available: skip models whose file is not under ``out`` (a worker of a
            distributed search evaluates the models it trained itself).

    Returns:
        The number of models evaluated now.
    """
    import keras
    from tqdm.auto import tqdm

    from ..models import load_model

    if study.evaluate is None:
        return 0
    frame = registry.models(search_id=search_id)
    todo = [row for row in frame.itertuples() if pd.isna(row.test_accuracy)
            and (not only_available or (out.root / row.model_path).exists())]
    for row in tqdm(todo, desc=f"evaluate {study.label or study.spec.key}", unit="model",
                    disable=not progress or not todo, leave=False):
        keras.backend.clear_session()
        model = load_model(out.root / row.model_path)
        result = study.evaluate(model)
        # Metrics and test accuracy in one transaction: a model is evaluated or it is not.
        registry.record_model(search_id, row.trial, test_accuracy=result.test_accuracy,
                              metrics=result.rows)
        del model
    keras.backend.clear_session()
    return len(todo)


def run_study(study: Study, registry: Any, out: OutputDirs, progress: bool = True,
              launch: Callable[[SearchSpec], None] | None = None) -> int:
    """Train (or finish, or reuse) and evaluate one study; returns its registry search id.

    Args:
        study: the group's models.
        registry: an open :class:`~heatmaploss.registry.Registry`.
        out: the profile's output folders.
        progress: show progress bars.
        launch: runs the search in other processes instead of this one (a Keras Tuner chief
            and workers; see :mod:`heatmaploss.runs.distributed`); they record and evaluate
            their models themselves.
    """
    search_id = register(study.spec, registry)
    if len(registry.models(search_id=search_id)) < study.spec.max_trials:
        if launch is not None:
            launch(study.spec)
        else:
            train(study, registry, out, search_id, progress)
    evaluate_recorded(study, registry, out, search_id, progress)
    return search_id


def run_studies(studies: Sequence[Study], registry: Any, out: OutputDirs,
                progress: bool = True,
                launch: Callable[[SearchSpec], None] | None = None) -> dict[str, int]:
    """:func:`run_study` for each study in order; returns search key → registry search id."""
    return {study.spec.key: run_study(study, registry, out, progress, launch)
            for study in studies}


__all__ = ["Evaluation", "Study", "evaluate_recorded", "recorder", "register", "run_studies",
           "run_study", "train"]
