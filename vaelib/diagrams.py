"""Concept figures: pictures of the ideas, not of data (the book labels them ``diagram-...``).

Each function draws one figure with matplotlib and returns it; nothing here is trained. Where a
figure plots a curve (``elbo_gap``, ``kl_shape``), the curve is a closed form of the book, evaluated
with numpy. The labels are the book's notation (``book/notation.md``).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch

__all__ = ["graphical_model", "architecture", "elbo_gap", "reparameterisation_graph", "kl_shape", "kkt_cases"]


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
    fig, ax = plt.subplots(figsize=(7.5, 3.2))
    ax.set_xlim(-0.1, 10.6)
    ax.set_ylim(0, 4.4)
    ax.axis("off")
    enc, dec, samp = "#cfe2f3", "#f4cccc", "#fff2cc"
    _box(ax, 0.0, 1.6, 1.25, 0.8, f"image $\\mathbf{{x}}$\n({x_dim} pixels)", "0.92", 8)
    _box(ax, 1.65, 1.45, 1.45, 1.1, "encoder\n(MLP, $\\phi$)", enc, 9)
    _box(ax, 3.55, 2.35, 1.2, 0.7, "$\\boldsymbol{\\mu}$", enc, 9)
    _box(ax, 3.55, 0.95, 1.2, 0.7, "$\\log\\boldsymbol{\\sigma}^2$", enc, 9)
    ax.text(4.15, 1.97, f"({z_dim} each)", ha="center", va="center", fontsize=7)
    sampler = "sampler\n$\\mathbf{z}=\\boldsymbol{\\mu}+\\boldsymbol{\\sigma}\\odot\\boldsymbol{\\varepsilon}$"
    _box(ax, 5.25, 1.45, 1.6, 1.1, sampler, samp, 8)
    _box(ax, 5.35, 3.2, 1.4, 0.6, "$\\boldsymbol{\\varepsilon}\\sim\\mathcal{N}(\\mathbf{0},\\mathbf{I})$", "white", 8)
    _box(ax, 7.3, 1.45, 1.45, 1.1, "decoder\n(MLP, $\\theta$)", dec, 9)
    _box(ax, 9.1, 1.6, 1.3, 0.8, "$p_\\theta(\\mathbf{x}\\mid\\mathbf{z})$\n(one logit\nper pixel)", "0.92", 7)
    for a, b in (((1.25, 2.0), (1.65, 2.0)), ((6.85, 2.0), (7.3, 2.0)), ((8.75, 2.0), (9.1, 2.0))):
        _arrow(ax, a, b)
    _arrow(ax, (3.1, 2.2), (3.55, 2.65))
    _arrow(ax, (3.1, 1.8), (3.55, 1.3))
    _arrow(ax, (4.75, 2.7), (5.25, 2.2))
    _arrow(ax, (4.75, 1.3), (5.25, 1.8))
    _arrow(ax, (6.05, 3.2), (6.05, 2.55))
    # the loss: KL at the encoder's output, reconstruction at the decoder's
    ax.text(4.15, 0.45, "KL term: $D_{\\mathrm{KL}}(q_\\phi(\\mathbf{z}\\mid\\mathbf{x})\\,\\Vert\\,p(\\mathbf{z}))$",
            ha="center", fontsize=8, color="tab:purple")
    _arrow(ax, (4.15, 0.62), (4.15, 0.95), color="tab:purple", lw=1.0)
    ax.text(9.75, 0.45, "reconstruction:\n$-\\log p_\\theta(\\mathbf{x}\\mid\\mathbf{z})$", ha="center", fontsize=8,
            color="tab:purple")
    _arrow(ax, (9.75, 0.95), (9.75, 1.6), color="tab:purple", lw=1.0)
    ax.text(0.0, 4.35, "one training step: $-$ELBO $=$ reconstruction $+$ KL, averaged over a minibatch",
            fontsize=8, va="top")
    fig.tight_layout()
    return fig


def _linear_gaussian(a: float, b: float, s: float, x: float):
    """The conjugate toy of the ELBO chapter, z ~ N(0, 1), x | z ~ N(a z + b, s^2): the evidence
    {eq}`elbo-lg-evidence` as ``log p(x)``, and the posterior {eq}`elbo-lg-posterior` as
    ``(mu_star, v_star)``."""
    c = a * a + s * s
    log_px = -0.5 * np.log(2 * np.pi * c) - (x - b) ** 2 / (2 * c)
    return float(log_px), a * (x - b) / c, s * s / c


def _lg_elbo(m, v, a: float, b: float, s: float, x: float):
    """The ELBO of q = N(m, v) in the toy, as {eq}`elbo-kl-form` with the two terms of
    {eq}`elbo-lg-terms`: reconstruction minus the KL to the prior (not log p(x) minus the gap)."""
    m = np.asarray(m, dtype=float)
    rec = -0.5 * np.log(2 * np.pi * s * s) - ((x - a * m - b) ** 2 + a * a * v) / (2 * s * s)
    kl_prior = 0.5 * (m * m + v - np.log(v) - 1)
    return rec - kl_prior


def _normal_pdf(z, mean, var):
    return np.exp(-((z - mean) ** 2) / (2 * var)) / np.sqrt(2 * np.pi * var)


def elbo_gap(a: float = 1.5, b: float = 0.3, s: float = 0.7, x: float = 2.0, near: float = 0.8,
             far: float = -2.0):
    """The ELBO identity {eq}`elbo-identity` in pictures, in the linear-Gaussian toy of the ELBO
    chapter ({eq}`elbo-lg-model`, with its numbers by default).

    The family is q = N(m, v_star): every mean m, the posterior's variance v_star. Left: log p(x)
    (a line) and the ELBO as a function of m (a curve, from {eq}`elbo-lg-terms`, so not as
    log p(x) minus the gap); the vertical distance between them is D_KL(q || p(z|x)), zero at
    m = mu_star. Right: the posterior density and the two q's whose gaps the left panel marks,
    ``near`` and ``far`` posterior standard deviations from its mean. Every number is computed
    from the closed forms. The curves carry gids ("log_px", "elbo", "posterior", "q_near",
    "q_far", and the markers "at_near", "at_far") for the tests.
    """
    log_px, mu_star, v_star = _linear_gaussian(a, b, s, x)
    sd = np.sqrt(v_star)
    # the grid holds mu_star itself, where the ELBO touches log p(x)
    ms = np.union1d(np.linspace(mu_star - 2.7 * sd, mu_star + 2.7 * sd, 401), [mu_star])
    elbo = _lg_elbo(ms, v_star, a, b, s, x)
    ms_drop = log_px - float(elbo.min())  # the depth of the curve on the plot
    m_q = {"near": mu_star + near * sd, "far": mu_star + far * sd}
    gaps = {k: log_px - float(_lg_elbo(m, v_star, a, b, s, x)) for k, m in m_q.items()}
    colours = {"near": "tab:blue", "far": "tab:orange"}

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(7.5, 3.3), gridspec_kw={"width_ratios": [1.1, 1]})
    ax.axhline(log_px, color="k", lw=1.4, gid="log_px", label=r"$\log p_\theta(x)$")
    ax.plot(ms, elbo, color="tab:green", lw=1.8, gid="elbo", label=r"ELBO $\mathcal{L}(m)$")
    ax.plot([mu_star], [log_px], "ko", ms=4)
    ax.annotate(r"$m = \mu_\star$: $q = p_\theta(z \mid x)$, gap 0", (mu_star, log_px), xytext=(0, 12),
                textcoords="offset points", ha="center", va="bottom", fontsize=8,
                arrowprops=dict(arrowstyle="-", lw=0.6, color="0.3", shrinkA=1, shrinkB=3))
    for k, m in m_q.items():
        e = log_px - gaps[k]
        ax.plot([m], [e], "o", color=colours[k], ms=4, gid=f"at_{k}")
        # the near q's name beside its (short) gap, above the curve; the far q's below its dot
        where, offset, va = ((m, (e + log_px) / 2), (5, 0), "center") if k == "near" else ((m, e), (5, -6), "top")
        ax.annotate(f"$q$ {k}", where, xytext=offset, textcoords="offset points", ha="left", va=va, fontsize=8,
                    color=colours[k])
        ax.annotate("", (m, e), xytext=(m, log_px),
                    arrowprops=dict(arrowstyle="<->", color=colours[k], lw=1.2, shrinkA=0, shrinkB=0))
    # the name of the gap, inside the parabola, pointing at the far q's gap
    m_far = m_q["far"]
    gap_label = r"gap $=$ $D_{\mathrm{KL}}(q \,\Vert\, p_\theta(z \mid x))$"
    ax.annotate(gap_label, (m_far, log_px - gaps["far"] / 2), xytext=(mu_star, log_px - 0.45 * ms_drop),
                ha="center", va="center", fontsize=8, color=colours["far"],
                arrowprops=dict(arrowstyle="-|>", lw=0.8, color=colours["far"], shrinkA=2, shrinkB=3))
    ax.legend(loc="lower center", fontsize=8, frameon=False)
    ax.set_xlabel(r"mean $m$ of $q = \mathcal{N}(m, v_\star)$")
    ax.set_ylabel("nats")
    ax.set_ylim(log_px - 1.05 * ms_drop, log_px + 0.22 * ms_drop)
    ax.set_xlim(ms[0], ms[-1])

    zs = np.linspace(mu_star - 5.5 * sd, mu_star + 5.5 * sd, 1101)
    bx.fill_between(zs, _normal_pdf(zs, mu_star, v_star), color="0.85")
    bx.plot(zs, _normal_pdf(zs, mu_star, v_star), color="k", lw=1.4, gid="posterior",
            label=r"posterior $p_\theta(z \mid x)$")
    for k, m in m_q.items():
        bx.plot(zs, _normal_pdf(zs, m, v_star), color=colours[k], lw=1.4, ls="--", gid=f"q_{k}",
                label=f"$q$ {k}, gap ${gaps[k]:.2f}$ nats")
    bx.set_xlabel(r"$z$")
    bx.set_ylabel("density")
    bx.set_ylim(0, 1.45 / np.sqrt(2 * np.pi * v_star))
    bx.set_xlim(zs[0], zs[-1])
    bx.legend(fontsize=8, loc="upper left", frameon=False)
    fig.tight_layout()
    return fig


def kl_shape():
    """The shape of one coordinate's KL term {eq}`kl-standard`,
    D_KL(N(mu, sigma^2) || N(0, 1)) = (mu^2 + sigma^2 - log sigma^2 - 1) / 2, one argument at a time.

    Left: against mu at sigma = 1, where it is L_mu = mu^2 / 2 of {eq}`kl-split`, a parabola. Right:
    against sigma^2 at mu = 0, where it is L_sigma^2 = (sigma^2 - log sigma^2 - 1) / 2: a barrier
    as sigma^2 -> 0 and the minimum 0 at sigma^2 = 1. Both curves are the formula itself, evaluated
    on grids that hold the minimisers 0 and 1; they carry the gids "kl_mu" and "kl_sigma2".
    """

    def kl(mu, var):
        return 0.5 * (mu**2 + var - np.log(var) - 1)

    mus = np.union1d(np.linspace(-3, 3, 301), [0.0])
    # geometric near 0, where the barrier rises, linear beyond: the grid holds sigma^2 = 1
    vs = np.union1d(np.geomspace(1e-6, 1, 300), np.linspace(1, 4, 151))
    top = 4.7
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(7.5, 3.1), sharey=True)
    ax.plot(mus, kl(mus, 1.0), color="tab:purple", lw=1.8, gid="kl_mu")
    ax.plot([0], [0], "ko", ms=4)
    ax.annotate(r"minimum 0 at $\mu = 0$", (0, 0), xytext=(0, 0.9), ha="center", fontsize=8,
                arrowprops=dict(arrowstyle="-|>", lw=0.8, color="0.3", shrinkA=2, shrinkB=3))
    ax.text(0, top - 0.25, r"$\sigma = 1$: $D_{\mathrm{KL}} = L_\mu = \frac{1}{2}\mu^2$", ha="center", va="top",
            fontsize=9)
    ax.set_xlabel(r"$\mu$")
    ax.set_ylabel(r"$D_{\mathrm{KL}}(\mathcal{N}(\mu, \sigma^2) \,\Vert\, \mathcal{N}(0, 1))$ (nats)", fontsize=9)
    ax.set_xlim(mus[0], mus[-1])
    ax.set_ylim(-0.15, top)

    bx.plot(vs, kl(0.0, vs), color="tab:purple", lw=1.8, gid="kl_sigma2")
    bx.plot([1], [0], "ko", ms=4)
    bx.annotate(r"minimum 0 at $\sigma^2 = 1$", (1, 0), xytext=(1.9, 0.9), ha="left", fontsize=8,
                arrowprops=dict(arrowstyle="-|>", lw=0.8, color="0.3", shrinkA=2, shrinkB=3))
    v_b = 0.02  # where the barrier is pointed at
    barrier = "barrier: $L_{\\sigma^2} \\approx -\\frac{1}{2}\\log\\sigma^2 \\to \\infty$\nas $\\sigma^2 \\to 0$"
    bx.annotate(barrier, (v_b, kl(0.0, v_b)), xytext=(0.4, 2.6), ha="left", va="center", fontsize=8,
                arrowprops=dict(arrowstyle="-|>", lw=0.8, color="0.3", shrinkA=2, shrinkB=3))
    bx.text(2.0, top - 0.25, r"$\mu = 0$: $D_{\mathrm{KL}} = L_{\sigma^2} = \frac{1}{2}(\sigma^2 - \log\sigma^2 - 1)$",
            ha="center", va="top", fontsize=9)
    bx.set_xlabel(r"$\sigma^2$")
    bx.set_xlim(-0.08, vs[-1])  # a margin: the barrier would hide in the axis line at 0
    fig.tight_layout()
    return fig


def _grad_arrow(ax, start, end, name, rad=0.0):
    """A gradient: a red arrow drawn against the forward direction, with the gid ``grad:<name>``."""
    _arrow(ax, start, end, color="tab:red", rad=rad, lw=1.3)
    ax.patches[-1].set_gid(f"grad:{name}")


def reparameterisation_graph():
    """The computational graph of one latent coordinate, without and with the trick {eq}`reparam`.

    Left: z is drawn from N(mu, sigma^2), a random node; the gradient of f(z) reaches z but stops
    there, since a draw is not a differentiable function of mu and sigma. Right: z = mu + sigma *
    epsilon with epsilon ~ N(0, 1) an outside random input; every node between the encoder and f is
    deterministic, so the gradient flows back through z to mu (dz/dmu = 1) and sigma
    (dz/dsigma = epsilon), and on into the encoder's weights phi. Forward computation in black,
    gradients in red, drawn from the loss back; random nodes are circles, deterministic ones boxes.
    Each gradient arrow has the gid ``grad:<from>-><to>`` for the tests.
    """
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    ax.set_xlim(0, 7.5)
    ax.set_ylim(-0.4, 4.1)
    ax.set_aspect("equal")
    ax.axis("off")
    enc, samp, det, loss = "#cfe2f3", "#fff2cc", "white", "#f4cccc"
    red = "tab:red"
    ax.plot([3.75, 3.75], [0.0, 4.05], color="0.6", lw=0.8)
    for ox, right in ((0.0, False), (3.9, True)):
        cx = ox + 1.5
        title = (r"with the trick: $z = \mu + \sigma\varepsilon$" if right
                 else r"without the trick: $z \sim \mathcal{N}(\mu, \sigma^2)$")
        ax.text(ox + 0.05, 4.05, title, fontsize=10, va="top", ha="left")
        # forward: encoder -> mu, sigma -> z -> f
        _box(ax, cx - 1.0, 0.15, 2.0, 0.5, r"encoder, weights $\phi$", enc, 9)
        _box(ax, cx - 0.95, 1.25, 0.7, 0.45, r"$\mu$", enc)
        _box(ax, cx + 0.25, 1.25, 0.7, 0.45, r"$\sigma$", enc)
        _box(ax, cx - 1.0, 3.2, 2.0, 0.5, r"$f(z)$, e.g. $\log p_\theta(x \mid z)$", loss, 9)
        zy = 2.45  # the centre of the z node
        if right:
            _box(ax, cx - 0.65, zy - 0.25, 1.3, 0.5, r"$z = \mu + \sigma\varepsilon$", det, 9)
            e = (cx + 1.55, zy)
            ax.add_patch(Circle(e, 0.27, fc=samp, ec="k", lw=1.2))
            ax.text(*e, r"$\varepsilon$", ha="center", va="center", fontsize=12)
            ax.text(e[0], e[1] + 0.33, r"$\sim\mathcal{N}(0, 1)$", ha="center", va="bottom", fontsize=8)
            _arrow(ax, (e[0] - 0.27, zy), (cx + 0.65, zy))
            z_top, z_bottom = zy + 0.25, zy - 0.25
        else:
            ax.add_patch(Circle((cx, zy), 0.3, fc=samp, ec="k", lw=1.2))
            ax.text(cx, zy, r"$z$", ha="center", va="center", fontsize=12)
            ax.text(cx + 0.38, zy + 0.02, "random:\na draw", ha="left", va="center", fontsize=8)
            z_top, z_bottom = zy + 0.3, zy - 0.25
        _arrow(ax, (cx - 0.45, 0.65), (cx - 0.6, 1.25))
        _arrow(ax, (cx + 0.45, 0.65), (cx + 0.6, 1.25))
        _arrow(ax, (cx - 0.6, 1.7), (cx - 0.2, z_bottom))
        _arrow(ax, (cx + 0.6, 1.7), (cx + 0.2, z_bottom))
        _arrow(ax, (cx - 0.12, z_top), (cx - 0.12, 3.2))
        # backward: the gradient of f, from the loss down
        _grad_arrow(ax, (cx + 0.12, 3.2), (cx + 0.12, z_top), "f->z")
        ax.text(cx + 0.2, (3.2 + z_top) / 2, r"$\partial f / \partial z$", color=red, fontsize=9, va="center")
        if right:
            _grad_arrow(ax, (cx - 0.35, z_bottom), (cx - 0.85, 1.7), "z->mu", rad=0.25)
            _grad_arrow(ax, (cx + 0.35, z_bottom), (cx + 0.85, 1.7), "z->sigma", rad=-0.25)
            ax.text(cx - 0.95, 2.05, r"$\partial z / \partial \mu = 1$", color=red, fontsize=9, ha="right",
                    va="center")
            ax.text(cx + 0.95, 2.05, r"$\partial z / \partial \sigma = \varepsilon$", color=red, fontsize=9,
                    ha="left", va="center")
            _grad_arrow(ax, (cx - 0.8, 1.25), (cx - 0.75, 0.65), "mu->phi", rad=0.3)
            _grad_arrow(ax, (cx + 0.8, 1.25), (cx + 0.75, 0.65), "sigma->phi", rad=-0.3)
            ax.text(cx, 0.95, r"on to $\phi$", color=red, fontsize=8, ha="center", va="center")
        else:
            # the gradient stops at the draw: nothing reaches mu, sigma or phi
            ax.text(cx, z_bottom - 0.14, r"$\times$", color=red, fontsize=16, ha="center", va="center")
            ax.text(cx + 1.1, 2.0, "no gradient\nreaches $\\mu$, $\\sigma$\nor $\\phi$", color=red,
                    fontsize=8, ha="left", va="center")
    # the key
    ax.text(0.05, -0.25, "black: forward computation;  red: gradients, flowing back from $f$;  "
            "circles: random nodes;  boxes: deterministic", fontsize=8, va="center")
    fig.tight_layout()
    return fig


def kkt_cases(a: float = 2.0, b: float = 0.5, s: float = 1.0, x: float = 3.5, v0: float = 0.5,
              delta_active: float | None = None, delta_slack: float = 1.5):
    """The two cases of complementary slackness {eq}`kkt-conditions`, in the toy of the KKT chapter
    with the encoder's variance fixed at ``v0`` (its case B, {eq}`kkt-fixed-noise`).

    The encoder q = N(m, v0) chooses its mean m. Each m gives a point (K(m), Rec(m)) of the plane
    KL-reconstruction, with Rec of {eq}`kkt-toy-rec` and K = m^2 / 2 + K0 of {eq}`kkt-toy-kl`,
    K0 = (v0 - log v0 - 1) / 2; the plotted curve is that set of points, m over a grid (the branch
    of m on the side of m0 = (x - b) / a on top, the other below). The unconstrained maximiser of Rec
    is m0, at the KL K_max = K(m0). For a budget delta, the feasible set is K <= delta (shaded),
    and the optimum is the highest feasible point of the curve. In the plane, the level sets of the
    Lagrangian F = Rec - beta (K - delta) are lines of slope beta; the one at the optimum's value,
    with beta = beta*, touches the curve there and lies above all of it (dashed).

    Left, ``delta_active`` in (K0, K_max) (default K0 + 1/2): the constraint binds, the optimum is
    m_delta = sqrt(2 (delta - K0)) on the side of m0, at K = delta, and
    beta* = a (x - b - a m_delta) / (s^2 m_delta) > 0. Right, ``delta_slack`` >= K_max: the optimum
    is m0, inside, and beta* = 0. Every number is computed from these closed forms. Gids, with
    <case> "active" or "slack": "objective:<case>" (the curve), "feasible:<case>" (the shading),
    "budget:<case>" (the line K = delta), "optimum:<case>" (the marker), "lagrangian:<case>" (the
    line of slope beta*), "beta:<case>" (the text giving beta*), and "unconstrained:active" (m0,
    infeasible in the left panel).
    """
    r = x - b
    if a == 0 or r == 0 or s <= 0 or v0 <= 0:
        raise ValueError("kkt_cases needs a != 0, x != b, s > 0 and v0 > 0 (otherwise no budget binds)")

    def rec(m):
        return -0.5 * np.log(2 * np.pi * s * s) - ((r - a * m) ** 2 + a * a * v0) / (2 * s * s)

    def kl(m):
        return 0.5 * (m * m + v0 - np.log(v0) - 1)

    m0 = r / a
    k0, k_max = float(kl(0.0)), float(kl(m0))
    if delta_active is None:
        delta_active = k0 + 0.5
    if not k0 < delta_active < k_max:
        raise ValueError(f"delta_active must lie in (K0, K_max) = ({k0:.4g}, {k_max:.4g}); got {delta_active}")
    if not delta_slack >= k_max:
        raise ValueError(f"delta_slack must be >= K_max = {k_max:.4g}; got {delta_slack}")
    sign = float(np.sign(m0))
    m_delta = sign * np.sqrt(2 * (delta_active - k0))
    optima = {  # (delta, m*, beta*), from {eq}`kkt-fixed-noise`
        "active": (float(delta_active), m_delta, float(a * (r - a * m_delta) / (s * s * m_delta))),
        "slack": (float(delta_slack), m0, 0.0),
    }
    # m from a little past 0 on the far side to beyond m0; the grid holds 0, m0 and both optima
    span = abs(m0)
    ms = sign * np.union1d(np.linspace(-0.3 * span, 1.5 * span, 721), [0.0, abs(m0), abs(m_delta)])
    ks, rs = kl(ms), rec(ms)
    r_max, r_nose = float(rec(m0)), float(rec(0.0))  # the top, and the curve's leftmost point K = K0
    r_low = r_nose - 0.1 * (r_max - r_nose)  # the far branch runs on below the plot
    top = r_max + 0.1 * (r_max - r_nose)
    k_hi = max(float(ks.max()), delta_slack) * 1.02

    fig, axes = plt.subplots(1, 2, figsize=(7.5, 3.4), sharey=True)
    for ax, case in zip(axes, ("active", "slack")):
        delta, m_opt, beta = optima[case]
        k_opt, r_opt = float(kl(m_opt)), float(rec(m_opt))
        ax.axvspan(0, delta, color="tab:green", alpha=0.12, lw=0, gid=f"feasible:{case}",
                   label=r"feasible: $K \leq \delta$")
        ax.axvline(delta, color="tab:green", lw=1.0, gid=f"budget:{case}")
        ax.text(delta, r_low + 0.03 * (top - r_low), r" $\delta$", color="tab:green", fontsize=10, va="bottom")
        ax.plot(ks, rs, color="k", lw=1.6, gid=f"objective:{case}", label=r"$(K(m), \mathrm{Rec}(m))$, all $m$")
        # the Lagrangian's level set through the optimum: Rec = Rec* + beta* (K - delta)
        kl_line = np.array([0.0, k_hi])
        ax.plot(kl_line, r_opt + beta * (kl_line - k_opt), color="tab:red", ls="--", lw=1.2,
                gid=f"lagrangian:{case}", label=r"$\mathrm{Rec} - \beta^\star (K - \delta) = \mathrm{Rec}^\star$")
        ax.plot([k_opt], [r_opt], "o", color="tab:red", ms=6, zorder=5, gid=f"optimum:{case}",
                label="constrained optimum")
        ax.annotate(rf"$\beta^\star = {beta:.3g}$", (k_opt, r_opt), xytext=(6, -8), textcoords="offset points",
                    ha="left", va="top", fontsize=10, color="tab:red", gid=f"beta:{case}")
        if case == "active":
            ax.plot([k_max], [r_max], "o", mfc="white", mec="k", ms=6, zorder=5, gid="unconstrained:active",
                    label=r"unconstrained optimum $m_0$")
            ax.set_title(r"budget binds: $K^\star = \delta$, $\beta^\star > 0$", fontsize=10)
        else:
            ax.set_title(r"budget slack: $K^\star < \delta$, $\beta^\star = 0$", fontsize=10)
        ax.set_xlim(0, k_hi)
        ax.set_ylim(r_low, top)
        ax.set_xlabel(r"KL $K(m)$ (nats)")
    axes[0].set_ylabel(r"reconstruction $\mathrm{Rec}(m)$ (nats)")
    handles, labels = axes[0].get_legend_handles_labels()
    axes[0].legend(handles, labels, loc="lower right", fontsize=7, frameon=False)
    fig.tight_layout()
    return fig
