#!/usr/bin/env python
"""Why the first ACDC classifiers learned nothing: each cause measured on the U-Net's encoder.

Needs a results folder where notebook 05 has run (its trained U-Net and its data):

    python run_all.py --profile quick --only 05 --results-dir /tmp/acdc
    python benchmarks/acdc_classifier_protocol.py --results-dir /tmp/acdc/quick --json out.json

On the frozen encoder's features of the training patients (as they are and ``--copies``
augmented copies) and of the validation patients it measures (``docs/acdc.md`` § The chapter's
classifiers):

1. **class weights in the label** — the same linear pooled head, normal vs diseased, trained
   with weights written into the one-hot label (the first protocol) and with one-hot labels and
   class-balanced oversampling: balanced accuracy on the (unaugmented) training patients and on
   the validation patients;
2. **a flattened head** — the first protocol's head (2 × 2 × 2 max-pool, flatten, two dense
   ReLU layers of 64 with dropout) against the pooled head, one volume at a time, weighted
   labels as then: dense units still alive on the training volumes and validation balanced
   accuracy after ``--epochs`` epochs at each learning rate;
3. **one volume vs ED + ES** — logistic regression (C = 1, balanced class weights) on the
   average-pooled features, per volume and per patient, for both tasks.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _balanced(truth, predicted) -> float:
    from sklearn.metrics import balanced_accuracy_score

    return float(balanced_accuracy_score(truth, predicted))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results-dir", required=True, help="a profile's results folder "
                        "where notebook 05 ran (e.g. results/quick)")
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--seed", type=int, default=0, help="the notebook's seed")
    parser.add_argument("--copies", type=int, default=3, help="augmented copies")
    parser.add_argument("--epochs", type=int, default=6, help="epochs of cause 2")
    parser.add_argument("--json", default=None, help="write the results to this JSON file")
    args = parser.parse_args(argv)

    import dataclasses

    import keras
    import numpy as np
    from keras import layers
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from heatmaploss import project
    from heatmaploss.chapters.acdc import classifiers, networks, run
    from heatmaploss.models import HeatmapLossModel
    from heatmaploss.registry import Registry

    ctx = project.open_run(args.profile, args.seed, args.results_dir, progress=False)
    settings = dataclasses.replace(ctx.profile.acdc, classifier_augmentations=args.copies)
    ctx = dataclasses.replace(ctx, profile=dataclasses.replace(ctx.profile, acdc=settings))
    data = run.load_data(ctx, "")
    with Registry(url=ctx.database_url, results_dir=ctx.results) as registry:
        unets = registry.models(experiment="acdc_segmentation")
    if unets.empty:
        parser.error(f"{args.results_dir}: no trained U-Net recorded; run notebook 05 first")
    source = classifiers.ClassifierSource(ctx, data, ctx.results / unets["model_path"].iloc[-1])
    train, validation = source.stored("train"), source.stored("validation")
    channels = train.features.shape[-1] // 2
    results: dict = {}

    # 1. Weights in the label vs balanced oversampling (pairs, linear pooled head).
    targets = source.train.targets("binary")
    y_train, y_val = targets[train.patient], source.evaluation["validation"].targets("binary")
    weights = len(targets) / (2 * np.bincount(targets, minlength=2))
    clean = np.arange(len(train.patient)) < len(targets)  # the unaugmented copy comes first
    mean, variance = source.pooled_statistics
    cause1 = {}
    for name in ("weights_in_label", "oversampling"):
        keras.utils.set_random_seed(1)
        head = networks.build_pooled_head(train.features.shape[1:], 2, 0, mean=mean,
                                          variance=variance)
        model = HeatmapLossModel(networks.feature_backbone(train.features.shape[1:]), head)
        model.compile(optimizer=keras.optimizers.Adam(1e-2))
        if name == "weights_in_label":
            x, y = train.features, np.eye(2, dtype=np.float32)[y_train] * weights[y_train, None]
        else:
            order = classifiers.balanced_indices(y_train, np.random.default_rng(1))
            x, y = train.features[order], np.eye(2, dtype=np.float32)[y_train[order]]
        model.fit(x, y.astype(np.float32), batch_size=16, epochs=30, verbose=0)
        cause1[name] = {
            "train": _balanced(targets, model.predict(train.features[clean], verbose=0).argmax(1)),
            "validation": _balanced(y_val, model.predict(validation.features, verbose=0).argmax(1))}
    results["class_weights"] = cause1

    # 2. Flattened vs pooled head, one volume at a time, weighted labels (the first protocol).
    def volumes(stored, patient_targets):
        x = np.concatenate([stored.features[..., :channels], stored.features[..., channels:]])
        return x, np.concatenate([patient_targets[stored.patient]] * 2)

    x_train, v_train = volumes(train, targets)
    x_val, v_val = volumes(validation, y_val)
    w = len(v_train) / (2 * np.bincount(v_train, minlength=2))
    cause2 = {}
    for head_name in ("flatten", "pooled"):
        for lr in (1e-4, 1e-3):
            keras.utils.set_random_seed(1)
            features = keras.Input(x_train.shape[1:])
            if head_name == "flatten":
                h = layers.Flatten()(layers.MaxPooling3D(2)(features))
            else:
                pooled = x_train.mean(axis=(1, 2, 3))
                h = layers.Normalization(mean=pooled.mean(0), variance=pooled.var(0) + 1e-6)(
                    layers.GlobalAveragePooling3D()(features))
            hidden = layers.Dense(64, activation="relu", kernel_initializer="he_uniform")(h)
            h = layers.Dropout(0.5)(layers.Dense(64, activation="relu",
                                                 kernel_initializer="he_uniform")(
                layers.Dropout(0.5)(hidden)))
            head = keras.Model(features, layers.Dense(2)(h))
            probe = keras.Model(features, hidden)
            model = HeatmapLossModel(networks.feature_backbone(x_train.shape[1:]), head)
            model.compile(optimizer=keras.optimizers.Adam(lr))
            labels = (np.eye(2)[v_train] * w[v_train, None]).astype(np.float32)
            model.fit(x_train, labels, batch_size=8, epochs=args.epochs, verbose=0)
            alive = int((probe.predict(x_train, verbose=0).max(axis=0) > 0).sum())
            cause2[f"{head_name}_lr{lr:g}"] = {
                "alive_units": alive, "of": 64,
                "validation": _balanced(v_val, model.predict(x_val, verbose=0).argmax(1))}
    results["head"] = cause2

    # 3. One volume vs ED + ES, logistic regression on average-pooled features.
    cause3 = {}
    for task in ("binary", "groups"):
        t_train = source.train.targets(task)[train.patient]
        t_val = source.evaluation["validation"].targets(task)
        pooled_train, pooled_val = train.features.mean(axis=(1, 2, 3)), \
            validation.features.mean(axis=(1, 2, 3))
        for kind in ("volume", "pair"):
            if kind == "pair":
                a, b, ya = pooled_train, pooled_val, t_train
                yb = t_val
            else:
                a = np.concatenate([pooled_train[:, :channels], pooled_train[:, channels:]])
                b = np.concatenate([pooled_val[:, :channels], pooled_val[:, channels:]])
                ya, yb = np.concatenate([t_train] * 2), np.concatenate([t_val] * 2)
            clf = make_pipeline(StandardScaler(), LogisticRegression(
                C=1.0, class_weight="balanced", max_iter=5000)).fit(a, ya)
            cause3[f"{task}_{kind}"] = _balanced(yb, clf.predict(b))
    results["input"] = cause3

    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
