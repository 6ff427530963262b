"""vaelib: the small library behind the vae-book chapters.

Modules, one concept each: :mod:`~vaelib.config` (budget, device, threads, seeds),
:mod:`~vaelib.data`, :mod:`~vaelib.models` (each model declares its likelihood and computes its own
KL), :mod:`~vaelib.objectives` (each loss written once, for one model or K), :mod:`~vaelib.train`
(the plain training loop, ``fit``), :mod:`~vaelib.batched` (``fit_many``, its batched twin),
:mod:`~vaelib.estimates` (likelihood and posterior estimates),
:mod:`~vaelib.flows` (planar flows and a VAE with a flow posterior), :mod:`~vaelib.iwae` (the importance-weighted
bound as a training objective, and gradient signal-to-noise),
:mod:`~vaelib.vq` (vector quantisation and the VQ-VAE), :mod:`~vaelib.discrete` (exact gradients and the Concrete
density for a categorical latent), :mod:`~vaelib.priors` (mixture and VampPrior priors, with estimates
that read them), :mod:`~vaelib.tc` (the beta-TCVAE and minibatch estimates of log q(z)),
:mod:`~vaelib.diffusion` (the forward chain in closed form),
:mod:`~vaelib.disentangle` (disentanglement scores and the beta sweep), :mod:`~vaelib.judge` (the
digit classifier), :mod:`~vaelib.stats`, :mod:`~vaelib.plots`, :mod:`~vaelib.book` (what chapters
do around vaelib: header, data at the budget, glue) and :mod:`~vaelib.explorer`. Importing vaelib
changes no global setting: threads are applied by :func:`vaelib.config.apply_threads` (a chapter's
``book.header``).
"""

from . import (  # noqa: F401
    batched,
    book,
    config,
    data,
    diffusion,
    discrete,
    disentangle,
    estimates,
    flows,
    iwae,
    judge,
    models,
    objectives,
    plots,
    priors,
    tc,
    train,
    vq,
)

__version__ = "0.1.0"
