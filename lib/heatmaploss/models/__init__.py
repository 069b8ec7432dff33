"""Classifiers trained with a heatmap loss: backbones, the thesis head, the loss-aware models.

    from heatmaploss import models
    model = models.build_model("small_cnn", heatmap=HeatmapLossConfig(), seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-4))   # optimizer only
    model.fit(models.make_dataset(images, labels, not_heart, batch_size=32, seed=0), epochs=2)

* :mod:`.backbones` — VGG16 to ``block5_conv3``, a small CNN for CPUs, the thesis's head,
  :func:`build_model`, :func:`cut_at` (attribute an earlier layer);
* :mod:`.heatmap_model` — :class:`HeatmapLossModel` and the batch format it trains on;
* :mod:`.adaptive` — :class:`GradientBalancedModel`, λ set every step from gradient norms;
* :mod:`.consistency` — :class:`ConsistencyModel`, a non-attribution baseline: outputs that
  must not change when the irrelevant region is perturbed;
* :mod:`.reachability` — which cells of a layer reach the logits, which image rows a layer sees;
* :mod:`.saving` — :func:`save_model` without optimizer state, :func:`load_model`.

Importing this package registers every Keras class of the project, so saved models load.
"""

from ..pipeline import make_dataset, preprocess_images
from .adaptive import DEFAULT_MAX_WEIGHT, GradientBalancedModel
from .backbones import (BACKBONES, POOLINGS, THESIS_INPUT_SHAPE, VGG16_CACHE_PATH,
                        VGG16_WEIGHTS_ENV, VGG16_WEIGHTS_FILE, PretrainedWeightsUnavailable,
                        build_model, cut_at, small_cnn_backbone, thesis_head, vgg16_backbone,
                        vgg16_weights_file)
from .consistency import ConsistencyModel
from .heatmap_model import HeatmapLossModel
from .reachability import input_rows_seen, unreachable_cells
from .saving import load_model, save_model

__all__ = ["BACKBONES", "DEFAULT_MAX_WEIGHT", "POOLINGS", "THESIS_INPUT_SHAPE", "VGG16_CACHE_PATH",
           "VGG16_WEIGHTS_ENV", "VGG16_WEIGHTS_FILE", "ConsistencyModel", "GradientBalancedModel", "HeatmapLossModel",
           "PretrainedWeightsUnavailable", "build_model", "cut_at", "input_rows_seen", "load_model",
           "make_dataset", "preprocess_images", "save_model", "small_cnn_backbone",
           "thesis_head", "unreachable_cells", "vgg16_backbone", "vgg16_weights_file"]
