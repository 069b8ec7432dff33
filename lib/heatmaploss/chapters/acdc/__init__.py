"""Chapter 5: ACDC — a 3-D U-Net segments cardiac MRI volumes; classifiers on its encoder are
trained with and without the heatmap loss.

* :mod:`.plan` — the U-Net's and the classifiers' studies (no TF);
* :mod:`.data` — preprocessed volumes, augmentation, the encoder's grid (no TF);
* :mod:`.networks` — the 3-D U-Net and the encoder classifier (Keras);
* :mod:`.run` — loading the data, training both through the study runner;
* :mod:`.analysis` — Dice, classifier metrics, ``summary.json`` entry (no TF);
* :mod:`.figures` — data, segmentation and classifier figures.

The data source (reader, fixture, preprocessing) is :mod:`heatmaploss.acdc`.
"""
