import numpy as np
import pytest
import torch

from tests.linear_gaussian import LinearGaussian
from vaelib.metrics import (
    active_units,
    beta_vae_score,
    iwae_log_likelihood,
    kl_per_dimension,
    mig_per_factor,
    mutual_information_gap,
)
from vaelib.models import VAE


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


def _factors(n, rng):
    return np.stack([rng.integers(0, 5, n), rng.integers(0, 8, n)], axis=1)


def test_mig_is_one_for_copied_factors_and_zero_for_noise():
    rng = np.random.default_rng(0)
    f = _factors(5000, rng)
    codes = np.concatenate([f + 0.01 * rng.standard_normal(f.shape), rng.standard_normal((5000, 2))], axis=1)
    # one code per factor, exactly informative; the other codes are noise
    assert mig_per_factor(codes, f) == pytest.approx([1.0, 1.0], abs=0.03)
    noise = rng.standard_normal((5000, 4))
    assert mutual_information_gap(noise, f) < 0.03
    # a code that mixes both factors equally gives a small gap
    mixed = np.stack([f[:, 0] * 8 + f[:, 1], f[:, 1] * 5 + f[:, 0]], axis=1).astype(float)
    assert mutual_information_gap(mixed, f) < 0.5


def test_mig_rejects_bad_input():
    rng = np.random.default_rng(0)
    f = _factors(100, rng)
    with pytest.raises(ValueError):
        mutual_information_gap(rng.standard_normal((99, 3)), f)
    with pytest.raises(ValueError, match="constant"):
        mutual_information_gap(rng.standard_normal((100, 3)), np.zeros((100, 1), dtype=int))
    with pytest.raises(TypeError):
        mutual_information_gap(rng.standard_normal((100, 3)), f.astype(float))
    with pytest.raises(ValueError, match="NaN"):
        mutual_information_gap(np.full((100, 3), np.nan), f)


def test_beta_vae_score_known_answers():
    sizes = [3, 6, 10]
    render = lambda v: v.astype(float)  # "images" are the factors themselves
    copy = beta_vae_score(lambda x: x, render, sizes, n_train=300, n_test=200, pairs_per_point=16)
    assert copy["eval_accuracy"] > 0.95
    rng = np.random.default_rng(1)
    noise = beta_vae_score(lambda x: rng.standard_normal((len(x), 3)), render, sizes, n_train=300, n_test=300,
                           pairs_per_point=16)
    # chance is 1/3; 300 test points give a standard error of about 0.027
    assert noise["eval_accuracy"] < 1 / 3 + 0.12
    with pytest.raises(ValueError):
        beta_vae_score(lambda x: x, render, [3, 0])
