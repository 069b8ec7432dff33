"""Beyond the thesis: a real shortcut ("decoy") benchmark for heatmap losses.

Training and validation images carry a class-coded marker outside the heart that agrees with
the label with probability ρ (``synthetic.generate(..., decoy=ρ)``). A classifier that uses the
marker instead of the heart fails when the marker is *shuffled* (independent of the class) or
*absent* — the intervention tests. Compared groups (same backbone, data, epochs, learning-rate
range and selection; only the loss differs):

* ``main`` — cross-entropy vs the heatmap loss with each attribution method in the loss
  (HiResCAM, Grad-CAM, input-gradient saliency), one penalty form (``outside_fraction``);
* ``penalty`` — other penalty forms (thesis, L2 = "right for the right reasons", the inside
  reward);
* ``adaptive`` — λ set every step by :class:`~heatmaploss.adaptive.GradientBalancedModel`;
* ``lambda`` — λ searched jointly with the learning rate (log-uniform, Keras Tuner);
* ``remedy`` — CAM penalties on a higher-resolution map (an earlier conv layer, whose cells
  see less of the image), against a last-layer penalty that can be satisfied while the
  marker is still used through the receptive fields of allowed cells;
* ``difficulty`` and ``small_train`` — harder tasks: class differences shrunk toward NOR, and
  fewer training images, for both losses.

Every model is judged by every explainer (HiResCAM, Grad-CAM, saliency), including those it was
not trained with, on the matched test set, and its accuracy is measured on the matched,
shuffled and absent test sets.

This module says *what* is trained (groups, data plans, searches, model builders);
:mod:`heatmaploss.beyond_run` trains, evaluates and collects it through
:mod:`heatmaploss.search`, :mod:`heatmaploss.evaluate` and :mod:`heatmaploss.registry` (so the
chapter resumes where it stopped); statistics, figures and summary entries are in
:mod:`heatmaploss.beyond_analysis` and :mod:`heatmaploss.beyond_figures`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .beyond_analysis import EXPLAINERS, TEST_SETS
from .profiles import BEYOND_CONDITIONS, BeyondSettings, Profile, get_profile
from .search import SearchSpec, derive_seed

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


def profile_with_settings(profile: str | Profile) -> Profile:
    """The profile object (by name or as given); it must have beyond-the-thesis settings."""
    prof = profile if isinstance(profile, Profile) else get_profile(profile)
    if prof.beyond is None:
        raise ValueError(f"profile {prof.name!r} has no beyond-the-thesis settings")
    return prof


def data_plan(group: DecoyGroup, settings: BeyondSettings, seed: int) -> dict:
    """Sizes, seeds and generator options of a group's training, validation and test sets.

    Groups with the same difficulty share their data (the training set of ``small_train`` is
    a different draw of fewer images); test sets differ only in the marker (``decoy_set``).
    """
    options = {"decoy": settings.rho, "difficulty": group.difficulty}
    sizes = {"train": group.n_train_per_class, "val": settings.n_val_per_class,
             "test": settings.n_test_per_class}
    plan: dict[str, Any] = {"experiment": BASE_EXPERIMENT, "options": options}
    for part, n in sizes.items():
        plan[part] = {"n_per_class": n,
                      "seed": derive_seed(EXPERIMENT, part, group.difficulty, n, seed)}
    return plan


def test_set_options(plan: dict, test_set: str) -> dict:
    """Generator options of one test set (``matched``, ``shuffled`` or ``absent``)."""
    if test_set not in TEST_SETS:
        raise ValueError(f"test_set={test_set!r}: allowed {', '.join(TEST_SETS)}")
    return {**plan["options"], "decoy_set": test_set}


def search_spec(group: DecoyGroup, settings: BeyondSettings, profile: str, seed: int
                ) -> SearchSpec:
    """The Keras Tuner search that trains a group's models."""
    from .protocols import GroupRecipe

    recipe = GroupRecipe(
        group=group.loss, backbone=settings.backbone,
        backbone_weights="imagenet" if settings.backbone == "vgg16" else None,
        trainable_backbone=True, classification="cce", output_activation="softmax",
        penalty=group.penalty if group.method else None,
        penalty_weight=group.weight if group.method else 0.0,
        explainer=group.method or "hirescam", heatmap_class="true",
        irrelevant_region="not_heart", epochs=settings.epochs, early_stopping_patience=None,
        batch_size=settings.batch_size, lr_min=settings.lr_range[0], lr_max=settings.lr_range[1],
        objective="val_classification", min_val_accuracy=0.0)
    return SearchSpec(experiment=BASE_EXPERIMENT, protocol=f"decoy-{group.condition}-{group.name}",
                      recipe=recipe, profile=profile, seed=seed, max_trials=group.n_models,
                      data={**data_plan(group, settings, seed), "group": group.as_dict(),
                            "lambda_range": settings.lambda_range})


def model_builder(group: DecoyGroup) -> Callable[..., Any]:
    """``build(recipe, learning_rate, heatmap_weight=None)`` → a compiled model of the group."""

    def build(recipe: Any, learning_rate: float, heatmap_weight: float | None = None) -> Any:
        import keras

        from . import models
        from .adaptive import GradientBalancedModel
        from .losses import HeatmapLossConfig

        config = None
        if group.method is not None:
            weight = group.weight if heatmap_weight is None else float(heatmap_weight)
            config = HeatmapLossConfig(method=group.method, penalty=group.penalty,
                                       weight=weight, inside_weight=group.inside_weight,
                                       class_mode="true", classification="cce")
        model = models.build_model(recipe.backbone, heatmap=config,
                                   weights=recipe.backbone_weights)
        if group.layer is not None:
            model = models.HeatmapLossModel(*cut_at(model, group.layer), heatmap=config,
                                            name=model.name)
        if group.weighting == "adaptive":
            model = GradientBalancedModel(model.backbone, model.head, heatmap=config,
                                          ratio=ADAPTIVE_RATIO, name=model.name)
        model.compile(optimizer=keras.optimizers.Adam(learning_rate))
        return model

    return build


def cut_at(model: Any, layer: str) -> tuple[Any, Any]:
    """Move a model's attribution point to an earlier backbone layer.

    Args:
        model: a ``HeatmapLossModel`` whose backbone is a plain chain of layers (the small
            CNN, VGG16).
        layer: name of a backbone layer.

    Returns:
        ``(backbone, head)``: input → ``layer`` output, and the remaining backbone layers
        followed by the old head (same weights, same function).
    """
    import keras

    backbone = model.backbone
    names = [item.name for item in backbone.layers]
    if layer not in names:
        raise ValueError(f"layer={layer!r} is not in the backbone; available: {names}")
    early = keras.Model(backbone.inputs[0], backbone.get_layer(layer).output,
                        name=f"backbone_to_{layer}")
    inputs = keras.Input(tuple(early.outputs[0].shape[1:]))
    hidden = inputs
    for item in backbone.layers[names.index(layer) + 1:]:
        hidden = item(hidden)
    return early, keras.Model(inputs, model.head(hidden), name=f"head_from_{layer}")


def sample_images(settings: BeyondSettings, seed: int, n_per_class: int = 1
                  ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """A few test images of each test set (for the chapter's sample figure).

    Returns:
        ``(images, labels)``: test set → uint8 images, test set → labels.
    """
    from . import synthetic

    group = DecoyGroup("cce", "main", n_models=1, n_train_per_class=settings.n_train_per_class)
    plan = data_plan(group, settings, seed)
    images, labels = {}, {}
    for test_set in TEST_SETS:
        data = synthetic.generate(plan["experiment"], n_per_class, plan["test"]["seed"],
                                  **test_set_options(plan, test_set))
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
           "PROTOCOL", "REMEDY_LAYER", "chapter_groups", "cut_at", "data_plan",
           "marker_agreement", "model_builder", "profile_with_settings", "sample_images",
           "search_spec", "test_set_options"]
