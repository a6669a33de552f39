"""Paired comparison of two models on the same split: which differences are more than noise?

Two runs on one split answered the same questions, so their errors are correlated and comparing two
independent confidence intervals is too conservative. We match answers by sample id and use
- McNemar's test on the discordant pairs (A right / B wrong vs A wrong / B right): the exact two-sided
  binomial p-value and the mid-p variant (less conservative, close to nominal size);
- a paired bootstrap over images (questions about one image are resampled together, since they share
  the image's difficulty) for a 95% interval on the accuracy difference.

cluster_bootstrap_ratios is the same resampling for many ratio statistics at once (the leaderboard's
averages: every column of every row under one draw of images).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from deem_eval.analysis.scored_runs import ScoredRun
from deem_eval.core.errors import DeemEvalError
from deem_eval.core.rng import derive_rng
from deem_eval.scoring.metrics import Estimate

BOOTSTRAP_DRAWS = 2000
_CHUNK = 250


@dataclass(frozen=True)
class McNemar:
    n: int                 # matched pairs
    both_correct: int
    a_only: int            # A right, B wrong
    b_only: int            # A wrong, B right
    both_wrong: int
    p_exact: float
    p_mid: float


def mcnemar_p(b: int, c: int) -> tuple[float, float]:
    """Two-sided exact and mid-p McNemar p-values for b and c discordant pairs.

    Under H0 the b of n = b + c discordant pairs are Binomial(n, 1/2):
    exact = min(1, 2 P(X <= min(b, c))), mid-p = min(1, 2 P(X <= k) - P(X = k)) with k = min(b, c).
    """
    from scipy.stats import binom

    n = b + c
    if n == 0:
        return 1.0, 1.0
    k = min(b, c)
    tail = float(binom.cdf(k, n, 0.5))
    point = float(binom.pmf(k, n, 0.5))
    return min(1.0, 2 * tail), min(1.0, 2 * tail - point)


def mcnemar(correct_a: np.ndarray, correct_b: np.ndarray) -> McNemar:
    a = np.asarray(correct_a, dtype=bool)
    b = np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError("mcnemar: both answer vectors must be matched pairs of equal length")
    a_only, b_only = int(np.sum(a & ~b)), int(np.sum(~a & b))
    exact, mid = mcnemar_p(a_only, b_only)
    return McNemar(int(a.size), int(np.sum(a & b)), a_only, b_only, int(np.sum(~a & ~b)), exact, mid)


def paired_bootstrap(diff: np.ndarray, units: Sequence[Any] | None, rng: np.random.Generator,
                     draws: int = BOOTSTRAP_DRAWS) -> tuple[float | None, float | None, int]:
    """95% percentile interval of mean(diff) resampling whole units (images); (low, high, n_units).

    A draw picks n_units units with replacement; the statistic is the mean difference over all the
    questions of the picked units (a ratio estimator, so units with more questions weigh more).
    """
    diff = np.asarray(diff, dtype=float)
    if diff.size == 0:
        return None, None, 0
    if units is None:
        sums, counts = diff, np.ones_like(diff)
    else:
        _, inverse = np.unique(np.asarray([str(u) for u in units]), return_inverse=True)
        sums = np.bincount(inverse, weights=diff)
        counts = np.bincount(inverse).astype(float)
    k = sums.size
    stats = []
    p = np.full(k, 1.0 / k)
    for start in range(0, draws, _CHUNK):
        weights = rng.multinomial(k, p, size=min(_CHUNK, draws - start)).astype(float)
        stats.append((weights @ sums) / (weights @ counts))
    low, high = np.percentile(np.concatenate(stats), [2.5, 97.5])
    return float(low), float(high), int(k)


def cluster_bootstrap_ratios(n_units: int, cells: Sequence[tuple[np.ndarray, np.ndarray]], rng: np.random.Generator,
                             draws: int = BOOTSTRAP_DRAWS) -> list[np.ndarray]:
    """Paired cluster bootstrap of ratio statistics over one set of `n_units` units (images).

    Each cell is (numerator, denominator) summed per unit (arrays of length n_units; zero for units the cell
    does not cover). A draw picks n_units units with replacement, the same draw for every cell (so cells that
    share images, or rows answering the same images, move together); a cell's statistic is
    sum(w * numerator) / sum(w * denominator). Returns per cell its `draws` statistics (nan where a draw picked
    none of the cell's units)."""
    if n_units == 0:
        return [np.full(draws, np.nan) for _ in cells]
    nums = np.stack([np.asarray(c[0], dtype=float) for c in cells], axis=1) if cells else np.zeros((n_units, 0))
    dens = np.stack([np.asarray(c[1], dtype=float) for c in cells], axis=1) if cells else np.zeros((n_units, 0))
    p = np.full(n_units, 1.0 / n_units)
    out_num, out_den = [], []
    for start in range(0, draws, _CHUNK):
        weights = rng.multinomial(n_units, p, size=min(_CHUNK, draws - start)).astype(float)
        out_num.append(weights @ nums)
        out_den.append(weights @ dens)
    num, den = np.concatenate(out_num), np.concatenate(out_den)
    with np.errstate(invalid="ignore", divide="ignore"):
        stats = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    return [stats[:, j] for j in range(len(cells))]


def percentile_interval(stats: np.ndarray, low: float = 0.0, high: float = 1.0) -> tuple[float | None, float | None]:
    """95% percentile interval of bootstrap statistics (nan draws left out), clipped to [low, high]."""
    stats = np.asarray(stats, dtype=float)
    stats = stats[~np.isnan(stats)]
    if stats.size == 0:
        return None, None
    lo, hi = np.percentile(stats, [2.5, 97.5])
    return float(np.clip(lo, low, high)), float(np.clip(hi, low, high))


@dataclass(frozen=True)
class PairedComparison:
    split: str
    model_a: str
    model_b: str
    n: int                       # questions answered by both
    n_only_a: int
    n_only_b: int
    accuracy_a: float | None
    accuracy_b: float | None
    difference: Estimate         # accuracy A - B with the paired-bootstrap interval
    mcnemar: McNemar
    unit: str                    # "image" or "question": what the bootstrap resampled
    n_units: int
    draws: int


def matched_rows(a: ScoredRun, b: ScoredRun) -> tuple[list[int], list[int]]:
    """Row indices of the questions both runs answered, matched by id; refuses runs of different splits."""
    ra, rb = a.run, b.run
    if ra.split_name != rb.split_name or ra.fingerprint != rb.fingerprint:
        raise DeemEvalError(f"cannot pair {ra.path} with {rb.path}: they answered different splits "
                            f"({ra.split_name} {ra.fingerprint[:12]}… vs {rb.split_name} {rb.fingerprint[:12]}…)")
    index_b = {i: k for k, i in enumerate(b.ids)}
    rows_a = [k for k, i in enumerate(a.ids) if i in index_b]
    return rows_a, [index_b[a.ids[k]] for k in rows_a]


def paired_mcnemar(a: ScoredRun, b: ScoredRun) -> McNemar:
    """McNemar's test alone (what compare reports), for callers that need no bootstrap interval."""
    rows_a, rows_b = matched_rows(a, b)
    return mcnemar(a.correct[rows_a], b.correct[rows_b])


def compare(a: ScoredRun, b: ScoredRun, *, seed: int = 0, draws: int = BOOTSTRAP_DRAWS) -> PairedComparison:
    ra, rb = a.run, b.run
    rows_a, rows_b = matched_rows(a, b)
    ca, cb = a.correct[rows_a], b.correct[rows_b]
    test = mcnemar(ca, cb)
    units = None
    if a.images is not None:
        units = [a.images[k] for k in rows_a]
    rng = derive_rng(seed, "paired-bootstrap", ra.split_name, ra.fingerprint, ra.label, rb.label)
    diff = ca.astype(float) - cb.astype(float)
    low, high, n_units = paired_bootstrap(diff, units, rng, draws)
    n = len(rows_a)
    acc_a = float(ca.mean()) if n else None
    acc_b = float(cb.mean()) if n else None
    delta = None if acc_a is None or acc_b is None else acc_a - acc_b   # None when n == 0
    return PairedComparison(ra.split_name, ra.label, rb.label, n, len(a.ids) - n, len(b.ids) - n, acc_a, acc_b,
                            Estimate(delta, n, low, high), test, "image" if units is not None else "question",
                            n_units, draws)
