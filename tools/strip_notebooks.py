"""Notebooks are committed without outputs. ``python tools/strip_notebooks.py`` strips them in
place; ``--check`` fails (exit 1) naming every notebook that still carries outputs."""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def dirty_cells(nb: dict) -> int:
    return sum(1 for c in nb["cells"] if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count")))


def strip(nb: dict) -> dict:
    for c in nb["cells"]:
        if c["cell_type"] == "code":
            c["outputs"] = []
            c["execution_count"] = None
        c.get("metadata", {}).pop("execution", None)
    nb.get("metadata", {}).pop("widgets", None)
    return nb


def main(argv):
    check = "--check" in argv
    bad = []
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = json.loads(path.read_text())
        if check:
            if dirty_cells(nb):
                bad.append(f"{path.relative_to(ROOT)}: {dirty_cells(nb)} code cells carry outputs")
        else:
            path.write_text(json.dumps(strip(nb), indent=1, ensure_ascii=False) + "\n")
    if bad:
        print("Notebooks must be committed stripped; run `python tools/strip_notebooks.py`:\n" + "\n".join(bad))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
