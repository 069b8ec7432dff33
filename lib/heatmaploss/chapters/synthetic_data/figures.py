"""Chapter 1, the figures: samples with their segmentations, heart fractions, geometry.

TensorFlow-free. The ``save_*`` functions draw, save (PNG + PDF) and return figure names.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ... import plots, synthetic
from ...synthetic import CLASSES, THESIS_FACTS, Tissue

#: Every figure of the chapter (name pattern → what it shows; ``{a,b}`` is one of a or b).
FIGURES = {
    "synthetic_exp{1,2}_samples": "samples per class, each image beside its segmentation outline",
    "synthetic_decoy_samples": "experiment 1 with the class-coded decoy marker (rho = 1)",
    "synthetic_heart_fraction_hist": "per-image heart pixel fraction per class, thesis's means",
    "synthetic_geometry_distributions": "ventricle radii and wall thicknesses per class and sex",
}
#: Outline colours per tissue (RGB in [0, 1]); background stays black.
TISSUE_COLOURS = {
    Tissue.LV_CAVITY: (1.0, 0.35, 0.35), Tissue.RV_CAVITY: (0.35, 0.6, 1.0),
    Tissue.LV_MYOCARDIUM: (0.85, 0.1, 0.1), Tissue.RV_MYOCARDIUM: (0.1, 0.35, 0.9),
    Tissue.FAT: (1.0, 0.85, 0.2), Tissue.SEX_MARKER: (0.2, 0.9, 0.3),
    Tissue.DECOY_MARKER: (0.9, 0.3, 0.9),
}
TISSUE_LABELS = {
    Tissue.LV_CAVITY: "LV cavity", Tissue.RV_CAVITY: "RV cavity",
    Tissue.LV_MYOCARDIUM: "LV myocardium", Tissue.RV_MYOCARDIUM: "RV myocardium",
    Tissue.FAT: "fat", Tissue.SEX_MARKER: "sex marker", Tissue.DECOY_MARKER: "decoy marker",
}
MEASURES = {"lv_cavity_radius": "LV cavity radius (px)", "lv_wall_thickness": "LV wall (px)",
            "rv_cavity_radius": "RV cavity radius (px)", "rv_wall_thickness": "RV wall (px)"}


def outline_image(segmentation: np.ndarray) -> np.ndarray:
    """RGB (H, W, 3) float image of tissue boundaries, each in its tissue's colour.

    A pixel is on a boundary when a 4-neighbour has another code (image edges count as
    background).
    """
    seg = np.pad(segmentation, 1)
    centre = seg[1:-1, 1:-1]
    edge = np.zeros(centre.shape, dtype=bool)
    for dr, dc in ((0, 1), (2, 1), (1, 0), (1, 2)):
        edge |= seg[dr:dr + centre.shape[0], dc:dc + centre.shape[1]] != centre
    rgb = np.zeros((*centre.shape, 3))
    for tissue, colour in TISSUE_COLOURS.items():
        rgb[edge & (centre == tissue)] = colour
    return rgb


def plot_samples(data: synthetic.SyntheticMRIs, per_class: int = 4, title: str = ""):
    """Grid of ``per_class`` samples per class: each MRI with its segmentation outline beside it.

    Args:
        data: a set with at least ``per_class`` images of every class (the first ones are
            shown).
        per_class: samples per class (columns of image/outline pairs).
        title: figure title.

    Returns:
        The matplotlib Figure.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    fig, axes = plt.subplots(len(CLASSES), 2 * per_class, squeeze=False,
                             figsize=(2.0 * 2 * per_class, 2.0 * len(CLASSES)))
    for k, name in enumerate(CLASSES):
        chosen = np.flatnonzero(data.labels == k)[:per_class]
        if chosen.size < per_class:
            raise ValueError(f"class {name} has {chosen.size} images; need per_class={per_class}")
        for j, i in enumerate(chosen):
            ax_img, ax_seg = axes[k, 2 * j], axes[k, 2 * j + 1]
            ax_img.imshow(data.images[i], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
            ax_seg.imshow(outline_image(data.segmentation[i]), interpolation="nearest")
            ax_img.set_title(f"{name}, {'male' if data.is_male[i] else 'female'}", fontsize=8)
            ax_seg.set_title("segmentation", fontsize=8)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    present = set(np.unique(data.segmentation).tolist())
    handles = [Patch(color=c, label=TISSUE_LABELS[t])
               for t, c in TISSUE_COLOURS.items() if int(t) in present]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.04, 1, 0.97), h_pad=1.2)
    return fig


def plot_geometry_distributions(frame: pd.DataFrame):
    """Box plots of LV/RV cavity radius and wall thickness per class and sex, per experiment.

    Args:
        frame: :func:`per_image_frame` output for one or both experiments.

    Returns:
        The matplotlib Figure (rows: experiments; columns: the four measures).
    """
    import seaborn as sns

    long = frame.melt(id_vars=["experiment", "class", "is_male"], value_vars=list(MEASURES),
                      var_name="measure", value_name="pixels")
    long["measure"] = long["measure"].map(MEASURES)
    long["sex"] = np.where(long["is_male"], "male", "female")
    long["experiment"] = "experiment " + long["experiment"].astype(str)
    with plots.theme():
        grid = sns.catplot(long, kind="box", x="class", y="pixels", hue="sex",
                           hue_order=["female", "male"], order=list(CLASSES),
                           palette=plots.palette(["female", "male"]), row="experiment",
                           col="measure", col_order=list(MEASURES.values()), sharey=False,
                           height=2.6, aspect=1.2, fliersize=1.5, linewidth=0.8,
                           legend_out=True)
        grid.set_titles("{row_name}: {col_name}")
        grid.set_axis_labels("class", "pixels")
        grid.figure.suptitle("Synthetic data: ventricle sizes per class and sex "
                             "(boxes: quartiles; dots: outliers)", y=1.02)
    return grid.figure


def plot_heart_fraction_hist(frame: pd.DataFrame):
    """Histograms of the per-image heart fraction per class, with the thesis's class means.

    Args:
        frame: :func:`per_image_frame` output for one or both experiments.

    Returns:
        The matplotlib Figure (one panel per experiment).
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    experiments = sorted(frame["experiment"].unique())
    colours = plots.palette(CLASSES)
    with plots.theme():
        fig, axes = plt.subplots(1, len(experiments), squeeze=False, constrained_layout=True,
                                 figsize=(5.5 * len(experiments), 3.6))
        for ax, experiment in zip(axes[0], experiments):
            sub = frame[frame["experiment"] == experiment]
            bins = np.linspace(0.95 * float(sub["heart"].min()),
                               1.05 * float(sub["heart"].max()), 60)
            sns.histplot(sub, x="heart", hue="class", hue_order=list(CLASSES), palette=colours,
                         bins=bins, element="step", fill=False, ax=ax, legend=False)
            for name in CLASSES:
                ax.axvline(THESIS_FACTS["heart_fraction"][int(experiment)][name],
                           color=colours[name], linestyle="--", linewidth=1.2)
            ax.set_xlabel("heart pixel fraction of an image")
            ax.set_ylabel("images")
            ax.set_title(f"experiment {experiment}")
        handles = [plt.Line2D([], [], color=colours[c], label=c) for c in CLASSES]
        handles.append(plt.Line2D([], [], color="0.3", linestyle="--",
                                  label="thesis's class mean"))
        axes[0, -1].legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        fig.suptitle("Synthetic data: heart pixel fraction per image and class")
    return fig


def save_samples(seeds: dict[int, int], per_class: int, folder: Path) -> list[str]:
    """``synthetic_exp{1,2}_samples``: ``per_class`` images per class of each experiment."""
    names = []
    for experiment, seed in seeds.items():
        samples = synthetic.generate(experiment, per_class, seed=seed)
        names.append(plots.save(plot_samples(samples, per_class,
                                             title=f"Synthetic data, experiment {experiment}: "
                                                   f"{per_class} images per class, each beside "
                                                   "its segmentation outline"),
                                f"synthetic_exp{experiment}_samples", folder))
    return names


def save_decoy_samples(seeds: dict[int, int], per_class: int, folder: Path) -> list[str]:
    """``synthetic_decoy_samples``: experiment 1 with the class-coded decoy marker (ρ = 1)."""
    samples = synthetic.generate(1, per_class, seed=seeds[1], decoy=1.0)
    return [plots.save(plot_samples(samples, per_class,
                                    title="Synthetic data, experiment 1 with the class-coded "
                                          "decoy marker in a corner (ρ = 1)"),
                       "synthetic_decoy_samples", folder)]


def save_heart_fraction_hist(frame: pd.DataFrame, folder: Path) -> list[str]:
    """``synthetic_heart_fraction_hist`` (see :func:`plot_heart_fraction_hist`)."""
    return [plots.save(plot_heart_fraction_hist(frame), "synthetic_heart_fraction_hist", folder)]


def save_geometry(frame: pd.DataFrame, folder: Path) -> list[str]:
    """``synthetic_geometry_distributions`` (see :func:`plot_geometry_distributions`)."""
    return [plots.save(plot_geometry_distributions(frame), "synthetic_geometry_distributions",
                       folder)]


__all__ = ["FIGURES", "MEASURES", "TISSUE_COLOURS", "TISSUE_LABELS", "outline_image",
           "plot_geometry_distributions", "plot_heart_fraction_hist", "plot_samples",
           "save_decoy_samples", "save_geometry", "save_heart_fraction_hist", "save_samples"]
