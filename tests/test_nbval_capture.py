"""tests_book/nbval_capture.py keeps the outputs nbval saw, and colab_like.save_executed moves them
into the repository's notebook: what CI builds its book from (the chapters are executed once)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

from tests.test_lowprio import _colab_like

ROOT = Path(__file__).resolve().parent.parent


def test_nbvals_outputs_are_kept_and_moved_into_the_notebook(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# A notebook"),
        nbformat.v4.new_code_cell("print('hello')\nx = 40"),
        nbformat.v4.new_code_cell("from IPython.display import Markdown, display\n"
                                  "display(Markdown('**two**'), metadata={'scrapbook': {'name': 'n'}})\nx + 2"),
        nbformat.v4.new_code_cell("y = 1  # no output"),
    ]
    original = tmp_path / "chapter.ipynb"
    nbformat.write(nb, original)
    # the copy nbval runs: the same cells and one appended, as colab_like's check cell
    work = tmp_path / "work"
    work.mkdir()
    copy = nbformat.read(original, as_version=4)
    copy.cells.append(nbformat.v4.new_code_cell("print('the check cell')"))
    nbformat.write(copy, work / "chapter.ipynb")
    shutil.copy(ROOT / "tests_book" / "nbval_capture.py", work / "conftest.py")
    env = {**os.environ, "NBVAL_CAPTURE_DIR": str(work / "executed")}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
                           "--rootdir", str(work), "--nbval-lax", "--nbval-current-env", "-p", "no:xdist",
                           str(work / "chapter.ipynb")], cwd=work, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:]
    ran = nbformat.read(work / "executed" / "chapter.ipynb", as_version=4)
    assert len(ran.cells) == 5  # the copy, check cell included

    dest = tmp_path / "dest"
    _colab_like().save_executed(work / "executed", [original], dest)
    out = nbformat.read(dest / "chapter.ipynb", as_version=4)
    nbformat.validate(out)
    assert [c.source for c in out.cells] == [c.source for c in nb.cells]  # the check cell left out
    code = [c for c in out.cells if c.cell_type == "code"]
    assert code[0].outputs == [nbformat.from_dict({"output_type": "stream", "name": "stdout", "text": "hello\n"})]
    shown, result = code[1].outputs
    assert shown.output_type == "display_data" and shown.data["text/markdown"] == "**two**"
    assert shown.metadata == {"scrapbook": {"name": "n"}}  # what the book's glue is found by
    assert result.output_type == "execute_result" and result.data["text/plain"] == "42"
    assert code[2].outputs == [] and [c.execution_count for c in code] == [1, 2, 3]
    assert out.metadata["language_info"]["name"] == "python"


def test_a_notebook_whose_code_changed_is_refused(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("a = 1")]
    nbformat.write(nb, tmp_path / "chapter.ipynb")
    executed = tmp_path / "executed"
    executed.mkdir()
    nb.cells = [nbformat.v4.new_code_cell("a = 2")]
    nbformat.write(nb, executed / "chapter.ipynb")
    import pytest

    with pytest.raises(RuntimeError, match="code cells differ"):
        _colab_like().save_executed(executed, [tmp_path / "chapter.ipynb"], tmp_path / "dest")
