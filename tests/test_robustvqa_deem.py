"""DEEM's robustvqa_test.json: exact export layout, import onto an image root, round trips."""

from __future__ import annotations

import json
import shutil

import pytest
from test_robustvqa_helpers import make_folder

from deem_eval.benchmarks.robustvqa.build import DEEM_CODE_TEMPLATE, BuildOptions, build_split
from deem_eval.benchmarks.robustvqa.deem_format import from_deem, to_deem, write_deem
from deem_eval.benchmarks.robustvqa.sources import imagenet_folder
from deem_eval.core.errors import DeemEvalError

RED, GREEN, BLUE = (200, 0, 0), (0, 200, 0), (0, 0, 200)


@pytest.fixture
def root(tmp_path):
    """DEEM's layout: datasets/robustvqa/{imagenet-a, imagenet-r, imagenetv2}."""
    base = tmp_path / "datasets" / "robustvqa"
    make_folder(base / "imagenet-a", {"n01498041": [RED, GREEN], "n01534433": [BLUE]})
    make_folder(base / "imagenet-r", {"n01443537": [RED]})
    make_folder(base / "imagenetv2", {"0": [GREEN], "999": [BLUE]})
    return base


def deem_file(tmp_path, data) -> str:
    path = tmp_path / "robustvqa_test.json"
    with open(path, "w") as handle:      # exactly as DEEM's script writes it
        json.dump(data, handle)
    return path


DEEM_DATA = {
    "imagenet_a": [
        {"file_name": "datasets/robustvqa/imagenet-a/n01498041/img0.png", "gt_caption": "stingray",
         "error_caption": "electric_ray"},
        {"file_name": "datasets/robustvqa/imagenet-a/n01498041/img1.png", "gt_caption": "stingray",
         "error_caption": "great_white_shark"},
        {"file_name": "datasets/robustvqa/imagenet-a/n01534433/img0.png", "gt_caption": "junco",
         "error_caption": "brambling"}],
    "imagenet_r": [
        {"file_name": "datasets/robustvqa/imagenet-r/n01443537/img0.png", "gt_caption": "goldfish",
         "error_caption": "tench"}],
    "imagenet_v2": [
        {"file_name": "datasets/robustvqa/imagenetv2/0/img0.png", "gt_caption": "tench", "error_caption": "goldfish"},
        {"file_name": "datasets/robustvqa/imagenetv2/999/img0.png", "gt_caption": "toilet_tissue",
         "error_caption": "paper_towel"}],
}


def test_import_maps_file_names_onto_the_image_root(root, tmp_path):
    split = from_deem(deem_file(tmp_path, DEEM_DATA), root)
    assert split.meta.count == 12 and split.meta.benchmark == "robustvqa"
    by_id = {s.id: s for s in split.samples}
    yes, no = by_id["robustvqa/a/n01498041/img1.png#yes"], by_id["robustvqa/a/n01498041/img1.png#no"]
    assert yes.image == "imagenet-a/n01498041/img1.png" and split.image_path(yes) == root / yes.image
    assert (yes.question, yes.answer) == ("Is stingray the main object in this image? Please answer yes or no.", "yes")
    assert (no.question, no.answer) == ("Is great_white_shark the main object in this image? Please answer yes or no.",
                                        "no")
    assert dict(no.group) == {"subset": "a", "class": "stingray", "negative": "great_white_shark",
                              "object": "great_white_shark"}
    assert {s.group["subset"] for s in split.samples} == {"a", "r", "v2"}
    assert split.meta.extra["label_mismatch_count"] == 0 and split.meta.extra["missing_count"] == 0


def test_round_trip_is_byte_identical(root, tmp_path):
    original = deem_file(tmp_path, DEEM_DATA)
    split = from_deem(original, root).save(tmp_path / "split")
    write_deem(split, tmp_path / "again.json")
    assert (tmp_path / "again.json").read_bytes() == original.read_bytes()
    repo_root = root.parent.parent            # DEEM's own data_root: file names are relative to it
    assert from_deem(original, repo_root).fingerprint == split.fingerprint
    code = from_deem(original, root, template=DEEM_CODE_TEMPLATE)
    assert code.samples[0].question.endswith("Please anwser yes or no")   # DEEM's own wording, on request


def test_build_export_import_gives_the_same_split(root, tmp_path):
    sources = [imagenet_folder("a", root / "imagenet-a"), imagenet_folder("r", root / "imagenet-r"),
               imagenet_folder("v2", root / "imagenetv2")]
    built = build_split(sources, BuildOptions(miner="random", progress=False), tmp_path / "out")
    data = to_deem(built)
    assert list(data) == ["imagenet_a", "imagenet_r", "imagenet_v2"]
    assert data["imagenet_v2"][1]["file_name"] == "datasets/robustvqa/imagenetv2/999/img0.png"
    assert data["imagenet_v2"][1]["gt_caption"] == "toilet_tissue"
    write_deem(built, tmp_path / "rvqa.json")
    imported = from_deem(tmp_path / "rvqa.json", root)
    assert imported.fingerprint == built.fingerprint    # same ids, images, questions, answers and groups
    moved = tmp_path / "elsewhere"                       # the data may live anywhere
    shutil.copytree(root, moved)
    assert from_deem(tmp_path / "rvqa.json", moved).fingerprint == built.fingerprint


def test_missing_images_mismatched_labels_and_duplicates(root, tmp_path, capsys):
    data = json.loads(json.dumps(DEEM_DATA))
    data["imagenet_a"].append({"file_name": "datasets/robustvqa/imagenet-a/n01498041/gone.png",
                               "gt_caption": "stingray", "error_caption": "tench"})
    data["imagenet_a"].append(dict(data["imagenet_a"][0]))
    data["imagenet_r"][0]["gt_caption"] = "tench"   # the misaligned-paths bug: folder says goldfish
    split = from_deem(deem_file(tmp_path, data), root)
    extra = split.meta.extra
    assert extra["missing_count"] == 1 and extra["missing_images"][0].endswith("gone.png")
    assert extra["duplicate_count"] == 1
    assert extra["label_mismatch_count"] == 1 and extra["label_mismatches"][0]["folder"] == "n01443537"
    err = capsys.readouterr().err
    assert "not found" in err and "misaligns paths and labels" in err
    assert split.meta.count == 12


def test_bad_files_and_wrong_roots(root, tmp_path):
    with pytest.raises(DeemEvalError, match="none of the 6 images .*--deem-prefix"):
        from_deem(deem_file(tmp_path, DEEM_DATA), tmp_path / "datasets")
    with pytest.raises(DeemEvalError, match="not found"):
        from_deem(tmp_path / "nope.json", root)
    (tmp_path / "bad.json").write_text('{"imagenet_a": [{"file_name": "x.jpg"}]}')
    with pytest.raises(DeemEvalError, match=r"imagenet_a\[0\] must have string fields"):
        from_deem(tmp_path / "bad.json", root)
    (tmp_path / "broken.json").write_text('{"imagenet_a": [')
    with pytest.raises(DeemEvalError, match="malformed JSON"):
        from_deem(tmp_path / "broken.json", root)


def test_export_needs_robustvqa_pairs(tiny_split):
    with pytest.raises(DeemEvalError, match="not a RobustVQA id"):
        to_deem(tiny_split)
