"""Discrete latents: exact gradients of a categorical expectation, and the Concrete density.

The chapter on discrete latents compares gradient estimators on a problem small enough to solve
exactly: z takes one of K values c_1..c_K with probabilities pi = softmax(theta(mu)), and the
objective is E_pi[f(z)]. Everything an estimator's bias and variance are measured against is here,
in closed form:

* :func:`discretised_gaussian_logits` -- chapter 03's Gaussian N(mu, sigma^2) put on a grid of
  atoms: logits theta_k = -(c_k - mu)^2 / (2 sigma^2) and their derivative in mu,
* :func:`categorical_gradient` -- the exact gradient {eq}`dis-exact-grad`,
  d/dmu E_pi[f] = sum_k pi_k (f_k - E_pi[f]) dtheta_k/dmu = Cov_pi(f, dtheta/dmu),
* :func:`score_function_moments` -- the exact mean and variance of one draw of the score-function
  estimator (f(z) - b) d/dmu log pi_z, with a constant baseline b, and
  :func:`optimal_baseline`, the b that minimises that variance,
* :func:`concrete_log_prob` -- the log-density of the Concrete (Gumbel-softmax) distribution
  {eq}`dis-concrete-density` (Maddison et al. 2017; Jang et al. 2017), written from the formula,
  so that ``torch.distributions.RelaxedOneHotCategorical`` can be checked against it.

The samplers themselves are torch's (``RelaxedOneHotCategorical``, ``F.gumbel_softmax``).
Everything works in the dtype it is given; pass float64 for the book's checks.
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "discretised_gaussian_logits",
    "categorical_gradient",
    "score_function_moments",
    "optimal_baseline",
    "concrete_log_prob",
]


def _vector(name, v) -> torch.Tensor:
    if not isinstance(v, torch.Tensor) or not v.dtype.is_floating_point:
        raise TypeError(f"{name} must be a floating-point torch tensor; got "
                        f"{getattr(v, 'dtype', type(v).__name__)}")
    if v.ndim != 1 or len(v) < 2:
        raise ValueError(f"{name} must be a 1-D tensor of K >= 2 values, one per category; got shape {tuple(v.shape)}")
    if not torch.isfinite(v).all():
        raise ValueError(f"{name} contains NaN or infinity")
    return v


def _same_k(**tensors) -> None:
    sizes = {name: len(t) for name, t in tensors.items()}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"{', '.join(sizes)} must have one value per category each; got lengths {sizes}")


def discretised_gaussian_logits(mu: float, atoms: torch.Tensor, sigma: float):
    """``(theta, dtheta)``: theta_k = -(c_k - mu)^2 / (2 sigma^2) for the atoms c_k, and
    dtheta_k/dmu = (c_k - mu) / sigma^2 (each ``(K,)``), so that softmax(theta) is N(mu, sigma^2)
    restricted to the atoms and renormalised ({eq}`dis-toy`)."""
    atoms = _vector("atoms", atoms)
    for name, v in (("mu", mu), ("sigma", sigma)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise TypeError(f"{name} must be a finite real number; got {v!r}")
    if sigma <= 0:
        raise ValueError(f"sigma must be > 0; got {sigma}")
    return -((atoms - mu) ** 2) / (2 * sigma**2), (atoms - mu) / sigma**2


def categorical_gradient(f: torch.Tensor, logits: torch.Tensor, dlogits: torch.Tensor) -> torch.Tensor:
    """The exact derivative of E_pi[f(z)] = sum_k pi_k f_k, pi = softmax(logits), along a parameter
    whose derivative of the logits is ``dlogits`` ({eq}`dis-exact-grad`):
    sum_k pi_k (f_k - E_pi[f]) dlogits_k. All three ``(K,)``; returns a 0-d tensor."""
    f, logits, dlogits = _vector("f", f), _vector("logits", logits), _vector("dlogits", dlogits)
    _same_k(f=f, logits=logits, dlogits=dlogits)
    pi = torch.softmax(logits, 0)
    return (pi * (f - (pi * f).sum()) * dlogits).sum()


def _score(logits, dlogits):
    """d/dmu log pi_k = dlogits_k - E_pi[dlogits] (the normaliser's derivative subtracted), ``(K,)``."""
    pi = torch.softmax(logits, 0)
    return pi, dlogits - (pi * dlogits).sum()


def score_function_moments(f: torch.Tensor, logits: torch.Tensor, dlogits: torch.Tensor, baseline: float = 0.0):
    """``(mean, variance)`` of one draw of the score-function estimator (f(z) - b) d/dmu log pi_z,
    z ~ Categorical(softmax(logits)), as exact sums over the K categories (0-d tensors).

    The mean is :func:`categorical_gradient` for every constant ``baseline`` b, since
    E_pi[d/dmu log pi_z] = 0; the variance is sum_k pi_k ((f_k - b) s_k)^2 - mean^2, s the score."""
    f, logits, dlogits = _vector("f", f), _vector("logits", logits), _vector("dlogits", dlogits)
    _same_k(f=f, logits=logits, dlogits=dlogits)
    if isinstance(baseline, bool) or not isinstance(baseline, (int, float, torch.Tensor)) \
            or not math.isfinite(float(baseline)):
        raise TypeError(f"baseline must be a finite number; got {baseline!r}")
    pi, s = _score(logits, dlogits)
    g = (f - baseline) * s
    mean = (pi * g).sum()
    return mean, (pi * g**2).sum() - mean**2


def optimal_baseline(f: torch.Tensor, logits: torch.Tensor, dlogits: torch.Tensor) -> torch.Tensor:
    """The constant b that minimises the variance of :func:`score_function_moments`:
    b* = E_pi[f s^2] / E_pi[s^2], s the score (the variance is a quadratic in b). 0-d tensor."""
    f, logits, dlogits = _vector("f", f), _vector("logits", logits), _vector("dlogits", dlogits)
    _same_k(f=f, logits=logits, dlogits=dlogits)
    pi, s = _score(logits, dlogits)
    return (pi * f * s**2).sum() / (pi * s**2).sum()


def concrete_log_prob(y: torch.Tensor, logits: torch.Tensor, tau: float) -> torch.Tensor:
    """log p(y) of the Concrete distribution with temperature ``tau`` ({eq}`dis-concrete-density`):

        p(y) = (K-1)! tau^(K-1) prod_k [pi_k y_k^(-tau-1)] / (sum_k pi_k y_k^(-tau))^K,

    pi = softmax(logits), for points ``y`` ``(..., K)`` in the open simplex (positive, summing to 1),
    a density over the first K-1 coordinates. ``logits`` ``(K,)`` or broadcasting against ``y``.
    Computed in logs: sum_k (theta_k - (tau+1) log y_k) - K logsumexp_k(theta_k - tau log y_k), where
    theta = log pi (any shift of the logits cancels)."""
    if not isinstance(y, torch.Tensor) or not y.dtype.is_floating_point or y.ndim < 1 or y.shape[-1] < 2:
        raise ValueError(f"y must be a floating-point tensor (..., K) with K >= 2; got "
                         f"{tuple(getattr(y, 'shape', ()))} {getattr(y, 'dtype', type(y).__name__)}")
    if not isinstance(logits, torch.Tensor) or logits.shape[-1] != y.shape[-1]:
        raise ValueError(f"logits must be a tensor with {y.shape[-1]} entries in its last dimension, like y; got "
                         f"{tuple(getattr(logits, 'shape', ()))}")
    if isinstance(tau, bool) or not isinstance(tau, (int, float)) or not math.isfinite(tau) or tau <= 0:
        raise ValueError(f"tau must be a finite number > 0; got {tau!r}")
    if (y <= 0).any():
        raise ValueError("y must lie in the open simplex: every coordinate > 0")
    sums = y.sum(-1)
    if not torch.allclose(sums, torch.ones_like(sums), rtol=0, atol=1e3 * torch.finfo(y.dtype).eps):
        raise ValueError(f"y must lie in the simplex: its coordinates sum to 1; got sums in "
                         f"[{float(sums.min()):.6g}, {float(sums.max()):.6g}]")
    k = y.shape[-1]
    theta = torch.log_softmax(logits, -1)
    log_y = y.log()
    return (math.lgamma(k) + (k - 1) * math.log(tau) + (theta - (tau + 1) * log_y).sum(-1)
            - k * torch.logsumexp(theta - tau * log_y, -1))
