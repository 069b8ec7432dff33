"""heatmaploss.report.verdicts: one vocabulary; every rule, including NaN and mismatched tests;
the consistency check that every report row passes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from heatmaploss.report import ReportRow, report_problems, row_problems, verdicts as v

NAN = float("nan")
PUB, OURS = v.PUBLISHED_VS_THESIS, v.OURS_VS_THESIS


def _check(judgement: v.Judgement, verdict: str, *, compares: str = PUB) -> v.Judgement:
    """The verdict is as expected, in the vocabulary, and recomputable from its inputs."""
    assert judgement.verdict == verdict, judgement
    assert judgement.verdict in v.VERDICTS and judgement.compares == compares
    assert v.recheck(v.Judgement(**judgement.to_dict())) == judgement
    if verdict == v.UNDEFINED:
        assert judgement.reason, "an undefined verdict says why"
    else:
        assert judgement.criterion, "a verdict names its criterion"
    return judgement


@pytest.mark.parametrize("bad", [None, NAN, math.inf])
def test_every_rule_gives_undefined_with_a_reason_for_missing_values(bad):
    calls = [
        lambda x: v.same_test(thesis="ttest", value=x, compares=OURS),
        lambda x: v.same_order_of_magnitude(thesis=1e-9, value=x, compares=PUB),
        lambda x: v.equal_at_rounding(thesis=-10.78, value=x, compares=PUB),
        lambda x: v.within_tolerance(thesis=0.0, value=x, tolerance=0.02, compares=OURS),
        lambda x: v.significance(thesis=1e-9, value=x, compares=OURS),
        lambda x: v.direction_and_significance(p=x, effect=-1.0, expected_sign=-1,
                                               compares=OURS),
        lambda x: v.effect_size(thesis=-10.78, value=x, p=1e-3, compares=OURS),
        lambda x: v.marker_removed(p=1e-3, cles=x, reference_mean=1e-4, uniform=3e-3,
                                   compares=OURS),
    ]
    for call in calls:
        judgement = call(bad)
        assert judgement.verdict == v.UNDEFINED and "undefined" in judgement.reason
        assert "nan" not in judgement.reason.lower()
    given = v.effect_size(thesis=-10.78, value=bad, p=bad, compares=OURS,
                          reason="no CCE model was selected")
    assert given.reason == "no CCE model was selected", "the caller's plain words are kept"


def test_a_value_the_thesis_does_not_state_is_undefined_not_compared():
    j = _check(v.equal_at_rounding(thesis=None, value=0.5, compares=PUB), v.UNDEFINED)
    assert j.reason == v.NOT_STATED
    # our value missing too: the value's reason comes first
    j = v.equal_at_rounding(thesis=None, value=None, compares=OURS, reason="no model")
    assert j.reason == "no model"


def test_same_test_and_the_mismatched_test_case():
    _check(v.same_test(thesis="mannwhitneyu", value="mannwhitneyu", compares=PUB), v.REPRODUCED)
    j = _check(v.same_test(thesis="mannwhitneyu", value="ttest", compares=OURS),
               v.NOT_REPRODUCED, compares=OURS)
    assert "mannwhitneyu" in j.reason and "ttest" in j.reason


def test_same_order_of_magnitude():
    _check(v.same_order_of_magnitude(thesis=1e-8, value=9.85e-9, compares=PUB), v.REPRODUCED)
    _check(v.same_order_of_magnitude(thesis=1e-9, value=4e-8, compares=PUB), v.NOT_REPRODUCED)
    _check(v.same_order_of_magnitude(thesis=1e-9, value=0.0, compares=PUB), v.NOT_REPRODUCED)


def test_equal_at_rounding():
    _check(v.equal_at_rounding(thesis=-10.78, value=-10.7768, compares=PUB), v.REPRODUCED)
    _check(v.equal_at_rounding(thesis=-10.78, value=-10.70, compares=PUB), v.NOT_REPRODUCED)
    _check(v.equal_at_rounding(thesis=0.009, value=0.0085, decimals=3, compares=OURS),
           v.REPRODUCED, compares=OURS)


def test_within_tolerance_absolute_and_relative():
    j = _check(v.within_tolerance(thesis=0.0, value=-0.0008, tolerance=0.02, compares=OURS,
                                  what="the accuracy difference"), v.REPRODUCED, compares=OURS)
    assert j.criterion == "the accuracy difference within ±0.02 of the thesis's 0"
    _check(v.within_tolerance(thesis=0.0, value=0.05, tolerance=0.02, compares=OURS),
           v.NOT_REPRODUCED, compares=OURS)
    _check(v.within_tolerance(thesis=0.1, value=0.102, tolerance=0.03, relative=True,
                              compares=OURS), v.REPRODUCED, compares=OURS)
    _check(v.within_tolerance(thesis=0.1, value=0.104, tolerance=0.03, relative=True,
                              compares=OURS), v.NOT_REPRODUCED, compares=OURS)


def test_significance():
    _check(v.significance(thesis=1e-9, value=0.03, compares=OURS), v.REPRODUCED, compares=OURS)
    _check(v.significance(thesis=1e-9, value=0.2, compares=OURS), v.NOT_REPRODUCED,
           compares=OURS)


def test_direction_and_significance_for_the_thesis_and_for_new_claims():
    _check(v.direction_and_significance(p=3e-9, effect=-10.78, expected_sign=-1,
                                        compares=PUB), v.REPRODUCED)
    j = _check(v.direction_and_significance(p=0.047, effect=0.81, expected_sign=-1,
                                            compares=v.PUBLISHED_VS_CLAIM), v.NOT_SUPPORTED,
               compares=v.PUBLISHED_VS_CLAIM)
    assert "opposite direction" in j.reason
    j = _check(v.direction_and_significance(p=0.14, effect=-0.47, expected_sign=-1,
                                            compares=v.OURS_VS_CLAIM), v.NOT_SUPPORTED,
               compares=v.OURS_VS_CLAIM)
    assert "not significant" in j.reason
    _check(v.direction_and_significance(p=[1e-3, 1e-4], effect=[-1.0, -2.0], expected_sign=-1,
                                        compares=v.OURS_VS_CLAIM), v.SUPPORTED,
           compares=v.OURS_VS_CLAIM)
    undefined = v.direction_and_significance(p=[1e-3, NAN], effect=[-1.0, NAN],
                                             expected_sign=-1, compares=v.OURS_VS_CLAIM)
    assert undefined.verdict == v.UNDEFINED
    with pytest.raises(ValueError, match="expected_sign"):
        v.direction_and_significance(p=0.01, effect=1.0, expected_sign=0, compares=OURS)


def test_effect_size_says_when_only_the_direction_was_compared():
    _check(v.effect_size(thesis=-11.88, value=-10.5, p=9e-4, compares=OURS), v.REPRODUCED,
           compares=OURS)
    j = _check(v.effect_size(thesis=-10.78, value=-4.55, p=3e-7, compares=OURS), v.PARTLY,
               compares=OURS)
    assert "only the direction" in j.reason and "factor of 2" in j.criterion
    _check(v.effect_size(thesis=-10.78, value=4.0, p=1e-3, compares=OURS), v.NOT_REPRODUCED,
           compares=OURS)
    _check(v.effect_size(thesis=-10.78, value=-10.0, p=0.3, compares=OURS), v.NOT_REPRODUCED,
           compares=OURS)
    claim = _check(v.effect_size(thesis=-10.78, value=-4.55, p=3e-7, compares=v.OURS_VS_CLAIM),
                   v.PARTLY_SUPPORTED, compares=v.OURS_VS_CLAIM)
    assert "only the direction" in claim.reason


def test_marker_removed():
    used = dict(p=1e-3, cles=0.9, uniform=3e-3, compares=OURS)
    _check(v.marker_removed(reference_mean=1e-2, **used), v.REPRODUCED, compares=OURS)
    j = _check(v.marker_removed(reference_mean=1e-4, **used), v.PARTLY, compares=OURS)
    assert "hardly used" in j.reason
    _check(v.marker_removed(p=0.3, cles=0.9, reference_mean=1e-2, uniform=3e-3, compares=OURS),
           v.NOT_REPRODUCED, compares=OURS)


def test_judgement_vocabulary_is_enforced():
    with pytest.raises(ValueError, match="allowed"):
        v.Judgement("looks reproduced", OURS, "criterion")
    with pytest.raises(ValueError, match="compares"):
        v.Judgement(v.REPRODUCED, "ours vs a blog post", "criterion")
    with pytest.raises(ValueError, match="reason"):
        v.Judgement(v.UNDEFINED, OURS)
    with pytest.raises(ValueError, match="criterion"):
        v.Judgement(v.REPRODUCED, OURS)


def test_plain_reasons_for_undefined_comparisons():
    reason = v.undefined_comparison_reason
    assert reason({"CCE": [], "heatmap loss": [0.5] * 3}) == "the CCE group has no model with a score"
    assert reason({"CCE": [NAN, NAN]}) == ("the CCE group has no model with a score "
                                           "(2 models without one)")
    assert reason({"CCE": [0.1, 0.2, 0.3], "heatmap loss": [0.1, NAN]}) == (
        "the heatmap loss group has 1 model with a score (1 model without one); the thesis's "
        "test needs at least 3")
    assert "constant group" in reason({"CCE": np.zeros(4)})
    assert reason({"CCE": [0.1, 0.2, 0.3], "heatmap loss": [0.4, 0.5, 0.7]}) == ""


def test_rows_that_contradict_their_values_are_found():
    good = v.within_tolerance(thesis=0.0, value=0.001, tolerance=0.02, compares=OURS)
    assert row_problems(ReportRow("s", "c", thesis=0.0, ours=0.001, ours_verdict=good)) == []
    # a NaN shown next to a verdict that is not undefined (the smoke-run bug)
    stale = v.Judgement(v.NOT_REPRODUCED, OURS, "difference within ±0.02", rule="")
    problems = row_problems(ReportRow("s", "c", ours=NAN, ours_verdict=stale))
    assert any("next to a missing value" in p for p in problems)
    assert any("not made by a rule" in p for p in problems)
    # a verdict that its own rule does not give for the stored inputs
    forged = v.Judgement(**{**good.to_dict(), "verdict": v.NOT_REPRODUCED})
    assert any("gives 'reproduced'" in p for p in
               row_problems(ReportRow("s", "c", thesis=0.0, ours=0.001, ours_verdict=forged)))
    # the value shown differs from the value judged
    assert any("shows 0.5" in p for p in
               row_problems(ReportRow("s", "c", thesis=0.0, ours=0.5, ours_verdict=good)))
    # text that says "undefined" next to a real verdict
    text = ReportRow("s", "c", ours="undefined: no model", ours_verdict=v.direction_and_significance(
        p=0.01, effect=-1.0, expected_sign=-1, compares=OURS))
    assert any("missing value" in p for p in row_problems(text))
    # a value without a verdict, and a verdict in the wrong column
    assert row_problems(ReportRow("s", "c", ours=0.3)) == ["ours: a value (0.3) without a verdict"]
    wrong = ReportRow("s", "c", thesis=0.0, published_data=0.001, published_verdict=good)
    assert any("in this column" in p for p in row_problems(wrong))
    assert report_problems([wrong])[0].startswith("[s | c] ")


def test_at_least_and_closes_gap():
    yes = v.at_least(value=0.95, threshold=0.9, compares=v.OURS_VS_CLAIM, what="accuracy")
    no = v.at_least(value=0.5, threshold=0.9, compares=v.OURS_VS_CLAIM, what="accuracy")
    nan = v.at_least(value=float("nan"), threshold=0.9, compares=v.OURS_VS_CLAIM,
                     what="accuracy", reason="no model was trained")
    assert (yes.verdict, no.verdict, nan.verdict) == ("supported", "not supported", "undefined")
    assert "accuracy is 0.5" in no.reason and nan.reason == "no model was trained"

    def gap(g, worst, p):
        return v.closes_gap(gap=g, worst_gap=worst, p=p, mean_limit=0.01, worst_limit=0.03,
                            compares=v.OURS_VS_CLAIM).verdict

    assert gap(0.005, 0.02, 0.5) == "supported"  # at the ceiling: p does not matter
    assert gap(0.005, 0.05, 0.01) == "partly supported"  # a worst seed too far
    assert gap(0.2, 0.4, 0.01) == "partly supported"
    assert gap(0.2, 0.4, 0.2) == "not supported"
    assert gap(0.2, 0.4, None) == "undefined"
    assert gap(None, 0.4, 0.01) == "undefined"
    for judgement in (yes, no, nan):
        assert v.recheck(v.Judgement(**judgement.to_dict())) == judgement
