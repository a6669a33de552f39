"""RobustVQA builds: determinism, stable ids, templates, names, and the `deem-eval build robustvqa` CLI."""

from __future__ import annotations

import json
import shutil

import pytest
from test_robustvqa_helpers import make_folder

from deem_eval.benchmarks.robustvqa.build import BuildOptions, build_split, split_name
from deem_eval.benchmarks.robustvqa.sources import imagenet_folder
from deem_eval.cli import main
from deem_eval.core.errors import DeemEvalError
from deem_eval.core.splits import Split

COLOURS = [(i * 37 % 256, i * 91 % 256, i * 53 % 256) for i in range(1, 9)]


@pytest.fixture
def folders(tmp_path):
    base = tmp_path / "data"
    a = make_folder(base / "imagenet-a", {"n01498041": COLOURS[:4], "n01534433": COLOURS[4:]})
    r = make_folder(base / "imagenet-r", {"n01443537": COLOURS[:3]})
    v2 = make_folder(base / "imagenetv2", {"1": COLOURS[:2], "500": COLOURS[2:4]})
    return a, r, v2


def sources(a, r, v2):
    return [imagenet_folder("a", a), imagenet_folder("r", r), imagenet_folder("v2", v2)]


def test_same_inputs_and_seed_give_the_same_fingerprint_whatever_the_workers(folders, tmp_path):
    one = build_split(sources(*folders), BuildOptions(miner="random", batch_size=1, workers=1, progress=False),
                      tmp_path / "o1")
    many = build_split(sources(*folders), BuildOptions(miner="random", batch_size=5, workers=4, progress=False),
                       tmp_path / "o2")
    assert one.fingerprint == many.fingerprint
    assert one.meta.builder.source_fingerprint == many.meta.builder.source_fingerprint
    other = build_split(sources(*folders), BuildOptions(miner="random", seed=1, progress=False), tmp_path / "o3")
    assert other.fingerprint != one.fingerprint
    assert {s.id for s in other.samples} == {s.id for s in one.samples}


def test_ids_images_and_questions(folders, tmp_path):
    split = build_split(sources(*folders), BuildOptions(miner="random", progress=False), tmp_path / "out")
    assert split.meta.count == 2 * 15
    yes = next(s for s in split.samples if s.id == "robustvqa/v2/500/img1.png#yes")
    assert yes.image == "imagenetv2/500/img1.png" and yes.answer == "yes"
    assert yes.question == "Is cliff_dwelling the main object in this image? Please answer yes or no."
    assert split.meta.image_root == str(folders[0].parent)
    for s in split.samples:
        assert s.group["negative"] != s.group["class"]
        assert s.group["object"] == (s.group["class"] if s.answer == "yes" else s.group["negative"])
    a_negatives = {s.group["negative"] for s in split.samples if s.group["subset"] == "a"}
    subset = build_split(sources(*folders), BuildOptions(miner="random", candidates="subset", progress=False),
                         tmp_path / "sub")
    from deem_eval.benchmarks.robustvqa.classes import imagenet_rows
    a_names = {r.deem_name for r in imagenet_rows() if r.imagenet_a}
    assert {s.group["negative"] for s in subset.samples if s.group["subset"] == "a"} <= a_names
    assert len(a_negatives) > 1


def test_moving_the_data_keeps_the_fingerprint(folders, tmp_path):
    first = build_split(sources(*folders), BuildOptions(miner="random", progress=False), tmp_path / "o1")
    moved = tmp_path / "moved" / "deeper"
    shutil.copytree(folders[0].parent, moved)
    again = build_split(sources(moved / "imagenet-a", moved / "imagenet-r", moved / "imagenetv2"),
                        BuildOptions(miner="random", progress=False), tmp_path / "o2")
    assert again.fingerprint == first.fingerprint and again.meta.image_root == str(moved)


def test_templates_names_and_option_checks(folders, tmp_path):
    a = [imagenet_folder("a", folders[0], names="openai")]
    split = build_split(a, BuildOptions(miner="random", class_names="openai", template="Q: {class}?",
                                        progress=False), tmp_path / "o")
    assert split.samples[1].question == "Q: stingray?" and split.name.startswith("robustvqa-random-openainames-tpl")
    assert split_name(BuildOptions()) == "robustvqa"
    assert split_name(BuildOptions(name="mine")) == "mine"
    with pytest.raises(DeemEvalError, match="must contain"):
        build_split(a, BuildOptions(miner="random", template="no placeholder"), tmp_path / "o")
    with pytest.raises(DeemEvalError, match="unknown negative miner 'clp'.*'clip'"):
        build_split(a, BuildOptions(miner="clp"), tmp_path / "o")
    with pytest.raises(DeemEvalError, match="nothing to build"):
        build_split([], BuildOptions(miner="random"), tmp_path / "o")


def test_cli_build_export_and_import(folders, tmp_path, capsys):
    a, r, v2 = folders
    out, deem = tmp_path / "split", tmp_path / "robustvqa_test.json"
    rc = main(["build", "robustvqa", "--imagenet-a", str(a), "--imagenet-r", str(r), "--imagenet-v2", str(v2),
               "--miner", "random", "--seed", "3", "--no-progress", "--out", str(out), "--to-deem", str(deem)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "built robustvqa-random: 30 questions" in printed and "a: source imagenet-a, images 8" in printed
    split = Split.load(out)
    data = json.loads(deem.read_text())
    assert sorted(data) == ["imagenet_a", "imagenet_r", "imagenet_v2"] and len(data["imagenet_a"]) == 8
    assert data["imagenet_a"][0]["file_name"] == "datasets/robustvqa/imagenet-a/n01498041/img0.png"
    again = tmp_path / "again.json"
    assert main(["build", "robustvqa", "--split-dir", str(out), "--to-deem", str(again)]) == 0
    assert again.read_bytes() == deem.read_bytes()
    assert main(["build", "robustvqa", "--from-deem", str(deem), "--image-root", str(a.parent),
                 "--out", str(tmp_path / "imported")]) == 0
    assert Split.load(tmp_path / "imported").fingerprint == split.fingerprint


def test_cli_bad_input_is_a_message_not_a_traceback(folders, tmp_path, capsys):
    rc = main(["build", "robustvqa", "--imagenet-a", str(folders[2]), "--miner", "random", "--out", str(tmp_path)])
    assert rc == 2
    err = capsys.readouterr().err
    assert "ImageNet-A folder" in err and "Traceback" not in err
    assert main(["build", "robustvqa", "--from-deem", str(tmp_path / "x.json"), "--out", str(tmp_path)]) == 2
    assert "--image-root" in capsys.readouterr().err
    assert main(["build", "robustvqa", "--miner", "random", "--out", str(tmp_path / "o")]) == 2
    assert "nothing to build" in capsys.readouterr().err
