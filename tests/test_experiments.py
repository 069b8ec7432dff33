"""Experiments end to end on the smoke profile: registry rows, evaluation, summary contract."""

from __future__ import annotations

import pytest
from heatmaploss import project
from heatmaploss.chapters.experiments import analysis, figures
from heatmaploss.chapters.experiments import plan as protocols
from heatmaploss.chapters.experiments import run as experiments
from heatmaploss.names import EXPLAINERS, REGIONS
from heatmaploss.project import files
from heatmaploss.project.profiles import get_profile


def test_protocols_differ_as_specified():
    settings = get_profile("thesis").experiments
    cce = protocols.group_settings("thesis", "cce", settings)
    heatmap = protocols.group_settings("thesis", "heatmap", settings)
    assert (cce.trainable_backbone, heatmap.trainable_backbone) == (False, True)
    assert (cce.classification, heatmap.classification) == ("sigmoid_cce", "mse")
    assert cce.output_activation == heatmap.output_activation == "sigmoid"
    assert heatmap.mask_resize == "bilinear" and heatmap.pooling == cce.pooling == "valid"
    assert (cce.epochs, heatmap.epochs) == (6, 2)
    assert (cce.lr_min, cce.lr_max, heatmap.lr_min, heatmap.lr_max) == (5e-6, 1e-3, 5e-7, 5e-5)
    assert heatmap.penalty == "thesis" and heatmap.heatmap_class == "predicted"
    assert cce.min_val_accuracy == heatmap.min_val_accuracy == 0.95
    # Controlled: everything but the penalty is shared.
    a = protocols.group_settings("controlled", "cce", settings).as_dict()
    b = protocols.group_settings("controlled", "heatmap", settings).as_dict()
    differing = {k for k in a if a[k] != b[k]}
    assert differing == {"group", "penalty", "penalty_weight"}
    assert b["penalty"] == "outside_fraction" and b["heatmap_class"] == "true"
    with pytest.raises(ValueError, match="unknown protocol 'other'"):
        protocols.check_protocols("controlled,other")


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    results = tmp_path_factory.mktemp("smoke")
    ctx = project.open_run("smoke", 0, str(results), progress=False)
    outcome = experiments.run_experiment(2, ctx)
    return ctx, outcome


def test_every_model_recorded_and_evaluated_once(smoke_run):
    ctx, outcome = smoke_run
    results = ctx.results
    trials = get_profile("smoke").experiments.trials_per_group
    models = outcome.models
    assert len(models) == 2 * trials
    assert models.groupby("group")["trial"].nunique().to_dict() == {"cce": trials,
                                                                    "heatmap": trials}
    assert models["test_accuracy"].notna().all()
    assert all((results / p).exists() for p in models["model_path"])
    overlap = outcome.overlap_table()
    for explainer in EXPLAINERS:
        for region in REGIONS:
            assert f"{explainer}_{region}" in overlap
    # Re-running trains and evaluates nothing again.
    before = {p: p.stat().st_mtime_ns for p in (results / "models").rglob("*.keras")}
    again = experiments.run_experiment(2, ctx)
    assert len(again.models) == len(models)
    assert sorted(again.models["model_id"]) == sorted(models["model_id"])
    assert {p: p.stat().st_mtime_ns for p in (results / "models").rglob("*.keras")} == before


def test_summary_contract(smoke_run):
    ctx, outcome = smoke_run
    results = ctx.results
    analysis.save_statistics(outcome)
    summary = files.read_summary(results)
    entry = summary["experiments"]["exp2"]["controlled"]
    for group in ("cce", "heatmap"):
        g = entry["groups"][group]
        assert isinstance(g["n_models"], int)
        assert len(g["test_accuracy"]) == g["n_models"]
        for explainer in EXPLAINERS:
            for region in REGIONS:
                assert len(g["overlap"][explainer][region]) == g["n_models"]
    for explainer in EXPLAINERS:
        for region in ("heart", "sex_marker", "fat"):
            comparison = entry["comparisons"][explainer][region]
            assert {"test", "p_value", "cohens_d", "cles", "n"} <= set(comparison)
    assert (results / "stats" / "exp2_comparisons.json").exists()


def test_figures_and_report_rows(smoke_run):
    ctx, outcome = smoke_run
    results = ctx.results
    names = figures.save_figures(outcome)
    assert "exp2_controlled_overlays_cce" in names and "exp2_controlled_overlays_heatmap" in names
    for name in names:
        assert (results / "figures" / f"{name}.png").exists()
    written = analysis.add_report_rows(outcome)
    assert "Experiment 2, controlled protocol" in written["markdown"].read_text()
