"""Compatibility parsers: verdicts on tricky answers (hand-written), the metric conventions they imply (hand-
computed), and scoring of the published files with their own labels."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from deem_eval.core.registry import PARSERS
from deem_eval.scoring.metrics import compute_metrics, encode_gold, encode_predictions
from deem_eval.scoring.parsers_compat import (
    DEEM,
    LMMS_EVAL,
    POPE_OFFICIAL,
    VLMEVALKIT,
    deem_extract,
    vlmevalkit_punctuation,
)

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "pope"
needs_fixtures = pytest.mark.skipif(not FIXTURES.is_dir(), reason=f"published POPE fixtures not found at {FIXTURES}")
NAMES = ("pope-official", "lmms-eval", "vlmevalkit", "deem")

# answer -> (pope-official, lmms-eval, vlmevalkit, deem); worked out by hand from each upstream rule.
TABLE = {
    "Yes.": ("yes", "unknown", "yes", "yes"),
    "NO": ("yes", "no", "no", "no"),                      # pope-official: only No / no / not count
    " no\n": ("yes", "no", "no", "no"),                    # pope-official: the token is "no\n"
    "There isn't a dog.": ("yes", "unknown", "unknown", "unknown"),
    "There is not a dog.": ("no", "unknown", "unknown", "unknown"),   # deem: "not a dog" -> "dog"
    "Yes, but no cat.": ("no", "unknown", "unknown", "yes"),          # deem cuts at the comma
    "": ("yes", "unknown", "unknown", "unknown"),
    "Not sure.": ("yes", "unknown", "unknown", "unknown"),            # "Not" is not "not"
    "No, there is no dog.": ("no", "unknown", "no", "no"),
    "The answer is no.": ("no", "unknown", "no", "no"),               # deem: text after "is "
    "Answer: no": ("no", "unknown", "no", "unknown"),                 # deem keeps "answer  no"
    "Yes/No": ("yes", "unknown", "unknown", "unknown"),               # vlmevalkit: "/" -> space: both words
    "This is a yes": ("yes", "unknown", "yes", "unknown"),            # deem: split("is ")[1] of "this is ..." is ""
    '"Yes"': ("yes", "unknown", "yes", "yes"),
    "yes\nno": ("yes", "unknown", "unknown", "yes"),                  # deem: first line only
    "Absolutely not.": ("no", "unknown", "unknown", "unknown"),
}


def test_registered_with_names_and_conventions():
    for name in NAMES:
        parser = PARSERS.get(name)
        assert parser.name == name and parser.description
    assert PARSERS.get("lmms-eval").convention.unknown_in_prf == "drop"
    assert PARSERS.get("lmms-eval").convention.yes_ratio_of == "labels"
    for name in ("pope-official", "vlmevalkit", "deem"):
        convention = PARSERS.get(name).convention
        assert (convention.unknown_in_prf, convention.yes_ratio_of) == ("not_yes", "predictions")


@pytest.mark.parametrize("answer", sorted(TABLE))
def test_tricky_answers(answer):
    got = tuple(PARSERS.get(name).parse(answer) for name in NAMES)
    assert got == TABLE[answer]


def test_vlmevalkit_punctuation_quirks():
    assert vlmevalkit_punctuation("yes, it is") == "yes it is"          # ", " -> deleted
    assert vlmevalkit_punctuation("yes,it is") == "yes it is"           # no space next to it -> space
    assert vlmevalkit_punctuation("1,000 (yes)") == "1000 yes"          # a digit,digit comma deletes all
    assert vlmevalkit_punctuation("no. 3.5") == "no 3.5"                # periods between digits stay
    assert vlmevalkit_punctuation("." * 40) == "." * 8                  # only 32 lone periods are removed


def test_deem_extraction_steps():
    assert deem_extract('  "Yes", it is.  ') == "yes"
    assert deem_extract("There are the cats of the house") == "cats"
    assert deem_extract("It is a dog or a cat") == "dog"
    assert deem_extract("[yes]") == "yes"


@given(st.text(max_size=40))
def test_pope_official_never_unknown_and_lmms_eval_is_exact(text):
    assert POPE_OFFICIAL.parse(text) in ("yes", "no")
    expected = text.lower().strip()
    assert LMMS_EVAL.parse(text) == (expected if expected in ("yes", "no") else "unknown")
    assert VLMEVALKIT.parse(text) in ("yes", "no", "unknown") and DEEM.parse(text) in ("yes", "no", "unknown")


# ---- metrics under each convention, computed by hand ------------------------------------------------------

GOLD = ["yes", "yes", "yes", "yes", "no", "no", "no", "no", "yes", "no"]
ANSWERS = ["Yes", "yes", "no", "Not sure.", "no", "No", "yes", "Yes.", "", "maybe"]
#  name: (accuracy, precision, recall, f1, yes_ratio)
EXPECTED = {
    # verdicts y y n y | n n y y | y y : TP 4 FN 1 TN 2 FP 3
    "pope-official": (6 / 10, 4 / 7, 4 / 5, 8 / 12, 7 / 10),
    # y y n u | n n y u | u u : TP 2 FN 1 (unknowns dropped) TN 2 FP 1; yes-ratio of labels 5/10
    "lmms-eval": (4 / 10, 2 / 3, 2 / 3, 2 / 3, 5 / 10),
    # y y n u | n n y y | u u : TP 2, FN 1 + 2 unknowns, FP 2
    "vlmevalkit": (4 / 10, 2 / 4, 2 / 5, 4 / 9, 4 / 10),
    "deem": (4 / 10, 2 / 4, 2 / 5, 4 / 9, 4 / 10),
}


@pytest.mark.parametrize("name", NAMES)
def test_metrics_follow_each_convention(name):
    parser = PARSERS.get(name)
    metrics = compute_metrics(encode_gold(GOLD), encode_predictions(parser.parse_many(ANSWERS)),
                              convention=parser.convention)
    got = (metrics.accuracy.value, metrics.precision.value, metrics.recall.value, metrics.f1.value,
           metrics.yes_ratio.value)
    assert got == pytest.approx(EXPECTED[name])
    assert metrics.n == 10


def upstream_pope_eval(answers: list[str], labels: list[str]) -> dict[str, float]:
    """evaluate.py's arithmetic as its README describes it (answers and labels zipped by position)."""
    preds = [POPE_OFFICIAL.parse(a) for a in answers]
    tp = sum(p == "yes" and g == "yes" for p, g in zip(preds, labels))
    fp = sum(p == "yes" and g == "no" for p, g in zip(preds, labels))
    tn = sum(p == "no" and g == "no" for p, g in zip(preds, labels))
    fn = sum(p == "no" and g == "yes" for p, g in zip(preds, labels))
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    return {"accuracy": (tp + tn) / len(labels), "precision": precision, "recall": recall,
            "f1": 2 * precision * recall / (precision + recall), "yes_ratio": preds.count("yes") / len(preds)}


@needs_fixtures
def test_every_scorer_gives_accuracy_one_for_the_labels_and_pope_official_matches_upstream(tmp_path):
    from deem_eval.benchmarks.pope import published_split, read_published
    from deem_eval.scoring.answer_files import match_answers
    from deem_eval.scoring.score import Answer, score_answers

    groups = [sorted((FIXTURES / "coco/current").glob("*.json")), [FIXTURES / "coco/2023-05/coco_pope_random.json"],
              [FIXTURES / "coco/2023-10/coco_pope_adversarial.json"], sorted((FIXTURES / "seem/aokvqa").glob("*.json"))]
    for group in groups:
        files = [read_published(path) for path in group]
        split, _ = published_split(files)
        samples = {s.id: s for s in split.samples}
        for f in files:
            path = tmp_path / f"answers_{f.dataset}_{f.subset}.jsonl"
            path.write_text("".join(json.dumps({"question_id": q.question_id, "image": q.image, "question": q.text,
                                                "answer": q.label}) + "\n" for q in f.questions))
            matched = match_answers(split, path)
            assert matched.matched == len(f.questions)
            answers = [Answer(i, t) for i, t in matched.answers.items()]
            for name in NAMES:
                metrics = score_answers(samples, answers, PARSERS.get(name))
                assert metrics["overall"]["accuracy"]["value"] == 1.0, (name, f.subset)

    # a realistic answers file, shuffled: matched by (image, question) it scores exactly as upstream's script
    # scores the same answers in the original order
    random_file = read_published(FIXTURES / "coco/current/coco_pope_random.json")
    rng = random.Random(0)
    texts = [rng.choice(["Yes.", "No.", "Yes, there is.", "No, there is not.", "There is not.", "yes", "NO", ""])
             for _ in random_file.questions]
    reference = upstream_pope_eval(texts, [q.label for q in random_file.questions])
    lines = [json.dumps({"question_id": q.question_id, "image": q.image, "question": q.text, "answer": t}) + "\n"
             for q, t in zip(random_file.questions, texts)]
    rng.shuffle(lines)
    path = tmp_path / "shuffled_random.jsonl"
    path.write_text("".join(lines))
    split, _ = published_split([random_file])
    matched = match_answers(split, path)
    metrics = score_answers({s.id: s for s in split.samples},
                            [Answer(i, t) for i, t in matched.answers.items()], POPE_OFFICIAL)
    for key, value in reference.items():
        assert metrics["overall"][key]["value"] == pytest.approx(value), key
    # and zipping the shuffled file by position, as upstream would, gives different (wrong) numbers
    shuffled_texts = [json.loads(line)["answer"] for line in lines]
    wrong = upstream_pope_eval(shuffled_texts, [q.label for q in random_file.questions])
    assert not np.isclose(wrong["accuracy"], reference["accuracy"])
