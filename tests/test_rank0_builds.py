"""Data parallel first use of a bundled split: local rank 0 builds it, the other ranks wait for the finished
split (a file barrier, bounded, naming what it waits for) instead of all building it at once."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import REPO, make_split

from deem_eval.core.benchmark import BUILD_TIMEOUT_ENV, cached_build
from deem_eval.core.errors import DeemEvalError


def _never(tmp):
    raise AssertionError("a waiting rank built the split")


def _as_rank(monkeypatch, rank: int, world: int = 2, local: int | None = None) -> None:
    monkeypatch.setenv("RANK", str(rank))
    monkeypatch.setenv("WORLD_SIZE", str(world))
    if local is None:
        monkeypatch.delenv("LOCAL_RANK", raising=False)
    else:
        monkeypatch.setenv("LOCAL_RANK", str(local))


def test_other_ranks_wait_for_rank0s_split(tmp_path, monkeypatch):
    _as_rank(monkeypatch, 1)
    cache = tmp_path / "splits" / "tiny-v1"

    def rank0() -> None:     # what rank 0's cached_build does: build aside, then one rename
        time.sleep(0.5)
        tmp = cache.with_name(f".{cache.name}.building{os.getpid()}-1")
        make_split(tmp)
        os.replace(tmp, cache)

    thread = threading.Thread(target=rank0)
    thread.start()
    started = time.monotonic()
    split = cached_build(cache, _never, timeout_s=30)
    thread.join()
    assert time.monotonic() - started >= 0.4 and len(split.samples) == 12


def test_waiting_is_bounded_and_names_what_it_waits_for(tmp_path, monkeypatch):
    _as_rank(monkeypatch, 1)
    cache = tmp_path / "splits" / "tiny-v1"
    monkeypatch.setenv(BUILD_TIMEOUT_ENV, "0.3")
    started = time.monotonic()
    with pytest.raises(DeemEvalError) as err:
        cached_build(cache, _never)
    assert time.monotonic() - started < 5
    text = str(err.value)
    assert "rank 1 of 2" in text and str(cache) in text and "split.json" in text and BUILD_TIMEOUT_ENV in text


@pytest.mark.parametrize("rank,local", [(0, None), (3, 0)])
def test_local_rank0_builds(tmp_path, monkeypatch, rank, local):
    _as_rank(monkeypatch, rank, world=4, local=local)
    cache = tmp_path / "splits" / "tiny-v1"
    assert len(cached_build(cache, lambda tmp: make_split(tmp), timeout_s=0.1).samples) == 12


LOAD = """
import sys
from deem_eval.benchmarks.synthscenes_yesno import SynthScenesYesNo, SynthScenesYesNoConfig
bench = SynthScenesYesNo(SynthScenesYesNoConfig(num_images=6, size=64))
build = bench.build
def counted(tmp):
    print("BUILD", flush=True)
    return build(tmp)
bench.build = counted
print("FINGERPRINT", bench.load().fingerprint, flush=True)
"""


def test_two_ranks_build_a_bundled_split_once(tmp_path):
    def start(rank: int) -> subprocess.Popen:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "DEEM_EVAL_HOME": str(tmp_path / "home"), "RANK": str(rank),
               "WORLD_SIZE": "2", "LOCAL_RANK": str(rank), BUILD_TIMEOUT_ENV: "60"}
        return subprocess.Popen([sys.executable, "-c", LOAD], cwd=REPO, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    rank1 = start(1)                 # first, so an unguarded rank 1 would surely build it itself
    time.sleep(1.0)
    rank0 = start(0)
    out = [p.communicate(timeout=120) for p in (rank0, rank1)]
    assert [rank0.returncode, rank1.returncode] == [0, 0], out
    assert out[0][0].count("BUILD") == 1 and "BUILD" not in out[1][0]
    prints = [[line for line in o.splitlines() if line.startswith("FINGERPRINT")] for o, _ in out]
    assert prints[0] == prints[1] and len(prints[0]) == 1
    assert [p.name for p in Path(tmp_path / "home" / "splits").iterdir()] == \
        [p.name for p in Path(tmp_path / "home" / "splits").iterdir() if not p.name.startswith(".")]
