"""Evaluate trained classifiers: accuracy and where their attribution maps put their mass.

For each model and a test set generated on the fly in chunks (memory bounded by the chunk
size, whatever the test-set size), this computes

* accuracy overall and per class;
* for HiResCAM, Grad-CAM and input-gradient saliency, each map's fraction of positive
  attribution mass inside the heart, the sex marker and the subcutaneous fat,
  ``Σ relu(h)·mask / Σ relu(h)`` with the map upsampled to the image (``docs/thesis.md`` §5);
  per class the mean over images, and the model's score = the unweighted mean of the class
  means.

A map with no positive mass has no defined fraction: it is left out of that mean, *counted*
(``empty_maps``) and reported, never dropped silently; a class whose maps are all empty makes
the model-level score NaN. A second score, ``overlap_with_empty``, counts such maps as putting
no mass in any region, so it is defined even when most maps are empty.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..names import CAM_EXPLAINERS, EXPLAINERS, MEASURABLE_REGIONS, REGIONS

DATASET = "test"


def region_fractions(maps: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fraction of positive attribution mass inside each region, per image.

    Args:
        maps: (N, H, W) attribution maps at image resolution (negative values are ignored).
        masks: (N, H, W, R) region masks (bool or 0/1).

    Returns:
        ``(fractions, empty)``: (N, R) fractions, NaN for maps without positive mass, and the
        (N,) boolean flags of those empty maps.
    """
    maps = np.asarray(maps, dtype=np.float64)
    masks = np.asarray(masks, dtype=np.float64)
    if maps.ndim != 3 or masks.shape[:3] != maps.shape:
        raise ValueError(f"maps {maps.shape} and masks {masks.shape}: expected (N, H, W) and "
                         "(N, H, W, R)")
    positive = np.maximum(maps, 0.0)
    return _fractions(np.einsum("nhw,nhwr->nr", positive, masks), positive.sum(axis=(1, 2)))


def _fractions(inside: np.ndarray, total: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, R) inside-region sums and (N,) totals → fractions (NaN where empty) and flags."""
    inside = np.asarray(inside, dtype=np.float64)
    total = np.asarray(total, dtype=np.float64)
    empty = ~(np.isfinite(total) & (total > 0))
    with np.errstate(invalid="ignore", divide="ignore"):
        fractions = inside / total[:, None]
    fractions[empty] = np.nan
    return fractions, empty


@dataclass
class _Accumulator:
    """Running per-class sums, so that no map outlives its chunk."""

    n_classes: int
    n_regions: int

    def __post_init__(self) -> None:
        self.sums = np.zeros((self.n_classes, self.n_regions))
        self.valid = np.zeros(self.n_classes, dtype=np.int64)
        self.empty = np.zeros(self.n_classes, dtype=np.int64)

    def add(self, labels: np.ndarray, fractions: np.ndarray, empty: np.ndarray) -> None:
        for c in range(self.n_classes):
            rows = labels == c
            ok = rows & ~empty
            self.sums[c] += fractions[ok].sum(axis=0)
            self.valid[c] += int(ok.sum())
            self.empty[c] += int((rows & empty).sum())

    def class_means(self) -> np.ndarray:
        """Per class: the mean fraction over maps with positive mass (NaN if there is none)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.sums / self.valid[:, None]

    def class_means_with_empty(self) -> np.ndarray:
        """Per class: the mean fraction over all maps, an empty map counting as 0 everywhere."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.sums / (self.valid + self.empty)[:, None]


def layered(explainer: str, layer: str | None) -> str:
    """The name of a CAM explainer taken at another layer than the attributed one:
    ``hirescam@conv3`` (``layer=None``: just ``hirescam``)."""
    return explainer if layer is None else f"{explainer}@{layer}"


def _evaluation_function(model: Any, methods: Sequence[str], image_size: tuple[int, int],
                         class_source: str, cam_layers: Sequence[str] = ()):
    """One compiled graph per model: logits and, per explainer, per-region and total mass.

    HiResCAM and Grad-CAM share one forward pass and one backward pass (they differ only in
    how they combine A and dA), at the attributed layer and at every layer of ``cam_layers``;
    saliency takes dscore/dx of the same score. One trace per model instead of one per method
    keeps the evaluation of many small models cheap; the graph is kept with the model
    (:func:`heatmaploss.attribution.compiled_for`), so evaluating it again does not retrace.
    """
    from .. import attribution

    key = ("evaluation", tuple(methods), tuple(image_size), class_source, tuple(cam_layers))
    return attribution.compiled_for(model, key, lambda: _build_evaluation_function(
        model, methods, image_size, class_source, cam_layers))


def _build_evaluation_function(model: Any, methods: Sequence[str], image_size: tuple[int, int],
                               class_source: str, cam_layers: Sequence[str]):
    import tensorflow as tf

    from .. import attribution

    base, head = attribution.split_model(model, None)
    staged = attribution.staged_split(base, list(cam_layers)) if cam_layers else None
    extra = [name for name in (staged[2] if staged else []) if name in cam_layers]

    @tf.function(reduce_retracing=True)
    def run(x, labels, masks):
        with tf.GradientTape() as input_tape:
            input_tape.watch(x)
            if staged is None:
                activations = {None: base(x, training=False)}
                with tf.GradientTape() as layer_tape:
                    layer_tape.watch(activations[None])
                    logits = head(activations[None], training=False)
                    classes = (tf.argmax(logits, axis=-1, output_type=tf.int32)
                               if class_source == "predicted" else labels)
                    score = tf.reduce_sum(attribution.class_scores(logits, classes))
            else:
                early, late, names = staged
                first = early(x, training=False)
                with tf.GradientTape() as layer_tape:
                    layer_tape.watch(first)
                    rest = attribution.late_outputs(late, first)
                    logits = head(rest[-1] if rest else first, training=False)
                    classes = (tf.argmax(logits, axis=-1, output_type=tf.int32)
                               if class_source == "predicted" else labels)
                    score = tf.reduce_sum(attribution.class_scores(logits, classes))
                found = dict(zip(names, [first, *rest]))
                activations = {None: found[names[-1]],
                               **{name: found[name] for name in extra if name != names[-1]}}
        sums = {}
        if "saliency" in methods:
            maps = attribution.saliency_from_gradients(input_tape.gradient(score, x))
            sums["saliency"] = maps
        if any(m in methods for m in CAM_EXPLAINERS):
            layers = list(activations)
            gradients = layer_tape.gradient(score, [activations[k] for k in layers])
            for layer, gradient in zip(layers, gradients):
                for method in CAM_EXPLAINERS:
                    if method in methods:
                        sums[layered(method, layer)] = attribution.upsample(
                            attribution.cam_from_gradients(activations[layer], gradient,
                                                           method), image_size)
        out = {}
        for method, maps in sums.items():
            positive = tf.nn.relu(maps)
            out[method] = (tf.einsum("nhw,nhwr->nr", positive, masks),
                           tf.reduce_sum(positive, axis=[1, 2]))
        return logits, out

    return run


def evaluate_model(model: Any, experiment: int, n_per_class: int, seed: int, *,
                   chunk_size: int = 500, batch_size: int = 64,
                   explainers: Sequence[str] = EXPLAINERS, regions: Sequence[str] = REGIONS,
                   class_source: str = "predicted", data_options: dict | None = None,
                   progress: bool = False, cam_layers: Sequence[str] = ()
                   ) -> dict[str, pd.DataFrame]:
    """Accuracy and attribution overlaps of one model on a freshly generated test set.

    Args:
        model: a trained classifier returning logits (e.g. a ``HeatmapLossModel``).
        experiment: synthetic experiment (1 or 2) of the test set.
        n_per_class: test images per class.
        seed: test-set seed.
        chunk_size: images generated and held in memory at once.
        batch_size: images per attribution batch.
        explainers: attribution methods to evaluate (subset of ``EXPLAINERS``; empty for
            accuracy only).
        regions: regions to measure (subset of ``MEASURABLE_REGIONS``).
        class_source: explain the ``predicted`` class (thesis) or the ``true`` class.
        data_options: extra options of ``synthetic.iter_batches``.
        progress: show a progress bar over chunks.
        cam_layers: further backbone layers at which the CAM explainers are also computed
            (reported as ``<explainer>@<layer>``, e.g. ``hirescam@conv3``).

    Returns:
        ``{"accuracy": DataFrame(class_name, value, n), "overlap": DataFrame(explainer, region,
        class_name, value, n, n_empty)}``; ``class_name`` ``"all"`` holds the overall accuracy and
        the model-level overlap (unweighted mean of the class means).
    """
    import tensorflow as tf
    from tqdm.auto import tqdm

    from .. import synthetic
    from ..pipeline import preprocess_images

    for name, values, allowed in (("explainer", explainers, EXPLAINERS),
                                  ("region", regions, MEASURABLE_REGIONS)):
        bad = [v for v in values if v not in allowed]
        # No explainer at all is allowed: accuracy only (e.g. intervention test sets).
        if bad or (not values and name == "region"):
            raise ValueError(f"{name}s {list(values)!r}: allowed {', '.join(allowed)}")
    if class_source not in ("predicted", "true"):
        raise ValueError(f"class_source={class_source!r}: allowed predicted, true")
    classes = synthetic.CLASSES
    n_classes = len(classes)
    correct = np.zeros(n_classes, dtype=np.int64)
    seen = np.zeros(n_classes, dtype=np.int64)
    names = [*explainers, *[layered(e, layer) for layer in cam_layers for e in explainers
                            if e in CAM_EXPLAINERS]]
    accumulators = {e: _Accumulator(n_classes, len(regions)) for e in names}
    function = None
    chunks = synthetic.iter_batches(experiment, n_per_class, seed, chunk_size=chunk_size,
                                    **(data_options or {}))
    total_chunks = -(-n_per_class * n_classes // chunk_size)
    for chunk in tqdm(chunks, total=total_chunks, desc="evaluate", unit="chunk",
                      disable=not progress, leave=False):
        labels = np.asarray(chunk.labels)
        masks = np.stack([chunk.region(r) for r in regions], axis=-1).astype(np.float32)
        if function is None:
            function = _evaluation_function(model, explainers, tuple(chunk.images.shape[1:3]),
                                            class_source, cam_layers)
        for start in range(0, len(labels), batch_size):
            part = slice(start, start + batch_size)
            batch_labels = labels[part]
            logits, sums = function(preprocess_images(chunk.images[part]),
                                    tf.convert_to_tensor(batch_labels.astype(np.int32)),
                                    tf.convert_to_tensor(masks[part]))
            predicted = np.argmax(logits.numpy(), axis=-1)
            for c in range(n_classes):
                rows = batch_labels == c
                seen[c] += int(rows.sum())
                correct[c] += int((predicted[rows] == c).sum())
            for method, (inside, total) in sums.items():
                fractions, empty = _fractions(inside.numpy(), total.numpy())
                accumulators[method].add(batch_labels, fractions, empty)

    accuracy_rows = [{"class_name": name, "value": correct[c] / seen[c] if seen[c] else np.nan,
                      "n": int(seen[c])} for c, name in enumerate(classes)]
    accuracy_rows.append({"class_name": "all", "value": correct.sum() / max(seen.sum(), 1),
                          "n": int(seen.sum())})
    overlap_rows = []
    for method, acc in accumulators.items():
        means, with_empty = acc.class_means(), acc.class_means_with_empty()
        for r, region in enumerate(regions):
            for c, name in enumerate(classes):
                overlap_rows.append({"explainer": method, "region": region, "class_name": name,
                                     "value": means[c, r], "value_with_empty": with_empty[c, r],
                                     "n": int(acc.valid[c]), "n_empty": int(acc.empty[c])})
            # The thesis's model score: unweighted mean of the class means (NaN if one is).
            overlap_rows.append({"explainer": method, "region": region, "class_name": "all",
                                 "value": float(np.mean(means[:, r])),
                                 "value_with_empty": float(np.mean(with_empty[:, r])),
                                 "n": int(acc.valid.sum()), "n_empty": int(acc.empty.sum())})
    overlap = pd.DataFrame(overlap_rows, columns=["explainer", "region", "class_name", "value",
                                                  "value_with_empty", "n", "n_empty"])
    return {"accuracy": pd.DataFrame(accuracy_rows), "overlap": overlap}


def metric_rows(evaluation: dict[str, pd.DataFrame], dataset: str = DATASET) -> list[dict]:
    """Registry metric rows of one :func:`evaluate_model` result.

    Metrics: ``accuracy`` per class and ``all``; ``overlap`` per explainer × region × class and
    ``all`` (maps without positive mass left out); ``overlap_with_empty`` (the same with such
    maps counted as putting no mass anywhere); ``empty_maps`` (count of maps without positive
    mass) per explainer × class.

    Args:
        evaluation: the result.
        dataset: the rows' ``dataset`` (the test set's name).
    """
    rows = [{"dataset": dataset, "metric": "accuracy", "class_name": r.class_name,
             "value": r.value, "n": r.n} for r in evaluation["accuracy"].itertuples()]
    overlap = evaluation["overlap"]
    for r in overlap.itertuples():
        rows.append({"dataset": dataset, "metric": "overlap", "explainer": r.explainer,
                     "region": r.region, "class_name": r.class_name, "value": r.value, "n": r.n})
        rows.append({"dataset": dataset, "metric": "overlap_with_empty", "explainer": r.explainer,
                     "region": r.region, "class_name": r.class_name,
                     "value": r.value_with_empty, "n": int(r.n + r.n_empty)})
    first_region = overlap["region"].iloc[0] if len(overlap) else None
    for r in overlap[overlap["region"] == first_region].itertuples():
        rows.append({"dataset": dataset, "metric": "empty_maps", "explainer": r.explainer,
                     "class_name": r.class_name, "value": float(r.n_empty),
                     "n": int(r.n + r.n_empty)})
    return rows


def overall_accuracy(evaluation: dict[str, pd.DataFrame]) -> float:
    """The accuracy over all classes of one :func:`evaluate_model` result."""
    accuracy = evaluation["accuracy"]
    return float(accuracy.loc[accuracy["class_name"] == "all", "value"].iloc[0])


def evaluate_on_plan(model: Any, plan: Any, *, batch_size: int, dataset: str = DATASET,
                     decoy_set: str | None = None, explainers: Sequence[str] = EXPLAINERS,
                     regions: Sequence[str] = REGIONS, n_per_class: int | None = None,
                     cam_layers: Sequence[str] = ()) -> tuple[list[dict], float]:
    """Evaluate a model on the test set of a synthetic data plan.

    Args:
        model: a trained classifier.
        plan: its :class:`~heatmaploss.synthetic.DataPlan`.
        batch_size: images per attribution batch.
        dataset: the metric rows' ``dataset``.
        decoy_set: where the decoy marker is (``matched``, ``shuffled``, ``absent``; plans
            with a decoy only).
        explainers: explainers to evaluate (empty: accuracy only).
        regions: regions to measure.
        n_per_class: evaluate on a smaller set drawn with the test seed (default: the
            plan's test size).
        cam_layers: further layers at which the CAM explainers are computed.

    Returns:
        ``(metric rows, overall accuracy)``.
    """
    result = evaluate_model(model, plan.experiment, n_per_class or plan.test.n_per_class,
                            plan.test.seed, chunk_size=plan.chunk_size, batch_size=batch_size,
                            explainers=explainers, regions=regions,
                            data_options=plan.options(decoy_set), cam_layers=cam_layers)
    return metric_rows(result, dataset), overall_accuracy(result)


__all__ = ["DATASET", "evaluate_model", "evaluate_on_plan", "layered", "metric_rows",
           "overall_accuracy", "region_fractions"]
