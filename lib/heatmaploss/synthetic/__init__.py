"""The thesis's synthetic short-axis cardiac MRIs, calibrated to its published data.

    from heatmaploss import synthetic
    data = synthetic.generate(experiment=1, n_per_class=2500, seed=0)
    heart = data.region("heart")
    for chunk in synthetic.iter_batches(2, 25_000, seed=1, chunk_size=1000):
        x = synthetic.to_model_input(chunk.images)

* :mod:`.geometry` — who each individual is (sex, size, radii, walls, body fat) and where its
  heart and fat bar go;
* :mod:`.render` — drawing laid-out individuals into images and segmentations;
* :mod:`.generator` — seeded, chunk-invariant generation of whole sets (the options are
  described there);
* :mod:`.plan` — :class:`DataPlan`: the sets (sizes, seeds, options) a group of models uses.

Facts: ``docs/thesis.md`` §2. No TensorFlow.
"""

from .generator import (BLOCK_SIZE, CLASSES, DECOY_SETS, DEFAULT_OPTIONS, EXPERIMENTS,
                        HEART_TISSUES, IMAGE_SHAPE, P_MALE, THESIS_FACTS, VARIABILITIES,
                        SyntheticMRIs, Tissue, class_order, decoy_corners_mask, generate,
                        iter_batches,
                        tissue_fractions, to_model_input, validate)
from .plan import DataPlan, DataSplit

__all__ = ["BLOCK_SIZE", "CLASSES", "DECOY_SETS", "DataPlan", "DataSplit", "DEFAULT_OPTIONS", "EXPERIMENTS", "HEART_TISSUES",
           "IMAGE_SHAPE", "P_MALE", "THESIS_FACTS", "VARIABILITIES", "SyntheticMRIs", "Tissue",
           "class_order", "decoy_corners_mask", "generate", "iter_batches", "tissue_fractions", "to_model_input",
           "validate"]
