"""Plant each bookkeeping bug of issue 9 in vaelib, one at a time, and check that the tests catch it.

    python tools/plant_bugs.py     (from the repository root; restores every file; exit 1 if a bug is missed)

Each entry: a name, the file, the line as it is, the line with the bug, and the tests that must fail.
"""

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

MUT = [  # name, file, the line as it is, the line with the bug, the tests that must catch it
    (
        'epoch sum',
        'vaelib/train.py',
        'for i, val in enumerate((v / n_batches).tolist()):',
        'for i, val in enumerate((v).tolist()):',
        'tests/test_bookkeeping.py',
    ),
    (
        'evaluate equal batches',
        'vaelib/train.py',
        'sums[key] = sums.get(key, 0.0) + v * len(rows)',
        'sums[key] = sums.get(key, 0.0) + v * n / -(-n // batch_size)',
        'tests/test_bookkeeping.py',
    ),
    (
        'eps global',
        'vaelib/train.py',
        'torch.randn(b, stack.latent_dim, generator=g, device=x.device',
        'torch.randn(b, stack.latent_dim, device=x.device',
        'tests/test_bookkeeping.py',
    ),
    (
        'shuffle global',
        'vaelib/train.py',
        'torch.randperm(n, device=device, generator=g)',
        'torch.randperm(n, device=device)',
        'tests/test_bookkeeping.py',
    ),
    (
        'device ignored',
        'vaelib/train.py',
        'device = _check_device(device) if device is not None else config.device()',
        'device = config.device()',
        'tests/test_bookkeeping.py',
    ),
    (
        'device per batch',
        'vaelib/train.py',
        '            x, y, eps = _draw(stack, data, perm[:, b * batch_size',
        '            config.device()\n            x, y, eps = _draw(stack, data, perm[:, b * batch_size',
        'tests/test_bookkeeping.py',
    ),
    (
        'logvar as logstd',
        'vaelib/models.py',
        'scale = torch.exp(0.5 * logvar)',
        'scale = torch.exp(logvar)',
        'tests/test_bookkeeping.py',
    ),
    (
        'cvae kl N(0,I) in training',
        'vaelib/objectives.py',
        'kl = gaussian_kl(out.mu, out.logvar, *model.prior(y), check=False)',
        'kl = gaussian_kl(out.mu, out.logvar, check=False)',
        'tests/test_bookkeeping.py',
    ),
    (
        'cvae kl N(0,I) in elbo',
        'vaelib/objectives.py',
        'kl = gaussian_kl(out.mu, out.logvar, prior_mu, prior_logvar, check=check)',
        'kl = gaussian_kl(out.mu, out.logvar, check=check)',
        'tests/test_bookkeeping.py',
    ),
    (
        'AE noise in eval',
        'vaelib/models.py',
        'if (self.training and self.input_noise) else z',
        'if self.input_noise else z',
        'tests/test_bookkeeping.py',
    ),
    (
        'MIG by log K',
        'vaelib/metrics.py',
        '        h = _factor_entropy(factors[:, k], k)\n',
        '        h = float(np.log(len(np.unique(factors[:, k]))))\n',
        'tests/test_metrics.py',
    ),
]


def main() -> int:
    missed = 0
    backup = Path(tempfile.mkdtemp()) / "original"
    for name, path, before, after, tests in MUT:
        path = ROOT / path
        src = path.read_text()
        if before not in src:
            print(f"{name}: the line to change is no longer in {path.name}; update this list")
            missed += 1
            continue
        shutil.copy(path, backup)
        try:
            path.write_text(src.replace(before, after))
            r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", tests],
                               cwd=ROOT, capture_output=True, text=True)
            caught = r.returncode == 1  # tests failed (not an error collecting them)
            missed += not caught
            print(f"{name}: {'caught' if caught else 'MISSED'} ({r.stdout.strip().splitlines()[-1]})")
        finally:
            shutil.copy(backup, path)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
