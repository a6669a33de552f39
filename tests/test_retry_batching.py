"""A resumed run answers in the batches of an uninterrupted one, so batch-dependent numerics (padding, kernel
choice: ~1e-7 in P(yes) for DEEM-tiny) cannot make it differ; retried failures are batched on their own."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import pytest
from conftest import make_split

from deem_eval.core.adapters import ModelAdapter
from deem_eval.run.runner import RunOptions, plan_batches, resume_batches, run
from deem_eval.scoring.parsing import STRICT


class Crash(BaseException):
    """Stands in for a kill: not an Exception, so the runner records nothing and stops."""


@dataclass(frozen=True)
class _Cfg:
    pass


class BatchSensitive(ModelAdapter):
    """P(yes) of each sample depends on the ids of its whole batch, like a padded batched model's does."""

    name = "batch-sensitive"
    label = "batch-sensitive"
    needs_images = False
    can_score_yes = True
    scoring = "both"
    Config = _Cfg

    def __init__(self, *, crash_at_call: int | None = None, fail_once: str = "", length_key=None):
        self.config = _Cfg()
        self.calls = 0
        self.crash_at = crash_at_call
        self.fail_once = fail_once
        if length_key is not None:
            self.length_key = length_key

    def generate(self, batch):
        self.calls += 1
        if self.crash_at is not None and self.calls >= self.crash_at:
            raise Crash
        if self.fail_once and any(r.id == self.fail_once for r in batch):
            if len(batch) == 1:
                self.fail_once = ""     # fails on its first attempt only, so the resume answers it
            raise RuntimeError("flaky")
        return ["yes" for _ in batch]

    def yes_probability(self, batch):
        key = ",".join(r.id for r in batch)
        return [0.5 + int(hashlib.sha256(f"{key}|{r.id}".encode()).hexdigest()[:8], 16) / 2**40 for r in batch]


def _records(run_dir) -> dict[str, dict]:
    lines = (run_dir / "samples.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert len({r["id"] for r in records}) == len(records), "a duplicate id"
    return {r["id"]: r for r in records}


def _opts(path, **kw):
    return RunOptions(out=path, progress=False, batch_size=4, **kw)


@pytest.fixture
def split(tmp_path):
    return make_split(tmp_path / "split", n_images=11)     # 22 samples: 6 batches of 4 (the last of 2)


def test_resume_after_a_failure_and_a_crash_keeps_the_uninterrupted_batches(split, tmp_path):
    reference = run(BatchSensitive(), split, STRICT, _opts(tmp_path / "ref"))
    ref = _records(reference.run_dir)
    flaky = sorted(ref)[1]                               # in the first batch
    # first attempt: the flaky sample fails (its batch-mates are then answered one by one), and the process dies
    # while answering the 4th batch
    with pytest.raises(Crash):
        run(BatchSensitive(crash_at_call=5 + 3, fail_once=flaky), split, STRICT, _opts(tmp_path / "runs"))
    (run_dir,) = (tmp_path / "runs").iterdir()
    partial = _records(run_dir)
    assert flaky not in partial and len(partial) == 3 + 4 + 4
    adapter = BatchSensitive()
    resumed = run(adapter, split, STRICT, _opts(tmp_path / "runs"))
    assert resumed.run_dir == run_dir and resumed.resumed_from == 11
    got = _records(run_dir)
    assert sorted(got) == sorted(ref)
    first_batch = set(sorted(ref)[:4])
    # every sample outside the batch that failed is answered in exactly the batch of the uninterrupted run
    same = {i for i in ref if got[i]["yes_prob"] == ref[i]["yes_prob"]}
    assert same == set(ref) - first_batch
    # the retried sample was answered alone (batched on its own), the others of its batch singly in attempt 1
    assert adapter.calls == 1 + 3


def test_resume_keeps_length_sorted_batches(split, tmp_path):
    length_key = lambda q: "circle" in q
    reference = _records(run(BatchSensitive(length_key=length_key), split, STRICT, _opts(tmp_path / "ref")).run_dir)
    planned = plan_batches(sorted(split.samples, key=lambda s: s.id), 4, length_key)
    flaky = planned[0][1].id
    with pytest.raises(Crash):      # batch 0 fails (1 + 4 calls), batch 1 is answered, batch 2 dies
        run(BatchSensitive(crash_at_call=7, fail_once=flaky, length_key=length_key), split, STRICT,
            _opts(tmp_path / "runs"))
    (run_dir,) = (tmp_path / "runs").iterdir()
    run(BatchSensitive(length_key=length_key), split, STRICT, _opts(tmp_path / "runs"))
    got = _records(run_dir)
    (flaky_batch,) = [{s.id for s in b} for b in planned if flaky in {s.id for s in b}]
    assert sorted(got) == sorted(reference)
    assert {i for i in got if got[i]["yes_prob"] != reference[i]["yes_prob"]} <= flaky_batch


def test_resume_batches_keeps_untouched_batches_whole():
    class S:
        def __init__(self, i):
            self.id, self.question = i, ""
    planned = [[S(f"{b}{k}") for k in range(3)] for b in range(4)]
    done = {"00", "01", "02", "11", "20", "21", "22"}
    batches = [[s.id for s in b] for b in resume_batches(planned, done)]
    assert batches == [["10", "12"], ["30", "31", "32"]]
