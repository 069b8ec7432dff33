"""3-D U-Net, the classifiers on its frozen encoder and the ACDC heatmap loss: shapes, one
training step, both trained through the study runner (recorded once, not retrained on a second
run), and scores from stored features equal to the whole model's."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from heatmaploss import project  # noqa: E402
from heatmaploss.chapters.acdc import analysis, classifiers, plan, run  # noqa: E402
from heatmaploss.chapters.acdc import data as acdc_data  # noqa: E402
from heatmaploss.chapters.acdc import networks as m  # noqa: E402
from heatmaploss.project.profiles import get_profile  # noqa: E402

BOX = (18, 18, 5)  # not a multiple of the pooling: exercises the internal pad/crop


def _toy(n=10, seed=0):
    """``n // 2`` patients (one per group, then repeating), an ED and an ES volume each."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((n,) + BOX, np.uint8)
    labels[:, 6:12, 6:12, 1:4] = 2
    labels[:, 8:10, 8:10, 1:4] = 3
    labels[:, 3:6, 6:12, 1:4] = 1
    labels[1::2, 8:10, 8:10, 1:4] = 2  # a smaller cavity at ES
    images = (labels[..., None] + rng.normal(0, 0.1, labels.shape + (1,))).astype(np.float32)
    patients = np.repeat(np.arange(1, n // 2 + 1), 2)
    groups = np.array([["NOR", "DCM", "HCM", "RV", "MINF"][(i - 1) % 5] for i in patients],
                      dtype=object)
    return acdc_data.AcdcArrays(images, labels, patients, groups,
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


def test_pairs_balanced_sampling_and_feature_batches():
    toy = _toy()
    pairs = acdc_data.pair_phases(toy)
    assert pairs.images.shape == (5, 2) + BOX + (1,) and pairs.labels.shape == (5, 2) + BOX
    assert np.array_equal(pairs.images[:, 1], toy.images[1::2])  # ES second
    assert pairs.targets("binary").tolist() == [0, 1, 1, 1, 1]
    assert pairs.targets("groups").tolist() == [0, 2, 3, 4, 1]  # NOR MINF DCM HCM RV order
    twins = acdc_data.PatientPairs(np.repeat(pairs.images[:, :1], 2, axis=1),
                                   np.repeat(pairs.labels[:, :1], 2, axis=1), pairs.numbers,
                                   pairs.groups)
    images, labels = acdc_data.augmented_pairs(twins, seed=4)
    # One draw per patient: identical phases stay identical (same map, same noise) ...
    assert np.array_equal(images[:, 0], images[:, 1]) and np.array_equal(labels[:, 0], labels[:, 1])
    assert not np.array_equal(images[:, 0], twins.images[:, 0])  # ... and they did move
    again, _ = acdc_data.augmented_pairs(twins, seed=4)
    assert np.array_equal(again, images)
    targets = np.array([0] * 3 + [1] * 12)
    order = classifiers.balanced_indices(targets, np.random.default_rng(0))
    assert len(order) == 24 and np.bincount(targets[order]).tolist() == [12, 12]
    assert set(order[targets[order] == 1]) == set(range(3, 15))  # every sample once
    stored = classifiers.StoredFeatures(np.zeros((15, 2, 2, 1, 4), np.float32),
                                        np.ones((15, 2, 2, 1), np.float32), np.arange(15))
    batches = classifiers.FeatureBatches(stored, np.array([0] * 3 + [1] * 12), 2, 8, seed=1,
                                         balanced=True)
    x, y = batches[0]
    assert len(batches) == 3 and x.shape == (8, 2, 2, 1, 4) and y["mask"].shape == (8, 2, 2, 1)
    assert set(y["label"].sum(axis=1)) == {1.0}  # one-hot: labels sum to one
    first = batches.order.copy()
    batches.on_epoch_end()
    assert not np.array_equal(first, batches.order)


def test_unet_paper_layout_and_training_step():
    paper = m.build_unet()
    convs = [layer.filters for layer in paper.layers if layer.name.startswith("enc")
             and layer.name[-6:-1] == "_conv"]
    assert convs == [32, 64, 64, 128, 128, 256, 256, 512]
    assert paper.output.shape[1:] == (116, 116, 28, 4)
    keras.utils.set_random_seed(0)
    model = m.compile_unet(m.build_unet(BOX, base_filters=2, levels=3), 0.01, warmup_steps=1)
    assert model.output.shape[1:] == BOX + (4,)
    toy = _toy(6)
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
    toy = _toy(6)
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
    from heatmaploss.attribution import compute_maps

    ctx = _context(tmp_path)
    toy = _toy()
    data = run.AcdcData(tmp_path, "fixture", [], [], toy, {"validation": toy})
    unet = run.train_unet(ctx, data)
    assert len(unet.dice) == 10 and unet.predicted.shape == toy.labels.shape
    assert unet.record["epochs"] == 2 and np.isfinite(unet.record["test_accuracy"])
    table = classifiers.train_classifiers(ctx, data, unet).table
    assert sorted(set(zip(table["task"], table["loss"]))) == [
        ("binary", "cce"), ("binary", "heatmap"), ("groups", "cce"), ("groups", "heatmap")]
    assert len(table) == 4 and table["balanced_accuracy"].between(0, 1).all()
    assert table["hirescam_empty_map_share"].between(0, 1).all()
    paths = sorted((tmp_path / "models").rglob("*.keras"))
    stamps = [p.stat().st_mtime_ns for p in paths]
    again = classifiers.train_classifiers(ctx, data, run.train_unet(ctx, data)).table
    assert again.drop(columns="seconds").equals(table.drop(columns="seconds"))
    assert [p.stat().st_mtime_ns for p in paths] == stamps  # recorded models are reused
    # The saved model is the whole classifier; scores from stored features equal its own.
    row = table[(table["task"] == "groups") & (table["loss"] == "heatmap")].iloc[0]
    model = keras.models.load_model(tmp_path / row["model_path"], compile=False)
    source = classifiers.ClassifierSource(ctx, data, tmp_path / unet.record["model_path"])
    scores = source.scores("groups", model.head, "validation")
    pairs = source.evaluation["validation"]
    assert np.array_equal(scores["predicted"], np.argmax(model.predict(pairs.images, verbose=0), 1))
    for explainer in ("hirescam", "saliency"):
        whole = compute_maps(model, pairs.images, scores["predicted"], explainer, batch_size=4)
        assert np.allclose(scores["maps"][explainer], whole, rtol=1e-4, atol=1e-6), explainer
    assert scores["maps"]["hirescam"].shape == (5, 5, 5, 3)
    assert scores["maps"]["saliency"].shape == (5, 2) + BOX
    assert scores["balanced_accuracy"] == row["balanced_accuracy"]
    other = keras.models.clone_model(model.backbone)
    with pytest.raises(ValueError, match="encoder differs"):
        source._check_frozen(type("M", (), {"backbone": other, "name": "x"})())


def test_encoder_weights_transfer():
    unet = m.build_unet(BOX, base_filters=2, levels=3)
    encoder = m.build_encoder(BOX, base_filters=2, levels=3)
    assert m.transfer_encoder_weights(unet, encoder) == 12  # 6 convs + 6 batch norms
    assert np.array_equal(encoder.get_layer("enc2_conv2").get_weights()[0],
                          unet.get_layer("enc2_conv2").get_weights()[0])
    backbone, inner = m.build_pair_backbone(BOX, base_filters=2, levels=3)
    assert backbone.output.shape[1:] == (5, 5, 3, 2 * inner.output.shape[-1])


def test_pooled_head_learns_and_specs_check_their_names():
    rng = np.random.default_rng(0)
    x = np.abs(rng.normal(0.3, 0.5, (64, 10, 10, 5, 8))).astype(np.float32)
    y = (np.arange(64) % 2).astype(int)
    x[y == 1, :5] += 0.5  # class 1 is brighter in one half
    head = m.build_pooled_head(x.shape[1:], 2, 0, mean=x.mean((1, 2, 3)).mean(0),
                               variance=x.mean((1, 2, 3)).var(0))
    keras.utils.set_random_seed(0)
    head.compile(keras.optimizers.Adam(1e-2),
                 keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    head.fit(x, y, epochs=20, batch_size=16, verbose=0)
    assert np.mean(np.argmax(head.predict(x, verbose=0), 1) == y) == 1.0
    with pytest.raises(ValueError, match="task='mse'"):
        plan.classifier_spec(get_profile("smoke"), 0, "fixture", "mse", "cce", {}, "unet")
    with pytest.raises(ValueError, match="loss='mse'"):
        plan.classifier_spec(get_profile("smoke"), 0, "fixture", "binary", "mse", {}, "unet")
