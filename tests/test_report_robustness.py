"""Robustness summaries on a hand-made example, and on a fake corrupted run."""

from __future__ import annotations

import pytest
from leaderboard_fakes import accuracy_answerer, corrupted_samples, make_run, pope_samples, save_split

from deem_eval.analysis.robustness import CellStats, summarize, summarize_run
from deem_eval.analysis.scored_runs import load_scored
from deem_eval.run.catalog import load_run


def _rows(corruption, severity, n, n_correct, n_yes):
    return [(corruption, severity, i < n_correct, i < n_yes) for i in range(n)]


HAND = (_rows("none", 0, 10, 8, 5)          # clean: acc .8, yes .5
        + _rows("noise", 1, 4, 3, 2)         # .75, .5
        + _rows("noise", 2, 4, 2, 3)         # .5, .75
        + _rows("blur", 1, 2, 2, 1)          # 1.0, .5
        + _rows("blur", 2, 4, 2, 4))         # .5, 1.0


def _summarize(rows, **kwargs):
    corruption, severity, correct, yes = zip(*rows, strict=True)
    return summarize("m", "s", correct, yes, corruption, severity, **kwargs)


def test_summary_numbers_on_a_hand_made_example():
    s = _summarize(HAND)
    assert s.clean_source == "clean rows of this split"
    assert s.clean.n == 10 and s.clean.accuracy.value == pytest.approx(0.8) and s.clean.yes_ratio.value == 0.5
    assert s.severities == [1, 2]
    by_name = {c.corruption: c for c in s.corruptions}
    assert list(by_name) == ["blur", "noise"]
    noise, blur = by_name["noise"], by_name["blur"]
    assert noise.by_severity[1].accuracy.value == 0.75 and noise.by_severity[2].yes_ratio.value == 0.75
    assert noise.mean_accuracy == pytest.approx(0.625)         # mean over severities, unweighted
    assert noise.drop == pytest.approx(0.175)
    assert noise.relative == pytest.approx(0.625 / 0.8)
    assert noise.yes_shift == pytest.approx(0.125)
    assert blur.mean_accuracy == pytest.approx(0.75)            # (1.0 + 0.5) / 2, not 4/6 pooled
    assert blur.drop == pytest.approx(0.05) and blur.relative == pytest.approx(0.9375)
    assert blur.yes_shift == pytest.approx(0.25)
    assert s.mean_accuracy == pytest.approx(0.6875)
    assert s.mean_drop == pytest.approx(0.1125)
    assert s.relative == pytest.approx((0.78125 + 0.9375) / 2)
    assert s.yes_shift == pytest.approx(0.1875)
    assert s.accuracy_by_severity == pytest.approx({0: 0.8, 1: 0.875, 2: 0.5})
    assert s.yes_ratio_by_severity == pytest.approx({0: 0.5, 1: 0.5, 2: 0.875})


def test_clean_reference_from_elsewhere_or_none():
    corrupted = [r for r in HAND if r[0] != "none"]
    ref = CellStats.of([True] * 9 + [False], [True] * 4 + [False] * 6)     # acc .9, yes .4
    s = _summarize(corrupted, clean=ref, clean_source="run X")
    assert s.clean_source == "run X"
    assert s.mean_drop == pytest.approx(0.9 - 0.6875)
    assert s.yes_shift == pytest.approx(0.6875 - 0.4)       # mean yes (.625 + .75) / 2 minus .4
    bare = _summarize(corrupted)
    assert bare.clean is None and bare.mean_drop is None and bare.relative is None and bare.yes_shift is None
    assert 0 not in bare.accuracy_by_severity
    assert bare.mean_accuracy == pytest.approx(0.6875)


def test_severity_zero_counts_as_clean_whatever_the_name():
    rows = _rows("gaussian_noise", 0, 4, 4, 2) + _rows("gaussian_noise", 3, 4, 1, 4)
    s = _summarize(rows)
    assert s.clean.accuracy.value == 1.0 and s.severities == [3]
    assert s.corruptions[0].drop == pytest.approx(0.75)


def test_summary_of_fake_runs_agrees_with_metrics(tmp_path):
    split = save_split(tmp_path / "c", "pope-c-t", "pope-c", corrupted_samples(8, severities=(1, 5)))
    run = load_run(make_run(tmp_path / "runs", split, "m", accuracy_answerer("m", 0.8, 0.9)))
    scored = load_scored(run)
    s = summarize_run(scored)
    assert s is not None and s.clean_source == "clean rows of this split"
    # the clean accuracy equals metrics.json's breakdown by corruption
    clean = run.metrics["groups"]["corruption"]["none"]["accuracy"]["value"]
    assert s.clean.accuracy.value == pytest.approx(clean)
    for c in s.corruptions:
        by_corr = run.metrics["groups"]["corruption"][c.corruption]["accuracy"]["value"]
        # equal sample counts per severity: the unweighted mean equals the pooled accuracy
        assert c.mean_accuracy == pytest.approx(by_corr)
    # a split without corruption fields has no summary
    plain = save_split(tmp_path / "p", "pope-t", "pope", pope_samples(4))
    plain_run = load_run(make_run(tmp_path / "runs", plain, "m", accuracy_answerer("m", .8)))
    assert summarize_run(load_scored(plain_run)) is None
