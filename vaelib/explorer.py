"""A latent-space explorer for the book's pages: a 2-D model's decoder, run in the reader's browser.

:func:`export_decoder` turns an MLP decoder (``nn.Linear`` and elementwise activations, as
:func:`vaelib.models.make_decoder` builds) into its layer structure and its weights, float32
little-endian in base64; :func:`widget_html` writes a self-contained HTML widget (no library, no
network) that draws the scatter of each model's codes and, under the pointer, decodes the point in
plain JavaScript: the image shown is the mean of p(x|z), ``sigmoid(logits)`` for the Bernoulli
decoder, the Gaussian's mean otherwise.

The widget exposes ``decode(name, z) -> pixel means`` on its container (``.vaeExplorer``) and on
``window.vaeExplorer``, and carries in its ``data-reference`` attribute a few latent points with
torch's decoded means, so that a browser test can hold the JavaScript decoder to torch's.

The widget's markup, style and script are files in ``vaelib/assets/`` (``explorer.html``,
``explorer.css``, ``explorer.js``), filled in with :class:`string.Template` (see :func:`_page`);
``tests/test_explorer.py`` parses each of them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from importlib.resources import files
from string import Template

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.colors import to_hex
from torch import nn

__all__ = ["export_decoder", "widget_html", "decode_base64"]

# module type -> (the layer as the JavaScript reads it); nn.Linear is handled apart (it has weights)
_ACTIVATIONS = {
    nn.ReLU: lambda m: {"type": "relu"},
    nn.LeakyReLU: lambda m: {"type": "leaky_relu", "slope": float(m.negative_slope)},
    nn.Tanh: lambda m: {"type": "tanh"},
    nn.Sigmoid: lambda m: {"type": "sigmoid"},
    nn.Identity: lambda m: {"type": "identity"},
}
# the colours of vaelib.plots.latent_scatter (matplotlib's tab10), so the widget matches the figure
_TAB10 = [to_hex(c) for c in colormaps["tab10"].colors]


def _b64(array) -> str:
    """Base64 of ``array`` as little-endian float32, C order."""
    return base64.b64encode(np.ascontiguousarray(array, dtype="<f4").tobytes()).decode("ascii")


def decode_base64(text: str, shape=None) -> np.ndarray:
    """The float32 array that :func:`export_decoder` and :func:`widget_html` encode as base64."""
    out = np.frombuffer(base64.b64decode(text), dtype="<f4").astype(np.float32)
    return out if shape is None else out.reshape(shape)


def _check_model(model, name: str):
    for attr in ("decoder", "latent_dim", "x_shape", "likelihood"):
        if not hasattr(model, attr):
            raise TypeError(f"{name} must be a vaelib AE or VAE (a model with .decoder, .latent_dim, "
                            f".x_shape, .likelihood); got {type(model).__name__}")
    if not isinstance(model.decoder, nn.Sequential):
        raise TypeError(f"{name}: the explorer exports an MLP decoder (an nn.Sequential of nn.Linear and "
                        f"activations, arch='mlp'); got a decoder of type {type(model.decoder).__name__}")
    if model.likelihood not in ("bernoulli", "gaussian"):
        raise ValueError(f"{name}: likelihood must be 'bernoulli' or 'gaussian'; got {model.likelihood!r}")


def export_decoder(model, name: str = "model") -> dict:
    """The decoder of ``model`` (a vaelib ``AE`` or ``VAE`` with ``arch="mlp"``) as a JSON-able dict.

    Returns ``{"latent_dim", "shape" (C, H, W), "layers", "output", "weights"}``: ``layers`` lists
    ``{"type": "linear", "in": i, "out": o}`` and the activations (``relu``, ``leaky_relu`` with its
    ``slope``, ``tanh``, ``sigmoid``, ``identity``) in order; ``output`` is ``"sigmoid"`` for the
    Bernoulli decoder (its mean is the sigmoid of the logits) and ``"identity"`` for the Gaussian
    one; ``weights`` is base64 of every linear layer's weight ``(out, in)`` (row-major) followed by
    its bias, as little-endian float32, in layer order. ``name`` names the argument in errors.
    """
    _check_model(model, name)
    layers, chunks, width = [], [], int(model.latent_dim)
    for i, module in enumerate(model.decoder):
        if isinstance(module, nn.Linear):
            if module.in_features != width:
                raise ValueError(f"{name}: decoder[{i}] takes {module.in_features} inputs but receives {width} "
                                 f"(a decoder that also reads a label, as the CVAE's does, is not supported)")
            layers.append({"type": "linear", "in": module.in_features, "out": module.out_features})
            w = module.weight.detach().cpu().to(torch.float32).numpy()
            b = (module.bias.detach().cpu().to(torch.float32).numpy() if module.bias is not None
                 else np.zeros(module.out_features, np.float32))
            chunks += [w.ravel(), b]
            width = module.out_features
        elif type(module) in _ACTIVATIONS:
            layers.append(_ACTIVATIONS[type(module)](module))
        else:
            raise TypeError(f"{name}: decoder[{i}] is a {type(module).__name__}; the explorer knows nn.Linear and "
                            f"{', '.join(sorted(t.__name__ for t in _ACTIVATIONS))}")
    shape = [int(s) for s in model.x_shape]
    if width != math.prod(shape):
        raise ValueError(f"{name}: the decoder ends with {width} outputs, not the {math.prod(shape)} pixels of {shape}")
    return {
        "latent_dim": int(model.latent_dim),
        "shape": shape,
        "layers": layers,
        "output": "sigmoid" if model.likelihood == "bernoulli" else "identity",
        "weights": _b64(np.concatenate(chunks)) if chunks else "",
    }


def _check_codes(codes, name: str, n: int | None) -> np.ndarray:
    codes = codes.detach().cpu().numpy() if isinstance(codes, torch.Tensor) else np.asarray(codes)
    if codes.ndim != 2 or codes.shape[1] != 2:
        raise ValueError(f"{name} must be an array (N, 2) of 2-D codes; got shape {codes.shape}")
    if not np.isfinite(codes).all():
        raise ValueError(f"{name} contains NaN or infinity")
    if n is not None and len(codes) != n:
        raise ValueError(f"{name} has {len(codes)} rows but labels has {n}")
    return codes.astype(np.float64)


def _box(codes: np.ndarray) -> list[float]:
    """A square view ``[x0, x1, y0, y1]`` holding every code and the circle of radius 2, with a margin."""
    lo = np.minimum(codes.min(0), -2.2)
    hi = np.maximum(codes.max(0), 2.2)
    centre, half = (lo + hi) / 2, 0.54 * float((hi - lo).max())
    return [float(centre[0] - half), float(centre[0] + half), float(centre[1] - half), float(centre[1] + half)]


@torch.no_grad()
def _reference(model, box, codes) -> dict:
    """A few latent points (the origin, the first code, a corner of the view, two points inside it)
    and torch's decoded means at them, both float32 base64."""
    rng = np.random.default_rng(0)
    x0, x1, y0, y1 = box
    z = np.array([[0.0, 0.0], codes[0], [x1, y0], *rng.uniform([x0, y0], [x1, y1], size=(2, 2))], np.float32)
    param = next(model.decoder.parameters())
    mean = model.decode(torch.as_tensor(z, dtype=param.dtype, device=param.device)).mean
    return {"n": len(z), "z": _b64(z), "mean": _b64(mean.float().cpu().numpy())}


def widget_html(ae, vae, ae_codes, vae_codes, labels, titles=("AE: codes", "VAE: posterior means")) -> str:
    """The explorer: two panels side by side (``ae`` left, ``vae`` right), each the scatter of its
    2-D codes ``(N, 2)`` coloured by ``labels`` ``(N,)`` and the decoded image of the point under
    the pointer. Returns a self-contained HTML string (for ``IPython.display.HTML``), 676 px wide (the
    book's code cells are 688 px wide in a 1280 px window).
    """
    labels = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be a 1-D array of integer classes; got {labels.dtype} of shape {labels.shape}")
    if len(titles) != 2:
        raise ValueError(f"titles must be two strings (AE, VAE); got {titles!r}")
    panels = []
    for key, model, codes, title in (("ae", ae, ae_codes, titles[0]), ("vae", vae, vae_codes, titles[1])):
        spec = export_decoder(model, key)
        if spec["latent_dim"] != 2:
            raise ValueError(f"{key}: the explorer draws a 2-D latent space; got latent_dim {spec['latent_dim']}")
        codes = _check_codes(codes, f"{key}_codes", len(labels))
        box = _box(codes)
        q = np.round((codes - [box[0], box[2]]) / [box[1] - box[0], box[3] - box[2]] * 65535)
        panels.append({
            "name": key, "title": str(title), "decoder": spec, "box": box,
            "codes": base64.b64encode(q.astype("<u2").tobytes()).decode("ascii"),
            "reference": _reference(model, box, codes),
        })
    if panels[0]["decoder"]["shape"] != panels[1]["decoder"]["shape"]:
        raise ValueError(f"ae and vae decode different image shapes: {panels[0]['decoder']['shape']} "
                         f"and {panels[1]['decoder']['shape']}")
    data = {"panels": [{k: v for k, v in p.items() if k != "reference"} for p in panels],
            "labels": labels.astype(int).tolist(), "colours": _TAB10}
    payload = json.dumps(data, separators=(",", ":"))
    reference = json.dumps({p["name"]: p["reference"] for p in panels}, separators=(",", ":"))
    uid = "vae-explorer-" + hashlib.sha1(payload.encode()).hexdigest()[:10]
    return _page(uid, reference, payload)


def _asset(name: str) -> str:
    """The text of ``vaelib/assets/<name>``, read from the installed package (a wheel ships it as package data)."""
    return (files("vaelib") / "assets" / name).read_text(encoding="utf-8")


def _page(uid: str, reference: str, payload: str) -> str:
    """The widget's HTML from its three assets: ``explorer.html`` with ``${id}`` (the container's id),
    ``${reference}`` (JSON in a single-quoted attribute), ``${data}`` (the JSON the script reads),
    ``${css}`` (``explorer.css``, whose rules are scoped by ``#${id}``) and ``${js}`` (``explorer.js``,
    inserted as it is: the body of a function in which ``root`` is the container).
    """
    css = Template(_asset("explorer.css")).substitute(id=uid)
    html = Template(_asset("explorer.html")).substitute(id=uid, reference=reference, data=payload, css=css,
                                                        js=_asset("explorer.js"))
    return html.removesuffix("\n")  # the file's final newline is not part of the widget
