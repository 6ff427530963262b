"""Hold vaelib to the derivations of the Gaussian KL and reparameterisation chapters.

The KL is derived here in SymPy exactly as in ``notebooks/02_gaussian_kl.ipynb``
({eq}`kl-univariate`), lambdified, and compared with ``vaelib.objectives.gaussian_kl`` on random
and extreme float64 inputs: general prior, standard prior ({eq}`kl-standard`), class-mean prior
({eq}`kl-class-mean`) and the sum over dimensions ({eq}`kl-diag`). ``VAE.forward`` must draw
``z = mu + exp(logvar / 2) * eps`` ({eq}`reparam`).
"""

from functools import lru_cache

import numpy as np
import pytest
import sympy as sp
import torch

from vaelib.models import CVAE, VAE
from vaelib.objectives import gaussian_kl

EPS = np.finfo(np.float64).eps


@lru_cache(maxsize=1)
def _sympy_kl():
    """KL(N(mu1, e^l1) || N(mu2, e^l2)) by integration, as a NumPy function of (mu1, l1, mu2, l2)."""
    u = sp.Symbol("u", real=True)
    mu1, mu2 = sp.symbols("mu_1 mu_2", real=True)
    s1, s2 = sp.symbols("sigma_1 sigma_2", positive=True)
    l1, l2 = sp.symbols("ell_1 ell_2", real=True)

    def logpdf(x, m, s):
        return -sp.log(2 * sp.pi * s**2) / 2 - (x - m) ** 2 / (2 * s**2)

    z = mu1 + s1 * u  # standardised coordinates: q(z) dz = phi(u) du
    phi = sp.exp(-(u**2) / 2) / sp.sqrt(2 * sp.pi)
    # the log-ratio is a polynomial in u: integrate it term by term (linearity; much faster than one integral)
    poly = sp.Poly(sp.expand(logpdf(z, mu1, s1) - logpdf(z, mu2, s2)), u)
    kl = sum(c * sp.integrate(u**k * phi, (u, -sp.oo, sp.oo)) for (k,), c in poly.terms())
    # the chapter checks kl == log(s2/s1) + (s1^2 + (mu1 - mu2)^2) / (2 s2^2) - 1/2 with sp.simplify
    kl_l = kl.subs({s1: sp.exp(l1 / 2), s2: sp.exp(l2 / 2)})
    return sp.lambdify((mu1, l1, mu2, l2), kl_l, "numpy")


def _scale(mu, logvar, pmu, plogvar):
    """Sum of the magnitudes of the terms of (kl-diag): round-off is a few ulps of this."""
    return (np.abs(logvar) + np.abs(plogvar) + 1 + (np.exp(logvar) + (mu - pmu) ** 2) * np.exp(-plogvar)).sum(-1)


def _check(mu, logvar, pmu=None, plogvar=None):
    pmu = torch.zeros_like(mu) if pmu is None else pmu
    plogvar = torch.zeros_like(mu) if plogvar is None else plogvar
    a = [t.numpy() for t in (mu, logvar, pmu, plogvar)]
    sym = _sympy_kl()(*a).sum(-1)  # (kl-diag): the sum of univariate KLs
    lib = gaussian_kl(mu, logvar, pmu, plogvar).numpy()
    err = np.abs(sym - lib) / _scale(*a)
    assert err.max() < 64 * EPS, err.max()


def _randn(g, *shape, scale=1.0):
    return scale * torch.randn(*shape, generator=g, dtype=torch.float64)


def test_gaussian_kl_general_univariate_matches_sympy():
    g = torch.Generator().manual_seed(0)
    _check(_randn(g, 500, 1, scale=3), _randn(g, 500, 1, scale=4), _randn(g, 500, 1, scale=3), _randn(g, 500, 1, scale=4))


def test_gaussian_kl_standard_prior_matches_sympy():
    g = torch.Generator().manual_seed(1)
    mu, logvar = _randn(g, 500, 6, scale=3), _randn(g, 500, 6, scale=4)
    _check(mu, logvar)
    # the defaults are the standard prior, and (kl-standard) directly
    ref = 0.5 * (mu**2 + logvar.exp() - logvar - 1).sum(-1)
    torch.testing.assert_close(gaussian_kl(mu, logvar), ref, rtol=1e-13, atol=1e-13)


def test_gaussian_kl_class_mean_prior_matches_sympy():
    g = torch.Generator().manual_seed(2)
    mu, logvar, mu_y = _randn(g, 500, 6, scale=3), _randn(g, 500, 6, scale=4), _randn(g, 500, 6, scale=2)
    _check(mu, logvar, mu_y, torch.zeros_like(mu))
    ref = 0.5 * ((mu - mu_y) ** 2 + logvar.exp() - logvar - 1).sum(-1)  # (kl-class-mean)
    torch.testing.assert_close(gaussian_kl(mu, logvar, prior_mu=mu_y), ref, rtol=1e-13, atol=1e-13)


def test_gaussian_kl_diagonal_is_sum_over_dims():
    g = torch.Generator().manual_seed(3)
    mu, logvar = _randn(g, 50, 10, scale=2), _randn(g, 50, 10, scale=2)
    pmu, plogvar = _randn(g, 10), _randn(g, 10)  # prior broadcast over the batch
    _check(mu, logvar, pmu.expand_as(mu), plogvar.expand_as(mu))
    per_dim = torch.stack([gaussian_kl(mu[:, i:i + 1], logvar[:, i:i + 1], pmu[i:i + 1], plogvar[i:i + 1])
                           for i in range(10)], dim=-1)
    torch.testing.assert_close(gaussian_kl(mu, logvar, pmu, plogvar), per_dim.sum(-1), rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("prior", ["standard", "extreme"])
def test_gaussian_kl_extreme_inputs_match_sympy(prior):
    mu = torch.tensor([[0.0, 1e3, -1e3, 0.0, 0.0, 1e-8, 5.0, 1e-300]], dtype=torch.float64).T
    logvar = torch.tensor([[0.0, 0.0, 30.0, 30.0, -30.0, 1e-8, -30.0, -1e-12]], dtype=torch.float64).T
    if prior == "standard":
        _check(mu, logvar)
    else:
        _check(mu, logvar, mu.flip(0), -logvar)


def test_vae_forward_is_the_reparameterisation():
    model = VAE(x_shape=(1, 4, 4), latent_dim=3, hidden=8).double()
    x = torch.rand(4, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        mu, logvar = model.encode(x)
    torch.manual_seed(7)
    out = model(x)
    torch.manual_seed(7)
    eps = torch.randn_like(mu)
    assert torch.equal(out.z, mu + torch.exp(0.5 * logvar) * eps)
    out.mu.retain_grad()
    out.logvar.retain_grad()
    out.z.sum().backward()
    assert torch.equal(out.mu.grad, torch.ones_like(mu))
    torch.testing.assert_close(out.logvar.grad, 0.5 * torch.exp(0.5 * logvar) * eps, rtol=1e-15, atol=1e-15)


def test_cvae_forward_is_the_reparameterisation():
    model = CVAE(x_shape=(1, 4, 4), latent_dim=2, n_classes=3, prior="class_mean", hidden=8).double()
    x = torch.rand(4, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    y = torch.tensor([0, 1, 2, 1])
    with torch.no_grad():
        mu, logvar = model.encode(x, y)
    torch.manual_seed(3)
    out = model(x, y)
    torch.manual_seed(3)
    assert torch.equal(out.z, mu + torch.exp(0.5 * logvar) * torch.randn_like(mu))
