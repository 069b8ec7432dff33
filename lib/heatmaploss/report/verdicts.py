"""The report's verdicts: one vocabulary, and the rules that compute every verdict.

A verdict always compares two things — :data:`PUBLISHED_VS_THESIS` (the thesis's published
per-model data against the numbers the thesis states), :data:`OURS_VS_THESIS` (this
project's freshly trained models against the thesis), or :data:`OURS_VS_CLAIM` (our models
against a claim the thesis did not test) — by a stated criterion. Each rule below returns a
:class:`Judgement` that records all of it: the verdict, what was compared, the criterion in
words, a plain-words reason (always given when the verdict is ``undefined``), and the rule's
name and inputs, so that :func:`recheck` can recompute the verdict from the stored row.

Missing values (``None``, NaN, ±inf) never reach a comparison: every rule returns
``undefined`` for them and says why. No TensorFlow.

Vocabulary (:data:`VERDICTS`): ``reproduced``, ``partly reproduced``, ``not reproduced`` —
for what the thesis stated; ``supported``, ``partly supported``, ``not supported`` — for claims
it did not test;
``undefined`` — nothing could be compared (a value is missing, or the thesis states none).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

REPRODUCED = "reproduced"
PARTLY = "partly reproduced"
NOT_REPRODUCED = "not reproduced"
SUPPORTED = "supported"
PARTLY_SUPPORTED = "partly supported"
NOT_SUPPORTED = "not supported"
UNDEFINED = "undefined"
#: Every verdict the report may state, and what it means.
VERDICTS = {
    REPRODUCED: "the value agrees with the thesis's by the row's criterion",
    PARTLY: "part of the criterion holds (e.g. the direction, not the magnitude)",
    NOT_REPRODUCED: "the value disagrees with the thesis's by the row's criterion",
    SUPPORTED: "a claim the thesis did not test holds by the row's criterion",
    PARTLY_SUPPORTED: "part of the criterion of such a claim holds (the reason says which)",
    NOT_SUPPORTED: "a claim the thesis did not test does not hold by the row's criterion",
    UNDEFINED: "nothing could be compared; the reason is given",
}

PUBLISHED_VS_THESIS = "published data vs thesis"
OURS_VS_THESIS = "our models vs thesis"
OURS_VS_CLAIM = "our models vs the claim"
PUBLISHED_VS_CLAIM = "published data vs the claim"
#: What a verdict may compare.
COMPARISONS = (PUBLISHED_VS_THESIS, OURS_VS_THESIS, OURS_VS_CLAIM, PUBLISHED_VS_CLAIM)
#: Comparisons of claims the thesis did not test (judged supported / not supported).
_NEW_CLAIMS = (OURS_VS_CLAIM, PUBLISHED_VS_CLAIM)

#: Reason of an ``undefined`` verdict when the thesis states no value.
NOT_STATED = "the thesis states no value for this; shown for reference"


@dataclass(frozen=True)
class Judgement:
    """A verdict with what it compares, its criterion and how to recompute it.

    Attributes:
        verdict: one of :data:`VERDICTS`.
        compares: one of :data:`COMPARISONS`.
        criterion: the rule in words (e.g. "same order of magnitude").
        reason: plain-words explanation; required for ``undefined``.
        rule: name of the rule in :data:`RULES` that made it ("" when built by hand).
        inputs: the rule's keyword arguments (JSON values), for :func:`recheck`.
    """

    verdict: str
    compares: str
    criterion: str = ""
    reason: str = ""
    rule: str = ""
    inputs: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict={self.verdict!r}: allowed {', '.join(VERDICTS)}")
        if self.compares not in COMPARISONS:
            raise ValueError(f"compares={self.compares!r}: allowed {', '.join(COMPARISONS)}")
        if self.verdict == UNDEFINED and not self.reason:
            raise ValueError("an undefined verdict needs a reason in plain words")
        if self.verdict != UNDEFINED and not self.criterion:
            raise ValueError(f"verdict {self.verdict!r} needs its criterion")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the stored form in ``report_rows.json``)."""
        return asdict(self)

    def text(self) -> str:
        """One line for a report cell: the verdict and its criterion or reason."""
        detail = self.reason if self.verdict == UNDEFINED else self.criterion
        return f"{self.verdict} ({detail})" if detail else self.verdict


def missing(value: Any) -> bool:
    """True for ``None``, NaN, ±inf, an empty string, or a sequence containing one."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, (list, tuple)):
        return any(missing(v) for v in value)
    try:
        return not math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _yes(compares: str) -> str:
    return SUPPORTED if compares in _NEW_CLAIMS else REPRODUCED


def _no(compares: str) -> str:
    return NOT_SUPPORTED if compares in _NEW_CLAIMS else NOT_REPRODUCED


def _partly(compares: str) -> str:
    return PARTLY_SUPPORTED if compares in _NEW_CLAIMS else PARTLY


def _undefined_inputs(compares: str, criterion: str, rule: str, inputs: dict,
                      names: Mapping[str, str], reason: str | None) -> Judgement | None:
    """An ``undefined`` judgement when one of ``names`` (input → words) is missing.

    The compared values are checked before the thesis's, so that a missing value of ours is
    reported as such even where the thesis states nothing either.
    """
    for key, words in sorted(names.items(), key=lambda item: item[0] == "thesis"):
        if missing(inputs.get(key)):
            if key == "thesis" and compares not in _NEW_CLAIMS:
                why = NOT_STATED
            else:
                why = reason or f"{words} is undefined"
            return Judgement(UNDEFINED, compares, criterion, why, rule, inputs)
    return None


_VALUE_NAMES = {"thesis": "the thesis's value", "value": "the value"}


def _against_thesis(rule: str, inputs: dict, criterion: str, compares: str,
                    agrees: Callable[[float, float], bool],
                    names: Mapping[str, str] = _VALUE_NAMES) -> Judgement:
    """The verdict of a rule comparing ``inputs["value"]`` with ``inputs["thesis"]``:
    ``undefined`` for a missing one, else yes/no by ``agrees(value, thesis)``."""
    undefined = _undefined_inputs(compares, criterion, rule, inputs, names, inputs["reason"])
    if undefined:
        return undefined
    ok = agrees(float(inputs["value"]), float(inputs["thesis"]))
    return Judgement(_yes(compares) if ok else _no(compares), compares, criterion, "", rule,
                     inputs)


def same_test(*, thesis: str | None, value: str | None, compares: str,
              reason: str | None = None) -> Judgement:
    """Did the Shapiro–Wilk rule choose the same test (t-test / Mann–Whitney U)?

    Args:
        thesis: the test the thesis chose.
        value: the test chosen here.
        compares: what is compared (:data:`COMPARISONS`).
        reason: why ``value`` is missing, when it is.

    Returns:
        ``reproduced`` when equal, ``not reproduced`` (naming both tests) when not.
    """
    inputs = {"thesis": thesis, "value": value, "reason": reason}
    criterion = "same test chosen by the Shapiro-Wilk rule"
    undefined = _undefined_inputs(compares, criterion, "same_test", inputs,
                                  {"thesis": "the thesis's test", "value": "the test"}, reason)
    if undefined:
        return undefined
    if thesis == value:
        return Judgement(_yes(compares), compares, criterion, "", "same_test", inputs)
    return Judgement(_no(compares), compares, criterion,
                     f"the thesis chose {thesis}, this comparison {value}", "same_test", inputs)


def same_order_of_magnitude(*, thesis: float | None, value: float | None, compares: str,
                            max_log10: float = 0.5, reason: str | None = None) -> Judgement:
    """Is a positive value (a p-value) within half a power of ten of the thesis's?"""
    inputs = {"thesis": thesis, "value": value, "max_log10": max_log10, "reason": reason}
    return _against_thesis(
        "same_order_of_magnitude", inputs,
        f"same order of magnitude (|log10 ratio| <= {max_log10:g})", compares,
        lambda x, t: x > 0 and t > 0 and abs(math.log10(x) - math.log10(t)) <= max_log10)


def equal_at_rounding(*, thesis: float | None, value: float | None, compares: str,
                      decimals: int = 2, reason: str | None = None) -> Judgement:
    """Does the value round to the thesis's number at the thesis's precision?"""
    inputs = {"thesis": thesis, "value": value, "decimals": decimals, "reason": reason}
    return _against_thesis("equal_at_rounding", inputs,
                           f"equal at the thesis's {decimals} decimals", compares,
                           lambda x, t: round(x, decimals) == round(t, decimals))


def within_tolerance(*, thesis: float | None, value: float | None, tolerance: float,
                     compares: str, relative: bool = False, what: str = "the value",
                     reason: str | None = None) -> Judgement:
    """Is the value within ``tolerance`` (absolute, or a fraction of the thesis's) of it?

    Args:
        thesis: the thesis's value.
        value: the value judged.
        tolerance: the largest difference allowed (a fraction of ``|thesis|`` if ``relative``).
        compares: what is compared.
        relative: ``tolerance`` is relative.
        what: what the value is, for the criterion (e.g. "the difference in accuracy").
        reason: why ``value`` is missing, when it is.
    """
    inputs = {"thesis": thesis, "value": value, "tolerance": tolerance, "relative": relative,
              "what": what, "reason": reason}
    shown = "?" if missing(thesis) else f"{float(thesis):.4g}"
    criterion = (f"{what} within {tolerance:.0%} of the thesis's {shown}" if relative
                 else f"{what} within ±{tolerance:g} of the thesis's {shown}")
    limit = tolerance * abs(float(thesis)) if relative and not missing(thesis) else tolerance
    return _against_thesis("within_tolerance", inputs, criterion, compares,
                           lambda x, t: abs(x - t) <= limit)


def significance(*, thesis: float | None, value: float | None, compares: str,
                 alpha: float = 0.05, reason: str | None = None) -> Judgement:
    """Is the p-value on the same side of ``alpha`` as the thesis's?"""
    inputs = {"thesis": thesis, "value": value, "alpha": alpha, "reason": reason}
    return _against_thesis("significance", inputs,
                           f"significant at alpha = {alpha:g} exactly when the thesis's is",
                           compares, lambda x, t: (x < alpha) == (t < alpha),
                           {"thesis": "the thesis's p-value", "value": "the p-value"})


def _as_list(value: Any) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def direction_and_significance(*, p: float | Sequence[float] | None,
                               effect: float | Sequence[float] | None, expected_sign: int,
                               compares: str, alpha: float = 0.05,
                               effect_name: str = "Cohen's d (CCE minus heatmap loss)",
                               reason: str | None = None) -> Judgement:
    """Is every effect significant at ``alpha`` and in the expected direction?

    Args:
        p: p-value(s) of the comparison(s).
        effect: effect size(s), paired with ``p``.
        expected_sign: +1 or −1, the sign the claim predicts.
        compares: what is compared.
        alpha: significance level.
        effect_name: what the effect is, for the criterion.
        reason: why a value is missing, when one is.

    Returns:
        ``reproduced``/``supported`` when all hold, else ``not reproduced``/``not supported``
        with the first failure named.
    """
    if expected_sign not in (1, -1):
        raise ValueError(f"expected_sign={expected_sign!r}: allowed 1 or -1")
    inputs = {"p": p, "effect": effect, "expected_sign": expected_sign, "alpha": alpha,
              "effect_name": effect_name, "reason": reason}
    criterion = (f"direction + significance: p < {alpha:g} and {effect_name} "
                 f"{'< 0' if expected_sign < 0 else '> 0'}")
    undefined = _undefined_inputs(compares, criterion, "direction_and_significance", inputs,
                                  {"p": "a p-value", "effect": "an effect size"}, reason)
    if undefined:
        return undefined
    ps, effects = _as_list(p), _as_list(effect)
    if len(ps) != len(effects):
        raise ValueError(f"p has {len(ps)} values and effect {len(effects)}: pass pairs")
    for p_i, e_i in zip(ps, effects):
        if float(p_i) >= alpha:
            return Judgement(_no(compares), compares, criterion,
                             f"not significant (p = {float(p_i):.2g})",
                             "direction_and_significance", inputs)
        if expected_sign * float(e_i) <= 0:
            return Judgement(_no(compares), compares, criterion,
                             f"significant in the opposite direction ({float(e_i):+.2f})",
                             "direction_and_significance", inputs)
    return Judgement(_yes(compares), compares, criterion, "", "direction_and_significance",
                     inputs)


def effect_size(*, thesis: float | None, value: float | None, p: float | None,
                compares: str, factor: float = 2.0, alpha: float = 0.05,
                reason: str | None = None) -> Judgement:
    """Direction, significance and magnitude of an effect size against the thesis's.

    ``reproduced``: same sign, p < ``alpha`` and within a factor ``factor`` of the thesis's
    value; ``partly reproduced``: same sign and significant, but the magnitude differs by more
    (only the direction agrees); ``not reproduced``: not significant or the opposite sign.
    """
    inputs = {"thesis": thesis, "value": value, "p": p, "factor": factor, "alpha": alpha,
              "reason": reason}
    criterion = (f"direction + significance (p < {alpha:g}, same sign), and magnitude within "
                 f"a factor of {factor:g}")
    undefined = _undefined_inputs(compares, criterion, "effect_size", inputs,
                                  {"thesis": "the thesis's value", "value": "the effect size",
                                   "p": "the p-value"}, reason)
    if undefined:
        return undefined
    thesis_f, value_f = float(thesis), float(value)
    if float(p) >= alpha or thesis_f * value_f <= 0:
        why = (f"not significant (p = {float(p):.2g})" if float(p) >= alpha
               else "opposite sign to the thesis's")
        return Judgement(_no(compares), compares, criterion, why, "effect_size", inputs)
    ratio = abs(value_f / thesis_f)
    if 1 / factor <= ratio <= factor:
        return Judgement(_yes(compares), compares, criterion, "", "effect_size", inputs)
    return Judgement(_partly(compares), compares, criterion,
                     f"only the direction agrees: {ratio:.2g} times the thesis's magnitude",
                     "effect_size", inputs)


def marker_removed(*, p: float | None, cles: float | None, reference_mean: float | None,
                   uniform: float | None, compares: str, alpha: float = 0.05,
                   reason: str | None = None) -> Judgement:
    """Did the heatmap loss take attribution off a marker the reference models used?

    ``reproduced``: CCE models put significantly more mass on the marker (p < ``alpha``,
    CLES > 0.5) and more than a uniform heatmap would; ``partly reproduced``: the ranks agree
    but CCE models put less than a uniform map on it (the marker was hardly used, so no
    shortcut was removed); otherwise ``not reproduced``.
    """
    inputs = {"p": p, "cles": cles, "reference_mean": reference_mean, "uniform": uniform,
              "alpha": alpha, "reason": reason}
    criterion = (f"direction + significance (p < {alpha:g}, CLES > 0.5), and CCE models above "
                 "a uniform heatmap's mass on the marker")
    undefined = _undefined_inputs(compares, criterion, "marker_removed", inputs,
                                  {"p": "the p-value", "cles": "the CLES",
                                   "reference_mean": "the CCE mean",
                                   "uniform": "a uniform heatmap's mass"}, reason)
    if undefined:
        return undefined
    if float(p) >= alpha or float(cles) <= 0.5:
        return Judgement(_no(compares), compares, criterion, "the ranks do not agree",
                         "marker_removed", inputs)
    if float(reference_mean) < float(uniform):
        return Judgement(_partly(compares), compares, criterion,
                         "ranks agree, but CCE models put less mass on the marker than a "
                         "uniform heatmap would: the marker was hardly used, so no shortcut "
                         "was removed", "marker_removed", inputs)
    return Judgement(_yes(compares), compares, criterion, "", "marker_removed", inputs)


def at_least(*, value: float | None, threshold: float, compares: str,
             what: str = "the value", reason: str | None = None) -> Judgement:
    """``supported``/``reproduced`` when ``value`` (``what``) is at least ``threshold``."""
    inputs = {"value": value, "threshold": threshold, "what": what, "reason": reason}
    criterion = f"{what} at least {threshold:g}"
    undefined = _undefined_inputs(compares, criterion, "at_least", inputs, {"value": what},
                                  reason)
    if undefined:
        return undefined
    ok = float(value) >= float(threshold)
    return Judgement(_yes(compares) if ok else _no(compares), compares, criterion,
                     "" if ok else f"{what} is {float(value):.3g}", "at_least", inputs)


def closes_gap(*, gap: float | None, worst_gap: float | None, p: float | None,
               mean_limit: float, worst_limit: float, compares: str, alpha: float = 0.05,
               reason: str | None = None) -> Judgement:
    """Does a remedy close the gap to a ceiling (e.g. a model trained without a shortcut)?

    ``supported``: the mean gap is at most ``mean_limit`` and the worst replicate's at most
    ``worst_limit``; ``partly supported``: not that, but better than the reference
    (``p`` < ``alpha``); ``not supported``: neither.
    """
    inputs = {"gap": gap, "worst_gap": worst_gap, "p": p, "mean_limit": mean_limit,
              "worst_limit": worst_limit, "alpha": alpha, "reason": reason}
    criterion = (f"gap to the ceiling at most {mean_limit:g} (mean) and {worst_limit:g} "
                 f"(worst replicate); else better than the reference at p < {alpha:g}")
    undefined = _undefined_inputs(compares, criterion, "closes_gap", inputs,
                                  {"gap": "the gap", "worst_gap": "the worst gap"}, reason)
    if undefined:
        return undefined
    if float(gap) <= mean_limit and float(worst_gap) <= worst_limit:
        return Judgement(_yes(compares), compares, criterion, "", "closes_gap", inputs)
    if missing(p):
        return Judgement(UNDEFINED, compares, criterion, reason or "no comparison with the "
                         "reference", "closes_gap", inputs)
    if float(p) < alpha:
        return Judgement(_partly(compares), compares, criterion, f"gap {float(gap):.3g} "
                         "remains, but better than the reference", "closes_gap", inputs)
    return Judgement(_no(compares), compares, criterion, f"gap {float(gap):.3g}, not better "
                     f"than the reference (p = {float(p):.2g})", "closes_gap", inputs)


def not_compared(*, compares: str, reason: str) -> Judgement:
    """``undefined``, with ``reason``: nothing here can be compared (say why)."""
    return Judgement(UNDEFINED, compares, "", reason, "not_compared",
                     {"reason": reason})


#: Every rule by name (what :func:`recheck` recomputes).
RULES: dict[str, Callable[..., Judgement]] = {
    rule.__name__: rule for rule in (same_test, same_order_of_magnitude, equal_at_rounding,
                                     within_tolerance, significance, direction_and_significance,
                                     effect_size, marker_removed, at_least, closes_gap,
                                     not_compared)}


def recheck(judgement: Judgement) -> Judgement:
    """Recompute a judgement from its rule and inputs (raises for an unknown rule)."""
    if judgement.rule not in RULES:
        raise ValueError(f"rule={judgement.rule!r}: allowed {', '.join(RULES)}")
    return RULES[judgement.rule](compares=judgement.compares, **judgement.inputs)


def undefined_comparison_reason(groups: Mapping[str, Any], minimum: int = 3) -> str:
    """Why two groups of model scores cannot be compared, in plain words.

    Args:
        groups: group label → model scores (NaN = a model without a score).
        minimum: models with a score each group needs (the thesis's rule: Shapiro–Wilk needs
            3).

    Returns:
        E.g. "the CCE group has no model with a score (3 models without one)"; an empty
        string when the groups look comparable.
    """
    for label, values in groups.items():
        arr = np.asarray(values, dtype=float).ravel()
        finite = arr[np.isfinite(arr)]
        without = arr.size - finite.size
        extra = f" ({without} model{'s' if without != 1 else ''} without one)" if without else ""
        if finite.size == 0:
            return f"the {label} group has no model with a score{extra}"
        if finite.size < minimum:
            return (f"the {label} group has {finite.size} model{'s' if finite.size != 1 else ''}"
                    f" with a score{extra}; the thesis's test needs at least {minimum}")
        if np.ptp(finite) == 0:
            return (f"every {label} model scores exactly {finite[0]:.3g}: the test and the "
                    "effect size are undefined for a constant group")
    return ""


__all__ = ["COMPARISONS", "Judgement", "NOT_REPRODUCED", "NOT_STATED", "NOT_SUPPORTED",
           "OURS_VS_CLAIM", "OURS_VS_THESIS", "PARTLY", "PARTLY_SUPPORTED", "PUBLISHED_VS_CLAIM",
           "PUBLISHED_VS_THESIS", "REPRODUCED", "RULES", "SUPPORTED", "UNDEFINED", "VERDICTS",
           "at_least", "closes_gap", "direction_and_significance", "effect_size", "equal_at_rounding", "marker_removed",
           "missing", "not_compared", "recheck", "same_order_of_magnitude", "same_test",
           "significance", "undefined_comparison_reason", "within_tolerance"]
