"""Metrics over yes/no answers: pure functions on arrays, each estimate with n and a 95% interval.

Conventions (yes is the positive class):
- accuracy over all answered samples; `unknown` is wrong;
- precision = TP / predicted yes; recall = TP / gold yes (an `unknown` on a gold-yes is a miss), unless a
  compatibility convention drops unknowns from precision/recall (lmms-eval);
- yes-ratio over predictions (the share of answers that are "yes"), unless a convention says labels;
- proportions get Wilson score intervals; F1 gets a percentile bootstrap computed on the confusion
  counts (resampling n answers = one multinomial draw over the 6 (gold, prediction) cells), which is exact
  for the bootstrap and independent of n in cost;
- with probabilities: AUROC, average precision and expected calibration error (10 equal-width
  bins; a probability on an edge is in the lower bin, as in sklearn's calibration_curve).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from itertools import repeat
from os import PathLike
from typing import Any, Literal

import numpy as np

from deem_eval.core.errors import DeemEvalError

Z95 = 1.959963984540054
BOOTSTRAP_DRAWS = 2000
PRED_NO, PRED_YES, PRED_UNKNOWN = 0, 1, 2
_CODES = {"no": PRED_NO, "yes": PRED_YES, "unknown": PRED_UNKNOWN}


@dataclass(frozen=True)
class MetricInfo:
    """How one metric is named and read: every view takes these facts from `METRIC_TABLE`, never its own list."""

    name: str                         # the key in a metrics document
    short: str                        # column label suffix ("F1", "yes%")
    percent: bool                     # shown x100 with one decimal (else three decimals)
    higher_is_better: bool | None     # None: neither (yes-ratio is best near the share of yes labels)
    needs_probability: bool = False   # present only when the adapter gave P(yes)


METRIC_TABLE: tuple[MetricInfo, ...] = (
    MetricInfo("accuracy", "acc", True, True),
    MetricInfo("f1", "F1", True, True),
    MetricInfo("precision", "prec", True, True),
    MetricInfo("recall", "rec", True, True),
    MetricInfo("yes_ratio", "yes%", True, None),
    MetricInfo("unknown_rate", "unk%", True, False),
    MetricInfo("auroc", "AUROC", False, True, needs_probability=True),
    MetricInfo("average_precision", "AP", False, True, needs_probability=True),
    MetricInfo("ece", "ECE", False, False, needs_probability=True),
)
METRIC_INFO: Mapping[str, MetricInfo] = {m.name: m for m in METRIC_TABLE}


@dataclass(frozen=True)
class MetricConvention:
    """How a parser's verdicts are counted; the default is deem-eval's own."""

    unknown_in_prf: Literal["not_yes", "drop"] = "not_yes"
    yes_ratio_of: Literal["predictions", "labels"] = "predictions"


@dataclass(frozen=True)
class Estimate:
    value: float | None          # None when undefined (e.g. precision with no "yes" predictions)
    n: int                       # the denominator
    ci_low: float | None = None
    ci_high: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Estimate:
        return cls(obj.get("value"), int(obj.get("n", 0)), obj.get("ci_low"), obj.get("ci_high"))


@dataclass(frozen=True)
class Metrics:
    n: int
    accuracy: Estimate
    precision: Estimate
    recall: Estimate
    f1: Estimate
    yes_ratio: Estimate
    unknown_rate: Estimate
    confusion: Mapping[str, int] = field(default_factory=dict)   # "gold_pred" -> count
    auroc: Estimate | None = None
    average_precision: Estimate | None = None
    ece: Estimate | None = None

    ESTIMATES = ("accuracy", "precision", "recall", "f1", "yes_ratio", "unknown_rate", "auroc",
                 "average_precision", "ece")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"n": self.n}
        for name in self.ESTIMATES:
            est = getattr(self, name)
            if est is not None:
                out[name] = est.to_json()
        out["confusion"] = dict(self.confusion)
        return out

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Metrics:
        kwargs = {name: Estimate.from_json(obj[name]) for name in cls.ESTIMATES if name in obj}
        return cls(n=int(obj["n"]), confusion=obj.get("confusion", {}), **kwargs)


def wilson(successes: int, n: int) -> Estimate:
    """Proportion with a 95% Wilson score interval (well behaved at 0, 1 and small n)."""
    if n == 0:
        return Estimate(None, 0)
    p = successes / n
    denom = 1 + Z95**2 / n
    centre = (p + Z95**2 / (2 * n)) / denom
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / denom
    return Estimate(p, n, max(0.0, centre - half), min(1.0, centre + half))


def encode_predictions(verdicts: Sequence[str]) -> np.ndarray:
    return np.fromiter(map(_CODES.__getitem__, verdicts), dtype=np.int8, count=len(verdicts))


def encode_gold(answers: Sequence[str]) -> np.ndarray:
    return np.fromiter(map(operator.eq, answers, repeat("yes")), dtype=bool, count=len(answers))


def compute_metrics(gold_yes: np.ndarray, pred: np.ndarray, probs: np.ndarray | None = None,
                    convention: MetricConvention = MetricConvention()) -> Metrics:
    """All metrics for one set of answers. `gold_yes`: bool array; `pred`: PRED_* codes; `probs`: P(yes)."""
    gold_yes = np.asarray(gold_yes, dtype=bool)
    pred = np.asarray(pred, dtype=np.int8)
    metrics = _metrics_from_cells(confusion_cells(gold_yes, pred), convention)
    if probs is not None:
        probs = np.asarray(probs, dtype=float)
        have = ~np.isnan(probs)
        if have.any():
            g, p = gold_yes[have], probs[have]
            metrics = _with_probability_metrics(metrics, g, p)
    return metrics


def _metrics_from_cells(cells: np.ndarray, convention: MetricConvention) -> Metrics:
    """The metrics that depend on the 2x3 confusion counts alone (all but the probability metrics)."""
    n = int(cells.sum())
    (yy, yn, yu), (ny, nn, nu) = cells
    unknown = yu + nu
    accuracy = wilson(int(yy + nn), n)
    precision, recall, f1_value = _prf(cells, convention)
    f1 = Estimate(f1_value, n, *_bootstrap_f1(cells, convention)) if f1_value is not None else Estimate(None, n)
    if convention.yes_ratio_of == "labels":
        yes_ratio = wilson(int(yy + yn + yu), n)
    else:
        yes_ratio = wilson(int(yy + ny), n)
    return Metrics(
        n=n, accuracy=accuracy, precision=precision, recall=recall, f1=f1, yes_ratio=yes_ratio,
        unknown_rate=wilson(int(unknown), n),
        confusion={"yes_yes": int(yy), "yes_no": int(yn), "yes_unknown": int(yu),
                   "no_yes": int(ny), "no_no": int(nn), "no_unknown": int(nu)})


def confusion_cells(gold_yes: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """2x3 counts: rows gold (yes, no), columns prediction (yes, no, unknown)."""
    return np.bincount(_cell_index(gold_yes, pred), minlength=6).reshape(2, 3)


def _cell_index(gold_yes: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Each answer's confusion cell, 0..5 (row-major in the 2x3 layout of `confusion_cells`)."""
    return (~gold_yes).astype(np.int64) * 3 + np.select([pred == PRED_YES, pred == PRED_NO], [0, 1], 2)


def _prf(cells: np.ndarray, convention: MetricConvention) -> tuple[Estimate, Estimate, float | None]:
    (yy, yn, yu), ny = (int(v) for v in cells[0]), int(cells[1][0])
    tp, fp = yy, ny
    gold_pos = yy + yn + (yu if convention.unknown_in_prf == "not_yes" else 0)
    precision, recall = wilson(tp, tp + fp), wilson(tp, gold_pos)
    if tp + fp == 0 and gold_pos == 0:
        return precision, recall, None
    denom = 2 * tp + fp + (gold_pos - tp)
    return precision, recall, (2 * tp / denom if denom else 0.0)


def _f1_from_cells(cells: np.ndarray, convention: MetricConvention) -> np.ndarray:
    """Vectorised F1 over a stack of (..., 2, 3) confusion cells."""
    tp = cells[..., 0, 0]
    fp = cells[..., 1, 0]
    fn = cells[..., 0, 1] + (cells[..., 0, 2] if convention.unknown_in_prf == "not_yes" else 0)
    denom = 2 * tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, 2 * tp / np.maximum(denom, 1), np.nan)


def _bootstrap_f1(cells: np.ndarray, convention: MetricConvention) -> tuple[float | None, float | None]:
    n = int(cells.sum())
    if n == 0:
        return None, None
    # Seeded by the counts themselves: the same answers always give the same interval.
    seed = int.from_bytes(np.asarray(cells, dtype=np.int64).tobytes()[:64].ljust(8, b"\0")[:8], "little")
    rng = np.random.Generator(np.random.PCG64(seed ^ 0x5EED_F1))
    draws = rng.multinomial(n, cells.ravel() / n, size=BOOTSTRAP_DRAWS).reshape(-1, 2, 3)
    f1 = _f1_from_cells(draws, convention)
    f1 = f1[~np.isnan(f1)]
    if f1.size == 0:
        return None, None
    low, high = np.percentile(f1, [2.5, 97.5])
    return float(low), float(high)


def auroc(gold_yes: np.ndarray, probs: np.ndarray) -> float | None:
    """Area under the ROC curve by the rank-sum formula (ties get average ranks)."""
    return _auroc_ranked(gold_yes, probs, np.argsort(probs, kind="mergesort"))


def _auroc_ranked(gold_yes: np.ndarray, probs: np.ndarray, order: np.ndarray) -> float | None:
    """auroc, given `order`, a stable ascending argsort of probs."""
    pos, neg = int(gold_yes.sum()), int((~gold_yes).sum())
    if pos == 0 or neg == 0:
        return None
    sorted_p = probs[order]
    first, counts = _tie_blocks(sorted_p)
    ranks = np.empty(len(probs), dtype=float)
    avg = first + (counts + 1) / 2.0                 # average ranks over ties
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[gold_yes].sum() - pos * (pos + 1) / 2) / (pos * neg))


def _tie_blocks(sorted_values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first index, length) of each run of equal values in a sorted array: np.unique's return_index and
    return_counts, without its second sort."""
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]]) if len(sorted_values) else \
        np.zeros(0, dtype=np.int64)
    return starts, np.diff(np.r_[starts, len(sorted_values)])


def average_precision(gold_yes: np.ndarray, probs: np.ndarray) -> float | None:
    """AP = sum over thresholds of (R_k - R_{k-1}) P_k, with tied scores handled as one threshold."""
    return _average_precision_ranked(gold_yes, probs, np.argsort(probs, kind="mergesort"))


def _average_precision_ranked(gold_yes: np.ndarray, probs: np.ndarray, order: np.ndarray) -> float | None:
    """average_precision, given `order`, an ascending argsort of probs. Read backwards it is a descending
    order; ties may come in any order within their block, since only counts at block ends are used."""
    pos = int(gold_yes.sum())
    if pos == 0:
        return None
    descending = order[::-1]
    p, g = probs[descending], gold_yes[descending]
    tps, fps = np.cumsum(g), np.cumsum(~g)
    last = np.r_[np.flatnonzero(np.diff(p)), len(p) - 1]   # last index of each distinct score
    tp, fp = tps[last], fps[last]
    precision = tp / (tp + fp)
    recall = tp / pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def calibration_bins(gold_yes: np.ndarray, probs: np.ndarray, bins: int = 10
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(count, sum of P(yes), gold-yes count) per equal-width bin.

    A probability on an edge goes to the LOWER bin (0.5 is in bin [0.4, 0.5]) with the same float edges as
    sklearn's `calibration_curve(strategy="uniform")`, so our reliability bins and ECE agree with it."""
    index = np.searchsorted(np.linspace(0.0, 1.0, bins + 1)[1:-1], probs)
    counts = np.bincount(index, minlength=bins)
    return (counts, np.bincount(index, weights=probs, minlength=bins),
            np.bincount(index, weights=np.asarray(gold_yes, dtype=float), minlength=bins))


def expected_calibration_error(gold_yes: np.ndarray, probs: np.ndarray, bins: int = 10) -> float | None:
    """ECE of P(yes) against the gold label, 10 equal-width bins (sklearn's edges), weighted by bin size:
    sum over bins of |sum P(yes) - gold-yes count| / n, which is n_b * |mean P - accuracy| per bin."""
    if len(probs) == 0:
        return None
    _, prob_sum, gold_sum = calibration_bins(gold_yes, probs, bins)
    return float(np.abs(prob_sum - gold_sum).sum() / len(probs))


def _with_probability_metrics(metrics: Metrics, gold: np.ndarray, probs: np.ndarray) -> Metrics:
    n = len(probs)
    order = np.argsort(probs, kind="mergesort")      # one sort for both ranking metrics
    auc, ap = _auroc_ranked(gold, probs, order), _average_precision_ranked(gold, probs, order)
    ece = expected_calibration_error(gold, probs)
    return replace(metrics, auroc=Estimate(auc, n), average_precision=Estimate(ap, n), ece=Estimate(ece, n))


def grouped_metrics(gold_yes: np.ndarray, pred: np.ndarray, groups: Mapping[str, Sequence[Any]],
                    probs: np.ndarray | None = None, convention: MetricConvention = MetricConvention(),
                    max_values: int | None = None) -> dict[str, dict[str, Metrics]]:
    """Metrics per value of every group field: {field: {value: Metrics}} (values as strings, sorted).

    Fields with more than `max_values` distinct values (image ids, ...) are left out. Equal to
    `compute_metrics` over each group's answers (in their order), computed at once: one code per answer and
    field, every group's confusion counts from one bincount, and the answers sorted by group (stable) only
    where probabilities need each group's own arrays."""
    gold_yes = np.asarray(gold_yes, dtype=bool)
    pred = np.asarray(pred, dtype=np.int8)
    cell = _cell_index(gold_yes, pred)
    if probs is not None:
        probs = np.asarray(probs, dtype=float)
        if not (~np.isnan(probs)).any():
            probs = None
    out: dict[str, dict[str, Metrics]] = {}
    for name, values in groups.items():
        index: dict[Any, int] = dict.fromkeys(values, 0)   # first-seen order; equal keys (1, 1.0, True) are one
        texts = {str(value) for value in index}          # 1 and "1" are one group, as in the JSON output
        if max_values is not None and len(texts) > max_values:
            continue
        keys = sorted(texts)
        rank = {key: r for r, key in enumerate(keys)}
        for code, value in enumerate(index):
            index[value] = code
        remap = np.fromiter((rank[str(value)] for value in index), dtype=np.int64, count=len(index))
        codes = remap[np.fromiter(map(index.__getitem__, values), dtype=np.int64, count=len(values))]
        cells = np.bincount(codes * 6 + cell, minlength=6 * len(keys)).reshape(len(keys), 2, 3)
        out[name] = {key: _metrics_from_cells(cells[r], convention) for r, key in enumerate(keys)}
        if probs is not None:
            small = codes.astype(np.int16) if len(keys) <= np.iinfo(np.int16).max else codes
            order = np.argsort(small, kind="stable")     # int16: numpy's radix sort, the same stable order
            ends = np.cumsum(cells.reshape(len(keys), 6).sum(axis=1))
            g_sorted, p_sorted = gold_yes[order], probs[order]
            start = 0
            for r, key in enumerate(keys):
                end = int(ends[r])
                g, p = g_sorted[start:end], p_sorted[start:end]
                have = ~np.isnan(p)
                if have.any():
                    out[name][key] = _with_probability_metrics(out[name][key], g[have], p[have])
                start = end
    return out


# ---- the metrics document (metrics.json) ---------------------------------------------------------------

METRICS_FORMAT = 1
"""The layout of metrics.json. Every document written so far is format 1 and carries no "format" key, so
scoring writes none (its bytes stay as they were); a later incompatible layout bumps this and writes
"format": N, and `MetricsDocument.from_json` reads a document without the key as format 1."""

class MetricsFormatError(DeemEvalError, ValueError):
    """A metrics document in a format this deem-eval does not read (newer than METRICS_FORMAT)."""


_DOC_FIELDS = ("parser", "convention", "n_selected", "n_answered", "n_failed", "n_missing", "complete", "overall",
               "groups", "subset_mean", "logit_text_agreement", "failures", "run")


@dataclass
class MetricsDocument:
    """A run's metrics.json, typed: what scoring writes (score.py), the runner adds (failures, run) and readers
    use. Keys it does not know (answers_file, ...) are kept in `extra`, so to_json(from_json(d)) == d, key order
    included, for every document scoring writes."""
    parser: str
    n_selected: int
    n_answered: int
    n_failed: int = 0
    n_missing: int = 0
    complete: bool = False
    overall: dict[str, Any] = field(default_factory=dict)                  # metric -> Estimate JSON (+ extras)
    groups: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)   # field -> value -> metrics
    convention: dict[str, Any] | None = None
    subset_mean: dict[str, float | None] | None = None
    logit_text_agreement: dict[str, Any] | None = None
    failures: list[dict[str, Any]] | None = None
    run: dict[str, Any] | None = None                                      # model, split_name, benchmark, ...
    extra: dict[str, Any] = field(default_factory=dict)
    format: int = METRICS_FORMAT

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], source: str | PathLike[str] | None = None) -> MetricsDocument:
        """The document in `obj` (a metrics.json object); fields an older run lacks take their defaults (n_missing:
        what the counts leave). A format
        newer than METRICS_FORMAT is refused with a MetricsFormatError naming `source` (the file), if given."""
        fmt = int(obj.get("format", 1))
        if fmt > METRICS_FORMAT:
            where = f"{source}: " if source is not None else ""
            raise MetricsFormatError(f"{where}metrics document format {fmt} is newer than this deem-eval reads "
                                     f"({METRICS_FORMAT}); upgrade deem-eval")
        counts = [int(obj.get(k, 0)) for k in ("n_selected", "n_answered", "n_failed")]
        missing = int(obj["n_missing"]) if "n_missing" in obj else counts[0] - counts[1] - counts[2]
        return cls(parser=str(obj.get("parser") or ""), n_selected=counts[0], n_answered=counts[1],
                   n_failed=counts[2], n_missing=missing, complete=bool(obj.get("complete", False)),
                   overall=dict(obj.get("overall") or {}), groups=dict(obj.get("groups") or {}),
                   convention=obj.get("convention"), subset_mean=obj.get("subset_mean"),
                   logit_text_agreement=obj.get("logit_text_agreement"), failures=obj.get("failures"),
                   run=obj.get("run"),
                   extra={k: v for k, v in obj.items() if k not in _DOC_FIELDS and k != "format"}, format=fmt)

    def to_json(self) -> dict[str, Any]:
        """The JSON object, keys in the order scoring writes them; optional blocks only when present, and a
        "format" key only from format 2 on (see METRICS_FORMAT)."""
        out: dict[str, Any] = {} if self.format <= 1 else {"format": self.format}
        out["parser"] = self.parser
        if self.convention is not None:
            out["convention"] = self.convention
        out.update(n_selected=self.n_selected, n_answered=self.n_answered, n_failed=self.n_failed,
                   n_missing=self.n_missing, complete=self.complete, overall=self.overall, groups=self.groups)
        for name in ("subset_mean", "logit_text_agreement", "failures", "run"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        out.update(self.extra)
        return out

    def block(self, field_name: str | None = None, value: str | None = None) -> Mapping[str, Any]:
        """The metrics of the whole run (`field_name` None) or of the group `field_name`=`value`, as written:
        metric -> Estimate JSON, plus "n" and "confusion"; empty where the document has none."""
        if field_name is None:
            return self.overall
        return self.groups.get(field_name, {}).get(value or "", {})

    def estimate(self, metric: str, field_name: str | None = None, value: str | None = None) -> Estimate | None:
        """One metric's estimate: overall, or of the group `field_name`=`value`; None where absent."""
        raw = self.block(field_name, value).get(metric)
        return Estimate.from_json(raw) if isinstance(raw, dict) else None

    def n(self, field_name: str | None = None, value: str | None = None) -> int:
        """How many answers the overall metrics (or the group's) are over; 0 where absent."""
        return int(self.block(field_name, value).get("n", 0))

    def logit_text_rate(self) -> float | None:
        """The share of decided text answers that agree with P(yes) >= 0.5; None without both kinds of answer."""
        return (self.logit_text_agreement or {}).get("rate")

    def group_values(self, field_name: str) -> list[str]:
        """The values of a group field the document has metrics for, in its order."""
        return list(self.groups.get(field_name, {}))
