#!/usr/bin/env python
"""Resident memory over a long search: does each trial leave memory behind?

Runs one heatmap-loss search of experiment 1 (small CNN, smoke-size data by default) for
``--trials`` consecutive trials through the project's own search code
(``heatmaploss.runs.search.run_search`` with the experiments chapter's model builder), and samples this process's resident set size
(RSS) when each trial has been recorded. Reports RSS per trial and the growth after the first
trial (target: < 10 %).

    python benchmarks/search_memory.py                  # 30 trials, prints a table
    python benchmarks/search_memory.py --json rss.json  # also writes the numbers
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import gc
import json
import sys
import tempfile
import time
from pathlib import Path



def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=30, help="consecutive trials (default 30)")
    parser.add_argument("--n-per-class", type=int, default=32, help="training images per class")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--group", default="heatmap", choices=("cce", "heatmap"))
    parser.add_argument("--json", default=None, help="write the results to this JSON file")
    args = parser.parse_args(argv)
    if args.trials < 2:
        parser.error(f"--trials {args.trials}: need at least 2")

    import psutil

    from heatmaploss.chapters.experiments import plan, run
    from heatmaploss.pipeline import SyntheticTrainingData
    from heatmaploss.project.paths import output_dirs
    from heatmaploss.project.profiles import get_profile
    from heatmaploss.runs import search

    base = get_profile("smoke")
    profile = dataclasses.replace(base, experiments=dataclasses.replace(
        base.experiments, trials_per_group=args.trials, epochs=args.epochs,
        n_train_per_class=args.n_per_class, n_val_per_class=max(args.n_per_class // 2, 4)))
    spec, recipe = next((s, r) for s, r in plan.search_specs(1, profile, 0, "controlled")
                        if r.group == args.group)
    data = SyntheticTrainingData(plan.data_plan(1, profile, 0))
    data.arrays("train"), data.arrays("val")  # generated before the first sample

    def make_data(shuffle_seed: int):
        return data(shuffle_seed, recipe.batch_size)

    process = psutil.Process()
    samples: list[dict] = []
    start = time.perf_counter()

    def record(rec: dict) -> None:
        gc.collect()
        samples.append({"trial": len(samples) + 1, "trial_id": rec["trial_id"],
                        "rss_mb": process.memory_info().rss / 2**20,
                        "elapsed_s": time.perf_counter() - start})
        print(f"trial {len(samples):3d}  RSS {samples[-1]['rss_mb']:8.1f} MB", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        search.run_search(spec, functools.partial(run.build_model, recipe), make_data,
                          output_dirs(tmp), record=record, progress=False)

    first, last = samples[0]["rss_mb"], samples[-1]["rss_mb"]
    peak_after_first = max(s["rss_mb"] for s in samples[1:])
    result = {
        "trials": len(samples), "group": args.group, "n_train_per_class": args.n_per_class,
        "rss_after_first_trial_mb": first, "rss_after_last_trial_mb": last,
        "peak_rss_after_first_trial_mb": peak_after_first,
        "growth_after_first_trial": (last - first) / first,
        "peak_growth_after_first_trial": (peak_after_first - first) / first,
        "samples": samples,
    }
    print(f"\n{len(samples)} trials: RSS after trial 1 {first:.0f} MB, after trial "
          f"{len(samples)} {last:.0f} MB, growth {100 * result['growth_after_first_trial']:+.1f} % "
          f"(peak {100 * result['peak_growth_after_first_trial']:+.1f} %); target < 10 %")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
