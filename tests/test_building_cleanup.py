"""First-use builds of bundled splits: a build directory left by a builder that died is removed at the next
build; a live builder's (this host, pid alive) or another host's never is."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, make_split

from deem_eval.core.benchmark import builds_in_progress, cached_build


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid       # reaped: nothing has this pid now (reuse within the test is vanishingly unlikely)


@pytest.fixture
def live_pid():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc.pid
    proc.kill()
    proc.wait()


def _leftover(cache: Path, suffix: str) -> Path:
    path = cache.with_name(f".{cache.name}.building{suffix}")
    (path / "images").mkdir(parents=True)
    (path / "images" / "half.png").write_bytes(b"\x89PNG...")
    return path


def test_stale_build_directories_are_removed_and_live_ones_kept(tmp_path, live_pid):
    cache = tmp_path / "splits" / "tiny-v1"
    host = socket.gethostname()
    dead_old = _leftover(cache, str(_dead_pid()))                        # the name older versions used
    dead_new = _leftover(cache, f"{_dead_pid()}-140000@{host}")
    live = _leftover(cache, f"{live_pid}-140000@{host}")
    live_old = _leftover(cache, str(live_pid))
    elsewhere = _leftover(cache, f"{_dead_pid()}-1@not-{host}")           # cannot tell from here: kept
    other_split = tmp_path / "splits" / f".tiny-v1-n10.building{_dead_pid()}"   # another split's: not ours
    other_split.mkdir()
    split = cached_build(cache, lambda tmp: make_split(tmp))
    assert len(split.samples) == 12 and (cache / "split.json").is_file()
    assert not dead_old.exists() and not dead_new.exists()
    assert live.exists() and live_old.exists() and elsewhere.exists() and other_split.exists()
    assert builds_in_progress(cache) == sorted([live, live_old, elsewhere])


def test_a_failed_build_leaves_no_directory(tmp_path):
    cache = tmp_path / "splits" / "tiny-v1"

    def broken(tmp: Path):
        make_split(tmp)
        raise RuntimeError("download failed")

    with pytest.raises(RuntimeError):
        cached_build(cache, broken)
    assert not list(cache.parent.iterdir())
    assert len(cached_build(cache, lambda tmp: make_split(tmp)).samples) == 12


BUILD_AND_HANG = """
import sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from conftest import make_split
from deem_eval.core.benchmark import cached_build
def build(tmp):
    make_split(tmp)
    print("building", flush=True)
    time.sleep(60)
cached_build(Path(sys.argv[1]), build)
"""


def test_a_builder_killed_outright_is_cleaned_up_by_the_next_build(tmp_path):
    cache = tmp_path / "splits" / "tiny-v1"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", BUILD_AND_HANG, str(cache), str(REPO / "tests")], cwd=REPO,
                            env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "building"
    (left,) = builds_in_progress(cache)
    assert len(cached_build(cache, lambda tmp: make_split(tmp)).samples) == 12   # ours wins the race ...
    assert left.exists()                                                         # ... theirs is left alone
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert left.exists()
    assert len(cached_build(cache, lambda tmp: pytest.fail("rebuilt")).samples) == 12   # a plain load
    assert not left.exists() and builds_in_progress(cache) == []
