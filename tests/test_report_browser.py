"""The report in a real headless browser (Debian's chromium): the page loads, tables and figures render.
Skipped where chromium is not installed."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from report_world import make_world

from deem_eval.cli import main

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
         "--disable-extensions", "--mute-audio"]
TAB_BLUE = np.array([31, 119, 180])     # matplotlib's first colour: only the figures use it
#: the report's per-model colours (tab10's first four): only the figures use them
FIGURE_COLOURS = np.array([[31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40]])


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    runs = make_world(root)
    assert main(["report", str(runs), "--out", str(root / "out"), "--draws", "200", "--no-progress"]) == 0
    return root, root / "out" / "index.html"


def _chromium(root, *args, timeout=120):
    profile = root / "profile"
    cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def test_dom_has_tables_and_figures(page):
    root, index = page
    result = _chromium(root, "--dump-dom", index.as_uri())
    dom = result.stdout
    assert result.returncode == 0, result.stderr[-2000:]
    assert dom.count("<table") >= 6
    assert dom.count('<img alt="') == 3 and dom.count("data:image/svg+xml;base64,") == 3
    for heading in ("Leaderboard", "Paired comparisons", "Robustness under corruption", "Hallucination"):
        assert f">{heading}</h2>" in dom


def test_screenshot_shows_rendered_page(page):
    from PIL import Image

    root, index = page
    shot = root / "report.png"
    result = _chromium(root, f"--screenshot={shot}", "--window-size=1400,5200", index.as_uri())
    assert result.returncode == 0 and shot.is_file(), result.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert pixels.shape[:2] == (5200, 1400)
    assert (pixels.reshape(-1, 3) != 255).any(axis=1).mean() > 0.02      # not a blank page
    # figures decoded and drawn: matplotlib's blue appears (the HTML itself never uses it)
    coloured = sum(int((np.abs(pixels - c).sum(axis=2) < 30).sum()) for c in FIGURE_COLOURS)
    assert coloured > 500, f"only {coloured} figure-coloured pixels: the embedded SVG figures did not render"
    Image.fromarray(pixels.astype(np.uint8)).save(root / "checked.png")
