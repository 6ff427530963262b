"""vaelib.iwae: the importance-weighted bound as a training objective.

The bound at k = 1 against the one-code ELBO (exactly) and the closed-form ELBO (on average); its
gradient against the weighted sum of the normalised importance weights; the measurement against
vaelib.estimates and against a model whose evidence is known; fit_iwae's batched run against a
plain loop written here; the gradient's signal-to-noise ratio against a loop over draws; bad input.
Float64 throughout where two computations must agree, so that only round-off can separate them.
"""

import copy
import math

import numpy as np
import pytest
import torch
from torch.distributions import Normal

from tests.linear_gaussian import LinearGaussian
from vaelib import estimates, iwae, objectives
from vaelib.data import ImageData, load_digits
from vaelib.flows import FlowVAE
from vaelib.models import AE, VAE

F64 = torch.float64


def _vae(seed=0, d=3, hidden=16):
    torch.manual_seed(seed)
    return VAE((1, 8, 8), d, hidden=hidden).double()


def _flow(seed=0, d=3, hidden=16, layers=2, amortised=True):
    torch.manual_seed(seed)
    return FlowVAE((1, 8, 8), d, layers, hidden=hidden, amortised=amortised).double()


def _x(n=6):
    return load_digits("test").binarized_once(seed=0).x[:n].double()


def _eps(k, b, d, seed=1):
    return torch.randn(k, b, d, generator=torch.Generator().manual_seed(seed), dtype=F64)


def test_at_k_1_the_bound_is_the_elbo_with_the_kl_of_the_same_code():
    vae, x = _vae(), _x()
    eps = _eps(1, len(x), 3)
    mu, logvar = vae.encode(x)
    z = mu + torch.exp(0.5 * logvar) * eps[0]
    # the KL term estimated from the one code, by torch.distributions
    kl_one = (Normal(mu, torch.exp(0.5 * logvar)).log_prob(z) - Normal(0.0, 1.0).log_prob(z)).sum(-1)
    terms = objectives.elbo(vae, x, eps=eps[0])
    # float64, the same numbers in another order: round-off ~1e-13 on ~50 nats
    assert torch.allclose(iwae.iwae_bound(vae, x, eps), terms.rec - kl_one, rtol=0, atol=1e-10)
    assert torch.allclose(iwae.iwae_loss(vae, x, eps), -(terms.rec - kl_one).mean(), rtol=0, atol=1e-10)
    # the ELBO from k codes is the same at k = 1
    assert torch.equal(iwae.multi_code_elbo(vae, x, eps), iwae.iwae_bound(vae, x, eps))
    # and not the closed-form ELBO, draw by draw
    assert (iwae.iwae_bound(vae, x, eps) - terms.elbo).abs().max() > 1e-3
    # a flow's terms() return the same one-code estimate
    flow = _flow()
    px, kl = flow.terms(x, eps=eps[0])
    assert torch.allclose(iwae.iwae_bound(flow, x, eps), px.log_prob(x) - kl, rtol=0, atol=1e-10)


def test_at_k_1_the_bound_averages_to_the_closed_form_elbo():
    vae, x = _vae(), _x(4)
    n = 20_000
    x_rep = x.repeat(n, 1)  # image b at rows b, 4 + b, 8 + b, ...
    eps = _eps(1, len(x_rep), 3, seed=2)
    with torch.no_grad():
        # one-code estimates of L_1, each draw independent: (n, B)
        draws = iwae.iwae_bound(vae, x_rep, eps).reshape(n, len(x))
        terms = objectives.elbo(vae, x_rep, eps=eps[0])
    # the reconstruction term averaged over the same draws, minus the closed-form KL
    elbo = terms.rec.reshape(n, len(x)).mean(0) - terms.kl[: len(x)]
    se = draws.std(0) / math.sqrt(n)
    # four standard errors: each of 4 images fails by chance with probability 6e-5
    assert ((draws.mean(0) - elbo).abs() < 4 * se).all(), (draws.mean(0) - elbo, se)


def test_the_gradient_is_the_importance_weighted_sum_of_the_codes_gradients():
    vae, x = _vae(), _x(3)
    eps = _eps(5, len(x), 3, seed=3)
    params = list(vae.parameters())
    log_w = iwae.log_weights(vae, x, eps)  # (5, 3)
    weights = iwae.importance_weights(log_w).detach()
    assert (weights >= 0).all() and torch.allclose(weights.sum(0), torch.ones(3, dtype=F64), atol=1e-14)
    # autograd of sum_b L_k-hat(x_b) ...
    auto = torch.autograd.grad(iwae.iwae_bound(vae, x, eps).sum(), params)
    # ... against sum_b sum_i w~_ib grad log w_ib, every gradient by autograd separately
    by_hand = [torch.zeros_like(p) for p in params]
    for i in range(5):
        for b in range(3):
            g = torch.autograd.grad(log_w[i, b], params, retain_graph=True)
            by_hand = [acc + weights[i, b] * gi for acc, gi in zip(by_hand, g)]
    for a, h in zip(auto, by_hand):
        assert torch.allclose(a, h, rtol=1e-9, atol=1e-12)
    # uniform weights (the mean of the log-weights' gradients, the ELBO's) would be another gradient
    uniform = torch.autograd.grad(log_w.mean(0).sum(), params)
    assert max((a - u).abs().max() for a, u in zip(auto, uniform)) > 1e-3


def test_bounds_draws_what_estimates_draws_and_agrees_with_it():
    vae, x = _vae(), _x(20)
    # max_rows 100: chunks of 5 codes per image, so the chunked drawing is exercised
    ours = iwae.bounds(vae, x, 23, generator=torch.Generator().manual_seed(4), max_rows=100)
    theirs = estimates.iwae_log_likelihood(vae, x, 23, max_rows=100, generator=torch.Generator().manual_seed(4))
    assert torch.allclose(ours.iwae, theirs, rtol=0, atol=1e-10)
    assert (ours.iwae >= ours.elbo - 1e-12).all()  # log-mean-exp >= mean, draw by draw


def test_bounds_on_a_model_with_known_evidence():
    x = LinearGaussian(seed=0).sample(40, seed=1)
    exact = LinearGaussian(seed=0)  # q is the exact posterior: every weight is p(x)
    b = iwae.bounds(exact, x, 7, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(b.iwae, exact.log_evidence(x), atol=1e-10)
    assert torch.allclose(b.elbo, exact.log_evidence(x), atol=1e-10)
    shifted = LinearGaussian(seed=0, posterior_shift=0.6)  # an imperfect q
    x_rep = x.repeat(50, 1)  # 50 independent estimates for each of the 40 images
    gaps = {}
    for k in (1, 10, 100):
        b = iwae.bounds(shifted, x_rep, k, generator=torch.Generator().manual_seed(k))
        gaps[k] = (shifted.log_evidence(x_rep) - b.iwae).numpy()
    # the deficit log p(x) - L_k shrinks with k: over 2,000 estimates, each mean difference more
    # than 4 standard errors above zero
    for lo, hi in ((1, 10), (10, 100)):
        diff = gaps[lo] - gaps[hi]
        assert diff.mean() > 4 * diff.std() / math.sqrt(len(diff)), (lo, hi, diff.mean())
    assert gaps[100].mean() > 0


def _digits(n=96):
    d = load_digits("train", binarize=True).subset(n)
    return ImageData(d.x.double(), d.y, d.shape, binarize=True)


def _plain_loop(model, data, k, seed, epochs, batch_size, lr, bound="iwae"):
    """One model trained on -L_k by a loop written out: what fit_iwae should do for each member."""
    gen_data = torch.Generator().manual_seed(seed)
    gen_noise = torch.Generator().manual_seed(iwae.noise_seed(seed))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    n = len(data)
    history = []
    for _ in range(epochs):
        order = torch.randperm(n, generator=gen_data)
        total = 0.0
        for b in range(n // batch_size):
            rows = order[b * batch_size : (b + 1) * batch_size]
            x = torch.bernoulli(data.x[rows], generator=gen_data)
            eps = torch.randn(k, batch_size, model.latent_dim, generator=gen_noise, dtype=F64)
            log_w = iwae.log_weights(model, x, eps)
            if bound == "iwae":
                loss = -(torch.logsumexp(log_w, 0) - math.log(k)).mean()
            else:  # the ELBO from the same k codes
                loss = -log_w.mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += -loss.item()
        history.append(total / (n // batch_size))
    return history


@pytest.mark.parametrize("make, bound", [(_vae, "iwae"), (_flow, "iwae"), (_vae, "elbo")],
                         ids=["vae", "flow", "vae-elbo"])
def test_fit_iwae_trains_each_member_as_a_plain_loop_trains_it_alone(make, bound):
    data = _digits()
    members = [make(seed=s) for s in (0, 1)]
    alone = [copy.deepcopy(m) for m in members]
    histories = iwae.fit_iwae(members, data, k=3, seeds=[5, 6], epochs=2, batch_size=32, lr=1e-2, bound=bound,
                              device="cpu")
    for m, a, h, s in zip(members, alone, histories, (5, 6)):
        hist = _plain_loop(a, data, 3, s, 2, 32, 1e-2, bound)
        # float64; batched and single products sum in different orders (~1e-16), which a few
        # Adam steps amplify by orders of magnitude at most; one step moves a weight by ~1e-2
        assert np.allclose(h["bound"], hist, rtol=0, atol=1e-9)
        for p, q in zip(m.parameters(), a.parameters()):
            assert torch.allclose(p, q, rtol=0, atol=1e-9)
        assert not m.training
    # the two members did not train alike
    assert not torch.allclose(next(members[0].parameters()), next(members[1].parameters()))


def test_the_noise_has_a_stream_of_its_own():
    # fit_iwae draws batches from seed and noise from noise_seed(seed) (the plain loop above pins
    # both), so arms with one seed and different k see the same batches
    assert iwae.noise_seed(5) == iwae.noise_seed(5)
    assert len({5, 6, iwae.noise_seed(5), iwae.noise_seed(6)}) == 4
    assert 0 <= iwae.noise_seed(2**63 - 1) < 2**63


def test_gradient_snr_is_mean_over_sd_of_the_gradients_of_a_loop():
    vae, x = _vae(), _x(4)
    n_rep, k = 12, 3
    got = iwae.gradient_snr(vae, x, k, n_rep, generator=torch.Generator().manual_seed(7), chunk_size=5)
    eps = torch.randn((n_rep, k, 4, 3), generator=torch.Generator().manual_seed(7), dtype=F64)
    names = [n for n, _ in vae.named_parameters()]
    grads = {n: [] for n in names}
    for e in eps:
        g = torch.autograd.grad(iwae.iwae_loss(vae, x, e), list(vae.parameters()))
        for n, gi in zip(names, g):
            grads[n].append(gi.reshape(-1))
    want = {"encoder": [], "decoder": []}
    for n in names:
        g = torch.stack(grads[n])
        sd = g.std(0)
        keep = sd > 0
        want["decoder" if n.startswith("decoder") else "encoder"].append(g.mean(0).abs()[keep] / sd[keep])
    for group in ("encoder", "decoder"):
        expected = torch.cat(want[group]).numpy()
        assert got[group].shape == expected.shape and len(expected) > 50
        assert np.allclose(got[group], expected, rtol=1e-8, atol=0)


def test_the_encoders_gradient_loses_its_signal_as_k_grows():
    # Rainforth et al.'s trade-off on a small untrained VAE, 400 draws: the median SNR of the
    # encoder's parameters falls from k = 1 to k = 64, the decoder's rises. Each median over
    # hundreds of parameters moves by far more than its noise (a factor ~2-8 here, seeded).
    vae, x = _vae(d=2), _x(8)
    med = {}
    for k in (1, 64):
        snr = iwae.gradient_snr(vae, x, k, 400, generator=torch.Generator().manual_seed(k), chunk_size=100)
        med[k] = {g: float(np.median(a)) for g, a in snr.items()}
    assert med[64]["encoder"] < med[1]["encoder"] / 1.5, med
    assert med[64]["decoder"] > med[1]["decoder"] * 1.5, med


def test_bad_input_is_named():
    vae, x = _vae(), _x(4)
    with pytest.raises(ValueError, match=r"eps must be a \(k, B, d\) tensor with B = 4"):
        iwae.iwae_bound(vae, x, torch.zeros(2, 5, 3, dtype=F64))
    with pytest.raises(ValueError, match=r"eps must be a \(k, B, d\)"):
        iwae.log_weights(vae, x, torch.zeros(4, 3, dtype=F64))
    with pytest.raises(ValueError, match="k must be at least 1"):
        iwae.bounds(vae, x, 0)
    with pytest.raises(TypeError, match="k must be an int"):
        iwae.bounds(vae, x, 2.0)
    with pytest.raises(ValueError, match="n_rep must be an int >= 2"):
        iwae.gradient_snr(vae, x, 2, 1)
    with pytest.raises(TypeError, match="sample_posterior.*or a Gaussian encode"):
        iwae.iwae_bound(AE((1, 8, 8), 3, hidden=16).double(), x, torch.zeros(1, 4, 3, dtype=F64))
    data = _digits(64)
    with pytest.raises(ValueError, match="share one class and configuration"):
        iwae.fit_iwae([_vae(), _flow()], data, k=1, seeds=[0, 1], epochs=1)
    with pytest.raises(ValueError, match="seeds must be a list with one int per model"):
        iwae.fit_iwae([_vae(), _vae()], data, k=1, seeds=[0], epochs=1)
    with pytest.raises(ValueError, match="distinct objects"):
        v = _vae()
        iwae.fit_iwae([v, v], data, k=1, seeds=[0, 1], epochs=1)
    with pytest.raises(ValueError, match="epochs must be a positive int"):
        iwae.fit_iwae([_vae()], data, k=1, seeds=[0], epochs=0)
    with pytest.raises(ValueError, match="bound must be one of"):
        iwae.fit_iwae([_vae()], data, k=1, seeds=[0], epochs=1, bound="vae")
    with pytest.raises(TypeError, match="models must be a non-empty list"):
        iwae.fit_iwae(_vae(), data, k=1, seeds=[0], epochs=1)
    with pytest.raises(ValueError, match="log_w must be a tensor"):
        iwae.importance_weights(torch.tensor(1.0))
