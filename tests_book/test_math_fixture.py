"""The book's math set-up, end to end, on a two-page fixture book built with the book's own _config.yml.

Checks that the local MathJax 3 (tools/book_mathjax.py + `make mathjax`) typesets what myst's
dollarmath/amsmath and myst-nb produce with the ``mathjax3_config`` they set: inline ``$..$``, labelled
``$$..$$ (label)`` with its equation number and ``{eq}`` reference, ``\\begin{align}``, and SymPy's
``text/latex`` output in a notebook. Two deliberate mistakes (``$$..$$`` inside a sentence, a
``text/latex`` output with ``$`` inside) must be reported by ``bookcheck.problems``: the checks in
``test_html.py`` can see a broken page.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import bookcheck
import nbformat
import pytest
import yaml

ROOT = bookcheck.ROOT
SITE = ROOT / "_build" / "mathjax-site"

GOOD_MD = r"""# Math fixture

Inline $\mathbf{x}\in\mathbb{R}^D$ and $\log p_\theta(\mathbf{x})$, then a labelled display

$$
\log p(\mathbf{x}) = \mathcal{L} + D_{\mathrm{KL}}\big(q \,\|\, p\big)
$$ (fixture-elbo)

referenced as {eq}`fixture-elbo`, and an amsmath block

\begin{align}
a &= b + c \\
\boldsymbol{\mu} &= \operatorname{diag}(\boldsymbol{\sigma}^2)
\end{align}
"""

BAD_MD = r"""# Broken math

A display written inside a sentence $$\int_0^1 x\,dx = \tfrac12$$ shows its dollar signs.

An equation too long for the column:

$$
a_1 + a_2 + a_3 + a_4 + a_5 + a_6 + a_7 + a_8 + a_9 + a_{10} + a_{11} + a_{12} + a_{13} + a_{14} + a_{15}
+ a_{16} + a_{17} + a_{18} + a_{19} + a_{20} + a_{21} + a_{22} + a_{23} + a_{24} + a_{25} + a_{26} = b
$$

and a line of code too long for it:

```python
result = some_function(first_argument, second_argument, third_argument, fourth_argument, fifth_argument)
```

and a figure drawn wider than the column, which the page can only shrink:

![a wide figure](wide.png)
"""


def _wide_png(path):
    """A 12 x 2 inch matplotlib figure at 100 dpi: 1200 px, wider than the 752 px column."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(12, 2), dpi=100)
    ax.plot([0, 1], [0, 1])
    ax.set_title("text that would shrink")
    fig.savefig(path)
    plt.close(fig)


def _notebook(cells):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = cells
    return nb


@pytest.fixture(scope="module")
def fixture_book(tmp_path_factory):
    if not (SITE / "mathjax" / "tex-mml-chtml.js").is_file():
        pytest.fail("no local MathJax: run `make mathjax`")
    src = tmp_path_factory.mktemp("mathbook")
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config["sphinx"]["config"]["book_mathjax_site"] = str(SITE)
    config["bibtex_bibfiles"] = ["references.bib"]
    (src / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    shutil.copytree(ROOT / "tools", src / "tools", ignore=shutil.ignore_patterns("__pycache__"))
    (src / "references.bib").write_text((ROOT / "book" / "references.bib").read_text())
    (src / "_toc.yml").write_text("format: jb-book\nroot: good\nchapters:\n  - file: nb\n  - file: bad\n")
    (src / "good.md").write_text(GOOD_MD)
    (src / "bad.md").write_text(BAD_MD)
    _wide_png(src / "wide.png")
    code = nbformat.v4.new_code_cell
    nbformat.write(_notebook([
        nbformat.v4.new_markdown_cell("# Notebook\n\nBack to {eq}`fixture-elbo`; inline $\\alpha$."),
        code("import sympy as sp\nx = sp.symbols('x')\nsp.Integral(sp.exp(-x**2), (x, -sp.oo, sp.oo))"),
        code("from IPython.display import Latex\nLatex(r'$\\delta$ and text')"),
    ]), src / "nb.ipynb")
    jb = Path(sys.executable).parent / "jupyter-book"
    env = {**os.environ, "VAEBOOK_BUDGET": "smoke"}
    proc = subprocess.run([str(jb), "build", str(src), "-W", "-n", "--keep-going"], capture_output=True, text=True,
                          env=env)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    html = src / "_build" / "html"
    with bookcheck.serve(html) as url:
        yield html, url


def test_math_is_typeset_with_numbers_and_references(browser, fixture_book):
    html, url = fixture_book
    r = bookcheck.report(browser, url, "good.html")
    assert bookcheck.problems(r, "good.html", html, None) == []
    assert r["mathjax_version"].startswith("3.")
    assert all(urlsplit_host(s) == "127.0.0.1" for s in r["mathjax_scripts"]), r["mathjax_scripts"]
    assert r["math_elements"] == 4 and r["mjx_containers"] >= 4  # 2 inline, 1 labelled display, 1 align
    assert "(1)" in r["text"], "the labelled equation has no number"
    assert eq_ref_text(browser, "#equation-fixture-elbo") == "(1)"


def test_notebook_math_outputs_are_typeset(browser, fixture_book):
    html, url = fixture_book
    r = bookcheck.report(browser, url, "nb.html")
    assert r["mjx_containers"] >= 3  # the inline alpha, SymPy's integral, the Latex output
    assert eq_ref_text(browser, "good.html#equation-fixture-elbo") == "(1)"
    # the deliberate mistake in this page: a text/latex output with "$" inside
    found = bookcheck.problems(r, "nb.html", html, None)
    assert len(found) == 1 and "literal '$'" in found[0], found


def test_a_display_inside_a_sentence_is_reported(browser, fixture_book):
    html, url = fixture_book
    found = bookcheck.problems(bookcheck.report(browser, url, "bad.html"), "bad.html", html, None)
    assert any("raw '$'" in p for p in found), found


def test_an_equation_or_code_wider_than_the_column_is_reported(browser, fixture_book):
    html, url = fixture_book
    found = bookcheck.problems(bookcheck.report(browser, url, "bad.html"), "bad.html", html, None)
    wide = [p for p in found if "does not fit the main column" in p]
    assert any("mjx-container" in p for p in wide), found
    assert any("pre" in p and "some_function" in p for p in wide), found


def test_a_figure_shown_smaller_than_drawn_is_reported(browser, fixture_book):
    html, url = fixture_book
    found = bookcheck.problems(bookcheck.report(browser, url, "bad.html"), "bad.html", html, None)
    assert any("a figure shrunk to fit" in p and "1200 px" in p for p in found), found


def urlsplit_host(src: str) -> str | None:
    return urlsplit(src).hostname


def eq_ref_text(browser, href: str) -> str:
    """The visible text of the {eq} reference to ``href`` on the loaded page."""
    return browser.evaluate(f"document.querySelector('a.reference.internal[href=\"{href}\"]').innerText")
