"""Which cells of an attributed layer reach the logits, and which image rows a layer sees.

A max-pool with ``valid`` padding drops the last row or column of an odd-sized map: the cells
there never reach the logits, so every attribution map is 0 on them and a penalty can never
see them (``docs/design.md`` § Attribution geometry). These functions measure reachability with
gradients of random inputs — a constant background would create max-pool ties that hide
gradients spuriously.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from .. import attribution as attr


def _random_inputs(model, n_inputs: int, seed: int) -> tf.Tensor:
    shape = (n_inputs,) + tuple(model.inputs[0].shape[1:])
    return tf.constant(np.random.default_rng(seed).uniform(-1.0, 1.0, shape), tf.float32)


def unreachable_cells(model, layer: str | None = None, *, n_inputs: int = 4,
                      seed: int = 0) -> np.ndarray:
    """Cells of a layer whose activations never change the logits (over random inputs).

    Args:
        model: a model with ``backbone`` and ``head`` (a ``HeatmapLossModel``).
        layer: a backbone layer; ``None`` = the backbone's output (the attributed layer).
        n_inputs: random images tried (a cell counts as reachable if any moves a logit).
        seed: seed of the images.

    Returns:
        Boolean (grid) array, True where the cell is unreachable.
    """
    x = _random_inputs(model.backbone, n_inputs, seed)
    if layer is None:
        activations = model.backbone(x)
        with tf.GradientTape() as tape:
            tape.watch(activations)
            logits = model.head(activations)
            score = 0.5 * tf.reduce_sum(tf.square(logits))  # every logit counts
        gradients = tape.gradient(score, activations)
    else:
        early, late, _ = attr.staged_split(model.backbone, [layer])
        activations = early(x)
        with tf.GradientTape() as tape:
            tape.watch(activations)
            rest = attr.late_outputs(late, activations)
            logits = model.head(rest[-1] if rest else activations)
            score = 0.5 * tf.reduce_sum(tf.square(logits))
        gradients = tape.gradient(score, activations)
    magnitude = tf.reduce_sum(tf.abs(gradients), axis=[0, tf.rank(gradients) - 1]).numpy()
    return magnitude == 0


def input_rows_seen(backbone, layer: str | None = None, *, n_inputs: int = 4,
                    seed: int = 0) -> np.ndarray:
    """How strongly each image row can change each row of a layer's map.

    Args:
        backbone: a model from the image to (at least) the layer.
        layer: a backbone layer; ``None`` = the backbone's output.
        n_inputs: random images tried.
        seed: seed of the images.

    Returns:
        (image rows, layer rows) array: the largest |∂ (row r's activations) / ∂ pixel| over
        the pixels of an image row, inputs and channels; 0 where the image row cannot change
        that row of the map at all.
    """
    x = _random_inputs(backbone, n_inputs, seed)
    if layer is not None:
        backbone, _, _ = attr.staged_split(backbone, [layer])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        activations = backbone(x)
        rows = [tf.reduce_sum(tf.square(activations[:, r])) for r in range(activations.shape[1])]
    seen = np.stack([tf.reduce_max(tf.abs(tape.gradient(row, x)), axis=[0, 2, 3]).numpy()
                     for row in rows], axis=1)
    del tape
    return seen


__all__ = ["input_rows_seen", "unreachable_cells"]
