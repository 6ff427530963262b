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

:class:`VQVAE` puts a quantiser between an encoder and a decoder (the book's MLPs): the encoder's
output is cut into ``n_latents`` vectors of ``code_dim`` numbers, each replaced by its nearest
codebook vector, one codebook shared by all positions. :class:`VQLoss` is its training objective,
{eq}`dis-vq-loss`: minus the reconstruction term plus the codebook loss plus ``beta`` times the
commitment loss. The model follows the interface of :mod:`vaelib.models` (``terms``), so
:func:`vaelib.train.fit` and :func:`vaelib.batched.fit_many` train it: its second term, where a VAE
returns its KL, is the two quantiser losses of every example, ``(B, 2)``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from .models import check_x, distribution, make_decoder, make_encoder
from .objectives import Objective, check_number

__all__ = ["Quantised", "VectorQuantizer", "codebook_perplexity", "VQOutput", "VQVAE", "VQLoss", "dead_codes"]


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


def dead_codes(codes: torch.Tensor, num_codes: int) -> int:
    """How many of the ``num_codes`` codebook vectors no row of ``codes`` chose."""
    codes = torch.as_tensor(codes)
    codebook_perplexity(codes, num_codes)  # the same checks of the codes
    return int((torch.bincount(codes, minlength=num_codes) == 0).sum())


class VQOutput(NamedTuple):
    px: torch.distributions.Distribution  # p(x | z_q), log_prob(x) is (B,)
    z_e: torch.Tensor  # (B, n_latents, code_dim) the encoder's output
    z_q: torch.Tensor  # (B, n_latents, code_dim) its quantised version, straight-through
    codes: torch.Tensor  # (B, n_latents) long
    codebook_loss: torch.Tensor  # (B,) summed over the positions
    commitment_loss: torch.Tensor  # (B,) summed over the positions


def _positive_int(name, v):
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError(f"{name} must be a positive int; got {v!r}")


class VQVAE(nn.Module):
    """VQ-VAE (van den Oord et al. 2017) with the book's MLP encoder and Bernoulli decoder.

    ``encoder``: x ``(B, D)`` -> ``n_latents * code_dim`` numbers, read as ``n_latents`` vectors
    z_e; each is replaced by its nearest of ``num_codes`` codebook vectors (:class:`VectorQuantizer`,
    one codebook for all positions); ``decoder``: the ``n_latents * code_dim`` quantised numbers ->
    Bernoulli logits. The posterior is deterministic, one code per position, so there is no KL to
    learn: with a uniform prior over the codes it is the constant ``n_latents * log(num_codes)``
    (:meth:`elbo`). ``latent_dim`` is the width of z_e, ``n_latents * code_dim``: the width of the
    noise ``eps`` that :func:`vaelib.train.fit` draws for every model, which a VQ-VAE does not use.
    """

    has_posterior, needs_labels, likelihood = False, False, "bernoulli"

    def __init__(self, x_shape, n_latents: int = 4, num_codes: int = 16, code_dim: int = 2, hidden: int = 128):
        super().__init__()
        if len(tuple(x_shape)) != 3:
            raise ValueError(f"x_shape must be (C, H, W); got {x_shape!r}")
        for name, v in (("n_latents", n_latents), ("num_codes", num_codes), ("code_dim", code_dim),
                        ("hidden", hidden)):
            _positive_int(name, v)
        self.x_shape = tuple(int(s) for s in x_shape)
        self.x_dim = math.prod(self.x_shape)
        self.n_latents, self.num_codes, self.code_dim = n_latents, num_codes, code_dim
        self.latent_dim = n_latents * code_dim
        self.config = dict(x_shape=list(self.x_shape), n_latents=n_latents, num_codes=num_codes, code_dim=code_dim,
                           hidden=hidden)
        self.encoder = make_encoder("mlp", self.x_shape, 0, self.latent_dim, hidden)
        self.quantizer = VectorQuantizer(num_codes, code_dim)
        self.decoder = make_decoder("mlp", self.latent_dim, self.x_shape, hidden)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, D)`` -> z_e ``(B, n_latents, code_dim)``."""
        check_x(x, self.x_dim, self)
        return self.encoder(x).reshape(-1, self.n_latents, self.code_dim)

    def decode(self, z_q: torch.Tensor) -> torch.distributions.Distribution:
        """``(B, n_latents, code_dim)`` -> p(x | z_q), Bernoulli, ``log_prob(x)`` ``(B,)``."""
        return distribution("bernoulli", self.decoder(z_q.reshape(-1, self.latent_dim)))

    def forward(self, x: torch.Tensor) -> VQOutput:
        """Encode, quantise every position with the straight-through gradient, decode."""
        z_e = self.encode(x)
        q = self.quantizer(z_e.reshape(-1, self.code_dim))
        shape = z_e.shape[:2]
        z_q = q.z_q.reshape(z_e.shape)
        return VQOutput(self.decode(z_q), z_e, z_q, q.codes.reshape(shape),
                        q.codebook_loss.reshape(shape).sum(1), q.commitment_loss.reshape(shape).sum(1))

    def terms(self, x, y=None, eps=None, per_dim: bool = False):
        """``(px, losses)``: p(x | z_q) and the codebook and commitment losses of every example,
        ``(B, 2)`` with ``per_dim`` (what :class:`VQLoss` reads), else their sum ``(B,)``. ``y`` and
        ``eps`` are accepted for the training loops' interface and unused."""
        out = self(x)
        losses = torch.stack([out.codebook_loss, out.commitment_loss], -1)
        return out.px, losses if per_dim else losses.sum(-1)

    @torch.no_grad()
    def codes(self, x: torch.Tensor) -> torch.Tensor:
        """The code of every position, ``(B, n_latents)`` long."""
        return self(x).codes

    @torch.no_grad()
    def elbo(self, x: torch.Tensor) -> torch.Tensor:
        """The ELBO of the VQ-VAE read as a latent-variable model with a uniform prior over the codes
        ({eq}`dis-vq-elbo`): log p(x | z_q(x)) - n_latents log(num_codes), ``(B,)`` nats. The posterior
        puts all its mass on one code per position, so its KL to the uniform prior is log(num_codes)
        per position."""
        return self(x).px.log_prob(x) - self.n_latents * math.log(self.num_codes)


class VQLoss(Objective):
    """The VQ-VAE's loss ({eq}`dis-vq-loss`), batch mean: -log p(x | z_q) + |sg(z_e) - e|^2
    + beta |z_e - sg(e)|^2 (van den Oord et al. 2017: beta = 0.25). It reads the two quantiser
    losses of :meth:`VQVAE.terms` (``kl_per_dimension``: ``(2,)`` batch means, ``(K, 2)`` for K
    models) and logs ``rec``, ``codebook`` and ``commitment``."""

    kl_per_dimension = True
    hyperparameters = ("beta",)

    def __init__(self, beta: float = 0.25):
        check_number("beta", beta, minimum=0.0)
        self.beta = float(beta)

    def check_model(self, model) -> None:
        if not isinstance(model, VQVAE):
            raise TypeError(f"VQLoss trains a vaelib.vq.VQVAE; got a {type(model).__name__}")

    def loss(self, rec, kl, step, train=True):
        if kl.shape != rec.shape + (2,):
            raise ValueError(f"VQLoss needs the codebook and commitment losses, shape {tuple(rec.shape) + (2,)}; "
                             f"got shape {tuple(kl.shape)}")
        codebook, commitment = kl[..., 0], kl[..., 1]
        loss = -rec + codebook + self.value("beta", rec) * commitment
        return loss, {"rec": rec, "codebook": codebook, "commitment": commitment}
