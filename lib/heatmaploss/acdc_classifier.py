"""The ACDC chapter's classifiers: normal vs diseased on the U-Net encoder, trained with
cross-entropy or with the heatmap loss (HiResCAM at the deepest encoder level must stay inside
the heart, given by the ground-truth masks), and their evaluation.

Both losses train the same :class:`~heatmaploss.models.HeatmapLossModel` with the same data,
augmentation, class weights and optimiser; only the heatmap term differs.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from heatmaploss.acdc_experiment import AcdcArrays, augmented, load_finished, save_finished

LOSSES = ("cross_entropy", "heatmap")


def classifier_targets(labels: np.ndarray, diseased: np.ndarray, class_weights: dict[int, float],
                       levels: int) -> dict[str, np.ndarray]:
    """``y`` for :class:`~heatmaploss.models.HeatmapLossModel`: weighted one-hot labels and the
    irrelevant region (outside the heart) on the deepest encoder grid.

    Class weights enter as the one-hot label's magnitude: softmax cross-entropy is linear in
    the label, so ``w_c · onehot`` gives the class-weighted loss, while accuracy and the
    penalty's class selection (argmax of the label) are unchanged.
    """
    from heatmaploss.acdc_models import mask_to_grid

    weights = np.array([class_weights[c] for c in range(2)], np.float32)
    onehot = np.eye(2, dtype=np.float32)[diseased] * weights[diseased][:, None]
    outside = 1.0 - mask_to_grid(labels > 0, levels)
    return {"label": onehot, "mask": outside.astype(np.float32)}


def build_acdc_classifier(settings, loss: str, seed: int):
    """A :class:`~heatmaploss.models.HeatmapLossModel` on the ACDC encoder + dense head.

    Args:
        settings: an :class:`~heatmaploss.profiles.AcdcSettings`.
        loss: ``cross_entropy`` or ``heatmap`` (HiResCAM at the deepest encoder level, the
            outside-fraction penalty against "outside the heart", weight from settings).
        seed: seeds the initial weights.
    """
    import keras

    from heatmaploss.acdc_models import build_classifier
    from heatmaploss.losses import HeatmapLossConfig
    from heatmaploss.models import HeatmapLossModel

    if loss not in LOSSES:
        raise ValueError(f"loss={loss!r}: allowed {', '.join(LOSSES)}")
    s = settings
    keras.utils.set_random_seed(seed)
    _, encoder, head = build_classifier(s.box, s.unet_base_filters, s.unet_levels,
                                        s.classifier_dense_units, s.classifier_dropout)
    heatmap = (HeatmapLossConfig(method="hirescam", penalty="outside_fraction",
                                 weight=s.heatmap_weight) if loss == "heatmap" else None)
    model = HeatmapLossModel(encoder, head, heatmap=heatmap, name=f"acdc_{loss}")
    model.compile(optimizer=keras.optimizers.Adam(s.classifier_learning_rate))
    return model


def train_classifier(train: AcdcArrays, settings, loss: str, seed: int, models_dir: str | Path,
                     unet=None, progress: bool = False):
    """Train one normal-vs-diseased classifier (or reload the finished run).

    Every epoch sees a fresh augmentation of the training volumes (rotation, flip, elastic,
    translation, noise; masks move with the images).

    Args:
        train: training volumes with labels and groups.
        settings: an :class:`~heatmaploss.profiles.AcdcSettings`.
        loss: ``cross_entropy`` or ``heatmap``.
        seed: seeds weights, shuffling and augmentation.
        models_dir: where weights and run records are kept.
        unet: a trained U-Net whose encoder weights initialise the classifier (None: random).
        progress: show a tqdm bar over epochs.

    Returns:
        ``(model, record)``; record has ``seconds``, ``history`` and ``config``.
    """
    from tqdm.auto import tqdm

    from heatmaploss.acdc_models import balanced_class_weights, transfer_encoder_weights

    s = settings
    model = build_acdc_classifier(s, loss, seed)
    config = {"kind": "classifier", "loss": loss, "seed": seed, "n_train": len(train.images),
              "from_unet": unet is not None, **asdict(s)}
    name = f"acdc_classifier_{loss}_seed{seed}"
    done = load_finished(model, Path(models_dir), name, config)
    if done is not None:
        return model, done
    if unet is not None:
        transfer_encoder_weights(unet, model.backbone)
    weights = balanced_class_weights(train.diseased)
    history: dict[str, list[float]] = {}
    start = time.perf_counter()
    for epoch in tqdm(range(s.classifier_epochs), desc=f"classifier ({loss})", unit="epoch",
                      disable=not progress):
        x, labels = augmented(train, seed=seed * 100_003 + 7 * epoch + 1)
        y = classifier_targets(labels, train.diseased, weights, s.unet_levels)
        h = model.fit(x, y, batch_size=s.classifier_batch_size, epochs=1, verbose=0,
                      shuffle=True)
        for key, values in h.history.items():
            history.setdefault(key, []).extend(float(v) for v in values)
    record = {"config": config, "seconds": time.perf_counter() - start, "history": history,
              "class_weights": weights}
    save_finished(model, Path(models_dir), name, record)
    return model, record


def hirescam_maps(model, images: np.ndarray, class_index: np.ndarray) -> np.ndarray:
    """HiResCAM (ReLU) at the deepest encoder level, (N, x, y, z)."""
    from heatmaploss.attribution import compute_maps

    return compute_maps(model, images, class_index, "hirescam", batch_size=8)


def evaluate_classifier(model, arrays: AcdcArrays, levels: int) -> dict:
    """Balanced accuracy (per volume and per patient) and HiResCAM mass inside the heart.

    The map explains the predicted class (as in the thesis); its mass inside the heart is
    ``Σ h · heart / Σ h`` on the deepest grid, with ``heart`` the share of each cell covered
    by the ground-truth labels (volumes whose map is all zero are left out of the mean).

    Returns:
        Dict with ``balanced_accuracy``, ``patient_balanced_accuracy``, ``heart_fraction``,
        ``empty_maps`` (share of all-zero maps), ``probabilities`` and ``maps``.
    """
    from heatmaploss.acdc_models import mask_to_grid

    logits = np.concatenate([np.asarray(model.predict_on_batch(arrays.images[i:i + 8]))
                             for i in range(0, len(arrays.images), 8)])
    prob = np.exp(logits - logits.max(axis=1, keepdims=True))
    prob = (prob / prob.sum(axis=1, keepdims=True))[:, 1]
    truth = arrays.diseased
    maps = hirescam_maps(model, arrays.images, (prob > 0.5).astype(np.int32))
    total = maps.reshape(len(maps), -1).sum(axis=1)
    heart = mask_to_grid(arrays.labels > 0, levels) if arrays.labels is not None else None
    fraction = (np.full(len(maps), np.nan) if heart is None else
                (maps * heart).reshape(len(maps), -1).sum(axis=1) / np.where(total > 0, total, np.nan))
    patients = np.unique(arrays.numbers)
    p_prob = np.array([prob[arrays.numbers == n].mean() for n in patients])
    p_truth = np.array([truth[arrays.numbers == n][0] for n in patients])
    return {"balanced_accuracy": balanced_accuracy(truth, prob > 0.5),
            "patient_balanced_accuracy": balanced_accuracy(p_truth, p_prob > 0.5),
            "heart_fraction": float(np.nanmean(fraction)) if np.isfinite(fraction).any() else float("nan"),
            "empty_maps": float(np.mean(total <= 0)), "probabilities": prob, "maps": maps}


def compare_classifiers(train: AcdcArrays, evaluation: dict[str, AcdcArrays], settings,
                        seed: int, models_dir: str | Path, unet=None, progress: bool = False):
    """Train ``settings.classifier_seeds`` classifiers per loss and evaluate each.

    Args:
        train: training volumes.
        evaluation: name → volumes (e.g. ``{"validation": ..., "test": ...}``).
        settings: an :class:`~heatmaploss.profiles.AcdcSettings`.
        seed: base seed; model k of each loss uses ``seed + k``.
        models_dir: where weights and run records are kept.
        unet: trained U-Net whose encoder initialises every classifier (or None).
        progress: show tqdm bars.

    Returns:
        ``(results, maps)``: a DataFrame with one row per (loss, seed, evaluation set)
        holding ``seconds`` (training wall time), ``balanced_accuracy``,
        ``patient_balanced_accuracy``, ``heart_fraction`` and ``empty_maps``; and, per loss,
        the first model's HiResCAM maps on the first evaluation set.
    """
    import pandas as pd

    rows, maps = [], {}
    for loss in LOSSES:
        for k in range(settings.classifier_seeds):
            model, record = train_classifier(train, settings, loss, seed + k, models_dir, unet,
                                             progress=progress)
            for name, arrays in evaluation.items():
                result = evaluate_classifier(model, arrays, settings.unet_levels)
                if k == 0 and loss not in maps:
                    maps[loss] = result["maps"]
                rows.append({"loss": loss, "seed": seed + k, "set": name,
                             "seconds": record["seconds"], "epochs": settings.classifier_epochs,
                             **{key: result[key] for key in (
                                 "balanced_accuracy", "patient_balanced_accuracy",
                                 "heart_fraction", "empty_maps")}})
    return pd.DataFrame(rows), maps


def balanced_accuracy(truth: np.ndarray, predicted: np.ndarray) -> float:
    """Mean of the per-class recalls (classes present in ``truth``)."""
    truth, predicted = np.asarray(truth).astype(int), np.asarray(predicted).astype(int)
    return float(np.mean([np.mean(predicted[truth == c] == c) for c in np.unique(truth)]))



__all__ = ["LOSSES", "balanced_accuracy", "build_acdc_classifier", "classifier_targets",
           "compare_classifiers", "evaluate_classifier", "hirescam_maps", "train_classifier"]
