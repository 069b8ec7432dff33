"""The shortcut chapter, the figures (decoy marker). No TensorFlow.

Each function takes the per-model table of :func:`heatmaploss.chapters.shortcut.run.run_chapter`
(see :mod:`heatmaploss.chapters.shortcut.analysis` for its columns) and returns a matplotlib figure; the notebook
saves them with :func:`heatmaploss.project.files.save_figure` under the names given in :data:`FIGURES`.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ...names import EXPLAINERS, TEST_SETS
from ... import plots

#: Figure name → what it shows.
FIGURES = {
    "decoy_samples": "one image per class and test set (marker matched, shuffled, absent)",
    "decoy_accuracy_by_set": "accuracy of every model per test set, main comparison",
    "decoy_marker_mass": "attribution mass on the decoy marker by every explainer",
    "decoy_mass_vs_intervention": "per model: marker mass by each explainer against accuracy "
                                  "with the marker shuffled (is an explainer fooled?)",
    "decoy_penalty_forms": "penalty forms, adaptive λ, earlier-layer CAM: shuffled accuracy, "
                           "marker mass",
    "decoy_lambda_tradeoff": "searched λ against shuffled accuracy and marker mass",
    "decoy_harder_tasks": "accuracy and heart overlap when the task gets harder, both losses",
}
#: The decoy square's pixels and the image's pixels (a uniform map's share on the marker).
MARKER_PIXELS, IMAGE_PIXELS = 9 * 9, 105 * 135
_SET_COLOURS = {"matched": "tab:blue", "shuffled": "tab:red", "absent": "tab:grey"}


def _strip(ax, groups: list[str], values: list[np.ndarray], offset: float = 0.0,
           colour: str = "tab:blue", label: str | None = None, seed: int = 0) -> None:
    """Every model as a dot (jittered) plus the group mean as a bar."""
    rng = np.random.default_rng(seed)
    for i, v in enumerate(values):
        v = np.asarray(v, float)
        v = v[np.isfinite(v)]
        x = i + offset + rng.uniform(-0.06, 0.06, len(v))
        ax.scatter(x, v, s=14, color=colour, alpha=0.75, label=label if i == 0 else None,
                   zorder=3)
        if len(v):
            ax.hlines(v.mean(), i + offset - 0.12, i + offset + 0.12, color="black", lw=1.5,
                      zorder=4)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(groups, rotation=20, ha="right")
    ax.set_xlim(-0.5, len(groups) - 0.5)


def samples_figure(images: dict[str, np.ndarray], labels: dict[str, np.ndarray],
                   classes: tuple[str, ...]) -> plt.Figure:
    """One image per class (columns) for each test set (rows).

    Args:
        images: test set → uint8 images (N, H, W).
        labels: test set → labels (N,).
        classes: class names in label order.

    Returns:
        The figure.
    """
    fig, axes = plt.subplots(len(images), len(classes), figsize=(2.2 * len(classes),
                                                                 1.9 * len(images)))
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
                ax.set_ylabel(name)
    fig.suptitle("Decoy marker: a corner square coding the class (ρ = agreement in training)")
    fig.tight_layout()
    return fig


def accuracy_by_set(models: pd.DataFrame, condition: str = "main") -> plt.Figure:
    """Accuracy of every model on the matched, shuffled and absent test sets, per group."""
    block = models[models["condition"] == condition]
    groups = list(dict.fromkeys(block["group"]))
    fig, ax = plt.subplots(figsize=(1.6 * len(groups) + 2, 3.8))
    for k, test_set in enumerate(TEST_SETS):
        values = [block.loc[block["group"] == g, f"acc_{test_set}"].to_numpy() for g in groups]
        _strip(ax, groups, values, offset=(k - 1) * 0.25, colour=_SET_COLOURS[test_set],
               label=test_set, seed=k)
    ax.axhline(0.25, ls=":", color="grey", lw=1)
    ax.text(len(groups) - 0.5, 0.26, "chance", color="grey", ha="right", fontsize=8)
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("test accuracy")
    ax.set_title("Does the model still work when the decoy marker lies or is gone?")
    ax.legend(title="marker", loc="lower left", fontsize=8)
    fig.tight_layout()
    return fig


def marker_mass(models: pd.DataFrame, condition: str = "main") -> plt.Figure:
    """Attribution mass on the decoy marker (top) and in the heart (bottom), per explainer.

    The dotted line in the top row is what a uniform map would put on the marker (its share
    of the image's pixels); groups whose maps by an explainer are all empty are labelled.
    """
    block = models[models["condition"] == condition]
    groups = list(dict.fromkeys(block["group"]))
    fig, axes = plt.subplots(2, len(EXPLAINERS), figsize=(4.2 * len(EXPLAINERS), 6.4),
                             sharey="row")
    for col, explainer in enumerate(EXPLAINERS):
        for row, region in enumerate(("decoy_marker", "heart")):
            ax = axes[row, col]
            column = f"mass_{explainer}_{region}"
            values = [block.loc[block["group"] == g, column].to_numpy(float)
                      if column in block else np.array([]) for g in groups]
            _strip(ax, groups, values, seed=col)
            for i, v in enumerate(values):
                if len(v) and np.isnan(v).all():
                    ax.text(i, 0.5, "maps empty", transform=ax.get_xaxis_transform(),
                            ha="center", fontsize=8, color="tab:red", rotation=90)
            if row == 0:
                ax.set_title(f"judged by {explainer}")
                ax.axhline(MARKER_PIXELS / IMAGE_PIXELS, ls=":", color="grey", lw=1)
                ax.set_xticklabels([])
            else:
                ax.set_ylim(-0.02, 1.02)
    axes[0, 0].set_ylim(bottom=0)
    axes[0, 0].set_ylabel("mass on decoy marker\n(dotted: uniform map)")
    axes[1, 0].set_ylabel("mass in heart")
    fig.suptitle("Where each model's attribution goes — every explainer, trained-on or held out")
    fig.tight_layout()
    return fig


def mass_vs_intervention(models: pd.DataFrame, condition: str = "main") -> plt.Figure:
    """Per model: marker mass by each explainer (x) against shuffled-marker accuracy (y).

    A model with ~0 mass on the marker by an explainer yet low shuffled accuracy still uses the
    marker: that explainer (or the penalty built on it) has been fooled.
    """
    block = models[models["condition"] == condition]
    fig, axes = plt.subplots(1, len(EXPLAINERS), figsize=(4.2 * len(EXPLAINERS), 3.8),
                             sharey=True)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, explainer in zip(axes, EXPLAINERS):
        column = f"mass_{explainer}_decoy_marker"
        for k, (group, rows) in enumerate(block.groupby("group", sort=False)):
            if column not in rows:
                continue
            ax.scatter(rows[column], rows["acc_shuffled"], s=18, label=group,
                       color=colours[k % len(colours)], alpha=0.8)
        ax.axvline(MARKER_PIXELS / IMAGE_PIXELS, ls=":", color="grey", lw=1)
        ax.set_xlabel(f"mass on marker ({explainer})")
        ax.set_title(f"judged by {explainer}")
    axes[0].set_ylabel("accuracy, marker shuffled")
    axes[0].set_ylim(0, 1.02)
    axes[-1].legend(fontsize=8)
    fig.suptitle("Does low attribution on the marker mean the marker is not used?")
    fig.tight_layout()
    return fig


def penalty_forms(models: pd.DataFrame) -> plt.Figure:
    """Shuffled accuracy and marker mass of the penalty-form and adaptive groups."""
    main = models[models["condition"] == "main"]
    other = models[models["condition"].isin(["penalty", "adaptive", "remedy"])]
    block = pd.concat([main, other])
    keys = list(dict.fromkeys(zip(block["group"], block["condition"])))
    labels = [g for g, _ in keys]
    fig, axes = plt.subplots(1, 1 + len(EXPLAINERS), figsize=(4.0 * (1 + len(EXPLAINERS)), 4.0))
    columns = ["acc_shuffled"] + [f"mass_{e}_decoy_marker" for e in EXPLAINERS]
    titles = ["accuracy, marker shuffled"] + [f"marker mass ({e})" for e in EXPLAINERS]
    for k, (ax, column, title) in enumerate(zip(axes, columns, titles)):
        values = [block.loc[(block["group"] == g) & (block["condition"] == c), column].to_numpy()
                  if column in block else np.array([]) for g, c in keys]
        _strip(ax, labels, values)
        ax.set_title(title)
        ax.tick_params(axis="x", labelrotation=40)
        if k == 0:
            ax.set_ylim(-0.02, 1.02)
        else:  # marker masses are small: own scale, with a uniform map's share for reference
            ax.set_ylim(bottom=0)
            ax.axhline(MARKER_PIXELS / IMAGE_PIXELS, ls=":", color="grey", lw=1)
    fig.suptitle("Penalty forms (thesis, outside fraction, L2, inside reward), adaptive λ, "
                 "higher-resolution CAM")
    fig.tight_layout()
    return fig


def lambda_tradeoff(models: pd.DataFrame) -> plt.Figure:
    """Each trial of the λ search: λ against shuffled/matched accuracy and marker mass."""
    block = models[models["condition"] == "lambda"]
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.8))
    for group, rows in block.groupby("group", sort=False):
        order = np.argsort(rows["heatmap_weight"].to_numpy())
        weight = rows["heatmap_weight"].to_numpy()[order]
        for column, style in (("acc_matched", "o-"), ("acc_shuffled", "s--")):
            axes[0].plot(weight, rows[column].to_numpy()[order], style,
                         label=f"{group}: {column[4:]}")
        for explainer in EXPLAINERS:
            column = f"mass_{explainer}_decoy_marker"
            if column in rows:
                axes[1].plot(weight, rows[column].to_numpy()[order], "o-",
                             label=f"{group}: {explainer}")
    for ax, ylabel in zip(axes, ("test accuracy", "attribution mass on marker")):
        ax.set_xscale("log")
        ax.set_xlabel("heatmap weight λ (searched)")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=7)
    fig.suptitle("λ search: the accuracy / shortcut trade-off")
    fig.tight_layout()
    return fig


def harder_tasks(models: pd.DataFrame) -> plt.Figure:
    """Matched/shuffled accuracy and heart overlap for both losses as the task gets harder."""
    conditions = [("main", "thesis classes,\nfull training set")]
    for d in sorted(models.loc[models["condition"] == "difficulty", "difficulty"].unique()):
        conditions.append((("difficulty", d), f"difficulty {d:g}"))
    if (models["condition"] == "small_train").any():
        n = int(models.loc[models["condition"] == "small_train", "n_train_per_class"].iloc[0])
        conditions.append(("small_train", f"{n} training\nimages per class"))
    focus = models.loc[models["condition"].isin(["difficulty", "small_train"])
                       & (models["loss"] == "heatmap"), "group"]
    focus_group = focus.iloc[0] if len(focus) else None
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    columns = ("acc_matched", "acc_shuffled", "mass_hirescam_heart")
    titles = ("accuracy, marker matched", "accuracy, marker shuffled", "HiResCAM mass in heart")
    for ax, column, title in zip(axes, columns, titles):
        for k, group in enumerate(("cce", focus_group)):
            values = []
            for key, _ in conditions:
                if key == "main":
                    rows = models[(models["condition"] == "main") & (models["group"] == group)]
                elif key == "small_train":
                    rows = models[(models["condition"] == "small_train")
                                  & (models["group"] == group)]
                else:
                    rows = models[(models["condition"] == "difficulty")
                                  & (models["difficulty"] == key[1]) & (models["group"] == group)]
                values.append(rows[column].to_numpy() if column in rows else np.array([]))
            _strip(ax, [label for _, label in conditions], values, offset=(k - 0.5) * 0.3,
                   colour=("tab:orange", "tab:green")[k], label=group, seed=k)
        ax.set_title(title)
        ax.set_ylim(-0.02, 1.02)
    axes[0].legend(fontsize=8)
    fig.suptitle("Harder tasks: smaller class differences, fewer training images")
    fig.tight_layout()
    return fig


def save_figures(models: pd.DataFrame, figures_dir: str | Path) -> list[str]:
    """Draw and save every model-based figure that has data; returns the names saved.

    Args:
        models: per-model table.
        figures_dir: where PNG + PDF go (:func:`heatmaploss.project.files.save_figure`).
    """
    drawers = {"decoy_accuracy_by_set": (accuracy_by_set, "main"),
               "decoy_marker_mass": (marker_mass, "main"),
               "decoy_mass_vs_intervention": (mass_vs_intervention, "main"),
               "decoy_penalty_forms": (penalty_forms, ("penalty", "adaptive", "remedy")),
               "decoy_lambda_tradeoff": (lambda_tradeoff, "lambda"),
               "decoy_harder_tasks": (harder_tasks, ("difficulty", "small_train"))}
    saved = []
    for name, (draw, needs) in drawers.items():
        needs = (needs,) if isinstance(needs, str) else needs
        if not models["condition"].isin(needs).any():
            continue
        saved.append(plots.save(draw(models), name, figures_dir))
    return saved


def save_samples(settings, seed: int, figures_dir: str | Path) -> list[str]:
    """``decoy_samples``: one test image per class with the marker matched, shuffled, absent."""
    from ...synthetic import CLASSES
    from .plan import sample_images

    images, labels = sample_images(settings, seed)
    return [plots.save(samples_figure(images, labels, CLASSES), "decoy_samples", figures_dir)]


__all__ = ["FIGURES", "accuracy_by_set", "harder_tasks", "lambda_tradeoff", "marker_mass",
           "mass_vs_intervention", "penalty_forms", "samples_figure", "save_figures",
           "save_samples"]
