"""Time one training step: cross-entropy vs heatmap loss, and a thesis-style reference step.

For each backbone (trainable VGG16 with random weights, and the small CNN) at batch 32 and
105 x 135 x 3, four ``HeatmapLossModel`` variants that differ only in the loss — cross-entropy
(``cce``) and cross-entropy + outside-fraction penalty on HiResCAM, Grad-CAM or saliency — run
their compiled ``train_step`` on the same batch. Warm-up steps are excluded. Timing runs in
rounds: each round times every variant once and the thesis-style reference a few times, in a
reshuffled order, so machine load hits all of them alike; step times are medians over rounds,
ratios (x CCE, speedup) are medians of the per-round ratios.

JSON (``--json``): ``{"backbone": {name: {cce_step_s, hirescam_step_s, gradcam_step_s,
saliency_step_s, ratio_hirescam}}, "thesis_style_per_image_s", "ours_per_image_s",
"speedup_vs_thesis_style", "peak_rss_mb"}``; the three top-level throughput numbers are for
VGG16 (the thesis's backbone) when it is measured; times in seconds.

The thesis-style reference reproduces how the thesis trained its heatmap-loss models: batch 1,
eager mode, a new gradient model (input -> [conv output, probabilities]) built every step,
HiResCAM of the predicted class normalised by its max, MSE on sigmoid outputs + the mean of the
map over the irrelevant cells. It exists only as the baseline for the per-image throughput.

Usage:
    python benchmarks/train_step.py [--quick] [--json PATH] [--backbones vgg16 small_cnn]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf

import keras

tf.get_logger().setLevel("ERROR")  # four models' train steps trace once each: not a problem

from heatmaploss import models
from heatmaploss.project import files
from heatmaploss.losses import HeatmapLossConfig

VARIANTS = ("cce", "hirescam", "gradcam", "saliency")
JSON_KEYS = ("cce_step_s", "hirescam_step_s", "gradcam_step_s", "saliency_step_s",
             "ratio_hirescam")
LAYERS = {"vgg16": "block5_conv3", "small_cnn": "last_conv"}
INPUT_SHAPE = (105, 135, 3)
N_CLASSES = 4


def make_batch(batch_size: int, seed: int) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
    """A random batch with a disc-shaped allowed region (the 'heart') per image."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (batch_size,) + INPUT_SHAPE).astype(np.float32)
    labels = rng.integers(0, N_CLASSES, batch_size)
    rows, cols = np.mgrid[:INPUT_SHAPE[0], :INPUT_SHAPE[1]]
    centre_r = rng.uniform(40, 65, batch_size)[:, None, None]
    centre_c = rng.uniform(50, 85, batch_size)[:, None, None]
    irrelevant = ((rows - centre_r) ** 2 + (cols - centre_c) ** 2 > 25 ** 2).astype(np.float32)
    y = {"label": tf.one_hot(labels, N_CLASSES), "mask": tf.constant(irrelevant)}
    return tf.constant(x), y


def build_variant(backbone: str, variant: str) -> tuple[models.HeatmapLossModel, object]:
    """A compiled model and its graph-mode training step for one loss variant."""
    heatmap = (HeatmapLossConfig(method=None) if variant == "cce"
               else HeatmapLossConfig(method=variant, penalty="outside_fraction", weight=1.0))
    model = models.build_model(backbone, heatmap=heatmap, weights=None,
                               input_shape=INPUT_SHAPE, n_classes=N_CLASSES, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-6))
    model.optimizer.build(model.trainable_variables)
    return model, tf.function(model.train_step)


def time_call(run) -> float:
    """Seconds for one call of ``run()``, waiting for its result."""
    start = time.perf_counter()
    result = run()
    float(result["loss"]) if isinstance(result, dict) else float(result)  # wait for the result
    return time.perf_counter() - start


def flat_classifier(backbone: str, seed: int) -> keras.Model:
    """The thesis's network as one flat functional model with sigmoid outputs."""
    keras.utils.set_random_seed(seed)
    if backbone == "vgg16":
        conv = keras.applications.VGG16(include_top=False, weights=None, input_shape=INPUT_SHAPE)
        hidden = conv.output  # block5_pool
    else:
        conv = models.small_cnn_backbone(INPUT_SHAPE, seed=seed)
        hidden = keras.layers.MaxPooling2D(2)(conv.output)
    hidden = keras.layers.Flatten()(hidden)
    hidden = keras.layers.Dense(100, activation="relu", kernel_initializer="he_uniform")(hidden)
    outputs = keras.layers.Dense(N_CLASSES, activation="sigmoid")(hidden)
    return keras.Model(conv.inputs[0], outputs)


def thesis_style_step(model: keras.Model, layer: str, optimizer: keras.optimizers.Optimizer,
                      x: tf.Tensor, y: tf.Tensor, irrelevant_small: tf.Tensor) -> tf.Tensor:
    """One eager batch-1 step the way the thesis did it (the reference, not for use)."""
    grad_model = keras.Model(model.inputs, [model.get_layer(layer).output, model.output])
    with tf.GradientTape() as outer:
        with tf.GradientTape() as inner:
            activations, probabilities = grad_model(x)
            predicted = int(tf.argmax(probabilities[0]))
            score = probabilities[:, predicted]
        gradients = inner.gradient(score, activations)
        heatmap = tf.nn.relu(tf.reduce_mean(activations * gradients, axis=-1))[0]
        heatmap = heatmap / tf.reduce_max(heatmap)
        heat_term = tf.reduce_mean(heatmap * irrelevant_small)
        loss = tf.reduce_mean(tf.square(probabilities - y)) + heat_term
    variables = model.trainable_variables
    optimizer.apply_gradients(zip(outer.gradient(loss, variables), variables))
    return loss


def thesis_style_runner(backbone: str, seed: int):
    """A zero-argument callable running one thesis-style step on one image."""
    model = flat_classifier(backbone, seed)
    optimizer = keras.optimizers.Adam(1e-6)
    x, y = make_batch(1, seed)
    layer = LAYERS[backbone]
    grid = tuple(model.get_layer(layer).output.shape[1:3])
    irrelevant = tf.image.resize(y["mask"][..., None], grid, method="area")[0, ..., 0]
    return lambda: thesis_style_step(model, layer, optimizer, x, y["label"], irrelevant)


def benchmark_backbone(backbone: str, batch_size: int, repeats: int, warmup: int,
                       reference_steps: int, seed: int) -> dict:
    """Interleaved rounds: every round times each variant once and the reference
    ``reference_steps`` times (per-image mean), in a freshly shuffled order. Ratios are taken
    within a round (same machine load) and their median is reported."""
    x, y = make_batch(batch_size, seed)
    runners = {variant: (lambda step=build_variant(backbone, variant)[1]: step((x, y)))
               for variant in VARIANTS}
    reference = thesis_style_runner(backbone, seed)
    for run in list(runners.values()) + [reference]:
        for _ in range(warmup):
            time_call(run)
    times: dict[str, list[float]] = {name: [] for name in VARIANTS + ("thesis_style",)}
    order = list(times)
    shuffler = random.Random(seed)
    for _ in range(repeats):
        shuffler.shuffle(order)
        for name in order:
            if name == "thesis_style":
                times[name].append(statistics.fmean(time_call(reference)
                                                    for _ in range(reference_steps)))
            else:
                times[name].append(time_call(runners[name]))
    result: dict = {f"{variant}_step_s": statistics.median(times[variant])
                    for variant in VARIANTS}
    for variant in VARIANTS[1:]:
        result[f"ratio_{variant}"] = statistics.median(
            a / b for a, b in zip(times[variant], times["cce"]))
    result["thesis_style_per_image_s"] = statistics.median(times["thesis_style"])
    result["speedup_vs_thesis_style"] = statistics.median(
        ref / (ours / batch_size) for ref, ours in zip(times["thesis_style"], times["hirescam"]))
    result["spread_s"] = {name: [min(values), max(values)] for name, values in times.items()}
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a few minutes)")
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    parser.add_argument("--backbones", nargs="+", default=["vgg16", "small_cnn"],
                        choices=sorted(LAYERS))
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeats", type=int, help="timed steps per variant (overrides)")
    args = parser.parse_args(argv)

    repeats = {"vgg16": 4 if args.quick else 10, "small_cnn": 15 if args.quick else 40}
    reference_steps = {"vgg16": 2 if args.quick else 4, "small_cnn": 4 if args.quick else 8}
    warmup = {"vgg16": 1 if args.quick else 2, "small_cnn": 2}
    if args.repeats:
        repeats = {name: args.repeats for name in repeats}
    device = "GPU" if tf.config.list_physical_devices("GPU") else "CPU"
    print(f"device: {device}; batch {args.batch_size}; input {INPUT_SHAPE}; "
          f"TF {tf.__version__}, Keras {keras.__version__}", flush=True)

    measured = {}
    for backbone in args.backbones:
        measured[backbone] = benchmark_backbone(backbone, args.batch_size, repeats[backbone],
                                                warmup[backbone], reference_steps[backbone],
                                                seed=args.seed)
        print(f"{backbone}: done", flush=True)

    print("\n| backbone | loss | median step (s) | min-max (s) | x CCE (paired median) | "
          "per image (ms) |")
    print("|---|---|---|---|---|---|")
    for backbone, values in measured.items():
        for variant in VARIANTS:
            step = values[f"{variant}_step_s"]
            low, high = values["spread_s"][variant]
            ratio = 1.0 if variant == "cce" else values[f"ratio_{variant}"]
            print(f"| {backbone} | {variant} | {step:.4f} | {low:.3f}-{high:.3f} | "
                  f"{ratio:.3f} | {1000 * step / args.batch_size:.2f} |")
        per_image = values["thesis_style_per_image_s"]
        low, high = values["spread_s"]["thesis_style"]
        print(f"| {backbone} | thesis-style HiResCAM (batch 1, eager, rebuilt), per step | "
              f"{per_image:.4f} | {low:.3f}-{high:.3f} | | {1000 * per_image:.2f} |")
        print(f"| {backbone} | speedup per image, HiResCAM batch {args.batch_size} vs "
              f"thesis-style (paired median) | | | | {values['speedup_vs_thesis_style']:.1f}x |")

    # The headline throughput uses the thesis's backbone (VGG16) when it was measured.
    main_backbone = "vgg16" if "vgg16" in measured else args.backbones[0]
    headline = measured[main_backbone]
    output: dict = {
        "backbone": {name: {key: values[key] for key in JSON_KEYS}
                     for name, values in measured.items()},
        "thesis_style_per_image_s": headline["thesis_style_per_image_s"],
        "ours_per_image_s": headline["hirescam_step_s"] / args.batch_size,
        "speedup_vs_thesis_style": headline["speedup_vs_thesis_style"],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    print(f"\nheadline ({main_backbone}): thesis-style {output['thesis_style_per_image_s']:.4f} "
          f"s/image, ours {output['ours_per_image_s']:.4f} s/image, speedup "
          f"{output['speedup_vs_thesis_style']:.1f}x; peak RSS {output['peak_rss_mb']:.0f} MB")
    if args.json:
        files.write_json(args.json, output)
    return output


if __name__ == "__main__":
    main()
