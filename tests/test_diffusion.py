"""vaelib.diffusion: the closed-form marginal q(x_t | x_0) against the chain run step by step, and
the forward posterior q(x_{t-1} | x_t, x_0) against Bayes' rule computed by quadrature; the reverse
step, its KL weight and the ELBO as a sum of KL terms against their definitions; the sampler against
the exact distribution it produces for Gaussian data; the energy distance against scipy."""

import math

import numpy as np
import pytest
import scipy.stats
import torch
from torch.distributions import Normal, kl_divergence

from vaelib import diffusion
from vaelib.diffusion import (
    NoisePredictor,
    alphas_bar,
    elbo,
    energy_distance,
    kl_weight,
    linear_schedule,
    model_variance,
    p_mean,
    q_posterior,
    q_sample,
    sample,
    simple_loss,
    time_features,
)


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


F64 = torch.float64


def _fixed_eps_model(xt, t):
    # an arbitrary smooth noise predictor, the same in every test: not the optimum, so the KL terms are not 0
    return 0.5 * torch.tanh(xt) + 0.1 * t[..., None].to(xt.dtype) ** 0.5 - 0.2


def test_the_kl_of_one_step_is_the_weighted_noise_error():
    # KL(q(x_{t-1} | x_t, x_0) || N(p_mean, sigma_t^2)) by torch.distributions, against kl_weight * |eps - eps_hat|^2
    betas = linear_schedule(20, 1e-2, 0.3)
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(50, 3, generator=g, dtype=F64)
    eps = torch.randn(50, 3, generator=g, dtype=F64)
    t = torch.randint(2, 21, (50,), generator=g)
    xt = q_sample(x0, t, eps, betas)
    eps_hat = _fixed_eps_model(xt, t)
    mean, var = q_posterior(x0, xt, t, betas)
    sd = var.sqrt()[:, None].expand_as(mean)
    # the model's variance is the posterior's for t >= 2
    torch.testing.assert_close(model_variance(t, betas), var, rtol=1e-12, atol=0)
    kl = kl_divergence(Normal(mean, sd), Normal(p_mean(xt, t, eps_hat, betas), sd)).sum(-1)
    want = kl_weight(t, betas) * ((eps - eps_hat) ** 2).sum(-1)
    torch.testing.assert_close(kl, want, rtol=1e-9, atol=1e-12)
    # p_mean with the true noise is the posterior mean itself
    torch.testing.assert_close(p_mean(xt, t, eps, betas), mean, rtol=1e-10, atol=1e-12)
    # the last step has the variance beta_1
    assert model_variance(torch.tensor([1]), betas).item() == pytest.approx(betas[0].item(), rel=1e-15)


def test_the_elbo_as_a_sum_of_kls_is_the_elbo_of_the_chain():
    # The definition: E_q[log p(x_T) + sum_t log p(x_{t-1} | x_t) - sum_t log q(x_t | x_{t-1})] over forward
    # trajectories. Both it and elbo() are unbiased for the same number; compare the means of many draws.
    T, n = 8, 40_000
    # large steps, so that every term matters: the decoder's 1 / (1 - beta_1) is 1.43, not ~1
    betas = linear_schedule(T, 0.3, 0.5)
    g = torch.Generator().manual_seed(1)
    x0 = torch.tensor([[0.7, -1.2]], dtype=F64).expand(n, 2)
    x, traj = x0, [x0]
    for t in range(1, T + 1):
        x = (1 - betas[t - 1]).sqrt() * x + betas[t - 1].sqrt() * torch.randn(n, 2, generator=g, dtype=F64)
        traj.append(x)
    direct = Normal(0.0, 1.0).log_prob(traj[T]).sum(-1)
    for t in range(1, T + 1):
        tt = torch.full((n,), t)
        mean = p_mean(traj[t], tt, _fixed_eps_model(traj[t], tt), betas)
        sd = model_variance(tt, betas).sqrt()[:, None]
        direct = direct + Normal(mean, sd).log_prob(traj[t - 1]).sum(-1)
        fwd = Normal((1 - betas[t - 1]).sqrt() * traj[t - 1], betas[t - 1].sqrt())
        direct = direct - fwd.log_prob(traj[t]).sum(-1)
    summed = elbo(_fixed_eps_model, x0, betas, torch.randn(T, n, 2, generator=g, dtype=F64))
    se = math.hypot(direct.std().item(), summed.std().item()) / math.sqrt(n)
    # 4 standard errors of a difference of two independent means: fails by chance w.p. 6e-5. A KL weight off by a
    # factor 2, or a step off by one, moves the sum by several nats here
    assert abs(direct.mean().item() - summed.mean().item()) < 4 * se, (direct.mean(), summed.mean(), se)
    assert se < 0.05
    # the KL form has far less variance than the definition (closed-form KLs, one draw each)
    assert summed.std() < direct.std()


def test_with_the_true_noise_only_the_decoder_constant_and_the_prior_term_remain():
    # one point x0 and a predictor that knows it returns the true noise: every KL term of the sum is 0 and the
    # decoder's squared error too, so the ELBO is -d/2 log(2 pi beta_1) - KL(q(x_T | x0) || N(0, I)), exactly
    T = 6
    betas = linear_schedule(T, 0.1, 0.3)
    ab = alphas_bar(betas)
    x0 = torch.tensor([[2.0, -1.0]], dtype=F64).expand(5, 2)

    def oracle(xt, t):
        a = ab[t - 1][:, None]
        return (xt - a.sqrt() * x0) / (1 - a).sqrt()

    got = elbo(oracle, x0, betas, torch.randn(T, 5, 2, generator=torch.Generator().manual_seed(4), dtype=F64))
    prior = kl_divergence(Normal(ab[-1].sqrt() * x0, (1 - ab[-1]).sqrt()), Normal(0.0, 1.0)).sum(-1)
    want = -math.log(2 * math.pi * betas[0].item()) - prior  # d = 2
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_the_sampler_gives_the_distribution_its_linear_steps_imply_for_gaussian_data():
    # Data N(m, s^2): the optimal noise predictor E[eps | x_t] is linear,
    # sqrt(1 - abar_t) (x_t - sqrt(abar_t) m) / (abar_t s^2 + 1 - abar_t), so each sampler step is linear Gaussian
    # and the output's mean and variance follow exactly by recursion. Hold the sampler's samples to them.
    T, m, s, n = 100, 1.5, 0.4, 50_000
    betas = linear_schedule(T, 1e-3, 0.2)
    ab = alphas_bar(betas)

    def optimal(xt, t):
        a = ab[t - 1][..., None].to(xt.dtype)
        return (1 - a).sqrt() * (xt - a.sqrt() * m) / (a * s**2 + 1 - a)

    def recursion(betas):
        ab = alphas_bar(betas)
        mean, var = 0.0, 1.0  # x_T ~ N(0, 1)
        for t in range(len(betas), 0, -1):
            a, beta = ab[t - 1].item(), betas[t - 1].item()
            # x_{t-1} = A x_t + c + sigma z, with p_mean of the linear predictor
            k = math.sqrt(1 - a) / (a * s**2 + 1 - a)
            A = (1 - beta / math.sqrt(1 - a) * k) / math.sqrt(1 - beta)
            c = (beta / math.sqrt(1 - a) * k * math.sqrt(a) * m) / math.sqrt(1 - beta)
            mean, var = A * mean + c, A**2 * var + model_variance(torch.tensor(t), betas).item()
        return mean, var

    mean, var = recursion(betas)
    x = sample(optimal, (n, 1), betas, generator=torch.Generator().manual_seed(2), dtype=F64)
    # 4 standard errors of a sample mean and of a sample variance (Gaussian: var sqrt(2/n))
    assert abs(x.mean().item() - mean) < 4 * math.sqrt(var / n)
    assert abs(x.var().item() - var) < 4 * var * math.sqrt(2 / n)
    # the recursion itself: with T = 100 steps the sampler's variance falls short of s^2 (the Gaussian steps are
    # coarse); with T = 1000 steps of a tenth the size the shortfall is several times smaller
    assert abs(mean - m) < 1e-3 and 0.8 * s**2 < var < s**2
    mean_fine, var_fine = recursion(linear_schedule(1000, 1e-4, 0.02))
    assert abs(mean_fine - m) < 1e-3 and var < var_fine < s**2 and s**2 - var_fine < (s**2 - var) / 4
    # without the last step's noise the variance is smaller by about beta_1
    x_mean = sample(optimal, (n, 1), betas, generator=torch.Generator().manual_seed(2), dtype=F64, final_noise=False)
    assert x_mean.var().item() < x.var().item()


def test_simple_loss_is_zero_for_the_true_noise_and_positive_otherwise():
    betas = linear_schedule(10, 0.01, 0.2)
    g = torch.Generator().manual_seed(3)
    x0, eps = torch.randn(6, 2, generator=g, dtype=F64), torch.randn(6, 2, generator=g, dtype=F64)
    t = torch.randint(1, 11, (6,), generator=g)

    def oracle(xt, tt):  # recovers eps from x_t, knowing x0
        a = alphas_bar(betas)[tt - 1][:, None]
        return (xt - a.sqrt() * x0) / (1 - a).sqrt()

    assert simple_loss(oracle, x0, t, eps, betas).abs().max() < 1e-20 + 1e-12
    assert (simple_loss(_fixed_eps_model, x0, t, eps, betas) > 0).all()


def test_the_noise_predictor_members_are_independent_and_seeded():
    a = NoisePredictor([0, 1, 2], T=50, hidden=16)
    b = NoisePredictor([1], T=200, hidden=16)
    # member 1 of a starts as member 0 of b: the same seed, whatever T
    for wa, wb in zip(a.weights, b.weights):
        torch.testing.assert_close(wa[1], wb[0], rtol=0, atol=0)
    x = torch.randn(3, 5, 2, generator=torch.Generator().manual_seed(0))
    t = torch.randint(1, 51, (3, 5), generator=torch.Generator().manual_seed(1))
    out = a(x, t)
    assert out.shape == (3, 5, 2)
    # the gradient of member 0's output reaches member 0's weights only
    out[0].sum().backward()
    assert a.weights[0].grad[0].abs().sum() > 0 and a.weights[0].grad[1:].abs().sum() == 0
    feats = time_features(torch.tensor([50]), 50, 3)
    torch.testing.assert_close(feats, torch.tensor([[0.0, 0.0, 0.0, -1.0, 1.0, 1.0]]), rtol=0, atol=1e-6)


def test_energy_distance_agrees_with_scipy_in_one_dimension_and_is_unbiased():
    g = np.random.default_rng(0)
    x, y = g.normal(0, 1, 300), g.normal(0.5, 1.5, 200)
    v = energy_distance(torch.from_numpy(x[:, None]), torch.from_numpy(y[:, None]), unbiased=False)
    assert math.sqrt(v) == pytest.approx(scipy.stats.energy_distance(x, y), rel=1e-10)
    # two point masses at distance 3 in 2-D: 2 * 3 - 0 - 0
    a, b = torch.zeros(4, 2), torch.tensor([[3.0, 0.0]]).expand(5, 2)
    assert energy_distance(a, b) == pytest.approx(6.0, rel=1e-12)
    # the U-statistic has mean 0 for two samples of one distribution (the V-statistic does not)
    u, vv = [], []
    for _ in range(300):
        p = torch.from_numpy(g.normal(size=(30, 2)))
        q = torch.from_numpy(g.normal(size=(30, 2)))
        u.append(energy_distance(p, q))
        vv.append(energy_distance(p, q, unbiased=False))
    u, vv = np.array(u), np.array(vv)
    assert abs(u.mean()) < 4 * u.std() / math.sqrt(len(u))
    assert vv.mean() > 4 * vv.std() / math.sqrt(len(vv))


def test_bad_input_of_the_reverse_chain_is_named():
    betas = linear_schedule(10)
    with pytest.raises(ValueError, match="kl_weight is for steps t >= 2"):
        kl_weight(torch.tensor([1, 2]), betas)
    with pytest.raises(ValueError, match=r"eps must have shape \(T, \*x0.shape\)"):
        elbo(_fixed_eps_model, torch.zeros(3, 2), betas, torch.zeros(9, 3, 2))
    with pytest.raises(TypeError, match="eps_model must be callable"):
        sample("not a model", (3, 2), betas)
    with pytest.raises(ValueError, match="eps_hat must have xt's shape"):
        p_mean(torch.zeros(3, 2), torch.tensor([1, 2, 3]), torch.zeros(3, 1), betas)
    with pytest.raises(ValueError, match="same dimension"):
        energy_distance(torch.zeros(3, 2), torch.zeros(3, 1))
    with pytest.raises(ValueError, match="n >= 2"):
        energy_distance(torch.zeros(1, 2), torch.zeros(3, 2))
    net = NoisePredictor([0, 1], T=10, hidden=8)
    with pytest.raises(ValueError, match=r"xt must be \(K=2, B, dim=2\)"):
        net(torch.zeros(3, 4, 2), torch.ones(3, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"integer steps in 1..10"):
        net(torch.zeros(2, 4, 2), torch.full((2, 4), 11))
    with pytest.raises(ValueError, match="seeds must be a non-empty list"):
        NoisePredictor([], T=10)


def test_a_refined_schedule_keeps_both_ends_of_the_noise_and_follows_its_curve():
    base = diffusion.linear_schedule(50, 0.1 / 50, 20 / 50)
    fine = diffusion.refine_schedule(base, 197)  # 196 = 4 x 49 intervals: every 4th step is a step of base
    ab, ab_fine = diffusion.alphas_bar(base), diffusion.alphas_bar(fine)
    assert fine[0].item() == pytest.approx(base[0].item(), rel=1e-12)  # the first noise level, beta_1
    assert ab_fine[-1].item() == pytest.approx(ab[-1].item(), rel=1e-12)  # the last, abar_T
    # the same curve: the nested steps land on base's noise levels
    assert torch.allclose(ab_fine[::4], ab, rtol=1e-12, atol=0)
    # in between, the log-SNR is linear: a step halfway between two of base's sits halfway in log-SNR
    log_snr = torch.log(ab_fine / (1 - ab_fine))
    assert torch.allclose(log_snr[2::4], (log_snr[0:-1:4] + log_snr[4::4]) / 2, rtol=1e-12, atol=1e-12)
    assert torch.all((fine > 0) & (fine < 1))
    assert torch.allclose(diffusion.refine_schedule(base, 50), base, rtol=1e-12, atol=1e-15)  # T0 -> T0: unchanged
    # a plain linear schedule rescaled to T = 200 is not the refinement: its first step is four times smaller
    plain = diffusion.linear_schedule(200, 0.1 / 200, 20 / 200)
    assert plain[0].item() == pytest.approx(base[0].item() / 4)
    with pytest.raises(ValueError, match="T must be an int of at least 2; got 1"):
        diffusion.refine_schedule(base, 1)
    with pytest.raises(ValueError, match="betas must have at least 2 steps to refine; got 1"):
        diffusion.refine_schedule(base[:1], 10)
