"""The bundled `pope` benchmark (SynthScenes) and `deem-eval build pope` in all its modes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deem_eval.benchmarks.pope.benchmark import PopeBenchmark, PopeConfig
from deem_eval.cli import main
from deem_eval.core.options import parse_options
from deem_eval.core.registry import BENCHMARKS, BUILDERS
from deem_eval.core.splits import Split

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "pope"
needs_fixtures = pytest.mark.skipif(not FIXTURES.is_dir(), reason=f"published POPE fixtures not found at {FIXTURES}")
SMALL = {"num_images": "40", "img_num": "20", "size": "64"}


def test_registered():
    assert BENCHMARKS.get("pope") is PopeBenchmark
    assert BUILDERS.get("pope").name == "pope"


def test_bundled_benchmark_builds_three_subsets_in_one_split(tmp_path):
    pytest.importorskip("deem_eval.benchmarks.synthscenes")
    config = parse_options(PopeConfig, SMALL, what="benchmark pope")
    split = PopeBenchmark(config).load()
    assert split.meta.benchmark == "pope" and split.name == "pope-synthscenes-s0"
    assert split.meta.count == 3 * 20 * 6
    subsets = {s.group["subset"] for s in split.samples}
    assert subsets == {"random", "popular", "adversarial"}
    assert all(set(s.group) == {"subset", "object", "image_id"} for s in split.samples)
    assert all(split.image_path(s).is_file() for s in split.samples)
    assert split.samples[0].id == "pope-synthscenes-adversarial/000001"
    extra = split.meta.extra["pope"]
    assert extra["images_total"] == 40 and extra["images_chosen"] == 20
    assert extra["images_eligible"] + extra["images_skipped_too_few_objects"] == 40
    # built once: loading again reuses the cache; a rebuild elsewhere gives the same fingerprint
    assert PopeBenchmark(config).load().directory == split.directory
    rebuilt = PopeBenchmark(config).build(tmp_path / "rebuild")
    assert rebuilt.fingerprint == split.fingerprint
    other = PopeBenchmark(parse_options(PopeConfig, {**SMALL, "seed": "1"}, what="pope")).build(tmp_path / "s1")
    assert other.fingerprint != split.fingerprint


def test_bundled_options_and_split_dir(tmp_path):
    pytest.importorskip("deem_eval.benchmarks.synthscenes")
    config = parse_options(PopeConfig, {**SMALL, "subsets": "popular"}, what="pope")
    split = PopeBenchmark(config).load()
    assert {s.group["subset"] for s in split.samples} == {"popular"}
    assert PopeBenchmark().load(split_dir=split.directory).fingerprint == split.fingerprint
    with pytest.raises(Exception, match="img_num must be between"):
        parse_options(PopeConfig, {"num_images": "10", "img_num": "20"}, what="pope")
    with pytest.raises(Exception, match="subsets must be some of"):
        parse_options(PopeConfig, {"subsets": "rare"}, what="pope")


def coco_file(tmp_path: Path, n_images: int = 12) -> tuple[Path, Path]:
    names = ["person", "car", "dog", "cat", "bus", "tree", "cup", "bowl", "sink", "oven"]
    images_dir = tmp_path / "val"
    images_dir.mkdir()
    doc = {"images": [], "annotations": [], "categories": [{"id": i + 1, "name": n} for i, n in enumerate(names)]}
    for i in range(n_images):
        doc["images"].append({"id": i + 1, "file_name": f"img{i:03d}.jpg"})
        (images_dir / f"img{i:03d}.jpg").write_bytes(b"jpeg")
        for k in range(i % 6):        # 0..5 objects
            doc["annotations"].append({"id": 100 * i + k, "image_id": i + 1, "category_id": (i + 3 * k) % 10 + 1})
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(doc))
    return path, images_dir


def test_cli_samples_from_coco(tmp_path, capsys):
    annotations, images = coco_file(tmp_path)
    out = tmp_path / "split"
    code = main(["build", "pope", "--coco-annotations", str(annotations), "--images", str(images), "--seed", "3",
                 "--img-num", "5", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "12 images, 6 with at least 3 objects (6 skipped with fewer); chose 5 with seed 3" in printed
    split = Split.load(out)
    assert split.name == "pope-coco-s3" and split.meta.count == 3 * 5 * 6
    assert Path(split.meta.image_root) == images.resolve()
    assert split.meta.builder.params["img_num"] == 5 and split.meta.builder.seed == 3
    # the same command again: the same split, byte for byte
    main(["build", "pope", "--coco-annotations", str(annotations), "--images", str(images), "--seed", "3",
          "--img-num", "5", "--out", str(tmp_path / "again")])
    assert (tmp_path / "again" / "samples.jsonl").read_bytes() == (out / "samples.jsonl").read_bytes()
    # an explicit image list, taken from an exported question file
    main(["build", "pope", "--to-published", str(out), "--out", str(tmp_path / "exported")])
    exported = tmp_path / "exported" / "coco_pope_popular.json"
    for seed in ("3", "99"):
        main(["build", "pope", "--coco-annotations", str(annotations), "--images", str(images), "--seed", seed,
              "--images-list", str(exported), "--subsets", "popular,adversarial", "--out", str(tmp_path / seed)])
    same_seed, other_seed = Split.load(tmp_path / "3"), Split.load(tmp_path / "99")
    original = {s.id: s for s in split.samples if s.group["subset"] in ("popular", "adversarial")}
    assert {s.id: s for s in same_seed.samples} == original
    # popular questions never depend on the seed once the images are fixed (adversarial ones only through
    # random fallbacks, which this tiny vocabulary needs)
    assert {s.id: s for s in other_seed.samples if s.group["subset"] == "popular"} == \
        {k: v for k, v in original.items() if v.group["subset"] == "popular"}


def test_cli_bad_input(tmp_path, capsys):
    annotations, images = coco_file(tmp_path)
    code = main(["build", "pope", "--coco-annotations", str(annotations), "--images", str(images),
                 "--img-num", "7", "--out", str(tmp_path / "x")])
    assert code == 2
    assert "only 6 of 12 images have at least 3 objects (6 have fewer), but 7 were asked for" in capsys.readouterr().err
    code = main(["build", "pope", "--coco-annotations", str(annotations), "--out", str(tmp_path / "x")])
    assert code == 2 and "--images DIR is needed" in capsys.readouterr().err
    code = main(["build", "pope", "--coco-annotations", str(annotations), "--images", str(images),
                 "--subsets", "random,often", "--out", str(tmp_path / "x")])
    assert code == 2 and "unknown POPE subset 'often'" in capsys.readouterr().err


@needs_fixtures
def test_cli_recognises_loads_and_exports_published_files(tmp_path, capsys):
    old = FIXTURES / "coco/2023-05/coco_pope_random.json"
    assert main(["build", "pope", "--from-published", str(old)]) == 0
    printed = capsys.readouterr().out
    assert "recognised: POPE coco/random@2023-05-31 (superseded upstream version; introduced in 28f884a" in printed
    assert "2910 questions (1500 yes / 1410 no)" in printed
    current = sorted((FIXTURES / "coco/current").glob("*.json"))
    out = tmp_path / "split"
    assert main(["build", "pope", "--from-published", *map(str, current), "--images", str(tmp_path),
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.count("current upstream version") == 3 and "wrote split pope-coco-2023-11-16" in printed
    assert main(["build", "pope", "--to-published", str(out), "--out", str(tmp_path / "exported")]) == 0
    for path in current:
        assert (tmp_path / "exported" / path.name).read_bytes() == path.read_bytes()
    assert main(["build", "pope", "--to-published", str(out), "--out", str(tmp_path / "lf"), "--newline", "lf",
                 "--format", "jsonl"]) == 0
    lf = tmp_path / "lf" / "coco_pope_popular.json"
    assert b"\r\n" not in lf.read_bytes()
    assert [json.loads(x) for x in lf.read_text().splitlines()] == \
        [json.loads(x) for x in (FIXTURES / "coco/current/coco_pope_popular.json").read_text().splitlines()]
