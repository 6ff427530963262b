"""The book's wiring: every chapter is in the table of contents, opens in Colab on its own, and
is committed stripped of outputs."""

import json
from pathlib import Path

import yaml

from tools.nbtools import colab_source, repository_url
from tools.strip_notebooks import dirty_cells

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _toc_files(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ("file", "root"):
                yield v
            else:
                yield from _toc_files(v)
    elif isinstance(node, list):
        for v in node:
            yield from _toc_files(v)


def test_every_notebook_is_in_the_toc_and_every_toc_entry_exists():
    toc = list(_toc_files(yaml.safe_load((ROOT / "_toc.yml").read_text())))
    assert NOTEBOOKS, "no chapters found"
    for nb in NOTEBOOKS:
        assert f"notebooks/{nb.stem}" in toc, f"{nb.name} is not in _toc.yml"
    for entry in toc:
        assert any((ROOT / (entry + ext)).exists() for ext in (".md", ".ipynb")), f"_toc.yml names missing {entry}"


def test_every_chapter_starts_with_the_colab_cell_for_the_configured_repository():
    url = repository_url()
    assert url.startswith("https://")
    expected = colab_source(url)
    for nb in NOTEBOOKS:
        cells = json.loads(nb.read_text())["cells"]
        first_code = next(c for c in cells if c["cell_type"] == "code")
        assert "".join(first_code["source"]) == expected, f"{nb.name}: first code cell is not the Colab cell"


def test_notebooks_are_committed_stripped():
    for nb in NOTEBOOKS:
        assert dirty_cells(json.loads(nb.read_text())) == 0, f"{nb.name} carries outputs: run `make strip`"


def test_chapters_read_files_only_through_vaelib():
    for nb in NOTEBOOKS:
        src = "".join("".join(c["source"]) for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code")
        for bad in ("open(", "read_csv(", "np.load(", "../"):
            assert bad not in src, f"{nb.name} reads a file directly ({bad}); go through vaelib"


def test_the_lock_pins_every_requirement_inside_its_range():
    """constraints.txt (``make lock``) pins each package requirements.txt and pyproject.toml name,
    torch excepted (TORCH_SPEC installs it), to a version their ranges allow: a lock that has
    drifted from the ranges, or lost a package, fails here."""
    import tomllib
    from packaging.requirements import Requirement

    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith(("#", " ", "-")):
            name, version = line.split("==")
            pins[name.lower().replace("_", "-")] = version
    wanted = [line for line in (ROOT / "requirements.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    wanted += tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for spec in wanted:
        req = Requirement(spec)
        name = req.name.lower().replace("_", "-")
        if name == "torch":
            assert name not in pins, "torch must stay out of the lock"
            continue
        assert name in pins, f"{name} is required but not pinned in constraints.txt: run make lock"
        assert req.specifier.contains(pins[name], prereleases=True), (spec, pins[name])
