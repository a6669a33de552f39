"""Answer parsers: text -> "yes" | "no" | "unknown", each with a name and the metric convention it implies.

The default parser (`strict`) is honest: it answers only when the text says yes or no without
contradiction or hedging, and reports `unknown` otherwise. Compatibility parsers (registered by the
benchmarks that need them, e.g. `pope-official`) reproduce what published numbers used, quirks included.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final, Literal

from deem_eval.scoring.metrics import MetricConvention

Verdict = Literal["yes", "no", "unknown"]
YES: Final = "yes"
NO: Final = "no"
UNKNOWN: Final = "unknown"

_WORDS = re.compile(r"[a-z]+(?:'[a-z]+)?")
_NEGATIONS = frozenset({"no", "not", "none", "nope", "never", "nothing", "neither", "nor", "nobody", "nowhere",
                        "cannot", "without", "absent", "incorrect", "false"})
# Refusals and hedges: the text declines to answer or marks its answer as uncertain.
_CANT = r"(?:\bcannot|\bcan'?t|\bcan not|\bcouldn'?t|\bcould not|\bunable to|\bnot able to|\bnot possible to)"
_HARD = r"(?:\bhard|\bdifficult|\bimpossible|\bnot easy|\btricky)"
_DECIDE = (r"(?:tell|determine|say|know|answer|confirm|verify|decide|judge|ascertain|assess|discern|be sure|"
           r"be certain|make out|assist|help|provide|comply|process|access|view|analy[sz]e|evaluate)")
_NON_ANSWER = re.compile("|".join((
    r"(?:\bnot|n't)(?: \S+){0,2} (?:sure|certain|clear|confident)\b",
    r"\b(?:unsure|uncertain|unclear|ambiguous|undetermined|indeterminate|inconclusive|unknown|unanswerable)\b",
    r"\b(?:maybe|perhaps|possibly|probably|likely|unlikely|might|may|guess|presumably|arguably)\b",
    r"\bcould (?:\S+ )?be\b|\bit depends\b|\bhard to say\b",
    r"(?:\bdon'?t|\bdo not|\bdoesn'?t|\bdoes not|\bdidn'?t|\bdid not) know\b|\bno (?:idea|clue|comment)\b",
    r"\bno way (?:to|of)\b|\bnot applicable\b|\brefuse\b|\bdecline to\b",
    r"\bnone of the (?:above|options|choices|answers)\b|\bsorry\b|\bapologi[sz]e\b|\bas an ai\b",
    rf"{_CANT}(?: \S+){{0,2}}? {_DECIDE}\b",
    rf"(?:{_HARD} to|\btoo \S+ to)(?: \S+)? (?:see|{_DECIDE})\b",
    (rf"(?:{_CANT}|\bdon't have|\bdo not have) (?:access to |see |view |the ability to (?:see|view) )?"
     r"(?:the |this |any |your )?(?:image|images|picture|pictures|photo|photos)\b"),
    r"\b(?:enough|insufficient) (?:information|detail|details|context|evidence)\b|\bno (?:information|context)\b",
    r"\bcan(?:not|'t| not) be (?:determined|confirmed|verified|told|answered|seen clearly)\b",
)))
# Words without one of which _NON_ANSWER cannot match: most answers skip the regex (it is the costly step).
_NON_ANSWER_WORDS = frozenset(str.split(
    "sure certain clear confident unsure uncertain unclear ambiguous undetermined indeterminate inconclusive "
    "unknown unanswerable maybe perhaps possibly probably likely unlikely might may guess presumably arguably "
    "could couldn't couldnt depends know idea clue comment way applicable refuse decline above options choices "
    "answers sorry apologise apologize ai cannot can't cant can unable able possible hard difficult impossible "
    "easy tricky too have enough insufficient information context"))
# Idioms that affirm despite a negation word ("No doubt.", "There is no doubt that ...").
_AFFIRM_IDIOM = re.compile(r"(?:\bthere(?:'s| is) )?\bno doubt(?: about it| that)?\b|\bwithout (?:a |any )?doubt\b"
                           r"|\bundoubtedly\b")
_NEG_SO = re.compile(r"\b(?:i )?(?:don't|do not) (?:think|believe) so\b|\b(?:i )?(?:think|believe) not\b")
_POS_SO = re.compile(r"\b(?:i )?(?:think|believe) so\b")
_LEAD = re.compile(r"[^a-z0-9']*(?:(?:well|oh|um|uh|hmm|ok|okay)\b[^a-z0-9']*)?"
                   r"(?:(yes|yeah|yep|yup|yea)|(no|nope|nah))\b")
_WEAK_YES = re.compile(r"[^a-z0-9']*(?:sure|certainly|definitely|absolutely|indeed|correct|right|true|exactly|"
                       r"affirmative|of course|(?:that's|that is|it's|it is) (?:right|correct|true))\b")
_BARE_NO = re.compile(r"\b(?:no|nope)\b(?=\s*(?:[,.!;:?]|$|(?:and|or|but)\b))")
_ANY_YES = re.compile(r"\b(?:yes|yeah|yep|yup)\b")
_CORRECTION = re.compile(r"\b(?:actually|wait|in fact|on second thought)\b")
# Clauses: sentences, and the parts of a sentence around a contrast; group 1 marks a contrast/correction.
_CLAUSE_SPLIT = re.compile(r"[.!?;:\n]+|\b(but|however|although|though|whereas|yet|except|actually|wait|"
                           r"instead|rather)\b")
_STRONG_YES = re.compile(r"\bthere(?:'s| is| are| appears to be| seems to be)\b(?!(?: \w+)? (?:no|not|nothing|none|"
                         r"never)\b|n't)|\bi (?:can |do )?see\b|\b(?:is|are) (?:clearly )?(?:visible|present)\b"
                         r"|\bcan be seen\b|\byes\b")
_WEAK_YES_STATEMENT = re.compile(
    r"\b(?:shows?|showing|depicts?|depicting|contains?|containing|features?|featuring|includes?|including|"
    r"displays?|has|have|visible|present)\b|\b(?:is|are) (?:\w+ing|in|on|at|near|under|inside|behind|next to)\b"
    r"|\b(?:it|this|that|there) (?:is|are|does|do)$|\bi do$")
_STOP = frozenset(str.split(
    "a an the there there's is are was were be been it it's its this that these those in on of at to for by with "
    "image picture photo scene i i'm see seen can any some one ones do does has have very really seem seems appear "
    "appears appearing also only and or clearly visible present which who here so just well like"))
_QUICK: dict[str, Verdict] = {"yes": YES, "yes.": YES, "yes!": YES, "no": NO, "no.": NO, "no!": NO, "": UNKNOWN}


def _negative(clause: str) -> bool:
    return any(w in _NEGATIONS or w.endswith("n't") for w in _WORDS.findall(clause))


def _content(clause: str) -> set[str]:
    return {w for w in _WORDS.findall(clause) if w not in _STOP and w not in _NEGATIONS and not w.endswith("n't")}


def _clauses(text: str) -> list[tuple[bool, str]]:
    """[(follows a contrast or correction word, clause text)]."""
    parts = _CLAUSE_SPLIT.split(text)
    out, contrast = [], False
    for i, part in enumerate(parts):
        if i % 2:                       # a captured separator: a contrast word, or None for punctuation
            contrast = contrast or part is not None
            continue
        if part and part.strip(" ,"):
            out.append((contrast, part.strip(" ,")))
            contrast = False
    return out


def _statement(text: str) -> Verdict | None:
    """Polarity of a text with no leading yes/no: None when it asserts nothing either way."""
    negative = strong = weak = False
    for _, clause in _clauses(text):
        if _negative(clause):
            negative = True
            strong = strong or _ANY_YES.search(clause) is not None     # "yes or no", "yes, no cat"
        elif _STRONG_YES.search(clause):
            strong = True
        elif _WEAK_YES_STATEMENT.search(clause):
            weak = True
    if negative:
        return UNKNOWN if strong else NO
    return YES if (strong or weak) else None


def _after_yes(rest: str) -> Verdict:
    """A leading yes stands unless the rest says no, or negates after a contrast ("Yes, but no cat.")
    something other than what it already affirmed ("Yes, there is a cat, but no dog." stands)."""
    if _BARE_NO.search(rest):
        return UNKNOWN
    affirmed: set[str] = set()
    for contrast, clause in _clauses(rest):
        if _negative(clause):
            if contrast and (not affirmed or not _content(clause) or _content(clause) & affirmed):
                return UNKNOWN
        else:
            affirmed |= _content(clause)
    return YES


def _after_no(rest: str) -> Verdict:
    """A leading no stands ("No, but there is a dog." names an alternative) unless the rest says yes or
    corrects itself ("No, actually there is one.")."""
    if _ANY_YES.search(rest):
        return UNKNOWN
    if _CORRECTION.search(rest) and _statement(rest) == YES:
        return UNKNOWN
    return NO


# Fast paths for ASCII text, on its runs of letters as bytes (`_letter_runs`: three C calls, no regex).
# 1. The non-answer gate: every `_WORDS` token in _NON_ANSWER_WORDS is a letter run, or an apostrophe token
#    whose first run is in _NON_ANSWER_RUNS, so runs disjoint from it mean _NON_ANSWER cannot match.
# 2. `_fast_verdict`: a leading plain "yes"/"no" followed by one of _FAST_SEPARATORS, and no run from the
#    matching changer set, gives the verdict the full rule gives, without the rule.
_SPACE_NON_LETTERS = bytes(c if 0x61 <= c <= 0x7A else 0x20 for c in range(256))     # a-z kept, else space
_SPACE_NON_LETTERS_KEEP_NUL = b"\0" + _SPACE_NON_LETTERS[1:]
_NON_ANSWER_RUNS = frozenset(w.split("'")[0].encode() for w in _NON_ANSWER_WORDS)
_FAST_SEPARATORS = frozenset(" ,.!;:?-\n\t")
# After a leading yes only a negation can change the verdict (_BARE_NO, a negative clause after a contrast,
# _NEG_SO's "no"), and an idiom rewrite ("no doubt", "without doubt", "undoubtedly").
_YES_CHANGERS = frozenset(w.encode() for w in _NEGATIONS | {"undoubtedly", "doubt"})
# After a leading no: a yes word (_ANY_YES, _POS_SO's "think so" -> "yes"), a correction (_CORRECTION), or an
# idiom rewrite of the lead itself ("No doubt, ...").
_NO_CHANGERS = frozenset(w.encode() for w in ("yes", "yeah", "yep", "yup", "think", "believe", "actually", "wait",
                                                "fact", "second", "thought", "doubt", "undoubtedly", "without"))


def _normalise(text: str) -> str:
    return text.lower().replace("\u2019", "'").replace("\u2018", "'").strip()


def _letter_runs(t: str) -> list[bytes]:
    """The maximal runs of a-z in an ASCII text (what `re.findall("[a-z]+", t)` gives, as bytes, 3x faster)."""
    return t.encode("ascii").translate(_SPACE_NON_LETTERS).split()


def _fast_verdict(t: str, runs: list[bytes]) -> Verdict | None:
    """YES/NO for a normalised ASCII text (its letter runs `runs`) that passed the non-answer gate, when the
    full rule is sure to give it; None to run the full rule.

    Why it agrees with the rule: every pattern the rule uses after the lead that could change a leading
    yes/no (negations, yes words, corrections, the idiom and think-so rewrites) needs one of the changer words
    as a whole regex word (\\b-delimited) or as a `_WORDS` token of a clause; each of those is a run of letters
    of the whole text, or ends in "n't". Checked against the full rule in tests/test_split_loading.py."""
    if t.startswith("yes"):
        if (len(t) == 3 or t[3] in _FAST_SEPARATORS) and "n't" not in t and _YES_CHANGERS.isdisjoint(runs):
            return YES
    elif t.startswith("no") and (len(t) == 2 or t[2] in _FAST_SEPARATORS) and _NO_CHANGERS.isdisjoint(runs):
        return NO
    return None


def strict_parse(text: str) -> Verdict:
    """Read a yes/no answer as a careful person would; `unknown` when it refuses, hedges or contradicts.

    See README "Scoring" for the rule. Pure and regex-only: it scores millions of answers."""
    t = text.lower().replace("\u2019", "'").replace("\u2018", "'").strip()
    quick = _QUICK.get(t)
    if quick is not None:
        return quick
    if t.isascii():
        runs = _letter_runs(t)
        if _NON_ANSWER_RUNS.isdisjoint(runs):
            return _fast_verdict(t, runs) or _full_rule(t)
    if not _NON_ANSWER_WORDS.isdisjoint(_WORDS.findall(t)) and _NON_ANSWER.search(t):
        return UNKNOWN
    return _full_rule(t)


def _strict_parse_full(text: str) -> Verdict:
    """`strict_parse` without the fast path: the reference the fast path is tested against."""
    t = _normalise(text)
    quick = _QUICK.get(t)
    if quick is not None:
        return quick
    if not _NON_ANSWER_WORDS.isdisjoint(_WORDS.findall(t)) and _NON_ANSWER.search(t):
        return UNKNOWN
    return _full_rule(t)


def _full_rule(t: str) -> Verdict:
    """The rule after the non-answer gate, on a normalised text."""
    t = _POS_SO.sub(" yes ", _NEG_SO.sub(" no ", _AFFIRM_IDIOM.sub(" certainly ", t)))
    lead = _LEAD.match(t)
    if lead:
        rest = t[lead.end():]
        return _after_yes(rest) if lead.group(1) else _after_no(rest)
    weak = _WEAK_YES.match(t)
    if weak:
        return _statement(t[weak.end():]) or YES
    return _statement(t) or UNKNOWN


@dataclass(frozen=True)
class Parser:
    """A named text -> verdict function, plus how its verdicts enter the metrics."""

    name: str
    parse: Callable[[str], str]
    description: str
    convention: MetricConvention = field(default_factory=MetricConvention)

    def parse_many(self, texts: Iterable[str | None]) -> list[str]:
        """Parse each distinct text once: model answers repeat a lot ("Yes.", "No."), so this costs
        about one dict lookup per answer. The strict parser takes the distinct texts as one batch."""
        texts = list(texts)
        distinct = list(dict.fromkeys(texts))
        if self.parse is strict_parse:
            known = [text for text in distinct if text is not None]
            if len(known) == len(texts):          # all distinct (and no None): no table to build
                return list(strict_parse_batch(known))
            table: dict[str | None, str] = dict(zip(known, strict_parse_batch(known)))
            if len(known) < len(distinct):
                table[None] = UNKNOWN
        else:
            table = {text: (UNKNOWN if text is None else self.parse(text)) for text in distinct}
        return list(map(table.__getitem__, texts))


def strict_parse_batch(texts: list[str]) -> list[Verdict]:
    """`[strict_parse(t) for t in texts]`, with the per-text steps of the fast path done
    once for the whole batch where the batch allows it (ASCII, no NUL): one lower(), encode() and
    translate() over all texts joined, then per text a dict lookup, a split and two set tests."""
    joined = "\0".join(texts)
    if not joined.isascii():
        return [strict_parse(t) for t in texts]
    low = joined.lower()                 # ASCII: lower() is per character, and no curly quotes to replace
    lowered = low.split("\0")
    if len(lowered) != len(texts):       # a text held a NUL
        return [strict_parse(t) for t in texts]
    runs_of = low.encode("ascii").translate(_SPACE_NON_LETTERS_KEEP_NUL).split(b"\0")
    quick_get, gate, yes_changers, no_changers = _QUICK.get, _NON_ANSWER_RUNS, _YES_CHANGERS, _NO_CHANGERS
    seps = _FAST_SEPARATORS
    out: list[Verdict] = []
    append = out.append
    for raw, letters in zip(lowered, runs_of):
        t = raw.strip()
        verdict = quick_get(t)
        if verdict is None:
            runs = letters.split()
            if not gate.isdisjoint(runs):
                verdict = strict_parse(t)
            elif t[:3] == "yes" and (len(t) == 3 or t[3] in seps) and "n't" not in t and \
                    yes_changers.isdisjoint(runs):
                verdict = YES
            elif t[:2] == "no" and (len(t) == 2 or t[2] in seps) and no_changers.isdisjoint(runs):
                verdict = NO
            else:
                verdict = _full_rule(t)
        append(verdict)
    return out


STRICT = Parser(
    name="strict",
    parse=strict_parse,
    description="deem-eval's default: reads the answer as a careful person would (a leading yes/no decides, "
                "else the statement's polarity); refusals, hedges and contradictions are unknown (wrong, reported).",
)
