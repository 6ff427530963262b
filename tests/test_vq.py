"""vaelib.vq: the nearest codebook vector (against a brute-force search), the straight-through
gradient, where each of the two losses sends its gradient, and the codebook's perplexity."""

import math

import pytest
import torch

from vaelib.vq import VectorQuantizer, codebook_perplexity


def _vq(seed=0, k=7, d=3):
    torch.manual_seed(seed)
    vq = VectorQuantizer(k, d).double()
    with torch.no_grad():
        vq.codebook.copy_(torch.randn(k, d, dtype=torch.float64))
    return vq


def test_each_row_takes_its_nearest_codebook_vector():
    vq = _vq()
    z_e = torch.randn(50, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    out = vq(z_e)
    brute = torch.stack([((z - vq.codebook) ** 2).sum(1).argmin() for z in z_e])
    assert torch.equal(out.codes, brute)
    # the forward value is e_k, up to the round-off of z_e + (e_k - z_e): two float64 ulps of O(1) numbers
    torch.testing.assert_close(out.z_q, vq.codebook[brute].detach(), rtol=0, atol=1e-15)
    dist = ((z_e - vq.codebook[brute]) ** 2).sum(1)
    torch.testing.assert_close(out.codebook_loss, dist.detach(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(out.commitment_loss, dist.detach(), rtol=1e-12, atol=1e-12)


def test_the_gradient_goes_straight_through_and_each_loss_reaches_one_side():
    vq = _vq(seed=2)
    z_e = torch.randn(20, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3), requires_grad=True)
    g = torch.randn(20, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    out = vq(z_e)
    # the decoder's gradient reaches z_e unchanged, and not the codebook
    (out.z_q * g).sum().backward()
    torch.testing.assert_close(z_e.grad, g, rtol=0, atol=0)
    assert vq.codebook.grad is None or torch.all(vq.codebook.grad == 0)
    # the codebook loss moves only the chosen codebook vectors, towards their inputs
    z_e.grad = None
    out = vq(z_e)
    out.codebook_loss.sum().backward()
    assert z_e.grad is None or torch.all(z_e.grad == 0)
    expected = torch.zeros_like(vq.codebook)
    expected.index_add_(0, out.codes, 2 * (vq.codebook[out.codes] - z_e).detach())
    torch.testing.assert_close(vq.codebook.grad, expected, rtol=1e-12, atol=1e-12)
    # the commitment loss moves only the encoder output, towards its code
    vq.codebook.grad = None
    out = vq(z_e)
    out.commitment_loss.sum().backward()
    assert vq.codebook.grad is None or torch.all(vq.codebook.grad == 0)
    torch.testing.assert_close(z_e.grad, 2 * (z_e - vq.codebook[out.codes]).detach(), rtol=1e-12, atol=1e-12)


def test_perplexity_counts_the_codes_in_use():
    assert codebook_perplexity(torch.zeros(10, dtype=torch.long), 8) == pytest.approx(1.0)
    assert codebook_perplexity(torch.arange(8).repeat(5), 8) == pytest.approx(8.0)
    # two codes, shares 3/4 and 1/4: exp(H) with H = -(3/4 log 3/4 + 1/4 log 1/4)
    h = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert codebook_perplexity(torch.tensor([0, 0, 0, 5]), 8) == pytest.approx(math.exp(h))


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="num_codes must be a positive int"):
        VectorQuantizer(0, 3)
    with pytest.raises(ValueError, match=r"z_e must be a \(B, 3\) tensor"):
        VectorQuantizer(4, 3)(torch.zeros(2, 4))
    with pytest.raises(ValueError, match="codes must lie in 0..7"):
        codebook_perplexity(torch.tensor([0, 8]), 8)
    with pytest.raises(ValueError, match="integer codes"):
        codebook_perplexity(torch.tensor([0.5]), 8)


# the VQ-VAE model and its loss


def _vqvae(seed=0, **kw):
    from vaelib.models import one_per_seed
    from vaelib.vq import VQVAE

    (m,) = one_per_seed(lambda: VQVAE((1, 4, 4), **{"n_latents": 3, "num_codes": 5, "code_dim": 2, "hidden": 8,
                                                     **kw}).double(), [seed])
    with torch.no_grad():  # the codebook at encoder outputs of five images, so that many codes are chosen
        m.quantizer.codebook.copy_(m.encode(_binary(5, seed=9))[:, 0])
    return m


def _binary(n, seed=1):
    return torch.bernoulli(torch.full((n, 16), 0.4, dtype=torch.float64), generator=torch.Generator().manual_seed(seed))


def test_the_vqvae_quantises_every_position_to_its_nearest_code():
    m, x = _vqvae(), _binary(40)
    out = m(x)
    assert out.z_e.shape == out.z_q.shape == (40, 3, 2) and out.codes.shape == (40, 3)
    brute = ((out.z_e[:, :, None, :] - m.quantizer.codebook) ** 2).sum(-1).argmin(-1)
    assert torch.equal(out.codes, brute)
    assert len(out.codes.unique()) > 1  # guard: the check above compares more than one code
    torch.testing.assert_close(out.z_q, m.quantizer.codebook[brute].detach(), rtol=0, atol=1e-15)
    # the per-example losses sum the positions' squared distances
    d2 = ((out.z_e - m.quantizer.codebook[brute]) ** 2).sum((1, 2)).detach()
    torch.testing.assert_close(out.codebook_loss, d2, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(out.commitment_loss, d2, rtol=1e-12, atol=1e-12)


def test_the_encoder_receives_the_decoders_gradient_unchanged():
    m, x = _vqvae(), _binary(20)
    out = m(x)
    out.z_e.retain_grad()
    out.z_q.retain_grad()
    out.px.log_prob(x).sum().backward()
    assert out.z_q.grad.abs().sum() > 0  # guard: the decoder sends a gradient
    torch.testing.assert_close(out.z_e.grad, out.z_q.grad, rtol=0, atol=0)
    # and the reconstruction term alone does not move the codebook
    assert m.quantizer.codebook.grad is None or torch.all(m.quantizer.codebook.grad == 0)


def test_the_vq_loss_weights_the_commitment_by_beta():
    from vaelib.vq import VQLoss

    m, x = _vqvae(), _binary(30)
    px, losses = m.terms(x, per_dim=True)
    rec, kl = px.log_prob(x).mean(), losses.mean(0)
    out = m(x)
    loss, logged = VQLoss(0.4).loss(rec, kl, 0)
    expected = -out.px.log_prob(x).mean() + out.codebook_loss.mean() + 0.4 * out.commitment_loss.mean()
    torch.testing.assert_close(loss, expected, rtol=1e-12, atol=1e-12)
    assert set(logged) == {"rec", "codebook", "commitment"}
    # the summed form of terms, and the ELBO with a uniform prior: log K nats per position
    torch.testing.assert_close(m.terms(x)[1], losses.sum(-1), rtol=0, atol=0)
    torch.testing.assert_close(m.elbo(x), out.px.log_prob(x) - 3 * math.log(5), rtol=1e-12, atol=1e-12)


def test_fit_many_trains_each_vqvae_as_fit_does():
    import copy

    from vaelib import train
    from vaelib.data import ImageData
    from vaelib.vq import VQLoss

    x = torch.rand(96, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    data = ImageData(x, torch.zeros(96, dtype=torch.long), (1, 4, 4), binarize=True)
    ms = [_vqvae(seed=s) for s in (0, 1)]
    alone = [copy.deepcopy(m) for m in ms]
    train.fit_many(ms, data, [VQLoss(0.25), VQLoss(1.0)], seeds=[3, 4], epochs=2, batch_size=32, progress=False)
    for m, a, beta, s in zip(ms, alone, (0.25, 1.0), (3, 4)):
        train.fit(a, data, VQLoss(beta), epochs=2, batch_size=32, seed=s, progress=False)
        moved = sum(float((p - q).detach().abs().sum()) for p, q in zip(m.parameters(), _vqvae(seed=s - 3).parameters()))
        assert moved > 0  # guard: training changed the weights
        for p, q in zip(m.parameters(), a.parameters()):
            # float64, the same arithmetic batched: round-off ~1e-15 per step
            torch.testing.assert_close(p, q, rtol=1e-9, atol=1e-11)


def test_dead_codes_counts_the_unused():
    from vaelib.vq import dead_codes

    assert dead_codes(torch.tensor([0, 0, 3, 5]), 8) == 5
    assert dead_codes(torch.arange(8), 8) == 0


def test_vqvae_bad_input_is_named():
    from vaelib.models import VAE
    from vaelib.vq import VQVAE, VQLoss

    with pytest.raises(ValueError, match="n_latents must be a positive int"):
        VQVAE((1, 4, 4), n_latents=0)
    with pytest.raises(ValueError, match="x_shape must be"):
        VQVAE((16,))
    with pytest.raises(TypeError, match="VQLoss trains a vaelib.vq.VQVAE"):
        VQLoss().check_model(VAE((1, 4, 4), 2, hidden=8))
    with pytest.raises(ValueError, match="beta must be a finite number >= 0"):
        VQLoss(-1.0)
    with pytest.raises(ValueError, match="codebook and commitment losses"):
        VQLoss().loss(torch.tensor(0.0), torch.tensor(1.0), 0)
