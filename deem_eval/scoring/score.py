"""Turn stored answers into metrics.json: parse with a named parser, compute overall and per-group metrics.

Pure with respect to models: scoring reads answers (a run's samples.jsonl, or an answers file matched to a
split) and never touches a model, so `deem-eval score` can rescore with any parser.
"""

from __future__ import annotations

import gc
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from deem_eval.core.registry import PARSERS
from deem_eval.core.splits import Sample
from deem_eval.scoring.metrics import (
    Metrics,
    MetricsDocument,
    compute_metrics,
    encode_gold,
    encode_predictions,
    grouped_metrics,
)
from deem_eval.scoring.parsing import Parser

MAX_GROUP_VALUES = 100   # fields with more distinct values (image ids, ...) are not broken down


@dataclass(frozen=True)
class Answer:
    """What scoring needs of one answered sample."""

    id: str
    output: str | None
    yes_prob: float | None = None


def get_parser(name: str | None) -> Parser:
    return PARSERS.get(name or "strict")


def verdicts(parser: Parser, answers: Sequence[Answer]) -> list[str]:
    """Text answers through the parser; logit-only answers (no text) by P(yes) >= 0.5."""
    texts = parser.parse_many([a.output for a in answers])
    if all(a.output is not None or a.yes_prob is None for a in answers):
        return texts
    return [("yes" if a.yes_prob >= 0.5 else "no") if a.output is None and a.yes_prob is not None else t
            for a, t in zip(answers, texts)]


def score_answers(samples: Mapping[str, Sample], answers: Sequence[Answer], parser: Parser, *,
                  n_selected: int | None = None, failures: Sequence[Any] = ()) -> dict[str, Any]:
    """metrics.json content for `answers` (matched to `samples` by id): `score_document(...).to_json()`."""
    return score_document(samples, answers, parser, n_selected=n_selected, failures=failures).to_json()


def score_document(samples: Mapping[str, Sample], answers: Sequence[Answer], parser: Parser, *,
                   n_selected: int | None = None, failures: Sequence[Any] = ()) -> MetricsDocument:
    """The metrics document for `answers` (matched to `samples` by id), without the runner's blocks (failures,
    run); format METRICS_FORMAT, whose JSON is the unversioned layout every run so far has written."""
    with _gc_paused():
        return _score_answers(samples, answers, parser, n_selected, failures)


@contextmanager
def _gc_paused():
    """Scoring allocates millions of small acyclic objects; the cyclic GC would rescan them all repeatedly
    (measured: 4 of 6 s on 1M answers). Nothing here creates cycles, so pause it."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _score_answers(samples: Mapping[str, Sample], answers: Sequence[Answer], parser: Parser,
                   n_selected: int | None, failures: Sequence[Any]) -> MetricsDocument:
    pairs = [(a, samples[a.id]) for a in answers if a.id in samples]
    answers = [a for a, _ in pairs]
    chosen = [s for _, s in pairs]
    parsed = verdicts(parser, answers)
    gold = encode_gold([s.answer for s in chosen])
    pred = encode_predictions(parsed)
    probs = None
    if any(a.yes_prob is not None for a in answers):
        probs = np.array([np.nan if a.yes_prob is None else a.yes_prob for a in answers], dtype=float)
    overall = compute_metrics(gold, pred, probs, parser.convention)
    groups = _group_columns(chosen)
    by_group = grouped_metrics(gold, pred, groups, probs, parser.convention, max_values=MAX_GROUP_VALUES)
    n_selected = len(samples) if n_selected is None else n_selected
    subsets = by_group.get("subset", {})
    return MetricsDocument(
        parser=parser.name,
        convention={"unknown_in_prf": parser.convention.unknown_in_prf,
                    "yes_ratio_of": parser.convention.yes_ratio_of},
        n_selected=n_selected,
        n_answered=len(answers),
        n_failed=len(failures),
        n_missing=n_selected - len(answers) - len(failures),
        complete=len(answers) == n_selected,
        overall=overall.to_json(),
        groups={name: {value: m.to_json() for value, m in values.items()} for name, values in by_group.items()},
        subset_mean=_subset_means(subsets) if len(subsets) > 1 else None,
        logit_text_agreement=_logit_text_agreement(parser, answers))


def _group_columns(samples: Sequence[Sample]) -> dict[str, list[Any]]:
    names = sorted({k for s in samples for k in s.group})
    return {name: [s.group.get(name, "(none)") for s in samples] for name in names}


def _subset_means(subsets: Mapping[str, Metrics]) -> dict[str, float | None]:
    """Unweighted mean over subsets (the LLaVA-1.5 convention for POPE's three subsets)."""
    out: dict[str, float | None] = {}
    for name in ("accuracy", "f1", "precision", "recall", "yes_ratio"):
        values = [getattr(m, name).value for m in subsets.values()]
        out[name] = None if any(v is None for v in values) else float(np.mean(values))
    return out


def _logit_text_agreement(parser: Parser, answers: Sequence[Answer]) -> dict[str, Any] | None:
    both = [(a.output, a.yes_prob) for a in answers if a.output is not None and a.yes_prob is not None]
    if not both:
        return None
    texts = parser.parse_many(output for output, _ in both)
    decided = [(t, yes_prob >= 0.5) for t, (_, yes_prob) in zip(texts, both) if t != "unknown"]
    agree = sum((t == "yes") == p for t, p in decided)
    return {"n": len(both), "n_decided": len(decided),
            "rate": agree / len(decided) if decided else None}
