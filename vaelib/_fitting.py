"""What :func:`vaelib.train.fit` and :func:`vaelib.batched.fit_many` share: the checks of a training
call, the optimiser and the progress bar. Nothing here touches a batch, the noise or a loss: the two
loops compute those independently, so that their contract test compares two implementations."""

from __future__ import annotations

import math
import sys

import torch

from . import config
from .data import ImageData
from .objectives import Objective, check_targets


def check_fit_args(models, data, objectives, seeds, epochs, batch_size, lr, device, eval_data, drop_last):
    """Validate a training call before anything runs; return ``(device, batch_size)``.

    Every error names the argument, what was expected and what came.
    """
    for i, m in enumerate(models):
        if not isinstance(m, torch.nn.Module) or not hasattr(m, "terms"):
            raise TypeError(f"model must be a vaelib model (a torch.nn.Module with .terms); got {type(m).__name__}")
        meta = [n for n, p in m.named_parameters() if p.is_meta]
        if meta:
            raise ValueError(f"model {i} has parameters on the meta device (shapes, no values), e.g. {meta[0]!r}: "
                             f"build it on a real device before training")
    _check_data(data)
    if eval_data is not None:
        _check_data(eval_data, "eval_data")
    for name, v in (("epochs", epochs), ("batch_size", batch_size)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{name} must be a positive int; got {v!r}")
    for s in seeds:
        config.check_seed(s)  # an int in [0, 2**63-1], the range every generator takes as it is
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr < 0:
        raise ValueError(f"lr must be a finite number >= 0; got {lr!r}")
    for i, o in enumerate(objectives):
        if not isinstance(o, Objective):
            raise TypeError(f"objective must be a vaelib.objectives.Objective; got {type(o).__name__}"
                            + (f" (objectives[{i}])" if len(objectives) > 1 else ""))
        o.check_model(models[0])
    for m in models[:1]:
        if m.x_dim != data.x.shape[1]:
            raise ValueError(f"the model takes x of shape (B, {m.x_dim}); data has (N, {data.x.shape[1]})")
        for d, name in ((data, "data"), (eval_data, "eval_data")):
            if d is not None and getattr(m, "needs_labels", False):
                _check_labels(m, d, name)
        check_targets(m, data.x)  # NaN, and Bernoulli targets outside [0, 1], once for all epochs
    device = _check_device(device) if device is not None else config.device()
    if drop_last and batch_size > len(data):
        batch_size = len(data)
    return device, batch_size


def _check_data(data, name="data"):
    if not isinstance(data, ImageData):
        raise TypeError(f"{name} must be a vaelib.data.ImageData; got {type(data).__name__}")
    if len(data) == 0:
        raise ValueError(f"{name} is empty (0 rows): there is nothing to train on or evaluate")
    if data.x.is_meta:
        raise ValueError(f"{name} is on the meta device (shapes, no values)")


def _check_labels(model, data, name):
    """Class labels are checked once, here: inside the batched step their values cannot be read."""
    y = data.y
    if y.ndim != 1 or y.dtype.is_floating_point or y.dtype.is_complex or y.dtype == torch.bool:
        raise ValueError(f"{name}.y must be (N,) integer class labels for a {type(model).__name__}; "
                         f"got {y.dtype} {tuple(y.shape)}")
    if int(y.min()) < 0 or int(y.max()) >= model.n_classes:
        raise ValueError(f"{name}.y must lie in 0..{model.n_classes - 1}; got {int(y.min())}..{int(y.max())}")


def _check_device(device) -> torch.device:
    """``device`` as a torch.device that can hold the models, checked before anything moves."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device must name a torch device such as 'cpu' or 'cuda'; got {device!r}") from err
    if dev.type == "meta":
        raise ValueError("device='meta' holds no values: training needs 'cpu', 'cuda' or 'mps'")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} but this torch sees no CUDA device; use vaelib.config.device()")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError(f"device={device!r} but Apple's MPS is not available here; use vaelib.config.device()")
    return dev


def adam(params, lr):
    """Adam, fused where this torch and device support it (1.2-1.9x on the book's small MLPs)."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, ValueError, TypeError):
        return torch.optim.Adam(params, lr=lr)


def progress_bar(iterable, progress, desc):
    """A per-epoch progress bar where a reader watches (a terminal, or Colab), else a silent one."""
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

