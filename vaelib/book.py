"""Glue for the book's prose, usable where myst-nb is absent (Colab).

Chapters quote numbers with ``{glue:}`name``` in their text; :func:`glue` stores them with
myst-nb when it is installed (the book build) and, where it is not, prints nothing, or shows
the value when ``display=True``, so a chapter runs unchanged in Colab.
"""

from __future__ import annotations

__all__ = ["glue", "plain", "glue_interval", "interval_text", "verdict_text"]


def plain(value):
    """``value`` with a NumPy scalar or 0-d torch tensor turned into the Python number it holds.

    The book formats glued numbers from their text form (``{glue:text}`name:.2f```), and NumPy 2
    writes a scalar as ``np.float64(0.5)``, which no format specification accepts."""
    item = getattr(value, "item", None)
    if item is not None and getattr(value, "shape", None) == () and type(value).__module__ in ("numpy", "torch"):
        return item()
    return value


def glue(name: str, value, display: bool = False) -> None:
    """Store ``value`` under ``name`` for the book's ``{glue:}`` references (NumPy scalars as Python numbers)."""
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"glue names must be identifiers; got {name!r}")
    value = plain(value)
    try:
        from myst_nb import glue as _glue
    except ImportError:
        if display:
            from IPython.display import display as _display

            _display(value)
        return
    _glue(name, value, display=display)


_VERDICTS = {
    "higher": "resolved: above zero",
    "lower": "resolved: below zero",
    "unresolved": "not resolved at this budget (the 95% interval includes zero)",
}


def interval_text(interval, fmt: str = ".3f", scale: float = 1.0) -> str:
    """``"0.123 [0.045, 0.201]"``: an :class:`~vaelib.stats.Interval` (times ``scale``, e.g. 100 for
    percentage points) as the book prints it."""
    from .stats import Interval

    if not isinstance(interval, Interval):
        raise TypeError(f"interval must be a vaelib.stats.Interval; got {type(interval).__name__}")
    e, lo, hi = (scale * v for v in (interval.estimate, interval.lo, interval.hi))
    return f"{e:{fmt}} [{lo:{fmt}}, {hi:{fmt}}]"


def verdict_text(interval) -> str:
    """The verdict the book glues next to a declared comparison: resolved (above or below zero) or
    not resolved at this budget (see :func:`vaelib.stats.verdict`)."""
    from .stats import verdict

    return _VERDICTS[verdict(interval)]


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
