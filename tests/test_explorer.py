"""vaelib.explorer: the decoder exported for the browser is torch's decoder, to float32 round-off."""

import base64
import json
import re

import numpy as np
import pytest
import torch
from torch import nn

from vaelib import explorer, models


def numpy_decoder(spec: dict):
    """A NumPy forward pass over an exported decoder, written from the format's description alone."""
    w = np.frombuffer(base64.b64decode(spec["weights"]), dtype="<f4").astype(np.float64)
    layers, off = [], 0
    for layer in spec["layers"]:
        if layer["type"] == "linear":
            n_in, n_out = layer["in"], layer["out"]
            weight = w[off : off + n_in * n_out].reshape(n_out, n_in)
            off += n_in * n_out
            layers.append(("linear", weight, w[off : off + n_out]))
            off += n_out
        else:
            layers.append((layer["type"], layer.get("slope"), None))
    assert off == len(w), "the weights do not match the layers"

    def decode(z):
        x = np.asarray(z, dtype=np.float64)
        for kind, a, b in layers:
            if kind == "linear":
                x = x @ a.T + b
            elif kind == "relu":
                x = np.maximum(x, 0)
            elif kind == "leaky_relu":
                x = np.where(x > 0, x, a * x)
            elif kind == "tanh":
                x = np.tanh(x)
            elif kind == "sigmoid":
                x = 1 / (1 + np.exp(-x))
            else:
                assert kind == "identity", kind
        return 1 / (1 + np.exp(-x)) if spec["output"] == "sigmoid" else x

    return decode


# Float32 round-off of torch's forward pass: each output sums ~hidden products of float32 numbers of
# size ~1 (eps 6e-8), so an error of order sqrt(hidden) * 6e-8 ~ 1e-6 on the logits at most; the
# mean (sigmoid, slope <= 1/4) errs less. 1e-5 is ten times that; a wrong weight order or a missing
# bias moves outputs by ~1e-2.
TOL = 1e-5


@pytest.mark.parametrize(
    "model",
    [
        models.AE((1, 8, 8), 2, hidden=32),
        models.VAE((1, 8, 8), 2, hidden=32),
        models.VAE((1, 6, 5), 3, hidden=16, likelihood="gaussian"),
    ],
)
def test_export_reproduces_torch(model):
    torch.manual_seed(0)
    spec = explorer.export_decoder(model)
    assert spec["shape"] == list(model.x_shape)
    assert spec["output"] == ("sigmoid" if model.likelihood == "bernoulli" else "identity")
    z = torch.randn(50, model.latent_dim) * 3
    with torch.no_grad():
        want = model.decode(z).mean.numpy()
    got = numpy_decoder(spec)(z.numpy())
    assert got.shape == want.shape
    assert np.abs(got - want).max() < TOL
    # the check can fail: the transposed weight of the first hidden layer does not reproduce torch
    bad = dict(spec, layers=list(spec["layers"]))
    w = explorer.decode_base64(spec["weights"]).copy()
    first = spec["layers"][0]
    n = first["in"] * first["out"]
    w[:n] = w[:n].reshape(first["out"], first["in"]).T.ravel() if first["in"] == first["out"] else w[:n][::-1]
    bad["weights"] = base64.b64encode(w.astype("<f4").tobytes()).decode()
    assert np.abs(numpy_decoder(bad)(z.numpy()) - want).max() > 100 * TOL


def test_other_activations_and_no_bias():
    model = models.AE((1, 4, 4), 2, hidden=8)
    model.decoder = nn.Sequential(nn.Linear(2, 8, bias=False), nn.LeakyReLU(0.2), nn.Linear(8, 8), nn.Tanh(),
                                  nn.Linear(8, 16), nn.Sigmoid(), nn.Identity())
    z = torch.randn(20, 2) * 2
    with torch.no_grad():
        want = model.decode(z).mean.numpy()
    got = numpy_decoder(explorer.export_decoder(model))(z.numpy())
    assert np.abs(got - want).max() < TOL


def _widget_parts(html):
    data = json.loads(re.search(r'<script type="application/json" class="vae-explorer-data">(.*?)</script>',
                                html, re.S).group(1))
    reference = json.loads(re.search(r"data-reference='([^']*)'", html).group(1))
    return data, reference


def test_widget_html():
    torch.manual_seed(1)
    ae, vae = models.AE((1, 8, 8), 2, hidden=16), models.VAE((1, 8, 8), 2, hidden=16)
    z_ae, z_vae = torch.randn(300, 2) * 7 + 3, torch.randn(300, 2)
    labels = torch.randint(0, 10, (300,))
    html = explorer.widget_html(ae, vae, z_ae, z_vae, labels)
    assert html.count('class="vae-explorer ') == 1  # one container
    data, reference = _widget_parts(html)
    assert [p["name"] for p in data["panels"]] == ["ae", "vae"]
    assert data["labels"] == labels.tolist()
    for model, codes, panel in ((ae, z_ae, data["panels"][0]), (vae, z_vae, data["panels"][1])):
        # the codes, quantised over the panel's view, are the codes to 1/65535 of the view
        x0, x1, y0, y1 = panel["box"]
        assert x1 - x0 == pytest.approx(y1 - y0)  # guard: a square view (equal aspect)
        q = np.frombuffer(base64.b64decode(panel["codes"]), dtype="<u2").reshape(-1, 2) / 65535
        back = np.stack([x0 + q[:, 0] * (x1 - x0), y0 + q[:, 1] * (y1 - y0)], 1)
        assert np.abs(back - codes.numpy()).max() <= (x1 - x0) / 65535
        # the reference points decoded by torch, and by the exported decoder in NumPy
        ref = reference[panel["name"]]
        z = explorer.decode_base64(ref["z"], (ref["n"], 2))
        mean = explorer.decode_base64(ref["mean"], (ref["n"], -1))
        with torch.no_grad():
            assert np.abs(mean - model.decode(torch.as_tensor(z)).mean.numpy()).max() == 0
        assert np.abs(numpy_decoder(panel["decoder"])(z) - mean).max() < TOL


def test_bad_input():
    ae, vae = models.AE((1, 8, 8), 2, hidden=16), models.VAE((1, 8, 8), 2, hidden=16)
    z, y = torch.randn(40, 2), torch.randint(0, 10, (40,))
    with pytest.raises(TypeError, match="vae must be a vaelib AE or VAE"):
        explorer.widget_html(ae, nn.Linear(2, 64), z, z, y)
    conv = models.VAE((1, 16, 16), 2, arch="conv", hidden=16)
    with pytest.raises(TypeError, match="model: the explorer exports an MLP decoder"):
        explorer.export_decoder(conv)
    odd = models.AE((1, 8, 8), 2, hidden=16)
    odd.decoder[1] = nn.ELU()
    with pytest.raises(TypeError, match=r"ae: decoder\[1\] is a ELU"):
        explorer.widget_html(odd, vae, z, z, y)
    cvae = models.CVAE((1, 8, 8), 2, 10, hidden=16)
    with pytest.raises(ValueError, match=r"decoder\[0\] takes 12 inputs but receives 2"):
        explorer.export_decoder(cvae)
    with pytest.raises(ValueError, match="the explorer draws a 2-D latent space; got latent_dim 3"):
        explorer.widget_html(models.AE((1, 8, 8), 3, hidden=16), vae, z, z, y)
    with pytest.raises(ValueError, match=r"vae_codes must be an array \(N, 2\)"):
        explorer.widget_html(ae, vae, z, z[:, :1], y)
    with pytest.raises(ValueError, match="ae_codes has 39 rows but labels has 40"):
        explorer.widget_html(ae, vae, z[:39], z, y)
    with pytest.raises(ValueError, match="labels must be a 1-D array of integer classes"):
        explorer.widget_html(ae, vae, z, z, y.float())
    nan = z.clone()
    nan[3, 0] = float("nan")
    with pytest.raises(ValueError, match="vae_codes contains NaN"):
        explorer.widget_html(ae, vae, z, nan, y)
