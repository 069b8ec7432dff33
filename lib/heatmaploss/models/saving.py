"""Saving and loading trained classifiers.

A trained model is saved without its optimizer state (a VGG16's Adam state is ~120 MB) and
loads with ``keras.models.load_model`` once ``heatmaploss`` is imported, which registers every
Keras class of the project (:class:`~heatmaploss.models.HeatmapLossModel`,
:class:`~heatmaploss.models.GradientBalancedModel`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras


def save_model(model: Any, path: str | Path) -> None:
    """Save ``model``'s architecture, loss settings and weights (no optimizer) at ``path``.

    Args:
        model: a built Keras model whose class can be rebuilt from its config.
        path: a ``.keras`` file.
    """
    copy = type(model).from_config(model.get_config())
    copy.set_weights(model.get_weights())
    copy.save(path)


def load_model(path: str | Path) -> Any:
    """Load a model written by :func:`save_model` (or ``model.save``), not compiled.

    Raises:
        FileNotFoundError: ``path`` does not exist.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no saved model at {path}")
    return keras.models.load_model(path, compile=False)


__all__ = ["load_model", "save_model"]
