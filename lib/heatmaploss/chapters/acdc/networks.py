"""3-D networks for ACDC: Baumgartner et al.'s 3-D U-Net and the encoder classifier.

U-Net (defaults = the paper's): 4 resolution levels, two 3 × 3 × 3 conv + batch norm + ReLU per
level with filters 32→64 | 64→128 | 128→256 | 256→512, pooling (2, 2, 1) except (2, 2, 2) into
the last level (slices are thick), transposed-conv decoder with skip connections, 1 × 1 × 1 conv
to 4 labels; weighted cross-entropy with class weights [0.1, 0.3, 0.3, 0.3]. ``base_filters``
and ``levels`` make thinner/shallower variants for CPU profiles.

Classifier (Callanan's thesis): the same encoder, its deepest feature map A max-pooled and
flattened into two wide dense layers with dropout and a 2-way output (normal vs diseased). It is built as two
sub-models, ``encoder`` (input → A) and ``head`` (A → logits), which is what a heatmap loss on
HiResCAM at A needs.

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


def build_classifier(box=(116, 116, 28), base_filters: int = 32, levels: int = 4,
                     dense_units: int = 256, dropout: float = 0.5, n_classes: int = 2,
                     channels: int = 1):
    """Encoder + dense head classifier (normal vs diseased).

    Args:
        box: input shape (X, Y, Z).
        base_filters, levels: encoder size (as :func:`build_unet`, so weights transfer).
        dense_units: width of each of the two dense layers.
        dropout: dropout rate after each dense layer.
        n_classes: outputs (logits).
        channels: input channels.

    Returns:
        ``(model, encoder, head)``: ``model = head(encoder(x))``; ``encoder`` outputs the
        deepest feature map A (where HiResCAM is taken), ``head`` maps A to logits.
    """
    inputs = keras.Input(tuple(box) + (channels,), name="image")
    encoder = keras.Model(inputs, _encoder(inputs, box, base_filters, levels)[-1], name="encoder")
    features = keras.Input(encoder.output.shape[1:], name="features")
    # A 2 x 2 x 2 max-pool first (as VGG16's block5_pool after the thesis's attributed
    # layer): it divides the flattened width by 8, which keeps the dense layers trainable.
    sizes = tuple(min(2, int(n)) for n in encoder.output.shape[1:4])
    h = layers.MaxPooling3D(sizes, name="head_pool")(features)
    h = layers.Flatten(name="flatten")(h)
    for j in (1, 2):
        h = layers.Dense(dense_units, activation="relu", kernel_initializer="he_uniform",
                         name=f"dense{j}")(h)
        h = layers.Dropout(dropout, name=f"dropout{j}")(h)
    head = keras.Model(features, layers.Dense(n_classes, name="logits")(h), name="head")
    model = keras.Model(inputs, head(encoder(inputs)), name="acdc_classifier")
    return model, encoder, head


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


def balanced_class_weights(labels: np.ndarray, n_classes: int = 2) -> dict[int, float]:
    """``n / (n_classes · n_c)`` per class (ACDC training: normal 2.5, diseased 0.625)."""
    labels = np.asarray(labels)
    counts = np.bincount(labels, minlength=n_classes)
    if np.any(counts == 0):
        raise ValueError(f"class counts {counts.tolist()}: every class needs an example")
    return {c: float(len(labels) / (n_classes * counts[c])) for c in range(n_classes)}


__all__ = ["CLASS_WEIGHTS", "STRUCTURE_LABELS", "balanced_class_weights", "build_classifier",
           "build_unet", "compile_unet", "dice_metric", "transfer_encoder_weights",
           "WarmupConstant", "weighted_cross_entropy"]
