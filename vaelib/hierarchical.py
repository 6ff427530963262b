"""A two-layer hierarchical VAE with top-down inference, and its importance-sampled log-likelihood.

The generative model is a chain z2 -> z1 -> x,

    p(z2) = N(0, I),   p(z1 | z2) = N(mu_p(z2), diag exp(logvar_p(z2))),   p(x | z1) (Bernoulli or Gaussian),

and the approximate posterior is factored top-down, in the order of the generative model
(Sonderby et al. 2016; Kingma et al. 2016):

    q(z2 | x) = N(mu_2(x), diag exp(logvar_2(x))),   q(z1 | x, z2) = N(mu_1(h(x), z2), diag exp(logvar_1(h(x), z2))),

where h(x) is one deterministic encoder trunk shared by both layers. The ELBO ({eq}`hd-elbo-kl`) is

    E_q[log p(x | z1)] - KL(q(z2 | x) || p(z2)) - E_{q(z2 | x)}[ KL(q(z1 | x, z2) || p(z1 | z2)) ],

both KLs Gaussian and in closed form once z2 is drawn: :meth:`TwoLayerVAE.terms` returns the KL
term for one draw of z2, a one-sample Monte Carlo estimate of the last expectation (unbiased, not
closed form). :func:`iwae_log_likelihood` is the importance-weighted bound {eq}`iwae-bound` with the
two-layer weight {eq}`hd-iw-weight`. :class:`LinearGaussianTwoLayer` is the same chain with linear
Gaussian conditionals, whose evidence and posterior are exact: the known answer the tests and the
chapter hold the estimate to.

Shapes: ``x`` ``(B, D)``; the reparameterisation noise ``eps`` ``(B, latent1 + latent2)``, the first
``latent1`` columns for z1 and the rest for z2, so that :func:`vaelib.train.fit` and
:func:`vaelib.batched.fit_many` (which draw ``(B, latent_dim)`` noise) train the model unchanged.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn
from torch.distributions import Independent, Normal

from .estimates import IWAE_MAX_ROWS, evaluating, log_mean_weight
from .models import DECODER_MIN_LOGVAR, LIKELIHOODS, distribution, make_decoder
from .objectives import check_targets, kl_terms

__all__ = ["TwoLayerOutput", "TwoLayerVAE", "LinearGaussianTwoLayer", "iwae_log_likelihood", "n_parameters"]


def _normal_logpdf(z, mu, logvar):
    """log N(z; mu, diag e^logvar), summed over the last dim."""
    return Independent(Normal(mu, torch.exp(0.5 * logvar)), 1).log_prob(z)


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int; got {value!r}")


def n_parameters(model: nn.Module) -> int:
    """The number of trainable numbers in ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


class TwoLayerOutput(NamedTuple):
    px: torch.distributions.Distribution  # p(x | z1), log_prob(x) is (B,)
    mu2: torch.Tensor  # (B, latent2) q(z2 | x)
    logvar2: torch.Tensor
    z2: torch.Tensor  # (B, latent2)
    mu1: torch.Tensor  # (B, latent1) q(z1 | x, z2)
    logvar1: torch.Tensor
    prior_mu1: torch.Tensor  # (B, latent1) p(z1 | z2)
    prior_logvar1: torch.Tensor
    z1: torch.Tensor  # (B, latent1)


def _mlp(n_in, hidden, n_out):
    return nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, n_out))


class TwoLayerVAE(nn.Module):
    """The two-layer VAE of the module docstring, with MLPs.

    ``hidden`` units in the two layers of the encoder trunk h(x) and of the decoder p(x | z1) (the
    book's MLP decoder, :func:`vaelib.models.make_decoder`); ``hidden_top`` units (default
    ``hidden // 2``) in the one hidden layer of the two small networks, q(z1 | x, z2) on
    ``[h(x), z2]`` and p(z1 | z2). Interface as :class:`vaelib.models.VAE` where it can be:
    ``terms``, ``decode``, ``sample``, ``likelihood``, ``latent_dim`` (= ``latent1 + latent2``, the
    width of the noise), ``config``; ``encode(x)`` returns ``(mu2, logvar2, h)``, three tensors, so
    that nothing mistakes it for a one-layer posterior.
    """

    has_posterior, needs_labels = True, False

    def __init__(self, x_shape, latent1: int, latent2: int, hidden: int = 128, hidden_top: int | None = None,
                 likelihood: str = "bernoulli"):
        super().__init__()
        if len(tuple(x_shape)) != 3:
            raise ValueError(f"x_shape must be (C, H, W); got {x_shape!r}")
        _positive_int("latent1", latent1)
        _positive_int("latent2", latent2)
        _positive_int("hidden", hidden)
        hidden_top = max(1, hidden // 2) if hidden_top is None else hidden_top
        _positive_int("hidden_top", hidden_top)
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}; got {likelihood!r}")
        self.x_shape = tuple(int(s) for s in x_shape)
        self.x_dim = math.prod(self.x_shape)
        self.latent1, self.latent2 = latent1, latent2
        self.latent_dim = latent1 + latent2
        self.likelihood = likelihood
        self.config = dict(x_shape=list(self.x_shape), latent1=latent1, latent2=latent2, hidden=hidden,
                           hidden_top=hidden_top, likelihood=likelihood)
        self.trunk = nn.Sequential(nn.Linear(self.x_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.q_top = nn.Linear(hidden, 2 * latent2)  # q(z2 | x)
        self.q_bottom = _mlp(hidden + latent2, hidden_top, 2 * latent1)  # q(z1 | x, z2)
        self.prior_net = _mlp(latent2, hidden_top, 2 * latent1)  # p(z1 | z2)
        self.decoder = make_decoder("mlp", latent1, self.x_shape, hidden)  # p(x | z1)
        if likelihood == "gaussian":
            self.decoder_logvar = nn.Parameter(torch.zeros(self.x_dim))

    # -- the four conditionals
    def encode(self, x):
        """``(B, D)`` -> ``(mu2, logvar2, h)``: q(z2 | x) and the trunk's features h(x) ``(B, hidden)``."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor; got {type(x).__name__}")
        if x.ndim != 2 or x.shape[1] != self.x_dim:
            raise ValueError(f"x must have shape (B, {self.x_dim}); got {tuple(x.shape)}")
        h = self.trunk(x)
        mu2, logvar2 = self.q_top(h).chunk(2, dim=-1)
        return mu2, logvar2, h

    def q_z1(self, h, z2):
        """q(z1 | x, z2) as ``(mu1, logvar1)``, each ``(B, latent1)``, from the features h(x) and z2."""
        return self.q_bottom(torch.cat([h, z2], dim=-1)).chunk(2, dim=-1)

    def p_z1(self, z2):
        """The conditional prior p(z1 | z2) as ``(mu, logvar)``, each ``(B, latent1)``."""
        return self.prior_net(z2).chunk(2, dim=-1)

    def decode(self, z1):
        """``(B, latent1)`` -> p(x | z1)."""
        params = self.decoder(z1)
        if self.likelihood == "bernoulli":
            return distribution("bernoulli", params)
        logvar = self.decoder_logvar.clamp(min=DECODER_MIN_LOGVAR)  # the floor of vaelib.models
        return distribution("gaussian", params, torch.exp(0.5 * logvar).expand_as(params))

    # -- training interface
    def _split(self, eps, x):
        if eps is None:
            eps = torch.randn(x.shape[0], self.latent_dim, dtype=x.dtype, device=x.device)
        elif not isinstance(eps, torch.Tensor) or eps.shape != (x.shape[0], self.latent_dim):
            raise ValueError(f"eps must be a tensor of shape {(x.shape[0], self.latent_dim)} (latent1 + latent2 "
                             f"columns, z1's first); got {tuple(getattr(eps, 'shape', ()))}")
        return eps[:, : self.latent1], eps[:, self.latent1 :]

    def forward(self, x, eps=None) -> TwoLayerOutput:
        """Top-down: z2 = mu2 + sigma2 * eps2, then z1 = mu1(x, z2) + sigma1 * eps1, then p(x | z1)."""
        eps1, eps2 = self._split(eps, x)
        mu2, logvar2, h = self.encode(x)
        z2 = mu2 + torch.exp(0.5 * logvar2) * eps2
        mu1, logvar1 = self.q_z1(h, z2)
        z1 = mu1 + torch.exp(0.5 * logvar1) * eps1
        pm, plv = self.p_z1(z2)
        return TwoLayerOutput(self.decode(z1), mu2, logvar2, z2, mu1, logvar1, pm, plv, z1)

    def kl(self, out: TwoLayerOutput, per_dim: bool = False) -> torch.Tensor:
        """KL(q(z2|x) || N(0, I)) + KL(q(z1|x,z2) || p(z1|z2)) at the drawn z2 ({eq}`hd-elbo-kl`): ``(B,)``;
        with ``per_dim`` the summands ``(B, latent1 + latent2)``, z1's first."""
        k1 = kl_terms(out.mu1, out.logvar1, out.prior_mu1, out.prior_logvar1)
        k2 = kl_terms(out.mu2, out.logvar2)
        terms = torch.cat([k1, k2], dim=-1)
        return terms if per_dim else terms.sum(-1)

    def terms(self, x, y=None, eps=None, per_dim: bool = False):
        """``(px, kl)`` as :meth:`vaelib.models.VAE.terms`: p(x | z1) for one top-down draw, and the KL term
        of that draw, ``(B,)`` nats (``(B, latent1 + latent2)`` with ``per_dim``). ``y`` is ignored."""
        out = self(x, eps)
        return out.px, self.kl(out, per_dim)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Means of p(x | z1) for z2 ~ N(0, I), z1 ~ p(z1 | z2): ``(n, D)``."""
        _positive_int("n", n)
        p = next(self.parameters())
        z2 = torch.randn(n, self.latent2, generator=generator, dtype=p.dtype, device=p.device)
        pm, plv = self.p_z1(z2)
        z1 = pm + torch.exp(0.5 * plv) * torch.randn(pm.shape, generator=generator, dtype=p.dtype, device=p.device)
        return self.decode(z1).mean


class LinearGaussianTwoLayer:
    """The chain of :class:`TwoLayerVAE` with linear Gaussian conditionals, coordinate by coordinate:

        z2 ~ N(0, 1),   z1 | z2 ~ N(c z2, t^2),   x | z1 ~ N(a z1 + b, s^2),   in each of D coordinates,

    so that log p(x) = sum_i log N(x_i; b, a^2 (c^2 + t^2) + s^2) ({eq}`hd-lg-evidence`). Its q is the
    exact posterior in top-down form ({eq}`hd-lg-posterior`), with both means moved by ``shift``
    (``shift = 0``: the exact posterior). Same interface as :class:`TwoLayerVAE` (``encode`` returns
    ``h = x``), float64.
    """

    likelihood = "gaussian"
    has_posterior = True

    def __init__(self, a: float, b: float, c: float, s: float, t: float, shift: float = 0.0):
        for name, v in (("a", a), ("b", b), ("c", c), ("s", s), ("t", t), ("shift", shift)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"{name} must be a finite number; got {v!r}")
        if s <= 0 or t <= 0:
            raise ValueError(f"the standard deviations s and t must be > 0; got s={s!r}, t={t!r}")
        self.a, self.b, self.c, self.s, self.t, self.shift = (float(v) for v in (a, b, c, s, t, shift))

    def _x(self, x):
        if not isinstance(x, torch.Tensor) or x.ndim != 2 or x.dtype != torch.float64:
            raise ValueError(f"x must be a (B, D) float64 tensor; got {getattr(x, 'dtype', type(x).__name__)} "
                             f"of shape {tuple(getattr(x, 'shape', ()))}")
        return x

    def posterior_z2(self):
        """The exact p(z2 | x) = N(gain * (x - b), var): ``(gain, var)``."""
        noise = self.a**2 * self.t**2 + self.s**2  # x | z2 ~ N(a c z2 + b, noise)
        var = 1 / (1 + (self.a * self.c) ** 2 / noise)
        return var * self.a * self.c / noise, var

    def posterior_z1(self):
        """The exact p(z1 | x, z2) = N(wz * z2 + wx * (x - b), var): ``(wz, wx, var)``."""
        var = 1 / (1 / self.t**2 + self.a**2 / self.s**2)
        return var * self.c / self.t**2, var * self.a / self.s**2, var

    def encode(self, x):
        x = self._x(x)
        gain, var = self.posterior_z2()
        mu2 = gain * (x - self.b) + self.shift
        return mu2, torch.full_like(x, math.log(var)), x

    def q_z1(self, h, z2):
        wz, wx, var = self.posterior_z1()
        mu1 = wz * z2 + wx * (h - self.b) + self.shift
        return mu1, torch.full_like(mu1, math.log(var))

    def p_z1(self, z2):
        return self.c * z2, torch.full_like(z2, 2 * math.log(self.t))

    def decode(self, z1):
        return Independent(Normal(self.a * z1 + self.b, self.s), 1)

    def log_evidence(self, x):
        """The exact log p(x), ``(B,)``."""
        x = self._x(x)
        var = torch.tensor(self.a**2 * (self.c**2 + self.t**2) + self.s**2, dtype=x.dtype)
        return Normal(torch.tensor(self.b, dtype=x.dtype), var.sqrt()).log_prob(x).sum(-1)

    def elbo_exact(self, x):
        """The exact ELBO of this q: log p(x) - KL(q || p(z1, z2 | x)) = log p(x) - D shift^2 (1/v2 + 1/v1) / 2,
        since both of q's factors are the posterior's moved by ``shift`` at every z2."""
        x = self._x(x)
        _, v2 = self.posterior_z2()
        v1 = self.posterior_z1()[2]
        return self.log_evidence(x) - x.shape[1] * self.shift**2 * (1 / v2 + 1 / v1) / 2


@torch.no_grad()
def iwae_log_likelihood(model, x: torch.Tensor, k: int, generator: torch.Generator | None = None,
                        max_rows: int = 2**16) -> torch.Tensor:
    """The importance-sampled estimate of log p(x) for a two-layer model, per example ``(B,)`` nats:

        log (1/k) sum_i p(x | z1_i) p(z1_i | z2_i) p(z2_i) / (q(z2_i | x) q(z1_i | x, z2_i))     ({eq}`hd-iw-weight`)

    with (z1_i, z2_i) drawn top-down from q, as a log-mean-exp; one draw of the bound
    {eq}`iwae-bound` ({cite:t}`burda2015importance`). ``model`` has ``encode(x) -> (mu2, logvar2, h)``,
    ``q_z1(h, z2)``, ``p_z1(z2)`` and ``decode(z1)`` (:class:`TwoLayerVAE`,
    :class:`LinearGaussianTwoLayer`). The k draws go in chunks of at most ``max_rows`` rows;
    ``generator`` gives, chunk by chunk, the noise of z2 and then that of z1.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive int; got {k!r}")
    if not isinstance(x, torch.Tensor) or x.ndim != 2:
        raise ValueError(f"x must be a (B, D) tensor; got {type(x).__name__} of shape {tuple(getattr(x, 'shape', ()))}")
    check_targets(model, x)
    if k * x.shape[0] > IWAE_MAX_ROWS:
        raise ValueError(f"k * len(x) = {k * x.shape[0]:,} decoder evaluations is more than IWAE_MAX_ROWS = "
                         f"{IWAE_MAX_ROWS:,} (hours on a CPU); use a smaller k or fewer images")
    with evaluating(model):
        mu2, logvar2, h = model.encode(x)
        b = x.shape[0]

        def draw(c):  # c top-down draws per image -> their log-weights (c, B)
            eps2 = torch.randn((c, *mu2.shape), dtype=mu2.dtype, device=mu2.device, generator=generator)
            z2 = (mu2 + torch.exp(0.5 * logvar2) * eps2).reshape(c * b, -1)
            mu1, logvar1 = model.q_z1(h.repeat(c, 1), z2)
            eps1 = torch.randn(mu1.shape, dtype=mu1.dtype, device=mu1.device, generator=generator)
            z1 = mu1 + torch.exp(0.5 * logvar1) * eps1
            pm, plv = model.p_z1(z2)
            log_w = (
                model.decode(z1).log_prob(x.repeat(c, 1))
                + _normal_logpdf(z1, pm, plv)
                + _normal_logpdf(z2, torch.zeros_like(z2), torch.zeros_like(z2))
                - _normal_logpdf(z2, mu2.repeat(c, 1), logvar2.repeat(c, 1))
                - _normal_logpdf(z1, mu1, logvar1)
            )
            return log_w.reshape(c, b)

        return log_mean_weight(draw, b, k, max_rows)
