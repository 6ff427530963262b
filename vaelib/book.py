"""Glue for the book's prose, usable where myst-nb is absent (Colab).

Chapters quote numbers with ``{glue:}`name``` in their text; :func:`glue` stores them with
myst-nb when it is installed (the book build) and, where it is not, prints nothing, or shows
the value when ``display=True``, so a chapter runs unchanged in Colab.
"""

from __future__ import annotations

__all__ = ["glue"]


def glue(name: str, value, display: bool = False) -> None:
    """Store ``value`` under ``name`` for the book's ``{glue:}`` references."""
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"glue names must be identifiers; got {name!r}")
    try:
        from myst_nb import glue as _glue
    except ImportError:
        if display:
            from IPython.display import display as _display

            _display(value)
        return
    _glue(name, value, display=display)
