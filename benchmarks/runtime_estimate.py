#!/usr/bin/env python
"""Estimate a profile's wall time per chapter (03, 04, 06) from step times measured here.

Run it on the machine that will run the profile (e.g. a Colab GPU, in a few minutes) to know
what ``python run_all.py --profile thesis`` will cost before starting it. For every distinct
model of a chapter — each protocol × group of experiments 1 and 2, each kind of loss of the
shortcut chapter — it times training steps at the profile's batch size, the forward pass, and
the evaluation (explainers, with the chapter's extra layer), then multiplies by the profile's
sizes:

    training   = models × epochs × (ceil(n_train / batch) × step + n_val × forward)
    evaluation = evaluated models × (n_test × per-image evaluation [+ probes, test sets])

Early stopping is ignored (an upper bound). VGG16 is timed with random weights (the compute of
ImageNet weights, no download). Worker start-up and Python overhead are not counted. The
shortcut chapter's dose-response and λ sweep depend on which method works best; they are
estimated with HiResCAM as the best method. ACDC (notebook 05) is not estimated.

Example:

    python benchmarks/runtime_estimate.py --profile thesis --json estimate.json
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


def _per_image(function, n: int) -> float:
    """Seconds per image of ``function()`` over ``n`` images, after a warm-up call."""
    function()
    start = time.perf_counter()
    function()
    return (time.perf_counter() - start) / n


def _training_data(batch: int, n_per_class: int = 16):
    from heatmaploss import models, synthetic

    data = synthetic.generate(1, n_per_class, 0, decoy=1.0)
    return models.make_dataset(data.images, data.labels, ~data.region("heart"),
                               batch_size=batch, shuffle=False,
                               required=data.region("heart")).repeat(), data


def _duration(seconds: float) -> str:
    """``1.7 h`` from an hour up, else ``12.5 min`` or ``42 s`` (toy profiles take seconds)."""
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.1f} min" if seconds >= 600 else f"{seconds:.0f} s"


def _record(out: dict, name: str, row: dict, train: float, evaluation: float, label: str,
            unit: str) -> float:
    """Store one model kind's estimate (seconds → hours), print its line, return its seconds."""
    out[name] = {**row, "training_h": train / 3600, "evaluation_h": evaluation / 3600}
    print(f"  {label}  {_duration(train + evaluation):>9s}{unit}", flush=True)
    return train + evaluation


def experiments(profile, repeats: int) -> dict:
    """Notebooks 03 and 04: one search per protocol and group, both experiments."""
    from heatmaploss.chapters.experiments import plan, run
    from heatmaploss.chapters.shortcut.evaluation import probabilities
    from heatmaploss.runs import evaluate

    out, total = {}, 0.0
    for spec, recipe in plan.search_specs(1, profile, 0):
        recipe = dataclasses.replace(recipe, backbone_weights=None)
        model = run.build_model(recipe, 1e-5)
        dataset, data = _training_data(recipe.batch_size)
        step = _step_time(model, dataset, 2, repeats)
        n = len(data.images)
        forward = _per_image(lambda: probabilities(model, data.images), n)
        explain = _per_image(lambda: evaluate.evaluate_model(
            model, 1, n // 4, 0, chunk_size=n, batch_size=min(n, 64)), n)
        sizes = {k: spec.data[k]["n_per_class"] * 4 for k in ("train", "val", "test")}
        train = spec.max_trials * recipe.epochs * (
            math.ceil(sizes["train"] / recipe.batch_size) * step + sizes["val"] * forward)
        evaluation = spec.max_trials * sizes["test"] * explain
        total += _record(
            out, f"{spec.protocol}/{spec.group}",
            {"models": spec.max_trials, "step_s": step, "batch": recipe.batch_size,
             "forward_s_per_image": forward, "evaluation_s_per_image": explain},
            train, evaluation, f"{spec.protocol:10s} {spec.group:8s} step {step * 1e3:8.1f} ms "
            f"(batch {recipe.batch_size})", " per experiment")
    return {"searches": out, "hours_per_experiment": total / 3600}


def shortcut(profile, repeats: int) -> dict:
    """Notebook 06: every group of every condition of the profile."""
    from heatmaploss.chapters.shortcut import evaluation as ev
    from heatmaploss.chapters.shortcut import plan
    from heatmaploss.runs import evaluate

    s = profile.shortcut
    s_random = dataclasses.replace(s, backbone_weights=None)
    groups = plan.chapter_groups(s, s.conditions)
    best = next(g for g in groups if g.name == "hirescam")
    if "dose" in s.conditions:
        groups += plan.dose_groups(s, best)
    if "lambda" in s.conditions:
        groups += plan.lambda_groups(s, best)
    timed: dict[tuple, dict] = {}
    out, total = {}, 0.0
    early = plan.EARLY_LAYER[s.backbone]
    for group in groups:
        signature = (group.kind, group.method, group.penalty, group.target, group.layers,
                     group.inside)
        if signature not in timed:
            model = plan.build_model(group, s_random, 1e-5, heatmap_weight=1.0)
            dataset, data = _training_data(s.batch_size)
            n = len(data.images)
            timed[signature] = {
                "step_s": _step_time(model, dataset, 2, repeats),
                "forward_s_per_image": _per_image(lambda: ev.probabilities(model, data.images),
                                                  n),
                "evaluation_s_per_image": _per_image(lambda: evaluate.evaluate_model(
                    model, 1, n // 4, 0, chunk_size=n, batch_size=min(n, 64),
                    explainers=ev.EXPLAINERS, regions=ev.REGIONS, cam_layers=(early,),
                    data_options={"decoy": 1.0}), n)}
        t = timed[signature]
        sets = len(plan.training_sets(group)[0])
        n_train = group.n_train_per_class * 4 * sets
        trained = (s.n_search_trials if group.base is None else 0) + group.n_seeds
        train = trained * s.epochs * (math.ceil(n_train / s.batch_size) * t["step_s"]
                                      + s.n_val_per_class * 4 * t["forward_s_per_image"])
        evaluation = group.n_seeds * (
            3 * s.n_test_per_class * 4 * t["forward_s_per_image"]
            + s.n_explain_per_class * 4 * t["evaluation_s_per_image"]
            + s.n_probe_per_class * 4 * t["forward_s_per_image"])
        total += _record(out, group.name, {"condition": group.condition, "models": trained, **t},
                         train, evaluation, f"{group.condition:11s} {group.name:24s} "
                         f"{trained:3d} models step {t['step_s'] * 1e3:8.1f} ms", "")
    return {"groups": out, "hours": total / 3600}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="thesis")
    parser.add_argument("--chapters", nargs="+", default=["03", "04", "06"],
                        choices=["03", "04", "06"])
    parser.add_argument("--repeats", type=int, default=10, help="timed steps per model")
    parser.add_argument("--json", help="write the estimate here")
    args = parser.parse_args(argv)

    import tensorflow as tf

    from heatmaploss.project.profiles import get_profile

    profile = get_profile(args.profile)
    gpus = tf.config.list_physical_devices("GPU")
    out = {"profile": profile.name, "device": gpus[0].name if gpus else "cpu",
           "repeats": args.repeats, "hours": {}}
    print(f"{profile.name} profile on {out['device']}")
    if {"03", "04"} & set(args.chapters):
        print("experiments 1 and 2 (per experiment):")
        out["experiments"] = experiments(profile, args.repeats)
        for chapter in {"03", "04"} & set(args.chapters):
            out["hours"][chapter] = out["experiments"]["hours_per_experiment"]
    if "06" in args.chapters:
        print("shortcut chapter:")
        out["shortcut"] = shortcut(profile, args.repeats)
        out["hours"]["06"] = out["shortcut"]["hours"]
    for chapter, hours in sorted(out["hours"].items()):
        print(f"notebook {chapter}: {_duration(hours * 3600)}")
    print(f"total: {_duration(sum(out['hours'].values()) * 3600)}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
