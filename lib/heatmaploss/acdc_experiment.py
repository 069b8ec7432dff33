"""The ACDC chapter's segmentation experiment: arrays from patients, U-Net training and Dice.

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


def load_finished(model, models_dir: Path, name: str, config: dict) -> dict | None:
    """Load the weights and run record ``name`` if it was finished with this ``config``."""
    weights, record = _run_files(models_dir, name)
    if weights.is_file() and record.is_file():
        saved = json.loads(record.read_text())
        if saved.get("config") == json.loads(json.dumps(io.to_jsonable(config))):
            model.load_weights(weights)
            return saved
    return None


def save_finished(model, models_dir: Path, name: str, record: dict) -> None:
    """Save weights and run record ``name`` atomically (the record is written last)."""
    weights, path = _run_files(models_dir, name)
    with io.atomic_path(weights, suffix=".weights.h5") as tmp:
        model.save_weights(tmp)
    io.write_json(path, record)


def unet_settings(settings) -> dict:
    """The settings a U-Net depends on (classifier settings may change without retraining it)."""
    return {k: v for k, v in asdict(settings).items()
            if k.startswith("unet_") or k in ("fixture_preset", "target_spacing", "box")}


def _config_tag(config: dict) -> str:
    """Short digest of a configuration: part of registry search names, so a run with other
    settings becomes a new search instead of a conflict with the recorded one."""
    import hashlib

    text = json.dumps(io.to_jsonable(config), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


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
    config = {"kind": "unet", "seed": seed, "n_train": len(train.images), **unet_settings(s)}
    keras.utils.set_random_seed(seed)
    model = compile_unet(build_unet(s.box, s.unet_base_filters, s.unet_levels),
                         s.unet_learning_rate, s.unet_warmup_steps)
    name = f"acdc_unet_seed{seed}"
    done = load_finished(model, Path(models_dir), name, config)
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
    save_finished(model, Path(models_dir), name, record)
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


def record_in_registry(results_dir: str | Path, profile: str, source: str, settings,
                       unet_record: dict, dice, classifiers) -> list[int]:
    """Record the U-Net and every classifier (wall times, accuracies, metrics) in the registry.

    Args:
        results_dir: the profile's results folder (default SQLite file) — or set
            ``$HEATMAPLOSS_DATABASE_URL``.
        profile: run profile.
        source: ``fixture`` (synthetic) or ``acdc`` (real data); part of the search names
            (with a digest of the settings), so sources and settings never mix.
        settings: the :class:`~heatmaploss.profiles.AcdcSettings` used.
        unet_record: from :func:`train_unet`.
        dice: validation Dice per volume (:func:`segmentation_scores`).
        classifiers: results of :func:`heatmaploss.acdc_classifier.compare_classifiers`.

    Returns:
        The model ids written.
    """
    from heatmaploss.registry import Registry

    config = io.to_jsonable(asdict(settings))
    unet_config = io.to_jsonable(unet_settings(settings))
    ids = []
    with Registry(results_dir=results_dir) as registry:
        search = registry.get_or_create_search(
            experiment="acdc_segmentation", protocol="baumgartner", group="unet",
            name=f"acdc_unet_{source}_{_config_tag(unet_config)}", profile=profile,
            loss_config=unet_config)
        rows = [{"dataset": "validation", "metric": f"dice_{k.lower()}",
                 "value": float(dice[k].mean()), "n": int(dice[k].notna().sum())}
                for k in ("RV", "MYO", "LV", "mean")]
        ids.append(registry.record_model(
            search, f"seed{unet_record['config']['seed']}", seed=unet_record["config"]["seed"],
            epochs=settings.unet_epochs, wall_time_s=unet_record["seconds"], metrics=rows,
            scores={"mean_dice": float(dice["mean"].mean())}))
        for (loss, seed), runs in classifiers.groupby(["loss", "seed"]):
            search = registry.get_or_create_search(
                experiment="acdc_classifier", protocol="controlled", group=loss,
                name=f"acdc_classifier_{loss}_{source}_{_config_tag(config)}", profile=profile,
                loss_config=config)
            by_set = {r["set"]: r for r in runs.to_dict("records")}
            rows = [{"dataset": name, "metric": metric, "value": r[metric],
                     "explainer": "hirescam" if metric == "heart_fraction" else "",
                     "region": "heart" if metric == "heart_fraction" else ""}
                    for name, r in by_set.items()
                    for metric in ("balanced_accuracy", "patient_balanced_accuracy",
                                   "heart_fraction", "empty_maps")]
            first = runs.iloc[0]
            ids.append(registry.record_model(
                search, f"seed{seed}", seed=int(seed), epochs=int(first["epochs"]),
                wall_time_s=float(first["seconds"]),
                val_accuracy=by_set.get("validation", {}).get("balanced_accuracy"),
                test_accuracy=by_set.get("test", {}).get("balanced_accuracy"), metrics=rows))
    return ids


def summary_part(source: str, root: str | Path, n_training: int, n_testing: int, settings,
                 unet_record: dict, dice, classifiers, chapter_seconds: float) -> dict:
    """The chapter's entry in ``summary.json`` (key ``acdc``).

    Args:
        source: ``"fixture"`` (synthetic ACDC-format data) or ``"acdc"`` (real data).
        root: the ACDC folder read.
        n_training, n_testing: patients per split.
        settings: the profile's ``AcdcSettings``.
        unet_record: :func:`train_unet`'s record (``seconds``).
        dice: :func:`segmentation_scores` of the validation volumes.
        classifiers: one row per classifier × evaluation set (``set``, ``loss``, ``seed``,
            metrics), as returned by ``acdc_classifier.compare_classifiers``.
        chapter_seconds: wall time of the whole chapter.

    Returns:
        ``{"acdc": {...}}`` with data description, U-Net Dice and time, and the classifiers'
        mean metrics per ``<set>/<loss>``.
    """
    means = classifiers.groupby(["set", "loss"]).mean(numeric_only=True).drop(columns="seed")
    return {"acdc": {
        "data": source, "root": str(root), "n_training_patients": n_training,
        "n_testing_patients": n_testing, "box": settings.box,
        "target_spacing": settings.target_spacing,
        "unet": {"seconds": unet_record["seconds"], "epochs": settings.unet_epochs,
                 "validation_dice": dice[["RV", "MYO", "LV", "mean"]].mean().to_dict()},
        "classifier": {f"{s}/{l}": row for (s, l), row in means.to_dict("index").items()},
        "chapter_seconds": chapter_seconds,
    }}


__all__ = ["AcdcArrays", "augmented", "load_finished", "predict_labels", "prepare_arrays",
           "record_in_registry", "save_finished", "segmentation_scores", "summary_part", "train_unet",
           "unet_settings"]
