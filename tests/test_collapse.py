"""Posterior collapse and the aggregate posterior: KL warm-up, free bits, and the split of the KL
term into I_q(x; z) + KL(q(z) || p(z)) (chapter 09).

Monte Carlo estimates are checked against closed forms within 4 standard errors (a false alarm
about once in 16,000 runs per check; the seeds are fixed, so a pass is reproducible).
"""

import math

import numpy as np
import pytest
import torch
from torch import nn

from tests.test_fit_many import _check_contract, _digits
from vaelib.estimates import _mixture_log_density, aggregate_log_ratio, aggregate_posterior
from vaelib.models import VAE
from vaelib.objectives import BetaELBO, FreeBitsELBO, WarmupELBO
from vaelib.train import fit_many


class _Fixed(nn.Module):
    """A stand-in encoder: row n of x is (mu_n, logvar_n), so every posterior is set by the test."""

    def __init__(self, d):
        super().__init__()
        self.d = d

    def encode(self, x):
        return x[:, : self.d], x[:, self.d :]


def _rows(mu, logvar):
    return torch.cat([torch.as_tensor(mu, dtype=torch.float64), torch.as_tensor(logvar, dtype=torch.float64)], 1)


def test_identical_posteriors_carry_no_information():
    # every q(z|x_n) = N(m, s^2): q(z) is that Gaussian, I_q = 0 exactly, and KL(q(z)||p) is
    # the closed form 1/2 sum(s^2 + m^2 - 1 - log s^2)
    n, d = 50, 3
    m = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    logvar = torch.tensor([-1.0, 0.3, 0.0], dtype=torch.float64)
    x = _rows(m.expand(n, d), logvar.expand(n, d))
    out = aggregate_posterior(_Fixed(d), x, n_samples=40, generator=torch.Generator().manual_seed(0))
    assert abs(out["mutual_info"]) < 1e-12  # log q(z|x_n) - log q(z) = 0 term by term (float64)
    closed = 0.5 * float((logvar.exp() + m**2 - 1 - logvar).sum())
    assert out["rate"] == pytest.approx(closed, rel=1e-12)
    assert abs(out["marginal_kl"] - closed) < 4 * out["marginal_kl_se"]
    assert out["log_n"] == pytest.approx(math.log(n))


def test_separated_posteriors_reach_log_n():
    # N far-apart, narrow posteriors: every code names its image, so I_q = log N (to e^-huge)
    n, d = 20, 2
    mu = torch.stack([torch.arange(n) * 50.0, torch.zeros(n)], 1)
    x = _rows(mu, torch.full((n, d), -4.0))
    out = aggregate_posterior(_Fixed(d), x, n_samples=5, generator=torch.Generator().manual_seed(1))
    assert out["mutual_info"] == pytest.approx(math.log(n), abs=1e-9)
    # every term is at most log N; the expanded square loses ~1e-16 of terms of size ~1e8 here
    assert out["mutual_info_max_term"] <= math.log(n) + 1e-7
    # random posteriors: the two parts are non-negative, and the information at most log N
    g = torch.Generator().manual_seed(2)
    x = _rows(torch.randn(200, 4, generator=g), torch.randn(200, 4, generator=g) - 1)
    out = aggregate_posterior(_Fixed(4), x, n_samples=20, generator=g)
    assert 0 < out["mutual_info"] <= out["log_n"] and out["marginal_kl"] > 0


def test_aggregate_log_ratio_is_the_mixture_density_over_the_prior():
    d = 2
    mu = torch.tensor([[1.0, 0.0], [-1.0, 2.0], [0.0, 0.5]], dtype=torch.float64)
    logvar = torch.tensor([[0.0, -1.0], [0.5, 0.0], [-2.0, -2.0]], dtype=torch.float64)
    z = torch.randn(7, d, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    comps = torch.distributions.Independent(torch.distributions.Normal(mu, (0.5 * logvar).exp()), 1)
    prior = torch.distributions.Independent(torch.distributions.Normal(torch.zeros(d), torch.ones(d)), 1)
    expected = torch.logsumexp(comps.log_prob(z.unsqueeze(1)), 1) - math.log(3) - prior.log_prob(z)
    got = aggregate_log_ratio(_Fixed(d), _rows(mu, logvar), z)
    torch.testing.assert_close(torch.from_numpy(got), expected, rtol=1e-12, atol=1e-12)
    # many narrow components, in chunks of 3 rows (the chunks' seams are crossed)
    g = torch.Generator().manual_seed(4)
    mu = 3 * torch.randn(500, 5, generator=g, dtype=torch.float64)
    logvar = torch.randn(500, 5, generator=g, dtype=torch.float64) - 4
    z = torch.randn(10, 5, generator=g, dtype=torch.float64)
    mix = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(logits=torch.zeros(500, dtype=torch.float64)),
        torch.distributions.Independent(torch.distributions.Normal(mu, (0.5 * logvar).exp()), 1))
    torch.testing.assert_close(_mixture_log_density(z, mu, logvar, chunk=3), mix.log_prob(z), rtol=1e-10,
                               atol=1e-10)


def test_aggregate_metrics_reject_bad_input():
    x = _rows(torch.zeros(5, 2), torch.zeros(5, 2))
    with pytest.raises(ValueError, match="n_samples"):
        aggregate_posterior(_Fixed(2), x, n_samples=0)
    with pytest.raises(ValueError, match="N >= 2"):
        aggregate_posterior(_Fixed(2), x[:1])
    with pytest.raises(ValueError, match=r"z must be \(M, 2\)"):
        aggregate_log_ratio(_Fixed(2), x, torch.zeros(3, 5))
    with pytest.raises(ValueError, match="NaN"):
        aggregate_log_ratio(_Fixed(2), x, torch.full((3, 2), float("nan")))


def test_warmup_weight_rises_linearly_to_one():
    obj = WarmupELBO(100)
    assert [float(obj.weight(s)) for s in (0, 25, 100, 1000)] == [0.0, 0.25, 1.0, 1.0]
    rec, kl = torch.tensor(-50.0), torch.tensor(8.0)
    loss, metrics = obj.loss(rec, kl, step=50)
    assert float(loss) == pytest.approx(50.0 + 0.5 * 8.0)
    assert float(metrics["elbo"]) == -58.0  # the logged ELBO is the ELBO, whatever the weight
    # the stacked form (two models, two warm-up lengths) gives each its own weight
    losses, _ = WarmupELBO.stack([WarmupELBO(100), WarmupELBO(200)]).loss(torch.tensor([-50.0, -50.0]),
                                                                          torch.tensor([8.0, 8.0]), step=50)
    assert losses.tolist() == pytest.approx([54.0, 52.0])
    with pytest.raises(ValueError, match="warmup_steps"):
        WarmupELBO(0)


def test_free_bits_stops_the_gradient_below_lambda_only():
    kl = torch.tensor([0.05, 0.3, 2.0], requires_grad=True)
    loss, metrics = FreeBitsELBO(0.25).loss(torch.tensor(-10.0), kl, step=0)
    loss.backward()
    assert kl.grad.tolist() == [0.0, 1.0, 1.0]  # the dimension under 0.25 nats is free
    assert float(loss.detach()) == pytest.approx(10.0 + 0.25 + 0.3 + 2.0)
    assert float(metrics["kl"].detach()) == pytest.approx(2.35)
    assert float(metrics["elbo"].detach()) == pytest.approx(-12.35)
    # lam = 0 is the ELBO: the same loss as BetaELBO(1) on the same batch
    torch.manual_seed(0)
    model = VAE((1, 8, 8), 3, hidden=16)
    x = _digits(20).x.float()
    eps = torch.randn(20, 3)
    a = FreeBitsELBO(0.0)(model, x, eps=eps)[0]
    b = BetaELBO(1.0)(model, x, eps=eps)[0]
    torch.testing.assert_close(a, b)
    _, kl_dims = model.terms(x, eps=eps, per_dim=True)
    assert kl_dims.shape == (20, 3)
    torch.testing.assert_close(kl_dims.sum(1), model.terms(x, eps=eps)[1])
    with pytest.raises(ValueError, match="lam"):
        FreeBitsELBO(-0.1)
    with pytest.raises(ValueError, match="every latent dimension"):
        FreeBitsELBO(0.1).loss(torch.tensor(-1.0), torch.tensor(1.0), 0)


def test_free_bits_and_warmup_members_are_their_own_fit_runs():
    make = lambda: VAE((1, 8, 8), 3, hidden=16)  # noqa: E731
    _check_contract(make, [FreeBitsELBO(0.5), FreeBitsELBO(0.0)], _digits(), [0, 1])
    _check_contract(make, [WarmupELBO(3), WarmupELBO(10)], _digits(), [2, 3])


def test_free_bits_keeps_units_open_that_the_elbo_closes():
    # 6 latent dimensions on 150 digits: the ELBO closes them (each ends near 0.01 nats); 0.5 free
    # nats per dimension keep every one open, near lam (a unit below lam pays lam anyway, so the
    # encoder fills it; the batch-mean KL hovers around lam, so the line is drawn at 0.3)
    data = _digits()
    torch.manual_seed(0)
    plain = VAE((1, 8, 8), 6, hidden=32).double()
    free = VAE((1, 8, 8), 6, hidden=32).double()
    free.load_state_dict(plain.state_dict())
    fit_many([plain], data, BetaELBO(1.0), seeds=[0], epochs=60, batch_size=50, lr=1e-2, device="cpu")
    fit_many([free], data, FreeBitsELBO(0.5), seeds=[0], epochs=60, batch_size=50, lr=1e-2, device="cpu")
    x = data.x
    kl_plain = plain.terms(x, per_dim=True)[1].mean(0)
    kl_free = free.terms(x, per_dim=True)[1].mean(0)
    assert int((kl_free > 0.3).sum()) > int((kl_plain > 0.3).sum())
    assert bool((kl_free > 0.3).all())


def test_objectives_with_and_without_per_dimension_kl_do_not_mix():
    make = lambda: VAE((1, 8, 8), 3, hidden=16)  # noqa: E731
    with pytest.raises(ValueError, match="must all be FreeBitsELBO"):
        fit_many([make(), make()], _digits(), [FreeBitsELBO(0.5), BetaELBO(1.0)], seeds=[0, 1], epochs=1,
                 device="cpu")


def test_dsprites_image_counts_pool_identical_images():
    from scipy.stats import entropy

    from vaelib.data import dsprites_image_counts

    f = np.array([[0, 0, 0, 5, 5], [0, 0, 0, 5, 5], [2, 5, 3, 20, 10], [1, 3, 7, 0, 31]])
    # three distinct images, the first drawn twice
    counts = dsprites_image_counts(16, f, chunk=3)
    assert sorted(counts.tolist()) == [1, 1, 2]
    # identical images in different chunks are pooled too
    assert sorted(dsprites_image_counts(16, f, chunk=1).tolist()) == [1, 1, 2]
    expected = -(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25))
    assert entropy(counts) == pytest.approx(expected, rel=1e-12)
    assert dsprites_image_counts(16, f[:1]).tolist() == [1]
    with pytest.raises(ValueError, match="factors must be"):
        dsprites_image_counts(16, np.zeros((0, 5), dtype=int))
