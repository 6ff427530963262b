"""Sphinx extension: typeset the book's math with a local MathJax 3, so the book reads offline.

`make mathjax` (a prerequisite of `make book` and `make test`) runs ``npm install mathjax@3`` into
``_build/mathjax-npm`` and copies its ``es5/`` folder to ``_build/mathjax-site/mathjax/``. When that
copy exists, this extension adds ``_build/mathjax-site`` to ``html_extra_path`` (copied verbatim to the
root of ``_build/html``, so the book's pages reach it as ``mathjax/tex-mml-chtml.js``; *not*
``html_static_path``, whose every ``.js`` Jupyter Book would load on every page) and points
``mathjax_path`` at it. ``mathjax3_config`` (set by myst-parser) is untouched: it is emitted as
``window.MathJax = {...}`` before the script, whatever URL the script comes from.

Without the local copy (a bare ``jupyter-book build`` in a fresh clone) the CDN stays in place, with
an info line, so the build itself does not fail; ``tests_book/check_html.py`` fails on any page that
still loads MathJax from the network.
"""

from __future__ import annotations

from pathlib import Path

from sphinx.util import logging

logger = logging.getLogger(__name__)

SITE_DIR = "_build/mathjax-site"  # relative to the book's source directory (the repository root)
SCRIPT = "tex-mml-chtml.js"  # the same combined component Sphinx loads from the CDN by default


def _use_local_mathjax(app, config) -> None:
    site = Path(app.srcdir) / config.book_mathjax_site
    if not (site / "mathjax" / SCRIPT).is_file():
        logger.info("book_mathjax: no local MathJax in %s (run `make mathjax`); loading it from the CDN", site)
        return
    config.html_extra_path = [*config.html_extra_path, str(site)]
    # Sphinx prefixes a relative mathjax_path with "_static/"; step back out of it to the extra files.
    config.mathjax_path = f"../mathjax/{SCRIPT}"
    logger.info("book_mathjax: MathJax served from %s", site / "mathjax")


def setup(app):
    app.add_config_value("book_mathjax_site", SITE_DIR, "html")
    app.connect("config-inited", _use_local_mathjax, priority=400)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
