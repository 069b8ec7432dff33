"""Run the beyond-the-thesis chapter: train, evaluate and collect every group of models.

For each :class:`~heatmaploss.beyond.DecoyGroup`, a Keras Tuner search
(:func:`heatmaploss.search.run_search`) trains the group's models on decoy data and records them
in the registry; :func:`evaluate_group` measures each model on the matched, shuffled and absent
test sets (:func:`heatmaploss.evaluate.evaluate_model`); :func:`collect` turns the registry's rows
into the per-model table :mod:`heatmaploss.beyond_analysis` works on. Everything resumes: a
search whose models are recorded is not reopened, an evaluated model is not evaluated again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pandas as pd

from .beyond import (CONDITIONS, EXPERIMENT, DecoyGroup, chapter_groups, data_plan,
                     model_builder, profile_with_settings, search_spec, test_set_options)
from .beyond_analysis import EXPLAINERS, REGIONS, TEST_SETS
from .profiles import Profile


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

    prof = profile_with_settings(profile)
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


__all__ = ["collect", "evaluate_group", "run_chapter", "run_group"]
