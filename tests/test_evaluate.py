"""Evaluation: attribution fractions per region, streaming aggregation, empty maps counted."""

from __future__ import annotations

import numpy as np
import pytest
from heatmaploss.names import REGIONS
from heatmaploss.runs import evaluate


def test_region_fractions_of_hand_made_maps():
    maps = np.zeros((3, 4, 5))
    maps[0, 0, 0] = 3.0      # inside region A
    maps[0, 3, 4] = 1.0      # inside region B
    maps[0, 1, 1] = -5.0     # negative attribution is ignored
    maps[1] = 2.0            # uniform map
    # maps[2] stays all zero: no positive mass
    masks = np.zeros((3, 4, 5, 2), dtype=bool)
    masks[:, 0, :, 0] = True     # region A: first row (5 of 20 pixels)
    masks[:, 3, 4, 1] = True     # region B: one pixel
    fractions, empty = evaluate.region_fractions(maps, masks)
    np.testing.assert_allclose(fractions[0], [0.75, 0.25])
    np.testing.assert_allclose(fractions[1], [5 / 20, 1 / 20])
    assert np.isnan(fractions[2]).all()
    assert empty.tolist() == [False, False, True]


def test_region_fractions_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="expected"):
        evaluate.region_fractions(np.zeros((2, 4, 5)), np.zeros((2, 4, 6, 1)))


@pytest.fixture(scope="module")
def small_model():
    from heatmaploss import models

    return models.build_model("small_cnn", seed=3)


def test_streaming_evaluation_matches_per_image_computation(small_model):
    from heatmaploss import attribution, models, synthetic

    n_per_class, seed, chunk, batch = 3, 11, 5, 4
    result = evaluate.evaluate_model(small_model, 2, n_per_class, seed, chunk_size=chunk,
                                     batch_size=batch, explainers=("hirescam", "saliency"))
    data = synthetic.generate(2, n_per_class, seed)
    x = models.preprocess_images(data.images).numpy()
    predicted = np.argmax(small_model(x).numpy(), axis=-1)
    masks = np.stack([data.region(r) for r in REGIONS], axis=-1)
    overlap = result["overlap"].set_index(["explainer", "region", "class_name"])
    for method in ("hirescam", "saliency"):
        # The reference sees the same batches as the evaluation (chunks of 5, batches of up to
        # 4): on some CPUs the convolutions' results depend on the batch size, and the small
        # positive part of a random model's maps turns that into differences of ~1 %.
        maps = np.concatenate([
            attribution.compute_maps(small_model, x[i:i + chunk], predicted[i:i + chunk], method,
                                     batch_size=batch, upsample_to_input=True)
            for i in range(0, len(x), chunk)])
        fractions, empty = evaluate.region_fractions(maps, masks)
        class_means = []
        for c, name in enumerate(synthetic.CLASSES):
            rows = (data.labels == c) & ~empty
            expected = fractions[rows].mean(axis=0)
            class_means.append(expected)
            for r, region in enumerate(REGIONS):
                got = overlap.loc[(method, region, name)]
                assert got["value"] == pytest.approx(expected[r], rel=1e-4, abs=1e-7)
                assert got["n"] + got["n_empty"] == n_per_class
        for r, region in enumerate(REGIONS):
            assert overlap.loc[(method, region, "all"), "value"] == pytest.approx(
                np.mean([m[r] for m in class_means]), rel=1e-4, abs=1e-7)
    accuracy = result["accuracy"].set_index("class_name")["value"]
    assert accuracy["all"] == pytest.approx(np.mean(predicted == data.labels))
    for c, name in enumerate(synthetic.CLASSES):
        assert accuracy[name] == pytest.approx(np.mean(predicted[data.labels == c] == c))


def test_empty_maps_are_counted_not_dropped(small_model):
    import keras
    from heatmaploss import models

    model = models.build_model("small_cnn", seed=3)
    model.set_weights([np.zeros_like(w) for w in model.get_weights()])  # every map is zero
    result = evaluate.evaluate_model(model, 1, 2, 0, chunk_size=8, explainers=("hirescam",),
                                     regions=("heart",))
    overlap = result["overlap"]
    assert overlap["value"].isna().all()
    assert (overlap.loc[overlap["class_name"] != "all", "n_empty"] == 2).all()
    assert overlap.loc[overlap["class_name"] == "all", "n_empty"].item() == 8
    rows = evaluate.metric_rows(result)
    empty = [r for r in rows if r["metric"] == "empty_maps" and r["class_name"] == "all"]
    assert empty == [{"dataset": "test", "metric": "empty_maps", "explainer": "hirescam",
                      "class_name": "all", "value": 8.0, "n": 8}]
    keras.backend.clear_session()


def test_bad_arguments_name_the_value(small_model):
    with pytest.raises(ValueError, match="lime"):
        evaluate.evaluate_model(small_model, 1, 1, 0, explainers=("lime",))
    with pytest.raises(ValueError, match="class_source"):
        evaluate.evaluate_model(small_model, 1, 1, 0, class_source="other")
