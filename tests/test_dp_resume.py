"""Data-parallel resume: a marker of an interrupted attempt never ends a new one; a missing rank is given up on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO

from deem_eval.run.rundir import ATTEMPT_FILE


def _start(run_dir: Path, home: Path, rank: int, timeout_s: float | None = None) -> subprocess.Popen:
    """One rank of a 2-rank job, as torchrun would start it (RANK / WORLD_SIZE set by hand)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DEEM_EVAL_HOME": str(home), "RANK": str(rank), "WORLD_SIZE": "2"}
    if timeout_s is not None:
        env["DEEM_EVAL_RANK_TIMEOUT_S"] = str(timeout_s)
    args = ["--model", "always-yes", "--bench", "synthscenes-yesno", "--run-dir", str(run_dir), "--no-progress"]
    return subprocess.Popen([sys.executable, "-m", "deem_eval", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _ids(path: Path) -> list[str]:
    return [json.loads(line)["id"] for line in path.read_text().splitlines()] if path.exists() else []


def _interrupted_attempt(tmp_path: Path) -> tuple[Path, subprocess.CompletedProcess]:
    """Rank 0 alone, rank 1 never started: rank 0 gives up after its (shortened) timeout."""
    run_dir = tmp_path / "dp"
    started = time.monotonic()
    proc = _start(run_dir, tmp_path / "home", 0, timeout_s=1.5)
    out, err = proc.communicate(timeout=120)
    assert time.monotonic() - started < 60
    return run_dir, subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_rank0_gives_up_on_a_rank_that_never_starts_and_keeps_its_answers(tmp_path):
    run_dir, result = _interrupted_attempt(tmp_path)
    assert result.returncode != 0
    assert "rank(s) 1 of 2 did not finish" in result.stderr and "no progress for 2 s" in result.stderr
    assert len(_ids(run_dir / "samples.rank0.jsonl")) == 200        # nothing merged away or deleted
    assert not _ids(run_dir / "samples.jsonl")


@pytest.mark.parametrize("marker", ["old-format", "old-attempt"])
def test_stale_marker_does_not_let_rank0_merge_a_live_rank(tmp_path, marker):
    run_dir, result = _interrupted_attempt(tmp_path)
    assert result.returncode != 0
    old = json.loads((run_dir / ATTEMPT_FILE).read_text())["attempt"]
    # what an earlier rank 1 left: a "done" marker and failures for every id, to be retried on resume
    (run_dir / "rank1.done").write_text("done\n" if marker == "old-format" else json.dumps({"attempt": old}) + "\n")
    ids = _ids(run_dir / "samples.rank0.jsonl")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DEEM_EVAL_HOME": str(tmp_path / "home")}
    env.pop("RANK", None), env.pop("WORLD_SIZE", None)
    subprocess.run([sys.executable, "-m", "deem_eval", "--model", "always-yes", "--bench", "synthscenes-yesno",
                    "--run-dir", str(tmp_path / "one"), "--no-progress"], cwd=REPO, env=env, check=True,
                   capture_output=True)
    rank1_ids = sorted(set(_ids(tmp_path / "one" / "samples.jsonl")) - set(ids))
    assert len(rank1_ids) == 200
    with open(run_dir / "failures.rank1.jsonl", "w") as f:
        f.writelines(json.dumps({"id": i, "stage": "model", "error": "OldAttemptError: boom"}) + "\n" for i in rank1_ids)
    rank0 = _start(run_dir, tmp_path / "home", 0)
    time.sleep(2.0)                      # rank 0 is done answering long before rank 1 even starts
    assert rank0.poll() is None, rank0.communicate()
    rank1 = _start(run_dir, tmp_path / "home", 1)
    results = [p.communicate(timeout=120) for p in (rank0, rank1)]
    assert [rank0.returncode, rank1.returncode] == [0, 0], results
    merged = _ids(run_dir / "samples.jsonl")
    assert len(merged) == 400 and merged == sorted(set(merged)) and set(ids) <= set(merged)
    assert (run_dir / "failures.jsonl").read_text() == ""
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["complete"] and metrics["failures"] == []
    assert not list(run_dir.glob("rank*.done")) and not (run_dir / ATTEMPT_FILE).exists()
