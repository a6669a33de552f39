"""The bundled mini RobustVQA and the `robustvqa` benchmark's choice of split."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from deem_eval.benchmarks.robustvqa.benchmark import Config, RobustVQA
from deem_eval.benchmarks.robustvqa.mini import (
    A_CONDITIONS,
    R_STYLES,
    MiniConfig,
    build_mini,
    hard_negative,
    plan,
    similarity,
)
from deem_eval.core.errors import DeemEvalError
from deem_eval.core.splits import Split

SMALL = MiniConfig(images_per_subset=10, size=48)


def test_default_plan_has_300_images_per_subset_and_every_shift():
    images = plan(MiniConfig())
    per_subset = Counter(im.subset for im in images)
    assert per_subset == {"a": 300, "r": 300, "v2": 300}
    assert {im.variant for im in images if im.subset == "r"} == set(R_STYLES)
    assert {im.variant for im in images if im.subset == "a"} == set(A_CONDITIONS)
    assert {im.render["style"] for im in images if im.subset == "v2"} == {"filled"}
    small = [im for im in images if im.variant == "small"]
    assert all(im.render["scale"] < 0.35 for im in small)
    assert len({im.category for im in images if im.subset == "v2"}) == 32


def test_mini_build_is_deterministic_and_well_formed(tmp_path):
    one = build_mini(tmp_path / "one", SMALL).save(tmp_path / "one")
    two = build_mini(tmp_path / "two", SMALL)
    assert one.fingerprint == two.fingerprint and one.meta.count == 60
    assert (tmp_path / "one" / "images" / "r" / "0003.png").read_bytes() == \
        (tmp_path / "two" / "images" / "r" / "0003.png").read_bytes()
    loaded = Split.load(tmp_path / "one")
    assert all(loaded.image_path(s).is_file() for s in loaded.samples)
    for s in loaded.samples:
        assert s.group["negative"] != s.group["class"]
        assert s.question == f"Is {s.group['object']} the main object in this image? Please answer yes or no."
    assert Counter(s.answer for s in loaded.samples) == {"yes": 30, "no": 30}
    other = build_mini(tmp_path / "three", MiniConfig(images_per_subset=10, size=48, seed=1))
    assert other.fingerprint != one.fingerprint


def test_hard_negatives_follow_the_similarity_rule():
    images = plan(MiniConfig(images_per_subset=40))
    for im in images:
        negative = hard_negative(im, 0)
        others = sorted((similarity(im.category, d, im.painted), d) for d in
                        {x.category for x in images} - {im.category})
        assert negative in [d for _, d in others[-3:]]           # among the 3 most similar
    odd = [im for im in images if im.variant == "odd-colour"]
    assert odd and all(math.dist(im.painted, im.render["colour"]) == 0 for im in odd)
    # an odd colour pulls the negative towards categories of that colour
    assert similarity("banana", "sun", (250, 200, 30)) > similarity("banana", "sun", (30, 60, 200))
    # sketches carry no colour: only supercategory and shape count
    assert similarity("dog", "cat", None) == pytest.approx(0.5 + 0.25 * (1 - min(1, abs(math.log(
        _aspect("dog") / _aspect("cat"))))))


def _aspect(name):
    from deem_eval.benchmarks.synthscenes import category_by_name

    return category_by_name(name).aspect


def test_benchmark_uses_the_mini_then_a_built_split(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DEEM_EVAL_HOME", str(tmp_path / "home"))
    bench = RobustVQA(Config(images_per_subset=6, size=40))
    split = bench.load()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bundled mini RobustVQA" in err[0]
    assert split.name == "robustvqa-mini" and {s.group["subset"] for s in split.samples} == {"a", "r", "v2"}
    assert bench.load().fingerprint == split.fingerprint             # cached, same split
    with pytest.raises(DeemEvalError, match="no RobustVQA split built"):
        RobustVQA(Config(source="built")).load()
    built = tmp_path / "home" / "splits" / "robustvqa"
    split.save(built)                                               # pretend `deem-eval build robustvqa` ran
    capsys.readouterr()
    assert RobustVQA(Config(images_per_subset=6, size=40)).load().directory == built
    assert "using the split built at" in capsys.readouterr().err
    assert RobustVQA(Config(source="mini", images_per_subset=6, size=40)).load().directory != built
    assert RobustVQA().load(split_dir=built).fingerprint == split.fingerprint


def test_split_dir_of_another_benchmark_is_refused(tiny_split):
    with pytest.raises(DeemEvalError, match="belongs to benchmark 'tiny'"):
        RobustVQA().load(split_dir=tiny_split.directory)


def test_run_cli_reports_subsets_separately(tmp_path, monkeypatch, capsys):
    from deem_eval.cli import main

    monkeypatch.setenv("DEEM_EVAL_HOME", str(tmp_path / "home"))
    rc = main(["--model", "random", "--bench", "robustvqa", "-B", "images_per_subset=6", "-B", "size=40",
               "--out", str(tmp_path / "runs"), "--no-progress"])
    assert rc == 0
    out = capsys.readouterr().out
    for subset in ("subset=a", "subset=r", "subset=v2"):
        assert subset in out
