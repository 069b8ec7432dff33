"""A tiny learning-rate search (Dense model on random data) recorded in a real registry.

Run as a script by ``tests/test_search.py`` so that a search can be killed mid-way:

    python tests/search_support.py RESULTS_DIR MAX_TRIALS [RECORD_DELAY_S]
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "lib"))


def toy_spec(max_trials: int, seed: int = 0, n: int = 64):
    from heatmaploss import profiles, protocols, search

    recipe = protocols.group_settings("controlled", "cce", profiles.get_profile("smoke").experiments)
    recipe = dataclasses.replace(recipe, objective="val_loss", epochs=2)
    return search.SearchSpec(experiment=1, protocol="controlled", recipe=recipe, profile="smoke",
                             seed=seed, max_trials=max_trials, data={"toy_examples": n})


def build_toy(recipe, learning_rate):
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


def run(results: str, max_trials: int, delay: float = 0.0, seed: int = 0) -> list[str]:
    """Run the toy search, recording every trial in ``<results>/registry.sqlite``."""
    from heatmaploss import search
    from heatmaploss.registry import Registry

    spec = toy_spec(max_trials, seed)
    with Registry(results_dir=results) as registry:
        search_id = registry.get_or_create_search(
            experiment="exp1", protocol=spec.protocol, group=spec.group, name=spec.key,
            profile=spec.profile, seed=spec.seed)

        def record(rec: dict) -> None:
            registry.record_model(search_id, rec["trial_id"], seed=rec["trial_seed"],
                                  hyperparameters={"learning_rate": rec["learning_rate"]},
                                  epochs=rec["epochs_run"], best_epoch=rec["best_epoch"],
                                  wall_time_s=rec["train_seconds"],
                                  val_loss=rec["validation"].get("val_loss"),
                                  model_path=rec["model_path"])
            time.sleep(delay)  # widens the window in which a test kills the search

        return search.run_search(spec, build_toy, toy_data, results, record, progress=False)


if __name__ == "__main__":
    done = run(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]) if len(sys.argv) > 3 else 0.0)
    print("completed:", ",".join(done))
