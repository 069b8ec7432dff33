"""3-D networks for ACDC: Baumgartner et al.'s 3-D U-Net and the encoder classifier.

U-Net (defaults = the paper's): 4 resolution levels, two 3 × 3 × 3 conv + batch norm + ReLU per
level with filters 32→64 | 64→128 | 128→256 | 256→512, pooling (2, 2, 1) except (2, 2, 2) into
the last level (slices are thick), transposed-conv decoder with skip connections, 1 × 1 × 1 conv
to 4 labels; weighted cross-entropy with class weights [0.1, 0.3, 0.3, 0.3]. ``base_filters``
and ``levels`` make thinner/shallower variants for CPU profiles.

Classifier: the U-Net's encoder applied to a patient's ED and ES volumes (one shared encoder,
their deepest feature maps side by side: A) and a pooled head (global average pooling, fixed
standardisation, logits). It is built as two sub-models, a backbone (input → A) and a head
(A → logits), which is what a heatmap loss on HiResCAM at A needs. (The thesis flattened A into
two wide dense layers; why that head cannot learn here: :func:`build_pooled_head`.)

Inputs whose x/y (z) size is not a multiple of the pooling factors are zero-padded inside the
network before the first pooling (and cropped back after the last upsampling), so the paper's
116 × 116 × 28 box works.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from .analysis import STRUCTURE_LABELS
from .data import padded_shape, pooling_factors

CLASS_WEIGHTS = (0.1, 0.3, 0.3, 0.3)


def _conv_block(x, filters: tuple[int, int], name: str):
    for j, f in enumerate(filters, start=1):
        x = layers.Conv3D(f, 3, padding="same", use_bias=False, name=f"{name}_conv{j}")(x)
        # momentum 0.9: with few steps per epoch the default 0.99 leaves inference-mode
        # statistics far behind the trained weights (validation Dice collapses).
        x = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn{j}")(x)
        x = layers.Activation("relu", name=f"{name}_relu{j}")(x)
    return x


def _padding(box, levels: int) -> tuple:
    target = padded_shape(box, levels)
    return tuple(((t - b) // 2, t - b - (t - b) // 2) for b, t in zip(box, target))


def _encoder(x, box, base_filters: int, levels: int):
    # Padding goes after the first conv block, right before the first pooling: a pad op
    # feeding a Conv3D is fused by oneDNN on CPU, and that fused kernel fails at inference
    # for some shapes (e.g. 18 x 18 x 5); pad -> max-pool is safe.
    pad = _padding(box, levels)
    skips = []
    for i, pool in enumerate([None] + pooling_factors(levels)):
        if pool is not None:
            if i == 1 and any(p != (0, 0) for p in pad):
                x = layers.ZeroPadding3D(pad, name="pad_to_pooling")(x)
            x = layers.MaxPooling3D(pool, name=f"enc{i}_pool")(x)
        x = _conv_block(x, (base_filters * 2 ** i, base_filters * 2 ** (i + 1)), f"enc{i}")
        skips.append(x)
    return skips


def build_unet(box=(116, 116, 28), base_filters: int = 32, levels: int = 4, n_classes: int = 4,
               name: str = "acdc_unet3d"):
    """Baumgartner et al.'s 3-D U-Net; outputs per-voxel logits (X, Y, Z, n_classes).

    Args:
        box: input shape (X, Y, Z); one channel is added.
        base_filters: filters of the first conv (32 in the paper); doubled per conv/level.
        levels: resolution levels (4 in the paper).
        n_classes: output labels.
        name: model name.

    Returns:
        An uncompiled ``keras.Model``.
    """
    inputs = keras.Input(tuple(box) + (1,), name="image")
    pad = _padding(box, levels)
    skips = _encoder(inputs, box, base_filters, levels)
    x = skips[-1]
    pools = pooling_factors(levels)
    for i in range(levels - 2, -1, -1):
        filters = base_filters * 2 ** (i + 1)
        x = layers.Conv3DTranspose(filters, pools[i], strides=pools[i], name=f"dec{i}_up")(x)
        if i == 0 and any(p != (0, 0) for p in pad):
            x = layers.Cropping3D(pad, name="crop_to_box")(x)
        x = layers.Concatenate(name=f"dec{i}_concat")([x, skips[i]])
        x = _conv_block(x, (filters, filters), f"dec{i}")
    x = layers.Conv3D(n_classes, 1, name="logits")(x)
    return keras.Model(inputs, x, name=name)


def weighted_cross_entropy(class_weights=CLASS_WEIGHTS):
    """Per-voxel cross-entropy on logits, weighted by the true label's class weight, averaged.

    Returns:
        A Keras loss ``f(y_true (B, X, Y, Z) ints, y_pred (B, X, Y, Z, C) logits)``.
    """
    weights = np.asarray(class_weights, np.float32)

    def loss(y_true, y_pred):
        y_true = ops.cast(ops.reshape(y_true, ops.shape(y_pred)[:-1]), "int32")
        ce = keras.losses.sparse_categorical_crossentropy(y_true, y_pred, from_logits=True)
        return ops.mean(ops.take(ops.convert_to_tensor(weights), y_true) * ce)

    loss.__name__ = "weighted_cross_entropy"
    return loss


def dice_metric(structure: str):
    """Keras metric: Dice of one structure (RV, MYO, LV) between argmax(logits) and labels."""
    label = STRUCTURE_LABELS[structure]

    def dice(y_true, y_pred):
        y_true = ops.reshape(y_true, ops.shape(y_pred)[:-1])
        truth = ops.cast(ops.equal(ops.cast(y_true, "int32"), label), "float32")
        pred = ops.cast(ops.equal(ops.argmax(y_pred, axis=-1), label), "float32")
        return 2 * ops.sum(truth * pred) / (ops.sum(truth) + ops.sum(pred) + 1e-6)

    dice.__name__ = f"dice_{structure.lower()}"
    return dice


@keras.saving.register_keras_serializable(package="heatmaploss")
class WarmupConstant(keras.optimizers.schedules.LearningRateSchedule):
    """Constant ``learning_rate`` after ``warmup_steps`` steps at ``learning_rate × factor``."""

    def __init__(self, learning_rate: float, warmup_steps: int = 50, warmup_factor: float = 0.1):
        self.learning_rate = float(learning_rate)
        self.warmup_steps = int(warmup_steps)
        self.warmup_factor = float(warmup_factor)

    def __call__(self, step):
        return ops.where(ops.less(step, self.warmup_steps),
                         self.learning_rate * self.warmup_factor, self.learning_rate)

    def get_config(self):
        return {"learning_rate": self.learning_rate, "warmup_steps": self.warmup_steps,
                "warmup_factor": self.warmup_factor}


def compile_unet(model, learning_rate: float = 0.01, warmup_steps: int = 50,
                 class_weights=CLASS_WEIGHTS):
    """Compile with Adam (warm-up at lr/10), weighted cross-entropy and Dice metrics."""
    model.compile(optimizer=keras.optimizers.Adam(WarmupConstant(learning_rate, warmup_steps)),
                  loss=weighted_cross_entropy(class_weights),
                  metrics=[dice_metric(s) for s in STRUCTURE_LABELS])
    return model


def build_encoder(box=(116, 116, 28), base_filters: int = 32, levels: int = 4,
                  channels: int = 1, name: str = "encoder"):
    """The U-Net's encoder alone: input (X, Y, Z, channels) → the deepest feature map A.

    Its layers carry the U-Net's names (``enc*``), so :func:`transfer_encoder_weights` copies a
    trained U-Net's weights into it.
    """
    inputs = keras.Input(tuple(box) + (channels,), name="image")
    return keras.Model(inputs, _encoder(inputs, box, base_filters, levels)[-1], name=name)


def build_pair_backbone(box=(116, 116, 28), base_filters: int = 32, levels: int = 4):
    """One encoder applied to a patient's ED and ES volumes, their feature maps side by side.

    Input (2, X, Y, Z, 1) — ED first; output (x, y, z, 2C): the C channels of ED's deepest map
    followed by the C channels of ES's, cell by cell, so a class activation map at this output
    is one map per patient built from both phases.

    Returns:
        ``(backbone, encoder)``; ``encoder`` is the shared single-volume model inside
        (:func:`build_encoder`).
    """
    encoder = build_encoder(box, base_filters, levels)
    inputs = keras.Input((2,) + tuple(box) + (1,), name="ed_es")
    x = layers.TimeDistributed(encoder, name="phases")(inputs)  # (2, x, y, z, C)
    grid, channels = tuple(encoder.output.shape[1:4]), int(encoder.output.shape[-1])
    x = layers.Permute((2, 3, 4, 1, 5), name="phases_last")(x)
    x = layers.Reshape(grid + (2 * channels,), name="ed_es_channels")(x)
    return keras.Model(inputs, x, name="pair_encoder"), encoder


def build_pooled_head(feature_shape, n_classes: int, dense_units: int = 0,
                      dropout: float = 0.5, mean=None, variance=None):
    """The classifier's head: global average pooling, fixed standardisation, logits.

    Pooling (not flattening) keeps the head small: a flattened 16 × 16 × 8 × 128 map feeds
    ~16 000 non-negative inputs to a dense ReLU layer, and each Adam step then shifts every
    unit's pre-activation the same way by about ``lr · Σx`` — the units die within a few
    dozen steps and the output is constant (measured: ``docs/acdc.md`` § The chapter's
    classifiers). The standardisation uses the training features' statistics, fixed.

    Args:
        feature_shape: (x, y, z, channels) of the backbone output.
        n_classes: outputs (logits).
        dense_units: a hidden ReLU layer of this width (with dropout); 0 = a linear head.
        dropout: dropout rate after the hidden layer.
        mean, variance: per-channel statistics of the pooled training features (None: 0, 1).

    Returns:
        A ``keras.Model`` from the feature map to logits.
    """
    features = keras.Input(tuple(feature_shape), name="features")
    channels = int(feature_shape[-1])
    h = layers.GlobalAveragePooling3D(name="pool")(features)
    h = layers.Normalization(
        mean=np.zeros(channels) if mean is None else np.asarray(mean, np.float32),
        variance=np.ones(channels) if variance is None else np.asarray(variance, np.float32),
        name="standardise")(h)
    if dense_units:
        h = layers.Dense(dense_units, activation="relu", name="dense")(h)
        h = layers.Dropout(dropout, name="dropout")(h)
    return keras.Model(features, layers.Dense(n_classes, name="logits")(h), name="head")


def feature_backbone(feature_shape):
    """An identity backbone over cached feature maps, so that a head trains (and a heatmap
    loss takes HiResCAM) on stored encoder outputs instead of recomputing them."""
    features = keras.Input(tuple(feature_shape), name="features")
    return keras.Model(features, layers.Identity(name="cached")(features), name="cached_features")


def transfer_encoder_weights(unet, encoder) -> int:
    """Copy weights of same-named layers (``enc*``) from a trained U-Net into an encoder.

    Returns:
        The number of layers copied (layers whose shapes differ, e.g. a first conv with a
        different channel count, are left as initialised).
    """
    source = {layer.name: layer for layer in unet.layers}
    copied = 0
    for layer in encoder.layers:
        src = source.get(layer.name)
        if src is None or not layer.weights:
            continue
        if [w.shape for w in src.get_weights()] == [w.shape for w in layer.get_weights()]:
            layer.set_weights(src.get_weights())
            copied += 1
    return copied


__all__ = ["CLASS_WEIGHTS", "STRUCTURE_LABELS", "WarmupConstant", "build_encoder",
           "build_pair_backbone", "build_pooled_head", "build_unet", "compile_unet", "dice_metric",
           "feature_backbone", "transfer_encoder_weights", "weighted_cross_entropy"]
