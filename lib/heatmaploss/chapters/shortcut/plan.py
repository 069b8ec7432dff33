"""The shortcut chapter, what is trained: a real shortcut ("decoy") benchmark for heatmap losses.

Training and validation images carry a class-coded marker outside the heart that agrees with
the label with probability ρ (``synthetic.generate(..., decoy=ρ)``). A classifier that uses the
marker instead of the heart fails when the marker is *shuffled* (independent of the class) or
*absent* — the intervention tests. Compared groups (same backbone, data, epochs, learning-rate
range and selection; only the loss differs):

* ``main`` — cross-entropy vs the heatmap loss with each attribution method in the loss
  (HiResCAM, Grad-CAM, input-gradient saliency), one penalty form (``outside_fraction``);
* ``penalty`` — other penalty forms (thesis, L2 = "right for the right reasons", the inside
  reward);
* ``adaptive`` — λ set every step by :class:`~heatmaploss.models.GradientBalancedModel`;
* ``lambda`` — λ searched jointly with the learning rate (log-uniform, Keras Tuner);
* ``remedy`` — CAM penalties on a higher-resolution map (an earlier conv layer, whose cells
  see less of the image), against a last-layer penalty that can be satisfied while the
  marker is still used through the receptive fields of allowed cells;
* ``difficulty`` and ``small_train`` — harder tasks: class differences shrunk toward NOR, and
  fewer training images, for both losses.

Every model is judged by every explainer (HiResCAM, Grad-CAM, saliency), including those it was
not trained with, on the matched test set, and its accuracy is measured on the matched,
shuffled and absent test sets.

This module says *what* is trained (groups, data plans, searches, model builders; no
TensorFlow until a model is built); :mod:`.run` trains, evaluates and collects it through the
study runner (so the chapter resumes where it stopped); statistics, summary entries and report
rows are in :mod:`.analysis`, figures in :mod:`.figures`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...names import EXPLAINERS, TEST_SETS
from ...project.profiles import BEYOND_CONDITIONS, BeyondSettings, Profile
from ...runs.spec import Hyperparameter, SearchSpec, TrialSettings, derive_seed
from ...synthetic import DataPlan, DataSplit, generate

EXPERIMENT = "decoy"
PROTOCOL = "controlled"
#: The decoy data are experiment-1 images (no sex marker: the decoy is the only shortcut).
BASE_EXPERIMENT = 1
CONDITIONS = BEYOND_CONDITIONS
#: The earlier, higher-resolution layer attributed by the ``remedy`` groups, per backbone.
REMEDY_LAYER = {"small_cnn": "conv3", "vgg16": "block4_conv3"}
#: Penalty gradient norm / classification gradient norm kept by the adaptive scheme.
ADAPTIVE_RATIO = 1.0
WEIGHTINGS = ("fixed", "adaptive", "searched")


@dataclass(frozen=True)
class DecoyGroup:
    """One compared group of models.

    Attributes:
        name: group name, unique within its condition (``cce``, ``hirescam``, ...).
        condition: one of :data:`CONDITIONS`.
        n_models: models (search trials) in the group.
        method: attribution method in the loss, or ``None`` for cross-entropy only.
        penalty: penalty form (``thesis``, ``outside_fraction``, ``l2``).
        weight: λ (ignored by the ``adaptive`` and ``searched`` weightings).
        inside_weight: weight of the inside ("must look at the heart") term.
        weighting: ``fixed``, ``adaptive`` or ``searched``.
        difficulty: generator difficulty (0 = the thesis's class differences).
        n_train_per_class: training images per class.
        layer: backbone layer whose map enters the loss (``None`` = the backbone's last conv
            layer); the model is then cut there, so explainers judge it at that layer too.
    """

    name: str
    condition: str
    n_models: int
    n_train_per_class: int
    method: str | None = None
    penalty: str = "outside_fraction"
    weight: float = 0.0
    inside_weight: float = 0.0
    weighting: str = "fixed"
    difficulty: float = 0.0
    layer: str | None = None

    def __post_init__(self) -> None:
        if self.condition not in CONDITIONS:
            raise ValueError(f"condition={self.condition!r}: allowed {', '.join(CONDITIONS)}")
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"weighting={self.weighting!r}: allowed {', '.join(WEIGHTINGS)}")
        if self.method is None and (self.weighting != "fixed" or self.inside_weight):
            raise ValueError(f"group {self.name!r}: cross-entropy has no heatmap weighting")

    def as_dict(self) -> dict:
        """Plain-dict form for fingerprints and the registry.

        ``layer`` is left out while it is ``None``, so searches recorded before the field
        existed keep their fingerprint and are resumed rather than refused.
        """
        values = dataclasses.asdict(self)
        if values["layer"] is None:
            del values["layer"]
        return values

    @property
    def loss(self) -> str:
        """``cce`` or ``heatmap``."""
        return "cce" if self.method is None else "heatmap"

    @property
    def label(self) -> str:
        """``condition/name``, unique in the chapter."""
        return f"{self.condition}/{self.name}"


def chapter_groups(settings: BeyondSettings) -> list[DecoyGroup]:
    """Every group of the chapter, in the order they are trained (main comparison first).

    Args:
        settings: the profile's beyond-the-thesis settings.

    Returns:
        The groups; the ``cce`` group of ``main`` is the reference of the ``penalty``,
        ``adaptive`` and ``lambda`` conditions (same data), the harder-task conditions have
        their own.
    """
    s = settings
    w, w2 = s.heatmap_weight, s.l2_weight
    main = dict(condition="main", n_models=s.n_models_main, n_train_per_class=s.n_train_per_class)
    second = dict(n_models=s.n_models_secondary, n_train_per_class=s.n_train_per_class)
    focus = s.secondary_method
    groups = [DecoyGroup("cce", **main)]
    groups += [DecoyGroup(m, method=m, penalty="outside_fraction", weight=w, **main)
               for m in EXPLAINERS]
    groups += [
        DecoyGroup("hirescam_thesis", "penalty", method="hirescam", penalty="thesis", weight=w,
                   **second),
        DecoyGroup("hirescam_inside", "penalty", method="hirescam", weight=w, inside_weight=w,
                   **second),
        DecoyGroup("saliency_l2", "penalty", method="saliency", penalty="l2", weight=w2,
                   **second),
    ]
    groups += [DecoyGroup(f"{m}_adaptive", "adaptive", method=m, weight=1.0,
                          weighting="adaptive", **second) for m in s.adaptive_methods]
    groups += [DecoyGroup(f"{m}_searched", "lambda", method=m, weighting="searched",
                          n_models=s.n_lambda_trials, n_train_per_class=s.n_train_per_class)
               for m in s.lambda_methods]
    groups += [DecoyGroup(f"{m}_{REMEDY_LAYER[s.backbone]}", "remedy", method=m, weight=w,
                          layer=REMEDY_LAYER[s.backbone], **second) for m in s.remedy_methods]
    for d in s.difficulties:
        groups += [DecoyGroup("cce", "difficulty", difficulty=d, **second),
                   DecoyGroup(focus, "difficulty", method=focus, weight=w, difficulty=d,
                              **second)]
    small = dict(n_models=s.n_models_secondary, n_train_per_class=s.small_train_per_class)
    groups += [DecoyGroup("cce", "small_train", **small),
               DecoyGroup(focus, "small_train", method=focus, weight=w, **small)]
    return groups


def profile_with_settings(profile: Profile) -> Profile:
    """``profile``, checked to have shortcut-chapter settings."""
    if profile.beyond is None:
        raise ValueError(f"profile {profile.name!r} has no beyond-the-thesis settings")
    return profile


def data_plan(group: DecoyGroup, settings: BeyondSettings, seed: int,
              chunk_size: int = 1000) -> DataPlan:
    """Sizes, seeds and generator options of a group's training, validation and test sets.

    Groups with the same difficulty share their data (the training set of ``small_train`` is
    a different draw of fewer images); test sets differ only in the marker (``decoy_set``).
    """
    sizes = {"train": group.n_train_per_class, "val": settings.n_val_per_class,
             "test": settings.n_test_per_class}
    splits = {part: DataSplit(n, derive_seed(EXPERIMENT, part, group.difficulty, n, seed))
              for part, n in sizes.items()}
    return DataPlan(experiment=BASE_EXPERIMENT, chunk_size=chunk_size, decoy=settings.rho,
                    difficulty=group.difficulty, **splits)


def search_key(group: DecoyGroup, profile: str, seed: int) -> str:
    """The group's search name, e.g. ``decoy-main-hirescam-quick-seed0``."""
    return f"{EXPERIMENT}-{group.condition}-{group.name}-{profile}-seed{seed}"


def search_spec(group: DecoyGroup, profile: Profile, seed: int) -> SearchSpec:
    """The Keras Tuner search that trains a group's models."""
    settings = profile.beyond
    space = (Hyperparameter("learning_rate", *settings.lr_range),)
    if group.weighting == "searched":
        space += (Hyperparameter("heatmap_weight", *settings.lambda_range),)
    config = {**group.as_dict(), "backbone": settings.backbone,
              "backbone_weights": backbone_weights(settings), "epochs": settings.epochs,
              "batch_size": settings.batch_size}
    return SearchSpec(
        key=search_key(group, profile.name, seed), experiment=EXPERIMENT, protocol=PROTOCOL,
        group=group.label, profile=profile.name, seed=seed, max_trials=group.n_models,
        training=TrialSettings(epochs=settings.epochs, objective="val_classification"),
        space=space, config=config,
        data=data_plan(group, settings, seed, profile.data.chunk_size).as_dict())


def backbone_weights(settings: BeyondSettings) -> str | None:
    """ImageNet weights for VGG16, none for the small CNN."""
    return "imagenet" if settings.backbone == "vgg16" else None


def build_model(group: DecoyGroup, settings: BeyondSettings, learning_rate: float,
                heatmap_weight: float | None = None) -> Any:
    """A compiled model of the group (``heatmap_weight``: the searched λ, if any)."""
    import keras

    from ... import models
    from ...losses import HeatmapLossConfig

    config = None
    if group.method is not None:
        weight = group.weight if heatmap_weight is None else float(heatmap_weight)
        config = HeatmapLossConfig(method=group.method, penalty=group.penalty,
                                   weight=weight, inside_weight=group.inside_weight,
                                   class_mode="true", classification="cce")
    model = models.build_model(settings.backbone, heatmap=config,
                               weights=backbone_weights(settings))
    if group.layer is not None:
        model = models.HeatmapLossModel(*models.cut_at(model, group.layer), heatmap=config,
                                        name=model.name)
    if group.weighting == "adaptive":
        model = models.GradientBalancedModel(model.backbone, model.head, heatmap=config,
                                             ratio=ADAPTIVE_RATIO, name=model.name)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate))
    return model


def parse_conditions(conditions: str, settings: BeyondSettings) -> tuple[str, ...]:
    """Conditions from a comma-separated string (empty: the profile's default ones).

    Raises:
        ValueError: an unknown condition.
    """
    chosen = tuple(c.strip() for c in conditions.split(",") if c.strip()) or settings.conditions
    bad = [c for c in chosen if c not in CONDITIONS]
    if bad:
        raise ValueError(f"conditions {bad!r}: allowed {', '.join(CONDITIONS)}")
    return chosen


def group_table(groups: list[DecoyGroup]) -> Any:
    """One row per group: condition, name, models, method, penalty, weighting, λ, data."""
    import pandas as pd

    return pd.DataFrame([{
        "condition": g.condition, "group": g.name, "models": g.n_models, "method": g.method,
        "penalty": g.penalty if g.method else "", "weighting": g.weighting if g.method else "",
        "λ": g.weight if g.method and g.weighting == "fixed" else "",
        "difficulty": g.difficulty, "train/class": g.n_train_per_class} for g in groups])


def sample_images(settings: BeyondSettings, seed: int, n_per_class: int = 1
                  ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """A few test images of each test set (for the chapter's sample figure).

    Returns:
        ``(images, labels)``: test set → uint8 images, test set → labels.
    """
    group = DecoyGroup("cce", "main", n_models=1, n_train_per_class=settings.n_train_per_class)
    plan = data_plan(group, settings, seed)
    images, labels = {}, {}
    for test_set in TEST_SETS:
        data = generate(plan.experiment, n_per_class, plan.test.seed, **plan.options(test_set))
        images[test_set], labels[test_set] = data.images, data.labels
    return images, labels


def marker_agreement(labels: np.ndarray, marker_classes: np.ndarray) -> float:
    """Fraction of images whose decoy marker codes their own class (NaN-free; -1 = no marker).

    Args:
        labels: (N,) true classes.
        marker_classes: (N,) class coded by each image's marker, -1 where there is none.

    Returns:
        Agreement among images that carry a marker (NaN when none does).
    """
    labels = np.asarray(labels)
    marker_classes = np.asarray(marker_classes)
    present = marker_classes >= 0
    return float(np.mean(labels[present] == marker_classes[present])) if present.any() \
        else float("nan")


__all__ = ["ADAPTIVE_RATIO", "BASE_EXPERIMENT", "CONDITIONS", "DecoyGroup", "EXPERIMENT",
           "PROTOCOL", "REMEDY_LAYER", "backbone_weights", "build_model", "chapter_groups",
           "data_plan", "group_table", "marker_agreement", "parse_conditions",
           "profile_with_settings", "sample_images", "search_key", "search_spec"]
