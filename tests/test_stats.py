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
    assert ci.excludes_zero and stats.verdict(ci) == "higher"
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


def test_no_spread_gives_a_point_interval():
    ci = stats.paired_difference([1.0, 1.0, 1.0], [0.5, 0.5, 0.5])
    assert (ci.lo, ci.estimate, ci.hi) == (0.5, 0.5, 0.5) and stats.verdict(ci) == "higher"


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
