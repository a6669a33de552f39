"""A run's answers as per-sample arrays (correct? said yes?) joined to its split's group fields by id.

Paired comparisons and robustness summaries need more than metrics.json: per-sample correctness, the
image each question is about, and crossings of group fields (corruption × severity). Verdicts are
re-derived from the stored outputs with the parser the run's metrics were scored with, so these numbers
always agree with metrics.json.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deem_eval.core.errors import DeemEvalError
from deem_eval.core.splits import Split
from deem_eval.run.catalog import RunInfo
from deem_eval.run.rundir import RunDir
from deem_eval.scoring.metrics import PRED_NO, PRED_YES, encode_gold, encode_predictions
from deem_eval.scoring.score import Answer, get_parser, verdicts


@dataclass
class ScoredRun:
    run: RunInfo
    ids: list[str]
    gold_yes: np.ndarray            # bool
    pred: np.ndarray                # PRED_* codes (no / yes / unknown)
    groups: dict[str, list[Any]] = field(default_factory=dict)   # from the split, aligned with ids
    images: list[str] | None = None                               # image key per sample (None: split not found)
    split_note: str = ""                                          # why groups/images are missing, if they are

    @property
    def correct(self) -> np.ndarray:
        return np.where(self.gold_yes, self.pred == PRED_YES, self.pred == PRED_NO)

    @property
    def said_yes(self) -> np.ndarray:
        return self.pred == PRED_YES

    def column(self, name: str) -> list[Any] | None:
        return self.groups.get(name)


class SplitCache:
    """Loads each split directory once (splits can hold tens of thousands of samples)."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str], Split | str] = {}

    def get(self, run: RunInfo, override: Path | None = None) -> tuple[Split | None, str]:
        where = str(override or run.manifest.split_dir or "")
        key = (where, run.fingerprint)
        if key not in self._cache:
            self._cache[key] = _load_split(Path(where), run) if where else "the run records no split directory"
        value = self._cache[key]
        return (value, "") if isinstance(value, Split) else (None, value)


def _load_split(path: Path, run: RunInfo) -> Split | str:
    try:
        split = Split.load(path, check_fingerprint=False)
    except DeemEvalError as exc:
        return f"split not available ({exc})"
    if split.fingerprint != run.fingerprint:
        return (f"{path} now holds a different split (fingerprint {split.fingerprint[:12]}… vs the run's "
                f"{run.fingerprint[:12]}…)")
    return split


def load_scored(run: RunInfo, splits: SplitCache | None = None, split_dir: Path | None = None) -> ScoredRun:
    records = RunDir.open(run.path).read_records(repair=False)
    parser = get_parser(run.parser)
    answers = [Answer(r.id, r.output, r.yes_prob) for r in records]
    pred = encode_predictions(verdicts(parser, answers))
    gold = encode_gold([r.gold for r in records])
    ids = [r.id for r in records]
    scored = ScoredRun(run, ids, gold, pred)
    split, note = (splits or SplitCache()).get(run, split_dir)
    if split is None:
        scored.split_note = note
        return scored
    by_id: Mapping[str, Any] = {s.id: s for s in split.samples}
    missing = [i for i in ids if i not in by_id]
    if missing:
        scored.split_note = f"{len(missing)} answered ids are not in the split (e.g. {missing[0]!r})"
        return scored
    samples = [by_id[i] for i in ids]
    names = sorted({k for s in samples for k in s.group})
    scored.groups = {n: [s.group.get(n) for s in samples] for n in names}
    scored.images = [str(s.group.get("image_id", s.image)) for s in samples]
    return scored
