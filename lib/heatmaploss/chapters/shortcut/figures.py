"""The shortcut chapter, the figures. No TensorFlow.

Each function takes the per-model table of :func:`heatmaploss.chapters.shortcut.run.run_chapter`
(columns in :mod:`.analysis`) and returns a matplotlib figure; :func:`save_figures` draws and
saves every figure that has data, under the names of :data:`FIGURES`. Every model is a dot
(seeds, not search trials); lines mark a group's mean.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from ... import plots
from ...names import TEST_SETS
from .analysis import ORACLE, UNIFORM_MARKER_MASS

#: Figure name → what it shows.
FIGURES = {
    "decoy_samples": "one image per class and test set (marker matched, shuffled, absent)",
    "decoy_accuracy_by_set": "accuracy of every model on each test set, main groups",
    "decoy_marker_mass": "attribution mass on the drawn marker by every explainer and layer",
    "decoy_detection": "per model: marker mass by each explainer against the flip rate",
    "decoy_probes": "how well the marker's corner can be read from each conv block",
    "decoy_dose": "shuffled accuracy as the marker's agreement ρ varies",
    "decoy_lambda": "shuffled accuracy as λ varies at the chosen learning rate",
    "decoy_harder_tasks": "shuffled accuracy when the task gets harder, both losses",
}
_SET_PALETTE = plots.palette(TEST_SETS)


def _readable(ax, axes: str = "xy") -> None:
    """Group, explainer and test-set names on ``ax`` (ticks and legend) as readable labels."""
    if "x" in axes:
        rotation = ax.get_xticklabels()[0].get_rotation() if ax.get_xticklabels() else 0
        ax.set_xticks(ax.get_xticks(), [plots.label(t.get_text()) for t in ax.get_xticklabels()],
                      rotation=rotation, ha="right" if rotation else "center",
                      rotation_mode="anchor")
    if "y" in axes:
        ax.set_yticks(ax.get_yticks(), [plots.label(t.get_text()) for t in ax.get_yticklabels()])
    legend = ax.get_legend()
    if legend is not None:
        for text in legend.get_texts():
            text.set_text(plots.label(text.get_text()))


def samples_figure(images: dict[str, np.ndarray], labels: dict[str, np.ndarray],
                   classes: tuple[str, ...]) -> plt.Figure:
    """One image per class (columns) for each test set (rows)."""
    fig, axes = plt.subplots(len(images), len(classes),
                             figsize=(2.2 * len(classes), 1.9 * len(images)))
    axes = np.atleast_2d(axes)
    for r, (name, batch) in enumerate(images.items()):
        for c, cls in enumerate(classes):
            ax = axes[r, c]
            index = np.flatnonzero(labels[name] == c)
            if len(index):
                ax.imshow(batch[index[0]], cmap="gray", vmin=0, vmax=255)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(cls)
            if c == 0:
                ax.set_ylabel(f"marker {name}")
    fig.suptitle("The decoy: a corner square whose corner codes the class")
    fig.tight_layout()
    return fig


def _main(models: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    block = models[models["condition"] == "main"]
    return block, list(dict.fromkeys(block["group"]))


def accuracy_by_set(models: pd.DataFrame) -> plt.Figure:
    """Accuracy of every model on the matched, shuffled and absent test sets, per group."""
    block, order = _main(models)
    long = block.melt(id_vars=["group"], value_vars=[f"acc_{s}" for s in TEST_SETS],
                      var_name="test set", value_name="accuracy")
    long["test set"] = long["test set"].str[4:]
    fig, ax = plt.subplots(figsize=(1.2 * len(order) + 3, 4.2))
    sns.stripplot(long, x="group", y="accuracy", hue="test set", order=order,
                  hue_order=list(TEST_SETS), palette=_SET_PALETTE, dodge=True, jitter=0.15,
                  size=4, ax=ax)
    oracle = block.loc[block["group"] == ORACLE, "acc_shuffled"].mean()
    ax.axhline(oracle, color=_SET_PALETTE["shuffled"], ls="--", lw=1)
    ax.axhline(0.25, color="grey", ls=":", lw=1)
    ax.text(len(order) - 0.5, oracle, " oracle, shuffled", va="center", fontsize=8)
    ax.text(len(order) - 0.5, 0.25, " chance", va="center", fontsize=8, color="grey")
    ax.set(ylim=(0, 1.02), ylabel="test accuracy",
           xlabel="group (a heatmap-loss group is named by the explainer in its loss)",
           title="Does each model still work when the marker lies (shuffled) or is gone?")
    ax.tick_params(axis="x", labelrotation=30)
    ax.legend(title="test set", bbox_to_anchor=(1.12, 1), loc="upper left", fontsize=8)
    _readable(ax, "x")
    fig.tight_layout()
    return fig


def _mass_columns(models: pd.DataFrame, region: str = "decoy_marker") -> list[str]:
    return [c for c in models if c.startswith("mass0_") and c.endswith(f"_{region}")]


def marker_mass(models: pd.DataFrame) -> plt.Figure:
    """Mass on the drawn marker (empty maps counted as zero) by every explainer and layer."""
    block, order = _main(models)
    columns = _mass_columns(block)
    fig, axes = plt.subplots(1, len(columns), figsize=(3.4 * len(columns), 4.2), sharey=False,
                             squeeze=False)
    for ax, column in zip(axes[0], columns):
        explainer = column[len("mass0_"):-len("_decoy_marker")]
        sns.stripplot(block, x=column, y="group", order=order, size=4, jitter=0.15,
                      hue="group", palette=plots.palette(order), legend=False, ax=ax)
        ax.axvline(UNIFORM_MARKER_MASS, color="grey", ls=":", lw=1)
        ax.set(title=f"judged by {plots.label(explainer)}", xlabel="mass on the marker",
               ylabel="")
        ax.set_xlim(left=0)
        _readable(ax, "y")
    axes[0][0].set_ylabel("group (dotted: a uniform map's share)")
    fig.suptitle("Where attribution goes on the marker — every explainer, trained-on or "
                 "held out")
    fig.tight_layout()
    return fig


def detection(models: pd.DataFrame, results: dict[str, dict]) -> plt.Figure:
    """Per model: each explainer's marker mass against the flip rate (is reliance visible?)."""
    columns = _mass_columns(models)
    fig, axes = plt.subplots(1, len(columns), figsize=(3.4 * len(columns), 3.8), sharey=True,
                             squeeze=False)
    for ax, column in zip(axes[0], columns):
        explainer = column[len("mass0_"):-len("_decoy_marker")]
        sns.scatterplot(models, x=column, y="flip_rate", hue="group", s=18, ax=ax,
                        palette=plots.palette(models["group"].unique()),
                        legend=ax is axes[0][-1])
        found = results.get(explainer, {})
        rho = found.get("spearman_rho", np.nan)
        ax.set(title=f"{plots.label(explainer)}: Spearman ρ = {rho:.2f}",
               xlabel="mass on the marker",
               ylabel="flip rate (marker moved)")
        ax.axvline(UNIFORM_MARKER_MASS, color="grey", ls=":", lw=1)
    if axes[0][-1].get_legend() is not None:
        axes[0][-1].legend(bbox_to_anchor=(1.02, 1), loc="upper left", fontsize=7)
        _readable(axes[0][-1], "")
    fig.suptitle("Can an explainer see that a model relies on the marker?")
    fig.tight_layout()
    return fig


def probes(models: pd.DataFrame) -> plt.Figure:
    """Probe accuracy (marker corner from each conv block's features) per group."""
    block, order = _main(models)
    layers = [c for c in block if c.startswith("probe_")]
    long = block.melt(id_vars=["group"], value_vars=layers, var_name="layer",
                      value_name="probe accuracy")
    long["layer"] = long["layer"].str[6:]
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    sns.pointplot(long, x="layer", y="probe accuracy", hue="group", hue_order=order,
                  palette=plots.palette(order), errorbar="sd", dodge=0.4, ax=ax)
    ax.axhline(0.25, color="grey", ls=":", lw=1)
    ax.set(ylim=(0, 1.02), title="Where is the marker's corner still readable? (chance 0.25)")
    ax.legend(bbox_to_anchor=(1.02, 1), loc="upper left", fontsize=7)
    _readable(ax, "")
    fig.tight_layout()
    return fig


def _sweep(models: pd.DataFrame, x: str, condition: str, separator: str, title: str,
           log: bool) -> plt.Figure:
    """A condition's groups with their main-condition counterparts, against ``x``."""
    part = models[models["condition"] == condition]
    bases = part["group"].str.split(separator).str[0]
    block = pd.concat([models[(models["condition"] == "main")
                              & models["group"].isin(set(bases))], part])
    block = block.assign(method=block["group"].str.split(separator).str[0])
    fig, ax = plt.subplots(figsize=(6, 4))
    sns.stripplot(block, x=x, y="acc_shuffled", hue="method", dodge=True, size=5, ax=ax,
                  palette=plots.palette(block["method"].unique()), native_scale=True,
                  log_scale=log)
    ax.set(ylim=(0, 1.02), ylabel="accuracy, marker shuffled", title=title)
    _readable(ax, "")
    fig.tight_layout()
    return fig


def dose(models: pd.DataFrame) -> plt.Figure:
    """Shuffled accuracy against ρ for cross-entropy and the best method."""
    return _sweep(models, "rho", "dose", "_rho", "Dose–response: the marker's agreement ρ",
                  log=False)


def lambda_sweep(models: pd.DataFrame) -> plt.Figure:
    """Shuffled accuracy against λ (the best method, at its chosen learning rate)."""
    return _sweep(models, "heatmap_weight", "lambda", "_x",
                  "λ sweep at the chosen learning rate", log=True)


def harder_tasks(models: pd.DataFrame) -> plt.Figure:
    """Shuffled accuracy of both losses on the main task and the harder ones."""
    block = models[models["condition"].isin(["main", "difficulty", "small_train"])
                   & models["kind"].isin(["cce", "heatmap"])]
    block = block[(block["condition"] != "main") | block["group"].isin(["cce", "hirescam"])]
    block = block.assign(task=np.where(block["condition"] == "difficulty",
                                       "difficulty " + block["difficulty"].astype(str),
                                       block["condition"]))
    fig, ax = plt.subplots(figsize=(6.5, 4))
    sns.stripplot(block, x="task", y="acc_shuffled", hue="loss", dodge=True, size=5, ax=ax,
                  palette=plots.palette(block["loss"].unique()))
    ax.set(ylim=(0, 1.02), ylabel="accuracy, marker shuffled", xlabel="",
           title="Harder tasks: smaller class differences, fewer training images")
    _readable(ax, "")
    fig.tight_layout()
    return fig


def save_figures(models: pd.DataFrame, detection_results: dict, figures_dir: str | Path
                 ) -> list[str]:
    """Draw and save every model-based figure that has data; returns the names saved."""
    conditions = set(models["condition"])
    drawers = {"decoy_accuracy_by_set": (accuracy_by_set, True),
               "decoy_marker_mass": (marker_mass, True),
               "decoy_detection": (lambda m: detection(m, detection_results), True),
               "decoy_probes": (probes, any(c.startswith("probe_") for c in models)),
               "decoy_dose": (dose, "dose" in conditions),
               "decoy_lambda": (lambda_sweep, "lambda" in conditions),
               "decoy_harder_tasks": (harder_tasks,
                                      bool({"difficulty", "small_train"} & conditions))}
    return [plots.save(draw(models), name, figures_dir)
            for name, (draw, wanted) in drawers.items() if wanted]


def save_samples(settings, seed: int, figures_dir: str | Path) -> list[str]:
    """``decoy_samples``: one test image per class with the marker matched, shuffled, absent."""
    from ...synthetic import CLASSES
    from .plan import sample_images

    images, labels = sample_images(settings, seed)
    return [plots.save(samples_figure(images, labels, CLASSES), "decoy_samples", figures_dir)]


__all__ = ["FIGURES", "accuracy_by_set", "detection", "dose", "harder_tasks", "lambda_sweep",
           "marker_mass", "probes", "samples_figure", "save_figures", "save_samples"]
