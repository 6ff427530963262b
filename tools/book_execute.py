"""Execute the book's chapters side by side, one thread each, into Jupyter Book's cache.

`make book` runs this before `jupyter-book build`. Jupyter Book executes one notebook at a time;
here ``--workers`` processes (default: one per core) each take the longest chapter not yet run
(the times of ``vaelib.book.MEASURED_SECONDS``, others last) and execute it with
``VAEBOOK_THREADS=1``, the way Jupyter Book would (jupyter-cache's ``single_nb_execution``, in the
notebook's folder, no errors allowed). Each executed notebook goes into the jupyter-cache folder
that ``_config.yml`` names (``execute_notebooks: cache``), which is emptied first so that no
result of another budget or another commit survives; the build then finds every chapter there
and executes none. Two single-threaded chapters on two cores train 1.3-2x faster together than
one after another with two threads each (see the README's "Performance").

Prints each chapter's seconds as it finishes and writes them to ``--times`` (JSON), with each
chapter's five slowest code cells (nbclient's timing, kept out of the cached notebook).
``--executed DIR`` takes the chapters found in DIR as they are (CI's Colab-like nbval run executed
them, ``tests_book/colab_like.py --save-executed``) and executes only the others. Exits 1,
with the chapter and its error, when a chapter fails; the cache then holds only the chapters that
succeeded, and a build would execute the failed one itself and fail the same way.
"""

from __future__ import annotations

import argparse
import functools
import json
import multiprocessing as mp
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _chapters(toc: Path) -> list[Path]:
    """The notebooks ``_toc.yml`` names, in its order."""
    import yaml

    files = []

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("file"), str):
                files.append(node["file"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(yaml.safe_load(toc.read_text()))
    return [ROOT / f"{f}.ipynb" for f in files if (ROOT / f"{f}.ipynb").is_file()]


def _longest_first(paths: list[Path]) -> list[Path]:
    """Longest expected chapter first (LPT scheduling); chapters without a measured time last."""
    sys.path.insert(0, str(ROOT))
    from vaelib.book import MEASURED_SECONDS, chapter_id

    def expected(p: Path) -> float:
        return MEASURED_SECONDS.get(chapter_id(p.stem), 0)

    return sorted(paths, key=expected, reverse=True)


def _cell_seconds(nb) -> list[tuple[float, int, str]]:
    """Each code cell's seconds (nbclient's timing metadata, removed from the cell), index and first line."""
    from datetime import datetime

    out = []
    for i, cell in enumerate(nb.cells):
        timing = cell.get("metadata", {}).pop("execution", None)
        if cell.cell_type != "code" or not timing or "shell.execute_reply" not in timing:
            continue
        start = timing.get("iopub.execute_input") or timing.get("shell.execute_reply.started")
        if start is None:
            continue
        seconds = (datetime.fromisoformat(timing["shell.execute_reply"].replace("Z", "+00:00"))
                   - datetime.fromisoformat(start.replace("Z", "+00:00"))).total_seconds()
        first = next((line for line in cell.source.splitlines() if line.strip()), "")
        out.append((seconds, i, first[:70]))
    return out


def _execute(path: str, timeout: int) -> tuple[str, float, str | None, object, list]:
    import nbformat
    from jupyter_cache.executors.utils import single_nb_execution

    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    result = single_nb_execution(nb, cwd=str(Path(path).parent), timeout=timeout, allow_errors=False,
                                 meta_override=True, record_timing=True)
    seconds = time.perf_counter() - start
    cells = _cell_seconds(nb)
    if result.err is not None:
        return path, seconds, result.exc_string or repr(result.err), None, cells
    return path, seconds, None, nb, cells


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cache", default=str(ROOT / "_build" / ".jupyter_cache"))
    p.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument("--timeout", type=int, default=1800, help="seconds per chapter, as _config.yml's")
    p.add_argument("--times", default=str(ROOT / "_build" / "execution-times.json"))
    p.add_argument("--executed", type=Path, default=None,
                   help="a folder of notebooks already executed (colab_like.py --save-executed): each chapter "
                        "found there is cached as it is, the others are executed")
    p.add_argument("notebooks", nargs="*", type=Path, help="default: every chapter of _toc.yml")
    args = p.parse_args(argv)
    if args.workers < 1:
        p.error(f"--workers must be at least 1; got {args.workers}")
    paths = _longest_first([n.resolve() for n in args.notebooks] or _chapters(ROOT / "_toc.yml"))

    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    shutil.rmtree(args.cache, ignore_errors=True)
    cache = get_cache(args.cache)
    os.environ["VAEBOOK_THREADS"] = "1"  # every kernel started from here inherits it
    times, slowest, failed, t0 = {}, {}, [], time.perf_counter()
    print(f"book_execute: {len(paths)} chapters, {args.workers} at a time, 1 thread each", flush=True)
    run = functools.partial(_execute, timeout=args.timeout)
    if args.executed is not None:  # chapters another run executed: cached as they are, not run again
        import nbformat

        ready = [x for x in paths if (args.executed / x.name).is_file()]
        for x in ready:
            nb = nbformat.read(args.executed / x.name, as_version=4)
            cache.cache_notebook_bundle(CacheBundleIn(nb, str(x), data={"execution_seconds": 0.0}),
                                        check_validity=False, overwrite=True)
        paths = [x for x in paths if x not in ready]
        print(f"book_execute: {len(ready)} chapters taken as executed from {args.executed}", flush=True)
    with mp.get_context("spawn").Pool(args.workers, maxtasksperchild=1) as pool:
        # handed out longest first, one at a time, reported as they finish
        for path, seconds, err, nb, cells in pool.imap_unordered(run, [str(x) for x in paths], chunksize=1):
            name = Path(path).relative_to(ROOT).as_posix()
            times[name] = round(seconds, 1)
            # where a chapter's time goes: its five slowest code cells
            slowest[name] = [{"cell": i, "seconds": round(t, 1), "first_line": line}
                             for t, i, line in sorted(cells, reverse=True)[:5]]
            if err is not None:
                failed.append(name)
                print(f"book_execute: {name} FAILED after {seconds:.1f} s\n{err}", flush=True)
                continue
            cache.cache_notebook_bundle(CacheBundleIn(nb, path, data={"execution_seconds": seconds}),
                                        check_validity=False, overwrite=True)
            print(f"book_execute: {name} executed in {seconds:.1f} s", flush=True)
    wall = time.perf_counter() - t0
    Path(args.times).parent.mkdir(parents=True, exist_ok=True)
    Path(args.times).write_text(json.dumps({"wall_seconds": round(wall, 1), "workers": args.workers,
                                            "chapters": times, "slowest_cells": slowest}, indent=1) + "\n")
    print(f"book_execute: {len(paths) - len(failed)} of {len(paths)} chapters in {wall:.0f} s "
          f"(sum of chapter times {sum(times.values()):.0f} s)", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
