"""Data plans: which synthetic sets a group of models trains, validates and is tested on.

A :class:`DataPlan` names the thesis experiment whose data are drawn, the size and seed of each
split, and the generator options shared by all splits (the decoy marker, the difficulty). It is
small, frozen and JSON-able (part of every search's fingerprint), and says how to generate each
split, so that no chapter passes nested dicts of sizes around.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Iterator

from .generator import DECOY_SETS, EXPERIMENTS, SyntheticMRIs, generate, iter_batches

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class DataSplit:
    """One split: ``n_per_class`` images per class drawn with ``seed``."""

    n_per_class: int
    seed: int

    def __post_init__(self) -> None:
        if not isinstance(self.n_per_class, int) or self.n_per_class < 1:
            raise ValueError(f"n_per_class={self.n_per_class!r}: must be a positive integer")


@dataclass(frozen=True)
class DataPlan:
    """Training, validation and test sets of one group of models.

    Attributes:
        experiment: the thesis experiment whose synthetic data are drawn (1 or 2).
        train, val, test: the splits.
        chunk_size: images generated at once when the test set is streamed.
        decoy: ρ of the class-coded decoy marker (``None``: no marker).
        difficulty: generator difficulty (0 = the thesis's class differences).
    """

    experiment: int
    train: DataSplit
    val: DataSplit
    test: DataSplit
    chunk_size: int = 1000
    decoy: float | None = None
    difficulty: float = 0.0

    def __post_init__(self) -> None:
        if self.experiment not in EXPERIMENTS:
            raise ValueError(f"experiment={self.experiment!r}: allowed 1, 2")

    def split(self, name: str) -> DataSplit:
        """The split called ``train``, ``val`` or ``test``."""
        if name not in SPLITS:
            raise ValueError(f"split={name!r}: allowed {', '.join(SPLITS)}")
        return getattr(self, name)

    def options(self, decoy_set: str | None = None) -> dict[str, Any]:
        """Generator options of the splits (``decoy_set``: the marker of a test set)."""
        options: dict[str, Any] = {}
        if self.difficulty:
            options["difficulty"] = self.difficulty
        if self.decoy is not None:
            options["decoy"] = self.decoy
            if decoy_set is not None:
                if decoy_set not in DECOY_SETS:
                    raise ValueError(f"decoy_set={decoy_set!r}: allowed {', '.join(DECOY_SETS)}")
                options["decoy_set"] = decoy_set
        elif decoy_set is not None:
            raise ValueError(f"decoy_set={decoy_set!r} needs a plan with a decoy marker")
        return options

    def generate(self, name: str, decoy_set: str | None = None) -> SyntheticMRIs:
        """The whole split ``name`` (``train``, ``val``, ``test``) in memory."""
        split = self.split(name)
        return generate(self.experiment, split.n_per_class, split.seed, **self.options(decoy_set))

    def iter_test(self, decoy_set: str | None = None) -> Iterator[SyntheticMRIs]:
        """The test set in chunks of ``chunk_size`` images."""
        return iter_batches(self.experiment, self.test.n_per_class, self.test.seed,
                            chunk_size=self.chunk_size, **self.options(decoy_set))

    def as_dict(self) -> dict[str, Any]:
        """Plain-dict form (search fingerprints)."""
        return asdict(self)


__all__ = ["DataPlan", "DataSplit", "SPLITS"]
