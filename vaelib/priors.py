"""Learned priors: a VAE whose prior p(z) is a mixture of Gaussians or the VampPrior, and the
estimates that have to read that prior (chapter 11).

For a fixed encoder the prior that maximises the ELBO averaged over the data is the aggregate
posterior q(z) = (1/N) sum_n q(z|x_n) ({eq}`pri-optimal`). Two learned families approach it:

* ``prior="mog"``: p(z) = sum_k w_k N(z; m_k, diag e^{v_k}), with learned means, log-variances
  and weights (``w = softmax(logits)``);
* ``prior="vamp"`` (Tomczak and Welling 2018): p(z) = (1/K) sum_k q(z | u_k), the encoder's own
  posteriors at K learned *pseudo-inputs* u_k, images in [0, 1] ({eq}`pri-vamp`);
* ``prior="standard"``: N(0, I), the baseline, with the same Monte Carlo KL as the other two.

Neither mixture has a closed-form KL(q(z|x) || p(z)), so :class:`PriorVAE` returns the one-sample
Monte Carlo estimate log q(z|x) - log p(z) at the reparameterised code z = mu + sigma * eps
({eq}`pri-mc-kl`): unbiased, and differentiable through z. Everything else is
:class:`vaelib.models.VAE`'s: the same encoder and decoder, built in the same order, so a seed gives
a PriorVAE and a VAE the same initial networks (the prior's parameters are drawn after them).

The library's :func:`vaelib.estimates.iwae_log_likelihood`, :func:`~vaelib.estimates.aggregate_posterior`
and :func:`~vaelib.estimates.aggregate_log_ratio` assume p(z) = N(0, I). Their counterparts here,
:func:`iwae_log_likelihood`, :func:`aggregate_split` and :func:`aggregate_log_ratio`, read the model's
own prior (``model.log_prior``), or any log-density passed as ``log_prior`` (a Gaussian mixture fitted
to the codes afterwards, :class:`GaussianMixtureDensity`: the two-stage idea of Dai and Wipf 2019);
on a model with the standard prior they give the library's numbers (tested).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from . import estimates, models

__all__ = [
    "PRIORS",
    "mixture_log_prob",
    "mixture_sample",
    "standard_normal_log_prob",
    "PriorVAE",
    "GaussianMixtureDensity",
    "iwae_log_likelihood",
    "aggregate_split",
    "aggregate_log_ratio",
]

PRIORS = ("standard", "mog", "vamp")
_LOG_2PI = math.log(2 * math.pi)


def _check_int(name, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int; got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {value}")


def _check_components(z, means, logvars, log_weights):
    for name, t in (("z", z), ("means", means), ("logvars", logvars), ("log_weights", log_weights)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor; got {type(t).__name__}")
    if means.ndim != 2:
        raise ValueError(f"means must be (K, d), one row per component; got shape {tuple(means.shape)}")
    if logvars.shape != means.shape:
        raise ValueError(f"logvars must have the means' shape {tuple(means.shape)}; got {tuple(logvars.shape)}")
    if log_weights.shape != means.shape[:1]:
        raise ValueError(f"log_weights must be ({means.shape[0]},), one per component; got {tuple(log_weights.shape)}")
    if z.ndim < 1 or z.shape[-1] != means.shape[1]:
        raise ValueError(f"z must be (..., {means.shape[1]}), points of the components' dimension; "
                         f"got {tuple(z.shape)}")


def mixture_log_prob(z, means, logvars, log_weights, check: bool = True) -> torch.Tensor:
    """log p(z) = log sum_k w_k N(z; m_k, diag e^{v_k}) ({eq}`pri-mog`) at every point of ``z``.

    ``z`` ``(..., d)``; ``means`` and ``logvars`` ``(K, d)``; ``log_weights`` ``(K,)``, the log w_k,
    which should sum to one in probability (``torch.log_softmax`` of free logits). Returns ``(...)``,
    a log-sum-exp over the K component log-densities computed as differences (z - m_k), not an expanded
    square, so that narrow components keep their precision in float32. ``check=False`` skips the
    shape checks (the training step, where shapes are the model's own).
    """
    if check:
        _check_components(z, means, logvars, log_weights)
    diff = z.unsqueeze(-2) - means  # (..., K, d)
    comp = -0.5 * (diff**2 * torch.exp(-logvars) + logvars + _LOG_2PI).sum(-1)  # (..., K)
    return torch.logsumexp(comp + log_weights, dim=-1)


def standard_normal_log_prob(z) -> torch.Tensor:
    """log N(z; 0, I) summed over the last dimension: ``(...)``."""
    return -0.5 * (z**2 + _LOG_2PI).sum(-1)


@torch.no_grad()
def mixture_sample(n, means, logvars, log_weights, generator: torch.Generator | None = None) -> torch.Tensor:
    """``n`` draws from the mixture: a component k with probability w_k, then m_k + e^{v_k/2} * eps.

    The noise eps ``(n, d)`` is drawn first, then the n component indices (``torch.multinomial``),
    both from ``generator``. Returns ``(n, d)`` in the means' dtype.
    """
    _check_int("n", n)
    _check_components(means[:1], means, logvars, log_weights)
    eps = torch.randn(n, means.shape[1], generator=generator, dtype=means.dtype, device=means.device)
    k = torch.multinomial(torch.softmax(log_weights.double(), 0), n, replacement=True, generator=generator)
    return means[k] + torch.exp(0.5 * logvars[k]) * eps


class PriorVAE(models.VAE):
    """A VAE with a learned prior: ``prior`` one of ``"standard"``, ``"mog"``, ``"vamp"`` (see the module).

    ``n_components`` is K, the mixture's components or the VampPrior's pseudo-inputs (1 for the
    standard prior, the only value it takes). Initialisation, after the encoder and decoder of
    :class:`vaelib.models.VAE`: MoG means N(0, I), log-variances 0, equal weights; pseudo-inputs
    uniform on [0, 1]. The pseudo-inputs are clipped to [0, 1] where they are used (the range of
    the images the encoder sees).

    :meth:`terms` returns ``(px, kl)`` as every vaelib model does, with ``kl`` the one-sample Monte
    Carlo estimate log q(z|x) - log p(z) at the code that ``px`` decodes ({eq}`pri-mc-kl`), for all
    three priors; it trains with :func:`vaelib.train.fit` and :func:`vaelib.batched.fit_many`. That
    estimate does not split by latent dimension for a mixture prior: ``per_dim=True`` is refused.
    """

    def __init__(self, x_shape, latent_dim, prior="vamp", n_components=None, arch="mlp", hidden=256,
                 likelihood="bernoulli", posterior="diagonal"):
        super().__init__(x_shape, latent_dim, arch=arch, hidden=hidden, likelihood=likelihood, posterior=posterior)
        if prior not in PRIORS:
            raise ValueError(f"prior must be one of {PRIORS}; got {prior!r}")
        if n_components is None:
            n_components = 1 if prior == "standard" else 50
        _check_int("n_components", n_components)
        if prior == "standard" and n_components != 1:
            raise ValueError(f"the standard prior N(0, I) has one component; got n_components={n_components}")
        self.prior_kind, self.n_components = prior, n_components
        self.config.update(prior=prior, n_components=n_components)
        if prior == "mog":
            self.prior_means = nn.Parameter(torch.randn(n_components, latent_dim))
            self.prior_logvars = nn.Parameter(torch.zeros(n_components, latent_dim))
            self.prior_logits = nn.Parameter(torch.zeros(n_components))
        elif prior == "vamp":
            self.pseudo_inputs = nn.Parameter(torch.rand(n_components, self.x_dim))

    def prior_components(self, dtype: torch.dtype | None = None):
        """The prior as a mixture: ``(means, logvars, log_weights)``, ``(K, d)``, ``(K, d)``, ``(K,)``.

        For the VampPrior the components are the encoder's posteriors at the pseudo-inputs, so they
        carry gradients to the encoder and to the pseudo-inputs alike. ``dtype`` (default: the
        model's) is the dtype of the result; the log-weights are computed in it, so that they sum to
        one in probability to that dtype's precision (float32 weights cast to float64 would not)."""
        p = self._a_parameter()
        dtype = p.dtype if dtype is None else dtype
        if self.prior_kind == "standard":
            zeros = torch.zeros(1, self.latent_dim, dtype=dtype, device=p.device)
            return zeros, zeros, torch.zeros(1, dtype=dtype, device=p.device)
        if self.prior_kind == "mog":
            return (self.prior_means.to(dtype), self.prior_logvars.to(dtype),
                    torch.log_softmax(self.prior_logits.to(dtype), 0))
        mu, logvar = self.encode(self.pseudo_inputs.clamp(0.0, 1.0))
        log_w = torch.full((self.n_components,), -math.log(self.n_components), dtype=dtype, device=mu.device)
        return mu.to(dtype), logvar.to(dtype), log_w

    def _a_parameter(self) -> torch.Tensor:
        """The first parameter: the dtype and device every new tensor of the model takes."""
        return next(self.parameters())

    def log_prior(self, z) -> torch.Tensor:
        """log p(z) of the model's prior at ``z`` ``(..., latent_dim)``: ``(...)``. The prior is evaluated
        in ``z``'s dtype (float64 points get a float64 evaluation of the model's float32 prior)."""
        if not isinstance(z, torch.Tensor) or z.ndim < 1 or z.shape[-1] != self.latent_dim:
            raise ValueError(f"z must be a tensor (..., {self.latent_dim}); got {tuple(getattr(z, 'shape', ()))}")
        if self.prior_kind == "standard":
            return standard_normal_log_prob(z)
        return mixture_log_prob(z, *self.prior_components(z.dtype), check=False)

    def kl(self, out: models.Output, y=None, per_dim: bool = False) -> torch.Tensor:
        """One-sample Monte Carlo KL ({eq}`pri-mc-kl`): log q(z|x) - log p(z) at ``out.z``, ``(B,)``."""
        if per_dim:
            raise ValueError("a learned prior's Monte Carlo KL does not split by latent dimension: per_dim=True "
                             "is refused (train with an objective whose kl_per_dimension is False)")
        log_q = -0.5 * ((out.z - out.mu) ** 2 * torch.exp(-out.logvar) + out.logvar + _LOG_2PI).sum(-1)
        if self.prior_kind == "standard":
            return log_q - standard_normal_log_prob(out.z)
        return log_q - mixture_log_prob(out.z, *self.prior_components(), check=False)

    @torch.no_grad()
    def sample_prior(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` codes z ~ p(z), ``(n, latent_dim)``. The standard prior draws ``torch.randn`` alone, so
        its codes are those :meth:`vaelib.models.VAE.sample` decodes from the same generator."""
        _check_int("n", n)
        if self.prior_kind == "standard":
            p = self._a_parameter()
            return torch.randn(n, self.latent_dim, generator=generator, dtype=p.dtype, device=p.device)
        return mixture_sample(n, *self.prior_components(), generator=generator)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Means of p(x|z) for ``n`` codes z ~ p(z), the model's own prior: ``(n, D)``."""
        return self.decode(self.sample_prior(n, generator)).mean


class GaussianMixtureDensity(nn.Module):
    """A fixed Gaussian mixture with diagonal covariances, as a density and a sampler: the second stage
    of a two-stage VAE (a mixture fitted to the first stage's codes), usable as ``log_prior`` by the
    estimates of this module. ``means``, ``logvars`` ``(K, d)``; ``weights`` ``(K,)``, positive, summing
    to one (within 1e-6)."""

    def __init__(self, means, logvars, weights):
        super().__init__()
        means, logvars, weights = (torch.as_tensor(t, dtype=torch.float64) for t in (means, logvars, weights))
        if weights.ndim != 1 or (weights <= 0).any() or abs(float(weights.sum()) - 1.0) > 1e-6:
            raise ValueError(f"weights must be (K,) positive numbers summing to 1; got {weights.tolist()}")
        _check_components(means[:1], means, logvars, weights)
        for name, t in (("means", means), ("logvars", logvars)):
            if not torch.isfinite(t).all():
                raise ValueError(f"{name} contains NaN or infinity")
        self.register_buffer("means", means)
        self.register_buffer("logvars", logvars)
        self.register_buffer("log_weights", torch.log(weights / weights.sum()))

    @classmethod
    def from_sklearn(cls, gmm) -> GaussianMixtureDensity:
        """From a fitted ``sklearn.mixture.GaussianMixture`` with ``covariance_type="diag"``."""
        kind = getattr(gmm, "covariance_type", None)
        if kind != "diag":
            raise ValueError(f"gmm must be a fitted sklearn GaussianMixture with covariance_type='diag'; "
                             f"got covariance_type={kind!r}")
        if not hasattr(gmm, "means_"):
            raise ValueError("gmm is not fitted (it has no means_): call gmm.fit(codes) first")
        return cls(gmm.means_, torch.log(torch.as_tensor(gmm.covariances_)), gmm.weights_)

    def log_prob(self, z) -> torch.Tensor:
        """log p(z) at ``z`` ``(..., d)``, in ``z``'s dtype: ``(...)``."""
        z = torch.as_tensor(z)
        return mixture_log_prob(z, *(t.to(z.dtype) for t in (self.means, self.logvars, self.log_weights)))

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` draws ``(n, d)``, float64 (see :func:`mixture_sample`)."""
        return mixture_sample(n, self.means, self.logvars, self.log_weights, generator)


def _mixture_log_density64(z, means, logvars, log_weights, rows=8192):
    """:func:`mixture_log_prob` in float64 from three matrix products (the square expanded), in pieces
    of ``rows`` points: an evaluation of many points against fixed components, ``(M,)``."""
    z = z.double()
    inv = torch.exp(-logvars)  # (K, d)
    const = (means**2 * inv).sum(1) + logvars.sum(1) + means.shape[1] * _LOG_2PI - 2 * log_weights  # (K,)
    out = []
    for s in range(0, z.shape[0], rows):
        zc = z[s : s + rows]
        quad = (zc**2) @ inv.T - 2 * zc @ (means * inv).T  # (m, K)
        out.append(torch.logsumexp(-0.5 * (quad + const), dim=1))
    return torch.cat(out)


def _log_prior_fn(model, log_prior):
    """The log-density the estimates use: ``log_prior`` when given, else the model's own prior, else
    N(0, I) (a :class:`vaelib.models.VAE`). A :class:`PriorVAE`'s mixture is read once, without
    gradients, and evaluated in float64 (the VampPrior's components are then not re-encoded for every
    chunk of points)."""
    if log_prior is not None:
        if not callable(log_prior):
            raise TypeError(f"log_prior must be a function z -> log p(z) (e.g. GaussianMixtureDensity.log_prob); "
                            f"got {type(log_prior).__name__}")
        return log_prior
    if isinstance(model, PriorVAE) and model.prior_kind != "standard":
        with torch.no_grad():
            means, logvars, log_w = (t.detach() for t in model.prior_components(torch.float64))
        return lambda z: _mixture_log_density64(z, means, logvars, log_w)
    own = getattr(model, "log_prior", None)
    return own if callable(own) else standard_normal_log_prob


def _chunked(fn, z, rows=8192):
    """``fn`` on ``z`` ``(M, d)`` in pieces of ``rows``: a mixture's (rows, K, d) temporaries stay small."""
    return torch.cat([fn(z[s : s + rows]) for s in range(0, z.shape[0], rows)])


@torch.no_grad()
def iwae_log_likelihood(model, x: torch.Tensor, k: int, max_rows: int = 2**16,
                        generator: torch.Generator | None = None, log_prior=None) -> torch.Tensor:
    """The importance-weighted bound L_k of every row of ``x`` ({eq}`iwae-bound`), with the model's own prior:

        log p(x) >= L_k = log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x),   z_i ~ q(z|x),

    where log p(z_i) is ``log_prior`` (default: the model's ``log_prior``, N(0, I) for a plain VAE).
    The noise is drawn as :func:`vaelib.estimates.iwae_log_likelihood` draws it (chunks of at most
    ``max_rows`` decoder rows, ``(c, B, d)`` each, from ``generator``), so on a model with the standard
    prior the two return the same numbers. ``x`` ``(B, D)``; returns ``(B,)`` nats.
    """
    _check_int("k", k)
    _check_int("max_rows", max_rows)
    log_p = _log_prior_fn(model, log_prior)
    return estimates.iwae_log_likelihood(model, x, k, max_rows=max_rows, generator=generator,
                                         log_prior=lambda flat: _chunked(log_p, flat))


@torch.no_grad()
def aggregate_split(model, x: torch.Tensor, n_samples: int = 1, generator: torch.Generator | None = None,
                    log_prior=None) -> dict[str, float]:
    """The split of chapter 09 ({eq}`agg-split`) for the model's own prior: the average KL term
    E_n KL(q(z|x_n) || p(z)) = I_q(x; z) + KL(q(z) || p(z)), q(z) the mixture of the N posteriors of the
    rows of ``x``.

    The draws, the exact mixture density log q(z) and I_q are those of
    :func:`vaelib.estimates.aggregate_posterior` (the same generator gives the same numbers); the
    prior is ``log_prior`` (default: the model's own, N(0, I) for a plain VAE), evaluated in float64.
    Returns float64 nats: ``mutual_info``, ``marginal_kl`` (KL(q(z) || p(z))), ``rate`` (the average
    KL term, their sum: a Monte Carlo estimate, since a mixture prior has no closed form), a standard
    error of each over the draws (``..._se``), ``mutual_info_max_term`` and ``log_n``.
    """
    with estimates.evaluating(model):
        log_p = _log_prior_fn(model, log_prior)
        _, _, z, log_cond, log_agg = estimates._aggregate_draws(model, x, n_samples, generator)
        log_pz = _chunked(log_p, z).double()
    parts = {"mutual_info": log_cond - log_agg, "marginal_kl": log_agg - log_pz, "rate": log_cond - log_pz}
    m = z.shape[0]
    out = {k: float(v.mean()) for k, v in parts.items()}
    out.update({f"{k}_se": float(v.std(unbiased=True) / math.sqrt(m)) if m > 1 else float("nan")
                for k, v in parts.items()})
    out["mutual_info_max_term"] = float(parts["mutual_info"].max())
    out["log_n"] = math.log(len(x))
    return out


@torch.no_grad()
def aggregate_log_ratio(model, x: torch.Tensor, z, log_prior=None):
    """log q(z) - log p(z) at the points ``z`` ``(M, latent_dim)``, with p the model's own prior (or
    ``log_prior``): :func:`vaelib.estimates.aggregate_log_ratio` for any prior. Below log 0.1, a point
    lies in a *hole*: the prior puts ten times more density there than the codes of ``x`` do.
    Returns a float64 NumPy array ``(M,)``."""
    with estimates.evaluating(model):
        log_p = _log_prior_fn(model, log_prior)
        mu, logvar = estimates._posteriors64(model, x)
        z = torch.as_tensor(z, dtype=torch.float64, device=mu.device)
        if z.ndim != 2 or z.shape[1] != mu.shape[1]:
            raise ValueError(f"z must be (M, {mu.shape[1]}), points in the model's latent space; got {tuple(z.shape)}")
        if not torch.isfinite(z).all():
            raise ValueError("z contains NaN or infinity")
        log_q = estimates._mixture_log_density(z, mu, logvar)
        return (log_q - _chunked(log_p, z).double()).cpu().numpy()
