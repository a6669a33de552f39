"""The benchmark protocol: a named way to get a Split (built on first use, or from --split-dir).

A benchmark class has a `Config` dataclass (its -B options) and is built as `cls(config)`; `load()`
returns a ready Split, building it into the cache directory the first time. Builds are deterministic,
so a cached split and a rebuilt one have the same fingerprint.
"""

from __future__ import annotations

import os
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


def cached_build(cache_dir: Path, build) -> Split:
    """Load the split in `cache_dir`, or call `build(tmp_dir) -> Split` and move it into place atomically."""
    if (cache_dir / "split.json").is_file():
        return Split.load(cache_dir)
    cache_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache_dir.with_name(f".{cache_dir.name}.building{os.getpid()}")
    if tmp.exists():
        import shutil

        shutil.rmtree(tmp)
    split = build(tmp)
    split.save(tmp)
    try:
        os.replace(tmp, cache_dir)
    except OSError:  # another process finished first; theirs is identical by construction
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return Split.load(cache_dir)
