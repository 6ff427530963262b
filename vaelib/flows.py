"""Normalising flows for richer posteriors: the planar flow of Rezende and Mohamed (2015), and a VAE
whose posterior is a diagonal Gaussian pushed through it.

A flow pushes a code z_0 ~ q_0(z|x) through invertible maps f_1, ..., f_T. By the change of
variables, the density of z_T = f_T(...f_1(z_0)) is

    log q_T(z_T | x) = log q_0(z_0 | x) - sum_t log |det df_t / dz_{t-1}| ,       ({eq}`iwf-change`)

so a flow is useful when each log-determinant is cheap. The planar map f(z) = z + u h(w.z + b),
h = tanh, has det df/dz = 1 + u.psi(z) with psi(z) = h'(w.z + b) w (the matrix determinant lemma):
O(d) instead of O(d^3). It is invertible when w.u >= -1; :func:`planar` keeps that true by
using, in place of the free parameter u, the u-hat of the paper's appendix, u + (m(w.u) - w.u) w /
|w|^2 with m(a) = -1 + softplus(a), whose w.u-hat = m(w.u) > -1.

* :func:`planar` -- one planar layer with its parameters given as tensors (they may differ from
  example to example: an *amortised* flow),
* :class:`PlanarFlow`, :class:`Flow` -- layers whose parameters are shared by every input,
* :class:`FlowVAE` -- the VAE of :mod:`vaelib.models` with the posterior q_T: its ``terms`` returns
  the decoded distribution and a one-sample Monte Carlo estimate of the KL term,
  log q_T(z_T|x) - log p(z_T), since q_T has no closed-form KL to the prior.

Shapes: ``(B, d)`` codes (any leading dimensions where said), ``(B,)`` log-determinants.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from .models import VAE, Output, check_x

__all__ = ["planar", "PlanarFlow", "Flow", "FlowPosterior", "FlowVAE"]

_LOG_2PI = math.log(2 * math.pi)


def planar(z: torch.Tensor, u: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One planar layer f(z) = z + u-hat tanh(w.z + b) ({eq}`iwf-planar`): ``(f(z), log |det df/dz|)``.

    ``z`` is ``(..., d)``; ``u`` and ``w`` ``(..., d)`` and ``b`` ``(...)`` broadcast against it, so the
    parameters may be shared (``(d,)`` and ``()``) or one set per example (``(B, d)`` and ``(B,)``).
    The log-determinant is log(1 + psi.u-hat), psi = (1 - tanh^2(w.z + b)) w ({eq}`iwf-planar-det`),
    positive inside the log because w.u-hat = -1 + softplus(w.u) > -1.
    """
    for name, t in (("z", z), ("u", u), ("w", w), ("b", b)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor; got {type(t).__name__}")
    if z.ndim < 1 or u.shape[-1:] != z.shape[-1:] or w.shape[-1:] != z.shape[-1:]:
        raise ValueError(f"u and w must end in z's dimension {tuple(z.shape[-1:])}; got u {tuple(u.shape)}, "
                         f"w {tuple(w.shape)}")
    wu = (w * u).sum(-1, keepdim=True)
    u_hat = u + (F.softplus(wu) - 1 - wu) * w / (w * w).sum(-1, keepdim=True).clamp_min(1e-12)
    h = torch.tanh((z * w).sum(-1) + b)
    out = z + h.unsqueeze(-1) * u_hat
    # det(I + u-hat psi^T) = 1 + psi.u-hat (the matrix determinant lemma)
    logdet = torch.log1p((1 - h**2) * (w * u_hat).sum(-1))
    return out, logdet


class PlanarFlow(nn.Module):
    """f(z) = z + u-hat tanh(w.z + b): one planar layer of dimension ``dim``, its parameters shared."""

    def __init__(self, dim: int, init_scale: float = 0.01):
        super().__init__()
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ValueError(f"dim must be a positive int; got {dim!r}")
        self.dim = dim
        self.u = nn.Parameter(init_scale * torch.randn(dim))
        self.w = nn.Parameter(init_scale * torch.randn(dim))
        self.b = nn.Parameter(torch.zeros(()))

    def u_hat(self) -> torch.Tensor:
        """u moved along w so that w.u-hat = -1 + softplus(w.u) > -1: the map stays invertible."""
        wu = self.w @ self.u
        return self.u + (-1 + F.softplus(wu) - wu) * self.w / (self.w @ self.w).clamp_min(1e-12)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, dim)`` -> ``(f(z), log |det df/dz|)``, the second ``(B,)``."""
        if not isinstance(z, torch.Tensor) or z.ndim != 2 or z.shape[1] != self.dim:
            raise ValueError(f"z must be a (B, {self.dim}) tensor; got {tuple(getattr(z, 'shape', ()))}")
        return planar(z, self.u, self.w, self.b)


class Flow(nn.Module):
    """``n_layers`` planar layers in sequence: ``forward(z0)`` -> ``(z_K, sum of log-determinants)``."""

    def __init__(self, dim: int, n_layers: int):
        super().__init__()
        if isinstance(n_layers, bool) or not isinstance(n_layers, int) or n_layers < 0:
            raise ValueError(f"n_layers must be an int >= 0; got {n_layers!r}")
        self.dim = dim
        self.layers = nn.ModuleList(PlanarFlow(dim) for _ in range(n_layers))

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        total = z.new_zeros(z.shape[0])
        for layer in self.layers:
            z, logdet = layer(z)
            total = total + logdet
        return z, total


class FlowPosterior(NamedTuple):
    """What :meth:`FlowVAE.encode` returns: the base Gaussian q_0(z|x) and the flow's parameters."""

    mu: torch.Tensor  # (B, d)
    logvar: torch.Tensor  # (B, d)
    params: torch.Tensor | None  # (B, n_layers, 2d + 1): u, w, b of every layer (amortised), else None


class FlowVAE(VAE):
    """A VAE whose posterior is q_0(z|x) = N(mu(x), diag exp(logvar(x))) pushed through ``n_layers``
    planar layers ({eq}`iwf-change`); the prior is N(0, I) and the decoder that of :class:`~vaelib.models.VAE`.

    ``amortised=True`` (Rezende and Mohamed's choice): the encoder also outputs every layer's
    ``(u, w, b)``, from its last hidden layer through one extra linear head, so each image gets its
    own flow. ``amortised=False``: one :class:`Flow` shared by every image. The encoder and decoder
    are built first, exactly as :class:`~vaelib.models.VAE` builds them, so a FlowVAE and a VAE made
    after the same seed start from the same encoder and decoder; ``n_layers=0`` *is* that VAE, except
    that its KL term is estimated (below). MLP architecture only.

    :meth:`terms` returns ``(px, kl)`` with ``kl = log q_T(z_T|x) - log p(z_T)`` at the one code
    z_T it decodes: a one-sample Monte Carlo estimate of KL(q_T || p), unbiased, with no closed form
    for a flow. ``encode`` returns a :class:`FlowPosterior` (three fields), so the functions of
    :mod:`vaelib.estimates` that assume a Gaussian posterior ``(mu, logvar)`` refuse the model
    instead of measuring q_0; :mod:`vaelib.iwae` measures it (:meth:`sample_posterior`).
    """

    def __init__(self, x_shape, latent_dim, n_layers, hidden=256, likelihood="bernoulli", amortised=True):
        if isinstance(n_layers, bool) or not isinstance(n_layers, int) or n_layers < 0:
            raise ValueError(f"n_layers must be an int >= 0; got {n_layers!r}")
        if not isinstance(amortised, bool):
            raise TypeError(f"amortised must be True or False; got {amortised!r}")
        super().__init__(x_shape, latent_dim, arch="mlp", hidden=hidden, likelihood=likelihood)
        self.config.update(n_layers=n_layers, amortised=amortised)
        self.n_layers, self.amortised = n_layers, amortised
        # built after the VAE's networks: the same seed gives the same encoder and decoder as a VAE
        if amortised and n_layers:
            self.flow_head = nn.Linear(hidden, n_layers * (2 * latent_dim + 1))
        elif not amortised:
            self.shared_flow = Flow(latent_dim, n_layers)

    def encode(self, x) -> FlowPosterior:
        """``(B, D)`` -> :class:`FlowPosterior`: ``mu``, ``logvar`` of q_0 and, amortised, the flow's parameters."""
        check_x(x, self.x_dim, self)
        h = self.encoder[:-1](x)  # the last hidden layer
        out = self.encoder[-1](h)
        d = self.latent_dim
        params = None
        if self.amortised and self.n_layers:
            params = self.flow_head(h).reshape(*h.shape[:-1], self.n_layers, 2 * d + 1)
        return FlowPosterior(out[..., :d], out[..., d:], params)

    def push(self, z0: torch.Tensor, params: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """z_0 ``(..., B, d)`` through the flow: ``(z_T, sum_t log |det df_t/dz_{t-1}|)``, the second ``(..., B)``.
        ``params`` ``(B, n_layers, 2d + 1)`` from :meth:`encode` (None for a shared flow)."""
        if not self.amortised:
            lead = z0.shape[:-1]
            zt, logdet = self.shared_flow(z0.reshape(-1, self.latent_dim))
            return zt.reshape(z0.shape), logdet.reshape(lead)
        d, total, z = self.latent_dim, z0.new_zeros(z0.shape[:-1]), z0
        for t in range(self.n_layers):
            p = params[..., t, :]
            z, logdet = planar(z, p[..., :d], p[..., d : 2 * d], p[..., 2 * d])
            total = total + logdet
        return z, total

    def sample_posterior(self, x, eps) -> tuple[torch.Tensor, torch.Tensor]:
        """Codes z_T from q_T(z|x) for the noise ``eps`` ``(..., B, d)`` (z_0 = mu + sigma * eps), with their
        log-density ``log q_T(z_T|x)`` ({eq}`iwf-change`): ``(z_T, log_q)``, ``(..., B, d)`` and ``(..., B)``."""
        mu, logvar, params = self.encode(x)
        if not isinstance(eps, torch.Tensor) or eps.shape[-2:] != mu.shape:
            raise ValueError(f"eps must be a tensor of shape (..., {mu.shape[0]}, {mu.shape[1]}); "
                             f"got {tuple(getattr(eps, 'shape', ()))}")
        z0 = mu + torch.exp(0.5 * logvar) * eps
        log_q0 = -0.5 * (eps**2 + logvar + _LOG_2PI).sum(-1)  # log N(z0; mu, sigma^2), (z0 - mu) / sigma = eps
        z, logdet = self.push(z0, params)
        return z, log_q0 - logdet

    def forward(self, x, eps=None) -> Output:
        """Encode, draw z_T from q_T (``eps`` ``(B, d)``, drawn when omitted), decode; ``mu``, ``logvar`` are q_0's."""
        mu, logvar, params = self.encode(x)
        if eps is None:
            eps = torch.randn_like(mu)
        z, _ = self.push(mu + torch.exp(0.5 * logvar) * eps, params)
        return Output(self.decode(z), mu, logvar, z)

    def terms(self, x, y=None, eps=None, per_dim: bool = False):
        """``(px, kl)``: p(x|z_T) for one code z_T ~ q_T(z|x), and log q_T(z_T|x) - log p(z_T) ``(B,)``,
        a one-sample Monte Carlo estimate of KL(q_T || p) (no closed form). ``per_dim`` is refused: the
        flow mixes the coordinates, so its KL does not split by dimension."""
        if per_dim:
            raise ValueError("a flow posterior's KL does not split by latent dimension: per_dim must be False")
        if eps is None:
            eps = torch.randn(x.shape[0], self.latent_dim, dtype=x.dtype, device=x.device)
        z, log_q = self.sample_posterior(x, eps)
        log_p = -0.5 * (z**2 + _LOG_2PI).sum(-1)
        return self.decode(z), log_q - log_p

    def kl(self, out=None, y=None, per_dim: bool = False):
        """Refused: KL(q_T || p) has no closed form; :meth:`terms` returns a one-sample estimate."""
        raise TypeError("a FlowVAE's KL has no closed form: use terms(x, eps=eps), which returns a one-sample "
                        "Monte Carlo estimate log q_T(z|x) - log p(z)")
