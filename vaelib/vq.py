"""Vector quantisation for discrete latents (VQ-VAE, van den Oord et al. 2017).

An encoder's output z_e (one vector of ``dim`` numbers per position) is replaced by the nearest of
``num_codes`` learned codebook vectors e_k, k = argmin_k |z_e - e_k|^2. The argmin has no
gradient, so the decoder's gradient is copied straight through to z_e: the forward value is e_k,
the backward pass treats the quantiser as the identity (z_e + sg(e_k - z_e), sg = stop-gradient).
Two losses train what the straight-through copy does not:

* the codebook loss |sg(z_e) - e_k|^2 moves each chosen codebook vector towards the encoder
  outputs assigned to it (its gradient reaches the codebook only);
* the commitment loss beta |z_e - sg(e_k)|^2 keeps the encoder near its chosen codes (its
  gradient reaches the encoder only), beta = 0.25 in the paper.

Shapes: ``(B, dim)`` in, ``(B, dim)`` out, ``(B,)`` codes and per-row losses.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

__all__ = ["Quantised", "VectorQuantizer", "codebook_perplexity"]


class Quantised(NamedTuple):
    z_q: torch.Tensor  # (B, dim) the chosen codebook vectors, with the straight-through gradient
    codes: torch.Tensor  # (B,) long: which vector each row chose
    codebook_loss: torch.Tensor  # (B,) |sg(z_e) - e_k|^2
    commitment_loss: torch.Tensor  # (B,) |z_e - sg(e_k)|^2 (times beta in the total)


class VectorQuantizer(nn.Module):
    """A codebook of ``num_codes`` vectors of ``dim`` numbers, initialised uniform in +-1/num_codes."""

    def __init__(self, num_codes: int, dim: int):
        super().__init__()
        for name, v in (("num_codes", num_codes), ("dim", dim)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int; got {v!r}")
        self.num_codes, self.dim = num_codes, dim
        self.codebook = nn.Parameter(torch.empty(num_codes, dim).uniform_(-1 / num_codes, 1 / num_codes))

    def forward(self, z_e: torch.Tensor) -> Quantised:
        if not isinstance(z_e, torch.Tensor) or z_e.ndim != 2 or z_e.shape[1] != self.dim:
            raise ValueError(f"z_e must be a (B, {self.dim}) tensor; got {tuple(getattr(z_e, 'shape', ()))}")
        # squared distances to every codebook vector, (B, num_codes), without a (B, K, dim) tensor
        d2 = (z_e**2).sum(1, keepdim=True) - 2 * z_e @ self.codebook.T + (self.codebook**2).sum(1)
        codes = d2.argmin(1)
        e = self.codebook[codes]
        codebook_loss = ((z_e.detach() - e) ** 2).sum(1)
        commitment_loss = ((z_e - e.detach()) ** 2).sum(1)
        z_q = z_e + (e - z_e).detach()  # value e, gradient straight through to z_e
        return Quantised(z_q, codes, codebook_loss, commitment_loss)


def codebook_perplexity(codes: torch.Tensor, num_codes: int) -> float:
    """exp of the entropy of the codes' frequencies: the number of codebook vectors in effective
    use, from 1 (every row chose one vector) to ``num_codes`` (all used equally)."""
    codes = torch.as_tensor(codes)
    if codes.ndim != 1 or len(codes) == 0 or codes.dtype.is_floating_point:
        raise ValueError(f"codes must be a non-empty 1-D tensor of integer codes; got {tuple(codes.shape)} "
                         f"{codes.dtype}")
    if codes.min() < 0 or codes.max() >= num_codes:
        raise ValueError(f"codes must lie in 0..{num_codes - 1}; got {int(codes.min())}..{int(codes.max())}")
    p = torch.bincount(codes, minlength=num_codes).double() / len(codes)
    p = p[p > 0]
    return float(math.exp(-(p * p.log()).sum()))
