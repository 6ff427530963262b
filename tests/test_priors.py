"""vaelib.priors (chapter 11): the mixture log-density against torch.distributions, the VampPrior and
the mixture prior in cases with known answers, the Monte Carlo KL against closed forms, the estimates
against vaelib.estimates where the prior is N(0, I), and fit_many's contract for the new model.

Monte Carlo comparisons are made at 4 standard errors (a false alarm about once in 16,000 runs per
check; the seeds are fixed, so a pass is reproducible). Exact comparisons are in float64, where only
round-off separates two ways of computing the same sum.
"""

import math

import numpy as np
import pytest
import torch
import torch.distributions as td

from tests.test_fit_many import _check_contract, _digits
from vaelib import estimates, models, priors
from vaelib.data import load_digits
from vaelib.objectives import BetaELBO, gaussian_kl
from vaelib.priors import GaussianMixtureDensity, PriorVAE, mixture_log_prob

F64 = torch.float64
SHAPE = (1, 8, 8)


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _x(n=12, seed=0):
    """The first n test digits, binarised once, float64."""
    return load_digits("test").binarized_once(seed=seed).x[:n].to(F64)


def _model(prior, k=None, d=3, seed=0, hidden=16):
    torch.manual_seed(seed)
    return PriorVAE(SHAPE, d, prior=prior, n_components=k, hidden=hidden).to(F64)


def _torch_mixture(means, logvars, log_w):
    return td.MixtureSameFamily(td.Categorical(logits=log_w), td.Independent(td.Normal(means, torch.exp(0.5 * logvars)), 1))


def test_mixture_log_prob_is_torch_distributions():
    g = _gen(0)
    k, d = 5, 3
    means = 2 * torch.randn(k, d, generator=g, dtype=F64)
    logvars = torch.randn(k, d, generator=g, dtype=F64) - 1
    log_w = torch.log_softmax(torch.randn(k, generator=g, dtype=F64), 0)
    z = 3 * torch.randn(4, 7, d, generator=g, dtype=F64)  # any leading shape
    ours = mixture_log_prob(z, means, logvars, log_w)
    assert ours.shape == (4, 7)
    # float64 log-sum-exp of the same five terms, summed in another order: round-off ~1e-15
    torch.testing.assert_close(ours, _torch_mixture(means, logvars, log_w).log_prob(z), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("prior", ["mog", "vamp"])
def test_the_models_prior_is_the_mixture_of_its_components(prior):
    m = _model(prior, k=4)
    with torch.no_grad():
        if prior == "mog":  # unequal weights and variances: a uniform mixture would not do
            m.prior_logits.copy_(torch.tensor([0.0, 1.0, -1.0, 2.0]))
            m.prior_logvars.copy_(torch.randn(4, 3, generator=_gen(1), dtype=F64))
        z = 2 * torch.randn(50, 3, generator=_gen(2), dtype=F64)
        if prior == "mog":
            means, logvars, log_w = m.prior_means, m.prior_logvars, torch.log_softmax(m.prior_logits, 0)
        else:  # the encoder's posteriors at the pseudo-inputs, equal weights
            means, logvars = m.encode(m.pseudo_inputs.clamp(0, 1))
            log_w = torch.full((4,), -math.log(4), dtype=F64)
        expected = _torch_mixture(means, logvars, log_w).log_prob(z)
        torch.testing.assert_close(m.log_prior(z), expected, rtol=1e-12, atol=1e-12)
        # the model's KL is log q(z|x) - log p(z) at the code it decodes
        x = _x(6)
        eps = torch.randn(6, 3, generator=_gen(3), dtype=F64)
        out = m(x, eps=eps)
        log_q = td.Independent(td.Normal(out.mu, torch.exp(0.5 * out.logvar)), 1).log_prob(out.z)
        _, kl = m.terms(x, eps=eps)
        torch.testing.assert_close(kl, log_q - _torch_mixture(means, logvars, log_w).log_prob(out.z),
                                   rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("prior", ["mog", "vamp"])
def test_the_estimates_float64_prior_is_the_models(prior):
    # the estimates read a PriorVAE's mixture once and evaluate it by expanded squares in float64;
    # the model's own log_prior forms the differences. Float64 round-off on O(10) numbers
    m = _model(prior, k=5)
    z = 3 * torch.randn(300, 3, generator=_gen(0), dtype=F64)
    with torch.no_grad():
        fast = priors._log_prior_fn(m, None)(z)
        torch.testing.assert_close(fast, m.log_prior(z), rtol=1e-10, atol=1e-10)


def test_a_vampprior_with_one_pseudo_input_at_x_is_the_posterior_of_x():
    m = _model("vamp", k=1)
    x = _x(2)
    with torch.no_grad():
        m.encoder[-1].weight.mul_(10)  # an untrained encoder gives every image nearly one posterior
        m.pseudo_inputs.copy_(x[:1])  # binary pixels: inside [0, 1], so the clipping leaves them
        mu, logvar = m.encode(x)
        z = torch.randn(40, 3, generator=_gen(0), dtype=F64)
        # p(z) = q(z | x_0) exactly
        expected = td.Independent(td.Normal(mu[0], torch.exp(0.5 * logvar[0])), 1).log_prob(z)
        torch.testing.assert_close(m.log_prior(z), expected, rtol=1e-12, atol=1e-12)
        # the KL of x_0 to a prior that is its own posterior: 0 for every code, not only on average
        n = 20_000
        eps = torch.randn(n, 3, generator=_gen(1), dtype=F64)
        _, kl0 = m.terms(x[:1].expand(n, -1), eps=eps)
        assert kl0.abs().max() < 1e-10
        # the KL of x_1: on average the closed-form KL between the two Gaussians ({eq}`kl-diag`)
        _, kl1 = m.terms(x[1:2].expand(n, -1), eps=eps)
        closed = gaussian_kl(mu[1], logvar[1], mu[0], logvar[0])
        assert closed > 0.05  # two different images: a real distance, so a zero would show
        assert abs(kl1.mean() - closed) < 4 * kl1.std() / math.sqrt(n)


@pytest.mark.parametrize("prior", ["standard", "mog"])
def test_the_monte_carlo_kl_averages_to_the_closed_form_against_n01(prior):
    m = _model(prior, k=None if prior == "standard" else 3)
    if prior == "mog":  # three components, all N(0, I): the mixture is N(0, I) whatever the weights
        with torch.no_grad():
            m.prior_means.zero_()
            m.prior_logvars.zero_()
            m.prior_logits.copy_(torch.tensor([0.3, -2.0, 1.0]))
    x, n = _x(5), 40_000
    with torch.no_grad():
        mu, logvar = m.encode(x)
        closed = gaussian_kl(mu, logvar)  # (5,)
        eps = torch.randn(n * 5, 3, generator=_gen(4), dtype=F64)
        kl = m.terms(x.repeat(n, 1), eps=eps)[1].reshape(n, 5)  # n draws per image
    se = kl.std(0) / math.sqrt(n)
    assert (closed > 0.01).all()  # a KL that is zero would pass any test of its mean
    assert ((kl.mean(0) - closed).abs() < 4 * se).all(), (kl.mean(0), closed, se)


def test_the_monte_carlo_kl_against_a_shifted_gaussian_prior():
    # one MoG component N(m, diag e^v): the MC KL averages to the closed form against it
    m = _model("mog", k=1)
    with torch.no_grad():
        m.prior_means.copy_(torch.tensor([[0.5, -1.0, 2.0]]))
        m.prior_logvars.copy_(torch.tensor([[0.3, -0.5, 1.0]]))
    x, n = _x(4), 40_000
    with torch.no_grad():
        mu, logvar = m.encode(x)
        closed = gaussian_kl(mu, logvar, m.prior_means[0], m.prior_logvars[0])
        eps = torch.randn(n * 4, 3, generator=_gen(5), dtype=F64)
        kl = m.terms(x.repeat(n, 1), eps=eps)[1].reshape(n, 4)
    assert ((kl.mean(0) - closed).abs() < 4 * kl.std(0) / math.sqrt(n)).all()


def test_a_prior_vae_starts_from_the_vaes_networks():
    (vae,) = models.one_per_seed(lambda: models.VAE(SHAPE, 4, hidden=16), [7])
    for prior in ("standard", "mog", "vamp"):
        (pv,) = models.one_per_seed(lambda: PriorVAE(SHAPE, 4, prior=prior, hidden=16), [7])
        for name, t in vae.state_dict().items():
            assert torch.equal(pv.state_dict()[name], t), (prior, name)
    (other,) = models.one_per_seed(lambda: PriorVAE(SHAPE, 4, prior="vamp", hidden=16), [8])
    assert not torch.equal(other.encoder[0].weight, vae.encoder[0].weight)  # the seed does matter


def test_iwae_is_the_librarys_under_the_standard_prior():
    vae = models.VAE(SHAPE, 3, hidden=16).to(F64)
    pv = _model("standard")
    pv.load_state_dict(vae.state_dict())
    x = _x(10)
    lib = estimates.iwae_log_likelihood(vae, x, 23, max_rows=40, generator=_gen(0))  # chunks of 4 codes
    for model in (vae, pv):  # a plain VAE (N(0, I) by default) and the PriorVAE's own standard prior
        ours = priors.iwae_log_likelihood(model, x, 23, max_rows=40, generator=_gen(0))
        torch.testing.assert_close(ours, lib, rtol=1e-12, atol=1e-10)
    # a learned prior changes the bound: the library's estimate, which fixes N(0, I), refuses the model,
    # and with N(0, I) passed by hand gives another number
    vamp = _model("vamp", k=3)
    ours = priors.iwae_log_likelihood(vamp, x, 23, generator=_gen(0))
    with pytest.raises(TypeError, match=r"iwae_log_likelihood assumes the prior N\(0, I\); this PriorVAE has the "
                                        r"prior 'vamp': for a learned prior use vaelib.priors.iwae_log_likelihood"):
        estimates.iwae_log_likelihood(vamp, x, 23, generator=_gen(0))
    assumed = estimates.iwae_log_likelihood(vamp, x, 23, generator=_gen(0), log_prior=priors.standard_normal_log_prob)
    assert (ours - assumed).abs().max() > 0.1
    # and priors' estimate, told the prior is N(0, I), gives the same number
    told = priors.iwae_log_likelihood(vamp, x, 23, generator=_gen(0), log_prior=priors.standard_normal_log_prob)
    torch.testing.assert_close(told, assumed, rtol=1e-12, atol=1e-10)


@pytest.mark.parametrize("fn, args, instead", [
    ("aggregate_posterior", (), "vaelib.priors.aggregate_split"),
    ("aggregate_log_ratio", (torch.zeros(2, 3, dtype=F64),), "vaelib.priors.aggregate_log_ratio"),
    ("kl_decomposition", (), "factorises over the latent dimensions"),
])
def test_the_estimates_that_fix_the_prior_at_n01_refuse_a_learned_prior(fn, args, instead):
    x = _x(5)
    getattr(estimates, fn)(_model("standard"), x, *args)  # the PriorVAE's standard prior is N(0, I): accepted
    with pytest.raises(TypeError, match=f"estimates.{fn} assumes the prior N\\(0, I\\); this PriorVAE has the "
                                        f"prior 'mog': .*{instead}"):
        getattr(estimates, fn)(_model("mog", k=2), x, *args)


@pytest.mark.parametrize("prior", ["mog", "vamp"])
def test_l1_averages_to_the_models_own_elbo(prior):
    # L_1 from the estimator and log p(x|z) - KL from the model's terms: two implementations of the
    # one-sample ELBO with the model's prior, equal in expectation (4 standard errors over the draws)
    m = _model(prior, k=4)
    x, n = _x(3), 20_000
    xs = x.repeat(n, 1)  # every image n times: n independent draws each
    with torch.no_grad():
        l1 = priors.iwae_log_likelihood(m, xs, 1, generator=_gen(0)).reshape(n, 3)
        px, kl = m.terms(xs, eps=torch.randn(n * 3, 3, generator=_gen(1), dtype=F64))
        elbo = (px.log_prob(xs) - kl).reshape(n, 3)
    diff = l1.mean(0) - elbo.mean(0)
    se = torch.sqrt(l1.var(0) / n + elbo.var(0) / n)
    assert (diff.abs() < 4 * se).all(), (diff, se)


def test_the_aggregate_split_is_the_librarys_under_the_standard_prior():
    vae = models.VAE(SHAPE, 3, hidden=16).to(F64)
    x = _x(30)
    lib = estimates.aggregate_posterior(vae, x, 3, generator=_gen(0))
    ours = priors.aggregate_split(vae, x, 3, generator=_gen(0))
    for key in ("mutual_info", "marginal_kl", "mutual_info_se", "marginal_kl_se", "mutual_info_max_term", "log_n"):
        assert ours[key] == pytest.approx(lib[key], rel=1e-10, abs=1e-12), key
    # the rate: ours is Monte Carlo, the library's the closed form
    assert abs(ours["rate"] - lib["rate"]) < 4 * ours["rate_se"]
    z = torch.randn(20, 3, generator=_gen(1), dtype=F64)
    np.testing.assert_allclose(priors.aggregate_log_ratio(vae, x, z), estimates.aggregate_log_ratio(vae, x, z),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("prior", ["mog", "vamp"])
def test_a_prior_equal_to_the_aggregate_posterior_has_zero_aggregate_kl(prior):
    # the optimal prior ({eq}`pri-optimal`): the mixture of the N posteriors themselves. Set the MoG's
    # N components to them, or the VampPrior's N pseudo-inputs to the N images: KL(q(z) || p(z)) = 0
    # for every draw, and the rate is all information
    x = _x(8)
    m = _model(prior, k=8)
    with torch.no_grad():
        m.encoder[-1].weight.mul_(50)  # an untrained encoder gives every image nearly one posterior
        if prior == "mog":
            mu, logvar = m.encode(x)
            m.prior_means.copy_(mu)
            m.prior_logvars.copy_(logvar)
            m.prior_logits.zero_()
        else:
            m.pseudo_inputs.copy_(x)
    out = priors.aggregate_split(m, x, 5, generator=_gen(0))
    assert abs(out["marginal_kl"]) < 1e-10 and out["marginal_kl_se"] < 1e-10
    assert out["rate"] == pytest.approx(out["mutual_info"], abs=1e-10)
    assert out["mutual_info"] > 0.5  # the posteriors differ, so there is something to carry
    z = torch.randn(30, 3, generator=_gen(1), dtype=F64)
    assert np.abs(priors.aggregate_log_ratio(m, x, z)).max() < 1e-10


def test_the_sklearn_mixture_is_the_same_density():
    from sklearn.mixture import GaussianMixture

    rng = np.random.default_rng(0)
    codes = np.concatenate([rng.normal(-2, 0.5, (300, 2)), rng.normal(1.5, 1.0, (200, 2))])
    gmm = GaussianMixture(2, covariance_type="diag", random_state=0).fit(codes)
    dens = GaussianMixtureDensity.from_sklearn(gmm)
    z = rng.normal(0, 2, (40, 2))
    # float64, the same Gaussian terms: round-off
    np.testing.assert_allclose(dens.log_prob(torch.from_numpy(z)).numpy(), gmm.score_samples(z), rtol=1e-10)
    # its samples: the mixture's mean, within 4 standard errors per coordinate
    s = dens.sample(50_000, _gen(0))
    mean = (torch.from_numpy(gmm.weights_)[:, None] * torch.from_numpy(gmm.means_)).sum(0)
    assert ((s.mean(0) - mean).abs() < 4 * s.std(0) / math.sqrt(len(s))).all()


def test_prior_samples_follow_the_mixture():
    # far-apart components: each draw names its component, whose share must match its weight
    m = _model("mog", k=3)
    with torch.no_grad():
        m.prior_means.copy_(torch.tensor([[-20.0, 0, 0], [0, 0, 0], [20.0, 0, 0]]))
        m.prior_logvars.fill_(-2.0)
        m.prior_logits.copy_(torch.tensor([0.0, 1.0, 2.0]))
    n = 30_000
    z = m.sample_prior(n, _gen(0))
    shares = torch.stack([(z[:, 0] < -10).double().mean(), (z[:, 0].abs() < 10).double().mean(),
                          (z[:, 0] > 10).double().mean()])
    w = torch.softmax(m.prior_logits.detach(), 0)
    assert ((shares - w).abs() < 4 * torch.sqrt(w * (1 - w) / n)).all(), (shares, w)
    # the standard prior draws exactly what torch.randn draws from the same generator
    std = _model("standard")
    torch.testing.assert_close(std.sample_prior(5, _gen(3)), torch.randn(5, 3, generator=_gen(3), dtype=F64))
    assert m.sample(4, _gen(1)).shape == (4, 64)


@pytest.mark.parametrize("prior", ["mog", "vamp"])
def test_fit_many_members_are_their_own_fit_runs(prior):
    _check_contract(lambda: PriorVAE(SHAPE, 3, prior=prior, n_components=4, hidden=16), BetaELBO(1.0), _digits(),
                    [0, 1])


def test_bad_inputs_are_refused_with_clear_errors():
    with pytest.raises(ValueError, match="prior must be one of"):
        PriorVAE(SHAPE, 3, prior="gaussian")
    with pytest.raises(ValueError, match="n_components must be >= 1"):
        PriorVAE(SHAPE, 3, prior="vamp", n_components=0)
    with pytest.raises(TypeError, match="n_components must be an int"):
        PriorVAE(SHAPE, 3, prior="mog", n_components=2.5)
    with pytest.raises(ValueError, match="standard prior N\\(0, I\\) has one component"):
        PriorVAE(SHAPE, 3, prior="standard", n_components=4)
    m = _model("vamp", k=2)
    x = _x(3)
    with pytest.raises(ValueError, match="per_dim=True is refused"):
        m.terms(x, per_dim=True)
    with pytest.raises(ValueError, match=r"z must be a tensor \(\.\.\., 3\)"):
        m.log_prior(torch.zeros(4, 5, dtype=F64))
    with pytest.raises(ValueError, match="n must be >= 1"):
        m.sample_prior(0)
    means, logvars, log_w = torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2)
    with pytest.raises(ValueError, match=r"z must be \(\.\.\., 3\)"):
        mixture_log_prob(torch.zeros(4, 2), means, logvars, log_w)
    with pytest.raises(ValueError, match="logvars must have the means' shape"):
        mixture_log_prob(torch.zeros(4, 3), means, torch.zeros(3, 3), log_w)
    with pytest.raises(ValueError, match="log_weights must be \\(2,\\)"):
        mixture_log_prob(torch.zeros(4, 3), means, logvars, torch.zeros(3))
    with pytest.raises(ValueError, match="k must be >= 1"):
        priors.iwae_log_likelihood(m, x, 0)
    with pytest.raises(TypeError, match="log_prior must be a function"):
        priors.iwae_log_likelihood(m, x, 2, log_prior=3.0)
    with pytest.raises(ValueError, match=r"z must be \(M, 3\)"):
        priors.aggregate_log_ratio(m, x, torch.zeros(4, 2))
    with pytest.raises(ValueError, match="weights must be"):
        GaussianMixtureDensity(torch.zeros(2, 3), torch.zeros(2, 3), torch.tensor([0.5, 0.6]))

    from sklearn.mixture import GaussianMixture

    with pytest.raises(ValueError, match="covariance_type='diag'"):
        GaussianMixtureDensity.from_sklearn(GaussianMixture(2))
    with pytest.raises(ValueError, match="not fitted"):
        GaussianMixtureDensity.from_sklearn(GaussianMixture(2, covariance_type="diag"))
