"""A pytest plugin for nbval: keep each notebook's outputs as nbval executed it.

``colab_like.py --save-executed DIR`` copies this file as the ``conftest.py`` of the folder nbval
runs in, with ``NBVAL_CAPTURE_DIR`` set to DIR. nbval runs a notebook cell by cell in one kernel
and holds each code cell's outputs (``test_outputs``, built from the kernel's messages as
nbformat outputs); after the session, every notebook whose cells ran is written to DIR with those
outputs, code cell by code cell. ``colab_like.py`` then moves them into the repository's own
notebooks (:func:`colab_like.save_executed`), and the book build can take its outputs from there
instead of executing every chapter a second time.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import nbformat

OUT = os.environ.get("NBVAL_CAPTURE_DIR")
_outputs: dict[str, dict[int, list]] = {}


def pytest_runtest_makereport(item, call):
    if OUT and call.when == "call" and hasattr(item, "cell_num") and getattr(item, "test_outputs", None) is not None:
        _outputs.setdefault(str(item.parent.path), {})[item.cell_num] = copy.deepcopy(item.test_outputs)


def pytest_sessionfinish(session, exitstatus):
    if not OUT:
        return
    for path, cells in _outputs.items():
        nb = nbformat.read(path, as_version=4)
        count = 0
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            outs = cells.get(count)
            count += 1
            if outs is None:
                continue
            cell.execution_count = count
            cell.outputs = [nbformat.from_dict(_output(o, count)) for o in outs]
        Path(OUT).mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, Path(OUT) / Path(path).name)


def _output(o, count) -> dict:
    """An nbformat output from the node nbval built: the fields nbformat's schema allows."""
    kind = o["output_type"]
    if kind == "stream":
        return {"output_type": kind, "name": o["name"], "text": o["text"]}
    if kind == "error":
        return {"output_type": kind, "ename": o["ename"], "evalue": o["evalue"], "traceback": list(o["traceback"])}
    out = {"output_type": kind, "data": dict(o.get("data", {})), "metadata": dict(o.get("metadata", {}))}
    if kind == "execute_result":
        out["execution_count"] = o.get("execution_count", count)
    return out
