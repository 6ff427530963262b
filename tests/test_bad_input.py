"""Bad input gets a clear error naming the argument, what was expected and what came (issue 9).

Grouped by where the input enters: data, models, objectives, training and checkpoints, metrics.
Each case was a silent wrong answer, a hang, or an error from deep inside torch before.
"""

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from vaelib import disentangle, estimates
from vaelib.data import load_digits
from vaelib.models import AE, VAE
from vaelib.objectives import BetaELBO, CapacityELBO, ConstrainedELBO, gaussian_kl
from vaelib.train import fit

DIGITS = load_digits("train").subset(64)


def _vae(**kw):
    torch.manual_seed(0)
    return VAE(DIGITS.shape, 2, hidden=8, **kw)


# ---------------------------------------------------------------- data

def test_data_refuses_integer_pixels_and_non_boolean_binarize():
    with pytest.raises(TypeError, match="dtype must be a floating-point"):
        load_digits("train", dtype=torch.int64)  # used to round every pixel to 0 or 1
    with pytest.raises(TypeError, match="binarize must be True or False"):
        load_digits("train", binarize="False")
    with pytest.raises(TypeError, match="floating-point pixels"):
        replace(DIGITS, x=DIGITS.x.long())


# ---------------------------------------------------------------- models

@pytest.mark.parametrize("kw, match", [(dict(hidden=0), "hidden must be a positive int"),
                                       (dict(hidden=True), "hidden must be a positive int"),
                                       (dict(latent_dim=True), "latent_dim must be a positive int")])
def test_models_refuse_empty_layers(kw, match):
    args = dict(latent_dim=2, hidden=8) | kw
    with pytest.raises(ValueError, match=match):
        VAE(DIGITS.shape, **args)  # hidden=0 built a model that ignored its input


def test_autoencoder_input_noise_must_be_finite():
    for bad in (float("nan"), float("inf"), -1.0):
        with pytest.raises(ValueError, match="input_noise"):
            AE(DIGITS.shape, 2, hidden=8, input_noise=bad)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.int64])
def test_a_model_names_the_dtype_it_needs(dtype):
    with pytest.raises(TypeError, match=r"x must have the model's dtype torch.float32; got " + str(dtype)):
        _vae()(DIGITS.x.to(dtype))  # used to end in "mat1 and mat2 must have the same dtype"


# ---------------------------------------------------------------- objectives

@pytest.mark.parametrize("make, name", [
    (lambda v: CapacityELBO(gamma=v, c_max=1.0, anneal_steps=10), "gamma"),
    (lambda v: CapacityELBO(gamma=1.0, c_max=v, anneal_steps=10), "c_max"),
    (lambda v: ConstrainedELBO(delta=v), "delta"),
    (lambda v: ConstrainedELBO(delta=1.0, lr_beta=v), "lr_beta"),
    (lambda v: ConstrainedELBO(delta=1.0, beta0=v), "beta0"),
])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1.0])
def test_objectives_refuse_non_finite_hyperparameters(make, name, value):
    with pytest.raises(ValueError, match=f"{name} must be a finite number"):
        make(value)


def test_gaussian_kl_refuses_infinite_complex_and_widening_input():
    z = torch.zeros(5, 2)
    with pytest.raises(ValueError, match="logvar contains NaN or infinity"):
        gaussian_kl(z, torch.full((5, 2), math.inf))  # returned NaN
    with pytest.raises(TypeError, match="real floating-point"):
        gaussian_kl(z.to(torch.complex64), z.to(torch.complex64))
    with pytest.raises(ValueError, match=r"must broadcast to mu's shape \(5, 2\)"):
        gaussian_kl(z, z, torch.zeros(5, 1, 2), torch.zeros(5, 1, 2))  # returned a (5, 5) result
    assert gaussian_kl(z, z, torch.zeros(2), torch.zeros(1, 2)).shape == (5,)  # a prior may broadcast


# ---------------------------------------------------------------- training and checkpoints

def test_fit_checks_its_arguments_before_moving_anything():
    model = _vae()
    with pytest.raises(ValueError, match="device='meta'"):
        fit(model, DIGITS, BetaELBO(1.0), epochs=1, device="meta")
    assert next(model.parameters()).device.type == "cpu"  # not moved before the error
    with pytest.raises(ValueError, match="device must name a torch device"):
        fit(model, DIGITS, BetaELBO(1.0), epochs=1, device="gpu0")
    for lr in (-1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="lr must be a finite number"):
            fit(model, DIGITS, BetaELBO(1.0), epochs=1, lr=lr)
    with pytest.raises(ValueError, match="targets in"):  # pixels in [0, 255] trained to a loss of 1e8
        fit(model, replace(DIGITS, x=DIGITS.x * 255), BetaELBO(1.0), epochs=1)
    with pytest.raises(ValueError, match="x contains NaN"):  # was reported as "training diverged"
        fit(model, replace(DIGITS, x=DIGITS.x.masked_fill(DIGITS.x > 0.9, math.nan)), BetaELBO(1.0), epochs=1)


def test_fit_converts_float64_pixels_to_the_models_dtype():
    # load_digits offers float64; fit documents that it converts the pixels
    hist = fit(_vae(), load_digits("train", dtype=torch.float64).subset(64), BetaELBO(1.0), epochs=1, batch_size=32)
    assert math.isfinite(hist["loss"][0])


def test_training_refuses_what_it_cannot_run_before_anything_runs():
    # a model built on the meta device has shapes and no values: refused by name, not a copy error mid-way
    with torch.device("meta"):
        ghost = VAE((1, 8, 8), 2, hidden=8)
    with pytest.raises(ValueError, match="meta device .* 'encoder.0.weight'"):
        fit(ghost, DIGITS, BetaELBO(1.0), epochs=1, device="cpu")
    for seed in (-1, 2**63, 2**64):  # torch would wrap -1 to 2**64 - 2 without a word
        with pytest.raises(ValueError, match=r"seed must be in \[0, 2\*\*63-1\]"):
            fit(_vae(), DIGITS, BetaELBO(1.0), epochs=1, seed=seed)
    with pytest.raises(TypeError, match="Reconstruction"):  # an AE has no KL for the ELBO to take
        fit(AE((1, 8, 8), 2, hidden=8), DIGITS, BetaELBO(1.0), epochs=1)


def test_class_labels_of_any_integer_dtype_train_a_cvae():
    # IDX files store labels as uint8; a CVAE takes them as they come
    from vaelib.data import ImageData
    from vaelib.models import CVAE

    d = load_digits("train", binarize=True).subset(64)
    for dtype in (torch.uint8, torch.int16, torch.int32, torch.int64):
        torch.manual_seed(0)
        model = CVAE((1, 8, 8), 2, 10, hidden=8)
        hist = fit(model, ImageData(d.x, d.y.to(dtype), d.shape, binarize=True), BetaELBO(1.0), epochs=1,
                   batch_size=32)
        assert math.isfinite(hist["loss"][0])
        assert model.terms(d.x[:4], d.y[:4].to(dtype))[1].shape == (4,)
    with pytest.raises(TypeError, match="integer tensor of class labels"):
        CVAE((1, 8, 8), 2, 10, hidden=8).terms(d.x[:4], d.y[:4].float())



# ---------------------------------------------------------------- metrics

def test_posterior_metrics_refuse_models_without_a_posterior_and_nan_input():
    ae = AE(DIGITS.shape, 2, hidden=8)
    for fn in (lambda m, x: estimates.active_units(m, x), estimates.kl_per_dimension,
               lambda m, x: estimates.iwae_log_likelihood(m, x, 5)):
        with pytest.raises(TypeError, match="needs a model with a Gaussian posterior"):
            fn(ae, DIGITS.x)
        with pytest.raises(ValueError, match="x contains NaN"):
            fn(_vae(), DIGITS.x.masked_fill(DIGITS.x > 0.9, math.nan))  # active_units returned numbers


def test_iwae_refuses_a_k_that_would_run_for_hours():
    with pytest.raises(ValueError, match="IWAE_MAX_ROWS"):
        estimates.iwae_log_likelihood(_vae(), DIGITS.x[:1], 10**12)  # ran for hours


def test_metrics_refuse_float_factor_labels():
    with pytest.raises(TypeError, match="integer labels"):
        disentangle.mutual_information_gap(np.random.default_rng(0).normal(size=(50, 2)), np.full((50, 2), 2.7))


def test_empty_input_is_named_not_a_torch_reduction_error():
    from vaelib.objectives import elbo

    empty = torch.zeros(0, 64)
    for fn in (lambda: elbo(_vae(), empty), lambda: estimates.kl_per_dimension(_vae(), empty),
               lambda: estimates.iwae_log_likelihood(_vae(), empty, 3)):
        with pytest.raises(ValueError, match="x is empty"):
            fn()  # ended in torch's "min(): Expected reduction dim"


def test_factor_labels_and_sizes_given_as_floats_are_refused():
    from vaelib.data import render_dsprites

    with pytest.raises(TypeError, match="factors must be integer labels"):
        render_dsprites(np.array([[0.5, 1, 2, 3, 4.7]]), 16)  # 4.7 was drawn as 4
    with pytest.raises(TypeError, match="factor_sizes must be ints"):
        disentangle.beta_vae_score(lambda x: x, lambda f: f, [3, 6, 40, 32, 32.5], seed=0, n_train=1, n_test=1,
                               pairs_per_point=1)
