"""The shortcut chapter, the analysis: statistics, summary entries, report rows, tables.

Works on the per-model table that :func:`heatmaploss.chapters.shortcut.run.run_chapter`
returns (one row per trained model) and never imports TensorFlow, so the statistics can be
redone from the table alone.

Per-model columns used here:

* ``condition`` (``main``, ``penalty``, ``adaptive``, ``lambda``, ``difficulty``,
  ``small_train``), ``group`` and ``loss`` (``cce`` or ``heatmap``);
* ``acc_<set>`` and ``worst_<set>`` for the test sets ``matched``, ``shuffled`` and ``absent``
  (overall and worst-class accuracy);
* ``mass_<explainer>_<region>``: mean fraction of positive attribution mass in ``heart`` and
  ``decoy_marker`` on the matched test set, for the explainers ``hirescam``, ``gradcam``,
  ``saliency``;
* ``heatmap_weight`` and ``learning_rate``.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from ... import stats
from ...names import EXPLAINERS, TEST_SETS
from ...project import files, paths

#: Regions measured on the matched test set.
REGIONS = ("heart", "decoy_marker")
#: Metrics compared between each heatmap-loss group and the cross-entropy group of its condition.
FAMILY_METRICS = (
    tuple(f"acc_{s}" for s in TEST_SETS)
    + ("worst_shuffled",)
    + tuple(f"mass_{e}_{r}" for e in EXPLAINERS for r in REGIONS)
)
#: Fewest models per group for which a comparison is run (Shapiro–Wilk needs three).
MIN_MODELS = 3


def compare_family(models: pd.DataFrame, metrics: Iterable[str] = FAMILY_METRICS,
                   seed: int = 0, exclude: tuple[str, ...] = ("lambda",)) -> pd.DataFrame:
    """Compare every heatmap-loss group with the cross-entropy group of its condition.

    All comparisons of the chapter form one family: their p-values are Holm-corrected together.
    Conditions without a cross-entropy group of their own (``penalty``, ``adaptive``,
    ``remedy``: same data as ``main``) are compared with the ``main`` cross-entropy group.

    Args:
        models: per-model table (columns ``condition``, ``group``, ``loss`` and the metrics).
        metrics: metric columns to compare.
        seed: bootstrap seed of :func:`heatmaploss.stats.compare_groups`.
        exclude: conditions left out (the λ search's trials differ in λ on purpose: they are
            a trade-off curve, not a group of replicates).

    Returns:
        One row per (condition, group, metric) with ``n_cce``, ``n_group``, ``mean_cce``,
        ``mean_group``, ``test``, ``p_value``, ``p_holm``, ``cohens_d``, ``cles`` and
        ``skipped`` (why a comparison was not run, else empty).
    """
    rows: list[dict[str, Any]] = []
    main_reference = models[(models["condition"] == "main") & (models["loss"] == "cce")]
    for condition, block in models.groupby("condition", sort=False):
        if condition in exclude:
            continue
        reference = block[block["loss"] == "cce"]
        if reference.empty:  # penalty / adaptive / remedy groups share the main data
            reference = main_reference
        for group, members in block[block["loss"] == "heatmap"].groupby("group", sort=False):
            for metric in metrics:
                if metric not in block:
                    continue
                x = reference[metric].dropna().to_numpy(float)
                y = members[metric].dropna().to_numpy(float)
                row = {"condition": condition, "group": group, "metric": metric,
                       "n_cce": len(x), "n_group": len(y),
                       "mean_cce": float(np.mean(x)) if len(x) else math.nan,
                       "mean_group": float(np.mean(y)) if len(y) else math.nan,
                       "test": "", "p_value": math.nan, "cohens_d": math.nan,
                       "cles": math.nan, "skipped": ""}
                if min(len(x), len(y)) < MIN_MODELS:
                    row["skipped"] = f"fewer than {MIN_MODELS} models in a group"
                elif np.ptp(np.concatenate([x, y])) == 0:
                    row["skipped"] = "all values equal"
                else:
                    try:
                        result = stats.compare_groups(x, y, seed=seed)
                    except ValueError as error:  # e.g. constant data within one group
                        row["skipped"] = str(error)
                    else:
                        row.update(test=result.test, p_value=float(result.p_value),
                                   cohens_d=float(result.cohens_d), cles=float(result.cles))
                rows.append(row)
    table = pd.DataFrame(rows, columns=["condition", "group", "metric", "n_cce", "n_group",
                                        "mean_cce", "mean_group", "test", "p_value",
                                        "cohens_d", "cles", "skipped"])
    table["p_holm"] = math.nan
    tested = table["p_value"].notna()
    if tested.any():
        table.loc[tested, "p_holm"] = stats.holm(table.loc[tested, "p_value"].tolist()).p_adjusted
    return table


def summary_part(models: pd.DataFrame, comparisons: pd.DataFrame, protocol: str,
                 condition: str = "main") -> dict:
    """The chapter's ``summary.json`` entry, ``experiments.decoy.<protocol>``.

    Follows the experiments' contract (``groups.<group>.n_models``, ``test_accuracy``,
    ``overlap.<explainer>.<region>``, ``comparisons.<explainer>.<region>``) and adds
    ``groups.<group>.test_accuracy_by_set.<set>``, ``worst_class_accuracy_by_set.<set>``,
    per-condition blocks for the secondary comparisons and the whole Holm-corrected family.

    Args:
        models: per-model table.
        comparisons: output of :func:`compare_family`.
        protocol: protocol name (``controlled``).
        condition: the condition whose groups fill the top-level ``groups``.

    Returns:
        ``{"experiments": {"decoy": {protocol: {...}}}}``.
    """
    def groups_of(block: pd.DataFrame) -> dict:
        out = {}
        for group, rows in block.groupby("group", sort=False):
            entry = {
                "n_models": len(rows),
                "loss": rows["loss"].iloc[0],
                "test_accuracy": rows["acc_matched"].tolist(),
                "test_accuracy_by_set": {s: rows[f"acc_{s}"].tolist() for s in TEST_SETS},
                "worst_class_accuracy_by_set": {s: rows[f"worst_{s}"].tolist()
                                                for s in TEST_SETS},
                "overlap": {e: {r: rows[f"mass_{e}_{r}"].tolist() for r in REGIONS
                                if f"mass_{e}_{r}" in rows} for e in EXPLAINERS},
                "heatmap_weight": rows["heatmap_weight"].tolist(),
                "learning_rate": rows["learning_rate"].tolist(),
            }
            out[group] = entry
        return out

    def comparisons_of(block: pd.DataFrame) -> dict:
        out: dict = {}
        for _, row in block.iterrows():
            result = {k: row[k] for k in ("test", "p_value", "p_holm", "cohens_d", "cles",
                                          "skipped")}
            result["n"] = [int(row["n_cce"]), int(row["n_group"])]
            metric = row["metric"]
            if metric.startswith("mass_"):
                explainer, region = metric[5:].split("_", 1)
                out.setdefault(row["group"], {}).setdefault(explainer, {})[region] = result
            else:
                out.setdefault(row["group"], {}).setdefault("accuracy", {})[metric] = result
        return out

    main = models[models["condition"] == condition]
    entry = {
        "groups": groups_of(main),
        "comparisons": comparisons_of(comparisons[comparisons["condition"] == condition])
        if len(comparisons) else {},
        "conditions": {
            str(c): {"groups": groups_of(b),
                     "comparisons": comparisons_of(comparisons[comparisons["condition"] == c])
                     if len(comparisons) else {}}
            for c, b in models.groupby("condition", sort=False) if c != condition
        },
        "holm_family_size": int(comparisons["p_value"].notna().sum()) if len(comparisons) else 0,
    }
    return {"experiments": {"decoy": {protocol: entry}}}


def method_table(models: pd.DataFrame, condition: str = "main") -> pd.DataFrame:
    """Group means: accuracy per test set and marker/heart mass by every explainer.

    Args:
        models: per-model table.
        condition: which condition's groups to tabulate.

    Returns:
        One row per group (in training order) with ``n`` and the means.
    """
    block = models[models["condition"] == condition]
    columns = ([f"acc_{s}" for s in TEST_SETS] + ["worst_shuffled"]
               + [f"mass_{e}_{r}" for r in REGIONS for e in EXPLAINERS])
    columns = [c for c in columns if c in block]
    table = block.groupby("group", sort=False)[columns].mean()
    table.insert(0, "n", block.groupby("group", sort=False).size())
    return table


def lambda_tradeoff(models: pd.DataFrame) -> pd.DataFrame:
    """The λ search's trials sorted by λ, with the trial the search objective picks.

    Returns:
        Columns group, heatmap_weight, learning_rate, the validation metrics, test accuracy
        per set, marker mass by every explainer and ``picked`` (lowest validation
        classification loss within its search: what the objective would choose).
    """
    block = models[models["condition"] == "lambda"].copy()
    if "val_classification" in block and len(block):
        best = block.groupby("group")["val_classification"].transform("min")
        block["picked"] = block["val_classification"] == best
    keep = [c for c in ("group", "heatmap_weight", "learning_rate", "val_accuracy",
                        "val_classification", "val_penalty", "picked", "acc_matched",
                        "acc_shuffled", "acc_absent")
            + tuple(f"mass_{e}_decoy_marker" for e in EXPLAINERS) if c in block]
    return block[keep].sort_values(["group", "heatmap_weight"]).reset_index(drop=True)


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


def save_statistics(models: pd.DataFrame, comparisons: pd.DataFrame, results_dir: str | Path,
                    protocol: str) -> dict:
    """Write the per-model table, the comparisons and the summary entry; return the entry.

    Files: ``stats/decoy_models.csv``, ``stats/decoy_comparisons.csv`` and ``.json``; the
    summary goes to ``summary.json`` under ``experiments.decoy.<protocol>``.
    """
    folder = paths.output_dirs(results_dir).stats
    files.write_text(folder / "decoy_models.csv", models.to_csv(index=False))
    files.write_text(folder / "decoy_comparisons.csv", comparisons.to_csv(index=False))
    files.write_json(folder / "decoy_comparisons.json", comparisons.to_dict(orient="records"))
    part = summary_part(models, comparisons, protocol)
    files.update_summary(results_dir, part)
    return part


SECTION = "Beyond the thesis: decoy shortcut (ρ = 1)"
#: Matched-set accuracy below which a group is reported as not having learned the task.
LEARNED = 0.9


def report_rows(models: pd.DataFrame, comparisons: pd.DataFrame) -> list[dict]:
    """Rows for the reproduction report (:func:`heatmaploss.report.add_rows`).

    One row says whether cross-entropy models use the decoy (their accuracy with the marker
    shuffled); one per heatmap-loss group of the main comparison says whether it removed the
    shortcut (shuffled / absent accuracy, Holm-corrected p against cross-entropy).

    Args:
        models: per-model table.
        comparisons: output of :func:`compare_family`.

    Returns:
        Dicts with ``section``, ``claim``, ``thesis``, ``published_data``, ``ours``,
        ``verdict`` and ``note``.
    """
    main = models[models["condition"] == "main"]
    means = main.groupby("group", sort=False)[["acc_matched", "acc_shuffled",
                                               "acc_absent"]].mean()
    rows = []
    if "cce" in means.index:
        cce = float(means.loc["cce", "acc_shuffled"])
        learned = float(means.loc["cce", "acc_matched"]) >= LEARNED
        rows.append({
            "section": SECTION,
            "claim": "cross-entropy models use a perfectly predictive marker outside the heart "
                     "(accuracy with the marker shuffled)",
            "thesis": "not tested (exp 2's marker was barely used)", "published_data": None,
            "ours": round(cce, 3),
            "verdict": ("task not learned" if not learned else
                        "shortcut used" if cce <= 0.6 else "not used"),
            "note": f"{int((main['group'] == 'cce').sum())} models; chance = 0.25"})
    for group, row in means.iterrows():
        if group == "cce":
            continue
        test = comparisons[(comparisons["condition"] == "main") & (comparisons["group"] == group)
                           & (comparisons["metric"] == "acc_shuffled")]
        p = float(test["p_holm"].iloc[0]) if len(test) else math.nan
        shuffled = float(row["acc_shuffled"])
        reference = float(means["acc_shuffled"].get("cce", math.nan))
        verdict = ("task not learned" if float(row["acc_matched"]) < LEARNED else
                   "shortcut removed" if shuffled >= 0.9 else
                   "shortcut partly removed" if shuffled > reference + 0.1 and p < 0.05 else
                   "shortcut kept")
        tested = f"Holm-corrected p = {p:.2g}" if math.isfinite(p) else "not tested"
        rows.append({
            "section": SECTION,
            "claim": f"a heatmap loss with {group} in the loss removes the shortcut "
                     "(accuracy marker shuffled / absent)",
            "thesis": "open question (future work)", "published_data": None,
            "ours": f"{shuffled:.3f} / {float(row['acc_absent']):.3f}", "verdict": verdict,
            "note": f"vs cross-entropy {reference:.3f}; {tested}"})
    return rows


def closing_note(models: pd.DataFrame) -> str:
    """Markdown table: what every group achieved, judged by every explainer.

    One row per (condition, group): models, accuracy per test set, worst-class accuracy with the
    marker shuffled, and the mean attribution mass on the marker by each explainer (``nan``
    where that explainer's maps were all empty).
    """
    columns = ["acc_matched", "acc_shuffled", "acc_absent", "worst_shuffled"] + [
        f"mass_{e}_decoy_marker" for e in EXPLAINERS]
    header = ("| condition | group | n | acc matched | acc shuffled | acc absent | "
              "worst-class shuffled | " + " | ".join(f"marker mass {e}" for e in EXPLAINERS)
              + " |")
    lines = [header, "|" + "---|" * (7 + len(EXPLAINERS))]
    for (condition, group), rows in models.groupby(["condition", "group"], sort=False):
        means = [rows[c].mean() if c in rows else math.nan for c in columns]
        cells = [str(condition), str(group), str(len(rows))]
        cells += [f"{v:.3f}" for v in means[:4]] + [f"{v:.4f}" for v in means[4:]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


__all__ = ["BENCHMARK_NAMES", "FAMILY_METRICS", "REGIONS", "SECTION", "closing_note",
           "compare_family", "cost_table", "find_benchmark", "lambda_tradeoff", "method_table",
           "report_rows", "run_benchmark", "save_statistics", "step_costs", "summary_part",
           "training_time_table"]
