"""Comparing two groups of models: the thesis's test rule, effect sizes, power, corrections.

The thesis compared model-level scores of a cross-entropy (CCE) group with a heatmap-loss group:
Shapiro–Wilk on each group (alpha 0.05); if either group is non-normal, a two-sided
Mann–Whitney U test (asymptotic p with continuity and tie correction), otherwise a t-test;
Cohen's d with the pooled standard deviation and the common-language effect size. This module
implements exactly that, adds what a reader needs to judge it (exact p, rank-biserial
correlation, a bootstrap confidence interval), and fails loudly on input where a quantity is
undefined. Only numpy/scipy/statsmodels/pandas: no TensorFlow.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Mapping, NamedTuple, Sequence

import numpy as np
import pandas as pd
from scipy import optimize
from scipy import stats as sps

#: Both groups at most this large and no ties: ``p_exact`` is computed (scipy's exact
#: distribution is fast there; beyond it the asymptotic p is accurate anyway).
EXACT_MAX_N = 50

#: Shapiro–Wilk needs at least this many values per group.
SHAPIRO_MIN_N = 3


class UndefinedStatisticError(ValueError):
    """A statistic is undefined for the given data (e.g. constant groups)."""


@dataclass(frozen=True)
class GroupComparison:
    """Result of :func:`compare_groups` (group x first, group y second in every pair).

    Attributes:
        n: group sizes.
        means: group means.
        sds: group standard deviations (ddof 1).
        medians: group medians.
        shapiro_p: Shapiro–Wilk p-value of each group.
        alpha: significance level of the normality checks.
        test: ``"mannwhitneyu"`` if either group fails Shapiro–Wilk at ``alpha``, else
            ``"ttest"`` (Student's, pooled variance) — the thesis's rule.
        statistic: U of group x (MWU) or t (t-test), for the chosen test.
        p_value: two-sided p of the chosen test; MWU: asymptotic, continuity and tie corrected.
        p_exact: exact two-sided MWU p when both groups have at most ``EXACT_MAX_N`` values
            and there are no ties; else ``None``.
        mwu_u, mwu_p: the Mann–Whitney U of group x and its asymptotic p, whatever the rule chose.
        t_statistic, t_p: Student's t and its two-sided p, whatever the rule chose.
        welch_p: Welch's t-test p (unequal variances), for reference.
        cohens_d: (mean x − mean y) / pooled SD (ddof 1, no Hedges correction).
        cles: common-language effect size P(x > y) + ½ P(x = y) over all pairs.
        rank_biserial: 2·cles − 1, in [−1, 1]; positive when x tends to be larger.
        diff_ci: bootstrap percentile 95 % CI of mean x − mean y (groups resampled
            independently).
        n_boot: bootstrap resamples used for ``diff_ci``.
        seed: bootstrap seed.
    """

    n: tuple[int, int]
    means: tuple[float, float]
    sds: tuple[float, float]
    medians: tuple[float, float]
    shapiro_p: tuple[float, float]
    alpha: float
    test: str
    statistic: float
    p_value: float
    p_exact: float | None
    mwu_u: float
    mwu_p: float
    t_statistic: float
    t_p: float
    welch_p: float
    cohens_d: float
    cles: float
    rank_biserial: float
    diff_ci: tuple[float, float]
    n_boot: int
    seed: int

    @property
    def normal(self) -> bool:
        """True when both groups pass Shapiro–Wilk at ``alpha``."""
        return min(self.shapiro_p) >= self.alpha

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (tuples become lists, numpy scalars plain floats)."""
        out = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            out[field.name] = list(value) if isinstance(value, tuple) else value
        out["normal"] = self.normal
        return out


def _as_group(values: Any, name: str) -> np.ndarray:
    """Validate one group: 1-D, non-empty, finite; return it as float64."""
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"group {name} must be 1-D, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"group {name} is empty: need at least {SHAPIRO_MIN_N} values")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        shown = ", ".join(str(i) for i in bad[:20]) + (", ..." if bad.size > 20 else "")
        raise ValueError(
            f"group {name} has {bad.size} non-finite value(s) (NaN/inf) of {arr.size}, at "
            f"position(s) {shown}; drop them first (e.g. models with a NaN class average)"
        )
    return arr


def _check_for_normality_test(arr: np.ndarray, name: str) -> None:
    if arr.size < SHAPIRO_MIN_N:
        raise ValueError(
            f"group {name} has {arr.size} value(s); the Shapiro-Wilk test of the thesis's rule "
            f"needs at least {SHAPIRO_MIN_N}"
        )
    if np.ptp(arr) == 0:
        raise UndefinedStatisticError(
            f"group {name} is constant (all {arr.size} values = {arr[0]:g}): the Shapiro-Wilk "
            "normality test, and with it the choice of test, is undefined"
        )


def cohens_d(x: Any, y: Any) -> float:
    """Cohen's d = (mean x − mean y) / pooled SD (ddof 1, no Hedges correction).

    Args:
        x, y: the two groups (each at least 1 value, together at least 3).

    Returns:
        The effect size.

    Raises:
        UndefinedStatisticError: when the pooled SD is 0 (both groups constant).
    """
    x, y = _as_group(x, "x"), _as_group(y, "y")
    n1, n2 = x.size, y.size
    if n1 + n2 < 3:
        raise ValueError(f"cohens_d needs at least 3 values in total, got {n1} + {n2}")
    var1 = x.var(ddof=1) if n1 > 1 else 0.0
    var2 = y.var(ddof=1) if n2 > 1 else 0.0
    pooled = math.sqrt(((n1 - 1) * var1 + (n2 - 1) * var2) / (n1 + n2 - 2))
    if pooled == 0:
        raise UndefinedStatisticError(
            "Cohen's d is undefined: both groups are constant (pooled standard deviation 0)"
        )
    return float((x.mean() - y.mean()) / pooled)


def cles(x: Any, y: Any) -> float:
    """Common-language effect size: P(x > y) + ½ P(x = y) over all pairs (x_i, y_j).

    Args:
        x, y: the two groups.

    Returns:
        A probability in [0, 1]; 0.5 means no tendency either way.
    """
    x, y = _as_group(x, "x"), _as_group(y, "y")
    diff = x[:, None] - y[None, :]
    return float((np.count_nonzero(diff > 0) + 0.5 * np.count_nonzero(diff == 0)) / diff.size)


def bootstrap_diff_ci(x: Any, y: Any, *, n_boot: int = 10_000, confidence: float = 0.95,
                      seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI of mean x − mean y, resampling each group independently.

    Args:
        x, y: the two groups.
        n_boot: number of resamples.
        confidence: coverage of the interval.
        seed: seed of the resampling (same seed, same interval).

    Returns:
        (low, high).
    """
    x, y = _as_group(x, "x"), _as_group(y, "y")
    if n_boot < 100:
        raise ValueError(f"n_boot={n_boot}: use at least 100 resamples")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence={confidence}: must be in (0, 1)")
    rng = np.random.default_rng(seed)
    diffs = (x[rng.integers(0, x.size, (n_boot, x.size))].mean(axis=1)
             - y[rng.integers(0, y.size, (n_boot, y.size))].mean(axis=1))
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(diffs, [tail, 100 - tail])
    return float(low), float(high)


def compare_groups(x: Any, y: Any, alpha: float = 0.05, *, n_boot: int = 10_000,
                   seed: int = 0) -> GroupComparison:
    """Compare two groups of model scores with the thesis's rule and report effect sizes.

    Args:
        x: scores of the first group (the thesis: CCE models).
        y: scores of the second group (the thesis: heatmap-loss models).
        alpha: significance level of the Shapiro–Wilk normality checks.
        n_boot: bootstrap resamples for the CI of the difference in means.
        seed: bootstrap seed.

    Returns:
        A :class:`GroupComparison`; signs follow "x minus y".

    Raises:
        ValueError: empty group, non-finite values (count and positions given), fewer than 3
            values in a group, bad ``alpha``.
        UndefinedStatisticError: a constant group (normality test and effect sizes undefined).
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha={alpha}: must be in (0, 1)")
    x, y = _as_group(x, "x"), _as_group(y, "y")
    _check_for_normality_test(x, "x")
    _check_for_normality_test(y, "y")
    shapiro_p = (float(sps.shapiro(x).pvalue), float(sps.shapiro(y).pvalue))
    normal = min(shapiro_p) >= alpha

    mwu = sps.mannwhitneyu(x, y, alternative="two-sided", method="asymptotic",
                           use_continuity=True)
    ties = np.unique(np.concatenate([x, y])).size < x.size + y.size
    p_exact = None
    if not ties and max(x.size, y.size) <= EXACT_MAX_N:
        p_exact = float(sps.mannwhitneyu(x, y, alternative="two-sided", method="exact").pvalue)
    student = sps.ttest_ind(x, y, equal_var=True)
    welch = sps.ttest_ind(x, y, equal_var=False)
    effect = cles(x, y)

    chosen = (float(student.statistic), float(student.pvalue)) if normal else (
        float(mwu.statistic), float(mwu.pvalue))
    return GroupComparison(
        n=(int(x.size), int(y.size)),
        means=(float(x.mean()), float(y.mean())),
        sds=(float(x.std(ddof=1)), float(y.std(ddof=1))),
        medians=(float(np.median(x)), float(np.median(y))),
        shapiro_p=shapiro_p,
        alpha=float(alpha),
        test="ttest" if normal else "mannwhitneyu",
        statistic=chosen[0],
        p_value=chosen[1],
        p_exact=p_exact,
        mwu_u=float(mwu.statistic),
        mwu_p=float(mwu.pvalue),
        t_statistic=float(student.statistic),
        t_p=float(student.pvalue),
        welch_p=float(welch.pvalue),
        cohens_d=cohens_d(x, y),
        cles=effect,
        rank_biserial=2 * effect - 1,
        diff_ci=bootstrap_diff_ci(x, y, n_boot=n_boot, seed=seed),
        n_boot=int(n_boot),
        seed=int(seed),
    )


def iqr_mask(values: Any, k: float) -> np.ndarray:
    """Boolean mask of values strictly inside the Tukey fences [Q1 − k·IQR, Q3 + k·IQR].

    Quartiles are numpy's default (linear interpolation). Strict inequalities, as in the
    thesis: when IQR = 0, values equal to the quartile are dropped too.

    Args:
        values: 1-D finite values.
        k: fence multiplier (the thesis used 1.5 and 5).

    Returns:
        Mask of the values to keep.
    """
    if not k > 0:
        raise ValueError(f"k={k}: the fence multiplier must be positive")
    arr = _as_group(values, "values")
    q1, q3 = np.percentile(arr, [25, 75])
    spread = q3 - q1
    return (arr > q1 - k * spread) & (arr < q3 + k * spread)


def iqr_filter(values: Any, k: float) -> np.ndarray:
    """Return the values strictly inside the Tukey fences (see :func:`iqr_mask`).

    Args:
        values: 1-D finite values.
        k: fence multiplier.

    Returns:
        The kept values, in their original order.
    """
    arr = np.asarray(values, dtype=float)
    return arr[iqr_mask(arr, k)]


def ttest_ind_power(d: float, n1: float, alpha: float = 0.05, ratio: float = 1.0) -> float:
    """Power of the two-sided two-sample t-test (pooled variance) for effect size ``d``.

    Both tails are computed as upper tails of the noncentral t (the lower one with the sign of
    the noncentrality flipped), because scipy 1.17's ``nct.cdf`` returns NaN far in the lower
    tail, which makes statsmodels' ``TTestIndPower`` (0.15) return n = 2.0 for d = 7.6.

    Args:
        d: standardised effect size.
        n1: size of group 1 (may be fractional while solving).
        alpha: two-sided significance level.
        ratio: n2 / n1.

    Returns:
        The power in [0, 1].
    """
    n2 = ratio * n1
    df = n1 + n2 - 2
    noncentrality = d * math.sqrt(n1 * n2 / (n1 + n2))
    crit = sps.t.isf(alpha / 2, df)
    return float(sps.nct.sf(crit, df, noncentrality) + sps.nct.sf(crit, df, -noncentrality))


def required_sample_size(d: float, alpha: float = 0.05, power: float = 0.8,
                         ratio: float = 1.0) -> float:
    """Group size needed by a two-sided two-sample t-test to detect effect size ``d``.

    Same power function as statsmodels' ``TTestIndPower`` (checked against it in the tests
    where it is finite), solved with Brent's method. The thesis: d = 7.6, alpha 0.05,
    power 0.9999 → 2.69, i.e. 3 models per group (round up).

    Args:
        d: standardised effect size (sign ignored).
        alpha: two-sided significance level.
        power: wanted power, in (alpha, 1).
        ratio: n2 / n1.

    Returns:
        The (fractional) size of group 1; round up for a plan.
    """
    if d == 0 or not math.isfinite(d):
        raise ValueError(f"d={d}: the effect size must be finite and non-zero")
    if not 0 < alpha < 1 or not alpha < power < 1:
        raise ValueError(f"alpha={alpha}, power={power}: need 0 < alpha < power < 1")
    if not ratio > 0:
        raise ValueError(f"ratio={ratio}: must be positive")
    d = abs(d)
    low = 2.0 / min(1.0, ratio) + 1e-9  # at least 2 per group leaves df >= 2
    if ttest_ind_power(d, low, alpha, ratio) >= power:
        return low
    high = low * 2
    while ttest_ind_power(d, high, alpha, ratio) < power:
        high *= 2
        if high > 1e9:
            raise ValueError(f"d={d}: effect too small to reach power {power}")
    return float(optimize.brentq(lambda n: ttest_ind_power(d, n, alpha, ratio) - power,
                                 low, high, xtol=1e-10))


class HolmResult(NamedTuple):
    """Holm–Bonferroni step-down correction of a family of tests."""

    reject: np.ndarray
    p_adjusted: np.ndarray


def holm(p_values: Sequence[float], alpha: float = 0.05) -> HolmResult:
    """Holm–Bonferroni correction (statsmodels ``multipletests(method="holm")``).

    Args:
        p_values: the family's p-values, each in [0, 1].
        alpha: family-wise error rate.

    Returns:
        ``HolmResult(reject, p_adjusted)`` in the input order.
    """
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(p_values, dtype=float)
    if p.ndim != 1 or p.size == 0:
        raise ValueError(f"p_values must be a non-empty 1-D sequence, got shape {p.shape}")
    if np.any(~np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError(f"p_values must lie in [0, 1], got {p.tolist()}")
    reject, adjusted, _, _ = multipletests(p, alpha=alpha, method="holm")
    return HolmResult(np.asarray(reject, dtype=bool), np.asarray(adjusted, dtype=float))


def comparison_table(comparisons: Mapping[str, GroupComparison],
                     group_names: tuple[str, str] = ("CCE", "HM")) -> pd.DataFrame:
    """One row per comparison with the thesis's columns, for display and CSV.

    Args:
        comparisons: label → result, in display order.
        group_names: short names of groups x and y for the column headers.

    Returns:
        A DataFrame indexed by label (numbers unrounded; format when displaying).
    """
    a, b = group_names
    rows = []
    for label, c in comparisons.items():
        rows.append({
            "comparison": label, f"n {a}": c.n[0], f"n {b}": c.n[1],
            f"mean {a}": c.means[0], f"mean {b}": c.means[1],
            f"Shapiro p {a}": c.shapiro_p[0], f"Shapiro p {b}": c.shapiro_p[1],
            "test": c.test, "statistic": c.statistic, "p": c.p_value,
            "MWU U": c.mwu_u, "MWU p": c.mwu_p, "MWU exact p": c.p_exact, "t-test p": c.t_p,
            "CLES": c.cles, "rank-biserial": c.rank_biserial, "Cohen's d": c.cohens_d,
            "diff CI low": c.diff_ci[0], "diff CI high": c.diff_ci[1],
        })
    return pd.DataFrame(rows).set_index("comparison")


__all__ = [
    "EXACT_MAX_N", "GroupComparison", "HolmResult", "UndefinedStatisticError",
    "bootstrap_diff_ci", "cles", "cohens_d", "compare_groups", "comparison_table", "holm",
    "iqr_filter", "iqr_mask", "required_sample_size", "ttest_ind_power",
]
