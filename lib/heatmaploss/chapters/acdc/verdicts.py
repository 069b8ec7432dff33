"""The ACDC chapter's verdicts: sentences computed from the numbers, and the rows of the
reproduction report. TensorFlow-free.

Every judgement the chapter states comes from here: whether the classifiers learn
(:func:`classifier_verdict`), what the heatmap loss did (:func:`heatmap_verdict`), whether
the diagnosis from the segmentation reaches its bar
(:func:`~heatmaploss.chapters.acdc.diagnosis.diagnosis_verdict`), and the report rows that
carry them (:func:`report_rows`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ...report import ReportRow, verdicts
from .diagnosis import PUBLISHED_ACCURACY, TARGET_ACCURACY, diagnosis_verdict

#: The section of the reproduction report the chapter fills.
SECTION = "ACDC (chapter 5)"
#: What the thesis reports of its ACDC classifiers (``docs/acdc.md`` § The thesis's ACDC work).
THESIS_CLASSIFIER = "no high-performing classifier"


def difference(row: Any, alpha: float = 0.05) -> str:
    """``higher``/``lower`` (heatmap vs cross-entropy, Holm-corrected p < ``alpha``), ``no
    significant difference``, ``equal`` (every model the same) or ``not tested``."""
    if row["skipped"]:
        return "equal" if row["skipped"] == "every value is the same" else "not tested"
    if row["p_holm"] < alpha:
        return "higher" if row["mean_heatmap"] > row["mean_cce"] else "lower"
    return "no significant difference"


def _judge(row: Any) -> str:
    """``mean CCE vs mean heatmap, what the rule says`` for one comparison row."""
    means = f"{row['mean_cce']:.2f} vs {row['mean_heatmap']:.2f}"
    found = difference(row)
    if found == "not tested":
        return f"{means}, not tested ({row['skipped']})"
    if found == "equal":
        return f"{means}, every model the same"
    label = found if found.startswith("no ") else f"heatmap {found}"
    return f"{means}, {label} ({row['test']} p_holm = {row['p_holm']:.2g})"


def heatmap_verdict(comparisons: pd.DataFrame, task: str) -> str:
    """Did the heatmap term move HiResCAM into the heart, at what cost in balanced accuracy,
    and does the held-out explainer (saliency) agree? One verdict and the numbers behind it.

    Args:
        comparisons: :func:`~heatmaploss.chapters.acdc.analysis.compare_losses`.
        task: ``binary`` or ``groups``.
    """
    rows = {r["metric"]: r for _, r in comparisons[comparisons["task"] == task].iterrows()}
    needed = ("balanced_accuracy", "hirescam_heart_share", "saliency_heart_share")
    if any(m not in rows for m in needed):
        return f"{task}: no comparison (metrics missing)"
    heart = difference(rows["hirescam_heart_share"])
    accuracy = difference(rows["balanced_accuracy"])
    if heart == "higher":
        cost = {"lower": " at a cost in balanced accuracy",
                "not tested": " (its effect on balanced accuracy not tested)"}.get(
            accuracy, " without costing balanced accuracy")
        moved = f"moved HiResCAM into the heart{cost}"
    else:
        moved = {"lower": "moved HiResCAM out of the heart",
                 "not tested": "cannot be judged on HiResCAM (no test)"}.get(
            heart, "did not significantly move HiResCAM into the heart")
    agree = {"higher": "agrees (more mass in the heart)",
             "lower": "disagrees (less mass in the heart)",
             "not tested": "was not tested"}.get(difference(rows["saliency_heart_share"]),
                                                 "shows no significant change")
    details = [f"HiResCAM in the heart {_judge(rows['hirescam_heart_share'])}",
               f"balanced accuracy {_judge(rows['balanced_accuracy'])}",
               f"saliency in the heart {_judge(rows['saliency_heart_share'])}"]
    if "hirescam_empty_map_share" in rows:
        details.append(f"empty HiResCAM maps {_judge(rows['hirescam_empty_map_share'])}")
    return (f"{task}: the heatmap loss {moved}; held-out saliency {agree}. "
            + "; ".join(details) + ".")


def classifier_verdict(values: Any, target: float = 0.9) -> str:
    """Whether cross-entropy classifiers learn: mean balanced accuracy against ``target``.

    Args:
        values: balanced accuracy per seed.
        target: the bar (0.9 in the chapter's acceptance).
    """
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    if not len(values):
        return "no classifier scored"
    reached = "reaches" if values.mean() >= target else "does not reach"
    seeds = "seed" if len(values) == 1 else "seeds"
    return (f"{reached} {target:.2f} balanced accuracy (mean {values.mean():.3f}, min "
            f"{values.min():.3f} over {len(values)} {seeds})")


def _mean(values: Any) -> float:
    values = np.asarray([v for v in values if v is not None], float)
    values = values[np.isfinite(values)]
    return float(values.mean()) if len(values) else float("nan")


def report_rows(part: dict) -> list[ReportRow]:
    """The chapter's rows of the reproduction report, from its ``summary.json`` part.

    Args:
        part: :func:`~heatmaploss.chapters.acdc.analysis.summary_part`'s value (the
            ``acdc`` entry, or the whole ``{"acdc": ...}``).

    Returns:
        Rows for the diagnosis from the segmentation, each task's cross-entropy classifiers
        (against the thesis's finding) and each task's heatmap-loss comparison.
    """
    part = part.get("acdc", part)
    source = part["data"]
    note_data = ("synthetic ACDC-format fixture: made-up anatomy, the number says the code "
                 "works, not how it fares on patients" if source == "fixture"
                 else "ACDC data")
    rows = []
    diagnosis = part.get("diagnosis") or {}
    if "predicted" in diagnosis and "ground_truth" in diagnosis:
        predicted = diagnosis["predicted"]["accuracy"]
        truth = diagnosis["ground_truth"]["accuracy"]
        anchors = ", ".join(f"{k} {v:.0%}" for k, v in PUBLISHED_ACCURACY.items())
        rows.append(ReportRow(
            SECTION, "diagnosis from the segmentation, 5 groups (accuracy, "
            f"{diagnosis['set']} patients)",
            thesis="not attempted",
            ours=f"U-Net masks {predicted:.2f}, ground-truth masks {truth:.2f} "
                 f"(n = {diagnosis['predicted']['n_patients']})",
            ours_verdict=verdicts.at_least(
                value=predicted, threshold=TARGET_ACCURACY, compares=verdicts.OURS_VS_CLAIM,
                what="accuracy from the U-Net's masks"),
            ours_note=f"{diagnosis_verdict(predicted, truth)}; {note_data}; published test "
                      f"accuracies: {anchors}"))
    for task, entry in (part.get("classifier") or {}).items():
        if "cce" not in entry:
            continue
        cce = entry["cce"]["balanced_accuracy"]
        # The thesis found no high-performing classifier (on real patients); the row states
        # whether ours learn, by the chapter's bar, beside that finding.
        judgement = verdicts.at_least(value=_mean(cce), threshold=0.9,
                                      compares=verdicts.OURS_VS_CLAIM,
                                      what="mean balanced accuracy")
        rows.append(ReportRow(
            SECTION, f"encoder classifier, {task}: cross-entropy classifiers learn (balanced "
            "accuracy at least 0.9)",
            thesis=THESIS_CLASSIFIER, ours=f"{_mean(cce):.3f} (mean of {len(cce)})",
            ours_verdict=judgement, ours_note=f"{classifier_verdict(cce)}; {note_data}"))
        if "heatmap" in entry:
            heart = [_mean(entry[loss]["heart_share"]) for loss in ("cce", "heatmap")]
            comparison = entry.get("comparisons", {}).get("hirescam_heart_share", {})
            rows.append(ReportRow(
                SECTION, f"encoder classifier, {task}: HiResCAM mass in the heart "
                "(CCE / heatmap loss)",
                thesis="heatmap higher (thesis's synthetic experiments)",
                ours=f"{heart[0]:.3f} / {heart[1]:.3f}",
                ours_verdict=verdicts.direction_and_significance(
                    p=comparison.get("p_holm"), effect=comparison.get("cohens_d"),
                    expected_sign=-1, compares=verdicts.OURS_VS_THESIS,
                    effect_name="Cohen's d (CCE minus heatmap loss), Holm-adjusted p",
                    reason=comparison.get("skipped") or ("not tested" if not comparison
                                                         else None)),
                ours_note=entry.get("heatmap_verdict", "")))
    return rows


__all__ = ["SECTION", "THESIS_CLASSIFIER", "classifier_verdict", "difference",
           "heatmap_verdict", "report_rows"]
