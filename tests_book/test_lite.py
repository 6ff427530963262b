"""The derivation chapters' SymPy checks, run in the page by JupyterLite, with nothing from outside the book.

    BOOK_HTML=_build/html .venv/bin/pytest -q tests_book/test_lite.py     # after a book build

A separate headless Chromium whose host resolver maps every name but 127.0.0.1 to "not found"
(``--host-resolver-rules``), so a request for a CDN, PyPI or a web font fails, in the page, its
iframes and the kernel's web worker alike; every request the page makes is also recorded.

- ``test_pages_load_no_jupyterlite``: no page of the book refers to JupyterLite's assets or to a
  web font, and on a chapter page with the button nothing under ``lite/`` is fetched until the
  reader presses it.
- ``test_chapter_runs_in_the_page`` (one per chapter with a button, or those ``BOOK_LITE_PAGES`` names,
  comma-separated: CI runs two): press the button, wait for the
  Pyodide kernel in the iframe, run every cell of the in-browser notebook, and compare each cell's
  printed output with the same cell's output in the book's own (CPython) execution of the chapter
  (``_build/jupyter_execute``): equal text, no error. The first chapter's press is a first visit
  (browser cache emptied), the others' a visit after it, as a reader going on to the next chapter.
  The time from the press to the first output, the bytes the server sent for the press and the size
  of the site's ``lite/`` folder go to ``_build/screenshots/lite.json``.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import threading
import time
from pathlib import Path

import bookcheck
import pytest
from cdp import Browser, find_chromium

HTML = Path(os.environ.get("BOOK_HTML", bookcheck.ROOT / "_build" / "html")).resolve()
EXECUTED = HTML.parent / "jupyter_execute"
REPORT = Path(os.environ.get("BOOK_SCREENSHOTS_DIR", bookcheck.ROOT / "_build" / "screenshots")) / "lite.json"
ALL_CHAPTERS = [p for p in bookcheck.pages(HTML) if p.startswith("notebooks/") and "book-lite" in (HTML / p).read_text()]
# BOOK_LITE_PAGES (comma-separated, relative to the html folder) picks the chapters whose in-page run
# is tested; default: all of them
PICKED = [p.strip() for p in os.environ.get("BOOK_LITE_PAGES", "").split(",") if p.strip()]
CHAPTERS = [p for p in ALL_CHAPTERS if p in PICKED] if PICKED else ALL_CHAPTERS
OFFLINE = "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"
RESULTS: dict = {}

# In the iframe, once the app is up: the notebook, its kernel's status, and each code cell's state.
STATE_JS = r"""
(() => {
  const f = document.querySelector('.book-lite iframe');
  const app = f && f.contentWindow && f.contentWindow.jupyterapp;
  const w = app && app.shell.currentWidget;
  if (!w || !w.sessionContext || !w.content) return {ready: false};
  const k = w.sessionContext.session && w.sessionContext.session.kernel;
  const cells = w.content.widgets.filter(c => c.model.type === 'code').map(c => ({
    source: c.model.sharedModel.getSource(), count: c.model.executionCount,
    outputs: c.model.sharedModel.outputs}));
  return {ready: true, path: w.context.path, kernel: k ? k.status : null, cells: cells};
})()
"""


def _executed(page: str) -> dict:
    """The book's own execution of a chapter: the copy Jupyter Book wrote to ``jupyter_execute``, or,
    where the build took the chapter from Jupyter Book's cache (``make book`` and ``make build-smoke``
    execute into it first) and that copy holds no output, the cached execution it was built from."""
    import nbformat

    nb = nbformat.read(EXECUTED / page.replace(".html", ".ipynb"), as_version=4)
    if any(c.get("outputs") for c in nb.cells if c.cell_type == "code"):
        return nb
    from jupyter_cache import get_cache

    _, merged = get_cache(str(HTML.parent / ".jupyter_cache")).merge_match_into_notebook(nb)
    return merged


SERVED = {"bytes": 0}  # what the local server has sent, for the size of a first press


class _CountingHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def copyfile(self, source, outputfile):
        before = source.tell()
        super().copyfile(source, outputfile)
        SERVED["bytes"] += source.tell() - before


@pytest.fixture(scope="module")
def base_url():
    handler = functools.partial(_CountingHandler, directory=str(HTML))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def offline_browser():
    if not find_chromium():
        pytest.fail("no chromium: run `make chromium` (apt-get install -y chromium)")
    with Browser(extra_args=(OFFLINE,)) as b:
        b.page("Network.enable")
        yield b


def _requests(browser) -> list[str]:
    return [e["params"]["request"]["url"] for e in browser._events if e.get("method") == "Network.requestWillBeSent"]


def _text(outputs) -> tuple[str, list[str]]:
    """The printed text of a cell's outputs, and its errors."""
    text, errors = "", []
    for o in outputs:
        if o.get("output_type") == "stream":
            text += "".join(o["text"]) if isinstance(o["text"], list) else o["text"]
        elif o.get("output_type") == "error":
            errors.append(f"{o.get('ename')}: {o.get('evalue')}")
        elif o.get("output_type") in ("execute_result", "display_data"):
            plain = o.get("data", {}).get("text/plain", "")
            text += "".join(plain) if isinstance(plain, list) else plain
    return text, errors


def test_there_are_in_browser_chapters():
    assert ALL_CHAPTERS, f"no chapter page under {HTML} has the in-browser button: run `make pyodide`, then build the book"
    unknown = [p for p in PICKED if p not in ALL_CHAPTERS]
    assert not unknown, f"BOOK_LITE_PAGES names {unknown}, not pages with the in-browser button: {ALL_CHAPTERS}"
    assert (HTML / "lite" / "static" / "pyodide" / "pyodide.mjs").is_file(), "no Pyodide in the site"


def test_pages_load_no_jupyterlite(offline_browser, base_url):
    for page in bookcheck.pages(HTML):
        text = (HTML / page).read_text()
        for needle in ("jupyterlite_sphinx", "fonts.googleapis.com"):
            assert needle not in text, f"{page} refers to {needle}"
    page = CHAPTERS[0]
    offline_browser._events.clear()
    offline_browser.goto(base_url + page)
    time.sleep(1)
    fetched = _requests(offline_browser)
    assert fetched and fetched[0].startswith(base_url), fetched[:3]
    assert not [u for u in fetched if "/lite/" in u], f"{page} fetched JupyterLite before the button was pressed"
    outside = [u for u in fetched if not u.startswith((base_url, "data:", "blob:"))]
    assert not outside, f"{page} asked for {outside}"


@pytest.mark.parametrize("page", CHAPTERS)
def test_chapter_runs_in_the_page(offline_browser, base_url, page):
    b = offline_browser
    b._events.clear()
    b.goto(base_url + page)
    # The first chapter's press as a reader's first visit (the cache emptied); the others' with what it left
    # cached, as a reader who goes on to the next chapter: Pyodide and the wheels are not fetched and compiled again.
    first = page == CHAPTERS[0]
    if first:
        b.page("Network.clearBrowserCache")
    SERVED["bytes"] = 0
    pressed = time.monotonic()
    b.evaluate("document.querySelector('.book-lite-button').click()")
    state, started = {"ready": False}, None
    deadline = pressed + 180
    while time.monotonic() < deadline:  # the app, then Pyodide, then the kernel's packages
        state = b.evaluate(STATE_JS)
        if state["ready"] and state["kernel"] == "idle":
            started = time.monotonic()
            break
        time.sleep(1)
    assert started, f"{page}: the in-page kernel did not start in 180 s (last state {str(state)[:300]})"
    b.evaluate("document.querySelector('.book-lite iframe').contentWindow.jupyterapp.commands"
               ".execute('notebook:run-all-cells') && true")
    first_output = None
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        state = b.evaluate(STATE_JS)
        if first_output is None and any(c["outputs"] for c in state["cells"]):
            first_output = time.monotonic()
        if all(c["count"] is not None for c in state["cells"]) and state["kernel"] == "idle":
            break
        time.sleep(1)
    done = time.monotonic()
    cells = state["cells"]
    assert all(c["count"] is not None for c in cells), f"{page}: cells still unrun after 300 s"

    outside = [u for u in _requests(b) if not u.startswith((base_url, "data:", "blob:"))]
    assert not outside, f"{page}: the in-page run asked for {outside}"

    # the same cells in the book's own execution of the chapter
    executed = _executed(page)
    book = {"".join(c["source"]): _text(c.get("outputs", []))[0] for c in executed["cells"] if c["cell_type"] == "code"}
    compared, checks = 0, 0
    for c in cells:
        text, errors = _text(c["outputs"])
        assert not errors, f"{page}: a cell failed in the browser: {errors}\n{c['source'][:300]}"
        checks += "assert " in c["source"]
        if c["source"] in book:
            assert text == book[c["source"]], f"{page}: in the browser\n{text!r}\nin the book\n{book[c['source']]!r}"
            compared += 1
    assert checks >= 1, f"{page}: the in-browser notebook runs no check"
    assert compared >= len(cells) - 1, f"{page}: only {compared} of {len(cells)} cells found in the book's run"

    site = sum(p.stat().st_size for p in (HTML / "lite").rglob("*") if p.is_file())
    RESULTS[page] = {"cells": len(cells), "asserting_cells": checks, "kernel_ready_s": round(started - pressed, 1),
                     "first_output_s": round((first_output or done) - pressed, 1), "all_cells_s": round(done - pressed, 1),
                     "lite_site_mb": round(site / 1e6, 1),
                     "browser_cache": "emptied" if first else "warm",
                     "press_mb": round(SERVED["bytes"] / 1e6, 1)}
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(RESULTS, indent=1) + "\n")
    print(page, RESULTS[page])
