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
"""

from __future__ import annotations

import base64
import hashlib
import json
import math

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
    return (_HTML.replace("__ID__", uid).replace("__REFERENCE__", reference)
            .replace("__DATA__", payload).replace("__JS__", _JS))


_HTML = """<div class="vae-explorer tex2jax_ignore mathjax_ignore" id="__ID__" data-reference='__REFERENCE__'
 style="width:676px;font:13px/1.35 system-ui,sans-serif;color:#222;margin:0.5em 0">
<style>
#__ID__ .vx-row{display:flex;gap:8px}
#__ID__ .vx-panel{width:334px}
#__ID__ .vx-title{font-weight:600;margin:0 0 4px}
#__ID__ .vx-body{display:flex;gap:8px;align-items:flex-start}
#__ID__ canvas.vx-scatter{width:210px;height:210px;border:1px solid #bbb;cursor:crosshair;touch-action:none}
#__ID__ canvas.vx-image{width:112px;height:112px;border:1px solid #bbb;image-rendering:pixelated}
#__ID__ .vx-z{font-family:monospace;font-size:12px;margin-top:4px;white-space:pre}
#__ID__ .vx-legend{margin-top:6px;font-size:12px}
#__ID__ .vx-legend span{display:inline-block;margin-right:9px}
#__ID__ .vx-legend i{display:inline-block;width:9px;height:9px;border-radius:50%;margin-right:3px}
</style>
<div class="vx-row"></div>
<div class="vx-legend"></div>
<script type="application/json" class="vae-explorer-data">__DATA__</script>
<script>(function(){const root=document.getElementById("__ID__");__JS__})();</script>
</div>"""

# The widget's code: `root` is the container. Plain JavaScript, no library.
_JS = r"""
const data = JSON.parse(root.querySelector("script.vae-explorer-data").textContent);
function bytes(b64) {
  const s = atob(b64), out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return new DataView(out.buffer);
}
function floats(b64) {  // little-endian float32, whatever the machine's byte order
  const dv = bytes(b64), out = new Float32Array(dv.byteLength >> 2);
  for (let i = 0; i < out.length; i++) out[i] = dv.getFloat32(4 * i, true);
  return out;
}
function makeDecoder(spec) {
  const w = floats(spec.weights);
  let off = 0;
  const layers = spec.layers.map(l => {
    if (l.type !== "linear") return l;
    const W = w.subarray(off, off + l.out * l.in); off += l.out * l.in;
    const b = w.subarray(off, off + l.out); off += l.out;
    return {type: "linear", n: l.in, m: l.out, W: W, b: b};
  });
  if (off !== w.length) throw new Error("vae-explorer: the weights do not match the layers");
  const sig = v => 1 / (1 + Math.exp(-v));
  const act = {relu: v => (v > 0 ? v : 0), tanh: Math.tanh, sigmoid: sig, identity: v => v};
  return function (z) {  // z: latent_dim numbers -> the decoder's mean, one number per pixel
    if (z.length !== spec.latent_dim) throw new Error("vae-explorer: z must have " + spec.latent_dim + " numbers");
    let x = Float64Array.from(z);
    for (const l of layers) {
      if (l.type === "linear") {
        const y = new Float64Array(l.m);
        for (let o = 0; o < l.m; o++) {
          let s = l.b[o];
          const r = o * l.n;
          for (let i = 0; i < l.n; i++) s += l.W[r + i] * x[i];
          y[o] = s;
        }
        x = y;
      } else if (l.type === "leaky_relu") {
        x = x.map(v => (v > 0 ? v : l.slope * v));
      } else if (act[l.type]) {
        x = x.map(act[l.type]);
      } else {
        throw new Error("vae-explorer: unknown layer " + l.type);
      }
    }
    return Array.from(spec.output === "sigmoid" ? x.map(sig) : x);
  };
}
const S = 210, dpr = window.devicePixelRatio || 1;
const row = root.querySelector(".vx-row"), decoders = {}, panels = {};
for (const p of data.panels) {
  const dec = makeDecoder(p.decoder), shape = p.decoder.shape;
  const [C, H, W] = shape, invert = H <= 28;  // ink dark on white for digits (as vaelib.plots)
  decoders[p.name] = dec;
  const el = document.createElement("div");
  el.className = "vx-panel vx-" + p.name;
  el.innerHTML = '<div class="vx-title"></div><div class="vx-body"><canvas class="vx-scatter"></canvas>' +
      '<div><canvas class="vx-image"></canvas><div class="vx-z"></div></div></div>';
  el.querySelector(".vx-title").textContent = p.title;
  row.appendChild(el);
  const sc = el.querySelector("canvas.vx-scatter"), im = el.querySelector("canvas.vx-image");
  sc.width = Math.round(S * dpr); sc.height = Math.round(S * dpr);
  im.width = W; im.height = H;
  const [x0, x1, y0, y1] = p.box;
  const px = z => [(z[0] - x0) / (x1 - x0) * S, (y1 - z[1]) / (y1 - y0) * S];
  // the scatter, drawn once into a buffer
  const buf = document.createElement("canvas");
  buf.width = sc.width; buf.height = sc.height;
  const g = buf.getContext("2d");
  g.scale(dpr, dpr);
  g.fillStyle = "#fff"; g.fillRect(0, 0, S, S);
  const [ox, oy] = px([0, 0]);
  g.strokeStyle = "#ddd"; g.lineWidth = 1;
  g.beginPath(); g.moveTo(ox, 0); g.lineTo(ox, S); g.moveTo(0, oy); g.lineTo(S, oy); g.stroke();
  const q = bytes(p.codes);
  g.globalAlpha = 0.8;
  for (let k = 0; k < data.labels.length; k++) {
    const u = q.getUint16(4 * k, true) / 65535, v = q.getUint16(4 * k + 2, true) / 65535;
    g.fillStyle = data.colours[((data.labels[k] % 10) + 10) % 10];
    g.beginPath(); g.arc(u * S, (1 - v) * S, 1.7, 0, 2 * Math.PI); g.fill();
  }
  g.globalAlpha = 1;  // the circle of radius 2 on top of the codes
  g.setLineDash([4, 3]); g.strokeStyle = "#000";
  g.beginPath(); g.arc(ox, oy, 2 / (x1 - x0) * S, 0, 2 * Math.PI); g.stroke(); g.setLineDash([]);
  const ctx = sc.getContext("2d"), ictx = im.getContext("2d"), zText = el.querySelector(".vx-z");
  function show(z) {
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.drawImage(buf, 0, 0);
    ctx.scale(dpr, dpr);
    const [a, b] = px(z);
    ctx.strokeStyle = "#000"; ctx.lineWidth = 1.5;
    ctx.beginPath(); ctx.arc(a, b, 6, 0, 2 * Math.PI);
    ctx.moveTo(a - 9, b); ctx.lineTo(a + 9, b); ctx.moveTo(a, b - 9); ctx.lineTo(a, b + 9); ctx.stroke();
    const mean = dec(z), img = ictx.createImageData(W, H);
    for (let k = 0; k < H * W; k++) {
      for (let c = 0; c < 3; c++) {
        let v = Math.min(1, Math.max(0, mean[(C === 3 ? c : 0) * H * W + k]));
        img.data[4 * k + c] = Math.round(255 * (invert ? 1 - v : v));
      }
      img.data[4 * k + 3] = 255;
    }
    ictx.putImageData(img, 0, 0);
    zText.textContent = "z1 = " + z[0].toFixed(2) + "\nz2 = " + z[1].toFixed(2);
    panels[p.name].z = [z[0], z[1]];
    return mean;
  }
  function fromEvent(e) {
    const r = sc.getBoundingClientRect();
    const u = (e.clientX - r.left - sc.clientLeft) / sc.clientWidth;
    const v = (e.clientY - r.top - sc.clientTop) / sc.clientHeight;
    return [x0 + u * (x1 - x0), y1 - v * (y1 - y0)];
  }
  sc.addEventListener("pointermove", e => show(fromEvent(e)));
  sc.addEventListener("pointerdown", e => show(fromEvent(e)));
  panels[p.name] = {show: show, box: p.box, shape: shape, z: null};  // z: the code drawn now
  show([0, 0]);
}
const seen = [...new Set(data.labels)].sort((a, b) => a - b);
root.querySelector(".vx-legend").innerHTML = seen.map(c =>
    '<span><i style="background:' + data.colours[((c % 10) + 10) % 10] + '"></i>' + c + "</span>").join("") +
    " classes; dashed circle: radius 2 (86% of the prior)";
const api = {
  names: data.panels.map(p => p.name),
  decode: (name, z) => decoders[name](z),  // the decoder's mean at z, in plain JavaScript
  show: (name, z) => panels[name].show(z),  // move a panel's marker to z and draw its image
  panels: panels
};
root.vaeExplorer = api;
window.vaeExplorer = api;
"""
