"""Batched, differentiable feature attribution: HiResCAM, Grad-CAM and input-gradient saliency.

Every function here works on a whole batch at once and may be called inside an outer
``tf.GradientTape`` (the heatmap loss differentiates the maps with respect to the weights).

Public API (stable):

* ``hirescam(model, x, class_index, layer, *, relu=True) -> (N, *grid)``
* ``gradcam(model, x, class_index, layer, *, relu=True) -> (N, *grid)``
* ``saliency(model, x, class_index, layer=None, *, absolute=True) -> (N, *input_grid)``
* ``cam_from_gradients(activations, gradients, method, *, relu=True)`` — the low-level form
  for custom training steps that already hold the conv output ``A`` and ``dscore/dA``.
* ``class_scores(logits, class_index)`` — the per-sample score that is differentiated.
* ``split_model(model, layer) -> (base, head)`` — the model cut at a layer.
* ``upsample(maps, size)``, ``area_downsample(mask, size)`` and ``resize_mask(mask, size,
  method)`` — move maps/masks between the input grid and the layer grid (from
  :mod:`heatmaploss.resampling`, re-exported here).
* ``compute_maps(model, x, class_index, method, *, layer=None, batch_size=64, ...)`` — NumPy
  maps for evaluation, computed in batches in one compiled graph per method.
* ``compiled_for(model, key, build)`` — a compiled function kept with its model (traced once).

Conventions: channels-last tensors; ``class_index`` is an int tensor of shape (N,) (the true
or the predicted class per sample); the differentiated score is the class *logit* (the
pre-activation output of the model), as in Selvaraju et al. (2017) and Draelos & Carin (2020).
Maps are returned at the layer's resolution: (N, h, w) for a Conv2D layer, (N, d, h, w) for a
Conv3D layer. ``relu=False`` returns the signed map.

The shared plumbing (cut the model at the layer, run the conv part, take ``dscore/dA`` over
the head only) lives in ``layer_gradients``; the methods differ only in how they combine A
and dA (``cam_from_gradients``).
"""

from __future__ import annotations

import weakref
from typing import Any, Callable, Sequence

import numpy as np
import tensorflow as tf

import keras

from .names import CAM_EXPLAINERS, EXPLAINERS, TARGETS
from .resampling import area_downsample, resize_mask, upsample  # noqa: F401  (re-exported)


# Cut models are cached per (model, layer): building a Keras sub-model is slow and a new one
# would retrace every compiled function that uses it.
_SPLIT_CACHE: "weakref.WeakKeyDictionary[Any, dict[str, tuple]]" = weakref.WeakKeyDictionary()


def split_model(model: keras.Model, layer: str | None) -> tuple[keras.Model, keras.Model]:
    """Cut a model into a conv part (input -> layer output) and a head (layer output -> logits).

    Args:
        model: a built Keras functional or Sequential model with one input and one output, or
            any model with ``backbone`` and ``head`` attributes (``HeatmapLossModel``), which
            is cut between the two.
        layer: name of the top-level layer whose output ``A`` is attributed (for example
            ``"block5_conv3"``). ``None`` is allowed only for models with ``backbone``/``head``.

    Returns:
        ``(base, head)`` with ``head(base(x)) == model(x)``.

    Raises:
        ValueError: if the layer is not a top-level layer of the model.
    """
    backbone = getattr(model, "backbone", None)
    head = getattr(model, "head", None)
    if isinstance(backbone, keras.Model) and isinstance(head, keras.Model):
        if layer is not None and layer != backbone.name and layer != backbone.layers[-1].name:
            raise ValueError(
                f"layer={layer!r}: this model is cut between its backbone and head; pass "
                f"layer=None (or {backbone.layers[-1].name!r})")
        return backbone, head
    if layer is None:
        raise ValueError("layer=None: name the conv layer to attribute, e.g. 'block5_conv3'")
    cache = _SPLIT_CACHE.setdefault(model, {})
    if layer not in cache:
        names = [item.name for item in model.layers]
        if layer not in names:
            raise ValueError(
                f"layer={layer!r} is not a top-level layer of model {model.name!r}; "
                f"available: {names}")
        if len(model.inputs) != 1 or len(model.outputs) != 1:
            raise ValueError(f"model {model.name!r} must have exactly one input and one output")
        activations = model.get_layer(layer).output
        base = keras.Model(model.inputs[0], activations, name=f"{model.name}_to_{layer}")
        head_model = keras.Model(activations, model.outputs[0], name=f"{model.name}_from_{layer}")
        cache[layer] = (base, head_model)
    return cache[layer]


_STAGE_CACHE: "weakref.WeakKeyDictionary[Any, dict[tuple, tuple]]" = weakref.WeakKeyDictionary()


def staged_split(backbone: keras.Model, layers: Sequence[str]
                 ) -> tuple[keras.Model, keras.Model, list[str]]:
    """Cut a backbone so that several of its layers' outputs can be differentiated at once.

    Args:
        backbone: a functional model (a chain of layers, as the small CNN and VGG16).
        layers: names of backbone layers (any order; the backbone's own last layer allowed).

    Returns:
        ``(early, late, names)``: ``early`` maps the input to the first requested layer's
        output A_1; ``late`` maps A_1 to ``[A_2, ..., A_k, backbone output]`` (``None`` when A_1
        is the backbone output); ``names`` lists the layers of ``[A_1, ..., A_k, backbone
        output]`` in that order. Differentiating a score
        of the backbone output with respect to A_1 (watched) and the intermediate A_i gives
        every requested map from one backward pass.

    Raises:
        ValueError: a name that is not a layer of the backbone.
    """
    order = [item.name for item in backbone.layers]
    unknown = [name for name in layers if name not in order]
    if unknown:
        raise ValueError(f"layers {unknown}: not layers of {backbone.name!r}; available: {order}")
    chosen = sorted(set(layers), key=order.index)
    last = order[-1]
    key = tuple(chosen)
    cache = _STAGE_CACHE.setdefault(backbone, {})
    if key not in cache:
        first = backbone.get_layer(chosen[0]).output
        early = keras.Model(backbone.inputs[0], first, name=f"{backbone.name}_to_{chosen[0]}")
        later = [name for name in chosen[1:] if name != last]
        later += [last] if chosen[0] != last else []
        late = keras.Model(first, [backbone.get_layer(name).output for name in later],
                           name=f"{backbone.name}_from_{chosen[0]}") if later else None
        cache[key] = (early, late, [chosen[0]] + later)
    return cache[key]


def late_outputs(late: keras.Model | None, first: tf.Tensor, training: bool = False
                 ) -> list[tf.Tensor]:
    """``late(first)`` of a :func:`staged_split` as a list (empty when ``late`` is None)."""
    if late is None:
        return []
    rest = late(first, training=training)
    return list(rest) if isinstance(rest, (list, tuple)) else [rest]


def class_scores(logits: tf.Tensor, class_index: tf.Tensor, target: str = "logit") -> tf.Tensor:
    """Each sample's score for its class: what an attribution map differentiates.

    Args:
        logits: (N, n_classes) model outputs.
        class_index: (N,) integer class per sample.
        target: ``logit`` (z_c, the default: Selvaraju et al., Draelos & Carin),
            ``log_softmax`` (log p_c: also counts evidence that lowers the other classes),
            ``margin`` (z_c − max over the other classes) or ``log_prob_sum`` (Σ_k log p_k, the
            same for every class: Ross et al.'s "right for the right reasons" target).

    Returns:
        (N,) scores.
    """
    if target == "logit":
        class_index = tf.cast(tf.reshape(class_index, [-1]), tf.int32)
        return tf.gather(logits, class_index, axis=1, batch_dims=1)
    if target == "log_prob_sum":
        return tf.reduce_sum(tf.nn.log_softmax(logits, axis=-1), axis=-1)
    if target == "log_softmax":
        return class_scores(tf.nn.log_softmax(logits, axis=-1), class_index)
    if target == "margin":
        chosen = class_scores(logits, class_index)
        others = tf.where(tf.one_hot(tf.cast(tf.reshape(class_index, [-1]), tf.int32),
                                     tf.shape(logits)[-1]) > 0, logits.dtype.min, logits)
        return chosen - tf.reduce_max(others, axis=-1)
    raise ValueError(f"target={target!r}: allowed {', '.join(TARGETS)}")


def cam_from_gradients(activations: tf.Tensor, gradients: tf.Tensor, method: str, *,
                       relu: bool = True) -> tf.Tensor:
    """Combine a conv output and the score's gradient into a CAM map (2-D or 3-D).

    Args:
        activations: A, shape (N, *grid, channels).
        gradients: dscore/dA, same shape. Must be recorded by any outer tape (take it inside
            the outer tape) when the map is used in a loss.
        method: ``"hirescam"`` (channel sum of A * dA, Draelos & Carin 2020) or ``"gradcam"``
            (channel sum of A * spatial mean of dA, Selvaraju et al. 2017).
        relu: clip negative values (the published definitions do).

    Returns:
        Maps of shape (N, *grid).
    """
    if method == "hirescam":
        weighted = activations * gradients
    elif method == "gradcam":
        spatial_axes = list(range(1, len(activations.shape) - 1))
        weighted = activations * tf.reduce_mean(gradients, axis=spatial_axes, keepdims=True)
    else:
        raise ValueError(f"method={method!r}: allowed are {CAM_EXPLAINERS}")
    maps = tf.reduce_sum(weighted, axis=-1)
    return tf.nn.relu(maps) if relu else maps


def layer_gradients(model: keras.Model, x: tf.Tensor, class_index: tf.Tensor,
                    layer: str | None, *, training: bool = False
                    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Run the model once and return A, dscore/dA and the logits.

    The conv part runs once; an inner tape covers only the head, so the extra cost of the
    gradient is one backward pass through the head. Called inside an outer tape, the gradient
    computation is recorded and the maps stay differentiable with respect to the weights.

    Args:
        model: see ``split_model``.
        x: input batch (N, *input_grid, channels).
        class_index: (N,) class per sample whose logit is differentiated.
        layer: layer name (see ``split_model``).
        training: passed to the Keras layers (dropout etc.).

    Returns:
        ``(activations, gradients, logits)``.
    """
    base, head = split_model(model, layer)
    activations = base(x, training=training)
    with tf.GradientTape() as tape:
        tape.watch(activations)
        logits = head(activations, training=training)
        score = tf.reduce_sum(class_scores(logits, class_index))
    # Samples are independent (no batch statistics), so the gradient of the summed score
    # gives every sample the gradient of its own score.
    gradients = tape.gradient(score, activations)
    return activations, gradients, logits


def hirescam(model: keras.Model, x: tf.Tensor, class_index: tf.Tensor, layer: str | None, *,
             relu: bool = True) -> tf.Tensor:
    """HiResCAM maps: channel sum of A * dscore/dA at the layer's resolution.

    Args:
        model: see ``split_model``.
        x: input batch (N, *input_grid, channels).
        class_index: (N,) integer class per sample.
        layer: name of the conv layer (2-D or 3-D).
        relu: clip negative values.

    Returns:
        (N, *grid) maps; differentiable with respect to the model's weights.
    """
    activations, gradients, _ = layer_gradients(model, x, class_index, layer)
    return cam_from_gradients(activations, gradients, "hirescam", relu=relu)


def gradcam(model: keras.Model, x: tf.Tensor, class_index: tf.Tensor, layer: str | None, *,
            relu: bool = True) -> tf.Tensor:
    """Grad-CAM maps: channel sum of A * (spatial mean of dscore/dA).

    Args and Returns: as ``hirescam``.
    """
    activations, gradients, _ = layer_gradients(model, x, class_index, layer)
    return cam_from_gradients(activations, gradients, "gradcam", relu=relu)


def saliency_from_gradients(gradients: tf.Tensor, *, absolute: bool = True) -> tf.Tensor:
    """Reduce input gradients (N, *grid, channels) to a saliency map (N, *grid).

    Args:
        gradients: dscore/dx.
        absolute: sum of absolute values over channels (default); ``False`` gives the signed
            channel sum (the gradient with respect to a grey value repeated over channels).

    Returns:
        (N, *grid) maps.
    """
    if absolute:
        return tf.reduce_sum(tf.abs(gradients), axis=-1)
    return tf.reduce_sum(gradients, axis=-1)


def saliency(model: keras.Model, x: tf.Tensor, class_index: tf.Tensor, layer: str | None = None,
             *, absolute: bool = True) -> tf.Tensor:
    """Input-gradient saliency (Simonyan et al. 2014) at the input's resolution.

    Args:
        model: any Keras model mapping x to logits.
        x: input batch (N, *input_grid, channels).
        class_index: (N,) integer class per sample.
        layer: ignored (kept so every method has the same call signature).
        absolute: see ``saliency_from_gradients``.

    Returns:
        (N, *input_grid) maps; differentiable with respect to the weights (second order).
    """
    del layer
    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        score = tf.reduce_sum(class_scores(model(x, training=False), class_index))
    return saliency_from_gradients(tape.gradient(score, x), absolute=absolute)


_METHOD_FUNCTIONS = {"hirescam": hirescam, "gradcam": gradcam, "saliency": saliency}


def attribution(method: str, model: keras.Model, x: tf.Tensor, class_index: tf.Tensor,
                layer: str | None = None, **kwargs: Any) -> tf.Tensor:
    """Dispatch to ``hirescam``, ``gradcam`` or ``saliency`` by name.

    Args:
        method: one of ``heatmaploss.names.EXPLAINERS``.
        model, x, class_index, layer: as in the methods.
        **kwargs: ``relu`` for CAM methods, ``absolute`` for saliency.

    Returns:
        (N, *grid) maps.
    """
    if method not in _METHOD_FUNCTIONS:
        raise ValueError(f"method={method!r}: allowed are {EXPLAINERS}")
    return _METHOD_FUNCTIONS[method](model, x, class_index, layer, **kwargs)


# ---------------------------------------------------------------------------------------------
_COMPILED_CACHE: "weakref.WeakKeyDictionary[Any, dict[tuple, Any]]" = weakref.WeakKeyDictionary()


def compiled_for(model: Any, key: tuple, build: Callable[[], Any]) -> Any:
    """A compiled function of ``model``, built once per (model, ``key``) and then reused.

    Evaluation functions are traced on their first call; keeping them with the model object
    means a model evaluated again — or a kept model that receives another model's weights
    (:func:`heatmaploss.models.reuse.for_evaluation`) — is not traced again. ``build`` must not
    hold a strong reference to ``model`` itself (use :func:`weakref.ref`), or the model is
    never freed; references to its layers are fine.
    """
    cache = _COMPILED_CACHE.setdefault(model, {})
    if key not in cache:
        cache[key] = build()
    return cache[key]


def _compiled_maps(model: keras.Model, method: str, layer: str | None, relu: bool,
                   size: tuple[int, ...] | None) -> Any:
    """One compiled map function per (model, settings), reused across calls (no retracing)."""
    def build() -> Any:
        option = {"absolute": relu} if method == "saliency" else {"relu": relu}
        # A strong reference from the cached function would keep the model alive forever.
        model_ref = weakref.ref(model)

        @tf.function(reduce_retracing=True)
        def batch_maps(images: tf.Tensor, classes: tf.Tensor) -> tf.Tensor:
            maps = attribution(method, model_ref(), images, classes, layer, **option)
            return maps if size is None else upsample(maps, size)

        return batch_maps

    return compiled_for(model, ("maps", method, layer, relu, size), build)


def compute_maps(model: keras.Model, x: np.ndarray, class_index: np.ndarray, method: str, *,
                 layer: str | None = None, batch_size: int = 64, relu: bool = True,
                 upsample_to_input: bool = False) -> np.ndarray:
    """Attribution maps for evaluation, computed in batches in one compiled graph.

    Args:
        model: a trained model (see ``split_model``).
        x: inputs (N, *input_grid, channels), already preprocessed (float).
        class_index: (N,) class per sample (true or predicted labels).
        method: ``"hirescam"``, ``"gradcam"`` or ``"saliency"``.
        layer: the conv layer for CAM methods (``None`` for ``HeatmapLossModel``).
        batch_size: images per batch.
        relu: clip negative CAM values; for saliency ``relu=True`` means absolute gradients.
        upsample_to_input: return maps resized to the input grid.

    Returns:
        float32 NumPy array (N, *grid) or (N, *input_grid).
    """
    if method not in EXPLAINERS:
        raise ValueError(f"method={method!r}: allowed are {EXPLAINERS}")
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r}: must be >= 1")
    x = np.asarray(x)
    class_index = np.asarray(class_index).reshape(-1)
    if len(class_index) != len(x):
        raise ValueError(f"class_index has {len(class_index)} entries for {len(x)} images")
    input_grid = tuple(x.shape[1:-1])
    batch_maps = _compiled_maps(model, method, layer, relu, input_grid if upsample_to_input
                                else None)
    chunks = [batch_maps(tf.convert_to_tensor(x[start:start + batch_size], tf.float32),
                         tf.convert_to_tensor(class_index[start:start + batch_size], tf.int32))
              .numpy() for start in range(0, len(x), batch_size)]
    return np.concatenate(chunks, axis=0).astype(np.float32)
