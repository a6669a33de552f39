"""The runs on disk: find run directories and read each one (manifest + metrics) as a `RunInfo`, the one
view of a run that scoring, analysis and the views share."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from deem_eval.core.errors import DeemEvalError
from deem_eval.run.rundir import MANIFEST_FILE, METRICS_FILE, RunDir, RunManifest
from deem_eval.scoring.metrics import MetricsDocument

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

    @cached_property
    def document(self) -> MetricsDocument | None:
        """`metrics` as a typed MetricsDocument (None when never scored); read once per RunInfo. A document
        in a newer format than this deem-eval reads raises MetricsFormatError naming the run's metrics file
        (`load_run` reads it up front, so a catalog never holds one)."""
        if self.metrics is None:
            return None
        return MetricsDocument.from_json(self.metrics, source=self.path / METRICS_FILE)

    @property
    def base_label(self) -> str:
        return self.manifest.model_label or self.manifest.model

    @property
    def parser(self) -> str:
        """The parser its numbers come from (the metrics document's own record, else the manifest's)."""
        doc = self.document
        return str((doc.parser if doc is not None else "") or self.manifest.parser)

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
        doc = self.document
        return doc is not None and doc.complete

    @property
    def n_selected(self) -> int:
        """The metrics' count, else the manifest's (never scored, or a document without one: 0 is absent)."""
        doc = self.document
        return (doc.n_selected if doc is not None else 0) or self.manifest.n_selected

    @property
    def n_answered(self) -> int:
        doc = self.document
        return doc.n_answered if doc is not None else 0

    @property
    def n_failed(self) -> int:
        doc = self.document
        return doc.n_failed if doc is not None else 0

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
    info = RunInfo(path, run.manifest, metrics)
    _ = info.document          # typed once, here: a document in a newer format is refused, naming the file
    return info
