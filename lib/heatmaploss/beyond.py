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
shuffled and absent test sets. Searches, models and metrics go through
:mod:`heatmaploss.search`, :mod:`heatmaploss.evaluate` and :mod:`heatmaploss.registry`, so the
chapter resumes where it stopped. Statistics, figures and summary entries are in
:mod:`heatmaploss.beyond_analysis` and :mod:`heatmaploss.beyond_figures`.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from .beyond_analysis import EXPLAINERS, REGIONS, TEST_SETS
from .profiles import BEYOND_CONDITIONS, BeyondSettings, Profile, get_profile
from .search import SearchSpec, derive_seed

logger = logging.getLogger(__name__)

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


def _profile(profile: str | Profile) -> Profile:
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


def _searched_weight(lambda_range: tuple[float, float]) -> Callable[[Any], dict]:
    """Extra hyperparameter of the λ search: the heatmap weight, log-uniform."""

    def hyperparameters(hp: Any) -> dict:
        return {"heatmap_weight": hp.Float("heatmap_weight", float(lambda_range[0]),
                                           float(lambda_range[1]), sampling="log")}

    return hyperparameters


def _training_data(plan: dict) -> dict:
    """Training and validation arrays: uint8 images, labels, not-heart masks."""
    from . import synthetic

    out = {}
    for part in ("train", "val"):
        data = synthetic.generate(plan["experiment"], plan[part]["n_per_class"],
                                  plan[part]["seed"], decoy_set="matched", **plan["options"])
        out[part] = (data.images, data.labels, ~data.region("heart"))
    return out


def run_group(group: DecoyGroup, prof: Profile, seed: int, results_dir: Path, registry: Any,
              progress: bool = True) -> int:
    """Train (or finish, or reuse) a group's models; returns the registry search id."""
    from . import models, search
    from .experiments import save_model

    settings = prof.beyond
    spec = search_spec(group, settings, prof.name, seed)
    recipe = spec.recipe
    space = {"learning_rate": [recipe.lr_min, recipe.lr_max, "log"]}
    if group.weighting == "searched":
        space["heatmap_weight"] = [*settings.lambda_range, "log"]
    search_id = registry.get_or_create_search(
        experiment=EXPERIMENT, protocol=spec.protocol, group=group.name, name=spec.key,
        profile=prof.name, seed=seed,
        loss_config={**group.as_dict(), "fingerprint": spec.fingerprint_hash()},
        hyperparameter_space=space)
    if len(registry.models(search_id=search_id)) >= spec.max_trials:
        return search_id
    data = _training_data(spec.data)

    def make_data(shuffle_seed: int) -> tuple:
        train = models.make_dataset(*data["train"], batch_size=recipe.batch_size, shuffle=True,
                                    seed=shuffle_seed)
        val = models.make_dataset(*data["val"], batch_size=max(recipe.batch_size, 64),
                                  shuffle=False)
        return train, val

    def record(rec: dict) -> None:
        val = rec["validation"]
        registry.record_model(
            search_id, rec["trial_id"], status="completed", seed=rec["trial_seed"],
            hyperparameters=rec.get("hyperparameters") or {"learning_rate": rec["learning_rate"]},
            epochs=rec["epochs_run"], best_epoch=rec["best_epoch"],
            wall_time_s=rec["train_seconds"], val_accuracy=val.get("val_accuracy"),
            val_loss=val.get(recipe.objective), model_path=rec["model_path"], scores=val)

    extra = _searched_weight(settings.lambda_range) if group.weighting == "searched" else None
    search.run_search(spec, model_builder(group), make_data, results_dir, record=record,
                      save_model=save_model, progress=progress, hyperparameters=extra)
    return search_id


def evaluate_group(group: DecoyGroup, prof: Profile, seed: int, results_dir: Path,
                   registry: Any, search_id: int) -> None:
    """Evaluate every model of a group that lacks test metrics, on all three test sets.

    The matched set is explained by every explainer; on the shuffled and absent sets only the
    accuracy is measured (they are the intervention tests; maps there would double the cost).
    """
    import keras

    from .evaluate import evaluate_model, metric_rows
    from .experiments import load_model

    plan = data_plan(group, prof.beyond, seed)
    frame = registry.models(search_id=search_id)
    for row in frame.itertuples():
        if not pd.isna(row.test_accuracy):
            continue
        keras.backend.clear_session()
        model = load_model(Path(results_dir) / row.model_path)
        rows, overall = [], None
        for test_set in TEST_SETS:
            evaluation = evaluate_model(
                model, plan["experiment"], plan["test"]["n_per_class"], plan["test"]["seed"],
                chunk_size=prof.data.chunk_size, batch_size=64,
                explainers=EXPLAINERS if test_set == "matched" else (),
                regions=REGIONS, data_options=test_set_options(plan, test_set))
            rows += [{**r, "dataset": test_set} for r in metric_rows(evaluation)]
            if test_set == "matched":
                accuracy = evaluation["accuracy"]
                overall = float(accuracy.loc[accuracy["class_name"] == "all", "value"].iloc[0])
        # Metrics first, test accuracy last: a model counts as evaluated only when both exist.
        registry.record_metrics(row.model_id, rows)
        registry.record_model(row.search_id, row.trial, test_accuracy=overall)
        del model
    keras.backend.clear_session()


def collect(groups: list[DecoyGroup], search_ids: dict[str, int], registry: Any,
            profile: str) -> pd.DataFrame:
    """The per-model table that :mod:`heatmaploss.beyond_analysis` works on.

    Args:
        groups: the chapter's groups.
        search_ids: group label → registry search id.
        registry: the results registry.
        profile: profile name.

    Returns:
        One row per evaluated model (see :mod:`heatmaploss.beyond_analysis` for the columns).
    """
    by_id = {search_ids[g.label]: g for g in groups if g.label in search_ids}
    found = registry.models(experiment=EXPERIMENT, profile=profile)
    found = found[found["search_id"].isin(by_id) & found["test_accuracy"].notna()]
    values = registry.metrics(experiment=EXPERIMENT, profile=profile)
    values = values[values["model_id"].isin(found["model_id"])]
    rows = []
    for model in found.itertuples():
        group = by_id[model.search_id]
        mine = values[values["model_id"] == model.model_id]
        hp = model.hyperparameters or {}
        scores = model.scores or {}
        row = {"model_id": model.model_id, "condition": group.condition, "group": group.name,
               "loss": group.loss, "method": group.method or "", "penalty": group.penalty,
               "weighting": group.weighting, "difficulty": group.difficulty,
               "n_train_per_class": group.n_train_per_class,
               "learning_rate": hp.get("learning_rate"),
               "heatmap_weight": hp.get("heatmap_weight",
                                        scores.get("weight", group.weight) if group.method
                                        else 0.0),
               "val_accuracy": model.val_accuracy, "val_penalty": scores.get("val_penalty"),
               "val_classification": scores.get("val_classification"),
               "train_seconds": model.wall_time_s, "epochs": model.epochs,
               "model_path": model.model_path}
        accuracy = mine[mine["metric"] == "accuracy"]
        for test_set in TEST_SETS:
            part = accuracy[accuracy["dataset"] == test_set]
            per_class = part[part["class_name"] != "all"]["value"]
            row[f"acc_{test_set}"] = float(part[part["class_name"] == "all"]["value"].iloc[0])
            row[f"worst_{test_set}"] = float(per_class.min())
        overlap = mine[(mine["metric"] == "overlap") & (mine["class_name"] == "all")
                       & (mine["dataset"] == "matched")]
        for item in overlap.itertuples():
            row[f"mass_{item.explainer}_{item.region}"] = item.value
        empty = mine[(mine["metric"] == "empty_maps") & (mine["class_name"] == "all")
                     & (mine["dataset"] == "matched")]
        for item in empty.itertuples():
            row[f"empty_{item.explainer}"] = item.value
        rows.append(row)
    return pd.DataFrame(rows)


def run_chapter(profile: str | Profile, seed: int, results_dir: str | Path,
                conditions: tuple[str, ...] | None = None, database_url: str | None = None,
                progress: bool = True) -> pd.DataFrame:
    """Train, evaluate and collect every group of the chapter (resumable).

    Args:
        profile: profile name or object (its ``beyond`` settings size everything).
        seed: base seed (data, searches and test sets derive theirs from it).
        results_dir: the profile's results folder.
        conditions: which conditions to run (default: the profile's ``conditions``).
        database_url: registry URL (default ``$HEATMAPLOSS_DATABASE_URL`` or the SQLite file).
        progress: show progress bars.

    Returns:
        The per-model table (one row per evaluated model).
    """
    from tqdm.auto import tqdm

    from .registry import Registry

    prof = _profile(profile)
    conditions = tuple(conditions or prof.beyond.conditions)
    bad = [c for c in conditions if c not in CONDITIONS]
    if bad:
        raise ValueError(f"conditions {bad!r}: allowed {', '.join(CONDITIONS)}")
    results_dir = Path(results_dir)
    groups = [g for g in chapter_groups(prof.beyond) if g.condition in conditions]
    ids: dict[str, int] = {}
    with Registry(url=database_url or None, results_dir=results_dir) as registry:
        for group in tqdm(groups, desc="decoy groups", unit="group", disable=not progress):
            ids[group.label] = run_group(group, prof, seed, results_dir, registry, progress)
            evaluate_group(group, prof, seed, results_dir, registry, ids[group.label])
        return collect(groups, ids, registry, prof.name)


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
           "PROTOCOL", "chapter_groups", "collect", "data_plan", "evaluate_group",
           "cut_at", "marker_agreement", "model_builder", "run_chapter", "run_group", "sample_images",
           "search_spec",
           "test_set_options"]
