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
