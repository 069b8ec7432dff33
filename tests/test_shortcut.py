"""The shortcut chapter: decoy test sets, the group plan (unique keys in every profile), the
setting rule, verdicts and statistics from a model table, the summary contract, figures, and a
tiny run through the study runner."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest

from heatmaploss import project, synthetic
from heatmaploss.chapters.shortcut import analysis, costs, figures, plan, run, tables
from heatmaploss.names import TEST_SETS
from heatmaploss.project.profiles import PROFILE_NAMES, get_profile


def _test_sets(n_per_class: int = 40, seed: int = 3) -> dict:
    settings = get_profile("smoke").shortcut
    group = plan.chapter_groups(settings)[0]
    data = plan.data_plan(group, settings, seed)
    return {s: synthetic.generate(1, n_per_class, seed, **data.options(s)) for s in TEST_SETS}


def test_decoy_test_sets_behave():
    sets = _test_sets()
    matched, shuffled, absent = sets["matched"], sets["shuffled"], sets["absent"]
    # ρ = 1: the marker codes the label in every matched image ...
    assert plan.marker_agreement(matched.labels, matched.decoy_class) == 1.0
    # ... shuffling breaks the agreement down to about chance (1/4), not to 0 or 1 ...
    agreement = plan.marker_agreement(shuffled.labels, shuffled.decoy_class)
    assert 0.1 < agreement < 0.45, agreement
    assert len(np.unique(shuffled.decoy_class)) == 4
    # ... and the absent set has no marker at all (pixels nor region).
    assert (absent.decoy_class == -1).all()
    assert not absent.region("decoy_marker").any()
    for data in (matched, shuffled):
        marker = data.region("decoy_marker")
        assert (marker.sum(axis=(1, 2)) == 81).all()
        assert not (marker & data.region("heart")).any()
        # The four possible squares hold the drawn one, whichever corner it is in.
        assert (marker <= data.region("decoy_corners")).all()
    assert absent.region("decoy_corners").sum(axis=(1, 2)).tolist() == [4 * 81] * len(absent)
    # The images differ only in the marker: same hearts under every decoy_set.
    np.testing.assert_array_equal(matched.region("heart"), absent.region("heart"))
    np.testing.assert_array_equal(matched.labels, shuffled.labels)


def test_quick_plan_has_every_group_of_the_issue_with_enough_seeds():
    settings = get_profile("quick").shortcut
    groups = {g.name: g for g in plan.chapter_groups(settings, ("main",))}
    assert set(groups) == {"cce", "oracle", "hirescam", "gradcam", "saliency", "rrr",
                           "hirescam_inside", "hirescam_conv3", "counterexamples",
                           "consistency"}
    assert all(g.n_seeds >= 8 for g in groups.values())
    assert settings.n_test_per_class >= 500  # one model's shuffled accuracy: SE ≈ 1 point
    rrr = groups["rrr"]
    assert (rrr.method, rrr.penalty, rrr.target, rrr.weighting) == (
        "saliency", "rrr", "log_prob_sum", "searched")
    assert groups["hirescam_inside"].inside and groups["hirescam_conv3"].layers == ("conv3",)
    assert plan.training_sets(groups["oracle"]) == (("absent",), "absent")
    assert plan.training_sets(groups["counterexamples"]) == (("matched", "shuffled"), "matched")
    with pytest.raises(ValueError, match="condition"):
        plan.DecoyGroup("x", "elsewhere", "cce", 1, 4)


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_every_profile_gives_every_group_and_search_a_unique_key(profile):
    prof = get_profile(profile)
    s = prof.shortcut
    groups = plan.chapter_groups(s, plan.CONDITIONS)
    best = next(g for g in groups if g.name == "hirescam")
    groups += plan.dose_groups(s, best) + plan.lambda_groups(s, best)
    names = [g.name for g in groups]
    assert len(names) == len(set(names)), names
    keys = [plan.search_spec(g, prof, 0).key for g in groups]
    keys += [plan.replicate_spec(g, prof, 0, {"learning_rate": 1e-3}).key for g in groups]
    assert len(keys) == len(set(keys))
    if profile == "thesis":  # every condition, two difficulties
        assert {g.condition for g in groups} == set(plan.CONDITIONS)
        assert sum(g.condition == "difficulty" for g in groups) == 4
        assert all(g.n_seeds >= 10 for g in groups if g.condition == "main")


def test_setting_rule_uses_validation_only_and_prefers_the_strongest_affordable_term():
    trials = pd.DataFrame({
        "hyperparameters": [{"learning_rate": 1e-3, "heatmap_weight": 1.0},
                            {"learning_rate": 2e-3, "heatmap_weight": 100.0},
                            {"learning_rate": 3e-3, "heatmap_weight": 30.0}],
        "scores": [{"val_classification": 0.1, "val_accuracy": 1.0, "val_penalty": 0.5},
                   {"val_classification": 0.9, "val_accuracy": 0.7, "val_penalty": 0.01},
                   {"val_classification": 0.2, "val_accuracy": 0.995, "val_penalty": 0.1}]})
    groups = {g.name: g for g in plan.chapter_groups(get_profile("smoke").shortcut)}
    # λ searched: the lowest penalty among trials within 1 point of the best accuracy.
    assert plan.choose_setting(trials, groups["rrr"]) == {"learning_rate": 3e-3,
                                                          "heatmap_weight": 30.0}
    # Fixed λ: the lowest validation classification loss.
    assert plan.choose_setting(trials, groups["hirescam"]) == {"learning_rate": 1e-3}
    nan = trials.assign(scores=[{"val_classification": math.nan}] * 3)
    with pytest.raises(ValueError, match="finite"):
        plan.choose_setting(nan, groups["cce"])


def _fake_models(n: int = 8, seed: int = 0) -> pd.DataFrame:
    """A per-model table like run_chapter's: cce uses the marker, the oracle does not, the
    HiResCAM loss hides the marker from HiResCAM while still using it (gamed), saliency works."""
    rng = np.random.default_rng(seed)
    spec = {"cce": ("cce", "", 0.45, 0.6, 0.2), "oracle": ("oracle", "", 0.97, 0.01, 0.002),
            "hirescam": ("heatmap", "hirescam", 0.6, 0.4, 0.0),
            "saliency": ("heatmap", "saliency", 0.965, 0.02, 0.001)}
    rows = []
    for model_id, (group, (kind, explainer, shuffled, flip, mass)) in enumerate(
            [item for item in spec.items() for _ in range(n)]):
        row = {"model_id": model_id, "group": group, "condition": "main", "kind": kind,
               "loss": "cce" if kind in ("cce", "oracle") else "heatmap",
               "penalised_explainer": explainer, "seed": model_id % n,
               "model_path": f"models/{group}/{model_id}.keras", "learning_rate": 1e-3,
               "heatmap_weight": 3.0, "rho": 1.0, "difficulty": 0.0, "n_train_per_class": 100,
               "train_seconds": 10.0 + (kind == "heatmap"), "epochs": 3,
               "acc_matched": 0.99, "acc_shuffled": shuffled + rng.normal(0, 0.005),
               "acc_absent": shuffled + 0.1, "flip_rate": flip + rng.uniform(0, 0.01),
               "removal_delta": -flip, "probe_conv1": 1.0, "probe_last_conv": 0.5 + flip / 2}
        for test_set in TEST_SETS:
            row[f"worst_{test_set}"] = row[f"acc_{test_set}"] - 0.05
        for e in ("hirescam", "gradcam", "saliency", "hirescam@conv3"):
            own = mass if e == explainer else (0.2 if kind == "cce" else 0.02)
            row[f"mass0_{e}_decoy_marker"] = own * rng.uniform(0.5, 1.5)
            row[f"mass_{e}_decoy_marker"] = row[f"mass0_{e}_decoy_marker"]
            row[f"mass_{e}_heart"] = 0.5
            row[f"empty_{e}"] = 0.0
        rows.append(row)
    return pd.DataFrame(rows)


def test_verdicts_statistics_detection_and_target():
    models = analysis.add_verdicts(_fake_models())
    by_group = models.groupby("group")
    assert by_group["uses_shortcut"].sum().to_dict() == {"cce": 8, "hirescam": 8,
                                                         "oracle": 0, "saliency": 0}
    assert by_group["gamed"].sum().to_dict() == {"cce": 0, "hirescam": 8, "oracle": 0,
                                                 "saliency": 0}
    stats = analysis.group_statistics(models).set_index("group")
    # The primary family: 3 groups vs cce (not cce itself) + 3 vs the oracle, Holm-adjusted.
    tested = stats[["p_vs_cce", "p_vs_oracle"]].notna().sum().sum()
    assert tested == 6
    assert (stats["p_holm"].dropna() >= stats["p_vs_cce"].dropna()).all()
    assert stats.loc["saliency", "p_holm"] < 0.05 and stats.loc["saliency", "gap_to_oracle"] < 0.01
    assert stats.loc["hirescam", "n_gamed"] == 8
    target = analysis.target_verdict(stats.reset_index())
    assert target["met"] and target["groups"] == ["saliency"]
    detect = analysis.detection(models)
    assert detect["gradcam"]["spearman_rho"] > 0.3 and detect["gradcam"]["p"] < 0.05
    assert analysis.best_method(models) == "saliency"
    with pytest.raises(ValueError, match="oracle"):
        analysis.add_verdicts(models[models["group"] != "oracle"])


def test_summary_contract_report_rows_and_tables(tmp_path):
    models = analysis.add_verdicts(_fake_models())
    stats = analysis.group_statistics(models)
    detect = analysis.detection(models)
    settings = {"cce": {"learning_rate": 1e-3}}
    tables.save_statistics(models, stats, detect, settings, {"shortcut_gap": 0.05}, tmp_path)
    entry = json.loads((tmp_path / "summary.json").read_text())["experiments"]["decoy"]
    assert entry["oracle"] == "oracle" and len(entry["models"]) == len(models)
    record = entry["models"][0]
    assert set(record) >= {"group", "seed", "model_path", "accuracy", "flip_rate",
                           "removal_delta", "marker_mass", "empty_map_share", "uses_shortcut",
                           "gamed"}
    assert set(record["accuracy"]) == set(TEST_SETS)
    group = entry["groups"]["saliency"]
    assert set(group) >= {"n_models", "shuffled_accuracy", "gap_to_oracle", "flip_rate_mean",
                          "n_uses_shortcut", "n_gamed", "p_vs_cce", "p_holm"}
    assert set(group["shuffled_accuracy"]) >= {"mean", "sd", "min", "max"}
    assert set(entry["detection"]["saliency"]) >= {"spearman_rho", "p"}
    from heatmaploss.report import verdicts as rules
    rows = tables.report_rows(stats, detect)
    assert all(rules.recheck(r.ours_verdict) == r.ours_verdict for r in rows)
    verdicts = {r.claim: r.ours_verdict.verdict for r in rows}
    assert verdicts["the saliency loss removes the shortcut"] == "supported"
    assert verdicts["the hirescam loss removes the shortcut"] == "partly supported"
    assert verdicts["an attribution method in the loss reaches the oracle"] == "supported"
    assert "gradcam's marker mass tracks reliance (flip rate)" in verdicts
    assert tables.removal_verdict({**stats.set_index("group").loc["saliency"].to_dict(),
                                   "group": "saliency"}) == "shortcut removed"
    table = tables.closing_table(stats, costs.training_time_table(models))
    assert table.count("\n") == 1 + 4 and "| main | saliency | 8 |" in table


def test_figures_draw_from_a_model_table(tmp_path):
    models = analysis.add_verdicts(_fake_models(n=3))
    names = figures.save_figures(models, analysis.detection(models), tmp_path)
    assert set(names) == {"decoy_accuracy_by_set", "decoy_marker_mass", "decoy_detection",
                          "decoy_probes"}
    for name in names:
        assert (tmp_path / f"{name}.png").stat().st_size > 1000


def test_two_groups_through_the_study_runner(tmp_path):
    """A search chooses the setting; seeds at it are recorded, evaluated, reused."""
    pytest.importorskip("keras")
    from heatmaploss.registry import Registry

    smoke = get_profile("smoke")
    settings = dataclasses.replace(smoke.shortcut, n_train_per_class=8, n_val_per_class=4,
                                   n_test_per_class=4, n_probe_per_class=8)
    ctx = project.open_run(dataclasses.replace(smoke, shortcut=settings), 0, str(tmp_path),
                           progress=False)
    groups = [g for g in plan.chapter_groups(settings) if g.name in ("oracle", "rrr")]
    chosen: dict = {}
    with Registry(results_dir=tmp_path) as registry:
        ids = {g.name: run.run_group(g, ctx, registry, chosen) for g in groups}
        models = run.collect(groups, ids, registry, "smoke")
    assert set(chosen["rrr"]) == {"learning_rate", "heatmap_weight"}
    assert sorted(models["group"]) == ["oracle", "oracle", "rrr", "rrr"]
    assert models["seed"].nunique() == 4  # independent seeds, not search trials
    for column in ("acc_matched", "acc_shuffled", "acc_absent", "flip_rate", "removal_delta",
                   "mass0_hirescam_decoy_marker", "mass0_hirescam@conv3_decoy_corners",
                   "empty_saliency", "probe_conv1", "probe_last_conv"):
        assert column in models and models[column].notna().all(), column
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "models").rglob("*.keras")}
    with Registry(results_dir=tmp_path) as registry:
        again = {g.name: run.run_group(g, ctx, registry, chosen) for g in groups}
    assert again == ids
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "models").rglob("*.keras")} == stamps


def test_adaptive_weight_trains_and_round_trips(tmp_path):
    keras = pytest.importorskip("keras")
    from heatmaploss import models
    from heatmaploss.losses import HeatmapLossConfig

    data = synthetic.generate(1, 4, 0, decoy=1.0)
    config = HeatmapLossConfig(method="hirescam", weight=1.0)
    base = models.build_model("small_cnn", heatmap=config, seed=1)
    model = models.GradientBalancedModel(base.backbone, base.head, heatmap=config, ratio=0.5)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    dataset = models.make_dataset(data.images, data.labels, ~data.region("heart"), batch_size=8)
    history = model.fit(dataset, epochs=1, verbose=0).history
    assert np.isfinite(history["weight"][0]) and history["weight"][0] > 0
    model.save(tmp_path / "adaptive.keras")
    loaded = keras.models.load_model(tmp_path / "adaptive.keras")
    assert isinstance(loaded, models.GradientBalancedModel) and loaded.ratio == 0.5
    x = models.preprocess_images(data.images[:2])
    np.testing.assert_allclose(loaded(x).numpy(), model(x).numpy(), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="inside_weight"):
        models.GradientBalancedModel(base.backbone, base.head,
                                     heatmap=HeatmapLossConfig(method="hirescam",
                                                               inside_weight=1.0))
