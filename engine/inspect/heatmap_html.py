"""Attention heatmaps as one self-contained interactive HTML page (inline JS and data, no network needed).

The page has a text picker, a layer picker and a head picker ('all heads' or one head). Every head is drawn in its own
panel, a `div.head-panel` holding a canvas (rows = query tokens, columns = key tokens, colour = weight on a fixed
0..1 scale); hovering a cell shows 'query -> key: weight'. The weights travel as base64 little-endian float32 inside a
`<script type="application/json">` block, so the page shows the exact numbers the graph produced.
"""
from __future__ import annotations

import base64
import html
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from .attention_table import _check_range

PANEL_CLASS = "head-panel"


def heatmap_html(tokens: Sequence[Sequence[str]], attentions: Sequence[NDArray], path: Path,
                 layers: Sequence[int] | None = None, heads: Sequence[int] | None = None,
                 texts: Sequence[str] | None = None, title: str = "Attention heatmaps") -> Path:
    """Write the page for one or more texts. tokens[i] has t_i word pieces, attentions[i] is (L, heads, t_i, t_i)."""
    if len(tokens) != len(attentions) or not tokens:
        raise ValueError("need one token list per attention array, and at least one text")
    n_layers, n_heads = np.asarray(attentions[0]).shape[:2]
    layers = list(range(n_layers)) if layers is None else [int(x) for x in layers]
    heads = list(range(n_heads)) if heads is None else [int(x) for x in heads]
    _check_range(layers, n_layers, "layer")
    _check_range(heads, n_heads, "head")
    items = []
    for i, (tok, att) in enumerate(zip(tokens, attentions)):
        sub = np.ascontiguousarray(np.asarray(att, dtype="<f4")[layers][:, heads])  # (nl, nh, t, t)
        items.append({
            "label": texts[i] if texts else " ".join(tok),
            "tokens": list(tok),
            "t": int(sub.shape[-1]),
            "weights": base64.b64encode(sub.tobytes()).decode("ascii"),
        })
    data = {"layers": layers, "heads": heads, "texts": items}
    payload = json.dumps(data, ensure_ascii=True).replace("<", "\\u003c")  # no '</script>' can close the block
    page = (_TEMPLATE.replace("__TITLE__", html.escape(title)).replace("__PANEL__", PANEL_CLASS)
            .replace("__DATA__", payload))
    Path(path).write_text(page, encoding="utf-8")
    return Path(path)


_TEMPLATE = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>__TITLE__</title>
<style>
  body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; margin: 16px 20px; color: #1d2330; background: #fff; }
  h1 { font-size: 18px; margin: 0 0 8px; }
  .controls { display: flex; gap: 18px; align-items: center; flex-wrap: wrap; margin-bottom: 6px; }
  .controls label { font-weight: 600; }
  .controls select { font: inherit; margin-left: 6px; padding: 2px 4px; max-width: 520px; }
  .legend { display: flex; align-items: center; gap: 6px; font-size: 12px; color: #555; }
  .legend .bar { width: 140px; height: 10px; border: 1px solid #ccc; background: linear-gradient(to right, #f7fbff, #c6dbef, #6baed6, #2171b5, #08306b); }
  .sentence { color: #444; margin: 4px 0 12px; font-style: italic; }
  #grid { display: flex; flex-wrap: wrap; gap: 14px; }
  .__PANEL__ { border: 1px solid #dde2ea; border-radius: 6px; padding: 6px 8px 8px; background: #fbfcfe; }
  .__PANEL__ h2 { font-size: 13px; margin: 0 0 4px; font-weight: 600; }
  .__PANEL__ canvas { display: block; cursor: crosshair; }
  #tip { position: fixed; pointer-events: none; background: rgba(20, 24, 33, 0.92); color: #fff; padding: 4px 8px;
         border-radius: 4px; font-size: 12px; white-space: pre; display: none; z-index: 10; }
</style>
</head>
<body>
<h1>__TITLE__</h1>
<div class="controls">
  <label>Text<select id="text-picker"></select></label>
  <label>Layer<select id="layer-picker"></select></label>
  <label>Head<select id="head-picker"></select></label>
  <span class="legend">weight 0 <span class="bar"></span> 1</span>
</div>
<div class="sentence" id="sentence"></div>
<div id="grid"></div>
<div id="tip"></div>
<script type="application/json" id="attention-data">__DATA__</script>
<script>
(function () {
  "use strict";
  var DATA = JSON.parse(document.getElementById("attention-data").textContent);
  var STOPS = [[247, 251, 255], [198, 219, 239], [107, 174, 214], [33, 113, 181], [8, 48, 107]];
  var textPicker = document.getElementById("text-picker");
  var layerPicker = document.getElementById("layer-picker");
  var headPicker = document.getElementById("head-picker");
  var grid = document.getElementById("grid");
  var tip = document.getElementById("tip");
  var cache = {};

  function option(select, value, label) {
    var o = document.createElement("option");
    o.value = String(value); o.textContent = label; select.appendChild(o);
  }
  DATA.texts.forEach(function (t, i) {
    option(textPicker, i, (i + 1) + ": " + (t.label.length > 70 ? t.label.slice(0, 67) + "..." : t.label));
  });
  DATA.layers.forEach(function (l, i) { option(layerPicker, i, "layer " + l); });
  option(headPicker, "all", "all heads");
  DATA.heads.forEach(function (h, i) { option(headPicker, i, "head " + h); });
  if (DATA.texts.length < 2) { textPicker.parentNode.style.display = "none"; }

  function weights(ti) {
    if (!cache[ti]) {
      var bin = atob(DATA.texts[ti].weights), bytes = new Uint8Array(bin.length);
      for (var i = 0; i < bin.length; i++) { bytes[i] = bin.charCodeAt(i); }
      cache[ti] = new Float32Array(bytes.buffer);
    }
    return cache[ti];
  }
  function colour(w) {
    var x = Math.max(0, Math.min(1, w)) * (STOPS.length - 1), i = Math.min(STOPS.length - 2, Math.floor(x)), f = x - i;
    var a = STOPS[i], b = STOPS[i + 1];
    return "rgb(" + Math.round(a[0] + (b[0] - a[0]) * f) + "," + Math.round(a[1] + (b[1] - a[1]) * f) + "," +
      Math.round(a[2] + (b[2] - a[2]) * f) + ")";
  }

  function panel(ti, li, hi, cell) {
    var text = DATA.texts[ti], t = text.t, tokens = text.tokens, w = weights(ti);
    var nh = DATA.heads.length, base = ((li * nh) + hi) * t * t;
    var div = document.createElement("div");
    div.className = "__PANEL__";
    div.setAttribute("data-head", DATA.heads[hi]);
    var h = document.createElement("h2");
    h.textContent = "head " + DATA.heads[hi];
    div.appendChild(h);
    var canvas = document.createElement("canvas");
    var ctx = canvas.getContext("2d");
    var font = Math.max(8, Math.min(11, cell)) + "px system-ui, sans-serif";
    ctx.font = font;
    var labelW = 0;
    tokens.forEach(function (s) { labelW = Math.max(labelW, ctx.measureText(s).width); });
    var showLabels = cell >= 7, margin = showLabels ? Math.ceil(labelW) + 8 : 4;
    var size = t * cell, W = margin + size + 2, H = margin + size + 2, dpr = window.devicePixelRatio || 1;
    canvas.width = W * dpr; canvas.height = H * dpr;
    canvas.style.width = W + "px"; canvas.style.height = H + "px";
    canvas.setAttribute("data-margin", margin); canvas.setAttribute("data-cell", cell);
    var hover = null;

    function draw() {
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.clearRect(0, 0, W, H);
      for (var q = 0; q < t; q++) {
        for (var k = 0; k < t; k++) {
          ctx.fillStyle = colour(w[base + q * t + k]);
          ctx.fillRect(margin + k * cell, margin + q * cell, cell, cell);
        }
      }
      ctx.strokeStyle = "#c9d1dc"; ctx.lineWidth = 1;
      ctx.strokeRect(margin - 0.5, margin - 0.5, size + 1, size + 1);
      if (showLabels) {
        ctx.font = font; ctx.fillStyle = "#333"; ctx.textBaseline = "middle";
        ctx.textAlign = "right";
        tokens.forEach(function (s, i) { ctx.fillText(s, margin - 4, margin + i * cell + cell / 2); });
        tokens.forEach(function (s, i) {
          ctx.save(); ctx.translate(margin + i * cell + cell / 2, margin - 4); ctx.rotate(-Math.PI / 2);
          ctx.textAlign = "left"; ctx.fillText(s, 0, 0); ctx.restore();
        });
      }
      if (hover) {
        ctx.strokeStyle = "#e4572e"; ctx.lineWidth = 1.5;
        ctx.strokeRect(margin, margin + hover[0] * cell, size, cell);
        ctx.strokeRect(margin + hover[1] * cell, margin, cell, size);
      }
    }
    canvas.addEventListener("mousemove", function (ev) {
      var r = canvas.getBoundingClientRect();
      var k = Math.floor((ev.clientX - r.left - margin) / cell), q = Math.floor((ev.clientY - r.top - margin) / cell);
      if (q < 0 || k < 0 || q >= t || k >= t) { hover = null; tip.style.display = "none"; draw(); return; }
      hover = [q, k]; draw();
      tip.textContent = "layer " + DATA.layers[li] + ", head " + DATA.heads[hi] + "\n" + tokens[q] + " (" + q + ") \u2192 " +
        tokens[k] + " (" + k + "): " + w[base + q * t + k].toFixed(4);
      tip.style.display = "block";
      tip.style.left = (ev.clientX + 14) + "px"; tip.style.top = (ev.clientY + 12) + "px";
    });
    canvas.addEventListener("mouseleave", function () { hover = null; tip.style.display = "none"; draw(); });
    draw();
    div.appendChild(canvas);
    return div;
  }

  function render() {
    var ti = +textPicker.value, li = +layerPicker.value, hv = headPicker.value, t = DATA.texts[ti].t;
    document.getElementById("sentence").textContent = DATA.texts[ti].label;
    grid.innerHTML = "";
    var heads = hv === "all" ? DATA.heads.map(function (_, i) { return i; }) : [+hv];
    var cell = hv === "all" ? Math.max(2, Math.min(14, Math.floor(200 / t))) : Math.max(3, Math.min(34, Math.floor(720 / t)));
    heads.forEach(function (hi) { grid.appendChild(panel(ti, li, hi, cell)); });
  }
  [textPicker, layerPicker, headPicker].forEach(function (s) { s.addEventListener("change", render); });
  render();
}());
</script>
</body>
</html>
"""
