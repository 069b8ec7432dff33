"""heatmaploss: heatmap losses for image classifiers.

Train classifiers with a feature-attribution map (HiResCAM, Grad-CAM, saliency) inside the
loss, and regenerate every figure and statistic of the 2022 thesis that introduced the idea.

The package's layers (``docs/design.md``): the method at the top level (:mod:`.attribution`,
:mod:`.losses`, :mod:`.models`, :mod:`.pipeline`, :mod:`.stats`, :mod:`.names` ...); data
sources (:mod:`.synthetic`, :mod:`.acdc`, :mod:`.reanalysis`); the results database
(:mod:`.registry`); project plumbing (:mod:`.project`); the shared run machinery
(:mod:`.runs`); the reproduction report (:mod:`.report`); one package per chapter
(:mod:`.chapters`).

Everything that needs no TensorFlow (statistics, the registry, the synthetic generator, the
re-analysis, every chapter's analysis and figures) imports without it, and importing it does
not load TensorFlow. Yet a saved model loads with ``keras.models.load_model`` after
``import heatmaploss``: the project's Keras classes are registered the moment Keras is
imported (or at once, when it already is).

Importing it also keeps TensorFlow's start-up noise (absl notices, ``cuInit`` errors on a
machine without a GPU, retracing warnings) out of runs and notebooks;
``HEATMAPLOSS_VERBOSE=1`` keeps it (:mod:`heatmaploss.project.logs`).
"""

import importlib

import wrapt

__version__ = "0.1.0"


def _register_keras_classes(_keras: object) -> None:
    """Import :mod:`heatmaploss.models`, which registers every Keras class of the project."""
    importlib.import_module(f"{__name__}.models")


wrapt.register_post_import_hook(_register_keras_classes, "keras")

from .project.logs import quiet  # noqa: E402 - after the hook, before any TF import

quiet()

__all__ = ["__version__"]
