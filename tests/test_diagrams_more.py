"""The concept figures of chapters 01, 02 and 03: each draws its key labels, and the two that plot
curves plot the mathematics (checked here by routes of their own: quadrature, and vaelib's KL)."""

import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from vaelib import diagrams  # noqa: E402
from vaelib.objectives import gaussian_kl  # noqa: E402


def _texts(fig):
    """Every string the figure shows: texts, annotations, legend entries, axis labels."""
    out = []
    for ax in fig.axes:
        out += [t.get_text() for t in ax.texts]
        out += [ax.get_xlabel(), ax.get_ylabel(), ax.get_title()]
        if ax.get_legend() is not None:
            out += [t.get_text() for t in ax.get_legend().get_texts()]
    return out


def _line(fig, gid):
    found = [ln for ax in fig.axes for ln in ax.lines if ln.get_gid() == gid]
    assert len(found) == 1, (gid, len(found))
    return np.asarray(found[0].get_xdata(), float), np.asarray(found[0].get_ydata(), float)


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


# ------------------------------------------------------------------------------------ elbo_gap
TOY = dict(a=1.5, b=0.3, s=0.7, x=2.0)  # the ELBO chapter's numbers
Z = np.linspace(-12.0, 12.0, 240_001)  # quadrature grid: Gaussians of s.d. > 0.3 inside it


def _log_joint(z, a, b, s, x):
    return -np.log(2 * np.pi * s) - z**2 / 2 - (x - a * z - b) ** 2 / (2 * s**2)


def _log_px_quadrature(a, b, s, x):
    lj = _log_joint(Z, a, b, s, x)
    top = lj.max()
    return top + np.log(np.exp(lj - top).sum() * (Z[1] - Z[0]))


def _elbo_quadrature(m, v, a, b, s, x):
    """E_q[log p(x, z) - log q(z)] for q = N(m, v), by a Riemann sum: no closed form used."""
    log_q = -0.5 * np.log(2 * np.pi * v) - (Z - m) ** 2 / (2 * v)
    q = np.exp(log_q)
    return float((q * (_log_joint(Z, a, b, s, x) - log_q)).sum() * (Z[1] - Z[0]))


def test_elbo_gap_names_the_bound_the_evidence_and_the_gap():
    fig = diagrams.elbo_gap()
    joined = " ".join(_texts(fig))
    for label in (r"\log p_\theta(x)", r"\mathcal{L}(m)", r"D_{\mathrm{KL}}(q \,\Vert\, p_\theta(z \mid x))",
                  r"posterior $p_\theta(z \mid x)$", "$q$ near", "$q$ far", r"q = \mathcal{N}(m, v_\star)"):
        assert label in joined, label
    assert fig.get_size_inches()[0] <= 7.5


def test_the_elbo_curve_stays_under_log_p_and_touches_it_at_the_posterior_mean():
    fig = diagrams.elbo_gap(**TOY)
    _, log_px = _line(fig, "log_px")
    log_px = float(log_px[0])
    # the evidence line is log p(x), by quadrature of the joint density
    assert abs(log_px - _log_px_quadrature(**TOY)) < 1e-9
    m, elbo = _line(fig, "elbo")
    assert np.all(elbo <= log_px + 1e-12)
    best = int(np.argmax(elbo))
    assert abs(elbo[best] - log_px) < 1e-9  # touches
    zs, post = _line(fig, "posterior")
    # the touching point is the posterior's mean: the mean of the plotted density
    post_mean = float((zs * post).sum() / post.sum())
    assert abs(m[best] - post_mean) < 1e-6
    assert np.ptp(elbo) > 1.0  # and the curve does fall away from it
    # away from the touching point the gap is strict, and it is the KL to the posterior
    assert np.all(elbo[np.abs(m - m[best]) > 1e-3] < log_px - 1e-7)


def test_the_elbo_curve_is_the_elbo_of_its_q_and_the_posterior_is_the_posterior():
    fig = diagrams.elbo_gap(**TOY)
    a, b, s, x = TOY.values()
    v_star = s**2 / (a**2 + s**2)
    m, elbo = _line(fig, "elbo")
    for i in (0, 50, 200, 333, len(m) - 1):
        assert abs(elbo[i] - _elbo_quadrature(m[i], v_star, **TOY)) < 1e-8, m[i]
    zs, post = _line(fig, "posterior")
    log_px = _log_px_quadrature(**TOY)
    np.testing.assert_allclose(post, np.exp(_log_joint(zs, **TOY) - log_px), rtol=1e-9, atol=1e-14)
    # each q has the posterior's variance and sits where its gap is marked
    for k in ("near", "far"):
        zq, q = _line(fig, f"q_{k}")
        # log q is the parabola c - (z - mean)^2 / (2 var), and q integrates to 1 over the real line
        keep = q > 1e-8
        c2, c1, c0 = np.polyfit(zq[keep], np.log(q[keep]), 2)
        var, mean = -1 / (2 * c2), -c1 / (2 * c2)
        assert abs(var - v_star) < 1e-9, (k, var)
        assert abs(c0 - c1**2 / (4 * c2) + 0.5 * np.log(2 * np.pi * var)) < 1e-9, k
        m_k, elbo_k = _line(fig, f"at_{k}")
        assert abs(m_k[0] - mean) < 1e-9, k
        assert abs(elbo_k[0] - _elbo_quadrature(m_k[0], v_star, **TOY)) < 1e-8


def test_the_gaps_printed_in_the_legend_are_log_p_minus_the_elbo():
    fig = diagrams.elbo_gap(**TOY)
    log_px = float(_line(fig, "log_px")[1][0])
    texts = _texts(fig)
    gaps = {}
    for k in ("near", "far"):
        (label,) = [t for t in texts if t.startswith(f"$q$ {k}, gap")]
        gaps[k] = float(re.search(r"gap \$([0-9.]+)\$ nats", label).group(1))
        m_k, elbo_k = _line(fig, f"at_{k}")
        assert abs(gaps[k] - (log_px - elbo_k[0])) < 0.006, (k, gaps[k])
    assert 0 < gaps["near"] < gaps["far"]


def test_elbo_gap_follows_its_arguments():
    # another model: the curve still touches log p(x), now another log p(x)
    other = dict(a=-0.8, b=1.0, s=1.3, x=-0.5)
    fig = diagrams.elbo_gap(**other)
    log_px = float(_line(fig, "log_px")[1][0])
    assert abs(log_px - _log_px_quadrature(**other)) < 1e-9
    assert abs(_line(fig, "elbo")[1].max() - log_px) < 1e-9


# ------------------------------------------------------------------------------------ kl_shape
def test_kl_shape_labels_both_parts():
    fig = diagrams.kl_shape()
    joined = " ".join(_texts(fig))
    for label in (r"L_\mu", r"L_{\sigma^2}", r"$\sigma = 1$", r"$\mu = 0$", r"D_{\mathrm{KL}}", "barrier",
                  r"minimum 0 at $\sigma^2 = 1$", r"minimum 0 at $\mu = 0$"):
        assert label in joined, label
    assert fig.get_size_inches()[0] <= 7.5


def test_kl_shape_plots_vaelibs_kl_with_its_minima_in_the_right_places():
    fig = diagrams.kl_shape()
    mu, kl_mu = _line(fig, "kl_mu")
    v, kl_v = _line(fig, "kl_sigma2")
    # the same numbers as vaelib's gaussian_kl (logvar = log sigma^2), an implementation of its own
    t = torch.as_tensor
    lib_mu = gaussian_kl(t(mu)[:, None], t(np.zeros_like(mu))[:, None]).numpy()
    lib_v = gaussian_kl(t(np.zeros_like(v))[:, None], t(np.log(v))[:, None]).numpy()
    np.testing.assert_allclose(kl_mu, lib_mu, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(kl_v, lib_v, rtol=1e-12, atol=1e-15)
    # left: the parabola mu^2 / 2, >= 0, minimum 0 at mu = 0
    np.testing.assert_allclose(kl_mu, mu**2 / 2, rtol=1e-12, atol=1e-15)
    assert np.all(kl_mu >= 0) and mu[np.argmin(kl_mu)] == 0 and kl_mu.min() == 0
    # right: >= 0, minimum 0 at sigma^2 = 1, falling before it, rising after
    assert np.all(kl_v >= 0) and v[np.argmin(kl_v)] == 1 and abs(kl_v.min()) < 1e-15
    left, right = v < 1, v > 1
    assert np.all(np.diff(kl_v[left]) < 0) and np.all(np.diff(kl_v[right]) > 0)
    # the barrier: it climbs past the top of the plot as sigma^2 -> 0, like -log(sigma^2) / 2
    assert v.min() <= 1e-4 and kl_v[0] > fig.axes[1].get_ylim()[1]
    assert abs(kl_v[0] - (-0.5 * np.log(v[0]) - 0.5)) < v[0]


# ------------------------------------------------------------------------------------ reparameterisation_graph
def _gradients(ax):
    """[(name, patch)] of the red gradient arrows, by their gids ``grad:<name>``."""
    return [(p.get_gid()[5:], p) for p in ax.patches if (p.get_gid() or "").startswith("grad:")]


def test_reparameterisation_graph_labels_both_graphs():
    fig = diagrams.reparameterisation_graph()
    texts = _texts(fig)
    joined = " ".join(texts)
    assert any(t.startswith("without the trick") and r"\mathcal{N}(\mu, \sigma^2)" in t for t in texts)
    assert any(t.startswith("with the trick") and r"z = \mu + \sigma\varepsilon" in t for t in texts)
    for label in (r"$\varepsilon$", r"\sim\mathcal{N}(0, 1)", r"$\mu$", r"$\sigma$", r"weights $\phi$",
                  r"\log p_\theta(x \mid z)", r"\partial f / \partial z", r"\partial z / \partial \mu = 1",
                  r"\partial z / \partial \sigma = \varepsilon", "no gradient", "gradients"):
        assert label in joined, label
    assert fig.get_size_inches()[0] <= 7.5


def test_gradients_reach_mu_sigma_and_phi_only_with_the_trick():
    fig = diagrams.reparameterisation_graph()
    (ax,) = fig.axes
    grads = _gradients(ax)
    # the figure's two halves split at x = 3.75 (data units); an arrow's path lies in one half
    halves = {"left": {}, "right": {}}
    for name, p in grads:
        path = p.get_path()  # in data coordinates; a CLOSEPOLY vertex carries no position
        xs = path.vertices[path.codes != path.CLOSEPOLY, 0]
        assert xs.max() < 3.75 or xs.min() > 3.75, name  # within one half
        side = halves["left" if xs.max() < 3.75 else "right"]
        assert name not in side, name  # each gradient drawn once per graph
        side[name] = p
    assert set(halves["left"]) == {"f->z"}  # stops at the draw
    assert set(halves["right"]) == {"f->z", "z->mu", "z->sigma", "mu->phi", "sigma->phi"}
    for _, p in grads:
        assert p.get_edgecolor()[:3] == pytest.approx(matplotlib.colors.to_rgb("tab:red"))
