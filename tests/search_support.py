"""A tiny learning-rate search (Dense model on random data) recorded in a real registry.

Run as a script by ``tests/test_search.py`` so that a search can be killed mid-way:

    python tests/search_support.py RESULTS_DIR MAX_TRIALS [RECORD_DELAY_S]
"""

from __future__ import annotations

import sys
import time

import numpy as np


def toy_spec(max_trials: int, seed: int = 0, n: int = 64, lr_max: float = 3e-3,
             replicates: bool = False):
    from heatmaploss.runs.spec import Hyperparameter, SearchSpec, TrialSettings

    if replicates:
        return SearchSpec(key=f"toy-replicates-seed{seed}", experiment="exp1",
                          protocol="controlled", group="replicates", profile="smoke", seed=seed,
                          max_trials=max_trials, replicates=True,
                          fixed={"learning_rate": 1e-3},
                          training=TrialSettings(epochs=1, objective="val_loss"),
                          config={"model": "dense"}, data={"toy_examples": n})
    return SearchSpec(key=f"toy-seed{seed}", experiment="exp1", protocol="controlled",
                      group="cce", profile="smoke", seed=seed, max_trials=max_trials,
                      training=TrialSettings(epochs=2, objective="val_loss"),
                      space=(Hyperparameter("learning_rate", 3e-4, lr_max),),
                      config={"model": "dense"}, data={"toy_examples": n})


def toy_evaluate(model):
    """The toy model's accuracy on the toy data (a study's evaluation)."""
    from heatmaploss.runs.study import Evaluation

    _, data = toy_data(0)
    accuracy = float(np.mean([np.mean(np.argmax(model.predict_on_batch(x), 1) == np.argmax(y, 1))
                              for x, y in data.as_numpy_iterator()]))
    return Evaluation([{"metric": "accuracy", "value": accuracy}], accuracy)


def toy_study(max_trials: int, seed: int = 0, replicates: bool = False):
    """The toy search as a study of the study runner."""
    from heatmaploss.runs.study import Study

    return Study(spec=toy_spec(max_trials, seed, replicates=replicates), build_model=build_toy,
                 make_data=toy_data, evaluate=toy_evaluate)


def build_toy(learning_rate):
    import keras

    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4, activation="softmax")])
    model.compile(keras.optimizers.Adam(learning_rate), "categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def toy_data(shuffle_seed: int, n: int = 64):
    import keras
    import tensorflow as tf

    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 8)).astype("float32")
    y = keras.utils.to_categorical(rng.integers(0, 4, n), 4)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    return data.shuffle(4, seed=shuffle_seed), data


def run(results: str, max_trials: int, delay: float = 0.0, seed: int = 0,
        replicates: bool = False, crash_after: int | None = None) -> list[str]:
    """Run the toy search, recording every trial in ``<results>/registry.sqlite``.

    ``crash_after``: the process exits (as if killed) once this many trials are recorded.
    """
    import os

    from heatmaploss.project.paths import output_dirs
    from heatmaploss.registry import Registry
    from heatmaploss.runs import search, study

    spec = toy_spec(max_trials, seed, replicates=replicates)
    with Registry(results_dir=results) as registry:
        search_id = study.register(spec, registry)
        recorded = study.recorder(registry, search_id, spec)
        known, redo = study.resume_state(registry, search_id)
        count = [0]

        def record(rec: dict) -> None:
            recorded(rec)
            count[0] += 1
            if crash_after is not None and count[0] >= crash_after:
                os._exit(3)
            time.sleep(delay)  # widens the window in which a test kills the search

        return search.run_search(spec, build_toy, toy_data, output_dirs(results), record,
                                 progress=False, recorded=known, redo=redo)


if __name__ == "__main__":
    done = run(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]) if len(sys.argv) > 3 else 0.0,
               replicates="--replicates" in sys.argv,
               crash_after=int(sys.argv[sys.argv.index("--crash-after") + 1])
               if "--crash-after" in sys.argv else None)
    print("completed:", ",".join(done))
