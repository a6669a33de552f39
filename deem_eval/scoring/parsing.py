"""Answer parsers: text -> "yes" | "no" | "unknown", each with a name and the metric convention it implies.

The default parser (`strict`) is honest: it answers only when the text says yes or no without
contradiction or hedging, and reports `unknown` otherwise (the rule: `strict_rule`). Compatibility parsers
(registered by the benchmarks that need them, e.g. `pope-official`) reproduce what published numbers used,
quirks included.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import cast

from deem_eval.scoring.metrics import MetricConvention
from deem_eval.scoring.strict_batch import strict_parse_batch
from deem_eval.scoring.strict_rule import NO, UNKNOWN, YES, Verdict, strict_parse

__all__ = ["NO", "STRICT", "UNKNOWN", "YES", "Parser", "Verdict", "strict_parse"]


@dataclass(frozen=True)
class Parser:
    """A named text -> verdict function, plus how its verdicts enter the metrics."""

    name: str
    parse: Callable[[str], str]
    description: str
    convention: MetricConvention = field(default_factory=MetricConvention)

    def parse_many(self, texts: Iterable[str | None]) -> list[str]:
        """Parse each distinct text once: model answers repeat a lot ("Yes.", "No."), so this costs
        about one dict lookup per answer. The strict parser takes the distinct texts as one batch, and
        texts that hardly repeat as they come (a table of them would cost more than it saves)."""
        texts = list(texts)
        table: dict[str | None, str]
        if self.parse is not strict_parse:
            table = {text: (UNKNOWN if text is None else self.parse(text)) for text in dict.fromkeys(texts)}
            return list(map(table.__getitem__, texts))
        if None not in texts and _mostly_distinct(texts):
            return cast("list[str]", strict_parse_batch(cast("list[str]", texts)))
        distinct = list(dict.fromkeys(texts))
        known = [text for text in distinct if text is not None]
        table = dict(zip(known, strict_parse_batch(known)))
        if len(known) < len(distinct):
            table[None] = UNKNOWN
        return list(map(table.__getitem__, texts))


def _mostly_distinct(texts: list[str | None], probe: int = 2048) -> bool:
    """Whether at least 90 % of the first `probe` texts are distinct: then building the table of distinct
    texts (a hash and a probe per text) costs about what parsing them in one batch does."""
    head = texts[:probe]
    return len(set(head)) * 10 >= len(head) * 9


STRICT = Parser(
    name="strict",
    parse=strict_parse,
    description="deem-eval's default: reads the answer as a careful person would (a leading yes/no decides, "
                "else the statement's polarity); refusals, hedges and contradictions are unknown (wrong, reported).",
)
