"""Estimates from a model's posterior: importance-sampled log-likelihood, the Monte Carlo ELBO,
latent usage (active units, KL per dimension), the aggregate posterior, and the codes themselves.

Everything here asks a model for ``encode(x)`` (``(mu, logvar)`` for a model with a posterior,
the code itself for an autoencoder) and ``decode(z)``; whether a model has a posterior is read
from its class's ``has_posterior`` flag, and from what ``encode`` returns for a class without one.
Functions of arrays only (:func:`gaussian_fit_kl`) are pure functions of NumPy arrays.
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import numpy as np
import torch

from .objectives import check_targets, gaussian_kl

__all__ = [
    "iwae_log_likelihood",
    "log_mean_weight",
    "evaluating",
    "elbo_estimate",
    "posterior_means",
    "codes",
    "active_units",
    "kl_per_dimension",
    "gaussian_fit_kl",
    "aggregate_posterior",
    "aggregate_log_ratio",
    "kl_decomposition",
    "kl_decomposition_exact",
]

_LOG_2PI = math.log(2 * math.pi)


def _std_normal_logpdf(z):
    return -0.5 * (z**2 + _LOG_2PI).sum(-1)


def _normal_logpdf(z, mu, logvar):
    return -0.5 * ((z - mu) ** 2 * torch.exp(-logvar) + logvar + _LOG_2PI).sum(-1)


IWAE_MAX_ROWS = 10**9  # k * len(x) above this is refused: at ~1e6 decoder rows a second, over 15 minutes


def _has_posterior(model):
    """The class's ``has_posterior`` flag: True (``encode`` -> ``(mu, logvar)``), False (an autoencoder's
    code), or None for a class that does not declare it (a reader's or a test's own model)."""
    flag = getattr(type(model), "has_posterior", None)
    return None if flag is None else bool(flag)


def _no_posterior_error(model, out=None):
    got = "has_posterior is False" if out is None else f"encodes to a {type(out).__name__}"
    return TypeError(f"this metric needs a model with a Gaussian posterior, encode(x) -> (mu, logvar), such as a "
                     f"VAE; a model of class {type(model).__name__} {got}")


def _encode(model, x, y=None):
    """``model.encode(x)`` (``encode(x, y)`` with labels) as ``(mu, logvar)``, or a clear error for a model
    without a posterior."""
    if _has_posterior(model) is False:
        raise _no_posterior_error(model)
    out = model.encode(x) if y is None else model.encode(x, y)
    if not (isinstance(out, tuple) and len(out) == 2):
        raise _no_posterior_error(model, out)
    return out


def _check_standard_prior(model, name: str, instead: str) -> None:
    """Refuse a model whose prior is not N(0, I) (one that declares another in ``prior_kind``: a
    :class:`vaelib.priors.PriorVAE` with a learned prior, a :class:`vaelib.models.CVAE`) in a function
    that fixes the prior at N(0, I): its number would be that of another model, this encoder and
    decoder with a prior they were not trained with."""
    kind = getattr(model, "prior_kind", "standard")
    if kind != "standard":
        raise TypeError(f"estimates.{name} assumes the prior N(0, I); this {type(model).__name__} has the prior "
                        f"{kind!r}: {instead}")


@torch.no_grad()
def iwae_log_likelihood(model, x: torch.Tensor, k: int, max_rows: int = 2**16,
                        generator: torch.Generator | None = None, log_prior=None) -> torch.Tensor:
    """Importance-sampled estimate of log p(x) (Burda et al. 2015), per example, in nats.

    log p(x) ~= log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x),  z_i ~ q(z|x)   ({eq}`iwae-bound`)

    computed as a log-mean-exp. ``model`` is any object with ``encode(x) -> (mu, logvar)`` and
    ``decode(z) ->`` a distribution whose ``log_prob(x)`` is ``(B,)``; the prior is N(0, I) unless
    ``log_prior``, a function of codes ``(M, L)`` returning ``(M,)`` log-densities, says otherwise
    (:func:`vaelib.priors.iwae_log_likelihood` passes a model's learned prior).
    The k samples are drawn in chunks of at most ``max_rows`` decoder rows and combined with a
    running logsumexp, so k = 5000 fits in memory. k = 1 is the (one-sample) ELBO.
    ``x`` is ``(B, D)``; returns ``(B,)``.
    """
    if isinstance(k, bool) or not isinstance(k, int):
        raise TypeError(f"k must be an int; got {type(k).__name__}")
    if k < 1:
        raise ValueError(f"k must be at least 1; got {k}")
    check_targets(model, x)
    if x.ndim != 2:
        raise ValueError(f"x must be (B, D); got shape {tuple(x.shape)}")
    if k * x.shape[0] > IWAE_MAX_ROWS:
        raise ValueError(f"k * len(x) = {k * x.shape[0]:,} decoder evaluations is more than IWAE_MAX_ROWS = "
                         f"{IWAE_MAX_ROWS:,} (hours on a CPU); use a smaller k or fewer images")
    if log_prior is None:
        _check_standard_prior(model, "iwae_log_likelihood", "for a learned prior use "
                              "vaelib.priors.iwae_log_likelihood, which reads the model's own, or pass the prior's "
                              "density as log_prior")
    with evaluating(model):
        mu, logvar = _encode(model, x)
        b = x.shape[0]
        sigma = torch.exp(0.5 * logvar)

        def draw(c):  # c codes per image -> their log-weights (c, B)
            eps = torch.randn((c, *mu.shape), dtype=mu.dtype, device=mu.device, generator=generator)
            z = mu + sigma * eps  # (c, B, L)
            px = model.decode(z.reshape(c * b, -1))
            log_px_z = px.log_prob(x.repeat(c, 1)).reshape(c, b)
            if log_prior is None:
                log_pz = _std_normal_logpdf(z)
            else:
                log_pz = log_prior(z.reshape(c * b, -1)).reshape(c, b).to(mu.dtype)
            return log_px_z + log_pz - _normal_logpdf(z, mu, logvar)

        return log_mean_weight(draw, b, k, max_rows)


def log_mean_weight(draw, n: int, k: int, max_rows: int = 2**16) -> torch.Tensor:
    """log (1/k) sum_{i=1}^k w_i for each of ``n`` rows, from log-weights drawn in chunks: ``(n,)``.

    ``draw(c)`` returns the log-weights of ``c`` fresh draws per row, ``(c, n)``; chunks hold at most
    ``max_rows // n`` draws (at least one), so that ``c * n`` model evaluations fit in memory, and
    are combined with a running logsumexp, never forming the weights themselves (they underflow).
    The one loop behind every importance-weighted estimate in the library
    (:func:`iwae_log_likelihood`, :func:`vaelib.hierarchical.iwae_log_likelihood`,
    :func:`vaelib.iwae.bounds`); the chunks' sizes fix which numbers a seeded generator gives.
    """
    for name, v in (("n", n), ("k", k), ("max_rows", max_rows)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int; got {v!r}")
    chunk = max(1, min(k, max_rows // n))
    running, done = None, 0
    while done < k:
        c = min(chunk, k - done)
        log_w = draw(c)
        if not isinstance(log_w, torch.Tensor) or log_w.shape != (c, n):
            raise ValueError(f"draw({c}) must return a tensor of shape {(c, n)}; got "
                             f"{tuple(getattr(log_w, 'shape', ())) or type(log_w).__name__}")
        chunk_sum = torch.logsumexp(log_w, dim=0)
        running = chunk_sum if running is None else torch.logaddexp(running, chunk_sum)
        done += c
    return running - math.log(k)


@torch.no_grad()
def _posterior_params(model, x, batch_size=1024, y=None):
    mus, logvars = [], []
    check_targets(model, x)
    for s in range(0, x.shape[0], batch_size):
        mu, logvar = _encode(model, x[s : s + batch_size], None if y is None else y[s : s + batch_size])
        mus.append(mu)
        logvars.append(logvar)
    return torch.cat(mus), torch.cat(logvars)


def _check_count(name, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int; got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {value}")


def _device(model):
    """The device of the model's first parameter, or None for a model without parameters."""
    params = getattr(model, "parameters", None)
    first = next(iter(params()), None) if callable(params) else None
    return None if first is None else first.device


@contextmanager
def evaluating(model):
    """The model in eval mode for the block, its own mode restored afterwards (also on an error)."""
    was_training = getattr(model, "training", None)
    if was_training is not None:
        model.eval()
    try:
        yield
    finally:
        if was_training is not None:
            model.train(was_training)


def _inputs(model, x, y, batch_size):
    """``x`` (and ``y``) checked and moved to the model's device."""
    if not isinstance(x, torch.Tensor) or x.ndim != 2:
        raise ValueError(f"x must be a (N, D) tensor; got {type(x).__name__} {tuple(getattr(x, 'shape', ()))}")
    _check_count("batch_size", batch_size)
    if y is None and getattr(type(model), "needs_labels", False):
        raise ValueError(f"a {type(model).__name__} encodes x together with its labels: pass y")
    if y is not None and (not isinstance(y, torch.Tensor) or y.shape[:1] != x.shape[:1]):
        raise ValueError(f"y must be a tensor with one label per row of x ({x.shape[0]}); "
                         f"got {type(y).__name__} {tuple(getattr(y, 'shape', ()))}")
    device = _device(model)
    if device is not None:
        x = x.to(device)
        y = None if y is None else y.to(device)
    return x, y


@torch.no_grad()
def posterior_means(model, x: torch.Tensor, batch_size: int = 2048, *, y=None) -> np.ndarray:
    """The posterior means E_q[z|x] of every row of ``x`` ``(N, D)``: a float64 array ``(N, latent_dim)``.

    The model is put in eval mode for the call and restored afterwards; ``x`` is moved to the
    model's device and encoded in batches of ``batch_size``, without gradients. A model that
    encodes with labels (a CVAE) takes them as ``y`` ``(N,)``. A model without a posterior (an
    AE) is refused: :func:`codes` takes either kind.
    """
    x, y = _inputs(model, x, y, batch_size)
    with evaluating(model):
        mu, _ = _posterior_params(model, x, batch_size, y)
    return mu.double().cpu().numpy()


@torch.no_grad()
def codes(model, x: torch.Tensor, batch_size: int = 2048, *, y=None) -> np.ndarray:
    """What the model encodes every row of ``x`` ``(N, D)`` to, as a float64 array ``(N, latent_dim)``:
    the posterior mean for a model with a posterior (a VAE or CVAE, as :func:`posterior_means`),
    the code itself for a deterministic autoencoder.

    Which of the two is read from the class's ``has_posterior`` flag (for a class without one,
    from whether ``encode`` returns a ``(mu, logvar)`` pair). Eval mode (the model's own mode
    restored afterwards), no gradients, batches of ``batch_size`` on the model's device;
    ``y`` ``(N,)`` are the labels of a model that encodes with them (a CVAE).
    """
    x, y = _inputs(model, x, y, batch_size)
    flag = _has_posterior(model)
    out = []
    with evaluating(model):
        check_targets(model, x)
        for s in range(0, x.shape[0], batch_size):
            xb = x[s : s + batch_size]
            enc = model.encode(xb) if y is None else model.encode(xb, y[s : s + batch_size])
            if flag is True or (flag is None and isinstance(enc, tuple)):
                if not (isinstance(enc, tuple) and len(enc) == 2):
                    raise TypeError(f"a {type(model).__name__} has a posterior (has_posterior), so encode(x) must return "
                                    f"(mu, logvar); got a {type(enc).__name__}")
                enc = enc[0]
            elif not isinstance(enc, torch.Tensor):
                raise TypeError(f"a {type(model).__name__} without a posterior must encode to a tensor of codes; "
                                f"got a {type(enc).__name__}")
            out.append(enc)
    return torch.cat(out).double().cpu().numpy()


@torch.no_grad()
def elbo_estimate(model, x: torch.Tensor, n_samples: int, seed: int, *, y=None, posterior=None,
                  batch_size: int = 2048) -> torch.Tensor:
    """The ELBO of every row of ``x`` ``(N, D)``, with its reconstruction term averaged over ``n_samples`` codes:

        ELBO(x) ~= (1/S) sum_s log p(x | z_s) - KL(q(z|x) || p(z)),   z_s = mu + sigma * eps_s

    ({eq}`elbo-kl-form`), the KL in closed form ({eq}`kl-diag`), to N(0, I), or to the model's
    prior p(z|y) when labels ``y`` ``(N,)`` are given (a CVAE). Its expectation is the ELBO
    whatever ``n_samples``; more samples only lower the noise. (``iwae_log_likelihood(model, x,
    1)`` averages to the same ELBO with a Monte Carlo KL instead, so it is noisier.)

    The noise is reproducible: ``eps_s`` is ``torch.randn(mu.shape)`` drawn ``n_samples`` times, in
    turn, from a ``torch.Generator`` on the model's device seeded with ``seed``, each draw covering
    all N rows, so ``batch_size`` (rows per decoder call) does not change the result. With
    ``n_samples=1`` it is ``objectives.elbo(model, x, eps=eps_1).elbo``.

    ``posterior=(mu, logvar)``, each ``(N, latent_dim)``, replaces the encoder's q(z|x) by the given
    Gaussians (e.g. ones optimised per image, to measure the amortisation gap). Eval mode (the
    model's own mode restored), no gradients. Returns a float64 CPU tensor ``(N,)`` in nats: a
    tensor, as :func:`iwae_log_likelihood` returns (on the model's device and in its dtype; after
    that one's ``.double().cpu()`` the two subtract directly).
    """
    _check_count("n_samples", n_samples)
    _check_count("seed", seed, minimum=0)
    x, y = _inputs(model, x, y, batch_size)
    check_targets(model, x)
    with evaluating(model):
        if posterior is None:
            mu, logvar = _posterior_params(model, x, batch_size, y)
        else:
            mu, logvar = _given_posterior(posterior, x)
        if y is None:
            kl = gaussian_kl(mu, logvar)
        else:
            kl = gaussian_kl(mu, logvar, *model.prior(y))
        gen = torch.Generator(device=mu.device).manual_seed(int(seed))
        sigma = torch.exp(0.5 * logvar)
        rec = torch.zeros(x.shape[0], dtype=torch.float64, device=mu.device)
        for _ in range(n_samples):
            z = mu + sigma * torch.randn(mu.shape, generator=gen, dtype=mu.dtype, device=mu.device)
            for s in range(0, x.shape[0], batch_size):
                rows = slice(s, s + batch_size)
                px = model.decode(z[rows]) if y is None else model.decode(z[rows], y[rows])
                rec[rows] += px.log_prob(x[rows]).double()
    return (rec / n_samples - kl.double()).cpu()


def _given_posterior(posterior, x):
    if not (isinstance(posterior, tuple) and len(posterior) == 2):
        raise TypeError(f"posterior must be a tuple (mu, logvar); got {type(posterior).__name__}")
    mu, logvar = posterior
    if not isinstance(mu, torch.Tensor) or mu.ndim != 2 or mu.shape[0] != x.shape[0]:
        raise ValueError(f"posterior mu must be (N, latent_dim) with N = {x.shape[0]} rows of x; "
                         f"got {tuple(getattr(mu, 'shape', ()))}")
    mu, logvar = mu.to(x.device), logvar.to(x.device)
    gaussian_kl(mu, logvar)  # checks shapes and finiteness
    return mu, logvar


def active_units(model, x: torch.Tensor, threshold: float = 0.01):
    """Burda et al. (2015): unit u is active if Cov_x( E_q(u|x)[u] ) > ``threshold``.

    Returns ``(number active, per-dimension variance of the posterior mean over x)`` with the
    variances as a NumPy array ``(latent_dim,)``.
    """
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not threshold >= 0 \
            or math.isinf(threshold):
        raise ValueError(f"threshold must be a finite number >= 0; got {threshold!r}")
    if not isinstance(x, torch.Tensor) or x.ndim != 2:
        raise ValueError(f"x must be a (N, D) tensor; got {getattr(x, 'shape', type(x).__name__)}")
    if x.shape[0] < 2:
        raise ValueError("active_units needs at least 2 examples to estimate a variance")
    was_training = model.training
    model.eval()
    mu, _ = _posterior_params(model, x)
    model.train(was_training)
    var = mu.double().var(dim=0, unbiased=True).cpu().numpy()
    return int((var > threshold).sum()), var


def kl_per_dimension(model, x: torch.Tensor) -> np.ndarray:
    """Mean over x of KL(q(z_j|x) || N(0, 1)) for every latent dimension j: ``(latent_dim,)`` nats."""
    was_training = model.training
    model.eval()
    mu, logvar = _posterior_params(model, x)
    model.train(was_training)
    per_dim = gaussian_kl(mu.unsqueeze(-1), logvar.unsqueeze(-1))  # sum over a last dim of size 1
    return per_dim.mean(0).double().cpu().numpy()


def gaussian_fit_kl(codes) -> float:
    """KL( N(m, S) || N(0, I) ) in nats, where m and S are the sample mean and covariance of ``codes``.

    How far the cloud of codes is from the prior a sampler would draw from, by {eq}`kl-diag`'s
    full-covariance form ``1/2 (tr S + m^T m - d - log det S)``: 0 when the codes look like
    N(0, I) to second order, large when they are shifted, shrunk or blown up.
    ``codes`` ``(N, d)`` with N > d. Returns a float.
    """
    codes = np.asarray(codes, dtype=np.float64)
    if codes.ndim != 2 or codes.shape[0] <= codes.shape[1]:
        raise ValueError(f"codes must be (N, d) with N > d; got shape {codes.shape}")
    if not np.isfinite(codes).all():
        raise ValueError("codes contain NaN or infinity")
    d = codes.shape[1]
    m = codes.mean(0)
    s = np.atleast_2d(np.cov(codes, rowvar=False))
    sign, logdet = np.linalg.slogdet(s)
    if sign <= 0:
        raise ValueError("the codes' covariance is singular: they do not span all d dimensions")
    return float(0.5 * (np.trace(s) + m @ m - d - logdet))


def _mixture_log_density(z, mu, logvar, chunk: int | None = None):
    """log q(z) = log (1/N) sum_n N(z; mu_n, diag e^logvar_n) for every row of ``z`` ``(M, L)``: ``(M,)``.

    The N Gaussian log-densities of a chunk of rows come from three matrix products (the square
    expanded), in float64, so that M x N never needs an (M, N, L) tensor; the chunk is sized so
    that its (chunk, N) temporaries stay near 2**22 numbers (32 MiB) whatever N is."""
    n = mu.shape[0]
    if chunk is None:
        chunk = max(1, 2**22 // n)
    inv = torch.exp(-logvar)  # (N, L)
    const = (mu**2 * inv).sum(1) + logvar.sum(1) + mu.shape[1] * _LOG_2PI  # (N,)
    out = []
    for s in range(0, z.shape[0], chunk):
        zc = z[s : s + chunk]
        quad = (zc**2) @ inv.T - 2 * zc @ (mu * inv).T  # (m, N)
        out.append(torch.logsumexp(-0.5 * (quad + const), dim=1) - math.log(n))
    return torch.cat(out)


def _posteriors64(model, x, name="x"):
    if not isinstance(x, torch.Tensor) or x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"{name} must be a (N, D) tensor with N >= 2 rows (the aggregate posterior averages "
                         f"over them); got {getattr(x, 'shape', type(x).__name__)}")
    was_training = model.training
    model.eval()
    mu, logvar = _posterior_params(model, x)
    model.train(was_training)
    return mu.double(), logvar.double()


def _aggregate_draws(model, x, n_samples, generator):
    """The posteriors of the rows of ``x`` (float64), ``n_samples`` draws z ~ q(z|x_n) for every row n
    (row r of ``z`` is from q(z|x_{r mod N})), and log q(z|x_n) and log q(z) at each draw."""
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
        raise ValueError(f"n_samples must be an int >= 1; got {n_samples!r}")
    mu, logvar = _posteriors64(model, x)
    n, d = mu.shape
    gen_device = generator.device if generator is not None else mu.device
    eps = torch.randn(n_samples, n, d, generator=generator, dtype=torch.float64, device=gen_device).to(mu.device)
    z = (mu + torch.exp(0.5 * logvar) * eps).reshape(-1, d)
    log_cond = _normal_logpdf(z, mu.repeat(n_samples, 1), logvar.repeat(n_samples, 1))
    return mu, logvar, z, log_cond, _mixture_log_density(z, mu, logvar)


@torch.no_grad()
def aggregate_posterior(model, x: torch.Tensor, n_samples: int = 1,
                        generator: torch.Generator | None = None) -> dict[str, float]:
    """Split the average KL term, E_n KL(q(z|x_n) || p(z)) = I_q(x; z) + KL(q(z) || p(z)) (Hoffman
    and Johnson 2016), for the aggregate posterior q(z) = (1/N) sum_n q(z|x_n) of the N rows of ``x``.

    q(z) is a mixture of N Gaussians, so its density is exact; the two expectations are Monte Carlo,
    over ``n_samples`` draws z ~ q(z|x_n) for every row n (which together are draws from q(z)):

    * ``mutual_info``: I_q = E[log q(z|x_n) - log q(z)], at most log N (``log_n``); every single
      term is at most log N too (``mutual_info_max_term``), since the mixture holds q(z|x_n)/N;
    * ``marginal_kl``: KL(q(z) || p(z)) = E[log q(z) - log p(z)], p = N(0, I);
    * ``rate``: the average KL term in closed form ({eq}`kl-standard`);
    * ``mutual_info_se``, ``marginal_kl_se``: standard errors of the two over the draws.

    The two estimates add up to a Monte Carlo estimate of ``rate`` by construction (log q(z)
    cancels), so their sum checks nothing about q(z). Everything in nats, float64. ``generator``
    seeds the draws (on its own device; they are then moved to the model's).
    """
    _check_standard_prior(model, "aggregate_posterior", "use vaelib.priors.aggregate_split, which reads the "
                          "model's own prior")
    mu, logvar, z, log_cond, log_agg = _aggregate_draws(model, x, n_samples, generator)
    mi, mkl = log_cond - log_agg, log_agg - _std_normal_logpdf(z)
    m = z.shape[0]

    def se(v):
        return float(v.std(unbiased=True) / math.sqrt(m)) if m > 1 else float("nan")

    return {"mutual_info": float(mi.mean()), "marginal_kl": float(mkl.mean()),
            "rate": float(gaussian_kl(mu, logvar).mean()), "mutual_info_se": se(mi), "marginal_kl_se": se(mkl),
            "mutual_info_max_term": float(mi.max()), "log_n": math.log(mu.shape[0])}


@torch.no_grad()
def aggregate_log_ratio(model, x: torch.Tensor, z) -> np.ndarray:
    """log q(z) - log p(z) at the points ``z`` ``(M, latent_dim)``: how much more (> 0) or less (< 0)
    the aggregate posterior of the rows of ``x`` puts on each point than the prior N(0, I) does.

    Under prior draws its mean is -KL(p(z) || q(z)); a prior draw with a very negative value lies
    in a "hole", where the codes of the rows of ``x`` are rare, so the decoder was hardly trained
    there. Returns ``(M,)`` float64 nats.
    """
    _check_standard_prior(model, "aggregate_log_ratio", "use vaelib.priors.aggregate_log_ratio, which reads the "
                          "model's own prior")
    mu, logvar = _posteriors64(model, x)
    z = torch.as_tensor(z, dtype=torch.float64, device=mu.device)
    if z.ndim != 2 or z.shape[1] != mu.shape[1]:
        raise ValueError(f"z must be (M, {mu.shape[1]}), points in the model's latent space; got {tuple(z.shape)}")
    if not torch.isfinite(z).all():
        raise ValueError("z contains NaN or infinity")
    return (_mixture_log_density(z, mu, logvar) - _std_normal_logpdf(z)).cpu().numpy()


def _tc_parts(log_cond, log_agg, log_marg, log_prior):
    """The three parts of the average KL from per-draw log-densities (float64 tensors)."""
    return {"mutual_info": log_cond - log_agg, "total_correlation": log_agg - log_marg.sum(-1),
            "dimensionwise_kl": (log_marg - log_prior).sum(-1)}


def kl_decomposition_exact(q_zx, p_x=None) -> dict[str, float]:
    """The decomposition of Chen et al. (2018) of the average KL term, exactly, for discrete codes:

        E_x KL(q(z|x) || p(z)) = I_q(x; z) + TC(q(z)) + sum_j KL(q(z_j) || p(z_j)),

    with q(z) = E_x q(z|x) the aggregate posterior, TC(q(z)) = KL(q(z) || prod_j q(z_j)) its total
    correlation, and the prior p(z) = prod_j p(z_j), here uniform on each coordinate's values.

    ``q_zx`` is an array ``(N, K_1, ..., K_d)``: row n is the distribution q(z|x_n) over the codes
    z = (z_1, ..., z_d), z_j in {0, ..., K_j - 1}; ``p_x`` the probabilities of the N points
    (default uniform). Every sum is over the whole table (no sampling), in float64; terms with
    q = 0 count 0. Returns the four numbers, in nats: ``average_kl``, ``mutual_info``,
    ``total_correlation``, ``dimensionwise_kl``.
    """
    q = np.asarray(q_zx, dtype=np.float64)
    if q.ndim < 2 or q.shape[0] < 1 or min(q.shape[1:]) < 1:
        raise ValueError(f"q_zx must be an (N, K_1, ..., K_d) array of probabilities; got shape {q.shape}")
    if not np.all(np.isfinite(q)) or q.min() < 0:
        raise ValueError("q_zx must hold finite probabilities >= 0")
    rows = q.reshape(len(q), -1).sum(1)
    if not np.allclose(rows, 1.0, rtol=0, atol=1e-9):
        raise ValueError(f"each row of q_zx must sum to 1 over the codes; sums range over [{rows.min()}, {rows.max()}]")
    n, d = q.shape[0], q.ndim - 1
    w = np.full(n, 1.0 / n) if p_x is None else np.asarray(p_x, dtype=np.float64)
    if w.shape != (n,) or not np.all(np.isfinite(w)) or w.min() < 0 or not np.isclose(w.sum(), 1.0, rtol=0,
                                                                                         atol=1e-9):
        raise ValueError(f"p_x must be {n} probabilities >= 0 that sum to 1; got {p_x!r}")
    agg = np.tensordot(w, q, axes=1)  # q(z), (K_1, ..., K_d)
    margs = [agg.sum(axis=tuple(k for k in range(d) if k != j)) for j in range(d)]  # q(z_j)
    prod = margs[0]
    for m in margs[1:]:
        prod = np.multiply.outer(prod, m)  # prod_j q(z_j) on the whole table
    log_prior = -sum(math.log(k) for k in q.shape[1:])  # uniform p(z) = prod_j 1/K_j

    def xlogy_ratio(a, b):  # sum a log(a / b), with 0 log 0 = 0
        mask = a > 0
        return float(np.sum(a[mask] * (np.log(a[mask]) - np.log(np.broadcast_to(b, a.shape)[mask]))))

    average_kl = float(sum(w[i] * xlogy_ratio(q[i], np.exp(log_prior)) for i in range(n)))
    mutual_info = float(sum(w[i] * xlogy_ratio(q[i], agg) for i in range(n)))
    total_correlation = xlogy_ratio(agg, prod)
    dimensionwise_kl = float(sum(xlogy_ratio(m, np.full(m.shape, 1.0 / m.size)) for m in margs))
    return {"average_kl": average_kl, "mutual_info": mutual_info, "total_correlation": total_correlation,
            "dimensionwise_kl": dimensionwise_kl}


@torch.no_grad()
def kl_decomposition(model, x: torch.Tensor, n_samples: int = 1,
                     generator: torch.Generator | None = None) -> dict[str, float]:
    """Chen et al.'s (2018) decomposition of the average KL term of a Gaussian encoder over the N
    rows of ``x``, by Monte Carlo over exact densities:

        E_n KL(q(z|x_n) || p(z)) = I_q(x; z) + TC(q(z)) + sum_j KL(q(z_j) || p(z_j)).

    q(z) = (1/N) sum_n q(z|x_n) is a mixture of N Gaussians, and each marginal q(z_j) a mixture of
    N one-dimensional ones, so every density is exact (:func:`aggregate_posterior` splits the same
    KL in two); the expectations are over ``n_samples`` draws z ~ q(z|x_n) for every row n. For each
    draw the three log-ratios add up to log q(z|x_n) - log p(z), so the three estimates add up to
    the Monte Carlo estimate of the average KL (``average_kl_mc``), which ``rate``, the closed form,
    checks. Returns float64 nats: ``mutual_info``, ``total_correlation``, ``dimensionwise_kl``,
    ``average_kl_mc``, ``rate``, and a standard error of each of the first four over the draws
    (``..._se``).
    """
    _check_standard_prior(model, "kl_decomposition", "its dimension-wise KL needs a prior that factorises over "
                          "the latent dimensions, which a mixture prior does not")
    mu, logvar, z, log_cond, log_agg = _aggregate_draws(model, x, n_samples, generator)
    # each coordinate's aggregate marginal, a mixture of N one-dimensional Gaussians: (M, d)
    log_marg = torch.stack([_mixture_log_density(z[:, j:j + 1], mu[:, j:j + 1], logvar[:, j:j + 1])
                            for j in range(mu.shape[1])], dim=1)
    log_prior = -0.5 * (z**2 + _LOG_2PI)  # (M, d), p(z_j) = N(0, 1)
    parts = _tc_parts(log_cond, log_agg, log_marg, log_prior)
    parts["average_kl_mc"] = log_cond - log_prior.sum(-1)
    m = z.shape[0]
    out = {k: float(v.mean()) for k, v in parts.items()}
    out.update({f"{k}_se": float(v.std(unbiased=True) / math.sqrt(m)) if m > 1 else float("nan")
                for k, v in parts.items()})
    out["rate"] = float(gaussian_kl(mu, logvar).mean())
    return out
