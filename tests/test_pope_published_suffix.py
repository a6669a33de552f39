"""POPE from the published files with DEEM's question suffix (" Please anwser yes or no", DEEM's typo).

DEEM's POPEEvalDataset asks f"{text} Please anwser yes or no" about each published question. The suffix is a
builder option: it changes the samples (so the fingerprint), is recorded in the builder params and the split
name, is taken off again on export, and the default build keeps its bytes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deem_eval.benchmarks.pope.build import DEEM_QUESTION_SUFFIX, export_published, published_split
from deem_eval.benchmarks.pope.published import read_published
from deem_eval.cli import main
from deem_eval.core.splits import Split

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "pope"
needs_fixtures = pytest.mark.skipif(not FIXTURES.is_dir(), reason=f"published POPE fixtures not found at {FIXTURES}")
CURRENT = ["coco_pope_random.json", "coco_pope_popular.json", "coco_pope_adversarial.json"]


def current_files():
    return [read_published(FIXTURES / "coco" / "current" / name) for name in CURRENT]


def test_the_suffix_is_deems_text_typo_included():
    assert DEEM_QUESTION_SUFFIX == " Please anwser yes or no"


@needs_fixtures
def test_suffix_changes_questions_only_and_is_recorded(tmp_path):
    plain, _ = published_split(current_files())
    deem, _ = published_split(current_files(), question_suffix=DEEM_QUESTION_SUFFIX)
    assert deem.name == "pope-coco-2023-11-16-deemsuffix" and plain.name == "pope-coco-2023-11-16"
    assert deem.fingerprint != plain.fingerprint
    assert deem.meta.builder.params == {"files": CURRENT, "question_suffix": " Please anwser yes or no"}
    assert plain.meta.builder.params == {"files": CURRENT}          # the default records nothing new
    assert deem.meta.extra["pope"]["question_suffix"] == DEEM_QUESTION_SUFFIX
    assert "question_suffix" not in plain.meta.extra["pope"]
    by_id = {s.id: s for s in plain.samples}
    assert len(deem.samples) == len(plain.samples) == 9000
    for sample in deem.samples:
        base = by_id[sample.id]
        assert sample.question == base.question + " Please anwser yes or no"
        assert (sample.answer, sample.image, dict(sample.group)) == (base.answer, base.image, dict(base.group))
    first = next(s for s in deem.samples if s.id == "pope-coco-random/000001")
    assert first.question.endswith("in the image? Please anwser yes or no")
    assert first.group["object"] != "(unknown)"                     # read from the text before the suffix


@needs_fixtures
def test_export_takes_the_suffix_off_byte_for_byte(tmp_path):
    deem, _ = published_split(current_files(), question_suffix=DEEM_QUESTION_SUFFIX)
    saved = deem.save(tmp_path / "split")
    paths = export_published(Split.load(saved.directory), tmp_path / "exported")
    for path in paths:
        assert path.read_bytes() == (FIXTURES / "coco" / "current" / path.name).read_bytes()


@needs_fixtures
def test_cli_question_suffix(tmp_path, capsys):
    files = [str(FIXTURES / "coco" / "current" / name) for name in CURRENT]
    assert main(["build", "pope", "--from-published", *files, "--out", str(tmp_path / "plain")]) == 0
    assert main(["build", "pope", "--from-published", *files, "--question-suffix", "deem",
                 "--out", str(tmp_path / "deem")]) == 0
    printed = capsys.readouterr().out
    assert "wrote split pope-coco-2023-11-16-deemsuffix" in printed and "Please anwser yes or no" in printed
    meta = json.loads((tmp_path / "deem" / "split.json").read_text())
    assert meta["builder"]["params"]["question_suffix"] == " Please anwser yes or no"
    line = json.loads((tmp_path / "deem" / "samples.jsonl").read_text().splitlines()[0])
    assert line["question"].endswith("? Please anwser yes or no")
    assert "question_suffix" not in json.loads((tmp_path / "plain" / "split.json").read_text())["builder"]["params"]
    # 'none' is the default, byte for byte
    assert main(["build", "pope", "--from-published", *files, "--question-suffix", "none",
                 "--out", str(tmp_path / "none")]) == 0
    for name in ("samples.jsonl", "split.json"):
        none, plain = (tmp_path / "none" / name).read_text(), (tmp_path / "plain" / name).read_text()
        assert none.replace(str(tmp_path / "none"), "") == plain.replace(str(tmp_path / "plain"), "")
    # literal text gets a hashed name tag
    assert main(["build", "pope", "--from-published", files[0], "--question-suffix", " Answer yes or no.",
                 "--out", str(tmp_path / "literal")]) == 0
    literal = Split.load(tmp_path / "literal")
    assert literal.name.startswith("pope-coco-2023-10-09-suffix-")
    assert literal.samples[0].question.endswith("? Answer yes or no.")


@needs_fixtures
def test_cli_refuses_the_suffix_where_it_does_nothing(tmp_path, capsys):
    path = str(FIXTURES / "coco" / "current" / "coco_pope_random.json")
    assert main(["build", "pope", "--from-published", path, "--question-suffix", "deem"]) == 2
    assert "--question-suffix applies to --from-published with --out" in capsys.readouterr().err
    objects = tmp_path / "objects.jsonl"
    objects.write_text('{"image": "a.jpg", "objects": ["cat", "dog", "bus"]}\n')
    assert main(["build", "pope", "--objects", str(objects), "--images", str(tmp_path), "--img-num", "1",
                 "--question-suffix", "deem", "--out", str(tmp_path / "x")]) == 2
    assert "--template" in capsys.readouterr().err
