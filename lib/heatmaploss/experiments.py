"""Experiments 1 and 2 end to end: data, both groups' searches, evaluation, tidy results.

:func:`run_experiment` is what notebooks 03 and 04 call. Everything it produces is resumable:
searches continue where they stopped (:mod:`heatmaploss.search`), models are recorded once in
the registry, and a model already evaluated on the test set is not evaluated again. The
returned :class:`ExperimentResults` is built from the registry alone, so it can also be
rebuilt later (or on another machine sharing a PostgreSQL registry) with
:func:`collect_results`. Figures, statistics files, ``summary.json`` and report rows come from
:mod:`heatmaploss.experiment_outputs`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import protocols as protocols_module
from .evaluate import EXPLAINERS, REGIONS
from .profiles import Profile, get_profile
from .search import SearchSpec, derive_seed

logger = logging.getLogger(__name__)

#: Regions compared between groups, per experiment (experiment 1 has no sex marker).
COMPARED_REGIONS = {1: ("heart", "fat"), 2: ("heart", "sex_marker", "fat")}


def _profile(profile: str | Profile) -> Profile:
    return profile if isinstance(profile, Profile) else get_profile(profile)


def data_plan(experiment: int, profile: str | Profile, seed: int) -> dict:
    """Sizes and seeds of an experiment's training, validation and test sets."""
    prof = _profile(profile)
    settings, sizes = prof.experiments, prof.data
    plan = {"experiment": experiment, "chunk_size": sizes.chunk_size}
    for part in ("train", "val", "test"):
        n = getattr(settings, f"n_{part}_per_class") or getattr(sizes, f"n_{part}_per_class")
        plan[part] = {"n_per_class": n, "seed": derive_seed("data", part, experiment, seed)}
    return plan


def search_specs(experiment: int, profile: str | Profile, seed: int,
                 protocols: str | tuple[str, ...] | None = None) -> list[SearchSpec]:
    """The searches of one experiment: one per protocol and group."""
    prof = _profile(profile)
    names = protocols_module.check_protocols(protocols or prof.experiments.protocols)
    plan = data_plan(experiment, prof, seed)
    return [SearchSpec(experiment=experiment, protocol=name,
                       recipe=protocols_module.group_settings(name, group, prof.experiments),
                       profile=prof.name, seed=seed,
                       max_trials=prof.experiments.trials_per_group, data=plan)
            for name in names for group in protocols_module.GROUPS]


#: Columns of the per-model table shown in the chapters.
MODEL_COLUMNS = ["protocol", "group", "trial", "learning_rate", "epochs", "best_epoch",
                 "wall_time_s", "val_accuracy", "test_accuracy", "selected", "hirescam_heart",
                 "gradcam_heart", "saliency_heart"]


def search_plan(experiment: int, profile: str | Profile, seed: int,
                protocols: str | tuple[str, ...] | None = None) -> pd.DataFrame:
    """One row per search: what each group's models are and how they are trained."""
    rows = []
    for spec in search_specs(experiment, profile, seed, protocols):
        r = spec.recipe
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


def build_model(recipe: protocols_module.GroupRecipe, learning_rate: float, seed: int | None = None):
    """A compiled model for a group recipe (the search's model builder)."""
    import keras

    from . import models
    from .losses import HeatmapLossConfig

    heatmap = HeatmapLossConfig(
        method=recipe.explainer if recipe.penalty else None,
        penalty=recipe.penalty or "outside_fraction", weight=recipe.penalty_weight,
        class_mode=recipe.heatmap_class, classification=recipe.classification)
    model = models.build_model(recipe.backbone, heatmap=heatmap, weights=recipe.backbone_weights,
                               frozen=not recipe.trainable_backbone, seed=seed)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate))
    return model


def save_model(model: Any, path: Path) -> None:
    """Save a trained model without its optimizer state (a VGG16's Adam state is ~120 MB)."""
    copy = type(model).from_config(model.get_config())
    copy.set_weights(model.get_weights())
    copy.save(path)


def load_model(path: str | Path):
    """Load a model saved by a search (no optimizer, not compiled)."""
    import keras

    from . import models  # noqa: F401 - registers HeatmapLossModel for deserialisation

    return keras.models.load_model(path, compile=False)


def _datasets(experiment: int, plan: dict):
    """Training and validation sets (uint8 images and not-heart masks stay compact)."""
    from . import synthetic

    out = {}
    for part in ("train", "val"):
        data = synthetic.generate(experiment, plan[part]["n_per_class"], plan[part]["seed"])
        out[part] = (data.images, data.labels, ~data.region("heart"))
    return out


def _record_fn(registry, search_id: int, recipe: protocols_module.GroupRecipe):
    def record(rec: dict) -> None:
        val = rec["validation"]
        registry.record_model(
            search_id, rec["trial_id"], status="completed", seed=rec["trial_seed"],
            hyperparameters={"learning_rate": rec["learning_rate"]},
            epochs=rec["epochs_run"], best_epoch=rec["best_epoch"],
            wall_time_s=rec["train_seconds"], val_accuracy=val.get("val_accuracy"),
            val_loss=val.get(recipe.objective), model_path=rec["model_path"],
            scores={k: v for k, v in val.items()})
    return record


def run_searches(experiment: int, profile: str | Profile, seed: int, results_dir: str | Path,
                 registry, protocols: str | tuple[str, ...] | None = None,
                 progress: bool = True) -> dict[str, int]:
    """Run (or continue, or reuse) every search of an experiment.

    A search whose models are all in the registry is not even reopened, so results recorded in
    a shared registry by another machine are reused.

    Returns:
        Search key → registry search id.
    """
    from . import models, search

    plan = data_plan(experiment, profile, seed)
    data = None
    ids = {}
    for spec in search_specs(experiment, profile, seed, protocols):
        recipe = spec.recipe
        ids[spec.key] = registry.get_or_create_search(
            experiment=f"exp{experiment}", protocol=spec.protocol, group=recipe.group,
            name=spec.key, profile=spec.profile, seed=spec.seed,
            loss_config={**recipe.as_dict(), "fingerprint": spec.fingerprint_hash()},
            hyperparameter_space={"learning_rate": [recipe.lr_min, recipe.lr_max, "log"]})
        done = registry.models(search_id=ids[spec.key])
        if len(done) >= spec.max_trials:
            continue
        if data is None:
            data = _datasets(experiment, plan)

        def make_data(shuffle_seed: int, recipe=recipe):
            images, labels, masks = data["train"]
            train = models.make_dataset(images, labels, masks, batch_size=recipe.batch_size,
                                        shuffle=True, seed=shuffle_seed)
            images, labels, masks = data["val"]
            val = models.make_dataset(images, labels, masks, batch_size=max(recipe.batch_size, 64),
                                      shuffle=False)
            return train, val

        search.run_search(spec, build_model, make_data, results_dir,
                          record=_record_fn(registry, ids[spec.key], recipe),
                          save_model=save_model, progress=progress)
    return ids


def evaluate_models(experiment: int, profile: str | Profile, seed: int,
                    results_dir: str | Path, registry, search_ids: dict[str, int],
                    progress: bool = True) -> None:
    """Evaluate every recorded model of the given searches that lacks test metrics."""
    import keras
    from tqdm.auto import tqdm

    from .evaluate import evaluate_model, metric_rows

    prof = _profile(profile)
    plan = data_plan(experiment, prof, seed)
    todo = []
    for search_id in search_ids.values():
        frame = registry.models(search_id=search_id)
        todo += [row for row in frame.itertuples() if pd.isna(row.test_accuracy)]
    for row in tqdm(todo, desc=f"evaluate exp{experiment}", unit="model",
                    disable=not progress or not todo, leave=False):
        keras.backend.clear_session()
        model = load_model(Path(results_dir) / row.model_path)
        evaluation = evaluate_model(
            model, experiment, plan["test"]["n_per_class"], plan["test"]["seed"],
            chunk_size=plan["chunk_size"], batch_size=prof.experiments.eval_batch_size)
        accuracy = evaluation["accuracy"]
        overall = float(accuracy.loc[accuracy["class_name"] == "all", "value"].iloc[0])
        # Metrics first, test accuracy last: a model counts as evaluated only when both exist.
        registry.record_metrics(row.model_id, metric_rows(evaluation))
        registry.record_model(row.search_id, row.trial, test_accuracy=overall)
        del model
    keras.backend.clear_session()


@dataclass
class ExperimentResults:
    """Tidy results of one experiment, read from the registry.

    Attributes:
        experiment: 1 or 2.
        profile: profile name.
        seed: base seed.
        results_dir: the profile's results folder.
        models: one row per model: protocol, group, trial, model_id, learning_rate, epochs,
            best_epoch, wall_time_s, val_accuracy, test_accuracy, model_path, selected
            (passes the protocol's validation-accuracy filter).
        metrics: long table of test metrics (model_id, metric, explainer, region, class_name,
            value, n).
        recipes: protocol → group → :class:`~heatmaploss.protocols.GroupRecipe`.
    """

    experiment: int
    profile: str
    seed: int
    results_dir: Path
    models: pd.DataFrame
    metrics: pd.DataFrame
    recipes: dict = field(default_factory=dict)

    @property
    def protocols(self) -> list[str]:
        return list(self.recipes)

    def overlap_table(self) -> pd.DataFrame:
        """Model-level overlaps: one row per model, one column per ``<explainer>_<region>``."""
        scores = self.metrics[(self.metrics["metric"] == "overlap")
                              & (self.metrics["class_name"] == "all")]
        wide = scores.pivot_table(index="model_id", columns=["explainer", "region"],
                                  values="value", aggfunc="first", dropna=False)
        wide.columns = [f"{e}_{r}" for e, r in wide.columns]
        # Share of maps without positive mass, per explainer (column <explainer>_empty).
        empty = self.metrics[(self.metrics["metric"] == "empty_maps")
                             & (self.metrics["class_name"] == "all")]
        empty = empty.assign(share=empty["value"] / empty["n"]).pivot_table(
            index="model_id", columns="explainer", values="share", aggfunc="first")
        empty.columns = [f"{e}_empty" for e in empty.columns]
        return (self.models.merge(wide, left_on="model_id", right_index=True, how="left")
                .merge(empty, left_on="model_id", right_index=True, how="left"))

    def scores(self, protocol: str, explainer: str, region: str,
               selected_only: bool = True) -> dict[str, np.ndarray]:
        """Group → model-level overlap scores (selected models; NaN kept).

        ``region="empty"`` gives each model's share of maps without positive mass instead.
        """
        table = self.overlap_table()
        column = f"{explainer}_{region}"
        out = {}
        for group in protocols_module.GROUPS:
            rows = table[(table["protocol"] == protocol) & (table["group"] == group)]
            if selected_only:
                rows = rows[rows["selected"]]
            out[group] = rows[column].to_numpy(dtype=float) if column in rows else np.array([])
        return out

    def comparisons(self, protocol: str) -> dict[str, dict[str, dict[str, Any]]]:
        """``explainer → region →`` the CCE-vs-heatmap comparison of model-level overlaps.

        Region ``empty`` compares the share of maps without positive mass. Each entry holds
        ``result`` (a :class:`~heatmaploss.stats.GroupComparison`, CCE first,
        or ``None`` with ``error`` saying why: too few models, constant scores),
        ``n_dropped_nan`` (models left out because a class had only empty maps) and ``p_holm``
        (Holm-adjusted over this protocol's family of comparisons).
        """
        from . import stats

        out: dict[str, dict[str, dict[str, Any]]] = {}
        family = []
        for explainer in EXPLAINERS:
            for region in COMPARED_REGIONS[self.experiment] + ("empty",):
                groups = self.scores(protocol, explainer, region)
                cce, heatmap = (v[~np.isnan(v)] for v in groups.values())
                entry: dict[str, Any] = {
                    "result": None, "error": None, "p_holm": None,
                    "n_dropped_nan": [int(np.isnan(v).sum()) for v in groups.values()]}
                try:
                    entry["result"] = stats.compare_groups(cce, heatmap, seed=self.seed)
                    family.append(entry)
                except ValueError as exc:
                    entry["error"] = str(exc)
                    entry["n"] = [len(cce), len(heatmap)]
                out.setdefault(explainer, {})[region] = entry
        if family:
            adjusted = stats.holm([e["result"].p_value for e in family]).p_adjusted
            for entry, p in zip(family, adjusted):
                entry["p_holm"] = float(p)
        return out

    def accuracy_table(self) -> pd.DataFrame:
        """Test accuracy per protocol and group (selected models): mean, sd, min, max, n."""
        chosen = self.models[self.models["selected"]]
        table = (chosen.groupby(["protocol", "group"])["test_accuracy"]
                 .agg(["count", "mean", "std", "min", "max"])
                 .rename(columns={"count": "n_models"}))
        per_class = self.metrics[(self.metrics["metric"] == "accuracy")
                                 & (self.metrics["class_name"] != "all")
                                 & self.metrics["model_id"].isin(chosen["model_id"])]
        if not per_class.empty:
            by_class = (per_class.pivot_table(index=["protocol", "group"], columns="class_name",
                                     values="value", aggfunc="mean"))
            table = table.join(by_class.add_prefix("acc_"))
        return table

    def training_time_table(self) -> pd.DataFrame:
        """Training wall time per protocol and group (all trained models)."""
        frame = self.models.assign(seconds_per_epoch=self.models["wall_time_s"]
                                   / self.models["epochs"])
        return (frame.groupby(["protocol", "group"])
                .agg(n_models=("model_id", "count"), mean_s=("wall_time_s", "mean"),
                     median_s=("wall_time_s", "median"), total_s=("wall_time_s", "sum"),
                     mean_epochs=("epochs", "mean"),
                     median_s_per_epoch=("seconds_per_epoch", "median")))


def collect_results(experiment: int, profile: str | Profile, seed: int, results_dir: str | Path,
                    registry, protocols: str | tuple[str, ...] | None = None
                    ) -> ExperimentResults:
    """Build :class:`ExperimentResults` from the registry for this run's searches."""
    prof = _profile(profile)
    specs = search_specs(experiment, prof, seed, protocols)
    keys = {spec.key for spec in specs}
    frame = registry.models(experiment=f"exp{experiment}", profile=prof.name)
    frame = frame[frame["search"].isin(keys)].copy()
    recipes: dict = {}
    for spec in specs:
        recipes.setdefault(spec.protocol, {})[spec.group] = spec.recipe
    threshold = {(p, g): r.min_val_accuracy for p, gs in recipes.items() for g, r in gs.items()}
    frame["learning_rate"] = frame["hyperparameters"].map(lambda h: (h or {}).get("learning_rate"))
    frame["selected"] = [
        bool(acc > threshold[(p, g)]) and not pd.isna(test)
        for p, g, acc, test in zip(frame["protocol"], frame["group"], frame["val_accuracy"],
                                   frame["test_accuracy"])]
    metrics = registry.metrics(experiment=f"exp{experiment}", profile=prof.name, dataset="test")
    metrics = metrics[metrics["model_id"].isin(frame["model_id"])]
    return ExperimentResults(experiment=experiment, profile=prof.name, seed=seed,
                             results_dir=Path(results_dir), models=frame.reset_index(drop=True),
                             metrics=metrics.reset_index(drop=True), recipes=recipes)


def run_experiment(experiment: int, profile: str | Profile, seed: int, results_dir: str | Path,
                   protocols: str | tuple[str, ...] | None = None,
                   database_url: str | None = None, progress: bool = True
                   ) -> ExperimentResults:
    """Searches, evaluation and tidy results of one experiment (resumable).

    Args:
        experiment: 1 or 2.
        profile: profile name or object (sizes, trials, backbone).
        seed: base seed (data, searches and test sets derive their seeds from it).
        results_dir: the profile's results folder.
        protocols: protocol names (comma-separated string or sequence); default the
            profile's.
        database_url: registry URL; default ``$HEATMAPLOSS_DATABASE_URL`` or the SQLite file in
            ``results_dir``.
        progress: show progress bars.

    Returns:
        The experiment's :class:`ExperimentResults`.
    """
    from .registry import Registry

    if experiment not in (1, 2):
        raise ValueError(f"experiment={experiment!r}: allowed 1, 2")
    results_dir = Path(results_dir)
    with Registry(url=database_url or None, results_dir=results_dir) as registry:
        ids = run_searches(experiment, profile, seed, results_dir, registry, protocols, progress)
        evaluate_models(experiment, profile, seed, results_dir, registry, ids, progress)
        return collect_results(experiment, profile, seed, results_dir, registry, protocols)


__all__ = ["COMPARED_REGIONS", "MODEL_COLUMNS", "search_plan", "ExperimentResults", "build_model", "collect_results",
           "data_plan", "evaluate_models", "load_model", "run_experiment", "run_searches",
           "save_model", "search_specs"]
