#!/usr/bin/env python
"""Resident memory over a long search: does each trial leave memory behind?

Runs one heatmap-loss search of experiment 1 (small CNN, smoke-size data by default) for
``--trials`` consecutive trials through the project's own search code (``search.run_search``
with the experiments chapter's model builder), and samples this process's resident set size
(RSS) when each trial has been recorded. Reports RSS per trial and the growth after the first
trial (target: < 10 %).

    python benchmarks/search_memory.py                  # 30 trials, prints a table
    python benchmarks/search_memory.py --json rss.json  # also writes the numbers
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "lib"))


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

    from heatmaploss import experiments, models, search, synthetic
    from heatmaploss.profiles import get_profile

    base = get_profile("smoke")
    profile = dataclasses.replace(base, experiments=dataclasses.replace(
        base.experiments, trials_per_group=args.trials, epochs=args.epochs,
        n_train_per_class=args.n_per_class, n_val_per_class=max(args.n_per_class // 2, 4)))
    spec = next(s for s in experiments.search_specs(1, profile, 0, "controlled")
                if s.recipe.group == args.group)
    plan = spec.data
    train = synthetic.generate(1, plan["train"]["n_per_class"], plan["train"]["seed"])
    val = synthetic.generate(1, plan["val"]["n_per_class"], plan["val"]["seed"])
    recipe = spec.recipe

    def make_data(shuffle_seed: int):
        return (models.make_dataset(train.images, train.labels, ~train.region("heart"),
                                    batch_size=recipe.batch_size, shuffle=True, seed=shuffle_seed),
                models.make_dataset(val.images, val.labels, ~val.region("heart"),
                                    batch_size=64, shuffle=False))

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
        search.run_search(spec, experiments.build_model, make_data, tmp, record=record,
                          save_model=experiments.save_model, progress=False)

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
