"""Run every chapter under nbval in a kernel like a reader's Colab runtime, and fail on any that needs the book's tooling.

    .venv/bin/python tests_book/colab_like.py [notebooks/01_x.ipynb ...]     # default: every notebooks/*.ipynb

What "like Colab" means here:
- a separate virtual environment (``_build/venv-colab``, made once and reused; ``--fresh`` remakes it)
  holding only what Colab preinstalls and the chapters may use: torch (``$TORCH_SPEC``, the CPU wheel
  here), numpy, scipy, matplotlib, sympy, scikit-learn, tqdm, and ipykernel/nbclient/nbformat to run a notebook;
  no myst-nb, jupyter-book, pytest, nbval, PyYAML-based tools;
- vaelib installed into it as a package, from a copy of the package's files (``pip install <copy>``,
  not editable), as the Colab cell's ``pip install git+<repository>`` would;
- a Jupyter kernel (``vaebook-colab-like``) whose Python is that environment's;
- each notebook copied into its own empty temporary directory outside the repository and executed
  there, cell by cell, by nbval (``pytest --nbval-lax``, run from the book's own environment, which
  only drives the kernel) at ``VAEBOOK_BUDGET=smoke`` (unless set), with no PYTHONPATH, so
  ``tools/``, ``tests/`` and relative paths into the repository are out of reach;
- after the chapter's last cell one more cell checks that the kernel ran in the Colab-like
  environment, that vaelib came from its site-packages and that no book tooling was imported.

This is CI's nbval run of the chapters (the book build executes them a second time, with the locked
versions of ``constraints.txt``; here Colab's set is whatever pip resolves today). The notebooks run
``--jobs`` at a time (default 2, pytest-xdist, one notebook per worker). The last line reads
``colab-like: N passed, M failed``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import venv
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / "_build" / "venv-colab"
# What Colab has preinstalled that a chapter may use (plus the notebook runner); torch comes first, alone.
COLAB_PACKAGES = ["numpy", "scipy", "matplotlib", "sympy", "scikit-learn", "tqdm", "ipykernel", "nbclient", "nbformat"]
# Importable in the book's own environment, absent from Colab: a chapter must not touch them.
BOOK_ONLY = ["myst_nb", "jupyter_book", "sphinx", "nbval", "pytest", "tools", "tests"]
STAMP = VENV / ".colab-like-installed"
KERNEL = "vaebook-colab-like"

CHECK_CELL = f"""
import sys, vaelib
assert sys.prefix == {str(VENV)!r}, f"the kernel runs in {{sys.prefix}}, not the Colab-like environment"
assert "site-packages" in vaelib.__file__, f"vaelib imported from {{vaelib.__file__}}, not the installed package"
_leaked = [m for m in {BOOK_ONLY!r} if m in sys.modules]
assert not _leaked, f"the chapter imported book tooling: {{_leaked}}"
"""

def vpy() -> Path:
    return VENV / "bin" / "python"


def pip(*args: str) -> None:
    # --no-compile: as the book's own environment (Makefile), the modules are compiled when first imported
    subprocess.run([str(vpy()), "-m", "pip", "install", "-q", "--no-compile", *args], check=True)


def set_kernel_priority(spec: Path, group_nice: int | None) -> None:
    """Start the kernel at low CPU priority (``group_nice``), or plainly (None).

    A Jupyter kernel runs in a session of its own, and under the scheduler's autogroups a session
    gets an equal share of the CPU whatever its processes' nice values (see ``tools/lowprio.py``).
    So the kernel's command first sets its own session's autogroup nice, then becomes the kernel
    (``exec``: same process, same Python); where that cannot be set, it starts all the same."""
    kernel = json.loads(spec.read_text())
    # the plain command: as `ipykernel install` wrote it, or after the wrapper's four words
    plain = kernel["argv"][4:] if kernel["argv"][0] == "/bin/sh" else kernel["argv"]
    if group_nice is None:
        kernel["argv"] = plain
    else:
        wrapper = 'echo "$0" > /proc/self/autogroup 2>/dev/null; exec nice -n 10 "$@"'
        kernel["argv"] = ["/bin/sh", "-c", wrapper, str(group_nice), *plain]
    spec.write_text(json.dumps(kernel, indent=1) + "\n")


def ensure_venv(fresh: bool, group_nice: int | None = None) -> None:
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
    spec = VENV / "share" / "jupyter" / "kernels" / KERNEL / "kernel.json"
    if not spec.exists():
        # the kernel nbval starts: this environment's Python (ipykernel is among Colab's packages)
        subprocess.run([str(vpy()), "-m", "ipykernel", "install", "--prefix", str(VENV), "--name", KERNEL,
                        "--display-name", "Colab-like"], check=True, stdout=subprocess.DEVNULL)
    set_kernel_priority(spec, group_nice)
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


def save_executed(executed: Path, notebooks: list[Path], dest: Path) -> None:
    """Each notebook of the repository with the outputs nbval gave its copy (``executed``, written by
    ``nbval_capture.py``), code cell by code cell, the appended check cell left out, into ``dest``."""
    import nbformat

    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    for original in notebooks:
        ran = nbformat.read(executed / original.name, as_version=4)
        nb = nbformat.read(original, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        done = [c for c in ran.cells if c.cell_type == "code"][: len(code)]
        if [c.source for c in code] != [c.source for c in done]:
            raise RuntimeError(f"{original.name}: the executed copy's code cells differ from the notebook's")
        for cell, out in zip(code, done, strict=True):
            cell.outputs, cell.execution_count = out.outputs, out.execution_count
        # what nbclient records about the kernel's language, which the book's code highlighting reads
        nb.metadata["language_info"] = {"name": "python", "pygments_lexer": "ipython3",
                                        "codemirror_mode": {"name": "ipython", "version": 3},
                                        "file_extension": ".py", "mimetype": "text/x-python"}
        nbformat.write(nb, dest / original.name)


def run_nbval(notebooks: list[Path], jobs: int, timeout: int,
              save: Path | None = None) -> tuple[int, dict[str, tuple[bool, float]]]:
    """nbval over a copy of each notebook (its own empty folder, the check cell appended) in the Colab-like kernel.

    Returns pytest's exit status and, per notebook, whether every cell passed and the seconds its cells took.
    With ``save``, and every notebook passed, the repository's notebooks with nbval's outputs go there
    (``save_executed``), for the book build to take instead of executing them again."""
    import nbformat

    with tempfile.TemporaryDirectory(prefix="colab-like-") as work:
        copies = []
        for nb in notebooks:
            folder = Path(work) / nb.stem
            folder.mkdir()
            book = nbformat.read(nb, as_version=4)
            book.cells.append(nbformat.v4.new_code_cell(CHECK_CELL.strip()))
            nbformat.write(book, folder / nb.name)
            copies.append(str(folder / nb.name))
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
        env.setdefault("VAEBOOK_BUDGET", "smoke")
        env["PATH"] = f"{VENV / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        env["JUPYTER_PATH"] = str(VENV / "share" / "jupyter")  # where the kernel's spec is
        if save is not None:  # nbval's outputs kept (a conftest of the run's own folder, not the kernel's)
            shutil.copy(Path(__file__).with_name("nbval_capture.py"), Path(work) / "conftest.py")
            env["NBVAL_CAPTURE_DIR"] = str(Path(work) / "executed")
            env["VAEBOOK_GLUE"] = "1"  # the chapters glue as in a book build (vaelib.book._gluing)
        report = Path(work) / "report.xml"
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", work, "-o", "addopts=",
               "--nbval-lax", "--nbval-kernel-name", KERNEL, "--nbval-cell-timeout", str(timeout),
               f"--junitxml={report}", *(["-n", str(jobs), "--dist", "loadfile"] if jobs > 1 else ["-p", "no:xdist"]),
               *copies]
        code = subprocess.run(cmd, cwd=work, env=env).returncode
        if save is not None:
            shutil.rmtree(save, ignore_errors=True)  # nothing of an earlier run survives a failed one
            if code == 0:
                save_executed(Path(work) / "executed", notebooks, save)
        # per notebook: all passed, seconds, cells reported (a test's classname is "<folder>.<notebook file>")
        per_nb: dict[str, list] = {nb.name: [True, 0.0, 0] for nb in notebooks}
        cases = ET.parse(report).getroot().iter("testcase") if report.exists() else []
        for case in cases:
            row = per_nb.get((case.get("classname") or "").split(".", 1)[-1])
            if row is None:
                continue
            row[1] += float(case.get("time") or 0.0)
            row[2] += 1
            if case.find("failure") is not None or case.find("error") is not None:
                row[0] = False
    # a notebook none of whose cells was reported did not run
    return code, {k: (ok and n > 0, secs) for k, (ok, secs, n) in per_nb.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("notebooks", nargs="*", type=Path)
    ap.add_argument("--jobs", type=int, default=int(os.environ.get("COLAB_JOBS", "2")))
    ap.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    ap.add_argument("--fresh", action="store_true", help="remake the environment")
    ap.add_argument("--setup-only", action="store_true", help="make the environment, run nothing")
    ap.add_argument("--save-executed", type=Path, default=None,
                    help="write the notebooks with nbval's outputs here when all pass (for the book build)")
    ap.add_argument("--kernel-group-nice", type=int, default=None,
                    help="run the kernels at this autogroup nice (19: below everything else; see tools/lowprio.py)")
    args = ap.parse_args()
    if args.setup_only:
        ensure_venv(args.fresh, args.kernel_group_nice)
        return 0
    notebooks = [p.resolve() for p in args.notebooks] or sorted((ROOT / "notebooks").glob("*.ipynb"))
    if not notebooks:
        print("colab-like: no notebooks found")
        return 1
    ensure_venv(args.fresh, args.kernel_group_nice)
    print(f"colab-like: nbval over {len(notebooks)} notebook(s), {args.jobs} at a time, "
          f"VAEBOOK_BUDGET={os.environ.get('VAEBOOK_BUDGET', 'smoke')}", flush=True)
    save = args.save_executed.resolve() if args.save_executed else None
    code, per_nb = run_nbval(notebooks, args.jobs, args.timeout, save)
    for name, (ok, secs) in per_nb.items():
        print(f"  {'PASS' if ok else 'FAIL'} {name} ({secs:.0f} s)", flush=True)
    failed = [name for name, (ok, _) in per_nb.items() if not ok]
    print(f"colab-like: {len(notebooks) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed or code != 0 else 0


if __name__ == "__main__":
    sys.exit(main())
