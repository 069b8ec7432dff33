"""What a group of models is: its search (or replicates), trial settings and fingerprint.

:class:`SearchSpec` is small, frozen and TensorFlow-free, so a chapter's plan (what is
trained) builds its searches without importing TensorFlow; :mod:`heatmaploss.runs.search` runs
them. See ``docs/design.md`` § The study runner.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

from ..project import files

#: Hyperparameter that numbers the replicates of a replicate study.
REPLICATE = "replicate"
_KEY = re.compile(r"^[A-Za-z0-9_.+-]+$")


def derive_seed(*parts: Any) -> int:
    """A stable, nonzero 31-bit seed from any printable parts (Keras Tuner treats 0 as no seed)."""
    digest = hashlib.sha256(json.dumps([str(p) for p in parts]).encode()).digest()
    return int.from_bytes(digest[:4], "big") % (2**31 - 2) + 1


@dataclass(frozen=True)
class Hyperparameter:
    """One searched hyperparameter (a float range).

    Attributes:
        name: Keras Tuner name, passed to the model builder as a keyword argument.
        low: lower end of the range.
        high: upper end of the range.
        sampling: ``log`` or ``linear``.
    """

    name: str
    low: float
    high: float
    sampling: str = "log"

    def __post_init__(self) -> None:
        if not 0 < self.low < self.high:
            raise ValueError(f"{self.name} range ({self.low}, {self.high}): need 0 < low < high")
        if self.sampling not in ("log", "linear"):
            raise ValueError(f"sampling={self.sampling!r}: allowed log, linear")


@dataclass(frozen=True)
class TrialSettings:
    """How one trial trains and which epoch it keeps.

    Attributes:
        epochs: maximum epochs per trial.
        objective: validation metric (a Keras log name) the search minimises.
        early_stopping_patience: epochs without improvement before a trial stops; ``None``
            trains every epoch.
        keep_best_epoch: keep the epoch with the best objective (else the last one).
        chance_objective: the objective given to the oracle for a trial that diverged (a
            non-finite objective), e.g. the loss of a constant uniform prediction.
    """

    epochs: int
    objective: str
    early_stopping_patience: int | None = None
    keep_best_epoch: bool = True
    chance_objective: float = math.log(4.0)

    def __post_init__(self) -> None:
        if not isinstance(self.epochs, int) or self.epochs < 1:
            raise ValueError(f"epochs={self.epochs!r}: must be a positive integer")
        if not math.isfinite(self.chance_objective):
            raise ValueError(f"chance_objective={self.chance_objective!r}: must be finite")


@dataclass(frozen=True)
class SearchSpec:
    """One group's models: a search or a set of replicates, and where it is recorded.

    Attributes:
        key: unique name; names the tuner project and the models' folder (letters, digits,
            ``_ . + -``).
        experiment: registry experiment (``exp1``, ``decoy``, ``acdc_classifier`` ...).
        protocol: registry protocol (``controlled``, ``thesis`` ...).
        group: registry group (``cce``, ``heatmap``, a shortcut-chapter group ...).
        profile: profile name.
        seed: base seed of the run.
        max_trials: trials (= models).
        training: how each trial trains.
        space: hyperparameters searched by Bayesian optimisation.
        fixed: hyperparameters held at one value (every trial).
        replicates: trials are independent seeds at ``fixed`` (no ``space``).
        config: what defines the group's models (loss, model, protocol) — recorded in the
            registry and part of the fingerprint.
        data: description of the training and validation data — part of the fingerprint, so
            that a search is never continued on other data.
    """

    key: str
    experiment: str
    protocol: str
    group: str
    profile: str
    seed: int
    max_trials: int
    training: TrialSettings
    space: tuple[Hyperparameter, ...] = ()
    fixed: Mapping[str, float] = field(default_factory=dict)
    replicates: bool = False
    config: Mapping[str, Any] = field(default_factory=dict)
    data: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _KEY.match(self.key):
            raise ValueError(f"search key {self.key!r}: use letters, digits and _ . + -")
        if not isinstance(self.max_trials, int) or self.max_trials < 1:
            raise ValueError(f"max_trials={self.max_trials!r}: must be a positive integer")
        if self.replicates and self.space:
            raise ValueError(f"search {self.key}: replicates hold every hyperparameter fixed; "
                             f"got a searched space {[h.name for h in self.space]}")
        if not self.replicates and not self.space:
            raise ValueError(f"search {self.key}: a search needs a hyperparameter space")

    @property
    def tuner_seed(self) -> int:
        """Nonzero seed of the oracle."""
        return derive_seed("oracle", self.key)

    def trial_seed(self, trial_id: str, values: Mapping[str, Any]) -> int:
        """Seed of one trial's weights (a replicate's seed depends on its index only)."""
        if self.replicates:
            return derive_seed("replicate", self.key, int(values[REPLICATE]))
        return derive_seed("trial", self.key, trial_id)

    def shuffle_seed(self, trial_id: str, values: Mapping[str, Any]) -> int:
        """Seed of one trial's data order."""
        if self.replicates:
            return derive_seed("shuffle", self.key, "replicate", int(values[REPLICATE]))
        return derive_seed("shuffle", self.key, trial_id)

    def space_record(self) -> dict:
        """The searched and fixed hyperparameters, as recorded in the registry."""
        out: dict[str, Any] = {h.name: [h.low, h.high, h.sampling] for h in self.space}
        out.update({name: value for name, value in self.fixed.items()})
        if self.replicates:
            out[REPLICATE] = [0, self.max_trials - 1, "grid"]
        return out

    def fingerprint(self) -> dict:
        """Everything that determines this search's models, as plain JSON data."""
        return files.to_jsonable({
            "key": self.key, "experiment": self.experiment, "protocol": self.protocol,
            "group": self.group, "profile": self.profile, "seed": self.seed,
            "max_trials": self.max_trials, "training": asdict(self.training),
            "space": self.space_record(), "config": dict(self.config), "data": dict(self.data),
        })

    def fingerprint_hash(self) -> str:
        text = json.dumps(self.fingerprint(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


__all__ = ["REPLICATE", "Hyperparameter", "SearchSpec", "TrialSettings", "derive_seed"]
