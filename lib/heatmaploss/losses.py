"""Heatmap penalties, classification terms and the heatmap-loss configuration.

A heatmap loss is ``classification + weight * penalty(map, irrelevant) + inside_weight *
inside(map, required)``, computed per sample and averaged over the batch (the penalty only over
the samples whose class is selected).

Public API (stable):

* Penalties, each ``f(maps, mask) -> (N,)`` with maps (N, *grid) and a mask on the same grid
  (1 = the region the penalty is about, fractional values allowed):

  - ``thesis_penalty(maps, irrelevant)``: ReLU, divide by the map's max (+ epsilon), mean over
    cells of map * irrelevant (the thesis's term, made finite for all-zero maps).
  - ``outside_fraction_penalty(maps, irrelevant)``: ``1 - sum(h * allowed) / (sum(h) + eps)``
    with ``h = relu(map)`` and ``allowed = 1 - irrelevant``: the fraction of attribution
    outside the allowed region, where an all-zero map scores 1 (the worst), not 0.
  - ``l2_penalty(maps, irrelevant)``: mean over cells of (map * irrelevant)^2 (an L2 penalty
    on an attribution map, e.g. saliency of the true-class logit).
  - ``rrr_penalty(maps, irrelevant)``: sum over cells of map * irrelevant, for maps of squared
    input gradients: with the target Σ_k log p_k this is Ross et al. (2017)'s "right for the
    right reasons" term, on their scale (a sum, not a mean).
  - ``inside_penalty(maps, required)``: ``1 - sum(h * required) / (sum(h) + eps)``: the
    "must look here" term, 0 when all attribution lies inside the required region.

* ``PENALTIES`` (name -> function), ``penalty(name, maps, mask)``.
* ``classification_loss(kind, labels_onehot, logits) -> (N,)``: ``"cce"`` (softmax
  cross-entropy from logits), ``"mse"`` (mean squared error of sigmoid probabilities and the
  one-hot labels, the thesis's heatmap-loss group) or ``"sigmoid_cce"`` (Keras's categorical
  cross-entropy of the sigmoid outputs, −log(σ_c / Σ_j σ_j): the thesis's CCE group).
* ``class_selection(class_index, classes) -> (N,)`` 0/1 weights: which samples get the penalty.
* ``selected_mean(values, weights)``: the mean over selected samples (0 if none).
* ``HeatmapLossConfig``: the validated settings of one heatmap loss (see its docstring).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable

import tensorflow as tf

from . import names
from .names import CLASS_MODES, CLASSIFICATION_TERMS, EXPLAINERS

EPSILON = 1e-6



def _cell_axes(maps: tf.Tensor) -> list[int]:
    return list(range(1, len(maps.shape)))


def _check_shapes(maps: tf.Tensor, mask: tf.Tensor) -> None:
    if maps.shape.rank is not None and mask.shape.rank is not None:
        if maps.shape.rank != mask.shape.rank or not maps.shape[1:].is_compatible_with(
                mask.shape[1:]):
            raise ValueError(f"mask shape {tuple(mask.shape)} does not match maps shape "
                             f"{tuple(maps.shape)}: downsample the mask to the map's grid first")


def _inside_fraction(maps: tf.Tensor, region: tf.Tensor) -> tf.Tensor:
    positive = tf.nn.relu(maps)
    axes = _cell_axes(maps)
    return (tf.reduce_sum(positive * region, axis=axes)
            / (tf.reduce_sum(positive, axis=axes) + EPSILON))


def thesis_penalty(maps: tf.Tensor, irrelevant: tf.Tensor) -> tf.Tensor:
    """The thesis's term: mean over cells of (relu(map) / max) * irrelevant.

    Args:
        maps: (N, *grid) attribution maps.
        irrelevant: (N, *grid) mask, 1 where attribution is unwanted.

    Returns:
        (N,) values in [0, 1]. An all-zero map gives 0 (finite; the thesis's version gave NaN).
    """
    maps, irrelevant = _as_float(maps, irrelevant)
    positive = tf.nn.relu(maps)
    axes = _cell_axes(maps)
    normalised = positive / (tf.reduce_max(positive, axis=axes, keepdims=True) + EPSILON)
    return tf.reduce_mean(normalised * irrelevant, axis=axes)


def outside_fraction_penalty(maps: tf.Tensor, irrelevant: tf.Tensor) -> tf.Tensor:
    """Fraction of positive attribution outside the allowed region; empty maps score 1.

    Args:
        maps: (N, *grid) attribution maps.
        irrelevant: (N, *grid) mask, 1 where attribution is unwanted.

    Returns:
        (N,) values in [0, 1].
    """
    maps, irrelevant = _as_float(maps, irrelevant)
    return 1.0 - _inside_fraction(maps, 1.0 - irrelevant)


def l2_penalty(maps: tf.Tensor, irrelevant: tf.Tensor) -> tf.Tensor:
    """Mean over cells of the squared attribution inside the irrelevant region.

    Args:
        maps: (N, *grid) attribution maps (typically input-gradient saliency).
        irrelevant: (N, *grid) mask, 1 where attribution is unwanted.

    Returns:
        (N,) non-negative values (unbounded; scale ``weight`` accordingly).
    """
    maps, irrelevant = _as_float(maps, irrelevant)
    return tf.reduce_mean(tf.square(maps * irrelevant), axis=_cell_axes(maps))


def rrr_penalty(maps: tf.Tensor, irrelevant: tf.Tensor) -> tf.Tensor:
    """Sum over cells of ``maps * irrelevant`` (maps of squared input gradients).

    With maps Σ_channels (∂ Σ_k log p_k / ∂x)² this is Ross et al. (2017)'s "right for the right
    reasons" term: the squared input gradient of the summed log-probabilities, summed over the
    irrelevant region.

    Args:
        maps: (N, *grid) non-negative maps (squared gradients).
        irrelevant: (N, *grid) mask, 1 where the input must not matter.

    Returns:
        (N,) non-negative values (unbounded; its weight is on Ross et al.'s scale).
    """
    maps, irrelevant = _as_float(maps, irrelevant)
    return tf.reduce_sum(maps * irrelevant, axis=_cell_axes(maps))


def inside_penalty(maps: tf.Tensor, required: tf.Tensor) -> tf.Tensor:
    """One minus the fraction of positive attribution inside a required region.

    Args:
        maps: (N, *grid) attribution maps.
        required: (N, *grid) mask, 1 where attribution must fall.

    Returns:
        (N,) values in [0, 1]; empty maps score 1.
    """
    maps, required = _as_float(maps, required)
    return 1.0 - _inside_fraction(maps, required)


PENALTIES: dict[str, Callable[[tf.Tensor, tf.Tensor], tf.Tensor]] = {
    "thesis": thesis_penalty,
    "outside_fraction": outside_fraction_penalty,
    "l2": l2_penalty,
    "rrr": rrr_penalty,
    "inside": inside_penalty,
}


def penalty(name: str, maps: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """Apply the penalty called ``name`` (one of ``heatmaploss.names.PENALTIES``); returns (N,)."""
    if name not in PENALTIES:
        raise ValueError(f"penalty={name!r}: allowed are {names.PENALTIES}")
    return PENALTIES[name](maps, mask)


def _as_float(maps: tf.Tensor, mask: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    maps = tf.convert_to_tensor(maps)
    # Half-precision maps (mixed precision) are promoted: EPSILON underflows in float16.
    if not maps.dtype.is_floating or maps.dtype.size < 4:
        maps = tf.cast(maps, tf.float32)
    mask = tf.cast(tf.convert_to_tensor(mask), maps.dtype)
    _check_shapes(maps, mask)
    return maps, mask


def classification_loss(kind: str, labels_onehot: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """Per-sample classification term.

    Args:
        kind: ``"cce"`` (softmax cross-entropy from logits), ``"mse"`` (mean over classes of
            (sigmoid(logits) - one-hot)^2, the thesis's heatmap-loss group) or
            ``"sigmoid_cce"`` (Keras's categorical cross-entropy of the sigmoid outputs: they are
            renormalised to sum to 1, −Σ_c y_c log(σ_c / Σ_j σ_j); the thesis's CCE group).
        labels_onehot: (N, n_classes) one-hot (or soft) labels.
        logits: (N, n_classes) model outputs.

    Returns:
        (N,) losses.
    """
    labels_onehot = tf.cast(labels_onehot, logits.dtype)
    if kind == "cce":
        return tf.nn.softmax_cross_entropy_with_logits(labels=labels_onehot, logits=logits)
    if kind == "mse":
        return tf.reduce_mean(tf.square(tf.sigmoid(logits) - labels_onehot), axis=-1)
    if kind == "sigmoid_cce":
        # log σ(z) = −softplus(−z): stable where σ underflows.
        log_sigmoid = -tf.nn.softplus(-logits)
        log_normalised = log_sigmoid - tf.reduce_logsumexp(log_sigmoid, axis=-1, keepdims=True)
        return -tf.reduce_sum(labels_onehot * log_normalised, axis=-1)
    raise ValueError(f"classification={kind!r}: allowed are {CLASSIFICATION_TERMS}")


def class_selection(class_index: tf.Tensor, classes: tuple[int, ...] | None) -> tf.Tensor:
    """0/1 weight per sample: 1 where the sample's class is among ``classes`` (all if None).

    Args:
        class_index: (N,) integer classes (the true labels).
        classes: the classes that get the penalty, or None for all.

    Returns:
        (N,) float32 weights.
    """
    class_index = tf.cast(tf.reshape(class_index, [-1]), tf.int32)
    if classes is None:
        return tf.ones(tf.shape(class_index), tf.float32)
    chosen = tf.constant(list(classes), tf.int32)
    hits = tf.reduce_any(tf.equal(class_index[:, None], chosen[None, :]), axis=1)
    return tf.cast(hits, tf.float32)


def selected_mean(values: tf.Tensor, weights: tf.Tensor) -> tf.Tensor:
    """Weighted mean of per-sample values; 0 when no sample is selected."""
    weights = tf.cast(weights, values.dtype)
    return tf.math.divide_no_nan(tf.reduce_sum(values * weights), tf.reduce_sum(weights))


@dataclass(frozen=True)
class HeatmapLossConfig:
    """Settings of one heatmap loss; validated on construction.

    Attributes:
        method: attribution in the loss: ``"hirescam"``, ``"gradcam"``, ``"saliency"`` or
            ``None`` (classification only — the cross-entropy baseline).
        penalty: ``"thesis"``, ``"outside_fraction"``, ``"l2"``, ``"rrr"`` (see module
            docstring; ``rrr`` needs ``method="saliency"`` and penalises squared input
            gradients); the penalty is taken against the irrelevant-region mask
            (``y["mask"]``).
        weight: lambda, the penalty's weight (>= 0).
        inside_weight: weight of the ``inside`` term against the required region
            ``y["required"]`` (which the data must then hold); 0 disables it.
        class_mode: which class's score the map explains: ``"true"`` label or ``"predicted"``
            (the thesis).
        classification: ``"cce"`` or ``"mse"`` (sigmoid MSE, the thesis).
        classes: class indices whose samples get the penalty (by true label); None = all.
        dilate: grow the allowed region (shrink the irrelevant mask) by this many input pixels
            before the penalty, so honest evidence at a region's edge is not penalised.
        target: what the map differentiates (:data:`heatmaploss.names.TARGETS`): the class
            ``logit`` (default), its ``log_softmax``, its ``margin``, or ``log_prob_sum``.
        layers: CAM methods: the backbone layers whose maps enter the penalty (averaged over
            the layers); empty = the backbone's output, the last conv layer.
        mask_resize: how masks reach a CAM map's grid: ``area`` (each cell's covered share) or
            ``bilinear`` (as the thesis did).
    """

    method: str | None = "hirescam"
    penalty: str = "outside_fraction"
    weight: float = 1.0
    inside_weight: float = 0.0
    class_mode: str = "true"
    classification: str = "cce"
    classes: tuple[int, ...] | None = None
    dilate: int = 0
    target: str = "logit"
    layers: tuple[str, ...] = ()
    mask_resize: str = "area"

    def __post_init__(self) -> None:
        if self.method is not None and self.method not in EXPLAINERS:
            raise ValueError(f"method={self.method!r}: allowed are {EXPLAINERS} or None")
        if self.penalty not in names.PENALTIES or self.penalty == "inside":
            raise ValueError(f"penalty={self.penalty!r}: allowed are thesis, outside_fraction, "
                             f"l2, rrr (use inside_weight for the inside term)")
        if self.penalty == "rrr" and self.method not in (None, "saliency"):
            raise ValueError(f"penalty='rrr' with method={self.method!r}: the rrr penalty is "
                             "on input gradients; allowed method: saliency")
        if self.target not in names.TARGETS:
            raise ValueError(f"target={self.target!r}: allowed are {names.TARGETS}")
        if self.mask_resize not in names.MASK_RESIZES:
            raise ValueError(f"mask_resize={self.mask_resize!r}: allowed are "
                             f"{names.MASK_RESIZES}")
        layers = tuple(self.layers)
        if not all(isinstance(layer, str) and layer for layer in layers):
            raise ValueError(f"layers={self.layers!r}: must be layer names")
        if layers and self.method == "saliency":
            raise ValueError("layers: saliency is taken at the input, not at a layer")
        object.__setattr__(self, "layers", layers)
        for name in ("weight", "inside_weight"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name}={value!r}: must be a number >= 0")
        if self.class_mode not in CLASS_MODES:
            raise ValueError(f"class_mode={self.class_mode!r}: allowed are {CLASS_MODES}")
        if self.classification not in CLASSIFICATION_TERMS:
            raise ValueError(f"classification={self.classification!r}: allowed are "
                             f"{CLASSIFICATION_TERMS}")
        if self.classes is not None:
            classes = tuple(self.classes)
            if not classes or not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0
                                      for c in classes):
                raise ValueError(f"classes={self.classes!r}: must be None or a non-empty "
                                 f"sequence of class indices >= 0")
            object.__setattr__(self, "classes", classes)
        if not isinstance(self.dilate, int) or isinstance(self.dilate, bool) or self.dilate < 0:
            raise ValueError(f"dilate={self.dilate!r}: must be an integer >= 0 (pixels)")

    @property
    def uses_maps(self) -> bool:
        """Whether the loss needs attribution maps at all."""
        return self.method is not None and (self.weight > 0 or self.inside_weight > 0)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (for ``get_config`` and result records)."""
        values = asdict(self)
        values["classes"] = None if self.classes is None else list(self.classes)
        values["layers"] = list(self.layers)
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "HeatmapLossConfig":
        """Inverse of ``to_dict``; unknown keys raise ValueError."""
        unknown = set(values) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown HeatmapLossConfig keys {sorted(unknown)}; allowed are "
                             f"{sorted(cls.__dataclass_fields__)}")
        values = dict(values)
        if values.get("classes") is not None:
            values["classes"] = tuple(values["classes"])
        if "layers" in values:
            values["layers"] = tuple(values["layers"])
        return cls(**values)
