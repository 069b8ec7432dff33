"""Run profiles: the single source of sizes, epochs and trial counts.

* ``smoke``  — seconds to minutes; CI runs it on every submission (checks the plumbing).
* ``quick``  — a 2-core laptop in minutes; still shows the thesis's effects with statistics.
* ``thesis`` — the thesis's full scale on one GPU.

Each chapter reads its own section of the profile; nothing else in the project hard-codes a
size.
"""

from __future__ import annotations

from dataclasses import dataclass

PROFILE_NAMES = ("smoke", "quick", "thesis")


@dataclass(frozen=True)
class DataSizes:
    """Synthetic-MRI dataset sizes, in images per class (4 balanced classes).

    Attributes:
        n_train_per_class: training images per class.
        n_val_per_class: validation images per class.
        n_test_per_class: test images per class.
        n_calibration_per_class: images per class used by the data chapter to compare pixel
            fractions with the thesis's published values.
        chunk_size: images generated per chunk when streaming large sets.
    """

    n_train_per_class: int
    n_val_per_class: int
    n_test_per_class: int
    n_calibration_per_class: int
    chunk_size: int = 1000

    def __post_init__(self) -> None:
        for name in ("n_train_per_class", "n_val_per_class", "n_test_per_class",
                     "n_calibration_per_class", "chunk_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r}: must be a positive integer")


@dataclass(frozen=True)
class Profile:
    """All settings of one run profile.

    Attributes:
        name: ``smoke``, ``quick`` or ``thesis``.
        data: synthetic dataset sizes.
        description: one line for ``run_all.py --list``.
    """

    name: str
    data: DataSizes
    description: str = ""


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        description="plumbing check for CI: tiny data, one epoch, a couple of trials",
        data=DataSizes(n_train_per_class=16, n_val_per_class=8, n_test_per_class=16,
                       n_calibration_per_class=64, chunk_size=32),
    ),
    "quick": Profile(
        name="quick",
        description="2-core laptop, minutes: small CNN, still shows the effects with statistics",
        data=DataSizes(n_train_per_class=500, n_val_per_class=150, n_test_per_class=500,
                       n_calibration_per_class=2500, chunk_size=500),
    ),
    "thesis": Profile(
        name="thesis",
        description="the thesis's full scale (VGG16, 10,000/3,000/10,000 images); one GPU",
        data=DataSizes(n_train_per_class=2500, n_val_per_class=750, n_test_per_class=2500,
                       n_calibration_per_class=2500, chunk_size=1000),
    ),
}


def get_profile(name: str) -> Profile:
    """Return the profile called ``name``.

    Raises:
        ValueError: if ``name`` is not one of ``smoke``, ``quick``, ``thesis``.
    """
    try:
        return PROFILES[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown profile {name!r}; allowed: {', '.join(PROFILE_NAMES)}"
        ) from None


__all__ = ["PROFILE_NAMES", "PROFILES", "DataSizes", "Profile", "get_profile"]
