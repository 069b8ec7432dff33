"""The thesis's quoted numbers, and report rows that set values against them.

The sections and claim texts here are the keys of the reproduction report
(:mod:`heatmaploss.report`): the re-analysis notebook fills the ``published_data`` column with
them, and the experiment notebooks fill ``ours`` for the same keys by passing their own
:class:`~heatmaploss.stats.GroupComparison` with ``column="ours"``. No TensorFlow.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

from .rows import ReportRow
from ..stats import GroupComparison

#: Numbers the thesis states (``docs/thesis.md`` §5), per comparison key.
THESIS_QUOTED: dict[str, dict[str, Any]] = {
    "exp1_heart": {"test": "mannwhitneyu", "p": 1e-9, "d": -10.78, "cles": 0.0},
    "exp2_heart": {"test": "mannwhitneyu", "p": 1e-8, "d": -11.88, "cles": 0.0},
    "exp2_sex_marker": {"test": "mannwhitneyu", "p": 1e-7, "cles": 0.95},
    "exp2_sex_marker_iqr1.5": {"test": "mannwhitneyu", "d": 1.84},
    "exp2_sex_marker_iqr5": {"test": "mannwhitneyu", "d": 1.25},
}
#: The thesis's power analysis: d, alpha, power → n per group (2.69, rounded up to 3).
THESIS_POWER = {"d": 7.6, "alpha": 0.05, "power": 0.9999, "n": 2.69, "n_per_group": 3}

SECTIONS = {
    "exp1_heart": "Experiment 1: HiResCAM mass inside the heart",
    "exp2_heart": "Experiment 2: HiResCAM mass inside the heart",
    "exp2_sex_marker": "Experiment 2: HiResCAM mass on the sex marker",
    "gradcam": "Held-out explainer: Grad-CAM (not used in any loss)",
    "headline": "Headline claims",
    "power": "Power analysis",
}
SUFFIX = {"exp2_sex_marker": " (unfiltered)", "exp2_sex_marker_iqr1.5": " (1.5 IQR filtered)",
          "exp2_sex_marker_iqr5": " (5 IQR filtered)"}

CLAIM_N = "models per group (CCE / heatmap loss)"
CLAIM_MEANS = "mean score (CCE / heatmap loss)"
CLAIM_TEST = "test chosen by the Shapiro-Wilk rule"
CLAIM_P = "p-value, two-sided"
CLAIM_D = "Cohen's d (CCE minus heatmap loss)"
CLAIM_CLES = "CLES P(CCE > heatmap loss)"


def same_order_of_magnitude(quoted: float, value: float) -> bool:
    """True when ``value`` rounds to the quoted power of ten (|log10 ratio| <= 0.5)."""
    return value > 0 and abs(math.log10(value) - math.log10(quoted)) <= 0.5


def judge(kind: str, quoted: Any, value: Any) -> tuple[str, str]:
    """Verdict and note for a value recomputed from the published data.

    Args:
        kind: ``p`` (same order of magnitude), ``d``/``cles``/``n`` (equal at the thesis's
            2-decimal rounding), or ``test`` (equal).
        quoted: the thesis's number, or ``None`` when the thesis does not state it.
        value: the recomputed value.

    Returns:
        (verdict, note).
    """
    if quoted is None:
        return "n/a", "not stated in the thesis; recomputed from its published data"
    if value is None:
        return "n/a", "undefined for these data"
    if kind == "p":
        ok, rule = same_order_of_magnitude(quoted, value), "same order of magnitude"
    elif kind == "test":
        ok, rule = quoted == value, "same test"
    else:
        ok, rule = round(float(value), 2) == round(float(quoted), 2), "equal at 2 decimals"
    return ("reproduced" if ok else "not reproduced"), f"published data vs thesis: {rule}"


def _section_and_prefix(key: str, explainer: str) -> tuple[str, str]:
    if explainer == "hirescam":
        return SECTIONS[key.split("_iqr")[0]], ""
    experiment, region = key[3], key.split("_iqr")[0][5:].replace("_", " ")
    return SECTIONS["gradcam"], f"exp {experiment} {region}: "


def comparison_rows(key: str, result: GroupComparison | None, *, explainer: str = "hirescam",
                    column: str = "published_data", note: str = "",
                    scores: Mapping[str, Any] | None = None) -> list[ReportRow]:
    """Report rows for one comparison of the thesis's table.

    Args:
        key: comparison key (``exp1_heart``, ``exp2_heart``, ``exp2_sex_marker``,
            ``exp2_sex_marker_iqr1.5``, ``exp2_sex_marker_iqr5``).
        result: the comparison, or ``None`` when it was undefined (``note`` says why).
        explainer: ``hirescam`` (the thesis's table) or ``gradcam`` (held-out explainer; the
            thesis quotes nothing there).
        column: ``published_data`` (judged against the thesis) or ``ours`` (values only; the
            caller adds its verdicts).
        note: note for every row (used when ``result`` is ``None``).
        scores: the two groups' scores (CCE first); gives n and means when ``result`` is
            ``None``.

    Returns:
        Rows for n, means, test, p, d and CLES, keyed so that both columns land on one row.
    """
    if column not in ("published_data", "ours"):
        raise ValueError(f"column={column!r}: allowed 'published_data' or 'ours'")
    if explainer not in ("hirescam", "gradcam"):
        raise ValueError(f"explainer={explainer!r}: allowed 'hirescam' or 'gradcam'")
    quoted = THESIS_QUOTED.get(key, {}) if explainer == "hirescam" else {}
    section, prefix = _section_and_prefix(key, explainer)
    suffix = SUFFIX.get(key, "")
    values = {"n": None, "means": None, "test": None, "p": None, "d": None, "cles": None}
    if result is None and scores is not None:
        groups = [np.asarray(v, dtype=float) for v in scores.values()]
        values["n"] = [int(g.size) for g in groups]
        values["means"] = [float(g.mean()) if g.size else None for g in groups]
    if result is not None:
        values = {"n": list(result.n), "means": list(result.means), "test": result.test,
                  "p": result.p_value, "d": result.cohens_d, "cles": result.cles}
    claims = {"n": CLAIM_N, "means": CLAIM_MEANS, "test": CLAIM_TEST, "p": CLAIM_P,
              "d": CLAIM_D, "cles": CLAIM_CLES}
    if result is None:  # only the sizes and means are defined
        claims = {k: claims[k] for k in ("n", "means")}
    rows = []
    for kind, claim in claims.items():
        verdict, why = None, note or None
        if column == "published_data":
            verdict, why = judge(kind, quoted.get(kind), values[kind])
            why = f"{why}; {note}" if note else why
        rows.append(ReportRow(section=section, claim=prefix + claim + suffix,
                              thesis=quoted.get(kind), verdict=verdict, note=why,
                              **{column: values[kind]}))
    return rows


def power_row(n: float, column: str = "published_data") -> ReportRow:
    """Report row for the thesis's power analysis (recomputed n per group)."""
    verdict, note = judge("n", THESIS_POWER["n"], n)
    return ReportRow(
        section=SECTIONS["power"],
        claim=(f"models per group for d = {THESIS_POWER['d']}, alpha = {THESIS_POWER['alpha']}, "
               f"power = {THESIS_POWER['power']} (two-sample t-test)"),
        thesis=f"{THESIS_POWER['n']} -> {THESIS_POWER['n_per_group']}",
        verdict=verdict if column == "published_data" else None,
        note="recomputed with heatmaploss.stats.required_sample_size" if column ==
        "published_data" else None,
        **{column: f"{n:.2f} -> {math.ceil(n)}"},
    )


#: Claim texts of the "Headline claims" section (stable keys for every notebook's rows).
HEADLINE_CLAIMS = {
    "accuracy": "heatmap-loss models are as accurate as CCE models",
    "exp1_heart": "exp 1: heatmap loss puts more HiResCAM mass inside the heart",
    "exp2_heart": "exp 2: heatmap loss puts more HiResCAM mass inside the heart",
    "exp2_sex_marker": "exp 2: heatmap loss puts less HiResCAM mass on the sex marker",
    "held_out": "the heart effect holds under a held-out explainer (Grad-CAM)",
}


def _effect_text(result: GroupComparison) -> str:
    return (f"p = {result.p_value:.2g}, d = {result.cohens_d:.2f}, CLES = {result.cles:.2f}, "
            f"means {result.means[0]:.3g} vs {result.means[1]:.3g}")


def _significant(result: GroupComparison | None, sign: int, alpha: float = 0.05) -> bool:
    """Significant at ``alpha`` with Cohen's d of the given sign (CCE minus heatmap loss)."""
    return result is not None and result.p_value < alpha and sign * result.cohens_d > 0


def headline_rows(hirescam: dict, gradcam: dict, accuracy: dict[str, tuple[float, float]],
                  uniform_marker: float) -> list[ReportRow]:
    """The thesis's main claims, each with the published data's answer and a verdict.

    Args:
        hirescam: ``reanalysis.thesis_comparisons("hirescam")``.
        gradcam: ``reanalysis.thesis_comparisons("gradcam")``.
        accuracy: group → (min, max) test accuracy of the kept models (experiments pooled).
        uniform_marker: sex-marker score of a uniform heatmap (``ThesisGroups.uniform_baseline``).

    Returns:
        Rows of the "Headline claims" section.
    """
    section, claims = SECTIONS["headline"], HEADLINE_CLAIMS
    yes_no = {True: "reproduced", False: "not reproduced"}
    rows = [ReportRow(
        section, claims["accuracy"], thesis="yes (kept models 0.999-1.0)",
        published_data="test accuracy " + "; ".join(
            f"{g}: {lo:.4f}-{hi:.4f}" for g, (lo, hi) in accuracy.items()),
        verdict=yes_no[min(lo for lo, _ in accuracy.values()) >= 0.999],
        note="models with val_acc <= 0.95 excluded, as in the thesis")]
    for key, quoted in (("exp1_heart", "yes (p ~ 1e-9, d = -10.78)"),
                        ("exp2_heart", "yes (p ~ 1e-8, d = -11.88)")):
        result = hirescam[key].result
        rows.append(ReportRow(section, claims[key], thesis=quoted,
                              published_data=_effect_text(result),
                              verdict=yes_no[_significant(result, -1)],
                              note="judged by the explainer used in the loss"))
    marker = hirescam["exp2_sex_marker"].result
    unused = marker.means[0] < uniform_marker
    verdict = yes_no[_significant(marker, +1)] if not unused else (
        "partly reproduced" if marker.cles > 0.5 and marker.p_value < 0.05 else "not reproduced")
    rows.append(ReportRow(
        section, claims["exp2_sex_marker"],
        thesis="yes (CLES 0.95; d = 1.84 after 1.5 IQR filtering)",
        published_data=_effect_text(marker) + f"; uniform heatmap {uniform_marker:.2g}",
        verdict=verdict,
        note=("ranks agree, but CCE models already put less mass on the marker than a uniform "
              "heatmap would: the marker was hardly used, so no shortcut was removed"
              + ("; unfiltered d < 0 (heatmap-loss outliers)" if marker.cohens_d < 0 else ""))
        if unused else "CCE models used the marker more than a uniform heatmap would"))
    held = [gradcam[k].result for k in ("exp1_heart", "exp2_heart")]
    texts = [f"exp {i}: " + (f"{r.test} p = {r.p_value:.2g}, d = {r.cohens_d:+.2f}" if r
                             else "undefined") for i, r in enumerate(held, start=1)]
    holds = all(_significant(r, -1) for r in held)
    rows.append(ReportRow(
        section, claims["held_out"], thesis="not tested", published_data="; ".join(texts),
        verdict="reproduced" if holds else "not supported",
        note=("effect also seen by an explainer outside the loss" if holds else
              "no consistent effect with an explainer the models were not trained on: the loss "
              "optimised the metric used to judge it")
        + "; caveat: all-zero Grad-CAM maps (NaN after max-normalisation) drop many CCE models"))
    return rows


__all__ = ["CLAIM_CLES", "CLAIM_D", "CLAIM_MEANS", "CLAIM_N", "CLAIM_P", "CLAIM_TEST",
           "HEADLINE_CLAIMS", "SECTIONS", "THESIS_POWER", "THESIS_QUOTED", "comparison_rows", "headline_rows",
           "judge", "power_row", "same_order_of_magnitude"]
