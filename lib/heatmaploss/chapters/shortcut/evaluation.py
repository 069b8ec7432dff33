"""The shortcut chapter, measuring one trained model: reliance by intervention, attribution at
two layers, and where the shortcut is still decodable.

Per model (TensorFlow; the chapter's study runner calls :func:`evaluate_model` once):

* **accuracy** on the three test sets — the same hearts with the marker as in training
  (``matched``), at a random corner (``shuffled``), or removed (``absent``) — overall and per
  class;
* **flip rate** — among images whose marker moved between the matched and the shuffled set,
  the share whose prediction changed (only the marker differs between the two);
* **removal delta** — the mean change of the true class's probability when the marker is
  removed (absent − matched, same images);
* **attribution mass** of HiResCAM and Grad-CAM at the last conv layer and at an earlier one,
  and of saliency, on the heart, on the marker drawn in the image (``decoy_marker``) and on all
  four corners where a marker can sit (``decoy_corners``), with the share of empty maps;
* **linear probes** — from each conv block's features (averaged over the image's four
  quadrants) of shuffled images, how well logistic regression recovers the marker's corner
  (5-fold cross-validated accuracy; chance 0.25).

The attribution masses are measured on a smaller matched set drawn with the test seed
(``n_explain_per_class`` images per class), the probes on a shuffled one (``n_probe_per_class``).
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

from ...names import EXPLAINERS, TEST_SETS
from ...project.profiles import ShortcutSettings
from ...runs.study import Evaluation
from ...synthetic import CLASSES

#: Regions every explainer's mass is measured on.
REGIONS = ("heart", "decoy_marker", "decoy_corners")
#: Layers whose features the linear probes read, per backbone.
PROBE_LAYERS = {"small_cnn": ("conv1", "conv2", "conv3", "last_conv"),
                "vgg16": ("block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3",
                          "block5_conv3")}
BATCH = 128


def _compiled(function: Any) -> Any:
    """``function`` of uint8 images, preprocessed and compiled into one graph."""
    import tensorflow as tf

    from ...pipeline import preprocess_images

    return tf.function(lambda images: function(preprocess_images(images)),
                       reduce_retracing=True)


def probabilities(model: Any, images: np.ndarray) -> np.ndarray:
    """Softmax outputs (N, classes) of uint8 images, in batches (one compiled graph, kept with
    the model)."""
    import tensorflow as tf

    from ...attribution import compiled_for

    ref = weakref.ref(model)
    forward = compiled_for(model, ("probabilities",), lambda: _compiled(
        lambda x: tf.nn.softmax(ref()(x, training=False))))
    return np.concatenate([forward(images[i:i + BATCH]).numpy()
                           for i in range(0, len(images), BATCH)])


def accuracy_rows(name: str, labels: np.ndarray, predicted: np.ndarray) -> list[dict]:
    """Registry rows: accuracy per class and over all classes of one test set."""
    rows = [{"dataset": name, "metric": "accuracy", "class_name": cls,
             "value": float(np.mean(predicted[labels == c] == c)) if (labels == c).any()
             else float("nan"), "n": int((labels == c).sum())}
            for c, cls in enumerate(CLASSES)]
    rows.append({"dataset": name, "metric": "accuracy", "class_name": "all",
                 "value": float(np.mean(predicted == labels)), "n": int(len(labels))})
    return rows


def interventions(model: Any, plan: Any) -> tuple[list[dict], float]:
    """Accuracy per test set, flip rate and removal delta; returns rows and matched accuracy."""
    data = {s: plan.generate("test", s) for s in TEST_SETS}
    labels = data["matched"].labels
    # One graph for the three sets: concatenated, then split again.
    stacked = probabilities(model, np.concatenate([d.images for d in data.values()]))
    probs = dict(zip(TEST_SETS, np.split(stacked, len(TEST_SETS))))
    predicted = {s: p.argmax(axis=1) for s, p in probs.items()}
    rows = [row for s in TEST_SETS for row in accuracy_rows(s, labels, predicted[s])]
    moved = data["matched"].decoy_class != data["shuffled"].decoy_class
    flips = predicted["matched"][moved] != predicted["shuffled"][moved]
    true_p = {s: probs[s][np.arange(len(labels)), labels] for s in ("matched", "absent")}
    rows += [{"dataset": "shuffled", "metric": "flip_rate",
              "value": float(flips.mean()) if moved.any() else float("nan"),
              "n": int(moved.sum())},
             {"dataset": "absent", "metric": "removal_delta",
              "value": float(np.mean(true_p["absent"] - true_p["matched"])),
              "n": int(len(labels))}]
    return rows, float(np.mean(predicted["matched"] == labels))


def quadrant_features(features: np.ndarray) -> np.ndarray:
    """(N, H, W, C) → (N, 4·C): each channel averaged over the map's four quadrants."""
    h, w = features.shape[1] // 2, features.shape[2] // 2
    parts = [features[:, :h, :w], features[:, :h, w:], features[:, h:, :w], features[:, h:, w:]]
    return np.concatenate([p.mean(axis=(1, 2)) for p in parts], axis=1)


def probe_accuracy(features: np.ndarray, corners: np.ndarray, seed: int = 0) -> float:
    """5-fold cross-validated accuracy of a logistic regression predicting the marker's corner."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    folds = min(5, int(np.bincount(corners).min()))
    if folds < 2:
        return float("nan")
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    split = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return float(cross_val_score(probe, features, corners, cv=split).mean())


def probes(model: Any, plan: Any, n_per_class: int, layers: tuple[str, ...]) -> list[dict]:
    """One row per layer: how decodable the marker's corner is from its features."""
    import keras

    from ...attribution import compiled_for
    from ...synthetic import generate

    data = generate(plan.experiment, n_per_class, plan.test.seed, **plan.options("shuffled"))
    backbone = model.backbone
    view = compiled_for(model, ("probes", tuple(layers)), lambda: _compiled(keras.Model(
        backbone.inputs[0], [backbone.get_layer(n).output for n in layers])))
    features = [[] for _ in layers]
    for i in range(0, len(data.images), BATCH):
        for store, output in zip(features, view(data.images[i:i + BATCH])):
            store.append(quadrant_features(output.numpy()))
    return [{"dataset": "shuffled", "metric": f"probe_{layer}",
             "value": probe_accuracy(np.concatenate(store), data.decoy_class),
             "n": int(len(data.images))} for layer, store in zip(layers, features)]


def evaluate_model(plan: Any, settings: ShortcutSettings, early_layer: str,
                   model: Any) -> Evaluation:
    """Every measurement of the module docstring for one model.

    Args:
        plan: the group's :class:`~heatmaploss.synthetic.DataPlan` (its test sets).
        settings: the profile's shortcut settings (explained and probed set sizes).
        early_layer: the earlier layer the CAM explainers are also computed at.
        model: the trained model.

    Returns:
        The registry rows; the headline accuracy is the matched set's.
    """
    from ...runs.evaluate import evaluate_on_plan

    rows, matched = interventions(model, plan)
    explained, _ = evaluate_on_plan(
        model, plan, batch_size=64, dataset="matched", decoy_set="matched",
        explainers=EXPLAINERS, regions=REGIONS, n_per_class=settings.n_explain_per_class,
        cam_layers=(early_layer,))
    rows += [row for row in explained if row["metric"] != "accuracy"]
    rows += probes(model, plan, settings.n_probe_per_class, PROBE_LAYERS[settings.backbone])
    return Evaluation(rows, matched)


__all__ = ["PROBE_LAYERS", "REGIONS", "accuracy_rows", "evaluate_model", "interventions",
           "probabilities", "probe_accuracy", "probes", "quadrant_features"]
