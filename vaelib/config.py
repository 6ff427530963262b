"""The one place the book reads its run-time settings: the budget and the device.

``VAEBOOK_BUDGET`` picks how much every training chapter trains:

* ``smoke``   -- seconds per chapter; what the tests use (the default when ``CI`` is set),
* ``default`` -- real results on a laptop CPU; what ``make book`` and Colab use,
* ``full``    -- paper-scale data and iterations, meant for a GPU.

The device is chosen once per process: CUDA, then Apple's MPS, then the CPU.

``VAEBOOK_THREADS`` sets the CPU thread count, here and nowhere else (:func:`threads`): torch's,
and that of the BLAS libraries numpy and scipy use (scikit-learn's classifiers run on them). It is
applied explicitly, never by importing vaelib: by :func:`apply_threads`, which every chapter calls
through :func:`vaelib.book.header` and the tests' ``conftest.py`` once per process. Unset, a process
takes its share of the cores: all of them when it runs alone (the book build, a reader), one each
when pytest-xdist runs several side by side, because on a busy 2-core machine two torch threads per
process were measured 5-30x slower than one.

Seeds are ints in ``[0, 2**63-1]`` (:func:`check_seed`): the range every generator the book uses
accepts (``torch.Generator.manual_seed`` takes ``[-2**63, 2**64-1]``, remapping negative seeds,
NumPy's ``default_rng`` any int >= 0).

The budget's consequences for the chapters (how long one takes, which data set it trains on) are
the book's, in :mod:`vaelib.book`; the loaders in :mod:`vaelib.data` read no budget.
"""

from __future__ import annotations

import numbers
import os
import warnings
from functools import lru_cache
from typing import TypeVar

import torch

BUDGETS = ("smoke", "default", "full")
_TORCH_DEFAULT_THREADS = torch.get_num_threads()

T = TypeVar("T")


def budget() -> str:
    """Return the budget named by ``VAEBOOK_BUDGET`` (``smoke`` under CI when unset).

    Raises ``ValueError`` naming the three choices for any other value.
    """
    value = os.environ.get("VAEBOOK_BUDGET")
    if value is None or value == "":
        return "smoke" if os.environ.get("CI") else "default"
    value = value.strip().lower()
    if value not in BUDGETS:
        raise ValueError(
            f"VAEBOOK_BUDGET must be one of {', '.join(BUDGETS)}; got {os.environ['VAEBOOK_BUDGET']!r}"
        )
    return value


def threads() -> int:
    """The CPU thread count this process should use; :func:`apply_threads` applies it (reading it
    changes nothing).

    ``VAEBOOK_THREADS`` when set (a positive int); otherwise this process's share of the cores:
    the usable cores divided by the number of pytest-xdist workers running beside it, at least 1,
    and at most torch's own default (the physical cores).
    """
    value = os.environ.get("VAEBOOK_THREADS", "").strip()
    if value:
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"VAEBOOK_THREADS must be a positive integer; got {os.environ['VAEBOOK_THREADS']!r}")
        return int(value)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")
    workers = int(workers) if workers.isdigit() and int(workers) > 0 else 1
    return max(1, min(_TORCH_DEFAULT_THREADS, cores // workers))


def apply_threads() -> int:
    """Set torch's thread count, and the BLAS libraries' (numpy, scipy), to :func:`threads`; return it.

    Never done by importing vaelib: a chapter calls it through :func:`vaelib.book.header`, the tests'
    ``conftest.py`` once per process, anything else explicitly. The BLAS limit uses ``threadpoolctl`` (installed with
    scikit-learn; skipped without it), after loading numpy's and scipy's BLAS so that it reaches
    both: an unlimited BLAS pool beside another process was measured 12x slower on 2 cores (the
    digit judge of chapter 08: 34 s against 2.8 s with one thread).

    It also makes the CPU flush subnormal floats to zero (``torch.set_flush_denormal``), first, so
    that torch's worker threads, created later, inherit the setting. A Bernoulli decoder's
    gradient on a pixel it is sure of is ``sigmoid(logit)``, below float32's smallest normal
    number (1.2e-38) once the logit is below about -87; the CPU computes with such subnormal
    numbers many times more slowly, and chapter 07's beta sweep slowed from 17 s to 31-41 s an epoch
    as its decoders grew sure. Flushed, every epoch took 16-19 s, and the trained weights came out
    bit for bit the same (28 dSprites models after 4 epochs; a digit VAE after 150 epochs): values
    that small vanish in every sum they enter. :func:`denormals_flushed` checks it.
    """
    torch.set_flush_denormal(True)
    n = threads()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    if not denormals_flushed():
        warnings.warn(
            "torch's CPU worker threads were started before config.apply_threads(), so they do not flush "
            "subnormal floats to zero; training can run several times slower. Call it (or "
            "vaelib.book.header) before any torch computation.",
            RuntimeWarning,
            stacklevel=2,
        )
    try:
        import numpy  # noqa: F401  (loads numpy's BLAS)
        import scipy.linalg  # noqa: F401  (loads scipy's)
        from threadpoolctl import threadpool_limits
    except ImportError:
        return n
    threadpool_limits(limits=n, user_api="blas")
    return n


def denormals_flushed() -> bool:
    """Whether subnormal float32 results are flushed to zero on every one of torch's CPU threads.

    Multiplies 2**16 copies of 1e-20 by 1e-20 (a subnormal 1e-40 unless flushed); torch splits an
    element-wise product that long across its threads, so a thread without the setting leaves
    non-zero entries.
    """
    tiny = torch.full((1 << 16,), 1e-20, dtype=torch.float32) * 1e-20
    return not bool(tiny.any())


def by_budget(smoke: T, default: T, full: T) -> T:
    """Pick the value for the current budget: ``by_budget(smoke=2, default=50, full=500)``."""
    return {"smoke": smoke, "default": default, "full": full}[budget()]


@lru_cache(maxsize=1)
def device() -> torch.device:
    """The device every chapter uses, chosen once: ``cuda``, then ``mps``, then ``cpu``."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


#: The largest seed: seeds are ints in ``[0, SEED_MAX]`` (see :func:`check_seed`).
SEED_MAX = 2**63 - 1


def check_seed(seed, name: str = "seed") -> int:
    """``seed`` as a Python int, or an error naming ``name``: ``TypeError`` for anything but an int
    (a NumPy integer counts; a bool or a float does not), ``ValueError`` outside ``[0, 2**63-1]``.

    That range is what every generator the book seeds accepts as it is: ``torch.Generator.manual_seed``
    would silently remap a negative seed (-1 to 2**64-2) and refuses 2**64; NumPy refuses any negative seed.
    """
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"{name} must be an int; got {type(seed).__name__} {seed!r}")
    seed = int(seed)
    if not 0 <= seed <= SEED_MAX:
        raise ValueError(f"{name} must be in [0, 2**63-1] (= [0, {SEED_MAX}]); got {seed}")
    return seed


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's generators (all devices) with ``seed``, an int in ``[0, 2**63-1]``."""
    import random

    import numpy as np

    seed = check_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def describe() -> str:
    """One line for the top of every chapter: budget, device, torch version and the thread count in
    effect (torch's: :func:`apply_threads` sets it, so call that first, as :func:`vaelib.book.header` does)."""
    dev = device()
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else dev.type
    return f"budget={budget()}  device={name}  torch={torch.__version__}  threads={torch.get_num_threads()}"


def check_settings() -> str | None:
    """Apply the thread count, print :func:`describe`'s line and return None, or return the one-line
    error for a bad setting, ``VAEBOOK_BUDGET`` or ``VAEBOOK_THREADS`` (``make book`` runs this first,
    in a process of its own: ``sys.exit(config.check_settings())``; applying the count first makes the
    line show the threads the chapters will use)."""
    try:
        apply_threads()
        print(describe())
    except ValueError as err:
        return f"error: {err}"
    return None
