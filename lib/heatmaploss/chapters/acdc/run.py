"""The ACDC chapter, running it: data, the U-Net, the encoder classifiers — through the study runner.

    data = run.load_data(ctx, acdc_root)          # the fixture when acdc_root is empty
    unet = run.train_unet(ctx, data)              # 3-D U-Net, Dice on the validation patients
    classifiers = run.train_classifiers(ctx, data, unet)   # per loss, per seed, per set

Both kinds of network are studies of :mod:`heatmaploss.runs.study`: trained with recording
inside the trial, evaluated once, resumed after an interruption. Every epoch of a network sees
a fresh augmentation of the training volumes (:class:`VolumeBatches`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import keras
import numpy as np
import pandas as pd

from ... import acdc
from ...acdc import fixture
from ...project.context import RunContext
from ...runs.spec import derive_seed
from ...runs.study import Evaluation, Study
from . import analysis, networks
from .data import AcdcArrays, augmented, mask_to_grid, prepare_arrays
from .plan import LOSSES, classifier_spec, unet_spec


@dataclass
class AcdcData:
    """The chapter's patients and preprocessed volumes.

    Attributes:
        root: the folder read (the fixture's, or ``acdc_root``).
        source: ``fixture`` (synthetic ACDC-format data) or ``acdc``.
        training, testing: the patients of each split.
        train: training volumes (patients with id % 5 != 0).
        evaluation: name → volumes the models are scored on (``validation``: id % 5 == 0;
            ``test``: the testing split when it has masks and groups).
    """

    root: Path
    source: str
    training: list
    testing: list
    train: AcdcArrays
    evaluation: dict[str, AcdcArrays]

    @property
    def validation(self) -> AcdcArrays:
        return self.evaluation["validation"]

    def note(self) -> str:
        """One paragraph saying which data this is (the fixture is made-up anatomy)."""
        sizes = (f"training volumes {len(self.train.images)}, validation volumes "
                 f"{len(self.validation.images)}, test volumes "
                 f"{len(self.evaluation['test'].images) if 'test' in self.evaluation else 0}")
        if self.source == "fixture":
            return (f"NOTE: no acdc_root given - using the SYNTHETIC ACDC-format fixture at "
                    f"{self.root}.\nEvery number in this notebook is about synthetic data, not "
                    f"real patients.\n{sizes}")
        return f"ACDC data from {self.root}\n{sizes}"

    def describe(self) -> dict:
        """What the networks are trained and scored on (part of their search fingerprints)."""
        return {"source": self.source, "root": str(self.root),
                "train_patients": sorted({int(n) for n in self.train.numbers}),
                "evaluation": {k: len(v.images) for k, v in self.evaluation.items()}}


def load_data(ctx: RunContext, acdc_root: str = "") -> AcdcData:
    """Read (writing the fixture first when ``acdc_root`` is empty) and preprocess the data."""
    settings = ctx.profile.acdc
    if acdc_root:
        root, source = Path(acdc_root), "acdc"
    else:
        root = fixture.write_fixture(ctx.out.data / f"acdc_fixture_{settings.fixture_preset}",
                                     settings.fixture_preset, seed=ctx.seed,
                                     progress=ctx.progress)
        source = "fixture"
    training = acdc.load_patients(root, "training")
    testing = acdc.load_patients(root, "testing")
    arrays = prepare_arrays(training, settings.target_spacing, settings.box,
                            progress=ctx.progress)
    evaluation = {"validation": arrays.subset(arrays.validation)}
    if testing and all(p.has_labels and p.group for p in testing):
        evaluation["test"] = prepare_arrays(testing, settings.target_spacing, settings.box)
    return AcdcData(root, source, training, testing, arrays.subset(~arrays.validation),
                    evaluation)


class VolumeBatches(keras.utils.PyDataset):
    """Batches of volumes and their targets, re-augmented (and reshuffled) every epoch.

    Args:
        arrays: the volumes (with labels).
        targets: ``targets(labels)`` → ``y`` of the whole set (an array or a dict of arrays),
            from the (augmented) label volumes.
        batch_size: volumes per batch.
        seed: seeds the augmentation and the order of every epoch.
        augment: augment every epoch (else the volumes as they are).
        shuffle: a new order every epoch.
    """

    def __init__(self, arrays: AcdcArrays, targets: Callable[[np.ndarray], Any],
                 batch_size: int, seed: int, augment: bool, shuffle: bool) -> None:
        super().__init__()
        self.arrays, self.targets = arrays, targets
        self.batch_size, self.seed = int(batch_size), int(seed)
        self.augment, self.shuffle = augment, shuffle
        self.epoch = 0
        self._prepare()

    def _prepare(self) -> None:
        if self.augment:
            self.x, labels = augmented(self.arrays, seed=derive_seed("augment", self.seed,
                                                                     self.epoch))
        else:
            self.x, labels = self.arrays.images, self.arrays.labels
        self.y = self.targets(labels)
        n = len(self.x)
        self.order = (np.random.default_rng(derive_seed("order", self.seed, self.epoch))
                      .permutation(n) if self.shuffle else np.arange(n))

    def __len__(self) -> int:
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, index: int) -> tuple:
        rows = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        y = ({k: v[rows] for k, v in self.y.items()} if isinstance(self.y, dict)
             else self.y[rows])
        return self.x[rows], y

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self._prepare()


# -- the U-Net --------------------------------------------------------------------------------

def build_unet(ctx: RunContext, learning_rate: float) -> Any:
    """A compiled 3-D U-Net of the profile's size."""
    s = ctx.profile.acdc
    return networks.compile_unet(networks.build_unet(s.box, s.unet_base_filters, s.unet_levels),
                                 learning_rate, s.unet_warmup_steps)


def unet_data(data: AcdcData, ctx: RunContext, shuffle_seed: int) -> tuple:
    """Training batches (augmented every epoch when the profile says so) and validation."""
    s = ctx.profile.acdc
    train = VolumeBatches(data.train, np.asarray, s.unet_batch_size, shuffle_seed,
                          augment=s.unet_augment, shuffle=True)
    val = VolumeBatches(data.validation, np.asarray, s.unet_batch_size, shuffle_seed,
                        augment=False, shuffle=False)
    return train, val


def predict_labels(model: Any, images: np.ndarray, batch_size: int = 4) -> np.ndarray:
    """Argmax label volumes (N, X, Y, Z) uint8 of a segmentation model."""
    out = [np.argmax(model.predict_on_batch(images[i:i + batch_size]), axis=-1)
           for i in range(0, len(images), batch_size)]
    return np.concatenate(out).astype(np.uint8)


def evaluate_unet(data: AcdcData, model: Any) -> Evaluation:
    """Mean Dice per structure on every evaluation set; voxel accuracy as the headline."""
    rows, headline = [], float("nan")
    for name, arrays in data.evaluation.items():
        predicted = predict_labels(model, arrays.images)
        dice = analysis.segmentation_scores(predicted, arrays)
        rows += [{"dataset": name, "metric": f"dice_{k.lower()}", "value": float(dice[k].mean()),
                  "n": int(dice[k].notna().sum())} for k in ("RV", "MYO", "LV", "mean")]
        accuracy = float(np.mean(predicted == arrays.labels))
        rows.append({"dataset": name, "metric": "voxel_accuracy", "value": accuracy,
                     "n": int(predicted.size)})
        if name == "validation":
            headline = accuracy
    return Evaluation(rows, headline)


@dataclass
class UnetResult:
    """The trained U-Net, its registry row and its validation Dice per volume."""

    model: Any
    record: dict
    predicted: np.ndarray
    dice: pd.DataFrame
    key: str


def train_unet(ctx: RunContext, data: AcdcData) -> UnetResult:
    """Train (or reuse) the U-Net and score it on the validation volumes."""
    from ...models import load_model
    from ...registry import Registry
    from ...runs.study import run_study

    spec = unet_spec(ctx.profile, ctx.seed, data.source, data.describe())
    study = Study(spec=spec, build_model=functools.partial(build_unet, ctx),
                  make_data=functools.partial(unet_data, data, ctx),
                  evaluate=functools.partial(evaluate_unet, data), label="U-Net")
    with Registry(url=ctx.database_url, results_dir=ctx.results) as registry:
        search_id = run_study(study, registry, ctx.out, ctx.progress)
        record = registry.models(search_id=search_id).iloc[0].to_dict()
    model = load_model(ctx.results / record["model_path"])
    predicted = predict_labels(model, data.validation.images)
    return UnetResult(model, record, predicted,
                      analysis.segmentation_scores(predicted, data.validation), spec.key)


# -- the classifiers --------------------------------------------------------------------------

def classifier_targets(labels: np.ndarray, diseased: np.ndarray, class_weights: dict[int, float],
                       levels: int) -> dict[str, np.ndarray]:
    """``y`` for :class:`~heatmaploss.models.HeatmapLossModel`: weighted one-hot labels and the
    irrelevant region (outside the heart) on the deepest encoder grid.

    Class weights enter as the one-hot label's magnitude: softmax cross-entropy is linear in
    the label, so ``w_c · onehot`` gives the class-weighted loss, while accuracy and the
    penalty's class selection (argmax of the label) are unchanged.
    """
    weights = np.array([class_weights[c] for c in range(2)], np.float32)
    onehot = np.eye(2, dtype=np.float32)[diseased] * weights[diseased][:, None]
    outside = 1.0 - mask_to_grid(labels > 0, levels)
    return {"label": onehot, "mask": outside.astype(np.float32)}


def build_classifier(ctx: RunContext, loss: str, unet_path: Path, learning_rate: float) -> Any:
    """A compiled classifier: the U-Net's encoder (its trained weights) + a dense head."""
    from ...losses import HeatmapLossConfig
    from ...models import HeatmapLossModel, load_model

    s = ctx.profile.acdc
    _, encoder, head = networks.build_classifier(s.box, s.unet_base_filters, s.unet_levels,
                                                 s.classifier_dense_units, s.classifier_dropout)
    networks.transfer_encoder_weights(load_model(unet_path), encoder)
    heatmap = (HeatmapLossConfig(method="hirescam", penalty="outside_fraction",
                                 weight=s.heatmap_weight) if loss == "heatmap" else None)
    model = HeatmapLossModel(encoder, head, heatmap=heatmap, name=f"acdc_{loss}")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate))
    return model


def classifier_data(data: AcdcData, ctx: RunContext, shuffle_seed: int) -> tuple:
    """Augmented, class-weighted training batches and the validation volumes."""
    s = ctx.profile.acdc
    weights = networks.balanced_class_weights(data.train.diseased)

    def targets(arrays: AcdcArrays) -> Callable[[np.ndarray], dict]:
        return lambda labels: classifier_targets(labels, arrays.diseased, weights, s.unet_levels)

    train = VolumeBatches(data.train, targets(data.train), s.classifier_batch_size,
                          shuffle_seed, augment=True, shuffle=True)
    val = VolumeBatches(data.validation, targets(data.validation), s.classifier_batch_size,
                        shuffle_seed, augment=False, shuffle=False)
    return train, val


def hirescam_maps(model: Any, images: np.ndarray, class_index: np.ndarray) -> np.ndarray:
    """HiResCAM (ReLU) at the deepest encoder level, (N, x, y, z)."""
    from ...attribution import compute_maps

    return compute_maps(model, images, class_index, "hirescam", batch_size=8)


def classifier_scores(model: Any, arrays: AcdcArrays, levels: int) -> dict:
    """Balanced accuracy (per volume and per patient) and HiResCAM mass inside the heart.

    The map explains the predicted class (as in the thesis); its mass inside the heart is
    ``Σ h · heart / Σ h`` on the deepest grid, with ``heart`` the share of each cell covered
    by the ground-truth labels (volumes whose map is all zero are left out of the mean and
    counted in ``empty_maps``).
    """
    logits = np.concatenate([np.asarray(model.predict_on_batch(arrays.images[i:i + 8]))
                             for i in range(0, len(arrays.images), 8)])
    prob = np.exp(logits - logits.max(axis=1, keepdims=True))
    prob = (prob / prob.sum(axis=1, keepdims=True))[:, 1]
    maps = hirescam_maps(model, arrays.images, (prob > 0.5).astype(np.int32))
    heart = mask_to_grid(arrays.labels > 0, levels) if arrays.labels is not None else None
    return {**analysis.classifier_metrics(prob, arrays.diseased, arrays.numbers, maps, heart),
            "maps": maps}


def evaluate_classifier(data: AcdcData, levels: int, model: Any) -> Evaluation:
    """Every evaluation set's metrics; the headline is the test (else validation) balanced
    accuracy."""
    rows, by_set = [], {}
    for name, arrays in data.evaluation.items():
        scores = classifier_scores(model, arrays, levels)
        by_set[name] = scores["balanced_accuracy"]
        rows += [{"dataset": name, "metric": metric, "value": scores[metric],
                  "explainer": "hirescam" if metric == "heart_fraction" else "",
                  "region": "heart" if metric == "heart_fraction" else ""}
                 for metric in analysis.CLASSIFIER_METRICS]
    return Evaluation(rows, by_set.get("test", by_set["validation"]))


def train_classifiers(ctx: RunContext, data: AcdcData, unet: UnetResult) -> pd.DataFrame:
    """Train (or reuse) ``classifier_seeds`` classifiers per loss and score each.

    Returns:
        One row per (loss, seed, evaluation set) with ``seconds`` (training wall time), the
        metrics of :data:`~heatmaploss.chapters.acdc.analysis.CLASSIFIER_METRICS` and the
        model's path (see :func:`~heatmaploss.chapters.acdc.analysis.classifier_table`).
    """
    from ...registry import Registry
    from ...runs.study import run_studies

    s = ctx.profile.acdc
    studies = [Study(
        spec=classifier_spec(ctx.profile, ctx.seed, data.source, loss, data.describe(),
                             unet.key),
        build_model=functools.partial(build_classifier, ctx, loss,
                                      ctx.results / unet.record["model_path"]),
        make_data=functools.partial(classifier_data, data, ctx),
        evaluate=functools.partial(evaluate_classifier, data, s.unet_levels),
        label=f"classifier ({loss})") for loss in LOSSES]
    with Registry(url=ctx.database_url, results_dir=ctx.results) as registry:
        ids = run_studies(studies, registry, ctx.out, ctx.progress)
        return analysis.classifier_table(registry, {s.spec.group: ids[s.spec.key]
                                                    for s in studies})


__all__ = ["AcdcData", "UnetResult", "VolumeBatches", "build_classifier", "build_unet",
           "classifier_data", "classifier_scores", "classifier_targets", "evaluate_classifier",
           "evaluate_unet", "hirescam_maps", "load_data", "predict_labels", "train_classifiers",
           "train_unet", "unet_data"]
