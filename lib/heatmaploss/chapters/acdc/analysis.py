"""The ACDC chapter, the analysis: Dice, classifier metrics, the registry's classifier table,
the ``summary.json`` entry and the statistics files. TensorFlow-free.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ...project import files
from .verdicts import classifier_verdict, heatmap_verdict

#: Label of each foreground structure in the ACDC masks.
STRUCTURE_LABELS = {"RV": 1, "MYO": 2, "LV": 3}
#: What every classifier is scored on, per evaluation set (maps explain the predicted class).
CLASSIFIER_METRICS = ("balanced_accuracy", "accuracy", "hirescam_heart_share",
                      "hirescam_empty_map_share", "saliency_heart_share",
                      "saliency_empty_map_share")
#: Registry metric (name, explainer, region) of each classifier metric.
_REGISTRY_METRIC = {
    "balanced_accuracy": ("balanced_accuracy", "", ""), "accuracy": ("accuracy", "", ""),
    **{f"{e}_heart_share": ("heart_share", e, "heart") for e in ("hirescam", "saliency")},
    **{f"{e}_empty_map_share": ("empty_map_share", e, "") for e in ("hirescam", "saliency")},
}


def dice_scores(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Dice per structure of one volume; NaN where a structure is absent from both."""
    out = {}
    for name, label in STRUCTURE_LABELS.items():
        p, t = pred == label, truth == label
        denom = p.sum() + t.sum()
        out[name] = float(2 * np.logical_and(p, t).sum() / denom) if denom else float("nan")
    return out


def segmentation_scores(predicted: np.ndarray, arrays: Any) -> pd.DataFrame:
    """Dice per structure for each volume: patient, group, phase, RV, MYO, LV, mean.

    Args:
        predicted: (N, X, Y, Z) label volumes.
        arrays: the :class:`~heatmaploss.chapters.acdc.data.AcdcArrays` they segment.
    """
    rows = [{"patient": int(arrays.numbers[i]), "group": arrays.groups[i],
             "phase": arrays.phases[i], **dice_scores(predicted[i], arrays.labels[i])}
            for i in range(len(predicted))]
    frame = pd.DataFrame(rows)
    frame["mean"] = frame[["RV", "MYO", "LV"]].mean(axis=1)
    return frame


def balanced_accuracy(truth: np.ndarray, predicted: np.ndarray) -> float:
    """Mean of the per-class recalls (classes present in ``truth``)."""
    truth, predicted = np.asarray(truth).astype(int), np.asarray(predicted).astype(int)
    return float(np.mean([np.mean(predicted[truth == c] == c) for c in np.unique(truth)]))


def map_shares(maps: np.ndarray, region: np.ndarray) -> tuple[float, float]:
    """Mean share of each map's positive mass inside ``region``, and the share of empty maps.

    Args:
        maps: (N, ...) non-negative maps.
        region: (N, ...) weights in [0, 1] on the maps' grid (e.g. the share of each cell
            inside the heart).

    Returns:
        ``(inside, empty)``: the mean of ``Σ map · region / Σ map`` over maps with positive
        mass (NaN when none has any), and the share of maps without positive mass.
    """
    maps = np.clip(np.asarray(maps, np.float64), 0, None).reshape(len(maps), -1)
    region = np.asarray(region, np.float64).reshape(len(maps), -1)
    total = maps.sum(axis=1)
    filled = total > 0
    inside = ((maps[filled] * region[filled]).sum(axis=1) / total[filled]) if filled.any() else []
    return (float(np.mean(inside)) if filled.any() else float("nan"),
            float(np.mean(~filled)))


def classifier_metrics(truth: np.ndarray, predicted: np.ndarray, maps: dict[str, np.ndarray],
                       hearts: dict[str, np.ndarray]) -> dict[str, float]:
    """A classifier's scores on one set of patients.

    Args:
        truth: (N,) true class per patient.
        predicted: (N,) predicted class.
        maps: explainer → (N, ...) maps of the predicted class.
        hearts: explainer → the heart on that explainer's grid (share of each cell inside).

    Returns:
        ``balanced_accuracy``, ``accuracy`` and, per explainer ``e``, ``e_heart_share`` and
        ``e_empty_map_share`` (:func:`map_shares`).
    """
    out = {"balanced_accuracy": balanced_accuracy(truth, predicted),
           "accuracy": float(np.mean(np.asarray(truth) == np.asarray(predicted)))}
    for explainer, explained in maps.items():
        out[f"{explainer}_heart_share"], out[f"{explainer}_empty_map_share"] = map_shares(
            explained, hearts[explainer])
    return out


def classifier_rows(dataset: str, scores: dict) -> list[dict]:
    """Registry metric rows of :func:`classifier_metrics` on ``dataset``."""
    rows = []
    for column, (metric, explainer, region) in _REGISTRY_METRIC.items():
        if column in scores:
            rows.append({"dataset": dataset, "metric": metric, "explainer": explainer,
                         "region": region, "value": scores[column]})
    return rows


def classifier_table(registry: Any, search_ids: dict[tuple[str, str], int]) -> pd.DataFrame:
    """One row per (task, loss, seed, evaluation set) of the recorded classifiers.

    Args:
        registry: the results registry.
        search_ids: (task, loss) → registry search id.

    Returns:
        Columns ``task``, ``loss``, ``seed``, ``trial``, ``set``, ``seconds``, ``epochs``,
        ``model_path`` and the :data:`CLASSIFIER_METRICS`.
    """
    columns = {key: column for column, key in _REGISTRY_METRIC.items()}
    rows = []
    for (task, loss), search_id in search_ids.items():
        models = registry.models(search_id=search_id)
        metrics = registry.metrics(experiment=models["experiment"].tolist()) \
            if len(models) else None
        for model in models.itertuples():
            mine = metrics[metrics["model_id"] == model.model_id]
            for name, block in mine.groupby("dataset", sort=False):
                values = {columns.get((m, e or "", r or "")): v for m, e, r, v in
                          block[["metric", "explainer", "region", "value"]].itertuples(index=False)}
                rows.append({"task": task, "loss": loss, "seed": model.seed,
                             "trial": model.trial, "set": name, "seconds": model.wall_time_s,
                             "epochs": model.epochs, "model_path": model.model_path,
                             **{m: values.get(m, np.nan) for m in CLASSIFIER_METRICS}})
    return pd.DataFrame(rows, columns=["task", "loss", "seed", "trial", "set", "seconds",
                                       "epochs", "model_path", *CLASSIFIER_METRICS])


#: The classifier metrics compared between the losses, per task.
COMPARED_METRICS = ("balanced_accuracy", "hirescam_heart_share", "hirescam_empty_map_share",
                    "saliency_heart_share")
#: Fewest models per group for which a comparison is run (Shapiro–Wilk needs three).
MIN_MODELS = 3
_SIDES = {"n_x": "n_cce", "n_y": "n_heatmap", "mean_x": "mean_cce", "mean_y": "mean_heatmap"}
#: Names of the per-seed lists in ``summary.json`` (``acdc.classifier.<task>.<loss>``).
SUMMARY_NAMES = {"balanced_accuracy": "balanced_accuracy", "accuracy": "accuracy",
                 "hirescam_heart_share": "heart_share",
                 "hirescam_empty_map_share": "empty_map_share",
                 "saliency_heart_share": "saliency_heart_share",
                 "saliency_empty_map_share": "saliency_empty_map_share"}


def compare_scores(x: Any, y: Any, *, min_n: int = MIN_MODELS, seed: int = 0) -> dict:
    """:func:`heatmaploss.stats.compare_groups` for a table row: the test's essentials, or why
    none was run.

    Non-finite scores are dropped. No test when a group keeps fewer than ``min_n`` values or
    all values are equal; one constant group (the normality test is undefined) takes the
    rule's non-normal branch, Mann–Whitney U, and says so.

    Args:
        x, y: the two groups' scores (x first, as in ``compare_groups``).
        min_n: fewest values per group for a test (at least 3, for Shapiro–Wilk).
        seed: bootstrap seed of ``compare_groups``.

    Returns:
        ``n_x``, ``n_y``, ``mean_x``, ``mean_y``, ``test``, ``p_value``, ``cohens_d``,
        ``cles`` (NaN / empty without a test) and ``skipped`` (the reason; empty when tested).
    """
    from scipy.stats import mannwhitneyu

    from ... import stats

    x, y = (np.asarray(v, dtype=float).ravel() for v in (x, y))
    x, y = x[np.isfinite(x)], y[np.isfinite(y)]
    row = {"n_x": int(x.size), "n_y": int(y.size),
           "mean_x": float(np.mean(x)) if x.size else np.nan,
           "mean_y": float(np.mean(y)) if y.size else np.nan, "test": "",
           "p_value": np.nan, "cohens_d": np.nan, "cles": np.nan, "skipped": ""}
    least = max(min_n, stats.SHAPIRO_MIN_N)
    if min(x.size, y.size) < least:
        row["skipped"] = f"fewer than {least} values in a group"
    elif np.ptp(np.concatenate([x, y])) == 0:
        row["skipped"] = "every value is the same"
    elif np.ptp(x) == 0 or np.ptp(y) == 0:
        u = mannwhitneyu(x, y, alternative="two-sided", method="asymptotic",
                         use_continuity=True)
        row.update(test="mannwhitneyu (a constant group)", p_value=float(u.pvalue),
                   cohens_d=stats.cohens_d(x, y), cles=stats.cles(x, y))
    else:
        c = stats.compare_groups(x, y, seed=seed)
        row.update(test=c.test, p_value=c.p_value, cohens_d=c.cohens_d, cles=c.cles)
    return row


def compare_losses(table: pd.DataFrame, dataset: str = "validation",
                   metrics: tuple[str, ...] = COMPARED_METRICS, seed: int = 0) -> pd.DataFrame:
    """Cross-entropy (x) against heatmap-loss (y) classifiers, per task and metric, with the
    project's rule (:func:`heatmaploss.stats.compare_groups`); p-values Holm-corrected over
    every comparison of the chapter (:func:`compare_scores`: no test for too few models or
    identical values; Mann–Whitney U when one group is constant).

    Args:
        table: :func:`classifier_table`.
        dataset: the evaluation set compared.
        metrics: the metric columns.
        seed: bootstrap seed.

    Returns:
        One row per (task, metric): ``n_cce``, ``n_heatmap``, ``mean_cce``, ``mean_heatmap``,
        ``test``, ``p_value``, ``p_holm``, ``cohens_d`` (CCE − heatmap), ``cles`` and
        ``skipped`` (why no test was run; empty when one was).
    """
    from ... import stats

    rows = []
    block = table[table["set"] == dataset]
    for task in dict.fromkeys(block["task"]):
        mine = block[block["task"] == task]
        for metric in metrics:
            result = compare_scores(mine.loc[mine["loss"] == "cce", metric],
                                    mine.loc[mine["loss"] == "heatmap", metric], seed=seed)
            rows.append({"task": task, "metric": metric,
                         **{_SIDES.get(k, k): v for k, v in result.items()}})
    out = pd.DataFrame(rows, columns=["task", "metric", "n_cce", "n_heatmap", "mean_cce",
                                      "mean_heatmap", "test", "p_value", "cohens_d", "cles",
                                      "skipped"])
    out["p_holm"] = np.nan
    tested = out["p_value"].notna()
    if tested.any():
        out.loc[tested, "p_holm"] = stats.holm(out.loc[tested, "p_value"].tolist()).p_adjusted
    return out


def classifier_entry(table: pd.DataFrame, comparisons: pd.DataFrame,
                     dataset: str = "validation") -> dict:
    """``acdc.classifier``: per task and loss, per-seed lists (:data:`SUMMARY_NAMES`) on
    ``dataset`` (other sets under ``by_set``), the comparisons and the verdicts."""
    out: dict[str, Any] = {}
    for task in dict.fromkeys(table["task"]):
        entry: dict[str, Any] = {"set": dataset}
        for loss in dict.fromkeys(table.loc[table["task"] == task, "loss"]):
            models = table[(table["task"] == task) & (table["loss"] == loss)]

            def lists(block: pd.DataFrame) -> dict:
                block = block.sort_values("trial", key=lambda t: t.astype(str).str.zfill(6))
                return {"seeds": block["seed"].tolist(), "seconds": block["seconds"].tolist(),
                        **{SUMMARY_NAMES[m]: block[m].tolist() for m in CLASSIFIER_METRICS}}

            entry[loss] = {**lists(models[models["set"] == dataset]),
                           "by_set": {name: lists(b) for name, b in models.groupby("set")
                                      if name != dataset}}
        mine = comparisons[comparisons["task"] == task]
        entry["comparisons"] = {r["metric"]: {k: r[k] for k in r.index if k not in ("task",
                                                                                 "metric")}
                                for _, r in mine.iterrows()}
        if "cce" in entry:
            entry["verdict"] = classifier_verdict(entry["cce"]["balanced_accuracy"])
        entry["heatmap_verdict"] = heatmap_verdict(comparisons, task)
        out[task] = entry
    return out


def summary_part(data: Any, settings: Any, unet: Any, diagnosis: dict, classifiers: dict,
                 chapter_seconds: float) -> dict:
    """The chapter's entry in ``summary.json`` (key ``acdc``).

    Args:
        data: the chapter's :class:`~heatmaploss.chapters.acdc.run.AcdcData`.
        settings: the profile's ``AcdcSettings``.
        unet: the :class:`~heatmaploss.chapters.acdc.run.UnetResult`.
        diagnosis: :func:`heatmaploss.chapters.acdc.diagnosis.summary_entry`.
        classifiers: :func:`classifier_entry`.
        chapter_seconds: wall time of the whole chapter.

    Returns:
        ``{"acdc": {...}}``: the data, the U-Net's Dice and training time, ``diagnosis`` and
        ``classifier`` (see the README's ``summary.json`` section) and ``chapter_seconds``.
    """
    return {"acdc": {
        "data": data.source, "root": str(data.root), "n_training_patients": len(data.training),
        "n_testing_patients": len(data.testing), "box": settings.box,
        "target_spacing": settings.target_spacing,
        "unet": {"seconds": unet.record["wall_time_s"], "epochs": settings.unet_epochs,
                 "validation_dice": unet.dice[["RV", "MYO", "LV", "mean"]].mean().to_dict()},
        "diagnosis": diagnosis, "classifier": classifiers,
        "chapter_seconds": chapter_seconds,
    }}


def save_statistics(results: Path, data: Any, settings: Any, unet: Any, diagnosis: Any,
                    classifiers: pd.DataFrame, chapter_seconds: float) -> dict:
    """Write the chapter's statistics files and merge its part into ``summary.json``.

    Files: ``stats/acdc_unet_dice.csv``, ``stats/acdc_diagnosis.csv`` (every scored patient's
    prediction), ``stats/acdc_diagnosis_features.csv``, ``stats/acdc_classifiers.csv`` and
    ``stats/acdc_classifier_comparisons.csv``.

    Args:
        diagnosis: the :class:`~heatmaploss.chapters.acdc.diagnosis.DiagnosisResult`.
        classifiers: :func:`classifier_table`.

    Returns:
        The ``summary.json`` part.
    """
    from .diagnosis import summary_entry

    stats = Path(results) / "stats"
    comparisons = compare_losses(classifiers)
    predictions = pd.concat([s["predictions"].assign(set=name, features=source)
                             for name, by_source in diagnosis.scores.items()
                             for source, s in by_source.items()]
                            + [s["predictions"].assign(set=name, features="transfer")
                               for name, s in diagnosis.transfer.items()], ignore_index=True)
    tables = pd.concat([t.assign(set="train", features=source)
                        for source, t in diagnosis.train.items()]
                       + [t.assign(set=name, features=source)
                          for name, by_source in diagnosis.tables.items()
                          for source, t in by_source.items()], ignore_index=True)
    files.write_text(stats / "acdc_unet_dice.csv", unet.dice.to_csv(index=False))
    files.write_text(stats / "acdc_diagnosis.csv", predictions.to_csv(index=False))
    files.write_text(stats / "acdc_diagnosis_features.csv", tables.to_csv(index=False))
    files.write_text(stats / "acdc_classifiers.csv", classifiers.to_csv(index=False))
    files.write_text(stats / "acdc_classifier_comparisons.csv",
                     comparisons.to_csv(index=False))
    part = summary_part(data, settings, unet, summary_entry(diagnosis),
                        classifier_entry(classifiers, comparisons), chapter_seconds)
    files.update_summary(results, part)
    return part


__all__ = ["CLASSIFIER_METRICS", "COMPARED_METRICS", "STRUCTURE_LABELS", "balanced_accuracy",
           "classifier_entry", "classifier_metrics", "classifier_rows", "classifier_table",
           "compare_losses", "compare_scores", "dice_scores", "map_shares", "save_statistics",
           "segmentation_scores", "summary_part"]
