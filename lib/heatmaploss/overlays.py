"""Attribution overlays: a few images per class with two explainers side by side.

The thesis showed one overlay per class for a randomly chosen model of each group, normalised
per image (so a faint map looked as strong as a bright one), labelled Grad-CAM maps as HiResCAM
and once loaded the wrong model. Here every panel of one figure shares **one colour scale**: each
map is divided by its own total positive mass (so a pixel's value is the fraction of the map's
mass it holds, comparable across images and explainers), a colour bar says so, a map without
positive mass is marked "empty map", and the figure's title names the model that made the
maps.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .plots import colorbar, label


def mass_normalise(maps: np.ndarray) -> np.ndarray:
    """ReLU each map and divide by its total mass (all-zero maps stay zero).

    Args:
        maps: (N, H, W) maps.

    Returns:
        (N, H, W) maps whose pixels sum to 1 (or 0 for an empty map).
    """
    positive = np.maximum(np.asarray(maps, dtype=np.float64), 0.0)
    total = positive.sum(axis=(1, 2), keepdims=True)
    return np.divide(positive, total, out=np.zeros_like(positive), where=total > 0)


def overlay_figure(images: np.ndarray, labels: np.ndarray, maps: dict[str, np.ndarray], *,
                   title: str, class_names: Sequence[str], per_class: int = 4,
                   percentile: float = 99.5, alpha: float = 0.55):
    """Grid of overlays: one row per class, ``per_class`` images × the explainers per row.

    Args:
        images: (N, H, W) grey images (uint8).
        labels: (N,) class indices.
        maps: explainer name → (N, H, W) maps at image resolution (same order as images).
        title: figure title (name the model).
        class_names: label of each class index.
        per_class: images shown per class.
        percentile: the shared colour scale tops out at this percentile of all shown pixels,
            so one hot pixel does not wash out every other map.
        alpha: opacity of the maps over the images.

    Returns:
        A matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    if not maps:
        raise ValueError("maps is empty: pass explainer name -> (N, H, W) maps")
    labels = np.asarray(labels)
    methods = list(maps)
    normalised = {m: mass_normalise(v) for m, v in maps.items()}
    rows = [np.flatnonzero(labels == c)[:per_class] for c in range(len(class_names))]
    shown = np.concatenate([r for r in rows if len(r)])
    vmax = float(np.percentile(np.concatenate([normalised[m][shown].ravel() for m in methods]),
                               percentile)) or 1.0
    n_cols = per_class * len(methods)
    fig, axes = plt.subplots(len(class_names), n_cols, squeeze=False, layout="constrained",
                             figsize=(1.45 * n_cols + 1.0, 1.1 * len(class_names) + 0.7))
    artist = None
    for c, indices in enumerate(rows):
        for j in range(per_class):
            for k, method in enumerate(methods):
                ax = axes[c, j * len(methods) + k]
                ax.set_xticks([])
                ax.set_yticks([])
                if j >= len(indices):
                    ax.set_visible(False)
                    continue
                i = indices[j]
                ax.imshow(images[i], cmap="gray", vmin=0, vmax=255)
                artist = ax.imshow(normalised[method][i], cmap="inferno", vmin=0.0, vmax=vmax,
                                   alpha=alpha)
                if not normalised[method][i].any():  # say so: it looks like "no signal" else
                    ax.text(0.5, 0.06, "empty map", transform=ax.transAxes, ha="center",
                            va="bottom", fontsize=7, color="white")
                if c == 0:
                    ax.set_title(label(method), fontsize=8)
                if j == 0 and k == 0:
                    ax.set_ylabel(f"true {class_names[c]}", fontsize=9)
    fig.suptitle(title, fontsize=10)
    if artist is not None:
        colorbar(fig, artist, axes, "fraction of the map's mass per pixel (one scale for all "
                 "panels)", fraction=0.02)
    return fig


def model_overlays(model: Any, experiment: int, seed: int, *, title: str,
                   methods: Sequence[str] = ("hirescam", "gradcam"), per_class: int = 4):
    """Overlay figure of one model on ``per_class`` fresh images per class (predicted class).

    Args:
        model: a trained classifier (logits).
        experiment: synthetic experiment of the images.
        seed: seed of the images.
        title: figure title.
        methods: explainers, side by side.
        per_class: images per class.

    Returns:
        A matplotlib Figure.
    """
    from . import attribution, synthetic
    from .pipeline import preprocess_images

    data = synthetic.generate(experiment, per_class, seed)
    order = np.argsort(data.labels, kind="stable")
    images, labels = data.images[order], data.labels[order]
    x = preprocess_images(images).numpy()
    predicted = np.argmax(model(x, training=False).numpy(), axis=-1)
    maps = {m: attribution.compute_maps(model, x, predicted, m, upsample_to_input=True)
            for m in methods}
    return overlay_figure(images, labels, maps, title=title, class_names=synthetic.CLASSES,
                          per_class=per_class)


__all__ = ["mass_normalise", "model_overlays", "overlay_figure"]
