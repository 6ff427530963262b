"""The beta-TCVAE of Chen et al. (2018): a penalty on the total correlation of the code alone.

The average KL term splits in three ({eq}`tc-decomposition`):

    E_x KL(q(z|x) || p(z)) = I_q(x; z) + KL(q(z) || prod_j q(z_j)) + sum_j KL(q(z_j) || p(z_j)),

index-code mutual information, total correlation (TC) and dimension-wise KL. A beta-VAE weights
all three with beta; the beta-TCVAE weights only the TC with beta and the other two with 1, so
its loss is minus the ELBO plus (beta - 1) TC ({eq}`tc-objective`).

The TC needs log q(z) and log q(z_j), densities of the aggregate posterior q(z) = (1/N) sum_n
q(z|x_n) of all N training points, while a training step sees a minibatch of M of them.
:func:`minibatch_log_density` estimates both from the minibatch ({eq}`tc-stratified`, or Chen et
al.'s minibatch-weighted sampling, {eq}`tc-mws`), and :func:`total_correlation_minibatch` and
:func:`decomposition_minibatch` build the TC, and all three parts, from them.

**Why a model wrapper.** A :class:`vaelib.objectives.Objective` receives only the batch means of
the two ELBO terms; the TC is a function of the whole batch's codes z and posterior parameters,
which the objective never sees. Rather than a training loop of its own, :class:`BetaTCVAE` wraps a
:class:`vaelib.models.VAE` and returns, from ``terms``, the penalised KL term
``KL(q(z|x_i) || p(z)) + (beta - 1) * TC_i`` per example: trained with
``objectives.BetaELBO(1.0)`` by :func:`vaelib.train.fit` or :func:`vaelib.train.fit_many`, its
loss is exactly the beta-TCVAE loss on the batch. The wrapped VAE (``.vae``) is a plain VAE with
the same networks, so every estimate of :mod:`vaelib.estimates` and the paired beta-VAE arm (the
same VAE trained with ``BetaELBO(beta)``) use it unchanged.
"""

from __future__ import annotations

import math
import numbers

import torch
from torch import nn

from .models import VAE, Output

__all__ = ["ESTIMATORS", "log_weight_matrix", "minibatch_log_density", "total_correlation_minibatch",
           "decomposition_minibatch", "BetaTCVAE"]

ESTIMATORS = ("stratified", "mws")
_LOG_2PI = math.log(2 * math.pi)


def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int; got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {value}")
    return int(value)


def _check_estimator(estimator):
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}; got {estimator!r}")


def log_weight_matrix(batch_size: int, dataset_size: int, estimator: str = "stratified",
                      dtype=torch.float64, device=None) -> torch.Tensor:
    """The log-weights ``log w[i, k]`` with which q(z_i|x_k), k in the batch, estimates q(z_i): ``(M, M)``.

    * ``"stratified"`` ({eq}`tc-stratified`): w[i, i] = 1/N for the point's own posterior and
      w[i, k] = (N - 1) / (N (M - 1)) for each of the other M - 1, so that every row sums to 1 and
      the estimate of q(z_i) is unbiased when the batch is a uniform draw without replacement
      (every row of a shuffled epoch); with M = N it is q(z_i) itself.
    * ``"mws"``, Chen et al.'s minibatch-weighted sampling ({eq}`tc-mws`): w[i, k] = 1/(N M) for
      every k. Its rows sum to 1/N, and its logarithm is a lower bound on log q(z_i) in expectation.

    ``M = batch_size`` >= 2 (``"stratified"`` needs another point besides z_i's own) and
    ``N = dataset_size`` >= M.
    """
    _check_estimator(estimator)
    m = _check_int("batch_size", batch_size, 2 if estimator == "stratified" else 1)
    n = _check_int("dataset_size", dataset_size, 1)
    if n < m:
        raise ValueError(f"dataset_size (N = {n}) must be at least the batch size (M = {m}): a minibatch is a "
                         f"sample of the N training points")
    if estimator == "mws":
        return torch.full((m, m), -math.log(n * m), dtype=dtype, device=device)
    other = math.log(n - 1) - math.log(n) - math.log(m - 1)
    w = torch.full((m, m), other, dtype=dtype, device=device)
    w.fill_diagonal_(-math.log(n))
    return w


def _check_batch(z, mu, logvar):
    for name, t in (("z", z), ("mu", mu), ("logvar", logvar)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor; got {type(t).__name__}")
        if t.dtype not in (torch.float32, torch.float64):
            raise TypeError(f"{name} must be a float32 or float64 (floating-point) tensor; got dtype {t.dtype}")
    if z.ndim != 2 or mu.shape != z.shape or logvar.shape != z.shape:
        raise ValueError(f"z, mu and logvar must all be (M, d), row i of z a draw from N(mu_i, e^logvar_i); got "
                         f"{tuple(z.shape)}, {tuple(mu.shape)}, {tuple(logvar.shape)}")


# exponents below log(tiny) + 1 are raised to it (tiny: the dtype's smallest normal number)
_FLOOR = {dtype: math.log(torch.finfo(dtype).tiny) + 1.0 for dtype in (torch.float32, torch.float64)}


def _exp_shifted(x: torch.Tensor, dim: int):
    """``(top, exp(x - top))`` with ``top`` the max of ``x`` along ``dim`` (kept; a constant of the
    gradient, where it cancels), every exponent below ``_FLOOR`` raised to it: a raised term is below
    1e-37 of the largest in float32 (1e-307 in float64). On a CPU an exp whose result underflows
    costs some 60 times one that does not, and the codes of narrow posteriors make almost every
    entry of the table underflow."""
    top = x.amax(dim=dim, keepdim=True).detach()
    return top, torch.exp((x - top).clamp(min=_FLOOR[x.dtype]))


def _logsumexp(x: torch.Tensor, dim: int) -> torch.Tensor:
    """log sum_k exp(x_k) along ``dim``, as ``torch.logsumexp`` (same value and gradient, the softmax),
    with the underflowing terms raised as in :func:`_exp_shifted`."""
    top, e = _exp_shifted(x, dim)
    return (top + torch.log(e.sum(dim=dim, keepdim=True))).squeeze(dim)


def minibatch_log_density(z, mu, logvar, dataset_size: int, estimator: str = "stratified"):
    """Minibatch estimates of log q(z_i) and of every log q_j(z_ij) at the batch's own codes.

    Row i of ``z`` ``(M, d)`` is a draw from the posterior N(mu_i, diag e^logvar_i) of data point
    i of the batch; the batch is M of the ``dataset_size`` = N training points. With
    log q(z_i|x_k) the Gaussian log-density of z_i under point k's posterior (a ``(M, M, d)``
    table, one column per coordinate), the estimates are log-sum-exps over k:

        log q(z_i)    ~= log sum_k w[i, k] q(z_i | x_k),
        log q_j(z_ij) ~= log sum_k w[i, k] q_j(z_ij | x_k),

    with the weights of :func:`log_weight_matrix` for ``estimator``. Differentiable in all three
    inputs (the TC penalty's gradient flows through every posterior of the batch). No value is
    read (shapes only), so it runs inside ``torch.func.vmap``. Returns ``(log_qz, log_qz_marg)``,
    ``(M,)`` and ``(M, d)``, in nats.
    """
    _check_batch(z, mu, logvar)
    m = z.shape[0]
    log_w = log_weight_matrix(m, dataset_size, estimator, dtype=z.dtype, device=z.device)
    # log q_j(z_ij | x_k) = -1/2 (u_ikj^2 + logvar_kj + log 2 pi): (M, M, d), i the code, k the posterior
    u = (z[:, None, :] - mu[None]) * torch.exp(-0.5 * logvar)[None]
    table = torch.addcmul(-0.5 * (logvar + _LOG_2PI)[None], u, u, value=-0.5)
    log_qz = _logsumexp(table.sum(-1) + log_w, dim=1)
    # each marginal: sum_k w[i, k] q_j(z_ij | x_k), the weights applied by one batched product
    top, e = _exp_shifted(table, dim=1)
    log_qz_marg = top.squeeze(1) + torch.log(torch.einsum("ikj,ik->ij", e, log_w.exp()))
    return log_qz, log_qz_marg


def total_correlation_minibatch(z, mu, logvar, dataset_size: int, estimator: str = "stratified") -> torch.Tensor:
    """Per-example estimate of the total correlation, log q(z_i) - sum_j log q_j(z_ij) ``(M,)``:
    its batch mean estimates TC = KL(q(z) || prod_j q(z_j)) ({eq}`tc-decomposition`), by
    :func:`minibatch_log_density`."""
    log_qz, log_qz_marg = minibatch_log_density(z, mu, logvar, dataset_size, estimator)
    return log_qz - log_qz_marg.sum(-1)


def decomposition_minibatch(z, mu, logvar, dataset_size: int,
                            estimator: str = "stratified") -> dict[str, torch.Tensor]:
    """The three parts of {eq}`tc-decomposition`, per example ``(M,)``, from one minibatch:

    * ``mutual_info``: log q(z_i|x_i) - log q(z_i),
    * ``total_correlation``: log q(z_i) - sum_j log q_j(z_ij),
    * ``dimensionwise_kl``: sum_j (log q_j(z_ij) - log p(z_ij)), p = N(0, 1),

    and ``average_kl_mc``, log q(z_i|x_i) - log p(z_i), which the three add up to draw by draw
    (the estimated densities cancel). With ``estimator="stratified"`` and the whole data set as the
    batch (M = N) the densities are exact, and these are the terms of
    :func:`vaelib.estimates.kl_decomposition` at the same draws.
    """
    log_qz, log_qz_marg = minibatch_log_density(z, mu, logvar, dataset_size, estimator)
    log_cond = -0.5 * ((z - mu) ** 2 * torch.exp(-logvar) + logvar + _LOG_2PI).sum(-1)
    log_prior = -0.5 * (z**2 + _LOG_2PI)
    return {"mutual_info": log_cond - log_qz, "total_correlation": log_qz - log_qz_marg.sum(-1),
            "dimensionwise_kl": (log_qz_marg - log_prior).sum(-1), "average_kl_mc": log_cond - log_prior.sum(-1)}


class BetaTCVAE(nn.Module):
    """A :class:`vaelib.models.VAE` trained on the beta-TCVAE loss ({eq}`tc-objective`):

        loss = -E_q log p(x|z) + KL(q(z|x) || p(z)) + (beta - 1) TC,

    minus the ELBO plus (beta - 1) times the total correlation, which weights the TC with beta and
    the index-code information and the dimension-wise KL with 1 (Chen et al. 2018, with their
    alpha = gamma = 1).

    ``terms(x, eps=eps)`` returns ``(px, kl)`` as a VAE does, except that ``kl`` is the penalised
    term ``KL(q(z|x_i) || p(z)) + (beta - 1) * TC_i`` per example: the closed-form KL
    ({eq}`kl-standard`) plus (beta - 1) times the minibatch estimate of the TC
    (:func:`total_correlation_minibatch`, the batch being a sample of ``dataset_size`` training
    points). So train it with ``objectives.BetaELBO(1.0)``, by :func:`vaelib.train.fit` or
    :func:`vaelib.train.fit_many` (a ``BetaELBO(beta)`` would weight the whole KL again); the
    logged ``kl`` is the penalised term. At ``beta = 1`` the loss is the ELBO's, exactly.
    The penalty is a batch quantity: it needs at least 2 rows, a batch of shuffled training
    points, and ``dataset_size`` equal to the number of rows of the training data.

    ``vae`` is the wrapped model (its parameters are this module's); ``encode``, ``decode`` and
    ``forward`` are its own, so the estimates of :mod:`vaelib.estimates` take either.
    """

    has_posterior, needs_labels = True, False

    def __init__(self, vae: VAE, beta: float, dataset_size: int, estimator: str = "stratified"):
        super().__init__()
        if not isinstance(vae, VAE):
            raise TypeError(f"vae must be a vaelib.models.VAE (an encoder with a Gaussian posterior and the prior "
                            f"N(0, I)); got {type(vae).__name__}")
        if isinstance(beta, bool) or not isinstance(beta, numbers.Real) or not math.isfinite(beta) or beta < 0:
            raise ValueError(f"beta must be a finite number >= 0; got {beta!r}")
        _check_int("dataset_size", dataset_size, 2)
        _check_estimator(estimator)
        self.vae = vae
        self.beta, self.dataset_size, self.estimator = float(beta), int(dataset_size), estimator
        self.x_shape, self.x_dim, self.latent_dim = vae.x_shape, vae.x_dim, vae.latent_dim
        self.likelihood = vae.likelihood
        self.config = dict(vae.config, beta=self.beta, dataset_size=self.dataset_size, estimator=estimator)

    def encode(self, x):
        return self.vae.encode(x)

    def decode(self, z):
        return self.vae.decode(z)

    def forward(self, x, eps=None) -> Output:
        return self.vae(x, eps=eps)

    def terms(self, x, y=None, eps=None, per_dim: bool = False):
        """``(px, kl)``: p(x|z) for one reparameterised z, and the penalised KL term
        ``KL(q(z|x_i) || p(z)) + (beta - 1) * TC_i`` ``(B,)``, TC_i from the batch itself."""
        if per_dim:
            raise ValueError("the total correlation is not a sum over latent dimensions: a BetaTCVAE has no "
                             "per-dimension KL term (per_dim=True); use its .vae for that")
        if x.shape[0] > self.dataset_size:
            raise ValueError(f"a batch of {x.shape[0]} rows is more than dataset_size = {self.dataset_size}: the "
                             f"batch must be a sample of the training points")
        out = self.vae(x, eps=eps)
        kl = self.vae.kl(out)
        tc = total_correlation_minibatch(out.z, out.mu, out.logvar, self.dataset_size, self.estimator)
        return out.px, kl + (self.beta - 1.0) * tc
