"""The one place the book reads its run-time settings: the budget and the device.

``VAEBOOK_BUDGET`` picks how much every training chapter trains:

* ``smoke``   -- seconds per chapter; what the tests use (the default when ``CI`` is set),
* ``default`` -- real results on a laptop CPU; what ``make book`` and Colab use,
* ``full``    -- paper-scale data and iterations, meant for a GPU.

The device is chosen once per process: CUDA, then Apple's MPS, then the CPU.

``VAEBOOK_THREADS`` sets the CPU thread count, here and nowhere else (:func:`threads`): torch's,
and that of the BLAS libraries numpy and scipy use (scikit-learn's classifiers run on them); it is
applied when vaelib is imported. Unset, a process takes its share of the cores: all of them when
it runs alone (the book build, a reader), one each when pytest-xdist runs several side by side,
because on a busy 2-core machine two torch threads per process were measured 5-30x slower than one.
"""

from __future__ import annotations

import os
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
    """torch's intra-op CPU thread count for this process.

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

    Done once when vaelib is imported. The BLAS limit uses ``threadpoolctl`` (installed with
    scikit-learn; skipped without it), after loading numpy's and scipy's BLAS so that it reaches
    both: an unlimited BLAS pool beside another process was measured 12x slower on 2 cores (the
    digit judge of chapter 08: 34 s against 2.8 s with one thread).
    """
    n = threads()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    try:
        import numpy  # noqa: F401  (loads numpy's BLAS)
        import scipy.linalg  # noqa: F401  (loads scipy's)
        from threadpoolctl import threadpool_limits
    except ImportError:
        return n
    threadpool_limits(limits=n, user_api="blas")
    return n


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


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's generators (all devices)."""
    import random

    import numpy as np

    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int; got {type(seed).__name__}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def describe() -> str:
    """One line for the top of every chapter: budget, device, torch version."""
    dev = device()
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else dev.type
    return f"budget={budget()}  device={name}  torch={torch.__version__}  threads={torch.get_num_threads()}"


# Seconds each training chapter took at the default budget: `make book` from a fresh clone on 2 quiet
# CPU cores, torch 2.13.0 (README, "Budgets"). Re-measure when a chapter's work changes.
MEASURED_SECONDS = {"06": 111, "07": 110, "08": 82, "09": 509, "10": 92}


def expected_time(chapter: str) -> str:
    """One line for the top of a training chapter: what its budget is expected to take here.

    From :data:`MEASURED_SECONDS` where the figure was measured (the default budget on a CPU);
    says so where it was not, and warns when the ``full`` budget is about to run on a CPU.
    """
    if chapter not in MEASURED_SECONDS:
        raise ValueError(f"chapter must be one of {sorted(MEASURED_SECONDS)}; got {chapter!r}")
    b, dev = budget(), device()
    if b == "smoke":
        return "expected time: seconds (the smoke budget only checks that the code runs)"
    if b == "default":
        s = MEASURED_SECONDS[chapter]
        took = f"{s} s" if s < 120 else f"{s / 60:.0f} minutes"
        where = "" if dev.type == "cpu" else f"; not measured on {dev.type}, where it should take less"
        return f"expected time: about {took} (measured on 2 CPU cores at the default budget{where})"
    if dev.type == "cpu":
        return ("WARNING: the full budget is meant for a GPU and has not been timed; on this CPU it will take "
                "many hours. Set VAEBOOK_BUDGET=default for real results in minutes.")
    return f"expected time: not measured for the full budget on {dev.type} yet (paper-scale training)"


def check_settings() -> str | None:
    """Print :func:`describe`'s line and return None, or return the one-line error for a bad setting
    (``make book`` runs this first: ``sys.exit(config.check_settings())``)."""
    try:
        print(describe())
    except ValueError as err:
        return f"error: {err}"
    return None


apply_threads()
