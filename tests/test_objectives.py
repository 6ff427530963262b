import copy
import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from vaelib.models import CVAE, VAE
from vaelib.objectives import (
    BetaELBO,
    CapacityELBO,
    ConstrainedELBO,
    FreeBitsELBO,
    Reconstruction,
    WarmupELBO,
    elbo,
    gaussian_kl,
)


def _reference(mu, logvar, pmu, plogvar):
    q = Normal(mu, torch.exp(0.5 * logvar))
    p = Normal(pmu, torch.exp(0.5 * plogvar))
    return kl_divergence(q, p).sum(-1)


def test_gaussian_kl_matches_torch_on_random_inputs():
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(64, 7, generator=g, dtype=torch.float64), torch.randn(64, 7, generator=g, dtype=torch.float64)
    pmu, plogvar = torch.randn(7, generator=g, dtype=torch.float64), torch.randn(7, generator=g, dtype=torch.float64)
    torch.testing.assert_close(gaussian_kl(mu, logvar), _reference(mu, logvar, 0 * mu, 0 * mu), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gaussian_kl(mu, logvar, pmu, plogvar), _reference(mu, logvar, pmu, plogvar),
                               rtol=1e-12, atol=1e-12)


def test_gaussian_kl_extreme_inputs():
    mu = torch.tensor([[0.0, 1e3, -1e3, 0.0, 0.0]], dtype=torch.float64)
    logvar = torch.tensor([[0.0, 0.0, 0.0, 30.0, -30.0]], dtype=torch.float64)
    ours = gaussian_kl(mu.T, logvar.T)  # one example per row, one latent dim
    ref = _reference(mu.T, logvar.T, torch.zeros_like(mu.T), torch.zeros_like(mu.T))
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    assert ours[0] == 0.0  # KL(N(0,1) || N(0,1)) is exactly 0
    assert math.isclose(float(ours[1]), 0.5e6, rel_tol=1e-15)


def test_gaussian_kl_sums_over_last_dim_only():
    mu, logvar = torch.randn(3, 4, 5), torch.randn(3, 4, 5)
    assert gaussian_kl(mu, logvar).shape == (3, 4)


@pytest.mark.parametrize(
    "args, err",
    [
        ((torch.zeros(3, 2), torch.zeros(3, 3)), ValueError),
        ((torch.zeros(3, 2), torch.zeros(3, 2), torch.zeros(4)), ValueError),
        ((torch.tensor([[float("nan")]]), torch.zeros(1, 1)), ValueError),
        (([0.0], torch.zeros(1)), TypeError),
        ((torch.zeros(2, 2), torch.zeros(2, 2), "0"), TypeError),
    ],
)
def test_gaussian_kl_rejects_bad_input(args, err):
    with pytest.raises(err):
        gaussian_kl(*args)


def test_elbo_parts_and_bad_targets():
    torch.manual_seed(0)
    m = VAE((1, 8, 8), 3, hidden=16)
    x = torch.bernoulli(torch.full((5, 64), 0.3))
    t = elbo(m, x)
    assert t.elbo.shape == t.rec.shape == t.kl.shape == (5,)
    torch.testing.assert_close(t.elbo, t.rec - t.kl)
    assert (t.kl >= 0).all() and (t.rec <= 0).all()  # Bernoulli log-likelihood of binary data
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        elbo(m, x * 2.0)
    with pytest.raises(ValueError, match="NaN"):
        elbo(m, torch.full((2, 64), float("nan")))
    with pytest.raises(ValueError, match=r"\(B, 64\)"):
        elbo(m, torch.zeros(2, 63))


def test_beta_objective_weights_the_kl():
    torch.manual_seed(0)
    m = VAE((1, 8, 8), 3, hidden=16)
    x = torch.bernoulli(torch.full((8, 64), 0.3))
    torch.manual_seed(1)
    loss1, parts = BetaELBO(1.0)(m, x)
    torch.manual_seed(1)
    loss4, _ = BetaELBO(4.0)(m, x)
    torch.testing.assert_close(loss4 - loss1, 3.0 * parts["kl"])
    with pytest.raises(ValueError):
        BetaELBO(-1.0)


def test_capacity_and_constrained_objectives():
    torch.manual_seed(0)
    m = VAE((1, 8, 8), 3, hidden=16)
    x = torch.bernoulli(torch.full((8, 64), 0.3))
    cap = CapacityELBO(gamma=10.0, c_max=5.0, anneal_steps=100)
    assert cap.capacity(0) == 0.0 and cap.capacity(50) == 2.5 and cap.capacity(1000) == 5.0
    torch.manual_seed(1)
    loss, p = cap(m, x, step=50)
    torch.testing.assert_close(loss, -p["rec"] + 10.0 * (p["kl"] - 2.5).abs())
    con = ConstrainedELBO(delta=1e6, lr_beta=0.5, beta0=1.0)
    con(m, x)
    assert con.current_beta == 0.0  # a slack constraint drives beta to zero (projected at 0)
    con = ConstrainedELBO(delta=0.0, lr_beta=0.5, beta0=1.0)
    _, p = con(m, x)
    assert con.current_beta == pytest.approx(1.0 + 0.5 * float(p["kl"].detach()))


def test_cvae_elbo_uses_the_conditional_prior():
    torch.manual_seed(0)
    for prior in ("conditional", "class_mean"):
        m = CVAE((1, 8, 8), 2, n_classes=10, prior=prior, hidden=16)
        x = torch.bernoulli(torch.full((4, 64), 0.5))
        y = torch.tensor([0, 1, 2, 3])
        t = elbo(m, x, y)
        assert t.kl.shape == (4,)
        with pytest.raises(ValueError):
            m.prior(torch.tensor([10]))
        with pytest.raises(TypeError):
            m.prior(torch.tensor([0.5]))


# Each objective's loss written once: the K-stacked form (hyperparameters as (K,) tensors) must give every
# member the loss, the metrics and (for ConstrainedELBO) the dual step it gets alone. The members differ in
# every hyperparameter, and the steps cross each schedule's kink, so a hyperparameter read from the wrong
# member, broadcast on the wrong axis or clamped in the wrong place shows.
_STACKED = [
    [BetaELBO(0.5), BetaELBO(1.0), BetaELBO(4.0)],
    [CapacityELBO(10.0, 2.0, 5), CapacityELBO(30.0, 6.0, 9), CapacityELBO(1.0, 0.0, 1)],
    [ConstrainedELBO(0.5, lr_beta=0.1, beta0=1.0), ConstrainedELBO(3.0, lr_beta=0.5, beta0=0.0),
     ConstrainedELBO(9.0, lr_beta=0.2, beta0=2.0)],
    [WarmupELBO(3), WarmupELBO(10), WarmupELBO(1)],
    [FreeBitsELBO(0.0), FreeBitsELBO(0.3), FreeBitsELBO(1.5)],
    [Reconstruction(), Reconstruction(), Reconstruction()],
]


@pytest.mark.parametrize("members", _STACKED, ids=lambda ms: type(ms[0]).__name__)
def test_the_stacked_loss_is_each_members_own_loss(members):
    g = torch.Generator().manual_seed(0)
    k, latent = len(members), 4
    per_dim = members[0].kl_per_dimension
    stacked = type(members[0]).stack(copy.deepcopy(members))
    for step in (0, 2, 4, 7, 12):
        rec = -50 * torch.rand(k, generator=g, dtype=torch.float64)
        kl = 3 * torch.rand((k, latent) if per_dim else (k,), generator=g, dtype=torch.float64)
        loss, metrics = stacked.loss(rec, kl, step)
        assert loss.shape == (k,)
        for i, member in enumerate(members):
            alone, alone_metrics = member.loss(rec[i], kl[i], step)
            torch.testing.assert_close(loss[i], alone, rtol=1e-15, atol=0)
            assert metrics.keys() == alone_metrics.keys()
            for key in metrics:
                torch.testing.assert_close(metrics[key][i], alone_metrics[key], rtol=1e-15, atol=0, msg=key)
    stacked.write_back(members_after := copy.deepcopy(members))
    for i, member in enumerate(members):
        if isinstance(member, ConstrainedELBO):  # the dual variable after five ascent steps
            assert members_after[i].current_beta == pytest.approx(member.current_beta, rel=1e-15, abs=0)


def test_objectives_of_different_classes_do_not_stack():
    with pytest.raises(ValueError, match="must all be BetaELBO; got \\['BetaELBO', 'WarmupELBO'\\]"):
        BetaELBO.stack([BetaELBO(1.0), WarmupELBO(3)])
