"""heatmaploss.models.reuse: a pooled model trains exactly as a freshly built one, untraced."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import keras
from heatmaploss import models
from heatmaploss.losses import HeatmapLossConfig
from heatmaploss.models import reuse
from heatmaploss.models.reuse import ModelPool, copy_variables, for_evaluation


@pytest.fixture(scope="module")
def batches():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (16, 105, 135, 3)).astype("float32")
    y = {"label": keras.utils.to_categorical(rng.integers(0, 4, 16), 4).astype("float32"),
         "mask": (rng.uniform(size=(16, 105, 135)) > 0.5).astype("float32")}
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(8), x


def _build(seed: int, learning_rate: float, weight: float = 1.0) -> keras.Model:
    keras.backend.clear_session()  # as each trial of a search does
    keras.utils.set_random_seed(seed)
    model = models.build_model("small_cnn", seed=seed,
                               heatmap=HeatmapLossConfig(method="hirescam", weight=weight))
    model.compile(optimizer=keras.optimizers.Adam(learning_rate))
    return model


def _train(model: keras.Model, data) -> list[np.ndarray]:
    model.fit(data, epochs=2, verbose=0)
    return [w.copy() for w in model.get_weights()]


def test_pooled_model_trains_exactly_as_a_fresh_one(batches):
    data, _ = batches
    pool = ModelPool()
    first = pool.adopt(_build(1, 1e-3))
    reference = _train(first, data)
    traced = first.train_function
    other = pool.adopt(_build(2, 3e-4))  # another seed and learning rate: the same graph
    assert other is first and pool.reused == 1
    assert float(other.optimizer.learning_rate) == pytest.approx(3e-4)
    assert int(other.optimizer.iterations) == 0
    seed2 = _train(other, data)
    again = pool.adopt(_build(1, 1e-3))
    assert again is first and again.train_function is traced  # not traced again
    repeat = _train(again, data)
    fresh = _train(_build(1, 1e-3), data)
    assert all(np.array_equal(a, b) for a, b in zip(reference, repeat))
    assert all(np.array_equal(a, b) for a, b in zip(reference, fresh))
    assert not all(np.array_equal(a, b) for a, b in zip(reference, seed2))


def test_different_loss_settings_are_not_pooled(batches):
    pool = ModelPool()
    first = pool.adopt(_build(1, 1e-3, weight=1.0))
    other = pool.adopt(_build(1, 1e-3, weight=3.0))  # λ is traced into the graph
    assert other is not first and pool.reused == 0 and len(pool) == 2
    schedule = keras.optimizers.schedules.ExponentialDecay(1e-3, 10, 0.5)
    model = _build(1, 1e-3)
    model.compile(optimizer=keras.optimizers.Adam(schedule))
    assert pool.key(model) is None and pool.adopt(model) is model
    with pytest.raises(ValueError, match="capacity=0"):
        ModelPool(0)


def test_random_seed_states_are_copied():
    """A dropout layer's seed state travels with the weights: same seed, same masks."""
    def build(seed):
        keras.backend.clear_session()
        keras.utils.set_random_seed(seed)
        model = keras.Sequential([keras.Input((8,)), keras.layers.Dropout(0.5),
                                  keras.layers.Dense(2)])
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        return model

    x, y = np.ones((32, 8), "float32"), np.zeros((32, 2), "float32")
    pool = ModelPool()
    results = []
    for seed in (5, 6, 5):
        model = pool.adopt(build(seed))
        model.fit(x, y, epochs=3, batch_size=8, shuffle=False, verbose=0)
        results.append(model.get_weights()[0].copy())
    assert pool.reused == 2
    assert np.array_equal(results[0], results[2]) and not np.array_equal(results[0], results[1])


def test_loaded_models_share_one_evaluation_model(tmp_path, batches):
    _, x = batches
    paths = []
    for seed in (1, 2):
        path = tmp_path / f"m{seed}.keras"
        models.save_model(_build(seed, 1e-3), path)
        paths.append(path)
    keras.backend.clear_session()
    a = models.load_model(paths[0])
    expected_a = np.asarray(a(x[:4]))
    kept = for_evaluation(a)
    b = models.load_model(paths[1])
    expected_b = np.asarray(b(x[:4]))
    same = for_evaluation(b)
    assert same is kept
    assert np.allclose(np.asarray(same(x[:4])), expected_b)
    assert not np.allclose(expected_a, expected_b)
    with pytest.raises(ValueError, match="variables differ"):
        copy_variables(keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]), a)
    reuse.clear()


def test_fresh_session_clears_keras_state_and_freezes_the_imports_once(monkeypatch):
    import gc

    monkeypatch.setattr(reuse, "_imports_frozen", False)
    try:
        keras.layers.Dense(1)
        reuse.fresh_session()
        frozen = gc.get_freeze_count()
        assert frozen > 10_000  # TensorFlow, Keras and the project, out of the collector's way
        assert keras.layers.Dense(1).name == "dense"  # Keras's name counters start again
        reuse.fresh_session()
        assert gc.get_freeze_count() <= frozen  # later calls freeze nothing more
    finally:
        gc.unfreeze()
