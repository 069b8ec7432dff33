"""ACDC reader, fixture and preprocessing, on the project's ACDC-format fixture."""

from __future__ import annotations

import re
import shutil

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from heatmaploss import acdc
from heatmaploss.acdc import fixture as acdc_fixture
from heatmaploss.acdc.preprocess import Augmentation, augment_pair, preprocess_pair

INFO_RE = re.compile(r"ED: \d+\nES: \d+\n(Group: (NOR|MINF|DCM|HCM|RV)\n)?Height: \d+\.\d\n"
                     r"NbFrame: \d+\nWeight: \d+\.\d\n")


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return acdc_fixture.write_fixture(tmp_path_factory.mktemp("acdc") / "database", "small", seed=3)


@pytest.fixture(scope="module")
def root2017(tmp_path_factory):
    return acdc_fixture.write_fixture(tmp_path_factory.mktemp("acdc2017"), "small", seed=3,
                                      variant="2017")


@pytest.fixture(scope="module")
def training(root):
    return acdc.load_patients(root, "training")


def test_training_records_every_field(root, training):
    ids = acdc_fixture.patient_ids("small")["training"]
    assert [p.number for p in training] == ids
    for p in training:
        text = (p.folder / "Info.cfg").read_bytes().decode()
        assert INFO_RE.fullmatch(text), text
        info = dict(line.split(": ") for line in text.splitlines())
        assert p.patient_id == f"patient{p.number:03d}" and p.split == "training"
        assert p.group == acdc_fixture.TRAINING_BLOCKS[(p.number - 1) // 20] == info["Group"]
        assert (p.ed, p.es, p.nb_frame) == (int(info["ED"]), int(info["ES"]), int(info["NbFrame"]))
        assert (p.height, p.weight) == (float(info["Height"]), float(info["Weight"]))
        assert isinstance(p.ed, int) and isinstance(p.height, float) and p.has_labels
        assert 1 <= p.ed < p.es <= p.nb_frame
        header = nib.load(p.image_path("ED")).header
        assert p.spacing == tuple(float(z) for z in header.get_zooms())
        assert p.spacing[0] in acdc_fixture.IN_PLANE_SPACINGS
        for phase in acdc.PHASES:
            image, label = p.image(phase), p.label(phase)
            assert image.dtype == np.int16 and label.dtype == np.uint8
            assert image.shape == label.shape == p.shape
            assert image.std() > 0 and set(np.unique(label)) <= {0, 1, 2, 3}
    assert {p.group for p in training} == set(acdc.GROUPS)
    assert [p.is_normal for p in training].count(True) == 2
    assert sum(acdc.is_validation(p) for p in training) == 5
    assert acdc.overview(training).shape[0] == len(training)


def test_testing_split_current_and_2017(root, root2017):
    current = acdc.load_patients(root, "testing")
    assert [p.number for p in current] == [101, 102, 103, 104, 105]
    assert sorted(p.group for p in current) == sorted(acdc.GROUPS)
    assert all(p.has_labels for p in current)
    old = acdc.load_patients(root2017, "testing")
    assert [p.group for p in old] == [None] * 5 and not any(p.has_labels for p in old)
    assert "Group" not in (old[0].folder / "Info.cfg").read_text()
    assert old[0].image("ES").shape == old[0].shape
    with pytest.raises(acdc.AcdcFormatError, match=r"patient101.*frame\d\d_gt\.nii\.gz"):
        old[0].label("ED")
    with pytest.raises(acdc.AcdcFormatError, match=r"patient101: missing file .*_gt"):
        acdc.load_patients(root2017, "testing", require_labels=True)


def test_root_may_be_the_folder_above_database(root):
    assert len(acdc.load_patients(root.parent)) == 10
    with pytest.raises(acdc.AcdcFormatError, match="no training/ folder"):
        acdc.load_patients(root / "training")
    with pytest.raises(ValueError, match="split 'validation'"):
        acdc.load_patients(root, "validation")


def _copy(training, tmp_path, number=1):
    src = next(p for p in training if p.number == number)
    dst = tmp_path / "training" / src.patient_id
    shutil.copytree(src.folder, dst)
    return acdc.load_patient(dst), dst


def test_errors_name_patient_and_file(training, tmp_path):
    p, folder = _copy(training, tmp_path)
    cases = []
    # missing frame
    p.image_path("ES").rename(folder / "moved")
    cases.append(("frame04" if p.es == 4 else f"frame{p.es:02d}", "missing file"))
    with pytest.raises(acdc.AcdcFormatError) as err:
        acdc.load_patient(folder)
    assert p.patient_id in str(err.value) and str(p.image_path("ES")) in str(err.value)
    (folder / "moved").rename(p.image_path("ES"))
    # missing mask
    p.label_path("ED").rename(folder / "moved")
    with pytest.raises(acdc.AcdcFormatError, match=f"{p.patient_id}: missing file .*frame01_gt"):
        acdc.load_patient(folder)
    (folder / "moved").rename(p.label_path("ED"))
    # shape and affine mismatch
    good = p.label_path("ES").read_bytes()
    label = p.label("ES")
    nib.save(nib.Nifti1Image(label[:-1], np.diag([*p.spacing, 1])), p.label_path("ES"))
    with pytest.raises(acdc.AcdcFormatError, match=f"{p.patient_id}: .*_gt.nii.gz has shape"):
        acdc.load_patient(folder)
    nib.save(nib.Nifti1Image(label, np.diag([9.0, 9.0, 9.0, 1])), p.label_path("ES"))
    with pytest.raises(acdc.AcdcFormatError, match=f"{p.patient_id}: affine of .*_gt.nii.gz"):
        acdc.load_patient(folder)
    # label values outside {0..3}
    nib.save(nib.Nifti1Image(np.where(label == 3, 7, label).astype(np.uint8),
                             np.diag([*p.spacing, 1])), p.label_path("ES"))
    with pytest.raises(acdc.AcdcFormatError, match=r"patient001: .*_gt.nii.gz holds label values \[7\]"):
        acdc.load_patient(folder).label("ES")
    p.label_path("ES").write_bytes(good)
    # unreadable NIfTI
    p.image_path("ED").write_bytes(b"not a nifti at all")
    with pytest.raises(acdc.AcdcFormatError, match=f"{p.patient_id}: cannot read NIfTI .*frame01"):
        acdc.load_patient(folder)


@pytest.mark.parametrize("text, message", [
    ("ED: 1\nES: 5\nGroup: DCM\nHeight: 170.0\nWeight: 70.0\n", "missing NbFrame"),
    ("ED: one\nES: 5\nGroup: DCM\nHeight: 170.0\nNbFrame: 9\nWeight: 70.0\n", "ED='one' is not an integer"),
    ("ED: 1\nES: 5\nGroup: XYZ\nHeight: 170.0\nNbFrame: 9\nWeight: 70.0\n", "Group='XYZ'"),
    ("ED: 1\nES: 12\nGroup: DCM\nHeight: 170.0\nNbFrame: 9\nWeight: 70.0\n", "ES=12 outside"),
    ("ED 1\nES: 5\n", "is not 'key: value'"),
    ("ED: 1\nED: 1\n", "appears twice"),
    ("ED: 1\nAge: 5\n", "unknown key 'Age'"),
])
def test_malformed_info_cfg(training, tmp_path, text, message):
    _, folder = _copy(training, tmp_path)
    (folder / "Info.cfg").write_text(text)
    with pytest.raises(acdc.AcdcFormatError, match=f"patient001: .*Info.cfg.*{re.escape(message)}"):
        acdc.load_patient(folder)


def test_parse_info_cfg_real_format():
    info = acdc.parse_info_cfg("ED: 1\nES: 12\nGroup: DCM\nHeight: 184.0\nNbFrame: 30\nWeight: 95.0\n")
    assert info == {"ED": 1, "ES": 12, "Group": "DCM", "Height": 184.0, "NbFrame": 30, "Weight": 95.0}


def test_fixture_invariants(root, training):
    assert (root / "MANDATORY_CITATION.md").is_file()
    slices = {}
    for p in training + acdc.load_patients(root, "testing"):
        cine = nib.load(p.cine_path)
        assert cine.shape == p.shape + (p.nb_frame,) and cine.get_data_dtype() == np.int16
        for phase in acdc.PHASES:
            frame, mask = nib.load(p.image_path(phase)), nib.load(p.label_path(phase))
            assert mask.get_data_dtype() == np.uint8
            assert np.array_equal(frame.affine, np.diag([*p.spacing, 1.0]))
            assert np.array_equal(mask.affine, frame.affine) and mask.shape == frame.shape
            for img in (frame, mask, cine):
                assert int(img.header["qform_code"]) == 1 and int(img.header["sform_code"]) == 1
                assert img.header.get_xyzt_units()[0] == "mm"
            data = np.asanyarray(frame.dataobj)
            assert np.asanyarray(cine.dataobj)[..., p.frame_number(phase) - 1].tobytes() == data.tobytes()
        extent = np.array(p.shape[:2]) * p.spacing[0]
        assert any(np.allclose(extent, fov, atol=p.spacing[0]) for fov in acdc_fixture.FIELDS_OF_VIEW_MM)
        slices.setdefault(p.spacing[2], set()).add(p.shape[2])
    assert set(slices) == {5.0, 10.0} and slices[5.0] == {2 * s for s in slices[10.0]}
    assert len({p.spacing[0] for p in training}) == 3
    assert any(p.shape[0] != p.shape[1] for p in training)


def test_fixture_anatomy_by_group(training):
    lv = {}
    for p in training:
        ed, es = p.label("ED"), p.label("ES")
        voxel = np.prod(p.spacing)
        assert not ed[..., 0].any() and not ed[..., -1].any()  # above base / past apex
        assert (es == 3).sum() < (ed == 3).sum()
        lv.setdefault(p.group, []).append(((ed == 3).sum() * voxel, (ed == 1).sum() * voxel,
                                           1 - (es == 3).sum() / (ed == 3).sum()))
    mean = {g: np.mean(v, axis=0) for g, v in lv.items()}
    assert mean["DCM"][0] > mean["NOR"][0] > mean["HCM"][0]  # LV cavity volume
    assert mean["DCM"][2] < 0.4 < mean["NOR"][2]  # ejection fraction
    assert mean["RV"][1] > 1.5 * mean["NOR"][1]  # RV cavity volume


def test_fixture_deterministic(root, tmp_path):
    again = acdc_fixture.write_fixture(tmp_path / "again", "small", seed=3)
    files = sorted(f.relative_to(root) for f in root.rglob("*") if f.is_file())
    assert files == sorted(f.relative_to(again) for f in again.rglob("*") if f.is_file())
    assert all((root / f).read_bytes() == (again / f).read_bytes() for f in files)
    other = acdc_fixture.write_fixture(tmp_path / "other", "small", seed=4)
    name = "training/patient001/patient001_frame01.nii.gz"
    assert (other / name).read_bytes() != (root / name).read_bytes()
    with pytest.raises(ValueError, match="preset 'huge'"):
        acdc_fixture.write_fixture(tmp_path / "x", "huge")


@pytest.mark.parametrize("slice_mm", [10.0, 5.0])
def test_preprocess_shapes_and_volume(training, slice_mm):
    p = next(q for q in training if q.spacing[2] == slice_mm)
    box = (64, 64, 20)
    image, label = preprocess_pair(p.image("ED"), p.label("ED"), p.spacing, (2.5, 2.5, 5.0), box)
    assert image.shape == label.shape == box and image.dtype == np.float32
    assert label.dtype == np.uint8 and set(np.unique(label)) <= {0, 1, 2, 3}
    raw = p.label("ED")
    for k in (1, 2, 3):  # structure volumes in mm³ survive resampling
        before = (raw == k).sum() * np.prod(p.spacing)
        after = (label == k).sum() * 2.5 * 2.5 * 5.0
        assert after == pytest.approx(before, rel=0.12), k
    assert abs(float(image[label > 0].mean())) < 5 and image.min() >= -5


def test_augmentation_keeps_alignment_and_is_seeded(training):
    p = training[0]
    _, label = preprocess_pair(p.image("ED"), p.label("ED"), p.spacing, (2.5, 2.5, 5.0), (64, 64, 16))
    coded = label.astype(np.float32)[..., None] * 10.0  # an image that spells its own mask
    settings = Augmentation(noise_std=0.0, flip_probability=1.0)
    img, lab = augment_pair(coded, label, seed=5, settings=settings)
    assert img.shape == coded.shape and lab.shape == label.shape and lab.dtype == np.uint8
    assert not np.array_equal(lab, label)  # it moved
    inside = np.rint(img[..., 0] / 10.0) == lab
    assert inside.mean() > 0.97
    for k in (1, 2, 3):
        assert (lab == k).sum() == pytest.approx((label == k).sum(), rel=0.15)
    again, lab2 = augment_pair(coded, label, seed=5, settings=settings)
    assert np.array_equal(img, again) and np.array_equal(lab, lab2)
    noisy, _ = augment_pair(coded, label, seed=5, settings=Augmentation(flip_probability=1.0))
    assert 0.02 < float(np.std(noisy - img)) < 0.1


def _classifier_registry(results):
    """A registry with two tasks x two losses x three seeds of recorded classifiers."""
    from heatmaploss.chapters.acdc import analysis
    from heatmaploss.registry import Registry

    ids = {}
    with Registry(results_dir=results) as registry:
        for task in ("binary", "groups"):
            for loss, heart in (("cce", 0.3), ("heatmap", 0.9)):
                search = registry.get_or_create_search(
                    experiment="acdc_classifier", protocol="controlled", group=loss,
                    name=f"acdc-classifier-{task}-{loss}", profile="smoke")
                for seed in (0, 1, 2):
                    scores = {"balanced_accuracy": 1.0, "accuracy": 1.0,
                              "hirescam_heart_share": heart + seed / 100,
                              "hirescam_empty_map_share": 0.0,
                              "saliency_heart_share": 0.1 + seed / 50,
                              "saliency_empty_map_share": 0.0}
                    registry.record_model(
                        search, str(seed), seed=seed, epochs=1, wall_time_s=3.0,
                        test_accuracy=1.0, model_path=f"models/{task}_{loss}_{seed}.keras",
                        metrics=[r for name in ("validation", "test")
                                 for r in analysis.classifier_rows(name, scores)])
                ids[(task, loss)] = search
    return ids


def test_classifier_table_reads_every_model_set_and_metric(tmp_path):
    from heatmaploss.chapters.acdc import analysis
    from heatmaploss.registry import Registry

    ids = _classifier_registry(tmp_path)
    with Registry(results_dir=tmp_path) as registry:
        table = analysis.classifier_table(registry, ids)
    assert len(table) == 24  # 2 tasks x 2 losses x 3 seeds x 2 sets
    heat = table[(table["task"] == "groups") & (table["loss"] == "heatmap")
                 & (table["set"] == "test")]
    assert sorted(heat["hirescam_heart_share"]) == pytest.approx([0.9, 0.91, 0.92])
    assert sorted(heat["saliency_heart_share"]) == pytest.approx([0.1, 0.12, 0.14])
    assert table[list(analysis.CLASSIFIER_METRICS)].notna().all().all()


def test_map_shares_leave_empty_maps_out_and_count_them():
    from heatmaploss.chapters.acdc import analysis

    maps = np.zeros((3, 2, 2))
    maps[0, 0, 0] = 2.0  # all inside
    maps[1] = [[1.0, -5.0], [1.0, 2.0]]  # negative values do not count
    region = np.zeros((3, 2, 2))
    region[:, 0, 0] = 1.0
    inside, empty = analysis.map_shares(maps, region)
    assert inside == pytest.approx((1.0 + 0.25) / 2) and empty == pytest.approx(1 / 3)
    assert np.isnan(analysis.map_shares(np.zeros((2, 3)), np.ones((2, 3)))[0])
    scores = analysis.classifier_metrics(np.array([0, 1, 1]), np.array([0, 1, 0]),
                                         {"hirescam": maps}, {"hirescam": region})
    assert scores["balanced_accuracy"] == pytest.approx(0.75)
    assert scores["accuracy"] == pytest.approx(2 / 3)
    assert scores["hirescam_empty_map_share"] == pytest.approx(1 / 3)


def _table(heart_heatmap, accuracy_heatmap=(1.0, 1.0, 1.0, 1.0, 1.0), saliency_shift=0.0):
    rows = []
    for loss in ("cce", "heatmap"):
        for seed in range(5):
            heart = (0.30 + seed / 100) if loss == "cce" else heart_heatmap[seed]
            rows.append({"task": "binary", "loss": loss, "seed": seed, "trial": str(seed),
                         "set": "validation", "seconds": 1.0, "epochs": 1, "model_path": "",
                         "balanced_accuracy": 1.0 if loss == "cce" else accuracy_heatmap[seed],
                         "accuracy": 1.0, "hirescam_heart_share": heart,
                         "hirescam_empty_map_share": 0.0,
                         "saliency_heart_share": 0.05 + seed / 1000
                         + (saliency_shift if loss == "heatmap" else 0.0),
                         "saliency_empty_map_share": 0.0})
    return pd.DataFrame(rows)


def test_compare_losses_and_the_heatmap_verdict():
    from heatmaploss.chapters.acdc import analysis, verdicts

    moved = _table([0.95, 0.96, 0.97, 0.98, 0.99])
    comparisons = analysis.compare_losses(moved)
    heart = comparisons.set_index("metric").loc["hirescam_heart_share"]
    assert heart["n_cce"] == heart["n_heatmap"] == 5 and heart["p_holm"] < 0.05
    assert heart["cohens_d"] < 0 and heart["skipped"] == ""
    accuracy = comparisons.set_index("metric").loc["balanced_accuracy"]
    assert accuracy["skipped"] == "every value is the same"
    assert np.isnan(accuracy["p_value"])
    empty = comparisons.set_index("metric").loc["hirescam_empty_map_share"]
    assert empty["skipped"] == "every value is the same"
    text = verdicts.heatmap_verdict(comparisons, "binary")
    assert text.startswith("binary: the heatmap loss moved HiResCAM into the heart without "
                           "costing balanced accuracy; held-out saliency shows no significant")
    assert "HiResCAM in the heart 0.32 vs 0.97, heatmap higher" in text
    # A cost in accuracy, and a held-out explainer that agrees.
    costly = analysis.compare_losses(_table([0.95, 0.96, 0.97, 0.98, 0.99],
                                            accuracy_heatmap=(0.6, 0.62, 0.64, 0.66, 0.7),
                                            saliency_shift=0.2))
    text = verdicts.heatmap_verdict(costly, "binary")
    assert "into the heart at a cost in balanced accuracy; held-out saliency agrees" in text
    # No effect.
    same = analysis.compare_losses(_table([0.31, 0.30, 0.34, 0.32, 0.33]))
    assert "did not significantly move HiResCAM" in verdicts.heatmap_verdict(same, "binary")
    # Too few models: nothing is tested, and the verdict says so.
    few = analysis.compare_losses(_table([0.9] * 5).groupby("loss").head(2))
    assert set(few["skipped"]) == {"fewer than 3 values in a group"}
    assert "cannot be judged on HiResCAM" in verdicts.heatmap_verdict(few, "binary")
    assert verdicts.classifier_verdict([0.97, 1.0, 0.95]).startswith(
        "reaches 0.90 balanced accuracy (mean 0.973, min 0.950 over 3 seeds)")
    assert verdicts.classifier_verdict([0.5, np.nan]).startswith("does not reach")


def test_summary_part_entries_and_report_rows(tmp_path):
    from types import SimpleNamespace

    from heatmaploss.chapters.acdc import analysis, verdicts
    from heatmaploss.project.profiles import get_profile
    from heatmaploss.registry import Registry

    settings = get_profile("smoke").acdc
    dice = pd.DataFrame({"RV": [0.9, 0.8], "MYO": [0.7, 0.8], "LV": [0.95, 0.9]})
    dice["mean"] = dice.mean(axis=1)
    with Registry(results_dir=tmp_path) as registry:
        table = analysis.classifier_table(registry, _classifier_registry(tmp_path))
    comparisons = analysis.compare_losses(table)
    classifier = analysis.classifier_entry(table, comparisons)
    entry = classifier["groups"]["heatmap"]
    assert entry["heart_share"] == pytest.approx([0.9, 0.91, 0.92])
    assert entry["balanced_accuracy"] == [1.0, 1.0, 1.0] and entry["empty_map_share"] == [0.0] * 3
    assert entry["by_set"]["test"]["heart_share"] == pytest.approx([0.9, 0.91, 0.92])
    assert classifier["binary"]["verdict"].startswith("reaches 0.90")
    assert classifier["binary"]["comparisons"]["hirescam_heart_share"]["p_holm"] < 0.05
    diagnosis = {"predicted": {"accuracy": 0.95, "n_patients": 20},
                 "ground_truth": {"accuracy": 1.0, "n_patients": 20}, "set": "validation"}
    data = SimpleNamespace(source="fixture", root="/data", training=[0] * 8, testing=[0] * 5)
    unet = SimpleNamespace(record={"wall_time_s": 3.0}, dice=dice)
    part = analysis.summary_part(data, settings, unet, diagnosis, classifier, 42.0)["acdc"]
    assert part["unet"]["validation_dice"]["RV"] == pytest.approx(0.85)
    assert (part["data"], part["n_training_patients"]) == ("fixture", 8)
    assert part["chapter_seconds"] == 42.0
    assert part["classifier"]["binary"]["cce"]["heart_share"] == pytest.approx([0.3, 0.31, 0.32])
    rows = verdicts.report_rows(part)
    claims = [r.claim for r in rows]
    found = [r.ours_verdict.verdict for r in rows]
    assert claims[0].startswith("diagnosis from the segmentation") and found[0] == "supported"
    # Every verdict is made by a rule of the report (recomputable from its inputs).
    from heatmaploss.report import verdicts as rules
    assert all(rules.recheck(r.ours_verdict) == r.ours_verdict for r in rows)
    assert rows[1].ours_verdict.rule == "at_least" and "learn" in claims[1]
    assert rows[2].ours_verdict.rule == "direction_and_significance"


def test_compare_scores_tests_skips_and_handles_a_constant_group():
    from heatmaploss.chapters.acdc.analysis import compare_scores

    row = compare_scores([0.1, 0.2, 0.3, 0.25], [0.8, 0.9, 0.85, 0.95, np.nan])
    assert (row["n_x"], row["n_y"]) == (4, 4) and row["skipped"] == ""
    assert row["test"] in ("ttest", "mannwhitneyu") and row["p_value"] < 0.01
    assert row["cohens_d"] < 0 and row["mean_y"] == pytest.approx(0.875)
    constant = compare_scores([1.0, 1.0, 1.0, 1.0, 1.0], [0.6, 0.65, 0.7, 0.62, 0.66])
    assert constant["test"] == "mannwhitneyu (a constant group)" and constant["p_value"] < 0.05
    assert constant["cles"] == 1.0
    assert compare_scores([1.0] * 4, [1.0] * 4)["skipped"] == "every value is the same"
    few = compare_scores([0.1, 0.2], [0.3, 0.4, 0.5])
    assert few["skipped"] == "fewer than 3 values in a group" and np.isnan(few["p_value"])


def test_fixture_figures_say_so_and_maps_have_a_colour_bar():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from heatmaploss.chapters.acdc import figures

    dice = pd.DataFrame({"RV": [0.8, 0.9], "MYO": [0.7, 0.8], "LV": [0.9, 0.95],
                         "mean": [0.8, 0.88]})
    fig = figures.dice_boxplot(dice, source="fixture")
    assert fig.axes[0].get_title().endswith("(synthetic fixture)")
    plt.close(fig)
    fig = figures.dice_boxplot(dice, source="acdc")
    assert "fixture" not in fig.axes[0].get_title()
    plt.close(fig)
    rng = np.random.default_rng(0)
    images = rng.random((2, 8, 8, 4, 1))
    labels = np.zeros((2, 8, 8, 4), dtype=int)
    labels[:, 2:6, 2:6, :] = 3
    maps = {"CCE, HiResCAM": rng.random((2, 8, 8, 4)),
            "heatmap loss, HiResCAM": np.zeros((2, 8, 8, 4))}
    fig = figures.heatmap_overlays(images, labels, maps, ["NOR ED", "DCM ED"], n=2)
    bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(bars) == 1 and "largest" in bars[0].get_ylabel()
    assert fig.axes[2].get_title().endswith("(empty map)")
    plt.close(fig)
