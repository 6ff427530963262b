"""tools/book_student.py: the student edition keeps every exercise and no solution."""

import sys
from pathlib import Path

import nbformat
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
from book_student import strip_solutions  # noqa: E402

md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell


def notebook(*cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = list(cells)
    return nb


def test_a_gated_solution_goes_with_its_code_and_the_exercise_stays():
    nb = notebook(
        md("# Chapter"),
        code("x = 1"),
        md("```{exercise} Add\n:label: ex-add\nWhat is 1 + 1?\n```"),
        md("```{solution-start} ex-add\n:class: dropdown\n```"),
        md("It is 2:"),
        code("assert 1 + 1 == 2"),
        md("```{solution-end}\n```"),
        md("After the exercise."),
    )
    assert strip_solutions(nb) == 1
    sources = [c.source for c in nb.cells]
    assert sources == ["# Chapter", "x = 1", "```{exercise} Add\n:label: ex-add\nWhat is 1 + 1?\n```", "After the exercise."]


def test_a_one_cell_solution_is_cut_out_of_its_cell_and_the_rest_of_the_cell_stays():
    nb = notebook(
        md("```{exercise} Q\n:label: ex-q\nWhy?\n```\n\n```{solution} ex-q\n:class: dropdown\nBecause.\n```\n\nMore prose."),
        md("````{solution} ex-q\nOnly a solution, with a fence inside:\n```python\n1\n```\n````"),
    )
    assert strip_solutions(nb) == 2
    assert len(nb.cells) == 1
    assert "Because" not in nb.cells[0].source and "Why?" in nb.cells[0].source and "More prose." in nb.cells[0].source


@pytest.mark.parametrize(
    "cells, message",
    [
        ([md("```{solution-start} ex\n```"), code("1")], "without its solution-end"),
        ([md("```{solution-end}\n```")], "without its solution-start"),
        ([md("```{solution-start} a\n```"), md("```{solution-start} b\n```"), md("```{solution-end}\n```")], "inside"),
    ],
)
def test_a_malformed_solution_is_an_error_naming_the_cell(cells, message):
    with pytest.raises(ValueError, match=message):
        strip_solutions(notebook(*cells))


def test_every_chapter_solution_of_the_book_is_found():
    """Each chapter: as many solutions removed as exercises stated (every exercise has one solution)."""
    root = Path(__file__).resolve().parent.parent
    for path in sorted((root / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        exercises = sum(c.source.count("{exercise}") for c in nb.cells if c.cell_type == "markdown")
        removed = strip_solutions(nb)
        assert removed == exercises, f"{path.name}: {exercises} exercises, {removed} solutions removed"
        left = [c.source[:60] for c in nb.cells if "solution" in c.source and "{" in c.source]
        assert not [s for s in left if "{solution" in s], f"{path.name}: solutions left: {left}"
