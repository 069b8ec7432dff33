"""The thesis profile and protocol: the toy-size profile, the thesis's CCE loss on sigmoid
outputs, its bilinear mask, notebook 02's drop rule in experiments 1 and 2, ImageNet weights
from a file."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from heatmaploss import project, reanalysis
from heatmaploss.chapters.experiments import masks
from heatmaploss.chapters.experiments import plan as protocols
from heatmaploss.chapters.experiments.results import ExperimentResults
from heatmaploss.project.profiles import PROFILES, get_profile, tiny

from conftest import REPO_ROOT

#: Settings fields a toy-size copy may change: sizes, counts, and VGG16's initial weights.
SIZE_FIELDS = {
    "data": {"n_train_per_class", "n_val_per_class", "n_test_per_class",
             "n_calibration_per_class", "chunk_size"},
    "experiments": {"backbone_weights", "trials_per_group", "epochs", "early_stopping_patience",
                    "thesis_epochs", "batch_size", "eval_batch_size", "n_train_per_class",
                    "n_val_per_class", "n_test_per_class"},
    "acdc": {"fixture_preset", "target_spacing", "box", "unet_base_filters", "unet_epochs",
             "unet_warmup_steps", "classifier_epochs", "classifier_dense_units",
             "classifier_seeds"},
    "shortcut": {"backbone_weights", "n_train_per_class", "n_val_per_class",
                 "n_test_per_class", "n_explain_per_class", "n_probe_per_class", "epochs",
                 "batch_size", "n_seeds", "n_search_trials", "n_sweep_seeds",
                 "small_train_per_class"},
}


def test_tiny_profile_changes_only_sizes():
    full, toy = get_profile("thesis"), get_profile("thesis-tiny")
    assert toy == tiny(full) and toy.is_tiny and not full.is_tiny
    for section, allowed in SIZE_FIELDS.items():
        a, b = dataclasses.asdict(getattr(full, section)), dataclasses.asdict(getattr(toy, section))
        changed = {k for k in a if a[k] != b[k]}
        assert changed <= allowed, (section, changed - allowed)
    # What defines the code paths is kept: backbone, protocols, conditions, batch size 1 ...
    assert toy.experiments.backbone == toy.shortcut.backbone == "vgg16"
    assert toy.experiments.protocols == ("thesis", "controlled")
    assert toy.experiments.thesis_batch_size == 1
    assert toy.shortcut.conditions == full.shortcut.conditions
    assert toy.acdc.unet_levels == full.acdc.unet_levels
    assert toy.acdc.unet_augment and toy.acdc.unet_batch_size == 1
    # ... and every size is a toy, VGG16 starts from random weights (no download).
    assert toy.experiments.backbone_weights is None and toy.shortcut.backbone_weights is None
    assert toy.data.n_train_per_class <= 4 and toy.experiments.trials_per_group == 2
    assert toy.shortcut.n_seeds == 2 and toy.shortcut.n_search_trials == 2
    assert "thesis-tiny" in PROFILES


def test_thesis_recipes_record_what_runs():
    settings = get_profile("thesis").experiments
    cce = protocols.group_settings("thesis", "cce", settings)
    assert (cce.classification, cce.output_activation) == ("sigmoid_cce", "sigmoid")
    controlled = protocols.group_settings("controlled", "cce", settings)
    assert (controlled.classification, controlled.output_activation) == ("cce", "softmax")
    assert controlled.mask_resize == "area"
    with pytest.raises(ValueError, match="output_activation='softmax' with classification="
                                         "'sigmoid_cce'"):
        dataclasses.replace(cce, output_activation="softmax")
    spec = protocols.search_spec(1, cce, "thesis", get_profile("thesis-tiny"), 0)
    assert spec.config["classification"] == "sigmoid_cce"
    assert spec.training.chance_objective == pytest.approx(np.log(4))


def test_thesis_cce_group_trains_on_sigmoid_outputs():
    """The built model's loss is −log(σ_c / Σ_j σ_j), computed by hand from its own logits."""
    import keras

    from heatmaploss.chapters.experiments.run import build_model

    recipe = dataclasses.replace(
        protocols.group_settings("thesis", "cce", get_profile("thesis-tiny").experiments),
        backbone="small_cnn", pooling="same", trainable_backbone=True)
    model = build_model(recipe, learning_rate=1e-3, seed=0)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (3, 105, 135, 3)).astype("float32")
    labels = keras.utils.to_categorical([0, 2, 3], 4).astype("float32")
    logits = np.asarray(model(x, training=False), dtype=np.float64)
    sigmoid = 1 / (1 + np.exp(-logits))
    hand = -np.log(sigmoid[np.arange(3), [0, 2, 3]] / sigmoid.sum(axis=1)).mean()
    result = model.evaluate(x, labels, verbose=0, return_dict=True)
    assert result["classification"] == pytest.approx(hand, rel=1e-5)
    assert model.heatmap.classification == "sigmoid_cce"


def test_thesis_heatmap_group_resizes_its_mask_bilinearly():
    from heatmaploss.chapters.experiments.run import build_model

    settings = get_profile("thesis-tiny").experiments
    heatmap = dataclasses.replace(protocols.group_settings("thesis", "heatmap", settings),
                                  backbone="small_cnn", pooling="same")
    assert build_model(heatmap, 1e-4, seed=0).heatmap.mask_resize == "bilinear"
    controlled = dataclasses.replace(protocols.group_settings("controlled", "heatmap", settings),
                                     backbone="small_cnn")
    assert build_model(controlled, 1e-4, seed=0).heatmap.mask_resize == "area"


def test_model_score_and_drop_rule():
    assert reanalysis.model_score([0.2, 0.4, 0.6, 0.8]) == pytest.approx(0.5)
    assert np.isnan(reanalysis.model_score([0.2, np.nan, 0.6, 0.8]))
    assert reanalysis.drop_reason(0.96, {"NOR": 0.1, "HCM": 0.2}) is None
    assert reanalysis.drop_reason(0.95, {"NOR": 0.1}) == "val_acc <= 0.95"
    assert reanalysis.drop_reason(np.nan, {"NOR": 0.1}) == "val_acc missing"
    assert reanalysis.drop_reason(0.99, {"NOR": np.nan, "HCM": 0.2, "DCM": np.nan}) == \
        "NaN class average (NOR, DCM)"


def _published_as_experiment(experiment: int) -> ExperimentResults:
    """The thesis's published models of one experiment in the shape experiments 1/2 produce."""
    trials = reanalysis.load_trials()
    models, metrics = [], []
    numbers = reanalysis.EXPERIMENT_NUMBERS[experiment]
    for group, number in (("cce", numbers["CCE"]), ("heatmap", numbers["heatmap loss"])):
        rows = trials[trials["experiment_number"] == number].sort_values("trial_uid")
        for trial, row in enumerate(rows.itertuples()):
            model_id = f"{group}-{row.trial_uid}"
            models.append({"model_id": model_id, "protocol": "thesis", "group": group,
                           "trial": trial, "val_accuracy": row.val_acc,
                           "test_accuracy": row.test_acc,
                           "selected": bool(row.val_acc > reanalysis.VAL_ACC_THRESHOLD)})
            for explainer in ("hirescam", "gradcam"):
                for cls, column in reanalysis.metric_columns(explainer, "heart").items():
                    metrics.append({"model_id": model_id, "metric": "overlap",
                                    "explainer": explainer, "region": "heart",
                                    "class_name": cls, "value": getattr(row, column), "n": 1})
    recipes = {"thesis": {g: protocols.group_settings("thesis", g, get_profile("thesis")
                                                      .experiments) for g in ("cce", "heatmap")}}
    return ExperimentResults(experiment=experiment, profile="published", seed=0,
                             results_dir=REPO_ROOT, models=pd.DataFrame(models),
                             metrics=pd.DataFrame(metrics), recipes=recipes)


@pytest.mark.parametrize("experiment", [1, 2])
def test_experiment_comparisons_apply_notebook_02_rule(experiment):
    """Run through the experiments' comparison code, the thesis's published per-class numbers
    give notebook 02's table: the same models dropped, the same tests and p-values."""
    results = _published_as_experiment(experiment)
    ours = results.comparisons("thesis")
    theirs = reanalysis.thesis_comparisons("hirescam", n_boot=200)[f"exp{experiment}_heart"]
    held_out = reanalysis.thesis_comparisons("gradcam", n_boot=200)[f"exp{experiment}_heart"]
    for entry, reference in ((ours["hirescam"]["heart"], theirs),
                             (ours["gradcam"]["heart"], held_out)):
        a, b = entry["result"], reference.result
        assert a.n == b.n and a.test == b.test
        assert a.p_value == pytest.approx(b.p_value, rel=1e-9)
        assert a.cohens_d == pytest.approx(b.cohens_d, rel=1e-9)
        dropped = reference.groups.dropped
        nan_drops = dropped[dropped["reason"].str.startswith("NaN")]
        assert sum(entry["n_dropped_nan"]) == len(nan_drops)


def test_comparisons_with_empty_maps_counted():
    """Empty maps counted as zero mass inside: no model is dropped, scores are lower."""
    results = _published_as_experiment(1)
    extra = results.metrics.copy()
    extra["metric"] = "overlap_with_empty"
    extra["value"] = extra["value"].fillna(0.0) * 0.5
    results = dataclasses.replace(results, metrics=pd.concat([results.metrics, extra]))
    plain = results.comparisons("thesis")["gradcam"]["heart"]
    counted = results.comparisons("thesis", with_empty=True)["gradcam"]["heart"]
    assert sum(plain["n_dropped_nan"]) > 0 and counted["n_dropped_nan"] == [0, 0]
    selected = results.models.groupby("group")["selected"].sum()
    assert counted["result"].n == (selected["cce"], selected["heatmap"])


def test_mask_resize_difference_by_hand():
    # A mask whose edge falls on a cell boundary: area and bilinear agree exactly.
    mask = np.zeros((1, 8, 8), np.float32)
    mask[:, :, :4] = 1
    same = masks.resize_difference(mask, (2, 2))
    assert same["mean_abs_difference"] == pytest.approx(0.0, abs=1e-6)
    assert same["area_mean"] == pytest.approx(0.5)
    # One pixel on in a 4 x 4 cell: area gives 1/16; bilinear samples near the centre (0).
    dot = np.zeros((1, 8, 8), np.float32)
    dot[0, 0, 0] = 1
    result = masks.resize_difference(dot, (2, 2))
    assert result["area_mean"] == pytest.approx(1 / 64)
    assert result["bilinear_mean"] == pytest.approx(0.0, abs=1e-6)
    assert result["max_abs_difference"] == pytest.approx(1 / 16)
    assert result["cells_differing"] == 0.0 and result["n_images"] == 1


def test_vgg16_weights_from_a_file(tmp_path, monkeypatch):
    import keras

    from heatmaploss import models

    monkeypatch.setenv(project.context.VGG16_WEIGHTS_ENV, "")  # restored after the test
    keras.utils.set_random_seed(3)
    source = keras.applications.VGG16(include_top=False, weights=None,
                                      input_shape=(105, 135, 3))
    path = tmp_path / "vgg16_notop.weights.h5"
    source.save_weights(path)
    with pytest.raises(ValueError, match="vgg16_weights='/no/such.h5': no such file"):
        project.open_run("thesis-tiny", 0, str(tmp_path / "r"), vgg16_weights="/no/such.h5")
    ctx = project.open_run("thesis-tiny", 0, str(tmp_path / "r"), vgg16_weights=str(path))
    assert ctx.vgg16_weights == path.resolve()
    backbone = models.vgg16_backbone(weights="imagenet", pooling="valid")
    kernel = backbone.get_layer("block5_conv3").get_weights()[0]
    assert np.array_equal(kernel, source.get_layer("block5_conv3").get_weights()[0])
    monkeypatch.setenv(project.context.VGG16_WEIGHTS_ENV, str(tmp_path / "missing.h5"))
    with pytest.raises(models.PretrainedWeightsUnavailable, match="vgg16_weights=.*missing.h5"):
        models.vgg16_backbone()


def _run_all(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO_ROOT / "run_all.py"), *args],
                          capture_output=True, text=True, cwd=REPO_ROOT)


def test_run_all_tiny_and_weights_errors(tmp_path):
    bad = _run_all("--profile", "quick", "--tiny", "--results-dir", str(tmp_path))
    assert bad.returncode == 2
    assert "--tiny goes with --profile thesis" in bad.stderr
    missing = _run_all("--profile", "thesis", "--tiny", "--vgg16-weights", "/no/file.h5",
                       "--results-dir", str(tmp_path))
    assert missing.returncode == 2 and "--vgg16-weights '/no/file.h5': no such file" in \
        missing.stderr
