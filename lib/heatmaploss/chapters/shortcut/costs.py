"""The shortcut chapter, what training costs: the train-step benchmark's step times and the
chapter's own wall times per group. TensorFlow-free (the benchmark runs in a subprocess).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

from ...names import EXPLAINERS
from ...project import paths


def cost_table(benchmark: dict | str | Path | None) -> pd.DataFrame | None:
    """Time per training step of each attribution method, from the train-step benchmark.

    Args:
        benchmark: the parsed JSON written by ``benchmarks/train_step.py --json`` or its path;
            ``None`` or a missing file gives ``None``.

    Returns:
        One row per backbone with the cross-entropy step time, each method's step time and its
        ratio to cross-entropy, or ``None`` when no benchmark result exists.
    """
    if benchmark is None:
        return None
    if not isinstance(benchmark, dict):
        path = Path(benchmark)
        if not path.exists():
            return None
        benchmark = json.loads(path.read_text())
    rows = []
    for backbone, times in (benchmark.get("backbone") or {}).items():
        row = {"backbone": backbone, "cce_step_s": times.get("cce_step_s")}
        for method in EXPLAINERS:
            step = times.get(f"{method}_step_s")
            row[f"{method}_step_s"] = step
            row[f"{method}_ratio"] = (step / row["cce_step_s"]
                                      if step and row["cce_step_s"] else None)
        rows.append(row)
    table = pd.DataFrame(rows)
    if "peak_rss_mb" in benchmark:
        table["peak_rss_mb"] = benchmark["peak_rss_mb"]
    return table


#: Where the chapter looks for (and writes) the train-step benchmark's JSON, in ``stats/``.
BENCHMARK_NAMES = ("train_step.json", "train_step_benchmark.json")


def find_benchmark(results_dir: str | Path) -> Path | None:
    """The train-step benchmark JSON in ``<results>/stats/``, or ``None`` when absent."""
    for name in BENCHMARK_NAMES:
        path = Path(results_dir) / "stats" / name
        if path.exists():
            return path
    return None


def run_benchmark(results_dir: str | Path, backbones: tuple[str, ...] = ("small_cnn",)) -> Path:
    """Run ``benchmarks/train_step.py --quick`` and return its JSON path (minutes on a CPU).

    Raises:
        FileNotFoundError: the benchmark script is not in this checkout.
        subprocess.CalledProcessError: the benchmark failed.
    """
    script = paths.REPO_ROOT / "benchmarks" / "train_step.py"
    if not script.exists():
        raise FileNotFoundError(f"{script} not found: the train-step benchmark ships with the "
                                "repository, not with the installed package")
    target = Path(results_dir) / "stats" / BENCHMARK_NAMES[0]
    target.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, str(script), "--quick", "--json", str(target),
                    "--backbones", *backbones], check=True, capture_output=True)
    return target


def step_costs(results_dir: str | Path, backbones: tuple[str, ...],
               run: bool = False) -> pd.DataFrame | str:
    """The benchmark's step-time table, running the benchmark first when asked and absent.

    Args:
        results_dir: the profile's results folder (the benchmark's JSON is in ``stats/``).
        backbones: backbones the benchmark measures when it is run here.
        run: run ``benchmarks/train_step.py --quick`` (minutes on a CPU) if no result exists.

    Returns:
        :func:`cost_table` of the result, or a sentence saying how to produce one.
    """
    benchmark = find_benchmark(results_dir)
    if benchmark is None and run:
        benchmark = run_benchmark(results_dir, backbones)
    costs = cost_table(benchmark)
    if costs is None:
        return ("No train-step benchmark result in `stats/` (run `python "
                "benchmarks/train_step.py --quick --json <results>/stats/train_step.json`, or "
                "set `run_benchmark=True`).")
    return costs


def training_time_table(models: pd.DataFrame) -> pd.DataFrame:
    """Measured training cost of every group in this chapter's own runs.

    Covers what the benchmark does not (penalty forms, the inside term, adaptive weighting).
    Wall times include per-model graph tracing and validation, so the benchmark's step times
    are the cleaner measure of the loss itself.

    Returns:
        One row per (condition, group): models, median seconds per epoch, and the ratio to the
        cross-entropy group of the main comparison.
    """
    frame = models.assign(seconds_per_epoch=models["train_seconds"] / models["epochs"])
    table = (frame.groupby(["condition", "group"], sort=False)
             .agg(n_models=("model_id", "count"), n_train_per_class=("n_train_per_class", "first"),
                  median_s_per_epoch=("seconds_per_epoch", "median")))
    reference = frame.loc[(frame["condition"] == "main") & (frame["group"] == "cce"),
                          "seconds_per_epoch"].median()
    table["ratio_to_main_cce"] = table["median_s_per_epoch"] / reference
    return table


__all__ = ["BENCHMARK_NAMES", "cost_table", "find_benchmark", "run_benchmark", "step_costs",
           "training_time_table"]
