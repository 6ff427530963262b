"""vaelib.discrete: the exact gradient of a categorical expectation (against autograd and finite
differences), the score-function estimator's exact mean and variance (against enumeration and
Monte Carlo), the optimal baseline, and the Concrete density (against torch.distributions, and
by quadrature: it integrates to one, and P(y_1 > 1/2) is the Gumbel-max probability pi_1)."""

import math

import pytest
import torch
from scipy import integrate
from torch.distributions import Categorical, RelaxedOneHotCategorical

from vaelib import discrete

F64 = torch.float64
ATOMS = torch.tensor([-0.5, 0.0, 1.0, 1.5, 3.0], dtype=F64)
F_VALUES = torch.sin(3 * ATOMS) + ATOMS**2  # any f: nothing below depends on its form


def _expectation(mu, sigma=0.7):
    theta, _ = discrete.discretised_gaussian_logits(mu, ATOMS, sigma)
    return (torch.softmax(theta, 0) * F_VALUES).sum()


def test_the_logits_derivative_is_autograds():
    mu = torch.tensor(0.8, dtype=F64, requires_grad=True)
    theta = -((ATOMS - mu) ** 2) / (2 * 0.7**2)
    auto = torch.stack([torch.autograd.grad(t, mu, retain_graph=True)[0] for t in theta])
    _, dtheta = discrete.discretised_gaussian_logits(0.8, ATOMS, 0.7)
    torch.testing.assert_close(dtheta, auto, rtol=1e-14, atol=1e-14)


def test_the_exact_gradient_is_the_derivative_of_the_expectation():
    theta, dtheta = discrete.discretised_gaussian_logits(0.8, ATOMS, 0.7)
    exact = discrete.categorical_gradient(F_VALUES, theta, dtheta)
    # autograd through softmax and the sum: the same derivative by another route, to round-off
    mu = torch.tensor(0.8, dtype=F64, requires_grad=True)
    pi = torch.softmax(-((ATOMS - mu) ** 2) / (2 * 0.7**2), 0)
    (auto,) = torch.autograd.grad((pi * F_VALUES).sum(), mu)
    torch.testing.assert_close(exact, auto, rtol=1e-12, atol=1e-12)
    # central finite difference, step 1e-5: truncation error ~h^2 * f''' ~ 1e-10, round-off ~1e-11
    h = 1e-5
    fd = (_expectation(0.8 + h) - _expectation(0.8 - h)) / (2 * h)
    assert abs(float(exact - fd)) < 1e-8


def test_the_score_function_moments_are_sums_over_the_categories():
    theta, dtheta = discrete.discretised_gaussian_logits(0.8, ATOMS, 0.7)
    exact = discrete.categorical_gradient(F_VALUES, theta, dtheta)
    # enumeration: the score of each category by autograd through Categorical.log_prob
    mu = torch.tensor(0.8, dtype=F64, requires_grad=True)
    dist = Categorical(logits=-((ATOMS - mu) ** 2) / (2 * 0.7**2))
    scores = torch.stack([torch.autograd.grad(dist.log_prob(torch.tensor(k)), mu, retain_graph=True)[0]
                          for k in range(len(ATOMS))])
    pi = dist.probs.detach()
    for b in (0.0, 1.3, -2.0):
        mean, var = discrete.score_function_moments(F_VALUES, theta, dtheta, b)
        g = (F_VALUES - b) * scores
        torch.testing.assert_close(mean, exact, rtol=1e-12, atol=1e-12)  # unbiased for every b
        torch.testing.assert_close(var, (pi * g**2).sum() - (pi * g).sum() ** 2, rtol=1e-12, atol=1e-12)


def test_the_score_function_variance_matches_monte_carlo():
    theta, dtheta = discrete.discretised_gaussian_logits(0.8, ATOMS, 0.7)
    _, var = discrete.score_function_moments(F_VALUES, theta, dtheta, 0.5)
    n = 400_000
    mu = torch.full((n,), 0.8, dtype=F64, requires_grad=True)
    dist = Categorical(logits=-((ATOMS - mu[:, None]) ** 2) / (2 * 0.7**2))
    k = torch.multinomial(dist.probs.detach(), 1, generator=torch.Generator().manual_seed(0))[:, 0]
    (g,) = torch.autograd.grad(((F_VALUES[k] - 0.5) * dist.log_prob(k)).sum(), mu)
    s2 = g.var()
    se = (((g - g.mean()) ** 4).mean() - s2**2).sqrt() / math.sqrt(n)
    # 5 standard errors of a sample variance: a false alarm has probability ~6e-7
    assert abs(float(s2 - var)) < 5 * float(se)


def test_the_optimal_baseline_minimises_the_variance():
    theta, dtheta = discrete.discretised_gaussian_logits(0.8, ATOMS, 0.7)
    b = float(discrete.optimal_baseline(F_VALUES, theta, dtheta))
    v = [float(discrete.score_function_moments(F_VALUES, theta, dtheta, b + d)[1]) for d in (-0.1, 0.0, 0.1)]
    assert v[1] < v[0] and v[1] < v[2]
    # a quadratic in b: symmetric about its minimum
    assert abs(v[0] - v[2]) < 1e-10 * abs(v[1])


@pytest.mark.parametrize("tau", [0.2, 0.7, 2.0])
def test_the_concrete_density_is_torchs(tau):
    logits = torch.tensor([0.3, -1.0, 0.8, 0.0], dtype=F64)
    dist = RelaxedOneHotCategorical(torch.tensor(tau, dtype=F64), logits=logits)
    torch.manual_seed(0)
    y = dist.sample((500,))
    y = y.clamp_min(1e-300)
    y = y / y.sum(-1, keepdim=True)
    ours = discrete.concrete_log_prob(y, logits + 5.0, tau)  # a shift of the logits changes nothing
    torch.testing.assert_close(ours, dist.log_prob(y), rtol=1e-10, atol=1e-9)


@pytest.mark.parametrize("tau", [0.3, 1.0, 2.5])
def test_the_concrete_density_integrates_to_one_and_keeps_the_gumbel_max_probability(tau):
    logits = torch.tensor([0.4, -0.9], dtype=F64)
    pi_1 = float(torch.softmax(logits, 0)[0])

    def p(y1):
        y = torch.tensor([y1, 1.0 - y1], dtype=F64)
        return math.exp(float(discrete.concrete_log_prob(y, logits, tau)))

    total = sum(integrate.quad(p, a, b, limit=200)[0] for a, b in ((0, 0.5), (0.5, 1)))
    upper = integrate.quad(p, 0.5, 1, limit=200)[0]
    # quad's error estimates are ~1e-9 here; a wrong power of tau or of y is off by O(1)
    assert abs(total - 1) < 1e-6
    # y_1 > 1/2 exactly when theta_1 + g_1 > theta_2 + g_2: the Gumbel-max event, probability pi_1
    assert abs(upper - pi_1) < 1e-6


def test_bad_input_is_named():
    atoms = torch.tensor([0.0, 1.0], dtype=F64)
    with pytest.raises(ValueError, match="sigma must be > 0"):
        discrete.discretised_gaussian_logits(1.0, atoms, 0.0)
    with pytest.raises(ValueError, match="atoms must be a 1-D tensor of K >= 2"):
        discrete.discretised_gaussian_logits(1.0, torch.tensor([1.0], dtype=F64), 1.0)
    with pytest.raises(TypeError, match="f must be a floating-point torch tensor"):
        discrete.categorical_gradient([1.0, 2.0], atoms, atoms)
    with pytest.raises(ValueError, match="one value per category"):
        discrete.categorical_gradient(atoms, torch.zeros(3, dtype=F64), atoms)
    with pytest.raises(ValueError, match="tau must be a finite number > 0"):
        discrete.concrete_log_prob(torch.tensor([0.5, 0.5], dtype=F64), atoms, 0.0)
    with pytest.raises(ValueError, match="open simplex"):
        discrete.concrete_log_prob(torch.tensor([1.0, 0.0], dtype=F64), atoms, 1.0)
    with pytest.raises(ValueError, match="sum to 1"):
        discrete.concrete_log_prob(torch.tensor([0.5, 0.6], dtype=F64), atoms, 1.0)
    with pytest.raises(ValueError, match="logits must be a tensor with 2 entries"):
        discrete.concrete_log_prob(torch.tensor([0.5, 0.5], dtype=F64), torch.zeros(3, dtype=F64), 1.0)
