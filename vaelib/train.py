"""Training, written out plainly: :func:`fit` is the loop a reader writes for one model.

:func:`fit` shuffles, binarises and draws the reparameterisation noise from its own seeded
generator, asks the model for its two terms (``model.terms``: the decoded distribution and the
KL), hands their batch means to the objective, and takes an Adam step; it logs per-epoch means
of what the objective reports. :func:`evaluate` is the same pass without gradients.

Training K models of one architecture (seeds, a beta sweep) one after another wastes a small
model's time; :func:`vaelib.batched.fit_many` trains them as one batched computation and is
tested to make, for every member, the run :func:`fit` makes alone (``tests/test_fit_many.py``).
"""

from __future__ import annotations

import math
import time

import torch

from ._fitting import adam, check_fit_args, progress_bar
from .batched import fit_many
from .data import ImageData
from .objectives import Objective

__all__ = ["fit", "fit_many", "evaluate"]


def fit(model, data: ImageData, objective: Objective, *, epochs: int, batch_size: int = 128, lr: float = 1e-3,
        seed: int = 0, device=None, eval_data: ImageData | None = None, progress: bool | None = None,
        drop_last: bool = True) -> dict[str, list[float]]:
    """Train ``model`` on ``data`` with Adam, minimising ``objective`` for ``epochs`` epochs.

    ``seed`` seeds the one generator of the shuffling, the binarisation and the reparameterisation
    noise (the initialisation is the caller's). Returns the history: for every metric the objective
    reports, its mean over each epoch's batches; with ``eval_data``, the same metrics on it (no
    gradient, eval mode, :func:`evaluate` with ``seed``) as ``test_<name>``; and ``seconds``, the
    wall time of each epoch (machine dependent). Same seed, data and initialisation: the same
    history on a CPU. ``progress=None`` shows a progress bar only where a reader watches (a
    terminal, or Colab); ``True``/``False`` force it. The model ends on ``device``, in eval mode.
    """
    device, batch_size = check_fit_args([model], data, [objective], [seed], epochs, batch_size, lr, device,
                                        eval_data, drop_last)
    model.to(device)
    data = data.to(device)
    gen = torch.Generator(device=device).manual_seed(seed)  # shuffling, binarisation, noise
    opt = adam(model.parameters(), lr)
    dtype = next(model.parameters()).dtype
    n_batches = len(data) // batch_size if drop_last else -(-len(data) // batch_size)
    history, step = {}, 0
    for epoch in progress_bar(range(epochs), progress, type(model).__name__):
        t0, sums = time.perf_counter(), {}
        model.train()
        order = torch.randperm(len(data), device=device, generator=gen)
        for b in range(n_batches):
            x, y = data.batch(order[b * batch_size : (b + 1) * batch_size], generator=gen)
            eps = torch.randn(len(x), model.latent_dim, generator=gen, device=device, dtype=dtype)
            x = x.to(dtype)
            px, kl = model.terms(x, y, eps=eps, per_dim=objective.kl_per_dimension)
            loss, metrics = objective.loss(px.log_prob(x).mean(), None if kl is None else kl.mean(0), step)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            for key, v in {"loss": loss, **metrics}.items():
                sums[key] = sums.get(key, 0.0) + v.detach()
        means = {key: (v / n_batches).item() for key, v in sums.items()}
        if eval_data is not None:
            means.update({f"test_{k}": v for k, v in evaluate(model, eval_data, objective, seed=seed).items()})
        if any(math.isnan(v) for v in means.values()):
            raise FloatingPointError(f"training diverged (NaN) at epoch {epoch + 1} (seed {seed}): {means}")
        means["seconds"] = time.perf_counter() - t0
        for key, v in means.items():
            history.setdefault(key, []).append(v)
    model.eval()
    return history


@torch.no_grad()
def evaluate(model, data: ImageData, objective: Objective, batch_size: int = 1024, seed: int = 0) -> dict[str, float]:
    """Means over ``data`` of the objective's metrics, in eval mode, without gradients.

    The sampling noise (binarisation, reparameterisation) is drawn from a generator seeded with
    ``seed``, so repeated calls agree; the model's mode and any state of the objective are untouched.
    """
    device = next(model.parameters()).device
    check_fit_args([model], data, [objective], [seed], 1, batch_size, 0.0, device, None, False)
    was_training = model.training
    model.eval()
    data, dtype = data.to(device), next(model.parameters()).dtype
    gen = torch.Generator(device=device).manual_seed(seed)
    sums = {}
    for start in range(0, len(data), batch_size):
        x, y = data.batch(torch.arange(start, min(start + batch_size, len(data)), device=device), generator=gen)
        eps = torch.randn(len(x), model.latent_dim, generator=gen, device=device, dtype=dtype)
        x = x.to(dtype)
        px, kl = model.terms(x, y, eps=eps, per_dim=objective.kl_per_dimension)
        loss, metrics = objective.loss(px.log_prob(x).mean(), None if kl is None else kl.mean(0), 0, train=False)
        for key, v in {"loss": loss, **metrics}.items():
            sums[key] = sums.get(key, 0.0) + v * len(x)
    model.train(was_training)
    return {key: (v / len(data)).item() for key, v in sums.items()}
