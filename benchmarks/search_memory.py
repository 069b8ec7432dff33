#!/usr/bin/env python
"""Resident memory over a long search: does each trial leave memory behind?

Runs one heatmap-loss search of experiment 1 for ``--trials`` consecutive trials through the
project's own search code (``heatmaploss.runs.search.run_search``, the experiments chapter's
model builder, the study runner's worker processes) at two model sizes — the quick profile's
(small CNN) and the thesis profile's (VGG16, random initialisation: offline) — on small data
(the model size is what matters). After each trial has been recorded it samples the resident
set size (RSS) of the *whole* run: the searching process plus every worker process it
started. Reports RSS per trial and the growth from trial 2 to the last trial (target < 10 %),
both at the last trial and at the peak.

    python benchmarks/search_memory.py                       # both sizes, 30 trials each
    python benchmarks/search_memory.py --sizes quick --tasks-per-process 0   # in one process
    python benchmarks/search_memory.py --json rss.json       # also writes every sample

``--tasks-per-process 0`` trains every trial in the searching process (how searches ran
before worker processes), for comparison. Each size runs in a fresh Python process, so one
measurement does not inherit the other's memory.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZES = ("quick", "thesis")


def _profile(size: str, trials: int, n_per_class: int, epochs: int):
    """The size's profile, with ``trials`` trials of ``epochs`` epochs on small data."""
    from heatmaploss.project.profiles import get_profile

    base = get_profile(size)
    return dataclasses.replace(base, experiments=dataclasses.replace(
        base.experiments, trials_per_group=trials, epochs=epochs, protocols=("controlled",),
        backbone_weights=None, batch_size=16, eval_batch_size=16,
        n_train_per_class=n_per_class, n_val_per_class=max(n_per_class // 2, 4),
        n_test_per_class=4))


def _run_one(args: argparse.Namespace) -> dict:
    """One size in this process: the search, with the whole run's RSS after every trial."""
    import psutil

    from heatmaploss.chapters.experiments import plan, run
    from heatmaploss.pipeline import SyntheticTrainingData
    from heatmaploss.project.paths import output_dirs
    from heatmaploss.runs import processes, search

    profile = _profile(args.one, args.trials, args.n_per_class, args.epochs)
    spec, recipe = next((s, r) for s, r in plan.search_specs(1, profile, 0, "controlled")
                        if r.group == args.group)
    data = SyntheticTrainingData(plan.data_plan(1, profile, 0))
    me = psutil.Process()
    samples: list[dict] = []
    workers: set[int] = set()
    start = time.perf_counter()

    def record(rec: dict) -> None:
        children = me.children(recursive=True)
        workers.update(c.pid for c in children if "spawn_main" in " ".join(_cmdline(c)))
        rss = {"search": me.memory_info().rss / 2**20,
               "workers": sum(_rss(c) for c in children) / 2**20}
        samples.append({"trial": len(samples) + 1, "trial_id": rec["trial_id"],
                        "rss_mb": rss["search"] + rss["workers"], "search_rss_mb": rss["search"],
                        "workers_rss_mb": rss["workers"], "train_s": rec["train_seconds"],
                        "elapsed_s": time.perf_counter() - start})
        print(f"  {args.one} trial {len(samples):3d}  RSS {samples[-1]['rss_mb']:8.1f} MB "
              f"(search {rss['search']:7.1f} + workers {rss['workers']:7.1f})", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        search.run_search(spec, functools.partial(run.build_model, recipe),
                          functools.partial(data, batch_size=recipe.batch_size),
                          output_dirs(tmp), record=record, progress=False,
                          tasks_per_process=args.tasks_per_process)
    per_process = processes.tasks_per_process(args.tasks_per_process)
    return {"size": args.one, "backbone": recipe.backbone, "trials": len(samples),
            "tasks_per_process": per_process, "worker_processes": len(workers),
            "n_train_per_class": args.n_per_class, "epochs": args.epochs,
            "wall_s": time.perf_counter() - start, **_growth(samples), "samples": samples}


def _cmdline(process) -> list[str]:
    try:
        return process.cmdline()
    except Exception:  # exited between listing and reading
        return []


def _rss(process) -> int:
    try:
        return process.memory_info().rss
    except Exception:  # exited between listing and reading
        return 0


def _growth(samples: list[dict]) -> dict:
    """RSS growth from trial 2 to the last trial, and to the peak after trial 2."""
    second = samples[1]["rss_mb"]
    last = samples[-1]["rss_mb"]
    peak = max(s["rss_mb"] for s in samples[1:])
    return {"rss_after_trial_2_mb": second, "rss_after_last_trial_mb": last,
            "peak_rss_after_trial_2_mb": peak, "growth_after_trial_2": (last - second) / second,
            "peak_growth_after_trial_2": (peak - second) / second}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=30, help="consecutive trials (default 30)")
    parser.add_argument("--sizes", default=",".join(SIZES),
                        help=f"model sizes to measure, comma-separated ({', '.join(SIZES)})")
    parser.add_argument("--n-per-class", type=int, default=16, help="training images per class")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--group", default="heatmap", choices=("cce", "heatmap"))
    parser.add_argument("--tasks-per-process", type=int, default=None,
                        help="trials per worker process (default: the library's; 0: train in "
                             "the searching process)")
    parser.add_argument("--json", default=None, help="write the results to this JSON file")
    parser.add_argument("--one", choices=SIZES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.trials < 3:
        parser.error(f"--trials {args.trials}: need at least 3")
    if args.one:
        print(json.dumps(_run_one(args)))
        return 0
    sizes = [s for s in args.sizes.split(",") if s]
    bad = [s for s in sizes if s not in SIZES]
    if bad:
        parser.error(f"--sizes {','.join(bad)}: allowed {', '.join(SIZES)}")

    results = []
    for size in sizes:
        print(f"{size} model size: {args.trials} trials", flush=True)
        command = [sys.executable, __file__, "--one", size, "--trials", str(args.trials),
                   "--n-per-class", str(args.n_per_class), "--epochs", str(args.epochs),
                   "--group", args.group]
        if args.tasks_per_process is not None:
            command += ["--tasks-per-process", str(args.tasks_per_process)]
        done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True)
        lines = done.stdout.strip().splitlines()
        print("\n".join(lines[:-1]), flush=True)
        results.append(json.loads(lines[-1]))

    print("\nsize    backbone   per process  workers  RSS@2 MB  RSS@last MB  growth  peak growth"
          "  wall s")
    for r in results:
        print(f"{r['size']:7s} {r['backbone']:10s} {r['tasks_per_process']:11d} "
              f"{r['worker_processes']:8d} {r['rss_after_trial_2_mb']:9.0f} "
              f"{r['rss_after_last_trial_mb']:12.0f} {100 * r['growth_after_trial_2']:+6.1f} % "
              f"{100 * r['peak_growth_after_trial_2']:+8.1f} % {r['wall_s']:7.0f}")
    print("target: growth < 10 % from trial 2 to the last trial")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
