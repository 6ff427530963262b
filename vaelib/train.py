"""One training loop, written out plainly, and checkpoints that know their model.

:func:`fit_many` trains K models of one architecture as one batched computation (stacked
weights, ``torch.func.vmap``): seeds and beta sweeps cost little more than one model. :func:`fit`
is the same loop with K = 1. Both move the models and the data to the device once (see
:func:`vaelib.config.device`), shuffle with seeded generators, and log per-epoch means of what
the objectives report.
"""

from __future__ import annotations

import copy
import math
import pickle
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.distributions import Bernoulli, Independent, Normal
from torch.func import functional_call

from . import config
from .data import ImageData
from .objectives import Objective, check_targets, decoded_and_kl

__all__ = ["fit", "fit_many", "evaluate", "save_checkpoint", "load_checkpoint"]


def _check_data(data, name="data"):
    if not isinstance(data, ImageData):
        raise TypeError(f"{name} must be a vaelib.data.ImageData; got {type(data).__name__}")
    if len(data) == 0:
        raise ValueError(f"{name} is empty")


def _check_labels(model, data, name):
    """CVAE labels are checked once here: inside the batched step their values cannot be read."""
    n_classes = getattr(model, "n_classes", None)
    if n_classes is None:
        return
    y = data.y
    if y.ndim != 1 or y.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"{name}.y must be (N,) integer class labels for a CVAE; got {y.dtype} {tuple(y.shape)}")
    if int(y.min()) < 0 or int(y.max()) >= n_classes:
        raise ValueError(f"{name}.y must lie in 0..{n_classes - 1}; got {int(y.min())}..{int(y.max())}")


class _Terms(nn.Module):
    """Wraps a model so that one call returns the parameters of p(x|z) and the KL (for ``functional_call``).

    The log-likelihood itself is computed outside ``vmap``, on all K models' decoder outputs
    at once: its fused kernel has no batching rule, and decomposed it cost more than the networks.
    """

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.per_dim = False  # True: the KL of every latent dimension, unsummed

    def forward(self, x, y, eps):
        px, kl = decoded_and_kl(self.model, x, y, eps, self.per_dim)
        base = px.base_dist
        if isinstance(base, Bernoulli):
            return base.logits, kl
        return base.loc, base.scale, kl


def _log_prob(params, x):
    """Sum over pixels of log p(x|z) from the decoder outputs of :class:`_Terms`: ``(K, B)``."""
    if len(params) == 1:
        return Independent(Bernoulli(logits=params[0], validate_args=False), 1).log_prob(x)
    return Independent(Normal(params[0], params[1], validate_args=False), 1).log_prob(x)


class _Stack:
    """K models of one architecture as stacked tensors: one batched forward for all K.

    Parameter ``name`` of model i is ``params[name][i]``. The forward pass is
    ``torch.func.vmap`` over ``functional_call`` of a weightless copy of the first model, so
    every linear layer becomes one batched matmul. With K = 1 the model itself is called.
    """

    def __init__(self, models, device):
        first = models[0]
        for i, m in enumerate(models):
            if type(m) is not type(first) or getattr(m, "config", None) != getattr(first, "config", None):
                raise ValueError(f"models must share one class and configuration; model {i} is a {type(m).__name__} "
                                 f"with {getattr(m, 'config', None)}, model 0 a {type(first).__name__} with "
                                 f"{getattr(first, 'config', None)}")
        if len({id(m) for m in models}) != len(models):
            raise ValueError("models must be distinct objects (the same model twice would be trained twice)")
        self.k = len(models)
        self.latent_dim = first.latent_dim
        if self.k == 1:  # one model trains its own parameters: no copy, no stacking
            self.template = _Terms(first.to(device))
            self.leaves = {n: p for n, p in self.template.named_parameters()}
            self.buffers, self._transposed = {}, set()
            self.dtype = next(iter(self.leaves.values())).dtype
            return
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
        """Per-example ``(rec, kl)``, each ``(K, B)``, for inputs ``x`` ``(K, B, D)``, ``y``, ``eps`` ``(K, B, L)``;
        with ``per_dim`` the KL is ``(K, B, L)``, one per latent dimension."""
        self.template.train(train)
        self.template.per_dim = per_dim
        if self.k == 1:
            out = [t.unsqueeze(0) for t in self.template(x[0], y[0], eps[0])]
        else:
            def one(p, b, xi, yi, ei):
                return functional_call(self.template, (p, b), (xi, yi, ei))

            out = torch.func.vmap(one, randomness="error")(self.params, self.buffers, x, y, eps)
        return _log_prob(out[:-1], x), out[-1]

    def write_back(self, models):
        if self.k == 1:
            return  # the model's own parameters were trained
        params = self.params
        with torch.no_grad():
            for i, m in enumerate(models):
                for n, p in m.named_parameters():
                    p.copy_(params[f"model.{n}"][i])
                for n, b in m.named_buffers():
                    b.copy_(self.buffers[f"model.{n}"][i])


def _kl_per_dimension(objectives) -> bool:
    """Whether the objectives take the KL per latent dimension (all of them) or summed (none)."""
    flags = {bool(o.kl_per_dimension) for o in objectives}
    if len(flags) > 1:
        kinds = sorted({type(o).__name__ for o in objectives})
        raise ValueError(f"objectives {kinds} cannot train in one call: some take the KL of every latent "
                         f"dimension (kl_per_dimension=True) and some the summed KL; train them in separate calls")
    return flags.pop()


def _adam(params, lr):
    """Adam, fused where this torch and device support it (1.2-1.9x on the book's small MLPs)."""
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, ValueError, TypeError):
        return torch.optim.Adam(params, lr=lr)


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


def _as_list(name, value, k, kind):
    if isinstance(value, (list, tuple)):
        if len(value) != k:
            raise ValueError(f"{name} must have one entry per model ({k}); got {len(value)}")
        return list(value)
    return None if kind == "seeds" else value


def _draw(stack, data, idx, gens):
    """One batch for every model: rows ``idx`` ``(K, B)``, binarised and noised with each model's generator."""
    x, y = data.x[idx], data.y[idx]
    if data.binarize:
        x = torch.stack([torch.bernoulli(x[i], generator=g) for i, g in enumerate(gens)])
    b = idx.shape[1]
    eps = torch.stack([torch.randn(b, stack.latent_dim, generator=g, device=x.device, dtype=stack.dtype) for g in gens])
    return x.to(stack.dtype), y, eps


def fit_many(models, data: ImageData, objectives, *, seeds, epochs: int, batch_size: int = 128, lr: float = 1e-3,
             device=None, eval_data: ImageData | None = None, progress: bool | None = None,
             drop_last: bool = True) -> list[dict[str, list[float]]]:
    """Train K models of one architecture as one batched computation; return K histories.

    ``models``: a list of K vaelib models of the same class and configuration (their
    initialisation is the caller's). ``objectives``: one :class:`~vaelib.objectives.Objective` per
    model (so a beta sweep is one call) or one shared by all (stateful objectives such as
    :class:`~vaelib.objectives.ConstrainedELBO` are then copied per model). ``seeds``: one int per
    model; model i's shuffling, binarisation and reparameterisation noise come from a generator
    seeded with ``seeds[i]``. Every model takes Adam steps with learning rate ``lr`` on its own
    loss; the stacked step sums the K losses, whose gradients do not mix.

    Contract (tested): member i of ``fit_many`` is the same training run as
    ``fit(models[i], data, objectives[i], seed=seeds[i], ...)``, to float round-off; :func:`fit`
    is this function with K = 1. Afterwards every model holds its trained weights, on ``device``,
    in eval mode. History i holds, for every metric its objective reports, the mean over each
    epoch's batches; with ``eval_data``, the same metrics on it (no gradient, eval mode, seeded
    by ``seeds[i]``) as ``test_<name>``; and ``seconds``, the wall time of each epoch for all K
    models together (machine dependent). The data and the stacked weights move to the device once;
    pixels of another floating dtype (``load_digits(dtype=torch.float64)``) are converted to the models'.
    """
    if isinstance(models, torch.nn.Module) or not isinstance(models, (list, tuple)) or not models:
        raise TypeError(f"models must be a non-empty list of models; got {type(models).__name__}")
    k = len(models)
    _check_data(data)
    if eval_data is not None:
        _check_data(eval_data, "eval_data")
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        raise ValueError(f"epochs must be a positive int; got {epochs!r}")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int; got {batch_size!r}")
    if not isinstance(seeds, (list, tuple)) or len(seeds) != k:
        raise ValueError(f"seeds must be a list with one int per model ({k}); got {seeds!r}")
    if not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise TypeError(f"seeds must be ints; got {[type(s).__name__ for s in seeds]}")
    objs = _as_list("objectives", objectives, k, "objectives")
    if not isinstance(objs, list):
        objs = [objectives] + [copy.deepcopy(objectives) for _ in range(k - 1)]
    for i, o in enumerate(objs):
        if not isinstance(o, Objective):
            raise TypeError(f"objectives[{i}] must be a vaelib.objectives.Objective; got {type(o).__name__}")
    for m in models:
        if hasattr(m, "x_dim") and m.x_dim != data.x.shape[1]:
            raise ValueError(f"the models take x of shape (B, {m.x_dim}); data has (N, {data.x.shape[1]})")
    _check_labels(models[0], data, "data")
    if eval_data is not None:
        _check_labels(models[0], eval_data, "eval_data")
    check_targets(models[0], data.x)  # NaN, and Bernoulli targets outside [0, 1], once for all epochs
    n = len(data)
    if drop_last and batch_size > n:
        batch_size = n
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr < 0:
        raise ValueError(f"lr must be a finite number >= 0; got {lr!r}")
    device = _check_device(device) if device is not None else config.device()
    for m in models:
        m.to(device)
    data = data.to(device)
    if eval_data is not None:
        eval_data = eval_data.to(device)
    stack = _Stack(models, device)
    gens = [torch.Generator(device=device).manual_seed(s) for s in seeds]
    opt = _adam(list(stack.leaves.values()), lr)
    per_dim = _kl_per_dimension(objs)
    loss_many = type(objs[0]).loss_many if all(type(o) is type(objs[0]) for o in objs) else Objective.loss_many
    histories: list[dict[str, list[float]]] = [{} for _ in range(k)]
    n_batches = n // batch_size if drop_last else -(-n // batch_size)
    step = 0
    bar = _progress_bar(range(epochs), progress, type(models[0]).__name__ + (f" x{k}" if k > 1 else ""))
    for epoch_no in bar:
        t0 = time.perf_counter()
        perm = torch.stack([torch.randperm(n, device=device, generator=g) for g in gens])
        sums: dict[str, torch.Tensor] = {}
        for b in range(n_batches):
            x, y, eps = _draw(stack, data, perm[:, b * batch_size : (b + 1) * batch_size], gens)
            rec, kl = stack.terms(x, y, eps, train=True, per_dim=per_dim)
            loss, metrics = loss_many(objs, rec.mean(1), kl.mean(1), step)
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
            for i, ev in enumerate(_evaluate_stack(stack, eval_data, objs, seeds, 1024)):
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
        bar.set_postfix({key: f"{v:.3g}" for key, v in epochs_out[0].items() if key in ("loss", "test_loss")})
    stack.write_back(models)
    for m in models:
        m.eval()
    return histories


def fit(model, data: ImageData, objective, *, epochs: int, batch_size: int = 128, lr: float = 1e-3,
        seed: int = 0, device=None, eval_data: ImageData | None = None, progress: bool | None = None,
        drop_last: bool = True) -> dict[str, list[float]]:
    """Train ``model`` on ``data`` with Adam, minimising ``objective`` for ``epochs`` epochs.

    This is :func:`fit_many` with one model: ``objective`` is a :class:`~vaelib.objectives.Objective`,
    and ``seed`` seeds the generator of the shuffling, the binarisation and the reparameterisation
    noise (the initialisation is the caller's). Returns the history: for every metric the
    objective reports, a list with its mean over each epoch's batches; with ``eval_data``, the
    same metrics on it (no gradient, model in eval mode) as ``test_<name>``; and ``seconds``,
    the wall time of each epoch (machine dependent). Same seed, same data, same model
    initialisation -> the same history on a CPU. ``progress=None`` shows a per-epoch progress bar
    only where a reader watches (a terminal, or Colab), not in the built book or the tests;
    ``True``/``False`` force it.
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    return fit_many([model], data, [objective], seeds=[seed], epochs=epochs, batch_size=batch_size, lr=lr,
                    device=device, eval_data=eval_data, progress=progress, drop_last=drop_last)[0]


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
def _evaluate_stack(stack, data, objectives, seeds, batch_size):
    """Means over ``data`` of every model's objective metrics, in eval mode, seeded per model."""
    device = next(iter(stack.leaves.values())).device
    data = data.to(device)
    gens = [torch.Generator(device=device).manual_seed(s) for s in seeds]
    per_dim = _kl_per_dimension(objectives)
    loss_many = type(objectives[0]).loss_many if all(type(o) is type(objectives[0]) for o in objectives) \
        else Objective.loss_many
    sums: dict[str, torch.Tensor] = {}
    n = len(data)
    for start in range(0, n, batch_size):
        rows = torch.arange(start, min(start + batch_size, n), device=device)
        x, y, eps = _draw(stack, data, rows.expand(stack.k, -1), gens)
        rec, kl = stack.terms(x, y, eps, train=False, per_dim=per_dim)
        loss, metrics = loss_many(objectives, rec.mean(1), kl.mean(1), 0, train=False)
        for key, v in {"loss": loss, **metrics}.items():
            sums[key] = sums.get(key, 0.0) + v * len(rows)
    out = [{} for _ in range(stack.k)]
    for key, v in sums.items():
        for i, val in enumerate((v / n).tolist()):
            out[i][key] = val
    return out


def evaluate(model, data: ImageData, objective, batch_size: int = 1024, seed: int = 0) -> dict[str, float]:
    """Means over ``data`` of the objective's metrics, in eval mode, without gradients.

    The sampling noise (binarisation, reparameterisation) is drawn from a generator seeded with
    ``seed``, so repeated calls agree; the model and any state of the objective are untouched.
    """
    _check_data(data)
    if not isinstance(objective, Objective):
        raise TypeError(f"objective must be a vaelib.objectives.Objective; got {type(objective).__name__}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int; got {batch_size!r}")
    _check_labels(model, data, "data")
    was_training = model.training
    stack = _Stack([model], next(model.parameters()).device)
    out = _evaluate_stack(stack, data, [objective], [seed], batch_size)[0]
    model.train(was_training)
    return out


def save_checkpoint(model, path, **meta) -> None:
    """Save the model's class, configuration, weights and any ``meta`` to ``path``."""
    if not hasattr(model, "config"):
        raise TypeError(f"{type(model).__name__} has no `config`; only vaelib models can be checkpointed")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {k: _plain_meta(v, k) for k, v in meta.items()}
    torch.save({"class": type(model).__name__, "config": model.config,
                "state_dict": {k: v.cpu() for k, v in model.state_dict().items()}, "meta": meta}, path)


def _plain_meta(value, key):
    """A checkpoint's metadata as what ``torch.load(weights_only=True)`` reads back: Python numbers,
    strings, lists, dicts and tensors (NumPy scalars and arrays converted); anything else refused."""
    if type(value).__module__ == "numpy":  # first: np.float64 is also a float, and torch.load refuses it
        return value.tolist()  # a NumPy scalar -> a Python number, an array -> nested lists
    if isinstance(value, (str, bool, int, float, type(None), torch.Tensor)):
        return value
    if isinstance(value, dict):
        return {k: _plain_meta(v, f"{key}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain_meta(v, f"{key}[{i}]") for i, v in enumerate(value)]
    raise TypeError(f"checkpoint metadata {key!r} must be numbers, strings, lists, dicts or tensors; "
                    f"got {type(value).__name__}")


def load_checkpoint(model, path, map_location="cpu") -> dict:
    """Load weights saved by :func:`save_checkpoint` into ``model``; return the saved ``meta``.

    Refuses (``ValueError``) a checkpoint of another model class or configuration, naming the
    differences, rather than loading weights into a model they do not belong to.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, EOFError, RuntimeError, ValueError) as err:
        raise ValueError(f"{path} is not a readable vaelib checkpoint (truncated, corrupted or another format): "
                         f"{str(err).splitlines()[0] if str(err) else type(err).__name__}") from err
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
