"""Backbones, HeatmapLossModel's training step, saving, data pipeline and a toy-task check."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
import keras  # noqa: E402
from heatmaploss import attribution as attr  # noqa: E402
from heatmaploss import losses, models, synthetic  # noqa: E402
from heatmaploss.losses import HeatmapLossConfig  # noqa: E402


def tiny_model(heatmap, input_shape=(24, 24, 1), seed=0, dtype="float32", filters=(8, 16, 16)):
    """conv-pool-conv-pool-conv backbone (last map 1/4 of the input) + dense head."""
    init = keras.initializers.GlorotUniform
    inputs = keras.Input(input_shape, dtype=dtype)
    hidden = inputs
    for index, width in enumerate(filters):
        hidden = keras.layers.Conv2D(width, 3, padding="same", activation="relu", dtype=dtype,
                                     kernel_initializer=init(seed + index))(hidden)
        if index < len(filters) - 1:
            hidden = keras.layers.MaxPooling2D(2, dtype=dtype)(hidden)
    backbone = keras.Model(inputs, hidden)
    head_in = keras.Input(tuple(hidden.shape[1:]), dtype=dtype)
    flat = keras.layers.Flatten(dtype=dtype)(head_in)
    logits = keras.layers.Dense(2, dtype=dtype, kernel_initializer=init(seed + 9))(flat)
    return models.HeatmapLossModel(backbone, keras.Model(head_in, logits), heatmap=heatmap)


def batch(n=4, shape=(24, 24), seed=0, n_classes=2, dtype=np.float32):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n,) + shape + (1,)).astype(dtype)
    labels = np.arange(n) % n_classes
    mask = np.ones((n,) + shape, dtype)
    mask[:, 6:18, 6:18] = 0
    return x, {"label": np.eye(n_classes, dtype=dtype)[labels], "mask": mask}


@pytest.mark.parametrize("method, penalty", [("hirescam", "outside_fraction"),
                                             ("gradcam", "thesis"), ("saliency", "l2")])
def test_training_loss_gradient_matches_finite_differences(method, penalty):
    """The step's gradient (second order through the map) equals central differences."""
    heatmap = HeatmapLossConfig(method=method, penalty=penalty, weight=3.0, inside_weight=0.5,
                                dilate=1)
    model = tiny_model(heatmap, input_shape=(8, 8, 1), dtype="float64", filters=(3, 4))
    x, y = batch(3, shape=(8, 8), dtype=np.float64)
    y["mask"][:, 2:6, 2:6] = 0
    y["mask"][:, :1] = 0
    y["required"] = np.zeros_like(y["mask"])
    y["required"][:, 3:5, 3:5] = 1
    variables = model.trainable_variables
    with tf.GradientTape() as tape:
        values = model.compute_heatmap_loss(x, y)
    assert float(values["penalty"]) > 0
    analytic = tape.gradient(values["loss"], variables)
    rng = np.random.default_rng(0)
    step = 1e-6
    for variable, gradient in zip(variables, analytic):
        flat = variable.numpy().reshape(-1)
        for position in rng.choice(flat.size, size=min(4, flat.size), replace=False):
            results = []
            for sign in (1, -1):
                shifted = flat.copy()
                shifted[position] += sign * step
                variable.assign(shifted.reshape(variable.shape))
                results.append(float(model.compute_heatmap_loss(x, y)["loss"]))
            variable.assign(flat.reshape(variable.shape))
            numeric = (results[0] - results[1]) / (2 * step)
            assert gradient.numpy().reshape(-1)[position] == pytest.approx(
                numeric, rel=1e-5, abs=1e-8), (variable.path, position)


def test_step_reports_stable_metrics_and_matches_direct_computation():
    heatmap = HeatmapLossConfig(method="hirescam", weight=2.0, classes=(1,))
    model = tiny_model(heatmap)
    model.compile(optimizer=keras.optimizers.SGD(0.0))
    x, y = batch(6)
    result = model.evaluate(x, y, batch_size=6, verbose=0, return_dict=True)
    assert set(result) == {"loss", "accuracy", "classification", "penalty"}
    labels = y["label"].argmax(1)
    maps = attr.hirescam(model, x, labels, None)
    mask = attr.area_downsample(y["mask"], tuple(maps.shape[1:]))
    per_sample = losses.outside_fraction_penalty(maps, mask).numpy()
    expected_penalty = per_sample[labels == 1].mean()
    classification = losses.classification_loss("cce", y["label"], model(x)).numpy().mean()
    assert result["penalty"] == pytest.approx(expected_penalty, rel=1e-5)
    assert result["loss"] == pytest.approx(classification + 2.0 * expected_penalty, rel=1e-5)


def test_cross_entropy_model_accepts_labels_only_and_heatmap_needs_mask():
    x, y = batch(4)
    plain = tiny_model(None)
    plain.compile(optimizer="adam")
    history = plain.fit(x, y["label"], epochs=1, verbose=0)
    assert history.history["penalty"] == [0.0]
    with_map = tiny_model(HeatmapLossConfig())
    with pytest.raises(ValueError, match="mask"):
        with_map.compute_heatmap_loss(x, y["label"])


def test_save_and_load_round_trip(tmp_path):
    heatmap = HeatmapLossConfig(method="gradcam", penalty="thesis", weight=0.5, classes=(0, 2),
                                classification="mse", class_mode="predicted")
    model = models.build_model("small_cnn", heatmap=heatmap, input_shape=(32, 40, 3), seed=3)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (8, 32, 40), dtype=np.uint8)
    data = models.make_dataset(images, np.arange(8) % 4, rng.random((8, 32, 40)) > 0.5,
                               batch_size=4)
    model.fit(data, epochs=1, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, models.HeatmapLossModel)
    assert loaded.heatmap == heatmap
    x = models.preprocess_images(images).numpy()
    np.testing.assert_allclose(loaded(x).numpy(), model(x).numpy(), rtol=1e-6)
    np.testing.assert_allclose(
        attr.compute_maps(loaded, x, np.zeros(8), "hirescam"),
        attr.compute_maps(model, x, np.zeros(8), "hirescam"), rtol=1e-5, atol=1e-7)
    loaded.fit(data, epochs=1, verbose=0)  # optimizer state restored and usable


def test_backbones_shapes_and_frozen_switch():
    model = models.build_model("small_cnn", seed=0)
    assert tuple(model.backbone.outputs[0].shape[1:]) == (14, 17, 64)  # same pooling
    assert model.backbone.layers[-1].name == "last_conv"
    valid = models.build_model("small_cnn", seed=0, pooling="valid")
    assert tuple(valid.backbone.outputs[0].shape[1:]) == (13, 16, 64)
    frozen = models.build_model("vgg16", weights=None, frozen=True, seed=0, pooling="valid")
    assert tuple(frozen.backbone.outputs[0].shape[1:]) == (6, 8, 512)
    assert frozen.backbone.layers[-1].name == "block5_conv3"
    assert len(frozen.trainable_variables) == 4  # the head's two dense layers only
    assert frozen(np.zeros((1, 105, 135, 3), np.float32)).shape == (1, 4)
    with pytest.raises(ValueError, match="backbone='resnet'"):
        models.build_model("resnet")
    with pytest.raises(ValueError, match="weights='imagenet'"):
        models.build_model("small_cnn", weights="imagenet")


def test_offline_imagenet_weights_raise_a_clear_error(monkeypatch):
    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: None -- "
                        "[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(keras.applications, "VGG16", offline)
    with pytest.raises(models.PretrainedWeightsUnavailable) as error:
        models.build_model("vgg16", weights="imagenet")
    message = str(error.value)
    assert "~/.keras/models/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5" in message
    assert "weights=None" in message and "small_cnn" in message


def test_three_dimensional_model_trains_with_hirescam_penalty():
    heatmap = HeatmapLossConfig(method="hirescam", weight=1.0, dilate=1, inside_weight=0.5)
    model = models.build_model("small_cnn", heatmap=heatmap, input_shape=(8, 16, 16, 1),
                               n_classes=3, seed=1)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 8, 16, 16, 1)).astype(np.float32)
    mask = np.ones((4, 8, 16, 16), np.float32)
    mask[:, 2:6, 4:12, 4:12] = 0
    y = {"label": np.eye(3, dtype=np.float32)[[0, 1, 2, 0]], "mask": mask,
         "required": 1 - mask}
    history = model.fit(x, y, epochs=1, batch_size=2, verbose=0)
    assert set(history.history) == {"loss", "accuracy", "classification", "penalty", "inside"}
    maps = attr.hirescam(model, x, np.array([0, 1, 2, 0]), None)
    assert maps.shape == (4, 1, 2, 2)


def test_make_dataset_format_and_validation():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 6, 7), dtype=np.uint8)
    masks = rng.random((5, 6, 7)) > 0.5
    data = models.make_dataset(images, [0, 1, 2, 3, 0], masks, required=~masks, batch_size=2,
                               shuffle=False)
    x, y = next(iter(data))
    assert x.shape == (2, 6, 7, 3) and x.dtype == tf.float32
    np.testing.assert_allclose(x.numpy()[..., 1], images[:2] / 127.5 - 1, atol=1e-6)
    assert set(y) == {"label", "mask", "required"}
    np.testing.assert_array_equal(y["label"].numpy(), np.eye(4)[[0, 1]])
    np.testing.assert_array_equal(y["mask"].numpy(), masks[:2])
    with pytest.raises(ValueError, match="labels must lie"):
        models.make_dataset(images, [0, 1, 2, 4, 0], masks)
    with pytest.raises(ValueError, match="mask has 4 entries"):
        models.make_dataset(images, [0, 1, 2, 3, 0], masks[:4])


def toy_task(n, seed):
    """Class = bar orientation in the centre AND a corner square outside the allowed centre."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    x = rng.normal(0, 0.2, (n, 24, 24, 1)).astype(np.float32)
    for image, label in zip(x, labels):
        offset = rng.integers(-2, 3)
        if label:
            image[11 + offset:13 + offset, 8:16] += 0.6
            image[1:7, 1:7] += 2.0
        else:
            image[8:16, 11 + offset:13 + offset] += 0.6
            image[17:23, 17:23] += 2.0
    irrelevant = np.ones((n, 24, 24), np.float32)
    irrelevant[:, 6:18, 6:18] = 0
    return x, {"label": np.eye(2, dtype=np.float32)[labels], "mask": irrelevant}


def test_penalty_moves_attribution_into_the_allowed_region():
    keras.utils.set_random_seed(0)
    x, y = toy_task(384, seed=0)
    x_test, y_test = toy_task(200, seed=1)
    results = {}
    for name, heatmap in (("cce", None),
                          ("penalty", HeatmapLossConfig(method="hirescam", weight=3.0))):
        model = tiny_model(heatmap, seed=1)
        model.compile(optimizer=keras.optimizers.Adam(3e-3))
        model.fit(x, y, epochs=8, batch_size=32, verbose=0)
        labels = y_test["label"].argmax(1)
        maps = attr.compute_maps(model, x_test, labels, "hirescam")
        mask = attr.area_downsample(y_test["mask"], maps.shape[1:]).numpy()
        outside = losses.outside_fraction_penalty(maps, mask).numpy().mean()
        accuracy = (model.predict(x_test, verbose=0).argmax(1) == labels).mean()
        results[name] = (outside, accuracy)
    (outside_cce, accuracy_cce), (outside_pen, accuracy_pen) = results["cce"], results["penalty"]
    assert accuracy_cce >= 0.95 and accuracy_pen >= 0.95, results
    assert outside_pen < 0.5 * outside_cce, results


@pytest.mark.parametrize("backbone, layer", [
    ("small_cnn", None), ("small_cnn", "conv3"),      # last conv, the earlier layer
    ("vgg16", None), ("vgg16", "block4_conv3"),
])
def test_every_attributed_cell_reaches_the_logits(backbone, layer):
    """No dead cells: every cell of every layer the project attributes changes some logit."""
    model = models.build_model(backbone, seed=0)
    assert not models.unreachable_cells(model, layer, n_inputs=2).any()


def test_valid_pooling_leaves_dead_cells_that_reachability_finds():
    small = models.build_model("small_cnn", seed=0, pooling="valid")
    dead = models.unreachable_cells(small)  # 13 x 16: the head's pool drops row 12
    assert dead.shape == (13, 16) and dead[12].all() and not dead[:12].any()
    vgg = models.build_model("vgg16", seed=0, pooling="valid")  # the thesis's network
    assert not models.unreachable_cells(vgg, n_inputs=2).any()
    dead = models.unreachable_cells(vgg, "block4_conv3", n_inputs=2)
    assert dead[12].all() and not dead[:12].any()  # block4_pool drops row 12
    seen = models.input_rows_seen(vgg.backbone, n_inputs=2)
    assert seen.shape == (105, 6) and (seen.max(axis=1) > 0).all()  # every image row reaches


def test_penalty_at_two_layers_and_the_inside_reward_need_their_regions():
    data = synthetic.generate(1, 4, 0, decoy=1.0)
    config = HeatmapLossConfig(method="hirescam", layers=("conv3", "last_conv"),
                               inside_weight=1.0)
    model = models.build_model("small_cnn", heatmap=config, seed=1)
    x = models.preprocess_images(data.images)
    y = {"label": tf.one_hot(data.labels, 4), "mask": tf.constant(~data.region("heart"),
                                                                  tf.float32)}
    with pytest.raises(ValueError, match="required"):
        model.compute_heatmap_loss(x, y)
    values = model.compute_heatmap_loss(x, {**y, "required": tf.constant(
        data.region("heart"), tf.float32)})
    one = models.HeatmapLossModel(model.backbone, model.head, heatmap=dataclasses.replace(
        config, layers=("conv3",), inside_weight=0.0))
    two = models.HeatmapLossModel(model.backbone, model.head, heatmap=dataclasses.replace(
        config, layers=("last_conv",), inside_weight=0.0))
    both = (float(one.compute_heatmap_loss(x, y)["penalty"])
            + float(two.compute_heatmap_loss(x, y)["penalty"])) / 2
    assert float(values["penalty"]) == pytest.approx(both, rel=1e-5)  # mean over layers
    assert 0 <= float(values["inside"]) <= 1
    with pytest.raises(ValueError, match="block9"):
        models.HeatmapLossModel(model.backbone, model.head,
                                heatmap=HeatmapLossConfig(layers=("block9",)))


def test_rrr_penalises_the_squared_gradient_of_the_summed_log_probabilities():
    data = synthetic.generate(1, 2, 0, decoy=1.0)
    config = HeatmapLossConfig(method="saliency", penalty="rrr", target="log_prob_sum",
                               weight=1.0)
    model = models.build_model("small_cnn", heatmap=config, seed=2)
    x = tf.constant(models.preprocess_images(data.images))
    mask = ~data.region("heart")
    values = model.compute_heatmap_loss(x, {"label": tf.one_hot(data.labels, 4),
                                            "mask": tf.constant(mask, tf.float32)})
    with tf.GradientTape() as tape:
        tape.watch(x)
        total = tf.reduce_sum(tf.nn.log_softmax(model(x), axis=-1))
    squared = tf.reduce_sum(tf.square(tape.gradient(total, x)), axis=-1).numpy()
    expected = np.mean([(squared[i] * mask[i]).sum() for i in range(len(x))])
    assert float(values["penalty"]) == pytest.approx(expected, rel=1e-4)


def test_consistency_model_trains_saves_and_loads(tmp_path):
    data = synthetic.generate(1, 4, 0, decoy=1.0)
    base = models.build_model("small_cnn", seed=3)
    model = models.ConsistencyModel(base.backbone, base.head, weight=0.5, epsilon=0.5, seed=1)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    dataset = models.make_dataset(data.images, data.labels, ~data.region("heart"),
                                  batch_size=8)
    history = model.fit(dataset, epochs=1, verbose=0).history
    assert history["penalty"][0] > 0
    assert history["loss"][0] == pytest.approx(history["classification"][0]
                                               + 0.5 * history["penalty"][0], rel=1e-4)
    models.save_model(model, tmp_path / "c.keras")
    loaded = models.load_model(tmp_path / "c.keras")
    assert isinstance(loaded, models.ConsistencyModel) and loaded.epsilon == 0.5
    with pytest.raises(ValueError, match="heatmap=None"):
        models.ConsistencyModel(base.backbone, base.head, heatmap=HeatmapLossConfig())
