"""Find run directories, pick the one run per (configuration, split) that a leaderboard shows, and refuse to
rank runs of one split that answered different questions (different split fingerprints) or were scored with
different parsers.

A configuration is what makes two runs the same command apart from the split and --limit: model, adapter
options and seed (the run key without split and limit). Configurations that share a label get the options
that tell them apart appended (`random[p_yes=0.9]`), so no run hides another. Per configuration and split the
newest complete run of the whole split wins; a --limit or incomplete run never supersedes one, however new.
Runs it replaces are listed as superseded, so a reader can see that nothing was silently dropped. A
configuration with only partial runs keeps its best one, marked, rather than disappearing from the table.
"""

from __future__ import annotations

import dataclasses
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
    display_label: str | None = None      # set by `select` when configurations share a label

    @property
    def label(self) -> str:
        return self.display_label or self.base_label

    @property
    def base_label(self) -> str:
        return self.manifest.model_label or self.manifest.model

    @property
    def parser(self) -> str:
        """The parser its numbers come from (the metrics document's own record, else the manifest's)."""
        return str((self.metrics or {}).get("parser") or self.manifest.parser)

    @property
    def config(self) -> str:
        """Model, adapter options and seed as one canonical string: runs that differ in it are different rows."""
        return json.dumps({"model": self.manifest.model, "config": self.manifest.adapter_config,
                           "seed": self.manifest.seed}, sort_keys=True, default=str)

    def options(self) -> dict[str, Any]:
        return {**self.manifest.adapter_config, "seed": self.manifest.seed}

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
        """A --limit smaller than the split (a limit that covered it answered every sample)."""
        limit = self.manifest.limit
        return limit is not None and not (self.n_selected and self.n_selected < limit)

    @property
    def full(self) -> bool:
        """Complete, on the whole split: the only kind of run that supersedes every other."""
        return self.complete and not self.limited

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
    if metrics is not None and not isinstance(metrics, dict):
        raise DeemEvalError(f"{run.metrics_path()}: expected a JSON object, got {type(metrics).__name__}; "
                            f"rescore with `deem-eval score {path}`")
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
    """Per (configuration, split name): the newest full run, else the newest complete --limit run, else the
    newest scored run; each run labelled so that configurations sharing a label are told apart."""
    by_key: dict[tuple[str, str], list[RunInfo]] = {}
    skipped: list[tuple[Path, str]] = []
    scored = []
    for run in runs:
        if not run.scored:
            skipped.append((run.path, f"not scored yet (no metrics.json); run `deem-eval score {run.path}`"))
            continue
        scored.append(run)
    labels = distinct_labels(scored)
    for run in scored:
        run = dataclasses.replace(run, display_label=labels[run.config])
        by_key.setdefault((run.label, run.split_name), []).append(run)
    chosen, superseded = [], []
    for key in sorted(by_key):
        candidates = sorted(by_key[key], key=lambda r: (r.full, r.complete, r.time, r.name), reverse=True)
        best = candidates[0]
        chosen.append(best)
        superseded += [Superseded(other, best, _why_superseded(other, best)) for other in candidates[1:]]
    return Selection(chosen, superseded, skipped)


def _why_superseded(run: RunInfo, best: RunInfo) -> str:
    if run.full:
        return "an older complete run"
    if run.complete and best.full:
        return f"--limit {run.manifest.limit}; a complete run of the whole split exists"
    if best.full or best.complete:
        return "incomplete; a complete run exists"
    return "an older complete --limit run" if run.complete else "an older incomplete run"


def distinct_labels(runs: Sequence[RunInfo]) -> dict[str, str]:
    """Row label per configuration: the run's label, plus `[key=value,...]` of the options that differ
    between configurations sharing that label (the configuration's hash when no option tells them apart)."""
    by_label: dict[str, dict[str, RunInfo]] = {}
    for run in runs:
        by_label.setdefault(run.base_label, {}).setdefault(run.config, run)
    out: dict[str, str] = {}
    for label, configs in by_label.items():
        if len(configs) == 1:
            out.update({c: label for c in configs})
            continue
        options = {c: r.options() for c, r in configs.items()}
        keys = sorted({k for o in options.values() for k in o})
        differing = [k for k in keys if len({json.dumps(o.get(k), sort_keys=True, default=str)
                                             for o in options.values()}) > 1]
        shown = {c: ",".join(f"{k}={o[k]}" for k in differing if k in o) for c, o in options.items()}
        for config, text in shown.items():
            if not text or list(shown.values()).count(text) > 1:     # only the model name tells them apart
                text = ",".join(filter(None, [text, f"model={configs[config].manifest.model}"]))
            out[config] = f"{label}[{text}]"
    return out


def check_parsers(chosen: Sequence[RunInfo]) -> None:
    """Refuse to rank runs of one split whose numbers come from different parsers, naming the runs."""
    by_split: dict[str, dict[str, list[RunInfo]]] = {}
    for run in chosen:
        by_split.setdefault(run.split_name, {}).setdefault(run.parser, []).append(run)
    problems = []
    for split, parsers in sorted(by_split.items()):
        if len(parsers) < 2:
            continue
        lines = [f"split {split!r} was scored with {len(parsers)} parsers:"]
        for name, group in sorted(parsers.items()):
            lines.append(f"  {name}: " + ", ".join(f"{r.path} ({r.label})" for r in group))
        problems.append("\n".join(lines))
    if problems:
        raise DeemEvalError(
            "refusing to rank runs scored with different answer parsers.\n" + "\n".join(problems)
            + "\nPass --parser NAME to rescore them all with one parser from their samples.jsonl (nothing is "
              "written), or keep one set with --filter.")


def rescore(run: RunInfo, parser: str) -> RunInfo:
    """The run with its metrics recomputed by `parser` from samples.jsonl (read-only), for a leaderboard whose
    cells must all come from one parser."""
    if run.parser == parser:
        return run
    from ..runner import score_run
    from ..scoring import get_parser
    from ..splits import Split

    split_dir = Path(run.manifest.split_dir or "")
    if not run.manifest.split_dir or not (split_dir / "split.json").is_file():
        raise DeemEvalError(f"{run.path}: cannot rescore with {parser!r}: its split {str(split_dir)!r} is gone "
                            f"(rescore it with `deem-eval score {run.path} --parser {parser} --split-dir DIR`)")
    split = Split.load(split_dir, check_fingerprint=False)
    if split.fingerprint != run.fingerprint:
        raise DeemEvalError(f"{run.path}: cannot rescore with {parser!r}: {split_dir} now holds another split "
                            f"(fingerprint {split.fingerprint[:12]}… vs the run's {run.fingerprint[:12]}…)")
    metrics = score_run(RunDir.open(run.path), split, get_parser(parser), repair=False)
    return dataclasses.replace(run, metrics=metrics)


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
