"""The ACDC chapter, the figures: data overview, U-Net segmentations, diagnosis from the
segmentation, classifiers.

The drawing functions return a matplotlib Figure; :func:`save_data_figures`,
:func:`save_segmentation_figures`, :func:`save_diagnosis_figures` and
:func:`save_classifier_figures` draw and save a step's figures (PNG + PDF) and return their
names. Only the classifiers' maps need TensorFlow (to compute the maps of a saved model); it
is imported when they are drawn.
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


def data_overview(overview, source: str | None = None):
    """Groups per split, in-plane spacing, slice spacing and slice counts of the patients.

    Args:
        overview: DataFrame from :func:`heatmaploss.acdc.overview`.
        source: ``fixture`` tags the titles as synthetic (see :func:`plots.source_title`).
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(15, 3.2))
    counts = (overview.fillna({"group": "unknown"}).groupby(["group", "split"]).size()
              .unstack(fill_value=0))
    counts.plot.bar(ax=axes[0], rot=0)
    axes[0].set(title="patients per group", xlabel="", ylabel="patients")
    for ax, column, title in ((axes[1], "spacing_x", "in-plane spacing (mm)"),
                              (axes[2], "spacing_z", "slice spacing (mm)"),
                              (axes[3], "slices", "slices per volume")):
        values = overview[column].value_counts().sort_index()
        ax.bar([f"{v:g}" for v in values.index], values.values, color="tab:gray")
        ax.set(title=title, ylabel="patients")
        ax.tick_params(axis="x", rotation=45)
    fig.suptitle(plots.source_title("ACDC patients", source))
    fig.tight_layout()
    return fig


def slices_with_masks(patients, per_group: int = 1, source: str | None = None):
    """ED and ES mid-ventricular slices with the ground-truth contours, one row per group.

    Args:
        patients: :class:`~heatmaploss.acdc.AcdcPatient` records with labels.
        per_group: patients shown per group.
        source: ``fixture`` tags the title as synthetic.
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
    fig.suptitle(plots.source_title("ground-truth contours", source), fontsize=10)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig


def dice_boxplot(scores, title: str = "U-Net Dice on validation patients",
                 source: str | None = None):
    """Dice per structure (RV, MYO, LV) and their mean, one point per volume (``source``
    ``fixture`` tags the title as synthetic)."""
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
           title=plots.source_title(title, source))
    return fig


def segmentation_examples(images, labels, predicted, captions, n: int = 4,
                          source: str | None = None):
    """Mid slices: image, ground truth contours (top) and predicted contours (bottom)
    (``source`` ``fixture`` tags the title as synthetic)."""
    import matplotlib.pyplot as plt

    n = min(n, len(images))
    fig, axes = plt.subplots(2, n, figsize=(2.6 * n, 5.4), squeeze=False)
    for i in range(n):
        z = _mid_slice(labels[i], images.shape[3])
        for ax, lab, kind in ((axes[0, i], labels[i], "truth"),
                              (axes[1, i], predicted[i], "U-Net")):
            ax.imshow(images[i, :, :, z, 0].T, cmap="gray", origin="lower")
            _contours(ax, lab[:, :, z])
            ax.set_title(f"{captions[i]} — {kind}", fontsize=8)
            ax.axis("off")
    fig.suptitle(plots.source_title("U-Net segmentations, validation patients", source),
                 fontsize=10)
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
    artist = None
    fig, axes = plt.subplots(rows, n, figsize=(2.6 * n, 2.7 * rows), squeeze=False)
    for r, (title, maps) in enumerate(maps_by_model.items()):
        for i in range(n):
            ax = axes[r, i]
            z = _mid_slice(labels[i], images.shape[3])
            ax.imshow(images[i, :, :, z, 0].T, cmap="gray", origin="lower")
            # One colour scale per image over all its slices, so slices stay comparable.
            peak = float(maps[i].max()) or 1.0
            artist = ax.imshow(maps[i][:, :, z].T / peak, cmap="jet", alpha=0.45, vmin=0,
                               vmax=1, origin="lower")
            ax.contour((labels[i][:, :, z] > 0).T.astype(float), levels=[0.5], colors="white",
                       linewidths=0.8)
            empty = " (empty map)" if not maps[i].any() else ""
            ax.set_title(f"{title}: {captions[i]}{empty}", fontsize=7)
            ax.axis("off")
    fig.tight_layout()
    if artist is not None:
        plots.colorbar(fig, artist, axes, "map value / the volume's largest (white: the heart)")
    return fig


#: Columns of the classifier figure and their titles.
CLASSIFIER_PANELS = {"balanced_accuracy": "balanced accuracy",
                     "hirescam_heart_share": "HiResCAM mass in the heart",
                     "hirescam_empty_map_share": "empty HiResCAM maps",
                     "saliency_heart_share": "saliency mass in the heart (held out)"}
#: How each diagnosis pipeline is named in figures.
PIPELINE_TITLES = {"predicted": "U-Net masks", "ground_truth": "ground-truth masks",
                   "transfer": "ground-truth forest on U-Net masks"}


def classifier_comparison(table, dataset: str = "validation", source: str | None = None):
    """Per task (rows) and metric (columns), one point per model and the mean per loss.

    Args:
        table: :func:`~heatmaploss.chapters.acdc.analysis.classifier_table`.
        dataset: the evaluation set shown.
        source: ``fixture`` tags the title as synthetic.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    shown = table[table["set"] == dataset]
    tasks = list(dict.fromkeys(shown["task"]))
    fig, axes = plt.subplots(len(tasks), len(CLASSIFIER_PANELS), squeeze=False,
                             figsize=(3.2 * len(CLASSIFIER_PANELS), 2.9 * len(tasks)))
    for row, task in zip(axes, tasks):
        block = shown[shown["task"] == task]
        for ax, (column, title) in zip(row, CLASSIFIER_PANELS.items()):
            sns.stripplot(data=block, x="loss", y=column, hue="loss", ax=ax, size=6,
                          jitter=0.15, legend=False,
                          palette=plots.palette(block["loss"].unique()))
            means = block.groupby("loss", sort=False)[column].mean()
            ax.hlines(means.values, np.arange(len(means)) - 0.25, np.arange(len(means)) + 0.25,
                      color="k")
            ax.set(xlabel="", ylabel="", ylim=(-0.03, 1.03))
            ax.set_title(f"{task}: {title}", fontsize=9)
            ax.set_xticks(ax.get_xticks(), [plots.label(t.get_text())
                                            for t in ax.get_xticklabels()])
    fig.suptitle(plots.source_title(f"encoder classifiers, {dataset} patients", source))
    fig.tight_layout()
    return fig


def diagnosis_confusion(result, dataset: str = "validation", source: str | None = None):
    """Confusion matrices (true group × predicted group) of every diagnosis pipeline.

    Args:
        result: the :class:`~heatmaploss.chapters.acdc.diagnosis.DiagnosisResult`.
        dataset: the evaluation set shown.
        source: ``fixture`` tags the title as synthetic.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    scores = dict(result.scores.get(dataset, {}))
    if dataset in result.transfer:
        scores["transfer"] = result.transfer[dataset]
    fig, axes = plt.subplots(1, len(scores), figsize=(4.0 * len(scores), 3.9), squeeze=False)
    for ax, (source, s) in zip(axes[0], scores.items()):
        sns.heatmap(np.asarray(s["confusion"]), annot=True, fmt="d", cmap="Blues", cbar=False,
                    xticklabels=s["groups"], yticklabels=s["groups"], ax=ax)
        ax.set(title=f"{PIPELINE_TITLES.get(source, source)}\naccuracy {s['accuracy']:.2f} "
                     f"(n = {s['n_patients']})", xlabel="predicted", ylabel="true")
    fig.suptitle(plots.source_title(f"diagnosis from the segmentation, {dataset} patients",
                                    source))
    fig.tight_layout()
    return fig


def feature_importances(result, top: int = 12, source: str | None = None):
    """The forests' feature importances (mean decrease in impurity), the ``top`` largest
    (``source`` ``fixture`` tags the title as synthetic)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    frame = result.importances().head(top).rename(columns=PIPELINE_TITLES)
    tidy = frame.rename_axis("feature").reset_index().melt(
        id_vars="feature", var_name="forest", value_name="importance")
    fig, ax = plt.subplots(figsize=(6.5, 0.32 * top + 1.2))
    sns.barplot(data=tidy, y="feature", x="importance", hue="forest", ax=ax)
    sns.move_legend(ax, "upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    ax.set(title=plots.source_title("what the random forests diagnose from", source),
           ylabel="")
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
    return [plots.save(data_overview(overview, data.source), "acdc_data_overview", folder),
            plots.save(slices_with_masks(data.training, source=data.source),
                       "acdc_slices_with_masks", folder)]


def save_segmentation_figures(data: Any, unet: Any, folder: Path) -> list[str]:
    """``acdc_unet_dice`` (Dice per volume) and ``acdc_unet_examples`` (one volume per group)."""
    validation = data.validation
    order = example_order(validation)
    text = captions(validation)
    return [plots.save(dice_boxplot(unet.dice, source=data.source), "acdc_unet_dice", folder),
            plots.save(segmentation_examples(validation.images[order], validation.labels[order],
                                             unet.predicted[order], [text[i] for i in order],
                                             n=5, source=data.source),
                       "acdc_unet_examples", folder)]


def save_diagnosis_figures(result: Any, folder: Path, source: str | None = None) -> list[str]:
    """``acdc_diagnosis_confusion`` and ``acdc_diagnosis_importances`` (``source``: the data's
    origin, ``fixture`` tags the titles as synthetic)."""
    return [plots.save(diagnosis_confusion(result, source=source), "acdc_diagnosis_confusion",
                       folder),
            plots.save(feature_importances(result, source=source), "acdc_diagnosis_importances",
                       folder)]


def save_classifier_figures(results: Any, model_folder: Path, folder: Path,
                            task: str | None = None, source: str | None = None) -> list[str]:
    """``acdc_classifier_comparison`` (every model on the validation patients) and
    ``acdc_classifier_maps`` (HiResCAM and saliency of the first model of each loss for
    ``task`` — the first task by default — on the ED mid slice of one patient per group).

    Args:
        results: the :class:`~heatmaploss.chapters.acdc.classifiers.ClassifierResults`.
        model_folder: the results folder the table's model paths are relative to.
        folder: where figures go.
        task: the task whose maps are drawn.
        source: the data's origin; ``fixture`` tags the titles as synthetic.
    """
    from ...models import load_model

    table, features = results.table, results.source
    names = [plots.save(classifier_comparison(table, source=source),
                        "acdc_classifier_comparison", folder)]
    task = task or table["task"].iloc[0]
    pairs = features.evaluation["validation"]
    order = example_order(pairs)
    maps = {}
    for loss, rows in table[(table["set"] == "validation") & (table["task"] == task)].groupby(
            "loss", sort=False):
        model = load_model(Path(model_folder) / rows.sort_values("trial")["model_path"].iloc[0])
        scores = features.scores(task, model.head, "validation")
        maps[f"{plots.label(loss)}, HiResCAM"] = grid_to_box(scores["maps"]["hirescam"][order],
                                               features.settings.box,
                                               features.settings.unet_levels)
        maps[f"{plots.label(loss)}, saliency"] = scores["maps"]["saliency"][order][:, 0]
    if maps:
        text = [f"{g} (ED)" for g in pairs.groups[order]]
        fig = heatmap_overlays(pairs.images[order][:, 0], pairs.labels[order][:, 0], maps, text,
                               n=len(order))
        fig.suptitle(plots.source_title(f"{task} classifiers (first model of each loss), "
                                        "validation patients", source), y=1.02)
        names.append(plots.save(fig, "acdc_classifier_maps", folder))
    return names


__all__ = ["CLASSIFIER_PANELS", "PIPELINE_TITLES", "captions", "classifier_comparison",
           "data_overview", "diagnosis_confusion", "dice_boxplot", "example_order",
           "feature_importances", "heatmap_overlays", "save_classifier_figures",
           "save_data_figures", "save_diagnosis_figures", "save_segmentation_figures",
           "segmentation_examples", "slices_with_masks"]
