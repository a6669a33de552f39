"""docs/extending.md's examples are run as written: each plug-in works through the registries, end to end."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import deem_eval
from deem_eval.core.registry import BENCHMARKS, CORRUPTIONS, MODELS, PARSERS
from deem_eval.core.rng import derive_rng

DOC = Path(__file__).resolve().parents[1] / "docs" / "extending.md"


@pytest.fixture(scope="module")
def examples() -> dict:
    namespace: dict = {}
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL)
    assert len(blocks) == 4, "one example per plug-in kind"
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), namespace)  # noqa: S102 - the doc's own examples, run as written
    return namespace


@pytest.fixture
def registered(examples):
    entries = [(MODELS, "keyword", examples["KeywordAdapter"]), (BENCHMARKS, "parity", examples["ParityBenchmark"]),
               (PARSERS, "first-word", examples["FIRST_WORD"]), (CORRUPTIONS, "invert", examples["INVERT"])]
    for registry, name, obj in entries:
        registry.register(name, obj)
    yield examples
    for registry, name, _ in entries:
        registry.unregister(name)


def test_adapter_benchmark_and_parser_run_end_to_end(registered, tmp_path):
    result = deem_eval.evaluate("keyword", "parity", model_options={"keyword": "even"}, parser="first-word",
                                out=tmp_path)
    metrics = result.runs[0].metrics
    assert result.label == "keyword:even" and metrics["parser"] == "first-word"
    assert metrics["n_answered"] == 20 and metrics["n_failed"] == 0
    # every question names "even": always yes, so accuracy is the share of even numbers
    evens = sum(int(derive_rng(0, "parity", k).integers(1000)) % 2 == 0 for k in range(20))
    assert metrics["overall"]["accuracy"]["value"] == pytest.approx(evens / 20)
    assert "auroc" in metrics["overall"]           # scoring=both: P(yes) was recorded
    assert set(metrics["groups"]["digits"]) <= {"1", "2", "3"}


def test_parser_reads_first_words(registered):
    parse = registered["FIRST_WORD"].parse
    assert [parse(t) for t in ("Yes, it is.", "no.", "Maybe", "", "  NO!")] == ["yes", "no", "unknown", "unknown", "no"]


def test_corruption_is_per_image_and_graded(registered):
    images = np.stack([np.full((32, 32, 3), v, np.uint8) for v in (0, 200)])
    rngs = [derive_rng(0, "doc", k) for k in range(2)]
    out1 = registered["INVERT"].batch(images, 1, rngs)
    out5 = registered["INVERT"].batch(images, 5, rngs)
    assert out1[0, 0, 0, 0] == int(255 * 0.1) and out5[1, 0, 0, 0] == int(200 * 0.5 + 55 * 0.5)
    alone = registered["INVERT"].batch(images[1:], 5, rngs[1:])
    assert np.array_equal(alone[0], out5[1])
