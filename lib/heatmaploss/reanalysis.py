"""The thesis's published per-model results: loading, group selection, the statistics table.

The thesis judged its heatmap loss on per-model scores kept in a private database; the author
later published them (``data/thesis/``, see its README). This module turns those tables into
the two groups the thesis compared — with the thesis's selection rules, and a record of every
model left out and why — and recomputes the thesis's statistics table. No TensorFlow.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .names import EXPLAINER_LABELS, REGION_LABELS
from .project import paths
from .stats import (SHAPIRO_MIN_N, GroupComparison, UndefinedStatisticError, compare_groups,
                    comparison_table, iqr_mask)
from .synthetic.generator import CLASSES

#: Experiment number in ``thesis_searches.csv`` of each (experiment, group).
EXPERIMENT_NUMBERS = {1: {"CCE": 11, "heatmap loss": 12}, 2: {"CCE": 21, "heatmap loss": 22}}
GROUPS = ("CCE", "heatmap loss")

#: Column infix of each explainer and region in ``thesis_trials.csv`` (the thesis published
#: HiResCAM and Grad-CAM scores only).
EXPLAINER_COLUMNS = {"hirescam": "hc", "gradcam": "gc"}
REGION_COLUMNS = {"heart": "heart", "sex_marker": "male_labels", "fat": "fat"}
#: Column infix of a region's pixel fraction (``avg_<C>_<infix>_in_mris``).
REGION_PIXELS = {"heart": "heart", "sex_marker": "male_label", "fat": "fat"}

#: Spelling of each class (project order, :data:`heatmaploss.synthetic.CLASSES`) in the
#: published columns.
CSV_CLASS = {"NOR": "NOR", "HCM": "HCM", "DCM": "DCM", "ARV": "RV"}

#: Models with validation accuracy above this were kept by the thesis.
VAL_ACC_THRESHOLD = 0.95

TRIALS_FILE = "thesis_trials.csv"
SEARCHES_FILE = "thesis_searches.csv"


def load_trials(data_dir: str | os.PathLike | None = None) -> pd.DataFrame:
    """Load the published trials joined with their searches.

    Args:
        data_dir: folder holding ``thesis_trials.csv`` and ``thesis_searches.csv``; defaults
            to the repository's ``data/thesis``.

    Returns:
        One row per model (119) with the trial columns plus ``experiment_number``,
        ``num_epochs`` and ``data_path`` of its search.
    """
    folder = Path(data_dir) if data_dir is not None else paths.THESIS_DATA_DIR
    trials = pd.read_csv(folder / TRIALS_FILE)
    searches = pd.read_csv(folder / SEARCHES_FILE)
    unknown = set(trials["search_id"]) - set(searches["search_id"])
    if unknown:
        raise ValueError(f"{TRIALS_FILE}: search_id(s) {sorted(unknown)} missing from "
                         f"{SEARCHES_FILE}")
    return trials.merge(searches[["search_id", "experiment_number", "num_epochs", "data_path"]],
                        on="search_id", how="left", validate="many_to_one")


def metric_columns(explainer: str, region: str) -> dict[str, str]:
    """Published column of each class's mean attribution fraction inside ``region``.

    Args:
        explainer: ``hirescam`` or ``gradcam``.
        region: ``heart``, ``sex_marker`` or ``fat``.

    Returns:
        Class name (project spelling, index order) → column name.
    """
    if explainer not in EXPLAINER_COLUMNS:
        raise ValueError(f"explainer={explainer!r}: allowed {', '.join(EXPLAINER_COLUMNS)}")
    if region not in REGION_COLUMNS:
        raise ValueError(f"region={region!r}: allowed {', '.join(REGION_COLUMNS)}")
    return {c: f"avg_{CSV_CLASS[c]}_fraction_of_{EXPLAINER_COLUMNS[explainer]}_heatmap_in_"
               f"{REGION_COLUMNS[region]}" for c in CLASSES}


def pixel_fraction_columns(region: str) -> dict[str, str]:
    """Published column of each class's mean pixel fraction of ``region`` in the test images."""
    if region not in REGION_PIXELS:
        raise ValueError(f"region={region!r}: allowed {', '.join(REGION_PIXELS)}")
    return {c: f"avg_{CSV_CLASS[c]}_{REGION_PIXELS[region]}_in_mris" for c in CLASSES}


@dataclass(frozen=True)
class ThesisGroups:
    """The thesis's two groups of model-level scores for one experiment/explainer/region.

    Attributes:
        experiment: 1 or 2.
        explainer: ``hirescam`` or ``gradcam``.
        region: ``heart``, ``sex_marker`` or ``fat``.
        scores: group name (``CCE``, ``heatmap loss``) → model scores (mean of the four class
            averages), in ``trial_uid`` order.
        per_class: group name → DataFrame (index ``trial_uid``, columns the classes).
        dropped: one row per model left out: ``group``, ``trial_uid``, ``search_id``,
            ``learning_rate``, ``val_acc``, ``reason``.
        uniform_baseline: the score a spatially uniform heatmap would get (mean over models and
            classes of the region's pixel fraction) — the "chance" level of the overlap.
        test_acc: group name → test accuracy of the kept models.
        label: e.g. ``exp 1 HiResCAM-heart``.
    """

    experiment: int
    explainer: str
    region: str
    scores: dict[str, np.ndarray]
    per_class: dict[str, pd.DataFrame]
    dropped: pd.DataFrame
    uniform_baseline: float = float("nan")
    test_acc: dict[str, np.ndarray] = field(default_factory=dict)
    label: str = ""

    @property
    def n(self) -> dict[str, int]:
        """Number of kept models per group."""
        return {g: int(v.size) for g, v in self.scores.items()}

    def drop_counts(self) -> pd.DataFrame:
        """Counts of dropped models by group and reason."""
        if self.dropped.empty:
            return pd.DataFrame(columns=["group", "reason", "models"])
        return (self.dropped.groupby(["group", "reason"]).size().rename("models")
                .reset_index())


def model_score(class_means) -> float:
    """The thesis's model-level score: the unweighted mean of the class averages.

    NaN when any class average is NaN (a class whose maps all lack positive mass); such a model
    is dropped from a comparison (:func:`drop_reason`). Experiments 1 and 2 score their fresh
    models with this same function, so fresh and published numbers are computed alike.
    """
    values = np.asarray(class_means, dtype=float)
    if values.size == 0 or np.isnan(values).any():
        return float("nan")
    return float(values.mean())


def drop_reason(val_acc: float, class_means: dict[str, float],
                threshold: float = VAL_ACC_THRESHOLD) -> str | None:
    """Why the thesis's rule leaves a model out of a comparison, or ``None`` to keep it.

    Rule (``docs/thesis.md`` §5): keep models with validation accuracy strictly above
    ``threshold``; drop a model with any NaN class average of the metric used.

    Args:
        val_acc: the model's validation accuracy (NaN: missing).
        class_means: class name → the class average of the metric compared.
        threshold: validation-accuracy threshold.
    """
    if pd.isna(val_acc):
        return "val_acc missing"
    if not val_acc > threshold:
        return f"val_acc <= {threshold}"
    missing = [c for c, value in class_means.items() if pd.isna(value)]
    if missing:
        return "NaN class average (" + ", ".join(missing) + ")"
    return None


def _drop_reason(row: pd.Series, columns: dict[str, str]) -> str | None:
    return drop_reason(row["val_acc"], {c: row[col] for c, col in columns.items()})


def thesis_groups(experiment: int, explainer: str = "hirescam", region: str = "heart",
                  trials: pd.DataFrame | None = None) -> ThesisGroups:
    """Select the thesis's CCE and heatmap-loss groups and their model-level scores.

    Rules (``docs/thesis.md`` §5): the experiment's two experiment numbers via the search table; keep
    ``val_acc > 0.95``; drop models with any NaN class average of the metric used. A model's
    score is the unweighted mean of its four class averages.

    Args:
        experiment: 1 or 2.
        explainer: ``hirescam`` (the thesis) or ``gradcam`` (held out from the loss).
        region: ``heart``, ``sex_marker`` (experiment 2) or ``fat``.
        trials: output of :func:`load_trials` (loaded when omitted).

    Returns:
        A :class:`ThesisGroups`.
    """
    if experiment not in EXPERIMENT_NUMBERS:
        raise ValueError(f"experiment={experiment!r}: allowed 1 or 2")
    columns = metric_columns(explainer, region)
    trials = load_trials() if trials is None else trials
    scores, per_class, test_acc, dropped, pixel_fractions = {}, {}, {}, [], []
    for group, number in EXPERIMENT_NUMBERS[experiment].items():
        models = trials[trials["experiment_number"] == number].sort_values("trial_uid")
        keep = []
        for _, row in models.iterrows():
            reason = _drop_reason(row, columns)
            if reason is None:
                keep.append(row["trial_uid"])
            else:
                dropped.append({"group": group, "trial_uid": row["trial_uid"],
                                "search_id": row["search_id"],
                                "learning_rate": row["learning_rate"],
                                "val_acc": row["val_acc"], "reason": reason})
        kept = models.set_index("trial_uid").loc[keep]
        table = kept[list(columns.values())].set_axis(list(columns), axis=1)
        per_class[group] = table
        scores[group] = np.array([model_score(r) for r in table.to_numpy(dtype=float)])
        test_acc[group] = kept["test_acc"].to_numpy(dtype=float)
        pixel_fractions.append(kept[list(pixel_fraction_columns(region).values())].to_numpy())
    fractions = np.concatenate(pixel_fractions)
    return ThesisGroups(
        experiment=experiment, explainer=explainer, region=region, scores=scores,
        per_class=per_class,
        dropped=pd.DataFrame(dropped, columns=["group", "trial_uid", "search_id",
                                               "learning_rate", "val_acc", "reason"]),
        uniform_baseline=float(np.nanmean(fractions)) if fractions.size else float("nan"),
        test_acc=test_acc,
        label=f"exp {experiment} {EXPLAINER_LABELS[explainer]}-{REGION_LABELS[region]}",
    )



def per_class_long(groups: ThesisGroups) -> pd.DataFrame:
    """Per-class scores as a long table (``group``, ``trial_uid``, ``class``, ``score``)."""
    frames = []
    for group, table in groups.per_class.items():
        long = table.rename_axis("trial_uid").reset_index().melt(
            id_vars="trial_uid", var_name="class", value_name="score")
        long.insert(0, "group", group)
        frames.append(long)
    return pd.concat(frames, ignore_index=True)


def per_class_summary(groups: ThesisGroups) -> pd.DataFrame:
    """Mean, SD and median of each class's score per group (rows: class; columns: group×stat)."""
    long = per_class_long(groups)
    summary = long.groupby(["class", "group"])["score"].agg(["mean", "std", "median"])
    return summary.unstack("group").reindex(list(CLASSES))


def filtered(groups: ThesisGroups, k: float | None) -> dict[str, np.ndarray]:
    """The groups' scores, each IQR-filtered with fence multiplier ``k`` (``None``: unfiltered)."""
    if k is None:
        return dict(groups.scores)
    return {g: v[iqr_mask(v, k)] for g, v in groups.scores.items()}


@dataclass(frozen=True)
class Comparison:
    """One row of the statistics table: what was compared and the result.

    Attributes:
        key: stable identifier, e.g. ``exp2_sex_marker_iqr1.5``.
        label: human-readable row label.
        groups: the selected groups (before IQR filtering).
        iqr_k: fence multiplier of the IQR filter, or ``None``.
        scores: the compared scores per group (after filtering).
        result: the comparison, or ``None`` when undefined (see ``note``).
        note: why ``result`` is ``None`` (e.g. a constant group), else empty.
    """

    key: str
    label: str
    groups: ThesisGroups
    iqr_k: float | None
    scores: dict[str, np.ndarray]
    result: GroupComparison | None
    note: str = ""


def thesis_comparisons(explainer: str = "hirescam", *, iqr_ks: tuple[float, ...] = (1.5, 5.0),
                       alpha: float = 0.05, n_boot: int = 10_000, seed: int = 0,
                       trials: pd.DataFrame | None = None) -> dict[str, Comparison]:
    """The thesis's statistics table for one explainer (CCE = x, heatmap loss = y).

    Rows: experiment 1 heart, experiment 2 heart, experiment 2 sex marker unfiltered and after
    IQR filtering with each ``k`` in ``iqr_ks``.

    Args:
        explainer: ``hirescam`` (the thesis's table) or ``gradcam`` (held-out explainer).
        iqr_ks: fence multipliers of the filtered sex-marker rows.
        alpha, n_boot, seed: passed to :func:`heatmaploss.stats.compare_groups`.
        trials: output of :func:`load_trials` (loaded when omitted).

    Returns:
        Key (e.g. ``exp1_heart``, ``exp2_sex_marker_iqr1.5``) → :class:`Comparison`, in table
        order.
    """
    trials = load_trials() if trials is None else trials
    name = EXPLAINER_LABELS[explainer] if explainer in EXPLAINER_LABELS else explainer
    plan = [("exp1_heart", 1, "heart", None), ("exp2_heart", 2, "heart", None),
            ("exp2_sex_marker", 2, "sex_marker", None)]
    plan += [(f"exp2_sex_marker_iqr{k:g}", 2, "sex_marker", k) for k in iqr_ks]
    out = {}
    for key, experiment, region, k in plan:
        groups = thesis_groups(experiment, explainer, region, trials)
        scores = filtered(groups, k)
        label = f"exp {experiment} {name}-{REGION_LABELS[region]}"
        label += ", unfiltered" if region == "sex_marker" and k is None else ""
        label += f", {k:g} IQR" if k is not None else ""
        small = [f"{g} group has {v.size} value(s)" for g, v in scores.items()
                 if v.size < SHAPIRO_MIN_N]
        if small:  # strict fences drop every value of a group whose IQR is 0
            out[key] = Comparison(key=key, label=label, groups=groups, iqr_k=k, scores=scores,
                                  result=None, note="; ".join(small) + " after filtering, too "
                                  "few to test (strict fences drop every value when IQR = 0)")
            continue
        try:
            result, note = compare_groups(scores["CCE"], scores["heatmap loss"], alpha,
                                          n_boot=n_boot, seed=seed), ""
        except UndefinedStatisticError as exc:  # e.g. Grad-CAM never touches the marker
            result, note = None, str(exc).replace("group x", "CCE group").replace(
                "group y", "heatmap-loss group")
        out[key] = Comparison(key=key, label=label, groups=groups, iqr_k=k, scores=scores,
                              result=result, note=note)
    return out


def comparisons_frame(comparisons: dict[str, Comparison]) -> pd.DataFrame:
    """The statistics table as a DataFrame (one row per comparison, undefined ones noted).

    Args:
        comparisons: output of :func:`thesis_comparisons`.

    Returns:
        Columns of :func:`heatmaploss.stats.comparison_table` plus ``key`` and ``note``;
        undefined rows carry only n, means and the note.
    """
    rows = []
    for c in comparisons.values():
        if c.result is not None:
            row = comparison_table({c.label: c.result}).reset_index().iloc[0].to_dict()
        else:
            cce, hm = c.scores["CCE"], c.scores["heatmap loss"]
            row = {"comparison": c.label, "n CCE": cce.size, "n HM": hm.size,
                   "mean CCE": cce.mean() if cce.size else np.nan,
                   "mean HM": hm.mean() if hm.size else np.nan}
        rows.append({"key": c.key, **row, "note": c.note})
    return pd.DataFrame(rows).set_index("key")


def accuracy_ranges(*selections: ThesisGroups) -> dict[str, tuple[float, float]]:
    """(min, max) test accuracy of each group's kept models, pooled over ``selections``."""
    pooled: dict[str, list[np.ndarray]] = {}
    for sel in selections:
        for group, acc in sel.test_acc.items():
            pooled.setdefault(group, []).append(acc)
    return {g: (float(np.min(np.concatenate(a))), float(np.max(np.concatenate(a))))
            for g, a in pooled.items()}


def comparisons_to_dict(comparisons: dict[str, Comparison]) -> dict[str, dict]:
    """Full JSON-ready record of each comparison (label, filter, note and every statistic)."""
    return {key: {"label": c.label, "iqr_k": c.iqr_k, "note": c.note,
                  "n": [int(v.size) for v in c.scores.values()],
                  **(c.result.to_dict() if c.result is not None else {})}
            for key, c in comparisons.items()}


def summary_entry(comparisons: dict[str, Comparison]) -> dict[str, dict]:
    """Compact per-comparison numbers for ``summary.json`` (see the README's schema)."""
    out = {}
    for key, c in comparisons.items():
        r = c.result
        out[key] = {"n": [int(v.size) for v in c.scores.values()], "note": c.note or None}
        if r is not None:
            out[key].update({"means": list(r.means), "shapiro_p": list(r.shapiro_p),
                             "test": r.test, "statistic": r.statistic, "p": r.p_value,
                             "p_exact": r.p_exact, "mwu_u": r.mwu_u, "mwu_p": r.mwu_p,
                             "t_p": r.t_p, "cohens_d": r.cohens_d, "cles": r.cles,
                             "rank_biserial": r.rank_biserial, "diff_ci": list(r.diff_ci)})
    return out


__all__ = [
    "EXPERIMENT_NUMBERS", "EXPLAINER_COLUMNS", "GROUPS", "REGION_COLUMNS", "VAL_ACC_THRESHOLD",
    "drop_reason", "model_score",
    "Comparison", "ThesisGroups", "accuracy_ranges", "comparisons_frame", "comparisons_to_dict",
    "filtered", "load_trials", "metric_columns",
    "per_class_long", "per_class_summary", "pixel_fraction_columns", "thesis_comparisons",
    "summary_entry", "thesis_groups",
]
