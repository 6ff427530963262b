"""vaelib.hierarchical: the two-layer importance-sampled log-likelihood against the exact evidence of a
linear-Gaussian chain; the model's KL term against its definition by Monte Carlo and against
torch.distributions; training with fit and fit_many; bad input named."""

import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from vaelib import data, objectives, train
from vaelib.hierarchical import LinearGaussianTwoLayer, TwoLayerVAE, iwae_log_likelihood, n_parameters

F64 = torch.float64
THETA = dict(a=1.3, b=0.4, c=-0.8, s=0.6, t=0.9)


def _x(n=6, d=3, seed=0):
    return 1.5 * torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=F64)


def test_the_linear_gaussian_evidence_is_the_integral_of_the_joint():
    # log p(x) in closed form against a 2-D quadrature of p(x | z1) p(z1 | z2) p(z2) over a grid, one coordinate
    lg = LinearGaussianTwoLayer(**THETA)
    x = torch.tensor([[0.7]], dtype=F64)
    g = torch.linspace(-9, 9, 1801, dtype=F64)
    z1, z2 = torch.meshgrid(g, g, indexing="ij")
    a, b, c, s, t = THETA.values()
    joint = (Normal(a * z1 + b, s).log_prob(x[0, 0]) + Normal(c * z2, t).log_prob(z1) + Normal(0, 1).log_prob(z2)).exp()
    quad = math.log(joint.sum().item() * (g[1] - g[0]).item() ** 2)
    # a Riemann sum of a smooth Gaussian at step 0.01 is exact to round-off; tails beyond 9 sd are < 1e-18
    assert lg.log_evidence(x).item() == pytest.approx(quad, abs=1e-9)


def test_at_the_exact_posterior_every_weight_is_the_evidence():
    # q = p(z1, z2 | x): log w = log p(x) for every draw, so k = 1 is exact to round-off
    lg = LinearGaussianTwoLayer(**THETA)
    x = _x()
    est = iwae_log_likelihood(lg, x, k=1, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(est, lg.log_evidence(x), rtol=0, atol=1e-12)


def test_with_an_imperfect_q_the_bound_is_the_elbo_at_k1_and_rises_to_the_evidence():
    lg = LinearGaussianTwoLayer(**THETA, shift=0.5)
    x = _x(n=1, d=2).expand(5_000, 2).contiguous()  # one point, many independent estimates
    g = torch.Generator().manual_seed(2)
    log_px = lg.log_evidence(x[:1]).item()
    means = {}
    for k in (1, 10, 100):
        draws = iwae_log_likelihood(lg, x, k=k, generator=g)
        means[k] = (draws.mean().item(), draws.std().item() / math.sqrt(len(draws)))
    # L_1 is the ELBO, log p(x) minus the exact KL of the shifted q (4 standard errors: fails by chance w.p. 6e-5)
    elbo = lg.elbo_exact(x[:1]).item()
    assert abs(means[1][0] - elbo) < 4 * means[1][1]
    assert log_px - elbo > 0.5  # the shift makes a gap far above the standard error (~0.01)
    # the bounds rise with k and stay below log p(x)
    assert means[1][0] < means[10][0] < means[100][0] < log_px + 4 * means[100][1]
    # and L_100 closes most of the gap
    assert log_px - means[100][0] < 0.2 * (log_px - elbo)


def test_chunking_does_not_change_the_estimate_in_distribution_and_the_chunks_are_independent():
    lg = LinearGaussianTwoLayer(**THETA, shift=0.3)
    x = _x(n=500, d=1, seed=3)
    one = iwae_log_likelihood(lg, x, k=40, generator=torch.Generator().manual_seed(4))
    many = iwae_log_likelihood(lg, x, k=40, generator=torch.Generator().manual_seed(5), max_rows=500 * 3)
    diff = one - many
    # two independent estimates of the same L_40 per point: the mean difference within 4 s.e. of 0
    assert abs(diff.mean().item()) < 4 * diff.std().item() / math.sqrt(len(diff))
    assert diff.abs().max().item() > 1e-6  # and not the same numbers


def _vae(seed=0, **kw):
    torch.manual_seed(seed)
    return TwoLayerVAE((1, 4, 4), latent1=3, latent2=2, hidden=16, **kw).double()


def test_the_kl_term_is_the_definition_by_monte_carlo():
    # terms' KL at one z2 is KL(q(z2|x) || N(0, I)) + KL(q(z1|x,z2) || p(z1|z2)), closed form given z2.
    # Its average over z2 must equal the Monte Carlo mean of log q(z2|x) + log q(z1|x,z2) - log p(z1|z2)
    # - log p(z2) over draws of both layers: the definition of the KL term of the ELBO.
    m = _vae()
    x = torch.rand(1, 16, generator=torch.Generator().manual_seed(0), dtype=F64).round().expand(40_000, 16)
    eps = torch.randn(len(x), m.latent_dim, generator=torch.Generator().manual_seed(1), dtype=F64)
    with torch.no_grad():
        out = m(x, eps)
        kl = m.kl(out)
        log_ratio = (
            Normal(out.mu2, (0.5 * out.logvar2).exp()).log_prob(out.z2).sum(-1)
            + Normal(out.mu1, (0.5 * out.logvar1).exp()).log_prob(out.z1).sum(-1)
            - Normal(out.prior_mu1, (0.5 * out.prior_logvar1).exp()).log_prob(out.z1).sum(-1)
            - Normal(0.0, 1.0).log_prob(out.z2).sum(-1)
        )
    diff = log_ratio - kl  # zero mean, draw by draw not zero
    assert abs(diff.mean().item()) < 4 * diff.std().item() / math.sqrt(len(diff))
    assert diff.std().item() > 1e-3
    # and the closed form given z2 is torch.distributions' KL
    want = kl_divergence(Normal(out.mu1, (0.5 * out.logvar1).exp()),
                         Normal(out.prior_mu1, (0.5 * out.prior_logvar1).exp())).sum(-1)
    want = want + kl_divergence(Normal(out.mu2, (0.5 * out.logvar2).exp()), Normal(0.0, 1.0)).sum(-1)
    torch.testing.assert_close(kl, want, rtol=1e-10, atol=1e-10)
    per_dim = m.kl(out, per_dim=True)
    assert per_dim.shape == (len(x), 5)
    torch.testing.assert_close(per_dim.sum(-1), kl, rtol=1e-12, atol=1e-12)


def test_the_iwae_estimate_of_the_network_at_k1_is_the_elbo_on_average_and_bounds_rise():
    m = _vae(seed=1)
    x = torch.rand(1, 16, generator=torch.Generator().manual_seed(2), dtype=F64).round().expand(20_000, 16)
    eps = torch.randn(len(x), m.latent_dim, generator=torch.Generator().manual_seed(3), dtype=F64)
    with torch.no_grad():
        elbo = objectives.elbo(m, x, eps=eps).elbo
    l1 = iwae_log_likelihood(m, x, 1, generator=torch.Generator().manual_seed(4))
    se = math.hypot(elbo.std().item(), l1.std().item()) / math.sqrt(len(x))
    assert abs(elbo.mean().item() - l1.mean().item()) < 4 * se
    l50 = iwae_log_likelihood(m, x[:2000], 50, generator=torch.Generator().manual_seed(5))
    assert l50.mean().item() > l1.mean().item() + 4 * se


def test_fit_many_trains_each_member_as_fit_does():
    digits = data.load_digits("train", binarize=True, dtype=F64).subset(128)
    digits = data.ImageData(digits.x[:, :16], digits.y, (1, 4, 4), binarize=True)
    alone = [_vae(seed=s) for s in (0, 1)]
    together = [_vae(seed=s) for s in (0, 1)]
    for m, s in zip(alone, (0, 1)):
        train.fit(m, digits, objectives.BetaELBO(1.0), epochs=2, batch_size=32, seed=s, device="cpu", progress=False)
    train.fit_many(together, digits, objectives.BetaELBO(1.0), seeds=[0, 1], epochs=2, batch_size=32,
                   device="cpu", progress=False)
    for a, b in zip(alone, together):
        for (name, p), q in zip(a.named_parameters(), b.parameters()):
            # float64, the same steps in another order of summation
            torch.testing.assert_close(p, q, rtol=1e-9, atol=1e-11, msg=name)
    assert any((p - q).abs().max() > 1e-3 for p, q in zip(alone[0].parameters(), _vae(0).parameters()))


def test_sampling_and_parameter_count():
    m = _vae()
    x = m.sample(5, generator=torch.Generator().manual_seed(0))
    assert x.shape == (5, 16) and ((x >= 0) & (x <= 1)).all()
    # trunk 16*16+16 + 16*16+16, q_top 16*4+4, q_bottom (18*8+8) + (8*6+6), prior (2*8+8) + (8*6+6),
    # decoder (3*16+16) + (16*16+16) + (16*16+16)
    assert n_parameters(m) == 272 * 2 + 68 + 152 + 54 + 24 + 54 + 64 + 272 * 2
    g = _vae(likelihood="gaussian")
    assert n_parameters(g) == n_parameters(m) + 16


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="latent2 must be a positive int"):
        TwoLayerVAE((1, 4, 4), 3, 0)
    with pytest.raises(ValueError, match=r"x_shape must be \(C, H, W\)"):
        TwoLayerVAE((16,), 3, 2)
    with pytest.raises(ValueError, match="likelihood must be one of"):
        TwoLayerVAE((1, 4, 4), 3, 2, likelihood="poisson")
    m = _vae()
    with pytest.raises(ValueError, match=r"x must have shape \(B, 16\)"):
        m.terms(torch.zeros(2, 15, dtype=F64))
    with pytest.raises(ValueError, match=r"eps must be a tensor of shape \(2, 5\)"):
        m.terms(torch.zeros(2, 16, dtype=F64), eps=torch.zeros(2, 3, dtype=F64))
    with pytest.raises(ValueError, match="k must be a positive int"):
        iwae_log_likelihood(m, torch.zeros(2, 16, dtype=F64), 0)
    with pytest.raises(ValueError, match="Bernoulli likelihood needs targets in"):
        iwae_log_likelihood(m, torch.full((2, 16), 2.0, dtype=F64), 3)
    with pytest.raises(ValueError, match="standard deviations s and t must be > 0"):
        LinearGaussianTwoLayer(1.0, 0.0, 1.0, 0.0, 1.0)
    with pytest.raises(ValueError, match="float64"):
        LinearGaussianTwoLayer(**THETA).log_evidence(torch.zeros(2, 1))
