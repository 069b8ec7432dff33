"""Chapter 5: ACDC — a 3-D U-Net segments cardiac MRI volumes; a random forest diagnoses the
five groups from measurements on its masks; classifiers on its frozen encoder are trained with
and without the heatmap loss.

* :mod:`.plan` — the U-Net's and the classifiers' studies (no TF);
* :mod:`.data` — preprocessed volumes, ED + ES pairs, augmentation, the encoder's grid (no TF);
* :mod:`.networks` — the 3-D U-Net, the pair encoder and the pooled head (Keras);
* :mod:`.run` — loading the data, training the U-Net, the diagnosis from its masks;
* :mod:`.diagnosis` — measurements per patient, the random forests, their scores (no TF);
* :mod:`.classifiers` — the classifiers through the study runner, scored with HiResCAM and
  saliency;
* :mod:`.analysis` — Dice, classifier metrics and comparisons, ``summary.json`` entry (no TF);
* :mod:`.verdicts` — the chapter's verdicts and report rows (no TF);
* :mod:`.figures` — data, segmentation, diagnosis and classifier figures.

The data source (reader, fixture, preprocessing, measurements) is :mod:`heatmaploss.acdc`.
"""
