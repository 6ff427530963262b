"""Tests for the helpers of the AE-vs-VAE and conditional-VAE chapters:
``estimates.gaussian_fit_kl`` (``book.load_for_budget`` is tested in test_book_config.py)."""

import math

import numpy as np
import pytest

from vaelib import estimates


def _white(n, d, seed=0):
    """n x d codes whose sample mean is exactly 0 and sample covariance exactly I."""
    a = np.random.default_rng(seed).standard_normal((n, d))
    a -= a.mean(0)
    chol = np.linalg.cholesky(np.cov(a, rowvar=False))
    return a @ np.linalg.inv(chol).T


def test_gaussian_fit_kl_is_zero_for_codes_that_look_standard_normal():
    # float64 round-off on sums of ~1e3 terms: far below 1e-9
    assert abs(estimates.gaussian_fit_kl(_white(1000, 4))) < 1e-9


@pytest.mark.parametrize("scale,shift", [(0.1, 0.0), (3.0, 0.0), (1.0, 2.0), (15.0, -1.0)])
def test_gaussian_fit_kl_matches_the_closed_form(scale, shift):
    d = 3
    codes = scale * _white(500, d, seed=1) + shift
    # N(shift, scale^2 I) against N(0, I): 1/2 d (scale^2 + shift^2 - 1 - 2 log scale)
    expected = 0.5 * d * (scale**2 + shift**2 - 1 - 2 * math.log(scale))
    assert estimates.gaussian_fit_kl(codes) == pytest.approx(expected, rel=1e-10)


def test_gaussian_fit_kl_refuses_bad_codes():
    with pytest.raises(ValueError, match="N > d"):
        estimates.gaussian_fit_kl(np.zeros((3, 5)))
    with pytest.raises(ValueError, match="NaN"):
        estimates.gaussian_fit_kl(np.full((10, 2), np.nan))
    with pytest.raises(ValueError, match="singular"):
        estimates.gaussian_fit_kl(np.zeros((10, 2)))
