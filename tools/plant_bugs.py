"""Plant known bugs in vaelib, one at a time, and check that the tests catch each.

    python tools/plant_bugs.py     (from the repository root; `make test` runs it)

Each entry: a name, the file, the text as it is (found exactly once), the text with the bug, and the
tests that must fail. Each bug is planted in a copy of vaelib and the tests, never in the repository,
and its tests run in a child process forked from this one once torch and the other libraries are
imported (PRELOAD), two at a time (PLANT_WORKERS). The script exits 1 when a bug can no longer be planted (its text is
gone or ambiguous: update this list with the code) or is not caught.
The bugs are the bookkeeping mistakes that leave every formula right (a wrong average, an unused
seed, a device chosen in the wrong place, a parameter read on the wrong scale) and one for each seam
between the parts: the batched loop diverging from the plain one, a model's own KL, a stacked loss.
"""

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BK = "tests/test_bookkeeping.py::"

BUGS = [  # name, file, the text as it is, the text with the bug, the tests that must catch it
    ("epoch sum, not mean", "vaelib/train.py",
     "means = {k: (v / n_batches).item()", "means = {k: (v).item()",
     BK + "test_the_epoch_history_is_the_mean_of_the_batch_losses"),
    ("evaluate weighs batches equally", "vaelib/train.py",
     "sums[key] = sums.get(key, 0.0) + v * len(x)",
     "sums[key] = sums.get(key, 0.0) + v * len(data) / -(-len(data) // batch_size)",
     BK + "test_evaluate_weights_a_partial_last_batch_by_its_size"),
    ("noise from the global generator", "vaelib/train.py",
     "            eps = torch.randn(len(x), model.latent_dim, generator=gen,",
     "            eps = torch.randn(len(x), model.latent_dim,",
     BK + "test_fit_follows_its_own_seed_not_the_global_generator"),
    ("shuffle with the global generator", "vaelib/train.py",
     "order = torch.randperm(n, device=device, generator=gen)", "order = torch.randperm(n, device=device)",
     BK + "test_fit_follows_its_own_seed_not_the_global_generator"),
    ("device argument ignored", "vaelib/_fitting.py",
     "device = _check_device(device) if device is not None else config.device()", "device = config.device()",
     BK + "test_fit_takes_its_device_from_the_argument_else_once_from_config"),
    ("device asked per batch", "vaelib/train.py",
     "            rows = order[b * batch_size",
     "            __import__('vaelib').config.device()\n            rows = order[b * batch_size",
     BK + "test_fit_takes_its_device_from_the_argument_else_once_from_config"),
    ("log-variance read as log-std", "vaelib/models.py",
     "scale = torch.exp(0.5 * logvar)", "scale = torch.exp(logvar)",
     BK + "test_the_gaussian_decoder_variance_is_exp_of_its_log_variance"),
    ("CVAE's KL to N(0, I)", "vaelib/models.py",
     "terms = kl_terms(out.mu, out.logvar, *self.prior(y))", "terms = kl_terms(out.mu, out.logvar)",
     BK + "test_the_class_mean_cvae_kl_is_to_its_class_prior"),
    ("AE's input noise left on in eval", "vaelib/models.py",
     "if (self.training and self.input_noise) else z", "if self.input_noise else z",
     BK + "test_the_autoencoders_input_noise_is_off_in_eval_mode"),
    ("MIG normalised by log K", "vaelib/disentangle.py",
     "        h = _factor_entropy(factors[:, k], k)\n        mi = np.sort(",
     "        h = float(np.log(len(np.unique(factors[:, k]))))\n        mi = np.sort(",
     "tests/test_disentangle.py::test_mig_of_a_non_uniform_factor_uses_its_empirical_entropy"),
    # the seams
    ("a model's KL averaged over its dimensions", "vaelib/models.py",
     "        terms = kl_terms(out.mu, out.logvar)\n        return terms if per_dim else terms.sum(-1)",
     "        terms = kl_terms(out.mu, out.logvar)\n        return terms if per_dim else terms.mean(-1)",
     BK + "test_the_vaes_own_kl_is_to_the_standard_normal_from_its_encoder"),
    ("a stacked loss takes member 0's hyperparameters", "vaelib/objectives.py",
     "torch.tensor([float(getattr(o, name)) for o in objectives]",
     "torch.tensor([float(getattr(objectives[0], name)) for o in objectives]",
     "tests/test_objectives.py::test_the_stacked_loss_is_each_members_own_loss"),
    ("the batched loop shuffles every member alike", "vaelib/batched.py",
     "torch.randperm(n, device=device, generator=g) for g in gens",
     "torch.randperm(n, device=device, generator=gens[0]) for g in gens",
     "tests/test_fit_many.py::test_vae_members_with_different_betas_are_their_own_fit_runs"),
    ("the batched loop draws every member's noise from one generator", "vaelib/batched.py",
     "generator=g, device=x.device, dtype=stack.dtype)\n                       for g in gens",
     "generator=gens[0], device=x.device, dtype=stack.dtype)\n                       for g in gens",
     "tests/test_fit_many.py::test_cvae_members_are_their_own_fit_runs"),
    ("the fourth CVAE arm's decoder follows the prior, not decoder_label", "vaelib/models.py",
     "inp = torch.cat([z, self._onehot(y)], dim=1) if self.decoder_label else z",
     "inp = torch.cat([z, self._onehot(y)], dim=1) if self.prior_kind == \"conditional\" else z",
     BK + "test_the_fourth_cvae_arm_conditions_only_its_decoder"),
    ("memorisation measured against the test images", "vaelib/judge.py",
     "return float(np.median(nearest_distances(samples, train)) / d_test)",
     "return float(np.median(nearest_distances(samples, test)) / d_test)",
     "tests/test_judge.py::test_memorisation_ratio_separates_copies_from_new_images"),
    ("the importance-weighted mean divides by the last chunk, not k", "vaelib/estimates.py",
     "    return running - math.log(k)\n", "    return running - math.log(c)\n",
     "tests/test_estimates.py::test_iwae_is_exact_when_the_posterior_is_exact"),
    ("the two-layer weight leaves out the conditional prior", "vaelib/hierarchical.py",
     "                + _normal_logpdf(z1, pm, plv)\n", "",
     "tests/test_hierarchical.py::test_at_the_exact_posterior_every_weight_is_the_evidence"),
    ("a refined schedule restarts its noise at the second step", "vaelib/diffusion.py",
     "    prev = torch.cat([torch.ones(1, dtype=torch.float64), ab_new[:-1]])",
     "    prev = torch.cat([ab_new[:1], ab_new[:-1]])",
     "tests/test_diffusion.py::test_a_refined_schedule_keeps_both_ends_of_the_noise_and_follows_its_curve"),
]


# What the library and its tests import from outside: loaded once, here, before the copies are forked, so
# that each bug costs its tests and not another start of torch (vaelib itself is never imported here).
PRELOAD = ("torch", "torch.distributions", "torch.func", "numpy", "scipy.linalg", "scipy.stats", "sklearn.linear_model",
           "sklearn.neighbors", "sklearn.neural_network", "sklearn.metrics", "sklearn.datasets", "matplotlib.pyplot",
           "threadpoolctl", "IPython.display", "tqdm.std", "pytest")


def _preload() -> None:
    """Import PRELOAD with one torch thread, before any worker thread exists (a fork copies none)."""
    import importlib

    os.environ["VAEBOOK_THREADS"] = "1"
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # the tests need no plugin: none is loaded
    os.environ.setdefault("MPLBACKEND", "Agg")
    for name in PRELOAD:
        importlib.import_module(name)
    import torch

    torch.set_num_threads(1)
    assert "vaelib" not in sys.modules, "vaelib was imported before the copies: a bug would run the original"


def _run_tests(workdir: Path, tests: str) -> int:
    """In a forked child: import vaelib from ``workdir`` (checked) and run ``tests`` there; the exit status."""
    os.chdir(workdir)
    sys.path.insert(0, str(workdir))
    import pytest

    import vaelib

    if not vaelib.__file__.startswith(str(workdir)):
        return 3
    return int(pytest.main(["-q", "-x", "-p", "no:cacheprovider", tests]))


def _prepare(bug, workdir: Path) -> str | None:
    """Copy the library and its tests into ``workdir`` and plant ``bug`` in the copy; why not, if it cannot be."""
    name, rel, before, after, tests = bug
    src = (ROOT / rel).read_text()
    if src.count(before) != 1:
        return (f"the text to change stands {src.count(before)} times in {rel} (expected once); update "
                f"tools/plant_bugs.py with the code")
    for part in ("vaelib", "tests"):
        shutil.copytree(ROOT / part, workdir / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", workdir)
    (workdir / rel).write_text(src.replace(before, after))
    return None


def _fork(workdir: Path, tests: str) -> int:
    """Run ``tests`` against the copy in ``workdir`` in a child forked from this process; the child's pid.

    The child writes its output to ``workdir/log`` and ends with pytest's exit status, never returning here."""
    pid = os.fork()
    if pid:
        return pid
    code = 4
    try:
        fd = os.open(workdir / "log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        code = _run_tests(workdir, tests)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def main() -> int:
    t0 = time.perf_counter()
    workers = max(1, int(os.environ.get("PLANT_WORKERS", "2")))  # `make test` runs it beside the book build with 1
    _preload()  # before any child, in this thread alone: the children are forked from a single-threaded process
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        queue = []
        for i, bug in enumerate(BUGS):
            workdir = Path(tmp) / str(i)
            why = _prepare(bug, workdir)
            if why is not None:
                results[i] = ("CANNOT PLANT", why)
            else:
                queue.append(i)
        running = {}  # pid -> bug index
        while queue or running:
            while queue and len(running) < workers:
                i = queue.pop(0)
                running[_fork(Path(tmp) / str(i), BUGS[i][4])] = i
            pid, status = os.wait()
            i = running.pop(pid)
            code = os.waitstatus_to_exitcode(status)
            log = (Path(tmp) / str(i) / "log").read_text().splitlines()
            last = ([ln for ln in log if ln.strip()] or ["no output"])[-1]
            # exit 1: a test failed, the bug is caught; 0: missed; 2-5 (or a signal): the tests could not run
            status_word = {0: "MISSED", 1: "caught"}.get(code, "NOT RUN")
            results[i] = (status_word, f"{BUGS[i][4].split('::')[-1]} ({last})")
    for i, bug in enumerate(BUGS):
        print(f"{bug[0]}: {results[i][0]}: {results[i][1]}")
    caught = sum(status == "caught" for status, _ in results.values())
    print(f"{caught} of {len(BUGS)} planted bugs caught ({time.perf_counter() - t0:.0f} s)")
    return 0 if caught == len(BUGS) else 1


if __name__ == "__main__":
    sys.exit(main())
