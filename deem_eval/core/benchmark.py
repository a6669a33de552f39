"""The benchmark protocol: a named way to get a Split (built on first use, or from --split-dir).

A benchmark class has a `Config` dataclass (its -B options) and is built as `cls(config)`; `load()`
returns a ready Split, building it into the cache directory the first time. Builds are deterministic,
so a cached split and a rebuilt one have the same fingerprint. `cached_build` removes what builders that died
left behind, and under data parallelism lets local rank 0 build while the other ranks wait for its split.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from deem_eval.core.errors import DeemEvalError
from deem_eval.core.splits import Split


def deem_eval_home() -> Path:
    """Cache root for built splits and embeddings: $DEEM_EVAL_HOME, default ~/.cache/deem-eval."""
    return Path(os.environ.get("DEEM_EVAL_HOME", Path.home() / ".cache" / "deem-eval")).expanduser()


class Benchmark(Protocol):
    name: str
    description: str

    def load(self, *, split_dir: Path | None = None) -> Split: ...


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
    if timeout_s is not None:
        return timeout_s
    raw = os.environ.get(BUILD_TIMEOUT_ENV)
    if raw is None:
        return BUILD_TIMEOUT_S
    try:
        return float(raw)
    except ValueError:
        raise DeemEvalError(f"${BUILD_TIMEOUT_ENV} must be a number of seconds, got {raw!r}") from None


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
