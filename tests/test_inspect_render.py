"""Render check: the interactive heatmap page opens in headless Chromium, draws every head panel, and hover works.

Skips only when Chromium is not installed (Debian: apt-get install -y chromium).
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

from engine.inspect.heatmap_html import PANEL_CLASS, heatmap_html

CHAPTER = "Then I tried to find some way of embracing my mother's ghost."
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install -y chromium)")

# Appended to a copy of the page: hover one cell, then switch to a single head, and record what the page showed.
PROBE = """
<script>
(function () {
  var out = {};
  var canvas = document.querySelector(".%(panel)s canvas");
  var margin = +canvas.getAttribute("data-margin"), cell = +canvas.getAttribute("data-cell");
  var r = canvas.getBoundingClientRect();
  canvas.dispatchEvent(new MouseEvent("mousemove", {bubbles: true,
    clientX: r.left + margin + %(k)d * cell + cell / 2, clientY: r.top + margin + %(q)d * cell + cell / 2}));
  out.tip = document.getElementById("tip").textContent;
  out.tipShown = document.getElementById("tip").style.display;
  out.panelsAll = document.querySelectorAll(".%(panel)s").length;
  var layer = document.getElementById("layer-picker");
  layer.value = String(layer.options.length - 1); layer.dispatchEvent(new Event("change"));
  out.panelsLastLayer = document.querySelectorAll(".%(panel)s").length;
  var head = document.getElementById("head-picker");
  head.value = "3"; head.dispatchEvent(new Event("change"));
  out.panelsOneHead = document.querySelectorAll(".%(panel)s").length;
  out.oneHeadTitle = document.querySelector(".%(panel)s h2").textContent;
  var pre = document.createElement("pre"); pre.id = "probe-result"; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
}());
</script>
"""


def chromium(*args: str, timeout: int = 90) -> subprocess.CompletedProcess:
    """Run headless Chromium with no network side traffic and a throwaway profile."""
    with tempfile.TemporaryDirectory() as profile:
        cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
               f"--user-data-dir={profile}", "--virtual-time-budget=2000", *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def render_page(path: Path, shot: Path, size: str = "1400,1000") -> None:
    """Screenshot the page at path into shot (PNG)."""
    proc = chromium(f"--screenshot={shot}", f"--window-size={size}", path.resolve().as_uri())
    assert shot.is_file(), f"chromium wrote no screenshot: {proc.stderr[-2000:]}"


def dump_dom(path: Path) -> str:
    """The DOM after the page's scripts ran."""
    proc = chromium("--dump-dom", path.resolve().as_uri())
    assert proc.returncode == 0 and "<html" in proc.stdout, proc.stderr[-2000:]
    return proc.stdout


@pytest.fixture(scope="module")
def inspection(minilm_export):
    from engine import Embedder

    return Embedder(model=minilm_export, device="cpu").inspect([CHAPTER, "Hello there."])


@pytest.fixture(scope="module")
def page(inspection, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("render") / "attention.html"
    return heatmap_html(inspection.tokens, inspection.attentions, path, texts=[CHAPTER, "Hello there."], title="render check")


def test_page_is_self_contained(page):
    html = page.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html), "the page must not load anything from the network"
    assert "http://" not in html and "https://" not in html


def test_page_renders_every_head_panel(page):
    dom = dump_dom(page)
    assert len(re.findall(rf'class="{PANEL_CLASS}"', dom)) == 12
    assert len(re.findall(r"<canvas", dom)) == 12
    assert "embracing" in dom  # the sentence line, set by the script


def test_screenshot_is_not_blank(page, tmp_path):
    from matplotlib.image import imread

    shot = tmp_path / "page.png"
    render_page(page, shot)
    img = imread(shot)[..., :3]  # floats 0..1
    assert img.shape[:2] == (1000, 1400)
    assert img.std() > 0.05, "screenshot is (nearly) uniform: the page did not render"
    # the heatmaps' dark end (#08306b) must be on screen: canvases were drawn, not just the page chrome
    dark_blue = (np.abs(img - np.array([8, 48, 107]) / 255).max(-1) < 0.06).sum()
    assert dark_blue > 200, f"only {dark_blue} dark-blue pixels: heatmaps did not draw"


def test_hover_and_pickers(page, inspection, tmp_path):
    probe = tmp_path / "probe.html"
    q, k = 3, 2  # 'tried' -> 'i'
    probe.write_text(page.read_text().replace("</body>", PROBE % {"panel": PANEL_CLASS, "q": q, "k": k} + "</body>"))
    dom = dump_dom(probe)
    match = re.search(r'<pre id="probe-result">(.*?)</pre>', dom, re.S)
    assert match, "the probe script did not run"
    out = json.loads(match.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    weight = float(inspection.attentions[0][0, 0, q, k])
    assert out["tipShown"] == "block"
    assert out["tip"] == f"layer 0, head 0\ntried ({q}) \u2192 i ({k}): {weight:.4f}"
    assert out["panelsAll"] == 12 and out["panelsLastLayer"] == 12
    assert out["panelsOneHead"] == 1 and out["oneHeadTitle"] == "head 3"
