"""vaelib.diffusion: the closed-form marginal q(x_t | x_0) against the chain run step by step, and
the forward posterior q(x_{t-1} | x_t, x_0) against Bayes' rule computed by quadrature."""

import math

import pytest
import torch

from vaelib.diffusion import alphas_bar, linear_schedule, q_posterior, q_sample


def test_the_marginal_is_the_chain_run_step_by_step():
    # run x_t = sqrt(1 - beta_t) x_{t-1} + sqrt(beta_t) eps_t for 200,000 chains from one x_0, and
    # compare the mean and variance at three steps with sqrt(abar_t) x_0 and 1 - abar_t
    betas = linear_schedule(50, 1e-3, 0.2)
    g = torch.Generator().manual_seed(0)
    n, x0 = 200_000, 1.7
    x = torch.full((n,), x0, dtype=torch.float64)
    ab = alphas_bar(betas)
    for t in range(1, 51):
        x = (1 - betas[t - 1]).sqrt() * x + betas[t - 1].sqrt() * torch.randn(n, generator=g, dtype=torch.float64)
        if t in (1, 10, 50):
            mean, var = ab[t - 1].sqrt() * x0, 1 - ab[t - 1]
            # 4 standard errors: of a mean, sqrt(var/n); of a variance of a Gaussian, var sqrt(2/n)
            assert abs(x.mean() - mean) < 4 * math.sqrt(var / n)
            assert abs(x.var() - var) < 4 * var * math.sqrt(2 / n)
    # q_sample is that marginal's reparameterisation, exactly
    eps = torch.randn(5, 3, generator=g, dtype=torch.float64)
    x0s = torch.randn(5, 3, generator=g, dtype=torch.float64)
    t = torch.tensor([1, 2, 10, 49, 50])
    want = ab[t - 1, None].sqrt() * x0s + (1 - ab[t - 1, None]).sqrt() * eps
    torch.testing.assert_close(q_sample(x0s, t, eps, betas), want, rtol=0, atol=1e-15)


@pytest.mark.parametrize("t", [1, 2, 7, 30])
def test_the_forward_posterior_is_bayes_rule(t):
    # q(x_{t-1} | x_t, x_0) is proportional to q(x_t | x_{t-1}) q(x_{t-1} | x_0): its mean and
    # variance by quadrature on a fine grid of x_{t-1} (for t = 1, x_0 itself: variance 0)
    betas = linear_schedule(30, 1e-2, 0.3)
    ab = alphas_bar(betas)
    x0, xt = torch.tensor([[0.8]], dtype=torch.float64), torch.tensor([[-0.4]], dtype=torch.float64)
    mean, var = q_posterior(x0, xt, torch.tensor([t]), betas)
    if t == 1:
        assert var.item() == 0.0 and mean.item() == pytest.approx(x0.item(), abs=1e-15)
        return
    grid = torch.linspace(-12, 12, 480_001, dtype=torch.float64)
    b = betas[t - 1]
    log_lik = -0.5 * (xt.item() - (1 - b).sqrt() * grid) ** 2 / b
    log_prior = -0.5 * (grid - ab[t - 2].sqrt() * x0.item()) ** 2 / (1 - ab[t - 2])
    w = torch.exp(log_lik + log_prior - (log_lik + log_prior).max())
    w = w / w.sum()
    q_mean = (w * grid).sum()
    q_var = (w * (grid - q_mean) ** 2).sum()
    # the grid's step 5e-5 against a posterior sd of at least 0.05: quadrature error ~1e-9 relative
    assert mean.item() == pytest.approx(q_mean.item(), abs=1e-8)
    assert var.item() == pytest.approx(q_var.item(), rel=1e-6)


def test_bad_input_is_named():
    betas = linear_schedule(10)
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match=r"time steps t must lie in 1..10"):
        q_sample(x, torch.tensor([0, 1]), x, betas)
    with pytest.raises(ValueError, match="integer time steps"):
        q_sample(x, torch.tensor([1.0, 2.0]), x, betas)
    with pytest.raises(ValueError, match="eps must have x0's shape"):
        q_sample(x, torch.tensor([1, 2]), torch.zeros(2, 4), betas)
    with pytest.raises(ValueError, match=r"every beta_t must lie in \(0, 1\)"):
        alphas_bar(torch.tensor([0.5, 1.0]))
    with pytest.raises(ValueError, match="T must be a positive int"):
        linear_schedule(0)
    with pytest.raises(ValueError, match="need 0 < beta_1 <= beta_T < 1"):
        linear_schedule(10, 0.5, 0.1)
