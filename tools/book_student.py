"""The student edition: the book with every exercise's solution removed, from the full build's outputs.

    make book-student      (runs `make book` first when its outputs are missing)

Instructors keep the full book (`make book`); students get ``_build/student/html``, where every
exercise stands and no solution does. sphinx-exercise's own switch (``hide_solutions``) cannot do
this for the book's gated solutions (``solution-start`` ... ``solution-end``, which hold code cells):
it crashes the build (sphinx-exercise issue 89). So this script writes a copy of the book's sources
to ``_build/student-src`` in which

- every chapter is the executed notebook from Jupyter Book's cache (``_build/.jupyter_cache``,
  filled by ``make book``; a chapter whose code changed since then has no match there, and the
  script says to run ``make book`` again), with every solution's cells deleted: from the Markdown
  cell opening ``{solution-start}`` to the one closing ``{solution-end}``, and every one-cell
  ``{solution}`` directive;
- ``_config.yml`` executes nothing (``execute_notebooks: "off"``): the outputs are the full build's;
- the pages, the bibliography, the Sphinx extensions and the built MathJax and Pyodide folders are
  shared with the full book (copied or linked).

The build of that copy is ``jupyter-book build _build/student-src --path-output _build/student``.
Exit status 2 (with the chapters named) when the cache lacks a chapter; 1 on a malformed solution.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE_ITEMS = ("book", "_toc.yml", "tools")  # copied as they are (tools: the local Sphinx extensions)
SHARED_BUILD = ("mathjax-site", "lite-dir")  # what `make mathjax` and `make pyodide` built, linked
ONE_CELL_SOLUTION = re.compile(r"^(?P<fence>`{3,}|:{3,})\{solution\}.*?^(?P=fence)[ \t]*$\n?", re.M | re.S)


def strip_solutions(nb) -> int:
    """Delete every solution from the notebook ``nb`` (in place); the number of solutions removed.

    A gated solution is the run of cells from the Markdown cell holding ``{solution-start}`` to the
    one holding ``{solution-end}``, both included; a one-cell ``{solution}`` directive is cut out of
    its Markdown cell (the cell goes when nothing else is left). Raises ``ValueError`` on a
    ``solution-start`` without its end, or an end without a start."""
    kept, removed, open_at = [], 0, None
    for i, cell in enumerate(nb.cells):
        src = cell.source if isinstance(cell.source, str) else "".join(cell.source)
        starts = cell.cell_type == "markdown" and "{solution-start}" in src
        ends = cell.cell_type == "markdown" and "{solution-end}" in src
        if starts:
            if open_at is not None:
                raise ValueError(f"cell {i}: a solution-start inside the solution opened at cell {open_at}")
            open_at = i
        if open_at is None:
            if ends:
                raise ValueError(f"cell {i}: a solution-end without its solution-start")
            if cell.cell_type == "markdown" and "{solution}" in src:
                src, n = ONE_CELL_SOLUTION.subn("", src)
                removed += n
                if not src.strip():
                    continue
                cell.source = src
            kept.append(cell)
        elif ends:
            open_at = None
            removed += 1
    if open_at is not None:
        raise ValueError(f"cell {open_at}: a solution-start without its solution-end")
    nb.cells = kept
    return removed


def _chapters() -> list[Path]:
    sys.path.insert(0, str(ROOT / "tools"))
    from book_execute import _chapters as toc_chapters

    return toc_chapters(ROOT / "_toc.yml")


def executed(paths: list[Path], cache_dir: Path):
    """Each chapter's executed notebook from the cache, and the chapters the cache has no match for."""
    import nbformat
    from jupyter_cache import get_cache

    cache = get_cache(str(cache_dir)) if cache_dir.is_dir() else None
    found, missing = {}, []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        try:
            if cache is None:
                raise KeyError(path)
            _, found[path] = cache.merge_match_into_notebook(nb)
        except KeyError:
            missing.append(path.relative_to(ROOT).as_posix())
    return found, missing


def write_sources(out: Path, notebooks: dict) -> dict[str, int]:
    """The student edition's sources under ``out``; the solutions removed per chapter."""
    import nbformat
    import yaml

    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    for item in SOURCE_ITEMS:
        src = ROOT / item
        if src.is_dir():
            shutil.copytree(src, out / item, ignore=shutil.ignore_patterns("__pycache__", "*.ipynb_checkpoints"))
        else:
            shutil.copy(src, out / item)
    (out / "_build").mkdir()
    for name in SHARED_BUILD:
        if (ROOT / "_build" / name).exists():
            os.symlink(ROOT / "_build" / name, out / "_build" / name)
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config["title"] = f"{config['title']} (student edition: no solutions)"
    config.setdefault("execute", {})["execute_notebooks"] = "off"
    (out / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    removed = {}
    for path, nb in notebooks.items():
        rel = path.relative_to(ROOT)
        try:
            removed[rel.as_posix()] = strip_solutions(nb)
        except ValueError as err:
            raise ValueError(f"{rel}: {err}") from None
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, out / rel)
    return removed


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cache", type=Path, default=ROOT / "_build" / ".jupyter_cache")
    p.add_argument("--out", type=Path, default=ROOT / "_build" / "student-src")
    p.add_argument("--check", action="store_true", help="only say whether the cache holds every chapter")
    args = p.parse_args(argv)
    notebooks, missing = executed(_chapters(), args.cache)
    if missing:
        print(f"book_student: no executed copy matching the source of {', '.join(missing)} in {args.cache}: "
              f"run `make book` first (the student edition reuses its outputs)")
        return 2
    if args.check:
        return 0
    try:
        removed = write_sources(args.out, notebooks)
    except ValueError as err:
        print(f"book_student: {err}")
        return 1
    print(f"book_student: {sum(removed.values())} solutions removed from {len(removed)} chapters; "
          f"sources in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
