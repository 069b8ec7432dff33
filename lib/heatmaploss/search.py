"""Keras Tuner searches over the learning rate, one per experiment × protocol × group.

A search is identified by its *key* (experiment, protocol, group, profile, seed), which names a
fixed Keras Tuner project directory, and described by its *fingerprint* (everything that
determines its models: the group's recipe, data sizes and seeds, trial count). Running a search
whose directory already exists continues it (``overwrite=False``: finished trials are kept, a
trial interrupted mid-way is run again with the same trial id and learning rate); running it with
a different fingerprint raises :class:`SearchMismatchError` instead of silently mixing searches.

Each trial trains one model, keeps its best epoch (``EarlyStopping(restore_best_weights=True)``
with an explicit ``mode``), saves it as ``<results>/models/<key>/trial_<id>.keras`` and records it
in the registry *inside* the trial, keyed by (search key, trial id): a trial re-run after a crash
overwrites its own row, so every model is recorded exactly once.

Several machines can share one search through Keras Tuner's distributed mode (one chief oracle,
workers configured by ``KERASTUNER_TUNER_ID`` / ``KERASTUNER_ORACLE_IP`` /
``KERASTUNER_ORACLE_PORT``): every worker runs :func:`run_search` with the same spec and the same
registry URL; the chief only serves the oracle.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import io as _stdio
import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from . import io, paths
from .protocols import GroupRecipe

logger = logging.getLogger(__name__)

FINGERPRINT_FILE = "heatmaploss_search.json"
#: Score given to the oracle for a trial whose objective is not finite (a collapsed model):
#: the loss of a constant uniform prediction, so the Gaussian process sees a bad, finite value.
CHANCE_LOSS = {"cce": math.log(4.0), "mse": 0.1875}


class SearchMismatchError(RuntimeError):
    """An existing search directory belongs to a search with a different fingerprint."""


def derive_seed(*parts: Any) -> int:
    """A stable, nonzero 31-bit seed from any printable parts (Keras Tuner treats 0 as no seed)."""
    digest = hashlib.sha256(json.dumps([str(p) for p in parts]).encode()).digest()
    return int.from_bytes(digest[:4], "big") % (2**31 - 2) + 1


@dataclass(frozen=True)
class SearchSpec:
    """One learning-rate search of one group.

    Attributes:
        experiment: 1 or 2.
        protocol: protocol name (``thesis``, ``controlled``).
        recipe: the group's :class:`~heatmaploss.protocols.GroupRecipe`.
        profile: profile name.
        seed: base seed of the run.
        max_trials: trials (= models) in the search.
        data: description of the training and validation data (sizes, seeds); part of the
            fingerprint so that a search is never continued on different data.
    """

    experiment: int
    protocol: str
    recipe: GroupRecipe
    profile: str
    seed: int
    max_trials: int
    data: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.experiment not in (1, 2):
            raise ValueError(f"experiment={self.experiment!r}: allowed 1, 2")
        if not isinstance(self.max_trials, int) or self.max_trials < 1:
            raise ValueError(f"max_trials={self.max_trials!r}: must be a positive integer")

    @property
    def group(self) -> str:
        return self.recipe.group

    @property
    def key(self) -> str:
        """Deterministic search name, e.g. ``exp1-controlled-heatmap-quick-seed0``."""
        return (f"exp{self.experiment}-{self.protocol}-{self.group}-{self.profile}"
                f"-seed{self.seed}")

    @property
    def tuner_seed(self) -> int:
        """Nonzero seed of the Bayesian-optimisation oracle."""
        return derive_seed("oracle", self.key)

    def fingerprint(self) -> dict:
        """Everything that determines this search's models, as plain JSON data."""
        return io.to_jsonable({
            "key": self.key, "experiment": self.experiment, "protocol": self.protocol,
            "profile": self.profile, "seed": self.seed, "max_trials": self.max_trials,
            "recipe": self.recipe.as_dict(), "data": self.data,
        })

    def fingerprint_hash(self) -> str:
        text = json.dumps(self.fingerprint(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def project_dir(spec: SearchSpec, results: str | Path) -> Path:
    """The Keras Tuner project directory of a search: ``<results>/tuner/<key>``."""
    return paths.output_dirs(results)["tuner"] / spec.key


def model_path(spec: SearchSpec, results: str | Path, trial_id: str) -> Path:
    """Where a trial's best-epoch model is saved."""
    return paths.output_dirs(results)["models"] / spec.key / f"trial_{trial_id}.keras"


def check_fingerprint(spec: SearchSpec, results: str | Path) -> Path:
    """Refuse to continue a different search in the same directory; write the fingerprint.

    Returns:
        The search's project directory (created).

    Raises:
        SearchMismatchError: the directory holds a search with another fingerprint.
    """
    directory = project_dir(spec, results)
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
    io.write_json(marker, {"fingerprint": mine, "hash": spec.fingerprint_hash()})
    return directory


def _best_epoch(history: dict, objective: str) -> int:
    values = history.get(objective) or []
    finite = [(v, i) for i, v in enumerate(values) if v is not None and math.isfinite(v)]
    return min(finite)[1] if finite else max(len(values) - 1, 0)


def run_search(
    spec: SearchSpec,
    build_model: Callable[[GroupRecipe, float], Any],
    make_data: Callable[[int], tuple[Any, Any]],
    results: str | Path,
    record: Callable[[dict], None],
    save_model: Callable[[Any, Path], None] | None = None,
    progress: bool = True,
    hyperparameters: Callable[[Any], dict] | None = None,
) -> list[str]:
    """Run (or continue) one group's learning-rate search.

    Args:
        spec: the search.
        build_model: ``build_model(recipe, learning_rate)`` → a compiled Keras model.
        make_data: ``make_data(shuffle_seed)`` → ``(train, validation)`` datasets (batched,
            as ``model.fit`` accepts them); called once per trial so that nothing of a trial
            outlives it and a re-run trial sees the same data order.
        results: the profile's results folder (tuner and model folders live there).
        record: called once per finished trial with the model's record (a dict: search key,
            fingerprint hash, trial id, learning rate, seeds, epochs, wall time, validation
            metrics of the best epoch, model path relative to ``results``); it must upsert on
            (search key, trial id).
        save_model: ``save_model(model, path)``; default ``model.save(path)``.
        progress: show a progress bar over trials.
        hyperparameters: optional ``hyperparameters(hp)`` → ``{name: value}`` declaring more
            searched hyperparameters on Keras Tuner's ``hp`` (e.g. the heatmap weight); they
            are passed to ``build_model`` as keyword arguments and recorded under
            ``"hyperparameters"``.

    Returns:
        Trial ids of this search's completed trials.
    """
    import keras
    import keras_tuner as kt
    from tqdm.auto import tqdm

    results = Path(results)
    directory = check_fingerprint(spec, results)
    recipe = spec.recipe
    save = save_model or (lambda model, path: model.save(path))

    class GroupHyperModel(kt.HyperModel):
        """The group's model with the learning rate as the only hyperparameter."""

        def build(self, hp):
            lr = hp.Float("learning_rate", recipe.lr_min, recipe.lr_max, sampling="log")
            extra = hyperparameters(hp) if hyperparameters else {}
            return build_model(recipe, lr, **extra)

    bar = tqdm(total=spec.max_trials, desc=spec.key, unit="trial", disable=not progress,
               leave=False)

    class RecordingTuner(kt.BayesianOptimization):
        """Trains, saves and records each trial's best-epoch model before the trial ends."""

        def run_trial(self, trial, *_, **__):
            try:
                return self._train_and_record(trial)
            except Exception as exc:
                # Keras Tuner would mark the trial failed and go on; a bug or an out-of-memory
                # error must stop the search instead (the trial is re-run on resume).
                raise kt.errors.FatalError(
                    f"search {spec.key} trial {trial.trial_id}: {type(exc).__name__}: {exc}"
                ) from exc

        def _train_and_record(self, trial):
            keras.backend.clear_session()
            gc.collect()
            trial_seed = derive_seed("trial", spec.key, trial.trial_id)
            keras.utils.set_random_seed(trial_seed)
            lr = float(trial.hyperparameters.get("learning_rate"))
            model = self.hypermodel.build(trial.hyperparameters)
            patience = recipe.early_stopping_patience
            callbacks = [
                keras.callbacks.TerminateOnNaN(),
                # patience = epochs never stops early but still restores the best epoch.
                keras.callbacks.EarlyStopping(
                    monitor=recipe.objective, mode="min", restore_best_weights=True,
                    patience=patience if patience is not None else recipe.epochs),
            ]
            train, validation = make_data(derive_seed("shuffle", spec.key, trial.trial_id))
            start = time.perf_counter()
            # The datasets shuffle themselves (seeded per trial).
            history = model.fit(train, validation_data=validation, epochs=recipe.epochs,
                                shuffle=False, verbose=0, callbacks=callbacks).history
            seconds = time.perf_counter() - start
            best = _best_epoch(history, recipe.objective)
            best_metrics = {k: float(v[best]) for k, v in history.items() if len(v) > best}
            target = model_path(spec, results, trial.trial_id)
            target.parent.mkdir(parents=True, exist_ok=True)
            with io.atomic_path(target) as tmp:
                save(model, tmp)
            record({
                "search_key": spec.key, "fingerprint": spec.fingerprint_hash(),
                "experiment": spec.experiment, "protocol": spec.protocol,
                "group": recipe.group, "profile": spec.profile, "trial_id": trial.trial_id,
                "learning_rate": lr, "seed": spec.seed, "trial_seed": trial_seed,
                "hyperparameters": dict(trial.hyperparameters.values),
                "recipe": recipe.as_dict(), "epochs_run": len(history.get("loss", [])),
                "best_epoch": best + 1, "train_seconds": seconds,
                "validation": best_metrics, "history": history,
                "model_path": str(target.relative_to(results)),
            })
            value = best_metrics.get(recipe.objective, float("nan"))
            if not math.isfinite(value):
                logger.warning("search %s trial %s (lr=%.3g) diverged; scored as chance",
                               spec.key, trial.trial_id, lr)
                value = CHANCE_LOSS[recipe.classification]
            del model, train, validation
            keras.backend.clear_session()
            gc.collect()
            return {recipe.objective: value}

        def on_trial_end(self, trial):
            super().on_trial_end(trial)
            status = self.oracle.get_trial(trial.trial_id).status
            if status != "COMPLETED":
                logger.warning("search %s trial %s ended %s: %s", spec.key, trial.trial_id,
                               status, (trial.message or "").strip().splitlines()[-1:])
            bar.update(1)

    # Keras Tuner prints "Reloading Tuner from ..." on stdout; send it to the log instead.
    captured = _stdio.StringIO()
    with contextlib.redirect_stdout(captured):
        tuner = RecordingTuner(
            hypermodel=GroupHyperModel(),
            objective=kt.Objective(recipe.objective, direction="min"),
            max_trials=spec.max_trials, seed=spec.tuner_seed,
            directory=str(directory.parent), project_name=directory.name, overwrite=False,
            max_consecutive_failed_trials=3,
        )
    if captured.getvalue().strip():
        logger.info(captured.getvalue().strip())
    # A worker of a distributed search holds a client of the chief's oracle, which has no
    # local trial list: its progress starts at zero.
    trials = getattr(tuner.oracle, "trials", None) or {}
    bar.update(sum(t.status == "COMPLETED" for t in trials.values()))
    try:
        tuner.search(verbose=0)
    finally:
        bar.close()
        keras.backend.clear_session()
    trials = getattr(tuner.oracle, "trials", None) or {}
    return sorted(t.trial_id for t in trials.values() if t.status == "COMPLETED")


__all__ = ["CHANCE_LOSS", "SearchMismatchError", "SearchSpec", "check_fingerprint",
           "derive_seed", "model_path", "project_dir", "run_search"]
