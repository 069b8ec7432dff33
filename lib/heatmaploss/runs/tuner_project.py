"""Keras Tuner project folders that survive kills and damage: atomic files, checks, healing.

Keras Tuner writes its files — ``oracle.json``, ``trial_<id>/trial.json``, ``<tuner id>.json``
— in place, so a run killed while writing one leaves it truncated, and every later resume stops
with a JSON error. Its grid-search oracle also forgets the order of its trials when it is
reloaded, so a replicate study that was interrupted could not be continued (``KeyError`` in
``populate_space``, Keras Tuner 1.4.8). Here:

* the oracles write their files atomically and the grid oracle rebuilds its order on reload
  (:class:`BayesianOracle`, :class:`GridOracle`);
* :func:`check_project` reads every file of a project before a search reopens it; a file that
  cannot be read is moved aside with a warning naming it;
* :func:`heal` restores what was lost once the tuner is open: a trial whose file was damaged is
  created again under its id — with the hyperparameters the registry recorded for it, else (it
  had not finished) with new ones — and run again; an oracle whose file was damaged is rebuilt
  from the trial files; trials whose saved model was damaged, and trials left running by a
  killed run, are queued to run again.

See ``docs/design.md`` § The study runner.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from functools import cmp_to_key
from pathlib import Path
from typing import Any, Collection, Mapping

import keras_tuner as kt
from keras_tuner.src.engine import metrics_tracking
from keras_tuner.src.engine.trial import Trial, TrialStatus
from keras_tuner.src.tuners.gridsearch import LinkedList

from ..project import files

logger = logging.getLogger(__name__)

ORACLE_FILE = "oracle.json"
TRIAL_FILE = "trial.json"
_ENDED = (TrialStatus.COMPLETED, TrialStatus.FAILED, TrialStatus.INVALID)


class _AtomicFiles:
    """Oracle mixin: the oracle's and the trials' files are written atomically."""

    def _save_trial(self, trial: Trial) -> None:
        path = Path(self._get_trial_dir(trial.trial_id)) / TRIAL_FILE
        files.write_text(path, json.dumps(trial.get_state()))

    def save(self) -> None:
        files.write_text(self._get_oracle_fname(), json.dumps(self.get_state()))


class BayesianOracle(_AtomicFiles, kt.oracles.BayesianOptimizationOracle):
    """Keras Tuner's Bayesian optimisation oracle, writing its files atomically."""


class GridOracle(_AtomicFiles, kt.oracles.GridSearchOracle):
    """Keras Tuner's grid oracle, writing its files atomically and keeping its order on reload."""

    def set_state(self, state: dict) -> None:
        super().set_state(state)
        self.rebuild_order()

    def rebuild_order(self) -> None:
        """Rebuild the grid order of the known trials (Keras Tuner keeps it in memory only)."""
        ids = sorted(self.trials, key=cmp_to_key(
            lambda a, b: self._compare(self.trials[a].hyperparameters.values,
                                       self.trials[b].hyperparameters.values)))
        self._ordered_ids = LinkedList()
        for trial_id in ids:
            self._ordered_ids.insert(trial_id)
        self._populate_next = [t for t in ids if self.trials[t].status in _ENDED]

    def unused_values(self) -> dict | None:
        """The first grid point no trial holds (None when the grid is used up)."""
        hps = self.get_space()
        values = {hp.name: hp.default for hp in hps.space if hps.is_active(hp)}
        while values is not None:
            if self._compute_values_hash(values) not in self._tried_so_far:
                return values
            values = self._get_next_combination(values)
        return None


@dataclass
class Damage:
    """What :func:`check_project` found and moved aside.

    Attributes:
        trials: ids of trials whose ``trial.json`` could not be read.
        oracle: the oracle's state is lost (its file damaged or missing) and must be rebuilt
            from the trial files.
    """

    trials: list[str] = field(default_factory=list)
    oracle: bool = False


def _readable_json(path: Path) -> str | None:
    """Why a JSON state file cannot be used, or None."""
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return f"unreadable: {type(exc).__name__}: {exc}"
    return None if isinstance(state, dict) else "not a JSON object"


def check_project(directory: Path, tuner_id: str) -> Damage:
    """Check every Keras Tuner file of a project before it is reopened.

    Unreadable files are moved aside with a warning naming them. A damaged tuner file is
    written again (its state is empty); a damaged or missing oracle file makes the tuner start
    a fresh oracle, which :func:`heal` fills from the trial files.

    Args:
        directory: the project folder (need not exist).
        tuner_id: this process's tuner id (its state file is ``<tuner_id>.json``).

    Returns:
        What was damaged.
    """
    damage = Damage()
    if not directory.is_dir():
        return damage
    for path in sorted(directory.glob(f"trial_*/{TRIAL_FILE}")):
        reason = _readable_json(path)
        if reason is None:
            try:
                Trial.load(str(path))
                continue
            except Exception as exc:  # a JSON object that is not a trial
                reason = f"not a Keras Tuner trial: {type(exc).__name__}: {exc}"
        files.set_aside(path, reason)
        damage.trials.append(path.parent.name.removeprefix("trial_"))
    oracle, tuner = directory / ORACLE_FILE, directory / f"{tuner_id}.json"
    if oracle.exists():
        reason = _readable_json(oracle)
        if reason is not None:
            files.set_aside(oracle, reason)
        elif damage.trials:
            _drop_ongoing(oracle, damage.trials)
    reason = _readable_json(tuner) if tuner.exists() else None
    if reason is not None:
        files.set_aside(tuner, reason)
        if oracle.exists():
            files.write_text(tuner, "{}")  # a tuner's own state is empty; the oracle reloads
    if not oracle.exists() and (tuner.exists() or any(directory.glob("trial_*"))):
        # Without its oracle file the project cannot be reloaded: open a fresh oracle and
        # rebuild its state from the trial files (heal).
        tuner.unlink(missing_ok=True)
        damage.oracle = True
        logger.warning("search project %s: the oracle's state is lost; rebuilding it from the "
                       "trial files", directory)
    return damage


def _drop_ongoing(oracle_file: Path, trial_ids: list[str]) -> None:
    """Take lost trials out of the oracle file's running trials (reloading would fail on them)."""
    state = json.loads(oracle_file.read_text(encoding="utf-8"))
    ongoing = state.get("ongoing_trials") or {}
    kept = {tuner: trial for tuner, trial in ongoing.items() if trial not in trial_ids}
    if kept != ongoing:
        state["ongoing_trials"] = kept
        files.write_text(oracle_file, json.dumps(state))


def heal(oracle: Any, directory: Path, damage: Damage, recorded: Mapping[str, Mapping] = {},
         redo: Collection[str] = ()) -> list[str]:
    """Restore a project's oracle after :func:`check_project`; queue trials to run again.

    Args:
        oracle: the open tuner's oracle (a local one, not a worker's client).
        directory: the project folder.
        damage: what :func:`check_project` moved aside.
        recorded: trial id → hyperparameter values of trials recorded in the registry.
        redo: ids of trials to run again (e.g. their saved model was damaged).

    Returns:
        The ids of the trials queued to run again.
    """
    if damage.oracle:
        _rebuild(oracle, directory)
    for trial_id in damage.trials:
        values = recorded.get(trial_id)
        if values is None:
            values = _new_values(oracle, trial_id)
        hyperparameters = oracle.get_space()
        hyperparameters.values = dict(values)
        _forget_values(oracle, trial_id)
        oracle.trials[trial_id] = Trial(hyperparameters, trial_id=trial_id,
                                        status=TrialStatus.RUNNING)
        oracle._record_values(oracle.trials[trial_id])
        if trial_id not in oracle.start_order:
            oracle.start_order.append(trial_id)
    queued = []
    ongoing = {t.trial_id for t in oracle.ongoing_trials.values()}
    for trial_id, trial in sorted(oracle.trials.items()):
        rerun = trial_id in redo or trial_id in damage.trials
        # A killed run can leave a trial running that no queue holds (its trial file was
        # written, the oracle's was not): it would never run again.
        stranded = (trial.status not in _ENDED and trial_id not in oracle._retry_queue
                    and trial_id not in ongoing)
        if not (rerun or stranded):
            continue
        if rerun and trial.status in _ENDED:
            trial.metrics = metrics_tracking.MetricsTracker()
            trial.score, trial.best_step = None, 0
        trial.status = TrialStatus.RUNNING
        if trial_id in oracle.end_order:
            oracle.end_order.remove(trial_id)
        if trial_id not in oracle._retry_queue:
            oracle._retry_queue.append(trial_id)
        oracle._save_trial(trial)
        queued.append(trial_id)
    if isinstance(oracle, GridOracle):
        oracle.rebuild_order()
    if damage.oracle or damage.trials or queued:
        oracle.save()
    return queued


def _rebuild(oracle: Any, directory: Path) -> None:
    """Fill a fresh oracle with the trials found in ``directory``."""
    trials = [Trial.load(str(p)) for p in directory.glob(f"trial_*/{TRIAL_FILE}")]
    for trial in sorted(trials, key=lambda t: (len(t.trial_id), t.trial_id)):
        oracle.trials[trial.trial_id] = trial
        oracle.start_order.append(trial.trial_id)
        oracle._record_values(trial)
        if trial.status in _ENDED:
            oracle.end_order.append(trial.trial_id)
            oracle._run_times[trial.trial_id] = 1
    # New draws must not repeat the lost oracle's early ones.
    if getattr(oracle, "_seed_state", None) is not None:
        oracle._seed_state += len(oracle.trials)


def _forget_values(oracle: Any, trial_id: str) -> None:
    old = oracle._id_to_hash.get(trial_id)
    others = {h for t, h in oracle._id_to_hash.items() if t != trial_id}
    if old is not None and old not in others:
        oracle._tried_so_far.discard(old)


def _new_values(oracle: Any, trial_id: str) -> dict:
    """Hyperparameters for a lost trial that had not finished (nothing of it was recorded)."""
    _forget_values(oracle, trial_id)
    oracle._id_to_hash.pop(trial_id, None)
    oracle.trials.pop(trial_id, None)
    values = oracle.unused_values() if isinstance(oracle, GridOracle) else oracle._random_values()
    if values is None:
        hps = oracle.get_space()
        values = {hp.name: hp.default for hp in hps.space if hps.is_active(hp)}
    return values


__all__ = ["BayesianOracle", "Damage", "GridOracle", "ORACLE_FILE", "TRIAL_FILE",
           "check_project", "heal"]
