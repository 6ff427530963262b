import numpy as np
import pytest
import torch

from vaelib import data, disentangle
from vaelib.disentangle import beta_vae_score
from vaelib.models import VAE


class IdentityEncoder(torch.nn.Module):
    """A 'model' whose posterior mean is the first latent_dim pixels: a known answer."""

    def __init__(self, latent_dim=3):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.latent_dim = latent_dim

    def encode(self, x):
        mu = x[:, : self.latent_dim] + 0 * self.w
        return mu, torch.zeros_like(mu)


def test_posterior_means_are_the_encoder_means_in_float64_and_restore_mode():
    model = IdentityEncoder()
    model.train()
    x = torch.randn(10, 5)
    mu = disentangle.posterior_means(model, x, batch_size=3)  # several batches
    assert mu.dtype == np.float64 and mu.shape == (10, 3)
    np.testing.assert_array_equal(mu, x[:, :3].double().numpy())
    assert model.training


def test_posterior_means_of_a_vae_ignore_the_sampling_noise():
    torch.manual_seed(0)
    model = VAE((1, 4, 4), 2)
    x = torch.rand(7, 16)
    a = disentangle.posterior_means(model, x)
    b = disentangle.posterior_means(model, x)
    np.testing.assert_array_equal(a, b)  # means, not samples: identical on every call
    np.testing.assert_allclose(a, model.encode(x)[0].detach().double().numpy(), rtol=0, atol=1e-6)


def test_posterior_means_rejects_bad_input():
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        disentangle.posterior_means(IdentityEncoder(), torch.zeros(3))
    with pytest.raises(ValueError, match="batch_size"):
        disentangle.posterior_means(IdentityEncoder(), torch.zeros(3, 4), batch_size=0)


def test_cached_renderer_renders_once_and_matches_render_dsprites():
    r = disentangle.CachedRenderer(16)
    f = np.array([[0, 1, 2, 3, 4], [2, 5, 39, 31, 0]])
    a = r(f)
    b = r(f.copy())
    assert a is b and len(r) == 1
    torch.testing.assert_close(a, data.render_dsprites(f, 16), rtol=0, atol=0)
    r(f[:1])
    assert len(r) == 2


def test_cached_renderer_gives_the_same_beta_vae_score_and_renders_each_array_once():
    # a fixed-seed beta-VAE metric asks for the same factor arrays on every call
    torch.manual_seed(0)
    model = VAE((1, 16, 16), 3, hidden=32)
    encode = disentangle.encoder_fn(model)
    sizes = list(data.DSPRITES_FACTORS.values())
    kw = dict(n_train=20, n_test=10, pairs_per_point=4, seed=3)
    plain = beta_vae_score(encode, lambda f: data.render_dsprites(f, 16), sizes, **kw)
    cached = disentangle.CachedRenderer(16)
    first = beta_vae_score(encode, cached, sizes, **kw)
    again = beta_vae_score(encode, cached, sizes, **kw)
    assert plain == first == again
    assert len(cached) == 4  # v1 and v2, for the training and the test points


def test_beta_sweep_trains_scores_and_a_larger_beta_spends_fewer_nats():
    train = data.dsprites(512, 16, seed=0)
    ev = data.dsprites(256, 16, seed=1)
    runs = disentangle.beta_sweep(lambda: VAE(train.shape, 4, hidden=64), train, [1.0, 16.0], [0],
                                  eval_data=ev, epochs=3, batch_size=64)
    assert [(r["beta"], r["seed"]) for r in runs] == [(1.0, 0), (16.0, 0)]
    for r in runs:
        assert r["mig"].shape == (5,) and np.all(r["mig"] >= 0) and np.all(r["mig"] <= 1)
        assert np.isfinite(r["rec"]) and r["kl"] >= 0 and len(r["history"]["kl"]) == 3
    # the beta-weighted KL penalty buys a smaller rate: a generous factor of 16 in beta
    assert runs[1]["kl"] < runs[0]["kl"]


def test_beta_sweep_is_reproducible_for_a_seed():
    train = data.dsprites(256, 16, seed=0)
    ev = data.dsprites(128, 16, seed=1)
    a, b = (disentangle.beta_sweep(lambda: VAE(train.shape, 3, hidden=32), train, [2.0], [5],
                                   eval_data=ev, epochs=1, batch_size=64) for _ in range(2))
    assert a[0]["kl"] == b[0]["kl"] and np.array_equal(a[0]["mig"], b[0]["mig"])


def test_beta_sweep_needs_factor_labels():
    train = data.load_digits("test")
    with pytest.raises(ValueError, match="factor labels"):
        disentangle.beta_sweep(lambda: VAE(train.shape, 2), train, [1.0], [0], eval_data=train, epochs=1)


def test_beta_sweep_trains_arms_of_different_sizes_paired_by_seed():
    pool, held = data.dsprites(256, 16, seed=0), data.dsprites(200, 16, seed=1)

    def make():
        return VAE(pool.shape, 3, hidden=16)

    runs = disentangle.beta_sweep(make, pool, [1.0, 4.0], {1.0: [0, 1, 2], 4.0: [0, 1]}, eval_data=held, epochs=1,
                                  batch_size=64)
    assert [(r["beta"], r["seed"]) for r in runs] == [(1.0, 0), (1.0, 1), (1.0, 2), (4.0, 0), (4.0, 1)]
    # the same seed, the same initialisation: the two arms of seed 0 started from one model
    first_loss = {(r["beta"], r["seed"]): r["history"]["rec"][0] for r in runs}
    assert first_loss[(1.0, 0)] != first_loss[(1.0, 1)]
    assert all(r["mig"].shape == (5,) and r["kl"] >= 0 for r in runs)
    with pytest.raises(ValueError, match="names no seeds"):
        disentangle.beta_sweep(make, pool, [1.0, 2.0], {1.0: [0]}, eval_data=held, epochs=1)
