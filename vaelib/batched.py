"""K models of one architecture trained as one batched computation: seeds and beta sweeps at little more
than the cost of one model.

:func:`fit_many` stacks the K models' weights and runs their forward passes as one
``torch.func.vmap`` over ``functional_call``, so every linear layer becomes one batched matmul,
and takes one fused Adam step for all K. It is written independently of :func:`vaelib.train.fit`
(its own batches, noise, evaluation and bookkeeping), and held to it by a contract: member i of
``fit_many`` is the run ``fit(models[i], data, objectives[i], seed=seeds[i])`` makes alone, to
float64 round-off (``tests/test_fit_many.py``). Read :func:`vaelib.train.fit` to learn the loop;
this module is only about doing it K times at once.
"""

from __future__ import annotations

import copy
import time

import torch
from torch import nn
from torch.func import functional_call

from ._fitting import adam, check_fit_args, progress_bar
from .data import ImageData
from .models import DISTRIBUTION_PARAMS, distribution
from .objectives import Objective

__all__ = ["fit_many"]


class _Terms(nn.Module):
    """Wraps a model so that one call returns the parameters of p(x|z) and the KL (for ``functional_call``).

    The log-likelihood itself is computed outside ``vmap``, on all K models' decoder outputs at
    once: its fused kernel has no batching rule, and decomposed it cost more than the networks.
    """

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.per_dim = False  # True: the KL of every latent dimension, unsummed

    def forward(self, x, y, eps):
        px, kl = self.model.terms(x, y, eps=eps, per_dim=self.per_dim)
        out = {"params": tuple(getattr(px.base_dist, a) for a in DISTRIBUTION_PARAMS[self.model.likelihood])}
        if kl is not None:  # a model without a posterior (an AE) has no KL term
            out["kl"] = kl
        return out


def check_stackable(models):
    """Raise unless ``models`` are distinct models of one class and configuration (so their weights
    stack); returns the first."""
    first = models[0]
    for i, m in enumerate(models):
        if type(m) is not type(first) or getattr(m, "config", None) != getattr(first, "config", None):
            raise ValueError(f"models must share one class and configuration; model {i} is a {type(m).__name__} "
                             f"with {getattr(m, 'config', None)}, model 0 a {type(first).__name__} with "
                             f"{getattr(first, 'config', None)}")
    if len({id(m) for m in models}) != len(models):
        raise ValueError("models must be distinct objects (the same model twice would be trained twice)")
    return first


class _Stack:
    """K models of one architecture as stacked tensors: parameter ``name`` of model i is ``params[name][i]``."""

    def __init__(self, models, device):
        first = check_stackable(models)
        self.k, self.latent_dim, self.likelihood = len(models), first.latent_dim, first.likelihood
        self.template = _Terms(copy.deepcopy(first).to("meta"))
        # The leaves Adam updates. A linear layer's weight (out, in) is stored transposed, (K, in, out)
        # and contiguous, and handed to the model as a transposed view: the batched gradient x^T g then
        # lands in the leaf's own layout (bench/fit_many_throughput.py: the batched step ran 1.1-1.3x
        # faster so).
        self._transposed = {f"model.{n}.weight" if n else "model.weight"
                            for n, mod in first.named_modules() if isinstance(mod, nn.Linear)}
        self.leaves = {}
        for n, _ in first.named_parameters():
            stacked = torch.stack([dict(m.named_parameters())[n].detach() for m in models]).to(device)
            if f"model.{n}" in self._transposed:
                stacked = stacked.transpose(1, 2)
            self.leaves[f"model.{n}"] = stacked.contiguous().requires_grad_(True)
        self.buffers = {f"model.{n}": torch.stack([dict(m.named_buffers())[n] for m in models]).to(device)
                        for n, _ in first.named_buffers()}
        self.dtype = next(iter(self.leaves.values())).dtype

    @property
    def params(self):
        """Parameter name -> stacked ``(K, ...)`` tensor in the model's own layout (views of the leaves)."""
        return {n: v.transpose(1, 2) if n in self._transposed else v for n, v in self.leaves.items()}

    def terms(self, x, y, eps, train: bool, per_dim: bool = False):
        """Per-example ``(rec, kl)``, each ``(K, B)`` (kl ``(K, B, L)`` with ``per_dim``; None for an AE),
        for inputs ``x`` ``(K, B, D)``, ``y``, ``eps`` ``(K, B, L)``."""
        self.template.train(train)
        self.template.per_dim = per_dim

        def one(p, b, xi, yi, ei):
            return functional_call(self.template, (p, b), (xi, yi, ei))

        out = torch.func.vmap(one, randomness="error")(self.params, self.buffers, x, y, eps)
        return distribution(self.likelihood, *out["params"]).log_prob(x), out.get("kl")

    def write_back(self, models):
        params = self.params
        with torch.no_grad():
            for i, m in enumerate(models):
                for n, p in m.named_parameters():
                    p.copy_(params[f"model.{n}"][i])
                for n, b in m.named_buffers():
                    b.copy_(self.buffers[f"model.{n}"][i])


def _batches(stack, data, rows, gens):
    """One batch for every model: rows ``rows`` ``(K, B)``, binarised and noised with each model's generator."""
    x = data.x[rows]
    if data.binarize:
        x = torch.stack([torch.bernoulli(x[i], generator=g) for i, g in enumerate(gens)])
    eps = torch.stack([torch.randn(rows.shape[1], stack.latent_dim, generator=g, device=x.device, dtype=stack.dtype)
                       for g in gens])
    return x.to(stack.dtype), data.y[rows], eps


def _means(rec, kl):
    return rec.mean(1), None if kl is None else kl.mean(1)


def fit_many(models, data: ImageData, objectives, *, seeds, epochs: int, batch_size: int = 128, lr: float = 1e-3,
             device=None, eval_data: ImageData | None = None, progress: bool | None = None,
             drop_last: bool = True) -> list[dict[str, list[float]]]:
    """Train K models of one architecture as one batched computation; return K histories.

    ``models``: a list of K vaelib models of the same class and configuration (their
    initialisation is the caller's). ``objectives``: one :class:`~vaelib.objectives.Objective` per
    model, all of one class (so a beta sweep is one call), or one shared by all (stateful objectives
    such as :class:`~vaelib.objectives.ConstrainedELBO` are then copied per model). ``seeds``: one
    int per model; model i's shuffling, binarisation and reparameterisation noise come from a
    generator seeded with ``seeds[i]``. Every model takes Adam steps with learning rate ``lr`` on
    its own loss; the stacked step sums the K losses, whose gradients do not mix.

    Contract (tested): member i is the same training run as ``fit(models[i], data, objectives[i],
    seed=seeds[i], ...)``, to float round-off, history included (``seconds`` is the wall time of
    each epoch for all K together). Afterwards every model holds its trained weights, on
    ``device``, in eval mode, and every objective its own state.
    """
    if isinstance(models, torch.nn.Module) or not isinstance(models, (list, tuple)) or not models:
        raise TypeError(f"models must be a non-empty list of models; got {type(models).__name__}")
    k = len(models)
    if not isinstance(seeds, (list, tuple)) or len(seeds) != k:
        raise ValueError(f"seeds must be a list with one int per model ({k}); got {seeds!r}")
    if isinstance(objectives, (list, tuple)):
        if len(objectives) != k:
            raise ValueError(f"objectives must have one entry per model ({k}); got {len(objectives)}")
        objs = list(objectives)
    else:
        objs = [objectives] + [copy.deepcopy(objectives) for _ in range(k - 1)]
    device, batch_size = check_fit_args(models, data, objs, seeds, epochs, batch_size, lr, device, eval_data,
                                        drop_last)
    objective = type(objs[0]).stack(objs)
    for m in models:
        m.to(device)
    data = data.to(device)
    stack = _Stack(models, device)
    gens = [torch.Generator(device=device).manual_seed(s) for s in seeds]
    opt = adam(stack.leaves.values(), lr)
    per_dim = objective.kl_per_dimension
    n = len(data)
    n_batches = n // batch_size if drop_last else -(-n // batch_size)
    histories: list[dict[str, list[float]]] = [{} for _ in range(k)]
    step = 0
    for epoch_no in progress_bar(range(epochs), progress, f"{type(models[0]).__name__} x{k}"):
        t0 = time.perf_counter()
        perm = torch.stack([torch.randperm(n, device=device, generator=g) for g in gens])
        sums: dict[str, torch.Tensor] = {}
        for b in range(n_batches):
            x, y, eps = _batches(stack, data, perm[:, b * batch_size : (b + 1) * batch_size], gens)
            loss, metrics = objective.loss(*_means(*stack.terms(x, y, eps, train=True, per_dim=per_dim)), step)
            opt.zero_grad(set_to_none=True)
            loss.sum().backward()  # the K losses share no parameter: each model gets its own gradient
            opt.step()
            step += 1
            for key, v in {"loss": loss, **metrics}.items():
                v = v.detach()
                sums[key] = sums[key] + v if key in sums else v
        epochs_out = [{} for _ in range(k)]
        for key, v in sums.items():
            for i, val in enumerate((v / n_batches).tolist()):
                epochs_out[i][key] = val
        if eval_data is not None:
            for i, ev in enumerate(_evaluate(stack, eval_data, objective, seeds, 1024)):
                epochs_out[i].update({f"test_{key}": val for key, val in ev.items()})
        for i, ep in enumerate(epochs_out):
            if not all(v == v for v in ep.values()):
                raise FloatingPointError(f"training diverged (NaN) for model {i} (seed {seeds[i]}) at epoch "
                                         f"{epoch_no + 1}: {ep}")
        seconds = time.perf_counter() - t0
        for i, ep in enumerate(epochs_out):
            ep["seconds"] = seconds
            for key, v in ep.items():
                histories[i].setdefault(key, []).append(v)
    stack.write_back(models)
    objective.write_back(objs)
    for m in models:
        m.eval()
    return histories


@torch.no_grad()
def _evaluate(stack, data, objective: Objective, seeds, batch_size):
    """Means over ``data`` of every model's objective metrics, in eval mode, seeded per model."""
    device = next(iter(stack.leaves.values())).device
    data = data.to(device)
    gens = [torch.Generator(device=device).manual_seed(s) for s in seeds]
    sums: dict[str, torch.Tensor] = {}
    n = len(data)
    for start in range(0, n, batch_size):
        rows = torch.arange(start, min(start + batch_size, n), device=device)
        x, y, eps = _batches(stack, data, rows.expand(stack.k, -1), gens)
        rec, kl = stack.terms(x, y, eps, train=False, per_dim=objective.kl_per_dimension)
        loss, metrics = objective.loss(*_means(rec, kl), 0, train=False)
        for key, v in {"loss": loss, **metrics}.items():
            sums[key] = sums.get(key, 0.0) + v * len(rows)
    out = [{} for _ in range(stack.k)]
    for key, v in sums.items():
        for i, val in enumerate((v / n).tolist()):
            out[i][key] = val
    return out
