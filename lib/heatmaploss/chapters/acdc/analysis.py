"""The ACDC chapter, the analysis: Dice, classifier metrics, the registry's classifier table,
the ``summary.json`` entry and the statistics files. TensorFlow-free.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ...project import files

#: Label of each foreground structure in the ACDC masks.
STRUCTURE_LABELS = {"RV": 1, "MYO": 2, "LV": 3}
#: What every classifier is scored on, per evaluation set.
CLASSIFIER_METRICS = ("balanced_accuracy", "patient_balanced_accuracy", "heart_fraction",
                      "empty_maps")


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


def classifier_metrics(prob: np.ndarray, truth: np.ndarray, patients: np.ndarray,
                       maps: np.ndarray, heart: np.ndarray | None) -> dict[str, float]:
    """A normal-vs-diseased classifier's scores on one set of volumes.

    Args:
        prob: (N,) probability of "diseased" per volume.
        truth: (N,) 0 normal, 1 diseased.
        patients: (N,) patient id per volume (ED and ES of a patient are averaged).
        maps: (N, x, y, z) HiResCAM maps at the deepest grid (ReLU).
        heart: (N, x, y, z) share of each cell inside the heart, or None without masks.

    Returns:
        ``balanced_accuracy`` (per volume), ``patient_balanced_accuracy``, ``heart_fraction``
        (mean share of map mass inside the heart over volumes with a non-empty map; NaN when
        none), ``empty_maps`` (share of all-zero maps).
    """
    total = maps.reshape(len(maps), -1).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        fraction = (np.full(len(maps), np.nan) if heart is None else
                    (maps * heart).reshape(len(maps), -1).sum(axis=1)
                    / np.where(total > 0, total, np.nan))
    ids = np.unique(patients)
    p_prob = np.array([prob[patients == n].mean() for n in ids])
    p_truth = np.array([truth[patients == n][0] for n in ids])
    return {"balanced_accuracy": balanced_accuracy(truth, prob > 0.5),
            "patient_balanced_accuracy": balanced_accuracy(p_truth, p_prob > 0.5),
            "heart_fraction": (float(np.nanmean(fraction)) if np.isfinite(fraction).any()
                               else float("nan")),
            "empty_maps": float(np.mean(total <= 0))}


def classifier_table(registry: Any, search_ids: dict[str, int]) -> pd.DataFrame:
    """One row per (loss, seed, evaluation set) of the recorded classifiers.

    Args:
        registry: the results registry.
        search_ids: loss → registry search id.

    Returns:
        Columns ``loss``, ``seed``, ``trial``, ``set``, ``seconds``, ``epochs``,
        ``model_path`` and the :data:`CLASSIFIER_METRICS`.
    """
    rows = []
    for loss, search_id in search_ids.items():
        models = registry.models(search_id=search_id)
        metrics = registry.metrics(experiment=models["experiment"].tolist()) \
            if len(models) else None
        for model in models.itertuples():
            mine = metrics[metrics["model_id"] == model.model_id]
            for name, block in mine.groupby("dataset", sort=False):
                values = dict(zip(block["metric"], block["value"]))
                rows.append({"loss": loss, "seed": model.seed, "trial": model.trial,
                             "set": name, "seconds": model.wall_time_s, "epochs": model.epochs,
                             "model_path": model.model_path,
                             **{m: values.get(m, np.nan) for m in CLASSIFIER_METRICS}})
    return pd.DataFrame(rows, columns=["loss", "seed", "trial", "set", "seconds", "epochs",
                                       "model_path", *CLASSIFIER_METRICS])


def summary_part(data: Any, settings: Any, unet: Any, classifiers: pd.DataFrame,
                 chapter_seconds: float) -> dict:
    """The chapter's entry in ``summary.json`` (key ``acdc``).

    Args:
        data: the chapter's :class:`~heatmaploss.chapters.acdc.run.AcdcData`.
        settings: the profile's ``AcdcSettings``.
        unet: the :class:`~heatmaploss.chapters.acdc.run.UnetResult`.
        classifiers: :func:`classifier_table`.
        chapter_seconds: wall time of the whole chapter.

    Returns:
        ``{"acdc": {...}}`` with the data description, the U-Net's Dice and training time,
        and the classifiers' mean metrics per ``<set>/<loss>``.
    """
    means = (classifiers.groupby(["set", "loss"])[list(CLASSIFIER_METRICS) + ["seconds"]]
             .mean() if len(classifiers) else pd.DataFrame())
    return {"acdc": {
        "data": data.source, "root": str(data.root), "n_training_patients": len(data.training),
        "n_testing_patients": len(data.testing), "box": settings.box,
        "target_spacing": settings.target_spacing,
        "unet": {"seconds": unet.record["wall_time_s"], "epochs": settings.unet_epochs,
                 "validation_dice": unet.dice[["RV", "MYO", "LV", "mean"]].mean().to_dict()},
        "classifier": {f"{s}/{l}": row for (s, l), row in means.to_dict("index").items()},
        "chapter_seconds": chapter_seconds,
    }}


def save_statistics(results: Path, data: Any, settings: Any, unet: Any,
                    classifiers: pd.DataFrame, chapter_seconds: float) -> dict:
    """Write ``stats/acdc_unet_dice.csv`` and ``stats/acdc_classifiers.csv`` and merge
    :func:`summary_part` into ``summary.json``; returns the part."""
    stats = Path(results) / "stats"
    files.write_text(stats / "acdc_unet_dice.csv", unet.dice.to_csv(index=False))
    files.write_text(stats / "acdc_classifiers.csv", classifiers.to_csv(index=False))
    part = summary_part(data, settings, unet, classifiers, chapter_seconds)
    files.update_summary(results, part)
    return part


__all__ = ["CLASSIFIER_METRICS", "STRUCTURE_LABELS", "balanced_accuracy", "classifier_metrics",
           "classifier_table", "dice_scores", "save_statistics", "segmentation_scores",
           "summary_part"]
