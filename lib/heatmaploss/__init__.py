"""heatmaploss: heatmap losses for image classifiers.

Train classifiers with a feature-attribution map (HiResCAM, Grad-CAM, saliency) inside the
loss, and regenerate every figure and statistic of the 2022 thesis that introduced the idea.

Submodules are imported on demand so that the TensorFlow-free parts (``stats``, ``plots``,
``registry``, ``reanalysis``, ``report``, ``claims``, ``synthetic``) load without TensorFlow.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
