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

from deem_eval.core.errors import DeemEvalError
from deem_eval.run.catalog import RunInfo
from deem_eval.run.rundir import RunDir


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
            from deem_eval.core.errors import did_you_mean
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
    from deem_eval.core.splits import Split
    from deem_eval.run.runner import score_run
    from deem_eval.scoring.score import get_parser

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
