"""McNemar's test and the paired bootstrap against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
from leaderboard_fakes import accuracy_answerer, make_run, pope_samples, save_split

from deem_eval.analysis.paired import compare, mcnemar, mcnemar_p, paired_bootstrap
from deem_eval.analysis.scored_runs import load_scored
from deem_eval.core.errors import DeemEvalError
from deem_eval.core.rng import derive_rng
from deem_eval.run.catalog import load_run


@pytest.mark.parametrize("b, c, exact, mid", [
    (10, 2, 158 / 4096, 92 / 4096),      # n=12: P(X<=2) = (1+12+66)/4096; mid subtracts P(X=2) = 66/4096
    (2, 10, 158 / 4096, 92 / 4096),      # symmetric in b and c
    (0, 6, 2 / 64, 1 / 64),
    (1, 4, 12 / 32, 7 / 32),             # n=5: P(X<=1) = 6/32
    (5, 5, 1.0, 1.0),                    # no evidence either way
    (0, 0, 1.0, 1.0),                    # no discordant pairs
])
def test_mcnemar_p_values_match_hand_computation(b, c, exact, mid):
    p_exact, p_mid = mcnemar_p(b, c)
    assert p_exact == pytest.approx(exact, rel=1e-12)
    assert p_mid == pytest.approx(mid, rel=1e-12)
    assert p_mid <= p_exact


def test_mcnemar_counts_discordant_pairs():
    a = np.array([1, 1, 1, 1, 0, 0, 1, 0], dtype=bool)
    b = np.array([1, 0, 0, 0, 1, 0, 1, 0], dtype=bool)
    result = mcnemar(a, b)
    assert (result.n, result.both_correct, result.a_only, result.b_only, result.both_wrong) == (8, 2, 3, 1, 2)
    assert result.p_exact == pytest.approx(2 * 5 / 16)       # n=4, P(X<=1) = 5/16
    with pytest.raises(ValueError):
        mcnemar(a, b[:3])


def test_paired_bootstrap_resamples_whole_images():
    # 20 images x 10 questions; on half the images A beats B on every question, on the rest they tie.
    diff = np.repeat([1.0] * 10 + [0.0] * 10, 10)
    images = np.repeat(np.arange(20), 10)
    lo_img, hi_img, k_img = paired_bootstrap(diff, images, derive_rng(0, "t"), draws=2000)
    lo_q, hi_q, k_q = paired_bootstrap(diff, None, derive_rng(0, "t"), draws=2000)
    assert (k_img, k_q) == (20, 200)
    assert lo_img < 0.5 < hi_img and lo_q < 0.5 < hi_q
    # questions about one image move together, so the image-level interval is much wider
    assert (hi_img - lo_img) > 2.0 * (hi_q - lo_q)
    # a constant difference has a zero-width interval
    lo, hi, _ = paired_bootstrap(np.full(30, 0.25), np.arange(30) % 7, derive_rng(0, "c"), draws=500)
    assert lo == pytest.approx(0.25) and hi == pytest.approx(0.25)


def test_compare_matches_answers_by_id(tmp_path):
    split = save_split(tmp_path / "split", "pope-t", "pope", pope_samples(12))
    run_a = load_run(make_run(tmp_path / "runs", split, "good", accuracy_answerer("good", 0.9)))
    run_b = load_run(make_run(tmp_path / "runs", split, "poor", accuracy_answerer("poor", 0.6),
                              fail_ids=[split.samples[0].id]))
    a, b = load_scored(run_a), load_scored(run_b)
    result = compare(a, b, draws=300)
    assert result.n == len(split.samples) - 1 and result.n_only_a == 1 and result.n_only_b == 0
    assert result.unit == "image" and result.n_units == 12          # image_id values 0..11 shared by subsets
    # accuracies over the matched ids agree with a direct computation
    gold = {s.id: s.answer for s in split.samples}
    matched = [i for i in b.ids]
    acc_a = np.mean([a.correct[a.ids.index(i)] for i in matched])
    assert result.accuracy_a == pytest.approx(acc_a)
    assert result.difference.value == pytest.approx(result.accuracy_a - result.accuracy_b)
    assert result.difference.ci_low <= result.difference.value <= result.difference.ci_high
    t = result.mcnemar
    assert t.a_only - t.b_only == round(result.difference.value * result.n)
    assert len(gold) == t.n + 1
    # the same inputs give the same interval (hash-derived bootstrap seed)
    assert compare(a, b, draws=300).difference == result.difference


def test_compare_refuses_different_splits(tmp_path):
    s1 = save_split(tmp_path / "s1", "pope-t", "pope", pope_samples(4))
    s2 = save_split(tmp_path / "s2", "pope-t", "pope", pope_samples(5))
    a = load_scored(load_run(make_run(tmp_path / "runs", s1, "m1", accuracy_answerer("m1", 0.8))))
    b = load_scored(load_run(make_run(tmp_path / "runs", s2, "m2", accuracy_answerer("m2", 0.8))))
    with pytest.raises(DeemEvalError, match="different splits"):
        compare(a, b)
