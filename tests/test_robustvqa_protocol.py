"""`--protocol deem`: DEEM's script's preprocessing, text embeddings, dtype, globs, template and negative rule.

Planted embeddings as in test_robustvqa_clip; here the text vectors have different norms, so normalising them
(deem-eval) and not (deem) rank the classes differently.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
from test_robustvqa_helpers import Planted, basis, make_folder, plant_clip

from deem_eval.benchmarks.robustvqa.build import BuildOptions, build_split
from deem_eval.benchmarks.robustvqa.options import DEEM_CODE_TEMPLATE, PAPER_TEMPLATE, deem_options
from deem_eval.benchmarks.robustvqa.sources import imagenet_folder
from deem_eval.core.errors import DeemEvalError
from deem_eval.core.splits import Split

RED, GREEN, BLUE = (200, 0, 0), (0, 200, 0), (0, 0, 200)


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory) -> Path:
    from hf_tiny import build_tiny_clip

    return build_tiny_clip(tmp_path_factory.mktemp("tiny-clip") / "clip")


def _as(root: Path, suffix: str) -> Path:
    """Rename every PNG under `root` to `suffix` (the content stays PNG; DEEM's globs look at names only)."""
    for png in list(root.rglob("*.png")):
        png.rename(png.with_suffix(suffix))
    return root


@pytest.fixture
def data(tmp_path: Path) -> tuple[Path, Path]:
    a = _as(make_folder(tmp_path / "imagenet-a", {"n01498041": [RED], "n01534433": [GREEN]}), ".jpg")
    v2 = _as(make_folder(tmp_path / "imagenetv2", {"134": [BLUE]}), ".jpeg")
    return a, v2


def planted(monkeypatch, tiny_clip: Path) -> Planted:
    from transformers import AutoTokenizer

    text = {"A photo of a stingray": basis(0), "A photo of a junco": 4.0 * basis(1),   # a long junco vector
            "A photo of a jay": basis(2), "A photo of a tench": basis(3), "A photo of a crane": basis(4)}
    images = {RED: 0.9 * basis(0) + 0.5 * basis(3) + 0.3 * basis(1),   # stingray; cos: tench > junco; raw: junco
              GREEN: 0.3 * basis(1) + 0.9 * basis(2),                  # junco; cos: jay first; raw: junco first
              BLUE: 0.9 * basis(4) + 0.3 * basis(2)}                   # crane; the other "crane" ties with it
    return plant_clip(monkeypatch, Planted(AutoTokenizer.from_pretrained(tiny_clip), text, images))


def _options(tiny_clip: Path, tmp_path: Path, deem: bool, **kw) -> BuildOptions:
    base = {"clip_model": str(tiny_clip), "cache_dir": tmp_path / "cache", "batch_size": 2, "workers": 1, "progress": False}
    return deem_options(**base, **kw) if deem else BuildOptions(**base, **kw)


def _mined(split: Split) -> dict[str, tuple[str, int]]:
    return {s.id.removesuffix("#yes"): (s.group["negative"], s.group["clip_rank"])
            for s in split.samples if s.answer == "yes"}


def test_deem_protocol_uses_raw_text_norms_deems_rule_and_template(monkeypatch, tiny_clip, data, tmp_path):
    a, v2 = data
    planted(monkeypatch, tiny_clip)
    ours = build_split([imagenet_folder("a", a), imagenet_folder("v2", v2)],
                       _options(tiny_clip, tmp_path, deem=False), tmp_path / "o1")
    planted(monkeypatch, tiny_clip)
    deem = build_split([imagenet_folder("a", a, protocol="deem"), imagenet_folder("v2", v2, protocol="deem")],
                       _options(tiny_clip, tmp_path, deem=True), tmp_path / "o2")
    assert _mined(ours) == {"robustvqa/a/n01498041/img0.jpg": ("tench", 1),
                            "robustvqa/a/n01534433/img0.jpg": ("jay", 2),
                            "robustvqa/v2/134/img0.jpeg": ("jay", 1)}
    assert _mined(deem) == {"robustvqa/a/n01498041/img0.jpg": ("junco", 2),    # the unnormalised junco wins
                            "robustvqa/a/n01534433/img0.jpg": ("jay", 1),     # right: top-2
                            # top-1 is the true crane (lower index of the tie), so top-2: the other "crane"
                            "robustvqa/v2/134/img0.jpeg": ("crane", 1)}
    question = next(s.question for s in deem.samples if s.id == "robustvqa/a/n01498041/img0.jpg#no")
    assert question == "Is junco the main object in this image? Please anwser yes or no"
    params = deem.meta.builder.params
    assert params["protocol"] == "deem" and params["clip_dtype"] == "float32" and "clip_scoring" in params
    assert params["template"] == DEEM_CODE_TEMPLATE and deem.name == "robustvqa-deemprotocol"
    assert ours.meta.builder.params["protocol"] == "deem-eval" and "clip_scoring" not in ours.meta.builder.params
    assert params["clip_cache_key"] != ours.meta.builder.params["clip_cache_key"]   # squashed pixels differ
    saved = Split.load(deem.save(tmp_path / "saved").directory)
    assert saved.meta.builder.params["protocol"] == "deem"
    assert saved.meta.extra["sources"]["v2"]["glob"] == "*/*.jpeg"


def test_squash_resizes_the_whole_image_where_crop_keeps_the_centre(tiny_clip):
    from PIL import Image

    from deem_eval.benchmarks.robustvqa.clip_model import load_clip

    wide = Image.new("RGB", (84, 28), GREEN)       # red | green | blue thirds: the crop sees only green
    wide.paste(Image.new("RGB", (28, 28), RED), (0, 0))
    wide.paste(Image.new("RGB", (28, 28), BLUE), (56, 0))
    crop = load_clip(str(tiny_clip), device="cpu").preprocess(wide)
    squash = load_clip(str(tiny_clip), device="cpu", resize="squash").preprocess(wide)
    assert crop.shape == squash.shape == (3, 28, 28)
    assert np.allclose(crop[:, :, 5:23], crop[:, :1, 14:15], atol=1e-5)   # centre crop: one colour
    left, right = squash[:, 14, 2], squash[:, 14, 25]
    assert left[0] > left[2] and right[2] > right[0]                      # squash: red left, blue right
    assert np.allclose(crop[:, 14, 14], squash[:, 14, 14], atol=0.2)     # both green in the middle


def test_deem_globs_list_only_top_level_jpg_and_jpeg(tmp_path):
    a = tmp_path / "imagenet-a" / "n01498041"
    for name in ("x.jpg", "y.JPG", "z.png", "w.jpeg", "sub/deep.jpg"):
        (a / name).parent.mkdir(parents=True, exist_ok=True)
        (a / name).write_bytes(b"")
    v2 = tmp_path / "v2" / "7"
    v2.mkdir(parents=True)
    for name in ("a.jpeg", "b.jpg"):
        (v2 / name).write_bytes(b"")
    keys = lambda source: [im.key for im in source.images]
    assert keys(imagenet_folder("a", a.parent, protocol="deem")) == ["n01498041/x.jpg"]
    assert len(keys(imagenet_folder("a", a.parent))) == 5
    assert keys(imagenet_folder("v2", v2.parent, protocol="deem")) == ["7/a.jpeg"]


def test_deem_protocol_refuses_options_that_would_change_it(tiny_clip, data, tmp_path):
    a, _ = data
    for clash in ({"template": PAPER_TEMPLATE}, {"dtype": "fp16"}, {"candidates": "subset"}, {"miner": "random"},
                  {"class_names": "openai"}, {"keep": "clip-wrong"}):
        with pytest.raises(DeemEvalError, match="--protocol deem fixes"):
            BuildOptions(**{"protocol": "deem", "template": DEEM_CODE_TEMPLATE, **clash}).check()
    assert deem_options(dtype="auto").clip_dtype == "float32" and BuildOptions(dtype="fp16").clip_dtype == "fp16"
    with pytest.raises(DeemEvalError, match="DEEM's file globs"):
        build_split([imagenet_folder("a", a)], _options(tiny_clip, tmp_path, deem=True), tmp_path / "out")
    with pytest.raises(DeemEvalError, match="--protocol"):
        BuildOptions(protocol="other").check()  # type: ignore[arg-type]


def test_cli_protocol_deem_defaults_to_deems_template(monkeypatch, data, tmp_path):
    from deem_eval.benchmarks.robustvqa import cli

    seen: dict[str, object] = {}

    def fake_build(sources, options, out):
        seen.update(options=options, globs=[s.glob for s in sources])
        raise SystemExit(0)

    monkeypatch.setattr("deem_eval.benchmarks.robustvqa.build.build_split", fake_build)
    builder = cli.RobustVQABuilder()
    parser = argparse.ArgumentParser()
    builder.add_arguments(parser)
    a, v2 = data
    args = parser.parse_args(["--imagenet-a", str(a), "--imagenet-v2", str(v2), "--protocol", "deem",
                              "--out", str(tmp_path / "out")])
    with pytest.raises(SystemExit):
        builder.run(args)
    options = seen["options"]
    assert options.protocol == "deem" and options.template == DEEM_CODE_TEMPLATE  # type: ignore[attr-defined]
    assert seen["globs"] == ["*/*.jpg", "*/*.jpeg"]
    args = parser.parse_args(["--imagenet-a", str(a), "--out", str(tmp_path / "out")])
    with pytest.raises(SystemExit):
        builder.run(args)
    assert seen["options"].template == PAPER_TEMPLATE and seen["globs"] == [None]  # type: ignore[attr-defined]
