"""The ACDC chapter, the figures: data overview, U-Net segmentations, classifiers.

The drawing functions return a matplotlib Figure; :func:`save_data_figures`,
:func:`save_segmentation_figures` and :func:`save_classifier_figures` draw and save a step's
figures (PNG + PDF) and return their names. Only the classifier overlays need TensorFlow (to
compute HiResCAM maps of a saved model); it is imported when they are drawn.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ... import plots
from .data import grid_to_box

LABEL_COLOURS = {1: "tab:blue", 2: "tab:orange", 3: "tab:red"}
LABEL_NAMES = {1: "RV cavity", 2: "LV myocardium", 3: "LV cavity"}


def _mid_slice(label: np.ndarray | None, depth: int) -> int:
    """The slice with the most labelled voxels (the middle one without labels)."""
    if label is None or not label.any():
        return depth // 2
    return int(np.argmax((label > 0).sum(axis=(0, 1))))


def _contours(ax, label2d: np.ndarray) -> None:
    for k, colour in LABEL_COLOURS.items():
        if (label2d == k).any():
            ax.contour((label2d == k).T.astype(float), levels=[0.5], colors=colour, linewidths=1)


def data_overview(overview):
    """Groups per split, in-plane spacing, slice spacing and slice counts of the patients.

    Args:
        overview: DataFrame from :func:`heatmaploss.acdc.overview`.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(15, 3.2))
    counts = overview.fillna({"group": "unknown"}).groupby(["group", "split"]).size().unstack(fill_value=0)
    counts.plot.bar(ax=axes[0], rot=0)
    axes[0].set(title="patients per group", xlabel="", ylabel="patients")
    for ax, column, title in ((axes[1], "spacing_x", "in-plane spacing (mm)"),
                              (axes[2], "spacing_z", "slice spacing (mm)"),
                              (axes[3], "slices", "slices per volume")):
        values = overview[column].value_counts().sort_index()
        ax.bar([f"{v:g}" for v in values.index], values.values, color="tab:gray")
        ax.set(title=title, ylabel="patients")
        ax.tick_params(axis="x", rotation=45)
    fig.tight_layout()
    return fig


def slices_with_masks(patients, per_group: int = 1):
    """ED and ES mid-ventricular slices with the ground-truth contours, one row per group.

    Args:
        patients: :class:`~heatmaploss.acdc.AcdcPatient` records with labels.
        per_group: patients shown per group.
    """
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    chosen = []
    for group in sorted({p.group for p in patients if p.group}):
        chosen += [p for p in patients if p.group == group][:per_group]
    fig, axes = plt.subplots(len(chosen), 2, figsize=(5.5, 2.7 * len(chosen)), squeeze=False)
    for row, p in zip(axes, chosen):
        for ax, phase in zip(row, ("ED", "ES")):
            image, label = p.image(phase), p.label(phase) if p.has_labels else None
            z = _mid_slice(label, image.shape[2])
            ax.imshow(image[:, :, z].T, cmap="gray", origin="lower")
            if label is not None:
                _contours(ax, label[:, :, z])
            ax.set_title(f"{p.patient_id} {p.group} {phase} slice {z}", fontsize=8)
            ax.axis("off")
    handles = [Line2D([], [], color=c, label=LABEL_NAMES[k]) for k, c in LABEL_COLOURS.items()]
    fig.legend(handles=handles, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig


def dice_boxplot(scores, title: str = "U-Net Dice on validation patients"):
    """Dice per structure (RV, MYO, LV) and their mean, one point per volume."""
    import matplotlib.pyplot as plt

    columns = ["RV", "MYO", "LV", "mean"]
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    data = [scores[c].dropna().values for c in columns]
    ax.boxplot(data, showfliers=False)
    ax.set_xticks(range(1, len(columns) + 1), columns)
    rng = np.random.default_rng(0)
    for i, values in enumerate(data, start=1):
        ax.scatter(i + rng.uniform(-0.12, 0.12, len(values)), values, s=8, alpha=0.6)
    ax.set(ylabel="Dice", ylim=(min(0.5, min(v.min() for v in data if len(v)) - 0.02), 1.0),
           title=title)
    return fig


def segmentation_examples(images, labels, predicted, captions, n: int = 4):
    """Mid slices: image, ground truth contours (top) and predicted contours (bottom)."""
    import matplotlib.pyplot as plt

    n = min(n, len(images))
    fig, axes = plt.subplots(2, n, figsize=(2.6 * n, 5.4), squeeze=False)
    for i in range(n):
        z = _mid_slice(labels[i], images.shape[3])
        for ax, lab, kind in ((axes[0, i], labels[i], "truth"), (axes[1, i], predicted[i], "U-Net")):
            ax.imshow(images[i, :, :, z, 0].T, cmap="gray", origin="lower")
            _contours(ax, lab[:, :, z])
            ax.set_title(f"{captions[i]} — {kind}", fontsize=8)
            ax.axis("off")
    fig.tight_layout()
    return fig


def heatmap_overlays(images, labels, maps_by_model: dict, captions, n: int = 4):
    """HiResCAM overlays (one row per model) on mid slices, with the heart contour.

    Args:
        images: (N, X, Y, Z, 1) inputs.
        labels: (N, X, Y, Z) masks.
        maps_by_model: row title → (N, X, Y, Z) non-negative maps at input resolution.
        captions: one string per image.
        n: images shown.
    """
    import matplotlib.pyplot as plt

    n = min(n, len(images))
    rows = len(maps_by_model)
    fig, axes = plt.subplots(rows, n, figsize=(2.6 * n, 2.7 * rows), squeeze=False)
    for r, (title, maps) in enumerate(maps_by_model.items()):
        for i in range(n):
            ax = axes[r, i]
            z = _mid_slice(labels[i], images.shape[3])
            ax.imshow(images[i, :, :, z, 0].T, cmap="gray", origin="lower")
            # One colour scale per image over all its slices, so slices stay comparable.
            peak = float(maps[i].max()) or 1.0
            ax.imshow(maps[i][:, :, z].T / peak, cmap="jet", alpha=0.45, vmin=0, vmax=1,
                      origin="lower")
            ax.contour((labels[i][:, :, z] > 0).T.astype(float), levels=[0.5], colors="white",
                       linewidths=0.8)
            empty = " (empty map)" if not maps[i].any() else ""
            ax.set_title(f"{title}: {captions[i]}{empty}", fontsize=7)
            ax.axis("off")
    fig.tight_layout()
    return fig


def classifier_comparison(results):
    """Balanced accuracy and HiResCAM mass inside the heart per loss, one point per model.

    Args:
        results: DataFrame with columns ``loss``, ``balanced_accuracy``, ``heart_fraction``.
    """
    import matplotlib.pyplot as plt

    losses = list(dict.fromkeys(results["loss"]))
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    for ax, column, title in ((axes[0], "balanced_accuracy", "balanced accuracy"),
                              (axes[1], "heart_fraction", "HiResCAM mass inside the heart")):
        for i, loss in enumerate(losses):
            values = results.loc[results["loss"] == loss, column].values
            ax.scatter(np.full(len(values), i), values, s=30)
            if len(values):
                ax.hlines(np.nanmean(values), i - 0.2, i + 0.2, color="k")
        ax.set_xticks(range(len(losses)), losses)
        ax.set(title=title, ylim=(0, 1.02), xlim=(-0.6, len(losses) - 0.4))
    fig.tight_layout()
    return fig


def example_order(arrays: Any) -> np.ndarray:
    """Indices of one volume per group (the first in group order), for example figures."""
    groups = np.asarray(arrays.groups).astype(str)
    per_group = len(groups) // max(1, len(set(groups)))
    return np.argsort(groups, kind="stable")[::max(1, per_group)]


def captions(arrays: Any) -> list[str]:
    """``"<group> <phase>"`` for every volume."""
    return [f"{g} {p}" for g, p in zip(arrays.groups, arrays.phases)]


def save_data_figures(data: Any, overview: Any, folder: Path) -> list[str]:
    """``acdc_data_overview`` and ``acdc_slices_with_masks`` (see :func:`data_overview`)."""
    return [plots.save(data_overview(overview), "acdc_data_overview", folder),
            plots.save(slices_with_masks(data.training), "acdc_slices_with_masks", folder)]


def save_segmentation_figures(data: Any, unet: Any, folder: Path) -> list[str]:
    """``acdc_unet_dice`` (Dice per volume) and ``acdc_unet_examples`` (one volume per group)."""
    validation = data.validation
    order = example_order(validation)
    text = captions(validation)
    return [plots.save(dice_boxplot(unet.dice), "acdc_unet_dice", folder),
            plots.save(segmentation_examples(validation.images[order], validation.labels[order],
                                        unet.predicted[order], [text[i] for i in order], n=5),
                  "acdc_unet_examples", folder)]


def save_classifier_figures(data: Any, classifiers: Any, results: Path, levels: int,
                            box: tuple[int, int, int], folder: Path) -> list[str]:
    """``acdc_classifier_comparison`` (every model, on the test set if it has one, else on the
    validation set) and ``acdc_hirescam_overlays`` (the first model of each loss, on one
    validation volume per group)."""
    from ...attribution import compute_maps
    from ...models import load_model

    shown = "test" if "test" in data.evaluation else "validation"
    fig = classifier_comparison(classifiers[classifiers["set"] == shown])
    fig.suptitle(f"{shown} set ({data.source})")
    names = [plots.save(fig, "acdc_classifier_comparison", folder)]
    validation = data.validation
    order = example_order(validation)
    maps = {}
    for loss, rows in classifiers[classifiers["set"] == "validation"].groupby("loss", sort=False):
        model = load_model(Path(results) / rows.sort_values("trial")["model_path"].iloc[0])
        images = validation.images[order]
        predicted = np.argmax(model.predict_on_batch(images), axis=-1).astype(np.int32)
        grid = compute_maps(model, images, predicted, "hirescam", batch_size=8)
        maps[loss] = grid_to_box(grid, box, levels)
    if maps:
        text = captions(validation)
        names.append(plots.save(heatmap_overlays(validation.images[order], validation.labels[order],
                                            maps, [text[i] for i in order], n=5),
                           "acdc_hirescam_overlays", folder))
    return names


__all__ = ["captions", "classifier_comparison", "data_overview", "dice_boxplot", "example_order",
           "heatmap_overlays", "save_classifier_figures", "save_data_figures",
           "save_segmentation_figures", "segmentation_examples", "slices_with_masks"]
