"""Turn stored answers into metrics.json: parse with a named parser, compute overall and per-group metrics.

Pure with respect to models: scoring reads answers (a run's samples.jsonl, or an answers file matched to a
split) and never touches a model, so `deem-eval score` can rescore with any parser.
"""

from __future__ import annotations

import gc
import operator
import warnings
from collections.abc import Iterable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain, repeat
from typing import Any, cast

import numpy as np

from deem_eval.core.registry import PARSERS
from deem_eval.core.splits import Sample
from deem_eval.scoring.metrics import (
    PRED_UNKNOWN,
    PRED_YES,
    Metrics,
    MetricsDocument,
    compute_metrics,
    encode_gold,
    encode_predictions,
    grouped_metrics,
)
from deem_eval.scoring.parsing import Parser

MAX_GROUP_VALUES = 100   # fields with more distinct values (image ids, ...) are not broken down


@dataclass(frozen=True, slots=True)
class Answer:
    """What scoring needs of one answered sample."""

    id: str
    output: str | None
    yes_prob: float | None = None


_ID, _OUTPUT, _YES_PROB = operator.attrgetter("id"), operator.attrgetter("output"), operator.attrgetter("yes_prob")
_GOLD, _GROUP = operator.attrgetter("answer"), operator.attrgetter("group")


def get_parser(name: str | None) -> Parser:
    return PARSERS.get(name or "strict")


def verdicts(parser: Parser, answers: Sequence[Answer]) -> list[str]:
    """Text answers through the parser; logit-only answers (no text) by P(yes) >= 0.5."""
    outputs = list(map(_OUTPUT, answers))
    texts = parser.parse_many(outputs)
    if None not in outputs or all(a.output is not None or a.yes_prob is None for a in answers):
        return texts
    return [("yes" if a.yes_prob >= 0.5 else "no") if a.output is None and a.yes_prob is not None else t
            for a, t in zip(answers, texts)]


def score_answers(samples: Mapping[str, Sample], answers: Sequence[Answer], parser: Parser, *,
                  n_selected: int | None = None, failures: Sequence[Any] = ()) -> dict[str, Any]:
    """metrics.json content for `answers` (matched to `samples` by id): `score_document(...).to_json()`."""
    return score_document(samples, answers, parser, n_selected=n_selected, failures=failures).to_json()


def score_document(samples: Mapping[str, Sample], answers: Sequence[Answer] | Iterable[Sequence[Answer]],
                   parser: Parser, *, n_selected: int | None = None, failures: Sequence[Any] = (),
                   chunked: bool = False, source: str | None = None) -> MetricsDocument:
    """The metrics document for `answers` (matched to `samples` by id), without the runner's blocks (failures,
    run); format METRICS_FORMAT, whose JSON is the unversioned layout every run so far has written.
    `chunked`: `answers` is an iterable of chunks (a run read a chunk at a time: see ScoreAccumulator)."""
    with _gc_paused():
        scorer = ScoreAccumulator(samples, parser, source=source)
        chunks = cast("Iterable[Sequence[Answer]]", answers) if chunked else [cast("Sequence[Answer]", answers)]
        for chunk in chunks:
            scorer.add(chunk)
        return scorer.document(n_selected=n_selected, failures=failures)


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


class DuplicateAnswersWarning(UserWarning):
    """Two answers to one id: the first is kept, so none is counted twice."""


class ScoreAccumulator:
    """Scores answers a chunk at a time, keeping of each answer only what the metrics need (its sample, verdict
    code, P(yes) and whether it had text), never its text: a million-answer run is scored in about the memory
    of its split. Answers to samples not in `samples` are left out; of two answers to one id the first counts.
    The document equals scoring all answers at once, whatever the chunks."""

    def __init__(self, samples: Mapping[str, Sample], parser: Parser, *, source: str | None = None):
        self.samples, self.parser, self.source = samples, parser, source
        self._ordered = type(samples) is dict      # answers so far are the samples, in order: no id lookups
        self._keys: list[str] = list(samples) if self._ordered else []
        self._values: list[Sample] = list(samples.values()) if self._ordered else []
        self._chosen: list[Sample] = []
        self._pred: list[np.ndarray] = []
        self._probs: list[np.ndarray] = []
        self._has_output: list[np.ndarray] = []
        self._has_prob: list[np.ndarray] = []

    def add(self, answers: Sequence[Answer]) -> None:
        ids = list(map(_ID, answers))
        start = len(self._chosen)
        found: list[Sample | None]
        if self._ordered and ids == self._keys[start:start + len(ids)]:
            found = cast("list[Sample | None]", self._values[start:start + len(ids)])   # a slice: a new list
        else:
            self._ordered = False
            found = list(map(self.samples.get, ids))
            if not all(map(operator.is_not, found, repeat(None))):    # answers to samples not selected: left out
                answers = [a for a, s in zip(answers, found) if s is not None]
                found = [s for s in found if s is not None]
        self._chosen += cast("list[Sample]", found)
        n = len(answers)
        self._pred.append(encode_predictions(verdicts(self.parser, answers)))
        self._has_output.append(_given(list(map(_OUTPUT, answers))))
        yes_probs = list(map(_YES_PROB, answers))
        has_prob = _given(yes_probs)
        self._has_prob.append(has_prob)
        self._probs.append(np.array([np.nan if p is None else p for p in yes_probs], dtype=float) if has_prob.any()
                           else np.full(n, np.nan))

    def document(self, *, n_selected: int | None = None, failures: Sequence[Any] = ()) -> MetricsDocument:
        chosen = self._chosen
        pred, probs, has_output, has_prob = (np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)
                                             for parts, dtype in ((self._pred, np.int8), (self._probs, float),
                                                                  (self._has_output, bool), (self._has_prob, bool)))
        if not self._ordered:
            chosen, keep = self._first_per_sample(chosen)
            if keep is not None:
                pred, probs, has_output, has_prob = pred[keep], probs[keep], has_output[keep], has_prob[keep]
        gold = encode_gold(list(map(_GOLD, chosen)))
        given = probs if has_prob.any() else None
        parser = self.parser
        overall = compute_metrics(gold, pred, given, parser.convention)
        by_group = grouped_metrics(gold, pred, _group_columns(chosen), given, parser.convention,
                                   max_values=MAX_GROUP_VALUES)
        n_selected = len(self.samples) if n_selected is None else n_selected
        subsets = by_group.get("subset", {})
        return MetricsDocument(
            parser=parser.name,
            convention={"unknown_in_prf": parser.convention.unknown_in_prf,
                        "yes_ratio_of": parser.convention.yes_ratio_of},
            n_selected=n_selected,
            n_answered=len(chosen),
            n_failed=len(failures),
            n_missing=n_selected - len(chosen) - len(failures),
            complete=len(chosen) == n_selected,
            overall=overall.to_json(),
            groups={name: {value: m.to_json() for value, m in values.items()} for name, values in by_group.items()},
            subset_mean=_subset_means(subsets) if len(subsets) > 1 else None,
            logit_text_agreement=(_agreement(pred, probs, has_output & has_prob) if given is not None else None))

    def _first_per_sample(self, chosen: list[Sample]) -> tuple[list[Sample], np.ndarray | None]:
        """The answers' samples with only the first answer of each (and its positions), or None if all differ."""
        identities = np.fromiter(map(id, chosen), dtype=np.int64, count=len(chosen))
        _, first = np.unique(identities, return_index=True)
        if len(first) == len(chosen):
            return chosen, None
        keep = np.sort(first)
        where = f"{self.source}: " if self.source else ""
        warnings.warn(f"{where}{len(chosen) - len(keep)} duplicate answer(s) ignored (the first answer of each id "
                      "is kept)", DuplicateAnswersWarning, stacklevel=4)
        return [chosen[k] for k in keep.tolist()], keep


def _given(values: list[Any]) -> np.ndarray:
    """Which values are not None (no per-value Python step when none or all are)."""
    missing = values.count(None)
    if missing in (0, len(values)):
        return np.full(len(values), not missing, dtype=bool)
    return np.fromiter(map(operator.is_not, values, repeat(None)), dtype=bool, count=len(values))


def _group_columns(samples: Sequence[Sample]) -> dict[str, list[Any]]:
    groups = list(map(_GROUP, samples))
    names = sorted(dict.fromkeys(chain.from_iterable(groups)))
    plain = all(map(operator.is_, map(type, groups), repeat(dict)))   # no __missing__ to call
    return {name: _group_column(groups, name, plain) for name in names}


def _group_column(groups: Sequence[Mapping[str, Any]], name: str, plain: bool) -> list[Any]:
    if plain:
        try:
            return list(map(operator.itemgetter(name), groups))   # every sample has the field: C speed
        except KeyError:
            pass
    return [g.get(name, "(none)") for g in groups]


def _subset_means(subsets: Mapping[str, Metrics]) -> dict[str, float | None]:
    """Unweighted mean over subsets (the LLaVA-1.5 convention for POPE's three subsets)."""
    out: dict[str, float | None] = {}
    for name in ("accuracy", "f1", "precision", "recall", "yes_ratio"):
        values = [getattr(m, name).value for m in subsets.values()]
        out[name] = None if any(v is None for v in values) else float(np.mean(values))
    return out


def _agreement(pred: np.ndarray, probs: np.ndarray, both: np.ndarray) -> dict[str, Any] | None:
    """Agreement of text verdicts with P(yes) >= 0.5 over the answers with both (`both`; a NaN P(yes) counts
    as given, and never agrees with "yes"), from the encoded verdicts (`pred`: the parser's for every answer
    with text) and `probs`: no second parse, no per-answer Python loop."""
    n_both = int(both.sum())
    if not n_both:
        return None
    decided = both & (pred != PRED_UNKNOWN)
    n_decided = int(decided.sum())
    agree = int(((pred[decided] == PRED_YES) == (probs[decided] >= 0.5)).sum())
    return {"n": n_both, "n_decided": n_decided, "rate": agree / n_decided if n_decided else None}
