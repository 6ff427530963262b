"""Plant known bugs in vaelib, one at a time, and check that the tests catch each.

    python tools/plant_bugs.py     (from the repository root; `make test` runs it)

Each entry: a name, the file, the text as it is (found exactly once), the text with the bug, and the
tests that must fail. Each bug is planted in a copy of vaelib and the tests, never in the repository,
two at a time (PLANT_WORKERS). The script exits 1 when a bug can no longer be planted (its text is gone or ambiguous:
update this list with the code) or is not caught.
The bugs are the bookkeeping mistakes that leave every formula right (a wrong average, an unused
seed, a device chosen in the wrong place, a parameter read on the wrong scale) and one for each seam
between the parts: the batched loop diverging from the plain one, a model's own KL, a stacked loss.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
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
]


def plant(bug, workdir: Path):
    """Copy the library and its tests into ``workdir``, plant ``bug`` in the copy, and run its tests there.

    The repository itself is never edited, so the audit can run beside anything else. Returns
    ``(name, status, detail)``."""
    name, rel, before, after, tests = bug
    src = (ROOT / rel).read_text()
    if src.count(before) != 1:
        return name, "CANNOT PLANT", (f"the text to change stands {src.count(before)} times in {rel} (expected "
                                      f"once); update tools/plant_bugs.py with the code")
    for part in ("vaelib", "tests"):
        shutil.copytree(ROOT / part, workdir / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", workdir)
    (workdir / rel).write_text(src.replace(before, after))
    # the copy comes first on sys.path (the working directory), before the installed vaelib: checked, then the tests
    code = (f"import sys, vaelib, pytest; sys.exit(3 if not vaelib.__file__.startswith({str(workdir)!r}) else "
            f"pytest.main(['-q', '-x', '-p', 'no:cacheprovider', {tests!r}]))")
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "VAEBOOK_THREADS": "1"}
    r = subprocess.run([sys.executable, "-c", code], cwd=workdir, env=env, capture_output=True, text=True)
    last = (r.stdout.strip().splitlines() or ["no output"])[-1]
    # exit 1: a test failed, the bug is caught; 0: missed; 2-5: the tests could not run at all
    return name, {0: "MISSED", 1: "caught"}.get(r.returncode, "NOT RUN"), f"{tests.split('::')[-1]} ({last})"


def main() -> int:
    t0 = time.perf_counter()
    workers = int(os.environ.get("PLANT_WORKERS", "2"))  # `make test` runs it beside the book build with 1
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(max_workers=workers) as pool:
        dirs = [Path(tmp) / str(i) for i in range(len(BUGS))]
        results = list(pool.map(plant, BUGS, dirs))
    for name, status, detail in results:
        print(f"{name}: {status}: {detail}")
    caught = sum(status == "caught" for _, status, _ in results)
    print(f"{caught} of {len(BUGS)} planted bugs caught ({time.perf_counter() - t0:.0f} s)")
    return 0 if caught == len(BUGS) else 1


if __name__ == "__main__":
    sys.exit(main())
