"""VLMEvalKit result files (.tsv / .xlsx: index, question, answer, prediction, category) in score --answers."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import pytest

from deem_eval.cli import main
from deem_eval.core.errors import DeemEvalError
from deem_eval.scoring.answer_files import match_answers
from tests.test_answer_files import small_published

COLUMNS = ["index", "question", "answer", "prediction", "category"]


def _rows(files, subset, *, index=lambda q: q.question_id, prediction=lambda q: q.label):
    return [{"index": index(q), "question": q.text, "answer": q.label.capitalize(), "prediction": prediction(q),
             "category": subset} for q in files[subset].questions]


def write_tsv(path: Path, rows: list[dict], columns=COLUMNS) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, delimiter="\t", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_tsv_through_score(tmp_path, capsys):
    split, files = small_published(tmp_path)
    split = split.save(tmp_path / "split")
    rows = [r for subset in ("random", "popular", "adversarial") for r in _rows(files, subset)]
    rows[0]["prediction"] = "Yes, there is a person.\nIt is clear."      # a newline inside a quoted cell
    answers = write_tsv(tmp_path / "LLaVA_POPE.tsv", rows)
    assert main(["score", "--split", str(tmp_path / "split"), "--answers", str(answers), "--parser", "vlmevalkit",
                 "--out", str(tmp_path / "metrics.json")]) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    info = metrics["answers_file"]
    assert info["source_format"] == "vlmevalkit"
    assert info["matched"] == 12 and info["unmatched_rows"] == 0 and info["missing"] == 0
    # negatives are asked once per subset (matched by the question); the person question twice (by index)
    assert set(info["matched_by"].split(", ")) == {"subset+question", "question_id"}
    assert "malformed JSON" not in capsys.readouterr().err


def test_rows_match_by_question_text_and_category(tmp_path):
    split, files = small_published(tmp_path)
    rows = _rows(files, "popular", index=lambda q: 1000 + q.question_id)     # VLMEvalKit's own numbering
    matched = match_answers(split, write_tsv(tmp_path / "r.tsv", rows))
    # only the questions asked once in the subset can be matched without a usable index
    negatives = {f"pope-coco-popular/{q.question_id:06d}" for q in files["popular"].questions if q.label == "no"}
    assert set(matched.answers) >= negatives


def test_wrong_ground_truth_is_refused(tmp_path):
    split, files = small_published(tmp_path)
    rows = _rows(files, "random")
    for r in rows:
        r["answer"] = "No" if r["answer"] == "Yes" else "Yes"       # another version of the questions
    with pytest.raises(DeemEvalError, match="ground truth|match a question"):
        match_answers(split, write_tsv(tmp_path / "r.tsv", rows))


def test_global_index_is_not_trusted_blindly(tmp_path):
    """An index that is not POPE's question id (a running number over all subsets) is caught by the text check."""
    split, files = small_published(tmp_path)
    rows = [r for subset in ("random", "popular", "adversarial") for r in _rows(files, subset)]
    for n, r in enumerate(rows):
        r["index"] = n + 5
    matched = match_answers(split, write_tsv(tmp_path / "r.tsv", rows))
    assert all(matched.answers[i] for i in matched.answers)
    # every matched answer is the right one: predictions equal the split's answers
    samples = {s.id: s for s in split.samples}
    assert all(samples[i].answer == text for i, text in matched.answers.items())


def test_image_path_column(tmp_path):
    split, files = small_published(tmp_path)
    rows = _rows(files, "adversarial", index=lambda q: 10_000 + q.question_id)
    for r, q in zip(rows, files["adversarial"].questions):
        r["image_path"] = f"/data/coco/val2014/{q.image}"
    matched = match_answers(split, write_tsv(tmp_path / "r.tsv", rows, COLUMNS + ["image_path"]))
    assert len(matched.answers) == 4 and matched.missing == 8


def test_csv_too(tmp_path):
    split, files = small_published(tmp_path)
    path = tmp_path / "r.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(_rows(files, "random"))
    assert len(match_answers(split, path).answers) == 4


@pytest.mark.skipif(importlib.util.find_spec("openpyxl") is not None, reason="openpyxl is installed")
def test_xlsx_without_openpyxl_names_the_fix(tmp_path, capsys):
    split, _ = small_published(tmp_path)
    split.save(tmp_path / "split")
    (tmp_path / "r.xlsx").write_bytes(b"PK\x03\x04 not really a workbook")
    assert main(["score", "--split", str(tmp_path / "split"), "--answers", str(tmp_path / "r.xlsx")]) == 2
    assert "pip install openpyxl" in capsys.readouterr().err


@pytest.mark.skipif(importlib.util.find_spec("openpyxl") is None, reason="openpyxl not installed")
def test_xlsx(tmp_path):
    pd = pytest.importorskip("pandas")
    split, files = small_published(tmp_path)
    path = tmp_path / "r.xlsx"
    pd.DataFrame(_rows(files, "random")).to_excel(path, index=False)
    assert len(match_answers(split, path).answers) == 4


def test_malformed_tsv_is_named(tmp_path):
    split, _ = small_published(tmp_path)
    path = tmp_path / "r.tsv"
    path.write_bytes(b"index\tquestion\n\xff\xfe\n")
    with pytest.raises(DeemEvalError, match="UTF-8"):
        match_answers(split, path)
