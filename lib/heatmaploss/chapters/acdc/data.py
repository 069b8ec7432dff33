"""The ACDC chapter's arrays: preprocessed volumes per (patient, phase), the same volumes as
one ED + ES pair per patient (what the classifiers see), their augmentation, and the encoder's
grid (masks and maps moved between the input box and the deepest level).

TensorFlow-free; :mod:`.run` feeds these arrays to the networks (:mod:`.networks`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...acdc import GROUPS, PHASES, AcdcPatient
from ...acdc.preprocess import Augmentation, augment_pair, preprocess_pair
from ...names import ACDC_TASKS, check


@dataclass
class AcdcArrays:
    """Preprocessed volumes, one row per (patient, phase).

    Attributes:
        images: (N, X, Y, Z, 1) float32, z-scored.
        labels: (N, X, Y, Z) uint8, or None when the split has no masks.
        numbers: patient ids.
        groups: diagnosis per row (None without a group).
        phases: "ED"/"ES" per row.
    """

    images: np.ndarray
    labels: np.ndarray | None
    numbers: np.ndarray
    groups: np.ndarray
    phases: np.ndarray

    def subset(self, keep: np.ndarray) -> "AcdcArrays":
        """Rows where ``keep`` is true."""
        return AcdcArrays(self.images[keep], None if self.labels is None else self.labels[keep],
                          self.numbers[keep], self.groups[keep], self.phases[keep])

    @property
    def validation(self) -> np.ndarray:
        """Rows of validation patients (id % 5 == 0)."""
        return self.numbers % 5 == 0

    @property
    def diseased(self) -> np.ndarray:
        """Binary class per row: 0 normal (NOR), 1 diseased (the four other groups)."""
        return np.array([g != "NOR" for g in self.groups], dtype=np.int64)


def prepare_arrays(patients: list[AcdcPatient], target_spacing, box,
                   progress: bool = False) -> AcdcArrays:
    """Read, z-score, resample and crop the ED and ES volumes (and masks) of ``patients``.

    Returns:
        The stacked arrays; labels are included when every patient has them.
    """
    from tqdm.auto import tqdm

    with_labels = all(p.has_labels for p in patients)
    images, labels, numbers, groups, phases = [], [], [], [], []
    for p in tqdm(patients, desc="preprocess", unit="patient", disable=not progress):
        for phase in PHASES:
            img, lab = preprocess_pair(p.image(phase), p.label(phase) if with_labels else None,
                                       p.spacing, target_spacing, box)
            images.append(img[..., None])
            labels.append(lab)
            numbers.append(p.number)
            groups.append(p.group)
            phases.append(phase)
    return AcdcArrays(np.stack(images), np.stack(labels) if with_labels else None,
                      np.array(numbers), np.array(groups, dtype=object), np.array(phases))


def augmented(arrays: AcdcArrays, seed: int, settings: Augmentation = Augmentation()):
    """One augmented copy of ``arrays.images``/``labels`` (row i drawn with seed (seed, i))."""
    images = np.empty_like(arrays.images)
    labels = None if arrays.labels is None else np.empty_like(arrays.labels)
    for i in range(len(arrays.images)):
        img, lab = augment_pair(arrays.images[i], None if labels is None else arrays.labels[i],
                                seed=[seed, i], settings=settings)
        images[i] = img
        if labels is not None:
            labels[i] = lab
    return images, labels


def task_classes(task: str) -> tuple[str, ...]:
    """Class names of a classification task: ``binary`` → normal, diseased; ``groups`` → the
    five diagnostic groups in :data:`~heatmaploss.acdc.GROUPS` order."""
    return ("normal", "diseased") if check("task", task, ACDC_TASKS) == "binary" else GROUPS


@dataclass
class PatientPairs:
    """One sample per patient: its ED and ES volumes side by side.

    A diagnosis needs both phases (an ejection fraction is a change between them; a single
    volume of unknown phase is ambiguous: a normal heart at end-systole looks like a
    hypertrophic one at end-diastole), so the classifiers see both.

    Attributes:
        images: (N, 2, X, Y, Z, 1) float32, ED first.
        labels: (N, 2, X, Y, Z) uint8, or None when the split has no masks.
        numbers: patient ids.
        groups: diagnosis per patient (None without a group).
    """

    images: np.ndarray
    labels: np.ndarray | None
    numbers: np.ndarray
    groups: np.ndarray

    def targets(self, task: str) -> np.ndarray:
        """Class index per patient: ``binary`` 0 normal / 1 diseased; ``groups`` the index in
        :func:`task_classes`."""
        classes = task_classes(task)
        if task == "binary":
            return np.array([g != "NOR" for g in self.groups], dtype=np.int64)
        return np.array([classes.index(g) for g in self.groups], dtype=np.int64)

    def subset(self, keep: np.ndarray) -> "PatientPairs":
        """Patients where ``keep`` is true."""
        return PatientPairs(self.images[keep],
                            None if self.labels is None else self.labels[keep],
                            self.numbers[keep], self.groups[keep])


def pair_phases(arrays: AcdcArrays) -> PatientPairs:
    """Stack each patient's ED and ES rows of ``arrays`` into one :class:`PatientPairs` sample.

    Raises:
        ValueError: when a patient lacks its ED or ES row.
    """
    numbers = np.unique(arrays.numbers)
    rows = []
    for number in numbers:
        index = [np.flatnonzero((arrays.numbers == number) & (arrays.phases == phase))
                 for phase in PHASES]
        if any(len(i) != 1 for i in index):
            raise ValueError(f"patient {int(number)}: needs exactly one ED and one ES volume")
        rows.append([int(i[0]) for i in index])
    rows = np.array(rows, dtype=np.int64).reshape(-1, 2)
    return PatientPairs(arrays.images[rows], None if arrays.labels is None else arrays.labels[rows],
                        numbers, arrays.groups[rows[:, 0]])


def augmented_pairs(pairs: PatientPairs, seed: int, settings: Augmentation = Augmentation()):
    """One augmented copy of every pair: both phases of a patient get the same draw (the same
    rotation, flip, shift and deformation: the heart does not move between ED and ES).

    Returns:
        ``(images, labels)`` shaped like ``pairs.images`` and ``pairs.labels``.
    """
    images = np.empty_like(pairs.images)
    labels = None if pairs.labels is None else np.empty_like(pairs.labels)
    for i, number in enumerate(pairs.numbers):
        for phase in range(2):
            img, lab = augment_pair(pairs.images[i, phase],
                                    None if labels is None else pairs.labels[i, phase],
                                    seed=[seed, int(number)], settings=settings)
            images[i, phase] = img
            if labels is not None:
                labels[i, phase] = lab
    return images, labels


def heart_on_grid(labels: np.ndarray, levels: int) -> np.ndarray:
    """Share of each deepest-level cell inside the heart at ED or ES, (N, 2, X, Y, Z) →
    (N, x, y, z): the region a pair's map (ED and ES features side by side) may use."""
    return mask_to_grid(np.any(np.asarray(labels) > 0, axis=1), levels)


def pooling_factors(levels: int) -> list[tuple[int, int, int]]:
    """Pool sizes between the ``levels`` resolution levels: (2, 2, 1) …, (2, 2, 2) last."""
    if levels < 1:
        raise ValueError(f"levels={levels}: must be at least 1")
    return [(2, 2, 1)] * (levels - 2) + [(2, 2, 2)] if levels >= 2 else []


def padded_shape(box, levels: int) -> tuple[int, int, int]:
    """The input box rounded up to multiples of the total pooling per axis."""
    total = np.prod(np.array(pooling_factors(levels) or [(1, 1, 1)]), axis=0)
    return tuple(int(-(-b // t) * t) for b, t in zip(box, total))


def feature_grid(box, levels: int) -> tuple[int, int, int]:
    """Shape (x, y, z) of the deepest feature map for an input ``box``."""
    total = np.prod(np.array(pooling_factors(levels) or [(1, 1, 1)]), axis=0)
    return tuple(int(p // t) for p, t in zip(padded_shape(box, levels), total))


def mask_to_grid(mask: np.ndarray, levels: int) -> np.ndarray:
    """Fraction of each deepest-level cell covered by ``mask`` (batch, X, Y, Z) → (batch, x, y, z).

    The mask is zero-padded like the network input and block-averaged over the pooling
    factors, so cell (i, j, k) holds the share of its input voxels inside the mask.
    """
    mask = np.asarray(mask, np.float32)
    box = mask.shape[1:4]
    target = padded_shape(box, levels)
    pad = [(0, 0)] + [((t - b) // 2, t - b - (t - b) // 2) for b, t in zip(box, target)]
    mask = np.pad(mask, pad)
    grid = feature_grid(box, levels)
    f = [t // g for t, g in zip(target, grid)]
    return mask.reshape(mask.shape[0], grid[0], f[0], grid[1], f[1], grid[2], f[2]).mean(axis=(2, 4, 6))


def grid_to_box(maps: np.ndarray, box, levels: int) -> np.ndarray:
    """Deepest-level maps (batch, x, y, z) back on the input box: each cell's value is
    repeated over the voxels it pools (nearest), then the network's padding is cut off."""
    maps = np.asarray(maps)
    target = padded_shape(box, levels)
    for axis, (t, g) in enumerate(zip(target, maps.shape[1:]), start=1):
        maps = np.repeat(maps, t // g, axis=axis)
    start = [(t - b) // 2 for b, t in zip(box, target)]
    return maps[:, start[0]:start[0] + box[0], start[1]:start[1] + box[1], start[2]:start[2] + box[2]]


__all__ = ["AcdcArrays", "PatientPairs", "augmented", "augmented_pairs", "feature_grid",
           "grid_to_box", "heart_on_grid", "mask_to_grid", "padded_shape", "pair_phases",
           "pooling_factors", "prepare_arrays", "task_classes"]
