"""Chapter 2, the figures: the thesis's figures redrawn from its published data.

* ``thesis_exp{1,2}[_gradcam]_heart_overlap_hist`` — model-level heart overlap per group (bin
  width 0.02 on [0, 1]; the dashed line is a spatially uniform heatmap's score);
* ``thesis_exp2_sex_marker_dist_{unfiltered,iqr1p5,iqr5}`` — sex-marker overlap per group,
  each group on its own x scale;
* ``thesis_exp{1,2}[_gradcam]_heart_per_class`` — every model's four class averages.

Each ``save_*`` function draws, saves (PNG + PDF) and returns the names. TensorFlow-free.
"""

from __future__ import annotations

from pathlib import Path

from ... import plots
from ...names import EXPLAINER_LABELS
from .analysis import Reanalysis


#: Every figure of the chapter (name pattern → what it shows; ``{a,b}`` is one of a or b).
FIGURES = {
    "thesis_exp{1,2}_heart_overlap_hist": "HiResCAM heart overlap per model and group",
    "thesis_exp{1,2}_gradcam_heart_overlap_hist": "the same with Grad-CAM (held out)",
    "thesis_exp2_sex_marker_dist_{unfiltered,iqr1p5,iqr5}":
        "HiResCAM mass on the sex marker per group, each on its own x scale",
    "thesis_exp{1,2}_heart_per_class": "every model's four class averages (HiResCAM)",
    "thesis_exp{1,2}_gradcam_heart_per_class": "the same with Grad-CAM",
}


def _suffix(explainer: str) -> str:
    return "" if explainer == "hirescam" else f"_{explainer}"


def save_heart_histograms(result: Reanalysis, explainer: str, folder: Path) -> list[str]:
    """Heart-overlap histograms of both experiments for one explainer."""
    name = EXPLAINER_LABELS[explainer]
    held_out = "" if explainer == "hirescam" else " (held-out explainer)"
    names = []
    for key in ("exp1_heart", "exp2_heart"):
        c = result.comparisons[explainer][key]
        n = c.groups.experiment
        title = (f"Experiment {n}: {name}{held_out} mass inside the heart"
                 + (", one value per model" if explainer == "hirescam" else ""))
        fig = plots.overlap_histogram(c.scores, title=title,
                                      xlabel=f"fraction of {name} mass inside the heart",
                                      references={"uniform heatmap": c.groups.uniform_baseline})
        names.append(plots.save(fig, f"thesis_exp{n}{_suffix(explainer)}_heart_overlap_hist",
                                folder))
    return names


def save_sex_marker_figures(result: Reanalysis, folder: Path) -> list[str]:
    """HiResCAM mass on the sex marker per group: unfiltered and after 1.5 / 5 IQR filters."""
    marker = result.hirescam["exp2_sex_marker"]
    names = []
    for k, label in ((None, "unfiltered"), (1.5, "iqr1p5"), (5.0, "iqr5")):
        where = "unfiltered" if k is None else f"after {k:g} IQR filtering"
        fig = plots.group_distributions(
            marker.scores, iqr_k=k, xlabel="fraction of HiResCAM mass on the sex marker",
            title=f"Experiment 2: HiResCAM mass on the sex marker per model, {where}")
        names.append(plots.save(fig, f"thesis_exp2_sex_marker_dist_{label}", folder))
    return names


def save_per_class_figures(result: Reanalysis, folder: Path) -> list[str]:
    """Per-class heart scores of every model, both explainers and experiments."""
    names = []
    for explainer, table in result.comparisons.items():
        name = EXPLAINER_LABELS[explainer]
        for key in ("exp1_heart", "exp2_heart"):
            sel = table[key].groups
            fig = plots.per_class_plot(
                sel.per_class, ylim=(0, 1), ylabel=f"fraction of {name} mass inside the heart",
                title=f"Experiment {sel.experiment}: {name} mass inside the heart per class")
            names.append(plots.save(
                fig, f"thesis_exp{sel.experiment}{_suffix(explainer)}_heart_per_class", folder))
    return names


__all__ = ["FIGURES", "save_heart_histograms", "save_per_class_figures",
           "save_sex_marker_figures"]
