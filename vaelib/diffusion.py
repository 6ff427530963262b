"""The Gaussian diffusion of Ho et al. (2020), read as a hierarchical VAE whose encoders are fixed.

The forward ("encoder") chain adds noise in T steps, q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1},
beta_t I), t = 1..T, with a schedule 0 < beta_t < 1. Two closed forms make it cheap:

* the marginal q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I), abar_t = prod_{s<=t} (1 - beta_s),
  so x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps with eps ~ N(0, I) (:func:`q_sample`);
* the forward posterior q(x_{t-1} | x_t, x_0) = N(mean, var I) (:func:`q_posterior`), with
  mean = sqrt(abar_{t-1}) beta_t / (1 - abar_t) x_0 + sqrt(1 - beta_t) (1 - abar_{t-1}) / (1 - abar_t) x_t
  and var = (1 - abar_{t-1}) beta_t / (1 - abar_t), abar_0 = 1.

Time steps are 1-based (t = 1..T) as in the paper; tensors of steps ``t`` index the schedule's
arrays at ``t - 1``. Everything in float64 unless the inputs are float32.
"""

from __future__ import annotations

import torch

__all__ = ["linear_schedule", "alphas_bar", "q_sample", "q_posterior"]


def linear_schedule(T: int, beta_1: float = 1e-4, beta_T: float = 0.02) -> torch.Tensor:
    """beta_1..beta_T evenly spaced (Ho et al.'s schedule at T = 1000): ``(T,)`` float64."""
    if isinstance(T, bool) or not isinstance(T, int) or T < 1:
        raise ValueError(f"T must be a positive int; got {T!r}")
    if not 0 < beta_1 <= beta_T < 1:
        raise ValueError(f"need 0 < beta_1 <= beta_T < 1; got beta_1={beta_1!r}, beta_T={beta_T!r}")
    return torch.linspace(beta_1, beta_T, T, dtype=torch.float64)


def _check_betas(betas):
    if not isinstance(betas, torch.Tensor) or betas.ndim != 1 or len(betas) == 0:
        raise ValueError("betas must be a non-empty 1-D tensor (the schedule beta_1..beta_T)")
    if not torch.all((betas > 0) & (betas < 1)):
        raise ValueError("every beta_t must lie in (0, 1)")


def alphas_bar(betas: torch.Tensor) -> torch.Tensor:
    """abar_t = prod_{s<=t} (1 - beta_s), t = 1..T: ``(T,)``."""
    _check_betas(betas)
    return torch.cumprod(1 - betas, 0)


def _steps(t, betas):
    t = torch.as_tensor(t)
    if t.dtype.is_floating_point or t.dtype == torch.bool:
        raise ValueError(f"t must hold integer time steps; got dtype {t.dtype}")
    if t.numel() and (t.min() < 1 or t.max() > len(betas)):
        raise ValueError(f"time steps t must lie in 1..{len(betas)}; got {int(t.min())}..{int(t.max())}")
    return t.long()


def _per_row(v, like):
    """A value per row, shaped to broadcast over the rows' remaining dimensions."""
    return v.reshape(v.shape + (1,) * (like.ndim - v.ndim)).to(like.dtype)


def q_sample(x0: torch.Tensor, t, eps: torch.Tensor, betas: torch.Tensor) -> torch.Tensor:
    """x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, for rows ``x0`` ``(B, ...)`` at steps ``t`` ``(B,)``."""
    t = _steps(t, betas)
    if eps.shape != x0.shape:
        raise ValueError(f"eps must have x0's shape {tuple(x0.shape)}; got {tuple(eps.shape)}")
    ab = _per_row(alphas_bar(betas)[t - 1], x0)
    return ab.sqrt() * x0 + (1 - ab).sqrt() * eps


def q_posterior(x0: torch.Tensor, xt: torch.Tensor, t, betas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The mean ``(B, ...)`` and variance ``(B,)`` of q(x_{t-1} | x_t, x_0) at steps ``t`` ``(B,)``."""
    t = _steps(t, betas)
    if xt.shape != x0.shape:
        raise ValueError(f"xt must have x0's shape {tuple(x0.shape)}; got {tuple(xt.shape)}")
    ab = alphas_bar(betas)
    ab_t = ab[t - 1]
    ab_prev = torch.where(t > 1, ab[(t - 2).clamp(min=0)], torch.ones_like(ab_t))
    beta_t = betas[t - 1]
    c0 = ab_prev.sqrt() * beta_t / (1 - ab_t)
    ct = (1 - beta_t).sqrt() * (1 - ab_prev) / (1 - ab_t)
    mean = _per_row(c0, x0) * x0 + _per_row(ct, xt) * xt
    var = (1 - ab_prev) * beta_t / (1 - ab_t)
    return mean, var
