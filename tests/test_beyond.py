"""The shortcut chapter: decoy test sets, group plan, adaptive weight, pipeline, outputs."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
from heatmaploss import project, synthetic
from heatmaploss.chapters.shortcut import analysis as beyond_analysis
from heatmaploss.chapters.shortcut import figures as beyond_figures
from heatmaploss.chapters.shortcut import plan as beyond
from heatmaploss.chapters.shortcut import run as beyond_run
from heatmaploss.names import EXPLAINERS, TEST_SETS
from heatmaploss.project.profiles import get_profile


def _test_sets(n_per_class: int = 40, seed: int = 3) -> dict:
    settings = get_profile("smoke").beyond
    group = beyond.DecoyGroup("cce", "main", n_models=1, n_train_per_class=4)
    plan = beyond.data_plan(group, settings, seed)
    return {s: synthetic.generate(1, n_per_class, seed, **plan.options(s)) for s in TEST_SETS}


def test_decoy_test_sets_behave():
    sets = _test_sets()
    matched, shuffled, absent = sets["matched"], sets["shuffled"], sets["absent"]
    # ρ = 1: the marker codes the label in every matched image ...
    assert beyond.marker_agreement(matched.labels, matched.decoy_class) == 1.0
    # ... shuffling breaks the agreement down to about chance (1/4), not to 0 or 1 ...
    agreement = beyond.marker_agreement(shuffled.labels, shuffled.decoy_class)
    assert 0.1 < agreement < 0.45, agreement
    assert len(np.unique(shuffled.decoy_class)) == 4
    # ... and the absent set has no marker at all (pixels nor region).
    assert (absent.decoy_class == -1).all()
    assert not absent.region("decoy_marker").any()
    # The marker lies outside the heart and is the same size in matched and shuffled images.
    for data in (matched, shuffled):
        marker = data.region("decoy_marker")
        assert (marker.sum(axis=(1, 2)) == 81).all()
        assert not (marker & data.region("heart")).any()
    # The images differ only in the marker: same hearts under every decoy_set.
    np.testing.assert_array_equal(matched.region("heart"), absent.region("heart"))
    np.testing.assert_array_equal(matched.labels, shuffled.labels)


def test_test_set_options_reject_unknown_set():
    plan = beyond.data_plan(beyond.DecoyGroup("cce", "main", 1, 4), get_profile("smoke").beyond, 0)
    with pytest.raises(ValueError, match="decoy_set"):
        plan.options("moved")


def test_chapter_groups_cover_every_method_with_enough_models():
    settings = get_profile("quick").beyond
    groups = beyond.chapter_groups(settings)
    main = {g.name: g for g in groups if g.condition == "main"}
    assert set(main) == {"cce", "hirescam", "gradcam", "saliency"}
    assert all(g.n_models >= 8 for g in main.values())
    assert {g.penalty for g in groups if g.method} >= {"thesis", "outside_fraction", "l2"}
    assert any(g.inside_weight > 0 for g in groups)
    assert any(g.weighting == "adaptive" for g in groups)
    assert any(g.weighting == "searched" for g in groups)
    assert {g.condition for g in groups} == set(beyond.CONDITIONS)
    labels = [g.label for g in groups]
    assert len(labels) == len(set(labels))
    with pytest.raises(ValueError, match="condition"):
        beyond.DecoyGroup("x", "elsewhere", 1, 4)


def test_adaptive_weight_trains_and_round_trips(tmp_path):
    keras = pytest.importorskip("keras")
    from heatmaploss import models
    from heatmaploss.losses import HeatmapLossConfig
    from heatmaploss.models import GradientBalancedModel

    data = synthetic.generate(1, 4, 0, decoy=1.0)
    config = HeatmapLossConfig(method="hirescam", weight=1.0)
    base = models.build_model("small_cnn", heatmap=config, seed=1)
    model = GradientBalancedModel(base.backbone, base.head, heatmap=config, ratio=0.5)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    dataset = models.make_dataset(data.images, data.labels, ~data.region("heart"), batch_size=8)
    history = model.fit(dataset, epochs=1, verbose=0).history
    weight = history["weight"][0]
    assert np.isfinite(weight) and weight > 0
    assert float(model.adaptive_weight.numpy()) > 0
    path = tmp_path / "adaptive.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, GradientBalancedModel) and loaded.ratio == 0.5
    x = models.preprocess_images(data.images[:2])
    np.testing.assert_allclose(loaded(x).numpy(), model(x).numpy(), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="inside_weight"):
        GradientBalancedModel(base.backbone, base.head,
                              heatmap=HeatmapLossConfig(method="hirescam", inside_weight=1.0))


def _fake_models(n: int = 4, seed: int = 0) -> pd.DataFrame:
    """A per-model table shaped like run_chapter's, with a shortcut-using cce group."""
    rng = np.random.default_rng(seed)
    rows = []
    plan = [("main", "cce", "cce"), ("main", "hirescam", "heatmap"),
            ("main", "saliency", "heatmap"), ("penalty", "saliency_l2", "heatmap"),
            ("lambda", "hirescam_searched", "heatmap"), ("difficulty", "cce", "cce"),
            ("difficulty", "hirescam", "heatmap"), ("small_train", "cce", "cce"),
            ("small_train", "hirescam", "heatmap")]
    for model_id, (condition, group, loss) in enumerate(
            [p for p in plan for _ in range(n)]):
        shortcut = loss == "cce"
        row = {"model_id": model_id, "condition": condition, "group": group, "loss": loss,
               "difficulty": 0.8 if condition == "difficulty" else 0.0,
               "n_train_per_class": 40 if condition == "small_train" else 100,
               "heatmap_weight": float(rng.uniform(0.1, 30)) if loss == "heatmap" else 0.0,
               "learning_rate": float(rng.uniform(3e-4, 3e-3)), "val_accuracy": 1.0,
               "val_penalty": 0.1, "train_seconds": float(rng.uniform(5, 9)), "epochs": 3}
        for test_set, value in (("matched", 0.99), ("shuffled", 0.45 if shortcut else 0.93),
                                ("absent", 0.6 if shortcut else 0.95)):
            row[f"acc_{test_set}"] = value + rng.normal(0, 0.02)
            row[f"worst_{test_set}"] = row[f"acc_{test_set}"] - 0.1
        for explainer in EXPLAINERS:
            row[f"mass_{explainer}_decoy_marker"] = (0.2 if shortcut else 0.01) * rng.uniform(.5, 1)
            row[f"mass_{explainer}_heart"] = (0.3 if shortcut else 0.8) * rng.uniform(.8, 1)
        rows.append(row)
    return pd.DataFrame(rows)


def test_statistics_summary_and_report_from_a_model_table(tmp_path):
    models = _fake_models()
    comparisons = beyond_analysis.compare_family(models)
    tested = comparisons[comparisons["skipped"] == ""]
    assert not tested.empty and (tested["p_holm"] >= tested["p_value"]).all()
    assert "lambda" not in set(comparisons["condition"])  # a trade-off curve, not replicates
    # The penalty condition has no cce group of its own: it is compared with main's.
    penalty = comparisons[comparisons["condition"] == "penalty"]
    assert (penalty["n_cce"] == 4).all()

    part = beyond_analysis.save_statistics(models, comparisons, tmp_path, beyond.PROTOCOL)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary == json.loads(json.dumps(summary))  # plain JSON
    entry = summary["experiments"]["decoy"]["controlled"]
    assert entry == json.loads(json.dumps(part["experiments"]["decoy"]["controlled"]))
    for group in ("cce", "hirescam", "saliency"):
        g = entry["groups"][group]
        assert g["n_models"] == 4 and len(g["test_accuracy"]) == 4
        for test_set in ("matched", "shuffled", "absent"):
            assert len(g["test_accuracy_by_set"][test_set]) == 4
        for explainer in ("hirescam", "gradcam", "saliency"):
            assert len(g["overlap"][explainer]["decoy_marker"]) == 4
    comparison = entry["comparisons"]["hirescam"]["saliency"]["decoy_marker"]
    assert {"test", "p_value", "p_holm", "cohens_d", "cles", "n"} <= set(comparison)
    assert "penalty" in entry["conditions"] and "difficulty" in entry["conditions"]
    assert (tmp_path / "stats" / "decoy_models.csv").exists()

    rows = beyond_analysis.report_rows(models, comparisons)
    assert rows[0]["verdict"] == "shortcut used"
    assert {r["verdict"] for r in rows[1:]} == {"shortcut removed"}
    note = beyond_analysis.closing_note(models)
    assert note.count("\n") == 1 + 9 and "marker mass gradcam" in note  # 9 (condition, group)


def test_figures_and_cost_tables(tmp_path):
    models = _fake_models(n=3)
    names = beyond_figures.save_figures(models, tmp_path)
    assert set(names) == set(beyond_figures.FIGURES) - {"decoy_samples"}
    for name in names:
        assert (tmp_path / f"{name}.png").stat().st_size > 1000
    times = beyond_analysis.training_time_table(models)
    assert times.loc[("main", "cce"), "ratio_to_main_cce"] == pytest.approx(1.0)
    assert beyond_analysis.cost_table(tmp_path / "missing.json") is None
    bench = {"backbone": {"small_cnn": {"cce_step_s": 0.04, "hirescam_step_s": 0.044,
                                        "gradcam_step_s": 0.045, "saliency_step_s": 0.1}},
             "peak_rss_mb": 900.0}
    table = beyond_analysis.cost_table(bench)
    assert table.loc[0, "hirescam_ratio"] == pytest.approx(1.1)


def test_pipeline_records_every_model(tmp_path):
    pytest.importorskip("keras")
    smoke = get_profile("smoke")
    settings = dataclasses.replace(smoke.beyond, n_models_main=1, n_train_per_class=8,
                                   n_val_per_class=4, n_test_per_class=4)
    ctx = project.open_run(dataclasses.replace(smoke, beyond=settings), 0, str(tmp_path),
                           progress=False)
    models = beyond_run.run_chapter(ctx, conditions=("main",))
    assert sorted(models["group"]) == ["cce", "gradcam", "hirescam", "saliency"]
    for column in ("acc_matched", "acc_shuffled", "acc_absent", "worst_shuffled",
                   "mass_hirescam_decoy_marker", "mass_saliency_heart"):
        assert column in models and models[column].notna().any(), column
    assert (models["acc_shuffled"].between(0, 1)).all()
    # A second run reuses the registry: nothing retrained, nothing duplicated.
    again = beyond_run.run_chapter(ctx, conditions=("main",))
    assert sorted(again["model_id"]) == sorted(models["model_id"])


def test_cut_at_an_earlier_layer_keeps_the_function_and_saves(tmp_path):
    keras = pytest.importorskip("keras")
    from heatmaploss import models
    from heatmaploss.losses import HeatmapLossConfig

    config = HeatmapLossConfig(method="gradcam", weight=1.0)
    model = models.build_model("small_cnn", heatmap=config, seed=2)
    early, rest = models.cut_at(model, "conv3")
    cut = models.HeatmapLossModel(early, rest, heatmap=config)
    data = synthetic.generate(1, 2, 0, decoy=1.0)
    x = models.preprocess_images(data.images)
    np.testing.assert_allclose(cut(x).numpy(), model(x).numpy(), rtol=1e-5, atol=1e-5)
    assert tuple(early.outputs[0].shape[1:3]) == (26, 33)  # 4x the cells of last_conv
    cut.compile(optimizer=keras.optimizers.Adam(1e-3))
    cut.fit(models.make_dataset(data.images, data.labels, ~data.region("heart"), batch_size=8),
            epochs=1, verbose=0)
    models.save_model(cut, tmp_path / "cut.keras")
    loaded = models.load_model(tmp_path / "cut.keras")
    np.testing.assert_allclose(loaded(x).numpy(), cut(x).numpy(), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="not in the backbone"):
        models.cut_at(model, "block9")
