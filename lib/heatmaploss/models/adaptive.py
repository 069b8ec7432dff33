"""Adaptive heatmap weight: keep the penalty's gradient a fixed fraction of the classifier's.

A fixed λ means different things at different points of training and for different penalty
forms (an ``l2`` saliency penalty and an ``outside_fraction`` CAM penalty differ by orders of
magnitude). :class:`GradientBalancedModel` sets λ at every step so that

    ||λ · ∇penalty|| = ratio · ||∇classification||

(norms over all trainable weights), smoothed by an exponential moving average and capped. The
training step then descends ``classification + λ · penalty`` with that λ held constant (λ is
not differentiated). The price is one extra backward pass per step (two gradients are taken
from one persistent tape instead of one).
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from ..losses import HeatmapLossConfig
from .heatmap_model import HeatmapLossModel

#: λ never exceeds this, so a vanishing penalty gradient cannot blow the step up.
DEFAULT_MAX_WEIGHT = 1.0e6


@keras.saving.register_keras_serializable(package="heatmaploss")
class GradientBalancedModel(HeatmapLossModel):
    """A :class:`~heatmaploss.models.HeatmapLossModel` whose λ adapts every step.

    Args:
        backbone: input -> attributed conv map.
        head: conv map -> logits.
        heatmap: the loss settings; ``weight`` must be > 0 (it only switches the penalty on;
            the adaptive λ replaces it) and ``inside_weight`` must be 0.
        ratio: target ratio of the weighted penalty gradient's norm to the classification
            gradient's norm (> 0).
        momentum: EMA momentum of λ in [0, 1) (0 = no smoothing).
        max_weight: upper bound of λ.
        **kwargs: passed to ``keras.Model``.

    Metrics: those of ``HeatmapLossModel`` plus ``weight`` (mean λ over the epoch's steps).
    """

    def __init__(self, backbone: keras.Model, head: keras.Model,
                 heatmap: HeatmapLossConfig | dict | None = None, ratio: float = 1.0,
                 momentum: float = 0.9, max_weight: float = DEFAULT_MAX_WEIGHT,
                 **kwargs: Any) -> None:
        if not ratio > 0:
            raise ValueError(f"ratio={ratio!r}: must be > 0")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum={momentum!r}: must lie in [0, 1)")
        if not max_weight > 0:
            raise ValueError(f"max_weight={max_weight!r}: must be > 0")
        super().__init__(backbone, head, heatmap=heatmap, **kwargs)
        if not self.heatmap.uses_maps or self.heatmap.weight <= 0:
            raise ValueError("GradientBalancedModel needs a heatmap method and weight > 0 "
                             f"(got {self.heatmap})")
        if self.heatmap.inside_weight > 0:
            raise ValueError("GradientBalancedModel balances one penalty: set inside_weight=0")
        self.ratio = float(ratio)
        self.momentum = float(momentum)
        self.max_weight = float(max_weight)
        # The parent builds itself at the end of __init__, which locks new state; unlock it to
        # add the λ variable and its metric (both must exist before any checkpoint is read).
        self._tracker.unlock()
        self.adaptive_weight = self.add_weight(name="adaptive_weight", shape=(),
                                               initializer="zeros", trainable=False)
        self.weight_tracker = keras.metrics.Mean(name="weight")
        self._tracker.lock()

    @property
    def metrics(self) -> list:
        return super().metrics + [self.weight_tracker]

    def train_step(self, data: Any) -> dict[str, tf.Tensor]:
        x, y = data[0], data[1]
        with tf.GradientTape(persistent=True) as tape:
            values = self.compute_heatmap_loss(x, y, training=True)
        variables = self.trainable_variables
        # None = not connected (e.g. head biases for the penalty); global_norm skips them.
        classification = tape.gradient(values["classification"], variables)
        penalty = tape.gradient(values["penalty"], variables)
        del tape
        wanted = self.ratio * tf.linalg.global_norm(classification) / (
            tf.linalg.global_norm(penalty) + 1e-12)
        wanted = tf.minimum(wanted, self.max_weight)
        previous = self.adaptive_weight
        # The first step has no history: start from the wanted value, not from 0.
        weight = tf.where(tf.equal(previous, 0.0), wanted,
                          self.momentum * previous + (1.0 - self.momentum) * wanted)
        self.adaptive_weight.assign(weight)
        gradients = [c if p is None else p * weight if c is None else c + weight * p
                     for c, p in zip(classification, penalty)]
        self.optimizer.apply_gradients(zip(gradients, variables))
        values["loss"] = values["classification"] + weight * values["penalty"]
        self.weight_tracker.update_state(weight)
        return self._update_metrics(values)

    def _update_metrics(self, values: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        logs = super()._update_metrics(values)
        logs["weight"] = self.weight_tracker.result()
        return logs

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(ratio=self.ratio, momentum=self.momentum, max_weight=self.max_weight)
        return config


__all__ = ["DEFAULT_MAX_WEIGHT", "GradientBalancedModel"]
