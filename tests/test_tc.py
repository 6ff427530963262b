"""The beta-TCVAE (chapter 12): the minibatch estimators of log q(z) against the exact mixture density,
the penalised loss against the ELBO, the fit_many contract, and bad inputs.

Monte Carlo checks use 4 standard errors (a false alarm about once in 16,000 runs per check; the
seeds are fixed, so a pass is reproducible); float64 identities use tolerances of round-off size.
"""

import math

import pytest
import torch

from tests.test_collapse import _Fixed, _rows
from tests.test_fit_many import _check_contract, _digits
from vaelib import tc
from vaelib.estimates import _mixture_log_density, kl_decomposition
from vaelib.models import AE, CVAE, VAE
from vaelib.objectives import BetaELBO

F64 = torch.float64


def _posteriors(n, d, seed):
    g = torch.Generator().manual_seed(seed)
    mu = torch.randn(n, d, generator=g, dtype=F64)
    mu[:, 1] = mu[:, 0] + 0.5 * mu[:, 1]  # correlated means: the aggregate has a total correlation
    logvar = -1.0 + 0.5 * torch.randn(n, d, generator=g, dtype=F64)
    z = mu + torch.exp(0.5 * logvar) * torch.randn(n, d, generator=g, dtype=F64)
    return z, mu, logvar


def test_weights_are_the_declared_ones():
    n, m = 100, 5
    w = tc.log_weight_matrix(m, n, "stratified").exp()
    assert torch.allclose(w.sum(1), torch.ones(m, dtype=F64), rtol=0, atol=1e-15)  # a mixture's weights
    assert torch.allclose(w.diagonal(), torch.full((m,), 1 / n, dtype=F64), rtol=1e-15)
    assert w[0, 1].item() == pytest.approx((n - 1) / (n * (m - 1)), rel=1e-15)
    w = tc.log_weight_matrix(m, n, "mws").exp()
    assert torch.allclose(w, torch.full((m, m), 1 / (n * m), dtype=F64), rtol=1e-15)
    # at M = N the stratified weights are all 1/N: the mixture itself
    assert torch.allclose(tc.log_weight_matrix(7, 7).exp(), torch.full((7, 7), 1 / 7, dtype=F64), rtol=1e-14)


def test_full_batch_stratified_is_the_exact_mixture_density():
    n, d = 30, 3
    z, mu, logvar = _posteriors(n, d, seed=0)
    log_qz, log_marg = tc.minibatch_log_density(z, mu, logvar, n, "stratified")
    # estimates' mixture density (expanded square, float64) against the direct (M, M, d) table:
    # round-off of terms of size ~100
    assert torch.allclose(log_qz, _mixture_log_density(z, mu, logvar), rtol=0, atol=1e-10)
    for j in range(d):
        exact_j = _mixture_log_density(z[:, j:j + 1], mu[:, j:j + 1], logvar[:, j:j + 1])
        assert torch.allclose(log_marg[:, j], exact_j, rtol=0, atol=1e-10)
    # minibatch-weighted sampling at M = N is the mixture times 1/N: log q(z) - log N exactly, so
    # its TC is off by (d - 1) log N
    log_qz_mws, log_marg_mws = tc.minibatch_log_density(z, mu, logvar, n, "mws")
    assert torch.allclose(log_qz_mws, log_qz - math.log(n), rtol=0, atol=1e-12)
    tc_exact = tc.total_correlation_minibatch(z, mu, logvar, n)
    tc_mws = tc.total_correlation_minibatch(z, mu, logvar, n, "mws")
    assert torch.allclose(tc_mws - tc_exact, torch.full((n,), (d - 1) * math.log(n), dtype=F64), atol=1e-10)


def test_stratified_density_is_unbiased_on_random_minibatches():
    # the data point's own posterior plus M - 1 others drawn without replacement, as in a shuffled
    # epoch: the estimate of q(z_i) (not of its log) averages to the exact mixture density
    n, d, m, reps = 25, 2, 6, 4000
    z, mu, logvar = _posteriors(n, d, seed=1)
    i = 3
    exact = _mixture_log_density(z[i:i + 1], mu, logvar)[0]
    g = torch.Generator().manual_seed(2)
    others = torch.tensor([k for k in range(n) if k != i])
    ratios, logs = [], []
    for _ in range(reps):
        rows = torch.cat([torch.tensor([i]), others[torch.randperm(n - 1, generator=g)[: m - 1]]])
        zb = z[rows].clone()  # every row's own code; row 0 is z_i
        log_qz, _ = tc.minibatch_log_density(zb, mu[rows], logvar[rows], n)
        ratios.append(torch.exp(log_qz[0] - exact))
        logs.append(log_qz[0] - exact)
    ratios, logs = torch.stack(ratios), torch.stack(logs)
    se = ratios.std() / math.sqrt(reps)
    assert abs(ratios.mean() - 1) < 4 * se, (ratios.mean(), se)
    assert se < 0.05  # the check has power: a bias of a few per cent would show
    # its log is biased low (Jensen): not above log q(z_i) beyond 4 standard errors
    assert logs.mean() < 4 * logs.std() / math.sqrt(reps)
    # Chen et al.'s weights average to a different density: about q(z_i) (M - 1) / (N M) + ...
    mws = torch.stack([tc.minibatch_log_density(z[[i, *r]], mu[[i, *r]], logvar[[i, *r]], n, "mws")[0][0]
                       for r in others.reshape(-1, 4)[:3].tolist()])
    assert (mws < exact - 1.0).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_fast_log_sum_exp_is_torchs(dtype):
    # tc raises exponents that would underflow (slow on a CPU) to a floor of ~1e-37 (float32) of the
    # largest term: the value and the gradient (the softmax) must be torch.logsumexp's, also with
    # entries hundreds of nats apart, where almost every exp underflows
    g = torch.Generator().manual_seed(8)
    x = (300 * torch.randn(6, 40, 3, generator=g, dtype=F64)).to(dtype).requires_grad_(True)
    ours = tc._logsumexp(x, dim=1)
    theirs = torch.logsumexp(x, dim=1)
    # round-off: float32 exponents of size ~300 carry ~300 * 6e-8 = 2e-5 each (float64: ~1e-13)
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ours, theirs, **tol)
    w = torch.randn(ours.shape, generator=g, dtype=F64).to(dtype)
    (g_ours,) = torch.autograd.grad((ours * w).sum(), x)
    (g_theirs,) = torch.autograd.grad((theirs * w).sum(), x)
    torch.testing.assert_close(g_ours, g_theirs, **tol)


def test_known_answers_at_any_batch_size():
    # every posterior the same diagonal Gaussian N(m, s^2): q(z) is that Gaussian, a product of
    # its marginals, so the stratified estimate is exact at any M and its TC is 0 draw by draw
    n, d, m = 1000, 3, 8
    g = torch.Generator().manual_seed(3)
    mu = torch.tensor([0.5, -1.0, 2.0], dtype=F64).expand(m, d)
    logvar = torch.tensor([-1.0, 0.3, 0.0], dtype=F64).expand(m, d)
    z = mu + torch.exp(0.5 * logvar) * torch.randn(m, d, generator=g, dtype=F64)
    log_qz, _ = tc.minibatch_log_density(z, mu, logvar, n)
    exact = torch.distributions.Normal(mu, torch.exp(0.5 * logvar)).log_prob(z).sum(-1)
    assert torch.allclose(log_qz, exact, rtol=0, atol=1e-12)
    assert tc.total_correlation_minibatch(z, mu, logvar, n).abs().max() < 1e-12
    # codes on the diagonal z_1 = z_2, far apart and narrow: each code's own posterior is the only
    # one that counts, q(z_i) = q(z_i|x_i) / N for the joint and for each marginal, so TC = log N
    n, m = 500, 10
    mu = (torch.arange(m, dtype=F64)[:, None] * 40.0).repeat(1, 2)
    logvar = torch.full((m, 2), -6.0, dtype=F64)
    z = mu + torch.exp(0.5 * logvar) * torch.randn(m, 2, generator=g, dtype=F64)
    out = tc.decomposition_minibatch(z, mu, logvar, n)
    assert torch.allclose(out["total_correlation"], torch.full((m,), math.log(n), dtype=F64), atol=1e-9)
    assert torch.allclose(out["mutual_info"], torch.full((m,), math.log(n), dtype=F64), atol=1e-9)


def test_full_batch_decomposition_is_kl_decomposition_at_the_same_draws():
    n, d = 60, 3
    g = torch.Generator().manual_seed(4)
    x = _rows(torch.randn(n, d, generator=g), torch.randn(n, d, generator=g) - 1)
    ref = kl_decomposition(_Fixed(d), x, n_samples=1, generator=torch.Generator().manual_seed(9))
    mu, logvar = x[:, :d], x[:, d:]
    eps = torch.randn(1, n, d, generator=torch.Generator().manual_seed(9), dtype=F64)[0]  # kl_decomposition's draws
    ours = tc.decomposition_minibatch(mu + torch.exp(0.5 * logvar) * eps, mu, logvar, n)
    for key in ("mutual_info", "total_correlation", "dimensionwise_kl", "average_kl_mc"):
        assert ours[key].mean().item() == pytest.approx(ref[key], abs=1e-10), key
    # the three parts add up to the Monte Carlo KL draw by draw
    parts = ours["mutual_info"] + ours["total_correlation"] + ours["dimensionwise_kl"]
    assert torch.allclose(parts, ours["average_kl_mc"], rtol=0, atol=1e-10)


def _vae(seed, d=3):
    torch.manual_seed(seed)
    return VAE((1, 8, 8), d, hidden=16).double()


def test_beta_one_is_the_elbo_exactly_and_beta_adds_its_tc():
    x = _digits(40).x.bernoulli(generator=torch.Generator().manual_seed(0))
    eps = torch.randn(40, 3, generator=torch.Generator().manual_seed(1), dtype=F64)
    vae = _vae(0)
    elbo_loss, _ = BetaELBO(1.0)(vae, x, eps=eps)
    # beta = 1: (beta - 1) TC is exactly 0, so the loss is the ELBO's, bit for bit
    one, _ = BetaELBO(1.0)(tc.BetaTCVAE(vae, 1.0, 150), x, eps=eps)
    assert torch.equal(one, elbo_loss)
    # beta = 5: the ELBO's loss plus 4 times the batch mean of the TC estimate, and its gradient
    model = tc.BetaTCVAE(vae, 5.0, 150)
    loss, _ = BetaELBO(1.0)(model, x, eps=eps)
    out = vae(x, eps=eps)
    tc_mean = tc.total_correlation_minibatch(out.z, out.mu, out.logvar, 150).mean()
    by_hand = elbo_loss + 4.0 * tc_mean
    assert loss.item() == pytest.approx(by_hand.item(), rel=1e-12)
    # the penalty moves this loss (~45 nats) by 4 |TC| > 4e-6, far beyond the tolerance's ~5e-11:
    # the comparison has teeth
    assert abs(tc_mean.item()) > 1e-6
    params = list(vae.parameters())
    for a, b in zip(torch.autograd.grad(loss, params), torch.autograd.grad(by_hand, params)):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-12)
    # the penalty couples the batch: a row's TC term moves with another row's posterior
    mu = out.mu.detach().clone().requires_grad_(True)
    tc_0 = tc.total_correlation_minibatch(out.z.detach(), mu, out.logvar.detach(), 150)[0]
    (grad,) = torch.autograd.grad(tc_0, mu)
    assert grad[1:].abs().max() > 0


def test_the_loss_is_chen_et_al_s_in_expectation():
    # Chen et al. write the loss with all three parts by Monte Carlo, -rec + I + beta TC + DWKL;
    # the wrapper's -rec + KL (closed form) + (beta - 1) TC has the same expectation over the noise,
    # because the Monte Carlo KL I + TC + DWKL is unbiased for the closed form: 4 standard errors
    x = _digits(40).x.bernoulli(generator=torch.Generator().manual_seed(0))
    vae, beta, n = _vae(1), 4.0, 40
    model = tc.BetaTCVAE(vae, beta, n)
    g = torch.Generator().manual_seed(5)
    diffs = []
    with torch.no_grad():
        for _ in range(300):
            eps = torch.randn(n, 3, generator=g, dtype=F64)
            ours, _ = BetaELBO(1.0)(model, x, eps=eps)
            out = vae(x, eps=eps)
            parts = tc.decomposition_minibatch(out.z, out.mu, out.logvar, n)
            chen = -out.px.log_prob(x).mean() + (parts["mutual_info"] + beta * parts["total_correlation"]
                                                 + parts["dimensionwise_kl"]).mean()
            diffs.append(chen - ours)
    diffs = torch.stack(diffs)
    assert diffs.abs().max() > 1e-6  # they differ draw by draw ...
    assert abs(diffs.mean()) < 4 * diffs.std() / math.sqrt(len(diffs))  # ... and agree on average


def test_fit_many_members_are_their_own_fit_runs():
    # the penalty is computed inside fit_many's vmap; member i must still be fit's run alone
    models, hists = _check_contract(lambda: tc.BetaTCVAE(VAE((1, 8, 8), 3, hidden=16), 4.0, 150), BetaELBO(1.0),
                                    _digits(), [0, 1])
    assert hists[0]["kl"][-1] != hists[1]["kl"][-1]


def test_bad_input_is_refused():
    vae = _vae(0)
    with pytest.raises(TypeError, match="vaelib.models.VAE"):
        tc.BetaTCVAE(AE((1, 8, 8), 3, hidden=16), 2.0, 100)
    with pytest.raises(TypeError, match="vaelib.models.VAE"):
        tc.BetaTCVAE(CVAE((1, 8, 8), 3, n_classes=10, hidden=16), 2.0, 100)
    for beta in (-1.0, math.nan, math.inf, True, "2"):
        with pytest.raises(ValueError, match="beta must be a finite number >= 0"):
            tc.BetaTCVAE(vae, beta, 100)
    with pytest.raises(ValueError, match="dataset_size must be >= 2"):
        tc.BetaTCVAE(vae, 2.0, 1)
    with pytest.raises(TypeError, match="dataset_size must be an int"):
        tc.BetaTCVAE(vae, 2.0, 100.0)
    with pytest.raises(ValueError, match="estimator must be one of"):
        tc.BetaTCVAE(vae, 2.0, 100, estimator="mss")
    model = tc.BetaTCVAE(vae, 2.0, 10)
    x = _digits(20).x
    with pytest.raises(ValueError, match="no per-dimension KL"):
        model.terms(x[:5], per_dim=True)
    with pytest.raises(ValueError, match="more than dataset_size = 10"):
        model.terms(x)
    with pytest.raises(ValueError, match="batch_size must be >= 2"):
        model.terms(x[:1])
    z, mu, logvar = _posteriors(8, 2, seed=0)
    with pytest.raises(ValueError, match=r"must all be \(M, d\)"):
        tc.minibatch_log_density(z, mu[:, :1], logvar, 10)
    with pytest.raises(TypeError, match="floating-point"):
        tc.minibatch_log_density(z.long(), mu, logvar, 10)
    with pytest.raises(TypeError, match="float32 or float64"):
        tc.minibatch_log_density(z.half(), mu.half(), logvar.half(), 10)
    with pytest.raises(ValueError, match="at least the batch size"):
        tc.minibatch_log_density(z, mu, logvar, 5)
    with pytest.raises(ValueError, match="estimator must be one of"):
        tc.total_correlation_minibatch(z, mu, logvar, 10, estimator="exact")
