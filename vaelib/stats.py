"""Statistics for claims made over seeds: means and differences with 95% intervals (scipy.stats).

A comparison in the book is declared before it runs (which arms, which statistic), made over
several seeds, and reported as a mean with a confidence interval. These few functions wrap
``scipy.stats`` so that every chapter computes its intervals the same way:

* :func:`mean_interval` -- a t-interval for the mean of one arm,
* :func:`paired_difference` -- arms that share their seeds (same data order, same noise):
  a t-interval for the mean of the per-seed differences (``scipy.stats.ttest_rel``),
* :func:`difference` -- arms that do not: Welch's t-interval (``scipy.stats.ttest_ind``),
* :func:`proportion_interval` -- a fraction of seeds (Wilson's interval, ``scipy.stats.binomtest``),
* :func:`verdict` -- "higher", "lower" or "unresolved": whether the interval excludes zero.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import stats as _st

__all__ = ["Interval", "mean_interval", "paired_difference", "difference", "proportion_interval", "verdict"]


class Interval(NamedTuple):
    """An estimate with its confidence interval: ``lo <= estimate <= hi`` at level ``confidence``."""

    estimate: float
    lo: float
    hi: float
    n: int
    confidence: float

    @property
    def excludes_zero(self) -> bool:
        return self.lo > 0 or self.hi < 0

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


def _interval(test, estimate, n, confidence, *samples) -> Interval:
    """``test()``'s t-interval; a point where the samples have no spread at all (t is undefined)."""
    if all(np.ptp(s) == 0 for s in samples):
        return Interval(float(estimate), float(estimate), float(estimate), n, confidence)
    ci = test().confidence_interval(confidence_level=confidence)
    return Interval(float(estimate), float(ci.low), float(ci.high), n, confidence)


def mean_interval(values, confidence: float = 0.95) -> Interval:
    """The mean of ``values`` (one per seed) with Student's t-interval (``ttest_1samp``)."""
    _check_confidence(confidence)
    v = _values("values", values)
    return _interval(lambda: _st.ttest_1samp(v, 0.0), v.mean(), len(v), confidence, v)


def paired_difference(a, b, confidence: float = 0.95) -> Interval:
    """mean(a - b) over seeds with its t-interval; ``a[i]`` and ``b[i]`` share seed i (``ttest_rel``)."""
    _check_confidence(confidence)
    a, b = _values("a", a), _values("b", b)
    if a.shape != b.shape:
        raise ValueError(f"paired arms need one value per seed in each; got {len(a)} and {len(b)}")
    return _interval(lambda: _st.ttest_rel(a, b), float((a - b).mean()), len(a), confidence, a - b)


def difference(a, b, confidence: float = 0.95) -> Interval:
    """mean(a) - mean(b) for arms with independent seeds, with Welch's t-interval (``ttest_ind``)."""
    _check_confidence(confidence)
    a, b = _values("a", a), _values("b", b)
    return _interval(lambda: _st.ttest_ind(a, b, equal_var=False), float(a.mean() - b.mean()), len(a) + len(b),
                     confidence, a, b)


def proportion_interval(k: int, n: int, confidence: float = 0.95) -> Interval:
    """A fraction k/n (e.g. of seeds that disentangle) with Wilson's score interval (``binomtest``)."""
    _check_confidence(confidence)
    if isinstance(k, bool) or isinstance(n, bool) or not isinstance(k, (int, np.integer)) \
            or not isinstance(n, (int, np.integer)):
        raise TypeError(f"k and n must be ints; got {type(k).__name__} and {type(n).__name__}")
    if n < 1 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n and n >= 1; got k={k}, n={n}")
    ci = _st.binomtest(int(k), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return Interval(k / n, float(ci.low), float(ci.high), int(n), confidence)


def verdict(interval: Interval) -> str:
    """``"higher"`` when the interval lies above zero, ``"lower"`` below it, else ``"unresolved"``."""
    if not isinstance(interval, Interval):
        raise TypeError(f"verdict takes an Interval; got {type(interval).__name__}")
    return "higher" if interval.lo > 0 else "lower" if interval.hi < 0 else "unresolved"
