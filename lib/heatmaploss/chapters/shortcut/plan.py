"""The shortcut chapter, what is trained: a real shortcut ("decoy") and the losses that should
remove it.

Training and validation images carry a 9 × 9 marker in the corner that codes the class, agreeing
with the label with probability ρ (``synthetic.generate(..., decoy=ρ)``). A classifier that reads
the corner instead of the heart fails when the marker moves (*shuffled* test set, or the same
images with the marker moved: the flip rate) or disappears (*absent*) — reliance is measured by
intervention, never by a map alone. Groups share backbone, data, epochs and the way their
setting is chosen; only the loss differs:

* ``cce`` — cross-entropy; ``oracle`` — cross-entropy on images without the marker (its
  shuffled accuracy is the ceiling every group is measured against);
* ``hirescam``, ``gradcam``, ``saliency`` — the outside-fraction penalty on that explainer's map
  of the true-class logit (CAMs at the last conv layer); ``hirescam_<layer>`` — the same at an
  earlier, higher-resolution layer; ``hirescam_inside`` — plus an inside reward on the heart
  (the required region is the heart itself, not 1 − irrelevant);
* ``rrr`` — Ross et al.'s "right for the right reasons": the squared input gradient of
  Σ_k log p_k summed over the irrelevant region (λ searched on their scale);
* two non-attribution baselines the literature found strongest: ``counterexamples`` (every
  training image also appears with its marker moved to a random corner) and ``consistency``
  (the change of the log-probabilities when the irrelevant region is perturbed is penalised);
* further conditions: ``dose`` (ρ varied), ``lambda`` (λ swept at the chosen learning rate),
  ``adaptive`` (λ set every step), ``difficulty`` and ``small_train`` (harder tasks).

**Seeds as replicates.** Each group's setting (learning rate, and λ where searched) is chosen
once by a short search on the matched validation set — what a practitioner has — and then
``n_seeds`` models are trained with independent seeds at that setting. Search trials are not
replicates and are never compared. This module is TensorFlow-free until a model is built.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ...names import EXPLAINERS, TEST_SETS
from ...project.profiles import SHORTCUT_CONDITIONS, Profile, ShortcutSettings
from ...runs.spec import Hyperparameter, SearchSpec, TrialSettings, derive_seed
from ...synthetic import DataPlan, DataSplit, generate

EXPERIMENT = "decoy"
PROTOCOL = "controlled"
#: The decoy data are experiment-1 images (no sex marker: the decoy is the only shortcut).
BASE_EXPERIMENT = 1
CONDITIONS = SHORTCUT_CONDITIONS
#: The earlier, higher-resolution layer attributed besides the last conv layer, per backbone.
EARLY_LAYER = {"small_cnn": "conv3", "vgg16": "block4_conv3"}
#: The last conv layer (the backbone's output), per backbone.
LAST_LAYER = {"small_cnn": "last_conv", "vgg16": "block5_conv3"}
#: Kinds of group: how its models are trained.
KINDS = ("cce", "oracle", "heatmap", "counterexamples", "consistency", "adaptive")
WEIGHTINGS = ("none", "fixed", "searched")
#: Penalty gradient norm / classification gradient norm kept by the adaptive scheme.
ADAPTIVE_RATIO = 1.0
#: Trials within this many points of the best validation accuracy may be chosen (λ searches).
ACCURACY_TOLERANCE = 0.01


@dataclass(frozen=True)
class DecoyGroup:
    """One compared group of models (``n_seeds`` independent seeds at one setting).

    Attributes:
        name: unique in the chapter (it names the group's searches), e.g. ``cce``,
            ``hirescam_conv3``, ``cce_rho0.5``, ``hirescam_d0.8``.
        condition: one of :data:`CONDITIONS`.
        kind: one of :data:`KINDS`.
        n_seeds: models trained at the chosen setting.
        n_train_per_class: training images per class.
        method: the explainer in the loss (``heatmap`` and ``adaptive`` kinds).
        penalty: penalty form (``outside_fraction`` or ``rrr``).
        target: what the explainer differentiates (``logit``, ``log_prob_sum`` ...).
        layers: CAM layers of the penalty (empty = the last conv layer).
        inside: add the inside reward on the heart (weight = λ).
        weighting: ``none`` (no term), ``fixed`` (λ = ``weight``) or ``searched`` (λ searched
            with the learning rate).
        weight: the fixed λ.
        rho: agreement of the training marker with the label.
        difficulty: generator difficulty (0 = the thesis's class differences).
        base: the group whose chosen setting this one reuses instead of searching (λ sweep).
        lambda_factor: λ sweep: the multiple of the base group's λ.
    """

    name: str
    condition: str
    kind: str
    n_seeds: int
    n_train_per_class: int
    method: str | None = None
    penalty: str = "outside_fraction"
    target: str = "logit"
    layers: tuple[str, ...] = ()
    inside: bool = False
    weighting: str = "none"
    weight: float = 0.0
    rho: float = 1.0
    difficulty: float = 0.0
    base: str | None = None
    lambda_factor: float | None = None

    def __post_init__(self) -> None:
        if self.condition not in CONDITIONS:
            raise ValueError(f"condition={self.condition!r}: allowed {', '.join(CONDITIONS)}")
        if self.kind not in KINDS:
            raise ValueError(f"kind={self.kind!r}: allowed {', '.join(KINDS)}")
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"weighting={self.weighting!r}: allowed {', '.join(WEIGHTINGS)}")
        needs_method = self.kind in ("heatmap", "adaptive")
        if needs_method != (self.method in EXPLAINERS):
            raise ValueError(f"group {self.name!r}: kind {self.kind!r} with method "
                             f"{self.method!r}")
        if (self.weighting == "none") != (self.kind in ("cce", "oracle", "counterexamples")):
            raise ValueError(f"group {self.name!r}: kind {self.kind!r} with weighting "
                             f"{self.weighting!r}")

    @property
    def loss(self) -> str:
        """``cce`` (no term added to cross-entropy) or ``heatmap`` (a term is added)."""
        return "cce" if self.weighting == "none" else "heatmap"

    @property
    def penalised_explainer(self) -> str | None:
        """The explainer whose map the loss penalises (what "gamed" is judged by)."""
        if self.kind not in ("heatmap", "adaptive"):
            return None
        return self.method if not self.layers else f"{self.method}@{self.layers[0]}"

    def as_dict(self) -> dict:
        """Plain-dict form (search fingerprints and the registry)."""
        values = dataclasses.asdict(self)
        values["layers"] = list(self.layers)
        return values


def _main_groups(s: ShortcutSettings) -> list[DecoyGroup]:
    common = dict(condition="main", n_seeds=s.n_seeds, n_train_per_class=s.n_train_per_class,
                  rho=s.rho)
    w = s.heatmap_weight
    early = EARLY_LAYER[s.backbone]
    return [
        DecoyGroup("cce", kind="cce", **common),
        DecoyGroup("oracle", kind="oracle", **common),
        *[DecoyGroup(m, kind="heatmap", method=m, weighting="fixed", weight=w, **common)
          for m in EXPLAINERS],
        DecoyGroup("rrr", kind="heatmap", method="saliency", penalty="rrr",
                   target="log_prob_sum", weighting="searched", **common),
        DecoyGroup("hirescam_inside", kind="heatmap", method="hirescam", inside=True,
                   weighting="fixed", weight=w, **common),
        DecoyGroup(f"hirescam_{early}", kind="heatmap", method="hirescam", layers=(early,),
                   weighting="fixed", weight=w, **common),
        DecoyGroup("counterexamples", kind="counterexamples", **common),
        DecoyGroup("consistency", kind="consistency", weighting="searched", **common),
    ]


def chapter_groups(settings: ShortcutSettings,
                   conditions: tuple[str, ...] = CONDITIONS) -> list[DecoyGroup]:
    """The groups that need no other group's results, in training order (``main`` first).

    The ``dose`` and ``lambda`` conditions depend on which method works best, so they are
    built after the main groups are evaluated (:func:`dose_groups`, :func:`lambda_groups`).
    """
    s = settings
    groups = _main_groups(s)
    w = s.heatmap_weight
    if "adaptive" in conditions:
        groups += [DecoyGroup(f"{m}_adaptive", "adaptive", "adaptive", s.n_seeds,
                              s.n_train_per_class, method=m, weighting="fixed", weight=w,
                              rho=s.rho) for m in ("hirescam", "saliency")]
    if "difficulty" in conditions:
        for d in s.difficulties:
            groups += [DecoyGroup(f"cce_d{d:g}", "difficulty", "cce", s.n_seeds,
                                  s.n_train_per_class, rho=s.rho, difficulty=d),
                       DecoyGroup(f"hirescam_d{d:g}", "difficulty", "heatmap", s.n_seeds,
                                  s.n_train_per_class, method="hirescam", weighting="fixed",
                                  weight=w, rho=s.rho, difficulty=d)]
    if "small_train" in conditions:
        groups += [DecoyGroup("cce_small", "small_train", "cce", s.n_seeds,
                              s.small_train_per_class, rho=s.rho),
                   DecoyGroup("hirescam_small", "small_train", "heatmap", s.n_seeds,
                              s.small_train_per_class, method="hirescam", weighting="fixed",
                              weight=w, rho=s.rho)]
    return groups


def dose_groups(settings: ShortcutSettings, best: DecoyGroup) -> list[DecoyGroup]:
    """ρ varied (``settings.dose_rhos``) for cross-entropy and the best method of ``main``."""
    cce = next(g for g in _main_groups(settings) if g.name == "cce")
    return [dataclasses.replace(g, name=f"{g.name}_rho{rho:g}", condition="dose", rho=rho,
                                n_seeds=settings.n_sweep_seeds)
            for rho in settings.dose_rhos for g in (cce, best)]


def lambda_groups(settings: ShortcutSettings, best: DecoyGroup) -> list[DecoyGroup]:
    """λ swept (``settings.lambda_factors`` × its chosen λ) for the best method of ``main``,
    at its chosen learning rate."""
    if best.weighting == "none":
        return []
    return [dataclasses.replace(best, name=f"{best.name}_x{f:g}", condition="lambda",
                                weighting="fixed", n_seeds=settings.n_sweep_seeds,
                                base=best.name, lambda_factor=f)
            for f in settings.lambda_factors]


def parse_conditions(conditions: str, settings: ShortcutSettings) -> tuple[str, ...]:
    """Conditions from a comma-separated string (empty: the profile's default ones).

    Raises:
        ValueError: an unknown condition.
    """
    chosen = tuple(c.strip() for c in conditions.split(",") if c.strip()) or settings.conditions
    bad = [c for c in chosen if c not in CONDITIONS]
    if bad:
        raise ValueError(f"conditions {bad!r}: allowed {', '.join(CONDITIONS)}")
    return tuple(dict.fromkeys(("main", *chosen)))


def profile_with_settings(profile: Profile) -> Profile:
    """``profile``, checked to have shortcut-chapter settings."""
    if getattr(profile, "shortcut", None) is None:
        raise ValueError(f"profile {profile.name!r} has no shortcut-chapter settings")
    return profile


def data_plan(group: DecoyGroup, settings: ShortcutSettings, seed: int,
              chunk_size: int = 1000) -> DataPlan:
    """Sizes, seeds and generator options of a group's training, validation and test sets.

    Groups with the same difficulty share their hearts: every main group is trained on the
    same training images (only the marker's agreement ρ may differ) and tested on the same
    test images; the test sets differ only in the marker (``decoy_set``).
    """
    sizes = {"train": group.n_train_per_class, "val": settings.n_val_per_class,
             "test": settings.n_test_per_class}
    splits = {part: DataSplit(n, derive_seed(EXPERIMENT, part, group.difficulty, n, seed))
              for part, n in sizes.items()}
    return DataPlan(experiment=BASE_EXPERIMENT, chunk_size=chunk_size, decoy=group.rho,
                    difficulty=group.difficulty, **splits)


def training_sets(group: DecoyGroup) -> tuple[tuple[str, ...], str]:
    """Which decoy sets a group trains on, and which it is validated on."""
    if group.kind == "oracle":
        return ("absent",), "absent"
    if group.kind == "counterexamples":
        return ("matched", "shuffled"), "matched"
    return ("matched",), "matched"


def backbone_weights(settings: ShortcutSettings) -> str | None:
    """VGG16's initial weights (the profile's; ImageNet at full size), none for the small CNN."""
    return settings.backbone_weights if settings.backbone == "vgg16" else None


def _weight_range(group: DecoyGroup, settings: ShortcutSettings) -> tuple[float, float]:
    return (settings.consistency_weight_range if group.kind == "consistency"
            else settings.rrr_weight_range)


def _config(group: DecoyGroup, settings: ShortcutSettings) -> dict:
    train, val = training_sets(group)
    return {**group.as_dict(), "backbone": settings.backbone,
            "backbone_weights": backbone_weights(settings), "epochs": settings.epochs,
            "batch_size": settings.batch_size, "train_sets": list(train), "val_set": val,
            "consistency_epsilon": settings.consistency_epsilon}


def _training(settings: ShortcutSettings) -> TrialSettings:
    return TrialSettings(epochs=settings.epochs, objective="val_classification")


def search_key(group: DecoyGroup, profile: str, seed: int, part: str = "") -> str:
    """A group's search name, e.g. ``decoy-hirescam-quick-seed0`` (``part="search"``:
    ``decoy-hirescam-search-quick-seed0``)."""
    middle = f"{group.name}-{part}" if part else group.name
    return f"{EXPERIMENT}-{middle}-{profile}-seed{seed}"


def search_spec(group: DecoyGroup, profile: Profile, seed: int) -> SearchSpec:
    """The short search that chooses a group's setting (learning rate, and λ if searched)."""
    s = profile.shortcut
    space = (Hyperparameter("learning_rate", *s.lr_range),)
    if group.weighting == "searched":
        space += (Hyperparameter("heatmap_weight", *_weight_range(group, s)),)
    return SearchSpec(
        key=search_key(group, profile.name, seed, "search"), experiment=EXPERIMENT,
        protocol="search", group=group.name, profile=profile.name, seed=seed,
        max_trials=s.n_search_trials, training=_training(s), space=space,
        config=_config(group, s),
        data=data_plan(group, s, seed, profile.data.chunk_size).as_dict())


def replicate_spec(group: DecoyGroup, profile: Profile, seed: int,
                   setting: dict[str, float]) -> SearchSpec:
    """The group's models: ``n_seeds`` independent seeds at the chosen ``setting``."""
    s = profile.shortcut
    return SearchSpec(
        key=search_key(group, profile.name, seed), experiment=EXPERIMENT, protocol=PROTOCOL,
        group=group.name, profile=profile.name, seed=seed, max_trials=group.n_seeds,
        replicates=True, fixed=dict(setting), training=_training(s),
        config=_config(group, s),
        data=data_plan(group, s, seed, profile.data.chunk_size).as_dict())


def choose_setting(trials: pd.DataFrame, group: DecoyGroup) -> dict[str, float]:
    """The setting a group's models are trained at, from its search trials (the matched
    validation set only: what a practitioner has).

    Fixed-weight groups: the trial with the lowest validation classification loss. Groups whose
    λ is searched: among trials within :data:`ACCURACY_TOLERANCE` of the best validation
    accuracy, the one with the lowest validation penalty — as much of the term as the task
    affords (the classification loss alone would always prefer the smallest λ).

    Args:
        trials: registry rows of the search (``hyperparameters``, ``scores`` with the
            validation metrics of each trial's kept epoch).
        group: the group.

    Returns:
        ``{"learning_rate": ...}`` (and ``"heatmap_weight"`` for searched λ).

    Raises:
        ValueError: no trial has a finite validation loss.
    """
    rows = []
    for row in trials.itertuples():
        scores = row.scores or {}
        rows.append({**(row.hyperparameters or {}),
                     "loss": scores.get("val_classification", np.nan),
                     "accuracy": scores.get("val_accuracy", np.nan),
                     "penalty": scores.get("val_penalty", np.nan)})
    frame = pd.DataFrame(rows)
    frame = frame[np.isfinite(frame.get("loss", pd.Series(dtype=float)))]
    if frame.empty:
        raise ValueError(f"group {group.name!r}: no search trial has a finite validation loss")
    if group.weighting == "searched":
        near = frame[frame["accuracy"] >= frame["accuracy"].max() - ACCURACY_TOLERANCE]
        best = near.sort_values(["penalty", "loss"]).iloc[0]
    else:
        best = frame.sort_values("loss").iloc[0]
    keys = ["learning_rate"] + (["heatmap_weight"] if group.weighting == "searched" else [])
    return {k: float(best[k]) for k in keys}


def build_model(group: DecoyGroup, settings: ShortcutSettings, learning_rate: float,
                heatmap_weight: float | None = None) -> Any:
    """A compiled model of the group (``heatmap_weight``: λ when it is not the group's fixed one)."""
    import keras

    from ... import models
    from ...losses import HeatmapLossConfig

    weight = group.weight if heatmap_weight is None else float(heatmap_weight)
    base = models.build_model(settings.backbone, weights=backbone_weights(settings))
    if group.kind == "consistency":
        model = models.ConsistencyModel(base.backbone, base.head, weight=weight,
                                        epsilon=settings.consistency_epsilon,
                                        name=base.name)
    elif group.kind in ("heatmap", "adaptive"):
        config = HeatmapLossConfig(method=group.method, penalty=group.penalty, weight=weight,
                                   inside_weight=weight if group.inside else 0.0,
                                   class_mode="true", classification="cce",
                                   target=group.target, layers=group.layers)
        cls = models.GradientBalancedModel if group.kind == "adaptive" else models.HeatmapLossModel
        extra = {"ratio": ADAPTIVE_RATIO} if group.kind == "adaptive" else {}
        model = cls(base.backbone, base.head, heatmap=config, name=base.name, **extra)
    else:
        model = base
    model.compile(optimizer=keras.optimizers.Adam(learning_rate))
    return model


def group_table(groups: list[DecoyGroup]) -> pd.DataFrame:
    """One row per group: condition, name, kind, models, explainer and penalty, λ, data."""
    return pd.DataFrame([{
        "condition": g.condition, "group": g.name, "kind": g.kind, "models": g.n_seeds,
        "explainer in the loss": g.penalised_explainer or "",
        "penalty": (g.penalty + (" + inside reward" if g.inside else "")) if g.method else "",
        "target": g.target if g.method else "",
        "λ": ({"fixed": g.weight, "searched": "searched"}.get(g.weighting, "")
              if g.lambda_factor is None else f"{g.lambda_factor:g} × chosen"),
        "ρ": g.rho, "difficulty": g.difficulty, "train/class": g.n_train_per_class}
        for g in groups])


def sample_images(settings: ShortcutSettings, seed: int, n_per_class: int = 1
                  ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """A few test images of each test set (for the chapter's sample figure).

    Returns:
        ``(images, labels)``: test set → uint8 images, test set → labels.
    """
    group = _main_groups(settings)[0]
    plan = data_plan(group, settings, seed)
    images, labels = {}, {}
    for test_set in TEST_SETS:
        data = generate(plan.experiment, n_per_class, plan.test.seed, **plan.options(test_set))
        images[test_set], labels[test_set] = data.images, data.labels
    return images, labels


def marker_agreement(labels: np.ndarray, marker_classes: np.ndarray) -> float:
    """Fraction of images whose decoy marker codes their own class (-1 = no marker).

    Returns:
        Agreement among images that carry a marker (NaN when none does).
    """
    labels = np.asarray(labels)
    marker_classes = np.asarray(marker_classes)
    present = marker_classes >= 0
    return float(np.mean(labels[present] == marker_classes[present])) if present.any() \
        else float("nan")


__all__ = ["ACCURACY_TOLERANCE", "ADAPTIVE_RATIO", "BASE_EXPERIMENT", "CONDITIONS", "DecoyGroup",
           "EARLY_LAYER", "EXPERIMENT", "KINDS", "LAST_LAYER", "PROTOCOL", "backbone_weights",
           "build_model", "chapter_groups", "choose_setting", "data_plan", "dose_groups",
           "group_table", "lambda_groups", "marker_agreement", "parse_conditions",
           "profile_with_settings", "replicate_spec", "sample_images", "search_key",
           "search_spec", "training_sets"]
