"""DEEM's multiple-choice subsets (`imagenet_s`, `imagenet_d`) are not RobustVQA yes/no pairs.

DEEM's ImageNetEvalDataset asks phases 's' and 'd' as "What is the main object in this image? Choose from
the following list:[x, y]" and scores the class name. Importing them as yes/no pairs would add a different
test to the pooled overall accuracy, so `--from-deem` refuses them (naming file, keys and entries), or
leaves them out with `--skip-multiple-choice`, recorded in split.json.
"""

from __future__ import annotations

import json

import pytest
from test_robustvqa_helpers import make_folder

from deem_eval.benchmarks.robustvqa.deem_format import from_deem
from deem_eval.cli import main
from deem_eval.core.errors import DeemEvalError
from deem_eval.core.splits import Split

RED, GREEN, BLUE = (200, 0, 0), (0, 200, 0), (0, 0, 200)

YES_NO = {
    "imagenet_a": [{"file_name": "datasets/robustvqa/imagenet-a/n01498041/img0.png", "gt_caption": "stingray",
                    "error_caption": "electric_ray"}],
    "imagenet_v2": [{"file_name": "datasets/robustvqa/imagenetv2/0/img0.png", "gt_caption": "tench",
                     "error_caption": "goldfish"}],
}
MULTIPLE_CHOICE = {
    "imagenet_s": [{"file_name": "datasets/robustvqa/imagenet-s/n01498041/img0.png", "gt_caption": "stingray",
                    "error_caption": "tench"},
                   {"file_name": "datasets/robustvqa/imagenet-s/n01498041/img1.png", "gt_caption": "stingray",
                    "error_caption": "goldfish"}],
    "imagenet_d": [{"file_name": "datasets/robustvqa/imagenet-d/background/img0.png", "gt_caption": "tench",
                    "error_caption": "goldfish"}],
}


@pytest.fixture
def root(tmp_path):
    base = tmp_path / "datasets" / "robustvqa"
    make_folder(base / "imagenet-a", {"n01498041": [RED]})
    make_folder(base / "imagenetv2", {"0": [GREEN]})
    make_folder(base / "imagenet-s", {"n01498041": [BLUE, RED]})     # present, so only the format can refuse
    make_folder(base / "imagenet-d", {"background": [GREEN]})
    return base


def deem_file(tmp_path, data):
    path = tmp_path / "robustvqa_test.json"
    with open(path, "w") as handle:
        json.dump(data, handle)
    return path


def test_multiple_choice_entries_are_refused_with_file_and_entries(root, tmp_path):
    path = deem_file(tmp_path, {**YES_NO, **MULTIPLE_CHOICE})
    with pytest.raises(DeemEvalError) as info:
        from_deem(path, root)
    message = str(info.value)
    assert str(path) in message
    assert "imagenet_s (2 entries, e.g. datasets/robustvqa/imagenet-s/n01498041/img0.png)" in message
    assert "imagenet_d (1 entry, e.g. datasets/robustvqa/imagenet-d/background/img0.png)" in message
    assert "multiple choice" in message and "--skip-multiple-choice" in message


def test_skip_leaves_them_out_and_records_it(root, tmp_path, capsys):
    mixed = from_deem(deem_file(tmp_path, {**YES_NO, **MULTIPLE_CHOICE}), root, multiple_choice="skip")
    assert {s.group["subset"] for s in mixed.samples} == {"a", "v2"}       # no "s" / "d" subset enters overall
    assert mixed.meta.count == 4
    assert mixed.meta.extra["multiple_choice_skipped"] == {"imagenet_s": 2, "imagenet_d": 1}
    assert mixed.meta.builder.params["multiple_choice"] == "skip"
    assert "left out DEEM's multiple-choice subset(s)" in capsys.readouterr().err
    (tmp_path / "plain").mkdir()
    plain = from_deem(deem_file(tmp_path / "plain", YES_NO), root)
    assert plain.fingerprint == mixed.fingerprint                          # the same questions as without them
    assert "multiple_choice" not in plain.meta.builder.params              # other imports: split.json as before
    assert "multiple_choice_skipped" not in plain.meta.extra


def test_empty_multiple_choice_lists_are_no_obstacle(root, tmp_path):
    split = from_deem(deem_file(tmp_path, {**YES_NO, "imagenet_s": [], "imagenet_d": []}), root)
    assert split.meta.count == 4 and "multiple_choice" not in split.meta.builder.params


def test_only_multiple_choice_left(root, tmp_path):
    with pytest.raises(DeemEvalError, match="only multiple-choice subsets"):
        from_deem(deem_file(tmp_path, MULTIPLE_CHOICE), root, multiple_choice="skip")
    with pytest.raises(DeemEvalError, match="multiple_choice must be one of refuse, skip"):
        from_deem(deem_file(tmp_path, YES_NO), root, multiple_choice="pool")


def test_cli(root, tmp_path, capsys):
    path = deem_file(tmp_path, {**YES_NO, **MULTIPLE_CHOICE})
    command = ["build", "robustvqa", "--from-deem", str(path), "--image-root", str(root)]
    assert main([*command, "--out", str(tmp_path / "refused")]) == 2
    assert "imagenet_s (2 entries" in capsys.readouterr().err and not (tmp_path / "refused").exists()
    assert main([*command, "--skip-multiple-choice", "--out", str(tmp_path / "split")]) == 0
    split = Split.load(tmp_path / "split")
    assert split.meta.extra["multiple_choice_skipped"] == {"imagenet_s": 2, "imagenet_d": 1}
    assert main(["build", "robustvqa", "--imagenet-a", str(root / "imagenet-a"), "--miner", "random",
                 "--skip-multiple-choice", "--out", str(tmp_path / "x")]) == 2
    assert "--skip-multiple-choice applies to --from-deem" in capsys.readouterr().err
