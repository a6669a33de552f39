"""Complete sample logs: question, image and prompt hash per line, each distinct prompt once in prompts.jsonl."""

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from deem_eval.cli import main
from deem_eval.core.adapters import ModelAdapter
from deem_eval.run.rundir import RunDir
from deem_eval.run.runner import RunOptions, run
from deem_eval.scoring.parsing import STRICT


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


def _one_run(out: Path) -> Path:
    (run_dir,) = out.iterdir()
    return run_dir


def _check_prompts(run_dir: Path, records: list[dict]) -> dict[str, str]:
    prompts = _lines(run_dir / "prompts.jsonl")
    by_hash = {p["sha256"]: p["prompt"] for p in prompts}
    assert len(by_hash) == len(prompts)                              # one line per distinct prompt
    assert set(by_hash) == {r["prompt_sha256"] for r in records}
    for digest, text in by_hash.items():
        assert hashlib.sha256(text.encode("utf-8")).hexdigest() == digest
    return by_hash


def test_always_yes_lines_carry_question_and_image_but_no_prompt(tiny_split, tmp_path):
    out = tmp_path / "runs"
    assert main(["--model", "always-yes", "--split-dir", str(tiny_split.directory), "--out", str(out),
                 "--no-progress"]) == 0
    run_dir = _one_run(out)
    records = _lines(run_dir / "samples.jsonl")
    split = {s.id: s for s in tiny_split.samples}
    assert len(records) == len(split)
    for r in records:
        assert r["question"] == split[r["id"]].question
        assert r["image"] == split[r["id"]].image and not Path(r["image"]).is_absolute()
        assert "prompt_sha256" not in r and "latency_s" in r
    assert not (run_dir / "prompts.jsonl").exists()
    assert json.loads((run_dir / "manifest.json").read_text())["latency_is_batch_mean"] is True


def test_deem_tiny_logs_each_distinct_prompt_once(tiny_split, tmp_path):
    out = tmp_path / "runs"
    assert main(["--model", "deem", "-M", "preset=deem-tiny", "-M", "decoding=greedy", "-M", "max_new_tokens=2",
                 "--split-dir", str(tiny_split.directory), "--out", str(out), "--no-progress",
                 "--batch-size", "4"]) == 0
    run_dir = _one_run(out)
    records = _lines(run_dir / "samples.jsonl")
    assert len(records) == len(tiny_split.samples)
    assert all(r["question"] and r["image"] and r["prompt_sha256"] for r in records)
    by_hash = _check_prompts(run_dir, records)
    assert len(by_hash) == len({s.question for s in tiny_split.samples})   # prompts differ by question only
    for r in records:
        assert r["question"] in by_hash[r["prompt_sha256"]]


def test_old_format_samples_still_score(tiny_split, tmp_path):
    out = tmp_path / "runs"
    argv = ["--model", "always-yes", "--split-dir", str(tiny_split.directory), "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    run_dir = _one_run(out)
    before = json.loads((run_dir / "metrics.json").read_text())["overall"]
    old_keys = ("id", "output", "parsed", "gold", "yes_prob", "latency_s")
    old = [{k: r[k] for k in old_keys} for r in _lines(run_dir / "samples.jsonl")]
    (run_dir / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in old), encoding="utf-8")
    manifest = json.loads((run_dir / "manifest.json").read_text())
    del manifest["latency_is_batch_mean"]
    (run_dir / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    assert main(["score", str(run_dir)]) == 0
    assert json.loads((run_dir / "metrics.json").read_text())["overall"] == before
    run = RunDir.open(run_dir)
    assert run.manifest.latency_is_batch_mean and all(r.question is None for r in run.read_records())
    assert run.read_prompts() == {}


class _Prompted(ModelAdapter):
    """An adapter that shows its prompt, answering at once (no images)."""

    name = "prompted"
    label = "prompted"
    needs_images = False

    def generate(self, batch):
        return ["Yes" for _ in batch]

    def prompt_for(self, request):
        return f"USER: {request.question} ASSISTANT:"


def test_resume_repairs_a_torn_prompt_line_and_writes_no_duplicates(tiny_split, tmp_path):
    run_dir = tmp_path / "run"
    run(_Prompted(), tiny_split, STRICT, RunOptions(run_dir=run_dir, progress=False, limit=4))
    records = _lines(run_dir / "samples.jsonl")
    prompts = (run_dir / "prompts.jsonl").read_bytes()
    # a crash mid-batch: the last sample and the end of a prompt line never reached the disk
    (run_dir / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records[:-1]), encoding="utf-8")
    (run_dir / "prompts.jsonl").write_bytes(prompts + b'{"sha256":"ab')
    manifest = json.loads((run_dir / "manifest.json").read_text())
    manifest["finished_utc"] = None
    (run_dir / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    result = run(_Prompted(), tiny_split, STRICT, RunOptions(run_dir=run_dir, progress=False, limit=4))
    assert result.resumed_from == 3
    _check_prompts(run_dir, _lines(run_dir / "samples.jsonl"))
    assert (run_dir / "prompts.jsonl").read_bytes() == prompts


def test_data_parallel_merge_keeps_every_prompt(tiny_split, tmp_path):
    run_dir = tmp_path / "run"

    def rank(r: int):
        return run(_Prompted(), tiny_split, STRICT,
                   RunOptions(run_dir=run_dir, progress=False, rank=r, world_size=2, rank_timeout_s=60))

    with ThreadPoolExecutor(2) as pool:
        results = [f.result() for f in [pool.submit(rank, 0), pool.submit(rank, 1)]]
    assert results[0].metrics is not None and results[0].metrics["complete"]
    records = _lines(run_dir / "samples.jsonl")
    assert len(records) == len(tiny_split.samples)
    assert len(_check_prompts(run_dir, records)) == 2
    assert not list(run_dir.glob("prompts.rank*.jsonl"))
