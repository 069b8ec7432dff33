"""The data chapter's tables and figures: calibration against the thesis, samples, geometry.

    frame = synthetic_plots.per_image_frame(1, 2500, seed=0)     # one row per image
    synthetic_plots.fraction_table(frame)                       # ours next to the thesis's
    fig = synthetic_plots.plot_samples(synthetic.generate(1, 4, seed=0))
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from heatmaploss import synthetic
from heatmaploss.synthetic import CLASSES, THESIS_FACTS, Tissue

GEOMETRY_COLUMNS = ("size_multiplier", "lv_cavity_radius", "lv_wall_thickness",
                    "rv_cavity_radius", "rv_wall_thickness", "body_fat_percent", "fat_length",
                    "arv_subtype", "fatty_lv")
#: Outline colours per tissue (RGB in [0, 1]); background stays black.
TISSUE_COLOURS = {
    Tissue.LV_CAVITY: (1.0, 0.35, 0.35), Tissue.RV_CAVITY: (0.35, 0.6, 1.0),
    Tissue.LV_MYOCARDIUM: (0.85, 0.1, 0.1), Tissue.RV_MYOCARDIUM: (0.1, 0.35, 0.9),
    Tissue.FAT: (1.0, 0.85, 0.2), Tissue.SEX_MARKER: (0.2, 0.9, 0.3),
    Tissue.DECOY_MARKER: (0.9, 0.3, 0.9),
}
MEASURES = {"lv_cavity_radius": "LV cavity radius (px)", "lv_wall_thickness": "LV wall (px)",
            "rv_cavity_radius": "RV cavity radius (px)", "rv_wall_thickness": "RV wall (px)"}


def per_image_frame(experiment: int, n_per_class: int, seed: int, chunk_size: int = 1000,
                    **options: Any) -> pd.DataFrame:
    """Stream a set and keep one row per image (no pixels), for tables and distributions.

    Args:
        experiment, n_per_class, seed, **options: as :func:`heatmaploss.synthetic.generate`.
        chunk_size: images generated at a time (bounds memory).

    Returns:
        DataFrame with ``experiment``, ``label``, ``class``, ``is_male``, the region fractions
        ``heart``, ``fat``, ``sex_marker``, ``decoy_marker``, ``decoy_class`` and
        :data:`GEOMETRY_COLUMNS`.
    """
    parts = []
    for chunk in synthetic.iter_batches(experiment, n_per_class, seed, chunk_size, **options):
        fractions = synthetic.tissue_fractions(chunk)
        part = {"experiment": experiment, "label": chunk.labels, "is_male": chunk.is_male,
                "decoy_class": chunk.decoy_class}
        part.update({k: fractions[k] for k in ("heart", "fat", "sex_marker", "decoy_marker")})
        part.update({k: chunk.geometry[k] for k in GEOMETRY_COLUMNS})
        parts.append(pd.DataFrame(part))
    frame = pd.concat(parts, ignore_index=True)
    frame.insert(2, "class", pd.Categorical.from_codes(frame["label"], categories=list(CLASSES)))
    return frame


def fraction_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per-class mean heart / fat / sex-marker pixel fractions and P(male), with the thesis's.

    Args:
        frame: :func:`per_image_frame` output (one experiment or both).

    Returns:
        One row per (experiment, class): ``n``, ``heart``, ``heart_thesis``,
        ``heart_relative_error`` (ours / thesis − 1), ``heart_se`` (standard error of our
        mean), ``fat``, ``fat_thesis`` (the thesis gives one rounded value for all classes),
        ``sex_marker``, ``sex_marker_thesis`` (81/14175 × P(male) in experiment 2, 0 in 1),
        ``p_male``, ``p_male_thesis``.
    """
    rows = []
    for (experiment, name), group in frame.groupby(["experiment", "class"], observed=True):
        experiment = int(experiment)
        heart_thesis = THESIS_FACTS["heart_fraction"][experiment][name]
        rows.append({
            "experiment": experiment, "class": name, "n": len(group),
            "heart": group["heart"].mean(), "heart_thesis": heart_thesis,
            "heart_relative_error": group["heart"].mean() / heart_thesis - 1,
            "heart_se": group["heart"].std(ddof=1) / np.sqrt(len(group)),
            "fat": group["fat"].mean(), "fat_thesis": THESIS_FACTS["fat_fraction"][experiment],
            "sex_marker": group["sex_marker"].mean(),
            "sex_marker_thesis": THESIS_FACTS["sex_marker_fraction"][experiment][name],
            "p_male": group["is_male"].mean(), "p_male_thesis": THESIS_FACTS["p_male"][name],
        })
    return pd.DataFrame(rows)


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
    handles = [Patch(color=c, label=t.name.lower().replace("_", " "))
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
    import matplotlib.pyplot as plt

    experiments = sorted(frame["experiment"].unique())
    fig, axes = plt.subplots(len(experiments), len(MEASURES), squeeze=False,
                             figsize=(3.6 * len(MEASURES), 3.0 * len(experiments)))
    colours = {False: "tab:orange", True: "tab:blue"}
    for r, experiment in enumerate(experiments):
        sub = frame[frame["experiment"] == experiment]
        for c, (column, label) in enumerate(MEASURES.items()):
            ax = axes[r, c]
            for k in range(len(CLASSES)):
                for male in (False, True):
                    values = sub.loc[(sub["label"] == k) & (sub["is_male"] == male), column]
                    if values.empty:
                        continue
                    box = ax.boxplot([values.to_numpy()], positions=[k + (0.2 if male else -0.2)],
                                     widths=0.35, patch_artist=True,
                                     medianprops={"color": "black"},
                                     flierprops={"markersize": 2, "alpha": 0.4})
                    box["boxes"][0].set_facecolor(colours[male])
            ax.set_xticks(range(len(CLASSES)), CLASSES)
            ax.set_title(f"experiment {experiment}: {label}", fontsize=9)
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours[m]) for m in (False, True)]
    fig.legend(handles, ["female", "male"], loc="upper right", fontsize=8)
    fig.tight_layout()
    return fig


def plot_heart_fraction_hist(frame: pd.DataFrame):
    """Histograms of the per-image heart fraction per class, with the thesis's class means.

    Args:
        frame: :func:`per_image_frame` output for one or both experiments.

    Returns:
        The matplotlib Figure (one panel per experiment).
    """
    import matplotlib.pyplot as plt

    experiments = sorted(frame["experiment"].unique())
    fig, axes = plt.subplots(1, len(experiments), squeeze=False,
                             figsize=(5.5 * len(experiments), 3.4))
    for ax, experiment in zip(axes[0], experiments):
        sub = frame[frame["experiment"] == experiment]
        bins = np.linspace(0, 1.05 * float(sub["heart"].max()), 60)
        for k, name in enumerate(CLASSES):
            colour = f"C{k}"
            ax.hist(sub.loc[sub["label"] == k, "heart"], bins=bins, histtype="step",
                    color=colour, label=name)
            ax.axvline(THESIS_FACTS["heart_fraction"][int(experiment)][name], color=colour,
                       linestyle="--", linewidth=1)
        ax.set_xlabel("heart pixel fraction (dashed: thesis's class mean)")
        ax.set_ylabel("images")
        ax.set_title(f"experiment {experiment}")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def fraction_summary(table: pd.DataFrame) -> dict[str, Any]:
    """The ``summary.json`` entry of the calibration: per experiment and class, ours and thesis.

    Args:
        table: :func:`fraction_table` output.

    Returns:
        ``{"experiments": {"1": {"NOR": {"heart": ..., "heart_thesis": ..., ...}, ...}, ...},
        "max_abs_heart_relative_error": ...}``.
    """
    columns = [c for c in table.columns if c not in ("experiment", "class")]
    experiments: dict[str, dict[str, dict[str, float]]] = {}
    for record in table.to_dict(orient="records"):
        entry = experiments.setdefault(str(record["experiment"]), {})
        entry[record["class"]] = {c: record[c] for c in columns}
    return {"experiments": experiments,
            "max_abs_heart_relative_error": float(table["heart_relative_error"].abs().max())}
