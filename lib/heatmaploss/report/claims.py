"""The thesis's quoted numbers, and report rows that set values against them.

The sections and claim texts here are the keys of the reproduction report
(:mod:`heatmaploss.report`): the re-analysis chapter fills the ``published_data`` column of
these rows, the experiment chapters fill ``ours`` for the same keys. Every verdict is made by a
rule of :mod:`heatmaploss.report.verdicts`, which records what it compares and by which
criterion. No TensorFlow.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

from ..stats import GroupComparison
from . import verdicts as v
from .rows import ReportRow

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
#: The chapter (a key of :data:`heatmaploss.report.render.CHAPTERS`) of the thesis's claims.
CHAPTER = "reanalysis"

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
_CLAIMS = {"n": CLAIM_N, "means": CLAIM_MEANS, "test": CLAIM_TEST, "p": CLAIM_P, "d": CLAIM_D,
           "cles": CLAIM_CLES}

#: Tolerances of our models against the thesis (a different network and data size, so only
#: direction, significance and a coarse magnitude can be asked for).
D_FACTOR = 2.0
CLES_TOLERANCE = 0.1
#: Largest difference in mean test accuracy (heatmap loss minus CCE) still called "equal".
ACCURACY_TOLERANCE = 0.02
ACCURACY_DIFFERENCE = "mean test accuracy, heatmap loss minus CCE,"


def judge(kind: str, quoted: Any, value: Any, *, column: str = "published_data",
          p: float | None = None, reason: str | None = None) -> v.Judgement:
    """The verdict of one statistic of the thesis's table.

    Published data (same analysis, same models) must match the thesis's printed numbers:
    p to the order of magnitude, d and CLES at the thesis's 2 decimals, the same test. Our
    models (another network, other data sizes) must agree in the test chosen, significance,
    the sign and rough size of d (:data:`D_FACTOR`) and CLES within :data:`CLES_TOLERANCE`.

    Args:
        kind: ``n``, ``means`` (the thesis states neither), ``test``, ``p``, ``d``, ``cles``.
        quoted: the thesis's number, or ``None`` when it states none.
        value: the recomputed value (``None``/NaN when undefined).
        column: ``published_data`` or ``ours``.
        p: the comparison's p-value (``d`` of our models needs it).
        reason: why ``value`` is undefined, in plain words.

    Returns:
        The :class:`~heatmaploss.report.verdicts.Judgement`.
    """
    if column not in ("published_data", "ours"):
        raise ValueError(f"column={column!r}: allowed 'published_data' or 'ours'")
    if kind not in _CLAIMS:
        raise ValueError(f"kind={kind!r}: allowed {', '.join(_CLAIMS)}")
    ours = column == "ours"
    compares = v.OURS_VS_THESIS if ours else v.PUBLISHED_VS_THESIS
    if kind in ("n", "means") or quoted is None:
        why = reason if v.missing(value) and reason else v.NOT_STATED
        return v.not_compared(compares=compares, reason=why)
    if kind == "test":
        return v.same_test(thesis=quoted, value=value, compares=compares, reason=reason)
    if kind == "p":
        rule = v.significance if ours else v.same_order_of_magnitude
        return rule(thesis=quoted, value=value, compares=compares, reason=reason)
    if kind == "d" and ours:
        return v.effect_size(thesis=quoted, value=value, p=p, factor=D_FACTOR,
                             compares=compares, reason=reason)
    if kind == "cles" and ours:
        return v.within_tolerance(thesis=quoted, value=value, tolerance=CLES_TOLERANCE,
                                  compares=compares, what="CLES", reason=reason)
    return v.equal_at_rounding(thesis=quoted, value=value, decimals=2, compares=compares,
                               reason=reason)


def _section_and_prefix(key: str, explainer: str) -> tuple[str, str]:
    if explainer == "hirescam":
        return SECTIONS[key.split("_iqr")[0]], ""
    experiment, region = key[3], key.split("_iqr")[0][5:].replace("_", " ")
    return SECTIONS["gradcam"], f"exp {experiment} {region}: "


def _values(result: GroupComparison | None,
            scores: Mapping[str, Any] | None) -> dict[str, Any]:
    if result is not None:
        return {"n": list(result.n), "means": list(result.means), "test": result.test,
                "p": result.p_value, "d": result.cohens_d, "cles": result.cles}
    values: dict[str, Any] = dict.fromkeys(_CLAIMS)
    if scores is not None:
        groups = [np.asarray(s, dtype=float).ravel() for s in scores.values()]
        finite = [g[np.isfinite(g)] for g in groups]
        values["n"] = [int(g.size) for g in finite]
        values["means"] = [float(g.mean()) if g.size else None for g in finite]
    return values


def comparison_rows(key: str, result: GroupComparison | None, *, explainer: str = "hirescam",
                    column: str = "published_data", reason: str = "",
                    note: str | None = None,
                    scores: Mapping[str, Any] | None = None) -> list[ReportRow]:
    """Report rows for one comparison of the thesis's table, with their verdicts.

    Args:
        key: comparison key (``exp1_heart``, ``exp2_heart``, ``exp2_sex_marker``,
            ``exp2_sex_marker_iqr1.5``, ``exp2_sex_marker_iqr5``).
        result: the comparison, or ``None`` when it was undefined (``reason`` says why).
        explainer: ``hirescam`` (the thesis's table) or ``gradcam`` (held-out explainer; the
            thesis quotes nothing there).
        column: ``published_data`` or ``ours``; the matching verdict column is filled.
        reason: why ``result`` is ``None``, in plain words (e.g. from
            :func:`~heatmaploss.report.verdicts.undefined_comparison_reason`).
        note: a note on these values (``note`` for published data, ``ours_note`` for ours).
        scores: the two groups' scores (CCE first); give n and means when ``result`` is
            ``None``.

    Returns:
        Rows for n, means, test, p, d and CLES, keyed so that both columns land on one row.
    """
    if column not in ("published_data", "ours"):
        raise ValueError(f"column={column!r}: allowed 'published_data' or 'ours'")
    if explainer not in ("hirescam", "gradcam"):
        raise ValueError(f"explainer={explainer!r}: allowed 'hirescam' or 'gradcam'")
    if result is None and not reason:
        reason = v.undefined_comparison_reason(scores or {}) or "the comparison is undefined"
    quoted = THESIS_QUOTED.get(key, {}) if explainer == "hirescam" else {}
    section, prefix = _section_and_prefix(key, explainer)
    values = _values(result, scores)
    p = values["p"]
    rows = []
    for kind, claim in _CLAIMS.items():
        judgement = judge(kind, quoted.get(kind), values[kind], column=column, p=p,
                          reason=reason or None)
        ours = column == "ours"
        rows.append(ReportRow(
            section=section, claim=prefix + claim + SUFFIX.get(key, ""), chapter=CHAPTER,
            thesis=quoted.get(kind), **{column: values[kind]},
            **{("ours_verdict" if ours else "published_verdict"): judgement},
            **({"ours_note": note} if ours else {"note": note})))
    return rows


def power_row(n: float) -> ReportRow:
    """Report row for the thesis's power analysis (n per group recomputed from its inputs)."""
    return ReportRow(
        section=SECTIONS["power"], chapter=CHAPTER,
        claim=(f"models per group for d = {THESIS_POWER['d']}, alpha = {THESIS_POWER['alpha']}, "
               f"power = {THESIS_POWER['power']} (two-sample t-test)"),
        thesis=THESIS_POWER["n"], published_data=round(float(n), 4),
        published_verdict=v.equal_at_rounding(thesis=THESIS_POWER["n"],
                                              value=round(float(n), 4), decimals=2,
                                              compares=v.PUBLISHED_VS_THESIS),
        note=(f"rounded up: {math.ceil(n)} per group (thesis: {THESIS_POWER['n_per_group']}); "
              "recomputed with heatmaploss.stats.required_sample_size"))


#: Claim texts of the "Headline claims" section (stable keys for every chapter's rows).
HEADLINE_CLAIMS = {
    "exp1_accuracy": "exp 1: heatmap-loss models are as accurate as CCE models",
    "exp2_accuracy": "exp 2: heatmap-loss models are as accurate as CCE models",
    "exp1_heart": "exp 1: heatmap loss puts more HiResCAM mass inside the heart",
    "exp2_heart": "exp 2: heatmap loss puts more HiResCAM mass inside the heart",
    "exp2_sex_marker": "exp 2: heatmap loss puts less HiResCAM mass on the sex marker",
    "exp1_held_out_gradcam": "exp 1: the heart effect holds under a held-out explainer "
                             "(Grad-CAM)",
    "exp2_held_out_gradcam": "exp 2: the heart effect holds under a held-out explainer "
                             "(Grad-CAM)",
    "exp1_held_out_saliency": "exp 1: the heart effect holds under a held-out explainer "
                              "(saliency)",
    "exp2_held_out_saliency": "exp 2: the heart effect holds under a held-out explainer "
                              "(saliency)",
}
_HEADLINE_THESIS = {"accuracy": "equal (kept models 0.999-1.0)",
                    "heart": {1: "yes (p ~ 1e-9, d = -10.78)", 2: "yes (p ~ 1e-8, d = -11.88)"},
                    "sex_marker": "yes (CLES 0.95; d = 1.84 after 1.5 IQR filtering)",
                    "held_out": "not tested"}


def _effect_text(result: GroupComparison | None) -> str | None:
    if result is None:  # the verdict says why
        return None
    return (f"{result.test} p = {result.p_value:.2g}, d = {result.cohens_d:+.2f}, CLES = "
            f"{result.cles:.2f}, means {result.means[0]:.3g} vs {result.means[1]:.3g}")


def _row(column: str, key: str, value: Any, judgement: v.Judgement, thesis: Any = None,
         note: str | None = None) -> ReportRow:
    ours = column == "ours"
    return ReportRow(SECTIONS["headline"], HEADLINE_CLAIMS[key], chapter=CHAPTER,
                     thesis=thesis, **{column: value},
                     **{("ours_verdict" if ours else "published_verdict"): judgement},
                     **({"ours_note": note} if ours else {"note": note}))


def headline_rows(experiment: int, *, column: str, accuracy: Mapping[str, Any],
                  comparisons: Mapping[str, Mapping[str, tuple[GroupComparison | None, str]]],
                  uniform_marker: float | None = None,
                  note: str | None = None) -> list[ReportRow]:
    """The thesis's main claims for one experiment, with values and verdicts of one column.

    Args:
        experiment: 1 or 2.
        column: ``published_data`` (the thesis's data) or ``ours``.
        accuracy: group label (CCE first, heatmap loss second) → test accuracies of the kept
            models.
        comparisons: explainer → region → (comparison or ``None``, reason when ``None``);
            explainers ``hirescam``, ``gradcam`` and optionally ``saliency``; regions
            ``heart`` and, in experiment 2, ``sex_marker``.
        uniform_marker: experiment 2: the sex-marker score of a spatially uniform heatmap.
        note: note on the column's values (e.g. which protocol our models come from).

    Returns:
        Rows of the "Headline claims" section: accuracy, heart effect, (sex marker), and the
        heart effect under each held-out explainer given.
    """
    ours = column == "ours"
    claim_vs = v.OURS_VS_CLAIM if ours else v.PUBLISHED_VS_CLAIM
    thesis_vs = v.OURS_VS_THESIS if ours else v.PUBLISHED_VS_THESIS
    n = experiment
    acc = [np.asarray(a, dtype=float).ravel() for a in accuracy.values()]
    acc = [a[np.isfinite(a)] for a in acc]
    if all(a.size for a in acc):
        diff = float(acc[1].mean() - acc[0].mean())
        shown = "; ".join(f"{g}: {a.mean():.4f} ({a.min():.4f}-{a.max():.4f})"
                          for g, a in zip(accuracy, acc)) + f"; difference {diff:+.4f}"
        why = None
    else:
        empty = next(g for g, a in zip(accuracy, acc) if not a.size)
        diff, shown, why = None, None, f"the {empty} group has no selected model"
    rows = [_row(column, f"exp{n}_accuracy", shown, v.within_tolerance(
        thesis=0.0, value=diff, tolerance=ACCURACY_TOLERANCE, compares=thesis_vs,
        what=ACCURACY_DIFFERENCE, reason=why),
        thesis=_HEADLINE_THESIS["accuracy"], note=note)]
    heart, reason = comparisons["hirescam"]["heart"]
    rows.append(_row(column, f"exp{n}_heart", _effect_text(heart),
                     v.direction_and_significance(
                         p=heart.p_value if heart else None,
                         effect=heart.cohens_d if heart else None, expected_sign=-1,
                         compares=thesis_vs, reason=reason or None),
                     thesis=_HEADLINE_THESIS["heart"][n], note=note))
    if n == 2:
        marker, reason = comparisons["hirescam"]["sex_marker"]
        text = _effect_text(marker)
        if uniform_marker is not None and text is not None:
            text += f"; uniform heatmap {uniform_marker:.2g}"
        rows.append(_row(column, "exp2_sex_marker", text, v.marker_removed(
            p=marker.p_value if marker else None, cles=marker.cles if marker else None,
            reference_mean=marker.means[0] if marker else None, uniform=uniform_marker,
            compares=thesis_vs, reason=reason or None),
            thesis=_HEADLINE_THESIS["sex_marker"], note=note))
    for explainer in ("gradcam", "saliency"):
        if explainer not in comparisons:
            continue
        held, reason = comparisons[explainer]["heart"]
        rows.append(_row(column, f"exp{n}_held_out_{explainer}", _effect_text(held),
                         v.direction_and_significance(
                             p=held.p_value if held else None,
                             effect=held.cohens_d if held else None, expected_sign=-1,
                             compares=claim_vs, reason=reason or None),
                         thesis=_HEADLINE_THESIS["held_out"], note=note))
    return rows


def no_saliency_row(experiment: int) -> ReportRow:
    """The published-data cell of a saliency held-out row: the thesis kept no saliency."""
    return ReportRow(SECTIONS["headline"], HEADLINE_CLAIMS[f"exp{experiment}_held_out_saliency"],
                     chapter=CHAPTER, thesis=_HEADLINE_THESIS["held_out"],
                     published_verdict=v.not_compared(
                         compares=v.PUBLISHED_VS_CLAIM,
                         reason="the thesis published no saliency scores"))


__all__ = ["ACCURACY_DIFFERENCE", "ACCURACY_TOLERANCE", "CHAPTER", "CLAIM_CLES", "CLAIM_D",
           "CLAIM_MEANS", "CLAIM_N", "CLAIM_P", "CLAIM_TEST", "CLES_TOLERANCE", "D_FACTOR",
           "HEADLINE_CLAIMS", "SECTIONS", "THESIS_POWER", "THESIS_QUOTED", "comparison_rows",
           "headline_rows", "judge", "no_saliency_row", "power_row"]
