"""The estimates from a model's posterior: the importance-sampled log-likelihood and the Monte Carlo
ELBO (against exact and hand-computed answers on a linear-Gaussian model), latent usage, and the
codes a model gives its inputs."""

import math

import numpy as np
import pytest
import torch

from tests.linear_gaussian import LinearGaussian
from vaelib.estimates import (
    active_units,
    codes,
    elbo_estimate,
    iwae_log_likelihood,
    kl_per_dimension,
    posterior_means,
)
from vaelib.models import AE, CVAE, VAE
from vaelib.objectives import elbo, gaussian_kl


@pytest.mark.parametrize("k", [1, 7, 300])
def test_iwae_is_exact_when_the_posterior_is_exact(k):
    model = LinearGaussian()
    x = model.sample(20)
    est = iwae_log_likelihood(model, x, k, max_rows=64)  # small chunks exercise the running logsumexp
    # every importance weight equals p(x), so any k gives log p(x) up to float64 round-off
    torch.testing.assert_close(est, model.log_evidence(x), rtol=0, atol=1e-10)


def test_iwae_with_a_wrong_posterior_is_a_bound_that_tightens():
    model = LinearGaussian(posterior_shift=0.8)
    x = model.sample(50)
    exact = model.log_evidence(x).mean()
    g = torch.Generator().manual_seed(0)
    gaps = [float(exact - iwae_log_likelihood(model, x, k, generator=g).mean()) for k in (1, 10, 1000)]
    assert gaps[0] > 0.1  # the ELBO is strictly below log p(x) when q is wrong
    assert gaps[0] > gaps[1] > gaps[2] > -0.01


def test_iwae_rejects_bad_k_and_inputs():
    model = LinearGaussian()
    x = model.sample(3)
    for bad in (0, -1):
        with pytest.raises(ValueError, match="at least 1"):
            iwae_log_likelihood(model, x, bad)
    with pytest.raises(TypeError):
        iwae_log_likelihood(model, x, 2.0)
    with pytest.raises(ValueError, match="NaN"):
        iwae_log_likelihood(model, x * float("nan"), 2)
    vae = VAE((1, 8, 8), 2, hidden=8)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        iwae_log_likelihood(vae, torch.full((2, 64), 3.0), 2)


def test_iwae_runs_on_a_vae_with_large_k():
    torch.manual_seed(0)
    vae = VAE((1, 8, 8), 2, hidden=8)
    x = torch.bernoulli(torch.full((4, 64), 0.5))
    ll = iwae_log_likelihood(vae, x, 5000)
    assert ll.shape == (4,) and torch.isfinite(ll).all()


def test_active_units_and_kl_per_dimension():
    torch.manual_seed(0)
    vae = VAE((1, 8, 8), 3, hidden=8)
    with torch.no_grad():  # make latent 2 ignore its input: its posterior mean is constant
        last = vae.encoder[-1]
        last.weight[2].zero_()
        last.bias[2] = 0.3
        last.weight[5].zero_()
        last.bias[5] = 0.0
    x = torch.rand(200, 64)
    n, var = active_units(vae, x)
    assert var.shape == (3,) and var[2] == 0.0 and n == int((var > 0.01).sum()) and n <= 2
    kl = kl_per_dimension(vae, x)
    # latent 2: N(0.3, 1) against N(0, 1) has KL 0.3^2 / 2 for every x
    assert kl[2] == pytest.approx(0.045, abs=1e-6)
    with pytest.raises(ValueError):
        active_units(vae, x[:1])


# ---------------------------------------------------------------- the Monte Carlo ELBO


def _hand_rec(model, x, z):
    """log N(x; W z + b, s^2 I), written out: -1/2 (||x - W z - b||^2 / s^2 + D log(2 pi s^2))."""
    r = x - z @ model.W.T - model.b
    return -0.5 * ((r**2).sum(1) / model.s**2 + x.shape[1] * math.log(2 * math.pi * model.s**2))


def _hand_kl(mu, logvar):
    """KL(N(mu, diag e^logvar) || N(0, I)) = 1/2 sum(mu^2 + e^logvar - logvar - 1), written out."""
    return 0.5 * (mu**2 + logvar.exp() - logvar - 1).sum(1)


def test_elbo_estimate_is_the_hand_computed_average_over_the_seeded_draws():
    model = LinearGaussian(posterior_shift=0.3)  # a wrong posterior: KL and reconstruction both matter
    x = model.sample(6)
    got = elbo_estimate(model, x, n_samples=5, seed=11, batch_size=4)  # two decoder batches per draw
    # by hand: the documented draws (torch.randn(mu.shape) five times from a generator seeded 11)
    mu, logvar = model.encode(x)
    gen = torch.Generator().manual_seed(11)
    recs = [_hand_rec(model, x, mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=gen,
                                                                                dtype=torch.float64))
            for _ in range(5)]
    want = torch.stack(recs).mean(0) - _hand_kl(mu, logvar)
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float64 and got.shape == (6,)
    # the same float64 operations in another order: round-off only
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
    # the seed fixes the draws; another seed gives other draws
    torch.testing.assert_close(elbo_estimate(model, x, 5, 11), got, rtol=0, atol=1e-12)
    assert not torch.allclose(elbo_estimate(model, x, 5, 12), got)


def _closed_form_elbo(model, x):
    """The exact ELBO of the linear-Gaussian model: E_q ||x - W z - b||^2 = ||x - W mu - b||^2 + tr(W^T W Sigma),
    and W^T W = diag(a^2) because W = Q diag(a) with orthonormal Q."""
    mu, logvar = model.encode(x)
    spread = (model.a**2 * logvar.exp()).sum(1) / model.s**2
    return _hand_rec(model, x, mu) - 0.5 * spread - _hand_kl(mu, logvar)


def test_elbo_estimate_is_unbiased_for_the_closed_form_elbo():
    exact = LinearGaussian()
    x = exact.sample(50)
    # the closed form itself: with the exact posterior the ELBO is log p(x) (round-off only)
    torch.testing.assert_close(_closed_form_elbo(exact, x), exact.log_evidence(x), rtol=0, atol=1e-10)
    model = LinearGaussian(posterior_shift=0.8)
    x = model.sample(2000)
    err = elbo_estimate(model, x, n_samples=3, seed=0) - _closed_form_elbo(model, x)
    # errors of different rows are independent (independent draws) with mean 0: 4 standard errors
    assert abs(float(err.mean())) < 4 * float(err.std()) / math.sqrt(len(err))
    # and more draws shrink them as 1/sqrt(n_samples): 48 draws against 3, a ratio of 4
    err48 = elbo_estimate(model, x, n_samples=48, seed=0) - _closed_form_elbo(model, x)
    assert 3.0 < float(err.std() / err48.std()) < 5.0


def _vae(seed=0, latent=3):
    torch.manual_seed(seed)
    return VAE((1, 4, 4), latent, hidden=8)


def test_elbo_estimate_replaces_the_chapters_loops():
    vae = _vae()
    x = torch.bernoulli(torch.full((9, 16), 0.4), generator=torch.Generator().manual_seed(0))
    vae.train()
    # one draw: objectives.elbo with the first draw of the seeded generator
    eps = torch.randn(9, 3, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        want = elbo(vae, x, eps=eps).elbo.double()
    torch.testing.assert_close(elbo_estimate(vae, x, 1, 5), want, rtol=0, atol=1e-5)
    assert vae.training  # the model's mode is restored
    # chapter 09's mean_elbo: objectives.elbo averaged over 10 draws of a generator (float32 mean)
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        ch10 = torch.stack([elbo(vae, x, eps=torch.randn(9, 3, generator=gen)).elbo for _ in range(10)]).mean(0)
    torch.testing.assert_close(elbo_estimate(vae, x, 10, 7), ch10.double(), rtol=0, atol=1e-4)
    # chapter 05's elbo_of: the ELBO of given Gaussians under the decoder, closed-form KL
    with torch.no_grad():
        mu, lv = vae.encode(x)
    mu, lv = mu + 0.1, lv - 0.2
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        rec = torch.stack([vae.decode(mu + torch.exp(0.5 * lv) * torch.randn(mu.shape, generator=gen)).log_prob(x)
                           for _ in range(10)]).mean(0)
    ch07 = (rec - gaussian_kl(mu, lv)).double()
    torch.testing.assert_close(elbo_estimate(vae, x, 10, 3, posterior=(mu, lv)), ch07, rtol=0, atol=1e-4)
    # rows per decoder call do not change the draws
    torch.testing.assert_close(elbo_estimate(vae, x, 4, 1, batch_size=2), elbo_estimate(vae, x, 4, 1),
                               rtol=0, atol=1e-5)


def test_elbo_estimate_of_a_cvae_uses_its_labels_and_prior():
    torch.manual_seed(0)
    cvae = CVAE((1, 4, 4), 2, n_classes=3, prior="class_mean", hidden=8)
    x = torch.bernoulli(torch.full((6, 16), 0.5), generator=torch.Generator().manual_seed(1))
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    eps = torch.randn(6, 2, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        want = elbo(cvae, x, y, eps=eps).elbo.double()  # KL to p(z|y) = N(mu_y, I), not to N(0, I)
    torch.testing.assert_close(elbo_estimate(cvae, x, 1, 4, y=y), want, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="labels"):
        elbo_estimate(cvae, x, 1, 4)


def test_elbo_estimate_rejects_bad_input():
    vae = _vae()
    x = torch.rand(4, 16)
    with pytest.raises(TypeError, match="Gaussian posterior"):
        elbo_estimate(AE((1, 4, 4), 2, hidden=8), x, 2, 0)
    for bad in (0, -3):
        with pytest.raises(ValueError, match="n_samples"):
            elbo_estimate(vae, x, bad, 0)
    for bad in (2.0, True):
        with pytest.raises(TypeError, match="n_samples"):
            elbo_estimate(vae, x, bad, 0)
    with pytest.raises(ValueError, match="seed"):
        elbo_estimate(vae, x, 2, -1)
    with pytest.raises(TypeError, match="seed"):
        elbo_estimate(vae, x, 2, None)
    with pytest.raises(ValueError, match="NaN"):
        elbo_estimate(vae, x * float("nan"), 2, 0)
    with pytest.raises(ValueError, match="rows of x"):
        elbo_estimate(vae, x, 2, 0, posterior=(torch.zeros(3, 3), torch.zeros(3, 3)))
    with pytest.raises(ValueError, match="same shape"):
        elbo_estimate(vae, x, 2, 0, posterior=(torch.zeros(4, 3), torch.zeros(4, 2)))


# ---------------------------------------------------------------- codes and posterior means


class _Recorder(torch.nn.Module):
    """A model of no declared kind: encode returns (x[:, :2], 0) or x[:, :2], and records the grad mode."""

    def __init__(self, pair):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1))
        self.pair, self.grad_modes, self.modes = pair, [], []

    def encode(self, x):
        self.grad_modes.append(torch.is_grad_enabled())
        self.modes.append(self.training)
        z = x[:, :2] * self.w
        return (z, torch.zeros_like(z)) if self.pair else z


class _Liar(_Recorder):
    has_posterior = True  # declares a posterior, but encodes to a tensor


def test_codes_are_posterior_means_for_a_vae_and_the_code_for_an_ae():
    x = torch.rand(7, 16)
    vae = _vae()
    c = codes(vae, x, batch_size=3)
    assert isinstance(c, np.ndarray) and c.dtype == np.float64 and c.shape == (7, 3)
    np.testing.assert_array_equal(c, posterior_means(vae, x, batch_size=3))  # same batches: same float32 sums
    np.testing.assert_allclose(c, vae.encode(x)[0].detach().double().numpy(), rtol=0, atol=1e-6)
    torch.manual_seed(0)
    ae = AE((1, 4, 4), 2, hidden=8, input_noise=0.5)
    ae.train()
    got = codes(ae, x)
    assert ae.training  # restored
    np.testing.assert_allclose(got, ae.encode(x).detach().double().numpy(), rtol=0, atol=1e-6)
    with pytest.raises(TypeError, match="Gaussian posterior"):
        posterior_means(ae, x)  # an AE has no posterior mean


def test_codes_of_a_cvae_need_its_labels():
    torch.manual_seed(0)
    cvae = CVAE((1, 4, 4), 2, n_classes=3, hidden=8)
    x, y = torch.rand(5, 16), torch.tensor([0, 1, 2, 1, 0])
    np.testing.assert_allclose(codes(cvae, x, y=y), cvae.encode(x, y)[0].detach().double().numpy(),
                               rtol=0, atol=1e-6)
    np.testing.assert_array_equal(codes(cvae, x, y=y, batch_size=2), posterior_means(cvae, x, 2, y=y))
    with pytest.raises(ValueError, match="labels"):
        codes(cvae, x)


def test_codes_of_an_undeclared_model_follow_what_encode_returns_in_eval_mode_without_grad():
    x = torch.rand(5, 4)
    for pair in (True, False):
        model = _Recorder(pair)
        model.train()
        np.testing.assert_array_equal(codes(model, x, batch_size=2), x[:, :2].double().numpy())
        assert model.grad_modes == [False] * 3 and model.modes == [False] * 3 and model.training
    with pytest.raises(TypeError, match="has a posterior"):
        codes(_Liar(pair=False), x)
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        codes(_Recorder(True), torch.zeros(3))
    with pytest.raises(ValueError, match="batch_size"):
        codes(_Recorder(True), x, batch_size=0)
