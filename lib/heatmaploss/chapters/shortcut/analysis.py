"""The shortcut chapter, the analysis: verdicts per model, statistics per group, whether any
explainer detects reliance, the ``summary.json`` part and the report rows. TensorFlow-free.

Works on the per-model table of :func:`heatmaploss.chapters.shortcut.run.run_chapter` (one row
per seed; built by :func:`model_row`), so every statistic can be redone from that table alone.
Columns: the group's fields (``group``, ``condition``, ``kind``, ``penalised_explainer`` …),
``seed``, ``model_path``, ``learning_rate``, ``heatmap_weight``, ``acc_<set>`` and
``worst_<set>`` for the sets ``matched`` / ``shuffled`` / ``absent``, ``flip_rate``,
``removal_delta``, ``mass_<explainer>_<region>`` and ``mass0_<explainer>_<region>`` (empty maps
left out / counted as zero), ``empty_<explainer>``, ``probe_<layer>``, ``train_seconds``,
``epochs``.

**Verdicts** (per model; thresholds are parameters): a model *uses the shortcut* when its
shuffled accuracy is more than ``gap`` below the oracle group's mean, or when more than
``flip`` of its predictions change when only the marker moves. It is *gamed* when it uses the
shortcut while the explainer its loss penalises puts no more mass on the marker than a uniform
map would (empty maps counted as zero mass: a collapsed map hides the marker too).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from ... import stats
from ...names import TEST_SETS

#: Share of the image a uniform map puts on the drawn marker (a 9 × 9 square of 105 × 135).
UNIFORM_MARKER_MASS = 81 / (105 * 135)
#: Default verdict thresholds: accuracy gap to the oracle, flip rate.
SHORTCUT_GAP, FLIP_THRESHOLD = 0.05, 0.1
#: The acceptance target: mean shuffled accuracy within 1 point of the oracle's, worst seed
#: within 3 points, with at least 8 seeds.
TARGET_MEAN_GAP, TARGET_WORST_GAP, TARGET_MIN_SEEDS = 0.01, 0.03, 8
ORACLE = "oracle"
REFERENCE = "cce"


def model_row(group: Any, model: Any, metrics: pd.DataFrame) -> dict:
    """One row of the per-model table from a registry model row and its metric rows."""
    hp = model.hyperparameters or {}
    row = {"model_id": model.model_id, "group": group.name, "condition": group.condition,
           "kind": group.kind, "loss": group.loss, "method": group.method or "",
           "penalised_explainer": group.penalised_explainer or "", "rho": group.rho,
           "difficulty": group.difficulty, "n_train_per_class": group.n_train_per_class,
           "seed": model.seed, "model_path": model.model_path,
           "learning_rate": hp.get("learning_rate"),
           "heatmap_weight": hp.get("heatmap_weight", group.weight),
           "val_accuracy": model.val_accuracy, "train_seconds": model.wall_time_s,
           "epochs": model.epochs}
    whole = metrics[metrics["class_name"] == "all"]
    for test_set in TEST_SETS:
        accuracy = metrics[(metrics["metric"] == "accuracy") & (metrics["dataset"] == test_set)]
        row[f"acc_{test_set}"] = float(accuracy.loc[accuracy["class_name"] == "all",
                                                    "value"].iloc[0])
        row[f"worst_{test_set}"] = float(accuracy.loc[accuracy["class_name"] != "all",
                                                      "value"].min())
    for item in whole.itertuples():
        if item.metric == "overlap":
            row[f"mass_{item.explainer}_{item.region}"] = item.value
        elif item.metric == "overlap_with_empty":
            row[f"mass0_{item.explainer}_{item.region}"] = item.value
        elif item.metric == "empty_maps":
            row[f"empty_{item.explainer}"] = item.value / item.n if item.n else math.nan
        elif item.metric in ("flip_rate", "removal_delta") or item.metric.startswith("probe_"):
            row[item.metric] = item.value
    return row


def add_verdicts(models: pd.DataFrame, gap: float = SHORTCUT_GAP,
                 flip: float = FLIP_THRESHOLD) -> pd.DataFrame:
    """Add ``uses_shortcut`` and ``gamed`` to every model (see the module docstring).

    Args:
        models: the per-model table; it must hold the oracle group.
        gap: accuracy gap below the oracle's mean shuffled accuracy that counts as use.
        flip: flip rate above which the marker counts as used.

    Raises:
        ValueError: no oracle models in the table.
    """
    oracle = models.loc[models["group"] == ORACLE, "acc_shuffled"]
    if oracle.empty:
        raise ValueError("the per-model table has no oracle models: the ceiling is undefined")
    ceiling = float(oracle.mean())
    out = models.copy()
    out["uses_shortcut"] = (out["acc_shuffled"] < ceiling - gap) | (out["flip_rate"] > flip)
    hidden = [bool(e) and float(row.get(f"mass0_{e}_decoy_marker", math.nan))
              <= UNIFORM_MARKER_MASS for e, row in zip(out["penalised_explainer"],
                                                       out.to_dict("records"))]
    out["gamed"] = out["uses_shortcut"] & np.array(hidden, dtype=bool)
    return out


def _compare(x: np.ndarray, y: np.ndarray) -> dict:
    """Mann–Whitney U of two groups' shuffled accuracies (exact p where possible)."""
    try:
        result = stats.compare_groups(x, y, n_boot=1000)
    except ValueError as error:  # too few models, constant values
        return {"p": math.nan, "test": "", "note": str(error)}
    exact = result.p_exact is not None and math.isfinite(result.p_exact)
    return {"p": float(result.p_exact if exact else result.mwu_p),
            "test": "Mann-Whitney U, " + ("exact" if exact else "asymptotic"), "note": "",
            "cles": float(result.cles)}


def group_statistics(models: pd.DataFrame) -> pd.DataFrame:
    """One row per group: shuffled accuracy (mean, sd, min, max, every seed), gap to the
    oracle, flip rate, verdict counts, and the primary tests.

    The primary comparisons are each main group's shuffled accuracy against cross-entropy's
    and against the oracle's (Mann–Whitney U); Holm's correction runs over exactly those.
    Groups of other conditions are compared with their condition's cross-entropy group,
    reported unadjusted (secondary).
    """
    ceiling = float(models.loc[models["group"] == ORACLE, "acc_shuffled"].mean())
    rows, family = [], []
    for name, block in models.groupby("group", sort=False):
        values = block["acc_shuffled"].to_numpy(float)
        condition = block["condition"].iloc[0]
        row = {"group": name, "condition": condition, "kind": block["kind"].iloc[0],
               "n_models": len(block), "shuffled_mean": float(values.mean()),
               "shuffled_sd": float(values.std(ddof=1)) if len(values) > 1 else math.nan,
               "shuffled_min": float(values.min()), "shuffled_max": float(values.max()),
               "shuffled_by_seed": values.tolist(), "gap_to_oracle": ceiling - values.mean(),
               "worst_gap_to_oracle": ceiling - values.min(),
               "flip_rate_mean": float(block["flip_rate"].mean()),
               "n_uses_shortcut": int(block.get("uses_shortcut", pd.Series(dtype=bool)).sum()),
               "n_gamed": int(block.get("gamed", pd.Series(dtype=bool)).sum()),
               "p_vs_cce": math.nan, "p_vs_oracle": math.nan, "p_holm": math.nan,
               "p_holm_vs_oracle": math.nan, "test": "", "note": ""}
        reference = f"{REFERENCE}{_suffix(name, condition)}"
        for key, other in (("p_vs_cce", reference), ("p_vs_oracle", ORACLE)):
            if other == name or other not in set(models["group"]):
                continue
            result = _compare(values, models.loc[models["group"] == other,
                                                 "acc_shuffled"].to_numpy(float))
            row[key], row["test"] = result["p"], result["test"] or row["test"]
            row["note"] = row["note"] or result["note"]
            if condition == "main" and math.isfinite(result["p"]):
                family.append((len(rows), key))
        rows.append(row)
    table = pd.DataFrame(rows)
    if family:
        adjusted = stats.holm([table.loc[i, k] for i, k in family]).p_adjusted
        for (i, key), p in zip(family, adjusted):
            table.loc[i, "p_holm" if key == "p_vs_cce" else "p_holm_vs_oracle"] = float(p)
    return table


def _suffix(name: str, condition: str) -> str:
    """The part of a secondary group's name that its condition's cross-entropy group shares."""
    if condition in ("dose", "difficulty", "small_train") and "_" in name:
        return "_" + name.rsplit("_", 1)[1]
    return ""


def detection(models: pd.DataFrame, region: str = "decoy_marker") -> dict[str, dict]:
    """Can an explainer detect reliance? Spearman ρ of its marker mass (empty maps counted as
    zero) with the flip rate, across every model."""
    from scipy.stats import spearmanr

    out = {}
    prefix, suffix = "mass0_", f"_{region}"
    for column in [c for c in models if c.startswith(prefix) and c.endswith(suffix)]:
        explainer = column[len(prefix):-len(suffix)]
        pair = models[[column, "flip_rate"]].dropna()
        if len(pair) < 3 or pair[column].nunique() < 2 or pair["flip_rate"].nunique() < 2:
            out[explainer] = {"spearman_rho": math.nan, "p": math.nan, "n": len(pair)}
            continue
        rho, p = spearmanr(pair[column], pair["flip_rate"])
        out[explainer] = {"spearman_rho": float(rho), "p": float(p), "n": len(pair)}
    return out


def best_method(models: pd.DataFrame) -> str:
    """The main attribution group with the highest mean shuffled accuracy."""
    main = models[(models["condition"] == "main") & (models["kind"] == "heatmap")]
    if main.empty:
        raise ValueError("no attribution group of the main condition has evaluated models")
    return str(main.groupby("group")["acc_shuffled"].mean().idxmax())


def target_verdict(statistics: pd.DataFrame) -> dict:
    """Does an attribution method in the loss reach the oracle (the chapter's target)?

    Returns:
        ``{"met": bool, "groups": [...], "text": ...}``: the main attribution groups with at
        least :data:`TARGET_MIN_SEEDS` seeds whose mean shuffled accuracy is within
        :data:`TARGET_MEAN_GAP` of the oracle's and whose worst seed is within
        :data:`TARGET_WORST_GAP`.
    """
    main = statistics[(statistics["condition"] == "main") & (statistics["kind"] == "heatmap")]
    met = main[(main["n_models"] >= TARGET_MIN_SEEDS)
               & (main["gap_to_oracle"] <= TARGET_MEAN_GAP)
               & (main["worst_gap_to_oracle"] <= TARGET_WORST_GAP)]
    names = met["group"].tolist()
    if names:
        text = (f"reached by {', '.join(names)}: mean shuffled accuracy within "
                f"{100 * TARGET_MEAN_GAP:g} point of the oracle, worst seed within "
                f"{100 * TARGET_WORST_GAP:g} points")
    else:
        best = main.sort_values("gap_to_oracle").head(1)
        closest = (f"; closest: {best['group'].iloc[0]}, {100 * best['gap_to_oracle'].iloc[0]:.1f}"
                   f" points below the oracle on average") if len(best) else ""
        text = "not reached by any attribution method in the loss" + closest
    return {"met": bool(names), "groups": names, "text": text}


__all__ = ["FLIP_THRESHOLD", "ORACLE", "REFERENCE", "SHORTCUT_GAP", "TARGET_MEAN_GAP",
           "TARGET_MIN_SEEDS", "TARGET_WORST_GAP", "UNIFORM_MARKER_MASS", "add_verdicts",
           "best_method", "detection", "group_statistics", "model_row", "target_verdict"]
