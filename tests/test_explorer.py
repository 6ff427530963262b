"""vaelib.explorer: the decoder exported for the browser is torch's decoder, to float32 round-off."""

import base64
import json
import re
from html.parser import HTMLParser

import esprima
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


# The widget's assets (vaelib/assets/explorer.{js,html,css}), each parsed, so that a syntax error fails here rather
# than in a reader's browser. esprima (a pure-Python port of the JavaScript parser) reads ECMAScript 2017: the
# script must keep to it (no `?.` or `??`), which every browser of the last years runs.

UID = "vae-explorer-0123456789"  # a container id of the form widget_html makes
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


def _page() -> str:
    """The widget as the assets make it, with stand-ins for the data (the models play no part in the markup)."""
    return explorer._page(UID, '{"ae":{},"vae":{}}', '{"panels":[],"labels":[],"colours":[]}')


class _Markup(HTMLParser):
    """``elements`` (tag, attributes) in document order, ``scripts`` and ``styles`` (text, attributes), and
    ``problems``: a closing tag that does not close the innermost open element, or an element left open."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.elements, self.scripts, self.styles, self.problems, self._open = [], [], [], [], []
        self.feed(text)
        self.close()
        self.problems += [f"<{tag}> opened on line {line} is never closed" for tag, line in self._open]

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, {k: v or "" for k, v in attrs}))
        if tag in ("script", "style"):
            (self.scripts if tag == "script" else self.styles).append(["", self.elements[-1][1]])
        if tag not in VOID:
            self._open.append((tag, self.getpos()[0]))

    def handle_startendtag(self, tag, attrs):
        self.elements.append((tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag):
        if self._open and self._open[-1][0] == tag:
            self._open.pop()
        else:
            inner = f"the open <{self._open[-1][0]}> of line {self._open[-1][1]}" if self._open else "nothing"
            self.problems.append(f"line {self.getpos()[0]}: </{tag}> closes {inner}")

    def handle_data(self, data):
        if self._open and self._open[-1][0] in ("script", "style"):
            (self.scripts if self._open[-1][0] == "script" else self.styles)[-1][0] += data


def _js_problem(source: str):
    """None if ``source`` parses as a script, else esprima's message ("Line N: Unexpected token ...")."""
    try:
        esprima.parseScript(source)
    except esprima.Error as e:
        return str(e)
    return None


def _nodes(tree):
    """Every node of an esprima syntax tree, as dicts."""
    stack = [tree.toDict()]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "type" in node:
                yield node
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def _string(node):
    """The value of a string literal or of a ``+`` of string literals; None for anything else."""
    if node["type"] == "Literal" and isinstance(node["value"], str):
        return node["value"]
    if node["type"] == "BinaryExpression" and node["operator"] == "+":
        a, b = _string(node["left"]), _string(node["right"])
        return None if a is None or b is None else a + b
    return None


def _lookups(tree):
    """What a script looks up: (the object asked, a selector) for each ``querySelector``, ``querySelectorAll`` and
    ``getElementById`` (as ``#id``) with a constant argument, and the markup of each constant ``innerHTML``."""
    lookups, markup = [], []
    for n in _nodes(tree):
        if n["type"] == "CallExpression" and n["callee"]["type"] == "MemberExpression" and not n["callee"]["computed"]:
            method, arg = n["callee"]["property"]["name"], _string(n["arguments"][0]) if n["arguments"] else None
            if method in ("querySelector", "querySelectorAll", "getElementById") and arg is not None:
                obj = n["callee"]["object"].get("name", "(an expression)")
                lookups.append((obj, "#" + arg if method == "getElementById" else arg))
        elif (n["type"] == "AssignmentExpression" and n["left"]["type"] == "MemberExpression"
              and n["left"]["property"].get("name") == "innerHTML" and _string(n["right"]) is not None):
            markup.append(_string(n["right"]))
    return lookups, markup


def _matches(selector: str, elements) -> bool:
    """Whether a simple selector (``tag``, ``.class``, ``#id`` or ``tag.class...``) matches one of ``elements``."""
    m = re.fullmatch(r"([a-z][a-z0-9]*)?((?:[.#][\w-]+)*)", selector)
    assert selector and m, f"the test reads only simple selectors (tag.class#id); the script looks up {selector!r}"
    tag, parts = m.group(1), re.findall(r"([.#])([\w-]+)", m.group(2))
    return any((tag is None or t == tag)
               and all(name in a.get("class", "").split() if kind == "." else a.get("id") == name for kind, name in parts)
               for t, a in elements)


def _css_problems(css: str, scope: str) -> list[str]:
    """What is wrong with a style sheet of plain rules ``selectors{name:value;...}``: braces that do not balance, text
    that is not such a rule, a declaration that is not ``name:value``, a selector not under ``scope`` (the widget's
    rules must not reach the rest of the book's page)."""
    text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group().count("\n"), css, flags=re.S)  # comments, keeping lines
    problems, depth = [], 0
    for number, line in enumerate(text.splitlines(), 1):
        for ch in line:
            depth += (ch == "{") - (ch == "}")
            if depth < 0:
                problems.append(f"line {number}: a '}}' that closes nothing")
                depth = 0
    if depth:
        problems.append(f"{depth} '{{' never closed")
    if problems:
        return problems
    rule = r"([^{}]*)\{([^{}]*)\}"
    if re.sub(rule, "", text).strip():
        problems.append(f"text outside a plain rule: {re.sub(rule, '', text).strip()[:60]!r}")
    for selectors, body in re.findall(rule, text):
        problems += [f"{sel.strip()!r} is not under {scope!r}" for sel in selectors.split(",")
                     if not sel.strip().startswith(scope + " ")]
        for declaration in filter(str.strip, body.split(";")):
            name, colon, value = declaration.partition(":")
            if not (colon and re.fullmatch(r"\s*-?[a-z][a-z-]*\s*", name) and value.strip()):
                problems.append(f"not a declaration name:value: {declaration.strip()!r}")
    return problems


def test_the_javascript_parses():
    js = explorer._asset("explorer.js")
    # the asset as the page runs it, the body of a function (wrapped on its first line, so line numbers are the file's)
    problem = _js_problem("(function(){" + js + "})();")
    assert problem is None, f"vaelib/assets/explorer.js does not parse: {problem}"
    # and the page's inline scripts as the template writes them: the code, and the data as JSON
    scripts = _Markup(_page()).scripts
    code = [text for text, attrs in scripts if attrs.get("type") != "application/json"]
    assert len(scripts) == 2 and len(code) == 1, f"the page has {len(scripts)} scripts (want its data, then its code)"
    assert js in code[0]  # guard: the asset is the page's script
    problem = _js_problem(code[0])
    assert problem is None, f"the widget's script, explorer.js as explorer.html wraps it, does not parse: {problem}"
    json.loads(next(text for text, attrs in scripts if attrs.get("type") == "application/json"))
    # the check can fail: the script cut in half (a block left open), or a stray parenthesis
    assert _js_problem("(function(){" + js[: len(js) // 2] + "})();") is not None
    assert _js_problem("(function(){" + js.replace("return out;", "return out);", 1) + "})();") is not None


def test_the_html_template():
    raw = explorer._asset("explorer.html")
    problems = _Markup(raw).problems
    assert not problems, "vaelib/assets/explorer.html: " + "; ".join(problems)
    page = _Markup(_page())
    assert not page.problems, "the widget's HTML: " + "; ".join(page.problems)
    tag, container = page.elements[0]
    assert tag == "div" and container["id"] == UID and "vae-explorer" in container["class"].split()
    assert json.loads(container["data-reference"]) == {"ae": {}, "vae": {}}
    kinds = [(attrs.get("type"), attrs.get("class")) for text, attrs in page.scripts]
    assert kinds == [("application/json", "vae-explorer-data"), (None, None)], f"the page's scripts: {kinds}"
    # every element the scripts look up exists: under `root` (the container) in the template; elsewhere in the
    # template or in the markup the script itself writes (its panels), which must nest too
    tree = esprima.parseScript(next(text for text, attrs in page.scripts if attrs.get("type") != "application/json"))
    lookups, markup = _lookups(tree)
    made = []
    for text in markup:
        parsed = _Markup(text)
        assert not parsed.problems, f"the markup the script writes, {text!r}: " + "; ".join(parsed.problems)
        made += parsed.elements
    assert ("document", "#" + UID) in lookups, f"the page's script does not look up its container #{UID}: {lookups}"
    assert {("root", "script.vae-explorer-data"), ("el", "canvas.vx-scatter")} <= set(lookups)  # guard: the walk
    for obj, selector in lookups:
        where = page.elements[1:] if obj == "root" else page.elements + made
        assert _matches(selector, where), f"{obj} looks up {selector!r}, which is in neither the template nor the markup"
    # the checks can fail: a </div> dropped, a container whose id is not the one the script looks up
    assert _Markup(raw.replace("</div>", "", 1)).problems
    assert not _matches("#" + UID, _Markup(_page().replace(f'id="{UID}"', 'id="elsewhere"', 1)).elements)


def test_the_css():
    css = explorer._asset("explorer.css")
    styles = _Markup(_page()).styles
    assert len(styles) == 1  # guard: the page's one style sheet is the asset
    sheet = styles[0][0]
    assert sheet.strip() == css.replace("${id}", UID).strip()
    problems = _css_problems(sheet, "#" + UID)
    assert not problems, "vaelib/assets/explorer.css: " + "; ".join(problems)
    # each class the sheet styles is one the template or the script uses
    used = explorer._asset("explorer.html") + explorer._asset("explorer.js")
    classes = set(re.findall(r"\.([a-z][\w-]*)", re.sub(r"\{[^{}]*\}", "{}", sheet)))
    assert classes >= {"vx-row", "vx-scatter"}  # guard
    unused = [c for c in sorted(classes) if not re.search(rf"(?<![\w-]){re.escape(c)}(?![\w-])", used)]
    assert not unused, f"explorer.css styles classes that neither explorer.html nor explorer.js uses: {unused}"
    # the check can fail: a brace dropped, a rule that would style the whole book page
    assert _css_problems(sheet.replace("}", "", 1), "#" + UID)
    assert _css_problems(sheet + ".vx-row{display:none}", "#" + UID)
