"""The strict parser's shortcuts give the full rule's verdicts: the vectorised batch path, the non-answer
patterns searched only when their trigger words occur, and the clause / negation prefilters."""

from __future__ import annotations

import random

import pytest

from deem_eval.scoring import strict_batch
from deem_eval.scoring.parsing import STRICT
from deem_eval.scoring.strict_batch import strict_parse_batch
from deem_eval.scoring.strict_rule import (
    _NON_ANSWER,
    _NON_ANSWER_TABLE,
    _letter_runs,
    _normalise,
    _strict_parse_full,
    strict_parse,
)
from tests.test_split_loading import _generated_answers


def _labelled() -> list[str]:
    from pathlib import Path

    path = Path(__file__).parent / "data" / "strict_parser_answers.tsv"
    return [line.split("\t")[1].replace("\\n", "\n") for line in path.read_text(encoding="utf-8").split("\n")[1:]
            if line]


def _edge_texts() -> list[str]:
    """Texts at the batch path's edges: surrounding whitespace (str.strip's ASCII set), runs of 8/9/16/17
    letters around stop words, stop words glued to digits and apostrophes, bare leads."""
    return ["yes", "no", "yes.", "no!", "", " ", "yes ", " yes", "\x1fyes", "yes\x1c", "\tno", "no\x0b", "ye", "n",
            "y", "yes no", "no yes", "yesno", "noyes", "yes3", "no3", "yes'", "no'", "yes-no", "no, yes",
            "yes, nothingness here", "yes, notwithstandingly", "yes, undoubtedlyx", "yes, undoubtedly",
            "no, actuallyy", "no, actually", "yes, abcdefgh", "yes, abcdefghi", "yes, abcdefghijklmnop",
            "yes, abcdefghijklmnopq", "yes, indeterminate", "yes, indeterminatex", "no, unanswerable",
            "yes, 5not", "yes, not5", "yes, isn't", "yes, n't", "no, think so", "no, i think", "yes, maybe",
            "no, perhaps", "yes, sure", "no. sure", "yes, i can see it", "no, i can't tell", "yes, it is"]


def test_batch_path_agrees_with_one_at_a_time():
    texts = _edge_texts() + [t.upper() for t in _edge_texts()] + _generated_answers(20_000, seed=7) + _labelled()
    ascii_texts = [t for t in texts if t.isascii() and "\0" not in t]
    assert len(ascii_texts) > 10_000
    assert strict_parse_batch(ascii_texts) == [strict_parse(t) for t in ascii_texts]
    assert strict_parse_batch(texts) == [strict_parse(t) for t in texts]          # mixed chunks too


def test_batch_path_agrees_across_chunk_boundaries(monkeypatch):
    monkeypatch.setattr(strict_batch, "CHUNK_TEXTS", 7)
    monkeypatch.setattr(strict_batch, "VECTOR_MIN_TEXTS", 0)
    texts = _edge_texts() + ["Yés", "no\x00yes", "yes"] + _generated_answers(500, seed=8)
    assert strict_parse_batch(texts) == [strict_parse(t) for t in texts]
    assert strict_parse_batch([]) == []


def test_shortcuts_agree_with_the_full_rule():
    texts = _edge_texts() + _generated_answers(40_000, seed=9) + _labelled()
    assert [strict_parse(t) for t in texts] == [_strict_parse_full(t) for t in texts]


@pytest.mark.parametrize("index", range(len(_NON_ANSWER_TABLE)))
def test_every_non_answer_match_holds_one_of_its_trigger_words(index):
    words, pattern = _NON_ANSWER_TABLE[index]
    import re

    compiled = re.compile(pattern)
    triggers = {w.split("'")[0].encode() for w in words.split()}
    rng = random.Random(index)
    vocab = sorted({w for ws, _ in _NON_ANSWER_TABLE for w in ws.split()} | {"not", "no", "to", "be", "the", "see",
                   "tell", "image", "say", "it", "i", "don't", "do", "of", "an", "as", "a", "5", "x'"})
    texts = [_normalise(t) for t in _labelled() + _generated_answers(10_000, seed=index)]
    texts += [" ".join(rng.choice(vocab) for _ in range(rng.randrange(1, 7))) for _ in range(20_000)]
    matched = [t for t in texts if t.isascii() and compiled.search(t)]
    assert matched, "the texts never exercise this pattern"
    assert all(not triggers.isdisjoint(_letter_runs(t)) for t in matched)


def test_joined_pattern_is_the_table():
    assert _NON_ANSWER.pattern == "|".join(pattern for _, pattern in _NON_ANSWER_TABLE)


def test_a_hedge_glued_by_an_apostrophe_is_unknown():
    # the former word prefilter read "yep'unclear" as one word and skipped the hedge patterns
    assert strict_parse("Yep'unclear") == _strict_parse_full("Yep'unclear") == "unknown"
    assert strict_parse("Yes, I'm not sure's") == "unknown"


def test_parse_many_with_and_without_the_table():
    distinct = _generated_answers(5_000, seed=10)
    repeated = ["Yes.", "No.", "There is a dog.", None] * 1_000
    assert STRICT.parse_many(distinct) == [strict_parse(t) for t in distinct]
    assert STRICT.parse_many(repeated) == ["unknown" if t is None else strict_parse(t) for t in repeated]
    assert STRICT.parse_many(distinct + [None]) == [strict_parse(t) for t in distinct] + ["unknown"]
