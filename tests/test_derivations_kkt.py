"""Hold BetaELBO and ConstrainedELBO to the KKT Lagrangian of the beta-VAE chapter.

{eq}`kkt-lagrangian`: F = E_q[log p(x|z)] - beta (KL - delta); {eq}`beta-vae`: L_beta = F - beta delta;
{eq}`kkt-dual-step`: beta <- max(0, beta + lr_beta (KL - delta)); {eq}`kkt-toy-argmax`: the KKT point of
the linear-Gaussian toy model (z ~ N(0,1), x|z ~ N(a z + b, s^2), q = N(m, v)).
"""

import math

import pytest
import sympy as sp
import torch
from scipy.optimize import brentq
from torch import nn
from torch.distributions import Independent, Normal

from vaelib.models import VAE, Output
from vaelib.objectives import BetaELBO, ConstrainedELBO, elbo, kl_terms

A, B, S, X = 2.0, 0.5, 1.0, 3.5


def _lagrangian_sympy():
    rec, kl, beta, delta = sp.symbols("rec kl beta delta", real=True)
    return sp.lambdify((rec, kl, beta, delta), rec - beta * (kl - delta))


def _vae_and_batch(likelihood):
    torch.manual_seed(0)
    model = VAE((1, 4, 4), 3, hidden=8, likelihood=likelihood).double()
    g = torch.Generator().manual_seed(1)
    if likelihood == "bernoulli":
        x = torch.bernoulli(torch.full((6, 16), 0.4, dtype=torch.float64), generator=g)
    else:
        x = torch.randn(6, 16, generator=g, dtype=torch.float64)
    return model, x


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
@pytest.mark.parametrize("beta, delta", [(0.0, 0.0), (1.0, 2.0), (3.7, 0.25), (0.3, 10.0)])
def test_losses_are_minus_the_lagrangian(likelihood, beta, delta):
    model, x = _vae_and_batch(likelihood)
    F = _lagrangian_sympy()
    torch.manual_seed(5)
    parts = elbo(model, x)
    rec, kl = parts.rec.mean().item(), parts.kl.mean().item()
    torch.manual_seed(5)  # the same reparameterisation noise
    loss_beta, m_beta = BetaELBO(beta)(model, x)
    torch.manual_seed(5)
    con = ConstrainedELBO(delta, lr_beta=0.3, beta0=beta)
    loss_con, m_con = con(model, x)
    # float64 sums of a few terms: agreement to ~1e-15 relative; 1e-10 absolute is a wide margin
    assert loss_beta.item() == pytest.approx(-F(rec, kl, beta, 0.0), abs=1e-10)       # (beta-vae)
    assert loss_con.item() == pytest.approx(-F(rec, kl, beta, delta), abs=1e-10)      # (kkt-lagrangian)
    assert (loss_beta - loss_con).item() == pytest.approx(beta * delta, abs=1e-10)    # (kkt-gap)
    assert m_con["beta"].item() == beta  # the loss used the multiplier before the step
    assert con.current_beta == pytest.approx(max(0.0, beta + 0.3 * (kl - delta)), abs=1e-12)  # (kkt-dual-step)


class _Toy(nn.Module):
    """q = N(m, e^logvar) with the exact two-point rule eps = +-1 (log p(x|z) is quadratic in z)."""

    def __init__(self):
        super().__init__()
        self.m = nn.Parameter(torch.zeros(1, 1, dtype=torch.float64))
        self.logvar = nn.Parameter(torch.zeros(1, 1, dtype=torch.float64))
        self.likelihood = "gaussian"

    def forward(self, x):
        eps = torch.tensor([[1.0], [-1.0]], dtype=torch.float64)
        mu, logvar = self.m.expand(2, 1), self.logvar.expand(2, 1)
        z = mu + torch.exp(0.5 * logvar) * eps
        return Output(Independent(Normal(A * z + B, S, validate_args=False), 1), mu, logvar, z)

    has_posterior, needs_labels = True, False  # what the objectives ask of a model

    def terms(self, x, y=None, eps=None, per_dim=False):
        out = self(x)
        kl = kl_terms(out.mu, out.logvar)  # to p(z) = N(0, 1)
        return out.px, kl if per_dim else kl.sum(-1)


def _sgd_step(loss, params, lr):
    # plain gradient descent on -F (torch.optim would import torch._dynamo: seconds)
    grads = torch.autograd.grad(loss, params)
    with torch.no_grad():
        for p, g in zip(params, grads, strict=True):
            p -= lr * g


def _toy_kkt(delta):
    """The KKT point (beta*, m*, v*) of the toy model from the SymPy solution of the stationarity equations."""
    m, x, b = sp.symbols("m x b", real=True)
    a, s, v, beta = sp.symbols("a s v beta", positive=True)
    rec = -sp.log(2 * sp.pi * s**2) / 2 - ((x - b - a * m) ** 2 + a**2 * v) / (2 * s**2)
    kl = (m**2 + v - sp.log(v) - 1) / 2
    F = rec - beta * kl
    m_star = a * (x - b) / (a**2 + beta * s**2)  # (kkt-toy-argmax)
    v_star = beta * s**2 / (a**2 + beta * s**2)
    for t in (m, v):  # stationarity of the Lagrangian at the closed form
        assert sp.cancel(sp.diff(F, t).subs({m: m_star, v: v_star})) == 0  # rational in the symbols
    num = {a: A, b: B, s: S, x: X}
    kl_star = sp.lambdify(beta, kl.subs({m: m_star, v: v_star}).subs(num))
    b_star = brentq(lambda t: kl_star(t) - delta, 1e-6, 1e6, xtol=1e-14, rtol=1e-15)  # KL* decreases in beta
    return b_star, float(m_star.subs(num).subs(beta, b_star)), float(v_star.subs(num).subs(beta, b_star))


def test_dual_ascent_reaches_the_toy_kkt_point():
    delta = 0.5
    b_star, m_star, v_star = _toy_kkt(delta)
    assert b_star > 0
    toy, x = _Toy(), torch.full((2, 1), X, dtype=torch.float64)
    obj = ConstrainedELBO(delta, lr_beta=1.0, beta0=2.0)
    for step in range(150):
        loss, _ = obj(toy, x, step=step)
        _sgd_step(loss, [toy.m, toy.logvar], lr=0.2)
    # descent-ascent converges linearly; with these rates the error is < 1e-10 after ~100 steps
    assert obj.current_beta == pytest.approx(b_star, abs=1e-8)
    assert toy.m.item() == pytest.approx(m_star, abs=1e-8)
    assert math.exp(toy.logvar.item()) == pytest.approx(v_star, abs=1e-8)
    kl = elbo(toy, x).kl.mean().item()
    assert kl == pytest.approx(delta, abs=1e-8)  # binding: complementary slackness with beta* > 0


def test_loose_budget_drives_beta_to_zero():
    toy, x = _Toy(), torch.full((2, 1), X, dtype=torch.float64)
    toy.logvar.requires_grad_(False)  # fixed encoder noise v = 1: the unconstrained optimum has KL = (x-b)^2/(2a^2)
    kl_max = (X - B) ** 2 / (2 * A**2)
    obj = ConstrainedELBO(kl_max + 0.5, lr_beta=0.5, beta0=2.0)
    for step in range(100):
        loss, _ = obj(toy, x, step=step)
        _sgd_step(loss, [toy.m], lr=0.1)
    assert obj.current_beta == 0.0
    assert toy.m.item() == pytest.approx((X - B) / A, abs=1e-8)
