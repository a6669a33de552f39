"""The report's samples section on a small hand-made world: counts, filter flags, ordering, escaping of hostile
questions / outputs, placeholders for missing or broken images, the size cap, and the filters in chromium."""

from __future__ import annotations

import base64
import io
import shutil
import subprocess
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PIL import Image

from deem_eval.cli import main
from deem_eval.core.splits import BuilderInfo, Sample, Split
from deem_eval.run.rundir import RunDir, RunManifest, SampleRecord
from deem_eval.run.runner import finalize
from deem_eval.scoring.parsing import STRICT

HOSTILE_Q = 'Is there a <script>alert("q")</script> & a </div> in the image?'
HOSTILE_OUT = '<img src=x onerror=alert(1)> "maybe" & </table>'

# id: (gold, image, {model: (output, yes_prob)})  -- B does not answer s6
WORLD = {
    "s0": ("yes", "ok0.png", {"A": ("Yes.", 0.9), "B": ("Yes.", 0.7)}),
    "s1": ("no", "ok1.png", {"A": ("Yes.", 0.95), "B": ("No.", 0.2)}),       # A confidently wrong
    "s2": ("yes", "ok2.png", {"A": ("No.", 0.4), "B": ("No.", 0.3)}),        # both wrong, agree, not confident
    "s3": ("no", "ok3.png", {"A": ("No.", 0.1), "B": ("Yes.", 0.85)}),       # B confidently wrong
    "s4": ("yes", "ok4.png", {"A": (HOSTILE_OUT, None), "B": ("Yes.", 0.6)}),  # A unparseable: wrong, disagree
    "s5": ("no", "missing.png", {"A": ("No.", 0.3), "B": ("No.", 0.45)}),    # image file absent
    "s6": ("yes", "broken.png", {"A": ("Yes.", 0.99)}),                      # broken image, one answer only
}
FLAGS = {  # sid: (error, disagree, confident, confidence)
    "s0": (0, 0, 0, 0.0), "s1": (1, 1, 1, 0.95), "s2": (1, 0, 0, 0.7), "s3": (1, 1, 1, 0.85),
    "s4": (1, 1, 0, 0.0), "s5": (0, 0, 0, 0.0), "s6": (0, 0, 0, 0.0),
}


def _save_image(path, size=(200, 150), seed=0):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)


def _split(directory, name, samples):
    split = Split.create(name=name, benchmark="pope", samples=samples, image_root="images",
                         builder=BuilderInfo("fake", {"name": name}, 0))
    return split.save(directory, hash_images=False)


def _run(root, split, label, answers):
    """A scored run of `label`: answers maps sample id -> (output, yes_prob)."""
    manifest = RunManifest(
        run_key=f"{label}-{split.fingerprint[:8]}", model=label, model_label=label, adapter_config={},
        split_name=split.name, split_fingerprint=split.fingerprint, split_dir=str(split.directory),
        benchmark=split.meta.benchmark, seed=0, limit=None, batch_size=8, scoring="generate", parser="strict",
        deem_eval_version="test", git_sha=None, library_versions={}, device="cpu",
        started_utc="2026-01-01T00:00:00.000000Z", finished_utc="2026-01-01T00:00:59.000000Z")
    run = RunDir.create(root / f"run_{label}_{split.name}", manifest)
    by_id = {s.id: s for s in split.samples}
    run.append_records(SampleRecord(sid, out, STRICT.parse(out), by_id[sid].answer, p, 0.01,
                                    question=by_id[sid].question, image=by_id[sid].image)
                       for sid, (out, p) in answers.items())
    finalize(run, split, STRICT, [by_id[i] for i in answers])
    return run.path


def make_world(root):
    images = root / "tiny" / "images"
    images.mkdir(parents=True)
    for i in range(5):
        _save_image(images / f"ok{i}.png", seed=i)
    (images / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    samples = [Sample(sid, img, HOSTILE_Q if sid == "s4" else f"Is there a dog in image {sid}?", gold,
                      {"subset": "random", "image_id": sid}) for sid, (gold, img, _) in WORLD.items()]
    split = _split(root / "tiny", "tiny-split", samples)
    runs = root / "runs"
    for label in ("A", "B"):
        _run(runs, split, label, {sid: m[label] for sid, (_, _, m) in WORLD.items() if label in m})
    return runs


def _report(root, runs, *extra):
    out = root / "out"
    assert main(["report", str(runs), "--out", str(out), "--draws", "200", "--no-progress", *extra]) == 0
    html = (out / "index.html").read_text(encoding="utf-8")
    return html, ET.fromstring(html.split("\n", 1)[1])


def _cards(root):
    return [d for d in root.iter("div") if d.get("class") == "sample"]


def _card_id(card):
    return next(c.text for c in card.iter("code"))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("samples")
    runs = make_world(root)
    html, tree = _report(root, runs)
    return root, html, tree


def test_section_counts_and_flags(world):
    _, _, tree = world
    section = next(s for s in tree.iter("section") if s.get("id") == "samples")
    box = next(d for d in section.iter("div") if d.get("class") == "samples")
    assert (box.get("data-split"), box.get("data-total"), box.get("data-errors"), box.get("data-disagreements"),
            box.get("data-confident-mistakes")) == ("tiny-split", "7", "4", "3", "2")
    cards = _cards(section)
    assert len(cards) == 7
    got = {_card_id(c): (int(c.get("data-error")), int(c.get("data-disagree")), int(c.get("data-confident")),
                         float(c.get("data-conf"))) for c in cards}
    assert got == FLAGS
    order = [_card_id(c) for c in cards]
    # most confident mistakes first, then the other disagreement, the other error, the correct ones
    assert order[:4] == ["s1", "s3", "s4", "s2"] and set(order[4:]) == {"s0", "s5", "s6"}
    by_id = {_card_id(c): c for c in cards}
    assert by_id["s1"].get("data-wrong") == "0" and by_id["s1"].get("data-confwrong") == "0"   # model A
    assert by_id["s3"].get("data-wrong") == "1" and by_id["s3"].get("data-confwrong") == "1"   # model B
    assert by_id["s2"].get("data-wrong") == "0 1" and by_id["s2"].get("data-confwrong") == ""
    buttons = {b.get("data-filter"): int(b.find("span").text) for b in section.iter("button")}
    assert buttons == {"all": 7, "error": 4, "disagree": 3, "confident": 2}
    # a model that did not answer: its row says so; answers show P(yes)
    rows = ["|".join("".join(td.itertext()) for td in tr) for tr in by_id["s6"].iter("tr")]
    assert rows == ["A|yes|0.99", "B|not answered"]
    assert [tr.get("class") for tr in by_id["s1"].iter("tr")] == ["bad", "ok"]


def test_thumbnails_and_placeholders(world):
    _, _, tree = world
    by_id = {_card_id(c): c for c in _cards(tree)}
    for sid in ("s0", "s1", "s2", "s3", "s4"):
        img = by_id[sid].find("img")
        assert img is not None and img.get("src").startswith("data:image/jpeg;base64,")
        thumb = Image.open(io.BytesIO(base64.b64decode(img.get("src").split(",", 1)[1])))
        assert max(thumb.size) == 96 and thumb.size == (96, 72)          # 200x150 downscaled, aspect kept
    for sid, why in (("s5", "not found"), ("s6", "cannot read")):
        assert by_id[sid].find("img") is None
        missing = next(d for d in by_id[sid].iter("div") if "missing" in (d.get("class") or ""))
        assert missing.text == "no image" and why in missing.get("title")


def test_hostile_question_and_output_are_escaped(world):
    _, html, tree = world
    assert HOSTILE_Q not in html and HOSTILE_OUT not in html
    assert "&lt;script&gt;alert(&quot;q&quot;)&lt;/script&gt; &amp; a &lt;/div&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert html.count("<script") == 1                     # only the filters
    card = next(c for c in _cards(tree) if _card_id(c) == "s4")
    question = next(d for d in card.iter("div") if d.get("class") == "q")
    assert question.text == HOSTILE_Q                      # round-trips as text, not markup
    out = next(s for s in card.iter("span") if s.get("class") == "out")
    assert out.text == HOSTILE_OUT and out.get("title") == HOSTILE_OUT
    assert [tr.get("class") for tr in card.iter("tr")] == ["bad", "ok"]   # unparseable output is wrong


def test_size_cap_and_option(tmp_path):
    images = tmp_path / "big" / "images"
    images.mkdir(parents=True)
    samples = []
    for i in range(60):
        _save_image(images / f"{i}.png", size=(640, 480), seed=i)
        for gold in ("yes", "no"):
            samples.append(Sample(f"b{i:03d}{gold}", f"{i}.png", "Is there a cat?", gold, {"image_id": str(i)}))
    split = _split(tmp_path / "big", "big-split", samples)
    runs = tmp_path / "runs"
    for k, label in enumerate(("A", "B", "C")):
        rng = np.random.default_rng(k)
        answers = {}
        for s in split.samples:
            p = float(rng.random())
            answers[s.id] = ("Yes." if p >= 0.5 else "No.", p)
        _run(runs, split, label, answers)
    html, tree = _report(tmp_path, runs, "--samples", "12")
    cards = _cards(tree)
    assert len(cards) == 12
    box = next(d for d in tree.iter("div") if d.get("class") == "samples")
    assert box.get("data-total") == "120"
    flags = [(c.get("data-confident"), c.get("data-disagree"), c.get("data-error")) for c in cards]
    assert flags.count(("1", "1", "1")) + flags.count(("1", "0", "1")) >= 3          # a quarter confident
    assert sum(f[2] == "0" for f in flags) >= 3                                        # a quarter correct
    confs = [float(c.get("data-conf")) for c in cards if c.get("data-confident") == "1"]
    assert confs == sorted(confs, reverse=True) and confs[0] > 0.95
    section = html.split('<section id="samples">', 1)[1].split("</section>", 1)[0]
    assert len(section) < 12 * 12_000                     # 96 px thumbnails, not 640x480 images
    html0, tree0 = _report(tmp_path, runs, "--samples", "0")
    assert not _cards(tree0) and "<script" not in html0
    assert main(["report", str(runs), "--out", str(tmp_path / "o2"), "--samples", "-1"]) == 2


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_filters_run_in_chromium(world):
    root, _, _ = world
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
             f"--user-data-dir={root / 'profile'}"]
    index = root / "out" / "index.html"
    result = subprocess.run([CHROMIUM, *flags, "--dump-dom", index.as_uri()], capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout
    assert '<span class="count">7 shown</span>' in dom        # the inline script ran
    assert dom.count('<div class="sample"') == 7 and "data:image/jpeg;base64," in dom
    assert "<script>alert" not in dom and "onerror=alert(1)>" not in dom
    # click the filters (a copy of the page with a script that clicks them before the DOM is dumped)
    clicks = [("error", "", 4), ("disagree", "", 3), ("confident", "", 2),
              ("error", "1", 2), ("confident", "0", 1)]     # with model B (index 1) / A (index 0) selected
    page = index.read_text(encoding="utf-8")
    for name, model, want in clicks:
        script = (f"<script>var s = document.querySelector('select[data-model]'); s.value = '{model}';"
                  "s.dispatchEvent(new Event('change'));"
                  f"document.querySelector('button[data-filter={name}]').click();</script>")
        clicked = index.with_name(f"clicked-{name}{model}.html")
        clicked.write_text(page.replace("</body>", script + "</body>"), encoding="utf-8")
        result = subprocess.run([CHROMIUM, *flags, "--dump-dom", clicked.as_uri()], capture_output=True,
                                text=True, timeout=120, check=False)
        assert f'<span class="count">{want} shown</span>' in result.stdout, (name, model)
        assert result.stdout.count('<div class="sample"') == 7 and result.stdout.count(" hidden=") == 7 - want
