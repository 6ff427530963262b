"""Prepare the Pyodide that the book's in-browser chapters run on, served from the book's own site.

    python tools/lite_pyodide.py [OUT]          # default OUT: _build/lite-dir (what `make pyodide` runs)

jupyterlite-pyodide-kernel does not bundle Pyodide: by default the kernel loads it, and every package
it installs, from a CDN. This script makes a Pyodide that needs nothing outside the book:

1. the core (``pyodide.mjs``, ``pyodide.asm.*``, ``python_stdlib.zip``, ``pyodide-lock.json``) from the
   npm package ``pyodide``, at the version the kernel was built for
   (``jupyterlite_pyodide_kernel.constants.PYODIDE_VERSION``);
2. the packages the kernel and the chapters' SymPy cells load (the closure of ``ROOTS`` through the
   lock's ``depends``): every one is pure Python, so its wheel comes from PyPI at the lock's version;
3. a ``pyodide-lock.json`` reduced to exactly those packages, each entry's ``sha256`` (and file name)
   set to the PyPI wheel's: Pyodide re-packs its pure-Python wheels, so the hashes in the npm lock
   do not match PyPI's files and Pyodide would refuse them. Entries for files the site does not
   serve are dropped, so nothing can send Pyodide looking elsewhere;
4. ``piplite`` wheels the kernel installs that the lock lacks (``comm``), and a ``jupyter-lite.json``
   that turns off the kernel's fallback to PyPI.

OUT then holds ``static/pyodide/`` (JupyterLite's well-known place for a local Pyodide, copied into the
site by the lite build), ``wheels/`` and the two JupyterLite config files; ``book_lite.py`` points
jupyterlite-sphinx at it. Downloads (npm, pip) are cached in ``OUT/../lite-cache``; a second run is
offline. Any failure raises with what was expected and what came.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

from jupyterlite_pyodide_kernel.constants import PYODIDE_PYTHON_VERSION, PYODIDE_VERSION

ROOT = Path(__file__).resolve().parent.parent
CORE = ("pyodide.mjs", "pyodide.asm.mjs", "pyodide.asm.wasm", "python_stdlib.zip", "pyodide-lock.json")
# micropip: the kernel's installer; ipython, jedi: what pyodide-kernel installs at start; sympy: the chapters
ROOTS = ("micropip", "ipython", "jedi", "sympy")
# installed by the kernel through piplite, not in Pyodide's lock: name -> version
PIPLITE_EXTRA = {"comm": "0.2.3"}
KERNEL_PLUGIN = "@jupyterlite/pyodide-kernel-extension:kernel"


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run(cmd: list[str], cwd: Path) -> None:
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")


def npm_core(cache: Path, dest: Path) -> None:
    """The npm package pyodide@PYODIDE_VERSION's core files into dest."""
    tgz = cache / f"pyodide-{PYODIDE_VERSION}.tgz"
    if not tgz.is_file():
        run(["npm", "pack", "--silent", f"pyodide@{PYODIDE_VERSION}", "--pack-destination", str(cache)], cache)
    with tarfile.open(tgz) as tar:
        members = {m.name.removeprefix("package/"): m for m in tar.getmembers()}
        missing = [f for f in CORE if f not in members]
        if missing:
            raise RuntimeError(f"{tgz.name}: expected the Pyodide core files {CORE}, missing {missing}")
        for name in CORE:
            (dest / name).write_bytes(tar.extractfile(members[name]).read())


def closure(packages: dict, roots) -> list[str]:
    by_norm = {norm(k): k for k in packages}
    seen: list[str] = []
    stack = list(roots)
    while stack:
        name = stack.pop()
        if norm(name) not in by_norm:
            raise RuntimeError(f"pyodide-lock.json {PYODIDE_VERSION}: no package {name!r} (needed by the kernel)")
        key = by_norm[norm(name)]
        if key not in seen:
            seen.append(key)
            stack.extend(packages[key]["depends"])
    return sorted(seen)


def pypi_wheel(name: str, version: str, cache: Path) -> Path:
    """The pure-Python wheel name==version from PyPI (pip's normal client), cached."""
    pattern = f"{norm(name).replace('-', '_')}-{version}-*.whl"
    found = [p for p in cache.glob("*.whl") if re.fullmatch(pattern.replace("*", ".*"), p.name, re.I)]
    if not found:
        run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
             "--python-version", PYODIDE_PYTHON_VERSION, "--platform", "any",
             "-d", str(cache), f"{name}=={version}"], cache)
        found = [p for p in cache.glob("*.whl") if re.fullmatch(pattern.replace("*", ".*"), p.name, re.I)]
    if len(found) != 1 or not found[0].name.endswith("-none-any.whl"):
        raise RuntimeError(f"{name}=={version}: expected one pure-Python wheel from PyPI, found {found}")
    return found[0]


def prepare(out: Path) -> dict:
    cache = out.parent / "lite-cache"
    cache.mkdir(parents=True, exist_ok=True)
    pyodide = out / "static" / "pyodide"
    wheels = out / "wheels"
    shutil.rmtree(out, ignore_errors=True)
    pyodide.mkdir(parents=True)
    wheels.mkdir()
    npm_core(cache, pyodide)

    lock = json.loads((pyodide / "pyodide-lock.json").read_text())
    packages = lock["packages"]
    keep = closure(packages, ROOTS)
    report = {"pyodide": PYODIDE_VERSION, "python": lock["info"]["python"], "packages": {}}
    for key in keep:
        entry = packages[key]
        if entry.get("package_type", "package") != "package" or entry.get("shared_library"):
            raise RuntimeError(f"{key}: expected a Python package in the lock, got {entry.get('package_type')}")
        wheel = pypi_wheel(entry["name"], entry["version"], cache)
        shutil.copy2(wheel, pyodide / wheel.name)
        report["packages"][key] = {"version": entry["version"], "npm_lock_sha256": entry["sha256"],
                                   "pypi_sha256": sha256(wheel), "file": wheel.name}
        entry["file_name"], entry["sha256"] = wheel.name, sha256(wheel)
    lock["packages"] = {k: packages[k] for k in keep}
    (pyodide / "pyodide-lock.json").write_text(json.dumps(lock, indent=1) + "\n")

    for name, version in PIPLITE_EXTRA.items():
        shutil.copy2(pypi_wheel(name, version, cache), wheels)
    (out / "jupyter_lite_config.json").write_text(json.dumps({
        "PipliteAddon": {"piplite_urls": [str(p) for p in sorted(wheels.glob("*.whl"))]},
        # no source maps: they would be half of the site's size, for nobody who reads the book
        "LiteBuildConfig": {"no_sourcemaps": True},
    }, indent=1) + "\n")
    # the kernel's runtime settings: never fall back to PyPI (every package is on the site)
    (out / "jupyter-lite.json").write_text(json.dumps({
        "jupyter-lite-schema-version": 0,
        "jupyter-config-data": {
            # (the lite build's Pyodide addon writes the same pyodideUrl, but skips it when its task
            # cache says "up to date")
            "litePluginSettings": {KERNEL_PLUGIN: {
                "disablePyPIFallback": True, "pyodideUrl": "./static/pyodide/pyodide.mjs"}},
            # window.jupyterapp inside the in-page notebook, for the browser test to run its cells
            "exposeAppInBrowser": "true",
        },
    }, indent=1) + "\n")
    report["bytes"] = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    (out / "pyodide-report.json").write_text(json.dumps(report, indent=1) + "\n")
    return report


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "_build" / "lite-dir"
    rep = prepare(target.resolve())
    changed = sum(p["npm_lock_sha256"] != p["pypi_sha256"] for p in rep["packages"].values())
    print(f"Pyodide {rep['pyodide']} (Python {rep['python']}) in {target}: {len(rep['packages'])} packages "
          f"from PyPI ({changed} lock hashes replaced), {rep['bytes'] / 1e6:.1f} MB")
