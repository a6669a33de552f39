"""`deem-eval score RUN` on a large run: wall time and peak memory, and reading the run's answers the previous
way (whole file at once, full records) against the current one (chunks, only id / output / P(yes)).

    python tests/perf/score_run.py [--answers 1000000]

1. Writes a POPE-shaped split of N samples and a run directory answering all of them (records as the runner
   writes them: output, parsed, gold, P(yes), latency, question, image, prompt hash; distinct output texts, 10 %
   statements), directly, without a model.
2. In this process: the previous reader (`_old_read_answers`, kept below) and `RunDir.answer_chunks`, side by
   side: seconds and peak traced bytes per answer (tracemalloc), and the answers compared.
3. `deem-eval score RUN` as a fresh process, twice: wall time and its peak resident memory (ru_maxrss), with
   the peak of a process that only imports deem-eval's scoring path for scale.

The machine's load average is printed: compare numbers of one run only.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from core_overhead import _load, _measure_load, distinct_texts, write_synthetic_split


def write_run(run: Path, split_dir: Path, n: int) -> None:
    from deem_eval.core.splits import Split
    from deem_eval.run.rundir import RunDir, RunManifest, SampleRecord

    split = Split.load(split_dir)
    manifest = RunManifest(
        run_key="perf", model="replay", model_label="perf", adapter_config={}, split_name=split.name,
        split_fingerprint=split.fingerprint, split_dir=str(split_dir), benchmark=split.meta.benchmark, seed=0,
        limit=None, batch_size=16, scoring="generate", parser="strict", deem_eval_version="perf", git_sha=None,
        library_versions={}, device="cpu", started_utc="2026-12-01T00:00:00Z", n_selected=n)
    run_dir = RunDir.create(run, manifest)
    texts = distinct_texts(n, 0.1)
    with open(run_dir.samples_path(), "w", encoding="utf-8") as handle:
        for i, (sample, text) in enumerate(zip(split.samples, texts)):
            record = SampleRecord(sample.id, text, "yes", sample.answer, (i % 997) / 997, 0.0123,
                                  sample.question, sample.image, f"{i % 4096:064x}")
            handle.write(record.to_line())


def _old_read_answers(run: Path) -> list[Any]:
    """The previous reader: the whole samples.jsonl in memory, every line a full SampleRecord, then answers."""
    from deem_eval.run.rundir import SampleRecord
    from deem_eval.scoring.score import Answer

    data = (run / "samples.jsonl").read_bytes()
    complete = data.rfind(b"\n") + 1
    lines = data[:complete].splitlines()
    objs = json.loads(b"[" + b",".join(lines) + b"]") if lines else []
    records = [SampleRecord.from_json(obj) for obj in objs]
    assert len({r.id for r in records}) == len(records)
    return [Answer(r.id, r.output, r.yes_prob) for r in records]


def _current_read_answers(run: Path) -> list[Any]:
    """All the answers through `RunDir.answer_chunks` (scoring itself keeps only codes per answer)."""
    from deem_eval.run.rundir import RunDir

    return [a for chunk in RunDir.open(run).answer_chunks(repair=False) for a in chunk]


def _child(args: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one fresh process."""
    code = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
            "r = subprocess.run(sys.argv[1:], capture_output=True, text=True); w = time.perf_counter() - t; "
            "assert r.returncode == 0, r.stderr[-2000:]; "
            "print(w, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True, text=True)
    wall, rss_kb = out.stdout.split()
    return float(wall), float(rss_kb) / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--answers", type=int, default=1_000_000)
    args = ap.parse_args()
    n = args.answers
    print(f"load average at start: {_load()}")
    with tempfile.TemporaryDirectory() as tmp:
        split_dir, run = Path(tmp) / "split", Path(tmp) / "run"
        write_synthetic_split(split_dir, n)
        write_run(run, split_dir, n)
        size = (run / "samples.jsonl").stat().st_size
        print(f"run of {n} answers: samples.jsonl {size / 1e6:.0f} MB ({size / n:.0f} bytes/answer)")
        old = _measure_load(lambda: _old_read_answers(run), n)
        new = _measure_load(lambda: _current_read_answers(run), n)
        assert _current_read_answers(run) == _old_read_answers(run)
        print(f"reading the answers, load avg {_load()}:")
        for name, (seconds, _, peak) in (("previous", old), ("current", new)):
            print(f"  {name:8s}: {seconds:6.2f} s, {peak:6.0f} bytes/answer peak (traced)")
        print(f"  speed-up x{old[0] / new[0]:.2f}, peak memory x{old[2] / new[2]:.2f} smaller; answers identical")
        scale = _child([sys.executable, "-c", ("import deem_eval.cli.commands, deem_eval.run.runner, "
                                              "deem_eval.scoring.score, deem_eval.core.splits")])
        for attempt in (1, 2):
            wall, rss = _child([sys.executable, "-m", "deem_eval", "score", str(run)])
            print(f"`deem-eval score RUN` ({n} answers), attempt {attempt}: {wall:.2f} s wall, peak RSS {rss:.0f} MB "
                  f"({(rss - scale[1]) * 2**20 / n:.0f} bytes/answer above the {scale[1]:.0f} MB of the imports), "
                  f"load avg {_load()}")
        metrics = json.loads((run / "metrics.json").read_text())
        assert metrics["n_answered"] == n and metrics["complete"]
    print(f"(this script's own peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)")


if __name__ == "__main__":
    main()
