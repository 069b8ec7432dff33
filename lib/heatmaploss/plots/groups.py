"""Statistical figures comparing groups of models, drawn with seaborn (no TensorFlow).

Every function takes ``groups``: a mapping from a group name (``"cce"``, ``"heatmap"``, or a
label such as ``"CCE"``) to that group's model-level scores (or per-class score tables),
and returns a matplotlib Figure whose colours and labels come from
:mod:`heatmaploss.plots.style`. Every model is drawn (a rug tick or a dot), not only a
summary. They serve the thesis's published data and freshly trained models alike.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ..stats import iqr_mask
from .style import color, label, theme


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


def _long(arrays: Mapping[str, np.ndarray], names: Mapping[str, str]) -> pd.DataFrame:
    """Long table (group, value) with ``names[group]`` as the group's text."""
    return pd.DataFrame({"group": [names[g] for g, a in arrays.items() for _ in range(a.size)],
                         "value": np.concatenate([a for a in arrays.values()])
                         if arrays else []})


def _power_of_ten(values: np.ndarray) -> int:
    """Exponent that brings tiny values (sex-marker overlaps: 1e-4 .. 1e-8) to ~1..1000."""
    top = float(np.max(np.abs(values))) if values.size else 0.0
    return int(np.floor(np.log10(top))) if 0 < top < 1e-2 else 0


def overlap_histogram(groups: Mapping[str, Any], *, title: str,
                      xlabel: str = "fraction of heatmap mass inside the heart",
                      bin_width: float = 0.02, xlim: tuple[float, float] = (0.0, 1.0),
                      references: Mapping[str, float] | None = None,
                      figsize: tuple[float, float] = (7.0, 3.8)):
    """Histogram of model-level scores, one translucent histogram per group, every model as
    a rug tick.

    Args:
        groups: group name → model scores (a group may be empty: its legend entry says so).
        title: figure title.
        xlabel: what the score is.
        bin_width: histogram bin width (the thesis: 0.02).
        xlim: x range, also the range of the bins (the thesis: [0, 1]).
        references: optional label → x value drawn as grey vertical lines (e.g. the score
            of a uniform heatmap).
        figsize: figure size in inches.

    Returns:
        The Figure; the y axis counts models.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns
    from matplotlib.ticker import MaxNLocator

    arrays = _arrays(groups)
    if not bin_width > 0:
        raise ValueError(f"bin_width={bin_width}: must be positive")
    n_bins = int(round((xlim[1] - xlim[0]) / bin_width))
    edges = np.linspace(xlim[0], xlim[0] + n_bins * bin_width, n_bins + 1)
    names = {}
    for name, values in arrays.items():
        if not values.size:  # e.g. every model of the group had a class of only empty maps
            names[name] = f"{label(name)} (no model with a score)"
            continue
        outside = int(np.count_nonzero((values < edges[0]) | (values > edges[-1])))
        names[name] = (f"{label(name)} (n = {values.size}, mean {values.mean():.3f}"
                       + (f", {outside} outside the x range" if outside else "") + ")")
    data = _long(arrays, names)
    colours = {names[g]: color(g) for g in arrays}
    with theme():
        fig, ax = plt.subplots(figsize=figsize, constrained_layout=True)
        sns.histplot(data, x="value", hue="group", hue_order=list(names.values()), bins=edges,
                     palette=colours, alpha=0.45, edgecolor="white", linewidth=0.5, ax=ax)
        sns.rugplot(data, x="value", hue="group", hue_order=list(names.values()),
                    palette=colours, height=0.04, linewidth=1, ax=ax, legend=False)
        handles = [plt.Rectangle((0, 0), 1, 1, color=colours[t], alpha=0.6)
                   for t in names.values()]
        texts = list(names.values())
        for (ref_label, x), style in zip((references or {}).items(), ("--", ":", "-.")):
            handles.append(ax.axvline(x, color="0.35", linestyle=style, linewidth=1))
            texts.append(f"{ref_label} ({x:.3f})")
        ax.legend(handles, texts, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        ax.set_xlim(*xlim)
        ax.set_xlabel(f"{xlabel} (bin width {bin_width:g}; ticks below: one model each)")
        ax.set_ylabel("number of models")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(title)
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
    import matplotlib.pyplot as plt
    import seaborn as sns
    from matplotlib.ticker import MaxNLocator

    arrays = _arrays(groups)
    with theme():
        fig, axes = plt.subplots(1, len(arrays), figsize=figsize or (4.2 * len(arrays), 3.6),
                                 constrained_layout=True, squeeze=False)
        for ax, (name, values) in zip(axes[0], arrays.items()):
            kept = values[iqr_mask(values, iqr_k)] if iqr_k is not None and values.size \
                else values
            where = f"{kept.size} of {values.size} models"
            where += f" inside {iqr_k:g} IQR fences" if iqr_k is not None else ""
            ax.set_title(f"{label(name)}\n{where}")
            if kept.size == 0:
                spread = (np.subtract(*np.percentile(values, [75, 25])) if values.size
                          else None)
                why = ("no model left" if spread is None or spread > 0 else
                       "no model left: the IQR is 0,\nso the strict fences drop every value")
                ax.text(0.5, 0.5, why, ha="center", va="center", transform=ax.transAxes)
                ax.set_xticks([])
                ax.set_yticks([])
                continue
            # Scale tiny values explicitly and say so in the label: matplotlib's offset text
            # ("1e-3" at the axis end) collides with the label and is easy to miss.
            exponent = _power_of_ten(kept)
            shown = kept / 10.0 ** exponent
            sns.histplot(x=shown, bins=bins, color=color(name), alpha=0.55, ax=ax)
            sns.rugplot(x=shown, color="0.15", height=0.05, linewidth=1, ax=ax,
                        label="one model each")
            ax.axvline(shown.mean(), color="0.15", linestyle="--", linewidth=1,
                       label=f"mean {kept.mean():.3g}")
            ax.set_xlabel(xlabel + (f" (× 1e{exponent})" if exponent else ""))
            ax.set_ylabel("number of models")
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
            ax.legend(loc="upper right")
        fig.suptitle(title)
    return fig


def per_class_plot(per_class: Mapping[str, Any], *, title: str, ylabel: str,
                   class_names: Sequence[str] | None = None,
                   ylim: tuple[float, float] | None = None,
                   figsize: tuple[float, float] = (8.0, 4.0), seed: int = 0):
    """Per-class scores of every model: a box per class and group, the models as dots.

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
    import matplotlib.pyplot as plt
    import seaborn as sns

    if not per_class:
        raise ValueError("per_class is empty: pass a mapping group name -> (models, classes)")
    first = next(iter(per_class.values()))
    if class_names is None:
        if not isinstance(first, pd.DataFrame):
            raise ValueError("class_names is required when the tables are not DataFrames")
        class_names = list(first.columns)
    parts, names = [], {}
    for name, table in per_class.items():
        arr = np.asarray(table, dtype=float)
        if arr.ndim != 2 or arr.shape[1] != len(class_names):
            raise ValueError(f"group {name!r}: table shape {arr.shape}, expected "
                             f"(models, {len(class_names)})")
        names[name] = f"{label(name)} (n = {arr.shape[0]})"
        frame = pd.DataFrame(arr, columns=list(class_names)).melt(var_name="class",
                                                                  value_name="value")
        parts.append(frame.assign(group=names[name]))
    data = pd.concat(parts, ignore_index=True).dropna(subset=["value"])
    colours = {names[g]: color(g) for g in per_class}
    order = list(names.values())
    np.random.seed(seed)  # seaborn's strip jitter draws from numpy's global generator
    with theme():
        fig, ax = plt.subplots(figsize=figsize, constrained_layout=True)
        sns.boxplot(data, x="class", y="value", hue="group", hue_order=order, order=class_names,
                    palette=colours, showfliers=False, boxprops={"alpha": 0.35},
                    width=0.7, ax=ax)
        sns.stripplot(data, x="class", y="value", hue="group", hue_order=order,
                      order=class_names, palette=colours, dodge=True, size=3.5, jitter=0.15,
                      alpha=0.85, legend=False, ax=ax)
        ax.set_xlabel("class (boxes: quartiles; whiskers: 1.5 IQR; dots: one model each)")
        ax.set_ylabel(ylabel)
        if ylim is not None:
            ax.set_ylim(*ylim)
        ax.set_title(title)
        ax.legend(title=None, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def model_strip(groups: Mapping[str, Any], *, title: str, ylabel: str,
                hue: Mapping[str, Any] | None = None, ylim: tuple[float, float] | None = None,
                references: Mapping[str, float] | None = None,
                figsize: tuple[float, float] | None = None, seed: int = 0):
    """Every model's value as a dot per group, with the group mean as a black bar.

    Args:
        groups: group name → model values (one x position per group, in order).
        title: figure title.
        ylabel: what the value is.
        hue: optional second level: hue name → {group name → values}; the groups are then
            the x positions and each hue a colour (e.g. test sets per group). When given,
            ``groups`` only fixes the x order (its values are ignored).
        ylim: y range.
        references: label → y value drawn as grey horizontal lines (e.g. chance).
        figsize: figure size (default grows with the number of groups).
        seed: seed of the jitter.

    Returns:
        The Figure; the legend sits outside the axes so it never hides a point.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    order = [label(g) for g in groups]
    if hue is None:
        arrays = _arrays(groups)
        data = _long(arrays, {g: label(g) for g in arrays}).assign(hue=lambda f: f["group"])
        colours = {label(g): color(g) for g in arrays}
        hue_order = order
    else:
        rows = [(label(g), label(h), float(x)) for h, per in hue.items()
                for g, values in per.items() for x in np.ravel(values) if np.isfinite(x)]
        data = pd.DataFrame(rows, columns=["group", "hue", "value"])
        colours = {label(h): color(h) for h in hue}
        hue_order = [label(h) for h in hue]
    np.random.seed(seed)
    with theme():
        fig, ax = plt.subplots(figsize=figsize or (max(5.5, 1.5 + 1.1 * len(order)), 3.8),
                               constrained_layout=True)
        sns.stripplot(data, x="group", y="value", hue="hue", order=order, hue_order=hue_order,
                      palette=colours, dodge=hue is not None, jitter=0.12, size=5, alpha=0.85,
                      legend=hue is not None, ax=ax)
        means = dict(x="group", y="value", order=order, estimator="mean", errorbar=None,
                     markers="_", markersize=18, linestyle="none", legend=False, ax=ax)
        if hue is None:
            sns.pointplot(data, color="black", **means)
        else:  # a black mean bar over each dodged strip
            sns.pointplot(data, hue="hue", hue_order=hue_order, dodge=0.8 - 0.8 / len(hue_order),
                          palette=dict.fromkeys(hue_order, "black"), **means)
        for (ref_label, y), style in zip((references or {}).items(), ("--", ":", "-.")):
            ax.axhline(y, color="0.45", linestyle=style, linewidth=1, label=ref_label)
        ax.set_xlabel("")
        ax.set_ylabel(ylabel)
        if ylim is not None:
            ax.set_ylim(*ylim)
        ax.set_title(title + "\n(dots: one model each; bars: group means)")
        if len(order) > 4:  # long group labels side by side would overlap
            ax.tick_params(axis="x", labelrotation=20)
        if hue is not None or references:
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


__all__ = ["group_distributions", "model_strip", "overlap_histogram", "per_class_plot"]
