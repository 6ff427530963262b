"""Chapter 04's latent-space explorer in headless Chromium: it draws, it follows the pointer, and its
JavaScript decoder is torch's decoder to float32 round-off.

    BOOK_HTML=_build/html .venv/bin/pytest -q tests_book/test_explorer.py     # after a book build

The widget (``vaelib.explorer.widget_html``) carries in its ``data-reference`` attribute a few
latent points and torch's decoded means at them, computed when the page was built; this test
decodes those points with the page's own JavaScript (``window.vaeExplorer.decode``) and compares.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import bookcheck
import numpy as np
import pytest

HTML = Path(os.environ.get("BOOK_HTML", bookcheck.ROOT / "_build" / "html")).resolve()
PAGE = "notebooks/04_ae_vs_vae.html"

# Float32 round-off: torch computes each output in float32 (a sum of ~hidden products, relative error
# ~sqrt(hidden) * 6e-8, on logits of size <~ 10: ~1e-6 at 128 hidden units; the mean, a sigmoid of
# slope <= 1/4, errs less), the page in float64 from the same float32 weights. 1e-5 on means in
# [0, 1] is several times that; a wrong layer order, a missing bias or a transposed weight moves
# them by ~1e-2.
TOL = 1e-5

# Runs in the page: the widget's geometry and what each canvas shows.
STATE_JS = r"""
(() => {
  const root = document.querySelector('.vae-explorer');
  const api = window.vaeExplorer;
  const data = JSON.parse(root.querySelector('script.vae-explorer-data').textContent);
  const out = {containers: document.querySelectorAll('.vae-explorer').length, names: api.names,
               width: root.getBoundingClientRect().width, panels: {}};
  const column = document.querySelector('article.bd-article') || document.querySelector('main');
  out.column_right = column.getBoundingClientRect().right;
  out.right = root.getBoundingClientRect().right;
  for (const name of api.names) {
    const el = root.querySelector('.vx-' + name);
    const sc = el.querySelector('canvas.vx-scatter'), im = el.querySelector('canvas.vx-image');
    const d = sc.getContext('2d').getImageData(0, 0, sc.width, sc.height).data;
    // a class colour (not the white ground, the grey axes or the black circle and marker)
    const coloured = k => Math.max(d[k], d[k + 1], d[k + 2]) - Math.min(d[k], d[k + 1], d[k + 2]) > 40;
    let ink = 0;
    for (let i = 0; i < d.length; i += 4) if (coloured(i)) ink++;
    // the codes, read from the widget's data by the test's own decoding: is each one's pixel drawn?
    const q = data.panels.find(p => p.name === name).codes, bin = atob(q), dv = new DataView(new ArrayBuffer(bin.length));
    for (let i = 0; i < bin.length; i++) dv.setUint8(i, bin.charCodeAt(i));
    let hit = 0, n = bin.length / 4;
    for (let k = 0; k < n; k++) {
      const x = Math.min(sc.width - 1, Math.floor(dv.getUint16(4 * k, true) / 65535 * sc.width));
      const y = Math.min(sc.height - 1, Math.floor((1 - dv.getUint16(4 * k + 2, true) / 65535) * sc.height));
      const i = 4 * (y * sc.width + x);  // not the white ground (class 7's tab10 colour is a grey)
      if (Math.min(d[i], d[i + 1], d[i + 2]) < 235) hit++;
    }
    const r = sc.getBoundingClientRect();
    out.panels[name] = {
      ink: ink, pixels: sc.width * sc.height, codes: n, codes_drawn: hit, rect: [r.left, r.top, r.width, r.height],
      border: [sc.clientLeft, sc.clientTop], box: api.panels[name].box, z: api.panels[name].z,
      image: Array.from(im.getContext('2d').getImageData(0, 0, im.width, im.height).data),
      image_shape: [im.height, im.width], shape: api.panels[name].shape,
      mean: api.decode(name, api.panels[name].z), text: el.querySelector('.vx-z').textContent
    };
  }
  return out;
})()
"""


@pytest.fixture(scope="module")
def base_url():
    if not (HTML / PAGE).is_file():
        pytest.fail(f"no {PAGE} under {HTML}: build the book first (`make book` or `make build-smoke`)")
    with bookcheck.serve(HTML) as url:
        yield url


@pytest.fixture
def page(browser, base_url):
    browser.goto(base_url + PAGE)
    assert browser.evaluate("!!document.querySelector('.vae-explorer') && !!window.vaeExplorer"), \
        f"{PAGE} has no latent-space explorer (a .vae-explorer container and window.vaeExplorer)"
    return browser


def _shown(panel) -> np.ndarray:
    """The image canvas as the page drew it: grey levels (H, W) in 0..255."""
    h, w = panel["image_shape"]
    return np.array(panel["image"], dtype=np.uint8).reshape(h, w, 4)[..., 0]


def _expected(panel) -> np.ndarray:
    """What the image canvas should show for the decoder's mean at the panel's current code."""
    c, h, w = panel["shape"]
    mean = np.clip(np.array(panel["mean"]).reshape(c, h, w)[0], 0, 1)
    return np.round(255 * ((1 - mean) if h <= 28 else mean))  # ink dark for digits, as vaelib.plots


def test_the_widget_draws(page):
    s = page.evaluate(STATE_JS)
    assert s["containers"] == 1
    assert s["names"] == ["ae", "vae"]
    assert s["right"] <= s["column_right"] + 1, f"the explorer ({s['width']} px) is wider than the column"
    for name, p in s["panels"].items():
        # the scatter: the pixel of (nearly) every code is drawn, and a class colour is on at least
        # 27 pixels, three dots of ~9 (an empty canvas has none; at smoke a barely trained VAE's codes
        # can pile up on a few pixels, so no more can be asked of the drawing)
        assert p["codes_drawn"] > 0.9 * p["codes"], f"{name}: {p['codes_drawn']} of {p['codes']} codes drawn"
        assert p["ink"] >= 27, f"{name}: the scatter looks empty ({p['ink']} of {p['pixels']} pixels coloured)"
        assert p["z"] == [0, 0]  # guard: the widget starts at the origin
        # the image canvas shows the decoder's mean at the current code, pixel for pixel (+-1 of 255)
        assert p["image_shape"] == p["shape"][1:]
        assert np.abs(_shown(p) - _expected(p)).max() <= 1, name
        assert p["text"] == "z1 = 0.00\nz2 = 0.00"


def test_the_pointer_decodes_the_point_under_it(page):
    for name in ("ae", "vae"):
        before = page.evaluate(STATE_JS)["panels"]
        p = before[name]
        left, top, width, height = p["rect"]
        bx, by = p["border"]
        u, v = 0.85, 0.2  # a point near the top right corner of the scatter, away from the origin
        x, y = left + bx + u * (width - 2 * bx), top + by + v * (height - 2 * by)
        page.evaluate(
            f"document.querySelector('.vae-explorer .vx-{name} canvas.vx-scatter').dispatchEvent("
            f"new PointerEvent('pointermove', {{clientX: {x}, clientY: {y}, bubbles: true}})), true"
        )
        after = page.evaluate(STATE_JS)["panels"][name]
        x0, x1, y0, y1 = p["box"]
        want = [x0 + u * (x1 - x0), y1 - v * (y1 - y0)]
        # the code under the pointer, to a pixel of the view (its width over ~210 px)
        assert np.allclose(after["z"], want, atol=(x1 - x0) / 200), (name, after["z"], want)
        assert np.abs(_shown(after) - _expected(after)).max() <= 1, name
        assert np.abs(_shown(after).astype(int) - _shown(p)).max() > 0, f"{name}: the image did not change"
        assert after["text"] != p["text"]
        other = "vae" if name == "ae" else "ae"
        assert page.evaluate(STATE_JS)["panels"][other]["z"] == before[other]["z"]  # the other one stays


def _floats(text: str, n: int) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<f4").reshape(n, -1)


def test_the_javascript_decoder_is_torchs(page):
    reference = json.loads(page.evaluate("document.querySelector('.vae-explorer').dataset.reference"))
    assert sorted(reference) == ["ae", "vae"]
    worst = {}
    for name, ref in reference.items():
        z, want = _floats(ref["z"], ref["n"]), _floats(ref["mean"], ref["n"])
        assert len(z) >= 3  # guard: the origin, a code, a corner, ...
        # float32 -> Python float is exact, so the page decodes exactly the points torch did
        got = np.array(page.evaluate(f"{json.dumps(z.astype(float).tolist())}.map(z => window.vaeExplorer.decode("
                                     f"{json.dumps(name)}, z))"))
        assert got.shape == want.shape
        worst[name] = float(np.abs(got - want).max())
        assert worst[name] < TOL, f"{name}: the page's decoder differs from torch's by {worst[name]:.2e}"
        # the comparison can fail: a neighbouring point decodes differently by far more than TOL
        moved = np.array(page.evaluate(f"window.vaeExplorer.decode({json.dumps(name)}, "
                                       f"{json.dumps((z[2] * 1.01 + 0.01).astype(float).tolist())})"))
        assert np.abs(moved - want[2]).max() > 10 * TOL
    print(f"max |JavaScript - torch| over the reference points: {worst}")
