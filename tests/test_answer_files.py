"""Answers files made elsewhere, matched to split questions by id or (subset, image, question), never by row."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deem_eval.benchmarks.pope.build import published_split, sampled_split
from deem_eval.benchmarks.pope.published import read_published, write_published
from deem_eval.benchmarks.pope.questions import PopeQuestion
from deem_eval.benchmarks.pope.sampler import ImageObjects, SamplerConfig
from deem_eval.benchmarks.pope.sources import ObjectSource
from deem_eval.core.errors import DeemEvalError
from deem_eval.scoring.answer_files import match_answers, normalise_question

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "pope"
needs_fixtures = pytest.mark.skipif(not FIXTURES.is_dir(), reason=f"published POPE fixtures not found at {FIXTURES}")
SUFFIX = "\nAnswer the question using a single word or phrase."


def small_published(tmp_path: Path, subsets=("random", "popular", "adversarial")):
    """Three tiny subsets that share positive questions (as POPE's do) but differ in negatives."""
    files = []
    for k, subset in enumerate(subsets):
        questions = []
        for i, image in enumerate(["COCO_val2014_000000000001.jpg", "COCO_val2014_000000000002.jpg"]):
            questions.append(PopeQuestion(subset, 2 * i + 1, image, "Is there a person in the image?", "yes"))
            questions.append(PopeQuestion(subset, 2 * i + 2, image, f"Is there a {['cat', 'dog', 'car'][k]}{i} "
                                                                   "in the image?", "no"))
        files.append(read_published(write_published(tmp_path / f"coco_pope_{subset}.json", questions)))
    split, _ = published_split(files)
    return split, {f.subset: f for f in files}


def write_lines(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_pope_style_rows_by_subset_image_question(tmp_path):
    split, files = small_published(tmp_path)
    rows = [{"question_id": q.question_id, "image": q.image, "question": q.text, "answer": f"ans{q.question_id}",
             "category": "popular"} for q in reversed(files["popular"].questions)]
    matched = match_answers(split, write_lines(tmp_path / "answers.jsonl", rows))
    assert matched.answers == {f"pope-coco-popular/{i:06d}": f"ans{i}" for i in range(1, 5)}
    assert (matched.rows, matched.matched, matched.unmatched_rows, matched.duplicate_rows, matched.missing) == \
        (4, 4, 0, 0, 8)
    assert matched.matched_by == "subset+image+question" and matched.source_format == "pope-answers"


def test_subset_from_file_name_or_best_fit(tmp_path):
    split, files = small_published(tmp_path)
    rows = [{"image": q.image, "question": q.text, "answer": q.label} for q in files["adversarial"].questions]
    named = match_answers(split, write_lines(tmp_path / "model_adv_answers.jsonl", rows))
    assert set(named.answers) == {f"pope-coco-adversarial/{i:06d}" for i in range(1, 5)}
    assert "file name" in named.notes[0]
    fitted = match_answers(split, write_lines(tmp_path / "answers.jsonl", rows))
    assert set(fitted.answers) == set(named.answers) and "fit subset 'adversarial' best" in fitted.notes[0]
    positives_only = [r for r in rows if r["answer"] == "yes"]   # these questions are in all three subsets
    with pytest.raises(DeemEvalError, match="fit subsets .* equally well"):
        match_answers(split, write_lines(tmp_path / "answers2.jsonl", positives_only))


def test_llava_rows_by_question_id_with_text_check(tmp_path):
    split, files = small_published(tmp_path)
    rows = [{"question_id": q.question_id, "prompt": q.text + SUFFIX, "text": "Yes", "answer_id": "x",
             "model_id": "m"} for q in files["random"].questions]
    matched = match_answers(split, write_lines(tmp_path / "llava_random.jsonl", rows))
    assert matched.source_format == "llava-answers" and matched.matched_by == "question_id"
    assert set(matched.answers) == {f"pope-coco-random/{i:06d}" for i in range(1, 5)}
    assert any("matched by question_id alone (their question text agrees)" in n for n in matched.notes)
    # the same ids asking other questions (another version of the file): refused, with the count
    rows[1]["prompt"] = rows[3]["prompt"] = "Is there a zebra in the image?"
    rows[2]["prompt"] = "Is there a giraffe in the image?"
    with pytest.raises(DeemEvalError, match=r"only 1 of 4 answer rows match .* 3 rows carry a question id of the "
                                             r"split but ask a different question"):
        match_answers(split, write_lines(tmp_path / "llava2_random.jsonl", rows))


def test_question_id_only_needs_a_subset(tmp_path):
    split, files = small_published(tmp_path)
    rows = [{"question_id": q.question_id, "answer": "no"} for q in files["popular"].questions]
    with pytest.raises(DeemEvalError, match="fit subsets adversarial, popular, random equally well"):
        match_answers(split, write_lines(tmp_path / "answers.jsonl", rows))
    matched = match_answers(split, write_lines(tmp_path / "answers_popular.jsonl", rows))
    assert matched.matched == 4 and any("no question text to check" in n for n in matched.notes)


def test_ids_duplicates_missing_and_unmatched(tmp_path):
    split, _ = small_published(tmp_path)
    rows = [{"id": "pope-coco-random/000001", "answer": "yes"}, {"id": "pope-coco-random/000001", "answer": "yes"},
            {"id": "pope-coco-random/000002", "answer": "no"}, {"id": "pope-coco-random/000003", "answer": "no"},
            {"id": "elsewhere/1", "answer": "no"}]
    matched = match_answers(split, write_lines(tmp_path / "answers.jsonl", rows))
    assert matched.answers == {"pope-coco-random/000001": "yes", "pope-coco-random/000002": "no",
                               "pope-coco-random/000003": "no"}
    assert (matched.rows, matched.matched, matched.duplicate_rows, matched.unmatched_rows, matched.missing) == \
        (5, 3, 1, 1, 9)
    assert matched.matched_by == "id"


def lmms_rows(questions, *, with_doc: bool) -> list[dict]:
    rows = []
    for k, q in enumerate(questions):
        record = {"question_id": q.question_id, "score": 1.0, "prediction": "yes", "ground_truth": q.label}
        row = {"doc_id": k, "target": q.label, "filtered_resps": ["Yes"], "resps": [["Yes"]],
               "doc_hash": "x", "pope_accuracy": record, "pope_f1_score": record}
        if with_doc:
            row["doc"] = {"question_id": str(q.question_id), "question": q.text, "answer": q.label,
                          "image_source": q.image.removesuffix(".jpg"), "category": q.subset}
        else:
            row["input"] = q.text + SUFFIX
        rows.append(row)
    return rows


def test_lmms_eval_samples_logs_old_and_new(tmp_path):
    split, files = small_published(tmp_path)
    everything = [q for f in files.values() for q in f.questions]
    old = match_answers(split, write_lines(tmp_path / "samples_pope.jsonl", lmms_rows(everything, with_doc=True)))
    assert old.source_format == "lmms-eval-samples" and old.matched == 12 and old.missing == 0
    assert old.matched_by == "subset+image+question" and set(old.answers.values()) == {"Yes"}
    new = match_answers(split, write_lines(tmp_path / "20260101_samples_pope_pop.jsonl",
                                           lmms_rows(files["popular"].questions, with_doc=False)))
    assert new.matched == 4 and new.matched_by == "question_id"
    assert set(new.answers) == {f"pope-coco-popular/{i:06d}" for i in range(1, 5)}


def test_answers_for_another_split_are_refused_with_the_count(tmp_path):
    split, _ = small_published(tmp_path)
    rows = [{"image": "COCO_val2014_000000000009.jpg", "question": "Is there a cat in the image?", "answer": "no",
             "category": "random"}] * 3 + \
           [{"image": "COCO_val2014_000000000001.jpg", "question": "Is there a person in the image?",
             "answer": "yes", "category": "random"}]
    with pytest.raises(DeemEvalError, match=r"only 1 of 4 answer rows match a question of split 'pope-coco-custom' "
                                             r"\(12 questions\)"):
        match_answers(split, write_lines(tmp_path / "answers.jsonl", rows))


def test_rows_without_keys_question_files_and_bad_json(tmp_path):
    split, files = small_published(tmp_path)
    positional = write_lines(tmp_path / "answers.jsonl", [{"question": "is there a bird in the image?",
                                                          "answer": "yes"}])
    with pytest.raises(DeemEvalError, match="row position, which deem-eval refuses"):
        match_answers(split, positional)
    with pytest.raises(DeemEvalError, match="looks like a question file"):
        match_answers(split, files["random"].path)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "answer": "yes"}\n{"id": \n')
    with pytest.raises(DeemEvalError, match=rf"{bad}:2: malformed JSON"):
        match_answers(split, bad)
    with pytest.raises(DeemEvalError, match="no such answers file"):
        match_answers(split, tmp_path / "missing.jsonl")


def test_sampled_split_answers_by_image_and_question(tmp_path):
    images = tuple(ImageObjects(f"{i}.png", ("a", "b", "c", f"x{i}")) for i in range(6))
    source = ObjectSource(images, (), tmp_path / "objects.jsonl", "objects", "0" * 64)
    split, sampling = sampled_split(source, SamplerConfig(img_num=6, seed=0, subsets=("random",)),
                                    dataset="toy", image_root=tmp_path)
    rows = [{"image": q.image, "text": q.text, "answer": "yes"} for q in sampling.questions["random"]]
    matched = match_answers(split, write_lines(tmp_path / "a.jsonl", rows))
    assert matched.matched == len(rows) and matched.missing == 0


def test_question_normalisation():
    assert normalise_question("<image>\nIs there an apple in the imange?\nAnswer yes or no.") == \
        "is there an apple in the image?"
    assert normalise_question("Is there a cat in the image? Please anwser yes or no") == \
        "is there a cat in the image?"


@needs_fixtures
def test_published_versions_are_not_mixed_up(tmp_path):
    """Answers made on the 2910-question file, with their prompts, cannot be scored against the current split."""
    current, _ = published_split([read_published(FIXTURES / "coco/current/coco_pope_random.json")])
    old = read_published(FIXTURES / "coco/2023-05/coco_pope_random.json")
    rows = [{"question_id": q.question_id, "prompt": q.text, "text": q.label} for q in old.questions]
    with pytest.raises(DeemEvalError, match=r"only \d+ of 2910 answer rows match"):
        match_answers(current, write_lines(tmp_path / "answers.jsonl", rows))
    # with images, the rows that really are the same question still match
    rows = [{"image": q.image, "question": q.text, "answer": q.label} for q in old.questions]
    try:
        matched = match_answers(current, write_lines(tmp_path / "answers2.jsonl", rows))
    except DeemEvalError as exc:
        assert "answer rows match" in str(exc)
    else:
        for sample_id, answer in matched.answers.items():
            assert answer == next(s.answer for s in current.samples if s.id == sample_id)


def test_a_question_asked_twice_about_one_image_is_decided_by_question_id(tmp_path):
    """Upstream's SEEM adversarial file asks one (image, question) twice; only the question id can tell them apart."""
    questions = [PopeQuestion("adversarial", 1, "x.jpg", "Is there a cat in the image?", "yes"),
                 PopeQuestion("adversarial", 2, "x.jpg", "Is there a person in the image?", "no"),
                 PopeQuestion("adversarial", 3, "x.jpg", "Is there a dog in the image?", "yes"),
                 PopeQuestion("adversarial", 4, "x.jpg", "Is there a person in the image?", "no")]
    split, _ = published_split([read_published(write_published(tmp_path / "aokvqa_pope_seem_adversarial.json",
                                                               questions))])
    with_ids = [{"question_id": q.question_id, "image": q.image, "question": q.text, "answer": f"a{q.question_id}"}
                for q in questions]
    matched = match_answers(split, write_lines(tmp_path / "a.jsonl", with_ids))
    assert matched.answers["pope-aokvqa-seem-adversarial/000004"] == "a4" and matched.matched == 4
    without_ids = [{k: v for k, v in row.items() if k != "question_id"} for row in with_ids]
    matched = match_answers(split, write_lines(tmp_path / "b.jsonl", without_ids))
    assert matched.matched == 2 and matched.unmatched_rows == 2 and matched.missing == 2
