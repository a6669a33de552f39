"""The vectorised scoring paths (issue 17 item 5) give the documents the previous per-sample path gave, byte
for byte: the previous path is kept callable in tests/perf/core_overhead.py (`_old_score_answers`)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import Any

import numpy as np
import pytest

from deem_eval.core.splits import Sample
from deem_eval.scoring.metrics import MetricConvention, compute_metrics, grouped_metrics
from deem_eval.scoring.parsing import STRICT
from deem_eval.scoring.score import Answer, score_answers


def _perf() -> ModuleType:
    path = Path(__file__).parent / "perf" / "core_overhead.py"
    spec = importlib.util.spec_from_file_location("_core_overhead_perf", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


PERF = _perf()


def _bytes(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, indent=2).encode()


@pytest.mark.parametrize("with_probs", [False, True])
def test_grouped_distinct_answers_match_previous_path(with_probs: bool) -> None:
    samples, answers = PERF.grouped_answers(50_000, with_probs)
    new = score_answers(samples, answers, STRICT)
    assert _bytes(new) == _bytes(PERF._old_score_answers(samples, answers, STRICT))
    assert set(new["groups"]) == {"category", "level", "subset"}       # image: too many values
    assert set(new["groups"]["level"]) == {"0", "1", "2", "3", "4"}     # 1 and "1" are one group
    assert "(none)" in new["groups"]["category"]
    assert ("logit_text_agreement" in new) == with_probs


def _mixed_case(n: int = 3000) -> tuple[dict[str, Sample], list[Answer]]:
    """Logit-only answers, answers without P(yes), None outputs, answers to unselected samples, a group of
    non-dict mappings, and one group value whose answers have no P(yes) at all."""
    rng = np.random.default_rng(3)
    samples: dict[str, Sample] = {}
    for i in range(n):
        group: Any = {"subset": ("a", "b", "c")[(i // 2) % 3], "kind": (1, "1", 2.0, True)[i % 4]}
        if i % 5 == 0:
            group = MappingProxyType(dict(group, extra="x" if i % 2 else "y"))
        samples[f"m/{i:05d}"] = Sample(f"m/{i:05d}", "x.jpg", "q", "yes" if rng.random() < 0.5 else "no", group)
    texts = ["Yes.", "No.", "Not sure.", "There is a dog.", None]
    answers = []
    for j, sid in enumerate(samples):
        text = texts[j % 5]
        prob = None if (j % 3 == 0 or j % 3 == 1 and sid.endswith("7")) else float(rng.random())
        if samples[sid].group["subset"] == "c":
            prob = None
        answers.append(Answer(sid, text, prob))
    answers[1] = Answer(answers[1].id, "Yes.", float("nan"))          # NaN: given, never >= 0.5
    answers += [Answer("unselected/1", "Yes.", 0.9), Answer("unselected/2", None, None)]
    return samples, answers


def test_mixed_answers_match_previous_path() -> None:
    samples, answers = _mixed_case()
    new = score_answers(samples, answers, STRICT)
    assert _bytes(new) == _bytes(PERF._old_score_answers(samples, answers, STRICT))
    assert "auroc" in new["groups"]["subset"]["a"] and "auroc" not in new["groups"]["subset"]["c"]
    assert new["n_answered"] == len(samples)


def test_empty_and_all_unselected() -> None:
    samples, _ = _mixed_case(30)
    for answers in ([], [Answer("nope", "Yes.", 0.5)]):
        assert _bytes(score_answers(samples, answers, STRICT)) == _bytes(PERF._old_score_answers(samples, answers,
                                                                                                 STRICT))


@pytest.mark.parametrize("convention", [MetricConvention(), MetricConvention("drop", "labels")])
def test_grouped_metrics_equal_masked_compute_metrics(convention: MetricConvention) -> None:
    rng = np.random.default_rng(7)
    n = 5000
    gold = rng.random(n) < 0.5
    pred = rng.integers(3, size=n).astype(np.int8)
    probs = np.where(rng.random(n) < 0.2, np.nan, rng.random(n))
    values = [("x", 1, "1", 0.5, "y")[k] for k in rng.integers(5, size=n)]
    out = grouped_metrics(gold, pred, {"g": values, "few": ["v"] * n}, probs, convention, max_values=3)
    assert set(out) == {"few"}                                    # "g" has 4 text values (1 and "1" merge)
    out = grouped_metrics(gold, pred, {"g": values}, probs, convention)
    assert list(out["g"]) == ["0.5", "1", "x", "y"]
    for key, metrics in out["g"].items():
        mask = np.array([str(v) == key for v in values])
        assert metrics == compute_metrics(gold[mask], pred[mask], probs[mask], convention)


def test_answers_in_split_order_skip_the_lookup_with_the_same_document() -> None:
    samples, answers = PERF.grouped_answers(6_000, True)
    in_order = [Answer("".join(a.id), a.output, a.yes_prob) for a in answers]     # equal ids, new objects
    assert [a.id for a in in_order] == list(samples) and in_order[0].id is not answers[0].id
    shuffled = list(answers)
    np.random.default_rng(4).shuffle(shuffled)                                 # type: ignore[arg-type]
    expected = _bytes(PERF._old_score_answers(samples, answers, STRICT))
    assert _bytes(score_answers(samples, in_order, STRICT)) == expected
    assert _bytes(score_answers(samples, shuffled, STRICT)) == _bytes(PERF._old_score_answers(samples, shuffled,
                                                                                                STRICT))
    assert _bytes(score_answers(samples, in_order[:-1], STRICT)) == _bytes(
        PERF._old_score_answers(samples, answers[:-1], STRICT))               # a prefix: the lookup path
