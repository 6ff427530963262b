"""vaelib.flows: the planar flow's log-determinant against autograd's Jacobian, its invertibility
condition under adversarial parameters, and the change-of-variables density of a stack of layers
against a histogram of its samples."""

import math

import pytest
import torch

from vaelib.flows import Flow, PlanarFlow


def _layer(dim, seed, scale=1.0):
    torch.manual_seed(seed)
    layer = PlanarFlow(dim).double()
    with torch.no_grad():
        for p in (layer.u, layer.w):
            p.copy_(scale * torch.randn(dim, dtype=torch.float64))
        layer.b.fill_(0.3)
    return layer


@pytest.mark.parametrize("dim", [1, 2, 5])
def test_log_determinant_is_autograds(dim):
    layer = _layer(dim, seed=dim)
    z = torch.randn(7, dim, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    _, logdet = layer(z)
    for i in range(len(z)):
        jac = torch.autograd.functional.jacobian(lambda v: layer(v[None])[0][0], z[i])
        sign, logabs = torch.linalg.slogdet(jac)
        assert sign > 0  # orientation kept: det = 1 + psi.u-hat > 0
        # float64 round-off on O(1) numbers
        assert logdet[i].item() == pytest.approx(logabs.item(), abs=1e-12)


def test_u_hat_keeps_the_map_invertible_whatever_u_is():
    layer = _layer(3, seed=0)
    with torch.no_grad():
        layer.u.copy_(-10 * layer.w)  # w.u = -10 |w|^2: f would fold over itself
    assert (layer.w @ layer.u).item() < -1
    wu_hat = (layer.w @ layer.u_hat()).item()
    assert wu_hat > -1 and wu_hat == pytest.approx(-1 + math.log1p(math.exp((layer.w @ layer.u).item())))
    # along w the map is strictly increasing: d/ds (w.f(s w)) > 0 on a fine grid
    s = torch.linspace(-20, 20, 4001, dtype=torch.float64)
    w = layer.w.detach()
    along = layer(s[:, None] * w)[0] @ w
    assert torch.all(torch.diff(along) > 0)
    _, logdet = layer(torch.randn(100, 3, dtype=torch.float64))
    assert torch.isfinite(logdet).all()


def test_the_pushed_density_matches_a_histogram_of_samples():
    # two planar layers in 1-D: the density log q0(z0) - sum log|det| at z_K, against the share of
    # 400,000 samples in each bin (4 standard errors of a binomial share)
    torch.manual_seed(3)
    flow = Flow(1, 2).double()
    with torch.no_grad():
        for layer in flow.layers:
            layer.u.fill_(1.5)
            layer.w.fill_(2.0)
    z0 = torch.randn(400_000, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        zk, _ = flow(z0)
        counts = torch.histc(zk[:, 0], bins=40, min=-4, max=4)
        # the density at each bin's edges and centre, by inverting the flow on a fine grid of z0
        grid = torch.linspace(-8, 8, 400_001, dtype=torch.float64)[:, None]
        zk_grid, logdet = flow(grid)
        log_q = -0.5 * (grid[:, 0] ** 2 + math.log(2 * math.pi)) - logdet
        points = torch.linspace(-4, 4, 81, dtype=torch.float64)  # edges and centres, alternating
        at = torch.searchsorted(zk_grid[:, 0].contiguous(), points)

    def simpson(d):
        # each bin's probability from its edges and centre: error ~ width^5 max|q^(4)| / 2880,
        # under 1e-6 for these smooth densities, against sampling noise of 1e-4 to 5e-4 a bin
        return width / 6 * (d[:-1:2] + 4 * d[1::2] + d[2::2])

    width = 8 / 40
    share = counts / len(z0)
    expected = simpson(torch.exp(log_q[at]))
    se = torch.sqrt(expected * (1 - expected) / len(z0))
    assert torch.all((share - expected).abs() < 4 * se + 1e-6), (share - expected).abs().max()
    # the same with the log-determinant's sign flipped is far off
    wrong = simpson(torch.exp(log_q + 2 * logdet)[at])
    assert (share - wrong).abs().max() > 20 * se.max()


def test_an_empty_flow_is_the_identity_and_bad_input_is_named():
    flow = Flow(4, 0)
    z = torch.randn(5, 4)
    out, logdet = flow(z)
    assert torch.equal(out, z) and torch.equal(logdet, torch.zeros(5))
    with pytest.raises(ValueError, match=r"z must be a \(B, 3\) tensor"):
        PlanarFlow(3)(torch.zeros(5, 4))
    with pytest.raises(ValueError, match="dim must be a positive int"):
        PlanarFlow(0)
    with pytest.raises(ValueError, match="n_layers must be an int >= 0"):
        Flow(2, -1)
