"""Known answers for vaelib.stats: t-quantiles from a printed table, Wilson's interval by its formula."""

import math

import numpy as np
import pytest

from vaelib import stats

# Student's t, two-sided 95%: t_{0.975} for 4 and 9 degrees of freedom (any statistics table)
T975 = {4: 2.776445, 9: 2.262157}
TABLE = 1e-5  # the table's six digits


def test_mean_interval_matches_the_textbook_formula():
    ci = stats.mean_interval([1, 2, 3, 4, 5])
    half = T975[4] * math.sqrt(2.5) / math.sqrt(5)  # sample sd^2 = 2.5
    assert ci.estimate == 3 and ci.n == 5
    assert ci.lo == pytest.approx(3 - half, abs=TABLE) and ci.hi == pytest.approx(3 + half, abs=TABLE)
    assert ci.excludes_null and stats.verdict(ci) == "higher"
    assert f"{ci:.2f}" == "3.00 [1.04, 4.96]"


def test_paired_difference_is_the_interval_of_the_differences():
    rng = np.random.default_rng(0)
    b = rng.normal(size=10)
    a = b + 0.5 + 0.1 * rng.normal(size=10)
    d = a - b
    ci = stats.paired_difference(a, b)
    half = T975[9] * d.std(ddof=1) / math.sqrt(10)
    assert ci.estimate == pytest.approx(d.mean(), abs=1e-12)
    assert ci.lo == pytest.approx(d.mean() - half, abs=TABLE) and ci.hi == pytest.approx(d.mean() + half, abs=TABLE)
    # unpaired, the seed-to-seed spread of b swamps the same effect: pairing is what resolves it
    assert stats.verdict(ci) == "higher"
    assert stats.difference(a, b).hi - stats.difference(a, b).lo > 5 * (ci.hi - ci.lo)


def test_welch_interval_by_hand():
    a, b = np.array([1.0, 2.0, 3.0, 4.0, 5.0]), np.array([2.0, 2.5, 3.5, 3.0, 2.0, 4.0, 3.0, 2.5, 3.5, 3.0])
    va, vb = a.var(ddof=1) / 5, b.var(ddof=1) / 10
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / 4 + vb**2 / 9)  # Welch-Satterthwaite
    from scipy.stats import t  # only the quantile, for a fractional df that no table prints

    ci = stats.difference(a, b)
    assert ci.estimate == pytest.approx(a.mean() - b.mean(), abs=1e-12)
    assert ci.hi - ci.estimate == pytest.approx(t.ppf(0.975, df) * se, rel=1e-10)
    assert stats.verdict(ci) == "unresolved"


def test_wilson_interval_by_its_formula():
    k, n, z = 7, 10, 1.959964
    p = k / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z / (1 + z**2 / n) * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    ci = stats.proportion_interval(k, n)
    assert ci.estimate == 0.7
    assert ci.lo == pytest.approx(centre - half, abs=TABLE) and ci.hi == pytest.approx(centre + half, abs=TABLE)
    assert stats.proportion_interval(0, 10).lo == 0.0


def test_no_spread_never_gives_a_point_interval():
    # the t-interval is undefined; without bounds that is an error that says what to do
    with pytest.raises(ValueError, match="zero width.*bounds"):
        stats.paired_difference([1.0, 1.0, 1.0], [0.5, 0.5, 0.5])
    with pytest.raises(ValueError, match="zero width"):
        stats.mean_interval([100.0] * 5)
    # with bounds, Hoeffding's interval: half-width (b - a) sqrt(log(2 / 0.05) / (2 n))
    ci = stats.mean_interval([1.0] * 5, bounds=(0, 1))
    half = math.sqrt(math.log(40) / 10)  # 0.6073
    assert (ci.estimate, ci.hi) == (1.0, 1.0) and ci.lo == pytest.approx(1 - half, abs=1e-12)
    assert ci.hi - ci.lo > 0.6 and ci.p == pytest.approx(2 * math.exp(-10), rel=1e-12)
    # a paired difference of values in [0, 1] lies in [-1, 1]: width 2
    d = stats.paired_difference([1.0] * 8, [0.5] * 8, bounds=(0, 1))
    assert d.lo == pytest.approx(0.5 - 2 * math.sqrt(math.log(40) / 16), abs=1e-12) and d.hi == 1.0
    assert stats.verdict(d) == "unresolved"  # 8 seeds of +0.5 do not exclude zero distribution-free
    # spread, however small, keeps the t-interval (bounds are ignored)
    assert stats.mean_interval([1.0, 1.0, 0.99], bounds=(0, 1)).lo > 0.9
    with pytest.raises(ValueError, match="outside bounds"):
        stats.mean_interval([1.0, 2.0], bounds=(0, 1))
    with pytest.raises(TypeError, match="pair"):
        stats.mean_interval([1.0, 1.0], bounds=1)


def test_p_values_are_the_tests_the_intervals_invert():
    from scipy.stats import ttest_1samp, ttest_rel

    a, b = np.array([1.0, 2.5, 3.0, 2.0, 4.0]), np.array([0.5, 2.0, 3.5, 1.0, 2.5])
    assert stats.mean_interval(a).p == pytest.approx(ttest_1samp(a, 0).pvalue, rel=1e-12)
    assert stats.paired_difference(a, b).p == pytest.approx(ttest_rel(a, b).pvalue, rel=1e-12)
    # at the interval's edge the p-value is the error rate: shift the data to put lo on zero
    ci = stats.mean_interval(a)
    assert stats.mean_interval(a - ci.lo).p == pytest.approx(0.05, abs=1e-9)
    # Wilson's interval inverts the score test against one half: 5 of 5 gives z = sqrt(5)
    share = stats.proportion_interval(5, 5)
    assert share.null == 0.5 and share.p == pytest.approx(2 * (1 - 0.987326), abs=1e-5)  # Phi(2.236) from a table
    assert share.lo > 0.5 and stats.verdict(share) == "higher"
    assert stats.verdict(stats.proportion_interval(3, 5)) == "unresolved"


def test_sign_flip_interval_by_hartigan_subset_means():
    # n = 8: 256 sign patterns; k = floor(0.025 * 256) = 6, level 1 - 12/256
    rng = np.random.default_rng(3)
    d = rng.normal(1.0, 1.0, size=8)
    ci = stats.sign_flip_difference(d, np.zeros(8))
    subset_means = sorted(
        sum(d[i] for i in range(8) if m >> i & 1) / bin(m).count("1") for m in range(1, 256)
    )
    assert (ci.lo, ci.hi) == (pytest.approx(subset_means[5]), pytest.approx(subset_means[-6]))
    assert ci.confidence == 1 - 12 / 256 and ci.estimate == pytest.approx(d.mean())
    # all eight differences positive: only the two all-equal-sign patterns reach |sum|: p = 2/256
    pos = np.array([0.3, 1.0, 0.7, 2.0, 0.1, 0.4, 1.5, 0.9])
    assert stats.sign_flip_difference(pos, np.zeros(8)).p == pytest.approx(2 / 256)
    # symmetric data around zero: the sign-flip p is large
    sym = np.array([-1.0, 1.0, -2.0, 2.0, -0.5, 0.5, -3.0, 3.0])
    assert stats.sign_flip_difference(sym, np.zeros(8)).p == 1.0
    with pytest.raises(ValueError, match="at least 6 seeds"):
        stats.sign_flip_difference(pos[:5], np.zeros(5))


def test_pooled_proportion_wilson_and_overdispersion():
    # five seeds, 360 trials each, all right: Wilson at n = 1800, lower end 1 - z^2 / (n + z^2)
    ci = stats.pooled_proportion([360] * 5, [360] * 5)
    z2 = 1.959964**2
    assert ci.estimate == 1.0 and ci.hi == 1.0 and ci.lo == pytest.approx(1 - z2 / (1800 + z2), abs=1e-6)
    # equal shares in every seed: no extra spread, the pooled Wilson interval
    same = stats.pooled_proportion([70, 70], [100, 100])
    ref = stats.proportion_interval(140, 200)
    assert (same.lo, same.hi) == (pytest.approx(ref.lo, abs=1e-9), pytest.approx(ref.hi, abs=1e-9))
    # shares of 0.5 and 0.9 (pooled 0.7): chi^2 = 2 * 20^2 / (100 * 0.21) on 1 degree of freedom,
    # so Wilson's interval at n = 200 / phi = 5.25 trials, by its formula
    wide = stats.pooled_proportion([50, 90], [100, 100])
    n_eff, z = 200 / (800 / 21), 1.959964
    centre = (0.7 + z**2 / (2 * n_eff)) / (1 + z**2 / n_eff)
    half = z / (1 + z**2 / n_eff) * math.sqrt(0.21 / n_eff + z**2 / (4 * n_eff**2))
    assert wide.lo == pytest.approx(centre - half, abs=TABLE) and wide.hi == pytest.approx(centre + half, abs=TABLE)
    assert wide.hi - wide.lo > 4 * (ref.hi - ref.lo)  # the seeds disagree: far less evidence
    with pytest.raises(ValueError, match="hits <= trials"):
        stats.pooled_proportion([5, 11], [10, 10])


def test_holm_by_hand():
    def iv(p, est=1.0):
        return stats.Interval(est, est - 1, est + 1, 8, 0.95, p)

    # m = 4: thresholds 0.0125, 0.0167, 0.025, 0.05 in order of p
    fam = {"a": iv(0.010), "b": iv(0.04, -1.0), "c": iv(0.013), "d": iv(0.03)}
    assert stats.holm(fam) == {"a": "higher", "b": "unresolved", "c": "higher", "d": "unresolved"}
    # step-down: once one fails, every larger p fails, even one below its own threshold
    fam = {"a": iv(0.02), "b": iv(0.024), "c": iv(0.049)}
    assert stats.holm(fam) == {"a": "unresolved", "b": "unresolved", "c": "unresolved"}
    assert stats.holm({"b": iv(0.04, -1.0)}) == {"b": "lower"}  # a family of one: unadjusted
    with pytest.raises(ValueError, match="no p-value"):
        stats.holm({"x": stats.Interval(1.0, 0.5, 1.5, 5, 0.95)})


def test_directed_keeps_a_claim_that_points_the_declared_way_and_voids_one_that_does_not():
    up = stats.Interval(0.8, 0.3, 1.3, 8, 0.95, 0.004)
    assert stats.directed(up, 1) is up
    assert stats.directed(up, -1) == up._replace(p=1.0)  # declared below, measured above: p = 1
    # the direction is read against the interval's null (one half for a share of seeds)
    share = stats.Interval(0.4, 0.2, 0.6, 10, 0.95, 0.3, 0.5)
    assert stats.directed(share, -1).p == 0.3 and stats.directed(share, 1).p == 1.0
    # Holm never counts an effect in the other direction as the claim holding
    assert stats.holm({"a": stats.directed(up, -1)}) == {"a": "unresolved"}
    with pytest.raises(ValueError, match=r"sign must be \+1 .* or -1 .*; got 0"):
        stats.directed(up, 0)
    with pytest.raises(TypeError, match="interval must be an Interval; got tuple"):
        stats.directed((0.8, 0.3, 1.3), 1)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="at least 2"):
        stats.mean_interval([1.0])
    with pytest.raises(ValueError, match="one value per seed"):
        stats.paired_difference([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="NaN"):
        stats.mean_interval([1.0, float("nan")])
    with pytest.raises(ValueError, match="confidence"):
        stats.mean_interval([1, 2], confidence=95)
    with pytest.raises(ValueError, match="k <= n"):
        stats.proportion_interval(11, 10)
    with pytest.raises(TypeError, match="ints"):
        stats.proportion_interval(0.5, 10)
    with pytest.raises(TypeError, match="Interval"):
        stats.verdict((0.0, 1.0, 2.0))


def test_book_interval_text_and_verdict():
    from vaelib.book import interval_text, verdict_text

    iv = stats.Interval(0.1234, 0.05, 0.2, 5, 0.95)
    assert interval_text(iv) == "0.123 [0.050, 0.200]"
    assert interval_text(iv, ".1f", scale=100) == "12.3 [5.0, 20.0]"
    assert verdict_text(iv) == "resolved: above zero"
    assert verdict_text(stats.Interval(-0.3, -0.5, -0.1, 5, 0.95)) == "resolved: below zero"
    assert verdict_text(stats.Interval(0.1, -0.05, 0.2, 5, 0.95)).startswith("not resolved")
    with pytest.raises(TypeError, match="Interval"):
        interval_text((0.1, 0.0, 0.2))


def test_glued_numbers_are_python_numbers():
    from vaelib.book import plain

    for v, expected in ((np.float64(0.25), 0.25), (np.float32(0.5), 0.5), (np.int64(3), 3), (np.bool_(True), True)):
        out = plain(v)
        assert type(out) is type(expected) and out == expected
        assert repr(out) == repr(expected)  # "0.25", not "np.float64(0.25)": what {glue:text} formats
    arr = np.array([1.0, 2.0])
    assert plain(arr) is arr and plain("text") == "text" and plain(1.5) == 1.5
    import torch

    assert repr(plain(torch.tensor(0.5))) == "0.5" and plain(torch.ones(2)).shape == (2,)


def test_test_set_variance_adds_to_the_seeds():
    # d[s, i] = 1 + alpha_s + beta_i exactly: var_s(alpha)/S + var_i(beta)/N, t with S - 1 = 4 df
    alpha = np.array([-0.2, 0.1, 0.0, 0.3, -0.2])
    beta = np.linspace(-1, 1, 11)
    a = 1 + alpha[:, None] + beta[None, :]
    b = np.zeros_like(a)
    ci = stats.paired_difference_with_test_set(a, b)
    se = math.sqrt(alpha.var(ddof=1) / 5 + beta.var(ddof=1) / 11)
    assert ci.estimate == pytest.approx(1.0) and ci.n == 5
    assert ci.hi - ci.estimate == pytest.approx(T975[4] * se, abs=TABLE)
    # wider than the seeds alone, which treat the test set as fixed
    seeds_only = stats.paired_difference(a.mean(1), b.mean(1))
    assert ci.hi - ci.lo > seeds_only.hi - seeds_only.lo
    with pytest.raises(ValueError, match="seeds, items"):
        stats.paired_difference_with_test_set(a[0], b[0])
