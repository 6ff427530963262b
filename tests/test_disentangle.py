"""The disentanglement scores: MIG (against hand-computed and independent answers), its ceiling,
the axis angles of the factors, and the beta-VAE metric."""

import math

import numpy as np
import pytest
from scipy.stats import entropy

from vaelib.disentangle import (
    beta_vae_score,
    factor_axis_angles,
    mig_ceiling,
    mig_per_factor,
    mutual_information_gap,
)


def _factors(n, rng):
    return np.stack([rng.integers(0, 5, n), rng.integers(0, 8, n)], axis=1)


def test_mig_is_one_for_copied_factors_and_zero_for_noise():
    rng = np.random.default_rng(0)
    f = _factors(5000, rng)
    codes = np.concatenate([f + 0.01 * rng.standard_normal(f.shape), rng.standard_normal((5000, 2))], axis=1)
    # one code per factor, exactly informative; the other codes are noise
    assert mig_per_factor(codes, f) == pytest.approx([1.0, 1.0], abs=0.03)
    noise = rng.standard_normal((5000, 4))
    assert mutual_information_gap(noise, f) < 0.03
    # a code that mixes both factors equally gives a small gap
    mixed = np.stack([f[:, 0] * 8 + f[:, 1], f[:, 1] * 5 + f[:, 0]], axis=1).astype(float)
    assert mutual_information_gap(mixed, f) < 0.5


def test_mig_rejects_bad_input():
    rng = np.random.default_rng(0)
    f = _factors(100, rng)
    with pytest.raises(ValueError):
        mutual_information_gap(rng.standard_normal((99, 3)), f)
    with pytest.raises(ValueError, match="constant"):
        mutual_information_gap(rng.standard_normal((100, 3)), np.zeros((100, 1), dtype=int))
    with pytest.raises(TypeError):
        mutual_information_gap(rng.standard_normal((100, 3)), f.astype(float))
    with pytest.raises(ValueError, match="NaN"):
        mutual_information_gap(np.full((100, 3), np.nan), f)
    with pytest.raises(ValueError, match="2 code dimensions"):
        mutual_information_gap(rng.standard_normal((100, 1)), f)
    with pytest.raises(ValueError, match="n_bins"):
        mutual_information_gap(rng.standard_normal((100, 3)), f, n_bins=0)
    with pytest.raises(TypeError, match="n_bins"):
        mutual_information_gap(rng.standard_normal((100, 3)), f, n_bins=2.5)
    with pytest.raises(ValueError, match="factors must be 2-D"):
        mig_ceiling(f[:, 0])
    with pytest.raises(TypeError, match="factors must be integer"):
        mig_ceiling(f.astype(float))
    with pytest.raises(ValueError, match="constant"):
        mig_ceiling(np.zeros((10, 2), dtype=int))
    with pytest.raises(ValueError, match="n_bins"):
        mig_ceiling(f, n_bins=-1)
    with pytest.raises(TypeError, match="n_bins"):
        mig_ceiling(f, n_bins=True)


def _grid(*columns):
    """Every combination of the given value lists once: a full factorial design, in which any two
    columns are exactly independent in the sample, so their plug-in MI is 0 up to round-off."""
    mesh = np.meshgrid(*columns, indexing="ij")
    return np.stack([m.ravel() for m in mesh], axis=1)


def _plugin_mi(a, b):
    """I(a; b) in nats from the contingency table, H(a) + H(b) - H(a, b) with scipy's entropy:
    an implementation of the formula independent of sklearn's mutual_info_score."""
    _, ai = np.unique(a, return_inverse=True)
    _, bi = np.unique(b, return_inverse=True)
    table = np.zeros((ai.max() + 1, bi.max() + 1))
    np.add.at(table, (ai, bi), 1)
    return entropy(table.sum(1)) + entropy(table.sum(0)) - entropy(table.ravel())


def test_mig_of_a_perfect_code_for_32_values_is_the_hand_computed_ceiling():
    # factors: v with 32 uniform values, w with 5; codes: copies of v and w and two noise
    # coordinates, all on a full grid so that every coordinate but the copy carries exactly 0 nats
    # about each factor and the gap is the copy's MI alone
    rng = np.random.default_rng(0)
    grid = _grid(np.arange(32), np.arange(5), rng.standard_normal(3), rng.standard_normal(4))
    grid = grid[rng.permutation(len(grid))]
    factors = grid[:, :2].astype(np.int64)
    codes = np.concatenate([grid[:, 2:], grid[:, :2]], axis=1)  # the copies are not the first columns
    # by hand: 20 equal-width bins over [0, 31] are 1.55 wide; value i lands in bin floor(i / 1.55)
    # (31, the maximum, in the last, closed bin 19), so these pairs share a bin and the rest are alone
    shared = [(0, 1), (2, 3), (5, 6), (8, 9), (11, 12), (14, 15), (16, 17), (19, 20), (22, 23),
              (25, 26), (27, 28), (30, 31)]
    assert len(shared) == 12 and 32 - 2 * 12 == 8  # 12 bins of 2 values, 8 of 1: 20 bins
    # the binned copy's entropy: 24 values in bins of probability 2/32, 8 in bins of 1/32
    h_binned = 12 * (2 / 32) * math.log(32 / 2) + 8 * (1 / 32) * math.log(32)
    expected = h_binned / math.log(32)  # = (3 + 5/4) / 5 = 0.85 exactly
    assert expected == pytest.approx(0.85, abs=1e-15)
    # tolerance: only float64 round-off in a dozen logs and sums separates the two sides (~1e-15);
    # merging or splitting a single pair of values would move the answer by > 0.01
    got = mig_per_factor(codes, factors)
    assert got[0] == pytest.approx(expected, abs=1e-12) and got[0] < 1 - 0.1
    assert got[1] == pytest.approx(1.0, abs=1e-12)  # 5 values < 20 bins: each value its own bin
    assert mutual_information_gap(codes, factors) == pytest.approx((expected + 1) / 2, abs=1e-12)
    ceiling = mig_ceiling(factors)
    assert ceiling.shape == (2,)
    assert ceiling == pytest.approx([expected, 1.0], abs=1e-12)
    # with 32 bins the same code reaches 1: the shortfall is the binning's, not the code's
    assert mig_per_factor(codes, factors, n_bins=32)[0] == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("n_values", [2, 7, 19, 20])
def test_a_perfect_code_for_at_most_20_values_reaches_one(n_values):
    rng = np.random.default_rng(n_values)
    grid = _grid(np.arange(n_values), np.arange(3), rng.standard_normal(5))
    factors = grid[:, :2].astype(np.int64)
    codes = np.concatenate([grid[:, :2] * 0.37 - 2.0, grid[:, 2:]], axis=1)  # an affine copy
    # round-off only (see above); a single merged pair of values would cost >= 0.1 for 20 values
    assert mig_per_factor(codes, factors) == pytest.approx([1.0, 1.0], abs=1e-12)
    assert mig_ceiling(factors) == pytest.approx([1.0, 1.0], abs=1e-12)


def test_a_21_valued_factor_already_falls_short_of_one():
    # 21 values over 20 bins of width 1: the two largest share the last, closed bin
    v = np.arange(21)[:, None]
    expected = (19 * math.log(21) + (2 / 21) * math.log(21 / 2) * 21) / 21 / math.log(21)
    assert mig_ceiling(v) == pytest.approx([expected], abs=1e-12) and expected < 0.98
    assert mig_ceiling(v, n_bins=21) == pytest.approx([1.0], abs=1e-12)


def test_mig_of_a_non_uniform_factor_uses_its_empirical_entropy():
    # v takes 0, 1, 2 with frequencies exactly 0.7, 0.2, 0.1; a noise coordinate is tiled so that
    # it is exactly independent of v in the sample
    rng = np.random.default_rng(1)
    v = np.repeat([0, 1, 2], [70, 20, 10])
    noise = rng.standard_normal(10)
    factors = np.repeat(v, 10)[:, None]
    noise_col = np.tile(noise, 100)
    h_v = -(0.7 * math.log(0.7) + 0.2 * math.log(0.2) + 0.1 * math.log(0.1))
    # a perfect copy: gap = H(v) / H(v) = 1 (round-off tolerance, as above)
    copy = np.stack([factors[:, 0].astype(float), noise_col], axis=1)
    assert mig_per_factor(copy, factors) == pytest.approx([1.0], abs=1e-12)
    assert mig_ceiling(factors) == pytest.approx([1.0], abs=1e-12)
    # a code that only says whether v is 0: I = H(0.7, 0.3), normalised by the empirical H(v);
    # normalising by log 3 instead would give 0.556 rather than 0.759
    is_zero = np.stack([(factors[:, 0] == 0).astype(float), noise_col], axis=1)
    h_split = -(0.7 * math.log(0.7) + 0.3 * math.log(0.3))
    assert mig_per_factor(is_zero, factors) == pytest.approx([h_split / h_v], abs=1e-12)
    assert abs(h_split / math.log(3) - h_split / h_v) > 0.2


def test_mig_known_partial_answer_for_a_factor_made_of_two_bits():
    # v = 2a + b with a a fair bit and b a bit that is 1 a quarter of the time, exactly independent
    # (every (a, b) combination in proportion); code 1 = a, code 2 = b
    a = np.repeat([0, 1], 8)
    b = np.tile([1, 0, 0, 0], 4)
    assert np.mean(b) == 0.25 and np.mean(b[a == 0]) == np.mean(b[a == 1])
    factors = (2 * a + b)[:, None]
    codes = np.stack([a, b], axis=1).astype(float)
    h_a = math.log(2)
    h_b = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    # I(a; v) = H(a), I(b; v) = H(b) (each is a function of v), H(v) = H(a) + H(b) by independence
    expected = (h_a - h_b) / (h_a + h_b)
    assert expected == pytest.approx(0.1042, abs=1e-4)  # not 0, not 1
    assert mig_per_factor(codes, factors) == pytest.approx([expected], abs=1e-12)
    # swapping the coordinates does not change the gap; the ceiling of a 4-valued factor is 1
    assert mig_per_factor(codes[:, ::-1], factors) == pytest.approx([expected], abs=1e-12)
    assert mig_ceiling(factors) == pytest.approx([1.0], abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mig_matches_an_independent_implementation(seed):
    rng = np.random.default_rng(seed)
    n = 3000
    factors = np.stack([rng.integers(0, 6, n), rng.choice(4, n, p=[0.5, 0.3, 0.15, 0.05])], axis=1)
    # discrete codes with at most 20 equally spaced levels (both ends present) keep one level per
    # bin, so the binning is a relabelling and MI is that of the raw codes; the codes depend
    # noisily on the factors so the MIs are far from 0 and from each other
    levels = np.stack([
        np.clip(factors[:, 0] * 3 + rng.integers(0, 3, n), 0, 17),
        np.clip(factors[:, 1] * 4 + rng.integers(-2, 3, n), 0, 19),
        (factors[:, 0] + factors[:, 1] + rng.integers(0, 5, n)) % 11,
        rng.integers(0, 20, n),
    ], axis=1)
    for col in levels.T:
        assert col.min() == 0 and len(np.unique(col)) == col.max() + 1 <= 20
    codes = levels * 0.25 + 1.0

    def reference(binned):
        gaps = []
        for k in range(factors.shape[1]):
            mi = sorted((_plugin_mi(binned[:, j], factors[:, k]) for j in range(binned.shape[1])), reverse=True)
            p = np.bincount(factors[:, k]) / n
            gaps.append((mi[0] - mi[1]) / entropy(p))
        return np.array(gaps)

    want = reference(levels)
    assert want.min() > 0.02  # a test that can fail: the gaps are not trivially 0
    # both sides are exact plug-in formulas in float64; they differ only by summation order (~1e-15)
    assert mig_per_factor(codes, factors) == pytest.approx(want, abs=1e-12)
    # continuous codes: bin them by the equal-width formula floor((x - min) / width), the maximum
    # in the last bin, written here without np.histogram; Gaussian codes hit a bin edge with
    # probability 0, so the two binnings agree exactly
    cont = codes + rng.standard_normal(codes.shape)
    lo, hi = cont.min(0), cont.max(0)
    binned = np.minimum(np.floor((cont - lo) / (hi - lo) * 20), 19).astype(int)
    assert mig_per_factor(cont, factors) == pytest.approx(reference(binned), abs=1e-12)


def test_beta_vae_score_known_answers():
    sizes = [3, 6, 10]
    render = lambda v: v.astype(float)  # "images" are the factors themselves
    copy = beta_vae_score(lambda x: x, render, sizes, n_train=300, n_test=200, pairs_per_point=16)
    assert copy["eval_accuracy"] > 0.95
    rng = np.random.default_rng(1)
    noise = beta_vae_score(lambda x: rng.standard_normal((len(x), 3)), render, sizes, n_train=300, n_test=300,
                           pairs_per_point=16)
    # chance is 1/3; 300 test points give a standard error of about 0.027
    assert noise["eval_accuracy"] < 1 / 3 + 0.12
    with pytest.raises(ValueError, match="positive ints"):
        beta_vae_score(lambda x: x, render, [3, 0])


def test_beta_vae_score_refuses_degenerate_input_by_name():
    render = lambda v: v.astype(float)  # noqa: E731
    with pytest.raises(ValueError, match="at least 2 factors"):  # one class: any classifier scores 1.0
        beta_vae_score(lambda x: x, render, [5])
    with pytest.raises(ValueError, match=r"one code per image, shape \(64, C\); got shape \(63, 3\)"):
        beta_vae_score(lambda x: x[:-1], render, [3, 4, 5], n_train=1, n_test=1)
    with pytest.raises(ValueError, match=r"one code per image, shape \(64, C\); got shape \(64,\)"):
        beta_vae_score(lambda x: x[:, 0], render, [3, 4, 5], n_train=1, n_test=1)
    with pytest.raises(ValueError, match="n_test must be an int >= 1"):
        beta_vae_score(lambda x: x, render, [3, 4], n_test=0)
    with pytest.raises(ValueError, match="seed must be in"):
        beta_vae_score(lambda x: x, render, [3, 4], seed=-1)


def test_factor_axis_angles_recovers_a_known_rotation():
    rng = np.random.default_rng(0)
    f = np.stack(np.meshgrid(np.arange(12), np.arange(12), indexing="ij"), -1).reshape(-1, 2)
    z = (f - f.mean(0)) / f.std(0) * [3.0, 1.0]  # factor 0 moves coordinate 0 three times as far
    for theta in (0.0, 10.0, 30.0):
        t = np.radians(theta)
        rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
        angles = factor_axis_angles(z @ rot.T + 1e-3 * rng.normal(size=z.shape), f)
        # exact for noise-free codes; 1e-3 noise on codes of unit scale moves a direction by < 0.01 degree
        np.testing.assert_allclose(angles, [theta, theta], atol=0.01)
    # 60 degrees is 30 from the other axis: the angle is to the *nearest* axis
    t = np.radians(60.0)
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    np.testing.assert_allclose(factor_axis_angles(z @ rot.T, f), [30.0, 30.0], atol=1e-9)
    with pytest.raises(ValueError, match="constant"):
        factor_axis_angles(z, np.column_stack([f[:, 0], np.zeros(len(f))]))


def test_the_positive_control_needs_both_a_high_mig_and_a_gain_over_untrained_encoders():
    from vaelib.disentangle import CONTROL_MIN_GAIN, CONTROL_MIN_MIG, positive_control_holds

    assert (CONTROL_MIN_MIG, CONTROL_MIN_GAIN) == (0.3, 0.2)  # the thresholds chapters 07 and 12 declared
    assert positive_control_holds(0.45, 0.05)
    assert not positive_control_holds(0.29, 0.0)  # high enough gain, too low a MIG
    assert not positive_control_holds(0.5, 0.35)  # high MIG, but untrained encoders nearly reach it
    assert positive_control_holds(np.float64(0.3), 0.05)  # the MIG bound is inclusive
    with pytest.raises(ValueError, match=r"floor_mig must be a finite number \(a mean MIG\); got nan"):
        positive_control_holds(0.5, float("nan"))
