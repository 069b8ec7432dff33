"""How much the thesis's mask resizing differs from area averaging (chapters 3 and 4).

The heatmap term compares a map on a layer's coarse grid (VGG16's ``block5_conv3``: 6 × 8) with
the not-heart mask of the 105 × 135 image. The thesis resized the mask to the grid bilinearly,
which at this ratio is close to sampling the mask at each cell's centre; the ``controlled``
protocol averages the mask over each cell's footprint (the share of the cell that is not heart).
This module measures the difference on test images, per grid: how far the two masks lie apart
cell by cell, and how much penalised area each gives.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

#: (backbone, pooling) of each network whose grid is compared: the thesis's VGG16 (``valid``
#: pooling, 6 × 8), the same VGG16 with ``same`` pooling (7 × 9), and the small CNN (14 × 17).
GRIDS = (("vgg16", "valid"), ("vgg16", "same"), ("small_cnn", "same"))


def layer_grid(backbone: str, pooling: str) -> tuple[int, int]:
    """The grid of a backbone's attributed layer at the thesis's input size."""
    from ... import models

    if backbone == "vgg16":
        net = models.vgg16_backbone(weights=None, pooling=pooling)
    else:
        net = models.small_cnn_backbone(seed=0, pooling=pooling)
    return tuple(int(d) for d in net.output.shape[1:3])


def resize_difference(masks: np.ndarray, grid: tuple[int, int]) -> dict[str, float]:
    """Area-averaged vs bilinear masks of ``masks`` (N, H, W) on ``grid``.

    Returns:
        ``mean_abs_difference`` and ``p95_abs_difference`` / ``max_abs_difference`` (over all
        cells of all images), ``cells_differing`` (share of cells whose values differ by more
        than 0.25), ``area_mean`` and ``bilinear_mean`` (the penalised share of the grid each
        gives, averaged over images), and ``n_images``.
    """
    from ...attribution import resize_mask

    area = resize_mask(masks, grid, "area").numpy()
    bilinear = resize_mask(masks, grid, "bilinear").numpy()
    gap = np.abs(area - bilinear)
    return {"mean_abs_difference": float(gap.mean()),
            "p95_abs_difference": float(np.quantile(gap, 0.95)),
            "max_abs_difference": float(gap.max()),
            "cells_differing": float((gap > 0.25).mean()),
            "area_mean": float(area.mean()), "bilinear_mean": float(bilinear.mean()),
            "n_images": int(masks.shape[0])}


def mask_resize_table(plan: Any, max_images: int = 2000,
                      grids: tuple[tuple[str, str], ...] = GRIDS) -> pd.DataFrame:
    """The difference between the thesis's and the area-averaged not-heart mask (the region
    the heatmap term penalises) on a plan's test images.

    Args:
        plan: the experiment's :class:`~heatmaploss.synthetic.DataPlan`.
        max_images: at most this many test images are used (the first, in test order).
        grids: (backbone, pooling) of the networks compared.

    Returns:
        One row per grid: ``backbone``, ``pooling``, ``grid``, then :func:`resize_difference`.
    """
    masks, seen = [], 0
    for chunk in plan.iter_test():
        heart = chunk.region("heart")[: max_images - seen]
        masks.append(1.0 - np.asarray(heart, dtype=np.float32))  # the penalised not-heart
        take = heart
        seen += len(take)
        if seen >= max_images:
            break
    masks = np.concatenate(masks)
    rows = []
    for backbone, pooling in grids:
        grid = layer_grid(backbone, pooling)
        rows.append({"backbone": backbone, "pooling": pooling, "grid": f"{grid[0]}x{grid[1]}",
                     **resize_difference(masks, grid)})
    return pd.DataFrame(rows)


def summary_part(experiment: int, table: pd.DataFrame) -> dict:
    """``experiments.exp<N>.mask_resize``: the table's rows, keyed by backbone and pooling."""
    rows = {f"{r['backbone']}_{r['pooling']}": {k: v for k, v in r.items()
                                                if k not in ("backbone", "pooling")}
            for r in table.to_dict("records")}
    return {"experiments": {f"exp{experiment}": {"mask_resize": rows}}}


def record(experiment: int, ctx: Any, max_images: int = 2000) -> pd.DataFrame:
    """:func:`mask_resize_table` on the experiment's test images, written to
    ``stats/exp<N>_mask_resize.csv`` and ``summary.json`` (:func:`summary_part`)."""
    from ...project import files
    from .plan import data_plan

    table = mask_resize_table(data_plan(experiment, ctx.profile, ctx.seed), max_images)
    files.write_text(ctx.out.stats / f"exp{experiment}_mask_resize.csv",
                     table.to_csv(index=False))
    files.update_summary(ctx.results, summary_part(experiment, table))
    return table


__all__ = ["GRIDS", "layer_grid", "mask_resize_table", "record", "resize_difference",
           "summary_part"]
