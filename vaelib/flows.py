"""Normalising flows for richer posteriors: the planar flow of Rezende and Mohamed (2015).

A flow pushes a code z_0 ~ q_0(z|x) through invertible maps f_1, ..., f_K. By the change of
variables, the density of z_K = f_K(...f_1(z_0)) is

    log q_K(z_K | x) = log q_0(z_0 | x) - sum_k log |det df_k / dz_{k-1}| ,

so a flow is useful when each log-determinant is cheap. The planar map f(z) = z + u h(w.z + b),
h = tanh, has det df/dz = 1 + u.psi(z) with psi(z) = h'(w.z + b) w (the matrix determinant lemma):
O(d) instead of O(d^3). It is invertible when w.u >= -1; :class:`PlanarFlow` keeps that true by
using, in place of the free parameter u, the u-hat of the paper's appendix, u + (m(w.u) - w.u) w /
|w|^2 with m(a) = -1 + softplus(a), whose w.u-hat = m(w.u) > -1.

Parameters here are shared by every input (the flow is not amortised); the chapter that trains a
flow posterior says where that matters. Shapes: ``(B, d)`` codes, ``(B,)`` log-determinants.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["PlanarFlow", "Flow"]


class PlanarFlow(nn.Module):
    """f(z) = z + u-hat tanh(w.z + b): one planar layer of dimension ``dim``."""

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
        u = self.u_hat()
        a = z @ self.w + self.b  # (B,)
        out = z + torch.tanh(a)[:, None] * u
        # det(I + u psi^T) = 1 + psi.u, psi = (1 - tanh^2 a) w; positive since w.u-hat > -1
        logdet = torch.log1p((1 - torch.tanh(a) ** 2) * (self.w @ u))
        return out, logdet


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
