"""Robustness summaries for corrupted splits (ImageNet-C style `corruption` × `severity` group fields).

For one model on one corrupted split:
- accuracy and yes-ratio per corruption × severity;
- clean accuracy from the split's own clean rows (corruption "none" or severity 0), else from the same
  model's run on the clean source benchmark (pope-c -> pope), else none (drops are then left out);
- per corruption: mean over severities (unweighted, so each severity counts the same), drop from clean
  (clean - corrupted, in accuracy points), relative robustness (corrupted / clean; 1 = nothing lost) and
  the yes-ratio shift (corrupted - clean; > 0 means more "yes" on degraded images, i.e. hallucination);
- the same four numbers averaged over corruptions, and accuracy per severity averaged over corruptions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .metrics import Estimate, wilson
from .scored_runs import ScoredRun

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
        n = int(len(correct))
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


def is_clean(corruption: Any, severity: Any) -> bool:
    return str(corruption).strip().lower() in CLEAN_NAMES or _severity(severity) == 0


def _severity(value: Any) -> int:
    try:
        return int(round(float(value)))
    except (TypeError, ValueError):
        return -1


def summarize(model: str, split: str, correct: Sequence[bool], said_yes: Sequence[bool],
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
        values = [v for v in values if v is not None]
        return float(np.mean(values)) if values else None

    acc_by_sev: dict[int, float] = {}
    yes_by_sev: dict[int, float] = {}
    if clean is not None:
        acc_by_sev[0], yes_by_sev[0] = c_acc, c_yes
    for s in severities:
        cells = [r.by_severity[s] for r in rows if s in r.by_severity]
        acc_by_sev[s] = float(np.mean([c.accuracy.value for c in cells]))
        yes_by_sev[s] = float(np.mean([c.yes_ratio.value for c in cells]))
    return RobustnessSummary(
        model, split, clean, clean_source, severities, rows,
        mean_accuracy=mean_of([r.mean_accuracy for r in rows]),
        mean_drop=mean_of([r.drop for r in rows]),
        relative=mean_of([r.relative for r in rows]),
        yes_shift=mean_of([r.yes_shift for r in rows]),
        accuracy_by_severity=acc_by_sev, yes_ratio_by_severity=yes_by_sev)


def has_corruptions(scored: ScoredRun) -> bool:
    return scored.column(CORRUPTION_FIELD) is not None and scored.column(SEVERITY_FIELD) is not None


def summarize_run(scored: ScoredRun, clean_run: ScoredRun | None = None) -> RobustnessSummary | None:
    """Summary for a run of a corrupted split (None if its split has no corruption/severity fields)."""
    if not has_corruptions(scored):
        return None
    clean = None
    source = ""
    if clean_run is not None:
        clean = CellStats.of(clean_run.correct, clean_run.said_yes)
        source = f"run {clean_run.run.path.name} on {clean_run.run.split_name}"
    return summarize(scored.run.label, scored.run.split_name, scored.correct, scored.said_yes,
                     scored.column(CORRUPTION_FIELD), scored.column(SEVERITY_FIELD), clean=clean,
                     clean_source=source)


def clean_benchmark(benchmark: str) -> str | None:
    """The clean source of a corrupted benchmark name: pope-c -> pope, robustvqa-c -> robustvqa."""
    for suffix in ("-c", "_c", "-corrupted"):
        if benchmark.endswith(suffix):
            return benchmark[: -len(suffix)]
    return None
