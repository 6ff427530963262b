"""Figures used by several chapters. Each function returns the matplotlib ``Figure``."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["ink_box", "image_grid", "latent_scatter", "traversal_grid", "seeds_and_interval"]


def _np(a):
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def ink_box(imgs, threshold: float = 0.1, margin: int = 1) -> tuple[int, int, int, int]:
    """``(top, bottom, left, right)`` of the smallest box holding every pixel above ``threshold`` in any
    of ``imgs`` ``(N, H, W)``, widened by ``margin`` pixels; the whole image when no pixel is above it."""
    imgs = _np(imgs)
    if imgs.ndim != 3:
        raise ValueError(f"imgs: expected an array (N, H, W), got shape {imgs.shape}")
    h, w = imgs.shape[1:]
    ink = (imgs > threshold).any(0)
    if not ink.any():
        return 0, h, 0, w
    rows, cols = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
    return (int(max(0, rows[0] - margin)), int(min(h, rows[-1] + 1 + margin)),
            int(max(0, cols[0] - margin)), int(min(w, cols[-1] + 1 + margin)))


def image_grid(images, shape, nrow: int = 10, title: str | None = None, ax=None, scale: float = 0.6,
               crop: bool = False):
    """Tile flattened images ``(N, D)`` (values in [0, 1]) of image ``shape`` (C, H, W) into a grid.

    ``crop``: cut every image to one common box, the one that holds all their ink (``ink_box``), so
    small sprites on a large black canvas fill their cells; ``scale`` is inches per cell either way.
    """
    import matplotlib.pyplot as plt

    imgs = _np(images).reshape(-1, *shape)[:, 0]
    if crop:
        top, bottom, left, right = ink_box(imgs)
        imgs = imgs[:, top:bottom, left:right]
    n = imgs.shape[0]
    ncol = min(nrow, n)
    nrows = -(-n // ncol)
    h, w = imgs.shape[1:]
    cmap = "gray_r" if shape[-2] <= 28 else "gray"  # ink dark on white for digits, white sprites on black
    # separators drawn white in either colour map
    canvas = np.full((nrows * (h + 1) - 1, ncol * (w + 1) - 1), 0.0 if cmap == "gray_r" else 1.0)
    for i, im in enumerate(imgs):
        r, c = divmod(i, ncol)
        canvas[r * (h + 1) : r * (h + 1) + h, c * (w + 1) : c * (w + 1) + w] = im
    if ax is None:
        fig, ax = plt.subplots(figsize=(scale * ncol, scale * nrows))
    ax.imshow(canvas, cmap=cmap, vmin=0, vmax=1)
    ax.axis("off")
    if title:
        ax.set_title(title)
    return ax.figure


def latent_scatter(z, labels, title: str | None = None, ax=None):
    """Scatter the first two latent coordinates, coloured by label."""
    import matplotlib.pyplot as plt

    z, labels = _np(z), _np(labels)
    if ax is None:
        fig, ax = plt.subplots(figsize=(4.5, 4))
    sc = ax.scatter(z[:, 0], z[:, 1], c=labels, cmap="tab10", s=6, alpha=0.8)
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    if title:
        ax.set_title(title)
    ax.figure.colorbar(sc, ax=ax, ticks=range(10))
    return ax.figure


@torch.no_grad()
def traversal_grid(decode, z0, shape, span: float = 2.5, steps: int = 9, dims=None, title: str | None = None,
                   crop: bool = False, scale: float = 0.6):
    """Decode ``z0`` with one latent coordinate at a time swept over [-span, span].

    ``decode``: ``(N, L)`` -> ``(N, D)`` image means; ``z0`` ``(L,)``. One row per dimension.
    ``crop`` and ``scale`` as in ``image_grid``: every cell cut to the box that holds the ink of all.
    """
    z0 = torch.as_tensor(z0).flatten()
    dims = list(range(z0.numel())) if dims is None else list(dims)
    vals = torch.linspace(-span, span, steps, dtype=z0.dtype, device=z0.device)
    z = z0.repeat(len(dims) * steps, 1)
    for r, d in enumerate(dims):
        z[r * steps : (r + 1) * steps, d] = vals
    fig = image_grid(decode(z), shape, nrow=steps, title=title, crop=crop, scale=scale)
    return fig


def seeds_and_interval(ax, x, values, interval, first: bool = True, spread: float = 0.0, size: float = 12):
    """Draw one arm's per-seed ``values`` at position ``x`` (orange dots, spread over ``x +- spread``, or
    beside ``x`` when ``spread`` is 0) and its :class:`~vaelib.stats.Interval` (black point, 95% bar).

    ``first``: label both, for the legend (the first arm of a plot). The claims of the training
    chapters are made over seeds, so their figures show every seed and the interval together.
    """
    from .stats import Interval

    if not isinstance(interval, Interval):
        raise TypeError(f"interval must be a vaelib.stats.Interval; got {type(interval).__name__}")
    values = np.asarray(values, dtype=float)
    if values.ndim != 1 or len(values) == 0:
        raise ValueError(f"values must be a 1-D array of per-seed values; got shape {values.shape}")
    xs = x + (np.linspace(-spread, spread, len(values)) if spread else np.full(len(values), 0.1))
    ax.scatter(xs, values, s=size, color="tab:orange", zorder=3, label="one seed" if first else None)
    ax.errorbar(x, interval.estimate, yerr=[[interval.estimate - interval.lo], [interval.hi - interval.estimate]],
                fmt="o", color="k", capsize=3, label="mean, 95% interval" if first else None)
