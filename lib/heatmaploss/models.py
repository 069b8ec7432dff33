"""Backbones, the thesis head and ``HeatmapLossModel``, the model whose training step adds a
heatmap penalty for the whole batch in one graph.

Public API (stable):

* ``vgg16_backbone(input_shape=(105, 135, 3), weights="imagenet")`` — VGG16 up to
  ``block5_conv3`` (6 x 8 x 512 at 105 x 135). Offline ImageNet weights raise
  ``PretrainedWeightsUnavailable`` naming the cache file.
* ``small_cnn_backbone(input_shape=(105, 135, 3), seed=None)`` — four 3 x 3 conv layers, last one
  ``last_conv`` (13 x 16 x 64 at 105 x 135); fast on a 2-core CPU.
* ``thesis_head(feature_shape, n_classes=4, pool=True, seed=None)`` — [MaxPool 2] -> Flatten
  -> Dense(100, relu, he_uniform) -> Dense(n_classes) logits.
* ``build_model(backbone="small_cnn", *, heatmap=None, weights=None, input_shape=...,
  n_classes=4, frozen=False, seed=None) -> HeatmapLossModel``.
* ``HeatmapLossModel(backbone, head, heatmap=None)`` — ``call(x)`` returns logits; attribution is
  taken at the backbone's output. Metrics: ``loss``, ``accuracy``, ``classification``,
  ``penalty`` (unweighted mean penalty over the selected samples) and ``inside`` when
  ``inside_weight > 0``. Saves/loads with ``model.save("m.keras")`` /
  ``keras.models.load_model``.
* ``make_dataset`` and ``preprocess_images`` (defined in ``heatmaploss.pipeline``, re-exported
  here): the ``tf.data`` pipeline in the format below.
* Evaluation maps of a trained model: ``heatmaploss.attribution.compute_maps(model, x, classes,
  method)`` (``layer=None`` for this class).

Data format for ``fit``/``evaluate``: batches ``(x, y)`` where ``x`` is float32
(N, *grid, channels) and ``y`` is a dict ``{"label": one-hot (N, n_classes), "mask":
irrelevant-region mask (N, *grid) at input resolution (1 = attribution unwanted)}``, optionally
with ``"required"`` (N, *grid) for the inside term. ``y`` may also be the one-hot labels alone
when the model trains without a heatmap term. Masks are area-averaged to the layer's grid
inside the step (CAM methods) or used as they are (saliency).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tensorflow as tf

import keras

from heatmaploss import attribution as attr
from heatmaploss import losses
from heatmaploss.losses import HeatmapLossConfig
from heatmaploss.pipeline import make_dataset, preprocess_images  # noqa: F401 (re-exported)

VGG16_WEIGHTS_FILE = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
VGG16_CACHE_PATH = Path("~/.keras/models") / VGG16_WEIGHTS_FILE
THESIS_INPUT_SHAPE = (105, 135, 3)
BACKBONES = ("vgg16", "small_cnn")


class PretrainedWeightsUnavailable(RuntimeError):
    """ImageNet weights could not be loaded (no cached file and no network)."""


def vgg16_backbone(input_shape: tuple[int, ...] = THESIS_INPUT_SHAPE,
                   weights: str | None = "imagenet") -> keras.Model:
    """VGG16's convolutional part up to ``block5_conv3`` (the thesis's attribution layer).

    Args:
        input_shape: (H, W, 3); the thesis feeds 105 x 135 without resizing.
        weights: ``"imagenet"`` or ``None`` (random initialisation).

    Returns:
        A functional model named ``vgg16_backbone`` whose output is ``block5_conv3``.

    Raises:
        PretrainedWeightsUnavailable: ImageNet weights are neither cached nor downloadable.
        ValueError: bad ``weights``.
    """
    if weights not in ("imagenet", None):
        raise ValueError(f"weights={weights!r}: allowed are 'imagenet' or None")
    try:
        vgg = keras.applications.VGG16(include_top=False, weights=weights,
                                       input_shape=tuple(input_shape))
    except Exception as error:  # Keras raises a bare Exception on a failed download
        if weights is None:
            raise
        raise PretrainedWeightsUnavailable(
            f"could not load VGG16 ImageNet weights ({error}). Put the file "
            f"{VGG16_WEIGHTS_FILE} at {VGG16_CACHE_PATH} (Keras's cache, "
            f"{VGG16_CACHE_PATH.expanduser()}), or build with weights=None, or use the "
            f"'small_cnn' backbone.") from error
    return keras.Model(vgg.inputs[0], vgg.get_layer("block5_conv3").output,
                       name="vgg16_backbone")


def small_cnn_backbone(input_shape: tuple[int, ...] = THESIS_INPUT_SHAPE,
                       seed: int | None = None) -> keras.Model:
    """A small VGG-style CNN for CPU profiles; its last layer ``last_conv`` is attributed.

    Three conv + 2 x 2 max-pool blocks (16, 32, 64 filters) and a final 64-filter conv: at
    105 x 135 the attributed map is 13 x 16 (the head's pooling then gives 6 x 8, as VGG16's).
    Works for 2-D (H, W, C) and 3-D (D, H, W, C) inputs.

    Args:
        input_shape: (H, W, C) or (D, H, W, C).
        seed: seed of the kernel initialisers.

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
        hidden = pool(2, name=f"pool{block}")(hidden)
    hidden = conv(64, 3, padding="same", activation="relu", name="last_conv",
                  kernel_initializer=keras.initializers.HeUniform(seed=_offset(seed, 4)))(hidden)
    return keras.Model(inputs, hidden, name="small_cnn_backbone")


def thesis_head(feature_shape: tuple[int, ...], n_classes: int = 4, *, pool: bool = True,
                seed: int | None = None) -> keras.Model:
    """The thesis's classifier head on a conv map: [MaxPool] -> Flatten -> Dense(100) -> logits.

    Args:
        feature_shape: the backbone's output shape without the batch axis.
        n_classes: number of classes (logits, no activation).
        pool: start with a 2 x 2 (x 2) max-pool, VGG16's ``block5_pool`` (the thesis's network
            attributed ``block5_conv3``, before that pool); axes of size 1 are not pooled.
        seed: seed of the dense initialisers.

    Returns:
        A functional model named ``head``.
    """
    if n_classes < 2:
        raise ValueError(f"n_classes={n_classes!r}: must be >= 2")
    inputs = keras.Input(tuple(feature_shape))
    hidden = inputs
    if pool:
        pooling = keras.layers.MaxPooling2D if len(feature_shape) == 3 else keras.layers.MaxPooling3D
        # Axes already down to one cell (thin 3-D volumes) are not pooled.
        sizes = tuple(min(2, int(size)) for size in feature_shape[:-1])
        hidden = pooling(sizes, name="head_pool")(hidden)
    hidden = keras.layers.Flatten(name="flatten")(hidden)
    hidden = keras.layers.Dense(100, activation="relu", name="dense",
                                kernel_initializer=keras.initializers.HeUniform(seed=seed))(hidden)
    logits = keras.layers.Dense(
        n_classes, name="logits",
        kernel_initializer=keras.initializers.GlorotUniform(seed=_offset(seed, 1)))(hidden)
    return keras.Model(inputs, logits, name="head")


def _offset(seed: int | None, offset: int) -> int | None:
    return None if seed is None else seed + offset


@keras.saving.register_keras_serializable(package="heatmaploss")
class HeatmapLossModel(keras.Model):
    """A backbone + head classifier trained with classification + weight * heatmap penalty.

    The backbone's output is the attributed conv map A. One training step runs the backbone
    once for the whole batch under the training tape, takes dscore/dA over the head only with
    an inner tape (inside the outer one, so the second-order term is recorded) and adds the
    penalty — no per-sample or eager work.

    Args:
        backbone: input -> A (a Keras model; built).
        head: A -> logits.
        heatmap: a ``HeatmapLossConfig`` (or its dict); None = cross-entropy only.
        **kwargs: passed to ``keras.Model`` (e.g. ``name``).
    """

    def __init__(self, backbone: keras.Model, head: keras.Model,
                 heatmap: HeatmapLossConfig | dict | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if heatmap is None:
            heatmap = HeatmapLossConfig(method=None)
        elif isinstance(heatmap, dict):
            heatmap = HeatmapLossConfig.from_dict(heatmap)
        elif not isinstance(heatmap, HeatmapLossConfig):
            raise ValueError(f"heatmap={heatmap!r}: must be a HeatmapLossConfig, dict or None")
        self.backbone = backbone
        self.head = head
        self.heatmap = heatmap
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.classification_tracker = keras.metrics.Mean(name="classification")
        self.penalty_tracker = keras.metrics.Mean(name="penalty")
        self.inside_tracker = keras.metrics.Mean(name="inside")
        self.accuracy_tracker = keras.metrics.CategoricalAccuracy(name="accuracy")
        # Build now (weights exist right after construction): keras-tuner checkpoints need it.
        self.build((None,) + tuple(backbone.inputs[0].shape[1:]))

    def build(self, input_shape: tuple) -> None:  # noqa: D102 - sub-models are built already
        self.built = True

    def call(self, inputs: tf.Tensor, training: bool | None = None) -> tf.Tensor:
        """Logits of the classifier."""
        return self.head(self.backbone(inputs, training=training), training=training)

    @property
    def metrics(self) -> list:
        trackers = [self.loss_tracker, self.accuracy_tracker, self.classification_tracker,
                    self.penalty_tracker]
        return trackers + ([self.inside_tracker] if self.heatmap.inside_weight > 0 else [])

    # -- the loss ---------------------------------------------------------------------------

    def _targets(self, y: Any) -> tuple[tf.Tensor, tf.Tensor | None, tf.Tensor | None]:
        if isinstance(y, dict):
            unknown = set(y) - {"label", "mask", "required"}
            if unknown or "label" not in y:
                raise ValueError(f"y has keys {sorted(y)}: expected 'label' and optionally "
                                 f"'mask', 'required'")
            return y["label"], y.get("mask"), y.get("required")
        return y, None, None

    def _maps_and_logits(self, x: tf.Tensor, labels: tf.Tensor, training: bool
                         ) -> tuple[tf.Tensor, tf.Tensor]:
        method = self.heatmap.method

        def pick_class(logits: tf.Tensor) -> tf.Tensor:
            source = labels if self.heatmap.class_mode == "true" else tf.stop_gradient(logits)
            return tf.argmax(source, axis=-1, output_type=tf.int32)

        if method == "saliency":
            with tf.GradientTape() as tape:
                tape.watch(x)
                logits = self.call(x, training=training)
                score = tf.reduce_sum(attr.class_scores(logits, pick_class(logits)))
            return attr.saliency_from_gradients(tape.gradient(score, x)), logits
        activations = self.backbone(x, training=training)
        with tf.GradientTape() as tape:
            tape.watch(activations)
            logits = self.head(activations, training=training)
            score = tf.reduce_sum(attr.class_scores(logits, pick_class(logits)))
        gradients = tape.gradient(score, activations)
        return attr.cam_from_gradients(activations, gradients, method), logits

    @staticmethod
    def _region_at(mask: tf.Tensor, maps: tf.Tensor, dilate: int) -> tf.Tensor:
        """The mask on the maps' grid and dtype, after growing the allowed region."""
        grid = tuple(maps.shape[1:])
        mask = tf.cast(mask, maps.dtype)
        if dilate > 0:
            # Grow the allowed region = max-pool of (1 - mask) over a (2k+1) window.
            allowed = tf.nn.max_pool(1.0 - mask[..., None], 2 * dilate + 1, 1, "SAME")[..., 0]
            mask = 1.0 - allowed
        if tuple(mask.shape[1:]) != tuple(grid):
            mask = attr.area_downsample(mask, grid)
        return mask

    def compute_heatmap_loss(self, x: tf.Tensor, y: Any, training: bool = False
                             ) -> dict[str, tf.Tensor]:
        """Classification + weight * penalty (+ inside_weight * inside) for one batch.

        Args:
            x: input batch.
            y: see the module docstring's data format.
            training: Keras training flag.

        Returns:
            Dict with scalar ``loss``, ``classification``, ``penalty``, ``inside`` and the
            ``logits`` (N, n_classes).
        """
        config = self.heatmap
        labels, mask, required = self._targets(y)
        x = tf.convert_to_tensor(x)
        if config.uses_maps:
            maps, logits = self._maps_and_logits(x, labels, training)
            penalty_value = inside_value = tf.zeros((), maps.dtype)
            selection = losses.class_selection(tf.argmax(labels, axis=-1), config.classes)
            if config.weight > 0:
                if mask is None:
                    raise ValueError("the heatmap penalty needs y['mask'] (irrelevant region)")
                irrelevant = self._region_at(mask, maps, config.dilate)
                penalty_value = losses.selected_mean(
                    losses.penalty(config.penalty, maps, irrelevant), selection)
            if config.inside_weight > 0:
                if required is None and mask is None:
                    raise ValueError("the inside term needs y['required'] or y['mask']")
                region = (self._region_at(required, maps, 0) if required is not None
                          else 1.0 - self._region_at(mask, maps, config.dilate))
                inside_value = losses.selected_mean(
                    losses.inside_penalty(maps, region), selection)
        else:
            # call() directly: Model.__call__ would cast inputs to the outer model's dtype.
            logits = self.call(x, training=training)
            penalty_value = inside_value = tf.zeros((), logits.dtype)
        classification = tf.reduce_mean(
            losses.classification_loss(config.classification, labels, logits))
        # Sum in at least float32 (mixed precision may give float16 logits or maps).
        dtype = tf.float64 if classification.dtype == tf.float64 else tf.float32
        classification = tf.cast(classification, dtype)
        penalty_value = tf.cast(penalty_value, dtype)
        inside_value = tf.cast(inside_value, dtype)
        total = (classification + config.weight * penalty_value
                 + config.inside_weight * inside_value)
        return {"loss": total, "classification": classification, "penalty": penalty_value,
                "inside": inside_value, "logits": logits, "labels": labels}

    def _update_metrics(self, values: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        self.loss_tracker.update_state(values["loss"])
        self.classification_tracker.update_state(values["classification"])
        self.penalty_tracker.update_state(values["penalty"])
        self.inside_tracker.update_state(values["inside"])
        self.accuracy_tracker.update_state(values["labels"], values["logits"])
        return {metric.name: metric.result() for metric in self.metrics}

    def train_step(self, data: Any) -> dict[str, tf.Tensor]:
        x, y = data[0], data[1]
        with tf.GradientTape() as tape:
            values = self.compute_heatmap_loss(x, y, training=True)
        variables = self.trainable_variables
        gradients = tape.gradient(values["loss"], variables)
        self.optimizer.apply_gradients(zip(gradients, variables))
        return self._update_metrics(values)

    def test_step(self, data: Any) -> dict[str, tf.Tensor]:
        x, y = data[0], data[1]
        return self._update_metrics(self.compute_heatmap_loss(x, y, training=False))

    # -- serialisation ----------------------------------------------------------------------

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            "head": keras.saving.serialize_keras_object(self.head),
            "heatmap": self.heatmap.to_dict(),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "HeatmapLossModel":
        config = dict(config)
        backbone = keras.saving.deserialize_keras_object(config.pop("backbone"))
        head = keras.saving.deserialize_keras_object(config.pop("head"))
        return cls(backbone, head, **config)


def build_model(backbone: str = "small_cnn", *, heatmap: HeatmapLossConfig | dict | None = None,
                weights: str | None = None, input_shape: tuple[int, ...] = THESIS_INPUT_SHAPE,
                n_classes: int = 4, frozen: bool = False, seed: int | None = None
                ) -> HeatmapLossModel:
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

    Returns:
        A built, uncompiled model; compile it with an optimizer only, e.g.
        ``model.compile(optimizer=keras.optimizers.Adam(1e-4))``.
    """
    if seed is not None:
        keras.utils.set_random_seed(seed)
    if backbone == "vgg16":
        features = vgg16_backbone(input_shape, weights=weights)
    elif backbone == "small_cnn":
        if weights is not None:
            raise ValueError(f"weights={weights!r}: the small CNN has no pretrained weights")
        features = small_cnn_backbone(input_shape, seed=seed)
    else:
        raise ValueError(f"backbone={backbone!r}: allowed are {BACKBONES}")
    features.trainable = not frozen
    head = thesis_head(tuple(features.outputs[0].shape[1:]), n_classes, seed=seed)
    return HeatmapLossModel(features, head, heatmap=heatmap, name=f"{backbone}_classifier")
