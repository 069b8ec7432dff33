"""Moving maps and masks between an input grid and a layer's grid (2-D and 3-D).

* ``upsample(maps, size)`` — (bi/tri)linear interpolation of maps up to the input grid;
* ``area_downsample(mask, size)`` — each layer cell's covered share of a mask (exact area
  weights, any non-integer size ratio);
* ``resize_mask(mask, size, method)`` — a region mask on a layer's grid, ``area`` (the
  project's default) or ``bilinear`` (the thesis's resizing).

Every function works on a batch (N, *grid), is differentiable and runs inside ``tf.function``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import tensorflow as tf

# Moving between grids. Both directions are separable, so one (out, in) matrix per axis does
# 2-D and 3-D alike, for any (non-integer) size ratio, and stays differentiable.


def _area_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) weights: output cell i averages the input cells its footprint covers."""
    edges = np.linspace(0.0, n_in, n_out + 1)
    weights = np.zeros((n_out, n_in))
    for i in range(n_out):
        lo, hi = edges[i], edges[i + 1]
        for j in range(int(np.floor(lo)), min(int(np.ceil(hi)), n_in)):
            weights[i, j] = max(0.0, min(hi, j + 1) - max(lo, j))
        weights[i] /= weights[i].sum()
    return weights


def _linear_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) linear interpolation with half-pixel centres (like bilinear resize)."""
    centres = (np.arange(n_out) + 0.5) * n_in / n_out - 0.5
    centres = np.clip(centres, 0.0, n_in - 1)
    lo = np.floor(centres).astype(int)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = centres - lo
    weights = np.zeros((n_out, n_in))
    weights[np.arange(n_out), lo] += 1.0 - frac
    weights[np.arange(n_out), hi] += frac
    return weights


def _resample(values: tf.Tensor, size: Sequence[int], kind: str) -> tf.Tensor:
    values = tf.convert_to_tensor(values)
    grid = values.shape[1:]
    if len(size) != len(grid):
        raise ValueError(f"size={tuple(size)} must have {len(grid)} entries for values of shape "
                         f"{tuple(values.shape)} (N, *grid)")
    build = _area_matrix if kind == "area" else _linear_matrix
    for axis, (n_in, n_out) in enumerate(zip(grid, size), start=1):
        if n_in == n_out:
            continue
        matrix = tf.constant(build(int(n_in), int(n_out)), dtype=values.dtype)
        # Contract this axis with the matrix, then move the new axis back into place.
        moved = tf.tensordot(values, matrix, axes=[[axis], [1]])
        rank = len(values.shape)
        order = list(range(axis)) + [rank - 1] + list(range(axis, rank - 1))
        values = tf.transpose(moved, order)
    return values


def upsample(maps: tf.Tensor, size: Sequence[int]) -> tf.Tensor:
    """Resize maps (N, *grid) to ``size`` by (bi/tri)linear interpolation.

    Args:
        maps: (N, h, w) or (N, d, h, w) maps.
        size: the target grid, e.g. the input's (H, W) or (D, H, W).

    Returns:
        (N, *size) maps (same dtype).
    """
    return _resample(maps, size, "linear")


def area_downsample(mask: tf.Tensor, size: Sequence[int]) -> tf.Tensor:
    """Area-average a mask (N, *input_grid) down to a layer's grid.

    Each output cell is the mean of the input pixels its footprint covers (fractional pixels
    weighted by overlap), the footprints tiling the whole input. Works for 2-D and 3-D.

    Args:
        mask: (N, H, W) or (N, D, H, W), values in [0, 1]; cast to float32 if integer/bool.
        size: the layer's grid, e.g. (6, 8).

    Returns:
        (N, *size) float mask with values in [0, 1].
    """
    mask = tf.convert_to_tensor(mask)
    if not mask.dtype.is_floating:
        mask = tf.cast(mask, tf.float32)
    return _resample(mask, size, "area")


def resize_mask(mask: tf.Tensor, size: Sequence[int], method: str = "area") -> tf.Tensor:
    """Bring a region mask (N, H, W) to a layer's 2-D grid, as the heatmap loss does.

    Args:
        mask: (N, H, W) values in [0, 1].
        size: the layer's grid, e.g. (6, 8).
        method: ``area`` (:func:`area_downsample`: each cell's covered share) or ``bilinear``
            (``tf.image.resize``: close to sampling the mask at the cells' centres; the
            thesis's resizing).

    Returns:
        (N, *size) float mask.
    """
    mask = tf.convert_to_tensor(mask)
    if not mask.dtype.is_floating:
        mask = tf.cast(mask, tf.float32)
    if method == "bilinear":
        if len(size) != 2:
            raise ValueError(f"bilinear mask resizing is 2-D only; got grid {tuple(size)}")
        return tf.image.resize(mask[..., None], tuple(size), method="bilinear")[..., 0]
    if method == "area":
        return area_downsample(mask, size)
    raise ValueError(f"method={method!r}: allowed area, bilinear")


__all__ = ["area_downsample", "resize_mask", "upsample"]
