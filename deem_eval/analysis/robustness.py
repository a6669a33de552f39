"""Robustness summaries for corrupted splits (ImageNet-C style `corruption` × `severity` group fields).

For one model on one corrupted split:
- accuracy and yes-ratio per corruption × severity;
- clean accuracy from the split's own clean rows (corruption "none" or severity 0), else from the same
  model's run on the split's clean source, matched by the source split's fingerprint (never by benchmark
  name: a pope-c built from real COCO must not be compared with a synthetic pope), and computed on exactly
  the source questions of the answered corrupted samples (a clean run over 100 images says nothing about a
  20-image corrupted subset); else none, with the reason, and drops are then left out;
- per corruption: mean over severities (unweighted, so each severity counts the same), drop from clean
  (clean - corrupted, in accuracy points), relative robustness (corrupted / clean; 1 = nothing lost) and
  the yes-ratio shift (corrupted - clean; > 0 means more "yes" on degraded images, i.e. hallucination);
- the same four numbers averaged over corruptions, and accuracy per severity averaged over corruptions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from deem_eval.analysis.scored_runs import ScoredRun
from deem_eval.core.splits import Split
from deem_eval.scoring.metrics import Estimate, wilson

CORRUPTION_FIELD = "corruption"
SEVERITY_FIELD = "severity"
CLEAN_NAMES = frozenset({"none", "clean", "identity", ""})


@dataclass(frozen=True)
class CellStats:
    n: int
    accuracy: Estimate
    yes_ratio: Estimate

    @classmethod
    def of(cls, correct: np.ndarray, said_yes: np.ndarray) -> CellStats:
        n = len(correct)
        return cls(n, wilson(int(np.sum(correct)), n), wilson(int(np.sum(said_yes)), n))


@dataclass(frozen=True)
class CorruptionSummary:
    corruption: str
    by_severity: dict[int, CellStats]
    mean_accuracy: float
    mean_yes_ratio: float
    drop: float | None
    relative: float | None
    yes_shift: float | None


@dataclass(frozen=True)
class RobustnessSummary:
    model: str
    split: str
    clean: CellStats | None
    clean_source: str
    severities: list[int]
    corruptions: list[CorruptionSummary]
    mean_accuracy: float | None
    mean_drop: float | None
    relative: float | None
    yes_shift: float | None
    accuracy_by_severity: dict[int, float]     # mean over corruptions; severity 0 = clean when known
    yes_ratio_by_severity: dict[int, float]
    pooled_by_severity: dict[int, CellStats] = field(default_factory=dict)   # all corruptions pooled (for bands)
    clean_matched: int | None = None           # source questions the clean reference was computed on
    clean_wanted: int | None = None            # source questions of the answered corrupted samples


@dataclass(frozen=True)
class CleanReference:
    """A clean run's numbers on the corrupted samples' source questions, and which run / how many matched."""

    stats: CellStats | None
    note: str
    matched: int
    wanted: int


def is_clean(corruption: Any, severity: Any) -> bool:
    return str(corruption).strip().lower() in CLEAN_NAMES or _severity(severity) == 0


def _severity(value: Any) -> int:
    try:
        return round(float(value))
    except (TypeError, ValueError):
        return -1


def summarize(model: str, split: str, correct: npt.ArrayLike, said_yes: npt.ArrayLike,
              corruption: Sequence[Any], severity: Sequence[Any], *, clean: CellStats | None = None,
              clean_source: str = "") -> RobustnessSummary:
    """The summary for per-sample arrays; `clean` is used only when the split has no clean rows."""
    correct = np.asarray(correct, dtype=bool)
    said_yes = np.asarray(said_yes, dtype=bool)
    corr = np.asarray([str(c) for c in corruption])
    sev = np.asarray([_severity(s) for s in severity])
    clean_mask = np.asarray([is_clean(c, s) for c, s in zip(corr, sev, strict=True)], dtype=bool)
    if clean_mask.any():
        clean = CellStats.of(correct[clean_mask], said_yes[clean_mask])
        clean_source = "clean rows of this split"
    elif clean is None:
        clean_source = clean_source or "none found"
    c_acc = clean.accuracy.value if clean else None
    c_yes = clean.yes_ratio.value if clean else None

    rows: list[CorruptionSummary] = []
    severities = sorted({int(s) for s in sev[~clean_mask]})
    for name in sorted(set(corr[~clean_mask])):
        by_sev = {}
        for s in severities:
            mask = (corr == name) & (sev == s) & ~clean_mask
            if mask.any():
                by_sev[s] = CellStats.of(correct[mask], said_yes[mask])
        mean_acc = float(np.mean([c.accuracy.value for c in by_sev.values()]))
        mean_yes = float(np.mean([c.yes_ratio.value for c in by_sev.values()]))
        rows.append(CorruptionSummary(
            name, by_sev, mean_acc, mean_yes,
            drop=None if c_acc is None else c_acc - mean_acc,
            relative=None if not c_acc else mean_acc / c_acc,
            yes_shift=None if c_yes is None else mean_yes - c_yes))

    def mean_of(values: list[float | None]) -> float | None:
        present = [v for v in values if v is not None]
        return float(np.mean(present)) if present else None

    acc_by_sev: dict[int, float] = {}
    yes_by_sev: dict[int, float] = {}
    pooled: dict[int, CellStats] = {}
    if clean is not None:
        if c_acc is not None and c_yes is not None:     # None only for an empty (n = 0) clean reference
            acc_by_sev[0], yes_by_sev[0] = c_acc, c_yes
        pooled[0] = clean
    for s in severities:
        cells = [r.by_severity[s] for r in rows if s in r.by_severity]
        acc_by_sev[s] = float(np.mean([c.accuracy.value for c in cells]))
        yes_by_sev[s] = float(np.mean([c.yes_ratio.value for c in cells]))
        mask = (sev == s) & ~clean_mask
        pooled[s] = CellStats.of(correct[mask], said_yes[mask])
    return RobustnessSummary(
        model, split, clean, clean_source, severities, rows,
        mean_accuracy=mean_of([r.mean_accuracy for r in rows]),
        mean_drop=mean_of([r.drop for r in rows]),
        relative=mean_of([r.relative for r in rows]),
        yes_shift=mean_of([r.yes_shift for r in rows]),
        accuracy_by_severity=acc_by_sev, yes_ratio_by_severity=yes_by_sev, pooled_by_severity=pooled)


def has_corruptions(scored: ScoredRun) -> bool:
    return scored.column(CORRUPTION_FIELD) is not None and scored.column(SEVERITY_FIELD) is not None


def source_id(sample_id: str) -> str:
    """The clean sample a corrupted one was made from (derive.py writes `<source id>@<corruption>-<severity>`)."""
    head, sep, _ = sample_id.rpartition("@")
    return head if sep else sample_id


def source_fingerprint(split: Split | None) -> str | None:
    """The fingerprint of the clean split a corrupted split was derived from (derive.py: builder.source_fingerprint)."""
    if split is None:
        return None
    return split.meta.builder.source_fingerprint or None


def _corrupted_source_ids(scored: ScoredRun) -> list[str]:
    corr, sev = scored.column(CORRUPTION_FIELD) or [], scored.column(SEVERITY_FIELD) or []
    ids = {source_id(i) for i, c, s in zip(scored.ids, corr, sev, strict=True) if not is_clean(c, s)}
    return sorted(ids)


def clean_reference(scored: ScoredRun, clean_run: ScoredRun) -> CleanReference:
    """Clean accuracy on exactly the source questions of the corrupted run's answered samples, so that the
    drop compares the same questions on the same images, not a 100-image clean run with a 20-image subset."""
    wanted = _corrupted_source_ids(scored)
    index = {i: k for k, i in enumerate(clean_run.ids)}
    rows = [index[i] for i in wanted if i in index]
    where = f"run {clean_run.run.path.name} on {clean_run.run.split_name} ({clean_run.run.fingerprint[:12]})"
    if not rows:
        return CleanReference(None, f"{where} answered none of the {len(wanted)} source questions; no drop",
                              0, len(wanted))
    stats = CellStats.of(clean_run.correct[rows], clean_run.said_yes[rows])
    note = f"{where}, on the {len(rows)} of its {len(clean_run.ids)} questions that are sources of this split"
    if len(rows) < len(wanted):
        note += f" ({len(wanted) - len(rows)} of {len(wanted)} source questions unanswered there)"
    return CleanReference(stats, note, len(rows), len(wanted))


def summarize_run(scored: ScoredRun, clean_run: ScoredRun | None = None, *,
                  no_clean_reason: str = "") -> RobustnessSummary | None:
    """Summary for a run of a corrupted split (None if its split has no corruption/severity fields).

    `clean_run` must be a run on the split's source (same fingerprint; the caller matches it); only its answers
    to this run's source questions count. `no_clean_reason` says why there is none, for the table."""
    corruption, severity = scored.column(CORRUPTION_FIELD), scored.column(SEVERITY_FIELD)
    if corruption is None or severity is None:      # has_corruptions(scored) is False
        return None
    ref = clean_reference(scored, clean_run) if clean_run is not None else None
    summary = summarize(scored.run.label, scored.run.split_name, scored.correct, scored.said_yes,
                        corruption, severity,
                        clean=ref.stats if ref else None,
                        clean_source=ref.note if ref else no_clean_reason)
    if ref is not None and summary.clean is ref.stats and ref.stats is not None:
        return replace(summary, clean_matched=ref.matched, clean_wanted=ref.wanted)
    return summary


def find_clean_run(run: ScoredRun, candidates: Sequence[ScoredRun], source: str | None) -> tuple[ScoredRun | None, str]:
    """The same model's newest run on the exact source split (by fingerprint), or None and why."""
    if not source:
        return None, "no clean reference: the split records no source fingerprint; no drop"
    same = [c for c in candidates if c.run.label == run.run.label and c.run.fingerprint == source]
    if not same:
        return None, f"no clean reference: no run of {run.run.label} on source split {source[:12]}; no drop"
    same.sort(key=lambda c: (c.run.complete, c.run.time), reverse=True)
    return same[0], ""
