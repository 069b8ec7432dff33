"""The ACDC chapter's classifiers: a head on the U-Net's frozen encoder, trained per task
(normal vs diseased, five groups) and loss (cross-entropy, heatmap loss) through the study
runner.

    results = train_classifiers(ctx, data, unet)   # results.table: one row per (task, loss,
                                                   # seed, evaluation set)

The protocol (``docs/acdc.md`` § The chapter's classifiers says what each choice fixes):

* one sample per **patient**: its ED and ES volumes, one shared encoder, their deepest feature
  maps side by side (:func:`~.networks.build_pair_backbone`);
* the encoder keeps the trained U-Net's weights (**frozen**), so its features are computed
  once — for the training patients as they are and for ``classifier_augmentations`` augmented
  copies (both phases of a patient get the same draw) — and every model trains its head on
  the stored features (:func:`~.networks.feature_backbone`);
* a **pooled head** (:func:`~.networks.build_pooled_head`);
* **class-balanced sampling** every epoch (the minority classes drawn again) instead of class
  weights: a weight written into the label's magnitude, as the first version of this chapter
  did, does not weight the loss's gradient — TensorFlow's softmax cross-entropy returns
  ``softmax − label``, right only for labels that sum to 1: a diseased patient (label 0.625)
  stopped pulling at P(diseased) = 0.81 while a normal one (2.5) never stopped pulling;
* the heatmap loss: HiResCAM at the backbone's output must fall inside the heart (ED or ES,
  from the ground-truth masks of the same augmented copy).

The saved model is the whole classifier (pair encoder + head), so it is scored on images:
balanced accuracy, HiResCAM's share inside the heart and its share of empty maps, and the same
two for input-gradient saliency — the held-out explainer (with a pooled head Grad-CAM equals
HiResCAM: the gradient at every cell is the same).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd

from ...project.context import RunContext
from ...runs.spec import derive_seed
from ...runs.study import Evaluation, Study
from . import analysis, networks
from .data import augmented_pairs, heart_on_grid, pair_phases, task_classes
from .plan import LOSSES, classifier_spec

#: The explainers every classifier is scored with (HiResCAM is the one in the loss).
EXPLAINERS = ("hirescam", "saliency")


def balanced_indices(targets: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Every sample once plus random repeats of the smaller classes, shuffled: each class then
    appears as often as the largest one (oversampling instead of class weights).

    Args:
        targets: (N,) class index per sample.
        rng: the random generator (seeded per epoch by the caller).

    Returns:
        Indices into ``targets``.
    """
    targets = np.asarray(targets)
    members = [np.flatnonzero(targets == c) for c in np.unique(targets)]
    largest = max(len(m) for m in members)
    picks = [np.concatenate([m, rng.choice(m, largest - len(m), replace=True)]) for m in members]
    return rng.permutation(np.concatenate(picks))


@dataclass
class StoredFeatures:
    """The frozen encoder's output for a set of patients.

    Attributes:
        features: (M, x, y, z, 2C) float32.
        outside: (M, x, y, z) share of each cell outside the heart (the penalty's region).
        patient: (M,) row in the set's :class:`~.data.PatientPairs` of each sample.
    """

    features: np.ndarray
    outside: np.ndarray
    patient: np.ndarray


class ClassifierSource:
    """Everything the classifier studies share: patient pairs, the U-Net's encoder weights and
    the stored features (computed on first use, once per chapter run).

    Args:
        ctx: the run's context (its ``acdc`` settings).
        data: the chapter's :class:`~.run.AcdcData`.
        unet_path: the trained U-Net whose encoder the classifiers use.
    """

    def __init__(self, ctx: RunContext, data: Any, unet_path: Path) -> None:
        self.settings = ctx.profile.acdc
        self.seed, self.progress = ctx.seed, ctx.progress
        self.train = pair_phases(data.train)
        self.evaluation = {name: pair_phases(arrays) for name, arrays in data.evaluation.items()}
        self.unet_path = Path(unet_path)
        self._stored: dict[str, StoredFeatures] = {}

    @functools.cached_property
    def encoder_weights(self) -> list[np.ndarray]:
        """The trained U-Net's encoder weights."""
        from ...models import load_model

        s = self.settings
        encoder = networks.build_encoder(s.box, s.unet_base_filters, s.unet_levels)
        networks.transfer_encoder_weights(load_model(self.unet_path), encoder)
        return encoder.get_weights()

    def backbone(self) -> Any:
        """The frozen pair encoder with the U-Net's weights."""
        s = self.settings
        backbone, encoder = networks.build_pair_backbone(s.box, s.unet_base_filters,
                                                         s.unet_levels)
        encoder.set_weights(self.encoder_weights)
        backbone.trainable = False
        return backbone

    def _store(self, backbone: Any, images: np.ndarray, labels: np.ndarray) -> tuple:
        features = backbone.predict(images, batch_size=8, verbose=0).astype(np.float32)
        return features, (1.0 - heart_on_grid(labels, self.settings.unet_levels)).astype(np.float32)

    def stored(self, name: str) -> StoredFeatures:
        """The frozen encoder's features of ``train`` (the patients as they are, then
        ``classifier_augmentations`` augmented copies) or of an evaluation set; computed on
        first use."""
        if name not in self._stored:
            self._stored[name] = self._compute(name)
        return self._stored[name]

    def _compute(self, name: str) -> StoredFeatures:
        from tqdm.auto import tqdm

        backbone = self.backbone()
        if name != "train":
            pairs = self.evaluation[name]
            return StoredFeatures(*self._store(backbone, pairs.images, pairs.labels),
                                  np.arange(len(pairs.numbers)))
        copies = self.settings.classifier_augmentations
        parts = [self._store(backbone, self.train.images, self.train.labels)]
        for k in tqdm(range(copies), desc="encoder features", unit="copy",
                      disable=not self.progress or not copies, leave=False):
            images, labels = augmented_pairs(self.train, derive_seed("acdc-pairs", self.seed, k))
            parts.append(self._store(backbone, images, labels))
        return StoredFeatures(np.concatenate([p[0] for p in parts]),
                              np.concatenate([p[1] for p in parts]),
                              np.tile(np.arange(len(self.train.numbers)), len(parts)))

    @functools.cached_property
    def input_gradient(self) -> Any:
        """``f(images, cotangent)`` → the input gradient of the frozen backbone for a given
        gradient at its output (a vector-Jacobian product), compiled once for every model."""
        import tensorflow as tf

        backbone = self.backbone()

        @tf.function(reduce_retracing=True)
        def vjp(images: Any, cotangent: Any) -> Any:
            with tf.GradientTape() as tape:
                tape.watch(images)
                features = backbone(images, training=False)
            return tape.gradient(features, images, output_gradients=cotangent)

        return vjp

    @functools.cached_property
    def pooled_statistics(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance per channel of the pooled training features (the head's fixed
        standardisation)."""
        pooled = self.stored("train").features.mean(axis=(1, 2, 3))
        return pooled.mean(axis=0), pooled.var(axis=0) + 1e-6

    def build(self, task: str, loss: str, learning_rate: float) -> Any:
        """A compiled head-on-stored-features model for ``task`` and ``loss``."""
        from ...losses import HeatmapLossConfig
        from ...models import HeatmapLossModel

        s = self.settings
        shape = self.stored("train").features.shape[1:]
        mean, variance = self.pooled_statistics
        head = networks.build_pooled_head(shape, len(task_classes(task)), s.classifier_dense_units,
                                          s.classifier_dropout, mean, variance)
        heatmap = (HeatmapLossConfig(method="hirescam", penalty="outside_fraction",
                                     weight=s.heatmap_weight) if loss == "heatmap" else None)
        model = HeatmapLossModel(networks.feature_backbone(shape), head, heatmap=heatmap,
                                 name=f"acdc_{task}_{loss}")
        model.compile(optimizer=keras.optimizers.Adam(learning_rate))
        return model

    def batches(self, task: str, shuffle_seed: int) -> tuple:
        """Class-balanced training batches of stored features (redrawn every epoch) and the
        validation patients' features."""
        s = self.settings
        train, validation = self.stored("train"), self.stored("validation")
        targets = self.train.targets(task)[train.patient]
        v_targets = self.evaluation["validation"].targets(task)
        return (FeatureBatches(train, targets, len(task_classes(task)), s.classifier_batch_size,
                               shuffle_seed, balanced=True),
                FeatureBatches(validation, v_targets, len(task_classes(task)),
                               s.classifier_batch_size, shuffle_seed, balanced=False))

    def save(self, model: Any, path: Path) -> None:
        """Save the whole classifier: the frozen pair encoder under the trained head."""
        from ...models import HeatmapLossModel, save_model

        full = HeatmapLossModel(self.backbone(), model.head, heatmap=model.heatmap,
                                name=model.name)
        save_model(full, path)

    def evaluate(self, task: str, model: Any) -> Evaluation:
        """Every evaluation set's scores (:meth:`scores`); the headline is the
        test (else validation) balanced accuracy."""
        self._check_frozen(model)
        rows, headline = [], {}
        for name in self.evaluation:
            # Saliency needs the encoder's backward pass on every volume: the validation
            # patients (where the losses are compared) get it, other sets HiResCAM only.
            scores = self.scores(task, model.head, name, saliency=name == "validation")
            headline[name] = scores["balanced_accuracy"]
            rows += analysis.classifier_rows(name, scores)
        return Evaluation(rows, headline.get("test", headline["validation"]))

    def _check_frozen(self, model: Any) -> None:
        # Scores are computed from the stored features: valid only for this very encoder.
        weights = model.backbone.get_weights()
        if len(weights) != len(self.encoder_weights) or not all(
                np.array_equal(a, b) for a, b in zip(weights, self.encoder_weights)):
            raise ValueError(f"model {model.name!r}: its encoder differs from the U-Net's "
                             f"({self.unet_path}); the stored features do not apply to it")

    def scores(self, task: str, head: Any, dataset: str, saliency: bool = True,
               batch_size: int = 8) -> dict:
        """A classifier's scores on one evaluation set, from the stored features: balanced
        accuracy, and per explainer the share of map mass inside the heart and the share of
        empty maps (maps of the predicted class).

        HiResCAM is taken at the stored features (the backbone's output) through ``head``;
        saliency is the input gradient of the whole classifier, the chain rule's product of
        the head's gradient at the features and the frozen backbone's Jacobian
        (:attr:`input_gradient`) — the same numbers as the whole model's, without compiling
        the encoder's gradient again for every model.

        Args:
            task: ``binary`` or ``groups``.
            head: the classifier's head.
            dataset: an evaluation set.
            saliency: also compute saliency (the encoder's backward pass on every volume).
            batch_size: patients per batch.

        Returns:
            :func:`~.analysis.classifier_metrics` plus ``predicted`` and ``maps`` (explainer →
            maps) for figures.
        """
        import tensorflow as tf

        from ...attribution import cam_from_gradients, class_scores

        pairs, stored = self.evaluation[dataset], self.stored(dataset)
        predicted, hirescam, gradients = [], [], []
        for start in range(0, len(pairs.numbers), batch_size):
            features = tf.convert_to_tensor(stored.features[start:start + batch_size])
            with tf.GradientTape() as tape:
                tape.watch(features)
                logits = head(features, training=False)
                classes = tf.argmax(logits, axis=-1, output_type=tf.int32)
                score = tf.reduce_sum(class_scores(logits, classes))
            gradient = tape.gradient(score, features)
            predicted.append(classes.numpy())
            hirescam.append(cam_from_gradients(features, gradient, "hirescam").numpy())
            if saliency:
                images = tf.convert_to_tensor(pairs.images[start:start + batch_size])
                gradients.append(tf.reduce_sum(tf.abs(self.input_gradient(images, gradient)),
                                               axis=-1).numpy())
        maps = {"hirescam": np.concatenate(hirescam)}
        hearts = {"hirescam": 1.0 - stored.outside}
        if saliency:
            maps["saliency"] = np.concatenate(gradients)
            hearts["saliency"] = (pairs.labels > 0).astype(np.float32)
        predicted = np.concatenate(predicted)
        return {**analysis.classifier_metrics(pairs.targets(task), predicted, maps, hearts),
                "predicted": predicted, "maps": maps}


class FeatureBatches(keras.utils.PyDataset):
    """Batches ``(features, {"label": one-hot, "mask": outside the heart})`` of stored
    features; with ``balanced`` every epoch draws a new class-balanced order.

    Args:
        stored: the features.
        targets: (M,) class index per stored sample.
        n_classes: classes of the task.
        batch_size: samples per batch.
        seed: seeds every epoch's order.
        balanced: oversample to balanced classes and shuffle (training); else in order.
    """

    def __init__(self, stored: StoredFeatures, targets: np.ndarray, n_classes: int,
                 batch_size: int, seed: int, balanced: bool) -> None:
        super().__init__()
        self.stored, self.batch_size, self.seed, self.balanced = stored, batch_size, seed, balanced
        self.onehot = np.eye(n_classes, dtype=np.float32)[np.asarray(targets)]
        self.epoch = 0
        self._order()

    def _order(self) -> None:
        n = len(self.onehot)
        self.order = (balanced_indices(self.onehot.argmax(1), np.random.default_rng(
            derive_seed("balanced", self.seed, self.epoch))) if self.balanced else np.arange(n))

    def __len__(self) -> int:
        return -(-len(self.order) // self.batch_size)

    def __getitem__(self, index: int) -> tuple:
        rows = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        return self.stored.features[rows], {"label": self.onehot[rows],
                                            "mask": self.stored.outside[rows]}

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self._order()


@dataclass
class ClassifierResults:
    """The recorded classifiers and what scoring or drawing them again needs.

    Attributes:
        table: :func:`~.analysis.classifier_table`, one row per (task, loss, seed, set).
        source: the :class:`ClassifierSource` they were trained and scored with.
    """

    table: pd.DataFrame
    source: ClassifierSource


def train_classifiers(ctx: RunContext, data: Any, unet: Any) -> ClassifierResults:
    """Train (or reuse) ``classifier_seeds`` classifiers per task and loss and score each.

    Args:
        ctx: the run's context.
        data: the chapter's :class:`~.run.AcdcData`.
        unet: the :class:`~.run.UnetResult` whose encoder the classifiers use.

    Returns:
        The :class:`ClassifierResults`.
    """
    from ...registry import Registry
    from ...runs.study import run_studies

    source = ClassifierSource(ctx, data, ctx.results / unet.record["model_path"])
    studies = {(task, loss): Study(
        spec=classifier_spec(ctx.profile, ctx.seed, data.source, task, loss, data.describe(),
                             unet.key),
        build_model=functools.partial(source.build, task, loss),
        make_data=functools.partial(source.batches, task),
        evaluate=functools.partial(source.evaluate, task), save_model=source.save,
        label=f"classifier ({task}, {loss})")
        for task in ctx.profile.acdc.classifier_tasks for loss in LOSSES}
    with Registry(url=ctx.database_url, results_dir=ctx.results) as registry:
        ids = run_studies(list(studies.values()), registry, ctx.out, ctx.progress)
        table = analysis.classifier_table(registry, {key: ids[study.spec.key]
                                                     for key, study in studies.items()})
    return ClassifierResults(table, source)


__all__ = ["ClassifierResults", "ClassifierSource", "EXPLAINERS", "FeatureBatches",
           "StoredFeatures", "balanced_indices", "train_classifiers"]
