"""Experiments 1 and 2, what is trained: protocols, group recipes, data plans and searches.

* ``thesis`` — the thesis's recipe as closely as the facts allow (``docs/thesis.md`` §4): the cross-entropy
  group trains a head on a **frozen** ImageNet VGG16 for 6 epochs with Keras's categorical
  cross-entropy of the **sigmoid** outputs (``sigmoid_cce``: −log(σ_c / Σ_j σ_j)); the
  heatmap-loss group trains the **whole** network for 2 epochs with MSE on the sigmoid outputs
  plus the thesis's HiResCAM penalty on the predicted class, its not-heart mask resized to the
  map **bilinearly** (close to point sampling, as the thesis's code did); different
  learning-rate ranges; only models with validation accuracy > 0.95 are kept. The groups differ
  in far more than the loss.
* ``controlled`` — both groups share backbone, trainability, epochs (with early stopping),
  learning-rate range, classification term and selection rule; the only difference is the
  heatmap penalty (true-class HiResCAM, ``outside_fraction`` form, irrelevant region = not heart).

A protocol is data; :func:`group_settings` resolves it against a profile's
:class:`~heatmaploss.project.profiles.ExperimentSettings` into the concrete recipe a search
runs, and :func:`search_specs` turns an experiment into one search per protocol and group.
TensorFlow-free.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import pandas as pd

from ...names import LOSS_GROUPS
from ...project.profiles import ExperimentSettings, Profile
from ...runs.spec import Hyperparameter, SearchSpec, TrialSettings, derive_seed
from ...synthetic.plan import DataPlan, DataSplit

PROTOCOL_NAMES = ("thesis", "controlled")
#: Regions compared between groups, per experiment (experiment 1 has no sex marker).
COMPARED_REGIONS = {1: ("heart", "fat"), 2: ("heart", "sex_marker", "fat")}
#: Objective given to the oracle for a diverged trial: the loss of a constant uniform
#: prediction of 4 classes, per classification term (a bad, finite value).
CHANCE_LOSS = {"cce": math.log(4.0), "sigmoid_cce": math.log(4.0), "mse": 0.1875}
#: The output activation each classification term implies (recorded with the recipe).
OUTPUT_ACTIVATION = {"cce": "softmax", "sigmoid_cce": "sigmoid", "mse": "sigmoid"}


@dataclass(frozen=True)
class GroupRecipe:
    """Everything that defines how one group's models are built, trained and selected.

    Attributes:
        group: ``cce`` or ``heatmap``.
        backbone: ``vgg16`` or ``small_cnn``.
        backbone_weights: ``imagenet`` or ``None``.
        trainable_backbone: whether the backbone's weights are trained.
        classification: classification term: ``cce`` (softmax cross-entropy on the logits),
            ``sigmoid_cce`` (categorical cross-entropy of the sigmoid outputs, the thesis's CCE
            group) or ``mse`` (MSE on the sigmoid outputs, the thesis's heatmap group).
        output_activation: the activation the classification term applies to the logits
            (``softmax`` or ``sigmoid``); must agree with ``classification``.
        penalty: heatmap penalty form (``thesis``, ``outside_fraction``) or ``None``.
        penalty_weight: λ in classification + λ · penalty.
        explainer: attribution method inside the penalty.
        heatmap_class: ``predicted`` (thesis) or ``true`` class for the penalty's map.
        irrelevant_region: region whose attribution is penalised (``not_heart``).
        epochs: maximum epochs per trial.
        early_stopping_patience: epochs without improvement before stopping; ``None`` trains
            every epoch (the best epoch is still the one kept).
        batch_size: training batch size.
        lr_min: lower end of the log-uniform learning-rate range.
        lr_max: upper end of the log-uniform learning-rate range.
        objective: validation metric the search minimises (a Keras log name).
        min_val_accuracy: models with validation accuracy not above this are excluded from the
            group comparison (still recorded).
        pooling: max-pool padding of the network (``valid``: the thesis's VGG16; ``same``:
            every pixel and every attributed cell reaches the logits).
        mask_resize: how the irrelevant-region mask is brought to the map's grid: ``area``
            (the share of each cell's pixels in the region) or ``bilinear`` (the thesis).
    """

    group: str
    backbone: str
    backbone_weights: str | None
    trainable_backbone: bool
    classification: str
    output_activation: str
    penalty: str | None
    penalty_weight: float
    explainer: str
    heatmap_class: str
    irrelevant_region: str
    epochs: int
    early_stopping_patience: int | None
    batch_size: int
    lr_min: float
    lr_max: float
    objective: str
    min_val_accuracy: float
    pooling: str = "same"
    mask_resize: str = "area"

    def __post_init__(self) -> None:
        if self.group not in LOSS_GROUPS:
            raise ValueError(f"group={self.group!r}: allowed {', '.join(LOSS_GROUPS)}")
        if not 0 < self.lr_min < self.lr_max:
            raise ValueError(f"learning-rate range ({self.lr_min}, {self.lr_max}): need "
                             "0 < lr_min < lr_max")
        if OUTPUT_ACTIVATION.get(self.classification) != self.output_activation:
            raise ValueError(f"output_activation={self.output_activation!r} with classification="
                             f"{self.classification!r}: that term applies "
                             f"{OUTPUT_ACTIVATION.get(self.classification)!r}")
        if (self.penalty is None) != (self.group == "cce"):
            raise ValueError(f"group {self.group!r} with penalty {self.penalty!r}: the cce group "
                             "has no penalty and the heatmap group needs one")

    def as_dict(self) -> dict:
        """Plain-dict form (stored in the registry and in search fingerprints)."""
        return dataclasses.asdict(self)


def _thesis(settings: ExperimentSettings, group: str) -> GroupRecipe:
    cce_epochs, heatmap_epochs = settings.thesis_epochs
    common = dict(
        backbone="vgg16" if settings.backbone == "vgg16" else settings.backbone,
        backbone_weights=settings.backbone_weights, output_activation="sigmoid",
        explainer="hirescam", heatmap_class="predicted", irrelevant_region="not_heart",
        early_stopping_patience=None, batch_size=settings.thesis_batch_size,
        min_val_accuracy=0.95, pooling="valid",
    )
    if group == "cce":
        return GroupRecipe(group="cce", trainable_backbone=False, classification="sigmoid_cce",
                           penalty=None, penalty_weight=0.0, epochs=cce_epochs,
                           lr_min=5e-6, lr_max=1e-3, objective="val_loss", **common)
    # The thesis selected heatmap models on validation MSE, i.e. the classification term.
    return GroupRecipe(group="heatmap", trainable_backbone=True, classification="mse",
                       penalty="thesis", penalty_weight=1.0, epochs=heatmap_epochs,
                       lr_min=5e-7, lr_max=5e-5, objective="val_classification",
                       mask_resize="bilinear", **common)


#: Learning-rate range of the controlled protocol per backbone (Adam).
CONTROLLED_LR = {"small_cnn": (3e-4, 3e-3), "vgg16": (5e-6, 1e-4)}


def _controlled(settings: ExperimentSettings, group: str) -> GroupRecipe:
    lr_min, lr_max = CONTROLLED_LR[settings.backbone]
    # Both groups are selected on the same quantity (validation classification loss), so the
    # selection rule cannot favour either group.
    return GroupRecipe(
        group=group, backbone=settings.backbone, backbone_weights=settings.backbone_weights,
        trainable_backbone=True, classification="cce", output_activation="softmax",
        penalty="outside_fraction" if group == "heatmap" else None,
        penalty_weight=1.0 if group == "heatmap" else 0.0,
        explainer="hirescam", heatmap_class="true", irrelevant_region="not_heart",
        epochs=settings.epochs, early_stopping_patience=settings.early_stopping_patience,
        batch_size=settings.batch_size, lr_min=lr_min, lr_max=lr_max,
        objective="val_classification", min_val_accuracy=0.95,
    )


_PROTOCOLS = {"thesis": _thesis, "controlled": _controlled}


def check_protocols(names: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Parse and validate protocol names (a comma-separated string or a sequence).

    Raises:
        ValueError: naming an unknown protocol and the allowed ones.
    """
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    names = tuple(names)
    if not names:
        raise ValueError(f"no protocol given; allowed: {', '.join(PROTOCOL_NAMES)}")
    for name in names:
        if name not in _PROTOCOLS:
            raise ValueError(f"unknown protocol {name!r}; allowed: {', '.join(PROTOCOL_NAMES)}")
    return names


def group_settings(protocol: str, group: str, settings: ExperimentSettings) -> GroupRecipe:
    """Resolve one group of a protocol against a profile's experiment settings.

    Args:
        protocol: ``thesis`` or ``controlled``.
        group: ``cce`` or ``heatmap``.
        settings: the profile's :class:`ExperimentSettings`.

    Returns:
        The group's :class:`GroupRecipe`.
    """
    (protocol,) = check_protocols([protocol])
    if group not in LOSS_GROUPS:
        raise ValueError(f"unknown group {group!r}; allowed: {', '.join(LOSS_GROUPS)}")
    return _PROTOCOLS[protocol](settings, group)


def check_experiment(experiment: int) -> int:
    """Return ``experiment`` if it is 1 or 2."""
    if experiment not in (1, 2) or isinstance(experiment, bool):
        raise ValueError(f"experiment={experiment!r}: allowed 1, 2")
    return experiment


def data_plan(experiment: int, profile: Profile, seed: int) -> DataPlan:
    """Sizes and seeds of an experiment's training, validation and test sets."""
    settings, sizes = profile.experiments, profile.data
    splits = {}
    for part in ("train", "val", "test"):
        n = getattr(settings, f"n_{part}_per_class") or getattr(sizes, f"n_{part}_per_class")
        splits[part] = DataSplit(n, derive_seed("data", part, check_experiment(experiment), seed))
    return DataPlan(experiment=experiment, chunk_size=sizes.chunk_size, **splits)


def search_key(experiment: int, protocol: str, group: str, profile: str, seed: int) -> str:
    """The search's name, e.g. ``exp1-controlled-heatmap-quick-seed0``."""
    return f"exp{experiment}-{protocol}-{group}-{profile}-seed{seed}"


def search_spec(experiment: int, recipe: GroupRecipe, protocol: str, profile: Profile,
                seed: int) -> SearchSpec:
    """The learning-rate search that trains one group's models."""
    return SearchSpec(
        key=search_key(experiment, protocol, recipe.group, profile.name, seed),
        experiment=f"exp{experiment}", protocol=protocol, group=recipe.group,
        profile=profile.name, seed=seed, max_trials=profile.experiments.trials_per_group,
        training=TrialSettings(epochs=recipe.epochs, objective=recipe.objective,
                               early_stopping_patience=recipe.early_stopping_patience,
                               chance_objective=CHANCE_LOSS[recipe.classification]),
        space=(Hyperparameter("learning_rate", recipe.lr_min, recipe.lr_max),),
        config=recipe.as_dict(), data=data_plan(experiment, profile, seed).as_dict())


def search_specs(experiment: int, profile: Profile, seed: int,
                 protocols: str | tuple[str, ...] | None = None
                 ) -> list[tuple[SearchSpec, GroupRecipe]]:
    """The searches of one experiment, one per protocol and group, with their recipes."""
    names = check_protocols(protocols or profile.experiments.protocols)
    out = []
    for name in names:
        for group in LOSS_GROUPS:
            recipe = group_settings(name, group, profile.experiments)
            out.append((search_spec(experiment, recipe, name, profile, seed), recipe))
    return out


def search_plan(experiment: int, profile: Profile, seed: int,
                protocols: str | tuple[str, ...] | None = None) -> pd.DataFrame:
    """One row per search: what each group's models are and how they are trained."""
    rows = []
    for spec, r in search_specs(experiment, profile, seed, protocols):
        rows.append({
            "protocol": spec.protocol, "group": r.group, "backbone": r.backbone,
            "trainable backbone": r.trainable_backbone, "classification": r.classification,
            "penalty": f"{r.penalty_weight:g} x {r.penalty} ({r.explainer}, {r.heatmap_class} "
                       "class)" if r.penalty else "-",
            "epochs": r.epochs, "early stopping": r.early_stopping_patience or "-",
            "batch": r.batch_size, "learning rate": f"{r.lr_min:.0e} .. {r.lr_max:.0e} (log)",
            "trials": spec.max_trials, "kept if val acc >": r.min_val_accuracy,
            "search": spec.key})
    return pd.DataFrame(rows)


__all__ = ["CHANCE_LOSS", "COMPARED_REGIONS", "CONTROLLED_LR", "PROTOCOL_NAMES", "GroupRecipe",
           "check_experiment", "check_protocols", "data_plan", "group_settings", "search_key",
           "search_plan", "search_spec", "search_specs"]
