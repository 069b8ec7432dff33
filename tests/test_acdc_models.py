"""3-D U-Net, encoder classifier and the ACDC heatmap loss: shapes, one training step each, and
both trained through the study runner (recorded once, not retrained on a second run)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from heatmaploss import project  # noqa: E402
from heatmaploss.chapters.acdc import analysis, plan, run  # noqa: E402
from heatmaploss.chapters.acdc import data as acdc_data  # noqa: E402
from heatmaploss.chapters.acdc import networks as m  # noqa: E402
from heatmaploss.project.profiles import get_profile  # noqa: E402

BOX = (18, 18, 5)  # not a multiple of the pooling: exercises the internal pad/crop


def _toy(n=6, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.zeros((n,) + BOX, np.uint8)
    labels[:, 6:12, 6:12, 1:4] = 2
    labels[:, 8:10, 8:10, 1:4] = 3
    labels[:, 3:6, 6:12, 1:4] = 1
    images = (labels[..., None] + rng.normal(0, 0.1, labels.shape + (1,))).astype(np.float32)
    groups = np.array(["NOR", "DCM", "NOR", "HCM", "RV", "MINF"][:n], dtype=object)
    return acdc_data.AcdcArrays(images, labels, np.arange(1, n + 1), groups,
                                np.array(["ED", "ES"] * (n // 2)))


def _context(tmp_path):
    smoke = get_profile("smoke")
    settings = dataclasses.replace(smoke.acdc, box=BOX, unet_base_filters=2, unet_levels=3,
                                   unet_epochs=2, unet_batch_size=3, classifier_dense_units=8,
                                   classifier_epochs=1, classifier_batch_size=3)
    return project.open_run(dataclasses.replace(smoke, acdc=settings), 0, str(tmp_path),
                            progress=False)


def test_geometry_helpers():
    assert acdc_data.pooling_factors(4) == [(2, 2, 1), (2, 2, 1), (2, 2, 2)]
    assert acdc_data.padded_shape((116, 116, 28), 4) == (120, 120, 28)
    assert acdc_data.feature_grid((116, 116, 28), 4) == (15, 15, 14)
    mask = np.zeros((1,) + BOX, bool)
    mask[0, :2] = True
    grid = acdc_data.mask_to_grid(mask, 3)
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
    pred = run.predict_labels(model, toy.images)
    scores = analysis.segmentation_scores(pred, toy)
    assert list(scores.columns[-4:]) == ["RV", "MYO", "LV", "mean"] and len(scores) == 6


def test_weighted_cross_entropy_matches_numpy():
    logits = np.random.default_rng(1).normal(size=(1, 2, 2, 1, 4)).astype(np.float32)
    labels = np.array([[[[0], [1]], [[2], [3]]]], np.uint8)
    p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    ce = -np.log(np.take_along_axis(p, labels[..., None].astype(int), -1))[..., 0]
    expected = np.mean(np.array(m.CLASS_WEIGHTS)[labels] * ce)
    got = float(m.weighted_cross_entropy()(labels, logits))
    assert got == pytest.approx(expected, rel=1e-5)
    assert analysis.dice_scores(labels[0], labels[0])["LV"] == 1.0


def test_volume_batches_augment_every_epoch_and_cover_every_volume():
    toy = _toy()
    batches = run.VolumeBatches(toy, np.asarray, batch_size=4, seed=3, augment=True,
                                shuffle=True)
    assert len(batches) == 2
    first = np.concatenate([batches[i][0] for i in range(len(batches))])
    assert first.shape == toy.images.shape
    batches.on_epoch_end()
    second = np.concatenate([batches[i][0] for i in range(len(batches))])
    assert not np.allclose(np.sort(first.ravel()), np.sort(second.ravel()))  # re-augmented
    again = run.VolumeBatches(toy, np.asarray, batch_size=4, seed=3, augment=True, shuffle=True)
    assert np.array_equal(np.concatenate([again[i][0] for i in range(2)]), first)  # seeded


def test_unet_and_classifiers_through_the_study_runner(tmp_path):
    ctx = _context(tmp_path)
    toy = _toy()
    data = run.AcdcData(tmp_path, "fixture", [], [], toy, {"validation": toy})
    unet = run.train_unet(ctx, data)
    assert len(unet.dice) == 6 and unet.predicted.shape == toy.labels.shape
    assert unet.record["epochs"] == 2 and np.isfinite(unet.record["test_accuracy"])
    table = run.train_classifiers(ctx, data, unet)
    assert sorted(set(table["loss"])) == ["cce", "heatmap"] and len(table) == 2
    assert table["balanced_accuracy"].between(0, 1).all()
    assert table["empty_maps"].between(0, 1).all()
    paths = sorted((tmp_path / "models").rglob("*.keras"))
    stamps = [p.stat().st_mtime_ns for p in paths]
    again = run.train_classifiers(ctx, data, run.train_unet(ctx, data))
    assert again.drop(columns="seconds").equals(table.drop(columns="seconds"))
    assert [p.stat().st_mtime_ns for p in paths] == stamps  # recorded models are reused
    scores = run.classifier_scores(keras.models.load_model(tmp_path / table["model_path"][0],
                                                           compile=False), toy, levels=3)
    assert scores["maps"].shape == (6, 5, 5, 3) and (scores["maps"] >= 0).all()


def test_encoder_weights_transfer():
    unet = m.build_unet(BOX, base_filters=2, levels=3)
    _, encoder, _ = m.build_classifier(BOX, base_filters=2, levels=3, dense_units=4)
    assert m.transfer_encoder_weights(unet, encoder) == 12  # 6 convs + 6 batch norms
    assert np.array_equal(encoder.get_layer("enc2_conv2").get_weights()[0],
                          unet.get_layer("enc2_conv2").get_weights()[0])


def test_targets_weight_labels_and_mark_outside_heart():
    toy = _toy()
    y = run.classifier_targets(toy.labels, toy.diseased, {0: 1.5, 1: 0.75}, levels=3)
    assert y["label"].tolist()[0] == [1.5, 0.0] and y["label"].tolist()[1] == [0.0, 0.75]
    assert y["mask"].shape == (6, 5, 5, 3)
    assert y["mask"].max() == 1.0 and y["mask"].min() < 0.5
    with pytest.raises(ValueError, match="loss='mse'"):
        plan.classifier_spec(get_profile("smoke"), 0, "fixture", "mse", {}, "unet")
