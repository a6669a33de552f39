"""Object lists that name an object twice for one image: dropped by default, counted with `duplicates="upstream"`.

Upstream POPE (AoiDragon/POPE, utils.py) works on the lists as written: `generate_ground_truth_objects`
adds 1 per mention, `compute_co_occurrence` adds 1 per (mention, other mention) pair with a different name,
`main.py` keeps images with `len(objects) >= sample_num`, and the positives are `objects[i]` for
i < sample_num, a repeated name included. `reference` below re-states those rules (written here, not copied)
and the sampler's popular and adversarial questions are compared with it.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deem_eval.benchmarks.pope.sampler import ImageObjects, ObjectStats, SamplerConfig, sample_pope
from deem_eval.benchmarks.pope.sources import load_object_lists
from deem_eval.cli import main
from deem_eval.core.errors import DeemEvalError
from deem_eval.core.splits import Split

ROWS = [
    {"image": "A.jpg", "objects": ["person", "person", "person", "dog"]},
    {"image": "B.jpg", "objects": ["car", "tree"]},
    {"image": "C.jpg", "objects": ["car", "bench"]},
    {"image": "D.jpg", "objects": ["cup", "fork"]},
    {"image": "F.jpg", "objects": ["cup", "knife", "knife", "knife"]},
    {"image": "G.jpg", "objects": ["cup", "plate"]},
    {"image": "H.jpg", "objects": ["plate", "cup"]},
]
ORDER = [row["image"] for row in ROWS]


def object_file(tmp_path, rows=ROWS):
    path = tmp_path / "objects.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def reference(lists: list[list[str]], n: int, subset: str, drawn: list[str] | None = None,
              ) -> list[tuple[str, str | None]]:
    """Upstream's pope() for popular/adversarial: (positive, negative), negative None where it falls back to
    a random draw. Images are taken as given (upstream draws them first). `drawn`: the negatives the sampler
    chose; a fallback takes that one (after checking upstream would accept it), so later choices see the
    same history."""
    counts: dict[str, int] = {}
    co: dict[str, dict[str, int]] = {}
    for objects in lists:
        for o in objects:
            counts[o] = counts.get(o, 0) + 1
            partners = co.setdefault(o, {})
            for other in objects:
                if other != o:
                    partners[other] = partners.get(other, 0) + 1
    popular = [o for o, _ in sorted(counts.items(), key=lambda kv: kv[1], reverse=True)]
    ranked = {o: [p for p, _ in sorted(d.items(), key=lambda kv: kv[1], reverse=True)] for o, d in co.items()}
    out = []
    for objects in lists:
        history: list[str] = []
        for i in range(n):
            positive = objects[i]
            history.append(positive)
            negative = next((c for c in (popular if subset == "popular" else ranked[positive])
                             if c not in history and c not in objects), None)
            out.append((positive, negative))
            if negative is None:
                assert drawn is not None, "a fallback: pass the sampler's negatives"
                negative = drawn[len(out) - 1]
                assert negative not in history and negative not in objects
            history.append(negative)
    return out


def pairs(questions) -> list[tuple[str, str]]:
    return [(questions[i].object, questions[i + 1].object) for i in range(0, len(questions), 2)]


def test_default_drops_duplicates_and_upstream_keeps_them(tmp_path):
    path = object_file(tmp_path)
    dropped, kept = load_object_lists(path), load_object_lists(path, duplicates="upstream")
    assert dropped.images[0].objects == ("person", "dog") and dropped.duplicates == "drop"
    assert kept.images[0].objects == ("person", "person", "person", "dog") and kept.duplicates == "upstream"
    assert dropped.duplicate_objects == kept.duplicate_objects == 2
    assert dropped.categories == kept.categories
    with pytest.raises(DeemEvalError, match="duplicates must be one of drop, upstream"):
        load_object_lists(path, duplicates="count")


def test_upstream_counts_every_mention(tmp_path):
    path = object_file(tmp_path)
    ours = ObjectStats.from_images(load_object_lists(path).images)
    upstream = ObjectStats.from_images(load_object_lists(path, duplicates="upstream").images)
    # popular: person is named 3 times in one image (upstream: 3) but car is in two images
    assert ours.popular[:3] == ("cup", "car", "plate")         # cup is in 4 images, car and plate in 2
    assert upstream.popular[:3] == ("cup", "person", "knife")  # person and knife: 3 mentions each
    # adversarial: cup meets knife in one image, but knife is named 3 times there
    assert ours.co_occurring["cup"][0] == "plate"
    assert upstream.co_occurring["cup"][0] == "knife"


def test_popular_and_adversarial_questions_differ_as_upstream_makes_them(tmp_path):
    path = object_file(tmp_path)
    config = SamplerConfig(img_num=len(ROWS), n=2, subsets=("popular", "adversarial"))
    ours = sample_pope(load_object_lists(path).images, config, ORDER)
    upstream = sample_pope(load_object_lists(path, duplicates="upstream").images, config, ORDER)
    lists = [row["objects"] for row in ROWS]
    for subset in ("popular", "adversarial"):
        got = pairs(upstream.questions[subset])
        expected = reference(lists, 2, subset, [g for _, g in got])
        assert [p for p, _ in got] == [p for p, _ in expected]
        assert all(g == e for (_, g), (_, e) in zip(got, expected) if e is not None)
        assert got != pairs(ours.questions[subset])          # the default differs on this set
    # the differences themselves, on D (cup, fork) and A (person, person, ...)
    d_ours = [q for q in ours.questions["popular"] if q.image == "D.jpg"]
    d_upstream = [q for q in upstream.questions["popular"] if q.image == "D.jpg"]
    assert next(q.object for q in d_ours if q.label == "no") == "car"
    assert next(q.object for q in d_upstream if q.label == "no") == "person"
    adv_ours = {q.question_id: q for q in ours.questions["adversarial"]}
    adv_upstream = {q.question_id: q for q in upstream.questions["adversarial"]}
    d_first = next(q.question_id for q in ours.questions["adversarial"] if q.image == "D.jpg")
    assert adv_ours[d_first].object == adv_upstream[d_first].object == "cup"
    assert adv_ours[d_first + 1].object == "plate" and adv_upstream[d_first + 1].object == "knife"
    a_upstream = [q.object for q in upstream.questions["popular"] if q.image == "A.jpg" and q.label == "yes"]
    assert a_upstream == ["person", "person"]       # upstream asks objects[0] and objects[1]: both person
    a_ours = [q.object for q in ours.questions["popular"] if q.image == "A.jpg" and q.label == "yes"]
    assert a_ours == ["person", "dog"]


def test_eligibility_counts_mentions_upstream(tmp_path):
    rows = ROWS + [{"image": "K.jpg", "objects": ["kite", "kite"]}]
    path = object_file(tmp_path, rows)
    config = SamplerConfig(img_num=len(ROWS), n=2, subsets=("popular",))
    assert sample_pope(load_object_lists(path).images, config).selection.eligible == len(ROWS)
    assert sample_pope(load_object_lists(path, duplicates="upstream").images,
                       config).selection.eligible == len(ROWS) + 1


object_names = st.sampled_from([f"o{i}" for i in range(12)])
lists_with_repeats = st.lists(st.lists(object_names, min_size=3, max_size=8), min_size=2, max_size=15)


@settings(max_examples=80, deadline=None)
@given(lists_with_repeats)
def test_upstream_mode_equals_the_upstream_rules(lists):
    images = [ImageObjects(f"img{i}.jpg", tuple(objects)) for i, objects in enumerate(lists)]
    config = SamplerConfig(img_num=len(images), n=3, subsets=("popular", "adversarial"))
    try:
        sampling = sample_pope(images, config, [im.image for im in images])
    except DeemEvalError as exc:
        assert "no object left" in str(exc)
        return
    for subset in ("popular", "adversarial"):
        got = pairs(sampling.questions[subset])
        expected = reference(lists, 3, subset, [g for _, g in got])
        assert [p for p, _ in got] == [p for p, _ in expected]
        assert all(g == e for (_, g), (_, e) in zip(got, expected) if e is not None)


def test_cli_duplicates_option(tmp_path, capsys):
    path = object_file(tmp_path)
    common = ["build", "pope", "--objects", str(path), "--images", str(tmp_path), "--img-num", "7", "--n", "2",
              "--subsets", "popular,adversarial"]
    assert main([*common, "--out", str(tmp_path / "drop")]) == 0
    assert "duplicates were dropped" in capsys.readouterr().out
    assert main([*common, "--duplicates", "upstream", "--out", str(tmp_path / "upstream")]) == 0
    assert "every mention was kept and counted" in capsys.readouterr().out
    drop, upstream = Split.load(tmp_path / "drop"), Split.load(tmp_path / "upstream")
    assert "duplicates" not in drop.meta.builder.params            # default: split.json as before
    assert drop.meta.extra["pope"]["duplicate_objects_removed"] == 2
    assert "duplicate_objects_kept" not in drop.meta.extra["pope"]
    assert upstream.meta.builder.params["duplicates"] == "upstream"
    assert upstream.meta.extra["pope"]["duplicate_objects_kept"] == 2
    assert upstream.meta.extra["pope"]["duplicate_objects_removed"] == 0
    assert upstream.fingerprint != drop.fingerprint
    # refused where it would mean nothing upstream did
    coco = tmp_path / "instances.json"
    coco.write_text(json.dumps({"images": [], "annotations": [], "categories": []}))
    assert main(["build", "pope", "--coco-annotations", str(coco), "--images", str(tmp_path), "--duplicates",
                 "upstream", "--out", str(tmp_path / "x")]) == 2
    assert "--duplicates upstream applies to --objects lists" in capsys.readouterr().err
