"""Answer files: rows whose id names a question they do not ask, and questions answered twice (issue 13)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deem_eval.benchmarks.pope.build import published_split
from deem_eval.benchmarks.pope.published import read_published, write_published
from deem_eval.benchmarks.pope.questions import PopeQuestion
from deem_eval.core.errors import DeemEvalError
from deem_eval.scoring.answer_files import MAX_DISAGREEING, match_answers

N_IMAGES = 60          # 2 questions per image: 120 questions


def split_and_questions(tmp_path: Path):
    questions = []
    for i in range(N_IMAGES):
        image = f"COCO_val2014_{i:012d}.jpg"
        questions.append(PopeQuestion("random", 2 * i + 1, image, "Is there a person in the image?", "yes"))
        questions.append(PopeQuestion("random", 2 * i + 2, image, f"Is there a cat{i} in the image?", "no"))
    split, _ = published_split([read_published(write_published(tmp_path / "coco_pope_random.json", questions))])
    return split, questions


def write_lines(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def id_rows(split, questions):
    by_qid = {int(s.id.rsplit("/", 1)[1]): s.id for s in split.samples}
    return [{"id": by_qid[q.question_id], "question": q.text, "image": q.image, "answer": q.label} for q in questions]


def test_rows_matched_by_id_are_checked_against_the_split(tmp_path):
    split, questions = split_and_questions(tmp_path)
    rows = id_rows(split, questions)
    clean = match_answers(split, write_lines(tmp_path / "ok.jsonl", rows))
    assert clean.matched == 120 and clean.disagreeing_rows == 0
    # one row of 120 (0.8 %) asks another question under a split id: a warning with the count and the line
    rows[5]["question"] = "Is there a zebra in the image?"
    one = match_answers(split, write_lines(tmp_path / "one.jsonl", rows))
    assert one.disagreeing_rows == 1 and one.matched == 119 and rows[5]["id"] not in one.answers
    note = next(n for n in one.notes if n.startswith("warning: 1 of 120 rows"))
    assert "one.jsonl:6" in note and "zebra" in note
    # two of 120 (1.7 %) is more than the 1 % tolerated: refused, naming the count and the first examples
    rows[7]["image"] = "COCO_val2014_999999999999.jpg"
    with pytest.raises(DeemEvalError, match=r"2 of 120 answer rows \(1\.7 %, more than the 1 % allowed\).*"
                                             r"two\.jsonl:6.*two\.jsonl:8.*image"):
        match_answers(split, write_lines(tmp_path / "two.jsonl", rows))
    assert MAX_DISAGREEING == 0.01


def test_question_id_rows_with_another_image_are_not_matched(tmp_path):
    split, questions = split_and_questions(tmp_path)
    rows = [{"question_id": q.question_id, "image": q.image, "question": q.text, "answer": q.label}
            for q in questions]
    # same question id and the same (generic) question text, but about another image: another POPE version
    rows[0]["image"] = "COCO_val2014_000000000999.jpg"
    rows[2]["image"] = "COCO_val2014_000000000998.jpg"
    with pytest.raises(DeemEvalError, match=r"2 of 120 answer rows .* different question text or image"):
        match_answers(split, write_lines(tmp_path / "a.jsonl", rows))


def test_conflicting_duplicates_are_an_error_naming_lines_and_id(tmp_path):
    split, questions = split_and_questions(tmp_path)
    rows = id_rows(split, questions)
    rows.append(dict(rows[3], answer="yes" if rows[3]["answer"] == "no" else "no"))    # line 121 contradicts 4
    with pytest.raises(DeemEvalError, match=r"(?s)dup\.jsonl: 1 questions are answered more than once with "
                                             r"different answers.*'pope-coco-random/000004': line 4 answers 'no', "
                                             r"line 121 answers 'yes'"):
        match_answers(split, write_lines(tmp_path / "dup.jsonl", rows))


def test_identical_duplicates_are_kept_once_and_counted(tmp_path):
    split, questions = split_and_questions(tmp_path)
    rows = id_rows(split, questions)
    rows += [dict(rows[0]), dict(rows[1])]
    matched = match_answers(split, write_lines(tmp_path / "dup.jsonl", rows))
    assert (matched.rows, matched.matched, matched.duplicate_rows, matched.unmatched_rows) == (122, 120, 2, 0)
    assert any("2 rows repeat an earlier row's answer" in n for n in matched.notes)
    # the same holds for rows matched by (subset, image, question)
    keyed = [{"image": q.image, "question": q.text, "answer": q.label} for q in questions]
    keyed.append(dict(keyed[9], answer="yes" if keyed[9]["answer"] == "no" else "no"))
    with pytest.raises(DeemEvalError, match=r"keyed\.jsonl: 1 questions.*\n.*line 10 answers 'no', line 121 answers 'yes'"):
        match_answers(split, write_lines(tmp_path / "keyed.jsonl", keyed))
