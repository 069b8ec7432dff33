"""Backbones, the thesis's classifier head, and ``build_model`` (backbone + head + loss).

* ``vgg16_backbone(input_shape=(105, 135, 3), weights="imagenet")`` — VGG16 up to
  ``block5_conv3`` (6 x 8 x 512 at 105 x 135). Offline ImageNet weights raise
  ``PretrainedWeightsUnavailable`` naming the cache file.
* ``small_cnn_backbone(input_shape=(105, 135, 3), seed=None)`` — four 3 x 3 conv layers, last one
  ``last_conv`` (13 x 16 x 64 at 105 x 135); fast on a 2-core CPU.
* ``thesis_head(feature_shape, n_classes=4, pool=True, seed=None)`` — [MaxPool 2] -> Flatten
  -> Dense(100, relu, he_uniform) -> Dense(n_classes) logits.
* ``build_model(backbone="small_cnn", *, heatmap=None, weights=None, input_shape=...,
  n_classes=4, frozen=False, seed=None) -> HeatmapLossModel``.
* ``cut_at(model, layer)`` — the same classifier attributed at an earlier backbone layer.
"""

from __future__ import annotations

import os
from pathlib import Path

import keras

from ..losses import HeatmapLossConfig
from ..project.context import VGG16_WEIGHTS_ENV
from .heatmap_model import HeatmapLossModel

VGG16_WEIGHTS_FILE = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
VGG16_CACHE_PATH = Path("~/.keras/models") / VGG16_WEIGHTS_FILE
THESIS_INPUT_SHAPE = (105, 135, 3)
BACKBONES = ("vgg16", "small_cnn")
#: Max-pool padding: ``same`` pools every cell (no row or column is dropped, so every cell of
#: every attributed layer reaches the logits); ``valid`` is VGG16's own (the thesis's network:
#: at 105 x 135 it drops the last row or column of odd-sized maps).
POOLINGS = ("same", "valid")


def _check_pooling(pooling: str) -> str:
    if pooling not in POOLINGS:
        raise ValueError(f"pooling={pooling!r}: allowed {', '.join(POOLINGS)}")
    return pooling


class PretrainedWeightsUnavailable(RuntimeError):
    """ImageNet weights could not be loaded (no cached file and no network)."""


def vgg16_weights_file() -> Path | None:
    """The local ImageNet weights file named by ``$HEATMAPLOSS_VGG16_WEIGHTS`` (None if unset).

    Raises:
        PretrainedWeightsUnavailable: the variable names a file that does not exist.
    """
    value = os.environ.get(VGG16_WEIGHTS_ENV, "").strip()
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_file():
        raise PretrainedWeightsUnavailable(
            f"vgg16_weights={value!r} (${VGG16_WEIGHTS_ENV}): no such file; it must be Keras's "
            f"VGG16 no-top ImageNet weights, {VGG16_WEIGHTS_FILE}")
    return path


def vgg16_backbone(input_shape: tuple[int, ...] = THESIS_INPUT_SHAPE,
                   weights: str | None = "imagenet", pooling: str = "valid") -> keras.Model:
    """VGG16's convolutional part up to ``block5_conv3`` (the thesis's attribution layer).

    Args:
        input_shape: (H, W, 3); the thesis feeds 105 x 135 without resizing.
        weights: ``"imagenet"`` or ``None`` (random initialisation). ImageNet weights come
            from the file named by ``$HEATMAPLOSS_VGG16_WEIGHTS`` when it is set (the
            ``vgg16_weights`` notebook parameter), else through Keras (its cache, then the
            network).
        pooling: ``valid`` (VGG16's own pooling, the thesis's network: ``block5_conv3`` is
            6 x 8 and the image's last row and column never reach it) or ``same`` (every pixel
            reaches ``block5_conv3``, then 7 x 9); the weights are the same either way.

    Returns:
        A functional model named ``vgg16_backbone`` whose output is ``block5_conv3``.

    Raises:
        PretrainedWeightsUnavailable: ImageNet weights are neither in the given file, nor
            cached, nor downloadable.
        ValueError: bad ``weights``.
    """
    if weights not in ("imagenet", None):
        raise ValueError(f"weights={weights!r}: allowed are 'imagenet' or None")
    local = vgg16_weights_file() if weights == "imagenet" else None
    try:
        vgg = keras.applications.VGG16(include_top=False,
                                       weights=str(local) if local else weights,
                                       input_shape=tuple(input_shape))
    except Exception as error:  # Keras raises a bare Exception on a failed download
        if weights is None:
            raise
        if local is not None:
            raise PretrainedWeightsUnavailable(
                f"could not load VGG16 weights from vgg16_weights={str(local)!r} ({error}); "
                f"it must be Keras's {VGG16_WEIGHTS_FILE}") from error
        raise PretrainedWeightsUnavailable(
            f"could not load VGG16 ImageNet weights ({error}). Offline: set the vgg16_weights "
            f"parameter (notebooks; run_all.py --vgg16-weights PATH; "
            f"${VGG16_WEIGHTS_ENV}) to a copy of {VGG16_WEIGHTS_FILE}, or put that file at "
            f"{VGG16_CACHE_PATH} (Keras's cache: {VGG16_CACHE_PATH.expanduser()}), or build "
            "with weights=None, or "
            f"use the 'small_cnn' backbone.") from error
    if _check_pooling(pooling) == "same":
        vgg = _repadded(vgg)
    return keras.Model(vgg.inputs[0], vgg.get_layer("block5_conv3").output,
                       name="vgg16_backbone")


def _repadded(model: keras.Model) -> keras.Model:
    """The same network with ``same``-padded max-pools (pools hold no weights)."""

    def clone(layer):
        config = layer.get_config()
        if isinstance(layer, keras.layers.MaxPooling2D):
            config["padding"] = "same"
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy


def small_cnn_backbone(input_shape: tuple[int, ...] = THESIS_INPUT_SHAPE,
                       seed: int | None = None, pooling: str = "same") -> keras.Model:
    """A small VGG-style CNN for CPU profiles; its last layer ``last_conv`` is attributed.

    Three conv + 2 x 2 max-pool blocks (16, 32, 64 filters) and a final 64-filter conv. With
    ``same`` pooling (the default) every pixel and every cell of every layer reaches the
    logits: at 105 x 135, ``conv3`` is 27 x 34 and ``last_conv`` 14 x 17 (the head's pooling
    then gives 7 x 9). ``valid`` pooling drops the last row or column of odd-sized maps (13 x 16
    at ``last_conv``, whose last row then never reaches the logits).
    Works for 2-D (H, W, C) and 3-D (D, H, W, C) inputs.

    Args:
        input_shape: (H, W, C) or (D, H, W, C).
        seed: seed of the kernel initialisers.
        pooling: ``same`` or ``valid`` max-pool padding.

    Returns:
        A functional model named ``small_cnn_backbone``.
    """
    if len(input_shape) not in (3, 4):
        raise ValueError(f"input_shape={input_shape!r}: must be (H, W, C) or (D, H, W, C)")
    conv = keras.layers.Conv2D if len(input_shape) == 3 else keras.layers.Conv3D
    pool = keras.layers.MaxPooling2D if len(input_shape) == 3 else keras.layers.MaxPooling3D
    inputs = keras.Input(tuple(input_shape))
    hidden = inputs
    for block, filters in enumerate((16, 32, 64), start=1):
        hidden = conv(filters, 3, padding="same", activation="relu", name=f"conv{block}",
                      kernel_initializer=keras.initializers.HeUniform(seed=_offset(seed, block))
                      )(hidden)
        hidden = pool(2, padding=_check_pooling(pooling), name=f"pool{block}")(hidden)
    hidden = conv(64, 3, padding="same", activation="relu", name="last_conv",
                  kernel_initializer=keras.initializers.HeUniform(seed=_offset(seed, 4)))(hidden)
    return keras.Model(inputs, hidden, name="small_cnn_backbone")


def thesis_head(feature_shape: tuple[int, ...], n_classes: int = 4, *, pool: bool = True,
                seed: int | None = None, pooling: str = "same") -> keras.Model:
    """The thesis's classifier head on a conv map: [MaxPool] -> Flatten -> Dense(100) -> logits.

    Args:
        feature_shape: the backbone's output shape without the batch axis.
        n_classes: number of classes (logits, no activation).
        pool: start with a 2 x 2 (x 2) max-pool, VGG16's ``block5_pool`` (the thesis's network
            attributed ``block5_conv3``, before that pool); axes of size 1 are not pooled.
        seed: seed of the dense initialisers.
        pooling: padding of that max-pool (``same``: every cell of the attributed map reaches
            the logits; ``valid``: an odd-sized map's last row or column does not).

    Returns:
        A functional model named ``head``.
    """
    if n_classes < 2:
        raise ValueError(f"n_classes={n_classes!r}: must be >= 2")
    inputs = keras.Input(tuple(feature_shape))
    hidden = inputs
    if pool:
        layer = keras.layers.MaxPooling2D if len(feature_shape) == 3 else keras.layers.MaxPooling3D
        # Axes already down to one cell (thin 3-D volumes) are not pooled.
        sizes = tuple(min(2, int(size)) for size in feature_shape[:-1])
        hidden = layer(sizes, padding=_check_pooling(pooling), name="head_pool")(hidden)
    hidden = keras.layers.Flatten(name="flatten")(hidden)
    hidden = keras.layers.Dense(100, activation="relu", name="dense",
                                kernel_initializer=keras.initializers.HeUniform(seed=seed))(hidden)
    logits = keras.layers.Dense(
        n_classes, name="logits",
        kernel_initializer=keras.initializers.GlorotUniform(seed=_offset(seed, 1)))(hidden)
    return keras.Model(inputs, logits, name="head")


def _offset(seed: int | None, offset: int) -> int | None:
    return None if seed is None else seed + offset


def build_model(backbone: str = "small_cnn", *, heatmap: HeatmapLossConfig | dict | None = None,
                weights: str | None = None, input_shape: tuple[int, ...] = THESIS_INPUT_SHAPE,
                n_classes: int = 4, frozen: bool = False, seed: int | None = None,
                pooling: str = "same") -> HeatmapLossModel:
    """Build a ``HeatmapLossModel`` with a named backbone and the thesis head.

    Args:
        backbone: ``"vgg16"`` (attributed at ``block5_conv3``) or ``"small_cnn"``
            (``last_conv``).
        heatmap: the loss settings; None = cross-entropy only.
        weights: VGG16 only: ``"imagenet"`` or None.
        input_shape: (H, W, C) (or (D, H, W, C) for the small CNN).
        n_classes: number of classes.
        frozen: freeze the backbone (the thesis's CCE group); the head stays trainable.
        seed: seeds the initialisers (and Keras's global generator, which VGG16 uses).
        pooling: max-pool padding of the backbone and the head: ``same`` (every cell of the
            attributed layer, and every pixel, reaches the logits) or ``valid`` (the thesis's
            VGG16).

    Returns:
        A built, uncompiled model; compile it with an optimizer only, e.g.
        ``model.compile(optimizer=keras.optimizers.Adam(1e-4))``.
    """
    if seed is not None:
        keras.utils.set_random_seed(seed)
    if backbone == "vgg16":
        features = vgg16_backbone(input_shape, weights=weights, pooling=pooling)
    elif backbone == "small_cnn":
        if weights is not None:
            raise ValueError(f"weights={weights!r}: the small CNN has no pretrained weights")
        features = small_cnn_backbone(input_shape, seed=seed, pooling=pooling)
    else:
        raise ValueError(f"backbone={backbone!r}: allowed are {BACKBONES}")
    features.trainable = not frozen
    head = thesis_head(tuple(features.outputs[0].shape[1:]), n_classes, seed=seed,
                       pooling=pooling)
    return HeatmapLossModel(features, head, heatmap=heatmap, name=f"{backbone}_classifier")


def cut_at(model: HeatmapLossModel, layer: str) -> tuple[keras.Model, keras.Model]:
    """Move a model's attribution point to an earlier backbone layer.

    Args:
        model: a ``HeatmapLossModel`` whose backbone is a plain chain of layers (the small
            CNN, VGG16).
        layer: name of a backbone layer.

    Returns:
        ``(backbone, head)``: input → ``layer`` output, and the remaining backbone layers
        followed by the old head (same weights, same function).
    """
    backbone = model.backbone
    names = [item.name for item in backbone.layers]
    if layer not in names:
        raise ValueError(f"layer={layer!r} is not in the backbone; available: {names}")
    early = keras.Model(backbone.inputs[0], backbone.get_layer(layer).output,
                        name=f"backbone_to_{layer}")
    inputs = keras.Input(tuple(early.outputs[0].shape[1:]))
    hidden = inputs
    for item in backbone.layers[names.index(layer) + 1:]:
        hidden = item(hidden)
    return early, keras.Model(inputs, model.head(hidden), name=f"head_from_{layer}")
