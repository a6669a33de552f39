"""JSON lines are split on "\\n" only: U+2028, U+2029 and U+0085 are legal raw inside JSON strings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deem_eval.benchmarks.pope.published import read_published
from deem_eval.core.jsonio import json_lines, read_json_records
from deem_eval.run.rundir import Failure, RunDir

ODD = "a\u2028b\u2029c\u0085d"     # str.splitlines breaks a line at each of these


def _lines(rows: list[dict], newline: str = "\n") -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + newline for row in rows)


@pytest.mark.parametrize("text, plain, keepends", [
    ("", [], []),
    ("a", ["a"], ["a"]),
    ("a\n", ["a"], ["a\n"]),
    ("a\r\nb\r\n", ["a", "b"], ["a\r\n", "b\r\n"]),
    ("a\n\nb", ["a", "", "b"], ["a\n", "\n", "b"]),
    (f"{ODD}\n", [ODD], [f"{ODD}\n"]),
])
def test_json_lines(text, plain, keepends):
    assert json_lines(text) == plain
    assert json_lines(text, keepends=True) == keepends


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_records_with_line_separators_inside_strings(tmp_path: Path, newline: str):
    rows = [{"doc_id": 0, "resps": [[f"Yes.{ODD}"]]}, {"doc_id": 1, "resps": [["No"]]}]
    path = tmp_path / "lmms_eval_log.jsonl"
    path.write_bytes(_lines(rows, newline).encode("utf-8"))
    assert read_json_records(path) == [(f"{path}:1", rows[0]), (f"{path}:2", rows[1])]


def test_failures_with_line_separators_inside_strings(tmp_path: Path):
    run = RunDir(tmp_path, None)  # type: ignore[arg-type]   # reading failures needs only the path
    run.append_failures([Failure("q1", "model", f"CUDA said: {ODD}")])
    assert run.read_failures() == [Failure("q1", "model", f"CUDA said: {ODD}")]


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_published_questions_with_line_separators_inside_strings(tmp_path: Path, newline: str):
    rows = [{"question_id": 1, "image": "x.jpg", "text": f"Is there a cat{ODD} in the image?", "label": "yes"},
            {"question_id": 2, "image": "x.jpg", "text": "Is there a dog in the image?", "label": "no"}]
    path = tmp_path / "coco_pope_random.json"
    path.write_bytes(_lines(rows, newline).encode("utf-8"))
    published = read_published(path)
    assert [q.text for q in published.questions] == [r["text"] for r in rows]
    assert published.layout.newline == newline
