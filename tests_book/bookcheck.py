"""What the reader's checks look at in a built page, shared by ``test_html.py`` and ``test_math_fixture.py``."""

from __future__ import annotations

import contextlib
import functools
import http.server
import re
import threading
from pathlib import Path
from urllib.parse import unquote, urlsplit

import yaml

ROOT = Path(__file__).resolve().parent.parent
# lite: the JupyterLite app of the in-browser chapters (tests_book/test_lite.py checks it)
SKIP_DIRS = {"_static", "_sources", "_images", "_sphinx_design_static", "mathjax", "_downloads", "lite"}
REDIRECT = re.compile(r'<meta[^>]+http-equiv="refresh"[^>]+content="\d+;\s*url=([^"]+)"', re.I)

# Runs in the page after its load event; returns a JSON-able report.
PAGE_REPORT_JS = r"""
(async () => {
  const report = {};
  const scripts = [...document.scripts].map(s => s.src).filter(s => /mathjax/i.test(s));
  report.mathjax_scripts = scripts;
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
  report.mathjax_version = (window.MathJax && MathJax.version) || null;
  const maths = [...document.querySelectorAll('.math')];
  report.math_elements = maths.length;
  report.untypeset = maths.filter(m => !m.querySelector('mjx-container')).map(m => m.textContent.slice(0, 120));
  report.mjx_containers = document.querySelectorAll('mjx-container').length;
  // TeX that MathJax was given: a "$" left inside means nested delimiters (e.g. a text/latex output "$x$ and y")
  report.tex_with_dollar = [];
  if (window.MathJax && MathJax.startup && MathJax.startup.document) {
    for (const item of MathJax.startup.document.math) {
      if (/(^|[^\\])\$/.test(item.math)) report.tex_with_dollar.push(item.math.slice(0, 120));
    }
  }
  report.tex_errors = [...document.querySelectorAll('mjx-merror, [data-mjx-error]')]
      .map(e => (e.getAttribute('data-mjx-error') || e.textContent).slice(0, 200));
  // images: make lazy ones load now, then wait for each to decode (or fail)
  const imgs = [...document.images];
  imgs.forEach(i => { i.loading = 'eager'; });
  await Promise.all(imgs.map(i => i.decode().catch(() => null)));
  report.images = imgs.length;
  report.broken_images = imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src'));
  report.links = [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href'));
  report.srcs = [...document.querySelectorAll('[src]')].map(e => e.getAttribute('src'));
  // visible text, all of it (outputs included), then the prose alone (code and MathJax's MathML hidden)
  const bodyText = () => (document.body ? document.body.innerText : "");
  report.text = bodyText();
  const hide = document.createElement('style');
  hide.textContent = 'pre, code, .highlight, .cell_input, .cell_output, .output, script, style, ' +
      'mjx-assistive-mml { display: none !important; }';
  (document.head || document.documentElement).appendChild(hide);
  report.prose = bodyText();
  hide.remove();
  report.error_outputs = [...document.querySelectorAll('.output.traceback, .output.error')]
      .map(e => e.innerText.slice(0, 300));
  report.stderr = [...document.querySelectorAll('.output.stderr')].map(e => e.innerText);
  // what does not fit the main column at this window width: a display equation, code, an output, a
  // figure or a table wider than the column, or scrolling sideways inside its own box (the theme lays
  // out a cell whose input is hidden all the same, so it is looked at too)
  report.overflow = [];
  const column = document.querySelector('article.bd-article') || document.querySelector('main');
  if (column) {
    const right = column.getBoundingClientRect().right;
    report.column_width = Math.round(column.getBoundingClientRect().width);
    const wide = 'mjx-container[display="true"], pre, img, figure, table, .cell_output, .output';
    for (const e of column.querySelectorAll(wide)) {
      const r = e.getBoundingClientRect();
      if (r.width === 0 || r.height === 0) continue;
      const past = Math.round(r.right - right), scroll = e.scrollWidth - e.clientWidth;
      if (past > 1 || scroll > 1) {
        const what = e.tagName.toLowerCase() + (e.className && typeof e.className === 'string' ?
            '.' + e.className.trim().split(/\s+/)[0] : '');
        const text = (e.getAttribute('src') || e.textContent || '').trim().replace(/\s+/g, ' ').slice(0, 70);
        report.overflow.push(`${what} ${Math.max(past, scroll)} px too wide: ${text}`);
      }
    }
    // every image is a figure with a caption (a plot a cell shows by itself has none)
    report.uncaptioned = [...column.querySelectorAll('img')]
        .filter(img => !(img.closest('figure') && img.closest('figure').querySelector('figcaption')))
        .map(img => img.getAttribute('src'));
    // a figure shown much smaller than it was drawn shrinks the text in it: figures are drawn to fit
    // (7.5 in at 100 dpi is 750 px, shown at 90% in the 674 px a figure gets at 1280 px)
    report.shrunk = [];
    for (const img of column.querySelectorAll('img')) {
      const shown = img.getBoundingClientRect().width;
      if (img.naturalWidth > 0 && shown > 0 && shown < 0.85 * img.naturalWidth) {
        report.shrunk.push(`${img.getAttribute('src')} drawn ${img.naturalWidth} px wide, shown at ` +
            `${Math.round(100 * shown / img.naturalWidth)}%`);
      }
    }
  }
  return report;
})()
"""




def pages(html: Path) -> list[str]:
    """Every ``*.html`` page under ``html`` (relative paths), assets' folders left out."""
    if not html.is_dir():
        return []
    return sorted(
        p.relative_to(html).as_posix() for p in html.rglob("*.html") if not SKIP_DIRS & set(p.relative_to(html).parts[:-1])
    )


def colab_prefix(config_file: Path = ROOT / "_config.yml") -> str:
    """``https://colab.research.google.com/github/<owner>/<repo>/blob/<branch>/`` from the book's config."""
    config = yaml.safe_load(config_file.read_text())
    repo = config["repository"]
    owner_repo = urlsplit(repo["url"]).path.strip("/").removesuffix(".git")
    colab = config.get("launch_buttons", {}).get("colab_url", "https://colab.research.google.com").rstrip("/")
    return f"{colab}/github/{owner_repo}/blob/{repo.get('branch', 'main')}/"


def redirect_target(html: Path, page: str) -> str | None:
    """For a redirect stub such as ``index.html`` (``<meta http-equiv="refresh">``), its target URL."""
    m = REDIRECT.search((html / page).read_text(errors="replace"))
    return m.group(1) if m else None


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve(html: Path):
    """Serve ``html`` on 127.0.0.1 (a free port) for the duration; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(html))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()


def report(browser, base_url: str, page: str) -> dict:
    browser.goto(base_url + page)
    return browser.evaluate(PAGE_REPORT_JS)


def problems(r: dict, page: str, html: Path, colab_prefix: str | None) -> list[str]:
    """Everything wrong with one page's report ``r``; empty when the page is fine."""
    found = []

    # math
    for src in r["mathjax_scripts"]:
        if urlsplit(src).hostname not in ("127.0.0.1", None):
            found.append(f"MathJax is loaded from the network ({src}); `make mathjax` provides a local copy")
    if r["math_elements"]:
        if not r["mathjax_version"]:
            found.append(f"{r['math_elements']} math elements but MathJax did not run")
        elif not r["mathjax_version"].startswith("3."):
            found.append(f"MathJax {r['mathjax_version']}, expected 3.x")
    if r["untypeset"]:
        found.append(f"math not typeset by MathJax: {r['untypeset'][:3]}")
    if r["tex_errors"]:
        found.append(f"TeX errors: {r['tex_errors'][:3]}")
    if r["tex_with_dollar"]:
        found.append(f"TeX with a literal '$' inside (nested delimiters?): {r['tex_with_dollar'][:3]}")
    for raw in ("\\(", "\\)", "\\[", "\\]", "$"):
        if raw in r["prose"]:
            i = r["prose"].index(raw)
            found.append(f"raw {raw!r} in the visible text: ...{r['prose'][max(0, i - 60):i + 60]!r}...")

    # images and local links
    if r["broken_images"]:
        found.append(f"images that do not load: {r['broken_images']}")
    for ref in r["links"] + r["srcs"]:
        parts = urlsplit(ref)
        if parts.scheme or parts.netloc or not parts.path:
            continue
        target = (html / page).parent / unquote(parts.path)
        if not target.resolve().is_relative_to(html) or not target.exists():
            found.append(f"local link to a missing file: {ref}")

    # the page fits the screen (the window is 1280 px wide, see cdp.Browser)
    for item in r.get("overflow", []):
        found.append(f"does not fit the main column ({r.get('column_width')} px): {item}")
    for src in r.get("uncaptioned", []):
        found.append(f"an image without a caption (glue it and show it with a captioned glue:figure): {src}")
    for item in r.get("shrunk", []):
        found.append(f"a figure shrunk to fit, its text with it (draw it at most 7.5 in wide): {item}")

    # errors shown to the reader
    if "Traceback (most recent call last)" in r["text"]:
        found.append("a Python traceback is shown")
    if re.search(r"<Figure size \d+x\d+ with \d+ Axes>", r["text"]):
        found.append("a figure shown as the text '<Figure size ...>': glued without its image")
    if "\x1b[" in r["text"] or "[0;31m" in r["text"]:
        found.append("raw ANSI escape codes are shown")
    if r["error_outputs"]:
        found.append(f"error outputs are shown: {r['error_outputs'][:2]}")
    for out in r["stderr"]:
        if "Warning:" in out or "Error" in out:
            found.append(f"a warning/error is printed in a cell output: {out[:300]!r}")

    # Colab launch button on chapter pages
    if colab_prefix and page.startswith("notebooks/"):  # every chapter is a notebook under notebooks/
        expected = colab_prefix + page.removesuffix(".html") + ".ipynb"
        colab = [h for h in r["links"] if "colab.research.google.com" in h]
        if expected not in colab:
            found.append(f"no Colab launch link {expected} (found {colab})")

    return found
