"""One training function, written out plainly, and checkpoints that know their model.

:func:`fit` moves the model and the data to the device once (see :func:`vaelib.config.device`),
shuffles with its own seeded generator, and logs per-epoch means of what the objective reports.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

from . import config
from .data import ImageData

__all__ = ["fit", "evaluate", "save_checkpoint", "load_checkpoint"]


def _check_data(data):
    if not isinstance(data, ImageData):
        raise TypeError(f"data must be a vaelib.data.ImageData; got {type(data).__name__}")
    if len(data) == 0:
        raise ValueError("data is empty")


def fit(model, data: ImageData, objective, *, epochs: int, batch_size: int = 128, lr: float = 1e-3,
        seed: int = 0, device=None, eval_data: ImageData | None = None, progress: bool | None = None,
        drop_last: bool = True) -> dict[str, list[float]]:
    """Train ``model`` on ``data`` with Adam, minimising ``objective`` for ``epochs`` epochs.

    ``objective(model, x, y, step) -> (loss, metrics)`` (see :mod:`vaelib.objectives`).
    Returns the history: for every metric the objective reports, a list with its mean over each
    epoch's batches; with ``eval_data``, the same metrics on it (no gradient, model in eval
    mode) as ``test_<name>``; and ``seconds``, the wall time of each epoch (machine dependent).
    Same seed, same data, same model initialisation -> the same history on a CPU.
    ``progress=None`` shows a per-epoch progress bar only where a reader watches (a terminal, or
    Colab), not in the built book or the tests; ``True``/``False`` force it.
    """
    _check_data(data)
    if eval_data is not None:
        _check_data(eval_data)
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive int; got {epochs!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int; got {batch_size!r}")
    n = len(data)
    if drop_last and batch_size > n:
        batch_size = n
    device = torch.device(device) if device is not None else config.device()
    model.to(device)
    data = data.to(device)
    if eval_data is not None:
        eval_data = eval_data.to(device)
    torch.manual_seed(seed)  # the reparameterisation noise
    gen = torch.Generator(device=device).manual_seed(seed)  # shuffling and binarisation
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    history: dict[str, list[float]] = {}
    n_batches = n // batch_size if drop_last else -(-n // batch_size)
    step = 0
    bar = _progress_bar(range(epochs), progress, type(model).__name__)
    for _ in bar:
        t0 = time.perf_counter()
        model.train()
        perm = torch.randperm(n, device=device, generator=gen)
        sums: dict[str, torch.Tensor] = {}
        for b in range(n_batches):
            idx = perm[b * batch_size : (b + 1) * batch_size]
            x, y = data.batch(idx, gen)
            loss, metrics = objective(model, x, y, step)
            if not loss.ndim == 0:
                raise ValueError(f"the objective must return a scalar loss; got shape {tuple(loss.shape)}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            metrics = {"loss": loss, **metrics}
            for k, v in metrics.items():
                v = v.detach()
                sums[k] = sums[k] + v if k in sums else v
        epoch = {k: float(v) / n_batches for k, v in sums.items()}
        if eval_data is not None:
            epoch.update({f"test_{k}": v for k, v in evaluate(model, eval_data, objective, seed=seed).items()})
        if not all(map(lambda v: v == v, epoch.values())):
            raise FloatingPointError(f"training diverged (NaN) at epoch {len(history.get('loss', [])) + 1}: {epoch}")
        epoch["seconds"] = time.perf_counter() - t0
        for k, v in epoch.items():
            history.setdefault(k, []).append(v)
        bar.set_postfix({k: f"{v:.3g}" for k, v in epoch.items() if k in ("loss", "test_loss")})
    model.eval()
    return history


def _progress_bar(iterable, progress, desc):
    if progress is None:
        progress = "google.colab" in sys.modules or sys.stderr.isatty()
    if not progress:
        from tqdm.std import tqdm

        return tqdm(iterable, disable=True)
    try:  # a notebook widget where ipywidgets exists (Colab), text elsewhere, never a warning
        import ipywidgets  # noqa: F401
        from tqdm.auto import tqdm
    except ImportError:
        from tqdm.std import tqdm
    return tqdm(iterable, desc=desc, leave=False)


@torch.no_grad()
def evaluate(model, data: ImageData, objective, batch_size: int = 1024, seed: int = 0) -> dict[str, float]:
    """Means over ``data`` of the objective's metrics, in eval mode, without gradients.

    The sampling noise (binarisation, reparameterisation) is drawn from generators seeded with
    ``seed``, forked from the global ones, so repeated calls agree and training is undisturbed.
    """
    _check_data(data)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    data = data.to(device)
    gen = torch.Generator(device=device).manual_seed(seed)
    sums: dict[str, torch.Tensor] = {}
    n = len(data)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        for start in range(0, n, batch_size):
            idx = torch.arange(start, min(start + batch_size, n), device=device)
            x, y = data.batch(idx, gen)
            loss, metrics = objective(model, x, y, 0)
            for k, v in {"loss": loss, **metrics}.items():
                sums[k] = sums.get(k, 0.0) + v.detach() * len(idx)
    model.train(was_training)
    return {k: float(v) / n for k, v in sums.items()}


def save_checkpoint(model, path, **meta) -> None:
    """Save the model's class, configuration, weights and any ``meta`` to ``path``."""
    if not hasattr(model, "config"):
        raise TypeError(f"{type(model).__name__} has no `config`; only vaelib models can be checkpointed")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"class": type(model).__name__, "config": model.config,
                "state_dict": {k: v.cpu() for k, v in model.state_dict().items()}, "meta": meta}, path)


def load_checkpoint(model, path, map_location="cpu") -> dict:
    """Load weights saved by :func:`save_checkpoint` into ``model``; return the saved ``meta``.

    Refuses (``ValueError``) a checkpoint of another model class or configuration, naming the
    differences, rather than loading weights into a model they do not belong to.
    """
    ckpt = torch.load(Path(path), map_location=map_location, weights_only=True)
    if not isinstance(ckpt, dict) or not {"class", "config", "state_dict"} <= ckpt.keys():
        raise ValueError(f"{path} is not a vaelib checkpoint")
    if ckpt["class"] != type(model).__name__:
        raise ValueError(f"checkpoint holds a {ckpt['class']}, but the model is a {type(model).__name__}")
    if ckpt["config"] != model.config:
        keys = sorted(set(ckpt["config"]) | set(model.config))
        diffs = [f"{k}: checkpoint {ckpt['config'].get(k)!r} vs model {model.config.get(k)!r}"
                 for k in keys if ckpt["config"].get(k) != model.config.get(k)]
        raise ValueError("checkpoint configuration does not match the model: " + "; ".join(diffs))
    model.load_state_dict(ckpt["state_dict"])
    return ckpt.get("meta", {})
