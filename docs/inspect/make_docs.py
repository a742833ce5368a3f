"""Regenerate the pictures in docs/inspect/ with the bundled all-MiniLM-L6-v2 (needs chromium for the screenshot).

    python docs/inspect/make_docs.py            # writes docs/inspect/*.png and prints the tables shown in the README
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from click.testing import CliRunner

from benchmarks.corpus import pydoc_paragraphs
from engine.cli import main

CHAPTER = "Then I tried to find some way of embracing my mother's ghost."
HERE = Path(__file__).resolve().parent
# Injected into a copy of the page for the second screenshot: layer 5, head 2, hover 'mother' -> 'mother'.
HOVER = """<script>
(function () {
  var layer = document.getElementById("layer-picker"), head = document.getElementById("head-picker");
  layer.value = "5"; layer.dispatchEvent(new Event("change"));
  head.value = "2"; head.dispatchEvent(new Event("change"));
  var c = document.querySelector(".head-panel canvas"), r = c.getBoundingClientRect();
  var m = +c.getAttribute("data-margin"), cell = +c.getAttribute("data-cell");
  c.dispatchEvent(new MouseEvent("mousemove", {bubbles: true, clientX: r.left + m + 11.5 * cell, clientY: r.top + m + 11.5 * cell}));
}());
</script>
"""


def run(args: list[str]) -> str:
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    if result.exit_code:
        sys.exit(result.output)
    return result.stdout


def main_() -> None:
    work = Path(tempfile.mkdtemp(prefix="inspect-docs-"))
    corpus = work / "pydoc.txt"
    corpus.write_text("\n".join(pydoc_paragraphs()) + "\n")
    print(run(["inspect", CHAPTER, "--out", str(work / "all"), "--device", "cpu"]))
    print(run(["inspect", CHAPTER, "--ignore-special", "--out", str(work / "plain"), "--device", "cpu",
               "--corpus", str(corpus)]))
    shutil.copy(work / "all" / "attention_text0_layer0.png", HERE / "attention_layer0.png")
    shutil.copy(work / "all" / "attention_text0_layer5.png", HERE / "attention_layer5.png")
    for name in ("drift_to_layer0.png", "drift_to_previous.png"):
        shutil.copy(work / "plain" / name, HERE / name)
    chromium = shutil.which("chromium")
    if chromium:
        page = work / "all" / "attention.html"
        hover = work / "all" / "attention_hover.html"
        hover.write_text(page.read_text().replace("</body>", HOVER + "</body>"))
        for src, shot in ((page, "attention_page.png"), (hover, "attention_page_hover.png")):
            with tempfile.TemporaryDirectory() as profile:
                subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                                "--hide-scrollbars", f"--user-data-dir={profile}", "--virtual-time-budget=2000",
                                f"--screenshot={HERE / shot}", "--window-size=1400,1000", src.as_uri()],
                               check=True, capture_output=True)
    else:
        print("chromium not installed: attention_page.png not refreshed", file=sys.stderr)
    print(f"outputs kept in {work}", file=sys.stderr)


if __name__ == "__main__":
    main_()
