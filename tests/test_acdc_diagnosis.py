"""Clinical measurements on ACDC masks and the diagnosis from them (no TensorFlow)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from heatmaploss.acdc import measures
from heatmaploss.chapters.acdc import diagnosis


def _ring(shape, spacing, centre, cavity_mm, wall_mm, z_slices):
    """A mask with an LV cavity disc of radius ``cavity_mm`` and a wall ``wall_mm`` thick."""
    x = (np.arange(shape[0]) + 0.5)[:, None] * spacing[0] - centre[0]
    y = (np.arange(shape[1]) + 0.5)[None, :] * spacing[1] - centre[1]
    r = np.hypot(x, y)
    out = np.zeros(shape, np.uint8)
    for z in z_slices:
        out[:, :, z][r < cavity_mm + wall_mm] = measures.MYOCARDIUM
        out[:, :, z][r < cavity_mm] = measures.LV_CAVITY
    return out


def test_volumes_are_in_ml_on_the_grid_given():
    labels = np.zeros((10, 10, 4), np.uint8)
    labels[:2, :5, :2] = measures.RV_CAVITY  # 20 voxels
    labels[5:, 5:, 0] = measures.LV_CAVITY  # 25 voxels
    v = measures.structure_volumes(labels, (2.0, 2.5, 10.0))  # 50 mm³ = 0.05 ml per voxel
    assert v == pytest.approx({"RV": 1.0, "MYO": 0.0, "LV": 1.25})
    with pytest.raises(ValueError, match="spacing"):
        measures.structure_volumes(labels, (2.0, 0.0, 10.0))


@pytest.mark.parametrize("pixel", [1.0, 0.5])
def test_thickness_of_a_ring_is_its_wall_in_mm(pixel):
    shape = (int(80 / pixel), int(80 / pixel), 3)
    labels = _ring(shape, (pixel, pixel), (40.0, 40.0), cavity_mm=15.0, wall_mm=8.0,
                   z_slices=(1,))
    t = measures.wall_thickness(labels, (pixel, pixel, 10.0))
    assert t["mean"] == pytest.approx(8.0, abs=1.2 * pixel)
    assert t["max"] == pytest.approx(8.0, abs=2 * pixel)
    assert t["sd"] < 0.6 * pixel + 0.2  # a uniform wall
    assert measures.slice_thickness(labels[:, :, 0], (pixel, pixel)).size == 0
    assert math.isnan(measures.wall_thickness(np.zeros(shape, np.uint8), (1, 1, 1))["mean"])


def test_thinned_sector_raises_the_spread_of_thickness():
    shape, spacing = (80, 80, 1), (1.0, 1.0, 10.0)
    ring = _ring(shape, spacing, (40.0, 40.0), 15.0, 8.0, (0,))
    thinned = ring.copy()
    x = np.arange(80)[:, None] + 0.5 - 40.0
    y = np.arange(80)[None, :] + 0.5 - 40.0
    sector = (np.hypot(x, y) > 19.0) & (x > 0) & (np.abs(y) < x)  # outer half of the wall
    thinned[:, :, 0][sector & (thinned[:, :, 0] == measures.MYOCARDIUM)] = 0
    a, b = measures.wall_thickness(ring, spacing), measures.wall_thickness(thinned, spacing)
    assert b["sd"] > a["sd"] + 1.0 and b["mean"] < a["mean"]


def test_patient_features_ejection_fraction_mass_and_body_size():
    spacing = (1.0, 1.0, 10.0)
    ed = _ring((80, 80, 4), spacing, (40.0, 40.0), 20.0, 6.0, (1, 2))
    es = _ring((80, 80, 4), spacing, (40.0, 40.0), 10.0, 12.0, (1, 2))
    f = measures.patient_features(ed, es, spacing, height=180.0, weight=80.0)
    assert list(f) == list(measures.FEATURES)
    cavity = lambda m: (m == measures.LV_CAVITY).sum() * 10.0 / 1000  # noqa: E731
    assert f["lv_edv"] == pytest.approx(cavity(ed)) and f["lv_esv"] == pytest.approx(cavity(es))
    assert f["lv_ef"] == pytest.approx(1 - cavity(es) / cavity(ed))
    assert f["lv_ef"] == pytest.approx(0.75, abs=0.03)  # area ratio (10/20)²
    assert f["myo_mass"] == pytest.approx(f["myo_ed"] * 1.05)
    assert f["thickness_mean_es"] > f["thickness_mean_ed"] + 4
    assert math.isnan(f["rv_ef"]) and f["rv_lv_edv_ratio"] == 0.0  # no RV drawn
    assert f["bsa"] == pytest.approx(2.0)  # sqrt(180 · 80 / 3600)
    with pytest.raises(ValueError, match="height"):
        measures.body_surface_area(0.0, 70.0)
    with pytest.raises(ValueError, match="must match"):
        measures.patient_features(ed, es[:-1], spacing, 170.0, 70.0)


def _table(rng, n_per_group):
    """Made-up feature rows in which each group has its own LV EDV and RV EF."""
    rows, patient = [], 1
    centres = {"NOR": (80, 0.45), "MINF": (130, 0.40), "DCM": (160, 0.30), "HCM": (40, 0.55),
               "RV": (75, 0.15)}
    for group, (edv, rv_ef) in centres.items():
        for _ in range(n_per_group):
            row = {name: rng.normal(1.0, 0.1) for name in measures.FEATURES}
            row.update(lv_edv=rng.normal(edv, 5), rv_ef=rng.normal(rv_ef, 0.02))
            rows.append({"patient": patient, "group": group, **row})
            patient += 1
    return pd.DataFrame(rows)


def test_forests_per_pipeline_scores_confusion_and_verdict():
    rng = np.random.default_rng(0)
    truth_train, truth_test = _table(rng, 12), _table(rng, 4)

    def thicker(table):  # a segmenter that adds 40 ml to every LV: a systematic error
        return table.assign(lv_edv=table["lv_edv"] + 40.0)

    result = diagnosis.diagnose(
        {"ground_truth": truth_train, "predicted": thicker(truth_train)},
        {"validation": {"ground_truth": truth_test, "predicted": thicker(truth_test)}},
        seed=0, n_trees=50)
    truth = result.scores["validation"]["ground_truth"]
    assert truth["accuracy"] == 1.0 and truth["balanced_accuracy"] == 1.0
    assert np.trace(truth["confusion"]) == 20 and truth["groups"] == list(diagnosis.GROUPS)
    # A forest that learnt on the same (biased) measurements is not misled by the bias ...
    assert result.scores["validation"]["predicted"]["accuracy"] == 1.0
    # ... the ground-truth forest is.
    transfer = result.transfer["validation"]
    assert transfer["accuracy"] < 0.9 and np.sum(transfer["confusion"]) == 20
    importances = result.importances()
    assert list(importances.columns) == ["ground_truth", "predicted"]
    assert set(importances.index[:2]) == {"lv_edv", "rv_ef"}
    entry = diagnosis.summary_entry(result)
    assert entry["ground_truth"]["confusion"] == truth["confusion"]
    assert entry["transfer"]["accuracy"] == transfer["accuracy"]
    assert entry["set"] == "validation" and "predictions" not in entry["predicted"]
    assert set(result.table()["features"]) == {"predicted", "ground_truth", "transfer"}
    text = diagnosis.diagnosis_verdict(0.8, 1.0)
    assert text.startswith("diagnosis from the predicted segmentation does not reach 0.90")
    assert "segmentation errors cost +0.20" in text
    assert "reaches 0.90" in diagnosis.diagnosis_verdict(0.95, 0.95)
    with pytest.raises(ValueError, match="lacks groups"):
        diagnosis.train_forest(truth_train[truth_train["group"] != "RV"], 0)
    with pytest.raises(ValueError, match="feature sources"):
        diagnosis.diagnose({"segmented": truth_train}, {}, seed=0)
