"""Foundation speed: runner overhead per sample and scoring throughput.

    python tests/perf/core_overhead.py [--questions 10000] [--answers 1000000]
        [--split-sizes 200000,1000000] [--only runner,startup,scoring,distinct,grouped,splits]

1. Runner overhead: `always-yes` (images never opened) over a synthetic N-question split, whole run
   including manifest, per-batch appends and scoring; reported in µs/sample (target < 50).
2. `deem-eval list` start-up as a fresh process (target < 1 s; no torch import).
3. Scoring: N answers of realistic text through the default parser and all metrics, grouped by a
   3-valued field (target < 2 s for 1,000,000).
4. Scoring N *distinct* answers ("Yes, there is a 17-th object." style, drawn deterministically), so the
   parser's per-text cost shows (the repeated-text run above parses 8 texts once each); the strict parser
   with its fast path (best of 3 runs) against the full rule alone (`_strict_parse_full`, one run), side by side.
5. Scoring N distinct answers to samples with several group fields (with and without P(yes)): the
   previous non-parser path (kept below as `_old_score_answers`: per-sample loops, a mask and a
   `compute_metrics` per group value, texts parsed twice) against the current one, side by side, and the
   two documents compared byte for byte.
6. Split loading: `Split.load` of synthetic POPE-shaped splits (200k and 1M samples): wall time, and
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
from collections.abc import Callable, Iterable, Mapping, Sequence
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


# --- scoring: the previous non-parser path, kept callable for a side-by-side measurement --------------------

def _old_score_answers(samples: Mapping[str, Any], answers: Sequence[Any], parser: Any) -> dict[str, Any]:
    """`score_answers` as it was before the vectorised group breakdown: per-sample Python loops for the
    matching, encodings and group columns, one boolean mask and `compute_metrics` per group value, and the
    texts parsed a second time for the logit/text agreement. Same document, bit for bit."""
    from deem_eval.scoring.metrics import MetricsDocument, compute_metrics
    from deem_eval.scoring.score import MAX_GROUP_VALUES, _gc_paused, _subset_means

    codes_of = {"no": 0, "yes": 1, "unknown": 2}
    with _gc_paused():
        pairs = [(a, samples[a.id]) for a in answers if a.id in samples]
        answers = [a for a, _ in pairs]
        chosen = [s for _, s in pairs]
        texts = parser.parse_many([a.output for a in answers])
        if all(a.output is not None or a.yes_prob is None for a in answers):
            parsed = texts
        else:
            parsed = [("yes" if a.yes_prob >= 0.5 else "no") if a.output is None and a.yes_prob is not None else t
                      for a, t in zip(answers, texts)]
        gold = np.fromiter((s.answer == "yes" for s in chosen), dtype=bool, count=len(chosen))
        pred = np.fromiter((codes_of[v] for v in parsed), dtype=np.int8, count=len(parsed))
        probs = None
        if any(a.yes_prob is not None for a in answers):
            probs = np.array([np.nan if a.yes_prob is None else a.yes_prob for a in answers], dtype=float)
        overall = compute_metrics(gold, pred, probs, parser.convention)
        names = sorted({k for s in chosen for k in s.group})
        groups = {name: [s.group.get(name, "(none)") for s in chosen] for name in names}
        by_group: dict[str, dict[str, Any]] = {}
        for name, values in groups.items():
            index: dict[Any, int] = {}
            codes = np.fromiter((index.setdefault(v, len(index)) for v in values), dtype=np.int64, count=len(values))
            by_text: dict[str, list[int]] = {}
            for value, code in index.items():
                by_text.setdefault(str(value), []).append(code)
            if len(by_text) > MAX_GROUP_VALUES:
                continue
            by_group[name] = {}
            for key in sorted(by_text):
                mask = np.isin(codes, by_text[key]) if len(by_text[key]) > 1 else codes == by_text[key][0]
                by_group[name][key] = compute_metrics(gold[mask], pred[mask], None if probs is None else probs[mask],
                                                      parser.convention)
        both = [(a.output, a.yes_prob) for a in answers if a.output is not None and a.yes_prob is not None]
        agreement = None
        if both:
            both_texts = parser.parse_many(output for output, _ in both)
            decided = [(t, yes_prob >= 0.5) for t, (_, yes_prob) in zip(both_texts, both) if t != "unknown"]
            agree = sum((t == "yes") == p for t, p in decided)
            agreement = {"n": len(both), "n_decided": len(decided), "rate": agree / len(decided) if decided else None}
        subsets = by_group.get("subset", {})
        return MetricsDocument(
            parser=parser.name,
            convention={"unknown_in_prf": parser.convention.unknown_in_prf,
                        "yes_ratio_of": parser.convention.yes_ratio_of},
            n_selected=len(samples), n_answered=len(answers), n_failed=0, n_missing=len(samples) - len(answers),
            complete=len(answers) == len(samples), overall=overall.to_json(),
            groups={name: {value: m.to_json() for value, m in values.items()} for name, values in by_group.items()},
            subset_mean=_subset_means(subsets) if len(subsets) > 1 else None,
            logit_text_agreement=agreement).to_json()


def grouped_answers(n: int, with_probs: bool) -> tuple[dict[str, Any], list[Any]]:
    """`n` distinct answers (10% statements/hedges) to samples with several group fields: subset (3 values),
    category (40, missing on every 11th sample), level (5, as int and as str: 1 and "1" are one group) and
    image (n/6 values: over MAX_GROUP_VALUES, not broken down); with P(yes) on 2 of 3 answers if `with_probs`."""
    from deem_eval.core.splits import Sample
    from deem_eval.scoring.score import Answer

    rng = np.random.default_rng(5)
    texts = distinct_texts(n, 0.1)
    subsets = ("random", "popular", "adversarial")
    category = rng.integers(40, size=n).tolist()
    samples: dict[str, Any] = {}
    for i in range(n):
        group: dict[str, Any] = {"subset": subsets[i % 3], "level": (i % 5) if i % 7 else str(i % 5),
                                 "image": f"img{i // 6}"}
        if i % 11:
            group["category"] = f"c{category[i]}"
        samples[f"s/{i:07d}"] = Sample(f"s/{i:07d}", "x.jpg", "q", "yes" if i % 2 else "no", group)
    yes_probs = rng.random(n).tolist()
    answers = [Answer(k, t, yes_probs[j] if with_probs and j % 3 else None)
               for j, (k, t) in enumerate(zip(samples, texts))]
    return samples, answers


def grouped_scoring(n: int) -> None:
    """Distinct answers with several group fields, the previous scoring path against the current one (same
    process, alternating, best of two each), and their documents compared byte for byte."""
    from deem_eval.scoring.parsing import STRICT
    from deem_eval.scoring.score import score_answers

    for with_probs in (False, True):
        samples, answers = grouped_answers(n, with_probs)
        times: dict[str, list[float]] = {"previous": [], "current": []}
        docs = {}
        for _ in range(2):
            for name, score in (("previous", _old_score_answers), ("current", score_answers)):
                gc.collect()
                started = time.perf_counter()
                docs[name] = score(samples, answers, STRICT)
                times[name].append(time.perf_counter() - started)
        same = json.dumps(docs["previous"]).encode() == json.dumps(docs["current"]).encode()
        assert same, "the current scoring path changed the metrics document"
        started = time.perf_counter()
        STRICT.parse_many([a.output for a in answers])
        parse = time.perf_counter() - started
        print(f"scoring {n} distinct answers, 4 group fields{', P(yes) on 2/3' if with_probs else ''}, "
              f"load avg {_load()}:")
        for name, values in times.items():
            print(f"  {name:8s}: {min(values):6.2f} s wall (target < 2 s), non-parser part ~{min(values) - parse:5.2f} s")
        print(f"  parsing alone {parse:.2f} s; speed-up x{min(times['previous']) / min(times['current']):.2f}; "
              f"documents identical: {same}")
        del samples, answers, docs


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
    ap.add_argument("--only", default="runner,startup,scoring,distinct,grouped,splits",
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
        from deem_eval.scoring.parsing import STRICT
        from deem_eval.scoring.strict_rule import _strict_parse_full, strict_parse

        for statements in (0.0, 0.1):
            texts = distinct_texts(args.answers, statements)
            assert len(set(texts)) == len(texts)
            fast = min((distinct_scoring_time(texts, strict_parse) for _ in range(3)), key=lambda t: t[0])
            rows = [("fast path + rule", *fast), ("full rule only", *distinct_scoring_time(texts, _strict_parse_full))]
            print(f"scoring {args.answers} distinct answers ({statements:.0%} statements/hedges, the rest leading "
                  f"yes/no), load avg {_load()}:")
            for name, seconds, cpu in rows:
                print(f"  {name:16s}: {seconds:6.2f} s wall, {cpu:6.2f} s CPU (target < 2 s; wall ratio to target "
                      f"{seconds / 2:.2f})")
            started = time.perf_counter()
            STRICT.parse_many(texts)
            print(f"  of which parsing alone (STRICT.parse_many, fast path + rule): "
                  f"{time.perf_counter() - started:.2f} s wall")
    if "grouped" in only:
        grouped_scoring(args.answers)
    if "splits" in only:
        split_loading(int(n) for n in args.split_sizes.split(",") if n)


if __name__ == "__main__":
    main()
