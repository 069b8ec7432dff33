"""Experiments 1 and 2, the analysis: ``summary.json`` entries, statistics files and
reproduction-report rows, all built from an
:class:`~heatmaploss.chapters.experiments.results.ExperimentResults`. TensorFlow-free.

``summary.json`` contract (other programs read it)::

    experiments.<exp1|exp2>.<protocol>.groups.<cce|heatmap>.n_models          int (selected)
                                                          .test_accuracy     [per model]
                                                          .overlap.<explainer>.<region>  [per model]
    experiments.<exp1|exp2>.<protocol>.comparisons.<explainer>.<region>
        = compare_groups(cce, heatmap) as a dict: test, p_value, cohens_d, cles, n, ...
          (+ p_holm, n_dropped_nan; the statistics are null and ``error`` says why when the
          comparison is undefined)

with explainer in hirescam, gradcam, saliency and region in heart, sex_marker, fat (comparisons:
heart and fat in exp1, plus sex_marker in exp2). Lists hold the selected models (validation
accuracy above the protocol's threshold), in trial order; NaN (a class with only empty maps) is
``null``. Beyond the contract: ``groups.<group>.empty_map_share.<explainer>`` (per model, the
share of test maps without positive mass), ``empty_map_comparisons.<explainer>`` (CCE vs
heatmap on that share), ``comparisons_with_empty.<explainer>.<region>`` (the comparisons with
empty maps counted as zero mass inside, so that none is dropped: defined for the held-out
Grad-CAM even when most of its maps are empty), ``groups.<group>.overlap_with_empty``,
``n_trained``, ``learning_rate``, ``test_accuracy_difference``, ``recipes.<group>`` (what each
group's models actually ran: classification term, output activation, mask resizing, ...).

Models enter a comparison as notebook 02 takes the thesis's published ones
(:func:`heatmaploss.reanalysis.drop_reason`): validation accuracy above the threshold, no NaN
class average.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ... import report, stats
from ...names import EXPLAINERS, LOSS_GROUPS, REGIONS
from ...project import files
from ...report import claims
from ...report.rows import ReportRow
from .results import ExperimentResults

_NULL_COMPARISON = {"test": None, "p_value": None, "cohens_d": None, "cles": None}


def _comparison_dict(entry: dict[str, Any]) -> dict[str, Any]:
    extras = {"p_holm": entry["p_holm"], "n_dropped_nan": entry["n_dropped_nan"]}
    if entry["result"] is None:
        return {**_NULL_COMPARISON, "n": entry.get("n"), "error": entry["error"], **extras}
    return {**entry["result"].to_dict(), **extras}


def summary_part(results: ExperimentResults) -> dict:
    """The experiment's entry of ``summary.json`` (see the module docstring)."""
    table = results.overlap_table()
    out: dict[str, Any] = {}
    for protocol in results.protocols:
        groups = {}
        for group in LOSS_GROUPS:
            rows = table[(table["protocol"] == protocol) & (table["group"] == group)]
            chosen = rows[rows["selected"]].sort_values("trial")
            groups[group] = {
                "n_models": int(len(chosen)), "n_trained": int(len(rows)),
                "test_accuracy": chosen["test_accuracy"].tolist(),
                "learning_rate": chosen["learning_rate"].tolist(),
                "overlap": {e: {r: (chosen[f"{e}_{r}"].tolist() if f"{e}_{r}" in chosen
                                    else []) for r in REGIONS} for e in EXPLAINERS},
                "empty_map_share": {e: (chosen[f"{e}_empty"].tolist() if f"{e}_empty" in chosen
                                        else []) for e in EXPLAINERS},
                "overlap_with_empty": {
                    e: {r: (chosen[f"{e}_{r}_with_empty"].tolist()
                            if f"{e}_{r}_with_empty" in chosen else []) for r in REGIONS}
                    for e in EXPLAINERS},
            }
        comparisons = results.comparisons(protocol)
        with_empty = results.comparisons(protocol, with_empty=True)
        accuracy = [np.mean(groups[g]["test_accuracy"]) if groups[g]["test_accuracy"] else None
                    for g in LOSS_GROUPS]
        out[protocol] = {
            "groups": groups,
            "comparisons": {e: {r: _comparison_dict(c) for r, c in regions.items()
                                if r != "empty"} for e, regions in comparisons.items()},
            "empty_map_comparisons": {e: _comparison_dict(regions["empty"])
                                      for e, regions in comparisons.items()},
            "comparisons_with_empty": {e: {r: _comparison_dict(c) for r, c in regions.items()}
                                       for e, regions in with_empty.items()},
            "recipes": {g: r.as_dict() for g, r in results.recipes.get(protocol, {}).items()},
            "test_accuracy_difference": (accuracy[1] - accuracy[0]
                                         if None not in accuracy else None),
            "profile": results.profile, "seed": results.seed,
        }
    return {"experiments": {f"exp{results.experiment}": out}}


def save_statistics(results: ExperimentResults) -> dict:
    """Write ``stats/exp<N>_{models,per_class}.csv`` and ``exp<N>_comparisons.json``, and merge
    :func:`summary_part` into ``summary.json``.

    Returns:
        The summary part that was merged.
    """
    stats_dir = results.results_dir / "stats"
    name = f"exp{results.experiment}"
    models = results.overlap_table().drop(columns=["hyperparameters", "scores"], errors="ignore")
    files.write_text(stats_dir / f"{name}_models.csv", models.to_csv(index=False))
    per_class = results.metrics.merge(
        results.models[["model_id", "protocol", "group", "trial", "selected"]], on="model_id",
        suffixes=("", "_model"))
    files.write_text(stats_dir / f"{name}_per_class.csv", per_class.to_csv(index=False))
    part = summary_part(results)
    files.write_json(stats_dir / f"{name}_comparisons.json",
                  {p: v["comparisons"] for p, v in part["experiments"][name].items()})
    files.update_summary(results.results_dir, part)
    return part


def comparison_frame(results: ExperimentResults, protocol: str,
                     with_empty: bool = False) -> pd.DataFrame:
    """One row per explainer × region: group means, test, p, Holm p, d, CLES, n, and the
    models dropped for a NaN class average (``with_empty=True``: empty maps counted as zero
    mass inside, so none is dropped)."""
    rows = []
    for explainer, regions in results.comparisons(protocol, with_empty).items():
        for region, entry in regions.items():
            c = entry["result"]
            rows.append({
                "explainer": explainer, "region": region,
                "n CCE": c.n[0] if c else None, "n HM": c.n[1] if c else None,
                "mean CCE": c.means[0] if c else None, "mean HM": c.means[1] if c else None,
                "test": c.test if c else entry["error"], "p": c.p_value if c else None,
                "p (Holm)": entry["p_holm"], "Cohen's d": c.cohens_d if c else None,
                "CLES": c.cles if c else None,
                "dropped (NaN class)": "/".join(map(str, entry["n_dropped_nan"]))})
    return pd.DataFrame(rows)


def sex_marker_filtered(results: ExperimentResults, protocol: str, k: float,
                        explainer: str = "hirescam"):
    """The thesis's outlier-filtered sex-marker comparison (each group strictly inside its
    Tukey fences with factor ``k``); ``None`` when undefined."""
    groups = results.scores(protocol, explainer, "sex_marker")
    try:
        filtered = [stats.iqr_filter(v[~np.isnan(v)], k) for v in groups.values()]
        return stats.compare_groups(*filtered, seed=results.seed)
    except ValueError:
        return None


def report_rows(results: ExperimentResults) -> list:
    """Rows of the reproduction report: this project's values next to the thesis's claims.

    The thesis's own table (HiResCAM; Grad-CAM as held-out explainer) gets the ``ours`` column
    from the primary protocol (``thesis`` when it was run, else ``controlled``); a section per
    protocol adds accuracy and every explainer's heart overlap.
    """
    n = results.experiment
    primary = "thesis" if "thesis" in results.protocols else results.protocols[0]
    note = f"{primary} protocol, {results.profile} profile"
    rows = []
    comparisons = results.comparisons(primary)
    for explainer in ("hirescam", "gradcam"):
        keys = [(f"exp{n}_heart", comparisons[explainer]["heart"])]
        if n == 2:
            keys.append(("exp2_sex_marker", comparisons[explainer]["sex_marker"]))
        for key, entry in keys:
            rows += claims.comparison_rows(key, entry["result"], explainer=explainer,
                                           column="ours", note=entry["error"] or note,
                                           scores=results.scores(primary, explainer, key[5:]))
    if n == 2:
        for k in (1.5, 5):
            rows += claims.comparison_rows(f"exp2_sex_marker_iqr{k:g}",
                                           sex_marker_filtered(results, primary, k),
                                           column="ours", note=note)
    heart = comparisons["hirescam"]["heart"]["result"]
    # The verdict column of headline rows judges the published data; ours only fills a value.
    rows.append(ReportRow(
        claims.SECTIONS["headline"], claims.HEADLINE_CLAIMS[f"exp{n}_heart"],
        ours=(f"{note}: p = {heart.p_value:.2g}, d = {heart.cohens_d:.2f}, means "
              f"{heart.means[0]:.3g} vs {heart.means[1]:.3g}") if heart else "undefined"))
    for protocol in results.protocols:
        section = f"Experiment {n}, {protocol} protocol ({results.profile} profile)"
        accuracy = results.accuracy_table()
        means = {g: accuracy.loc[(protocol, g), "mean"] if (protocol, g) in accuracy.index
                 else float("nan") for g in LOSS_GROUPS}
        rows.append(ReportRow(section, "test accuracy (CCE / heatmap loss)",
                              thesis="equal (0.999-1.0)",
                              ours=f"{means['cce']:.4f} / {means['heatmap']:.4f}",
                              verdict=("reproduced" if abs(means["heatmap"] - means["cce"]) <= 0.02
                                       else "not reproduced"),
                              note="within 2 points" if abs(means["heatmap"] - means["cce"])
                              <= 0.02 else "differs by more than 2 points"))
        for explainer, regions in results.comparisons(protocol).items():
            c = regions["heart"]["result"]
            thesis = "heatmap higher" if explainer == "hirescam" else (
                "no effect (published data)" if explainer == "gradcam" else "not tested")
            verdict = ("undefined" if c is None
                       else "heatmap higher" if c.p_value < 0.05 and c.cohens_d < 0
                       else "CCE higher" if c.p_value < 0.05
                       else "no significant difference")
            empty = {g: float(np.nanmean(v)) if len(v) else float("nan") for g, v in
                     results.scores(protocol, explainer, "empty").items()}
            rows.append(ReportRow(
                section, f"{explainer}: share of test maps without positive mass (CCE / heatmap)",
                thesis="not reported (NaN maps were dropped)",
                ours=f"{empty['cce']:.3f} / {empty['heatmap']:.3f}",
                note="models with a class of only empty maps have no overlap score"))
            rows.append(ReportRow(
                section, f"{explainer} mass inside the heart (CCE vs heatmap loss)",
                thesis=thesis,
                ours=(f"{c.means[0]:.3f} vs {c.means[1]:.3f}, {c.test} p = {c.p_value:.2g}, "
                      f"d = {c.cohens_d:.2f}, n = {c.n[0]}/{c.n[1]}") if c
                else regions["heart"]["error"],
                verdict=verdict,
                note="explainer used in the loss" if explainer == "hirescam"
                else "held-out explainer"))
        rows += _with_empty_rows(results, protocol, section)
    return rows


def _with_empty_rows(results: ExperimentResults, protocol: str, section: str) -> list:
    """Held-out Grad-CAM's heart overlap with empty maps counted as zero mass inside."""
    entry = results.comparisons(protocol, with_empty=True)["gradcam"]["heart"]
    c = entry["result"]
    verdict = ("undefined" if c is None
               else "heatmap higher" if c.p_value < 0.05 and c.cohens_d < 0
               else "CCE higher" if c.p_value < 0.05
               else "no significant difference")
    return [ReportRow(
        section, "gradcam mass inside the heart, empty maps counted as 0 (CCE vs heatmap loss)",
        thesis="not computed (NaN maps were dropped)",
        ours=(f"{c.means[0]:.3f} vs {c.means[1]:.3f}, {c.test} p = {c.p_value:.2g}, "
              f"d = {c.cohens_d:.2f}, n = {c.n[0]}/{c.n[1]}") if c else entry["error"],
        verdict=verdict, note="held-out explainer; no model is dropped for empty maps")]


def add_report_rows(results: ExperimentResults) -> dict:
    """Add :func:`report_rows` to the reproduction report and re-render it."""
    report.add_rows(results.results_dir, report_rows(results))
    return report.render(results.results_dir)


__all__ = ["add_report_rows", "comparison_frame", "report_rows", "save_statistics",
           "sex_marker_filtered", "summary_part"]
