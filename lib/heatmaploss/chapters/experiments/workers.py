"""Experiments 1 and 2 across processes: the chief / worker command line and its launcher.

One search can be shared by several processes through Keras Tuner's distributed mode (one chief
oracle, any number of workers; :mod:`heatmaploss.runs.distributed`). Every process runs this
command line with the same experiment arguments and one registry; the chief serves the oracle,
each worker trains, saves, records and then evaluates its own models::

    # machine A: the chief, reachable on port 8000
    python -m heatmaploss.chapters.experiments.workers chief --oracle 0.0.0.0:8000 \\
        --experiment 1 --profile thesis --seed 0 --results-dir results/thesis \\
        --search-key exp1-controlled-heatmap-thesis-seed0
    # machines B, C, ...: one worker each (distinct --tuner-id)
    python -m heatmaploss.chapters.experiments.workers worker --tuner-id worker-b \\
        --oracle A:8000 ...the same arguments...

Set ``$HEATMAPLOSS_DATABASE_URL`` (or ``--database-url``) to one PostgreSQL registry on every
machine. Then run the chapter anywhere with that registry: searches whose models are all
recorded are not reopened, so it only collects, compares and draws. On one machine,
``run_experiment(..., workers=N)`` (``run_all.py --workers N``) starts the processes itself
(:func:`heatmaploss.chapters.experiments.run.local_launcher`).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ...project.context import RunContext, open_run


def run_process(role: str, experiment: int, ctx: RunContext, search_key: str,
                protocols: str | tuple[str, ...] | None = None) -> None:
    """One process of a distributed search: the chief serves the oracle; a worker trains,
    records, then evaluates the models whose files it holds."""
    from ...registry import Registry
    from ...runs.study import evaluate_recorded, register, train
    from .run import studies

    chosen = {s.spec.key: s for s in studies(experiment, ctx, protocols)}
    if search_key not in chosen:
        raise ValueError(f"search key {search_key!r} is not a search of experiment {experiment}; "
                         f"allowed: {', '.join(chosen)}")
    study = chosen[search_key]
    with Registry(url=ctx.database_url, results_dir=ctx.results) as registry:
        search_id = register(study.spec, registry)
        if len(registry.models(search_id=search_id)) < study.spec.max_trials:
            train(study, registry, ctx.out, search_id, progress=False)
        if role == "worker":
            evaluate_recorded(study, registry, ctx.out, search_id, progress=False,
                              only_available=True)


def main(argv: list[str] | None = None) -> int:
    """Command line: run the chief or one worker of a distributed search."""
    from ...runs.distributed import enter_role

    parser = argparse.ArgumentParser(prog="python -m heatmaploss.chapters.experiments.workers",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("role", choices=("chief", "worker"))
    parser.add_argument("--tuner-id", default=None, help="worker name (default: host-pid)")
    parser.add_argument("--oracle", required=True, metavar="HOST:PORT",
                        help="where the chief listens (chief: the address to bind)")
    parser.add_argument("--experiment", type=int, required=True, choices=(1, 2))
    parser.add_argument("--profile", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results-dir", required=True)
    parser.add_argument("--search-key", required=True)
    parser.add_argument("--protocols", default=None)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args(argv)
    try:
        tuner_id = enter_role(args.role, args.oracle, args.tuner_id)
        ctx = open_run(args.profile, args.seed, str(Path(args.results_dir)),
                       args.database_url or "", progress=False)
    except ValueError as error:
        parser.error(str(error))
    logging.basicConfig(level=logging.INFO, format=f"[{tuner_id}] %(levelname)s %(message)s")
    run_process(args.role, args.experiment, ctx, args.search_key, args.protocols)
    return 0


if __name__ == "__main__":
    sys.exit(main())
