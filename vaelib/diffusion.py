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

The reverse ("decoder") chain is learned. With a network eps_theta(x_t, t) that predicts the noise,
p(x_{t-1} | x_t) = N(mu_theta, sigma_t^2 I) with

* mu_theta = (x_t - beta_t / sqrt(1 - abar_t) eps_theta(x_t, t)) / sqrt(1 - beta_t) (:func:`p_mean`),
  the posterior mean with x_0 replaced by its estimate from the predicted noise;
* sigma_t^2 = the posterior variance (:func:`model_variance`) for t >= 2, and beta_1 for the last
  step, p(x_0 | x_1), whose posterior variance is 0.

Then each KL term of the ELBO is a weighted squared error in the noise, weight
beta_t / (2 (1 - beta_t) (1 - abar_{t-1})) (:func:`kl_weight`); :func:`elbo` sums them, and
:func:`simple_loss` is Ho et al.'s unweighted training loss. :class:`NoisePredictor` is a small MLP
noise predictor for K models at once (one per seed), :func:`sample` the ancestral sampler, and
:func:`energy_distance` the two-sample distance the chapter compares samples with.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["linear_schedule", "refine_schedule", "alphas_bar", "q_sample", "q_posterior", "p_mean", "model_variance",
           "kl_weight", "simple_loss", "elbo", "sample", "NoisePredictor", "time_features", "energy_distance"]


def linear_schedule(T: int, beta_1: float = 1e-4, beta_T: float = 0.02) -> torch.Tensor:
    """beta_1..beta_T evenly spaced (Ho et al.'s schedule at T = 1000): ``(T,)`` float64."""
    if isinstance(T, bool) or not isinstance(T, int) or T < 1:
        raise ValueError(f"T must be a positive int; got {T!r}")
    if not 0 < beta_1 <= beta_T < 1:
        raise ValueError(f"need 0 < beta_1 <= beta_T < 1; got beta_1={beta_1!r}, beta_T={beta_T!r}")
    return torch.linspace(beta_1, beta_T, T, dtype=torch.float64)


def refine_schedule(betas: torch.Tensor, T: int) -> torch.Tensor:
    """The schedule of ``T`` steps that follows ``betas``' curve of noise more finely: ``(T,)`` float64.

    The log signal-to-noise ratio of step t, log(abar_t / (1 - abar_t)), is read off ``betas`` at its
    steps 1..T0, interpolated linearly between them, and sampled at ``T`` evenly spaced points from
    the first step to the last; then beta_t = 1 - abar_t / abar_{t-1}. The first and the last noise
    levels (abar_1, hence beta_1, and abar_T) are kept, so two schedules made this way from one
    ``betas`` differ only in how finely they cut the same range of noise (Kingma et al. 2021 compare
    numbers of steps with both ends of the noise fixed). ``T`` of at least 2; ``betas`` of at least 2
    steps.
    """
    _check_betas(betas)
    if isinstance(T, bool) or not isinstance(T, int) or T < 2:
        raise ValueError(f"T must be an int of at least 2; got {T!r}")
    if len(betas) < 2:
        raise ValueError(f"betas must have at least 2 steps to refine; got {len(betas)}")
    ab = alphas_bar(betas.double())
    log_snr = torch.log(ab) - torch.log1p(-ab)  # decreasing in t
    u = torch.linspace(0, len(betas) - 1, T, dtype=torch.float64)  # positions on the old steps, 0-based
    lo = u.floor().long().clamp(max=len(betas) - 2)
    frac = u - lo
    log_snr_new = (1 - frac) * log_snr[lo] + frac * log_snr[lo + 1]
    ab_new = torch.sigmoid(log_snr_new)
    prev = torch.cat([torch.ones(1, dtype=torch.float64), ab_new[:-1]])
    return 1 - ab_new / prev


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


# --------------------------------------------------------------------------- the reverse chain


def _abar_prev(t, betas):
    """abar_{t-1} at steps ``t`` (abar_0 = 1)."""
    ab = alphas_bar(betas)
    return torch.where(t > 1, ab[(t - 2).clamp(min=0)], torch.ones((), dtype=ab.dtype))


def p_mean(xt: torch.Tensor, t, eps_hat: torch.Tensor, betas: torch.Tensor) -> torch.Tensor:
    """The mean of p(x_{t-1} | x_t) from the predicted noise ({eq}`hd-mean-eps`):
    (x_t - beta_t / sqrt(1 - abar_t) eps_hat) / sqrt(1 - beta_t), for rows ``xt`` ``(B, ...)`` at steps ``t``."""
    t = _steps(t, betas)
    if eps_hat.shape != xt.shape:
        raise ValueError(f"eps_hat must have xt's shape {tuple(xt.shape)}; got {tuple(eps_hat.shape)}")
    beta_t, ab_t = betas[t - 1], alphas_bar(betas)[t - 1]
    return (xt - _per_row(beta_t / (1 - ab_t).sqrt(), xt) * eps_hat) / _per_row((1 - beta_t).sqrt(), xt)


def model_variance(t, betas: torch.Tensor) -> torch.Tensor:
    """sigma_t^2 of p(x_{t-1} | x_t): the posterior variance (1 - abar_{t-1}) beta_t / (1 - abar_t) for
    t >= 2, and beta_1 at t = 1, where the posterior variance is 0. Shape of ``t``."""
    t = _steps(t, betas)
    beta_t, ab_t = betas[t - 1], alphas_bar(betas)[t - 1]
    return torch.where(t > 1, (1 - _abar_prev(t, betas)) * beta_t / (1 - ab_t), beta_t)


def kl_weight(t, betas: torch.Tensor) -> torch.Tensor:
    """The weight of the squared noise error in KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t)) for t >= 2
    ({eq}`hd-kl-eps`): beta_t^2 / (2 sigma_t^2 (1 - beta_t) (1 - abar_t)) = beta_t / (2 (1 - beta_t) (1 - abar_{t-1}))."""
    t = _steps(t, betas)
    if t.numel() and t.min() < 2:
        raise ValueError("kl_weight is for steps t >= 2; the last step, p(x_0 | x_1), is a likelihood, not a KL")
    beta_t = betas[t - 1]
    return beta_t / (2 * (1 - beta_t) * (1 - _abar_prev(t, betas)))


def _check_model(eps_model):
    if not callable(eps_model):
        raise TypeError(f"eps_model must be callable as eps_model(x_t, t); got {type(eps_model).__name__}")


def simple_loss(eps_model, x0: torch.Tensor, t, eps: torch.Tensor, betas: torch.Tensor) -> torch.Tensor:
    """Ho et al.'s L_simple per example ({eq}`hd-simple`): |eps - eps_theta(x_t, t)|^2 summed over the last
    dim, at x_t = :func:`q_sample` (x0, t, eps). ``x0`` ``(..., d)``, ``t`` its leading shape; returns it."""
    _check_model(eps_model)
    xt = q_sample(x0, t, eps, betas)
    return ((eps - eps_model(xt, t)) ** 2).sum(-1)


def elbo(eps_model, x0: torch.Tensor, betas: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """The ELBO of x_0 as a sum of KL terms ({eq}`hd-elbo-sum`), one noise draw per step, in nats per row:

        log p(x_0 | x_1) - sum_{t=2}^T KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t)) - KL(q(x_T | x_0) || N(0, I)),

    each KL at x_t = :func:`q_sample` (x0, t, eps[t - 1]). ``x0`` ``(..., d)`` (the leading dims are rows,
    e.g. ``(K, B)`` for K models), ``eps`` ``(T, *x0.shape)``; ``eps_model(x_t, t)`` with ``t`` of the
    rows' shape. An unbiased estimate of the ELBO {eq}`elbo-identity` of the diffusion model whose
    decoders are p(x_{t-1} | x_t) = N(:func:`p_mean`, :func:`model_variance`) and p(x_T) = N(0, I).
    """
    _check_model(eps_model)
    _check_betas(betas)
    T, d = len(betas), x0.shape[-1]
    if eps.shape != (T, *x0.shape):
        raise ValueError(f"eps must have shape (T, *x0.shape) = {(T, *x0.shape)}; got {tuple(eps.shape)}")
    ab = alphas_bar(betas).to(x0.dtype)
    rows = x0.shape[:-1]
    # the prior term: KL(N(sqrt(abar_T) x0, (1 - abar_T) I) || N(0, I)), closed form
    out = -0.5 * (ab[-1] * x0**2 + (1 - ab[-1]) - torch.log(1 - ab[-1]) - 1).sum(-1)
    for step in range(1, T + 1):
        t = torch.full(rows, step, dtype=torch.long, device=x0.device)
        err = ((eps[step - 1] - eps_model(q_sample(x0, t, eps[step - 1], betas), t)) ** 2).sum(-1)
        if step == 1:  # log N(x0; p_mean, beta_1 I) = -d/2 log(2 pi beta_1) - err / (2 (1 - beta_1))
            beta_1 = betas[0].to(x0.dtype)
            out = out - 0.5 * d * torch.log(2 * math.pi * beta_1) - err / (2 * (1 - beta_1))
        else:
            out = out - kl_weight(torch.tensor(step), betas).to(x0.dtype) * err
    return out


@torch.no_grad()
def sample(eps_model, shape, betas: torch.Tensor, generator: torch.Generator | None = None,
           dtype=torch.float32, final_noise: bool = True) -> torch.Tensor:
    """Ancestral sampling ({eq}`hd-sampler`): x_T ~ N(0, I), then x_{t-1} ~ N(:func:`p_mean`, :func:`model_variance`)
    for t = T..1. ``shape`` ``(..., d)``: the rows' shape and the data dimension. ``final_noise=False``
    returns the mean of p(x_0 | x_1), as Ho et al. display their samples."""
    _check_model(eps_model)
    _check_betas(betas)
    shape = tuple(shape)
    x = torch.randn(shape, generator=generator, dtype=dtype)
    for step in range(len(betas), 0, -1):
        t = torch.full(shape[:-1], step, dtype=torch.long)
        x = p_mean(x, t, eps_model(x, t), betas)
        if step > 1 or final_noise:
            sd = model_variance(torch.tensor(step), betas).sqrt().to(dtype)
            x = x + sd * torch.randn(shape, generator=generator, dtype=dtype)
    return x


def time_features(t, T: int, n_freq: int) -> torch.Tensor:
    """sin and cos of 2^j pi t / T, j = 0..n_freq-1: ``(*t.shape, 2 n_freq)`` float32, the network's clock."""
    t = torch.as_tensor(t)
    s = t.to(torch.float32) / T
    angles = s[..., None] * math.pi * 2.0 ** torch.arange(n_freq, dtype=torch.float32)
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)


class NoisePredictor(nn.Module):
    """eps_theta(x_t, t): K independent MLPs (one per seed) evaluated with batched matrix products.

    Each member maps ``[x_t, time_features(t)]`` through ``depth`` hidden layers of ``hidden`` SiLU units
    to a noise estimate of x_t's dimension. Member k's weights are drawn from a generator seeded with
    ``seeds[k]`` (uniform in +-1/sqrt(fan-in), nn.Linear's default scale), so two models built from the
    same seeds start equal whatever their ``T``. ``forward(x_t, t)``: ``x_t`` ``(K, B, dim)``, ``t``
    ``(K, B)`` integer steps in 1..T; returns ``(K, B, dim)``.
    """

    def __init__(self, seeds, T: int, dim: int = 2, hidden: int = 128, depth: int = 3, n_freq: int = 6):
        super().__init__()
        if not isinstance(seeds, (list, tuple)) or not seeds:
            raise ValueError(f"seeds must be a non-empty list of ints, one per model; got {seeds!r}")
        for name, v in (("T", T), ("dim", dim), ("hidden", hidden), ("depth", depth), ("n_freq", n_freq)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int; got {v!r}")
        self.T, self.dim, self.n_freq, self.k = T, dim, n_freq, len(seeds)
        sizes = [dim + 2 * n_freq] + [hidden] * depth + [dim]
        weights = [[] for _ in range(len(sizes) - 1)]
        biases = [[] for _ in range(len(sizes) - 1)]
        for seed in seeds:
            g = torch.Generator().manual_seed(seed)
            for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
                bound = 1 / math.sqrt(n_in)
                weights[i].append((2 * torch.rand(n_in, n_out, generator=g) - 1) * bound)
                biases[i].append((2 * torch.rand(1, n_out, generator=g) - 1) * bound)
        self.weights = nn.ParameterList([nn.Parameter(torch.stack(w)) for w in weights])
        self.biases = nn.ParameterList([nn.Parameter(torch.stack(b)) for b in biases])

    def forward(self, xt: torch.Tensor, t) -> torch.Tensor:
        if xt.ndim != 3 or xt.shape[0] != self.k or xt.shape[2] != self.dim:
            raise ValueError(f"xt must be (K={self.k}, B, dim={self.dim}); got {tuple(xt.shape)}")
        t = torch.as_tensor(t)
        if t.shape != xt.shape[:2]:
            raise ValueError(f"t must be (K, B) = {tuple(xt.shape[:2])}; got {tuple(t.shape)}")
        if t.dtype.is_floating_point or (t.numel() and (t.min() < 1 or t.max() > self.T)):
            raise ValueError(f"t must hold integer steps in 1..{self.T}")
        h = torch.cat([xt, time_features(t, self.T, self.n_freq).to(xt.dtype)], dim=-1)
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = torch.baddbmm(b, h, w)
            if i < last:
                h = nn.functional.silu(h)
        return h


def energy_distance(x: torch.Tensor, y: torch.Tensor, unbiased: bool = True) -> float:
    """The squared energy distance between the samples ``x`` ``(n, d)`` and ``y`` ``(m, d)`` ({eq}`hd-energy`):

        2 E|X - Y| - E|X - X'| - E|Y - Y'|   (Euclidean norms),

    zero exactly when the two distributions are equal (Szekely and Rizzo). ``unbiased=True`` averages
    |X - X'| over distinct pairs only (a U-statistic, unbiased, and may fall below zero); ``False`` over
    all pairs, the V-statistic whose square root is :func:`scipy.stats.energy_distance` in one dimension.
    Computed in float64."""
    for name, v in (("x", x), ("y", y)):
        if not isinstance(v, torch.Tensor) or v.ndim != 2 or len(v) < 2:
            raise ValueError(f"{name} must be an (n, d) tensor with n >= 2; got shape {tuple(getattr(v, 'shape', ()))}")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must have the same dimension; got {x.shape[1]} and {y.shape[1]}")
    x, y = x.double(), y.double()
    n, m = len(x), len(y)
    within_x, within_y = _cdist(x, x).sum(), _cdist(y, y).sum()
    if unbiased:
        within_x, within_y = within_x / (n * (n - 1)), within_y / (m * (m - 1))
    else:
        within_x, within_y = within_x / n**2, within_y / m**2
    return float(2 * _cdist(x, y).mean() - within_x - within_y)


def _cdist(a, b):
    # exact differences, not the |a|^2 + |b|^2 - 2ab shortcut, whose round-off leaves ~1e-8 on the diagonal
    return torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist")
