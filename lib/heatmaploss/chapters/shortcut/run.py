"""The shortcut chapter, running it: train, evaluate and collect every group of models.

Each :class:`~heatmaploss.chapters.shortcut.plan.DecoyGroup` becomes a
:class:`~heatmaploss.runs.study.Study` — a Keras Tuner search on decoy data whose trials record
their models in the registry — and each model is evaluated once on the matched, shuffled and
absent test sets; :func:`collect` turns the registry's rows into the per-model table
:mod:`.analysis` works on. Everything resumes: a search whose models are recorded is not
reopened, an evaluated model is not evaluated again.
"""

from __future__ import annotations

import functools
from typing import Any

import pandas as pd

from ...names import EXPLAINERS, TEST_SETS
from ...project.context import RunContext
from ...project.profiles import Profile
from ...runs.study import Evaluation, Study
from .analysis import REGIONS
from .plan import (
    CONDITIONS,
    EXPERIMENT,
    DecoyGroup,
    build_model,
    chapter_groups,
    data_plan,
    profile_with_settings,
    search_key,
    search_spec,
)

#: Images per attribution batch when evaluating.
EVAL_BATCH_SIZE = 64


def evaluate_model(plan: Any, model: Any) -> Evaluation:
    """Evaluate a model on all three test sets.

    The matched set is explained by every explainer; on the shuffled and absent sets only the
    accuracy is measured (they are the intervention tests; maps there would double the cost).
    The headline accuracy is the matched set's.
    """
    from ...runs.evaluate import evaluate_on_plan

    rows, headline = [], float("nan")
    for test_set in TEST_SETS:
        found, accuracy = evaluate_on_plan(
            model, plan, batch_size=EVAL_BATCH_SIZE, dataset=test_set, decoy_set=test_set,
            explainers=EXPLAINERS if test_set == "matched" else (), regions=REGIONS)
        rows += found
        if test_set == "matched":
            headline = accuracy
    return Evaluation(rows, headline)


def studies(groups: list[DecoyGroup], ctx: RunContext) -> list[Study]:
    """One study per group (nothing is built or generated yet)."""
    from ...pipeline import SyntheticTrainingData

    settings = ctx.profile.beyond
    data: dict[tuple, SyntheticTrainingData] = {}
    out = []
    for group in groups:
        plan = data_plan(group, settings, ctx.seed, ctx.profile.data.chunk_size)
        # Groups with the same data plan share one copy of the (lazily generated) images.
        shared = data.setdefault((plan.train, plan.val, plan.difficulty),
                                 SyntheticTrainingData(plan))
        out.append(Study(
            spec=search_spec(group, ctx.profile, ctx.seed),
            build_model=functools.partial(build_model, group, settings),
            make_data=functools.partial(shared, batch_size=settings.batch_size),
            evaluate=functools.partial(evaluate_model, plan), label=group.label))
    return out


def collect(groups: list[DecoyGroup], search_ids: dict[str, int], registry: Any,
            profile: Profile, seed: int) -> pd.DataFrame:
    """The per-model table that :mod:`heatmaploss.chapters.shortcut.analysis` works on.

    Args:
        groups: the chapter's groups.
        search_ids: search key → registry search id.
        registry: the results registry.
        profile: the run's profile.
        seed: the run's base seed.

    Returns:
        One row per evaluated model (see :mod:`heatmaploss.chapters.shortcut.analysis` for the columns).
    """
    keys = {search_key(g, profile.name, seed): g for g in groups}
    by_id = {search_ids[k]: g for k, g in keys.items() if k in search_ids}
    found = registry.models(experiment=EXPERIMENT, profile=profile.name)
    found = found[found["search_id"].isin(by_id) & found["test_accuracy"].notna()]
    values = registry.metrics(experiment=EXPERIMENT, profile=profile.name)
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


def run_chapter(ctx: RunContext, conditions: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Train, evaluate and collect every group of the chapter (resumable).

    Args:
        ctx: the run (its profile's ``beyond`` settings size everything).
        conditions: which conditions to run (default: the profile's ``conditions``).

    Returns:
        The per-model table (one row per evaluated model).
    """
    from tqdm.auto import tqdm

    from ...registry import Registry
    from ...runs.study import run_study

    prof = profile_with_settings(ctx.profile)
    conditions = tuple(conditions or prof.beyond.conditions)
    bad = [c for c in conditions if c not in CONDITIONS]
    if bad:
        raise ValueError(f"conditions {bad!r}: allowed {', '.join(CONDITIONS)}")
    groups = [g for g in chapter_groups(prof.beyond) if g.condition in conditions]
    ids: dict[str, int] = {}
    with Registry(url=ctx.database_url, results_dir=ctx.results) as registry:
        for study in tqdm(studies(groups, ctx), desc="decoy groups", unit="group",
                          disable=not ctx.progress):
            ids[study.spec.key] = run_study(study, registry, ctx.out, ctx.progress)
        return collect(groups, ids, registry, prof, ctx.seed)


__all__ = ["EVAL_BATCH_SIZE", "collect", "evaluate_model", "run_chapter", "studies"]
