"""The ``tf.data`` input pipeline for ``HeatmapLossModel``: images, labels and masks.

Public API (stable; also importable from ``heatmaploss.models``):

* ``make_dataset(images, labels, masks=None, *, required=None, n_classes=4, batch_size=32,
  shuffle=True, seed=0, channels=3) -> tf.data.Dataset`` of ``(x, {"label", "mask"[,
  "required"]})`` batches.
* ``preprocess_images(images, channels=3)``: uint8 grey -> float32 in [-1, 1], channels repeated.
* ``SyntheticTrainingData(plan)``: the training and validation batches of a synthetic
  :class:`~heatmaploss.synthetic.DataPlan` (irrelevant region = not heart), generated once,
  on first use.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def preprocess_images(images: tf.Tensor, channels: int = 3) -> tf.Tensor:
    """uint8 grey images (N, *grid) -> float32 (N, *grid, channels) scaled to [-1, 1].

    The thesis repeats the grey image over 3 channels and scales x / 127.5 - 1. Float inputs
    are returned unchanged (assumed already preprocessed, channel axis included).
    """
    images = tf.convert_to_tensor(images)
    if images.dtype.is_floating:
        return images
    scaled = tf.cast(images, tf.float32) / 127.5 - 1.0
    return tf.repeat(scaled[..., None], channels, axis=-1)


def make_dataset(images: np.ndarray, labels: np.ndarray, masks: np.ndarray | None = None, *,
                 required: np.ndarray | None = None, n_classes: int = 4, batch_size: int = 32,
                 shuffle: bool = True, seed: int = 0, channels: int = 3) -> tf.data.Dataset:
    """A ``tf.data`` pipeline of ``(x, {"label", "mask"[, "required"]})`` batches.

    Images and masks stay uint8/bool in memory; conversion happens per batch.

    Args:
        images: uint8 grey (N, *grid) (scaled and repeated to ``channels``) or float
            (N, *grid, C) already preprocessed.
        labels: (N,) integer classes.
        masks: (N, *grid) irrelevant-region masks at input resolution (1 = unwanted), or None.
        required: optional (N, *grid) required-region masks for the inside term.
        n_classes: number of classes for the one-hot labels.
        batch_size: batch size.
        shuffle: reshuffle every epoch (seeded).
        seed: shuffle seed.
        channels: channels for grey inputs.

    Returns:
        A batched, prefetched dataset.
    """
    labels = np.asarray(labels).reshape(-1)
    if len(labels) != len(images):
        raise ValueError(f"{len(labels)} labels for {len(images)} images")
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"labels must lie in [0, {n_classes}); got {labels.min()}..{labels.max()}")
    arrays: dict[str, np.ndarray] = {"label": labels.astype(np.int32)}
    for key, value in (("mask", masks), ("required", required)):
        if value is not None:
            if len(value) != len(images):
                raise ValueError(f"{key} has {len(value)} entries for {len(images)} images")
            arrays[key] = np.asarray(value)
    dataset = tf.data.Dataset.from_tensor_slices((np.asarray(images), arrays))
    if shuffle:
        dataset = dataset.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)

    def convert(x: tf.Tensor, y: dict[str, tf.Tensor]) -> tuple[tf.Tensor, dict]:
        target = {"label": tf.one_hot(y["label"], n_classes)}
        for key in ("mask", "required"):
            if key in y:
                target[key] = tf.cast(y[key], tf.float32)
        return preprocess_images(x, channels), target

    return (dataset.batch(batch_size).map(convert, num_parallel_calls=tf.data.AUTOTUNE)
            .prefetch(tf.data.AUTOTUNE))


class SyntheticTrainingData:
    """Training and validation batches of a synthetic data plan, generated on first use.

    Called with a shuffle seed and a batch size it returns ``(train, validation)`` datasets in
    the format of :func:`make_dataset`, with the not-heart region as the irrelevant mask (and
    the heart as the required region when asked). The images are generated once (uint8 in
    memory) and reused by every call, and nothing is generated until the first call (a search
    whose models are all recorded never needs them).

    Args:
        plan: a :class:`~heatmaploss.synthetic.DataPlan`.
        train_sets: for plans with a decoy marker, the marker's versions of the training images
            (``matched``, ``shuffled``, ``absent``); several are concatenated (the same hearts
            with the marker elsewhere: counterexamples).
        val_set: the marker's version of the validation images.
        required: also yield the heart as ``y["required"]`` (for the inside term).
    """

    def __init__(self, plan, train_sets: tuple[str, ...] = ("matched",),
                 val_set: str = "matched", required: bool = False) -> None:
        self.plan = plan
        self.train_sets = tuple(train_sets) if plan.decoy is not None else (None,)
        self.val_set = val_set if plan.decoy is not None else None
        self.required = bool(required)
        self._arrays: dict[str, tuple] = {}

    def __getstate__(self) -> dict:
        # Sent to a training worker process: the plan travels, the images are regenerated
        # there (generating is faster than pickling them, and seeded: the same bytes).
        return {**self.__dict__, "_arrays": {}}

    def arrays(self, split: str) -> tuple[np.ndarray, ...]:
        """``(images, labels, not_heart[, heart])`` of ``train`` or ``val``."""
        if split not in self._arrays:
            sets = self.train_sets if split == "train" else (self.val_set,)
            parts = [self.plan.generate(split, decoy_set) for decoy_set in sets]
            heart = np.concatenate([p.region("heart") for p in parts])
            arrays = (np.concatenate([p.images for p in parts]),
                      np.concatenate([p.labels for p in parts]), ~heart)
            self._arrays[split] = arrays + ((heart,) if self.required else ())
        return self._arrays[split]

    def _dataset(self, split: str, **kwargs) -> tf.data.Dataset:
        images, labels, not_heart, *heart = self.arrays(split)
        return make_dataset(images, labels, not_heart, required=heart[0] if heart else None,
                            **kwargs)

    def __call__(self, shuffle_seed: int, batch_size: int
                 ) -> tuple[tf.data.Dataset, tf.data.Dataset]:
        train = self._dataset("train", batch_size=batch_size, shuffle=True, seed=shuffle_seed)
        val = self._dataset("val", batch_size=max(batch_size, 64), shuffle=False)
        return train, val
