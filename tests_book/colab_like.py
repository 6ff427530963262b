"""Run every chapter the way a reader's Colab runtime would, and fail on any that needs the book's tooling.

    python3 tests_book/colab_like.py [notebooks/01_x.ipynb ...]     # default: every notebooks/*.ipynb

What "like Colab" means here:
- a separate virtual environment (``_build/venv-colab``, made once and reused; ``--fresh`` remakes it)
  holding only what Colab preinstalls and the chapters may use: torch (``$TORCH_SPEC``, the CPU wheel
  here), numpy, scipy, matplotlib, sympy, scikit-learn, tqdm, and ipykernel/nbclient/nbformat to run a notebook;
  no myst-nb, jupyter-book, pytest, nbval, PyYAML-based tools;
- vaelib installed into it as a package, from a copy of the package's files (``pip install <copy>``,
  not editable), as the Colab cell's ``pip install git+<repository>`` would;
- each notebook copied into its own empty temporary directory outside the repository and executed
  there by nbclient at ``VAEBOOK_BUDGET=smoke`` (unless set), with no PYTHONPATH, so ``tools/``,
  ``tests/`` and relative paths into the repository are out of reach;
- after the chapter's last cell one more cell checks that vaelib came from site-packages and that
  no book tooling was imported.

The notebooks run ``--jobs`` at a time (default 2). The last line reads ``colab-like: N passed, M failed``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import venv
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / "_build" / "venv-colab"
# What Colab has preinstalled that a chapter may use (plus the notebook runner); torch comes first, alone.
COLAB_PACKAGES = ["numpy", "scipy", "matplotlib", "sympy", "scikit-learn", "tqdm", "ipykernel", "nbclient", "nbformat"]
# Importable in the book's own environment, absent from Colab: a chapter must not touch them.
BOOK_ONLY = ["myst_nb", "jupyter_book", "sphinx", "nbval", "pytest", "tools", "tests"]
STAMP = VENV / ".colab-like-installed"

CHECK_CELL = f"""
import sys, vaelib
assert sys.prefix == {str(VENV)!r}, f"the kernel runs in {{sys.prefix}}, not the Colab-like environment"
assert "site-packages" in vaelib.__file__, f"vaelib imported from {{vaelib.__file__}}, not the installed package"
_leaked = [m for m in {BOOK_ONLY!r} if m in sys.modules]
assert not _leaked, f"the chapter imported book tooling: {{_leaked}}"
"""

RUNNER = """
import sys, nbformat
from nbclient import NotebookClient
path, workdir, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3])
nb = nbformat.read(path, as_version=4)
nb.cells.append(nbformat.v4.new_code_cell(sys.argv[4]))
NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": workdir}}).execute()
"""


def vpy() -> Path:
    return VENV / "bin" / "python"


def pip(*args: str) -> None:
    subprocess.run([str(vpy()), "-m", "pip", "install", "-q", *args], check=True)


def ensure_venv(fresh: bool) -> None:
    if fresh and VENV.exists():
        shutil.rmtree(VENV)
    if not STAMP.exists():
        t = time.time()
        print(f"colab-like: creating {VENV.relative_to(ROOT)} ...", flush=True)
        venv.create(VENV, with_pip=True, clear=True)
        pip(os.environ.get("TORCH_SPEC", "torch==2.13.0"))
        pip(*COLAB_PACKAGES)
        STAMP.write_text("ok\n")
        print(f"colab-like: environment ready in {time.time() - t:.0f} s", flush=True)
    # vaelib: always reinstalled from a copy of the package files, so the build leaves nothing in the tree.
    with tempfile.TemporaryDirectory(prefix="vaelib-src-") as src:
        for name in ("pyproject.toml", "README.md"):
            if (ROOT / name).exists():
                shutil.copy(ROOT / name, src)
        shutil.copytree(ROOT / "vaelib", Path(src) / "vaelib", ignore=shutil.ignore_patterns("__pycache__"))
        pip("--force-reinstall", "--no-deps", src)
    # vaelib's own dependencies must be met by Colab's set alone (it was installed with --no-deps).
    subprocess.run([str(vpy()), "-m", "pip", "check"], check=True, stdout=subprocess.DEVNULL)
    leaked = subprocess.run(
        [str(vpy()), "-c", f"import importlib.util as u; print([m for m in {BOOK_ONLY[:5]!r} if u.find_spec(m)])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    assert leaked == "[]", f"the Colab-like environment has book tooling installed: {leaked}"


def run_one(nb: Path, timeout: int) -> tuple[str, bool, float, str]:
    t = time.time()
    with tempfile.TemporaryDirectory(prefix=f"colab-{nb.stem}-") as work:
        copy = Path(work) / nb.name
        shutil.copy(nb, copy)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
        env.setdefault("VAEBOOK_BUDGET", "smoke")
        env["PATH"] = f"{VENV / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        proc = subprocess.run(
            [str(vpy()), "-c", RUNNER, str(copy), work, str(timeout), CHECK_CELL],
            cwd=work, env=env, capture_output=True, text=True,
        )
    return nb.name, proc.returncode == 0, time.time() - t, (proc.stdout + proc.stderr)[-6000:]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("notebooks", nargs="*", type=Path)
    ap.add_argument("--jobs", type=int, default=int(os.environ.get("COLAB_JOBS", "2")))
    ap.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    ap.add_argument("--fresh", action="store_true", help="remake the environment")
    ap.add_argument("--setup-only", action="store_true", help="make the environment, run nothing")
    args = ap.parse_args()
    if args.setup_only:
        ensure_venv(args.fresh)
        return 0
    notebooks = [p.resolve() for p in args.notebooks] or sorted((ROOT / "notebooks").glob("*.ipynb"))
    if not notebooks:
        print("colab-like: no notebooks found")
        return 1
    ensure_venv(args.fresh)
    print(f"colab-like: running {len(notebooks)} notebook(s), {args.jobs} at a time, "
          f"VAEBOOK_BUDGET={os.environ.get('VAEBOOK_BUDGET', 'smoke')}", flush=True)
    failed = []
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for name, ok, secs, log in pool.map(lambda nb: run_one(nb, args.timeout), notebooks):
            print(f"  {'PASS' if ok else 'FAIL'} {name} ({secs:.0f} s)", flush=True)
            if not ok:
                failed.append(name)
                print("    " + log.replace("\n", "\n    "), flush=True)
    print(f"colab-like: {len(notebooks) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
