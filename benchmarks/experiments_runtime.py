#!/usr/bin/env python
"""Estimate the wall time of notebooks 03 + 04 for a profile from measured step times.

For every search of the profile (protocol × group) this times training steps of the group's
exact recipe (backbone, trainability, loss, batch size) and the evaluation of one batch with the
three explainers, then multiplies by the profile's sizes:

    training  = trials × epochs × ceil(n_train / batch) × step time   (early stopping ignored:
                an upper bound for the controlled protocol)
    evaluate  = models × n_test × per-image evaluation time

VGG16 is timed with random weights (``weights=None``: same compute as ImageNet weights, and no
download needed). Example (on the GPU machine):

    python benchmarks/experiments_runtime.py --profile thesis --json estimate.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from pathlib import Path



def _step_time(model, dataset, warmup: int, repeats: int) -> float:
    """Seconds per training step: one fit of ``repeats`` steps after a warm-up fit."""
    model.fit(dataset, steps_per_epoch=warmup, epochs=1, shuffle=False, verbose=0)
    start = time.perf_counter()
    model.fit(dataset, steps_per_epoch=repeats, epochs=1, shuffle=False, verbose=0)
    return (time.perf_counter() - start) / repeats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="thesis")
    parser.add_argument("--repeats", type=int, default=20, help="timed steps per recipe")
    parser.add_argument("--json", help="write the estimate here")
    args = parser.parse_args(argv)

    import tensorflow as tf

    from heatmaploss import models, synthetic
    from heatmaploss.chapters.experiments import plan, run
    from heatmaploss.project.profiles import get_profile
    from heatmaploss.runs import evaluate

    profile = get_profile(args.profile)
    out = {"profile": profile.name, "device": tf.config.list_physical_devices("GPU") and "gpu"
           or "cpu", "searches": {}}
    total = 0.0
    data = synthetic.generate(1, 64, 0)
    masks = ~data.region("heart")
    evaluation_timed: dict[str, float] = {}
    for spec, recipe in plan.search_specs(1, profile, 0):
        recipe = dataclasses.replace(recipe, backbone_weights=None)
        model = run.build_model(recipe, 1e-5)
        batch = recipe.batch_size
        dataset = models.make_dataset(data.images, data.labels, masks, batch_size=batch,
                                      shuffle=False).repeat()
        step = _step_time(model, dataset, 3, args.repeats)
        n_train = spec.data["train"]["n_per_class"] * 4
        n_test = spec.data["test"]["n_per_class"] * 4
        train_s = spec.max_trials * recipe.epochs * math.ceil(n_train / batch) * step
        if recipe.backbone not in evaluation_timed:
            eval_batch = profile.experiments.eval_batch_size
            probe = max(1, min(eval_batch, 64))
            start = time.perf_counter()
            evaluate.evaluate_model(model, 1, probe // 4 or 1, 0, chunk_size=probe,
                                    batch_size=probe)  # includes tracing: warm-up
            start = time.perf_counter()
            evaluate.evaluate_model(model, 1, probe // 4 or 1, 1, chunk_size=probe,
                                    batch_size=probe)
            evaluation_timed[recipe.backbone] = (time.perf_counter() - start) / (4 * (probe // 4 or 1))
        eval_s = spec.max_trials * n_test * evaluation_timed[recipe.backbone]
        out["searches"][f"{spec.protocol}/{spec.group}"] = {
            "step_s": step, "batch": batch, "epochs": recipe.epochs, "trials": spec.max_trials,
            "train_images": n_train, "train_s_per_experiment": train_s,
            "eval_s_per_image": evaluation_timed[recipe.backbone],
            "eval_s_per_experiment": eval_s}
        total += train_s + eval_s
        print(f"{spec.protocol:10s} {spec.group:8s} step {step * 1e3:8.2f} ms (batch {batch}) "
              f"train {train_s / 3600:6.2f} h  eval {eval_s / 3600:5.2f} h per experiment",
              flush=True)
        del model
        tf.keras.backend.clear_session()
    out["total_h_both_experiments"] = 2 * total / 3600
    print(f"estimated notebooks 03 + 04 ({profile.name} profile): "
          f"{out['total_h_both_experiments']:.1f} h")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
