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


def fit(model, data: ImageData, objective: Objective, *, epochs: int,
        batch_size: int = 128, lr: float = 1e-3, seed: int = 0,
        device=None, eval_data: ImageData | None = None,
        progress: bool | None = None,
        drop_last: bool = True) -> dict[str, list[float]]:
    """Train ``model`` on ``data`` with Adam, minimising ``objective``.

    ``seed`` seeds the one generator of the shuffling, the binarisation
    and the reparameterisation noise (the initialisation is the
    caller's). Returns the history: for every metric the objective
    reports, its mean over each epoch's batches; with ``eval_data``, the
    same metrics on it (:func:`evaluate`, seeded by ``seed``) as
    ``test_<name>``; and ``seconds``, each epoch's wall time. Same seed,
    data and initialisation: the same history on a CPU. ``progress=None``
    shows a progress bar only where a reader watches (a terminal, or
    Colab). The model ends on ``device``, in eval mode.
    """
    device, batch_size = check_fit_args([model], data, [objective], [seed],
                                        epochs, batch_size, lr, device,
                                        eval_data, drop_last)
    model, data = model.to(device), data.to(device)
    # one generator for the shuffling, the binarisation and the noise
    gen = torch.Generator(device=device).manual_seed(seed)
    opt = adam(model.parameters(), lr)
    dtype = next(model.parameters()).dtype
    n, per_dim = len(data), objective.kl_per_dimension
    n_batches = n // batch_size if drop_last else -(-n // batch_size)
    history, step, name = {}, 0, type(model).__name__
    for epoch in progress_bar(range(epochs), progress, name):
        t0, sums = time.perf_counter(), {}
        model.train()
        order = torch.randperm(n, device=device, generator=gen)
        for b in range(n_batches):
            rows = order[b * batch_size : (b + 1) * batch_size]
            x, y = data.batch(rows, generator=gen)  # binarised afresh
            eps = torch.randn(len(x), model.latent_dim, generator=gen,
                              device=device, dtype=dtype)
            x = x.to(dtype)
            px, kl = model.terms(x, y, eps=eps, per_dim=per_dim)
            kl = None if kl is None else kl.mean(0)  # an AE has no KL
            loss, metrics = objective.loss(px.log_prob(x).mean(), kl, step)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            for key, v in {"loss": loss, **metrics}.items():
                sums[key] = sums.get(key, 0.0) + v.detach()
        means = {k: (v / n_batches).item() for k, v in sums.items()}
        if eval_data is not None:
            ev = evaluate(model, eval_data, objective, seed=seed)
            means.update({f"test_{k}": v for k, v in ev.items()})
        if any(math.isnan(v) for v in means.values()):
            raise FloatingPointError(f"NaN at epoch {epoch + 1}: {means}")
        means["seconds"] = time.perf_counter() - t0
        history = {k: history.get(k, []) + [v] for k, v in means.items()}
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
