"""Helpers for measuring disentanglement: posterior means as codes, a cached dSprites renderer
for the beta-VAE metric, and a sweep that trains one model per (beta, seed) and scores it.

The sweep trains with :func:`vaelib.train.fit_many` and :class:`vaelib.objectives.BetaELBO`, and
scores with :func:`vaelib.metrics.mig_per_factor`; nothing here is a new model or loss.
"""

from __future__ import annotations

import numpy as np
import torch

from . import config
from .data import ImageData, render_dsprites
from .metrics import _posterior_params, mig_per_factor
from .objectives import BetaELBO
from .train import evaluate, fit_many

__all__ = ["posterior_means", "encoder_fn", "CachedRenderer", "beta_sweep"]


@torch.no_grad()
def posterior_means(model, x: torch.Tensor, batch_size: int = 2048) -> np.ndarray:
    """The posterior means E_q[z|x] of every row of ``x`` ``(N, D)``: a float64 array ``(N, latent_dim)``.

    The model is put in eval mode for the call and restored afterwards; ``x`` is moved to the
    model's device in batches of ``batch_size``.
    """
    if not isinstance(x, torch.Tensor) or x.ndim != 2:
        raise ValueError(f"x must be a (N, D) tensor; got {type(x).__name__} {tuple(getattr(x, 'shape', ()))}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    mu, _ = _posterior_params(model, x.to(device), batch_size)
    model.train(was_training)
    return mu.double().cpu().numpy()


def encoder_fn(model, batch_size: int = 2048):
    """A function ``images (N, D) -> posterior means (N, latent_dim)`` for :func:`~vaelib.metrics.beta_vae_score`."""

    def encode(images):
        return posterior_means(model, torch.as_tensor(images, dtype=torch.float32), batch_size)

    return encode


class CachedRenderer:
    """``render_dsprites(factors, resolution)`` that remembers what it rendered.

    The beta-VAE metric with a fixed ``seed`` asks for the same factor arrays for every model it
    scores; caching them renders the images once per sweep instead of once per model.
    """

    def __init__(self, resolution: int):
        self.resolution = int(resolution)
        self._cache: dict[tuple, torch.Tensor] = {}

    def __call__(self, factors) -> torch.Tensor:
        f = np.ascontiguousarray(np.asarray(factors, dtype=np.int64))
        key = (f.shape, f.tobytes())
        if key not in self._cache:
            self._cache[key] = render_dsprites(f, self.resolution)
        return self._cache[key]

    def __len__(self) -> int:
        return len(self._cache)


def beta_sweep(make_model, data: ImageData, betas, seeds, *, eval_data: ImageData, epochs: int,
               batch_size: int = 128, lr: float = 1e-3, n_bins: int = 20, progress: bool = False) -> list[dict]:
    """Train one model per ``(beta, seed)`` with :class:`~vaelib.objectives.BetaELBO` and score it.

    ``seeds`` is a list (the same seeds for every beta) or a dict ``{beta: seeds}`` (arms of
    different sizes, e.g. a pre-registered pair with more seeds than the rest of the sweep).
    All models train as one batched computation (:func:`~vaelib.train.fit_many`).
    ``make_model()`` returns a fresh model; it is called after ``config.seed_everything(seed)``,
    so the seed fixes the initialisation as well as the shuffling and the noise, and models of
    one seed are paired: same initialisation, same batches, same noise draws, different beta.
    ``eval_data.y`` must hold integer factor labels ``(N, K)``.
    Returns one dict per run: ``beta``, ``seed``, ``model``, ``history`` (from :func:`fit_many`),
    ``rec`` and ``kl`` (means over ``eval_data``, nats), ``mig`` (``(K,)`` per factor, on the
    posterior means of ``eval_data``).
    """
    if eval_data.y.ndim != 2:
        raise ValueError(f"eval_data.y must be (N, K) factor labels; got shape {tuple(eval_data.y.shape)}")
    if isinstance(seeds, dict):
        missing = [b for b in betas if b not in seeds]
        if missing:
            raise ValueError(f"seeds is a dict but names no seeds for beta {missing}")
        grid = [(float(beta), int(seed)) for beta in betas for seed in seeds[beta]]
    else:
        grid = [(float(beta), int(seed)) for beta in betas for seed in seeds]
    if not grid:
        raise ValueError("beta_sweep needs at least one beta and one seed")
    models = []
    for _, seed in grid:
        config.seed_everything(seed)
        models.append(make_model())
    histories = fit_many(models, data, [BetaELBO(b) for b, _ in grid], seeds=[s for _, s in grid], epochs=epochs,
                         batch_size=batch_size, lr=lr, progress=progress)
    factors = eval_data.y.cpu().numpy()
    runs = []
    for (beta, seed), model, history in zip(grid, models, histories):
        ev = evaluate(model, eval_data, BetaELBO(1.0), seed=seed)
        mig = mig_per_factor(posterior_means(model, eval_data.x), factors, n_bins=n_bins)
        runs.append(dict(beta=beta, seed=seed, model=model, history=history, rec=ev["rec"], kl=ev["kl"], mig=mig))
    return runs
