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
from ...names import EXPLAINER_LABELS, EXPLAINERS, LOSS_GROUP_LABELS, LOSS_GROUPS, REGIONS
from ...project import files
from ...report import claims, verdicts
from ...report.rows import ReportRow
from ...synthetic import THESIS_FACTS
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


def _filtered_groups(results: ExperimentResults, protocol: str, k: float,
                     explainer: str = "hirescam") -> dict[str, np.ndarray]:
    groups = results.scores(protocol, explainer, "sex_marker")
    out = {}
    for group, values in groups.items():
        finite = values[~np.isnan(values)]
        try:
            out[group] = stats.iqr_filter(finite, k)
        except ValueError:  # an empty group stays empty (the reason is given elsewhere)
            out[group] = finite
    return out


def sex_marker_filtered(results: ExperimentResults, protocol: str, k: float,
                        explainer: str = "hirescam"):
    """The thesis's outlier-filtered sex-marker comparison (each group strictly inside its
    Tukey fences with factor ``k``); ``None`` when undefined."""
    try:
        return stats.compare_groups(*_filtered_groups(results, protocol, k, explainer).values(),
                                    seed=results.seed)
    except ValueError:
        return None


def undefined_reason(results: ExperimentResults, protocol: str,
                     groups: dict[str, np.ndarray]) -> str:
    """Why a CCE-vs-heatmap comparison of ``groups`` (group → selected models' scores, NaN for
    a model without a score) is undefined, in plain words; "" when it is not."""
    models = results.models[results.models["protocol"] == protocol]
    for group, values in groups.items():
        if len(values) == 0:
            trained = int((models["group"] == group).sum())
            threshold = results.recipes[protocol][group].min_val_accuracy
            return (f"no {LOSS_GROUP_LABELS[group]} model was selected: {trained} trained, none "
                    f"with validation accuracy above {threshold:g}")
    reason = verdicts.undefined_comparison_reason(
        {LOSS_GROUP_LABELS[g]: v for g, v in groups.items()})
    if "without one" in reason:
        reason += "; a model has no score when all its maps of a class are empty"
    return reason


def _comparison(results: ExperimentResults, protocol: str, explainer: str, region: str,
                entry: dict) -> tuple[Any, str]:
    if entry["result"] is not None:
        return entry["result"], ""
    groups = results.scores(protocol, explainer, region)
    return None, (undefined_reason(results, protocol, groups) if region in REGIONS
                  else entry["error"])


#: Sex-marker score of a spatially uniform heatmap on the synthetic experiment-2 images: the
#: marker's 81 of 14,175 pixels times P(male), averaged over the balanced classes.
UNIFORM_MARKER = float(np.mean(list(THESIS_FACTS["sex_marker_fraction"][2].values())))


def report_rows(results: ExperimentResults) -> list[ReportRow]:
    """Rows of the reproduction report: this project's values and verdicts.

    The thesis's claims (headline and table rows, chapter ``reanalysis``) get the ``ours``
    column from the primary protocol (``thesis`` when it was run, else ``controlled``); a
    section per protocol (this chapter's own rows) adds accuracy, the share of empty maps and
    every explainer's heart overlap.
    """
    n = results.experiment
    primary = "thesis" if "thesis" in results.protocols else results.protocols[0]
    note = f"{primary} protocol, {results.profile} profile"
    rows: list[ReportRow] = []
    comparisons = results.comparisons(primary)
    regions = ("heart", "sex_marker") if n == 2 else ("heart",)
    judged = {e: {r: _comparison(results, primary, e, r, comparisons[e][r]) for r in regions}
              for e in EXPLAINERS}
    for explainer in ("hirescam", "gradcam"):
        for region in regions:
            result, reason = judged[explainer][region]
            rows += claims.comparison_rows(
                f"exp{n}_{region}", result, explainer=explainer, column="ours", reason=reason,
                note=note, scores=results.scores(primary, explainer, region))
    if n == 2:
        for k in (1.5, 5):
            groups = _filtered_groups(results, primary, k)
            result = sex_marker_filtered(results, primary, k)
            reason = "" if result else (f"after the {k:g} IQR filter, "
                                        + undefined_reason(results, primary, groups))
            rows += claims.comparison_rows(f"exp2_sex_marker_iqr{k:g}", result, column="ours",
                                           reason=reason, note=note,
                                           scores={LOSS_GROUP_LABELS[g]: v
                                                   for g, v in groups.items()})
    chosen = results.models[(results.models["protocol"] == primary) & results.models["selected"]]
    accuracy = {LOSS_GROUP_LABELS[g]: chosen.loc[chosen["group"] == g, "test_accuracy"]
                .to_numpy(dtype=float) for g in LOSS_GROUPS}
    rows += claims.headline_rows(n, column="ours", accuracy=accuracy, comparisons=judged,
                                 uniform_marker=UNIFORM_MARKER if n == 2 else None, note=note)
    for protocol in results.protocols:
        rows += _protocol_rows(results, protocol)
    return rows


def _protocol_rows(results: ExperimentResults, protocol: str) -> list[ReportRow]:
    """This chapter's own section for one protocol: accuracy, empty maps, heart overlap."""
    n = results.experiment
    section = f"Experiment {n}, {protocol} protocol"
    chapter = f"exp{n}"
    chosen = results.models[(results.models["protocol"] == protocol) & results.models["selected"]]
    means = {g: chosen.loc[chosen["group"] == g, "test_accuracy"].astype(float).mean()
             for g in LOSS_GROUPS}
    defined = not any(np.isnan(m) for m in means.values())
    diff = float(means["heatmap"] - means["cce"]) if defined else None
    empty_groups = [LOSS_GROUP_LABELS[g] for g, m in means.items() if np.isnan(m)]
    rows = [ReportRow(
        section, "test accuracy (CCE / heatmap loss)", chapter=chapter,
        thesis="equal (0.999-1.0)",
        ours=f"{means['cce']:.4f} / {means['heatmap']:.4f}" if defined else None,
        ours_verdict=verdicts.within_tolerance(
            thesis=0.0, value=diff, tolerance=claims.ACCURACY_TOLERANCE,
            compares=verdicts.OURS_VS_THESIS, what=claims.ACCURACY_DIFFERENCE,
            reason=None if defined else f"no {' or '.join(empty_groups)} model was selected"),
        ours_note=f"{results.profile} profile")]
    for explainer, regions in results.comparisons(protocol).items():
        label = EXPLAINER_LABELS[explainer]
        empty = results.scores(protocol, explainer, "empty")
        shares = [float(np.nanmean(v)) if np.isfinite(v).any() else None for v in empty.values()]
        rows.append(ReportRow(
            section, f"{label}: share of test maps without positive mass (CCE / heatmap loss)",
            chapter=chapter, thesis="not reported (NaN maps were dropped)",
            ours=shares if None not in shares else None,
            ours_verdict=verdicts.not_compared(
                compares=verdicts.OURS_VS_THESIS,
                reason="the thesis reports no share of empty maps" if None not in shares
                else undefined_reason(results, protocol, empty)),
            ours_note="a model with a class of only empty maps has no overlap score"))
        result, reason = _comparison(results, protocol, explainer, "heart", regions["heart"])
        inside = explainer == "hirescam"
        rows.append(ReportRow(
            section, f"{label} mass inside the heart is higher with the heatmap loss",
            chapter=chapter, thesis="yes" if inside else "not tested",
            **_heatmap_higher(result, reason, verdicts.OURS_VS_THESIS if inside
                              else verdicts.OURS_VS_CLAIM),
            ours_note=("the explainer inside the loss" if inside else "a held-out explainer: "
                       "never in any loss")))
    rows.append(_with_empty_row(results, protocol, section))
    return rows


def _with_empty_row(results: ExperimentResults, protocol: str, section: str) -> ReportRow:
    """Held-out Grad-CAM's heart overlap with empty maps counted as zero mass inside (no model
    dropped), beside the thesis's rule that drops them."""
    entry = results.comparisons(protocol, with_empty=True)["gradcam"]["heart"]
    result = entry["result"]
    return ReportRow(
        section, "Grad-CAM mass inside the heart is higher with the heatmap loss, empty maps "
        "counted as 0", chapter=f"exp{results.experiment}",
        thesis="not computed (models with empty maps were dropped)",
        **_heatmap_higher(result, "" if result else undefined_reason(
            results, protocol, results.scores(protocol, "gradcam", "heart", with_empty=True)),
            verdicts.OURS_VS_CLAIM),
        ours_note="a held-out explainer; no model is dropped for empty maps")


def _heatmap_higher(result: Any, reason: str, compares: str) -> dict[str, Any]:
    """The ``ours`` cell and verdict of "higher with the heatmap loss" for one comparison
    (``result`` None: undefined, for ``reason``)."""
    return {"ours": (f"{result.means[0]:.3f} vs {result.means[1]:.3f}, {result.test} "
                     f"p = {result.p_value:.2g}, d = {result.cohens_d:+.2f}, n = "
                     f"{result.n[0]}/{result.n[1]}") if result else None,
            "ours_verdict": verdicts.direction_and_significance(
                p=result.p_value if result else None,
                effect=result.cohens_d if result else None, expected_sign=-1,
                compares=compares, reason=reason or None)}


def add_report_rows(results: ExperimentResults) -> dict:
    """Add :func:`report_rows` to the reproduction report and re-render it."""
    report.add_rows(results.results_dir, report_rows(results))
    return report.render(results.results_dir)


__all__ = ["UNIFORM_MARKER", "add_report_rows", "comparison_frame", "report_rows",
           "save_statistics", "sex_marker_filtered", "summary_part", "undefined_reason"]
