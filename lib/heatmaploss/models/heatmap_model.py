"""``HeatmapLossModel``: a classifier whose training step adds a heatmap penalty for the whole
batch in one graph.

``HeatmapLossModel(backbone, head, heatmap=None)`` — ``call(x)`` returns logits; attribution is
taken at the backbone's output. Metrics: ``loss``, ``accuracy``, ``classification``,
``penalty`` (unweighted mean penalty over the selected samples) and ``inside`` when
``inside_weight > 0``. Saves and loads with ``model.save("m.keras")`` /
``keras.models.load_model`` once ``heatmaploss`` is imported.

Data format for ``fit``/``evaluate``: batches ``(x, y)`` where ``x`` is float32
(N, *grid, channels) and ``y`` is a dict ``{"label": one-hot (N, n_classes), "mask":
irrelevant-region mask (N, *grid) at input resolution (1 = attribution unwanted)}``, optionally
with ``"required"`` (N, *grid) for the inside term. ``y`` may also be the one-hot labels alone
when the model trains without a heatmap term. Masks are brought to the layer's grid inside
the step (CAM methods; area-averaged, or bilinearly as the thesis did:
``HeatmapLossConfig.mask_resize``) or used as they are (saliency).
``heatmaploss.pipeline.make_dataset`` builds such batches.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from .. import attribution as attr
from .. import losses
from ..losses import HeatmapLossConfig


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
        if heatmap.layers:
            attr.staged_split(backbone, heatmap.layers)  # fail now on a bad layer name

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

    def _pick_class(self, labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
        source = labels if self.heatmap.class_mode == "true" else tf.stop_gradient(logits)
        return tf.argmax(source, axis=-1, output_type=tf.int32)

    def _score(self, labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
        # Samples are independent: the gradient of the summed score gives every sample the
        # gradient of its own score.
        return tf.reduce_sum(attr.class_scores(logits, self._pick_class(labels, logits),
                                               self.heatmap.target))

    def _maps_and_logits(self, x: tf.Tensor, labels: tf.Tensor, training: bool
                         ) -> tuple[list[tf.Tensor], tf.Tensor]:
        """The penalty's maps (one per attributed layer) and the logits, in one forward pass."""
        config = self.heatmap
        if config.method == "saliency":
            with tf.GradientTape() as tape:
                tape.watch(x)
                logits = self.call(x, training=training)
                score = self._score(labels, logits)
            gradients = tape.gradient(score, x)
            if config.penalty == "rrr":  # Ross et al.: squared input gradients
                return [tf.reduce_sum(tf.square(gradients), axis=-1)], logits
            return [attr.saliency_from_gradients(gradients)], logits
        if not config.layers:
            activations = [self.backbone(x, training=training)]
            with tf.GradientTape() as tape:
                tape.watch(activations[0])
                logits = self.head(activations[0], training=training)
                score = self._score(labels, logits)
        else:
            early, late, names = attr.staged_split(self.backbone, config.layers)
            first = early(x, training=training)
            with tf.GradientTape() as tape:
                tape.watch(first)
                rest = attr.late_outputs(late, first, training)
                logits = self.head(rest[-1] if rest else first, training=training)
                score = self._score(labels, logits)
            wanted = set(config.layers)
            activations = [a for name, a in zip(names, [first, *rest]) if name in wanted]
        gradients = tape.gradient(score, activations)
        return [attr.cam_from_gradients(a, g, config.method)
                for a, g in zip(activations, gradients)], logits

    def _region_at(self, mask: tf.Tensor, maps: tf.Tensor, dilate: int) -> tf.Tensor:
        """The mask on the maps' grid and dtype, after growing the allowed region."""
        grid = tuple(maps.shape[1:])
        mask = tf.cast(mask, maps.dtype)
        if dilate > 0:
            # Grow the allowed region = max-pool of (1 - mask) over a (2k+1) window.
            allowed = tf.nn.max_pool(1.0 - mask[..., None], 2 * dilate + 1, 1, "SAME")[..., 0]
            mask = 1.0 - allowed
        if tuple(mask.shape[1:]) != tuple(grid):
            mask = attr.resize_mask(mask, grid, self.heatmap.mask_resize)
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
            all_maps, logits = self._maps_and_logits(x, labels, training)
            penalty_value = inside_value = tf.zeros((), all_maps[0].dtype)
            selection = losses.class_selection(tf.argmax(labels, axis=-1), config.classes)
            if config.weight > 0 and mask is None:
                raise ValueError("the heatmap penalty needs y['mask'] (irrelevant region)")
            if config.inside_weight > 0 and required is None:
                raise ValueError("the inside term needs y['required'] (the region attribution "
                                 "must fall in); it is not derived from y['mask'], which would "
                                 "count the outside penalty twice")
            # Several attributed layers: each term is the mean over the layers' maps.
            for maps in all_maps:
                if config.weight > 0:
                    irrelevant = self._region_at(mask, maps, config.dilate)
                    penalty_value += losses.selected_mean(
                        losses.penalty(config.penalty, maps, irrelevant), selection
                    ) / len(all_maps)
                if config.inside_weight > 0:
                    inside_value += losses.selected_mean(
                        losses.inside_penalty(maps, self._region_at(required, maps, 0)),
                        selection) / len(all_maps)
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



__all__ = ["HeatmapLossModel"]
