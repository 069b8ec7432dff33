"""Chapter 2, the analysis: the thesis's statistics recomputed from its published per-model data.

    result = analysis.reanalyse(alpha=0.05, n_boot=10_000, seed=0)
    analysis.statistics_table(result, "hirescam")       # the thesis's table
    analysis.save_statistics(result, results_dir)       # stats files + summary.json
    report.add_rows(results_dir, analysis.report_rows(result))

The rules (selection, test choice, effect sizes, IQR filter, power analysis) are the thesis's,
``docs/thesis.md`` §5; the same pipeline runs on the Grad-CAM columns, an explainer the models
were not trained on. TensorFlow-free.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ... import reanalysis, stats
from ...project import files
from ...report import claims
from ...report.rows import ReportRow

#: The explainers whose scores the thesis published.
EXPLAINERS = ("hirescam", "gradcam")
#: Columns of the displayed statistics table.
TABLE_COLUMNS = ["comparison", "n CCE", "n HM", "mean CCE", "mean HM", "Shapiro p CCE",
                 "Shapiro p HM", "test", "MWU U", "p", "MWU exact p", "t-test p", "CLES",
                 "Cohen's d", "diff CI low", "diff CI high"]


@dataclass
class Reanalysis:
    """Everything the chapter recomputes from the published data.

    Attributes:
        trials: the published per-model table.
        comparisons: explainer → comparison key → :class:`~heatmaploss.reanalysis.Comparison`.
        alpha: significance level (Shapiro–Wilk rule and Holm).
        power: the power analysis (``d``, ``alpha``, ``power``, ``n``, ``n_per_group``).
        holm: Holm's correction over the HiResCAM table.
    """

    trials: pd.DataFrame
    comparisons: dict[str, dict[str, reanalysis.Comparison]]
    alpha: float
    power: dict
    holm: stats.HolmResult = field(repr=False)

    @property
    def hirescam(self) -> dict[str, reanalysis.Comparison]:
        return self.comparisons["hirescam"]

    @property
    def gradcam(self) -> dict[str, reanalysis.Comparison]:
        return self.comparisons["gradcam"]

    def selections(self) -> list[reanalysis.ThesisGroups]:
        """The heart selections of both explainers and experiments (what is dropped where)."""
        return [table[key].groups for table in self.comparisons.values()
                for key in ("exp1_heart", "exp2_heart")]


def reanalyse(*, alpha: float = 0.05, n_boot: int = 10_000, seed: int = 0,
              power_d: float = 7.6, power_target: float = 0.9999,
              trials: pd.DataFrame | None = None) -> Reanalysis:
    """Recompute the thesis's statistics (HiResCAM) and the same pipeline on Grad-CAM.

    Args:
        alpha: Shapiro–Wilk level of the test rule, and Holm's level.
        n_boot: bootstrap resamples for the CI of the difference in means.
        seed: bootstrap seed.
        power_d, power_target: the thesis's power analysis (d = 7.6, power 0.9999).
        trials: the published table (``data/thesis``'s when omitted).
    """
    trials = reanalysis.load_trials() if trials is None else trials
    comparisons = {e: reanalysis.thesis_comparisons(e, alpha=alpha, n_boot=n_boot, seed=seed,
                                                    trials=trials) for e in EXPLAINERS}
    n = stats.required_sample_size(power_d, alpha, power_target)
    power = {"d": power_d, "alpha": alpha, "power": power_target, "n": n,
             "n_per_group": math.ceil(n)}
    holm = stats.holm([c.result.p_value for c in comparisons["hirescam"].values()], alpha=alpha)
    return Reanalysis(trials, comparisons, alpha, power, holm)


def dropped_models(result: Reanalysis) -> pd.DataFrame:
    """Every published model left out of a heart selection, and why (one row each)."""
    return pd.concat([sel.dropped.assign(selection=sel.label) for sel in result.selections()],
                     ignore_index=True)


def dropped_counts(result: Reanalysis) -> pd.DataFrame:
    """Models left out per selection, group and reason."""
    return (dropped_models(result).groupby(["selection", "group", "reason"]).size()
            .rename("models").to_frame())


def statistics_table(result: Reanalysis, explainer: str) -> pd.DataFrame:
    """The statistics table of one explainer (the thesis's columns; a note for undefined rows)."""
    table = reanalysis.comparisons_frame(result.comparisons[explainer])
    return table[TABLE_COLUMNS + (["note"] if explainer != "hirescam" else [])]


def holm_table(result: Reanalysis) -> pd.DataFrame:
    """The HiResCAM table's p-values, Holm-adjusted, and whether each is rejected."""
    table = result.hirescam
    return pd.DataFrame({"p": [c.result.p_value for c in table.values()],
                         "Holm-adjusted p": result.holm.p_adjusted,
                         "reject at alpha": result.holm.reject}, index=list(table))


def per_class_table(result: Reanalysis) -> pd.DataFrame:
    """Per-class heart scores of every selected model, both explainers and experiments."""
    parts = []
    for explainer, table in result.comparisons.items():
        for key in ("exp1_heart", "exp2_heart"):
            sel = table[key].groups
            parts.append(reanalysis.per_class_long(sel).assign(experiment=sel.experiment,
                                                                explainer=explainer))
    return pd.concat(parts, ignore_index=True)


def per_class_summary(result: Reanalysis, explainer: str = "hirescam",
                      key: str = "exp1_heart") -> pd.DataFrame:
    """Mean, SD and median of each class's score per group, for one selection."""
    return reanalysis.per_class_summary(result.comparisons[explainer][key].groups)


def summary_part(result: Reanalysis) -> dict:
    """The chapter's ``summary.json`` entry (key ``reanalysis``)."""
    holm = {"family": list(result.hirescam), "p_adjusted": result.holm.p_adjusted,
            "reject": result.holm.reject}
    return {"reanalysis": {
        **{e: reanalysis.summary_entry(table) for e, table in result.comparisons.items()},
        "power": result.power, "holm": holm, "n_published_models": len(result.trials),
        "dropped": {sel.label: sel.dropped.groupby("group").size().to_dict()
                    for sel in result.selections()}}}


def save_statistics(result: Reanalysis, results: Path) -> dict:
    """Write the chapter's statistics files and merge :func:`summary_part` into
    ``summary.json``; returns the part.

    Files in ``stats/``: ``thesis_reanalysis.json`` (every statistic), ``thesis_reanalysis_<
    explainer>.csv`` (the tables), ``thesis_dropped_models.csv``, ``thesis_per_class.csv``.
    """
    folder = Path(results) / "stats"
    dropped = dropped_models(result)
    files.write_text(folder / "thesis_per_class.csv", per_class_table(result).to_csv(index=False))
    files.write_text(folder / "thesis_dropped_models.csv", dropped.to_csv(index=False))
    for explainer, table in result.comparisons.items():
        files.write_text(folder / f"thesis_reanalysis_{explainer}.csv",
                         reanalysis.comparisons_frame(table).to_csv())
    part = summary_part(result)
    files.write_json(folder / "thesis_reanalysis.json", {
        **{e: reanalysis.comparisons_to_dict(t) for e, t in result.comparisons.items()},
        "power": result.power, "holm": part["reanalysis"]["holm"],
        "dropped": dropped.to_dict(orient="records")})
    files.update_summary(results, part)
    return part


#: Note of the published data's Grad-CAM rows (``docs/thesis.md`` §7).
GRADCAM_CAVEAT = ("all-zero Grad-CAM maps (NaN after the thesis's max-normalisation) drop many "
                  "CCE models from these comparisons")


def report_rows(result: Reanalysis) -> list[ReportRow]:
    """The reproduction report's rows: headline claims, every statistic of both tables, the
    power analysis — the published-data column and its verdicts."""
    hirescam, gradcam = result.hirescam, result.gradcam
    rows: list[ReportRow] = []
    for n in (1, 2):
        heart = hirescam[f"exp{n}_heart"]
        comparisons = {e: {"heart": (t[f"exp{n}_heart"].result, t[f"exp{n}_heart"].note)}
                       for e, t in result.comparisons.items()}
        marker = hirescam["exp2_sex_marker"]
        if n == 2:
            comparisons["hirescam"]["sex_marker"] = (marker.result, marker.note)
        headline = claims.headline_rows(
            n, column="published_data", accuracy=heart.groups.test_acc,
            comparisons=comparisons, note="models with val_acc <= 0.95 excluded, as in the "
            "thesis", uniform_marker=marker.groups.uniform_baseline if n == 2 else None)
        rows += [dataclasses.replace(r, note=GRADCAM_CAVEAT) if r.claim.endswith("(Grad-CAM)")
                 else r for r in headline]
        rows.append(claims.no_saliency_row(n))
    for key, c in hirescam.items():
        rows += claims.comparison_rows(key, c.result, reason=c.note, scores=c.scores)
    for key in ("exp1_heart", "exp2_heart", "exp2_sex_marker"):
        c = gradcam[key]
        rows += claims.comparison_rows(key, c.result, explainer="gradcam", reason=c.note,
                                       scores=c.scores, note=GRADCAM_CAVEAT)
    rows.append(claims.power_row(result.power["n"]))
    return rows


__all__ = ["EXPLAINERS", "GRADCAM_CAVEAT", "TABLE_COLUMNS", "Reanalysis", "dropped_counts",
           "dropped_models", "holm_table", "per_class_summary", "per_class_table", "reanalyse",
           "report_rows", "save_statistics", "statistics_table", "summary_part"]
