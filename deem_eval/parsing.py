"""Answer parsers: text -> "yes" | "no" | "unknown", each with a name and the metric convention it implies.

The default parser (`strict`) is honest: it answers only when the text says yes or no without
contradiction or hedging, and reports `unknown` otherwise. Compatibility parsers (registered by the
benchmarks that need them, e.g. `pope-official`) reproduce what published numbers used, quirks included.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

from .metrics import MetricConvention

YES, NO, UNKNOWN = "yes", "no", "unknown"
Verdict = Literal["yes", "no", "unknown"]

_WORDS = re.compile(r"[a-z]+(?:'[a-z]+)?")
_NEGATIONS = frozenset({"no", "not", "none", "nope", "never", "nothing", "neither", "nor"})
# Words that make an answer a non-answer ("Not sure.", "I cannot tell", "maybe").
_HEDGES = frozenset({"sure", "unsure", "uncertain", "unclear", "maybe", "perhaps", "possibly", "probably",
                     "cannot", "can't", "tell", "determine", "unknown", "ambiguous"})


def strict_parse(text: str) -> Verdict:
    """"yes" iff the text says yes and nothing negative; "no" iff it negates and never says yes.

    Contractions ("isn't", "there's no") count as negation; hedges ("not sure", "cannot tell") and
    contradictions ("Yes, but no cat.") are `unknown`, as is text that answers neither way.
    """
    words = _WORDS.findall(text.lower().replace("\u2019", "'"))
    if any(w in _HEDGES for w in words):
        return UNKNOWN
    has_yes = "yes" in words
    has_no = any(w in _NEGATIONS or w.endswith("n't") for w in words)
    if has_yes and not has_no:
        return YES
    if has_no and not has_yes:
        return NO
    return UNKNOWN


@dataclass(frozen=True)
class Parser:
    """A named text -> verdict function, plus how its verdicts enter the metrics."""

    name: str
    parse: Callable[[str], str]
    description: str
    convention: MetricConvention = field(default_factory=MetricConvention)

    def parse_many(self, texts: Iterable[str | None]) -> list[str]:
        """Parse each distinct text once: model answers repeat a lot ("Yes.", "No."), so this costs
        about one dict lookup per answer."""
        texts = list(texts)
        table = {text: (UNKNOWN if text is None else self.parse(text)) for text in dict.fromkeys(texts)}
        return [table[text] for text in texts]


STRICT = Parser(
    name="strict",
    parse=strict_parse,
    description="deem-eval's default: yes/no only when unambiguous; hedges and contradictions are unknown "
                "(unknown counts as wrong and is reported).",
)
