"""vaelib.flows: the planar flow's log-determinant against autograd's Jacobian, its invertibility
condition under adversarial parameters, and the change-of-variables density of a stack of layers
against a histogram of its samples; per-example (amortised) layers against autograd, and the
FlowVAE: without layers it is the VAE, its posterior density integrates to one (an importance-
sampling identity), a shared flow is one flow for every image, and what it cannot do is refused."""

import math

import pytest
import torch
from torch.distributions import Normal

from vaelib.data import load_digits
from vaelib.flows import Flow, FlowVAE, PlanarFlow, planar
from vaelib.models import VAE


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


# ---------------------------------------------------------------- per-example layers and FlowVAE


def test_planar_with_per_example_parameters_is_autograds_and_the_layers():
    gen = torch.Generator().manual_seed(5)
    z, u, w = (torch.randn(6, 3, generator=gen, dtype=torch.float64) for _ in range(3))
    b = torch.randn(6, generator=gen, dtype=torch.float64)
    out, logdet = planar(z, u, w, b)
    for i in range(6):
        jac = torch.autograd.functional.jacobian(lambda v: planar(v, u[i], w[i], b[i])[0], z[i])
        sign, logabs = torch.linalg.slogdet(jac)
        assert sign > 0 and logdet[i].item() == pytest.approx(logabs.item(), abs=1e-12)
        # the same as a layer holding that example's parameters
        layer = _layer(3, seed=0)
        with torch.no_grad():
            layer.u.copy_(u[i]), layer.w.copy_(w[i]), layer.b.copy_(b[i])
        lo, ld = layer(z[i : i + 1])
        assert torch.allclose(lo[0], out[i], atol=1e-14) and torch.allclose(ld[0], logdet[i], atol=1e-14)


def _flow_vae(d=2, layers=3, amortised=True, seed=0):
    torch.manual_seed(seed)
    return FlowVAE((1, 8, 8), d, layers, hidden=16, amortised=amortised).double()


def _x(n=4):
    return load_digits("test").binarized_once(seed=0).x[:n].double()


def test_a_flow_vae_without_layers_is_the_vae_of_the_same_seed():
    torch.manual_seed(0)
    vae = VAE((1, 8, 8), 3, hidden=16).double()
    flow = _flow_vae(d=3, layers=0)
    assert all(torch.equal(p, q) for p, q in zip(vae.parameters(), flow.parameters()))
    # and with layers, the same encoder and decoder to start from: the head is built last
    with_layers = _flow_vae(d=3, layers=2)
    assert torch.equal(with_layers.decoder[0].weight, vae.decoder[0].weight)
    assert torch.equal(with_layers.encoder[-1].bias, vae.encoder[-1].bias)
    x = _x()
    eps = torch.randn(4, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    px, kl = flow.terms(x, eps=eps)
    out = vae(x, eps=eps)
    assert torch.equal(px.base_dist.logits, out.px.base_dist.logits)
    # its KL is the one-code estimate log q(z|x) - log p(z), by torch.distributions
    q = Normal(out.mu, torch.exp(0.5 * out.logvar))
    assert torch.allclose(kl, (q.log_prob(out.z) - Normal(0.0, 1.0).log_prob(out.z)).sum(-1), atol=1e-12)


def test_the_flow_posterior_is_a_normalised_density():
    # E_q[p(z) / q_T(z|x)] = 1 for any normalised q_T: 200,000 codes per image from a strongly bent
    # amortised flow, within 4 standard errors of 1. The layers contract (w.u-hat < 0), which piles
    # mass onto their hyperplanes and digs no holes, and the base is wider than p, so p / q_T stays
    # bounded and its standard error is trustworthy (an expanding flow makes p / q heavy-tailed).
    flow = _flow_vae(d=2, layers=3)
    with torch.no_grad():
        flow.encoder[-1].weight.zero_()
        flow.encoder[-1].bias.copy_(torch.tensor([0.3, -0.2, 0.5, 0.5], dtype=torch.float64))
        flow.flow_head.weight.mul_(0.1)
        flow.flow_head.bias.copy_(torch.tensor([-0.4, -0.3, 1.5, 1.0, 0.2] * 3, dtype=torch.float64))
    x = _x(3)
    eps = torch.randn(200_000, 3, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    with torch.no_grad():
        z, log_q = flow.sample_posterior(x, eps)
        log_p = Normal(0.0, 1.0).log_prob(z).sum(-1)
        _, _, params = flow.encode(x)
        _, logdet = flow.push(flow.encode(x).mu + math.exp(0.25) * eps, params)
    ratio = torch.exp(log_p - log_q)
    se = ratio.std(0) / math.sqrt(len(ratio))
    assert ((ratio.mean(0) - 1).abs() < 4 * se).all(), (ratio.mean(0), se)
    # the flow does bend: the log-determinants are far from 0, and with their sign flipped the
    # same check fails by far
    assert logdet.abs().mean() > 0.3
    wrong = torch.exp(log_p - log_q - 2 * logdet)
    assert ((wrong.mean(0) - 1).abs() > 20 * se).any()


def test_a_shared_flow_vae_pushes_every_image_through_one_flow():
    flow = _flow_vae(d=2, layers=2, amortised=False)
    x = _x(3)
    eps = torch.randn(5, 3, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    z, log_q = flow.sample_posterior(x, eps)
    mu, logvar, params = flow.encode(x)
    assert params is None
    z0 = mu + torch.exp(0.5 * logvar) * eps
    zt, logdet = flow.shared_flow(z0.reshape(-1, 2))
    base = Normal(mu, torch.exp(0.5 * logvar)).log_prob(z0).sum(-1)
    assert torch.allclose(z, zt.reshape(5, 3, 2), atol=1e-14)
    assert torch.allclose(log_q, base - logdet.reshape(5, 3), atol=1e-12)


def test_a_flow_vae_trains_with_fit_and_refuses_what_it_cannot_do():
    from vaelib import estimates, objectives, train

    data = load_digits("train", binarize=True).subset(64)
    torch.manual_seed(0)
    model = FlowVAE(data.shape, 2, 2, hidden=16)
    history = train.fit(model, data, objectives.BetaELBO(1.0), epochs=2, batch_size=32, device="cpu")
    assert all(math.isfinite(v) for v in history["loss"])
    x = data.binarized_once(seed=0).x[:4]
    with pytest.raises(ValueError, match="does not split by latent dimension"):
        model.terms(x, per_dim=True)
    with pytest.raises(TypeError, match="no closed form"):
        model.kl()
    with pytest.raises(TypeError, match="Gaussian posterior"):
        estimates.iwae_log_likelihood(model, x, 2)
    with pytest.raises(ValueError, match=r"eps must be a tensor of shape \(\.\.\., 4, 2\)"):
        model.sample_posterior(x, torch.zeros(4, 3))
    with pytest.raises(ValueError, match="n_layers must be an int >= 0"):
        FlowVAE(data.shape, 2, -1)
    with pytest.raises(TypeError, match="amortised must be True or False"):
        FlowVAE(data.shape, 2, 1, amortised="yes")
    with pytest.raises(ValueError, match="u and w must end in z's dimension"):
        planar(torch.zeros(2, 3), torch.zeros(2), torch.zeros(3), torch.zeros(()))


def test_fit_many_trains_each_flow_vae_as_fit_trains_it_alone():
    # the batched trainer (torch.func.vmap over the models) runs terms() of a FlowVAE as fit does;
    # float64, so only round-off separates the two (tests/test_fit_many.py's tolerance)
    import copy

    from vaelib import objectives, train
    from vaelib.data import ImageData

    d = load_digits("train", binarize=True).subset(64)
    data = ImageData(d.x.double(), d.y, d.shape, binarize=True)
    members = [_flow_vae(layers=2, seed=s) for s in (0, 1)]
    alone = [copy.deepcopy(m) for m in members]
    train.fit_many(members, data, objectives.BetaELBO(1.0), seeds=[3, 4], epochs=2, batch_size=32,
                   lr=1e-2, device="cpu")
    for m, a, s in zip(members, alone, (3, 4)):
        train.fit(a, data, objectives.BetaELBO(1.0), epochs=2, batch_size=32, lr=1e-2, seed=s, device="cpu")
        for p, q in zip(m.parameters(), a.parameters()):
            assert torch.allclose(p, q, rtol=0, atol=1e-9)
