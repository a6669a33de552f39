import pytest
from hypothesis import given
from hypothesis import strategies as st

from deem_eval.parsing import STRICT, strict_parse
from deem_eval.registry import PARSERS


@pytest.mark.parametrize("text, expected", [
    ("Yes.", "yes"), ("yes", "yes"), ("YES", "yes"), ("  Yes, there is a dog in the image.\n", "yes"),
    ("NO", "no"), (" no\n", "no"), ("No.", "no"), ("No, there is not.", "no"),
    ("There isn't a dog.", "no"), ("There is not a dog.", "no"), ("There is no dog.", "no"),
    ("There isn\u2019t a dog.", "no"), ("Nope", "no"),
    ("Yes, but no cat.", "unknown"),          # contradiction
    ("", "unknown"), ("   ", "unknown"),       # no answer
    ("Not sure.", "unknown"), ("I cannot tell.", "unknown"), ("Maybe.", "unknown"),
    ("There is a dog.", "unknown"),             # says neither yes nor no
    ("Yesterday I saw a dog", "unknown"),       # 'yes' only as part of a word
    ("Nothing like that", "no"),
    ("yes and no", "unknown"),
])
def test_strict_parser_table(text, expected):
    assert strict_parse(text) == expected


def test_strict_is_the_registered_default():
    assert PARSERS.get("strict") is STRICT


def test_parse_many_matches_parse_and_handles_none():
    texts = ["Yes.", None, "no", "Yes.", "Not sure."]
    assert STRICT.parse_many(texts) == ["yes", "unknown", "no", "yes", "unknown"]


@given(st.text(max_size=60))
def test_strict_parser_is_total(text):
    assert strict_parse(text) in {"yes", "no", "unknown"}


@given(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=60))
def test_strict_parser_ignores_case(text):
    assert strict_parse(text.upper()) == strict_parse(text.lower())


@given(st.sampled_from(["Yes", "No"]), st.sampled_from(["", ".", "!", ",", " ", "\n"]))
def test_bare_answers_with_punctuation(word, punct):
    assert strict_parse(word + punct) == word.lower()
