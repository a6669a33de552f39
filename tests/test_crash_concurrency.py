"""Crashes and concurrency end to end, through `python -m deem_eval` on a small bundled split.

Two identical runs started at the same instant, SIGKILL at a (seeded) random point then resume, a data-parallel
run losing a rank then resumed, a replay file swapped between crash and resume. After each: no duplicate id, no
lost answer, no answer of another model (or of another replay file), metrics equal to an uninterrupted run.

The adapters are the registered `random` and `replay`, slowed by a sleep per batch (so there is a run to kill)
but otherwise unchanged: the same names, options and run keys as a plain `python -m deem_eval` command.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO

BENCH = ["--bench", "synthscenes-yesno", "-B", "num_images=40", "-B", "size=64"]   # 80 samples
N = 80
SEED = 20240614

# `python -m deem_eval ARGS`, with a sleep before each batch of the random and replay adapters, and (when
# $CC_GO is set) started only once $CC_GO exists, so several can be released at the same moment
SLOWED_CLI = """
import os, runpy, sys, time
from pathlib import Path
from deem_eval.model_adapters.baselines import RandomAnswer, Replay
delay = float(os.environ.get("CC_DELAY", "0"))
for cls in (RandomAnswer, Replay):
    def slow(self, batch, _orig=cls.generate):
        time.sleep(delay)
        return _orig(self, batch)
    cls.generate = slow
if os.environ.get("CC_GO"):
    Path(os.environ["CC_READY"]).touch()
    while not Path(os.environ["CC_GO"]).exists():
        time.sleep(0.005)
sys.argv = ["deem_eval", *sys.argv[1:]]
runpy.run_module("deem_eval", run_name="__main__", alter_sys=True)
"""


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    """A DEEM_EVAL_HOME with the split built once (the data-parallel test builds its own, on first use)."""
    path = tmp_path_factory.mktemp("home")
    _cli(["--model", "always-yes", *BENCH, "--out", str(path / "warm")], path).wait(timeout=120)
    return path


def _cli(args: list[str], home: Path, *, delay: float = 0.0, env: dict[str, str] | None = None) -> subprocess.Popen:
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", "DEEM_EVAL_HOME": str(home), "CC_DELAY": str(delay),
                **(env or {})}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        if key not in (env or {}):
            full_env.pop(key, None)
    return subprocess.Popen([sys.executable, "-c", SLOWED_CLI, *args, "--no-progress"], cwd=REPO, env=full_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen, timeout: float = 120) -> subprocess.CompletedProcess:
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _ok(proc: subprocess.Popen) -> None:
    result = _finish(proc)
    assert result.returncode == 0, result.stderr[-3000:]


def _lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def _kill_after(proc: subprocess.Popen, pattern: str, out: Path, lines: int, timeout: float = 60) -> int:
    """SIGKILL `proc` once a file matching `out/pattern` has `lines` complete lines; returns the count then."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        found = list(out.glob(pattern))
        if found and _lines(found[0]) >= lines:
            break
        time.sleep(0.002)
    assert proc.poll() is None, "the run ended before it could be killed: " + _finish(proc).stderr[-2000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return max((_lines(p) for p in out.glob(pattern)), default=0)


def _reference(args: list[str], home: Path, out: Path) -> tuple[dict[str, str], dict]:
    """An uninterrupted run's answers (id -> output) and metrics."""
    _ok(_cli([*args, *BENCH, "--out", str(out)], home))
    (run_dir,) = out.iterdir()
    return _answers(run_dir), json.loads((run_dir / "metrics.json").read_text())


def _answers(run_dir: Path) -> dict[str, str]:
    records = [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines()]
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids)), f"{run_dir}: a duplicate id"
    return {r["id"]: r["output"] for r in records}


def _check(run_dir: Path, reference: tuple[dict[str, str], dict], model_label: str) -> None:
    """Complete, no duplicate, no lost answer, nothing of another model, the uninterrupted run's metrics."""
    answers, metrics = reference
    got = _answers(run_dir)
    assert sorted(got) == sorted(answers), "lost (or extra) answers"
    assert got == answers, "answers differ from the uninterrupted run's (another model's answers mixed in?)"
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["model_label"] == model_label and manifest["finished_utc"] is not None
    assert (run_dir / "failures.jsonl").read_text() == "" if (run_dir / "failures.jsonl").exists() else True
    mine = json.loads((run_dir / "metrics.json").read_text())
    assert mine["complete"] and mine["n_answered"] == N and mine["failures"] == []
    assert mine["overall"] == metrics["overall"] and mine["groups"] == metrics["groups"]
    assert not list(run_dir.glob("*.rank*")) and not list(run_dir.glob("rank*.done"))


def test_two_identical_runs_started_together_make_one_run(home, tmp_path):
    reference = _reference(["--model", "random"], home, tmp_path / "ref")
    out = tmp_path / "runs"
    go = tmp_path / "go"
    procs = [_cli(["--model", "random", *BENCH, "--out", str(out), "--batch-size", "2"], home, delay=0.05,
                  env={"CC_GO": str(go), "CC_READY": str(tmp_path / f"ready{i}")}) for i in range(2)]
    deadline = time.monotonic() + 60
    while not all((tmp_path / f"ready{i}").exists() for i in range(2)):
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs), "never got ready"
        time.sleep(0.005)
    go.touch()
    results = [_finish(p) for p in procs]
    assert sorted(bool(r.returncode) for r in results) == [False, True], [r.stderr[-2000:] for r in results]
    (loser,) = [r for r in results if r.returncode]
    assert "an identical run is already in progress" in loser.stderr
    (run_dir,) = out.iterdir()
    _check(run_dir, reference, "random")


@pytest.mark.slow
def test_sigkill_at_a_random_point_then_resume(home, tmp_path):
    rng = random.Random(SEED)
    reference = _reference(["--model", "random"], home, tmp_path / "ref")
    out = tmp_path / "runs"
    args = ["--model", "random", *BENCH, "--out", str(out), "--batch-size", "3"]
    for _ in range(2):           # killed twice, at seeded random points, then left to finish
        done = _kill_after(_cli(args, home, delay=0.01), "*/samples.jsonl", out, rng.randrange(3, N - 10))
        assert done < N
    _ok(_cli(args, home))
    (run_dir,) = out.iterdir()
    _check(run_dir, reference, "random")


@pytest.mark.slow
def test_data_parallel_run_losing_a_rank_then_resumed(tmp_path):
    """Two ranks as torchrun starts them, on a home where the split is not built yet (rank 0 builds it, rank 1
    waits); rank 1 is killed mid-run, then rank 0 (as torchrun tears the group down); all ranks restarted."""
    rng = random.Random(SEED + 1)
    home = tmp_path / "home"
    out = tmp_path / "runs"
    args = ["--model", "random", *BENCH, "--out", str(out), "--batch-size", "2"]

    def rank(r: int, delay: float) -> subprocess.Popen:
        return _cli(args, home, delay=delay, env={"RANK": str(r), "WORLD_SIZE": "2", "LOCAL_RANK": str(r),
                                                  "DEEM_EVAL_RANK_TIMEOUT_S": "30"})

    ranks = [rank(0, 0.02), rank(1, 0.02)]
    _kill_after(ranks[1], "*/samples.rank1.jsonl", out, rng.randrange(2, N // 2 - 5))
    ranks[0].send_signal(signal.SIGKILL)
    ranks[0].wait()
    assert len(list(home.glob("splits/*/split.json"))) == 1 and not list(home.glob("splits/.*"))
    (run_dir,) = out.iterdir()
    assert not (run_dir / "metrics.json").exists()
    resumed = [rank(0, 0.0), rank(1, 0.0)]
    for proc in resumed:
        _ok(proc)
    reference = _reference(["--model", "random"], home, tmp_path / "ref")     # one process, uninterrupted
    (again,) = out.iterdir()
    assert again == run_dir
    _check(run_dir, reference, "random")


@pytest.mark.slow
def test_replay_file_swapped_between_crash_and_resume(home, tmp_path):
    ids = sorted(_reference(["--model", "always-yes"], home, tmp_path / "ids")[0])
    rng = random.Random(SEED + 2)
    answers_a = {i: rng.choice(["yes", "no"]) for i in ids}
    answers_b = {i: "no" if a == "yes" else "yes" for i, a in answers_a.items()}     # every answer differs
    path = tmp_path / "answers.jsonl"

    def write(answers: dict[str, str]) -> None:
        path.write_text("".join(json.dumps({"id": i, "answer": a}) + "\n" for i, a in answers.items()))

    write(answers_a)
    reference_a = _reference(["--model", "replay", "-M", f"path={path}"], home, tmp_path / "ref_a")
    write(answers_b)
    reference_b = _reference(["--model", "replay", "-M", f"path={path}"], home, tmp_path / "ref_b")
    assert reference_a[0] == answers_a and reference_b[0] == answers_b

    out = tmp_path / "runs"
    args = ["--model", "replay", "-M", f"path={path}", *BENCH, "--out", str(out), "--batch-size", "2"]
    write(answers_a)
    _kill_after(_cli(args, home, delay=0.01), "*/samples.jsonl", out, rng.randrange(4, N - 10))
    (run_a,) = out.iterdir()
    partial = _answers(run_a)
    assert 0 < len(partial) < N and all(answers_a[i] == a for i, a in partial.items())

    write(answers_b)             # same path, other content: a new run, never a resume into A's answers
    _ok(_cli(args, home))
    (run_b,) = [p for p in out.iterdir() if p != run_a]
    _check(run_b, reference_b, "replay:answers")
    assert _answers(run_a) == partial and json.loads((run_a / "manifest.json").read_text())["finished_utc"] is None

    write(answers_a)             # A's content back: A's run is resumed and finished with A's answers only
    _ok(_cli(args, home))
    assert sorted(out.iterdir()) == sorted([run_a, run_b])
    _check(run_a, reference_a, "replay:answers")
