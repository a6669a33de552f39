"""`deem-eval report`: one self-contained, well-formed page with every section, tables and figures."""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET

import pytest
from report_world import make_world

from deem_eval.cli import main


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    runs = make_world(root)
    out = root / "out"
    assert main(["report", str(runs), "--out", str(out), "--reported", "--draws", "300", "--no-progress"]) == 0
    return out


def test_report_files(report):
    assert (report / "index.html").is_file()
    for name in ("accuracy_vs_severity", "corruption_heatmap", "yes_ratio_vs_f1"):
        png, svg = report / "plots" / f"{name}.png", report / "plots" / f"{name}.svg"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert b"<svg" in svg.read_bytes()[:2000]
    for ext in ("md", "csv", "json"):
        assert (report / f"leaderboard.{ext}").stat().st_size > 100


def test_page_is_well_formed_and_self_contained(report):
    html = (report / "index.html").read_text(encoding="utf-8")
    root = ET.fromstring(html.split("\n", 1)[1])            # strict XML parse after the doctype
    ids = [s.get("id") for s in root.iter("section")]
    assert ids == ["leaderboard", "runs", "details", "hallucination", "robustness", "paired", "samples"]
    images = [img for fig in root.iter("figure") for img in fig.iter("img")]
    assert len(images) == 3
    for img in images:                                       # every figure is inline
        src = img.get("src")
        assert src.startswith("data:image/svg+xml;base64,")
        assert b"<svg" in base64.b64decode(src.split(",", 1)[1])[:2000]
    body = html.split("<body>", 1)[1]
    for needle in ('src="http', "href=\"http", "<link", "<script ", "@import", "url("):
        assert needle not in body
    scripts = list(root.iter("script"))                      # only the samples' filters, inline
    assert len(scripts) == 1 and not scripts[0].attrib and body.count("<script") == 1
    assert len(list(root.iter("table"))) >= 6


def _section(root, sid):
    return next(s for s in root.iter("section") if s.get("id") == sid)


def _rows(table):
    return [["".join(td.itertext()) for td in tr] for tr in table.findall("./tbody/tr")]


def test_sections_hold_the_right_numbers(report):
    html = (report / "index.html").read_text(encoding="utf-8")
    root = ET.fromstring(html.split("\n", 1)[1])
    board = _rows(_section(root, "leaderboard").find(".//table"))
    models = [r[1] for r in board if r[0] not in ("rep.",) and len(r) > 2]
    assert models[:3] == ["deem-7b", "llava-1.5-7b", "always-yes"]
    assert any(r[0] == "rep." and r[1].startswith("DEEM") for r in board)
    paired = _rows(_section(root, "paired").find(".//table"))
    # 3 models on pope and robustvqa (3 pairs each) + 2 models on pope-c
    assert len(paired) == 7
    assert {(r[1], r[2]) for r in paired if r[0] == "pope-c-fake"} == {("deem-7b", "llava-1.5-7b")}
    yes_pairs = [r for r in paired if r[2] == "always-yes"]
    assert all(float(r[9]) < 1e-3 for r in yes_pairs)                # a real model beats always-yes clearly
    robust = _rows(_section(root, "robustness").find(".//table"))
    assert [r[0] for r in robust] == ["deem-7b", "llava-1.5-7b"]
    assert all(r[7] == "clean rows of this split" for r in robust)
    assert "<details>" in html


def test_compare_restricts_pairs_and_checks_names(tmp_path):
    runs = make_world(tmp_path)
    out = tmp_path / "out"
    assert main(["report", str(runs), "--out", str(out), "--compare", "always-yes", "deem-7b",
                 "--draws", "200", "--no-progress"]) == 0
    root = ET.fromstring((out / "index.html").read_text(encoding="utf-8").split("\n", 1)[1])
    paired = _rows(_section(root, "paired").find(".//table"))
    assert sorted(r[0] for r in paired) == ["pope-fake", "robustvqa-fake"]
    assert all({r[1], r[2]} == {"always-yes", "deem-7b"} for r in paired)
    assert main(["report", str(runs), "--out", str(out), "--compare", "deem-7", "always-yes"]) == 2
