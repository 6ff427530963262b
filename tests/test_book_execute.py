from pathlib import Path

from tools import book_execute
from vaelib import book

ROOT = Path(__file__).resolve().parent.parent


def test_every_notebook_of_the_toc_is_executed_longest_first():
    chapters = book_execute._chapters(ROOT / "_toc.yml")
    # every notebook page, each once: the chapters and the notebook pages of book/ (the roadmap)
    assert sorted(chapters) == sorted([*(ROOT / "notebooks").glob("*.ipynb"), *(ROOT / "book").glob("*.ipynb")])
    order = book_execute._longest_first(chapters)
    measured = [book.chapter_id(p.stem) for p in order if book.chapter_id(p.stem) in book.MEASURED_SECONDS]
    # every measured chapter first, in decreasing measured time; the rest after them
    assert sorted(measured) == sorted(book.MEASURED_SECONDS)
    times = [book.MEASURED_SECONDS[k] for k in measured]
    assert times == sorted(times, reverse=True)
    assert [book.chapter_id(p.stem) for p in order[: len(measured)]] == measured


def test_a_bad_worker_count_is_refused_before_anything_runs(capsys):
    import pytest

    with pytest.raises(SystemExit):
        book_execute.main(["--workers", "0"])
    assert "--workers must be at least 1; got 0" in capsys.readouterr().err


def test_cell_seconds_reads_nbclients_timing_and_removes_it():
    import nbformat

    nb = nbformat.v4.new_notebook()
    timed = nbformat.v4.new_code_cell("\nx = 1\ny = 2")
    timed.metadata["execution"] = {"iopub.execute_input": "2026-12-03T10:00:00.250000Z",
                                   "shell.execute_reply": "2026-12-03T10:00:03.000000Z"}
    untimed = nbformat.v4.new_code_cell("z = 3")
    nb.cells = [nbformat.v4.new_markdown_cell("# t"), timed, untimed]
    assert book_execute._cell_seconds(nb) == [(2.75, 1, "x = 1")]
    assert "execution" not in nb.cells[1].metadata  # the cached notebook carries no timing
