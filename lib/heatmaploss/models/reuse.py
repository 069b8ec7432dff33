"""Reusing traced models: one TensorFlow graph per architecture and loss, not one per model.

The first ``fit`` of a new Keras model traces its train step into a graph — for a heatmap loss
a double backward pass, which for VGG16 takes seconds on a CPU — and the first evaluation of a
loaded model traces its attribution graph again. A search trains many models that differ only in
their initial weights and learning rate, and an evaluation loads many models of one
architecture: tracing each anew costs more than training it when the data are small (the toy
``thesis-tiny`` profile, CPU searches) and leaves one more graph in the process every time.

* :class:`ModelPool` (training) — :meth:`ModelPool.adopt` takes a freshly built, compiled model
  and, if the pool holds a traced model of the same class, configuration and optimizer, copies
  the new model's variables (weights and random-seed states) into it, resets its optimizer
  (zero moments, the new learning rate) and returns it, so ``fit`` reuses its graph. The result
  is the same model: same initial weights, same fresh optimizer, same data, same function.
* :func:`for_evaluation` (inference) — the same for models loaded from disk: their variables are
  copied into one kept model per architecture, whose compiled evaluation functions
  (:func:`heatmaploss.attribution.compiled_for`) are then reused.

Only models whose learning rate is an optimizer variable are pooled (a schedule is traced into
the graph); everything else that defines the graph — class, layers and their names, loss
settings such as λ — is in the model's configuration, which must match exactly.
"""

from __future__ import annotations

import collections
import gc
import json
from typing import Any

import keras
import numpy as np

#: Models kept per pool: a search's trials, then its group's seeds, reuse one entry each.
DEFAULT_CAPACITY = 2


def _without_initial_values(config: Any) -> Any:
    """``config`` without what only sets initial values (initializers, seeds): those are
    copied with the variables and do not enter the traced graph."""
    if isinstance(config, dict):
        return {k: _without_initial_values(v) for k, v in config.items()
                if not (k.endswith("_initializer") or k == "seed")}
    if isinstance(config, (list, tuple)):
        return [_without_initial_values(v) for v in config]
    return config


def _config_key(model: keras.Model) -> str | None:
    """The model's class and configuration as text, initial values left out (None: the model
    has no usable configuration)."""
    try:
        config = model.get_config()
    except (NotImplementedError, TypeError, AttributeError):
        return None
    return f"{type(model).__module__}.{type(model).__qualname__}:" + json.dumps(
        _without_initial_values(config), sort_keys=True, default=repr)


def _same_variables(a: keras.Model, b: keras.Model) -> bool:
    va, vb = a.variables, b.variables
    return len(va) == len(vb) and all(
        tuple(x.shape) == tuple(y.shape) and x.dtype == y.dtype for x, y in zip(va, vb))


def copy_variables(source: keras.Model, target: keras.Model) -> None:
    """Give ``target`` every variable value of ``source`` (weights, random-seed states).

    Raises:
        ValueError: the two models' variables differ in number, shape or dtype.
    """
    if not _same_variables(source, target):
        raise ValueError(f"cannot copy {source.name!r} into {target.name!r}: their variables "
                         "differ in number, shape or dtype")
    for to, frm in zip(target.variables, source.variables):
        to.assign(frm.value)


def _optimizer_key(optimizer: Any) -> str | None:
    if optimizer is None or not isinstance(getattr(optimizer, "_learning_rate", None),
                                           keras.Variable):
        return None  # no optimizer, or a learning-rate schedule traced into the graph
    config = {k: v for k, v in optimizer.get_config().items() if k != "learning_rate"}
    return f"{type(optimizer).__qualname__}:" + json.dumps(config, sort_keys=True, default=repr)


def reset_optimizer(optimizer: Any, learning_rate: float) -> None:
    """Return a used optimizer to its fresh state (step 0, zero moments) at ``learning_rate``."""
    for variable in optimizer.variables:
        variable.assign(np.zeros(tuple(variable.shape), dtype=variable.dtype))
    optimizer.learning_rate = learning_rate


class ModelPool:
    """Compiled, traced models kept for reuse by later builds of the same model.

    Args:
        capacity: models kept (least recently used dropped first).
    """

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError(f"capacity={capacity!r}: must be >= 1")
        self.capacity = capacity
        self._models: collections.OrderedDict[str, keras.Model] = collections.OrderedDict()
        self.reused = 0

    def key(self, model: keras.Model) -> str | None:
        """What must match for a pooled model to stand in for ``model`` (None: never)."""
        config, optimizer = _config_key(model), _optimizer_key(getattr(model, "optimizer", None))
        return None if config is None or optimizer is None else f"{config}|{optimizer}"

    def adopt(self, model: keras.Model) -> keras.Model:
        """``model`` itself (kept for later), or a pooled model turned into it.

        Args:
            model: a freshly built and compiled model, not yet trained.

        Returns:
            A model with ``model``'s variables, a fresh optimizer at ``model``'s learning rate
            and ``model``'s configuration, whose train step may already be traced.
        """
        key = self.key(model)
        if key is None:
            return model
        pooled = self._models.get(key)
        if pooled is None or not _same_variables(pooled, model):
            self._models[key] = model
            self._trim()
            return model
        self._models.move_to_end(key)
        copy_variables(model, pooled)
        learning_rate = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
        reset_optimizer(pooled.optimizer, learning_rate)
        self.reused += 1
        return pooled

    def clear(self) -> None:
        """Drop every kept model."""
        self._models.clear()

    def __len__(self) -> int:
        return len(self._models)

    def _trim(self) -> None:
        while len(self._models) > self.capacity:
            self._models.popitem(last=False)


#: The pools of this process: one for training, one for evaluation.
training_pool = ModelPool()
_evaluation_pool = ModelPool()


def for_evaluation(model: keras.Model) -> keras.Model:
    """A kept model of ``model``'s architecture holding ``model``'s variables (or ``model``).

    Loaded models have no optimizer; they are matched on class and configuration alone.
    """
    key = _config_key(model)
    if key is None:
        return model
    pool = _evaluation_pool._models
    kept = pool.get(key)
    if kept is None or not _same_variables(kept, model):
        pool[key] = model
        _evaluation_pool._trim()
        return model
    pool.move_to_end(key)
    copy_variables(model, kept)
    _evaluation_pool.reused += 1
    return kept


def clear() -> None:
    """Forget every kept model of this process (training and evaluation)."""
    training_pool.clear()
    _evaluation_pool.clear()


_imports_frozen = False


def fresh_session() -> None:
    """``keras.backend.clear_session()`` (which runs a full garbage collection), kept short.

    A full collection scans every object alive; after importing TensorFlow and Keras that is
    some 400,000 objects that live as long as the process, and each collection took 0.44 s on
    the 2-core development machine — several per trial. The first call in a process collects
    once and then moves every object alive to the collector's permanent generation
    (:func:`gc.freeze`), so later collections scan only what the run created since. (Objects
    alive at that moment that later become garbage in a reference cycle are not reclaimed; in a
    worker process that moment is its first task, when it holds little besides its imports.)
    """
    global _imports_frozen
    keras.backend.clear_session()
    if not _imports_frozen:
        gc.freeze()
        _imports_frozen = True


__all__ = ["DEFAULT_CAPACITY", "ModelPool", "clear", "copy_variables", "for_evaluation",
           "fresh_session", "reset_optimizer", "training_pool"]
