"""3-D U-Net, encoder classifier and the ACDC heatmap loss: shapes and one training step each."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from heatmaploss import acdc_classifier as cl  # noqa: E402
from heatmaploss import io  # noqa: E402
from heatmaploss import acdc_experiment as ex  # noqa: E402
from heatmaploss import acdc_models as m  # noqa: E402
from heatmaploss.profiles import get_profile  # noqa: E402

BOX = (18, 18, 5)  # not a multiple of the pooling: exercises the internal pad/crop


def _toy(n=6, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.zeros((n,) + BOX, np.uint8)
    labels[:, 6:12, 6:12, 1:4] = 2
    labels[:, 8:10, 8:10, 1:4] = 3
    labels[:, 3:6, 6:12, 1:4] = 1
    images = (labels[..., None] + rng.normal(0, 0.1, labels.shape + (1,))).astype(np.float32)
    groups = np.array(["NOR", "DCM", "NOR", "HCM", "RV", "MINF"][:n], dtype=object)
    arrays = ex.AcdcArrays(images, labels, np.arange(1, n + 1), groups,
                           np.array(["ED", "ES"] * (n // 2)))
    return arrays


def test_geometry_helpers():
    assert m.pooling_factors(4) == [(2, 2, 1), (2, 2, 1), (2, 2, 2)]
    assert m.padded_shape((116, 116, 28), 4) == (120, 120, 28)
    assert m.feature_grid((116, 116, 28), 4) == (15, 15, 14)
    mask = np.zeros((1,) + BOX, bool)
    mask[0, :2] = True
    grid = m.mask_to_grid(mask, 3)
    assert grid.shape == (1, 5, 5, 3)
    # Padding: x 18 -> 20 and y 18 -> 20 (one voxel each side), z 5 -> 6 (one at the end).
    # First x cell = 1 pad + 2 mask + 1 empty row -> 0.5; edge y cells and the last z cell
    # hold padding too.
    expected = 0.5 * np.outer([0.75, 1, 1, 1, 0.75], [1, 1, 0.5])
    assert np.allclose(grid[0, 0], expected) and np.allclose(grid[0, 1:], 0.0)
    assert m.balanced_class_weights(np.array([0] * 20 + [1] * 80)) == {0: 2.5, 1: 0.625}
    with pytest.raises(ValueError, match="every class"):
        m.balanced_class_weights(np.ones(4, int))


def test_unet_paper_layout_and_training_step():
    paper = m.build_unet()
    convs = [layer.filters for layer in paper.layers if layer.name.startswith("enc")
             and layer.name[-6:-1] == "_conv"]
    assert convs == [32, 64, 64, 128, 128, 256, 256, 512]
    assert paper.output.shape[1:] == (116, 116, 28, 4)
    keras.utils.set_random_seed(0)
    model = m.compile_unet(m.build_unet(BOX, base_filters=2, levels=3), 0.01, warmup_steps=1)
    assert model.output.shape[1:] == BOX + (4,)
    toy = _toy()
    first = model.evaluate(toy.images, toy.labels, verbose=0, return_dict=True)
    model.fit(toy.images, toy.labels, batch_size=3, epochs=3, verbose=0)
    after = model.evaluate(toy.images, toy.labels, verbose=0, return_dict=True)
    assert set(after) >= {"loss", "dice_rv", "dice_myo", "dice_lv"}
    assert np.isfinite(after["loss"]) and after["loss"] < first["loss"]
    pred = ex.predict_labels(model, toy.images)
    scores = ex.segmentation_scores(pred, toy)
    assert list(scores.columns[-4:]) == ["RV", "MYO", "LV", "mean"] and len(scores) == 6


def test_weighted_cross_entropy_matches_numpy():
    logits = np.random.default_rng(1).normal(size=(1, 2, 2, 1, 4)).astype(np.float32)
    labels = np.array([[[[0], [1]], [[2], [3]]]], np.uint8)
    p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    ce = -np.log(np.take_along_axis(p, labels[..., None].astype(int), -1))[..., 0]
    expected = np.mean(np.array(m.CLASS_WEIGHTS)[labels] * ce)
    got = float(m.weighted_cross_entropy()(labels, logits))
    assert got == pytest.approx(expected, rel=1e-5)
    assert m.dice_scores(labels[0], labels[0])["LV"] == 1.0


@pytest.mark.parametrize("loss", ["cross_entropy", "heatmap"])
def test_classifier_training_step_and_evaluation(tmp_path, loss):
    settings = dataclasses.replace(get_profile("smoke").acdc, box=BOX, unet_base_filters=2,
                                   classifier_dense_units=8, classifier_epochs=1,
                                   classifier_batch_size=3)
    toy = _toy()
    unet = m.build_unet(BOX, base_filters=2, levels=3)
    model, record = cl.train_classifier(toy, settings, loss, seed=1, models_dir=tmp_path, unet=unet)
    assert np.isfinite(record["history"]["loss"]).all()
    assert record["class_weights"] == {0: 1.5, 1: 0.75}
    if loss == "heatmap":
        assert 0 <= record["history"]["penalty"][0] <= 1
    result = cl.evaluate_classifier(model, toy, levels=3)
    assert 0 <= result["balanced_accuracy"] <= 1
    assert result["maps"].shape == (6, 5, 5, 3) and (result["maps"] >= 0).all()
    assert np.isnan(result["heart_fraction"]) or 0 <= result["heart_fraction"] <= 1
    again, record2 = cl.train_classifier(toy, settings, loss, seed=1, models_dir=tmp_path, unet=unet)
    assert record2 == io.to_jsonable(record)  # finished run reloaded, not retrained
    assert np.allclose(again.predict_on_batch(toy.images), model.predict_on_batch(toy.images),
                       atol=1e-5)


def test_encoder_weights_transfer():
    unet = m.build_unet(BOX, base_filters=2, levels=3)
    _, encoder, _ = m.build_classifier(BOX, base_filters=2, levels=3, dense_units=4)
    assert m.transfer_encoder_weights(unet, encoder) == 12  # 6 convs + 6 batch norms
    assert np.array_equal(encoder.get_layer("enc2_conv2").get_weights()[0],
                          unet.get_layer("enc2_conv2").get_weights()[0])


def test_targets_weight_labels_and_mark_outside_heart():
    toy = _toy()
    y = cl.classifier_targets(toy.labels, toy.diseased, {0: 1.5, 1: 0.75}, levels=3)
    assert y["label"].tolist()[0] == [1.5, 0.0] and y["label"].tolist()[1] == [0.0, 0.75]
    assert y["mask"].shape == (6, 5, 5, 3)
    assert y["mask"].max() == 1.0 and y["mask"].min() < 0.5
    with pytest.raises(ValueError, match="loss='mse'"):
        cl.build_acdc_classifier(get_profile("smoke").acdc, "mse", seed=0)
