"""Write a chapter notebook from a list of cells (used by authors; the notebooks are the source).

    from tools.nbtools import write_notebook, md, code
    write_notebook("notebooks/01_x.ipynb", [md("# Title"), code("x = 1")])

Every chapter starts with the same Colab cell (:func:`colab_cell`), so it runs by itself in
Colab; tests/test_book_config.py checks that.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parent.parent


def repository_url() -> str:
    return yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]


def colab_source(url: str | None = None) -> str:
    url = url or repository_url()
    # formatted as `ruff format` writes it at the notebooks' 75 columns (notebooks/ruff.toml)
    return (
        "# In Colab, install vaelib from the book's repository (Colab's own torch is\n"
        "# kept). Anywhere else this cell does nothing: run the book from its\n"
        "# repository.\n"
        "import subprocess\n"
        "import sys\n"
        "\n"
        'if "google.colab" in sys.modules:\n'
        "    subprocess.run(\n"
        "        [\n"
        "            sys.executable,\n"
        '            "-m",\n'
        '            "pip",\n'
        '            "install",\n'
        '            "-q",\n'
        f'            "git+{url}",\n'
        "        ],\n"
        "        check=True,\n"
        "    )"
    )


def md(text: str):
    return nbformat.v4.new_markdown_cell(text.strip("\n"))


def code(src: str, tags: list[str] | None = None):
    cell = nbformat.v4.new_code_cell(src.strip("\n"))
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def colab_cell():
    return code(colab_source(), tags=["remove-cell"])


def write_notebook(path, cells) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells = [colab_cell(), *cells]
    for i, c in enumerate(nb.cells):
        c["id"] = f"c{i:03d}"
    nbformat.validate(nb)
    Path(path).write_text(nbformat.writes(nb) + "\n")


def refresh_colab_cells() -> list[str]:
    """Rewrite the first code cell of every chapter to the Colab cell for ``repository.url``
    (run after changing the URL in ``_config.yml``, e.g. in a fork). Returns the changed files."""
    changed = []
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        first = next(c for c in nb.cells if c.cell_type == "code")
        if first.source != colab_source():
            first.source = colab_source()
            first.metadata["tags"] = ["remove-cell"]
            path.write_text(nbformat.writes(nb) + "\n")
            changed.append(path.name)
    return changed


if __name__ == "__main__":
    import sys

    if sys.argv[1:] != ["--refresh-colab"]:
        sys.exit("usage: python -m tools.nbtools --refresh-colab")
    print("\n".join(refresh_colab_cells()) or "all Colab cells up to date")
