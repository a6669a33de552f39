"""RobustVQA sources: the shipped ImageNet table, folder layouts, HF datasets and their bad inputs."""

from __future__ import annotations

import pytest
from test_robustvqa_helpers import make_folder, solid_png

from deem_eval.benchmarks.robustvqa.build import BuildOptions, build_split
from deem_eval.benchmarks.robustvqa.classes import imagenet_rows, imagenet_table, load_class_map, subset_indices
from deem_eval.benchmarks.robustvqa.sources import generic_folder, hf_dataset, imagenet_folder
from deem_eval.core.errors import DeemEvalError
from deem_eval.core.splits import Split

RED, GREEN, BLUE = (200, 0, 0), (0, 200, 0), (0, 0, 200)


def test_imagenet_table_facts():
    rows = imagenet_rows()
    assert len(rows) == 1000 and [r.wnid for r in rows] == sorted(r.wnid for r in rows)
    assert (rows[0].wnid, rows[0].name, rows[0].deem_name) == ("n01440764", "tench", "tench")
    assert (rows[2].name, rows[2].deem_name) == ("great white shark", "great_white_shark")
    assert rows[999].wnid == "n15075141"
    assert len(subset_indices("a")) == 200 and len(subset_indices("r")) == 200 and len(subset_indices("v2")) == 1000
    a, r = set(subset_indices("a")), set(subset_indices("r"))
    assert 6 in a and 6 in r            # stingray is in both
    assert 1 in r and 1 not in a        # goldfish: ImageNet-R only
    assert 0 not in a | r               # tench: neither
    assert imagenet_table("openai").classes[134].name == "crane bird"
    assert imagenet_table("deem").classes[134].name == imagenet_table("deem").classes[517].name == "crane"


def test_imagenet_a_folder_labels_keys_and_empty_folders(tmp_path, capsys):
    root = make_folder(tmp_path / "imagenet-a", {"n01498041": [RED, GREEN], "n01534433": [BLUE]})
    (root / "n01580077").mkdir()                  # jay: a valid class folder without images
    (root / "README.txt").write_text("not a class")
    (root / "n01498041" / "notes.txt").write_text("ignored")
    source = imagenet_folder("a", root)
    assert [(im.key, im.label) for im in source.images] == [
        ("n01498041/img0.png", 6), ("n01498041/img1.png", 6), ("n01534433/img0.png", 13)]
    assert source.empty_folders == ["n01580077"]
    assert "empty class folder" in capsys.readouterr().err
    assert len(source.candidates("subset")) == 200 and len(source.candidates("all")) == 1000


def test_unknown_wnid_folders_error_or_skip(tmp_path):
    root = make_folder(tmp_path / "imagenet-a", {"n01498041": [RED], "n99999999": [GREEN], "n01440764": [BLUE]})
    with pytest.raises(DeemEvalError, match=r"n01440764.*n99999999.*--skip-unknown-folders"):
        imagenet_folder("a", root)   # tench is an ImageNet class, but not one of ImageNet-A's 200
    source = imagenet_folder("a", root, skip_unknown=True)
    assert [im.key for im in source.images] == ["n01498041/img0.png"]
    assert source.skipped_folders == ["n01440764", "n99999999"]
    wrong = make_folder(tmp_path / "elsewhere", {"cats": [RED]})
    with pytest.raises(DeemEvalError, match="cats"):
        imagenet_folder("r", wrong, skip_unknown=True)   # nothing usable: surely the wrong folder


def test_imagenet_v2_index_folders(tmp_path):
    root = make_folder(tmp_path / "imagenetv2", {"0": [RED], "999": [GREEN], "134": [BLUE]})
    source = imagenet_folder("v2", root, names="openai")
    assert sorted((im.key, im.label) for im in source.images) == [
        ("0/img0.png", 0), ("134/img0.png", 134), ("999/img0.png", 999)]
    assert source.table.classes[999].name == "toilet paper"
    make_folder(root, {"1000": [RED]})
    with pytest.raises(DeemEvalError, match="1000"):
        imagenet_folder("v2", root)


def test_missing_and_empty_roots(tmp_path):
    with pytest.raises(DeemEvalError, match="not a directory"):
        imagenet_folder("a", tmp_path / "nope")
    (tmp_path / "empty" / "n01498041").mkdir(parents=True)
    with pytest.raises(DeemEvalError, match="no images found"):
        imagenet_folder("a", tmp_path / "empty")


def test_generic_folder_with_class_maps(tmp_path):
    root = make_folder(tmp_path / "toys", {"c1": [RED], "c2": [GREEN, BLUE]})
    (tmp_path / "map.json").write_text('{"c1": "teddy bear", "c2": "yo-yo", "c3": "kite"}')
    source = generic_folder(root, class_map=tmp_path / "map.json")
    assert source.subset == "toys"
    assert [source.table.classes[im.label].name for im in source.images] == ["teddy bear", "yo-yo", "yo-yo"]
    assert len(source.candidates("all")) == 3 and len(source.candidates("subset")) == 2
    (tmp_path / "map.tsv").write_text("# folder\tname\nc1\tteddy bear\n")
    with pytest.raises(DeemEvalError, match="without a name.*c2"):
        generic_folder(root, class_map=tmp_path / "map.tsv")
    (tmp_path / "bad.tsv").write_text("c1\t\nc2\tyo-yo\n")
    with pytest.raises(DeemEvalError, match="without a name: c1"):
        load_class_map(tmp_path / "bad.tsv")
    with pytest.raises(DeemEvalError, match="without a name.*--class-map"):
        generic_folder(root)                          # no map and not WordNet ids
    wnids = make_folder(tmp_path / "mine", {"n01498041": [RED]})
    assert generic_folder(wnids, subset="x").table.classes[6].name == "stingray"


def test_corrupt_and_truncated_images_are_skipped_listed_and_counted(tmp_path):
    root = make_folder(tmp_path / "imagenet-a", {"n01498041": [RED, GREEN], "n01534433": [BLUE]})
    (root / "n01498041" / "garbage.jpg").write_bytes(b"definitely not a jpeg")
    good = (root / "n01534433" / "img0.png").read_bytes()
    (root / "n01534433" / "cut.png").write_bytes(good[: len(good) // 2])
    split = build_split([imagenet_folder("a", root)], BuildOptions(miner="random", progress=False),
                        tmp_path / "out")
    extra = split.meta.extra
    assert extra["skipped_count"] == 2
    assert sorted(s["image"] for s in extra["skipped_images"]) == ["n01498041/garbage.jpg", "n01534433/cut.png"]
    assert all(s["reason"].startswith("corrupt") for s in extra["skipped_images"])
    assert extra["subsets"]["a"] == {"source": "imagenet-a", "images": 5, "kept": 3, "skipped": 2}
    assert split.meta.count == 6 and not any("garbage" in s.image for s in split.samples)


def _hf_dataset(tmp_path, names=None, int_labels=False):
    import datasets
    from PIL import Image

    images = [Image.new("RGB", (20, 20), c) for c in (RED, GREEN, BLUE)]
    if int_labels:
        features = datasets.Features({"image": datasets.Image(), "label": datasets.Value("int64")})
    else:
        features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=names)})
    ds = datasets.Dataset.from_dict({"image": images, "label": [0, 1, 1]}, features=features)
    path = tmp_path / "hfds"
    ds.save_to_disk(str(path))
    return path


def test_hf_dataset_with_wordnet_class_labels_builds_a_self_contained_split(tmp_path):
    path = _hf_dataset(tmp_path, names=["n01498041", "n01534433"])
    source = hf_dataset(str(path), subset="a")
    assert [source.table.classes[im.label].name for im in source.images] == ["stingray", "junco", "junco"]
    out = tmp_path / "split"
    split = build_split([source], BuildOptions(miner="random", progress=False), out).save(out)
    assert split.meta.image_root == "."
    loaded = Split.load(out)
    assert loaded.samples[0].image == "images/a/000000.png"
    assert all(loaded.image_path(s).is_file() for s in loaded.samples)
    assert (out / "images.sha256").is_file()


def test_hf_dataset_label_names_and_bad_labels(tmp_path):
    plain = hf_dataset(str(_hf_dataset(tmp_path / "p", names=["teapot", "kettle"])))
    assert plain.table.names() == ["teapot", "kettle"]
    ints = _hf_dataset(tmp_path / "i", int_labels=True)
    with pytest.raises(DeemEvalError, match="no class names"):
        hf_dataset(str(ints))
    assert hf_dataset(str(ints), imagenet_labels=True).table.classes[1].name == "goldfish"
    with pytest.raises(DeemEvalError, match="no column 'img'"):
        hf_dataset(str(ints), image_column="img", imagenet_labels=True)


def test_mixing_folders_and_datasets_is_refused(tmp_path):
    folder = imagenet_folder("a", make_folder(tmp_path / "imagenet-a", {"n01498041": [RED]}))
    dataset = hf_dataset(str(_hf_dataset(tmp_path, names=["n01498041", "n01534433"])), subset="r")
    with pytest.raises(DeemEvalError, match="not both"):
        build_split([folder, dataset], BuildOptions(miner="random", progress=False), tmp_path / "out")


def test_solid_png_helper_writes_readable_images(tmp_path):
    from PIL import Image

    with Image.open(solid_png(tmp_path / "x.png", RED)) as img:
        assert img.getpixel((0, 0)) == RED
