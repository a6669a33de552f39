"""One writer per run directory: concurrent identical commands, locked runs, shared --run-dir, data parallel."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, make_split

from deem_eval.core.errors import DeemEvalError
from deem_eval.model_adapters.baselines import AlwaysYes, RandomAnswer
from deem_eval.run.rundir import LOCK_FILE, DuplicateRecordsWarning, RunDir, RunLock, RunLockedError
from deem_eval.run.runner import RunOptions, run
from deem_eval.scoring.parsing import STRICT

# Waits for a "go" file so that every process enters the CLI at the same moment, then runs it with a slow
# model (0.2 s per batch), so that the first writer is certainly still running when the others look.
CLI_AT_ONCE = f"""
import os, sys, time
from pathlib import Path
sys.path.insert(0, {str(REPO / 'tests')!r})
from deem_eval.core.registry import MODELS
from deem_eval.model_adapters.baselines import AlwaysYes, RandomAnswer

class SlowRandom(RandomAnswer):
    name = "slow-random"
    def generate(self, batch):
        time.sleep(0.2)
        return super().generate(batch)

class SlowYes(AlwaysYes):
    name = "slow-yes"
    def generate(self, batch):
        time.sleep(0.2)
        return super().generate(batch)

MODELS.register("slow-random", SlowRandom)
MODELS.register("slow-yes", SlowYes)
go, ready = Path(sys.argv[1]), Path(sys.argv[2])
from deem_eval.cli import main
ready.touch()
while not go.exists():
    time.sleep(0.005)
sys.exit(main(sys.argv[3:]))
"""

# Takes a run's lock, says so, and keeps it until its stdin closes.
HOLD_LOCK = """
import sys
from pathlib import Path
from deem_eval.run.rundir import RunLock
lock = RunLock.acquire(Path(sys.argv[1]))
print("locked", flush=True)
sys.stdin.read()
"""


def _opts(tmp_path: Path, **kw) -> RunOptions:
    return RunOptions(out=tmp_path / "runs", progress=False, **kw)


def _start_together(tmp_path: Path, commands: list[tuple[list[str], dict[str, str]]]) -> list[subprocess.CompletedProcess]:
    """Run CLI commands (args, extra env) in separate processes released at the same instant."""
    go = tmp_path / "go"
    procs = []
    for i, (args, env) in enumerate(commands):
        ready = tmp_path / f"ready{i}"
        procs.append((ready, subprocess.Popen(
            [sys.executable, "-c", CLI_AT_ONCE, str(go), str(ready), *args, "--no-progress"], cwd=REPO,
            env={**os.environ, "OMP_NUM_THREADS": "1", **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True)))
    deadline = time.monotonic() + 60
    while not all(ready.exists() for ready, _ in procs):
        assert time.monotonic() < deadline, "the processes never got ready"
        time.sleep(0.01)
    go.touch()
    results = []
    for _, proc in procs:
        out, err = proc.communicate(timeout=120)
        results.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return results


def _ids(samples: Path) -> list[str]:
    return [json.loads(line)["id"] for line in samples.read_text().splitlines()]


@pytest.fixture
def holder(tmp_path):
    """Start a process holding the lock file at a path; yields that process."""
    procs = []

    def start(lock_path: Path) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(lock_path)], cwd=REPO, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout.readline().strip() == "locked"
        return proc

    yield start
    for proc in procs:
        proc.stdin.close()
        proc.wait(timeout=30)


def test_two_identical_commands_started_together_one_writes_the_other_is_refused(tmp_path):
    split = make_split(tmp_path / "split", n_images=10)
    args = ["--model", "slow-random", "--split-dir", str(split.directory), "--batch-size", "2",
            "--out", str(tmp_path / "runs")]
    results = _start_together(tmp_path, [(args, {}), (args, {})])
    codes = sorted(r.returncode for r in results)
    assert codes == [0, 2], [r.stderr for r in results]
    refused = next(r for r in results if r.returncode == 2)
    assert "an identical run is already in progress" in refused.stderr
    assert "held by pid" in refused.stderr and f"on host {socket.gethostname()}" in refused.stderr
    (run_dir,) = [p for p in (tmp_path / "runs").iterdir()]      # one directory, nothing else in --out
    ids = _ids(run_dir / "samples.jsonl")
    assert len(ids) == len(set(ids)) == 20
    assert json.loads((run_dir / "metrics.json").read_text())["complete"]


def test_two_models_on_one_run_dir_started_together_never_mix(tmp_path):
    split = make_split(tmp_path / "split", n_images=10)
    shared = ["--split-dir", str(split.directory), "--batch-size", "2", "--run-dir", str(tmp_path / "shared")]
    results = _start_together(tmp_path, [(["--model", "slow-random", *shared], {}),
                                         (["--model", "slow-yes", *shared], {})])
    assert sorted(r.returncode for r in results) == [0, 2], [r.stderr for r in results]
    refused = next(r for r in results if r.returncode == 2)
    assert "is in use" in refused.stderr and "held by" in refused.stderr   # pid unless caught mid-start
    manifest = json.loads((tmp_path / "shared" / "manifest.json").read_text())
    winner = next(r for r in results if r.returncode == 0)
    assert manifest["model"] in winner.args
    ids = _ids(tmp_path / "shared" / "samples.jsonl")
    assert len(ids) == len(set(ids)) == 20


def test_run_dir_of_another_model_is_still_refused_when_it_is_not_running(tiny_split, tmp_path):
    run(AlwaysYes(), tiny_split, STRICT, _opts(tmp_path, run_dir=tmp_path / "r"))
    with pytest.raises(DeemEvalError, match="holds model 'always-yes', not 'random'"):
        run(RandomAnswer(), tiny_split, STRICT, _opts(tmp_path, run_dir=tmp_path / "r"))


def test_a_run_dir_locked_by_another_process_is_refused_naming_the_holder(tiny_split, tmp_path, holder):
    target = tmp_path / "r"
    target.mkdir()
    proc = holder(target / LOCK_FILE)
    with pytest.raises(RunLockedError, match=rf"held by pid {proc.pid} on host {socket.gethostname()} since "):
        run(AlwaysYes(), tiny_split, STRICT, _opts(tmp_path, run_dir=target))
    assert not (target / "samples.jsonl").exists() and not (target / "manifest.json").exists()


def _interrupted_run(split, tmp_path) -> Path:
    """An unfinished run of RandomAnswer: 4 of 12 samples answered, then the process 'died'."""

    class Dies(RandomAnswer):
        calls = 0

        def generate(self, batch):
            self.calls += 1
            if self.calls > 2:
                raise KeyboardInterrupt
            return super().generate(batch)

    with pytest.raises(KeyboardInterrupt):
        run(Dies(), split, STRICT, _opts(tmp_path, batch_size=2))
    (run_dir,) = (tmp_path / "runs").iterdir()
    return run_dir


def test_an_unfinished_run_that_is_locked_is_not_joined(tiny_split, tmp_path, holder):
    run_dir = _interrupted_run(tiny_split, tmp_path)
    proc = holder(run_dir / LOCK_FILE)
    with pytest.raises(RunLockedError, match=rf"already in progress in .*{run_dir.name}.*held by pid {proc.pid}"):
        run(RandomAnswer(), tiny_split, STRICT, _opts(tmp_path, batch_size=2))
    assert len(_ids(run_dir / "samples.jsonl")) == 4
    proc.stdin.close()
    proc.wait(timeout=30)
    result = run(RandomAnswer(), tiny_split, STRICT, _opts(tmp_path, batch_size=2))   # holder gone: resumed
    assert result.run_dir == run_dir and result.resumed_from == 4
    assert sorted(_ids(run_dir / "samples.jsonl")) == sorted(set(_ids(run_dir / "samples.jsonl")))


def test_the_lock_is_released_after_a_run_and_after_an_exception(tiny_split, tmp_path):
    run_dir = _interrupted_run(tiny_split, tmp_path)              # KeyboardInterrupt inside the run
    lock = RunLock.acquire(run_dir / LOCK_FILE)
    info = json.loads((run_dir / LOCK_FILE).read_text())
    assert info["pid"] == os.getpid() and info["host"] == socket.gethostname() and info["since"].endswith("Z")
    lock.release()
    result = run(RandomAnswer(), tiny_split, STRICT, _opts(tmp_path, batch_size=2))
    RunLock.acquire(result.run_dir / LOCK_FILE).release()       # finished run: free again


def test_a_second_lock_in_the_same_process_is_refused(tmp_path):
    """flock belongs to an open file, so even the same process cannot take a run twice (two threads)."""
    first = RunLock.acquire(tmp_path / LOCK_FILE)
    with pytest.raises(RunLockedError, match=f"pid {os.getpid()}"):
        RunLock.acquire(tmp_path / LOCK_FILE)
    first.release()
    RunLock.acquire(tmp_path / LOCK_FILE).release()


def test_duplicate_ids_are_read_once_with_a_warning(tiny_split, tmp_path):
    result = run(AlwaysYes(), tiny_split, STRICT, _opts(tmp_path))
    path = result.run_dir / "samples.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    second = json.loads(lines[0]) | {"output": "no"}
    path.write_text("".join(lines) + json.dumps(second) + "\n" + lines[1])
    with pytest.warns(DuplicateRecordsWarning, match="2 duplicate record"):
        records = RunDir.open(result.run_dir).read_records()
    assert len(records) == 12 and records[0].output == "yes"     # the first answer of an id is kept


@pytest.mark.parametrize("where", ["out", "run-dir"])
def test_data_parallel_ranks_started_together_do_not_deadlock(tmp_path, where):
    split = make_split(tmp_path / "split", n_images=10)
    target = ["--out", str(tmp_path / "runs")] if where == "out" else ["--run-dir", str(tmp_path / "runs" / "dp")]
    args = ["--model", "slow-random", "--split-dir", str(split.directory), "--batch-size", "2", *target]
    results = _start_together(tmp_path, [(args, {"RANK": str(r), "WORLD_SIZE": "2"}) for r in (0, 1)])
    assert [r.returncode for r in results] == [0, 0], [r.stderr for r in results]
    (run_dir,) = (tmp_path / "runs").iterdir()
    ids = _ids(run_dir / "samples.jsonl")
    assert ids == sorted(set(ids)) and len(ids) == 20
    assert {p.name for p in run_dir.iterdir()} == {LOCK_FILE, "failures.jsonl", "manifest.json", "metrics.json",
                                                   "samples.jsonl"}   # rank files and rank locks merged away
