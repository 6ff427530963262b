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
