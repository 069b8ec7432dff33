"""Correctness of the batched, differentiable attribution maps (small models, CPU)."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
import keras  # noqa: E402
from heatmaploss import attribution as attr  # noqa: E402


def conv_dense_model(input_shape=(8, 10, 3), n_classes=3, seed=0, pool=False, rank=2):
    """Conv -> [pool] -> Flatten -> Dense: the setting of Draelos & Carin's identity."""
    conv = keras.layers.Conv2D if rank == 2 else keras.layers.Conv3D
    inputs = keras.Input(input_shape)
    hidden = conv(4, 3, padding="same", activation="relu", name="c1",
                  kernel_initializer=keras.initializers.GlorotUniform(seed))(inputs)
    hidden = conv(5, 3, padding="same", activation="relu", name="conv",
                  kernel_initializer=keras.initializers.GlorotUniform(seed + 1))(hidden)
    if pool:
        pooling = keras.layers.MaxPooling2D if rank == 2 else keras.layers.MaxPooling3D
        hidden = pooling(2)(hidden)
        hidden = keras.layers.Flatten()(hidden)
        hidden = keras.layers.Dense(7, activation="relu",
                                    kernel_initializer=keras.initializers.GlorotUniform(seed + 2)
                                    )(hidden)
    else:
        hidden = keras.layers.Flatten()(hidden)
    logits = keras.layers.Dense(n_classes, name="logits",
                                kernel_initializer=keras.initializers.GlorotUniform(seed + 3),
                                bias_initializer=keras.initializers.RandomNormal(seed=seed + 4)
                                )(hidden)
    return keras.Model(inputs, logits)


def random_inputs(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def conv_output(model, x):
    return keras.Model(model.inputs[0], model.get_layer("conv").output)(x).numpy()


def test_hirescam_sums_to_logit_minus_bias():
    model = conv_dense_model()
    x = random_inputs((6, 8, 10, 3))
    classes = np.array([0, 1, 2, 2, 1, 0])
    maps = attr.hirescam(model, x, classes, "conv", relu=False).numpy()
    assert maps.shape == (6, 8, 10)
    logits = model(x).numpy()
    bias = model.get_layer("logits").bias.numpy()
    expected = logits[np.arange(6), classes] - bias[classes]
    np.testing.assert_allclose(maps.sum(axis=(1, 2)), expected, rtol=1e-4, atol=1e-5)


def test_hirescam_identity_holds_in_3d():
    model = conv_dense_model(input_shape=(4, 6, 5, 2), rank=3)
    x = random_inputs((3, 4, 6, 5, 2))
    classes = np.array([2, 0, 1])
    maps = attr.hirescam(model, x, classes, "conv", relu=False).numpy()
    assert maps.shape == (3, 4, 6, 5)
    bias = model.get_layer("logits").bias.numpy()
    expected = model(x).numpy()[np.arange(3), classes] - bias[classes]
    np.testing.assert_allclose(maps.sum(axis=(1, 2, 3)), expected, rtol=1e-4, atol=1e-5)


def test_cams_match_hand_computation_from_dense_weights():
    model = conv_dense_model()
    x = random_inputs((4, 8, 10, 3), seed=1)
    classes = np.array([1, 0, 2, 1])
    activations = conv_output(model, x)  # (N, 8, 10, 5)
    kernel = model.get_layer("logits").kernel.numpy()  # (8 * 10 * 5, 3)
    # With Flatten -> Dense, dlogit_c / dA is the dense kernel's column c, reshaped.
    gradients = np.stack([kernel[:, c].reshape(8, 10, 5) for c in classes])
    hand_hirescam = np.maximum((activations * gradients).sum(-1), 0)
    channel_weights = gradients.mean(axis=(1, 2), keepdims=True)
    hand_gradcam = np.maximum((activations * channel_weights).sum(-1), 0)
    np.testing.assert_allclose(attr.hirescam(model, x, classes, "conv").numpy(), hand_hirescam,
                               rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(attr.gradcam(model, x, classes, "conv").numpy(), hand_gradcam,
                               rtol=1e-4, atol=1e-6)
    signed = attr.gradcam(model, x, classes, "conv", relu=False).numpy()
    np.testing.assert_allclose(signed, (activations * channel_weights).sum(-1), rtol=1e-4,
                               atol=1e-6)


@pytest.mark.parametrize("method", ["hirescam", "gradcam", "saliency"])
@pytest.mark.parametrize("rank", [2, 3])
def test_batched_maps_equal_per_image_maps(method, rank):
    shape = (8, 10, 3) if rank == 2 else (4, 6, 6, 2)
    model = conv_dense_model(input_shape=shape, pool=True, rank=rank)
    x = random_inputs((5,) + shape, seed=2)
    classes = np.array([0, 2, 1, 1, 0])
    batched = attr.attribution(method, model, x, classes, "conv").numpy()
    single = np.concatenate([attr.attribution(method, model, x[i:i + 1], classes[i:i + 1],
                                              "conv").numpy() for i in range(5)])
    expected_grid = shape[:-1] if method == "saliency" else tuple(
        model.get_layer("conv").output.shape[1:-1])
    assert batched.shape == (5,) + expected_grid
    assert np.abs(batched).sum() > 0
    np.testing.assert_allclose(batched, single, rtol=1e-4, atol=1e-6)


def test_saliency_is_the_input_gradient():
    model = conv_dense_model(pool=True)
    x = tf.constant(random_inputs((3, 8, 10, 3), seed=3))
    classes = np.array([2, 1, 0])
    with tf.GradientTape() as tape:
        tape.watch(x)
        logits = model(x)
        score = tf.reduce_sum(tf.gather(logits, classes, axis=1, batch_dims=1))
    gradient = tape.gradient(score, x).numpy()
    np.testing.assert_allclose(attr.saliency(model, x, classes).numpy(),
                               np.abs(gradient).sum(-1), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(attr.saliency(model, x, classes, absolute=False).numpy(),
                               gradient.sum(-1), rtol=1e-5, atol=1e-7)


def test_maps_are_differentiable_inside_an_outer_tape():
    model = conv_dense_model(pool=True)
    x = random_inputs((2, 8, 10, 3), seed=4)
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(attr.hirescam(model, x, np.array([0, 1]), "conv"))
    variables = model.trainable_variables
    gradients = dict(zip([v.path for v in variables], tape.gradient(total, variables)))
    # The head's dense kernels enter the map only through dscore/dA (second order) ...
    kernels = [path for path in gradients if path.endswith("kernel")]
    assert len(kernels) == 4
    for path in kernels:
        assert float(tf.reduce_sum(tf.abs(gradients[path]))) > 0, path
    # ... and the class logit's bias does not enter the map at all.
    assert gradients["logits/bias"] is None


def test_unknown_layer_and_method_are_rejected():
    model = conv_dense_model()
    with pytest.raises(ValueError, match="nope"):
        attr.hirescam(model, random_inputs((1, 8, 10, 3)), np.array([0]), "nope")
    with pytest.raises(ValueError, match="method='cam'"):
        attr.attribution("cam", model, random_inputs((1, 8, 10, 3)), np.array([0]), "conv")


def test_area_downsample_is_exact_area_average():
    mask = np.zeros((1, 4, 6), np.float32)
    mask[0, :2, :3] = 1
    np.testing.assert_allclose(attr.area_downsample(mask, (2, 2)).numpy()[0],
                               [[1, 0], [0, 0]])
    # Non-integer ratio (the thesis: 105 x 135 -> 6 x 8): the mean is preserved exactly.
    rng = np.random.default_rng(0)
    big = (rng.random((2, 105, 135)) > 0.5).astype(np.float32)
    small = attr.area_downsample(big, (6, 8)).numpy()
    assert small.shape == (2, 6, 8)
    np.testing.assert_allclose(small.mean(axis=(1, 2)), big.mean(axis=(1, 2)), rtol=1e-5)
    volume = (rng.random((1, 6, 9, 12)) > 0.3)
    reduced = attr.area_downsample(volume, (3, 3, 4)).numpy()
    np.testing.assert_allclose(reduced[0, 1, 2, 3],
                               volume[0, 2:4, 6:9, 9:12].mean(), rtol=1e-6)


def test_upsample_matches_bilinear_resize_and_keeps_constants():
    rng = np.random.default_rng(1)
    maps = rng.random((2, 6, 8)).astype(np.float32)
    ours = attr.upsample(maps, (105, 135)).numpy()
    reference = tf.image.resize(maps[..., None], (105, 135), method="bilinear").numpy()[..., 0]
    np.testing.assert_allclose(ours, reference, atol=1e-5)
    volume = np.full((1, 2, 3, 4), 0.7, np.float32)
    np.testing.assert_allclose(attr.upsample(volume, (8, 9, 10)).numpy(), 0.7, rtol=1e-6)
    with pytest.raises(ValueError, match="size"):
        attr.upsample(maps, (105, 135, 3))


def test_compute_maps_batches_and_upsamples():
    model = conv_dense_model(pool=True)
    x = random_inputs((7, 8, 10, 3), seed=5)
    classes = np.array([0, 1, 2, 0, 1, 2, 0])
    direct = attr.hirescam(model, x, classes, "conv").numpy()
    np.testing.assert_allclose(attr.compute_maps(model, x, classes, "hirescam", layer="conv",
                                                 batch_size=3), direct, rtol=1e-5, atol=1e-7)
    full = attr.compute_maps(model, x, classes, "gradcam", layer="conv", upsample_to_input=True)
    assert full.shape == (7, 8, 10) and full.dtype == np.float32
    with pytest.raises(ValueError, match="class_index"):
        attr.compute_maps(model, x, classes[:3], "hirescam", layer="conv")


def test_cached_map_functions_do_not_keep_models_alive():
    import gc
    import weakref

    model = conv_dense_model(pool=True)
    attr.compute_maps(model, random_inputs((2, 8, 10, 3)), np.array([0, 1]), "hirescam",
                      layer="conv")
    reference = weakref.ref(model)
    del model
    gc.collect()
    assert reference() is None


def test_explanation_targets():
    logits = tf.constant([[2.0, 0.5, -1.0], [0.0, 1.0, 3.0]])
    cls = tf.constant([0, 1])
    log_p = tf.nn.log_softmax(logits).numpy()
    np.testing.assert_allclose(attr.class_scores(logits, cls), [2.0, 1.0])
    np.testing.assert_allclose(attr.class_scores(logits, cls, "log_softmax"),
                               [log_p[0, 0], log_p[1, 1]], rtol=1e-6)
    np.testing.assert_allclose(attr.class_scores(logits, cls, "margin"), [1.5, -2.0])
    np.testing.assert_allclose(attr.class_scores(logits, cls, "log_prob_sum"),
                               log_p.sum(axis=1), rtol=1e-6)
    with pytest.raises(ValueError, match="target='odds'"):
        attr.class_scores(logits, cls, "odds")
