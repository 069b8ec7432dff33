"""Figures comparing groups of models, and saving and showing figures (no TensorFlow).

Every drawing function takes ``groups``: a mapping from a group name (e.g. ``"CCE"``,
``"heatmap loss"``) to that group's model-level scores (or per-class score tables), plus labels,
and returns a matplotlib Figure. They serve the thesis's published data and freshly trained
models alike. :func:`save` writes a figure as PNG + PDF and closes it; :func:`show` displays
saved figures in a notebook.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from .project import files
from .stats import iqr_mask

#: Colour-blind-safe colours, assigned to groups in order (Okabe–Ito palette).
GROUP_COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")


def save(fig: Any, name: str, folder: str | os.PathLike) -> str:
    """Save ``fig`` as ``<folder>/<name>.png`` and ``.pdf`` (atomically), close it, return ``name``."""
    files.save_figure(fig, name, folder)
    plt.close(fig)
    return name


def show(folder: str | os.PathLike, names: Sequence[str]) -> None:
    """Display saved figures (their PNGs) in a notebook, in order."""
    from IPython.display import Image, display

    for name in names:
        display(Image(filename=str(Path(folder) / f"{name}.png")))


def group_colors(names: Sequence[str]) -> dict[str, str]:
    """Colour of each group, stable by position (first group blue, second vermillion, ...)."""
    return {name: GROUP_COLORS[i % len(GROUP_COLORS)] for i, name in enumerate(names)}


def _arrays(groups: Mapping[str, Any]) -> dict[str, np.ndarray]:
    if not groups:
        raise ValueError("groups is empty: pass a mapping group name -> scores")
    out = {}
    for name, values in groups.items():
        arr = np.asarray(values, dtype=float).ravel()
        bad = int(np.count_nonzero(~np.isfinite(arr)))
        if bad:
            raise ValueError(f"group {name!r} has {bad} non-finite score(s); drop them first")
        out[name] = arr
    return out


def _power_of_ten(values: np.ndarray) -> int:
    """Exponent that brings tiny values (sex-marker overlaps: 1e-4 .. 1e-8) to ~1..1000."""
    top = float(np.max(np.abs(values))) if values.size else 0.0
    return int(np.floor(np.log10(top))) if 0 < top < 1e-2 else 0


def overlap_histogram(groups: Mapping[str, Any], *, title: str,
                      xlabel: str = "fraction of heatmap mass inside the heart",
                      bin_width: float = 0.02, xlim: tuple[float, float] = (0.0, 1.0),
                      references: Mapping[str, float] | None = None,
                      figsize: tuple[float, float] = (7.0, 3.8)):
    """Histogram of model-level overlap scores, one translucent histogram per group.

    Args:
        groups: group name → model scores.
        title: figure title.
        xlabel: what the score is.
        bin_width: histogram bin width (the thesis: 0.02).
        xlim: x range, also the range of the bins (the thesis: [0, 1]).
        references: optional label → x value drawn as dashed vertical lines (e.g. the score
            of a uniform heatmap).
        figsize: figure size in inches.

    Returns:
        The Figure; the y axis counts models.
    """
    arrays = _arrays(groups)
    if not bin_width > 0:
        raise ValueError(f"bin_width={bin_width}: must be positive")
    n_bins = int(round((xlim[1] - xlim[0]) / bin_width))
    edges = np.linspace(xlim[0], xlim[0] + n_bins * bin_width, n_bins + 1)
    fig, ax = plt.subplots(figsize=figsize, constrained_layout=True)
    for (name, values), color in zip(arrays.items(), group_colors(list(arrays)).values()):
        outside = int(np.count_nonzero((values < edges[0]) | (values > edges[-1])))
        label = f"{name} (n = {values.size}, mean {values.mean():.3f})"
        label += f", {outside} outside the x range" if outside else ""
        ax.hist(values, bins=edges, color=color, alpha=0.55, edgecolor=color, linewidth=0.8,
                label=label)
    for (ref_label, x), style in zip((references or {}).items(), ("--", ":", "-.")):
        ax.axvline(x, color="0.3", linestyle=style, linewidth=1, label=f"{ref_label} ({x:.3f})")
    ax.set_xlim(*xlim)
    ax.set_xlabel(f"{xlabel} (bin width {bin_width:g})")
    ax.set_ylabel("number of models")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(title)
    ax.legend(loc="upper center", fontsize="small", frameon=False)
    ax.grid(axis="y", alpha=0.3)
    return fig


def group_distributions(groups: Mapping[str, Any], *, title: str, xlabel: str,
                        iqr_k: float | None = None, bins: int = 15,
                        figsize: tuple[float, float] | None = None):
    """One panel per group, side by side with separate x scales: histogram + every model.

    Used for quantities whose groups differ by orders of magnitude (the thesis's sex-marker
    overlaps), where a shared axis would hide one group.

    Args:
        groups: group name → model scores.
        title: figure title.
        xlabel: what the score is.
        iqr_k: when given, each group is first filtered to values strictly inside its Tukey
            fences with this multiplier; the panel says how many models were kept.
        bins: histogram bins per panel.
        figsize: figure size (default: 4.2 inches wide per group).

    Returns:
        The Figure.
    """
    arrays = _arrays(groups)
    colors = group_colors(list(arrays))
    fig, axes = plt.subplots(1, len(arrays), figsize=figsize or (4.2 * len(arrays), 3.6),
                             constrained_layout=True, squeeze=False)
    for ax, (name, values) in zip(axes[0], arrays.items()):
        kept = values[iqr_mask(values, iqr_k)] if iqr_k is not None and values.size else values
        where = f"{kept.size} of {values.size} models"
        where += f" inside {iqr_k:g} IQR fences" if iqr_k is not None else ""
        ax.set_title(f"{name}\n{where}", fontsize="medium")
        if kept.size == 0:
            ax.text(0.5, 0.5, "no model left", ha="center", va="center", transform=ax.transAxes)
            continue
        # Scale tiny values explicitly and say so in the label: matplotlib's offset text
        # ("1e-3" at the axis end) collides with the label and is easy to miss.
        exponent = _power_of_ten(kept)
        shown = kept / 10.0 ** exponent
        ax.hist(shown, bins=bins, color=colors[name], alpha=0.6, edgecolor=colors[name])
        ax.plot(shown, np.full(shown.size, 0.03), "|", color="k", markersize=10, alpha=0.7,
                transform=ax.get_xaxis_transform(), label="one model")
        ax.axvline(shown.mean(), color="k", linestyle="--", linewidth=1,
                   label=f"mean {kept.mean():.3g}")
        ax.set_xlabel(xlabel + (f" (× 1e{exponent})" if exponent else ""))
        ax.set_ylabel("number of models")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize="small", frameon=False)
    fig.suptitle(title)
    return fig


def per_class_plot(per_class: Mapping[str, Any], *, title: str, ylabel: str,
                   class_names: Sequence[str] | None = None, ylim: tuple[float, float] | None = None,
                   figsize: tuple[float, float] = (8.0, 4.0), seed: int = 0):
    """Per-class scores of every model: box plot per class and group, with the models as dots.

    Args:
        per_class: group name → table of shape (models, classes): a DataFrame whose columns
            are the classes, or an array with ``class_names``.
        title: figure title.
        ylabel: what the score is.
        class_names: class labels (default: the DataFrame columns of the first group).
        ylim: y range (default: automatic).
        figsize: figure size in inches.
        seed: seed of the horizontal jitter of the dots.

    Returns:
        The Figure.
    """
    if not per_class:
        raise ValueError("per_class is empty: pass a mapping group name -> (models, classes)")
    first = next(iter(per_class.values()))
    if class_names is None:
        if not isinstance(first, pd.DataFrame):
            raise ValueError("class_names is required when the tables are not DataFrames")
        class_names = list(first.columns)
    tables = {}
    for name, table in per_class.items():
        arr = np.asarray(table, dtype=float)
        if arr.ndim != 2 or arr.shape[1] != len(class_names):
            raise ValueError(f"group {name!r}: table shape {arr.shape}, expected "
                             f"(models, {len(class_names)})")
        tables[name] = arr
    colors = group_colors(list(tables))
    rng = np.random.default_rng(seed)
    width = 0.8 / len(tables)
    fig, ax = plt.subplots(figsize=figsize, constrained_layout=True)
    for g, (name, arr) in enumerate(tables.items()):
        positions = np.arange(len(class_names)) + (g - (len(tables) - 1) / 2) * width
        columns = [col[np.isfinite(col)] for col in arr.T]
        box = ax.boxplot(columns, positions=positions, widths=width * 0.8, patch_artist=True,
                         showfliers=False, manage_ticks=False)
        for patch in box["boxes"]:
            patch.set(facecolor=colors[name], alpha=0.35, edgecolor=colors[name])
        for median in box["medians"]:
            median.set(color=colors[name], linewidth=1.5)
        for pos, col in zip(positions, columns):
            ax.plot(pos + rng.uniform(-width * 0.25, width * 0.25, col.size), col, "o",
                    color=colors[name], markersize=3, alpha=0.8, clip_on=False)
        ax.plot([], [], "s", color=colors[name], alpha=0.6, label=f"{name} (n = {arr.shape[0]})")
    ax.set_xticks(np.arange(len(class_names)), class_names)
    ax.set_xlabel("class (boxes: quartiles; whiskers: 1.5 IQR; dots: one model each)")
    ax.set_ylabel(ylabel)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_title(title)
    ax.legend(fontsize="small", frameon=False, ncol=len(tables))
    ax.grid(axis="y", alpha=0.3)
    return fig


__all__ = ["GROUP_COLORS", "group_colors", "group_distributions", "overlap_histogram",
           "per_class_plot", "save", "show"]
