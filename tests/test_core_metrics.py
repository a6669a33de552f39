import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.calibration import calibration_curve
from sklearn.metrics import average_precision_score, roc_auc_score

from deem_eval.scoring.metrics import (
    MetricConvention,
    auroc,
    average_precision,
    calibration_bins,
    compute_metrics,
    encode_gold,
    encode_predictions,
    expected_calibration_error,
    grouped_metrics,
    wilson,
)


def _metrics(gold, pred, **kw):
    return compute_metrics(encode_gold(gold), encode_predictions(pred), **kw)


def test_hand_computed_confusion():
    # gold:  y y y y n n n n n n
    # pred:  y y n u y n n n u y   -> TP 2, FN 1 (+1 unknown on a yes), FP 2, TN 3, unknown on a no 1
    gold = ["yes"] * 4 + ["no"] * 6
    pred = ["yes", "yes", "no", "unknown", "yes", "no", "no", "no", "unknown", "yes"]
    m = _metrics(gold, pred)
    assert m.n == 10
    assert m.accuracy.value == pytest.approx(5 / 10)
    assert m.precision.value == pytest.approx(2 / 4)
    assert m.recall.value == pytest.approx(2 / 4)           # the unknown on a gold-yes is a miss
    assert m.f1.value == pytest.approx(2 * 0.5 * 0.5 / (0.5 + 0.5))
    assert m.yes_ratio.value == pytest.approx(4 / 10)       # predictions, not labels
    assert m.unknown_rate.value == pytest.approx(2 / 10)
    assert m.confusion == {"yes_yes": 2, "yes_no": 1, "yes_unknown": 1, "no_yes": 2, "no_no": 3, "no_unknown": 1}


def test_drop_convention_removes_unknowns_from_precision_and_recall():
    gold = ["yes"] * 4 + ["no"] * 6
    pred = ["yes", "yes", "no", "unknown", "yes", "no", "no", "no", "unknown", "yes"]
    m = _metrics(gold, pred, convention=MetricConvention(unknown_in_prf="drop", yes_ratio_of="labels"))
    assert m.recall.value == pytest.approx(2 / 3)
    assert m.precision.value == pytest.approx(2 / 4)
    assert m.f1.value == pytest.approx(2 * (0.5 * 2 / 3) / (0.5 + 2 / 3))
    assert m.yes_ratio.value == pytest.approx(4 / 10)       # labels: 4 of 10 are yes
    assert m.accuracy.value == pytest.approx(5 / 10)        # unknown still wrong for accuracy


def test_wilson_interval_known_values():
    est = wilson(81, 263)   # textbook example: 0.3080 [0.2553, 0.3662]
    assert est.value == pytest.approx(0.30798, abs=1e-4)
    assert est.ci_low == pytest.approx(0.2553, abs=1e-3)
    assert est.ci_high == pytest.approx(0.3662, abs=1e-3)
    assert wilson(0, 0).value is None
    zero = wilson(0, 10)
    assert zero.ci_low == 0.0 and 0 < zero.ci_high < 0.35


def test_undefined_precision_is_none_not_zero():
    m = _metrics(["yes", "no"], ["no", "no"])
    assert m.precision.value is None
    assert m.recall.value == 0.0
    assert m.f1.value == 0.0


def test_f1_interval_is_deterministic_and_contains_estimate():
    rng = np.random.default_rng(1)
    gold = rng.random(500) < 0.5
    pred = np.where(rng.random(500) < 0.8, gold, ~gold).astype(np.int8)
    a = compute_metrics(gold, pred)
    b = compute_metrics(gold, pred)
    assert a.f1 == b.f1
    assert a.f1.ci_low < a.f1.value < a.f1.ci_high
    assert 0.03 < a.f1.ci_high - a.f1.ci_low < 0.15


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.floats(0, 1, allow_nan=False)), min_size=2, max_size=60))
def test_auroc_and_ap_match_sklearn(rows):
    gold = np.array([g for g, _ in rows])
    probs = np.round(np.array([p for _, p in rows]), 2)    # ties on purpose
    if gold.all() or not gold.any():
        assert auroc(gold, probs) is None
        return
    assert auroc(gold, probs) == pytest.approx(roc_auc_score(gold, probs))
    assert average_precision(gold, probs) == pytest.approx(average_precision_score(gold, probs))


def test_ece_hand_computed():
    gold = np.array([True, False, True, True])
    probs = np.array([0.95, 0.95, 0.15, 0.15])
    # bin 9: mean p 0.95, acc 0.5 -> 0.45 * 2; bin 1: mean p 0.15, acc 1.0 -> 0.85 * 2
    assert expected_calibration_error(gold, probs) == pytest.approx((0.45 * 2 + 0.85 * 2) / 4)


def test_ece_edge_value_goes_to_the_lower_bin():
    # 0.5 is in bin [0.4, 0.5] with 0.45: mean p 0.475, accuracy 0.5 -> 0.025 (0.525 if 0.5 went up a bin)
    assert expected_calibration_error(np.array([True, False]), np.array([0.45, 0.5])) == pytest.approx(0.025)


EDGES = [round(0.1 * i, 1) for i in range(11)]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.one_of(st.sampled_from(EDGES), st.floats(0, 1, allow_nan=False))),
                min_size=1, max_size=80))
def test_calibration_bins_match_sklearn(rows):
    gold = np.array([g for g, _ in rows])
    probs = np.array([p for _, p in rows])
    counts, prob_sum, gold_sum = calibration_bins(gold, probs)
    prob_true, prob_pred = calibration_curve(gold, probs, n_bins=10, strategy="uniform")
    have = counts > 0
    assert prob_pred == pytest.approx(prob_sum[have] / counts[have])
    assert prob_true == pytest.approx(gold_sum[have] / counts[have])
    # the same bins also give the same ECE as one computed from sklearn's curve
    ece = float(np.sum(counts[have] * np.abs(prob_pred - prob_true)) / len(probs))
    assert expected_calibration_error(gold, probs) == pytest.approx(ece, abs=1e-12)


def test_probability_metrics_only_when_probs_given():
    gold = encode_gold(["yes", "no", "yes", "no"])
    pred = encode_predictions(["yes", "no", "no", "no"])
    assert compute_metrics(gold, pred).auroc is None
    m = compute_metrics(gold, pred, probs=np.array([0.9, 0.2, 0.4, 0.1]))
    assert m.auroc.value == pytest.approx(1.0)


def test_grouped_metrics_split_by_value():
    gold = encode_gold(["yes", "no", "yes", "no"])
    pred = encode_predictions(["yes", "no", "no", "yes"])
    groups = grouped_metrics(gold, pred, {"subset": ["a", "a", "b", "b"]})
    assert groups["subset"]["a"].accuracy.value == 1.0
    assert groups["subset"]["b"].accuracy.value == 0.0
    assert groups["subset"]["b"].n == 2


def test_metrics_json_round_trip():
    from deem_eval.scoring.metrics import Metrics

    m = _metrics(["yes", "no", "no"], ["yes", "yes", "unknown"])
    again = Metrics.from_json(m.to_json())
    assert again.accuracy == m.accuracy and again.f1 == m.f1 and again.confusion == m.confusion
    assert math.isclose(again.yes_ratio.value, 2 / 3)


def test_one_metric_table_names_every_metric_a_document_holds():
    """The views read labels, percent and direction from METRIC_TABLE: it must cover Metrics' fields exactly."""
    import dataclasses

    from deem_eval.scoring.metrics import METRIC_INFO, METRIC_TABLE, Metrics
    from deem_eval.views.leaderboard.board import METRICS, NOT_PERCENT

    estimates = {f.name for f in dataclasses.fields(Metrics) if f.name not in ("n", "confusion")}
    assert set(METRIC_INFO) == estimates and len(METRIC_TABLE) == len(estimates)
    assert METRICS == tuple(m.name for m in METRIC_TABLE)
    assert NOT_PERCENT == {"auroc", "average_precision", "ece"}
    assert all(METRIC_INFO[m].needs_probability for m in NOT_PERCENT)


def _auroc_unique(gold, probs):
    """The rank-sum AUROC with np.unique's tie blocks and its own sort (the formula before the shared sort)."""
    pos, neg = int(gold.sum()), int((~gold).sum())
    order = np.argsort(probs, kind="mergesort")
    _, first, counts = np.unique(probs[order], return_index=True, return_counts=True)
    ranks = np.empty(len(probs))
    ranks[order] = np.repeat(first + (counts + 1) / 2.0, counts)
    return float((ranks[gold].sum() - pos * (pos + 1) / 2) / (pos * neg))


def _ap_descending(gold, probs):
    """AP over a stable descending sort of its own (the formula before the shared sort)."""
    order = np.argsort(-probs, kind="mergesort")
    p, g = probs[order], gold[order]
    last = np.r_[np.flatnonzero(np.diff(p)), len(p) - 1]
    tp, fp = np.cumsum(g)[last], np.cumsum(~g)[last]
    return float(np.sum(np.diff(np.r_[0.0, tp / int(gold.sum())]) * (tp / (tp + fp))))


def test_one_shared_sort_gives_the_same_floats_as_a_sort_per_metric():
    rng = np.random.default_rng(11)
    for trial in range(400):
        size = int(rng.integers(2, 300))
        probs = np.round(rng.random(size), int(rng.integers(1, 4))) if trial % 2 else rng.random(size)
        probs[rng.random(size) < 0.1] = 0.0
        probs[rng.random(size) < 0.05] = -0.0
        gold = rng.random(size) < 0.5
        gold[:2] = (True, False)
        assert auroc(gold, probs) == _auroc_unique(gold, probs)
        assert average_precision(gold, probs) == _ap_descending(gold, probs)
