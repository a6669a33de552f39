from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deem_eval.core.registry import PARSERS
from deem_eval.scoring.parsing import STRICT, strict_parse
from deem_eval.scoring.strict_rule import _NON_ANSWER, _NON_ANSWER_WORDS, _WORDS

LABELLED = Path(__file__).parent / "data" / "strict_parser_answers.tsv"


def _labelled() -> list[tuple[int, str, str, str, str]]:
    """(line number, style, answer, label, reason); a literal backslash-n in an answer is a newline."""
    lines = LABELLED.read_text(encoding="utf-8").split("\n")
    assert lines[0] == "style\tanswer\tlabel\treason"
    rows = []
    for lineno, line in enumerate(lines[1:], start=2):
        if line:
            style, answer, label, reason = line.split("\t")
            rows.append((lineno, style, answer.replace("\\n", "\n"), label, reason))
    return rows


ROWS = _labelled()


@pytest.mark.parametrize("text, expected", [
    ("Yes.", "yes"), ("yes", "yes"), ("YES", "yes"), ("  Yes, there is a dog in the image.\n", "yes"),
    ("NO", "no"), (" no\n", "no"), ("No.", "no"), ("No, there is not.", "no"),
    ("There isn't a dog.", "no"), ("There is not a dog.", "no"), ("There is no dog.", "no"),
    ("There isn\u2019t a dog.", "no"), ("Nope", "no"),
    ("Yes, but no cat.", "unknown"),          # contradiction
    ("", "unknown"), ("   ", "unknown"),       # no answer
    ("Not sure.", "unknown"), ("I cannot tell.", "unknown"), ("Maybe.", "unknown"),
    ("There is a dog.", "yes"),                 # an affirmative statement answers yes (was unknown)
    ("Yesterday I saw a dog", "unknown"),       # 'yes' only as part of a word
    ("Nothing like that", "no"),
    ("yes and no", "unknown"),
    # refusals are not "no" (all were "no" before)
    ("I don't know.", "unknown"), ("I have no idea.", "unknown"), ("Not certain.", "unknown"),
    ("There is no way to know.", "unknown"), ("None of the above.", "unknown"),
    ("No doubt, there is a cat.", "yes"),       # an idiom that affirms (was "no")
    # clear answers (all were unknown before)
    ("Yes, there is a cat. There is no dog.", "yes"), ("No, I can't see any cat.", "no"), ("Sure.", "yes"),
    ("Yes, I'm sure.", "yes"), ("Correct.", "yes"), ("Absolutely", "yes"), ("There is a cat in the image.", "yes"),
    ("There is no cat in the image.", "no"), ("I can't see any cat", "no"), ("The image does not contain a cat", "no"),
    ("Oui", "unknown"), ("ja", "unknown"), ("Sí", "unknown"), ("Nein", "unknown"), ("non", "unknown"),
])
def test_strict_parser_table(text, expected):
    assert strict_parse(text) == expected


def test_strict_is_the_registered_default():
    assert PARSERS.get("strict") is STRICT


def test_parse_many_matches_parse_and_handles_none():
    texts = ["Yes.", None, "no", "Yes.", "Not sure."]
    assert STRICT.parse_many(texts) == ["yes", "unknown", "no", "yes", "unknown"]


def test_labelled_set_is_large_and_covers_every_style_and_label():
    assert len(ROWS) >= 400
    assert {style for _, style, *_ in ROWS} == {"llava", "qwen-vl", "instructblip", "gpt-4v", "other-language",
                                                "adversarial"}
    assert {label for *_, label, _ in ROWS} == {"yes", "no", "unknown"}
    assert all(reason.strip() for *_, reason in ROWS)


@pytest.mark.parametrize("lineno, style, answer, label, reason", ROWS, ids=[f"line{r[0]}" for r in ROWS])
def test_labelled_answer(lineno, style, answer, label, reason):
    assert strict_parse(answer) == label, f"{LABELLED.name}:{lineno} ({style}): {reason}"


@pytest.mark.parametrize("lineno, style, answer, label, reason", ROWS, ids=[f"line{r[0]}" for r in ROWS])
def test_non_answer_prefilter_never_skips_a_match(lineno, style, answer, label, reason):
    text = answer.lower().replace("\u2019", "'")
    if _NON_ANSWER.search(text):
        assert not _NON_ANSWER_WORDS.isdisjoint(_WORDS.findall(text))


@given(st.sampled_from([r[2] for r in ROWS]),
       st.sampled_from(["I'm not sure.", "Maybe.", "I don't know.", "I cannot tell.", "Sorry,"]),
       st.booleans())
def test_a_hedge_or_refusal_anywhere_makes_unknown(answer, hedge, before):
    assert strict_parse(f"{hedge} {answer}" if before else f"{answer} {hedge}") == "unknown"


@given(st.sampled_from(["oui", "non", "ja", "nein", "sí", "si", "da", "nej"]),
       st.sampled_from(["", ".", "!", ","]))
def test_other_languages_yes_no_are_unknown(word, punct):
    assert strict_parse(word + punct) == strict_parse(word.capitalize() + punct) == "unknown"


@given(st.text(max_size=60))
def test_strict_parser_is_total(text):
    assert strict_parse(text) in {"yes", "no", "unknown"}


@given(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=60))
def test_strict_parser_ignores_case(text):
    assert strict_parse(text.upper()) == strict_parse(text.lower())


@given(st.sampled_from(["Yes", "No"]), st.sampled_from(["", ".", "!", ",", " ", "\n"]))
def test_bare_answers_with_punctuation(word, punct):
    assert strict_parse(word + punct) == word.lower()
