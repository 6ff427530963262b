"""vaelib: the small library behind the vae-book chapters.

Modules, one concept each: :mod:`~vaelib.config` (budget, device, seeds), :mod:`~vaelib.data`,
:mod:`~vaelib.models`, :mod:`~vaelib.objectives`, :mod:`~vaelib.train`, :mod:`~vaelib.metrics`,
:mod:`~vaelib.plots`.
"""

from . import batched, book, config, data, disentangle, estimates, judge, models, objectives, plots, train  # noqa: F401

__version__ = "0.1.0"
