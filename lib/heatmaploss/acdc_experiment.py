"""The ACDC chapter's experiments: arrays from patients, U-Net training and Dice, classifiers.

Everything here is called by ``notebooks/05_acdc.ipynb``; sizes come from
:class:`heatmaploss.profiles.AcdcSettings`. Trained weights and per-run results are saved under
the results folder and reused when a run is repeated with the same settings.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from heatmaploss import io
from heatmaploss.acdc import PHASES, AcdcPatient
from heatmaploss.acdc_preprocess import Augmentation, augment_pair, preprocess_pair

LOSSES = ("cross_entropy", "heatmap")


@dataclass
class AcdcArrays:
    """Preprocessed volumes, one row per (patient, phase).

    Attributes:
        images: (N, X, Y, Z, 1) float32, z-scored.
        labels: (N, X, Y, Z) uint8, or None when the split has no masks.
        numbers: patient ids.
        groups: diagnosis per row (None without a group).
        phases: "ED"/"ES" per row.
    """

    images: np.ndarray
    labels: np.ndarray | None
    numbers: np.ndarray
    groups: np.ndarray
    phases: np.ndarray

    def subset(self, keep: np.ndarray) -> "AcdcArrays":
        """Rows where ``keep`` is true."""
        return AcdcArrays(self.images[keep], None if self.labels is None else self.labels[keep],
                          self.numbers[keep], self.groups[keep], self.phases[keep])

    @property
    def validation(self) -> np.ndarray:
        """Rows of validation patients (id % 5 == 0)."""
        return self.numbers % 5 == 0

    @property
    def diseased(self) -> np.ndarray:
        """Binary class per row: 0 normal (NOR), 1 diseased (the four other groups)."""
        return np.array([g != "NOR" for g in self.groups], dtype=np.int64)


def prepare_arrays(patients: list[AcdcPatient], target_spacing, box,
                   progress: bool = False) -> AcdcArrays:
    """Read, z-score, resample and crop the ED and ES volumes (and masks) of ``patients``.

    Returns:
        The stacked arrays; labels are included when every patient has them.
    """
    from tqdm.auto import tqdm

    with_labels = all(p.has_labels for p in patients)
    images, labels, numbers, groups, phases = [], [], [], [], []
    for p in tqdm(patients, desc="preprocess", unit="patient", disable=not progress):
        for phase in PHASES:
            img, lab = preprocess_pair(p.image(phase), p.label(phase) if with_labels else None,
                                       p.spacing, target_spacing, box)
            images.append(img[..., None])
            labels.append(lab)
            numbers.append(p.number)
            groups.append(p.group)
            phases.append(phase)
    return AcdcArrays(np.stack(images), np.stack(labels) if with_labels else None,
                      np.array(numbers), np.array(groups, dtype=object), np.array(phases))


def augmented(arrays: AcdcArrays, seed: int, settings: Augmentation = Augmentation()):
    """One augmented copy of ``arrays.images``/``labels`` (row i drawn with seed (seed, i))."""
    images = np.empty_like(arrays.images)
    labels = None if arrays.labels is None else np.empty_like(arrays.labels)
    for i in range(len(arrays.images)):
        img, lab = augment_pair(arrays.images[i], None if labels is None else arrays.labels[i],
                                seed=[seed, i], settings=settings)
        images[i] = img
        if labels is not None:
            labels[i] = lab
    return images, labels


def _run_files(models_dir: Path, name: str) -> tuple[Path, Path]:
    return models_dir / f"{name}.weights.h5", models_dir / f"{name}.json"


def _load_finished(model, models_dir: Path, name: str, config: dict) -> dict | None:
    weights, record = _run_files(models_dir, name)
    if weights.is_file() and record.is_file():
        saved = json.loads(record.read_text())
        if saved.get("config") == json.loads(json.dumps(io.to_jsonable(config))):
            model.load_weights(weights)
            return saved
    return None


def _save_finished(model, models_dir: Path, name: str, record: dict) -> None:
    weights, path = _run_files(models_dir, name)
    with io.atomic_path(weights) as tmp:
        model.save_weights(tmp)
    io.write_json(path, record)


def train_unet(train: AcdcArrays, settings, seed: int, models_dir: str | Path,
               progress: bool = False):
    """Train the 3-D U-Net on ``train`` (or reload the finished run with the same settings).

    Args:
        train: training volumes with labels.
        settings: an :class:`~heatmaploss.profiles.AcdcSettings`.
        seed: seeds weights, shuffling and augmentation.
        models_dir: where weights and the run record are kept.
        progress: show a tqdm bar over epochs.

    Returns:
        ``(model, record)``; record has ``seconds`` (training wall time), ``history`` (loss
        per epoch) and ``config``.
    """
    import keras
    from tqdm.auto import tqdm

    from heatmaploss.acdc_models import build_unet, compile_unet

    s = settings
    config = {"kind": "unet", "seed": seed, "n_train": len(train.images), **asdict(s)}
    keras.utils.set_random_seed(seed)
    model = compile_unet(build_unet(s.box, s.unet_base_filters, s.unet_levels),
                         s.unet_learning_rate, s.unet_warmup_steps)
    name = f"acdc_unet_seed{seed}"
    done = _load_finished(model, Path(models_dir), name, config)
    if done is not None:
        return model, done
    history: dict[str, list[float]] = {}
    start = time.perf_counter()
    for epoch in tqdm(range(s.unet_epochs), desc="U-Net", unit="epoch", disable=not progress):
        if s.unet_augment:
            x, y = augmented(train, seed=seed * 100_003 + epoch)
        else:
            x, y = train.images, train.labels
        h = model.fit(x, y, batch_size=s.unet_batch_size, epochs=1, verbose=0, shuffle=True)
        for key, values in h.history.items():
            history.setdefault(key, []).extend(float(v) for v in values)
    record = {"config": config, "seconds": time.perf_counter() - start, "history": history}
    _save_finished(model, Path(models_dir), name, record)
    return model, record


def predict_labels(model, images: np.ndarray, batch_size: int = 4) -> np.ndarray:
    """Argmax label volumes (N, X, Y, Z) uint8 of a segmentation model."""
    out = []
    for i in range(0, len(images), batch_size):
        out.append(np.argmax(model.predict_on_batch(images[i:i + batch_size]), axis=-1))
    return np.concatenate(out).astype(np.uint8)


def segmentation_scores(predicted: np.ndarray, arrays: AcdcArrays):
    """Dice per structure for each volume, as a DataFrame (patient, group, phase, RV, MYO, LV)."""
    import pandas as pd

    from heatmaploss.acdc_models import dice_scores

    rows = []
    for i in range(len(predicted)):
        rows.append({"patient": int(arrays.numbers[i]), "group": arrays.groups[i],
                     "phase": arrays.phases[i], **dice_scores(predicted[i], arrays.labels[i])})
    frame = pd.DataFrame(rows)
    frame["mean"] = frame[["RV", "MYO", "LV"]].mean(axis=1)
    return frame


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
    done = _load_finished(model, Path(models_dir), name, config)
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
    _save_finished(model, Path(models_dir), name, record)
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


__all__ = ["LOSSES", "AcdcArrays", "augmented", "balanced_accuracy", "build_acdc_classifier",
           "classifier_targets", "compare_classifiers", "evaluate_classifier", "hirescam_maps", "predict_labels",
           "prepare_arrays", "segmentation_scores", "train_classifier", "train_unet"]
