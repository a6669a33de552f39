"""Foundation speed: runner overhead per sample and scoring throughput.

    python benchmarks/perf/core_overhead.py [--questions 10000] [--answers 1000000]

1. Runner overhead: `always-yes` (images never opened) over a synthetic N-question split, whole run
   including manifest, per-batch appends and scoring; reported in µs/sample (target < 50).
2. `deem-eval list` start-up as a fresh process (target < 1 s; no torch import).
3. Scoring: N answers of realistic text through the default parser and all metrics, grouped by a
   3-valued field (target < 2 s for 1,000,000).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def runner_overhead(n: int, batch_size: int) -> tuple[float, float]:
    """(wall, CPU) microseconds per sample."""
    from deem_eval.core.splits import BuilderInfo, Sample, Split
    from deem_eval.run.runner import RunOptions, run
    from deem_eval.scoring.parsing import STRICT
    from model_adapters.baselines import AlwaysYes

    samples = [Sample(f"perf/{i:06d}", f"img{i // 6:05d}.jpg", "Is there a dog in the image?",
                      "yes" if i % 2 else "no", {"subset": ("random", "popular", "adversarial")[i % 3]})
               for i in range(n)]
    with tempfile.TemporaryDirectory() as tmp:
        split = Split.create(name="perf", benchmark="perf", samples=samples, image_root=".",
                             builder=BuilderInfo("perf")).save(Path(tmp) / "split")
        started, cpu = time.perf_counter(), time.process_time()
        result = run(AlwaysYes(), split, STRICT, RunOptions(batch_size=batch_size, out=Path(tmp) / "runs",
                                                             progress=False))
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        assert result.metrics is not None and result.metrics["n_answered"] == n
    return elapsed / n * 1e6, cpu / n * 1e6


def scoring_time(n: int) -> tuple[float, float]:
    """(wall, CPU) seconds for scoring `n` answers."""
    from deem_eval.core.splits import Sample
    from deem_eval.scoring.parsing import STRICT
    from deem_eval.scoring.score import Answer, score_answers

    rng = np.random.default_rng(0)
    texts = ["Yes.", "No.", "yes", "no", "Yes, there is a dog in the image.", "No, there is not.",
             "There isn't a dog.", "Not sure."]
    picks = rng.integers(len(texts), size=n)
    samples = {f"s/{i:07d}": Sample(f"s/{i:07d}", "x.jpg", "q", "yes" if i % 2 else "no",
                                    {"subset": ("random", "popular", "adversarial")[i % 3]}) for i in range(n)}
    answers = [Answer(i, texts[p]) for i, p in zip(samples, picks)]
    started, cpu = time.perf_counter(), time.process_time()
    metrics = score_answers(samples, answers, STRICT)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert metrics["n_answered"] == n
    return elapsed, cpu


def list_startup(repeats: int = 5) -> float:
    """Median wall time of `python -m deem_eval list` as a fresh process (target < 1 s)."""
    import statistics
    import subprocess
    import sys

    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "deem_eval", "list"], check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--questions", type=int, default=10_000)
    ap.add_argument("--answers", type=int, default=1_000_000)
    args = ap.parse_args()
    runner_overhead(200, 8)   # warm-up: first-use imports (tqdm, ...) are not per-sample overhead
    for batch in (8, 64):
        us, cpu_us = runner_overhead(args.questions, batch)
        print(f"runner overhead, always-yes, {args.questions} questions, batch {batch}: {us:.1f} µs/sample wall, "
              f"{cpu_us:.1f} µs/sample CPU (target < 50; wall ratio to target {us / 50:.2f})")
    startup = list_startup()
    print(f"`deem-eval list` as a fresh process: {startup:.3f} s median of 5 (target < 1 s)")
    seconds, cpu = scoring_time(args.answers)
    print(f"scoring {args.answers} answers (strict parser, all metrics, grouped): {seconds:.2f} s wall, "
          f"{cpu:.2f} s CPU (target < 2 s; wall ratio to target {seconds / 2:.2f})")


if __name__ == "__main__":
    main()
