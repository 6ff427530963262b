"""The book's wiring: every chapter is in the table of contents, opens in Colab on its own, and
is committed stripped of outputs. And the book layer, ``vaelib.book``: a chapter's header, the data
at its budget, the glue helpers; with ``vaelib.config``'s settings and seeds."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from tools.nbtools import colab_source, repository_url
from vaelib import book, config, data
from vaelib.stats import Interval

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
    # `make lint` runs `nbstripout --verify`; this holds the same line without nbstripout
    for nb in NOTEBOOKS:
        dirty = [c for c in json.loads(nb.read_text())["cells"]
                 if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count"))]
        assert not dirty, f"{nb.name}: {len(dirty)} code cells carry outputs: run `make strip`"


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


# --------------------------------------------------------------------------- vaelib.book: header, budget


def test_the_header_applies_threads_then_seeds_and_prints_the_settings(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(config, "apply_threads", lambda: calls.append("threads") or 1)
    monkeypatch.setattr(config, "device", lambda: torch.device("cpu"))
    monkeypatch.setenv("VAEBOOK_BUDGET", "default")
    torch.manual_seed(123)
    book.header("04")
    drawn = torch.rand(3)
    assert calls == ["threads"]
    assert capsys.readouterr().out.splitlines() == [config.describe(), book.expected_time("04")]
    torch.manual_seed(0)
    assert torch.equal(drawn, torch.rand(3))  # seeded with 0
    book.header()
    assert capsys.readouterr().out.splitlines() == [config.describe()]  # no chapter: no time
    known = re.escape(str(sorted(book.MEASURED_SECONDS)))
    with pytest.raises(ValueError, match=rf"chapter must be one of {known}; got '99'"):
        book.header("99")
    assert calls == ["threads", "threads"] and capsys.readouterr().out == ""  # refused before any change


def test_importing_vaelib_sets_no_threads_the_header_does():
    # a fresh process: VAEBOOK_THREADS reaches torch only through config.apply_threads (book.header)
    code = ("import torch; before = torch.get_num_threads(); import vaelib; from vaelib import book; "
            "imported = torch.get_num_threads(); book.header(); print(before, imported, torch.get_num_threads())")
    env = {**os.environ, "VAEBOOK_THREADS": "3", "VAEBOOK_BUDGET": "smoke"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    describe, counts = out.strip().splitlines()
    before, imported, after = map(int, counts.split())
    assert imported == before and after == 3, out
    assert describe.startswith("budget=smoke") and describe.endswith("threads=3")  # describe reports the count


def test_a_bad_thread_count_is_one_line_before_any_build(monkeypatch):
    monkeypatch.setenv("VAEBOOK_BUDGET", "smoke")
    monkeypatch.setenv("VAEBOOK_THREADS", "two")
    assert config.check_settings() == "error: VAEBOOK_THREADS must be a positive integer; got 'two'"


def test_a_chapter_says_what_its_budget_will_take(monkeypatch):
    monkeypatch.setattr(config, "device", lambda: torch.device("cpu"))
    monkeypatch.setenv("VAEBOOK_BUDGET", "default")
    minutes = f"{book.MEASURED_SECONDS['07'] / 60:.0f}"  # over 120 s: said in minutes
    assert book.expected_time("07") == (f"expected time: about {minutes} minutes (measured on 2 CPU cores "
                                        "at the default budget)")
    monkeypatch.setitem(book.MEASURED_SECONDS, "04", 90)  # under 120 s: said in seconds
    assert book.expected_time("04").startswith("expected time: about 90 s")
    monkeypatch.setenv("VAEBOOK_BUDGET", "smoke")
    assert book.expected_time("04").startswith("expected time: seconds")
    monkeypatch.setenv("VAEBOOK_BUDGET", "full")
    assert book.expected_time("07").startswith("WARNING: the full budget is meant for a GPU")
    monkeypatch.setattr(config, "device", lambda: torch.device("cuda"))
    assert "not measured for the full budget on cuda" in book.expected_time("07")
    with pytest.raises(ValueError, match="chapter must be one of"):
        book.expected_time("99")
    assert not hasattr(config, "expected_time") and not hasattr(config, "MEASURED_SECONDS")  # moved, not copied


def _offline(*args, **kwargs):
    raise RuntimeError("no internet")


def test_load_for_budget_uses_the_digits_below_full(monkeypatch):
    monkeypatch.setattr(data, "mnist", _offline)  # never asked below full
    for budget in ("smoke", "default"):
        monkeypatch.setenv("VAEBOOK_BUDGET", budget)
        train, name = book.load_for_budget("train", binarize=True)
        assert name == "digits" and train.shape == (1, 8, 8) and train.binarize and len(train) == 1438


def test_load_for_budget_at_full_prefers_mnist_then_fashion_mnist_then_the_digits(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("VAEBOOK_BUDGET", "full")
    fake = data.load_digits("test")
    monkeypatch.setattr(data, "mnist", lambda root, split, binarize=False: fake)
    got, name = book.load_for_budget("test", root=tmp_path)
    assert name == "MNIST" and got is fake
    monkeypatch.setattr(data, "mnist", _offline)
    monkeypatch.setattr(data, "fashion_mnist", lambda root, split, binarize=False: fake)
    got, name = book.load_for_budget("test", root=tmp_path)
    assert name == "Fashion-MNIST" and got is fake
    assert "MNIST is not available, trying Fashion-MNIST: no internet" in capsys.readouterr().out
    monkeypatch.setattr(data, "fashion_mnist", _offline)
    got, name = book.load_for_budget("test", root=tmp_path)
    assert name == "digits" and len(got) == len(data.load_digits("test"))
    assert "Fashion-MNIST is not available, using the 8x8 digits instead: no internet" in capsys.readouterr().out


# --------------------------------------------------------------------------- vaelib.config: seeds


@pytest.mark.parametrize("seed", [-1, 2**63, 2**64])
def test_seed_everything_names_a_seed_outside_the_range(seed):
    with pytest.raises(ValueError, match=r"seed must be in \[0, 2\*\*63-1\] .*got " + str(seed)):
        config.seed_everything(seed)  # torch took -1 as 2**64-2 without a word


def test_seed_everything_accepts_the_whole_range_and_only_ints():
    for seed in (0, 2**63 - 1, np.int64(7)):
        config.seed_everything(seed)
    config.seed_everything(7)
    a = torch.rand(2)
    config.seed_everything(np.int64(7))
    assert torch.equal(a, torch.rand(2))
    for bad in (1.0, True, "0", None):
        with pytest.raises(TypeError, match="seed must be an int"):
            config.seed_everything(bad)
    with pytest.raises(ValueError, match=r"base_seed must be in \[0, 2\*\*63-1\]"):
        config.check_seed(-5, "base_seed")  # the caller's argument is named


# --------------------------------------------------------------------------- vaelib.book: glue


@pytest.fixture
def glued(monkeypatch):
    """What the chapter glued, through a stand-in for myst-nb's glue."""
    store = {}
    monkeypatch.setattr(book, "_myst_nb_installed", lambda: True)
    monkeypatch.setattr(book, "_publish_glue", lambda name, value, display: store.__setitem__(name, value))
    return store


@pytest.mark.parametrize("display", [False, True])
def test_glue_publishes_what_myst_nbs_glue_publishes(monkeypatch, display):
    """vaelib.book glues without importing myst_nb.ext.glue (seconds per chapter): the same message."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from IPython.core import display_functions
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.display import Markdown
    from myst_nb import glue as myst_glue

    InteractiveShell.instance()  # display() publishes only inside a shell
    sent = []
    monkeypatch.setattr(display_functions, "publish_display_data", lambda **kw: sent.append(kw))
    fig, ax = plt.subplots(figsize=(2, 1))
    ax.plot([0, 1], [1, 0])
    for value in (0.125, "text", Markdown("**bold**"), fig):
        sent.clear()
        myst_glue("name_a", value, display=display)
        book._publish_glue("name_a", value, display)
        assert len(sent) == 2 and sent[0] == sent[1], f"{type(value).__name__}: {sent}"
        assert sent[1]["metadata"]["scrapbook"] == {"name": "name_a", "mime_prefix": "" if display else book.GLUE_PREFIX}
    plt.close(fig)


def test_glue_stores_without_myst_nb_where_a_book_is_built_from_the_run(monkeypatch):
    # Colab (no myst-nb): nothing stored, a figure shown; VAEBOOK_GLUE=1 (CI's Colab-like run, whose
    # outputs the book is built from): stored as in the book build
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sent, shown = [], []
    monkeypatch.setattr(book, "_myst_nb_installed", lambda: False)
    monkeypatch.setattr(book, "_publish_glue", lambda name, value, display: sent.append(name))
    monkeypatch.setattr("IPython.display.display", lambda *a, **k: shown.append(a))
    monkeypatch.delenv("VAEBOOK_GLUE", raising=False)
    book.glue("a_number", 1.5)
    book.glue_figure("a_fig", plt.subplots(figsize=(1, 1))[0])
    assert sent == [] and len(shown) == 1
    monkeypatch.setenv("VAEBOOK_GLUE", "1")
    book.glue("a_number", 1.5)
    book.glue_figure("a_fig", plt.subplots(figsize=(1, 1))[0])
    assert sent == ["a_number", "a_fig"] and len(shown) == 1


def test_glue_dict_glues_every_item_under_the_prefix(glued):
    assert book.glue_dict("kl_mc", {"mu": np.float64(0.5), "reps": 3, 1: "x"}) is None
    assert glued == {"kl_mc_mu": 0.5, "kl_mc_reps": 3, "kl_mc_1": "x"}
    assert type(glued["kl_mc_mu"]) is float  # a Python number, as glue stores it


@pytest.mark.parametrize("prefix, mapping, error, match", [
    ("kl mc", {"a": 1}, ValueError, r"prefix must be an identifier; got 'kl mc'"),
    ("kl_", {"a": 1}, ValueError, r"prefix 'kl_' ends in '_'"),
    ("kl", {"ok": 1, "a-b": 2}, ValueError, r"key 'a-b' makes the glue name 'kl_a-b', which is not an identifier"),
    ("kl", {"ok": 1, "a b": 2}, ValueError, r"key 'a b' makes the glue name 'kl_a b'"),
    ("kl", {1.5: 1}, TypeError, r"keys must be str or int; got 1.5"),
    ("kl", {True: 1}, TypeError, r"keys must be str or int; got True"),
    ("kl", {"1": 1, 1: 2}, ValueError, r"keys '1' and 1 both make 'kl_1'"),
    ("kl", [("a", 1)], TypeError, r"mapping must be a dict of key -> value; got list"),
])
def test_glue_dict_refuses_bad_names_before_gluing_anything(glued, prefix, mapping, error, match):
    with pytest.raises(error, match=match):
        book.glue_dict(prefix, mapping)
    assert glued == {}  # nothing half-glued


def test_a_table_from_dicts_formats_each_column_and_escapes_pipes():
    rows = [{"arm": "plain", "n": 5, "rate": np.float64(3.14159), "holes": 0.123},
            {"arm": "a|b", "n": np.int64(12), "rate": torch.tensor(2.0), "holes": 0.5}]
    columns = {"arm": "arm", "n": "seeds", "rate": "rate $R$ (nats)", "holes": "in holes | prior"}
    assert book.table_text(rows, columns, floatfmt={"holes": ".1%"}) == (
        "| arm | seeds | rate $R$ (nats) | in holes \\| prior |\n"
        "|---|---|---|---|\n"
        "| plain | 5 | 3.14 | 12.3% |\n"
        "| a\\|b | 12 | 2.00 | 50.0% |")
    # columns default to the first row's keys; a sequence of keys chooses and orders them
    assert book.table_text([{"b": 1.0, "a": 2}], floatfmt=".1f") == "| b | a |\n|---|---|\n| 1.0 | 2 |"
    assert book.table_text(rows, ["rate", "arm"]) == "| rate | arm |\n|---|---|\n| 3.14 | plain |\n| 2.00 | a\\|b |"


def test_a_table_from_lists_takes_one_spec_per_column_and_formats_intervals():
    iv = Interval(-0.5, -0.7, -0.3, 5, 0.95)
    rows = [("1 to 4", iv, 4.0), ["4 to 16", Interval(0.25, 0.1, 0.4, 5, 0.95), 16.0]]
    assert book.table_text(rows, ["$\\beta$ step", "change of rate", "to"], floatfmt=["", ".2f", "g"]) == (
        "| $\\beta$ step | change of rate | to |\n"
        "|---|---|---|\n"
        "| 1 to 4 | -0.50 [-0.70, -0.30] | 4 |\n"
        "| 4 to 16 | 0.25 [0.10, 0.40] | 16 |")
    # a mapping names list columns for floatfmt
    assert book.table_text([[0.5, 0.25]], {"a": "A", "b": "B"}, floatfmt={"b": ".0%"}) == (
        "| A | B |\n|---|---|\n| 0.50 | 25% |")


@pytest.mark.parametrize("rows, kw, error, match", [
    ([], {}, ValueError, "rows is empty"),
    ("abc", {}, TypeError, "rows must be a list of dicts or a list of lists; got str"),
    ([{"a": 1}, [1]], {}, TypeError, r"rows\[1\]: rows must be all dicts or all lists"),
    ([[1, 2]], {}, ValueError, r"columns \(the headers\) are needed when rows are lists"),
    ([[1, 2], [1]], dict(columns=["a", "b"]), ValueError, r"rows\[1\] has 1 cells for 2 columns"),
    ([{"a": 1, "b": 2.0}, {"a": 2}], {}, ValueError, r"rows\[1\] has no 'b'"),
    ([{"a": 1}, {"a": 2, "c": 3}], {}, ValueError, r"rows\[1\] has 'c', which rows\[0\] has not"),
    ([{"a": 1}], dict(floatfmt={"rat": ".1f"}), ValueError, r"floatfmt names columns the table does not have: \['rat'\]"),
    ([{"a": 1.0}], dict(floatfmt="d"), ValueError, r"floatfmt for column 'a': 'd' is not a format spec for numbers"),
    ([{"a": 1.0}], dict(floatfmt=[".1f", ".2f"]), ValueError, r"floatfmt has 2 specs for 1 columns"),
    ([{"a": 1.0}], dict(floatfmt={"a": 2}), TypeError, r"floatfmt for column 'a' must be a format spec"),
    ([{"a": None}], {}, TypeError, r"rows\[0\], column 'a': cannot format None"),
    ([{"a": [1.0, 2.0]}], {}, TypeError, r"rows\[0\], column 'a': cannot format \[1.0, 2.0\]"),
    ([{"a": "two\nlines"}], {}, ValueError, r"rows\[0\], column 'a': a Markdown table cell must be one line"),
    ([[1]], dict(columns=[3]), TypeError, r"column headers must be str; column 3 has 3"),
    ([[1, 2]], dict(columns=["a", "a"]), ValueError, r"columns names a column twice"),
])
def test_a_bad_table_is_refused_with_the_row_and_column(glued, rows, kw, error, match):
    with pytest.raises(error, match=match):
        book.glue_table("t", rows, **kw)
    assert glued == {}


def test_glue_table_glues_the_table_as_markdown(glued):
    from IPython.display import Markdown

    rows = [{"arm": "plain", "rate": 3.14159}]
    assert book.glue_table("col_table", rows, {"arm": "arm", "rate": "rate (nats)"}, floatfmt={"rate": ".1f"}) is None
    assert isinstance(glued["col_table"], Markdown)
    assert glued["col_table"].data == "| arm | rate (nats) |\n|---|---|\n| plain | 3.1 |"
    with pytest.raises(ValueError, match="glue names must be identifiers; got 'col table'"):
        book.glue_table("col table", rows)
    assert list(glued) == ["col_table"]


def test_the_book_layer_imports_without_myst_nb(monkeypatch):
    monkeypatch.setitem(sys.modules, "myst_nb", None)  # `import myst_nb` raises ImportError, as in Colab
    book.glue("x", 1.0)
    book.glue_dict("p", {"a": 1})
    book.glue_table("t", [{"a": 1.0}])


def test_glue_holm_glues_the_adjusted_verdict_beside_each_raw_one(glued):
    from vaelib.stats import Interval

    # both resolved raw (their intervals exclude zero); with m = 2 Holm needs 0.025 for the first
    fam = {"cmp_a": Interval(1.0, 0.2, 1.8, 8, 0.95, 0.03), "cmp_b": Interval(-1.0, -1.9, -0.1, 8, 0.95, 0.01)}
    assert book.glue_holm(fam) == {"cmp_a": "higher", "cmp_b": "lower"}
    assert {k: v.data for k, v in glued.items()} == {
        "cmp_a_holm": "holds after Holm's adjustment", "cmp_b_holm": "holds after Holm's adjustment"}
    fam["cmp_b"] = Interval(-1.0, -1.9, -0.1, 8, 0.95, 0.04)
    assert book.glue_holm(fam) == {"cmp_a": "unresolved", "cmp_b": "unresolved"}
    assert glued["cmp_a_holm"].data == "not resolved after Holm's adjustment"
    # a share of seeds is judged against one half, and says so
    assert book.verdict_text(Interval(0.9, 0.6, 0.98, 10, 0.95, 0.01, 0.5)) == "resolved: above one half"


def test_holm_holds_reads_each_claim_in_its_declared_direction(glued):
    from vaelib.stats import Interval

    up = Interval(1.0, 0.2, 1.8, 8, 0.95, 0.001)
    fam = {"c_up": (up, 1), "c_wrong": (up, -1), "c_down": (Interval(-1.0, -1.9, -0.1, 8, 0.95, 0.01), -1)}
    # c_wrong is resolved raw but above zero, against its declared "below": it enters with p = 1
    assert book.holm_holds(fam) == {"c_up": True, "c_wrong": False, "c_down": True}
    assert glued["c_wrong_holm"].data == "not resolved after Holm's adjustment"
    with pytest.raises(TypeError, match=r"family\['x'\] must be \(interval, sign\)"):
        book.holm_holds({"x": up})


def test_claim_table_rows_say_what_kind_of_claim_each_is(glued):
    from vaelib.stats import Interval

    up, flat = Interval(1.0, 0.2, 1.8, 8, 0.95, 0.004), Interval(0.1, -0.3, 0.5, 8, 0.95, 0.6)
    table = book.ClaimTable({"s1": True, "s2": False, "s3": True}, asserted=["s1"], withdrawn=["s3"])
    primary = table.row("primary", up, sign=1)
    assert primary == dict(claim="primary", estimate="1.00 [0.20, 1.80]", p="0.004", verdict="above 0",
                           holm="tested alone", kind="primary, asserted")
    assert table.row("one", up, ".1f", 1, "s1")["kind"] == "asserted"
    wrong = table.row("two", up, sign=-1, name="s2")  # measured above, declared below
    assert (wrong["p"], wrong["holm"], wrong["kind"]) == ("1", "not resolved", "not asserted")
    assert table.row("three", flat, sign=1, name="s3")["kind"] == "assert withdrawn"
    scaled = table.row("reported", flat, ".1f", scale=1000)
    assert (scaled["estimate"], scaled["p"], scaled["verdict"], scaled["kind"]) == (
        "100.0 [-300.0, 500.0]", "—", "not resolved", "reported, no claim")
    assert book.raw_word(Interval(1.3, 1.1, 1.5, 8, 0.95, 0.01), "1") == "above 1"
    table.glue("x_claims")
    assert glued["x_claims"].data.splitlines()[0] == (
        "| claim | estimate [95% CI] | two-sided $p$, declared direction | verdict | after Holm's adjustment | status |")
    assert len(glued["x_claims"].data.splitlines()) == 2 + 5
    with pytest.raises(KeyError, match="claim 's9' is not in the family"):
        table.row("nine", up, sign=1, name="s9")
    with pytest.raises(ValueError, match="a named claim needs its declared direction"):
        table.row("one", up, name="s1")
    with pytest.raises(ValueError, match=r"asserted and withdrawn must name claims of holds; \['s4'\]"):
        book.ClaimTable({"s1": True}, asserted=["s4"])


def test_glue_claim_says_resolved_or_not_resolved_in_bold(glued):
    import numpy as np

    book.glue_claim("c_one", True)
    book.glue_claim("c_two", np.bool_(False))  # a comparison of NumPy values
    assert glued["c_one"].data == "resolved as declared"
    assert glued["c_two"].data == "**not resolved at this budget**"
    with pytest.raises(TypeError, match="holds must be a bool .*; got float"):
        book.glue_claim("c_three", 0.7)


def test_assert_declared_asserts_only_where_the_budget_trains(monkeypatch, capsys):
    holds = {"a": True, "b": False}
    monkeypatch.setenv("VAEBOOK_BUDGET", "default")
    book.assert_declared(True, holds, ["a"])  # b is reported, not asserted
    assert capsys.readouterr().out == "the claims declared for assertion hold on the test seeds\n"
    with pytest.raises(AssertionError, match=r"do not hold after Holm's adjustment: \['b'\]"):
        book.assert_declared(True, holds, ["a", "b"])
    with pytest.raises(AssertionError, match="the primary claim does not hold"):
        book.assert_declared(False, holds, ["a"])
    with pytest.raises(KeyError, match=r"asserted names claims that are not in holds: \['c'\]"):
        book.assert_declared(True, holds, ["c"])
    monkeypatch.setenv("VAEBOOK_BUDGET", "smoke")  # untrained models: nothing to test
    book.assert_declared(False, holds, ["a", "b"])
    assert capsys.readouterr().out == "smoke budget: the claims are reported, not asserted\n"


def test_glue_figure_glues_a_png_whatever_the_backend(glued):
    """Under a backend that draws no image in a kernel (MPLBACKEND=Agg) a glued figure is still a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from IPython.core.formatters import format_display_data

    fig, ax = plt.subplots(figsize=(2, 1))
    ax.plot([0, 1], [1, 0])
    book.glue_figure("fig_a", fig)
    bundle, _ = format_display_data(glued["fig_a"])
    assert "image/png" in bundle, f"glued as {sorted(bundle)}"
    assert glued["fig_a"].data[:8] == b"\x89PNG\r\n\x1a\n"
    assert not plt.fignum_exists(fig.number)  # closed: the notebook does not draw it again
