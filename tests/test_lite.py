"""The in-browser notebooks (tools/book_lite.py): which cells a chapter gives them, and that those cells
run with what the browser has (SymPy and the standard library) and nothing else.

The browser itself is tested by tests_book/test_lite.py on a built book; here every generated cell
runs in a CPython subprocess where importing torch, NumPy, SciPy, matplotlib, scikit-learn or vaelib
raises, so a cell that needs one of them fails here, in seconds, without a browser.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import book_lite  # noqa: E402
import yaml  # noqa: E402

CHAPTERS = yaml.safe_load((ROOT / "_config.yml").read_text())["sphinx"]["config"]["book_lite_chapters"]

RUNNER = r"""
import importlib.abc, json, sys
BLOCK = {"torch", "numpy", "scipy", "matplotlib", "sklearn", "vaelib", "IPython"}
class NotInTheBrowser(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in BLOCK:
            raise ModuleNotFoundError(f"{name} is not in the browser")
sys.meta_path.insert(0, NotInTheBrowser())
nb = json.load(open(sys.argv[1]))
ns = {"__name__": "__main__"}
for i, cell in enumerate(nb["cells"]):
    if cell["cell_type"] == "code":
        exec(compile(cell["source"], f"<lite cell {i}>", "exec"), ns)
print("ALL CELLS RAN")
"""


def _nb(*cells):
    out = []
    for kind, src, *tags in cells:
        cell = {"cell_type": kind, "metadata": {"tags": tags} if tags else {}, "source": src}
        if kind == "code":
            cell |= {"outputs": [], "execution_count": None}
        out.append(cell)
    return {"cells": out, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def test_the_selection_rule():
    chapter = _nb(
        ("code", "import subprocess\nprint('colab')", "remove-cell"),
        ("markdown", "# A chapter\n\nText."),
        ("code", "import numpy as np\nimport sympy as sp\nfrom vaelib import config\nconfig.seed_everything(0)"),
        ("markdown", "## Part one"),
        ("code", "x = sp.Symbol('x')\nassert sp.diff(x**2, x) == 2 * x"),
        ("code", "y = np.ones(3)"),  # reads np: out
        ("code", "f = sp.lambdify(x, x**2, 'numpy')"),  # numpy in disguise: out
        ("code", "z = y + 1"),  # reads y, bound only by a cell that is out: out
        ("markdown", "## Part two\n\n### Detail"),
        ("code", "def g(t):\n    return t + x\n\nassert g(1) == 1 + x"),
        ("code", "%timeit g(1)"),  # not Python: out
        ("code", "glue('a', 1)", "hide-input"),
    )
    nb, info = book_lite.lite_notebook(chapter, "notebooks/xx.ipynb")
    assert info == {"title": "A chapter", "code_cells": 8, "kept": 2}  # the Colab cell is not counted
    code = [c["source"] for c in nb["cells"] if c["cell_type"] == "code"]
    assert code == ["import sympy as sp", chapter["cells"][4]["source"], chapter["cells"][9]["source"]]
    markdown = [c["source"] for c in nb["cells"] if c["cell_type"] == "markdown"]
    assert markdown[0].startswith("# A chapter: the SymPy checks, in your browser")
    assert "2 of its 8 code cells" in markdown[0]
    assert markdown[1:] == ["## Part one", "## Part two", "### Detail"]
    assert nb["metadata"]["kernelspec"]["name"] == "python"
    assert len({c["id"] for c in nb["cells"]}) == len(nb["cells"])


def test_a_missing_or_torch_only_chapter_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="book_lite_chapters names 'notebooks/nope'"):
        book_lite.write_lite_notebooks(tmp_path, ["notebooks/nope"], tmp_path / "out")
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "t.ipynb").write_text(json.dumps(_nb(("code", "import torch\nprint(torch.ones(1))"))))
    with pytest.raises(ValueError, match="no code cell of this chapter runs on SymPy alone"):
        book_lite.write_lite_notebooks(tmp_path, ["notebooks/t"], tmp_path / "out")


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_generated_cell_runs_without_torch_numpy_or_vaelib(chapter, tmp_path):
    summary = book_lite.write_lite_notebooks(ROOT, [chapter], tmp_path)
    nb_path = tmp_path / (Path(chapter).name + ".ipynb")
    nb = json.loads(nb_path.read_text())
    checks = sum("assert " in c["source"] for c in nb["cells"] if c["cell_type"] == "code")
    assert summary[chapter]["kept"] >= 3 and checks >= 2, (summary, checks)  # a chapter's checks, not a stub
    done = subprocess.run([sys.executable, "-c", RUNNER, str(nb_path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "ALL CELLS RAN" in done.stdout, done.stderr[-3000:]


def test_a_cell_needing_numpy_fails_the_runner(tmp_path):
    """The runner above can fail: a cell that slipped past the rule (numpy through a string) raises."""
    nb = _nb(("code", "import sympy as sp"), ("code", "import importlib\nimportlib.import_module('numpy')"))
    path = tmp_path / "bad.ipynb"
    path.write_text(json.dumps(nb))
    done = subprocess.run([sys.executable, "-c", RUNNER, str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "numpy is not in the browser" in done.stderr
