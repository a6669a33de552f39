"""The benchmark protocol: a named way to get a Split (built on first use, or from --split-dir).

A benchmark class has a `Config` dataclass (its -B options) and is built as `cls(config)`; `load()`
returns a ready Split, building it into the cache directory the first time. Builds are deterministic,
so a cached split and a rebuilt one have the same fingerprint. `cached_build` removes what builders that died
left behind, and under data parallelism lets local rank 0 build while the other ranks wait for its split.

A benchmark class may also set `leaderboard = LeaderboardLayout(...)`: the columns the leaderboard gives its
runs (named paper columns read from one group field, the default metrics, notes on its metrics). Keep the
class's module light to import (no torch at module level): the leaderboard imports it to read the layout.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from deem_eval.core.errors import DeemEvalError
from deem_eval.core.options import seconds_setting
from deem_eval.core.splits import Split


def deem_eval_home() -> Path:
    """Cache root for built splits and embeddings: $DEEM_EVAL_HOME, default ~/.cache/deem-eval."""
    return Path(os.environ.get("DEEM_EVAL_HOME", Path.home() / ".cache" / "deem-eval")).expanduser()


class Benchmark(Protocol):
    name: str
    description: str

    def load(self, *, split_dir: Path | None = None) -> Split: ...


@dataclass(frozen=True, init=False)
class Slot:
    """One named leaderboard column of a benchmark: its cells are read from the runs' metrics of the group
    whose `field` value (the layout's) is one of `values` (compared in lower case)."""
    id: str                      # stable id, also the reported tables' csv column (pope_r)
    label: str                   # column label (POPE-R)
    values: frozenset[str]       # accepted values of the group field (random, r)

    def __init__(self, id: str, label: str, values: Iterable[str]) -> None:
        object.__setattr__(self, "id", id)
        object.__setattr__(self, "label", label)
        object.__setattr__(self, "values", frozenset(v.lower() for v in values))


@dataclass(frozen=True)
class LeaderboardLayout:
    """How the leaderboard shows a benchmark's runs. With `slots`, a run whose metrics have groups of `field`
    matching them gets one named column per slot (and metric); otherwise, or for a run without those groups,
    one column per split and metric. `metrics` are the default metrics (the first is the primary one)."""
    metrics: tuple[str, ...] = ("accuracy",)
    slots: tuple[Slot, ...] = ()
    field: str = "subset"
    prefix: str | None = None    # short name for the benchmark's average column (POPE); default: the slots'
    order: int = 100             # where its named columns go among other benchmarks' (lower: further left)
    metric_notes: tuple[tuple[str, str], ...] = ()   # (metric, note): a table note shown when the metric is

    def derived(self) -> LeaderboardLayout:
        """The layout of a benchmark derived from this one (pope-c from pope): its metrics and their notes,
        no named columns (its prefix names the family in report titles)."""
        return LeaderboardLayout(metrics=self.metrics, metric_notes=self.metric_notes, order=self.order,
                                 prefix=self.prefix)

    @property
    def label(self) -> str | None:
        """The short name of the benchmark's averages: `prefix`, else the common prefix of the slot labels
        before a "-" (RVQA for RVQA-A, RVQA-R, RVQA-V); None without slots."""
        if not self.slots:
            return None
        if self.prefix:
            return self.prefix
        prefixes = {s.label.split("-")[0] for s in self.slots}
        return prefixes.pop() if len(prefixes) == 1 else None


def leaderboard_layout(benchmark: Any) -> LeaderboardLayout | None:
    """A benchmark class's (or object's) `leaderboard` layout, None where it declares none."""
    layout = getattr(benchmark, "leaderboard", None)
    return layout if isinstance(layout, LeaderboardLayout) else None


@dataclass(frozen=True)
class NoOptions:
    """For benchmarks and adapters without options."""


def load_prebuilt(split_dir: Path, *, benchmark: str) -> Split:
    """Load a split given with --split-dir and check it belongs to `benchmark`."""
    split = Split.load(split_dir)
    if split.meta.benchmark != benchmark:
        raise DeemEvalError(f"{split_dir}: this split belongs to benchmark {split.meta.benchmark!r}, "
                            f"not {benchmark!r}; use --bench {split.meta.benchmark}")
    return split


BUILD_TIMEOUT_S = 3600.0                       # how long a waiting rank waits for local rank 0's build
BUILD_TIMEOUT_ENV = "DEEM_EVAL_BUILD_TIMEOUT_S"
_BUILDING = re.compile(r"\.building(\d+)(?:-(\d+))?(?:@(.+))?$")   # pid, thread, host (older names: pid only)


def cached_build(cache_dir: Path, build, *, timeout_s: float | None = None) -> Split:
    """Load the split in `cache_dir`, or call `build(tmp_dir) -> Split` and move it into place atomically.

    The build goes to `.NAME.building<pid>-<thread>@<host>` beside `cache_dir`; one left by a builder that died
    (its pid no longer alive on this host) is removed at the next build, a live builder's never. Under data
    parallelism (WORLD_SIZE > 1) only local rank 0 (LOCAL_RANK, else RANK) builds; the other ranks wait for the
    finished split, at most `timeout_s` (default $DEEM_EVAL_BUILD_TIMEOUT_S, else an hour)."""
    remove_stale_builds(cache_dir)     # also when the split is there: a builder that lost the race and died
    if (cache_dir / "split.json").is_file():
        return Split.load(cache_dir)
    waiter = _waiting_rank()
    if waiter is not None:
        return _wait_for_build(cache_dir, waiter, build_timeout(timeout_s))
    cache_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache_dir.with_name(f".{cache_dir.name}.building{os.getpid()}-{threading.get_ident()}"
                              f"@{socket.gethostname()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        split = build(tmp)
        split.save(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        os.replace(tmp, cache_dir)
    except OSError:  # another process finished first; theirs is identical by construction
        shutil.rmtree(tmp, ignore_errors=True)
    return Split.load(cache_dir)


def builds_in_progress(cache_dir: Path) -> list[Path]:
    """The temporary build directories of `cache_dir` (live or left by a builder that died)."""
    prefix = f".{cache_dir.name}"
    if not cache_dir.parent.is_dir():
        return []
    return sorted(p for p in cache_dir.parent.glob(f"{glob.escape(prefix)}.building*")
                  if _BUILDING.fullmatch(p.name[len(prefix):]))


def remove_stale_builds(cache_dir: Path) -> list[Path]:
    """Remove the build directories of `cache_dir` whose builder is gone: made on this host (or named by pid
    only, as older versions did) by a process that no longer exists. Returns those removed."""
    removed = []
    host = socket.gethostname()
    for path in builds_in_progress(cache_dir):
        match = _BUILDING.fullmatch(path.name[len(cache_dir.name) + 1:])
        if match is None:   # builds_in_progress lists only names that match
            continue
        pid, owner_host = int(match.group(1)), match.group(3)
        if (owner_host is not None and owner_host != host) or _pid_alive(pid):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # exists, owned by someone else
        return True
    except (OverflowError, OSError):
        return False
    return True


def _env_int(name: str) -> int | None:
    try:
        return int(os.environ[name])
    except (KeyError, ValueError):
        return None


def _waiting_rank() -> str | None:
    """Under data parallelism, a description of this rank when it must wait for another to build; None when it
    builds itself (a single process, or local rank 0: each host builds into its own cache once)."""
    world = _env_int("WORLD_SIZE")
    if world is None or world <= 1:
        return None
    local = _env_int("LOCAL_RANK")
    rank = _env_int("RANK")
    builder_rank = local if local is not None else rank
    if builder_rank is None or builder_rank == 0:
        return None
    return f"rank {rank if rank is not None else '?'} of {world}" + (f" (local rank {local})" if local is not None else "")


def build_timeout(timeout_s: float | None = None) -> float:
    return seconds_setting(timeout_s, BUILD_TIMEOUT_ENV, BUILD_TIMEOUT_S)


def _wait_for_build(cache_dir: Path, who: str, timeout: float) -> Split:
    """A file barrier: wait until local rank 0 has moved the finished split into `cache_dir`."""
    deadline = time.monotonic() + timeout
    while not (cache_dir / "split.json").is_file():
        if time.monotonic() > deadline:
            building = ", ".join(p.name for p in builds_in_progress(cache_dir)) or "none"
            raise DeemEvalError(
                f"{who}: waited {timeout:.0f} s for local rank 0 to build the split {cache_dir} (its split.json "
                f"never appeared; builds in progress: {building}). Rank 0 failed, was not started, or is still "
                f"building: check its log, raise ${BUILD_TIMEOUT_ENV}, or build the split once without "
                "data parallelism before starting all ranks.")
        time.sleep(0.1)
    return Split.load(cache_dir)
