"""The `strict` rule: a yes/no answer read as a careful person would (README "Scoring"), and its shortcuts.

`strict_parse(text)` is the rule; `_strict_parse_full` is the same rule without the shortcuts, the reference
the tests hold them to. `strict_batch` runs the shortcuts over many texts at once.
"""

from __future__ import annotations

import re
from typing import Final, Literal

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
_CANT_WORDS = "cannot can't cant can couldn't couldnt could unable able possible"
_DECIDE = (r"(?:tell|determine|say|know|answer|confirm|verify|decide|judge|ascertain|assess|discern|be sure|"
           r"be certain|make out|assist|help|provide|comply|process|access|view|analy[sz]e|evaluate)")
# The non-answer patterns, each with the words one of which every match of it contains as a `_WORDS` token
# (its triggers; for ASCII text the token's first letter run is then a letter run of the text). Only the
# patterns whose triggers occur are searched: most answers search none (the regex is the costly step).
_NON_ANSWER_TABLE: tuple[tuple[str, str], ...] = (
    ("sure certain clear confident", r"(?:\bnot|n't)(?: \S+){0,2} (?:sure|certain|clear|confident)\b"),
    ("unsure uncertain unclear ambiguous undetermined indeterminate inconclusive unknown unanswerable",
     r"\b(?:unsure|uncertain|unclear|ambiguous|undetermined|indeterminate|inconclusive|unknown|unanswerable)\b"),
    ("maybe perhaps possibly probably likely unlikely might may guess presumably arguably",
     r"\b(?:maybe|perhaps|possibly|probably|likely|unlikely|might|may|guess|presumably|arguably)\b"),
    ("could depends hard", r"\bcould (?:\S+ )?be\b|\bit depends\b|\bhard to say\b"),
    ("know idea clue comment",
     r"(?:\bdon'?t|\bdo not|\bdoesn'?t|\bdoes not|\bdidn'?t|\bdid not) know\b|\bno (?:idea|clue|comment)\b"),
    ("way applicable refuse decline", r"\bno way (?:to|of)\b|\bnot applicable\b|\brefuse\b|\bdecline to\b"),
    ("above options choices answers sorry apologise apologize ai",
     r"\bnone of the (?:above|options|choices|answers)\b|\bsorry\b|\bapologi[sz]e\b|\bas an ai\b"),
    (_CANT_WORDS, rf"{_CANT}(?: \S+){{0,2}}? {_DECIDE}\b"),
    ("hard difficult impossible easy tricky too", rf"(?:{_HARD} to|\btoo \S+ to)(?: \S+)? (?:see|{_DECIDE})\b"),
    (_CANT_WORDS + " have",
     (rf"(?:{_CANT}|\bdon't have|\bdo not have) (?:access to |see |view |the ability to (?:see|view) )?"
      r"(?:the |this |any |your )?(?:image|images|picture|pictures|photo|photos)\b")),
    ("enough insufficient information context",
     r"\b(?:enough|insufficient) (?:information|detail|details|context|evidence)\b|\bno (?:information|context)\b"),
    ("cannot can't can", r"\bcan(?:not|'t| not) be (?:determined|confirmed|verified|told|answered|seen clearly)\b"),
)
_NON_ANSWER = re.compile("|".join(pattern for _, pattern in _NON_ANSWER_TABLE))
# Words without one of which _NON_ANSWER cannot match.
_NON_ANSWER_WORDS = frozenset(word for words, _ in _NON_ANSWER_TABLE for word in words.split())
# For ASCII text: the patterns to search when a letter run occurs (a token's first run, "can't" -> b"can").
_NON_ANSWER_PATTERNS_OF_RUN: dict[bytes, tuple[re.Pattern[str], ...]] = {}
for _words, _pattern in _NON_ANSWER_TABLE:
    for _run in {w.split("'")[0].encode() for w in _words.split()}:
        _NON_ANSWER_PATTERNS_OF_RUN[_run] = (*_NON_ANSWER_PATTERNS_OF_RUN.get(_run, ()), re.compile(_pattern))
del _words, _pattern, _run
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
# Every _CLAUSE_SPLIT contrast word is \b-delimited, so a letter run of the text; without one, clauses end
# at the punctuation only.
_CONTRAST_RUNS = frozenset(w.encode() for w in str.split(
    "but however although though whereas yet except actually wait instead rather"))
_CLAUSE_ENDS = bytes.maketrans(b".!?;:", b"\n\n\n\n\n")


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
    if clause.isascii() and "n't" not in clause and _NEGATION_RUNS.isdisjoint(_letter_runs(clause)):
        return False                    # a negation token is a letter run of _NEGATIONS, or ends in "n't"
    return any(w in _NEGATIONS or w.endswith("n't") for w in _WORDS.findall(clause))


def _content(clause: str) -> set[str]:
    return {w for w in _WORDS.findall(clause) if w not in _STOP and w not in _NEGATIONS and not w.endswith("n't")}


def _clauses(text: str, contrast_free: bool | None = None) -> list[tuple[bool, str]]:
    """[(follows a contrast or correction word, clause text)]. `contrast_free`: whether the ASCII text is
    known to hold no contrast word (None: find out)."""
    if contrast_free is None:
        contrast_free = text.isascii() and _CONTRAST_RUNS.isdisjoint(_letter_runs(text))
    if contrast_free:                    # split at punctuation only
        clauses = []
        for part in text.encode().translate(_CLAUSE_ENDS).decode().split("\n"):
            part = part.strip(" ,")
            if part:
                clauses.append((False, part))
        return clauses
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


def _statement(text: str, may_negate: bool = True, contrast_free: bool | None = None) -> Verdict | None:
    """Polarity of a text with no leading yes/no: None when it asserts nothing either way. `may_negate`
    False: the text has no negation word (so no clause is negative); `contrast_free`: as for _clauses."""
    clauses = _clauses(text, contrast_free)
    if not may_negate:
        return YES if any(_STRONG_YES.search(c) or _WEAK_YES_STATEMENT.search(c) for _, c in clauses) else None
    negative = strong = weak = False
    for _, clause in clauses:
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
#    whose first run is in _NON_ANSWER_RUNS, so runs disjoint from it mean _NON_ANSWER cannot match; and
#    where some occur, only the patterns they trigger (_NON_ANSWER_PATTERNS_OF_RUN) can.
# 2. `_fast_verdict`: a leading plain "yes"/"no" followed by one of _FAST_SEPARATORS, and no run from the
#    matching changer set, gives the verdict the full rule gives, without the rule.
# 3. `_full_rule(t, runs)`: the idiom and think-so rewrites only where their words occur (_REWRITE_RUNS), no
#    clause's negation test where the text has no negation (_NEGATION_RUNS, "n't"), no contrast split without
#    a contrast word (_CONTRAST_RUNS), and the lead patterns only after a first run that can start them.
_SPACE_NON_LETTERS = bytes(c if 0x61 <= c <= 0x7A else 0x20 for c in range(256))     # a-z kept, else space
_SPACE_NON_LETTERS_KEEP_NUL = b"\0" + _SPACE_NON_LETTERS[1:]
_NON_ANSWER_RUNS = frozenset(_NON_ANSWER_PATTERNS_OF_RUN)
_FAST_SEPARATORS = frozenset(" ,.!;:?-\n\t")
# After a leading yes only a negation can change the verdict (_BARE_NO, a negative clause after a contrast,
# _NEG_SO's "no"), and an idiom rewrite ("no doubt", "without doubt", "undoubtedly").
_YES_CHANGERS = frozenset(w.encode() for w in _NEGATIONS | {"undoubtedly", "doubt"})
# After a leading no: a yes word (_ANY_YES, _POS_SO's "think so" -> "yes"), a correction (_CORRECTION), or an
# idiom rewrite of the lead itself ("No doubt, ...").
_NO_CHANGERS = frozenset(w.encode() for w in ("yes", "yeah", "yep", "yup", "think", "believe", "actually", "wait",
                                                "fact", "second", "thought", "doubt", "undoubtedly", "without"))
_YES_STOPS = _NON_ANSWER_RUNS | _YES_CHANGERS     # a leading yes with none of these (and no "n't") is yes
_NO_STOPS = _NON_ANSWER_RUNS | _NO_CHANGERS
# Every match of _AFFIRM_IDIOM, _NEG_SO and _POS_SO holds one of these words, \b- or space-delimited.
_REWRITE_RUNS = frozenset((b"doubt", b"undoubtedly", b"think", b"believe"))
_NEGATION_RUNS = frozenset(w.encode() for w in _NEGATIONS)
# _LEAD and _WEAK_YES match at the start, past non-letters only, a whole word: the text's first letter run.
_LEAD_RUNS = frozenset(b"well oh um uh hmm ok okay yes yeah yep yup yea no nope nah".split())
_WEAK_YES_RUNS = frozenset(b"sure certainly definitely absolutely indeed correct right true exactly affirmative "
                           b"of that it".split())


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


def _ascii_rule(t: str, runs: list[bytes], *, led: bool = True) -> Verdict:
    """The rule after the quick table, on a normalised ASCII text and its letter runs. `led` False skips the
    yes/no shortcut (the caller already tried its tests); the full rule gives the same verdict anyway."""
    hits = _NON_ANSWER_RUNS.intersection(runs)
    if hits:
        patterns = _NON_ANSWER_PATTERNS_OF_RUN
        if any(pattern.search(t) for run in hits for pattern in patterns[run]):
            return UNKNOWN
    return (led and _fast_verdict(t, runs)) or _full_rule(t, runs)


def strict_parse(text: str) -> Verdict:
    """Read a yes/no answer as a careful person would; `unknown` when it refuses, hedges or contradicts.

    See README "Scoring" for the rule. Pure and regex-only: it scores millions of answers."""
    t = text.lower().replace("\u2019", "'").replace("\u2018", "'").strip()
    quick = _QUICK.get(t)
    if quick is not None:
        return quick
    if t.isascii():
        return _ascii_rule(t, _letter_runs(t))
    if _NON_ANSWER.search(t):           # other scripts are rare: no gate
        return UNKNOWN
    return _full_rule(t)


def _strict_parse_full(text: str) -> Verdict:
    """`strict_parse` without the fast paths: the reference they are tested against."""
    t = _normalise(text)
    quick = _QUICK.get(t)
    if quick is not None:
        return quick
    if _NON_ANSWER.search(t):
        return UNKNOWN
    return _full_rule(t)


def _full_rule(t: str, runs: list[bytes] | None = None) -> Verdict:
    """The rule after the non-answer gate, on a normalised text (`runs`: its letter runs, if ASCII)."""
    if runs is None or not _REWRITE_RUNS.isdisjoint(runs):
        t = _POS_SO.sub(" yes ", _NEG_SO.sub(" no ", _AFFIRM_IDIOM.sub(" certainly ", t)))
        may_negate, contrast_free, first = True, None, None
    else:                                # `runs` are t's: what they lack, t lacks
        may_negate = "n't" in t or not _NEGATION_RUNS.isdisjoint(runs)
        contrast_free = _CONTRAST_RUNS.isdisjoint(runs)
        first = runs[0] if runs else b""
    lead = _LEAD.match(t) if first is None or first in _LEAD_RUNS else None
    if lead:
        rest = t[lead.end():]
        return _after_yes(rest) if lead.group(1) else _after_no(rest)
    weak = _WEAK_YES.match(t) if first is None or first in _WEAK_YES_RUNS else None
    if weak:
        return _statement(t[weak.end():], may_negate, contrast_free) or YES
    return _statement(t, may_negate, contrast_free) or UNKNOWN
