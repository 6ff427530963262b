"""fit_many's contract: member i of a batched run is the run fit would make alone.

The two are independent implementations (vaelib/train.py draws its batches, noise and
evaluation, and keeps its history, in a plain loop; vaelib/batched.py does all of it stacked
over K), so a bug in either one shows here.

Everything runs in float64, so the only differences allowed are round-off: batched and
unbatched matrix products sum in different orders (relative error ~1e-16 per product), and two
epochs of Adam amplify that by a few orders of magnitude at most. The tolerance, 1e-9, is far
below any real difference (one Adam step moves a weight by ~lr = 1e-2).
"""

import copy

import pytest
import torch

from vaelib.data import ImageData, dsprites, load_digits
from vaelib.models import AE, CVAE, VAE
from vaelib.objectives import BetaELBO, CapacityELBO, ConstrainedELBO, Reconstruction, WarmupELBO
from vaelib.train import evaluate, fit, fit_many

TOL = 1e-9


def _digits(n=150):
    d = load_digits("train", binarize=True).subset(n)
    return ImageData(d.x.double(), d.y, d.shape, binarize=True)


def _models(make, k):
    out = []
    for i in range(k):
        torch.manual_seed(100 + i)  # each member its own initialisation
        out.append(make().double())
    return out


def _copies(models, make):
    copies = []
    for m in models:
        c = make().double()
        c.load_state_dict(m.state_dict())
        copies.append(c)
    return copies


def _assert_same_run(batched_hist, single_hist, batched_model, single_model):
    assert batched_hist.keys() == single_hist.keys()
    for key in batched_hist:
        if key == "seconds":
            continue
        torch.testing.assert_close(torch.tensor(batched_hist[key]), torch.tensor(single_hist[key]), rtol=TOL, atol=TOL,
                                   msg=key)
    for (name, a), (_, b) in zip(batched_model.state_dict().items(), single_model.state_dict().items()):
        torch.testing.assert_close(a, b, rtol=TOL, atol=TOL, msg=name)


def _check_contract(make, objectives, data, seeds, eval_data=None, epochs=2, batch_size=50, lr=1e-2):
    models = _models(make, len(seeds))
    singles = _copies(models, make)
    objs = objectives if isinstance(objectives, list) else [objectives] * len(seeds)
    fresh = [copy.deepcopy(o) for o in objs]  # untrained copies for the single runs
    hists = fit_many(models, data, objectives, seeds=seeds, epochs=epochs, batch_size=batch_size, lr=lr,
                     device="cpu", eval_data=eval_data, progress=False)
    for i, (m, s) in enumerate(zip(singles, seeds)):
        h = fit(m, data, fresh[i], seed=s, epochs=epochs, batch_size=batch_size, lr=lr, device="cpu",
                eval_data=eval_data, progress=False)
        _assert_same_run(hists[i], h, models[i], m)
        if isinstance(objectives, list) and isinstance(fresh[i], ConstrainedELBO):  # the dual variable too
            assert objectives[i].current_beta == pytest.approx(fresh[i].current_beta, rel=TOL, abs=TOL)
    return models, hists


def test_vae_members_with_different_betas_are_their_own_fit_runs():
    data = _digits()
    test = load_digits("test", binarize=True).subset(80)
    test = ImageData(test.x.double(), test.y, test.shape, binarize=True)
    models, hists = _check_contract(lambda: VAE((1, 8, 8), 3, hidden=16), [BetaELBO(1.0), BetaELBO(2.0), BetaELBO(4.0)],
                                    data, [0, 1, 2], eval_data=test)
    assert "test_elbo" in hists[0] and len(hists[0]["loss"]) == 2
    # the members really differ (different seeds, initialisations and betas): a mix-up would show
    assert hists[0]["kl"][-1] != hists[1]["kl"][-1] != hists[2]["kl"][-1]
    assert not torch.equal(models[0].decoder[0].weight, models[1].decoder[0].weight)


def test_cvae_members_are_their_own_fit_runs():
    _check_contract(lambda: CVAE((1, 8, 8), 2, n_classes=10, hidden=16), [BetaELBO(1.0), BetaELBO(3.0)],
                    _digits(), [5, 6])
    _check_contract(lambda: CVAE((1, 8, 8), 2, n_classes=10, prior="class_mean", hidden=16), BetaELBO(1.0),
                    _digits(), [0, 1])
    _check_contract(lambda: CVAE((1, 8, 8), 2, n_classes=10, prior="class_mean", decoder_label=True, hidden=16),
                    BetaELBO(1.0), _digits(), [2, 3])


def test_ae_with_input_noise_and_a_gaussian_vae():
    _check_contract(lambda: AE((1, 8, 8), 2, hidden=16, input_noise=0.5), Reconstruction(), _digits(), [0, 1, 2])
    d = _digits()
    gauss = ImageData(d.x, d.y, d.shape)  # grey levels, Gaussian likelihood
    _check_contract(lambda: VAE((1, 8, 8), 2, hidden=16, likelihood="gaussian", posterior="isotropic"),
                    BetaELBO(1.0), gauss, [3, 4])


def test_a_shared_stateful_objective_is_copied_per_member():
    shared = ConstrainedELBO(delta=2.0, lr_beta=0.1, beta0=1.0)
    models, hists = _check_contract(lambda: VAE((1, 8, 8), 2, hidden=16), shared, _digits(), [0, 1])
    assert hists[0]["beta"] != hists[1]["beta"]  # each member has its own dual variable


def test_capacity_and_constrained_members_are_their_own_fit_runs():
    # the hyperparameters differ per member, so a stacked loss that broadcast them wrongly would show
    make = lambda: VAE((1, 8, 8), 3, hidden=16)  # noqa: E731
    _, hists = _check_contract(make, [CapacityELBO(10.0, 2.0, 5), CapacityELBO(30.0, 6.0, 9)], _digits(), [0, 1])
    assert hists[0]["capacity"] != hists[1]["capacity"]
    cons = [ConstrainedELBO(0.5, lr_beta=0.01, beta0=1.0), ConstrainedELBO(1.0, lr_beta=0.02, beta0=2.0)]
    _check_contract(make, cons, _digits(), [2, 3])
    assert cons[0].current_beta != cons[1].current_beta  # each handed back its own dual variable


def test_conv_members_are_their_own_fit_runs():
    d = dsprites(64, 16, seed=0)
    d = ImageData(d.x.double(), d.y, d.shape)
    _check_contract(lambda: VAE(d.shape, 2, arch="conv", hidden=16), [BetaELBO(1.0), BetaELBO(2.0)], d, [0, 1],
                    epochs=1, batch_size=32)


def test_fit_is_deterministic_and_evaluate_leaves_state_alone():
    data = _digits()
    obj = ConstrainedELBO(delta=3.0, lr_beta=0.1)
    torch.manual_seed(0)
    m = VAE((1, 8, 8), 2, hidden=16).double()
    fit(m, data, obj, epochs=1, batch_size=50, device="cpu", progress=False)
    beta = obj.current_beta
    e1, e2 = evaluate(m, data, obj, seed=3), evaluate(m, data, obj, seed=3)
    assert e1 == e2 and obj.current_beta == beta  # no dual step in evaluation
    assert evaluate(m, data, obj, seed=4) != e1  # the seed drives the noise


def test_fit_many_rejects_bad_input():
    d = _digits(40)
    a, b = VAE((1, 8, 8), 2, hidden=16), VAE((1, 8, 8), 3, hidden=16)
    with pytest.raises(ValueError, match="one class and configuration"):
        fit_many([a, b], d, BetaELBO(), seeds=[0, 1], epochs=1, device="cpu")
    with pytest.raises(ValueError, match="distinct"):
        fit_many([a, a], d, BetaELBO(), seeds=[0, 1], epochs=1, device="cpu")
    with pytest.raises(ValueError, match="one int per model"):
        fit_many([a], d, BetaELBO(), seeds=[0, 1], epochs=1, device="cpu")
    with pytest.raises(ValueError, match="one entry per model"):
        fit_many([a], d, [BetaELBO(), BetaELBO()], seeds=[0], epochs=1, device="cpu")
    with pytest.raises(TypeError, match="Objective"):
        fit_many([a], d, lambda *args: None, seeds=[0], epochs=1, device="cpu")
    with pytest.raises(TypeError, match="list of models"):
        fit_many(a, d, BetaELBO(), seeds=[0], epochs=1, device="cpu")
    with pytest.raises(ValueError, match="must all be BetaELBO"):
        fit_many([a, VAE((1, 8, 8), 2, hidden=16)], d, [BetaELBO(), WarmupELBO(3)], seeds=[0, 1], epochs=1,
                 device="cpu")
    with pytest.raises(ValueError, match=r"seed must be in \[0, 2\*\*63-1\]"):
        fit_many([a], d, BetaELBO(), seeds=[-1], epochs=1, device="cpu")
    with pytest.raises(TypeError, match="seed must be an int"):
        fit_many([a], d, BetaELBO(), seeds=[0.5], epochs=1, device="cpu")
    bad_labels = ImageData(d.x, d.y + 5, d.shape)
    with pytest.raises(ValueError, match=r"0\.\.9"):
        fit_many([CVAE((1, 8, 8), 2, n_classes=10)], bad_labels, BetaELBO(), seeds=[0], epochs=1, device="cpu")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fit_many([a], ImageData(d.x * 3, d.y, d.shape), BetaELBO(), seeds=[0], epochs=1, device="cpu")
