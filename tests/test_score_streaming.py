"""`deem-eval score` streams: samples.jsonl is read a chunk at a time (records across chunk edges, torn tails,
damaged lines named by their line in the file), and the scorer keeps codes, not texts, with the same document
as scoring every answer at once, whatever the chunks."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from conftest import make_split

from deem_eval.core.errors import DeemEvalError
from deem_eval.model_adapters.baselines import AlwaysYes
from deem_eval.run import rundir as rundir_module
from deem_eval.run.rundir import DuplicateRecordsWarning, Failure, RunDir
from deem_eval.run.runner import RunOptions, finalize, run
from deem_eval.scoring.parsing import STRICT
from deem_eval.scoring.score import Answer, DuplicateAnswersWarning, score_answers, score_document
from tests.test_scoring_speedpaths import PERF, _bytes


@pytest.fixture
def answered_run(tmp_path):
    split = make_split(tmp_path / "split", n_images=12)
    result = run(AlwaysYes(), split, STRICT, RunOptions(batch_size=4, out=tmp_path / "runs", progress=False))
    return split, RunDir.open(result.run_dir)


@pytest.mark.parametrize("chunk_bytes", [1, 7, 64, 1000, 1 << 20])
def test_chunked_reading_gives_every_record_once(answered_run, monkeypatch, chunk_bytes):
    _, run_dir = answered_run
    whole = run_dir.read_records()
    monkeypatch.setattr(rundir_module, "_READ_CHUNK", chunk_bytes)
    assert run_dir.read_records() == whole
    assert [a for chunk in run_dir.answer_chunks() for a in chunk] == [Answer(r.id, r.output, r.yes_prob)
                                                                       for r in whole]
    assert run_dir.answered_ids() == {r.id for r in whole}


@pytest.mark.parametrize("chunk_bytes", [5, 200, 1 << 20])
def test_a_torn_tail_is_cut_once_every_chunk_is_read(answered_run, monkeypatch, chunk_bytes):
    _, run_dir = answered_run
    monkeypatch.setattr(rundir_module, "_READ_CHUNK", chunk_bytes)
    path = run_dir.samples_path()
    complete = path.read_bytes()
    path.write_bytes(complete + b'{"id": "torn", "out')
    assert len(list(run_dir.answer_chunks(repair=False))) >= 1 and path.read_bytes() != complete
    assert len([a for chunk in run_dir.answer_chunks() for a in chunk]) == len(complete.splitlines())
    assert path.read_bytes() == complete


@pytest.mark.parametrize("damage, message", [("{not json}", "malformed record"), ('{"id": "x"}', "malformed record"),
                                             ("[1, 2]", "malformed record"), ('"text"', "malformed record")])
@pytest.mark.parametrize("chunk_bytes", [9, 1 << 20])
def test_a_damaged_line_is_named_across_chunks(answered_run, monkeypatch, damage, message, chunk_bytes):
    _, run_dir = answered_run
    monkeypatch.setattr(rundir_module, "_READ_CHUNK", chunk_bytes)
    path = run_dir.samples_path()
    lines = path.read_text().splitlines(keepends=True)
    lines[9] = damage + "\n"
    lines.insert(2, "\n")                               # a blank line is skipped, and still counted
    path.write_text("".join(lines))
    for read in (run_dir.read_records, lambda: [a for c in run_dir.answer_chunks() for a in c]):
        with pytest.raises(DeemEvalError, match=rf"samples.jsonl:11: {message}"):
            read()


def test_failures_of_answered_samples_are_dropped_chunk_by_chunk(answered_run, monkeypatch):
    _, run_dir = answered_run
    monkeypatch.setattr(rundir_module, "_READ_CHUNK", 50)
    answered = sorted(run_dir.answered_ids())
    run_dir.append_failures([Failure(answered[3], "model", "boom"), Failure("never/answered", "image", "bad"),
                             Failure(answered[-1], "image", "x")])
    assert run_dir.read_failures() == [Failure("never/answered", "image", "bad")]


def _chunks(items: list[Answer], sizes: list[int]) -> list[list[Answer]]:
    out, start = [], 0
    for size in sizes:
        out.append(items[start:start + size])
        start += size
    return out + [items[start:]]


@pytest.mark.parametrize("order", ["split", "shuffled"])
def test_chunked_scoring_equals_scoring_at_once(order):
    samples, answers = PERF.grouped_answers(5_000, True)
    answers = list(answers) + [Answer("unselected/1", "Yes.", 0.2), Answer("unselected/2", None, None)]
    if order == "shuffled":
        np.random.default_rng(2).shuffle(answers)        # type: ignore[arg-type]
    expected = _bytes(PERF._old_score_answers(samples, answers, STRICT))
    assert _bytes(score_answers(samples, answers, STRICT)) == expected
    rng = np.random.default_rng(5)
    for _ in range(3):
        sizes = rng.integers(0, 900, size=12).tolist()
        doc = score_document(samples, _chunks(answers, sizes), STRICT, chunked=True)
        assert _bytes(doc.to_json()) == expected
    assert _bytes(score_document(samples, [], STRICT, chunked=True).to_json()) == _bytes(
        PERF._old_score_answers(samples, [], STRICT))


def test_the_first_of_two_answers_to_an_id_counts_with_a_warning():
    samples, answers = PERF.grouped_answers(600, False)
    answers = list(answers)
    doubled = answers[:300] + [Answer(answers[5].id, "No, no.")] + answers[300:] + [Answer(answers[7].id, "Yes.")]
    with pytest.warns(DuplicateAnswersWarning, match=r"run/samples.jsonl: 2 duplicate answer\(s\) ignored"):
        doc = score_document(samples, _chunks(doubled, [100, 250, 2]), STRICT, chunked=True,
                             source="run/samples.jsonl")
    assert _bytes(doc.to_json()) == _bytes(PERF._old_score_answers(samples, answers, STRICT))
    assert issubclass(DuplicateRecordsWarning, DuplicateAnswersWarning)


def test_finalize_scores_a_run_with_a_duplicate_record_once(answered_run):
    split, run_dir = answered_run
    expected = finalize(run_dir, split, STRICT)
    path = run_dir.samples_path()
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines) + json.dumps(json.loads(lines[0]) | {"output": "no"}) + "\n")
    with pytest.warns(DuplicateAnswersWarning, match="1 duplicate answer"):
        again = finalize(run_dir, split, STRICT)
    assert again["overall"] == expected["overall"] and again["n_answered"] == expected["n_answered"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path.write_text("".join(lines))
        assert finalize(run_dir, split, STRICT)["overall"] == expected["overall"]


def test_the_speed_script_runs_and_finds_both_readers_equal():
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).parent / "perf" / "score_run.py"
    done = subprocess.run([sys.executable, str(script), "--answers", "3000"], check=False, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "answers identical" in done.stdout and "`deem-eval score RUN` (3000 answers), attempt 2" in done.stdout
