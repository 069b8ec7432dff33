"""Heatmap penalties, classification terms and the loss configuration."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from heatmaploss import losses  # noqa: E402
from heatmaploss.losses import HeatmapLossConfig  # noqa: E402


def test_penalties_on_hand_made_maps():
    maps = np.array([[[0.0, 2.0], [2.0, 0.0]],
                     [[1.0, -5.0], [0.0, 3.0]]], np.float32)
    irrelevant = np.array([[[1, 1], [0, 0]],
                           [[1, 1], [0, 0]]], np.float32)
    np.testing.assert_allclose(losses.outside_fraction_penalty(maps, irrelevant), [0.5, 0.25],
                               rtol=1e-5)
    np.testing.assert_allclose(losses.thesis_penalty(maps, irrelevant),
                               [(1.0) / 4, (1 / 3) / 4], rtol=1e-5)
    np.testing.assert_allclose(losses.l2_penalty(maps, irrelevant), [4 / 4, 26 / 4], rtol=1e-6)
    required = 1 - irrelevant
    np.testing.assert_allclose(losses.inside_penalty(maps, required), [0.5, 0.25], rtol=1e-5)


def test_empty_maps_are_finite_and_not_a_free_perfect_score():
    empty = np.zeros((2, 3, 4), np.float32)
    negative = -np.ones((2, 3, 4), np.float32)
    mask = np.zeros((2, 3, 4), np.float32)
    mask[:, 0] = 1
    for maps in (empty, negative):
        np.testing.assert_allclose(losses.outside_fraction_penalty(maps, mask), [1, 1])
        np.testing.assert_allclose(losses.inside_penalty(maps, 1 - mask), [1, 1])
        assert np.all(np.isfinite(losses.thesis_penalty(maps, mask).numpy()))
    perfect = np.zeros((2, 3, 4), np.float32)
    perfect[:, 1:] = 1
    np.testing.assert_allclose(losses.outside_fraction_penalty(perfect, mask), [0, 0], atol=1e-6)


def test_mask_grid_mismatch_is_rejected():
    with pytest.raises(ValueError, match="downsample"):
        losses.outside_fraction_penalty(np.ones((1, 6, 8)), np.ones((1, 105, 135)))
    with pytest.raises(ValueError, match="penalty='dice'"):
        losses.penalty("dice", np.ones((1, 2, 2)), np.ones((1, 2, 2)))


@pytest.mark.parametrize("name", ["thesis", "outside_fraction", "l2", "inside"])
def test_penalty_gradient_matches_finite_differences(name):
    rng = np.random.default_rng(3)
    # Keep cells away from 0 so ReLU kinks and the max switch are not crossed by the step.
    maps = rng.uniform(0.2, 1.0, (2, 3, 4)) * rng.choice([-1.0, 1.0], (2, 3, 4))
    maps[:, 0, 0] = 1.5  # a clear unique maximum per map
    mask = rng.random((2, 3, 4))
    variable = tf.Variable(maps, dtype=tf.float64)
    with tf.GradientTape() as tape:
        value = tf.reduce_sum(losses.penalty(name, variable, tf.constant(mask)))
    analytic = tape.gradient(value, variable).numpy()
    numeric = np.zeros_like(maps)
    step = 1e-6
    for index in np.ndindex(maps.shape):
        plus, minus = maps.copy(), maps.copy()
        plus[index] += step
        minus[index] -= step
        numeric[index] = (float(tf.reduce_sum(losses.penalty(name, plus, mask)))
                          - float(tf.reduce_sum(losses.penalty(name, minus, mask)))) / (2 * step)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


def test_classification_terms():
    logits = tf.constant([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0]])
    labels = tf.constant([[1.0, 0, 0], [0, 0, 1.0]])
    probabilities = tf.nn.softmax(logits).numpy()
    np.testing.assert_allclose(losses.classification_loss("cce", labels, logits),
                               -np.log([probabilities[0, 0], probabilities[1, 2]]), rtol=1e-5)
    sigmoid = 1 / (1 + np.exp(-logits.numpy()))
    np.testing.assert_allclose(losses.classification_loss("mse", labels, logits),
                               ((sigmoid - labels.numpy()) ** 2).mean(-1), rtol=1e-5)
    # The thesis's CCE group: Keras's categorical cross-entropy of the sigmoid outputs, which
    # renormalises them: −log(σ_c / Σ_j σ_j).
    expected = -np.log([sigmoid[0, 0] / sigmoid[0].sum(), sigmoid[1, 2] / sigmoid[1].sum()])
    np.testing.assert_allclose(losses.classification_loss("sigmoid_cce", labels, logits),
                               expected, rtol=1e-5)
    keras = pytest.importorskip("keras")
    np.testing.assert_allclose(
        losses.classification_loss("sigmoid_cce", labels, logits),
        keras.losses.categorical_crossentropy(labels, tf.sigmoid(logits)), rtol=1e-4)
    with pytest.raises(ValueError, match="classification='bce'"):
        losses.classification_loss("bce", labels, logits)


def test_rrr_penalty_sums_the_masked_squared_gradient_map():
    maps = np.arange(12, dtype=np.float32).reshape(1, 3, 4)
    mask = np.zeros((1, 3, 4), np.float32)
    mask[0, 0] = 1.0
    assert float(losses.rrr_penalty(maps, mask)[0]) == pytest.approx(0 + 1 + 2 + 3)


def test_class_selection_and_selected_mean():
    weights = losses.class_selection(tf.constant([0, 1, 2, 3, 1]), (1, 3))
    np.testing.assert_array_equal(weights.numpy(), [0, 1, 0, 1, 1])
    np.testing.assert_array_equal(losses.class_selection(tf.constant([0, 2]), None), [1, 1])
    values = tf.constant([10.0, 1.0, 10.0, 2.0, 3.0])
    assert float(losses.selected_mean(values, weights)) == pytest.approx(2.0)
    assert float(losses.selected_mean(values, tf.zeros(5))) == 0.0


@pytest.mark.parametrize("kwargs, message", [
    ({"method": "cam"}, "method='cam'"),
    ({"penalty": "inside"}, "inside_weight"),
    ({"penalty": "dice"}, "penalty='dice'"),
    ({"weight": -1.0}, "weight=-1.0"),
    ({"inside_weight": "a"}, "inside_weight='a'"),
    ({"class_mode": "best"}, "class_mode='best'"),
    ({"classification": "bce"}, "classification='bce'"),
    ({"classes": ()}, "classes=()"),
    ({"classes": (1, -2)}, "classes="),
    ({"dilate": 1.5}, "dilate=1.5"),
    ({"penalty": "rrr", "method": "hirescam"}, "allowed method: saliency"),
    ({"target": "probability"}, "target='probability'"),
    ({"mask_resize": "nearest"}, "mask_resize='nearest'"),
    ({"method": "saliency", "layers": ("conv3",)}, "saliency is taken at the input"),
])
def test_config_validation(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        HeatmapLossConfig(**kwargs)


def test_config_round_trip_and_flags():
    config = HeatmapLossConfig(method="gradcam", penalty="thesis", weight=2.0, classes=[1, 3],
                               dilate=2, classification="mse", class_mode="predicted")
    assert config.classes == (1, 3)
    assert HeatmapLossConfig.from_dict(config.to_dict()) == config
    assert config.uses_maps
    assert not HeatmapLossConfig(method=None).uses_maps
    assert not HeatmapLossConfig(weight=0.0).uses_maps
    with pytest.raises(ValueError, match="unknown"):
        HeatmapLossConfig.from_dict({"lambda": 1.0})
