"""Experiments 1 and 2, running them: every group's search and evaluation, then tidy results.

:func:`run_experiment` is what notebooks 03 and 04 call. It hands one
:class:`~heatmaploss.runs.study.Study` per protocol and group to the study runner, which resumes
where a run stopped (searches continue, recorded models are not retrained, evaluated models
are not evaluated again), then reads the results back from the registry
(:func:`~heatmaploss.chapters.experiments.results.collect_results`).
"""

from __future__ import annotations

import functools
import sys
from typing import Any, Callable

from ...project.context import RunContext
from ...runs.spec import SearchSpec
from ...runs.study import Evaluation, Study
from .plan import GroupRecipe, check_experiment, data_plan, search_specs
from .results import ExperimentResults, collect_results

#: The command line of a chief or worker process (:mod:`.workers`).
WORKERS_MODULE = "heatmaploss.chapters.experiments.workers"


def build_model(recipe: GroupRecipe, learning_rate: float, seed: int | None = None) -> Any:
    """A compiled model for a group recipe (the search's model builder)."""
    import keras

    from ... import models
    from ...losses import HeatmapLossConfig

    heatmap = HeatmapLossConfig(
        method=recipe.explainer if recipe.penalty else None,
        penalty=recipe.penalty or "outside_fraction", weight=recipe.penalty_weight,
        class_mode=recipe.heatmap_class, classification=recipe.classification,
        mask_resize=recipe.mask_resize)
    model = models.build_model(recipe.backbone, heatmap=heatmap, weights=recipe.backbone_weights,
                               frozen=not recipe.trainable_backbone, seed=seed,
                               pooling=recipe.pooling)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate))
    return model


def _evaluate(plan: Any, batch_size: int, model: Any) -> Evaluation:
    from ...runs.evaluate import evaluate_on_plan

    return Evaluation(*evaluate_on_plan(model, plan, batch_size=batch_size))


def studies(experiment: int, ctx: RunContext,
            protocols: str | tuple[str, ...] | None = None) -> list[Study]:
    """One study per protocol and group of the experiment (nothing is built or generated yet)."""
    from ...pipeline import SyntheticTrainingData

    plan = data_plan(check_experiment(experiment), ctx.profile, ctx.seed)
    data = SyntheticTrainingData(plan)  # every group trains on the same images
    out = []
    for spec, recipe in search_specs(experiment, ctx.profile, ctx.seed, protocols):
        out.append(Study(spec=spec, build_model=functools.partial(build_model, recipe),
                         make_data=functools.partial(data, batch_size=recipe.batch_size),
                         evaluate=functools.partial(_evaluate, plan,
                                                    ctx.profile.experiments.eval_batch_size)))
    return out


def command(role: str, tuner_id: str, oracle: str, experiment: int, ctx: RunContext,
            search_key: str, protocols: str | tuple[str, ...] | None = None) -> list[str]:
    """The command line of one chief or worker process of a search."""
    cmd = [sys.executable, "-m", WORKERS_MODULE, role,
           "--tuner-id", tuner_id, "--oracle", oracle, "--experiment", str(experiment),
           "--profile", ctx.profile.name, "--seed", str(ctx.seed),
           "--results-dir", str(ctx.results), "--search-key", search_key]
    if protocols:
        cmd += ["--protocols", protocols if isinstance(protocols, str) else ",".join(protocols)]
    if ctx.database_url:
        cmd += ["--database-url", ctx.database_url]
    return cmd


def local_launcher(experiment: int, ctx: RunContext, protocols: str | tuple[str, ...] | None,
                   workers: int) -> Callable[[SearchSpec], None]:
    """``launch(spec)``: run one search as a chief plus ``workers`` worker processes here."""
    from ...registry import Registry
    from ...runs.distributed import run_local_cluster

    if ctx.database_url is None:
        # Every process must write to the registry this one reads.
        with Registry(results_dir=ctx.results) as registry:
            ctx = RunContext(ctx.profile, ctx.seed, ctx.out,
                             registry.url.render_as_string(hide_password=False), ctx.progress)

    def launch(spec: SearchSpec) -> None:
        run_local_cluster(
            lambda role, tuner_id, oracle: command(role, tuner_id, oracle, experiment, ctx,
                                                   spec.key, protocols),
            spec.key, workers, ctx.out.tuner / "logs")

    return launch


def run_experiment(experiment: int, ctx: RunContext,
                   protocols: str | tuple[str, ...] | None = None,
                   workers: int = 1) -> ExperimentResults:
    """Searches, evaluation and tidy results of one experiment (resumable).

    Args:
        experiment: 1 or 2.
        ctx: the run (profile, seed, output folders, database URL, progress bars).
        protocols: protocol names (comma-separated string or sequence); default the
            profile's.
        workers: worker processes per search (1: train in this process; more: a Keras Tuner
            chief oracle plus this many workers on this machine, see :func:`local_launcher`).

    Returns:
        The experiment's :class:`ExperimentResults`.
    """
    from ...registry import Registry
    from ...runs.study import run_studies
    check_experiment(experiment)
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ValueError(f"workers={workers!r}: must be a positive integer")
    launch = local_launcher(experiment, ctx, protocols, workers) if workers > 1 else None
    with Registry(url=ctx.database_url, results_dir=ctx.results) as registry:
        run_studies(studies(experiment, ctx, protocols), registry, ctx.out, ctx.progress,
                    launch=launch)
        return collect_results(experiment, ctx.profile, ctx.seed, ctx.results, registry,
                               protocols)


__all__ = ["WORKERS_MODULE", "build_model", "command", "local_launcher", "run_experiment",
           "studies"]
