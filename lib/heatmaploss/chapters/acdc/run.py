"""The ACDC chapter, running it: data, the U-Net, the encoder classifiers — through the study runner.

    data = run.load_data(ctx, acdc_root)          # the fixture when acdc_root is empty
    unet = run.train_unet(ctx, data)              # 3-D U-Net, Dice on the validation patients
    result = run.diagnose(ctx, data, unet)        # random forest on measurements of the masks

The U-Net is a study of :mod:`heatmaploss.runs.study`: trained with recording inside the
trial, evaluated once, resumed after an interruption; with ``unet_augment`` every epoch sees a
fresh augmentation of the training volumes (:class:`VolumeBatches`). The classifiers on its
encoder are trained by :mod:`.classifiers`.
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
from .data import AcdcArrays, augmented, prepare_arrays
from .plan import unet_spec


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
        identity: what names the data in the networks' fingerprints: the fixture's preset
            and seed (not its folder, so that a run in another results folder trains the same
            networks), or the real data's folder.
    """

    root: Path
    source: str
    training: list
    testing: list
    train: AcdcArrays
    evaluation: dict[str, AcdcArrays]
    identity: str = ""

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
        return {"source": self.source, "root": self.identity or str(self.root),
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
    identity = (f"fixture preset={settings.fixture_preset} seed={ctx.seed}"
                if source == "fixture" else str(root))
    training = acdc.load_patients(root, "training")
    testing = acdc.load_patients(root, "testing")
    arrays = prepare_arrays(training, settings.target_spacing, settings.box,
                            progress=ctx.progress)
    evaluation = {"validation": arrays.subset(arrays.validation)}
    if testing and all(p.has_labels and p.group for p in testing):
        evaluation["test"] = prepare_arrays(testing, settings.target_spacing, settings.box)
    return AcdcData(root, source, training, testing, arrays.subset(~arrays.validation),
                    evaluation, identity)


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


# -- diagnosis from the segmentation --------------------------------------------------------

def diagnose(ctx: RunContext, data: AcdcData, unet: UnetResult) -> Any:
    """Diagnose the five groups from measurements on the masks (:mod:`.diagnosis`).

    Two pipelines: every measurement from the U-Net's predicted masks (training patients
    included: their masks are predicted too, so the forest learns the U-Net's systematic
    errors), and every measurement from the ground-truth masks. Masks are measured on the
    network's grid (``target_spacing``).

    Returns:
        The :class:`~heatmaploss.chapters.acdc.diagnosis.DiagnosisResult`.
    """
    from . import diagnosis

    s = ctx.profile.acdc
    patients = {p.number: p for p in data.training + data.testing}

    def tables(arrays: AcdcArrays, predicted: np.ndarray) -> dict:
        return {source: diagnosis.feature_table(arrays, masks, patients, s.target_spacing)
                for source, masks in (("predicted", predicted), ("ground_truth", arrays.labels))}

    train = tables(data.train, predict_labels(unet.model, data.train.images))
    evaluation = {name: tables(arrays, unet.predicted if name == "validation"
                               else predict_labels(unet.model, arrays.images))
                  for name, arrays in data.evaluation.items()}
    return diagnosis.diagnose(train, evaluation, seed=derive_seed("acdc-forest", ctx.seed),
                              n_trees=s.diagnosis_trees)


__all__ = ["AcdcData", "UnetResult", "VolumeBatches", "build_unet", "diagnose", "evaluate_unet",
           "load_data", "predict_labels", "train_unet", "unet_data"]
