"""Open every page of the built book in headless Chromium and check what a reader sees.

    BOOK_HTML=_build/html .venv/bin/pytest -q tests_book/test_html.py     # after a book build

For each ``*.html`` page (served from ``BOOK_HTML`` on a local http.server at 127.0.0.1), see
``bookcheck.problems``:
- math: MathJax comes from the book itself (never a CDN), every ``.math`` element Sphinx wrote was
  typeset (holds an ``mjx-container``), none is a TeX error or holds a nested ``$``, and no raw
  ``\\(``, ``\\[`` or ``$`` is left in the visible prose (code and outputs aside);
- images: every ``<img>`` loads and decodes (``naturalWidth > 0``); every local link points at a file;
- no Python traceback, raw ANSI escape, error output, or warning printed to stderr is shown;
- the page fits a 1280 px window: no display equation, code block, output, image, figure or table
  reaches past the main column or scrolls sideways inside its own box (a cell whose input is hidden
  counts once it is opened: the theme lays it out all the same);
- every image is a captioned figure, shown at no less than 85% of the size it was drawn at (text in
  a plot shrinks with it);
- notebook pages: the Colab launch button opens
  ``https://colab.research.google.com/github/<owner>/<repo>/blob/<branch>/notebooks/<name>.ipynb``
  for the ``repository`` in ``_config.yml``.
``test_screenshots`` writes PNGs of a few pages to ``BOOK_SCREENSHOTS_DIR`` (default
``_build/screenshots``); ``BOOK_SCREENSHOT_PAGES`` (comma-separated, relative to the html folder)
picks them, default: the notation page and the last chapter.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

import bookcheck
import pytest

HTML = Path(os.environ.get("BOOK_HTML", bookcheck.ROOT / "_build" / "html")).resolve()
PAGES = bookcheck.pages(HTML)


@pytest.fixture(scope="module")
def base_url():
    with bookcheck.serve(HTML) as url:
        yield url


def test_the_book_was_built():
    assert PAGES, f"no html pages under {HTML}: build the book first (`make book` or `make build-smoke`)"
    assert "index.html" in PAGES


@pytest.mark.parametrize("page", PAGES)
def test_page(browser, base_url, page):
    if target := bookcheck.redirect_target(HTML, page):  # e.g. index.html -> book/intro.html
        assert ((HTML / page).parent / unquote(urlsplit(target).path)).is_file(), f"{page} redirects to a missing {target}"
        return
    r = bookcheck.report(browser, base_url, page)
    found = bookcheck.problems(r, page, HTML, bookcheck.colab_prefix())
    assert not found, f"{page}:\n  " + "\n  ".join(found)


def test_screenshots(browser, base_url):
    out = Path(os.environ.get("BOOK_SCREENSHOTS_DIR", bookcheck.ROOT / "_build" / "screenshots"))
    out.mkdir(parents=True, exist_ok=True)
    chapters = [p for p in PAGES if p.startswith("notebooks/")]
    default = [p for p in ("book/notation.html", chapters[-1] if chapters else None) if p in PAGES]
    wanted = [p.strip() for p in os.environ.get("BOOK_SCREENSHOT_PAGES", "").split(",") if p.strip()] or default
    assert wanted, "no page to take a screenshot of"
    for page in wanted:
        assert page in PAGES, f"BOOK_SCREENSHOT_PAGES names {page}, not a page of the book"
        bookcheck.report(browser, base_url, page)  # loads the page and waits for MathJax
        png = out / (page.removesuffix(".html").replace("/", "_") + ".png")
        browser.screenshot(str(png))
        assert png.stat().st_size > 10_000, f"{png} is suspiciously small"
    (out / "pages.json").write_text(json.dumps(wanted, indent=1) + "\n")
