"""The importance-weighted bound as a *training* objective (Burda et al. 2015), its gradient, and the
signal-to-noise ratio of that gradient (Rainforth et al. 2018).

For k codes z_i = g(eps_i, x) from the posterior (reparameterised), with log-weights
log w_i = log p(x|z_i) + log p(z_i) - log q(z_i|x), the estimate of L_k ({eq}`iwae-bound`) is

    L_k-hat = log (1/k) sum_i w_i ,        grad L_k-hat = sum_i w~_i grad log w_i ,  w~_i = w_i / sum_j w_j

({eq}`iwf-grad`): each code's gradient weighted by its normalised importance weight
(:func:`importance_weights`). At k = 1 the weight is 1 and L_1-hat is the ELBO with its KL term
estimated from the same code.

Any model works that has ``decode(z)`` (a distribution whose ``log_prob(x)`` is ``(B,)``) and either
``sample_posterior(x, eps) -> (z, log q(z|x))`` (:class:`vaelib.flows.FlowVAE`) or a Gaussian
``encode(x) -> (mu, logvar)`` (:class:`vaelib.models.VAE`); the prior is N(0, I).

* :func:`log_weights`, :func:`iwae_bound`, :func:`importance_weights` -- the pieces, for noise given
  as ``(k, B, d)``; :func:`multi_code_elbo`, the ELBO from the same k codes (the control),
* :func:`bounds` -- per image, L_k and the ELBO from the same k codes, without gradients (the
  measurement; for a Gaussian posterior it draws the numbers :func:`vaelib.estimates.iwae_log_likelihood`
  draws, and agrees with it),
* :func:`fit_iwae` -- M models of one architecture trained on -L_k together, one ``torch.func.vmap``
  (the existing :class:`vaelib.objectives.Objective` sees only the batch means of two terms, from one
  code per image, which L_k cannot be written in),
* :func:`gradient_snr` -- |mean| / standard deviation of every parameter's gradient over repeated
  draws of the noise, split into the inference network's parameters and the generative network's.
"""

from __future__ import annotations

import copy
import math
from typing import NamedTuple

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, grad, stack_module_state, vmap

from . import config, estimates
from ._fitting import adam
from .batched import check_stackable
from .data import ImageData

__all__ = ["posterior_sample", "log_weights", "iwae_bound", "multi_code_elbo", "importance_weights", "iwae_loss",
           "Bounds", "bounds",
           "fit_iwae", "noise_seed", "gradient_snr"]

_LOG_2PI = math.log(2 * math.pi)


def _check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"k must be an int; got {type(k).__name__}")
    if k < 1:
        raise ValueError(f"k must be at least 1; got {k}")
    return int(k)


def _check_eps(eps, x) -> None:
    if not isinstance(eps, torch.Tensor) or eps.ndim != 3 or eps.shape[1] != x.shape[0]:
        raise ValueError(f"eps must be a (k, B, d) tensor with B = {x.shape[0]} (one row per image of x); "
                         f"got {tuple(getattr(eps, 'shape', ()))}")


def posterior_sample(model, x: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Codes from q(z|x) for the noise ``eps`` ``(..., B, d)``, and their log-density: ``(z, log_q)``.

    ``model.sample_posterior(x, eps)`` where the model has one (a flow); else the Gaussian of
    ``encode(x) -> (mu, logvar)``: z = mu + sigma * eps and log q = log N(z; mu, sigma^2), which is
    -1/2 sum(eps^2 + logvar + log 2 pi) since (z - mu) / sigma = eps.
    """
    if hasattr(model, "sample_posterior"):
        return model.sample_posterior(x, eps)
    out = model.encode(x)
    if not (isinstance(out, tuple) and len(out) == 2):
        raise TypeError(f"the model must have sample_posterior(x, eps) or a Gaussian encode(x) -> (mu, logvar); "
                        f"a {type(model).__name__} encodes to a {type(out).__name__}")
    mu, logvar = out
    return mu + torch.exp(0.5 * logvar) * eps, -0.5 * (eps**2 + logvar + _LOG_2PI).sum(-1)


def log_weights(model, x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """log w_i = log p(x|z_i) + log p(z_i) - log q(z_i|x) for the codes of ``eps`` ``(k, B, d)``: ``(k, B)``.

    All k B codes go through the decoder at once. ``x`` is ``(B, D)``."""
    if not isinstance(x, torch.Tensor) or x.ndim != 2:
        raise ValueError(f"x must be a (B, D) tensor; got {type(x).__name__} {tuple(getattr(x, 'shape', ()))}")
    _check_eps(eps, x)
    z, log_q = posterior_sample(model, x, eps)
    k, b, d = eps.shape
    px = model.decode(z.reshape(k * b, d))
    log_px = px.log_prob(x.expand(k, *x.shape).reshape(k * b, -1)).reshape(k, b)
    return log_px - 0.5 * (z**2 + _LOG_2PI).sum(-1) - log_q


def iwae_bound(model, x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """One estimate of L_k per image ({eq}`iwae-bound`), log (1/k) sum_i w_i, for ``eps`` ``(k, B, d)``: ``(B,)``.

    A log-mean-exp of :func:`log_weights`, never forming the weights (they underflow at tens of
    nats). Differentiable: its gradient is the weighted sum of :func:`importance_weights` ({eq}`iwf-grad`)."""
    log_w = log_weights(model, x, eps)
    return torch.logsumexp(log_w, 0) - math.log(log_w.shape[0])


def multi_code_elbo(model, x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """The ELBO estimated from k codes per image, (1/k) sum_i log w_i, for ``eps`` ``(k, B, d)``: ``(B,)``.

    Same codes, same cost as :func:`iwae_bound`, but its gradient weights every code's gradient by
    1/k instead of w~_i ({eq}`iwf-grad`): the control that separates the tighter bound from the
    averaging over more codes (Burda et al.'s "VAE with k samples"). At k = 1 the two are equal."""
    return log_weights(model, x, eps).mean(0)


def iwae_loss(model, x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """The training loss -L_k, batch mean: ``-iwae_bound(model, x, eps).mean()``, a 0-d tensor."""
    return -iwae_bound(model, x, eps).mean()


def importance_weights(log_w: torch.Tensor) -> torch.Tensor:
    """The normalised importance weights w~_i = w_i / sum_j w_j of log-weights ``(k, ...)``, over the first
    axis (a softmax): non-negative, summing to one for every image ({eq}`iwf-grad`)."""
    if not isinstance(log_w, torch.Tensor) or log_w.ndim < 1:
        raise ValueError(f"log_w must be a tensor (k, ...); got {type(log_w).__name__}")
    return torch.softmax(log_w, dim=0)


class Bounds(NamedTuple):
    """Per image, from the same k codes: ``iwae`` = log (1/k) sum_i w_i (an estimate of L_k) and ``elbo`` =
    (1/k) sum_i log w_i (an unbiased estimate of the ELBO, L_1); ``iwae - elbo >= 0`` for every draw."""

    iwae: torch.Tensor
    elbo: torch.Tensor


@torch.no_grad()
def bounds(model, x: torch.Tensor, k: int, generator: torch.Generator | None = None,
           max_rows: int = 2**16) -> Bounds:
    """L_k and the ELBO of every row of ``x`` ``(B, D)``, both from the same k codes per image: :class:`Bounds`.

    The noise is drawn as :func:`vaelib.estimates.iwae_log_likelihood` draws it: chunks of
    ``c = min(k, max_rows // B)`` codes per image, each ``torch.randn((c, B, d), generator=generator)``,
    so for a Gaussian posterior the two agree given the same generator. The model is put in eval
    mode for the call and restored afterwards. Returns tensors ``(B,)`` in the model's dtype.
    """
    k = _check_k(k)
    if not isinstance(x, torch.Tensor) or x.ndim != 2:
        raise ValueError(f"x must be a (B, D) tensor; got {type(x).__name__} {tuple(getattr(x, 'shape', ()))}")
    if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1:
        raise ValueError(f"max_rows must be a positive int; got {max_rows!r}")
    with estimates.evaluating(model):
        mu = model.encode(x)[0]
        total = torch.zeros(x.shape[0], dtype=mu.dtype, device=mu.device)

        def draw(c):  # c codes per image -> their log-weights (c, B); their sum kept for the ELBO
            nonlocal total
            log_w = log_weights(model, x, torch.randn((c, *mu.shape), dtype=mu.dtype, device=mu.device,
                                                      generator=generator))
            total = total + log_w.sum(0)
            return log_w

        iwae = estimates.log_mean_weight(draw, x.shape[0], k, max_rows)
    return Bounds(iwae, total / k)


BOUNDS = {"iwae": iwae_bound, "elbo": multi_code_elbo}


class _Bound(nn.Module):
    """``forward(x, eps)`` -> the per-image bound of the wrapped model (for ``functional_call``):
    :func:`iwae_bound`, or :func:`multi_code_elbo` with ``bound="elbo"``."""

    def __init__(self, model, bound: str = "iwae"):
        super().__init__()
        self.model = model
        self.bound = BOUNDS[bound]

    def forward(self, x, eps):
        return self.bound(self.model, x, eps)


def noise_seed(seed: int) -> int:
    """The seed of a model's noise generator in :func:`fit_iwae`, derived from its seed (NumPy's
    ``SeedSequence([seed, 1])``): a stream of its own, so that arms with different k draw the same
    batches and binarisations from ``seed``."""
    seed = config.check_seed(seed)
    return int(np.random.SeedSequence([seed, 1]).generate_state(1, np.uint64)[0] >> np.uint64(1))


def fit_iwae(models, data: ImageData, *, k: int, seeds, epochs: int, batch_size: int = 128, lr: float = 1e-3,
             bound: str = "iwae", device=None) -> list[dict[str, list[float]]]:
    """Train M models of one class and configuration by Adam on the loss -L_k ({eq}`iwae-bound`), all at once;
    with ``bound="elbo"``, on minus the ELBO estimated from the same k codes (:func:`multi_code_elbo`).

    Model i draws its batch order and binarisation from a generator seeded with ``seeds[i]``, and
    its noise, ``(k, B, d)`` a batch, from a second one seeded with :func:`noise_seed` of it. So two
    arms that share a seed share their initialisation (the caller's) and every batch, whatever their
    k or posterior, and differ in their noise only where their k does. The M models' weights are
    stacked and their bounds computed in one ``torch.func.vmap``; the loss summed over the models
    gives each its own gradient, and Adam acts on each number alone, so model i is the run a plain
    loop makes for it alone (``tests/test_iwae.py``). Batches of ``batch_size`` images, the last
    partial batch of an epoch dropped. At k = 1 the loss is the negative ELBO, with the KL term
    estimated from the one code.

    Returns one history per model: ``bound``, the mean training estimate of the bound, each epoch.
    Afterwards every model holds its trained weights, on ``device``, in eval mode.
    """
    if isinstance(models, nn.Module) or not isinstance(models, (list, tuple)) or not models:
        raise TypeError(f"models must be a non-empty list of models; got {type(models).__name__}")
    first = check_stackable(models)
    k = _check_k(k)
    if bound not in BOUNDS:
        raise ValueError(f"bound must be one of {sorted(BOUNDS)}; got {bound!r}")
    if not isinstance(seeds, (list, tuple)) or len(seeds) != len(models):
        raise ValueError(f"seeds must be a list with one int per model ({len(models)}); got {seeds!r}")
    seeds = [config.check_seed(s) for s in seeds]
    if not isinstance(data, ImageData):
        raise TypeError(f"data must be a vaelib.data.ImageData; got {type(data).__name__}")
    for name, v in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int; got {v!r}")
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr < 0:
        raise ValueError(f"lr must be a finite number >= 0; got {lr!r}")
    if first.x_dim != data.x.shape[1]:
        raise ValueError(f"the models take x of shape (B, {first.x_dim}); data has (N, {data.x.shape[1]})")
    device = torch.device(device) if device is not None else config.device()
    for m in models:
        m.to(device)
    data = data.to(device)
    dtype = next(first.parameters()).dtype
    params, buffers = stack_module_state(list(models))  # (M, ...) leaves
    params = {f"model.{n}": p for n, p in params.items()}
    buffers = {f"model.{n}": b for n, b in buffers.items()}
    template = _Bound(copy.deepcopy(first).to("meta"), bound)

    def one(p, bufs, x, eps):
        return functional_call(template, (p, bufs), (x, eps)).mean()

    batched = vmap(one)
    opt = adam(params.values(), lr)
    data_gens = [torch.Generator(device=device).manual_seed(s) for s in seeds]
    noise_gens = [torch.Generator(device=device).manual_seed(noise_seed(s)) for s in seeds]
    n = len(data)
    batch_size = min(batch_size, n)
    n_batches = n // batch_size
    histories: list[dict[str, list[float]]] = [{"bound": []} for _ in models]
    for m in models:
        m.train()
    for _ in range(epochs):
        perm = torch.stack([torch.randperm(n, device=device, generator=g) for g in data_gens])
        total = torch.zeros(len(models), dtype=dtype, device=device)
        for b in range(n_batches):
            rows = perm[:, b * batch_size : (b + 1) * batch_size]
            x = data.x[rows]
            if data.binarize:
                x = torch.stack([torch.bernoulli(x[i], generator=g) for i, g in enumerate(data_gens)])
            eps = torch.stack([torch.randn(k, batch_size, first.latent_dim, generator=g, device=device, dtype=dtype)
                               for g in noise_gens])
            value = batched(params, buffers, x.to(dtype), eps)  # (M,): each model's batch-mean bound
            opt.zero_grad(set_to_none=True)
            (-value.sum()).backward()  # the M losses share no parameter
            opt.step()
            total = total + value.detach()
        means = (total / n_batches).tolist()
        for i, v in enumerate(means):
            if not math.isfinite(v):
                raise FloatingPointError(f"training diverged for model {i} (seed {seeds[i]}): training bound {v}")
            histories[i]["bound"].append(v)
    with torch.no_grad():
        for i, m in enumerate(models):
            for name, p in m.named_parameters():
                p.copy_(params[f"model.{name}"][i])
            for name, b in m.named_buffers():
                b.copy_(buffers[f"model.{name}"][i])
    for m in models:
        m.eval()
    return histories


def gradient_snr(model, x: torch.Tensor, k: int, n_rep: int, generator: torch.Generator | None = None,
                 chunk_size: int | None = None) -> dict[str, np.ndarray]:
    """The signal-to-noise ratio |mean| / std of the gradient of the loss -L_k-hat (batch mean over ``x``
    ``(B, D)``) with respect to every parameter, over ``n_rep`` independent draws of the noise
    (Rainforth et al. 2018): ``{"encoder": ..., "decoder": ...}``, float64 arrays, one entry per
    parameter whose gradient varies at all (a gradient that is exactly the same in every draw, such
    as a dead unit's zero, has no ratio and is left out).

    "decoder" is the generative network (parameters whose names start with ``decoder``), "encoder"
    everything else (the inference network, with a flow's parameters). The standard deviation has
    n_rep - 1 degrees of freedom. The draws are ``(n_rep, k, B, d)`` from ``generator``; the
    gradients are computed by ``vmap(grad(...))`` over the draws, ``chunk_size`` draws at a time.
    """
    k = _check_k(k)
    if isinstance(n_rep, bool) or not isinstance(n_rep, int) or n_rep < 2:
        raise ValueError(f"n_rep must be an int >= 2 (a standard deviation needs two draws); got {n_rep!r}")
    if not isinstance(x, torch.Tensor) or x.ndim != 2:
        raise ValueError(f"x must be a (B, D) tensor; got {type(x).__name__} {tuple(getattr(x, 'shape', ()))}")
    params = {f"model.{n}": p.detach() for n, p in model.named_parameters()}
    buffers = {f"model.{n}": b for n, b in model.named_buffers()}
    wrapper = _Bound(model)
    with torch.no_grad():
        mu = model.encode(x)[0]
    eps = torch.randn((n_rep, k, *mu.shape), dtype=mu.dtype, device=mu.device, generator=generator)

    def loss(p, e):
        return -functional_call(wrapper, (p, buffers), (x, e)).mean()

    was_training = model.training
    model.eval()
    try:
        grads = vmap(grad(loss), in_dims=(None, 0), chunk_size=chunk_size)(params, eps)
    finally:
        model.train(was_training)
    out: dict[str, list[torch.Tensor]] = {"encoder": [], "decoder": []}
    for name, g in grads.items():
        g = g.reshape(n_rep, -1).double()
        sd = g.std(0)
        keep = sd > 0
        snr = g.mean(0)[keep].abs() / sd[keep]
        out["decoder" if name.startswith("model.decoder") else "encoder"].append(snr)
    return {key: torch.cat(v).cpu().numpy() if v else np.zeros(0) for key, v in out.items()}
