"""The measurements of the chapter "The VAE, measured", on a small trained VAE.

The chapter checks them at its own budget; these tests hold the same claims on a model that trains
in about a second, so a change in vaelib that breaks them fails here first.
"""

import math

import pytest
import torch

from vaelib import data, estimates, models, objectives, train


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    tr = data.load_digits("train", binarize=True).subset(400)
    te = data.load_digits("test", binarize=True).binarized_once(seed=0).subset(100)
    model = models.VAE(tr.shape, 16, hidden=32)
    h = train.fit(model, tr, objectives.BetaELBO(1.0), epochs=8, batch_size=50, device="cpu",
                  eval_data=te, progress=False)
    return model, h, te


def _sem(a):
    return float(a.double().std() / math.sqrt(a.numel()))


def test_the_test_set_is_binarised_once_and_reproducibly():
    a = data.load_digits("test", binarize=True).binarized_once(seed=0)
    b = data.load_digits("test", binarize=True).binarized_once(seed=0)
    assert torch.equal(a.x, b.x) and set(torch.unique(a.x).tolist()) == {0.0, 1.0}
    assert not a.binarize  # batches of it are not redrawn
    assert torch.equal(a.batch(torch.arange(5))[0], a.x[:5])


def test_importance_weighted_bound_is_above_the_elbo_and_grows_with_k(trained):
    model, h, te = trained
    g = torch.Generator().manual_seed(0)
    elbo_x = torch.stack([estimates.iwae_log_likelihood(model, te.x, 1, generator=g) for _ in range(50)]).mean(0)
    # the 50-code ELBO agrees with fit's one-code test ELBO: one code per image has a spread of a few
    # nats, so over 100 images fit's estimate is within about 1 nat
    assert abs(elbo_x.mean().item() - h["test_elbo"][-1]) < 1.0
    prev = elbo_x
    for k in (10, 200):
        cur = estimates.iwae_log_likelihood(model, te.x, k, generator=g)
        diff = cur - prev  # paired across test images; monotone in k in expectation
        assert diff.mean() > -3 * _sem(diff)
        prev = cur
    assert (prev - elbo_x).mean() > 0.05  # an 8-epoch VAE leaves a clearly positive gap
    assert prev.mean() < 0  # log-probabilities of binary images


def test_kl_per_dimension_adds_up_to_the_kl_and_inactive_units_have_none(trained):
    model, _, te = trained
    kl_dims = estimates.kl_per_dimension(model, te.x)
    kl = train.evaluate(model, te, objectives.BetaELBO(1.0))["kl"]
    assert kl_dims.sum() == pytest.approx(kl, rel=1e-4, abs=1e-4)
    n_active, var = estimates.active_units(model, te.x)
    assert 0 <= n_active <= 16 and var.shape == (16,)
    # a unit whose posterior mean never moves and whose variance is the prior's carries no KL
    assert all(kl_dims[var <= 1e-4] < 0.05)
