"""Run profiles: the single source of sizes, epochs and trial counts.

* ``smoke``  — seconds to minutes; CI runs it on every submission (checks the plumbing).
* ``quick``  — a 2-core laptop in minutes; still shows the thesis's effects with statistics.
* ``thesis`` — the thesis's full scale on one GPU.
* ``thesis-tiny`` — the ``thesis`` profile with every size shrunk to a toy (:func:`tiny`): the
  same backbone, protocols, groups, conditions, searches and statistics, a handful of images,
  one epoch, two trials and two seeds, and VGG16 with random weights. It proves on a CPU, in
  minutes, that the thesis profile runs to the end (``run_all.py --profile thesis --tiny``); its
  numbers mean nothing.

Each chapter reads its own section of the profile; nothing else in the project hard-codes a
size.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..names import ACDC_TASKS

PROFILE_NAMES = ("smoke", "quick", "thesis", "thesis-tiny")
#: Suffix of a profile shrunk by :func:`tiny`.
TINY_SUFFIX = "-tiny"


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
class AcdcSettings:
    """ACDC chapter sizes (3-D U-Net and encoder classifier).

    Attributes:
        fixture_preset: synthetic ACDC-format fixture written when no real data is given
            (``small`` or ``full``).
        target_spacing: resampling voxel size (x, y, z) in mm.
        box: centre crop/pad shape (x, y, z) after resampling.
        unet_base_filters: filters of the first conv (32 in Baumgartner et al.).
        unet_levels: resolution levels (4 in Baumgartner et al.).
        unet_epochs: passes over the training volumes.
        unet_batch_size: volumes per step (1 in Baumgartner et al.).
        unet_learning_rate: Adam learning rate after warm-up (0.01 in Baumgartner et al.).
        unet_warmup_steps: steps at a tenth of the learning rate.
        unet_augment: augment the U-Net's training volumes too.
        classifier_epochs: passes over the (class-balanced) training patients.
        classifier_batch_size: patients per step.
        classifier_learning_rate: Adam learning rate of the classifier's head.
        classifier_dense_units: width of a hidden dense layer of the head; 0 = a linear head
            on the pooled encoder features.
        classifier_dropout: dropout after the hidden dense layer.
        classifier_seeds: models trained per loss and task.
        heatmap_weight: weight of the heatmap term in the heatmap loss.
        classifier_augmentations: augmented copies of the training patients whose (frozen)
            encoder features the classifiers train on, besides the unaugmented one. They are
            held in memory: patients × (copies + 1) × the deepest map × 4 bytes (quick: 80 × 3
            × 1 MB ≈ 240 MB; thesis: 80 × 4 × 12.9 MB ≈ 4.1 GB).
        classifier_tasks: the classification tasks: ``binary`` (normal vs diseased) and
            ``groups`` (the five diagnostic groups).
        diagnosis_trees: trees of the random forest that diagnoses from the segmentation.
    """

    fixture_preset: str
    target_spacing: tuple[float, float, float]
    box: tuple[int, int, int]
    unet_base_filters: int
    unet_levels: int
    unet_epochs: int
    unet_batch_size: int
    unet_learning_rate: float
    unet_warmup_steps: int
    unet_augment: bool
    classifier_epochs: int
    classifier_batch_size: int
    classifier_learning_rate: float
    classifier_dense_units: int
    classifier_dropout: float
    classifier_seeds: int
    heatmap_weight: float
    classifier_augmentations: int = 3
    classifier_tasks: tuple[str, ...] = ACDC_TASKS
    diagnosis_trees: int = 500

    def __post_init__(self) -> None:
        if self.fixture_preset not in ("small", "full"):
            raise ValueError(f"fixture_preset={self.fixture_preset!r}: allowed small, full")
        for name in ("unet_base_filters", "unet_levels", "unet_epochs", "unet_batch_size",
                     "classifier_epochs", "classifier_batch_size", "classifier_seeds",
                     "diagnosis_trees"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r}: must be a positive integer")
        for name in ("classifier_dense_units", "classifier_augmentations"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{name}={value!r}: must be an integer >= 0")
        if not self.classifier_tasks or not set(self.classifier_tasks) <= set(ACDC_TASKS):
            raise ValueError(f"classifier_tasks={self.classifier_tasks!r}: allowed "
                             f"{', '.join(ACDC_TASKS)} (at least one)")
        if len(self.box) != 3 or len(self.target_spacing) != 3:
            raise ValueError(f"box={self.box!r}, target_spacing={self.target_spacing!r}: "
                             "need three values each")


@dataclass(frozen=True)
class ExperimentSettings:
    """Sizes of the model searches of experiments 1 and 2 (notebooks 03 and 04).

    Attributes:
        backbone: ``small_cnn`` (CPU profiles) or ``vgg16``.
        backbone_weights: ``imagenet`` or ``None`` (random initialisation); only for VGG16.
        protocols: protocols run by default (names from ``heatmaploss.protocols``).
        trials_per_group: Keras Tuner trials (= trained models) per group and protocol.
        epochs: maximum epochs of the ``controlled`` protocol (early stopping may end sooner).
        early_stopping_patience: epochs without improvement before the ``controlled``
            protocol stops a trial.
        thesis_epochs: epochs of the ``thesis`` protocol as ``(cce, heatmap)`` (thesis: 6, 2).
        batch_size: training batch size of the ``controlled`` protocol.
        thesis_batch_size: training batch size of the ``thesis`` protocol (thesis: 1).
        eval_batch_size: images per attribution batch during evaluation.
        n_train_per_class: training images per class (``None``: the profile's data sizes).
        n_val_per_class: validation images per class (``None``: the profile's data sizes).
        n_test_per_class: test images per class (``None``: the profile's data sizes).
    """

    backbone: str
    trials_per_group: int
    epochs: int
    batch_size: int
    backbone_weights: str | None = None
    protocols: tuple[str, ...] = ("controlled",)
    early_stopping_patience: int = 2
    thesis_epochs: tuple[int, int] = (6, 2)
    thesis_batch_size: int = 1
    eval_batch_size: int = 64
    n_train_per_class: int | None = None
    n_val_per_class: int | None = None
    n_test_per_class: int | None = None

    def __post_init__(self) -> None:
        if self.backbone not in ("small_cnn", "vgg16"):
            raise ValueError(f"backbone={self.backbone!r}: allowed small_cnn, vgg16")
        for name in ("trials_per_group", "epochs", "batch_size", "early_stopping_patience",
                     "thesis_batch_size", "eval_batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r}: must be a positive integer")
        for name in ("n_train_per_class", "n_val_per_class", "n_test_per_class"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{name}={value!r}: must be a positive integer or None")


#: The conditions of the shortcut chapter (06): ``main`` (every method at ρ = ``rho``),
#: ``dose`` (ρ varied for cross-entropy and the best method), ``lambda`` (λ swept at the chosen
#: learning rate), ``adaptive`` (λ set every step from gradient norms), ``difficulty`` and
#: ``small_train`` (harder tasks).
SHORTCUT_CONDITIONS = ("main", "dose", "lambda", "adaptive", "difficulty", "small_train")


@dataclass(frozen=True)
class ShortcutSettings:
    """Sizes of the shortcut chapter (06): a class-coded decoy marker and the losses that do or
    do not remove it.

    Attributes:
        backbone: ``small_cnn`` (CPU profiles) or ``vgg16``.
        rho: agreement of the decoy marker with the label in training and validation.
        n_train_per_class, n_val_per_class: training and (matched) validation images per class.
        n_test_per_class: images per class of each test set (matched, shuffled, absent); at
            500 or more one model's shuffled accuracy has a standard error of about 1 point.
        n_explain_per_class: matched test images per class every explainer is computed on.
        n_probe_per_class: shuffled test images per class the linear probes are fitted on.
        epochs: training epochs per model (the last epoch is kept).
        batch_size: images per training step.
        n_seeds: independent seeds (models) per group at the chosen setting.
        n_search_trials: trials of each group's short search for its setting.
        lr_range: log-uniform learning-rate range of the searches.
        heatmap_weight: λ of the bounded penalties (outside fraction and inside reward, in
            [0, 1]) and of the adaptive scheme's start.
        rrr_weight_range: log-uniform range searched for λ of Ross et al.'s RRR term.
        consistency_weight_range: log-uniform range searched for the consistency term's weight.
        consistency_epsilon: size of the consistency term's perturbation (inputs in [−1, 1]).
        dose_rhos: ρ values of the dose-response besides ``rho``.
        lambda_factors: the λ sweep, as multiples of the chosen λ.
        n_sweep_seeds: seeds per point of the dose-response and λ sweeps.
        difficulties: generator difficulties of the harder-task condition.
        small_train_per_class: training images per class of the small-training condition.
        conditions: the conditions run by default (:data:`SHORTCUT_CONDITIONS`).
        backbone_weights: VGG16's initial weights, ``imagenet`` or ``None`` (random); the small
            CNN always starts from random weights.
    """

    backbone: str
    rho: float
    n_train_per_class: int
    n_val_per_class: int
    n_test_per_class: int
    n_explain_per_class: int
    n_probe_per_class: int
    epochs: int
    batch_size: int
    n_seeds: int
    n_search_trials: int
    lr_range: tuple[float, float]
    heatmap_weight: float
    rrr_weight_range: tuple[float, float]
    consistency_weight_range: tuple[float, float]
    small_train_per_class: int
    consistency_epsilon: float = 1.0
    backbone_weights: str | None = "imagenet"
    dose_rhos: tuple[float, ...] = (0.5, 0.9)
    lambda_factors: tuple[float, ...] = (0.1, 0.3, 3.0, 10.0)
    n_sweep_seeds: int = 3
    difficulties: tuple[float, ...] = (0.8,)
    conditions: tuple[str, ...] = ("main",)

    def __post_init__(self) -> None:
        if self.backbone not in ("small_cnn", "vgg16"):
            raise ValueError(f"backbone={self.backbone!r}: allowed small_cnn, vgg16")
        if not 0.0 <= self.rho <= 1.0:
            raise ValueError(f"shortcut.rho={self.rho!r}: must lie in [0, 1]")
        for name in ("n_train_per_class", "n_val_per_class", "n_test_per_class",
                     "n_explain_per_class", "n_probe_per_class", "epochs", "batch_size",
                     "n_seeds", "n_search_trials", "n_sweep_seeds", "small_train_per_class"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"shortcut.{name}={value!r}: must be a positive integer")
        for name in ("lr_range", "rrr_weight_range", "consistency_weight_range"):
            low, high = getattr(self, name)
            if not 0 < low < high:
                raise ValueError(f"shortcut.{name}={(low, high)!r}: need 0 < low < high")
        for name in ("heatmap_weight", "consistency_epsilon"):
            if not getattr(self, name) > 0:
                raise ValueError(f"shortcut.{name}={getattr(self, name)!r}: must be > 0")
        if not all(0.0 <= r <= 1.0 for r in (*self.dose_rhos, *self.difficulties)):
            raise ValueError(f"dose_rhos={self.dose_rhos!r}, difficulties={self.difficulties!r}: "
                             "each must lie in [0, 1]")
        if self.backbone_weights not in ("imagenet", None):
            raise ValueError(f"shortcut.backbone_weights={self.backbone_weights!r}: allowed "
                             "'imagenet' or None")
        if not all(f > 0 for f in self.lambda_factors):
            raise ValueError(f"lambda_factors={self.lambda_factors!r}: each must be > 0")
        if "main" not in self.conditions or not set(self.conditions) <= set(SHORTCUT_CONDITIONS):
            raise ValueError(f"conditions={self.conditions!r}: must include main; allowed "
                             f"{', '.join(SHORTCUT_CONDITIONS)}")


@dataclass(frozen=True)
class Profile:
    """All settings of one run profile.

    Attributes:
        name: ``smoke``, ``quick``, ``thesis`` or ``thesis-tiny``.
        data: synthetic dataset sizes.
        experiments: model-search sizes of experiments 1 and 2.
        acdc: ACDC chapter sizes.
        description: one line for ``run_all.py --list``.
        shortcut: sizes of the shortcut chapter (06).
    """

    name: str
    data: DataSizes
    experiments: ExperimentSettings
    acdc: AcdcSettings
    shortcut: ShortcutSettings
    description: str = ""

    @property
    def is_tiny(self) -> bool:
        """A toy-size copy of another profile (:func:`tiny`): its numbers mean nothing."""
        return self.name.endswith(TINY_SUFFIX)


def tiny(profile: Profile) -> Profile:
    """``profile`` with every size shrunk to a toy and nothing else changed.

    Same backbones, protocols, groups, conditions, searches, evaluations and statistics — so
    every code path the full profile takes is taken — with 2 images per class for training,
    validation and test (1 explained, 4 probed; 4 per class where the synthetic data are
    calibrated), one epoch, 2 search trials and 2 seeds per group (1 per sweep point), toy ACDC
    volumes and networks of the same depth, and VGG16 with random weights (``weights=None``: no
    download).
    The thesis's batch size of 1 is kept where the thesis used it.
    """
    small = dict(n_train_per_class=2, n_val_per_class=2, n_test_per_class=2)
    e, a, s = profile.experiments, profile.acdc, profile.shortcut
    return dataclasses.replace(
        profile, name=profile.name + TINY_SUFFIX,
        description=f"{profile.name} profile at toy size (CPU, minutes; VGG16 random weights): "
                    "proves every code path runs; the numbers mean nothing",
        data=DataSizes(n_calibration_per_class=8, chunk_size=8, **small),
        experiments=dataclasses.replace(
            e, backbone_weights=None, trials_per_group=2, epochs=1,
            early_stopping_patience=1, thesis_epochs=(1, 1),
            batch_size=min(e.batch_size, 4), eval_batch_size=8, **small),
        acdc=dataclasses.replace(
            a, fixture_preset="small", target_spacing=(5.0, 5.0, 10.0),
            box=(2 ** (a.unet_levels + 1), 2 ** (a.unet_levels + 1), 2 ** (a.unet_levels - 1)),
            unet_base_filters=2, unet_epochs=1, unet_warmup_steps=1,
            classifier_epochs=1, classifier_dense_units=8, classifier_seeds=2),
        shortcut=dataclasses.replace(
            s, backbone_weights=None, n_explain_per_class=1, n_probe_per_class=4, epochs=1,
            batch_size=min(s.batch_size, 8), n_seeds=2, n_search_trials=2, n_sweep_seeds=1,
            small_train_per_class=1, **small),
    )


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        description="plumbing check for CI: tiny data, one epoch, a couple of trials",
        data=DataSizes(n_train_per_class=16, n_val_per_class=8, n_test_per_class=16,
                       n_calibration_per_class=64, chunk_size=32),
        experiments=ExperimentSettings(
            backbone="small_cnn", trials_per_group=3, epochs=1, batch_size=16,
            protocols=("controlled",), early_stopping_patience=1, thesis_epochs=(1, 1),
            thesis_batch_size=16, eval_batch_size=32),
        acdc=AcdcSettings(
            fixture_preset="small", target_spacing=(5.0, 5.0, 10.0), box=(32, 32, 8),
            unet_base_filters=4, unet_levels=3, unet_epochs=1, unet_batch_size=2,
            unet_learning_rate=0.01, unet_warmup_steps=2, unet_augment=False,
            classifier_epochs=2, classifier_batch_size=8, classifier_learning_rate=1e-2,
            classifier_dense_units=0, classifier_dropout=0.5, classifier_seeds=1,
            heatmap_weight=1.0, classifier_augmentations=0, diagnosis_trees=50),
        shortcut=ShortcutSettings(
            backbone="small_cnn", rho=1.0, n_train_per_class=16, n_val_per_class=8,
            n_test_per_class=8, n_explain_per_class=4, n_probe_per_class=8, epochs=1,
            batch_size=16, n_seeds=2, n_search_trials=1, lr_range=(3e-4, 3e-3),
            heatmap_weight=3.0, rrr_weight_range=(1.0, 100.0),
            consistency_weight_range=(0.01, 1.0), small_train_per_class=8,
            lambda_factors=(0.3,), n_sweep_seeds=1),
    ),
    "quick": Profile(
        name="quick",
        description="2-core laptop, minutes: small CNN, still shows the effects with statistics",
        data=DataSizes(n_train_per_class=500, n_val_per_class=150, n_test_per_class=500,
                       n_calibration_per_class=2500, chunk_size=500),
        experiments=ExperimentSettings(
            backbone="small_cnn", trials_per_group=8, epochs=3, batch_size=32,
            protocols=("controlled",), early_stopping_patience=1, eval_batch_size=100,
            n_train_per_class=150, n_val_per_class=50, n_test_per_class=250),
        acdc=AcdcSettings(
            fixture_preset="full", target_spacing=(2.5, 2.5, 5.0), box=(64, 64, 16),
            unet_base_filters=8, unet_levels=3, unet_epochs=5, unet_batch_size=4,
            unet_learning_rate=0.01, unet_warmup_steps=10, unet_augment=False,
            # The classifiers: a linear head on the pooled features of the U-Net's frozen
            # encoder, ED and ES side by side, class-balanced sampling (docs/acdc.md § The
            # chapter's classifiers says why each choice).
            classifier_epochs=6, classifier_batch_size=16, classifier_learning_rate=1e-2,
            classifier_dense_units=0, classifier_dropout=0.5, classifier_seeds=5,
            heatmap_weight=1.0, classifier_augmentations=2),
        shortcut=ShortcutSettings(
            backbone="small_cnn", rho=1.0, n_train_per_class=100, n_val_per_class=25,
            n_test_per_class=500, n_explain_per_class=100, n_probe_per_class=100, epochs=3,
            batch_size=32, n_seeds=8, n_search_trials=3, lr_range=(3e-4, 3e-3),
            heatmap_weight=3.0, rrr_weight_range=(1.0, 1000.0),
            consistency_weight_range=(0.01, 10.0), small_train_per_class=40,
            # dose, lambda, adaptive, difficulty and small_train run on request (conditions=).
            conditions=("main",)),
    ),
    "thesis": Profile(
        name="thesis",
        description="the thesis's full scale (VGG16, 10,000/3,000/10,000 images); one GPU",
        data=DataSizes(n_train_per_class=2500, n_val_per_class=750, n_test_per_class=2500,
                       n_calibration_per_class=2500, chunk_size=1000),
        experiments=ExperimentSettings(
            backbone="vgg16", backbone_weights="imagenet", trials_per_group=8, epochs=10,
            batch_size=32, protocols=("thesis", "controlled"), early_stopping_patience=2,
            thesis_epochs=(6, 2), thesis_batch_size=1, eval_batch_size=100),
        acdc=AcdcSettings(
            fixture_preset="full", target_spacing=(2.5, 2.5, 5.0), box=(116, 116, 28),
            unet_base_filters=32, unet_levels=4, unet_epochs=40, unet_batch_size=1,
            unet_learning_rate=0.01, unet_warmup_steps=50, unet_augment=True,
            classifier_epochs=30, classifier_batch_size=32, classifier_learning_rate=1e-2,
            classifier_dense_units=0, classifier_dropout=0.5, classifier_seeds=10,
            heatmap_weight=1.0, classifier_augmentations=3),
        shortcut=ShortcutSettings(
            backbone="vgg16", rho=1.0, n_train_per_class=2500, n_val_per_class=750,
            n_test_per_class=2500, n_explain_per_class=500, n_probe_per_class=250, epochs=6,
            batch_size=32, n_seeds=10, n_search_trials=6, lr_range=(5e-6, 1e-3),
            heatmap_weight=1.0, rrr_weight_range=(1.0, 1000.0),
            consistency_weight_range=(0.01, 10.0), small_train_per_class=250,
            difficulties=(0.5, 0.8), conditions=SHORTCUT_CONDITIONS),
    ),
}
PROFILES["thesis-tiny"] = tiny(PROFILES["thesis"])


def get_profile(name: str) -> Profile:
    """Return the profile called ``name``.

    Raises:
        ValueError: if ``name`` is not one of :data:`PROFILE_NAMES`.
    """
    try:
        return PROFILES[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown profile {name!r}; allowed: {', '.join(PROFILE_NAMES)}"
        ) from None


__all__ = ["PROFILE_NAMES", "PROFILES", "SHORTCUT_CONDITIONS", "TINY_SUFFIX", "AcdcSettings",
           "DataSizes", "ExperimentSettings", "Profile", "ShortcutSettings", "get_profile",
           "tiny"]
