import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
from conftest import REPO, make_split

from deem_eval.core.adapters import ModelAdapter
from deem_eval.core.errors import DeemEvalError
from deem_eval.model_adapters.baselines import AlwaysYes, RandomAnswer, RandomConfig
from deem_eval.run.rundir import RunDir
from deem_eval.run.runner import RunOptions, run, select_samples
from deem_eval.scoring.parsing import STRICT


@dataclass(frozen=True)
class _Cfg:
    fail_on: str = ""


class ImageEcho(ModelAdapter):
    """Answers "yes" iff the image's red channel is > 100; raises for one chosen id."""

    name = "image-echo"
    label = "image-echo"
    needs_images = True
    Config = _Cfg

    def __init__(self, config=_Cfg(), stop_after_batches=None):
        self.config = config
        self.calls = 0
        self.stop_after = stop_after_batches

    def generate(self, batch):
        self.calls += 1
        if self.stop_after is not None and self.calls > self.stop_after:
            raise KeyboardInterrupt
        out = []
        for r in batch:
            if r.id == self.config.fail_on:
                raise RuntimeError("model exploded")
            out.append("Yes." if r.image.getpixel((0, 0))[0] > 100 else "No.")
        return out


def _opts(tmp_path, **kw):
    return RunOptions(out=tmp_path / "runs", progress=False, **kw)


def _lines(run_dir):
    return (run_dir / "samples.jsonl").read_text().splitlines()


def test_run_writes_manifest_samples_metrics(tiny_split, tmp_path):
    result = run(AlwaysYes(), tiny_split, STRICT, _opts(tmp_path, batch_size=4))
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    assert manifest["split_fingerprint"] == tiny_split.fingerprint
    assert manifest["finished_utc"] is not None
    assert "torch" in manifest["library_versions"] or "numpy" in manifest["library_versions"]
    assert len(_lines(result.run_dir)) == 12
    m = result.metrics
    assert m["complete"] and m["n_answered"] == 12
    assert m["overall"]["accuracy"]["value"] == 0.5
    assert m["overall"]["yes_ratio"]["value"] == 1.0
    assert set(m["groups"]["subset"]) == {"a", "b"}


def test_resume_after_interruption_loses_nothing_and_duplicates_nothing(tiny_split, tmp_path):
    reference = run(ImageEcho(), tiny_split, STRICT, _opts(tmp_path / "ref", batch_size=2)).metrics
    adapter = ImageEcho(stop_after_batches=2)
    with pytest.raises(KeyboardInterrupt):
        run(adapter, tiny_split, STRICT, _opts(tmp_path, batch_size=2))
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert len(_lines(run_dir)) == 4
    with open(run_dir / "samples.jsonl", "a") as handle:   # a torn write, as kill -9 could leave
        handle.write('{"id": "tiny/005/no", "outp')
    result = run(ImageEcho(), tiny_split, STRICT, _opts(tmp_path, batch_size=2))
    assert result.run_dir == run_dir and result.resumed_from == 4
    ids = [json.loads(line)["id"] for line in _lines(run_dir)]
    assert len(ids) == len(set(ids)) == 12
    assert result.metrics["overall"] == reference["overall"]


def test_kill_9_then_rerun_gives_uninterrupted_metrics(tmp_path):
    split = make_split(tmp_path / "split", n_images=20)
    script = f"""
import sys, time
sys.path.insert(0, {str(REPO / 'tests')!r})
from deem_eval.core.registry import MODELS
from deem_eval.model_adapters.baselines import RandomAnswer
class Slow(RandomAnswer):
    name = "slow-random"
    def generate(self, batch):
        time.sleep(0.15)
        return super().generate(batch)
MODELS.register("slow-random", Slow)
from deem_eval.cli import main
sys.exit(main(sys.argv[1:]))
"""
    args = [sys.executable, "-c", script, "--model", "slow-random", "--split-dir", str(split.directory),
            "--batch-size", "2", "--out", str(tmp_path / "runs"), "--no-progress"]
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    samples = None
    while time.time() < deadline:
        found = list((tmp_path / "runs").glob("*/samples.jsonl"))
        if found and len(found[0].read_text().splitlines()) >= 6:
            samples = found[0]
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert samples is not None, "the run never got going"
    done_before = len(samples.read_text().splitlines())
    assert done_before < 40
    subprocess.run(args, cwd=REPO, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ids = [json.loads(line)["id"] for line in samples.read_text().splitlines()]
    assert sorted(ids) == sorted(set(ids)) and len(ids) == 40
    resumed = json.loads((samples.parent / "metrics.json").read_text())
    uninterrupted = run(RandomAnswer(RandomConfig()), split, STRICT, _opts(tmp_path / "ref")).metrics
    assert resumed["overall"] == uninterrupted["overall"]


def test_per_sample_failures_are_recorded_and_the_run_goes_on(tmp_path):
    split = make_split(tmp_path / "split", n_images=4, broken=(1,))
    result = run(ImageEcho(_Cfg(fail_on="tiny/003/yes")), split, STRICT, _opts(tmp_path, batch_size=4))
    m = result.metrics
    assert m["n_answered"] == 5 and m["n_failed"] == 3 and not m["complete"]
    stages = {f["id"]: f["stage"] for f in m["failures"]}
    assert stages == {"tiny/001/yes": "image", "tiny/001/no": "image", "tiny/003/yes": "model"}
    assert "img001.png: cannot read image" in m["failures"][0]["error"]
    assert "model exploded" in next(f for f in m["failures"] if f["id"] == "tiny/003/yes")["error"]
    # metrics cover only the answered samples, never a silently filled-in answer
    assert m["overall"]["n"] == 5


def test_adapters_without_images_never_open_them(tmp_path):
    split = make_split(tmp_path / "split", n_images=3, broken=(0, 1, 2))
    result = run(AlwaysYes(), split, STRICT, _opts(tmp_path))
    assert result.metrics["n_failed"] == 0 and result.metrics["complete"]


def test_explicit_run_dir_of_another_model_is_refused(tiny_split, tmp_path):
    run(AlwaysYes(), tiny_split, STRICT, _opts(tmp_path, run_dir=tmp_path / "r"))
    with pytest.raises(DeemEvalError, match="holds model 'always-yes', not 'random'"):
        run(RandomAnswer(), tiny_split, STRICT, _opts(tmp_path, run_dir=tmp_path / "r"))


def test_limit_picks_a_stable_mixed_subset(tiny_split):
    a = select_samples(tiny_split, 5)
    assert a == select_samples(tiny_split, 5)
    assert len(a) == 5 and {s.answer for s in a} == {"yes", "no"}


def test_data_parallel_ranks_merge_to_the_single_process_result(tiny_split, tmp_path):
    single = run(RandomAnswer(), tiny_split, STRICT, _opts(tmp_path / "one", batch_size=3))
    shared = tmp_path / "dp"
    # ranks run together, as under torchrun: rank 1 waits for rank 0 to name the attempt before it answers
    with ThreadPoolExecutor(max_workers=1) as pool:
        rank1 = pool.submit(run, RandomAnswer(), tiny_split, STRICT,
                            _opts(tmp_path, batch_size=3, run_dir=shared, rank=1, world_size=2))
        merged = run(RandomAnswer(), tiny_split, STRICT, _opts(tmp_path, batch_size=3, run_dir=shared, rank=0,
                                                              world_size=2))
        assert rank1.result().metrics is None
    strip = lambda lines: [{k: v for k, v in json.loads(x).items() if k != "latency_s"} for x in lines]
    assert strip(_lines(shared)) == strip(_lines(single.run_dir))
    assert merged.metrics["overall"] == single.metrics["overall"]
    assert not list(shared.glob("samples.rank*"))


def test_score_recomputes_with_another_parser(tiny_split, tmp_path):
    from deem_eval.run.runner import finalize
    from deem_eval.scoring.parsing import Parser

    result = run(ImageEcho(), tiny_split, STRICT, _opts(tmp_path))
    everything_no = Parser("all-no", lambda text: "no", "test")
    metrics = finalize(RunDir.open(result.run_dir), tiny_split, everything_no)
    assert metrics["parser"] == "all-no"
    assert metrics["overall"]["yes_ratio"]["value"] == 0.0


def test_a_damaged_middle_line_is_an_error_naming_the_line(tiny_split, tmp_path):
    result = run(AlwaysYes(), tiny_split, STRICT, _opts(tmp_path))
    path = result.run_dir / "samples.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    lines[3] = "{not json}\n"
    path.write_text("".join(lines))
    with pytest.raises(DeemEvalError, match=r"samples.jsonl:4: malformed record"):
        RunDir.open(result.run_dir).read_records()
