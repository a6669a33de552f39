"""The averages' 95% intervals: a paired bootstrap that resamples images, clipped to [0, 100] %.

An average is the unweighted mean of a row's cells, and the cells are not independent: one model answered
them all, and POPE's three subsets ask about the same images. So each draw resamples every split's images
with replacement (image = the sample's `image_id` group field, else its image path; all questions about one
image move together), recomputes each cell on the drawn images (a ratio: accuracy = correct / answered,
precision = TP / said yes, F1 = 2TP / (said yes + gold yes), ...) and averages them; the interval is the 2.5
and 97.5 percentiles over draws. The draws of a split depend only on (seed, split name, fingerprint), through
deem_eval.core.rng, so every column and every row of the board sees the same images in a draw (paired), and
the same runs give the same bytes whatever else is on the board.

A row whose answers cannot be re-read (its split directory moved, or the answers disagree with metrics.json)
keeps its average without an interval, and a note says why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from deem_eval.analysis.paired import BOOTSTRAP_DRAWS, cluster_bootstrap_ratios, percentile_interval
from deem_eval.core.rng import derive_rng
from deem_eval.scoring.metrics import PRED_UNKNOWN, PRED_YES, Estimate
from deem_eval.views.leaderboard.board import Average, Column, Row
from deem_eval.views.leaderboard.significance import Answers

RATIO_METRICS = ("accuracy", "yes_ratio", "unknown_rate", "precision", "recall", "f1")
_TOLERANCE = 1e-9


def _ratio(metric: str, gold: np.ndarray, pred: np.ndarray, correct: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per question (numerator, denominator) of `metric` under the default convention."""
    said_yes = (pred == PRED_YES).astype(float)
    ones = np.ones(gold.shape, dtype=float)
    tp = gold & (said_yes > 0)
    if metric == "accuracy":
        return correct.astype(float), ones
    if metric == "yes_ratio":
        return said_yes, ones
    if metric == "unknown_rate":
        return (pred == PRED_UNKNOWN).astype(float), ones
    if metric == "precision":
        return tp.astype(float), said_yes
    if metric == "recall":
        return tp.astype(float), gold.astype(float)
    return 2.0 * tp, said_yes + gold.astype(float)          # f1 = 2TP / (2TP + FP + FN)


class _Strata:
    """Per split (name, fingerprint): its images in a fixed order, and the cells that resample them."""

    def __init__(self) -> None:
        self.units: dict[tuple[str, str], dict[str, int]] = {}
        self.cells: dict[tuple[str, str], list[tuple[np.ndarray, np.ndarray]]] = {}

    def add(self, stratum: tuple[str, str], split, images: Sequence[str],
            num: np.ndarray, den: np.ndarray) -> tuple[tuple[str, str], int]:
        index = self.units.get(stratum)
        if index is None:            # the split's images (as scored_runs keys them), whoever answered them
            universe = {str(s.group.get("image_id", s.image)) for s in split.samples}
            index = self.units[stratum] = {u: k for k, u in enumerate(sorted(universe))}
            self.cells[stratum] = []
        at = np.asarray([index[i] for i in images], dtype=int)
        k = len(index)
        self.cells[stratum].append((np.bincount(at, weights=num, minlength=k), np.bincount(at, weights=den, minlength=k)))
        return stratum, len(self.cells[stratum]) - 1


def _cell_inputs(row: Row, col: Column, answers: Answers) -> tuple[tuple, np.ndarray, np.ndarray] | str:
    """(stratum + universe + images, numerator, denominator) for one cell, or why it cannot be resampled."""
    cell = row.cells.get(col.key)
    if cell is None or cell.run is None or cell.estimate is None or cell.estimate.value is None:
        return "no answers"
    if col.metric not in RATIO_METRICS:
        return f"{col.metric} is not a ratio of counts"
    scored = answers.scored(cell.run)
    if scored is None:
        return "answers unreadable"
    split, why = answers.splits.get(cell.run)
    if split is None or scored.images is None:
        return scored.split_note or why or "split not available"
    keep = np.arange(len(scored.ids))
    if col.field is not None:
        values = scored.column(col.field)
        if values is None:
            return f"the split has no {col.field!r} field"
        keep = np.asarray([k for k, v in enumerate(values) if str(v) == col.value], dtype=int)
    gold, pred = scored.gold_yes[keep], scored.pred[keep]
    num, den = _ratio(col.metric, gold, pred, scored.correct[keep])
    if den.sum() <= 0 or abs(num.sum() / den.sum() - cell.estimate.value) > _TOLERANCE:
        return "the re-read answers do not reproduce metrics.json (another metric convention?)"
    images = [scored.images[k] for k in keep]
    return ((cell.run.split_name, cell.run.fingerprint), split, images), num, den


def bootstrap_averages(rows: Sequence[Row], columns: Sequence[Column], averages: Sequence[Average],
                       answers: Answers, *, seed: int = 0, draws: int | None = None) -> list[str]:
    """Give every measured row's averages their paired image-bootstrap interval (in place); notes."""
    draws = draws or BOOTSTRAP_DRAWS
    by_key = {c.key: c for c in columns}
    strata = _Strata()
    jobs: list[tuple[Row, Average, Estimate, list[tuple[tuple[str, str], int]]]] = []
    failed: dict[str, set[str]] = {}
    for row in rows:
        if row.kind != "measured":
            continue
        for avg in averages:
            est = row.estimate(avg.key)
            if est is None:
                continue
            inputs: list[tuple[tuple[str, str], object, list[str], np.ndarray, np.ndarray]] = []
            why: str | None = None
            for key in avg.keys:
                got = _cell_inputs(row, by_key[key], answers)
                if isinstance(got, str):
                    why = f"{by_key[key].label}: {got}"
                    break
                (stratum, split, images), num, den = got
                inputs.append((stratum, split, images, num, den))
            if why is not None:
                failed.setdefault(avg.label, set()).add(f"{row.model} ({why})")
                continue
            jobs.append((row, avg, est, [strata.add(*ref) for ref in inputs]))
    stats: dict[tuple[str, str], list[np.ndarray]] = {}
    for stratum in sorted(strata.cells):
        rng = derive_rng(seed, "leaderboard-average", *stratum)
        stats[stratum] = cluster_bootstrap_ratios(len(strata.units[stratum]), strata.cells[stratum], rng, draws)
    for row, avg, est, refs in jobs:
        with np.errstate(invalid="ignore"):
            mean = np.mean(np.stack([stats[s][j] for s, j in refs]), axis=0)
        low, high = percentile_interval(mean, 0.0, 1.0)
        est = replace(est, ci_low=low, ci_high=high)
        if avg.key == "average":
            row.average = est
        else:
            row.averages[avg.key] = est
    notes = []
    if jobs:
        labels = ", ".join(dict.fromkeys(avg.label for _, avg, _, _ in jobs))
        notes.append(f"{labels}: 95% interval by a paired bootstrap over images ({draws} draws, seed {seed}): each "
                     "draw resamples every split's images with replacement (questions about one image together, "
                     "the same images for every column and row), recomputes the cells and averages them; "
                     "clipped to [0, 100]")
    for label, whys in sorted(failed.items()):
        notes.append(f"{label}: no interval for {'; '.join(sorted(whys))}")
    return notes
