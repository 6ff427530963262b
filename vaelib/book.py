"""The book layer: what every chapter does around vaelib, usable where myst-nb is absent (Colab).

* :func:`header` -- a chapter's first lines: threads applied, seeds set, the settings and (for a
  training chapter) the time its budget is expected to take (:func:`expected_time`),
* :func:`load_for_budget` -- the images a training chapter uses at the current budget,
* :func:`glue`, :func:`glue_dict`, :func:`glue_table`, :func:`glue_interval`, :func:`glue_figure` --
  values, tables and figures for the prose,
* :func:`glue_holm`, :func:`holm_holds`, :func:`glue_claim`, :func:`assert_declared`,
  :class:`ClaimTable` -- a chapter's family of declared claims through Holm's adjustment, their
  verdicts, the asserts of the declared ones, and its summary table of claims.

Chapters quote numbers with ``{glue:}`name``` in their text; :func:`glue` stores them with
myst-nb when it is installed (the book build) and, where it is not, prints nothing, or shows
the value when ``display=True``, so a chapter runs unchanged in Colab. The budget's policy lives
here and in :mod:`vaelib.config`; the loaders of :mod:`vaelib.data` read no budget.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from . import config, data

__all__ = [
    "header",
    "MEASURED_SECONDS",
    "chapter_id",
    "expected_time",
    "load_for_budget",
    "glue",
    "glue_dict",
    "glue_figure",
    "glue_table",
    "table_text",
    "plain",
    "glue_interval",
    "holm_holds",
    "glue_claim",
    "assert_declared",
    "raw_word",
    "ClaimTable",
    "CLAIM_COLUMNS",
    "interval_text",
    "verdict_text",
    "glue_holm",
]

# Seconds each chapter took at the default budget in `make book` from a fresh clone of 87232e4 on 2026-12-04
# (README, "Budgets"): 2 CPU cores, torch 2.13.0, subnormals flushed, one thread each, two chapters at a time.
# The same machine ran the same chapters up to 1.6x slower an hour and a half earlier; a reader running one
# chapter alone, with both cores, waits less. Keyed by chapter_id (an appendix by its file name); the
# training chapters print theirs as their expected time, the roadmap page shows them all, and
# tools/book_execute.py starts the longest first. Re-measure when a chapter's work changes.
MEASURED_SECONDS = {"00": 72, "01": 29, "02": 20, "03": 20, "04": 157, "05": 191, "06": 16, "07": 376,
                    "08": 149, "09": 242, "10": 98, "11": 78, "12": 79, "13": 42, "14": 77,
                    "appendix_minibatch_sgd": 23, "appendix_setup": 13}


def chapter_id(stem: str) -> str:
    """A chapter's id from its file name: the two digits of ``04_ae_vs_vae``, the whole name of an
    appendix (``appendix_setup``), which has no number."""
    return stem[:2] if stem[:2].isdigit() else stem


def expected_time(chapter: str) -> str:
    """One line for the top of a training chapter: what its budget is expected to take here.

    From :data:`MEASURED_SECONDS` where the figure was measured (the default budget on a CPU);
    says so where it was not, and warns when the ``full`` budget is about to run on a CPU.
    """
    if chapter not in MEASURED_SECONDS:
        raise ValueError(f"chapter must be one of {sorted(MEASURED_SECONDS)}; got {chapter!r}")
    b, dev = config.budget(), config.device()
    if b == "smoke":
        return "expected time: seconds (the smoke budget only checks that the code runs)"
    if b == "default":
        s = MEASURED_SECONDS[chapter]
        took = f"{s} s" if s < 120 else f"{s / 60:.0f} minutes"
        where = "" if dev.type == "cpu" else f"; not measured on {dev.type}, where it should take less"
        return f"expected time: about {took} (measured on 2 CPU cores at the default budget{where})"
    if dev.type == "cpu":
        return ("WARNING: the full budget is meant for a GPU and has not been timed; on this CPU it will take "
                "many hours. Set VAEBOOK_BUDGET=default for real results in minutes.")
    return f"expected time: not measured for the full budget on {dev.type} yet (paper-scale training)"


def header(chapter: str | None = None) -> None:
    """A chapter's first lines: apply the thread count (:func:`vaelib.config.apply_threads`), seed
    every generator with 0 (:func:`vaelib.config.seed_everything`), print :func:`vaelib.config.describe`'s
    line and, for a training chapter (``chapter`` an id such as ``"06"``), :func:`expected_time`'s.

    A chapter id without a measured time is refused before anything is changed.
    """
    timing = None if chapter is None else expected_time(chapter)
    config.apply_threads()
    config.seed_everything(0)
    print(config.describe())
    if timing is not None:
        print(timing)


def load_for_budget(split: str, binarize: bool = False, root="data/mnist",
                    fashion_root="data/fashion-mnist") -> tuple[data.ImageData, str]:
    """The images the training chapters use. At the ``full`` budget: MNIST when it can be
    downloaded (into ``root``), else Fashion-MNIST (Debian's package, or a download into
    ``fashion_root``), else scikit-learn's 8x8 digits; at the other budgets the digits
    (:func:`vaelib.data.load_digits`).

    Returns ``(data, name)`` with ``name`` ``"MNIST"``, ``"Fashion-MNIST"`` or ``"digits"``, so a
    chapter can say which one produced its numbers; each fallback is printed with its reason.
    """
    if config.budget() == "full":
        try:
            return data.mnist(root, split, binarize=binarize), "MNIST"
        except RuntimeError as err:  # offline: say so and fall back
            print("MNIST is not available, trying Fashion-MNIST:", err)
        try:
            return data.fashion_mnist(fashion_root, split, binarize=binarize), "Fashion-MNIST"
        except RuntimeError as err:
            print("Fashion-MNIST is not available, using the 8x8 digits instead:", err)
    return data.load_digits(split, binarize=binarize), "digits"


def plain(value):
    """``value`` with a NumPy scalar or 0-d torch tensor turned into the Python number it holds.

    The book formats glued numbers from their text form (``{glue:text}`name:.2f```), and NumPy 2
    writes a scalar as ``np.float64(0.5)``, which no format specification accepts."""
    item = getattr(value, "item", None)
    if item is not None and getattr(value, "shape", None) == () and type(value).__module__ in ("numpy", "torch"):
        return item()
    return value


def _check_name(name) -> str:
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"glue names must be identifiers; got {name!r}")
    return name


# myst-nb's mime prefix for a value glued without being shown (``myst_nb.ext.glue.GLUE_PREFIX``)
GLUE_PREFIX = "application/papermill.record/"


def _myst_nb_installed() -> bool:
    """Whether myst-nb is importable (the book build), found without importing it."""
    import importlib.util

    try:
        return importlib.util.find_spec("myst_nb") is not None
    except ValueError:  # a module entry without a spec
        return False


def _gluing() -> bool:
    """Whether glue stores values for a book: where myst-nb is installed (the book build), or where
    ``VAEBOOK_GLUE=1`` says a book will be built from this run's outputs (CI builds the book from its
    Colab-like nbval run, whose environment has no myst-nb). Elsewhere (Colab) a glued figure is shown."""
    import os

    return os.environ.get("VAEBOOK_GLUE") == "1" or _myst_nb_installed()


def _publish_glue(name: str, value, display: bool) -> None:
    """Emit ``value`` the way ``myst_nb.glue`` does, without importing ``myst_nb.ext.glue``.

    myst-nb's glue is four lines: the value's display bundle, its mime types prefixed with
    :data:`GLUE_PREFIX` unless it is shown, and the name in the ``scrapbook`` metadata, published
    as raw display data. Importing the module that holds them loads nbformat's JSON-schema
    validators (a grammar compiled at import by ``rfc3987_syntax``): 2.5-6 s of every chapter's
    run on 2 cores, 12 chapters per build. tests/test_book_config.py holds this message to the one
    ``myst_nb.glue`` publishes, for a number, a string, Markdown and a figure."""
    from IPython.core.formatters import format_display_data
    from IPython.display import display as _display

    bundle, metadata = format_display_data(value)
    prefix = "" if display else GLUE_PREFIX
    metadata["scrapbook"] = {"name": name, "mime_prefix": prefix}
    _display({prefix + k: v for k, v in bundle.items()}, raw=True, metadata=metadata)


def glue(name: str, value, display: bool = False) -> None:
    """Store ``value`` under ``name`` for the book's ``{glue:}`` references (NumPy scalars as Python numbers)."""
    _check_name(name)
    value = plain(value)
    if not _gluing():  # Colab: nothing to store; shown when asked
        if display:
            from IPython.display import display as _display

            _display(value)
        return
    _publish_glue(name, value, display)


def glue_dict(prefix: str, mapping) -> None:
    """Glue every item of ``mapping`` as ``f"{prefix}_{key}"``: ``glue_dict("kl_mc", {"mu": 1.0})``
    glues ``kl_mc_mu``, for ``{glue:}`` or ``{glue:text}`` (like :func:`glue`, without display).

    ``prefix`` must be an identifier not ending in ``_`` (the ``_`` is added here), each key a str
    or an int, and each name it makes an identifier; all are checked before anything is glued.
    """
    if not isinstance(prefix, str) or not prefix.isidentifier():
        raise ValueError(f"glue_dict: prefix must be an identifier; got {prefix!r}")
    if prefix.endswith("_"):
        raise ValueError(f"glue_dict: prefix {prefix!r} ends in '_'; glue_dict adds the '_' between prefix and key")
    if not isinstance(mapping, Mapping):
        raise TypeError(f"glue_dict: mapping must be a dict of key -> value; got {type(mapping).__name__}")
    names = {}
    for key in mapping:
        if isinstance(key, bool) or not isinstance(key, (str, int)):
            raise TypeError(f"glue_dict({prefix!r}, ...): keys must be str or int; got {key!r} ({type(key).__name__})")
        name = f"{prefix}_{key}"
        if not name.isidentifier():
            raise ValueError(f"glue_dict({prefix!r}, ...): key {key!r} makes the glue name {name!r}, which is not "
                             "an identifier (letters, digits and _ only)")
        if name in names:
            raise ValueError(f"glue_dict({prefix!r}, ...): keys {names[name]!r} and {key!r} both make {name!r}")
        names[name] = key
    for name, key in names.items():
        glue(name, mapping[key])


def _one_line(text: str, where: str) -> str:
    if "\n" in text or "\r" in text:
        raise ValueError(f"{where}: a Markdown table cell must be one line; got {text!r}")
    return text.replace("|", "\\|")


def _cell(value, spec: str, where: str) -> str:
    value = plain(value)
    if isinstance(value, str):
        text = value
    elif isinstance(value, int):  # ints (and bools) in full, as tabulate writes them; floatfmt is for the rest
        text = str(value)
    else:
        try:
            text = format(value, spec)
        except (TypeError, ValueError) as err:
            raise TypeError(f"{where}: cannot format {value!r} ({type(value).__name__}) with {spec!r} ({err})") from err
    return _one_line(text, where)


def table_text(rows, columns=None, floatfmt=".2f") -> str:
    """A Markdown table (``| a | b |`` lines after a ``|---|---|`` rule) from ``rows``, each a dict
    or each a list (or tuple); what :func:`glue_table` glues.

    ``columns``: for dict rows, None (the keys of the first row, which every row must have alike), the
    keys to show in order (each also its header), or a mapping of key to header; other keys are left
    out. For list rows, the headers (a sequence), or a mapping of key to header whose keys name the
    columns for ``floatfmt``; every row has one cell per column.

    Cells: a str as it is; an int (Python or NumPy) in full; anything else (floats, NumPy and 0-d
    torch scalars, :class:`~vaelib.stats.Interval`) through its column's format spec. ``floatfmt`` is
    one spec for every column, a sequence of one per column, or a mapping of column key to spec
    (columns it does not name: ``".2f"``). Pipes in text are escaped (``\\|``); a cell or header
    must be one line.
    """
    if isinstance(rows, (str, bytes, Mapping)) or not hasattr(rows, "__iter__"):
        raise TypeError(f"rows must be a list of dicts or a list of lists; got {type(rows).__name__}")
    rows = list(rows)
    if not rows:
        raise ValueError("rows is empty: a table needs at least one row")
    as_dicts = isinstance(rows[0], Mapping)
    for i, row in enumerate(rows):
        if as_dicts != isinstance(row, Mapping) or isinstance(row, (str, bytes)) or not hasattr(row, "__iter__"):
            raise TypeError(f"rows[{i}]: rows must be all dicts or all lists; rows[0] is a "
                            f"{type(rows[0]).__name__}, rows[{i}] a {type(row).__name__}")
    inferred = columns is None
    if inferred:
        if not as_dicts:
            raise ValueError("columns (the headers) are needed when rows are lists")
        columns = list(rows[0])
    if isinstance(columns, Mapping):
        keys, headers = list(columns), list(columns.values())
    elif isinstance(columns, (str, bytes)) or not hasattr(columns, "__iter__"):
        raise TypeError(f"columns must be a sequence of headers or a mapping of key to header; got {columns!r}")
    else:
        keys = headers = list(columns)
    if not keys:
        raise ValueError("columns is empty: a table needs at least one column")
    for k, h in zip(keys, headers):
        if not isinstance(h, str):
            raise TypeError(f"column headers must be str; column {k!r} has {h!r}")
    if len(set(keys)) != len(keys):
        raise ValueError(f"columns names a column twice: {keys}")

    if isinstance(floatfmt, str):
        specs = [floatfmt] * len(keys)
    elif isinstance(floatfmt, Mapping):
        unknown = [k for k in floatfmt if k not in keys]
        if unknown:
            raise ValueError(f"floatfmt names columns the table does not have: {unknown}; columns are {keys}")
        specs = [floatfmt.get(k, ".2f") for k in keys]
    else:
        specs = list(floatfmt)
        if len(specs) != len(keys):
            raise ValueError(f"floatfmt has {len(specs)} specs for {len(keys)} columns")
    for k, spec in zip(keys, specs):
        if not isinstance(spec, str):
            raise TypeError(f"floatfmt for column {k!r} must be a format spec (str); got {spec!r}")
        try:
            format(0.5, spec)
        except ValueError as err:
            raise ValueError(f"floatfmt for column {k!r}: {spec!r} is not a format spec for numbers ({err})") from err

    lines = ["| " + " | ".join(_one_line(h, f"header of column {k!r}") for k, h in zip(keys, headers)) + " |",
             "|" + "---|" * len(keys)]
    for i, row in enumerate(rows):
        if as_dicts:
            missing = [k for k in keys if k not in row]
            if missing:
                raise ValueError(f"rows[{i}] has no {', '.join(map(repr, missing))}; columns are {keys}")
            extra = [k for k in row if k not in keys] if inferred else []
            if extra:
                raise ValueError(f"rows[{i}] has {', '.join(map(repr, extra))}, which rows[0] has not; give columns to "
                                 "choose the columns")
            cells = [row[k] for k in keys]
        else:
            cells = list(row)
            if len(cells) != len(keys):
                raise ValueError(f"rows[{i}] has {len(cells)} cells for {len(keys)} columns")
        texts = [_cell(v, spec, f"rows[{i}], column {k!r}") for v, spec, k in zip(cells, specs, keys)]
        lines.append("| " + " | ".join(texts) + " |")
    return "\n".join(lines)


def glue_table(name: str, rows, columns=None, floatfmt=".2f") -> None:
    """Glue a Markdown table under ``name`` (as :class:`IPython.display.Markdown`), for the chapter's
    text to show with the directive ``{glue:md} name`` and its option ``:format: myst``.

    The table is :func:`table_text`'s, from ``rows`` (a list of dicts or of lists), ``columns`` and
    ``floatfmt`` (one format spec, one per column, or a mapping of column to spec; ints are written
    in full)::

        glue_table("col_table", [{"arm": "plain", "rate": 3.14159}, {"arm": "free bits", "rate": 4.0}],
                   {"arm": "arm", "rate": "rate (nats)"}, floatfmt={"rate": ".1f"})
    """
    from IPython.display import Markdown

    _check_name(name)
    glue(name, Markdown(table_text(rows, columns, floatfmt)))


_VERDICTS = {
    "higher": "resolved: above {null}",
    "lower": "resolved: below {null}",
    "unresolved": "not resolved at this budget (the 95% interval includes {null})",
}
_HOLM = {
    "higher": "holds after Holm's adjustment",
    "lower": "holds after Holm's adjustment",
    "unresolved": "not resolved after Holm's adjustment",
}


def _null_text(null: float) -> str:
    return {0.0: "zero", 0.5: "one half"}.get(null, f"{null:g}")


def interval_text(interval, fmt: str = ".3f", scale: float = 1.0) -> str:
    """``"0.123 [0.045, 0.201]"``: an :class:`~vaelib.stats.Interval` (times ``scale``, e.g. 100 for
    percentage points) as the book prints it."""
    from .stats import Interval

    if not isinstance(interval, Interval):
        raise TypeError(f"interval must be a vaelib.stats.Interval; got {type(interval).__name__}")
    e, lo, hi = (scale * v for v in (interval.estimate, interval.lo, interval.hi))
    return f"{e:{fmt}} [{lo:{fmt}}, {hi:{fmt}}]"


def verdict_text(interval) -> str:
    """The verdict the book glues next to a declared comparison: resolved (above or below its null,
    zero for a difference) or not resolved at this budget (see :func:`vaelib.stats.verdict`)."""
    from .stats import verdict

    return _VERDICTS[verdict(interval)].format(null=_null_text(interval.null))


def glue_holm(intervals) -> dict[str, str]:
    """Glue the Holm-adjusted verdict of each claim of a family as ``name_holm`` (Markdown) and
    return the verdict words (:func:`vaelib.stats.holm`). ``intervals`` maps each claim's glue
    name, as given to :func:`glue_interval`, to its interval; the family is every secondary claim
    of a chapter, so that the chance of any false "resolved" among them is at most 5%."""
    from IPython.display import Markdown

    from .stats import holm

    words = holm(intervals)
    for name, word in words.items():
        _check_name(name)
        glue(f"{name}_holm", Markdown(_HOLM[word]))
    return words


def holm_holds(family) -> dict[str, bool]:
    """A chapter's family of declared claims through Holm's adjustment: glue each claim's adjusted
    verdict (:func:`glue_holm`) and return, for each, whether it holds in its declared direction.

    ``family`` maps each claim's glue name to ``(interval, sign)``, ``sign`` the declared direction
    (+1 above the null, -1 below); a claim whose estimate points the other way enters with ``p = 1``
    (:func:`vaelib.stats.directed`)."""
    from .stats import directed

    if not isinstance(family, Mapping) or not family:
        raise TypeError(f"family must be a non-empty mapping of name -> (interval, sign); got {family!r}")
    for name, spec in family.items():
        if not (isinstance(spec, tuple) and len(spec) == 2):
            raise TypeError(f"family[{name!r}] must be (interval, sign); got {spec!r}")
    words = glue_holm({name: directed(iv, sign) for name, (iv, sign) in family.items()})
    return {name: words[name] == ("higher" if sign > 0 else "lower") for name, (_, sign) in family.items()}


def raw_word(interval, null: str | None = None) -> str:
    """The interval's own verdict before any adjustment, as a claims table prints it: ``"above 0"``,
    ``"below 0"`` or ``"not resolved"``, against the interval's null or against ``null`` (text such
    as ``"1"``) when given."""
    from .stats import Interval

    if not isinstance(interval, Interval):
        raise TypeError(f"interval must be a vaelib.stats.Interval; got {type(interval).__name__}")
    null = f"{interval.null:g}" if null is None else null
    if interval.lo > float(null):
        return f"above {null}"
    return f"below {null}" if interval.hi < float(null) else "not resolved"


CLAIM_COLUMNS = {
    "claim": "claim",
    "estimate": "estimate [95% CI]",
    "p": "two-sided $p$, declared direction",
    "verdict": "verdict",
    "holm": "after Holm's adjustment",
    "kind": "status",
}


class ClaimTable:
    """The rows of a chapter's summary table of claims, glued with :meth:`glue` under
    :data:`CLAIM_COLUMNS`.

    ``holds`` maps each secondary claim's name to whether it holds after Holm's adjustment
    (:func:`holm_holds`); ``asserted`` names the claims the chapter's code asserts, ``withdrawn``
    those whose assert was withdrawn (a methods note says why). :meth:`row` adds one row: a claim
    reported without a direction (``sign`` None), the primary claim (a ``sign`` and no ``name``),
    tested alone and asserted, or a secondary claim (``sign`` and ``name``).
    """

    def __init__(self, holds=None, asserted=(), withdrawn=(), fmt: str = ".2f"):
        self.holds = dict(holds or {})
        unknown = sorted((set(asserted) | set(withdrawn)) - set(self.holds))
        if unknown:
            raise ValueError(f"asserted and withdrawn must name claims of holds; {unknown} are not among "
                             f"{sorted(self.holds)}")
        self.asserted, self.withdrawn, self.fmt = tuple(asserted), tuple(withdrawn), fmt
        self.rows: list[dict] = []

    def row(self, claim: str, interval, fmt: str | None = None, sign: int | None = None, name: str | None = None,
            scale: float = 1.0) -> dict:
        """Add (and return) the row of one claim: its estimate with its 95% interval times ``scale``
        in ``fmt``, its own verdict, and for a claim with a direction the p-value in that direction,
        the verdict after Holm's adjustment and whether the code asserts it."""
        from .stats import directed

        out = dict(claim=claim, estimate=interval_text(interval, fmt or self.fmt, scale), p="—",
                   verdict=raw_word(interval), holm="—", kind="reported, no claim")
        if name is not None and sign is None:
            raise ValueError(f"claim {name!r}: a named claim needs its declared direction, sign=+1 or -1")
        if sign is not None:
            out["p"] = f"{directed(interval, sign).p:.2g}"
            if name is None:
                out.update(holm="tested alone", kind="primary, asserted")
            else:
                if name not in self.holds:
                    raise KeyError(f"claim {name!r} is not in the family given as holds: {sorted(self.holds)}")
                out["holm"] = "holds" if self.holds[name] else "not resolved"
                out["kind"] = ("asserted" if name in self.asserted
                               else "assert withdrawn" if name in self.withdrawn else "not asserted")
        self.rows.append(out)
        return out

    def glue(self, name: str) -> None:
        """Glue the table under ``name`` for ``{glue:md}`` (:func:`glue_table`)."""
        if not self.rows:
            raise ValueError(f"the claims table {name!r} has no rows")
        glue_table(name, self.rows, CLAIM_COLUMNS)


def glue_claim(name: str, holds: bool) -> None:
    """Glue a declared claim's verdict under ``name`` for ``{glue:md}``: "resolved as declared" when
    ``holds``, else "**not resolved at this budget**" in bold, so that a reader cannot miss it."""
    from IPython.display import Markdown

    if not isinstance(holds, (bool, np.bool_)):
        raise TypeError(f"holds must be a bool (whether the claim holds); got {type(holds).__name__}")
    glue(name, Markdown("resolved as declared" if holds else "**not resolved at this budget**"))


def assert_declared(primary_holds: bool, holds, asserted) -> None:
    """Assert the claims a chapter declared for assertion, at the default and full budgets: the primary
    claim (``primary_holds``) and each secondary claim named in ``asserted`` (``holds[name]``, after
    Holm's adjustment, :func:`holm_holds`). Prints one line saying that they held, or, at the smoke
    budget, whose models are not trained enough to test anything, that they are reported only."""
    missing = [name for name in asserted if name not in holds]
    if missing:
        raise KeyError(f"asserted names claims that are not in holds: {missing}; holds has {sorted(holds)}")
    if config.budget() == "smoke":
        print("smoke budget: the claims are reported, not asserted")
        return
    assert primary_holds, "the primary claim does not hold on the test seeds"
    failed = [name for name in asserted if not holds[name]]
    assert not failed, f"claims declared for assertion that do not hold after Holm's adjustment: {failed}"
    print("the claims declared for assertion hold on the test seeds")


def glue_interval(name: str, interval, fmt: str = ".3f", scale: float = 1.0) -> str:
    """Glue a declared comparison's result under five names: ``name`` (the estimate), ``name_lo``,
    ``name_hi`` (floats, for ``{glue:text}``), ``name_ci`` (estimate and interval) and
    ``name_verdict`` (Markdown, for ``{glue:md}``). Returns :func:`stats.verdict <vaelib.stats.verdict>`'s
    word, so a chapter can assert on the claims it declared."""
    from IPython.display import Markdown

    from .stats import verdict

    text = interval_text(interval, fmt, scale)  # validates the interval
    glue(name, scale * interval.estimate)
    glue(f"{name}_lo", scale * interval.lo)
    glue(f"{name}_hi", scale * interval.hi)
    glue(f"{name}_ci", Markdown(text))
    glue(f"{name}_verdict", Markdown(verdict_text(interval)))
    return verdict(interval)


def glue_figure(name: str, fig) -> None:
    """Lay out a matplotlib figure, glue it under ``name`` for ``{glue:figure}``, and close it.

    The book gets the figure as a PNG whatever matplotlib's backend. Where myst-nb is absent (Colab)
    the figure is shown instead, so a reader running the chapter sees every figure the book shows.
    Closing it keeps the notebook from drawing it a second time.
    """
    _check_name(name)
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    if not isinstance(fig, Figure):
        raise TypeError(f"fig must be a matplotlib Figure; got {type(fig).__name__}")
    fig.tight_layout()
    if _gluing():
        # the PNG drawn here, as the inline backend would (print_figure, tight box): a kernel whose
        # backend draws no image (MPLBACKEND=Agg) would otherwise glue the text "<Figure size ...>"
        from IPython.core.pylabtools import print_figure
        from IPython.display import Image

        glue(name, Image(data=print_figure(fig, fmt="png", bbox_inches="tight"), format="png"))
    else:
        from IPython.display import display

        display(fig)
    plt.close(fig)
