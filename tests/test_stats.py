"""heatmaploss.stats: the thesis's test rule and effect sizes, checked against independent code."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from heatmaploss import stats
from scipy import special

# --- independent reference implementations (textbook formulas, no scipy.stats) -------------

def _u_and_asymptotic_p(x, y):
    """U of x by counting pairs; normal approximation with tie and continuity correction."""
    n1, n2 = len(x), len(y)
    u = sum((a > b) + 0.5 * (a == b) for a in x for b in y)
    pooled = np.concatenate([x, y])
    n = n1 + n2
    _, counts = np.unique(pooled, return_counts=True)
    tie_term = float(np.sum(counts ** 3 - counts)) / (n * (n - 1))
    sigma = math.sqrt(n1 * n2 / 12.0 * ((n + 1) - tie_term))
    z = (abs(u - n1 * n2 / 2.0) - 0.5) / sigma
    return u, min(1.0, math.erfc(z / math.sqrt(2)))


def _exact_p_by_enumeration(x, y):
    """Two-sided exact p of U by enumerating every split of the pooled sample."""
    pooled = np.concatenate([x, y])
    n1, n2 = len(x), len(y)
    observed = sum(a > b for a in x for b in y)
    centre = n1 * n2 / 2
    extreme = total = 0
    for idx in itertools.combinations(range(len(pooled)), n1):
        mask = np.zeros(len(pooled), bool)
        mask[list(idx)] = True
        u = sum(a > b for a in pooled[mask] for b in pooled[~mask])
        extreme += abs(u - centre) >= abs(observed - centre) - 1e-12
        total += 1
    return extreme / total


def _student_t(x, y):
    n1, n2 = len(x), len(y)
    m1, m2 = sum(x) / n1, sum(y) / n2
    ss = sum((v - m1) ** 2 for v in x) + sum((v - m2) ** 2 for v in y)
    sp = math.sqrt(ss / (n1 + n2 - 2))
    t = (m1 - m2) / (sp * math.sqrt(1 / n1 + 1 / n2))
    df = n1 + n2 - 2
    p = special.betainc(df / 2, 0.5, df / (df + t * t))  # two-sided tail of Student's t
    return t, p, (m1 - m2) / sp


@pytest.mark.parametrize("seed", range(6))
def test_compare_groups_matches_independent_computation(seed):
    rng = np.random.default_rng(seed)
    n1, n2 = rng.integers(5, 40, size=2)
    x = rng.gamma(2.0, 1.0, n1) + rng.normal(0, 0.3) * (seed % 2)
    y = rng.gamma(2.0, 1.0, n2)
    if seed >= 3:  # rounded data: ties within and across groups
        x, y = np.round(x, 1), np.round(y, 1)
    result = stats.compare_groups(x, y, n_boot=500, seed=seed)
    u, p = _u_and_asymptotic_p(x, y)
    t, t_p, d = _student_t(x, y)
    assert result.mwu_u == pytest.approx(u)
    assert result.mwu_p == pytest.approx(p, rel=1e-9)
    assert result.t_statistic == pytest.approx(t, rel=1e-9)
    assert result.t_p == pytest.approx(t_p, rel=1e-7)
    assert result.cohens_d == pytest.approx(d, rel=1e-9)
    assert result.cles == pytest.approx(u / (n1 * n2))
    assert result.rank_biserial == pytest.approx(2 * u / (n1 * n2) - 1)
    assert result.n == (n1, n2)
    assert result.means == pytest.approx((x.mean(), y.mean()))
    chosen = (result.mwu_u, result.mwu_p) if result.test == "mannwhitneyu" else (t, t_p)
    assert (result.statistic, result.p_value) == pytest.approx(chosen)
    assert result.test == ("ttest" if min(result.shapiro_p) >= 0.05 else "mannwhitneyu")


def test_exact_p_matches_enumeration_and_is_none_with_ties():
    rng = np.random.default_rng(3)
    x, y = rng.normal(0, 1, 5), rng.normal(1, 1, 6)
    result = stats.compare_groups(x, y, n_boot=200)
    assert result.p_exact == pytest.approx(_exact_p_by_enumeration(x, y), rel=1e-9)
    tied = stats.compare_groups([1.0, 2, 3, 4, 5], [2.0, 3, 7, 8, 9], n_boot=200)
    assert tied.p_exact is None
    big = stats.compare_groups(rng.normal(size=60), rng.normal(size=60), n_boot=200)
    assert big.p_exact is None


def test_test_rule_follows_shapiro():
    rng = np.random.default_rng(0)
    normal = stats.compare_groups(rng.normal(0, 1, 40), rng.normal(0.5, 1, 40), n_boot=200)
    assert normal.test == "ttest" and normal.normal
    skewed = stats.compare_groups(rng.lognormal(0, 1.5, 60), rng.normal(0, 1, 40), n_boot=200)
    assert skewed.test == "mannwhitneyu" and not skewed.normal
    assert skewed.statistic == skewed.mwu_u


def test_sign_conventions():
    result = stats.compare_groups([5.0, 6, 7, 8.5], [1.0, 2, 3.5, 4], n_boot=200)
    assert result.cohens_d > 0 and result.cles == 1.0 and result.rank_biserial == 1.0
    assert result.diff_ci[0] > 0
    flipped = stats.compare_groups([1.0, 2, 3.5, 4], [5.0, 6, 7, 8.5], n_boot=200)
    assert flipped.cohens_d == pytest.approx(-result.cohens_d) and flipped.cles == 0.0


def test_cles_counts_ties_as_half():
    assert stats.cles([1.0, 2.0], [1.0, 2.0]) == 0.5
    assert stats.cles([1.0], [1.0, 0.0, 2.0]) == pytest.approx((0.5 + 1) / 3)


def test_bootstrap_ci_is_seeded_and_covers_the_difference():
    rng = np.random.default_rng(1)
    x, y = rng.normal(2.0, 1, 50), rng.normal(0.0, 1, 50)
    a = stats.bootstrap_diff_ci(x, y, n_boot=2000, seed=7)
    assert a == stats.bootstrap_diff_ci(x, y, n_boot=2000, seed=7)
    assert a != stats.bootstrap_diff_ci(x, y, n_boot=2000, seed=8)
    assert a[0] < x.mean() - y.mean() < a[1]
    se = math.sqrt(x.var(ddof=1) / 50 + y.var(ddof=1) / 50)
    assert a[1] - a[0] == pytest.approx(2 * 1.96 * se, rel=0.15)


def test_to_dict_is_strict_json():
    result = stats.compare_groups([1.0, 2, 2, 3, 4], [2.0, 3, 5, 6, 6], n_boot=200)
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert data["n"] == [5, 5] and data["p_exact"] is None and data["test"] in (
        "ttest", "mannwhitneyu")
    assert set(data) >= {"n", "means", "shapiro_p", "test", "statistic", "p_value", "p_exact",
                         "cohens_d", "cles", "rank_biserial", "diff_ci", "normal"}


@pytest.mark.parametrize("x, y, error, words", [
    ([], [1.0, 2, 3], ValueError, ["group x is empty"]),
    ([1.0, 2, 3], [], ValueError, ["group y is empty"]),
    ([1.0, np.nan, 3, np.nan], [1.0, 2, 3], ValueError, ["2 non-finite", "1, 3"]),
    ([1.0, 2, 3], [1.0, 2, np.inf], ValueError, ["group y", "1 non-finite", "position(s) 2"]),
    ([1.0, 2], [1.0, 2, 3], ValueError, ["2 value(s)", "at least 3"]),
    ([4.0, 4, 4, 4], [1.0, 2, 3], stats.UndefinedStatisticError,
     ["group x is constant", "Shapiro-Wilk", "undefined"]),
    ([[1.0, 2], [3, 4]], [1.0, 2, 3], ValueError, ["1-D"]),
])
def test_compare_groups_errors(x, y, error, words):
    with pytest.raises(error) as info:
        stats.compare_groups(x, y)
    for word in words:
        assert word in str(info.value)


def test_other_errors():
    with pytest.raises(ValueError, match="alpha"):
        stats.compare_groups([1.0, 2, 3], [1.0, 2, 4], alpha=1.5)
    with pytest.raises(stats.UndefinedStatisticError, match="pooled standard deviation 0"):
        stats.cohens_d([1.0, 1, 1], [2.0, 2])
    with pytest.raises(ValueError, match="k=0"):
        stats.iqr_filter([1.0, 2, 3], 0)


def test_iqr_filter_is_strict():
    values = np.arange(9.0)  # Q1 = 2, Q3 = 6, IQR = 4: k = 0.5 puts the fences at 0 and 8
    assert stats.iqr_filter(values, 0.5).tolist() == [1, 2, 3, 4, 5, 6, 7]
    assert stats.iqr_filter(values, 0.51).tolist() == values.tolist()
    # IQR = 0: the strict fences drop even the values at the quartiles
    assert stats.iqr_filter([1.0, 1, 1, 1, 1, 5], 1.5).size == 0
    rng = np.random.default_rng(0)
    data = rng.standard_t(2, 200)
    q1, q3 = np.percentile(data, [25, 75])
    expected = data[(data > q1 - 1.5 * (q3 - q1)) & (data < q3 + 1.5 * (q3 - q1))]
    assert np.array_equal(stats.iqr_filter(data, 1.5), expected)


def _holm_by_hand(p):
    order = np.argsort(p)
    m = len(p)
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted


def test_holm():
    result = stats.holm([0.01, 0.04, 0.03, 0.005])
    assert result.p_adjusted.tolist() == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert result.reject.tolist() == [True, False, False, True]
    p = np.random.default_rng(2).uniform(0, 0.2, 12)
    assert stats.holm(p).p_adjusted == pytest.approx(_holm_by_hand(p))
    with pytest.raises(ValueError, match="lie in"):
        stats.holm([0.1, 1.2])
    with pytest.raises(ValueError, match="non-empty"):
        stats.holm([])


def test_required_sample_size_thesis_power_analysis():
    n = stats.required_sample_size(7.6, 0.05, 0.9999)
    assert f"{n:.3g}" == "2.69" and math.ceil(n) == 3
    assert stats.ttest_ind_power(7.6, n) == pytest.approx(0.9999, abs=1e-9)


@pytest.mark.parametrize("d, power, ratio", [(0.5, 0.8, 1.0), (1.2, 0.9, 1.0), (0.8, 0.8, 2.0)])
def test_required_sample_size_agrees_with_statsmodels_where_it_is_finite(d, power, ratio):
    from statsmodels.stats.power import TTestIndPower

    ours = stats.required_sample_size(d, 0.05, power, ratio)
    theirs = TTestIndPower().solve_power(effect_size=d, alpha=0.05, power=power, ratio=ratio)
    assert ours == pytest.approx(theirs, rel=1e-6)
    assert stats.ttest_ind_power(d, 20, 0.05, ratio) == pytest.approx(
        TTestIndPower().power(effect_size=d, nobs1=20, alpha=0.05, ratio=ratio), rel=1e-9)


def test_required_sample_size_errors():
    with pytest.raises(ValueError, match="non-zero"):
        stats.required_sample_size(0.0)
    with pytest.raises(ValueError, match="alpha < power"):
        stats.required_sample_size(0.5, 0.05, 0.01)
