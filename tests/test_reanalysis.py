"""heatmaploss.reanalysis: the thesis's statistics table recomputed from its published data.

Expected values: spec/thesis.md §5 (asserted to 3 significant figures).
"""

from __future__ import annotations

import math
import shutil

import numpy as np
import pandas as pd
import pytest
from heatmaploss import plots, reanalysis, report, stats
from heatmaploss.chapters.published_results import analysis as published_analysis
from heatmaploss.report import claims


def sig3(value: float) -> str:
    return f"{value:.3g}"


@pytest.fixture(scope="module")
def trials():
    return reanalysis.load_trials()


@pytest.fixture(scope="module")
def hirescam(trials):
    return reanalysis.thesis_comparisons("hirescam", n_boot=200, trials=trials)


@pytest.fixture(scope="module")
def gradcam(trials):
    return reanalysis.thesis_comparisons("gradcam", n_boot=200, trials=trials)


# key: n (CCE, HM), Shapiro p (CCE, HM) or None, U, p, CLES, d
SPEC_TABLE = {
    "exp1_heart": ((25, 23), (6.13e-5, 0.00296), 0, 3.1615e-9, 0.0, -10.7768),
    "exp2_heart": ((23, 22), (0.4932, 0.00804), 0, 9.8548e-9, 0.0, -11.8768),
    "exp2_sex_marker": ((23, 22), None, 483, 1.8768e-7, 0.9545, -0.2397),
    "exp2_sex_marker_iqr1.5": ((20, 19), None, 380, 1.011e-7, 1.0, 1.8365),
    "exp2_sex_marker_iqr5": ((22, 21), None, 462, 2.137e-8, 1.0, 1.2497),
}


@pytest.mark.parametrize("key", list(SPEC_TABLE))
def test_spec_table(hirescam, key):
    n, shapiro_p, u, p, cles, d = SPEC_TABLE[key]
    result = hirescam[key].result
    assert result.n == n
    if shapiro_p is not None:
        assert [sig3(v) for v in result.shapiro_p] == [sig3(v) for v in shapiro_p]
    else:  # the spec leaves them out; both groups are far from normal
        assert max(result.shapiro_p) < 0.001
    assert result.test == "mannwhitneyu"
    assert result.statistic == u
    assert sig3(result.p_value) == sig3(p)
    assert sig3(result.cles) == sig3(cles)
    assert sig3(result.cohens_d) == sig3(d)


def test_group_means(hirescam):
    assert [sig3(v) for v in hirescam["exp1_heart"].result.means] == ["0.26", "0.796"]
    assert [sig3(v) for v in hirescam["exp2_heart"].result.means] == ["0.255", "0.796"]
    assert hirescam["exp1_heart"].result.means == pytest.approx((0.25971, 0.79566), abs=5e-6)
    assert hirescam["exp2_heart"].result.means == pytest.approx((0.25483, 0.79608), abs=5e-6)


def test_power_analysis():
    n = stats.required_sample_size(7.6, 0.05, 0.9999)
    assert sig3(n) == "2.69" and math.ceil(n) == 3
    row = claims.power_row(n)
    assert row.published_data == 2.6887 and row.published_verdict.verdict == "reproduced"
    assert "3 per group" in row.note


def test_gradcam_finds_no_effect(gradcam):
    exp1, exp2 = gradcam["exp1_heart"].result, gradcam["exp2_heart"].result
    assert exp1.n == (19, 23) and exp1.normal and exp1.test == "ttest"
    assert sig3(exp1.p_value) == "0.14" and round(exp1.mwu_p, 2) == 0.22
    assert exp2.n == (10, 20) and exp2.test == "ttest"
    assert round(exp2.p_value, 3) == 0.047
    assert round(exp2.cohens_d, 2) == 0.81 and exp2.means[0] > exp2.means[1]  # CCE higher
    marker = gradcam["exp2_sex_marker"]
    assert marker.result is None and "constant" in marker.note
    assert np.all(marker.scores["CCE"] == 0)


def test_selection_records_every_dropped_model(trials):
    sel = reanalysis.thesis_groups(1, "hirescam", "heart", trials)
    in_experiment = trials["experiment_number"].isin([11, 12]).sum()
    assert sum(sel.n.values()) + len(sel.dropped) == in_experiment == 65
    reasons = set(sel.dropped["reason"])
    assert {"val_acc missing", "val_acc <= 0.95"} <= reasons
    assert any(r.startswith("NaN class average") for r in reasons)
    kept = set(sel.per_class["CCE"].index) | set(sel.per_class["heatmap loss"].index)
    assert not kept & set(sel.dropped["trial_uid"])
    counts = sel.drop_counts()
    assert counts["models"].sum() == len(sel.dropped)
    assert all(acc.min() >= 0.999 for acc in sel.test_acc.values())


def test_scores_are_means_of_class_averages(trials):
    sel = reanalysis.thesis_groups(2, "hirescam", "heart", trials)
    for group, table in sel.per_class.items():
        assert list(table.columns) == list(reanalysis.CLASSES)
        assert np.allclose(table.mean(axis=1).to_numpy(), sel.scores[group])
    long = reanalysis.per_class_long(sel)
    assert len(long) == 4 * sum(sel.n.values())
    summary = reanalysis.per_class_summary(sel)
    assert list(summary.index) == list(reanalysis.CLASSES)
    assert summary[("mean", "heatmap loss")].gt(summary[("mean", "CCE")]).all()


def test_uniform_baselines(trials):
    heart = reanalysis.thesis_groups(1, "hirescam", "heart", trials).uniform_baseline
    assert heart == pytest.approx(np.mean([0.0973, 0.0959, 0.1872, 0.1372]), abs=1e-3)
    marker = reanalysis.thesis_groups(2, "hirescam", "sex_marker", trials).uniform_baseline
    p_male = np.mean([0.5, 0.6, 0.5, 2.7 / 3.7])
    assert marker == pytest.approx(81 / 14175 * p_male, rel=0.05)


def test_bad_arguments(trials, tmp_path):
    with pytest.raises(ValueError, match="experiment=3"):
        reanalysis.thesis_groups(3, trials=trials)
    with pytest.raises(ValueError, match="explainer='cam'"):
        reanalysis.thesis_groups(1, "cam", trials=trials)
    with pytest.raises(ValueError, match="region='lungs'"):
        reanalysis.thesis_groups(1, region="lungs", trials=trials)
    from heatmaploss.project import paths

    for name in (reanalysis.TRIALS_FILE, reanalysis.SEARCHES_FILE):
        shutil.copy(paths.THESIS_DATA_DIR / name, tmp_path / name)
    searches = pd.read_csv(tmp_path / reanalysis.SEARCHES_FILE)
    searches.iloc[1:].to_csv(tmp_path / reanalysis.SEARCHES_FILE, index=False)
    with pytest.raises(ValueError, match="missing from"):
        reanalysis.load_trials(tmp_path)


def test_frames_and_summary(hirescam, gradcam):
    frame = reanalysis.comparisons_frame(gradcam)
    assert list(frame.index) == list(gradcam)
    assert frame.loc["exp2_sex_marker_iqr1.5", "n CCE"] == 0
    assert "too few" in frame.loc["exp2_sex_marker_iqr1.5", "note"]
    entry = reanalysis.summary_entry(hirescam)
    assert entry["exp1_heart"]["n"] == [25, 23] and entry["exp1_heart"]["test"] == "mannwhitneyu"
    full = reanalysis.comparisons_to_dict(hirescam)
    assert full["exp2_sex_marker_iqr5"]["iqr_k"] == 5.0


def test_report_rows_judge_published_data(hirescam, gradcam):
    rows = claims.comparison_rows("exp1_heart", hirescam["exp1_heart"].result)
    by_claim = {r.claim: r for r in rows}
    d = by_claim[claims.CLAIM_D].published_verdict
    assert (d.verdict, d.compares) == ("reproduced", "published data vs thesis")
    assert "2 decimals" in d.criterion
    assert by_claim[claims.CLAIM_P].thesis == 1e-9
    n = by_claim[claims.CLAIM_N].published_verdict
    assert n.verdict == "undefined" and "states no value" in n.reason
    ours = claims.comparison_rows("exp1_heart", hirescam["exp1_heart"].result, column="ours")
    assert all(r.published_data is None and r.published_verdict is None for r in ours)
    assert [r.claim for r in ours] == [r.claim for r in rows]
    ours_d = {r.claim: r for r in ours}[claims.CLAIM_D].ours_verdict
    assert ours_d.compares == "our models vs thesis" and ours_d.verdict == "reproduced"


def test_headline_rows_of_the_published_data(hirescam, gradcam):
    result = published_analysis.Reanalysis(
        trials=None, comparisons={"hirescam": hirescam, "gradcam": gradcam}, alpha=0.05,
        power={"n": 2.69}, holm=None)
    rows = published_analysis.report_rows(result)
    headline = {r.claim: r.published_verdict for r in rows
                if r.section == claims.SECTIONS["headline"]}
    assert headline[claims.HEADLINE_CLAIMS["exp1_heart"]].verdict == "reproduced"
    assert headline[claims.HEADLINE_CLAIMS["exp1_accuracy"]].verdict == "reproduced"
    marker = headline[claims.HEADLINE_CLAIMS["exp2_sex_marker"]]
    assert marker.verdict == "partly reproduced" and "hardly used" in marker.reason
    for n in (1, 2):
        held = headline[claims.HEADLINE_CLAIMS[f"exp{n}_held_out_gradcam"]]
        assert (held.verdict, held.compares) == ("not supported", "published data vs the claim")
        saliency = headline[claims.HEADLINE_CLAIMS[f"exp{n}_held_out_saliency"]]
        assert saliency.verdict == "undefined" and "no saliency" in saliency.reason
    assert "opposite direction" in headline[claims.HEADLINE_CLAIMS["exp2_held_out_gradcam"]].reason
    assert report.report_problems(rows) == []


def test_judge_per_statistic():
    assert claims.judge("p", 1e-8, 9.85e-9).verdict == "reproduced"
    assert claims.judge("p", 1e-9, 4e-8).verdict == "not reproduced"
    assert claims.judge("d", -10.78, -10.7768).verdict == "reproduced"
    # our models: direction and significance, a coarse magnitude, stated in the criterion
    ours = claims.judge("d", -10.78, -4.55, column="ours", p=3e-7)
    assert ours.verdict == "partly reproduced" and "only the direction" in ours.reason
    assert "factor of 2" in ours.criterion
    assert claims.judge("d", -11.88, -10.5, column="ours", p=9e-4).verdict == "reproduced"
    mismatch = claims.judge("test", "mannwhitneyu", "ttest", column="ours")
    assert mismatch.verdict == "not reproduced" and "ttest" in mismatch.reason
    nan = claims.judge("d", -10.78, float("nan"), column="ours", p=float("nan"),
                       reason="no CCE model was selected")
    assert (nan.verdict, nan.reason) == ("undefined", "no CCE model was selected")


def test_figures_from_published_groups(hirescam):
    import matplotlib.pyplot as plt

    groups = hirescam["exp1_heart"]
    fig = plots.overlap_histogram(groups.scores, title="t", references={"uniform": 0.13})
    ax = fig.axes[0]
    assert ax.get_ylabel() == "number of models" and ax.get_xlim() == (0.0, 1.0)
    assert len(ax.patches) == 2 * 50  # bin width 0.02 over [0, 1], two groups
    assert sum(p.get_height() for p in ax.patches) == 25 + 23
    marker = hirescam["exp2_sex_marker"].scores
    fig2 = plots.group_distributions(marker, title="t", xlabel="x", iqr_k=1.5)
    assert "20 of 23" in fig2.axes[0].get_title() and "19 of 22" in fig2.axes[1].get_title()
    assert "1e-4" in fig2.axes[0].get_xlabel()
    fig3 = plots.per_class_plot(groups.groups.per_class, title="t", ylabel="y")
    assert [t.get_text() for t in fig3.axes[0].get_xticklabels()] == list(reanalysis.CLASSES)
    with pytest.raises(ValueError, match="expected"):
        plots.per_class_plot({"a": np.zeros((3, 2))}, title="t", ylabel="y",
                             class_names=["A", "B", "C"])
    with pytest.raises(ValueError, match="non-finite"):
        plots.overlap_histogram({"a": [0.1, np.nan]}, title="t")
    plt.close("all")


def test_statistics_modules_do_not_import_tensorflow(repo_root):
    import subprocess
    import sys

    code = ("import sys; import heatmaploss.stats, heatmaploss.reanalysis, heatmaploss.plots, "
            "heatmaploss.report, heatmaploss.report.claims; "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules")
    env = {"MPLBACKEND": "Agg", "PATH": ""}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=120)
