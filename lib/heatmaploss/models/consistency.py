"""A non-attribution baseline: predictions that must not change when the irrelevant region does.

:class:`ConsistencyModel` trains ``classification + weight · consistency`` where the consistency
term is the mean squared change of the log-probabilities when the irrelevant region of the
input is perturbed: x' = x + ε · u ⊙ irrelevant, u ~ U(−1, 1) per pixel (the same for every
channel). It asks the model to be insensitive to that region directly — in the spirit of R4 and
IBP-Ex, which bound the output change over perturbations of the irrelevant region — instead
of asking an attribution map to be empty there. No attribution is computed.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from .heatmap_model import HeatmapLossModel


@keras.saving.register_keras_serializable(package="heatmaploss")
class ConsistencyModel(HeatmapLossModel):
    """A classifier trained to give the same log-probabilities when the irrelevant region moves.

    Args:
        backbone: input -> conv map.
        head: conv map -> logits.
        weight: weight of the consistency term (> 0).
        epsilon: size of the perturbation in input units (inputs lie in [−1, 1]).
        seed: seed of the perturbations.
        heatmap: must be ``None`` (or a config without a method): there is no attribution term.
        **kwargs: passed to ``keras.Model``.

    Batches are those of :class:`~heatmaploss.models.HeatmapLossModel` with ``y["mask"]``, the
    irrelevant region at input resolution. Metric ``penalty`` is the consistency term.
    """

    def __init__(self, backbone: keras.Model, head: keras.Model, weight: float = 1.0,
                 epsilon: float = 1.0, seed: int | None = None,
                 heatmap: Any = None, **kwargs: Any) -> None:
        if not weight > 0:
            raise ValueError(f"weight={weight!r}: must be > 0")
        if not epsilon > 0:
            raise ValueError(f"epsilon={epsilon!r}: must be > 0")
        super().__init__(backbone, head, heatmap=heatmap, **kwargs)
        if self.heatmap.uses_maps:
            raise ValueError("ConsistencyModel has no attribution term: pass heatmap=None")
        self.consistency_weight = float(weight)
        self.epsilon = float(epsilon)
        self.seed = seed
        self._tracker.unlock()  # the parent built itself; new state must be added before use
        self.seed_generator = keras.random.SeedGenerator(seed)
        self._tracker.lock()

    def compute_heatmap_loss(self, x: tf.Tensor, y: Any, training: bool = False
                             ) -> dict[str, tf.Tensor]:
        values = super().compute_heatmap_loss(x, y, training=training)
        _, mask, _ = self._targets(y)
        if mask is None:
            raise ValueError("the consistency term needs y['mask'] (irrelevant region)")
        x = tf.convert_to_tensor(x)
        mask = tf.cast(mask, x.dtype)
        noise = keras.random.uniform(tf.shape(mask), -1.0, 1.0, dtype=x.dtype,
                                     seed=self.seed_generator)
        perturbed = x + self.epsilon * (noise * mask)[..., None]
        original = tf.nn.log_softmax(values["logits"], axis=-1)
        moved = tf.nn.log_softmax(self.call(perturbed, training=training), axis=-1)
        change = tf.reduce_mean(tf.reduce_sum(tf.square(moved - original), axis=-1))
        change = tf.cast(change, values["classification"].dtype)
        values["penalty"] = change
        values["loss"] = values["classification"] + self.consistency_weight * change
        return values

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(weight=self.consistency_weight, epsilon=self.epsilon, seed=self.seed)
        return config


__all__ = ["ConsistencyModel"]
