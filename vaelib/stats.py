"""Statistics for claims made over seeds: means and differences with 95% intervals (scipy.stats).

A comparison in the book is declared before it runs (which arms, which statistic), made over
several seeds, and reported as a mean with a confidence interval. These functions wrap
``scipy.stats`` so that every chapter computes its intervals the same way:

* :func:`mean_interval` -- a t-interval for the mean of one arm,
* :func:`paired_difference` -- arms that share their seeds (same data order, same noise):
  a t-interval for the mean of the per-seed differences (``scipy.stats.ttest_rel``),
* :func:`paired_difference_with_test_set` -- the same, when each seed's value is a mean over one
  shared test set: the interval also counts the variation another test set would bring,
* :func:`difference` -- arms that do not: Welch's t-interval (``scipy.stats.ttest_ind``),
* :func:`sign_flip_difference` -- the paired difference again, without the normal assumption:
  the exact interval of the sign-flip permutation test (Hartigan's subset means),
* :func:`proportion_interval` -- a fraction of seeds (Wilson's interval, ``scipy.stats.binomtest``),
* :func:`pooled_proportion` -- a share of trials pooled over seeds (e.g. test images classified
  right), Wilson's interval widened by the seeds' extra-binomial spread,
* :func:`verdict` -- "higher", "lower" or "unresolved": whether the interval excludes its null value,
* :func:`holm` -- the verdicts of a family of claims after Holm's step-down adjustment.

**What an interval is about.** An interval over seeds describes the population of *training runs*
(initialisations, batch orders, noise), for one data split, one test set and, where a classifier
scores the models, one classifier. It does not include the variation that another test set would
bring; a claim about VAEs in general needs that too.

**Never zero width.** When every seed gives the same value the t-interval is undefined, and a
point "interval" would claim certainty that five runs cannot give. Such values raise an error
unless the caller states the values' ``bounds``; then the interval is Hoeffding's, which holds for
any distribution on those bounds. Shares of trials belong in :func:`pooled_proportion`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np
from scipy import stats as _st

__all__ = ["Interval", "mean_interval", "paired_difference", "paired_difference_with_test_set",
           "difference", "sign_flip_difference",
           "proportion_interval", "pooled_proportion", "verdict", "holm", "directed"]


class Interval(NamedTuple):
    """An estimate with its confidence interval: ``lo <= estimate <= hi`` at level ``confidence``.

    ``p`` is the two-sided p-value of the test against ``null`` that the interval inverts (NaN where
    none was computed); ``null`` is the value a verdict is made against (0 for a difference, one
    half for a share of seeds)."""

    estimate: float
    lo: float
    hi: float
    n: int
    confidence: float
    p: float = math.nan
    null: float = 0.0

    @property
    def excludes_null(self) -> bool:
        return self.lo > self.null or self.hi < self.null

    def __format__(self, spec: str) -> str:
        spec = spec or ".3g"
        return f"{self.estimate:{spec}} [{self.lo:{spec}}, {self.hi:{spec}}]"


def _values(name, values, min_n=2) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sequence of numbers; got shape {v.shape}")
    if len(v) < min_n:
        raise ValueError(f"{name} needs at least {min_n} values for an interval; got {len(v)}")
    if not np.isfinite(v).all():
        raise ValueError(f"{name} contains NaN or infinity: {v.tolist()}")
    return v


def _check_confidence(confidence):
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie strictly between 0 and 1; got {confidence}")


def _check_bounds(bounds, *samples):
    if bounds is None:
        return None
    try:
        low, high = (float(b) for b in bounds)
    except (TypeError, ValueError):
        raise TypeError(f"bounds must be a pair (low, high) of numbers; got {bounds!r}") from None
    if not low < high:
        raise ValueError(f"bounds must have low < high; got {bounds!r}")
    for v in samples:
        if v.min() < low or v.max() > high:
            raise ValueError(f"values {v.tolist()} lie outside bounds {bounds!r}")
    return low, high


def _hoeffding(estimate, n, width, confidence, clip) -> Interval:
    """Hoeffding's interval for a mean of n independent values in a range of ``width``:
    P(|mean - mu| >= t) <= 2 exp(-2 n t^2 / width^2), whatever their distribution."""
    half = width * math.sqrt(math.log(2 / (1 - confidence)) / (2 * n))
    p = min(1.0, 2 * math.exp(-2 * n * estimate**2 / width**2))
    lo, hi = max(estimate - half, clip[0]), min(estimate + half, clip[1])
    return Interval(float(estimate), lo, hi, n, confidence, p)


def _interval(test, estimate, n, confidence, samples, bounds, width, clip) -> Interval:
    """``test()``'s t-interval, or Hoeffding's where the samples have no spread (t is undefined)."""
    if all(np.ptp(s) == 0 for s in samples):
        if bounds is None:
            raise ValueError(
                f"every seed gives the same value ({float(estimate):g}), so a t-interval would have zero "
                "width; pass bounds=(low, high), the range the values can take, for Hoeffding's "
                "interval, or use pooled_proportion for a share of trials")
        return _hoeffding(estimate, n, width, confidence, clip)
    res = test()
    ci = res.confidence_interval(confidence_level=confidence)
    return Interval(float(estimate), float(ci.low), float(ci.high), n, confidence, float(res.pvalue))


def mean_interval(values, confidence: float = 0.95, bounds=None) -> Interval:
    """The mean of ``values`` (one per seed) with Student's t-interval (``ttest_1samp``).

    ``bounds=(low, high)``: the range the values can take, used only when they have no spread."""
    _check_confidence(confidence)
    v = _values("values", values)
    b = _check_bounds(bounds, v)
    width, clip = (b[1] - b[0], b) if b else (None, None)
    return _interval(lambda: _st.ttest_1samp(v, 0.0), v.mean(), len(v), confidence, [v], b, width, clip)


def paired_difference(a, b, confidence: float = 0.95, bounds=None) -> Interval:
    """mean(a - b) over seeds with its t-interval; ``a[i]`` and ``b[i]`` share seed i (``ttest_rel``).

    ``bounds=(low, high)``: the range each of ``a`` and ``b`` can take, used only when the
    differences have no spread."""
    _check_confidence(confidence)
    a, b = _values("a", a), _values("b", b)
    if a.shape != b.shape:
        raise ValueError(f"paired arms need one value per seed in each; got {len(a)} and {len(b)}")
    bb = _check_bounds(bounds, a, b)
    width, clip = (2 * (bb[1] - bb[0]), (bb[0] - bb[1], bb[1] - bb[0])) if bb else (None, None)
    return _interval(lambda: _st.ttest_rel(a, b), float((a - b).mean()), len(a), confidence, [a - b], bb,
                     width, clip)


def paired_difference_with_test_set(a, b, confidence: float = 0.95) -> Interval:
    """mean(a - b) over seeds *and* test items, for a claim about new seeds and a new test set.

    ``a[s, i]`` and ``b[s, i]`` are item i's value (e.g. its ELBO) under the models of seed s; every
    seed is scored on the same items. :func:`paired_difference` of the per-seed means treats the
    test set as fixed. Here, with d = a - b, the variance of the grand mean is estimated as
    ``var_s(mean_i d) / S + var_i(mean_s d) / N`` (the seed part, plus the items' part that a
    different test set would change); under an additive two-way model this is unbiased up to one
    extra residual term ``sigma^2 / (S N)``, so slightly conservative. The interval is Student's t
    with S - 1 degrees of freedom, as for the seeds alone."""
    _check_confidence(confidence)
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(f"a and b must be (seeds, items) arrays of one shape; got {a.shape} and {b.shape}")
    n_seeds, n_items = a.shape
    if n_seeds < 2 or n_items < 2:
        raise ValueError(f"need at least 2 seeds and 2 items; got {n_seeds} and {n_items}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("a or b contains NaN or infinity")
    d = a - b
    var = d.mean(1).var(ddof=1) / n_seeds + d.mean(0).var(ddof=1) / n_items
    est = float(d.mean())
    if var == 0:
        raise ValueError(f"every seed and item gives the same difference ({est:g}): no interval")
    se, df = math.sqrt(var), n_seeds - 1
    half = float(_st.t.ppf(1 - (1 - confidence) / 2, df)) * se
    p = float(2 * _st.t.sf(abs(est) / se, df))
    return Interval(est, est - half, est + half, int(n_seeds), confidence, p)


def difference(a, b, confidence: float = 0.95, bounds=None) -> Interval:
    """mean(a) - mean(b) for arms with independent seeds, with Welch's t-interval (``ttest_ind``).

    With ``bounds`` and no spread in either arm, Hoeffding's interval for the two means, each at
    half the error rate."""
    _check_confidence(confidence)
    a, b = _values("a", a), _values("b", b)
    bb = _check_bounds(bounds, a, b)
    est = float(a.mean() - b.mean())
    if bb is not None and np.ptp(a) == 0 and np.ptp(b) == 0:
        level = 1 - (1 - confidence) / 2
        ia = _hoeffding(a.mean(), len(a), bb[1] - bb[0], level, bb)
        ib = _hoeffding(b.mean(), len(b), bb[1] - bb[0], level, bb)
        return Interval(est, ia.lo - ib.hi, ia.hi - ib.lo, len(a) + len(b), confidence)  # no p
    return _interval(lambda: _st.ttest_ind(a, b, equal_var=False), est, len(a) + len(b), confidence,
                     [a, b], bb, None, None)


MAX_SIGN_FLIP_N = 16  # 2**16 sign patterns and subset means: exact and still fast


def sign_flip_difference(a, b, confidence: float = 0.95) -> Interval:
    """mean(a - b) with the exact interval of the sign-flip permutation test.

    It assumes only that each seed's difference is symmetric about the true mean (no normality).
    By Hartigan's theorem (1969) the true mean falls in each of the 2**n intervals between the
    ordered means of the 2**n - 1 non-empty subsets of the differences with probability 2**-n; the
    interval from the k-th smallest to the k-th largest has level 1 - 2k / 2**n, and k is the
    largest for which that level is at least ``confidence``. At 95% that needs n >= 6 seeds.
    ``p`` is the exact two-sided sign-flip p-value of mean zero.
    """
    _check_confidence(confidence)
    a, b = _values("a", a), _values("b", b)
    if a.shape != b.shape:
        raise ValueError(f"paired arms need one value per seed in each; got {len(a)} and {len(b)}")
    d, n = a - b, len(a)
    if n > MAX_SIGN_FLIP_N:
        raise ValueError(f"sign_flip_difference enumerates 2**n patterns; n must be at most "
                         f"{MAX_SIGN_FLIP_N}, got {n}")
    k = math.floor((1 - confidence) / 2 * 2**n)
    if k < 1:
        need = math.ceil(math.log2(2 / (1 - confidence)))
        raise ValueError(f"a {confidence:.0%} sign-flip interval needs at least {need} seeds; got {n}")
    masks = (np.arange(1, 2**n)[:, None] >> np.arange(n)) & 1  # every non-empty subset
    means = np.sort(masks @ d / masks.sum(1))
    signs = 1 - 2 * ((np.arange(2**n)[:, None] >> np.arange(n)) & 1)
    sums = np.abs(signs @ d)
    p = float(np.mean(sums >= abs(d.sum()) * (1 - 1e-12)))  # round-off of equal sums counts as equal
    return Interval(float(d.mean()), float(means[k - 1]), float(means[-k]), n, 1 - 2 * k / 2**n, p)


def proportion_interval(k: int, n: int, confidence: float = 0.95) -> Interval:
    """A fraction k/n (e.g. of seeds in which a claim holds) with Wilson's score interval
    (``binomtest``). Its null is one half ("in most seeds"), and ``p`` is the score test's, the
    test that Wilson's interval inverts."""
    _check_confidence(confidence)
    if isinstance(k, bool) or isinstance(n, bool) or not isinstance(k, (int, np.integer)) \
            or not isinstance(n, (int, np.integer)):
        raise TypeError(f"k and n must be ints; got {type(k).__name__} and {type(n).__name__}")
    if n < 1 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n and n >= 1; got k={k}, n={n}")
    ci = _st.binomtest(int(k), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    p = float(2 * _st.norm.sf(abs(k / n - 0.5) / math.sqrt(0.25 / n)))
    return Interval(k / n, float(ci.low), float(ci.high), int(n), confidence, p, 0.5)


def _wilson(share, n, confidence):
    z = _st.norm.ppf(1 - (1 - confidence) / 2)
    centre = (share + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z / (1 + z**2 / n) * math.sqrt(share * (1 - share) / n + z**2 / (4 * n**2))
    return max(0.0, centre - half), min(1.0, centre + half)


def pooled_proportion(hits, trials, confidence: float = 0.95) -> Interval:
    """The share sum(hits) / sum(trials) of trials pooled over seeds, with Wilson's interval on
    the share's own scale (it never leaves [0, 1], and never has zero width).

    ``hits[i]`` of ``trials[i]`` trials succeeded in seed i. If the seeds' shares vary more than
    binomial sampling explains, the pooled count overstates the evidence; the interval is then
    Wilson's at the effective number of trials n / phi, where phi is the dispersion (Pearson's
    chi-square over the seeds divided by its degrees of freedom, at least 1)."""
    _check_confidence(confidence)
    h, t = _values("hits", hits, min_n=1), _values("trials", trials, min_n=1)
    if h.shape != t.shape:
        raise ValueError(f"hits and trials need one value per seed each; got {len(h)} and {len(t)}")
    if (h != np.round(h)).any() or (t != np.round(t)).any() or (t < 1).any() or (h < 0).any() or (h > t).any():
        raise ValueError(f"need whole numbers with 0 <= hits <= trials and trials >= 1; got hits={h.tolist()}, "
                         f"trials={t.tolist()}")
    n, share = t.sum(), h.sum() / t.sum()
    phi = 1.0
    if len(h) > 1 and 0 < share < 1:
        chi2 = float((((h - t * share) ** 2) / (t * share * (1 - share))).sum())
        phi = max(1.0, chi2 / (len(h) - 1))
    lo, hi = _wilson(share, n / phi, confidence)
    return Interval(float(share), lo, hi, int(n), confidence, math.nan, math.nan)


def verdict(interval: Interval) -> str:
    """``"higher"`` when the interval lies above its null value (zero for a difference), ``"lower"``
    below it, else ``"unresolved"``."""
    if not isinstance(interval, Interval):
        raise TypeError(f"verdict takes an Interval; got {type(interval).__name__}")
    return "higher" if interval.lo > interval.null else "lower" if interval.hi < interval.null else "unresolved"


def directed(interval: Interval, sign: int) -> Interval:
    """The interval as a claim declared in one direction enters a family: unchanged when its estimate
    points the declared way (``sign`` +1: above the null, -1: below), else with ``p = 1``, so that
    :func:`holm` can never count an effect in the other direction as the claim holding."""
    if not isinstance(interval, Interval):
        raise TypeError(f"interval must be an Interval; got {type(interval).__name__}")
    if isinstance(sign, bool) or sign not in (1, -1):
        raise ValueError(f"sign must be +1 (declared above the null) or -1 (below); got {sign!r}")
    right = sign * (interval.estimate - interval.null) > 0
    return interval if right else interval._replace(p=1.0)


def holm(intervals: Mapping[str, Interval], alpha: float = 0.05) -> dict[str, str]:
    """The verdicts of a family of claims after Holm's step-down adjustment (Holm 1979).

    Sort the m p-values; the i-th smallest (i = 0, 1, ...) is rejected at ``alpha / (m - i)`` if
    every smaller one was. A rejected claim keeps its direction ("higher" or "lower"), the others
    read "unresolved". The family-wise error rate is at most ``alpha`` under any dependence."""
    if not isinstance(intervals, Mapping) or not intervals:
        raise TypeError(f"holm takes a non-empty mapping of name -> Interval; got {intervals!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie strictly between 0 and 1; got {alpha}")
    for name, iv in intervals.items():
        if not isinstance(iv, Interval):
            raise TypeError(f"intervals[{name!r}] must be an Interval; got {type(iv).__name__}")
        if not 0 <= iv.p <= 1:
            raise ValueError(f"intervals[{name!r}] carries no p-value (p={iv.p}); Holm needs one")
    order = sorted(intervals, key=lambda name: intervals[name].p)
    out, m, still = {}, len(order), True
    for i, name in enumerate(order):
        iv = intervals[name]
        still = still and iv.p <= alpha / (m - i)
        out[name] = ("higher" if iv.estimate > iv.null else "lower") if still else "unresolved"
    return {name: out[name] for name in intervals}
