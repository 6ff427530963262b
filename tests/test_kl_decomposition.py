"""The decomposition of the average KL term (Chen et al. 2018) into index-code mutual information,
total correlation and dimension-wise KL: exactly on discrete codes (each part against an
entropy computed by scipy.stats), and by Monte Carlo for Gaussian encoders (special cases where a
part is zero term by term, and the sum against the closed-form KL within 4 standard errors).
"""

import math

import numpy as np
import pytest
import torch
from scipy.stats import entropy

from tests.test_collapse import _Fixed, _rows
from vaelib.estimates import aggregate_posterior, kl_decomposition, kl_decomposition_exact


def _random_q(n, shape, seed):
    rng = np.random.default_rng(seed)
    q = rng.gamma(0.5, size=(n, *shape))
    return q / q.reshape(n, -1).sum(1).reshape(n, *([1] * len(shape)))


@pytest.mark.parametrize("shape", [(3, 4), (2, 2, 3)])
def test_each_exact_part_is_its_entropy_formula(shape):
    # by entropies, an independent route: with p(z) uniform on prod_j K_j codes,
    # E KL(q(z|x) || p) = sum_j log K_j - E H(q(z|x)), I_q = H(q(z)) - E H(q(z|x)),
    # TC = sum_j H(q(z_j)) - H(q(z)), sum_j KL(q(z_j) || p(z_j)) = sum_j (log K_j - H(q(z_j)))
    n = 6
    q = _random_q(n, shape, seed=0)
    w = np.random.default_rng(1).dirichlet(np.ones(n))
    out = kl_decomposition_exact(q, w)
    agg = np.tensordot(w, q, axes=1)
    h_cond = sum(w[i] * entropy(q[i].ravel()) for i in range(n))
    h_agg = entropy(agg.ravel())
    h_marg = [entropy(agg.sum(axis=tuple(k for k in range(len(shape)) if k != j))) for j in range(len(shape))]
    log_k = sum(math.log(k) for k in shape)
    assert out["average_kl"] == pytest.approx(log_k - h_cond, abs=1e-12)
    assert out["mutual_info"] == pytest.approx(h_agg - h_cond, abs=1e-12)
    assert out["total_correlation"] == pytest.approx(sum(h_marg) - h_agg, abs=1e-12)
    assert out["dimensionwise_kl"] == pytest.approx(log_k - sum(h_marg), abs=1e-12)
    # so the three parts add up to the average KL, and none is negative
    parts = out["mutual_info"] + out["total_correlation"] + out["dimensionwise_kl"]
    assert parts == pytest.approx(out["average_kl"], abs=1e-12)
    assert min(out.values()) > 0


def test_exact_parts_vanish_where_they_should():
    # every q(z|x) the same product of marginals: no information, no total correlation
    a, b = np.array([0.2, 0.8]), np.array([0.5, 0.3, 0.2])
    q = np.stack([np.multiply.outer(a, b)] * 4)
    out = kl_decomposition_exact(q)
    assert abs(out["mutual_info"]) < 1e-15 and abs(out["total_correlation"]) < 1e-15
    assert out["dimensionwise_kl"] == pytest.approx(out["average_kl"], abs=1e-15)
    # one-hot codes z = (x, x): I_q = log N, and the two coordinates are copies of each other
    q = np.zeros((3, 3, 3))
    for i in range(3):
        q[i, i, i] = 1.0
    out = kl_decomposition_exact(q)
    assert out["mutual_info"] == pytest.approx(math.log(3), abs=1e-15)
    assert out["total_correlation"] == pytest.approx(math.log(3), abs=1e-15)  # H(z_1) + H(z_2) - H(z)
    assert abs(out["dimensionwise_kl"]) < 1e-15  # each marginal is uniform, as the prior


def test_exact_decomposition_refuses_bad_tables():
    with pytest.raises(ValueError, match="sum to 1"):
        kl_decomposition_exact(np.full((2, 3), 0.5))
    with pytest.raises(ValueError, match=">= 0"):
        kl_decomposition_exact(np.array([[1.5, -0.5]]))
    with pytest.raises(ValueError, match=r"\(N, K_1, ..., K_d\)"):
        kl_decomposition_exact(np.ones(3) / 3)
    with pytest.raises(ValueError, match="p_x must be 2 probabilities"):
        kl_decomposition_exact(np.full((2, 2), 0.5), p_x=[0.9, 0.3])


def test_monte_carlo_parts_add_up_and_match_the_closed_form():
    g = torch.Generator().manual_seed(5)
    n, d = 300, 3
    x = _rows(torch.randn(n, d, generator=g), torch.randn(n, d, generator=g) - 1)
    out = kl_decomposition(_Fixed(d), x, n_samples=20, generator=torch.Generator().manual_seed(11))
    # per draw the three log-ratios telescope to log q(z|x) - log p(z): their means add up to the
    # Monte Carlo KL up to float64 round-off on terms of size ~10
    parts = out["mutual_info"] + out["total_correlation"] + out["dimensionwise_kl"]
    assert parts == pytest.approx(out["average_kl_mc"], abs=1e-10)
    # the Monte Carlo KL is an unbiased estimate of the closed form: within 4 standard errors
    assert abs(out["average_kl_mc"] - out["rate"]) < 4 * out["average_kl_mc_se"]
    # with the same draws, the information part is aggregate_posterior's I_q, and TC plus the
    # dimension-wise KL is its KL(q(z) || p(z))
    two = aggregate_posterior(_Fixed(d), x, n_samples=20, generator=torch.Generator().manual_seed(11))
    assert out["mutual_info"] == pytest.approx(two["mutual_info"], abs=1e-12)
    assert out["total_correlation"] + out["dimensionwise_kl"] == pytest.approx(two["marginal_kl"], abs=1e-10)
    # seeded: the same numbers again
    assert kl_decomposition(_Fixed(d), x, n_samples=20, generator=torch.Generator().manual_seed(11)) == out


def test_monte_carlo_parts_vanish_term_by_term():
    # every q(z|x_n) the same diagonal Gaussian: q(z) is that Gaussian, a product of its marginals,
    # so I_q and TC are zero draw by draw, and the dimension-wise KL is the whole KL
    n, d = 40, 3
    m = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    logvar = torch.tensor([-1.0, 0.3, 0.0], dtype=torch.float64)
    x = _rows(m.expand(n, d), logvar.expand(n, d))
    out = kl_decomposition(_Fixed(d), x, n_samples=30, generator=torch.Generator().manual_seed(6))
    assert abs(out["mutual_info"]) < 1e-12 and abs(out["total_correlation"]) < 1e-12
    closed = 0.5 * float((logvar.exp() + m**2 - 1 - logvar).sum())
    assert abs(out["dimensionwise_kl"] - closed) < 4 * out["dimensionwise_kl_se"]
    # two perfectly correlated coordinates: codes on the line z_1 = z_2, far apart and narrow, so
    # the aggregate is N spikes on the diagonal and the marginals are N spikes each: TC = log N
    n = 25
    mu = torch.arange(n, dtype=torch.float64)[:, None].repeat(1, 2) * 40.0
    x = _rows(mu, torch.full((n, 2), -6.0))
    out = kl_decomposition(_Fixed(2), x, n_samples=4, generator=torch.Generator().manual_seed(7))
    assert out["total_correlation"] == pytest.approx(math.log(n), abs=1e-6)
    assert out["mutual_info"] == pytest.approx(math.log(n), abs=1e-6)


def test_monte_carlo_decomposition_refuses_bad_input():
    x = _rows(torch.zeros(5, 2), torch.zeros(5, 2))
    with pytest.raises(ValueError, match="n_samples"):
        kl_decomposition(_Fixed(2), x, n_samples=0)
    with pytest.raises(ValueError, match="N >= 2"):
        kl_decomposition(_Fixed(2), x[:1])
