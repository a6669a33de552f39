"""POPE object sources: COCO instances, object lists, image lists, SynthScenes through the COCO reader."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deem_eval.benchmarks.pope.sampler import SamplerConfig, sample_pope
from deem_eval.benchmarks.pope.sources import load_coco_instances, load_object_lists, object_lines, read_image_list
from deem_eval.core.errors import DeemEvalError


def coco_doc() -> dict:
    return {
        "images": [{"id": 10, "file_name": "COCO_val2014_000000000010.jpg"},
                   {"id": 11, "file_name": "COCO_val2014_000000000011.jpg"},
                   {"id": 12, "file_name": "COCO_val2014_000000000012.jpg"}],
        "categories": [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}, {"id": 18, "name": "dog"},
                       {"id": 44, "name": "bottle"}],
        "annotations": [
            {"id": 1, "image_id": 10, "category_id": 18}, {"id": 2, "image_id": 11, "category_id": 1},
            {"id": 3, "image_id": 10, "category_id": 1}, {"id": 4, "image_id": 10, "category_id": 18},
            {"id": 5, "image_id": 10, "category_id": 44}, {"id": 6, "image_id": 10, "category_id": 3},
        ],
    }


def write(path: Path, obj) -> Path:
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


def test_coco_objects_are_distinct_in_annotation_order(tmp_path):
    source = load_coco_instances(write(tmp_path / "instances.json", coco_doc()))
    assert [(im.image, im.objects, im.image_id) for im in source.images] == [
        ("COCO_val2014_000000000010.jpg", ("dog", "person", "bottle", "car"), "10"),
        ("COCO_val2014_000000000011.jpg", ("person",), "11"),
        ("COCO_val2014_000000000012.jpg", (), "12"),
    ]
    assert source.categories == ("person", "car", "dog", "bottle")
    assert source.kind == "coco" and len(source.sha256) == 64


def test_coco_unknown_category_ids_name_file_and_ids(tmp_path):
    doc = coco_doc()
    doc["annotations"] += [{"id": 7, "image_id": 11, "category_id": 91}, {"id": 8, "image_id": 10, "category_id": 91}]
    path = write(tmp_path / "instances.json", doc)
    with pytest.raises(DeemEvalError) as info:
        load_coco_instances(path)
    message = str(info.value)
    assert str(path) in message and "91 (2 annotations)" in message and "4 ids from 1 to 44" in message


def test_coco_unknown_image_ids_and_structure(tmp_path):
    doc = coco_doc()
    doc["annotations"].append({"id": 9, "image_id": 999, "category_id": 1})
    with pytest.raises(DeemEvalError, match="image ids that are not in 'images' .e.g. 999"):
        load_coco_instances(write(tmp_path / "a.json", doc))
    with pytest.raises(DeemEvalError, match="not a COCO instances file"):
        load_coco_instances(write(tmp_path / "b.json", {"images": []}))


def test_malformed_json_names_file_and_line(tmp_path):
    path = tmp_path / "instances.json"
    path.write_text('{\n  "images": [],\n  "annotations": [,]\n}\n')
    with pytest.raises(DeemEvalError, match=rf"{path}:3: malformed JSON"):
        load_coco_instances(path)
    lines = tmp_path / "objects.jsonl"
    lines.write_text('{"image": "a.jpg", "objects": ["cat"]}\n{"image": "b.jpg", "objects": ["dog"\n')
    with pytest.raises(DeemEvalError, match=rf"{lines}:2: malformed JSON"):
        load_object_lists(lines)


def test_object_lists_lines_and_array(tmp_path):
    lines = tmp_path / "objects.jsonl"
    lines.write_text('{"image": "a.jpg", "objects": ["cat", "dog", "cat"]}\n\n'
                     '{"image": "b.jpg", "objects": ["bus"], "image_id": 7}\n')
    source = load_object_lists(lines)
    assert [(im.image, im.objects, im.image_id) for im in source.images] == [
        ("a.jpg", ("cat", "dog"), None), ("b.jpg", ("bus",), "7")]
    assert source.duplicate_objects == 1 and source.categories == ("cat", "dog", "bus")
    array = write(tmp_path / "objects.json", [{"image": "a.jpg", "objects": ["x"]}])
    assert load_object_lists(array).images[0].objects == ("x",)


def test_object_lists_bad_rows(tmp_path):
    bad = tmp_path / "objects.jsonl"
    bad.write_text('{"image": "a.jpg", "objects": "cat"}\n')
    with pytest.raises(DeemEvalError, match=rf"{bad}:1: expected"):
        load_object_lists(bad)
    bad.write_text('{"image": "a.jpg", "objects": []}\n{"image": "a.jpg", "objects": []}\n')
    with pytest.raises(DeemEvalError, match="listed twice"):
        load_object_lists(bad)


def test_object_lines_round_trip(tmp_path):
    source = load_coco_instances(write(tmp_path / "instances.json", coco_doc()))
    path = tmp_path / "objects.jsonl"
    path.write_text(object_lines(source.images))
    assert [(im.image, im.objects) for im in load_object_lists(path).images] == \
        [(im.image, im.objects) for im in source.images]


def test_image_list_from_text_and_from_a_question_file(tmp_path):
    text = tmp_path / "images.txt"
    text.write_text("# chosen\nb.jpg\n\na.jpg\n")
    assert read_image_list(text) == ["b.jpg", "a.jpg"]
    questions = tmp_path / "coco_pope_popular.json"
    questions.write_text("".join(json.dumps({"question_id": i + 1, "image": image, "text": "Is there a cat in the "
                                             "image?", "label": "yes"}) + "\n"
                                 for i, image in enumerate(["c.jpg", "c.jpg", "a.jpg", "c.jpg", "b.jpg"])))
    assert read_image_list(questions) == ["c.jpg", "a.jpg", "b.jpg"]
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    with pytest.raises(DeemEvalError, match="empty"):
        read_image_list(empty)


def test_synthscenes_through_the_coco_reader(tmp_path):
    synthscenes = pytest.importorskip("deem_eval.benchmarks.synthscenes")
    synthscenes.generate(tmp_path, seed=1, num_images=24, size=64, progress=False)
    source = load_coco_instances(tmp_path / "instances.json")
    assert len(source.images) == 24
    assert all(len(set(im.objects)) == len(im.objects) for im in source.images)
    eligible = sum(len(im.objects) >= 3 for im in source.images)
    sampling = sample_pope(source.images, SamplerConfig(seed=1, img_num=min(eligible, 8)))
    assert sampling.selection.skipped_too_few == 24 - eligible
    for questions in sampling.questions.values():
        assert all((tmp_path / "images" / q.image).is_file() for q in questions)
