"""Published POPE files: load, recognise the version, round-trip through a split, export byte for byte."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from deem_eval.benchmarks.pope.build import export_published, published_split, split_questions
from deem_eval.benchmarks.pope.published import Layout, content_fingerprint, read_published, render, write_published
from deem_eval.benchmarks.pope.questions import PopeQuestion, image_id_of, object_from_text, parse_sample_id
from deem_eval.benchmarks.pope.sampler import question_text
from deem_eval.benchmarks.pope.versions import known_versions, recognise
from deem_eval.core.errors import DeemEvalError
from deem_eval.core.splits import Split

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "pope"
needs_fixtures = pytest.mark.skipif(not FIXTURES.is_dir(), reason=f"published POPE fixtures not found at {FIXTURES}")

EXPECTED_VERSIONS = {
    "coco/current/coco_pope_random.json": ("coco/random@2023-10-09", True, 3000),
    "coco/current/coco_pope_popular.json": ("coco/popular@2023-10-09", True, 3000),
    "coco/current/coco_pope_adversarial.json": ("coco/adversarial@2023-11-16", True, 3000),
    "coco/2023-05/coco_pope_random.json": ("coco/random@2023-05-31", False, 2910),
    "coco/2023-10/coco_pope_adversarial.json": ("coco/adversarial@2023-10-09", False, 3000),
    "seem/aokvqa/aokvqa_pope_seem_random.json": ("aokvqa-seem/random@2023-10-26", True, 3000),
    "seem/aokvqa/aokvqa_pope_seem_popular.json": ("aokvqa-seem/popular@2023-10-26", True, 3000),
    "seem/aokvqa/aokvqa_pope_seem_adversarial.json": ("aokvqa-seem/adversarial@2023-10-26", True, 3000),
}
GROUPS = [
    ["coco/current/coco_pope_random.json", "coco/current/coco_pope_popular.json",
     "coco/current/coco_pope_adversarial.json"],
    ["coco/2023-05/coco_pope_random.json"],
    ["coco/2023-10/coco_pope_adversarial.json"],
    ["seem/aokvqa/aokvqa_pope_seem_random.json", "seem/aokvqa/aokvqa_pope_seem_popular.json",
     "seem/aokvqa/aokvqa_pope_seem_adversarial.json"],
]


def raw_rows(path: Path) -> list[dict]:
    text = path.read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@needs_fixtures
@pytest.mark.parametrize("relative", sorted(EXPECTED_VERSIONS))
def test_every_fixture_is_recognised(relative):
    version, current, rows = EXPECTED_VERSIONS[relative]
    recognition = recognise(read_published(FIXTURES / relative))
    assert recognition.version is not None and recognition.version.version == version
    assert recognition.version.current is current and recognition.version.rows == rows
    assert recognition.byte_identical
    text = recognition.describe()
    assert version in text and ("current upstream version" in text) is current


@needs_fixtures
def test_fixture_fingerprints_are_the_table_entries():
    by_name = {v.version: v for v in known_versions()}
    for relative, (version, _, _) in EXPECTED_VERSIONS.items():
        path = FIXTURES / relative
        published = read_published(path)
        assert published.content_sha256 == by_name[version].content_sha256
        assert published.file_sha256 in by_name[version].file_sha256


@needs_fixtures
@pytest.mark.parametrize("group", GROUPS, ids=["coco-current", "coco-2023-05", "coco-2023-10", "aokvqa-seem"])
def test_round_trip_through_a_saved_split_is_byte_exact(group, tmp_path):
    files = [read_published(FIXTURES / relative) for relative in group]
    split, _ = published_split(files)
    assert split.meta.count == sum(len(f.questions) for f in files)
    split.save(tmp_path / "split")
    loaded = Split.load(tmp_path / "split")
    assert loaded.fingerprint == split.fingerprint
    paths = export_published(loaded, tmp_path / "out")
    assert sorted(p.name for p in paths) == sorted(Path(r).name for r in group)
    for relative in group:
        original = FIXTURES / relative
        exported = tmp_path / "out" / original.name
        assert raw_rows(exported) == raw_rows(original)            # content: same rows, same order
        assert exported.read_bytes() == original.read_bytes()       # and the very same bytes


@needs_fixtures
def test_split_samples_carry_ids_groups_and_question_ids():
    files = [read_published(FIXTURES / r) for r in GROUPS[0]]
    split, _recognitions = published_split(files)
    assert split.name == "pope-coco-2023-11-16" and split.meta.benchmark == "pope"
    first = next(s for s in split.samples if s.id == "pope-coco-random/000001")
    assert first.image == "COCO_val2014_000000310196.jpg" and first.answer == "yes"
    assert first.question == "Is there a snowboard in the image?"
    assert dict(first.group) == {"subset": "random", "object": "snowboard", "image_id": "310196"}
    assert {s.group["subset"] for s in split.samples} == {"random", "popular", "adversarial"}
    assert split.meta.extra["pope"]["files"]["random"]["version"] == "coco/random@2023-10-09"
    assert len(split.meta.candidates) == 79
    questions = split_questions(split)
    assert [q.question_id for q in questions["popular"]] == list(range(1, 3001))


@needs_fixtures
def test_imange_rows_load_and_keep_their_text():
    published = read_published(FIXTURES / "coco/2023-10/coco_pope_adversarial.json")
    imange = [q for q in published.questions if "imange" in q.text]
    assert len(imange) == 57
    assert {object_from_text(q.text) for q in imange} == {"umbrella", "orange", "oven", "airplane", "elephant",
                                                          "apple"}


@needs_fixtures
def test_upstream_template_regenerates_the_first_release(tmp_path):
    """Rewriting the current popular file with upstream's template bug gives the 2023-05-31 release."""
    current = read_published(FIXTURES / "coco/current/coco_pope_popular.json")
    regenerated = [PopeQuestion(q.subset, q.question_id, q.image,
                                question_text(object_from_text(q.text), article="upstream"), q.label)
                   for q in current.questions]
    old = next(v for v in known_versions() if v.version == "coco/popular@2023-05-31")
    assert content_fingerprint(regenerated) == old.content_sha256
    path = write_published(tmp_path / "coco_pope_popular.json", regenerated, current.layout)
    assert recognise(read_published(path)).version.version == "coco/popular@2023-05-31"


@needs_fixtures
def test_layout_changes_are_recognised_but_not_byte_identical(tmp_path):
    original = read_published(FIXTURES / "coco/current/coco_pope_popular.json")
    assert original.layout.newline == "\r\n" and original.layout.kind == "jsonl"
    path = write_published(tmp_path / "coco_pope_popular.json", original.questions, Layout(kind="array"))
    assert path.read_text().startswith("[\n    {\n        \"question_id\": 1,")
    recognition = recognise(read_published(path))
    assert recognition.version.version == "coco/popular@2023-10-09" and not recognition.byte_identical
    assert "different layout (array" in recognition.describe()


@needs_fixtures
def test_modified_files_are_not_a_published_version(tmp_path):
    src = FIXTURES / "coco/current/coco_pope_random.json"
    lines = src.read_text().splitlines(keepends=True)
    lines[4] = lines[4].replace('"label": "yes"', '"label": "no"')
    path = tmp_path / "coco_pope_random.json"
    path.write_text("".join(lines))
    recognition = recognise(read_published(path))
    assert recognition.version is None and recognition.spelling_variant_of == ()
    assert "not a published POPE version" in recognition.describe()
    split, _ = published_split([read_published(path)])
    assert split.name == "pope-coco-custom"
    # "imange" sneaking into a current file: a spelling variant of it
    text = src.read_text().replace("Is there an apple in the image?", "Is there an apple in the imange?")
    path.write_text(text)
    assert [v.version for v in recognise(read_published(path)).spelling_variant_of] == ["coco/random@2023-10-09"]


def test_imange_key_and_array_files_are_read(tmp_path):
    path = tmp_path / "gqa_pope_seem_random.json"
    rows = [{"question_id": 1, "imange": "1.jpg", "text": "Is there a cat in the image?", "label": "yes"},
            {"question_id": 2, "imange": "1.jpg", "text": "Is there an owl in the imange?", "label": "no"}]
    path.write_text(json.dumps(rows, indent=4))
    published = read_published(path)
    assert published.dataset == "gqa-seem" and published.subset == "random"
    assert [q.image for q in published.questions] == ["1.jpg", "1.jpg"]
    assert published.layout.kind == "array" and published.layout.keys[1] == "imange"
    assert render(published.questions, published.layout) == path.read_text()


@pytest.mark.parametrize("content, message", [
    (('{"question_id": 1, "image": "a.jpg", "text": "Is there a cat in the image?", "label": "yes"}\n'
     '{"question_id": 2,\n'),
     r":2: malformed JSON"),
    ('{"question_id": 1, "image": "a.jpg", "text": "q", "label": "maybe"}\n', "label must be 'yes' or 'no'"),
    ('{"question_id": 1, "image": "a.jpg", "label": "yes"}\n', "missing field.s. text"),
    ('{"question_id": "x1", "image": "a.jpg", "text": "q", "label": "yes"}\n', "question_id must be"),
    (('{"question_id": 1, "image": "a.jpg", "text": "q", "label": "yes"}\n'
     '{"question_id": 1, "image": "b.jpg", "text": "q", "label": "no"}\n'), "question_id 1 occurs twice"),
    ("\n\n", "no questions"),
])
def test_bad_question_files(tmp_path, content, message):
    path = tmp_path / "coco_pope_random.json"
    path.write_text(content)
    with pytest.raises(DeemEvalError, match=message):
        read_published(path)


def test_subset_must_be_known(tmp_path):
    path = tmp_path / "questions.json"
    path.write_text('{"question_id": 1, "image": "a.jpg", "text": "q", "label": "yes"}\n')
    with pytest.raises(DeemEvalError, match="cannot tell the POPE subset"):
        read_published(path)
    assert read_published(path, subset="popular", dataset="mine").subset == "popular"


def test_export_overrides_and_non_pope_splits(tmp_path, tiny_split):
    questions = [PopeQuestion("random", i + 1, "a.jpg", "Is there a cat in the image?", "yes" if i % 2 == 0 else "no")
                 for i in range(4)]
    path = write_published(tmp_path / "in" / "mine_pope_random.json", questions)
    split, _ = published_split([read_published(path)])
    out = export_published(split, tmp_path / "out", kind="array", newline="\r\n")
    assert json.loads(out[0].read_text()) == [{"question_id": q.question_id, "image": q.image, "text": q.text,
                                               "label": q.label} for q in questions]
    out = export_published(split, tmp_path / "out2", newline="\r\n")
    assert out[0].read_bytes().count(b"\r\n") == 4
    with pytest.raises(DeemEvalError, match="not a POPE id"):
        export_published(tiny_split, tmp_path / "out3")


def test_ids_and_image_ids():
    assert parse_sample_id("pope-coco-random/000017").question_id == 17
    assert parse_sample_id("pope-aokvqa-seem-adversarial/003000").prefix == "pope-aokvqa-seem"
    assert parse_sample_id("tiny/001/yes") is None
    assert image_id_of("COCO_val2014_000000310196.jpg") == "310196"
    assert image_id_of("2405722.jpg") == "2405722" and image_id_of("synth_0_000012.png") == "12"
    assert object_from_text("Is there a dining table in the image?") == "dining table"
    assert object_from_text("What is this?") == "(unknown)"


def test_fixture_copies_elsewhere_are_found(tmp_path):
    """Recognition uses content, not paths: a renamed copy is still recognised (if fixtures exist)."""
    if not FIXTURES.is_dir():
        pytest.skip("fixtures absent")
    copy = tmp_path / "my_random_questions.jsonl"
    shutil.copy(FIXTURES / "coco/2023-05/coco_pope_random.json", copy)
    assert recognise(read_published(copy, subset="random")).version.version == "coco/random@2023-05-31"
