"""The concept figure of chapter 06, ``diagrams.kkt_cases``: the two cases of complementary slackness
in the chapter's toy with the encoder's variance fixed. The figure's points are checked by routes of
their own: a brute-force search over a dense grid of encoder means (no KKT formula), quadrature of
the reconstruction term, and vaelib's KL."""

import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from vaelib import diagrams  # noqa: E402
from vaelib.objectives import gaussian_kl  # noqa: E402

TOY = dict(a=2.0, b=0.5, s=1.0, x=3.5, v0=0.5)  # the chapter's decoder, data point and v0
OTHER = dict(a=-0.8, b=1.0, s=1.3, x=-0.5, v0=2.0, delta_active=0.6, delta_slack=2.5)  # x < b, a < 0
CASES = ("active", "slack")
Z = np.linspace(-15.0, 15.0, 300_001)  # quadrature grid: q has s.d. >= 0.7 and |mean| < 5 here


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def _line(fig, gid):
    found = [ln for ax in fig.axes for ln in ax.lines if ln.get_gid() == gid]
    assert len(found) == 1, (gid, len(found))
    return np.asarray(found[0].get_xdata(), float), np.asarray(found[0].get_ydata(), float)


def _text(fig, gid):
    found = [t for ax in fig.axes for t in ax.texts if t.get_gid() == gid]
    assert len(found) == 1, (gid, len(found))
    return found[0].get_text()


def _budget(fig, case):
    k, _ = _line(fig, f"budget:{case}")
    assert k[0] == k[1]  # a vertical line
    return float(k[0])


def _kl(m, v0):
    """K(m) = D_KL(N(m, v0) || N(0, 1)), by vaelib (an implementation of its own)."""
    m = torch.as_tensor(np.atleast_1d(m), dtype=torch.float64)[:, None]
    logvar = torch.full_like(m, float(np.log(v0)))
    return gaussian_kl(m, logvar).numpy()


def _rec_quadrature(m, a, b, s, x, v0):
    """E_q[log p(x | z)] for q = N(m, v0), p(x | z) = N(a z + b, s^2), by a Riemann sum."""
    q = np.exp(-((Z - m) ** 2) / (2 * v0)) / np.sqrt(2 * np.pi * v0)
    log_lik = -0.5 * np.log(2 * np.pi * s * s) - (x - a * Z - b) ** 2 / (2 * s * s)
    return float((q * log_lik).sum() * (Z[1] - Z[0]))


def _brute_force_optimum(delta, a, b, s, x, v0):
    """max R(m) subject to K(m) <= delta over a dense grid of m: no multiplier, no KKT formula.

    K(m) <= delta is |m| <= sqrt(2 (delta - K0)); R is a concave parabola in m, so sampling that
    interval on 2 000 001 points puts a grid point within h = 2 sqrt(2 (delta - K0)) / 2e6 < 3e-6
    of the maximiser, and the (K, R) of that point within |dK/dm| h, |dR/dm| h < 1e-5 of the optimum.
    """
    k0 = float(_kl(0.0, v0)[0])
    half = np.sqrt(2 * (delta - k0))
    m = np.linspace(-half, half, 2_000_001)
    rec = -0.5 * np.log(2 * np.pi * s * s) - ((x - b - a * m) ** 2 + a * a * v0) / (2 * s * s)
    i = int(np.argmax(rec))
    return float(_kl(m[i], v0)[0]), float(rec[i]), m[i]


def test_kkt_cases_labels_the_cases_and_fits_the_page():
    fig = diagrams.kkt_cases()
    texts = [t.get_text() for ax in fig.axes for t in ax.texts] + [ax.get_title() for ax in fig.axes]
    texts += [ax.get_xlabel() for ax in fig.axes] + [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    joined = " ".join(texts)
    for label in (r"K \leq \delta", r"K^\star = \delta", r"K^\star < \delta", r"\beta^\star > 0", r"\beta^\star = 0",
                  r"\mathrm{Rec} - \beta^\star (K - \delta) = \mathrm{Rec}^\star", "KL", "unconstrained optimum",
                  "constrained optimum"):
        assert label in joined, label
    assert fig.get_size_inches()[0] <= 7.5


@pytest.mark.parametrize("toy", [TOY, OTHER], ids=["chapter", "mirrored"])
def test_the_marked_optimum_is_the_best_plotted_point_of_the_feasible_set(toy):
    fig = diagrams.kkt_cases(**toy)
    for case in CASES:
        delta = _budget(fig, case)
        ks, rs = _line(fig, f"objective:{case}")
        (k_opt,), (r_opt,) = _line(fig, f"optimum:{case}")
        # the feasible points of the plotted curve (1e-12: K(m_delta) is delta up to round-off)
        feasible = ks <= delta + 1e-12
        assert feasible.sum() > 50 and (~feasible).sum() > 50  # the budget cuts the curve
        assert k_opt <= delta + 1e-12
        # no plotted feasible point beats the marker (1e-12: the same float64 formula, round-off)
        assert r_opt >= rs[feasible].max() - 1e-12
        # and the grid's best feasible point is within one grid step of it: the true optimum lies
        # between the argmax's grid neighbours, so no closer agreement can be asked of a grid
        i = int(np.flatnonzero(feasible)[np.argmax(rs[feasible])])
        step = np.abs(np.diff(ks[max(i - 1, 0): i + 2])).max()
        assert abs(ks[i] - k_opt) <= step and abs(rs[i] - r_opt) <= np.abs(np.diff(rs[max(i - 1, 0): i + 2])).max()
        # the optimum, found by brute force with no KKT formula (its tolerance in its docstring)
        k_bf, r_bf, _ = _brute_force_optimum(delta, **{k: toy[k] for k in ("a", "b", "s", "x", "v0")})
        assert abs(k_opt - k_bf) < 1e-5 and abs(r_opt - r_bf) < 1e-5, (case, k_opt, k_bf, r_opt, r_bf)


@pytest.mark.parametrize("toy", [TOY, OTHER], ids=["chapter", "mirrored"])
def test_the_active_optimum_sits_on_the_budget_and_the_slack_one_strictly_inside(toy):
    fig = diagrams.kkt_cases(**toy)
    (k_act,), _ = _line(fig, "optimum:active")
    (k_sl,), _ = _line(fig, "optimum:slack")
    assert abs(k_act - _budget(fig, "active")) < 1e-12  # binds: K* = delta
    assert k_sl < _budget(fig, "slack") - 1e-6  # slack, by far more than round-off (1e-15)
    # the slack optimum is the unconstrained one, which the active panel shows as infeasible
    (k_free,), (r_free,) = _line(fig, "unconstrained:active")
    assert k_free > _budget(fig, "active")
    assert (k_sl, _line(fig, "optimum:slack")[1][0]) == pytest.approx((k_free, r_free), abs=1e-12)
    ks, rs = _line(fig, "objective:slack")
    assert r_free == pytest.approx(rs.max(), abs=1e-12)  # the top of the whole curve


@pytest.mark.parametrize("toy", [TOY, OTHER], ids=["chapter", "mirrored"])
def test_beta_is_the_slope_of_the_lagrangian_line_which_touches_the_curve_from_above(toy):
    fig = diagrams.kkt_cases(**toy)
    betas = {}
    for case in CASES:
        text = _text(fig, f"beta:{case}")
        betas[case] = float(re.fullmatch(r"\$\\beta\^\\star = ([-0-9.e+]+)\$", text).group(1))
        kl_line, r_line = _line(fig, f"lagrangian:{case}")
        slope = (r_line[1] - r_line[0]) / (kl_line[1] - kl_line[0])
        assert slope == pytest.approx(betas[case], rel=1e-3, abs=1e-12)  # the text prints 3 digits
        (k_opt,), (r_opt,) = _line(fig, f"optimum:{case}")
        assert r_opt == pytest.approx(r_line[0] + slope * (k_opt - kl_line[0]), abs=1e-12)  # through it
        # F(m, beta*) <= F(m*, beta*) for every m: the whole curve lies on or under the line
        ks, rs = _line(fig, f"objective:{case}")
        assert np.all(rs <= r_opt + slope * (ks - k_opt) + 1e-12)
    assert betas["active"] > 0 and betas["slack"] == 0  # dual feasibility; complementary slackness
    # (kkt-slope): beta* is the slope of the frontier at the budget, from the plotted points left
    # of the optimum; a one-sided difference over one grid step h in K errs by O(h) (0.02 here)
    ks, rs = _line(fig, "objective:active")
    (k_opt,), (r_opt,) = _line(fig, "optimum:active")
    j = int(np.argmin(np.abs(ks - k_opt) + np.abs(rs - r_opt)))
    left = [i for i in (j - 1, j + 1) if ks[i] < k_opt and rs[i] < r_opt]
    assert len(left) == 1
    fd = (r_opt - rs[left[0]]) / (k_opt - ks[left[0]])
    assert fd == pytest.approx(betas["active"], rel=0.05), (fd, betas["active"])


@pytest.mark.parametrize("toy", [TOY, OTHER], ids=["chapter", "mirrored"])
def test_the_curve_is_the_closed_form_rate_and_reconstruction(toy):
    fig = diagrams.kkt_cases(**toy)
    a, b, s, x, v0 = (toy[k] for k in ("a", "b", "s", "x", "v0"))
    k0 = float(_kl(0.0, v0)[0])
    ks, rs = _line(fig, "objective:active")
    np.testing.assert_array_equal(_line(fig, "objective:slack")[0], ks)  # one curve, two budgets
    assert ks.min() == pytest.approx(k0, abs=1e-12)  # no encoder spends less than K0
    for i in (0, 37, len(ks) // 3, len(ks) // 2, len(ks) - 1):
        # the means with this KL, by vaelib's KL; the point must be (K(m), R(m)) for one of them
        m_abs = np.sqrt(2 * (ks[i] - k0))
        assert float(_kl(m_abs, v0)[0]) == pytest.approx(ks[i], abs=1e-12)
        err = min(abs(rs[i] - _rec_quadrature(m, a, b, s, x, v0)) for m in (m_abs, -m_abs))
        assert err < 1e-8, (i, err)


def test_kkt_cases_refuses_budgets_in_the_wrong_case():
    with pytest.raises(ValueError, match="delta_active"):
        diagrams.kkt_cases(delta_active=2.0)  # above K_max: slack, not active
    with pytest.raises(ValueError, match="delta_slack"):
        diagrams.kkt_cases(delta_slack=0.8)  # below K_max: it would bind
    with pytest.raises(ValueError):
        diagrams.kkt_cases(x=0.5)  # x = b: every budget is slack
