"""Compatibility parsers: score answers the way a published harness did, quirks included.

Each reproduces one upstream rule (re-implemented here from its description, checked against the code):

- `pope-official` — RUCAIBox/POPE evaluate.py (also LLaVA's eval_pope.py): keep the text before the first
  ".", delete commas, split on single spaces; "no" iff a token is exactly "No", "no" or "not", otherwise
  "yes" (the empty answer, "NO" and "Not sure." included). It never says unknown.
- `lmms-eval` — lmms_eval/tasks/pope/utils.py: lower-case and strip, then exact "yes"/"no"; anything else
  is wrong for accuracy and drops out of precision and recall; its "yes ratio" is the share of *labels*
  that are yes (a constant 0.5 on POPE), reproduced under its own convention and flagged.
- `vlmevalkit` — VLMEvalKit YOrN_Extraction (exact-matching path, no judge model): lower-case, VLMEvalKit's
  punctuation clean-up, split on whitespace; yes if "yes" is a word and "no" is not, no for the reverse,
  otherwise Unknown; Unknown is wrong for accuracy and counts as "no" for precision/recall/F1.
- `deem` — DEEM's extract_answer + imagenet_eval (uni_interleaved/utils/vqa_score.py, imagenet_score.py):
  drop double quotes; first line; cut at ".", "," and "!"; lower-case; after "is ", "are ", "a ", "an ",
  "the " (in that order, each if present) keep the piece between the first and second occurrence (Python's
  split(x)[1]); cut before " of", " or ", " and "; strip; ":", "[", "]" become spaces; exact match with the
  label. DEEM reports accuracy only; precision/recall here count an unmatched answer as not-yes.
"""

from __future__ import annotations

import re

from deem_eval.scoring.metrics import MetricConvention
from deem_eval.scoring.parsing import NO, UNKNOWN, YES, Parser


def pope_official_parse(text: str) -> str:
    if "." in text:
        text = text.split(".")[0]
    words = text.replace(",", "").split(" ")
    return NO if ("No" in words or "not" in words or "no" in words) else YES


def lmms_eval_parse(text: str) -> str:
    pred = text.lower().strip()
    return pred if pred in (YES, NO) else UNKNOWN


# VLMEvalKit's process_punctuation (vlmeval/smp/misc.py), re-implemented with its quirks: a character is
# deleted when it touches a space anywhere in the text (or when the text has a digit,digit comma), else it
# becomes a space; then lone periods are deleted, but at most 32 of them (re.UNICODE is passed where
# re.sub expects `count`).
_VLM_PUNCT = (";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`",
              ",", "?", "!")
_DIGIT_COMMA_DIGIT = re.compile(r"(\d)(,)(\d)")
_LONE_PERIOD = re.compile(r"(?<!\d)\.(?!\d)")
_VLM_PERIOD_LIMIT = int(re.UNICODE)   # == 32


def vlmevalkit_punctuation(text: str) -> str:
    out = text
    digit_comma = _DIGIT_COMMA_DIGIT.search(text) is not None
    for p in _VLM_PUNCT:
        if p + " " in text or " " + p in text or digit_comma:
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    return _LONE_PERIOD.sub("", out, count=_VLM_PERIOD_LIMIT)


def vlmevalkit_parse(text: str) -> str:
    words = vlmevalkit_punctuation(text.lower()).split()
    has_yes, has_no = YES in words, NO in words
    if has_yes and not has_no:
        return YES
    if has_no and not has_yes:
        return NO
    return UNKNOWN


def deem_extract(text: str) -> str:
    """The string DEEM compares with the label (its trainer strips the generated text first)."""
    response = text.strip().replace('"', "")
    response = response.strip().split("\n")[0].split(".")[0].split(",")[0].split("!")[0].lower()
    for marker in ("is ", "are ", "a ", "an ", "the "):
        if marker in response:
            response = response.split(marker)[1]
    for marker in (" of", " or ", " and "):
        if marker in response:
            response = response.split(marker)[0]
    response = response.strip()
    for char in (":", "[", "]"):
        response = response.replace(char, " ")
    return response.replace("\n", " ").replace("\t", " ").strip().lower()


def deem_parse(text: str) -> str:
    answer = deem_extract(text)
    return answer if answer in (YES, NO) else UNKNOWN


POPE_OFFICIAL = Parser(
    name="pope-official",
    parse=pope_official_parse,
    description="RUCAIBox/POPE evaluate.py: first sentence, commas removed, split on spaces; 'no' iff a token "
                "is No/no/not, else 'yes' (empty and unparseable answers count as yes).",
)

LMMS_EVAL = Parser(
    name="lmms-eval",
    parse=lmms_eval_parse,
    description="lmms-eval POPE task: exact yes/no after lower+strip; others wrong for accuracy and dropped "
                "from precision/recall. FLAG: its yes-ratio counts labels, not predictions.",
    convention=MetricConvention(unknown_in_prf="drop", yes_ratio_of="labels"),
)

VLMEVALKIT = Parser(
    name="vlmevalkit",
    parse=vlmevalkit_parse,
    description="VLMEvalKit YOrN_Extraction (exact matching, no judge): yes/no as words after its punctuation "
                "clean-up, both or neither -> Unknown (wrong; counted as 'no' in precision/recall/F1).",
)

DEEM = Parser(
    name="deem",
    parse=deem_parse,
    description="DEEM extract_answer + imagenet_eval: first line/clause, lower-case, text after is/are/a/an/"
                "the, exact match with the label; anything else is wrong.",
)

COMPAT_PARSERS = (POPE_OFFICIAL, LMMS_EVAL, VLMEVALKIT, DEEM)
