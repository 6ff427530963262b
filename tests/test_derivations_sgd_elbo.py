"""vaelib held to the SymPy derivations of the chapters on minibatch SGD and on the ELBO.

The expressions are derived here the same way the chapters derive them (SymPy integration
against Gaussian densities), lambdified, and compared with vaelib on random float64 inputs.
"""

import itertools
import math
from functools import lru_cache

import numpy as np
import pytest
import sympy as sp
import torch
import torch.nn.functional as F
from torch.distributions import Independent, Normal

from vaelib import estimates, objectives

a, b, x, z, m, m2 = sp.symbols("a b x z m m2", real=True)
s, v, v2 = sp.symbols("s v v2", positive=True)


def _normal_logpdf(u, mean, var):
    return -(sp.log(2 * sp.pi) + sp.log(var)) / 2 - (u - mean) ** 2 / (2 * var)


@lru_cache(maxsize=1)
def _moments():
    q = sp.exp(_normal_logpdf(z, m, v))
    return [sp.simplify(sp.integrate(z**j * q, (z, -sp.oo, sp.oo), conds="none")) for j in range(3)]


def _expect_q(f):
    poly = sp.Poly(sp.expand(f), z)
    assert poly.degree() <= 2
    mom = _moments()
    return sp.Add(*[c * mom[j] for (j,), c in poly.terms()])


@lru_cache(maxsize=1)
def _linear_gaussian():
    """log p(x), the posterior, and the ELBO of z ~ N(0,1), x|z ~ N(a z + b, s^2), q = N(m, v)."""
    log_lik = _normal_logpdf(x, a * z + b, s**2)
    log_joint = _normal_logpdf(z, 0, 1) + log_lik
    log_px = _normal_logpdf(x, b, a**2 + s**2)
    mu_post, v_post = a * (x - b) / (a**2 + s**2), s**2 / (a**2 + s**2)
    log_post = _normal_logpdf(z, mu_post, v_post)
    assert sp.simplify(log_joint - log_px - log_post) == 0  # the posterior, completing the square
    log_q = _normal_logpdf(z, m, v)
    elbo = _expect_q(log_lik) - _expect_q(log_q - _normal_logpdf(z, 0, 1))
    assert sp.simplify(log_px - elbo - _expect_q(log_q - log_post)) == 0  # (elbo-identity)
    return log_px, mu_post, v_post, elbo


# ------------------------------------------------------------------------------ Gaussian KL


def test_gaussian_kl_standard_prior_matches_sympy():
    kl = _expect_q(_normal_logpdf(z, m, v) - _normal_logpdf(z, 0, 1))
    kl_fn = sp.lambdify((m, v), kl, "numpy")
    rng = np.random.default_rng(0)
    mu, logvar = rng.normal(size=(500, 4)), rng.normal(scale=2.0, size=(500, 4))
    ours = objectives.gaussian_kl(torch.from_numpy(mu), torch.from_numpy(logvar)).numpy()
    # per-dimension SymPy KL, summed over the last dim as vaelib does; float64 round-off
    np.testing.assert_allclose(ours, kl_fn(mu, np.exp(logvar)).sum(-1), rtol=1e-12, atol=1e-12)


def test_gaussian_kl_general_prior_matches_sympy():
    kl = _expect_q(_normal_logpdf(z, m, v) - _normal_logpdf(z, m2, v2))
    kl_fn = sp.lambdify((m, v, m2, v2), kl, "numpy")
    rng = np.random.default_rng(1)
    mu, logvar, pmu, plogvar = (rng.normal(size=(300, 3)) for _ in range(4))
    ours = objectives.gaussian_kl(*(torch.from_numpy(t) for t in (mu, logvar, pmu, plogvar))).numpy()
    expected = kl_fn(mu, np.exp(logvar), pmu, np.exp(plogvar)).sum(-1)
    np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------- log p(x) and the IWAE bound


class _LinearGaussian1D:
    likelihood = "gaussian"

    def __init__(self, a, b, s, q_mean, q_var):
        self.a, self.b, self.s, self.q_mean, self.q_var = a, b, s, q_mean, q_var

    def encode(self, x):
        return torch.full_like(x, self.q_mean), torch.full_like(x, math.log(self.q_var))

    def decode(self, z):
        return Independent(Normal(self.a * z + self.b, self.s), 1)


@pytest.mark.parametrize("params", [(1.5, 0.3, 0.7, 2.0), (-0.4, 1.0, 1.3, -0.5), (3.0, -2.0, 0.2, 0.1)])
@pytest.mark.parametrize("k", [1, 5])
def test_iwae_at_the_exact_posterior_is_the_sympy_evidence(params, k):
    log_px, mu_post, v_post, _ = _linear_gaussian()
    av, bv, sv, xv = params
    subs = {a: av, b: bv, s: sv, x: xv}
    model = _LinearGaussian1D(av, bv, sv, float(mu_post.subs(subs)), float(v_post.subs(subs)))
    est = estimates.iwae_log_likelihood(model, torch.full((4, 1), xv, dtype=torch.float64), k=k)
    exact = sp.lambdify((a, b, s, x), log_px, "math")(av, bv, sv, xv)
    # every importance weight equals p(x) exactly: only float64 round-off remains
    assert torch.allclose(est, torch.tensor(exact, dtype=torch.float64), rtol=0, atol=1e-11)


def test_iwae_k1_averages_to_the_sympy_elbo_and_large_k_approaches_log_px():
    log_px, mu_post, v_post, elbo = _linear_gaussian()
    av, bv, sv, xv = 1.5, 0.3, 0.7, 2.0
    subs = {a: av, b: bv, s: sv, x: xv}
    qm, qv = float(mu_post.subs(subs)) + 0.4, 1.5 * float(v_post.subs(subs))
    model = _LinearGaussian1D(av, bv, sv, qm, qv)
    gen = torch.Generator().manual_seed(0)
    rows = torch.full((20000, 1), xv, dtype=torch.float64)
    one = estimates.iwae_log_likelihood(model, rows, k=1, generator=gen)
    exact_elbo = sp.lambdify((a, b, s, x, m, v), elbo, "math")(av, bv, sv, xv, qm, qv)
    exact_log_px = sp.lambdify((a, b, s, x), log_px, "math")(av, bv, sv, xv)
    se = float(one.std()) / math.sqrt(len(one))
    assert abs(float(one.mean()) - exact_elbo) < 4 * se  # Monte Carlo: 4 standard errors
    many = estimates.iwae_log_likelihood(model, rows[:500], k=500, generator=gen)
    se_k = float(many.std()) / math.sqrt(len(many))
    assert exact_elbo < float(many.mean()) < exact_log_px + 4 * se_k
    assert exact_log_px - float(many.mean()) < 0.05 * (exact_log_px - exact_elbo)


# ------------------------------------------------------------------------- minibatch SGD


def _batches(n, k, replace):
    return list(itertools.product(range(n), repeat=k) if replace else itertools.combinations(range(n), k))


@pytest.mark.parametrize("replace", [False, True])
def test_scaled_minibatch_gradient_is_unbiased_by_enumeration(replace):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Tanh(), torch.nn.Linear(4, 3)).double()
    xs, ys = torch.randn(6, 5, dtype=torch.float64), torch.tensor([0, 1, 2, 0, 1, 2])
    n, k = 6, 2
    params = list(net.parameters())

    def grad(idx):  # gradient of sum_{i in idx} log p(y_i | x_i); a repeated index counts twice
        loglik = -F.cross_entropy(net(xs[list(idx)]), ys[list(idx)], reduction="sum")
        return torch.cat([g.reshape(-1) for g in torch.autograd.grad(loglik, params)])

    full = grad(range(n))
    per_batch = torch.stack([grad(batch) for batch in _batches(n, k, replace)])
    tol = 1e-12 * float(full.abs().max())  # float64 round-off over at most 36 minibatches
    assert torch.allclose((n / k) * per_batch.mean(0), full, rtol=0, atol=tol)  # (sgd-unbiased)
    assert torch.allclose(per_batch.mean(0), (k / n) * full, rtol=0, atol=tol)  # (sgd-unscaled)


def test_minibatch_mean_variance_matches_the_formulas_by_enumeration():
    rng = np.random.default_rng(0)
    g = rng.normal(size=(7, 3))
    n, gbar = len(g), g.mean(0)
    sigma2 = ((g - gbar) ** 2).sum(1).mean()
    for k in range(1, n + 1):
        for replace, factor in ((True, 1.0), (False, (n - k) / (n - 1))):
            if replace and k > 4:
                continue
            idx = np.array(_batches(n, k, replace))
            var = ((g[idx].mean(1) - gbar) ** 2).sum(1).mean()
            assert abs(var - factor * sigma2 / k) < 1e-12 * sigma2  # (sgd-var-with), (sgd-var-without)
