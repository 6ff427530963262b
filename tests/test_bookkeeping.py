"""Known answers for the bookkeeping of training: bugs that leave every formula right.

A wrong average, a seed that is not used, a device chosen in the wrong place, a parameter read
on the wrong scale: none of these breaks a derivation, and several are invisible at a model's
initial values (a log-variance of 0, class means of 0, uniform factors). Each test below names
the bug it is built to catch; each was planted in vaelib and seen to make the test fail.
"""

import math
from dataclasses import replace

import pytest
import torch
from torch.distributions import Normal

from vaelib import config
from vaelib.data import load_digits
from vaelib.models import AE, CVAE, VAE
from vaelib.objectives import BetaELBO, FreeBitsELBO, Reconstruction, elbo
from vaelib.train import evaluate, fit


def _grey(n):
    """``n`` grey digits, not binarised: with an AE nothing in training is random but the batch order."""
    return load_digits("train").subset(n)


def _ae(data, seed=0):
    torch.manual_seed(seed)
    return AE(data.shape, 3, hidden=16)


def _weights(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_the_epoch_history_is_the_mean_of_the_batch_losses():
    # bug: fit sums the batch losses of an epoch instead of averaging them
    data = _grey(256)
    model = _ae(data)
    untrained = evaluate(model, data, Reconstruction(), batch_size=256)["loss"]
    # lr = 0: all 4 batches of 64 see the same model, so their mean is the loss over all 256 images
    hist = fit(model, data, Reconstruction(), epochs=1, batch_size=64, lr=0.0, seed=0)
    assert hist["loss"][0] == pytest.approx(untrained, rel=1e-5)  # float32 sums of 256 x 64 terms


def test_evaluate_weights_a_partial_last_batch_by_its_size():
    # bug: evaluate averages the batch means, so the last 50 images count as much as the first 200
    grey = _grey(250)
    data = replace(grey, x=torch.cat([grey.x[:200], torch.zeros(50, grey.x.shape[1])]))  # 50 blank images last
    model = _ae(data)
    head = evaluate(model, data.subset(200), Reconstruction(), batch_size=200)["loss"]
    tail = evaluate(model, replace(data, x=data.x[200:], y=data.y[200:]), Reconstruction(), batch_size=50)["loss"]
    # weighting the two batches equally would be off by (0.5 - 0.2) |head - tail|: 100x the tolerance below
    assert 0.3 * abs(head - tail) > 100 * 1e-5 * abs(head)
    per_image = (200 * head + 50 * tail) / 250
    assert evaluate(model, data, Reconstruction(), batch_size=200)["loss"] == pytest.approx(per_image, rel=1e-5)
    assert evaluate(model, data, Reconstruction(), batch_size=250)["loss"] == pytest.approx(per_image, rel=1e-5)


@pytest.mark.parametrize("kind", ["batch order", "reparameterisation noise"])
def test_fit_follows_its_own_seed_not_the_global_generator(kind):
    # bugs: fit shuffles, or draws eps, from the global generator instead of the one seeded by `seed`
    data = _grey(256)
    if kind == "batch order":  # an AE on grey pixels: the batch order is its only randomness
        make, objective, batch = (lambda: _ae(data)), Reconstruction(), 64
    else:  # one batch of all images: the order cannot matter beyond round-off, the noise does
        def make():
            torch.manual_seed(0)
            return VAE(data.shape, 3, hidden=16)

        objective, batch = BetaELBO(1.0), 256

    def trained(global_seed, seed):
        model = make()
        torch.manual_seed(global_seed)
        fit(model, data, objective, epochs=2, batch_size=batch, lr=1e-2, seed=seed)
        return _weights(model)

    same_seed = trained(global_seed=1, seed=5), trained(global_seed=2, seed=5)
    assert torch.equal(*same_seed)  # the global generator played no part
    assert not torch.allclose(same_seed[0], trained(global_seed=1, seed=6))  # the seed did


def test_fit_takes_its_device_from_the_argument_else_once_from_config(monkeypatch):
    # bugs: fit ignores device=, or asks config.device() per batch
    asked = []

    def meta_device():
        asked.append(1)
        return torch.device("meta")

    monkeypatch.setattr(config, "device", meta_device)
    data = _grey(128)
    model = _ae(data)
    fit(model, data, Reconstruction(), epochs=2, batch_size=32, device="cpu")  # would fail on meta
    assert asked == [] and next(model.parameters()).device.type == "cpu"

    monkeypatch.setattr(config, "device", lambda: asked.append(1) or torch.device("cpu"))
    fit(model, data, Reconstruction(), epochs=2, batch_size=32)  # 8 batches
    assert asked == [1]


def test_the_gaussian_decoder_variance_is_exp_of_its_log_variance():
    # bug: decoder_logvar read as a log standard deviation (the same at its initial value 0)
    torch.manual_seed(0)
    model = VAE((1, 8, 8), 2, hidden=16, likelihood="gaussian")
    with torch.no_grad():
        model.decoder_logvar.fill_(math.log(4.0))  # variance 4: standard deviation 2
    px = model.decode(torch.randn(3, 2))
    x = torch.rand(3, 64)
    expected = Normal(px.mean, 2.0).log_prob(x).sum(-1)
    torch.testing.assert_close(px.log_prob(x), expected)


def test_the_gaussian_decoder_variance_has_a_floor():
    # without it a pixel the decoder predicts exactly (0 in every digit) has an unbounded likelihood
    torch.manual_seed(0)
    model = VAE((1, 8, 8), 2, hidden=16, likelihood="gaussian")
    with torch.no_grad():
        model.decoder_logvar.fill_(-50.0)  # the optimiser's way to a variance of 0
    px = model.decode(torch.randn(3, 2))
    torch.testing.assert_close(px.base_dist.scale, torch.full_like(px.mean, 0.01))
    best = -64 * math.log(0.01 * math.sqrt(2 * math.pi))  # every pixel exactly at its mean
    assert px.log_prob(px.mean).max().item() <= best + 1e-3


def test_the_class_mean_cvae_kl_is_to_its_class_prior():
    # bug: the KL taken to N(0, I) instead of N(mu_y, I) (the same while the class means are 0)
    torch.manual_seed(0)
    model = CVAE((1, 8, 8), 2, 10, prior="class_mean", hidden=16).double()
    with torch.no_grad():
        model.class_means.weight.copy_(3.0 * torch.randn(10, 2, dtype=torch.float64))
    x, y = torch.rand(6, 64, dtype=torch.float64).round(), torch.arange(6)
    mu, logvar = model.encode(x, y)
    mu_y = model.class_means.weight[y]
    by_hand = 0.5 * ((mu - mu_y) ** 2 + logvar.exp() - logvar - 1).sum(1)
    torch.testing.assert_close(elbo(model, x, y).kl, by_hand, rtol=1e-12, atol=1e-12)  # float64 round-off
    torch.testing.assert_close(model.terms(x, y)[1], by_hand, rtol=1e-12, atol=1e-12)  # training's path


def test_the_fourth_cvae_arm_conditions_only_its_decoder():
    # bug: decoder_label ignored (the arm silently equal to the class-mean one), or the label also
    # handed to the encoder (then the arm changes two things at once)
    torch.manual_seed(0)
    model = CVAE((1, 8, 8), 2, 10, prior="class_mean", decoder_label=True, hidden=16).double()
    x = torch.rand(4, 64, dtype=torch.float64).round()
    y0, y1 = torch.zeros(4, dtype=torch.long), torch.ones(4, dtype=torch.long)
    for a, b in zip(model.encode(x, y0), model.encode(x, y1)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)  # the encoder does not see the label
    z = torch.randn(4, 2, dtype=torch.float64)
    assert (model.decode(z, y0).mean - model.decode(z, y1).mean).abs().max() > 1e-6  # the decoder does
    torch.testing.assert_close(model.prior(y1)[0], model.class_means.weight[y1])  # the prior is the class mean
    assert CVAE((1, 8, 8), 2, 10, prior="class_mean", hidden=16).decoder_label is False
    with pytest.raises(ValueError, match="decoder_label=False needs prior='class_mean'"):
        CVAE((1, 8, 8), 2, 10, decoder_label=False)
    with pytest.raises(TypeError, match="decoder_label must be"):
        CVAE((1, 8, 8), 2, 10, prior="class_mean", decoder_label=1)


def test_the_autoencoders_input_noise_is_off_in_eval_mode():
    # bug: AE(input_noise=s) keeps adding noise to the code after training
    torch.manual_seed(0)
    model = AE((1, 8, 8), 3, hidden=16, input_noise=1.0)
    x = torch.rand(4, 64)
    model.eval()
    clean = model.decode(model.encode(x)).mean
    torch.testing.assert_close(model(x).px.mean, clean, rtol=0, atol=0)
    model.train()
    assert not torch.allclose(model(x).px.mean, clean)  # and on in training, where it belongs


@pytest.mark.parametrize("posterior", ["diagonal", "isotropic"])
def test_the_vaes_own_kl_is_to_the_standard_normal_from_its_encoder(posterior):
    # bugs: a model's KL summed over the wrong axis, taken from the wrong encoder output, or its
    # per-dimension terms not adding up to it (free bits reads them one by one)
    torch.manual_seed(0)
    model = VAE((1, 8, 8), 3, hidden=16, posterior=posterior).double()
    x = torch.rand(5, 64, dtype=torch.float64).round()
    mu, logvar = model.encode(x)
    by_hand = 0.5 * (mu**2 + logvar.exp() - logvar - 1)  # (kl-standard), one term per dimension
    px, kl = model.terms(x)
    torch.testing.assert_close(kl, by_hand.sum(1), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(model.terms(x, per_dim=True)[1], by_hand, rtol=1e-12, atol=1e-12)
    eps = torch.randn(5, 3, dtype=torch.float64)
    torch.testing.assert_close(model.terms(x, eps=eps)[0].mean, model.decode(mu + (0.5 * logvar).exp() * eps).mean)


def test_a_model_without_a_posterior_is_refused_where_one_is_needed():
    # an AE has no q(z|x): training it on the ELBO would silently train an autoencoder
    data = _grey(64)
    model = _ae(data)
    assert model.terms(data.x[:4])[1] is None  # no KL term, not a zero one
    for call in (lambda: fit(model, data, BetaELBO(1.0), epochs=1), lambda: elbo(model, data.x[:4]),
                 lambda: evaluate(model, data, FreeBitsELBO(0.1)), lambda: BetaELBO(1.0)(model, data.x[:4])):
        with pytest.raises(TypeError, match="AE has no posterior|AE has none"):
            call()
