"""Find run directories, pick the one run per (model label, split) that a leaderboard shows, and refuse to
rank runs of one split that answered different questions (different split fingerprints).

The newest complete run wins; older runs and incomplete runs it replaces are listed as superseded, so a
reader can see that nothing was silently dropped. A model with only incomplete runs keeps its newest one,
marked, rather than disappearing from the table.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DeemEvalError
from ..rundir import MANIFEST_FILE, RunDir, RunManifest

DEFAULT_RUNS_DIR = Path("results/runs")


@dataclass(frozen=True)
class RunInfo:
    """One run directory as the leaderboard sees it: manifest + metrics (None when never scored)."""

    path: Path
    manifest: RunManifest
    metrics: dict[str, Any] | None

    @property
    def label(self) -> str:
        return self.manifest.model_label or self.manifest.model

    @property
    def split_name(self) -> str:
        return self.manifest.split_name

    @property
    def fingerprint(self) -> str:
        return self.manifest.split_fingerprint

    @property
    def benchmark(self) -> str:
        return self.manifest.benchmark

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def scored(self) -> bool:
        return self.metrics is not None

    @property
    def complete(self) -> bool:
        return bool(self.metrics and self.metrics.get("complete"))

    @property
    def n_selected(self) -> int:
        return int((self.metrics or {}).get("n_selected", self.manifest.n_selected))

    @property
    def n_answered(self) -> int:
        return int((self.metrics or {}).get("n_answered", 0))

    @property
    def n_failed(self) -> int:
        return int((self.metrics or {}).get("n_failed", 0))

    @property
    def n_missing(self) -> int:
        return max(0, self.n_selected - self.n_answered - self.n_failed)

    @property
    def limited(self) -> bool:
        return self.manifest.limit is not None

    @property
    def time(self) -> str:
        """Sort key for "newest": when it finished, else when it started (ISO UTC strings sort correctly)."""
        return self.manifest.finished_utc or self.manifest.started_utc or ""

    def synthetic_split(self) -> bool:
        """Whether the run answered a bundled synthetic stand-in (SynthScenes POPE, RobustVQA-mini), whose
        numbers must not be read against published ones. From split.json when it is still there."""
        meta: dict[str, Any] = {}
        path = Path(self.manifest.split_dir or "") / "split.json"
        if self.manifest.split_dir and path.is_file():
            try:
                meta = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                meta = {}
        if (meta.get("extra") or {}).get("synthetic"):
            return True
        names = [self.split_name, str((meta.get("builder") or {}).get("name", ""))]
        return any(token in n.lower() for n in names for token in ("synth", "mini"))

    def problems(self) -> list[str]:
        """Why this run's numbers deserve a second look (empty for a clean, complete run)."""
        out = []
        if not self.scored:
            out.append("not scored (run `deem-eval score` on it)")
            return out
        if self.n_failed:
            out.append(f"{self.n_failed} of {self.n_selected} samples failed")
        if self.n_missing:
            out.append(f"incomplete: {self.n_missing} of {self.n_selected} samples not answered yet")
        if self.limited:
            out.append(f"--limit {self.manifest.limit}: a subset of the split")
        return out


@dataclass(frozen=True)
class Superseded:
    run: RunInfo
    by: RunInfo
    reason: str


@dataclass(frozen=True)
class Selection:
    chosen: list[RunInfo]                                  # one per (label, split), sorted
    superseded: list[Superseded] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)   # unreadable / unscored dirs


# ---- discovery ----------------------------------------------------------------------------------------

def discover(paths: Sequence[Path] | None) -> tuple[list[RunInfo], list[tuple[Path, str]]]:
    """Run directories named in `paths` (a run dir, or a folder of run dirs; default results/runs).

    A run dir named explicitly must be readable (error otherwise); unreadable ones found by scanning a
    folder are skipped and reported, so one damaged run does not hide the others.
    """
    explicit = bool(paths)
    roots = list(paths) if paths else [DEFAULT_RUNS_DIR]
    runs: list[RunInfo] = []
    skipped: list[tuple[Path, str]] = []
    for root in roots:
        if not root.exists():
            if explicit:
                raise DeemEvalError(f"{root}: no such run directory")
            raise DeemEvalError(f"{root}: no runs yet; make one with `deem-eval --model random --bench "
                                f"synthscenes-yesno`, or name run directories explicitly")
        if (root / MANIFEST_FILE).is_file():
            runs.append(load_run(root))
            continue
        if not root.is_dir():
            raise DeemEvalError(f"{root}: not a run directory (no {MANIFEST_FILE})")
        children = sorted(p for p in root.iterdir() if (p / MANIFEST_FILE).is_file())
        for child in children:
            try:
                runs.append(load_run(child))
            except DeemEvalError as exc:
                skipped.append((child, str(exc)))
    if not runs:
        where = ", ".join(str(r) for r in roots)
        raise DeemEvalError(f"no run directories found in {where}; make one with "
                            f"`deem-eval --model random --bench synthscenes-yesno`")
    return runs, skipped


def load_run(path: Path) -> RunInfo:
    run = RunDir.open(path)
    try:
        metrics = run.read_metrics()
    except json.JSONDecodeError as exc:
        raise DeemEvalError(f"{path / 'metrics.json'}:{exc.lineno}: malformed JSON ({exc.msg}); "
                            f"rescore with `deem-eval score {path}`") from None
    return RunInfo(path, run.manifest, metrics)


# ---- filters ------------------------------------------------------------------------------------------

FILTER_KEYS = ("model", "split", "benchmark", "fingerprint", "run")


@dataclass(frozen=True)
class RunFilter:
    """`key=glob[,glob...]` (OR within a key, AND across filters); a bare pattern filters by model."""

    key: str
    patterns: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> RunFilter:
        key, sep, value = text.partition("=")
        if not sep:
            key, value = "model", text
        key = key.strip().lower()
        if key not in FILTER_KEYS:
            from ..errors import did_you_mean
            raise did_you_mean(key, FILTER_KEYS, "filter key")
        patterns = tuple(p.strip() for p in value.split(",") if p.strip())
        if not patterns:
            raise DeemEvalError(f"--filter {text!r}: give a pattern after '='")
        return cls(key, patterns)

    def matches(self, run: RunInfo) -> bool:
        value = {"model": run.label, "split": run.split_name, "benchmark": run.benchmark,
                 "fingerprint": run.fingerprint, "run": run.name}[self.key].lower()
        for pattern in self.patterns:
            p = pattern.lower()
            if self.key == "fingerprint" and not any(c in p for c in "*?["):
                p += "*"                                     # a prefix is enough for a fingerprint
            if fnmatch.fnmatchcase(value, p) or (self.key == "model" and not any(c in p for c in "*?[")
                                                 and p in value):
                return True
        return False


def apply_filters(runs: Iterable[RunInfo], filters: Sequence[RunFilter]) -> list[RunInfo]:
    return [r for r in runs if all(f.matches(r) for f in filters)]


# ---- selection ----------------------------------------------------------------------------------------

def select(runs: Sequence[RunInfo]) -> Selection:
    """The newest complete run per (model label, split name); else the newest scored run, marked."""
    by_key: dict[tuple[str, str], list[RunInfo]] = {}
    skipped: list[tuple[Path, str]] = []
    for run in runs:
        if not run.scored:
            skipped.append((run.path, f"not scored yet (no metrics.json); run `deem-eval score {run.path}`"))
            continue
        by_key.setdefault((run.label, run.split_name), []).append(run)
    chosen, superseded = [], []
    for key in sorted(by_key):
        candidates = sorted(by_key[key], key=lambda r: (r.time, r.name), reverse=True)
        complete = [r for r in candidates if r.complete]
        best = complete[0] if complete else candidates[0]
        chosen.append(best)
        for other in candidates:
            if other is best:
                continue
            if other.complete:
                reason = "an older complete run"
            elif best.complete:
                reason = "incomplete; a complete run exists"
            else:
                reason = "an older incomplete run"
            superseded.append(Superseded(other, best, reason))
    return Selection(chosen, superseded, skipped)


def check_fingerprints(chosen: Sequence[RunInfo]) -> None:
    """Refuse to rank runs of one split name that answered different samples, naming the runs."""
    by_split: dict[str, dict[str, list[RunInfo]]] = {}
    for run in chosen:
        by_split.setdefault(run.split_name, {}).setdefault(run.fingerprint, []).append(run)
    problems = []
    for split, prints in sorted(by_split.items()):
        if len(prints) < 2:
            continue
        lines = [f"split {split!r} was answered with {len(prints)} different fingerprints:"]
        for fp, group in sorted(prints.items(), key=lambda kv: -len(kv[1])):
            names = ", ".join(f"{r.path} ({r.label})" for r in group)
            lines.append(f"  {fp[:12]}…: {names}")
        problems.append("\n".join(lines))
    if problems:
        raise DeemEvalError(
            "refusing to rank runs that answered different versions of a split.\n" + "\n".join(problems)
            + "\nRe-run the odd ones on the current split, or keep one version with "
              "--filter fingerprint=PREFIX (or by naming run directories).")
