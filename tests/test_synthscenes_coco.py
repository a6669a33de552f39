"""The instances.json that SynthScenes writes is valid COCO, in drawing order, matching the plans."""

from __future__ import annotations

import json

import pytest

from deem_eval.benchmarks.synthscenes import (
    CATEGORIES,
    INSTANCES_FILE,
    generate,
    image_file_name,
    instances_for,
    plan_scene,
    read_instances,
)
from deem_eval.benchmarks.synthscenes.coco import annotation_id
from deem_eval.core.errors import DeemEvalError

SEED, N, SIZE = 5, 24, 80


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("coco"), seed=SEED, num_images=N, size=SIZE, progress=False)


@pytest.fixture(scope="module")
def doc(out):
    return json.loads((out / INSTANCES_FILE).read_text())


def test_top_level_fields(doc):
    assert set(doc) >= {"images", "annotations", "categories"}
    assert doc["info"]["seed"] == SEED and doc["info"]["size"] == SIZE
    assert [c["id"] for c in doc["categories"]] == list(range(1, len(CATEGORIES) + 1))
    assert all(set(c) == {"id", "name", "supercategory"} for c in doc["categories"])


def test_images_records(doc, out):
    assert [im["id"] for im in doc["images"]] == list(range(1, N + 1))
    for index, im in enumerate(doc["images"]):
        assert im["file_name"] == image_file_name(SEED, index) == f"synth_{SEED}_{index:06d}.png"
        assert (im["width"], im["height"]) == (SIZE, SIZE)
        assert im["scene"] == plan_scene(SEED, index).scene
        assert (out / "images" / im["file_name"]).is_file()


def test_annotations_are_valid(doc):
    ids = [a["id"] for a in doc["annotations"]]
    assert len(ids) == len(set(ids))
    cat_ids = {c["id"] for c in doc["categories"]}
    image_ids = {im["id"] for im in doc["images"]}
    per_image: dict[int, int] = {}
    for a in doc["annotations"]:
        assert a["image_id"] in image_ids and a["category_id"] in cat_ids and a["iscrowd"] == 0
        x, y, w, h = a["bbox"]
        assert w > 0 and h > 0 and x >= 0 and y >= 0 and x + w <= SIZE + 1e-6 and y + h <= SIZE + 1e-6
        assert 0 < a["area"] <= w * h
        per_image[a["image_id"]] = per_image.get(a["image_id"], 0) + 1
    assert set(per_image) == image_ids  # every image has an object
    assert all(1 <= n <= 8 for n in per_image.values())


def test_annotation_order_is_drawing_order(doc):
    by_image: dict[int, list[dict]] = {}
    for a in doc["annotations"]:
        by_image.setdefault(a["image_id"], []).append(a)
    for index in range(N):
        anns = by_image[index + 1]
        plan = plan_scene(SEED, index)
        assert [a["id"] for a in anns] == [annotation_id(index, k) for k in range(len(plan.objects))]
        names = {c.id: c.name for c in CATEGORIES}
        assert [names[a["category_id"]] for a in anns] == [p.category for p in plan.objects]
        expected = instances_for(plan, SIZE)
        assert [tuple(a["bbox"]) for a in anns] == [o.bbox for o in expected]


def test_read_instances_round_trip(out, doc):
    inst = read_instances(out)
    assert len(inst.images) == N and len(inst.annotations) == len(doc["annotations"])
    grouped = inst.objects_by_image()
    assert [a.id for a in grouped[1]] == [a["id"] for a in doc["annotations"] if a["image_id"] == 1]
    assert inst.category_names()[1] == CATEGORIES[0].name
    assert inst.images[0].scene == doc["images"][0]["scene"]


def test_read_instances_errors(tmp_path, doc):
    with pytest.raises(DeemEvalError, match="no such file"):
        read_instances(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DeemEvalError, match="bad.json: not a readable JSON"):
        read_instances(bad)
    broken = dict(doc, annotations=[dict(doc["annotations"][0], category_id=999)])
    bad.write_text(json.dumps(broken))
    with pytest.raises(DeemEvalError, match="unknown category id 999"):
        read_instances(bad)
    dup = dict(doc, annotations=doc["annotations"][:1] * 2)
    bad.write_text(json.dumps(dup))
    with pytest.raises(DeemEvalError, match="duplicate annotation ids"):
        read_instances(bad)
