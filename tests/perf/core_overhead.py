"""Foundation speed: runner overhead per sample and scoring throughput.

    python tests/perf/core_overhead.py [--questions 10000] [--answers 1000000]
        [--split-sizes 200000,1000000] [--only runner,startup,scoring,distinct,splits]

1. Runner overhead: `always-yes` (images never opened) over a synthetic N-question split, whole run
   including manifest, per-batch appends and scoring; reported in µs/sample (target < 50).
2. `deem-eval list` start-up as a fresh process (target < 1 s; no torch import).
3. Scoring: N answers of realistic text through the default parser and all metrics, grouped by a
   3-valued field (target < 2 s for 1,000,000).
4. Scoring N *distinct* answers ("Yes, there is a 17-th object." style, drawn deterministically), so the
   parser's per-text cost shows (the repeated-text run above parses 8 texts once each); the strict parser
   with its fast path against the full rule alone (`_strict_parse_full`), side by side.
5. Split loading: `Split.load` of synthetic POPE-shaped splits (200k and 1M samples): wall time, and
   bytes/sample retained (tracemalloc), the current loader against the previous one (kept below as
   `_old_load`, with the unslotted sample class it built), side by side.

The machine's load average is printed with every section: compare numbers of one run only.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


def runner_overhead(n: int, batch_size: int) -> tuple[float, float]:
    """(wall, CPU) microseconds per sample."""
    from deem_eval.core.splits import BuilderInfo, Sample, Split
    from deem_eval.model_adapters.baselines import AlwaysYes
    from deem_eval.run.runner import RunOptions, run
    from deem_eval.scoring.parsing import STRICT

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


DISTINCT_TEMPLATES = ("Yes, there is a {i}-th object in the image.", "No, there is no {i}-th object.",
                      "Yes, object {i} is visible.", "No. The image shows {i} dogs.", "yes, {i} of them",
                      "No, object {i} is absent.", "Yes. There are {i} cats.", "No; I see {i} cars.")
STATEMENT_TEMPLATES = ("There is a {i}-th object.", "There isn't a {i}-th object.", "I can see {i} cats.",
                       "Not sure about object {i}.")


def distinct_texts(n: int, statements: float) -> list[str]:
    """`n` distinct answers: leading yes/no answers, plus a `statements` share of statement/hedge answers
    (which take the full rule), each made distinct by its number."""
    rng = np.random.default_rng(1)
    lead_picks = rng.integers(len(DISTINCT_TEMPLATES), size=n)
    statement_picks = rng.integers(len(STATEMENT_TEMPLATES), size=n)
    is_statement = rng.random(n) < statements
    return [(STATEMENT_TEMPLATES[s] if st else DISTINCT_TEMPLATES[p]).format(i=i)
            for i, (p, s, st) in enumerate(zip(lead_picks.tolist(), statement_picks.tolist(), is_statement.tolist()))]


def distinct_scoring_time(texts: list[str], parse: Callable[[str], str]) -> tuple[float, float]:
    """(wall, CPU) seconds for scoring `texts` (one per sample) with `parse` under the strict convention."""
    from deem_eval.core.splits import Sample
    from deem_eval.scoring.parsing import STRICT, Parser
    from deem_eval.scoring.score import Answer, score_answers

    parser = Parser(STRICT.name, parse, STRICT.description, STRICT.convention)
    samples = {f"s/{i:07d}": Sample(f"s/{i:07d}", "x.jpg", "q", "yes" if i % 2 else "no",
                                    {"subset": ("random", "popular", "adversarial")[i % 3]})
               for i in range(len(texts))}
    answers = [Answer(i, t) for i, t in zip(samples, texts)]
    started, cpu = time.perf_counter(), time.process_time()
    metrics = score_answers(samples, answers, parser)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert metrics["n_answered"] == len(texts)
    return elapsed, cpu


# --- split loading: the previous loader, kept callable for a side-by-side measurement ------------------------

@dataclass(frozen=True)
class _OldSample:
    """The sample class as it was before: unslotted (a __dict__ per sample)."""

    id: str
    image: str
    question: str
    answer: str
    group: Mapping[str, Any] = field(default_factory=dict)


def _old_read_samples(path: Path) -> Iterable[_OldSample]:
    from deem_eval.core.errors import SplitFormatError
    from deem_eval.core.jsonio import decode_utf8
    from deem_eval.core.splits import Sample

    with open(path, "rb") as handle:
        for lineno, raw in enumerate(handle, start=1):
            line = decode_utf8(raw, path, error=SplitFormatError, first_line=lineno)
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SplitFormatError(f"{path}:{lineno}: malformed JSON ({exc.msg})") from None
            s = Sample.from_json(obj, where=f"{path}:{lineno}")       # the same validation
            yield _OldSample(s.id, s.image, s.question, s.answer, s.group)


def _old_load(directory: Path) -> tuple[_OldSample, ...]:
    """The samples part of the previous Split.load: line by line, GC on, sorted check by sample comparison,
    fingerprint from a second read of the file."""
    from deem_eval.core.splits import SAMPLES_FILE, SPLIT_FILE, sha256_file

    samples_path = directory / SAMPLES_FILE
    meta = json.loads((directory / SPLIT_FILE).read_text())
    samples = tuple(_old_read_samples(samples_path))
    seen: set[str] = set()
    for sample in samples:
        assert sample.id not in seen
        seen.add(sample.id)
    assert list(samples) == sorted(samples, key=lambda s: s.id) and len(samples) == meta["count"]
    assert sha256_file(samples_path) == meta["samples_sha256"]
    return samples


def write_synthetic_split(directory: Path, n: int) -> None:
    """A POPE-shaped split of `n` samples (6 questions an image, 80 objects, 3 subsets), written directly."""
    from deem_eval.core.splits import SAMPLES_FILE, SPLIT_FILE, BuilderInfo, Sample, SplitMeta, canonical_line

    objects = [f"object{k}" for k in range(80)]
    subsets = ("adversarial", "popular", "random")
    lines = [canonical_line(Sample(f"pope/{i:08d}", f"val2014/COCO_val2014_{i // 6:012d}.jpg",
                                   f"Is there a {objects[(i * 7) % 80]} in the image?", ("yes", "no")[i % 2],
                                   {"subset": subsets[i % 3], "source": "coco"})) for i in range(n)]
    data = "".join(lines).encode("utf-8")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / SAMPLES_FILE).write_bytes(data)
    meta = SplitMeta(name="perf", benchmark="pope", count=n, samples_sha256=hashlib.sha256(data).hexdigest(),
                     image_root=".", builder=BuilderInfo("perf"))
    (directory / SPLIT_FILE).write_text(json.dumps(meta.to_json()))


def _measure_load(load: Callable[[], Any], n: int) -> tuple[float, float, float]:
    """(seconds, retained bytes/sample, peak bytes/sample): the best of two timed loads (the machine may be
    shared), without tracemalloc; memory from a third, with it."""
    times = []
    for _ in range(2):
        gc.collect()
        started = time.perf_counter()
        result = load()
        times.append(time.perf_counter() - started)
        assert len(result) == n
        del result
    seconds = min(times)
    gc.collect()
    tracemalloc.start()
    result = load()
    retained, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del result
    return seconds, retained / n, peak / n


def split_loading(sizes: Iterable[int]) -> None:
    from deem_eval.core.splits import Split

    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            directory = Path(tmp) / "split"
            write_synthetic_split(directory, n)
            size = (directory / "samples.jsonl").stat().st_size
            def load_new(d: Path = directory) -> tuple[Any, ...]:
                return Split.load(d).samples

            def load_old(d: Path = directory) -> tuple[Any, ...]:
                return _old_load(d)

            new, old = _measure_load(load_new, n), _measure_load(load_old, n)
            fields = ("id", "image", "question", "answer", "group")
            assert [tuple(getattr(s, f) for f in fields) for s in Split.load(directory).samples] \
                == [tuple(getattr(s, f) for f in fields) for s in _old_load(directory)]
        print(f"split load, {n} samples ({size / n:.0f} file bytes/sample), load avg {_load()}:")
        for name, (seconds, retained, peak) in (("previous", old), ("current", new)):
            print(f"  {name:8s}: {seconds:6.2f} s ({seconds / n * 1e6:5.2f} µs/sample), "
                  f"{retained:5.0f} bytes/sample retained, {peak:5.0f} bytes/sample peak")
        print(f"  speed-up x{old[0] / new[0]:.2f}, memory retained x{old[1] / new[1]:.2f} smaller")


def _load() -> str:
    return "/".join(f"{v:.1f}" for v in os.getloadavg())


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
    ap.add_argument("--split-sizes", default="200000,1000000")
    ap.add_argument("--only", default="runner,startup,scoring,distinct,splits",
                    help="comma-separated sections to run")
    args = ap.parse_args()
    only = set(args.only.split(","))
    print(f"load average at start: {_load()} ({os.cpu_count()} CPUs)")
    if "runner" in only:
        runner_overhead(200, 8)   # warm-up: first-use imports (tqdm, ...) are not per-sample overhead
        for batch in (8, 64):
            us, cpu_us = runner_overhead(args.questions, batch)
            print(f"runner overhead, always-yes, {args.questions} questions, batch {batch}: {us:.1f} µs/sample "
                  f"wall, {cpu_us:.1f} µs/sample CPU (target < 50; wall ratio to target {us / 50:.2f})")
    if "startup" in only:
        startup = list_startup()
        print(f"`deem-eval list` as a fresh process: {startup:.3f} s median of 5 (target < 1 s)")
    if "scoring" in only:
        seconds, cpu = scoring_time(args.answers)
        print(f"scoring {args.answers} answers (8 repeated texts; strict parser, all metrics, grouped): "
              f"{seconds:.2f} s wall, {cpu:.2f} s CPU (target < 2 s; wall ratio to target {seconds / 2:.2f}), "
              f"load avg {_load()}")
    if "distinct" in only:
        from deem_eval.scoring.parsing import STRICT, _strict_parse_full, strict_parse

        for statements in (0.0, 0.1):
            texts = distinct_texts(args.answers, statements)
            assert len(set(texts)) == len(texts)
            rows = [(name, *distinct_scoring_time(texts, parse))
                    for name, parse in (("fast path + rule", strict_parse), ("full rule only", _strict_parse_full))]
            print(f"scoring {args.answers} distinct answers ({statements:.0%} statements/hedges, the rest leading "
                  f"yes/no), load avg {_load()}:")
            for name, seconds, cpu in rows:
                print(f"  {name:16s}: {seconds:6.2f} s wall, {cpu:6.2f} s CPU (target < 2 s; wall ratio to target "
                      f"{seconds / 2:.2f})")
            started = time.perf_counter()
            STRICT.parse_many(texts)
            print(f"  of which parsing alone (STRICT.parse_many, fast path + rule): "
                  f"{time.perf_counter() - started:.2f} s wall")
    if "splits" in only:
        split_loading(int(n) for n in args.split_sizes.split(",") if n)


if __name__ == "__main__":
    main()
