"""The shortcut chapter, running it: each group's setting search, its seeds, their evaluation.

For each :class:`~heatmaploss.chapters.shortcut.plan.DecoyGroup` two studies go through the
study runner: a short Keras Tuner search on the matched validation set (its trials are never
evaluated or compared) and, at the setting :func:`~.plan.choose_setting` picks from it,
``n_seeds`` independent seeds, each evaluated once (:mod:`.evaluation`). The ``dose`` and
``lambda`` conditions are built from the best method of ``main``, once ``main`` is evaluated.
:func:`collect` turns the registry's rows into the per-model table :mod:`.analysis` works on.
Everything resumes: finished searches and seeds are not retrained, evaluated models are not
evaluated again.
"""

from __future__ import annotations

import functools
from typing import Any

import pandas as pd

from ...project.context import RunContext
from ...runs.study import Study
from . import analysis
from .plan import (EARLY_LAYER, EXPERIMENT, DecoyGroup, build_model, chapter_groups,
                   choose_setting, data_plan, dose_groups, lambda_groups, parse_conditions,
                   profile_with_settings, replicate_spec, search_spec, training_sets)


def _study(group: DecoyGroup, ctx: RunContext, setting: dict | None) -> Study:
    """The group's search (``setting`` None) or its seeds at ``setting``."""
    from ...pipeline import SyntheticTrainingData
    from .evaluation import evaluate_model

    s = ctx.profile.shortcut
    plan = data_plan(group, s, ctx.seed, ctx.profile.data.chunk_size)
    train, val = training_sets(group)
    data = SyntheticTrainingData(plan, train_sets=train, val_set=val, required=group.inside)
    if setting is None:
        spec, evaluate = search_spec(group, ctx.profile, ctx.seed), None
    else:
        spec = replicate_spec(group, ctx.profile, ctx.seed, setting)
        evaluate = functools.partial(evaluate_model, plan, s, EARLY_LAYER[s.backbone])
    return Study(spec=spec, build_model=functools.partial(build_model, group, s),
                 make_data=functools.partial(data, batch_size=s.batch_size),
                 evaluate=evaluate, label=group.name)


def chosen_setting(group: DecoyGroup, ctx: RunContext, registry: Any) -> dict[str, float]:
    """Run (or reuse) the group's search and return the setting its rule picks."""
    from ...runs.study import run_study

    study = _study(group, ctx, None)
    search_id = run_study(study, registry, ctx.out, ctx.progress)
    return choose_setting(registry.models(search_id=search_id), group)


def run_group(group: DecoyGroup, ctx: RunContext, registry: Any,
              settings: dict[str, dict[str, float]]) -> int:
    """Choose the group's setting (or derive it from its base group's) and train and evaluate
    its seeds; returns the registry id of the seeds' search. ``settings`` collects every
    group's chosen setting."""
    from ...runs.study import run_study

    if group.base is not None:  # λ sweep: the base group's learning rate, λ scaled
        base = settings[group.base]
        lam = base.get("heatmap_weight", group.weight)
        setting = {"learning_rate": base["learning_rate"],
                   "heatmap_weight": lam * group.lambda_factor}
    else:
        setting = chosen_setting(group, ctx, registry)
    settings[group.name] = setting
    return run_study(_study(group, ctx, setting), registry, ctx.out, ctx.progress)


def collect(groups: list[DecoyGroup], search_ids: dict[str, int], registry: Any,
            profile: str) -> pd.DataFrame:
    """The per-model table that :mod:`.analysis` works on (one row per evaluated seed).

    Args:
        groups: the groups run.
        search_ids: group name → registry id of its seeds' search.
        registry: the results registry.
        profile: profile name.
    """
    by_id = {search_ids[g.name]: g for g in groups if g.name in search_ids}
    found = registry.models(experiment=EXPERIMENT, profile=profile)
    found = found[found["search_id"].isin(by_id) & found["test_accuracy"].notna()]
    values = registry.metrics(experiment=EXPERIMENT, profile=profile)
    values = values[values["model_id"].isin(found["model_id"])]
    rows = [analysis.model_row(by_id[model.search_id], model,
                               values[values["model_id"] == model.model_id])
            for model in found.itertuples()]
    return pd.DataFrame(rows)


def run_chapter(ctx: RunContext, conditions: tuple[str, ...] | str = ""
                ) -> tuple[pd.DataFrame, dict[str, dict[str, float]]]:
    """Train, evaluate and collect every group of the chapter (resumable).

    Args:
        ctx: the run (its profile's ``shortcut`` settings size everything).
        conditions: the conditions to run (a tuple, or a comma-separated string; empty: the
            profile's).

    Returns:
        ``(models, settings)``: the per-model table and each group's chosen setting.
    """
    from tqdm.auto import tqdm

    from ...registry import Registry

    s = profile_with_settings(ctx.profile).shortcut
    chosen = parse_conditions(conditions if isinstance(conditions, str)
                              else ",".join(conditions), s)
    groups = chapter_groups(s, chosen)
    settings: dict[str, dict[str, float]] = {}
    ids: dict[str, int] = {}
    with Registry(url=ctx.database_url, results_dir=ctx.results) as registry:
        bar = tqdm(total=len(groups), desc="shortcut groups", unit="group",
                   disable=not ctx.progress)
        for group in groups:
            ids[group.name] = run_group(group, ctx, registry, settings)
            bar.update(1)
        if {"dose", "lambda"} & set(chosen):
            best_name = analysis.best_method(collect(groups, ids, registry, ctx.profile.name))
            best = next(g for g in groups if g.name == best_name)
            later = ((dose_groups(s, best) if "dose" in chosen else [])
                     + (lambda_groups(s, best) if "lambda" in chosen else []))
            bar.total += len(later)
            for group in later:
                ids[group.name] = run_group(group, ctx, registry, settings)
                bar.update(1)
            groups += later
        bar.close()
        return collect(groups, ids, registry, ctx.profile.name), settings


__all__ = ["chosen_setting", "collect", "run_chapter", "run_group"]
