"""Sphinx extension: the derivation chapters' SymPy checks, run in the reader's browser.

For every chapter named in ``book_lite_chapters`` (``_config.yml``) this extension

1. generates, when the build starts, an in-browser notebook from the chapter itself
   (:func:`lite_notebook`: the chapter's code cells that need only SymPy and the standard library,
   in the chapter's order, under the chapter's section headings), so the chapter stays the one
   source of truth; they land in ``_build/lite-notebooks/`` and jupyterlite-sphinx's build puts
   them into the JupyterLite site at ``_build/html/lite/``;
2. puts a button under the chapter's title that opens that notebook in JupyterLite (Pyodide
   kernel) in the page. The button's HTML and its few lines of script are all the page carries:
   the JupyterLite app, Pyodide and the wheels load only when the reader presses it;
3. removes what jupyterlite-sphinx adds to *every* page (its CSS and JavaScript, and a web font
   from Google's servers), so that pages load nothing from JupyterLite, or from outside the book.

Pyodide, its lock and the wheels come from ``make pyodide`` (``tools/lite_pyodide.py``), served by
the book's own site. Without them (a bare ``jupyter-book build``) the chapters get no button and an
info line says why; ``tests_book/test_lite.py`` fails on a book without the buttons.
"""

from __future__ import annotations

import ast
import builtins
import json
import os
from pathlib import Path

from docutils import nodes
from sphinx.util import logging

logger = logging.getLogger(__name__)

LITE_DIR = "_build/lite-dir"  # tools/lite_pyodide.py's output (relative to the repository root)
NOTEBOOKS_DIR = "_build/lite-notebooks"  # the generated in-browser notebooks
CONTENT_DIR = "_build/lite-contents"  # jupyterlite-sphinx's staging folder (default: _contents in the repo)
# what the in-browser kernel has: SymPy (with mpmath) and the standard library
BROWSER_MODULES = frozenset({
    "sympy", "mpmath", "math", "cmath", "fractions", "decimal", "itertools", "functools", "collections",
    "operator", "random", "statistics", "typing", "dataclasses", "string", "re",
})
# a string naming one of these (``lambdify(..., "numpy")``) is an import in disguise
LIBRARY_NAMES = frozenset({"numpy", "scipy", "torch", "jax", "tensorflow"})
KERNELSPEC = {"name": "python", "display_name": "Python (Pyodide)", "language": "python"}


# --- the in-browser notebook, generated from a chapter ------------------------------------------
def _bound_and_loaded(tree: ast.AST) -> tuple[set[str], set[str]]:
    """Names a cell binds (anywhere in it) and names it reads; scopes are ignored (an over-estimate
    of what is bound inside functions can only let a cell in whose name is then missing at run
    time: the unit test runs every generated cell with torch, NumPy and vaelib unimportable)."""
    bound, loaded = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
    return bound, loaded


def _top_module(node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.ImportFrom):
        return [(node.module or "").split(".")[0]] if not node.level else ["."]
    return [a.name.split(".")[0] for a in node.names]


def lite_notebook(chapter: dict, source_name: str) -> tuple[dict, dict]:
    """The in-browser notebook of a chapter (nbformat 4 as a dict) and a summary of what it kept.

    A code cell is kept when it parses as Python, imports only ``BROWSER_MODULES``, and every name
    it reads is a builtin or bound by the browser imports or by an earlier kept cell. From a cell
    that imports anything else (a chapter's set-up cell) only its top-level browser-safe imports are
    kept, in the notebook's first code cell. Section headings of the chapter precede the kept cells they contain."""
    header_imports: list[str] = []
    available = set(dir(builtins))
    kept: list[dict] = []
    pending_headings: list[str] = []
    n_code = 0
    title = "Chapter"
    for cell in chapter["cells"]:
        src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        tags = cell.get("metadata", {}).get("tags", [])
        if cell["cell_type"] == "markdown":
            for line in src.splitlines():
                if line.startswith("# ") and title == "Chapter":
                    title = line[2:].strip()
                elif line.startswith("## ") or line.startswith("### "):
                    # a heading replaces the pending ones of its level and below
                    level = len(line) - len(line.lstrip("#"))
                    pending_headings = [h for h in pending_headings if len(h) - len(h.lstrip("#")) < level]
                    pending_headings.append(line.strip())
            continue
        if cell["cell_type"] != "code" or "remove-cell" in tags:
            continue
        n_code += 1
        try:
            tree = ast.parse(src)
        except SyntaxError:
            continue
        if any(not all(m in BROWSER_MODULES for m in _top_module(n)) for n in ast.walk(tree)
               if isinstance(n, (ast.Import, ast.ImportFrom))):
            # a cell that imports what the browser lacks (a chapter's set-up cell) is left out, but
            # its top-level imports of what the browser has go into the notebook's first cell
            for node in tree.body:
                if isinstance(node, (ast.Import, ast.ImportFrom)) and all(
                        m in BROWSER_MODULES for m in _top_module(node)):
                    header_imports.append(ast.unparse(node))
                    available |= _bound_and_loaded(node)[0]
            continue
        if any(isinstance(n, ast.Constant) and n.value in LIBRARY_NAMES for n in ast.walk(tree)):
            continue  # e.g. sympy.lambdify(..., "numpy"): an import the statements do not show
        bound, loaded = _bound_and_loaded(tree)
        if not (loaded - bound) <= available:
            continue
        available |= bound
        kept.extend({"cell_type": "markdown", "metadata": {}, "source": h} for h in pending_headings)
        pending_headings = []
        kept.append({"cell_type": "code", "metadata": {}, "source": src, "outputs": [], "execution_count": None})
    n_kept = sum(c["cell_type"] == "code" for c in kept)
    intro = (
        f"# {title}: the SymPy checks, in your browser\n\n"
        f"Generated from `{source_name}` when the book was built: the chapter's code cells that need only "
        f"SymPy and the Python standard library, in the chapter's order ({n_kept} of its {n_code} code cells; "
        "the others need PyTorch, NumPy or `vaelib`, which this in-browser Python (Pyodide) does not have). "
        "The derivations they check are on the chapter's page.\n\n"
        "Run them one by one with **Shift+Enter**, or all with **Run > Run All Cells**. Every `assert` is "
        "a check: change a formula and run the cell again to see one fail."
    )
    cells = [{"cell_type": "markdown", "metadata": {}, "source": intro}]
    if header_imports:
        cells.append({"cell_type": "code", "metadata": {}, "source": "\n".join(dict.fromkeys(header_imports)),
                      "outputs": [], "execution_count": None})
    cells += kept
    for i, c in enumerate(cells):
        c["id"] = f"lite{i:03d}"
    nb = {"cells": cells, "metadata": {"kernelspec": KERNELSPEC, "language_info": {"name": "python"}},
          "nbformat": 4, "nbformat_minor": 5}
    return nb, {"title": title, "code_cells": n_code, "kept": n_kept}


def write_lite_notebooks(srcdir: Path, docnames, out: Path) -> dict[str, dict]:
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.ipynb"):
        old.unlink()
    summary = {}
    for doc in docnames:
        src = srcdir / f"{doc}.ipynb"
        if not src.is_file():
            raise FileNotFoundError(f"book_lite_chapters names {doc!r}, but {src} is not a notebook")
        nb, info = lite_notebook(json.loads(src.read_text()), f"{doc}.ipynb")
        if not info["kept"]:
            raise ValueError(f"{doc}: no code cell of this chapter runs on SymPy alone; drop it from book_lite_chapters")
        (out / src.name).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
        summary[doc] = info
    return summary


# --- Sphinx ---------------------------------------------------------------------------------------
BUTTON_HTML = """<div class="book-lite" data-lite-src="{src}">
<p class="book-lite-lead"><button type="button" class="btn btn-sm btn-outline-primary book-lite-button">\
Run this chapter's SymPy checks in your browser</button>
<span class="book-lite-note">{kept} of the chapter's code cells, in JupyterLite with Python (Pyodide) and SymPy,
served by this site: nothing to install, nothing fetched from elsewhere. The first press loads the JupyterLite
app and Python with its packages ({mb} MB of it).</span></p>
</div>
<script>
document.querySelectorAll('.book-lite').forEach(function (box) {{
  var button = box.querySelector('.book-lite-button');
  button.addEventListener('click', function () {{
    if (box.querySelector('iframe')) return;
    var frame = document.createElement('iframe');
    frame.src = box.getAttribute('data-lite-src');
    frame.className = 'book-lite-frame';
    frame.title = 'In-browser notebook';
    frame.style.cssText = 'width: 100%; height: 640px; border: 1px solid #d8d8d8;';
    box.appendChild(frame);
    button.disabled = true;
  }});
}});
</script>
"""


def _configure(app, config) -> None:
    srcdir = Path(app.srcdir)
    lite = srcdir / config.book_lite_dir
    app.book_lite = {"summary": {}}
    if not config.book_lite_chapters:
        return
    if not (lite / "static" / "pyodide" / "pyodide.mjs").is_file():
        logger.info("book_lite: no local Pyodide in %s (run `make pyodide`); chapters get no in-browser button", lite)
        return
    out = srcdir / NOTEBOOKS_DIR
    app.book_lite["summary"] = write_lite_notebooks(srcdir, config.book_lite_chapters, out)
    report = json.loads((lite / "pyodide-report.json").read_text())
    app.book_lite["mb"] = report["bytes"] / 1e6
    config.jupyterlite_dir = str(lite)
    config.jupyterlite_config = str(lite / "jupyter_lite_config.json")
    config.jupyterlite_contents = [str(out / "*.ipynb")]
    config.jupyterlite_content_dir = CONTENT_DIR
    logger.info("book_lite: in-browser notebooks %s", {d: s["kept"] for d, s in app.book_lite["summary"].items()})


def _add_button(app, doctree) -> None:
    info = app.book_lite["summary"].get(app.env.docname)
    if not info:
        return
    name = Path(app.env.docname).name + ".ipynb"
    prefix = os.path.relpath(Path(app.srcdir) / "lite", (Path(app.srcdir) / app.env.docname).parent)
    src = f"{Path(prefix).as_posix()}/notebooks/index.html?path={name}"
    # Pyodide's folder as make pyodide wrote it (core and wheels); the app comes on top
    html = BUTTON_HTML.format(src=src, kept=info["kept"], mb=round(app.book_lite["mb"]))
    section = next(iter(doctree.findall(nodes.section)), None)
    if section is None:
        raise ValueError(f"{app.env.docname}: no section to put the in-browser button under")
    title = next(iter(section.findall(nodes.title)))
    section.insert(section.index(title) + 1, nodes.raw("", html, format="html"))


def _drop_lite_assets(app, pagename, templatename, context, doctree) -> None:
    """jupyterlite-sphinx adds its CSS, its JavaScript and a Google web font to every page; the book's
    button needs none of them."""
    for key in ("css_files", "script_files"):
        files = context.get(key)
        if files:
            context[key] = [f for f in files if not any(
                s in str(getattr(f, "filename", f)) for s in ("jupyterlite_sphinx", "fonts.googleapis.com"))]


def setup(app):
    app.add_config_value("book_lite_chapters", [], "html")
    app.add_config_value("book_lite_dir", LITE_DIR, "html")
    app.setup_extension("jupyterlite_sphinx")
    app.connect("config-inited", _configure, priority=400)
    app.connect("doctree-read", _add_button)
    app.connect("html-page-context", _drop_lite_assets, priority=900)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}

