"""Concept figures: pictures of the ideas, not of data (the book labels them ``diagram-...``).

Each function draws one figure with matplotlib and returns it; nothing here is computed from a
model. The labels are the book's notation (``book/notation.md``).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch

__all__ = ["graphical_model", "architecture"]


def _arrow(ax, start, end, dashed=False, color="k", rad=0.0, lw=1.4):
    ax.add_patch(
        FancyArrowPatch(
            start,
            end,
            arrowstyle="-|>",
            mutation_scale=14,
            lw=lw,
            color=color,
            linestyle=(0, (4, 3)) if dashed else "-",
            connectionstyle=f"arc3,rad={rad}",
            shrinkA=0,
            shrinkB=0,
        )
    )


def _box(ax, x, y, w, h, text, face, fontsize=10):
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02,rounding_size=0.08", fc=face, ec="k", lw=1.2))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=fontsize)


def graphical_model():
    """The VAE as a graphical model: z -> x inside a plate over the N data points.

    Solid: the generative model p(z) p_theta(x|z), with the decoder's parameters theta. Dashed: the
    encoder q_phi(z|x), which runs the other way and exists only to train the model.
    """
    fig, ax = plt.subplots(figsize=(5.2, 3.0))
    ax.set_xlim(0, 5.2)
    ax.set_ylim(0, 3.0)
    ax.set_aspect("equal")
    ax.axis("off")
    r = 0.32
    z, x = (2.6, 2.15), (2.6, 0.85)
    ax.add_patch(Circle(z, r, fc="white", ec="k", lw=1.4))
    ax.add_patch(Circle(x, r, fc="0.8", ec="k", lw=1.4))
    ax.text(*z, r"$\mathbf{z}$", ha="center", va="center", fontsize=14)
    ax.text(*x, r"$\mathbf{x}$", ha="center", va="center", fontsize=14)
    # the plate: one (z, x) pair per data point
    ax.add_patch(FancyBboxPatch((1.75, 0.3), 1.7, 2.4, boxstyle="round,pad=0,rounding_size=0.1", fc="none", ec="k"))
    ax.text(3.38, 0.38, r"$N$", ha="right", va="bottom", fontsize=11)
    # generative: prior, then decoder
    _arrow(ax, (z[0] - 0.06, z[1] - r), (x[0] - 0.06, x[1] + r))
    ax.text(1.82, 1.5, r"$p_\theta(\mathbf{x}\mid\mathbf{z})$", ha="left", va="center", fontsize=10)
    ax.text(1.68, z[1], r"$p(\mathbf{z}) = \mathcal{N}(\mathbf{0}, \mathbf{I})$", ha="right", va="center", fontsize=9)
    # inference: the encoder, dashed, from x back to z
    _arrow(ax, (x[0] + r, x[1] + 0.05), (z[0] + r, z[1] - 0.05), dashed=True, color="tab:blue", rad=0.6)
    ax.text(3.52, 1.5, r"$q_\phi(\mathbf{z}\mid\mathbf{x})$", color="tab:blue", ha="left", va="center", fontsize=10)
    # the parameters, shared by all N points
    ax.plot([0.8], [1.5], "ko", ms=5)
    ax.text(0.8, 1.72, r"$\theta$", ha="center", fontsize=12)
    _arrow(ax, (0.9, 1.42), (x[0] - r - 0.02, x[1] + 0.1))
    ax.plot([4.5], [2.55], "o", color="tab:blue", ms=5)
    ax.text(4.5, 2.7, r"$\phi$", ha="center", color="tab:blue", fontsize=12)
    _arrow(ax, (4.4, 2.52), (z[0] + 0.25, z[1] + 0.22), dashed=True, color="tab:blue")
    ax.text(0.05, 2.85, "generative model (solid)", fontsize=8, va="top")
    ax.text(0.05, 2.62, "encoder, for training (dashed)", fontsize=8, va="top", color="tab:blue")
    fig.tight_layout()
    return fig


def architecture(x_dim: int | str = "D", z_dim: int | str = "d"):
    """Encoder, sampler and decoder as a data flow, with the two terms of the loss.

    ``x_dim`` and ``z_dim`` label the sizes (numbers, or the symbols D and d).
    """
    fig, ax = plt.subplots(figsize=(8.6, 3.6))
    ax.set_xlim(-0.1, 10.6)
    ax.set_ylim(0, 4.4)
    ax.axis("off")
    enc, dec, samp = "#cfe2f3", "#f4cccc", "#fff2cc"
    _box(ax, 0.0, 1.6, 1.25, 0.8, f"image $\\mathbf{{x}}$\n({x_dim} pixels)", "0.92", 9)
    _box(ax, 1.65, 1.45, 1.45, 1.1, "encoder\n(MLP, $\\phi$)", enc)
    _box(ax, 3.55, 2.35, 1.2, 0.7, "$\\boldsymbol{\\mu}$", enc)
    _box(ax, 3.55, 0.95, 1.2, 0.7, "$\\log\\boldsymbol{\\sigma}^2$", enc)
    ax.text(4.15, 1.97, f"({z_dim} each)", ha="center", va="center", fontsize=8)
    sampler = "sampler\n$\\mathbf{z}=\\boldsymbol{\\mu}+\\boldsymbol{\\sigma}\\odot\\boldsymbol{\\varepsilon}$"
    _box(ax, 5.25, 1.45, 1.6, 1.1, sampler, samp, 9)
    _box(ax, 5.35, 3.2, 1.4, 0.6, "$\\boldsymbol{\\varepsilon}\\sim\\mathcal{N}(\\mathbf{0},\\mathbf{I})$", "white", 9)
    _box(ax, 7.3, 1.45, 1.45, 1.1, "decoder\n(MLP, $\\theta$)", dec)
    _box(ax, 9.1, 1.6, 1.3, 0.8, "$p_\\theta(\\mathbf{x}\\mid\\mathbf{z})$\n(one logit\nper pixel)", "0.92", 8)
    for a, b in (((1.25, 2.0), (1.65, 2.0)), ((6.85, 2.0), (7.3, 2.0)), ((8.75, 2.0), (9.1, 2.0))):
        _arrow(ax, a, b)
    _arrow(ax, (3.1, 2.2), (3.55, 2.65))
    _arrow(ax, (3.1, 1.8), (3.55, 1.3))
    _arrow(ax, (4.75, 2.7), (5.25, 2.2))
    _arrow(ax, (4.75, 1.3), (5.25, 1.8))
    _arrow(ax, (6.05, 3.2), (6.05, 2.55))
    # the loss: KL at the encoder's output, reconstruction at the decoder's
    ax.text(4.15, 0.45, "KL term: $D_{\\mathrm{KL}}(q_\\phi(\\mathbf{z}\\mid\\mathbf{x})\\,\\Vert\\,p(\\mathbf{z}))$",
            ha="center", fontsize=9, color="tab:purple")
    _arrow(ax, (4.15, 0.62), (4.15, 0.95), color="tab:purple", lw=1.0)
    ax.text(9.75, 0.45, "reconstruction:\n$-\\log p_\\theta(\\mathbf{x}\\mid\\mathbf{z})$", ha="center", fontsize=9,
            color="tab:purple")
    _arrow(ax, (9.75, 0.95), (9.75, 1.6), color="tab:purple", lw=1.0)
    ax.text(0.0, 4.35, "one training step: $-$ELBO $=$ reconstruction $+$ KL, averaged over a minibatch",
            fontsize=9, va="top")
    fig.tight_layout()
    return fig
