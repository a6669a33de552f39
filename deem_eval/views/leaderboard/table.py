"""Build the leaderboard: rows are models, columns are benchmark subsets × metrics, each cell an estimate
with its 95% interval.

A benchmark whose class declares a `leaderboard` layout (deem_eval.core.benchmark.LeaderboardLayout, read
through the BENCHMARKS registry) gets its named columns: RobustVQA and POPE follow the DEEM paper's Table 1
(RVQA-A, RVQA-R, RVQA-V, POPE-R, POPE-P, POPE-A, average), read from each run's per-`subset` metrics; any
other split gets one column per metric. The layout also names the default metrics (POPE-style splits also
get F1 and yes-ratio columns, the hallucination signal POPE exists for). With columns from two or more benchmarks each benchmark gets its own average too
("RVQA avg", "POPE avg"), so a row that lacks another benchmark's columns still ranks within its own.
Averages' intervals are paired image bootstraps (averages.py). Rendering lives in render.py.
"""

from __future__ import annotations

from collections.abc import Sequence

from deem_eval.core.benchmark import LeaderboardLayout, leaderboard_layout
from deem_eval.core.errors import DeemEvalError, did_you_mean
from deem_eval.core.registry import BENCHMARKS
from deem_eval.scoring.metrics import Estimate
from deem_eval.views.leaderboard.averages import bootstrap_averages
from deem_eval.views.leaderboard.board import MARKS, METRIC_SHORT, METRICS, Average, Cell, Column, Leaderboard, Row
from deem_eval.views.leaderboard.reported import ReportedTable
from deem_eval.views.leaderboard.runs import RunInfo, Selection
from deem_eval.views.leaderboard.significance import Answers, significant_best


class Layouts:
    """The leaderboard layouts of benchmarks by name, read from the BENCHMARKS registry once per table.

    A registered benchmark gets its class's `leaderboard` layout (None: generic columns). An unregistered one
    named `<base>-<suffix>` after a registered base (as the corruption builder names what it derives: pope-c)
    gets the base's derived layout (its metrics, no named columns); any other gets None."""

    def __init__(self) -> None:
        self._cache: dict[str, LeaderboardLayout | None] = {}
        self._names: list[str] | None = None

    def names(self) -> list[str]:
        if self._names is None:
            self._names = BENCHMARKS.names()
        return self._names

    def get(self, benchmark: str) -> LeaderboardLayout | None:
        if benchmark not in self._cache:
            self._cache[benchmark] = self._resolve(benchmark)
        return self._cache[benchmark]

    def _resolve(self, benchmark: str) -> LeaderboardLayout | None:
        if benchmark in self.names():
            try:
                return leaderboard_layout(BENCHMARKS.get(benchmark))
            except DeemEvalError:          # registered but not loadable here: generic columns
                return None
        base, sep, _ = benchmark.rpartition("-")
        if sep and base:
            layout = self.get(base)
            return layout.derived() if layout is not None else None
        return None

    def metrics(self, benchmark: str) -> list[str]:
        layout = self.get(benchmark)
        return list(layout.metrics) if layout is not None else ["accuracy"]

    def with_slots(self, wanted: frozenset[str] = frozenset()) -> list[tuple[str, LeaderboardLayout]]:
        """(benchmark, layout) of the benchmarks with named columns, in column order. With `wanted` (slot ids)
        only until every wanted slot is found, base benchmarks before derived ones (pope before pope-c), so
        a table needs no more imports than its slots do; without, every registered benchmark."""
        names = self.names()
        derived = {n for n in names if any(n.startswith(f"{m}-") for m in names if m != n)}
        found: list[tuple[str, LeaderboardLayout]] = []
        missing = set(wanted)
        for name in [n for n in names if n not in derived] + [n for n in names if n in derived]:
            if wanted and not missing:
                break
            layout = self.get(name)
            if layout is not None and layout.slots:
                found.append((name, layout))
                missing -= {s.id for s in layout.slots}
        return sorted(found, key=lambda e: (e[1].order, e[0]))

    def order(self, benchmark: str) -> tuple[int, str]:
        layout = self.get(benchmark)
        return (layout.order if layout is not None else 100, benchmark)


def paper_slots(run: RunInfo, layouts: Layouts | None = None) -> list[tuple[str, str, str]]:
    """(slot, label, group value) for the named columns this run fills, in its layout's order."""
    layout = (layouts or Layouts()).get(run.benchmark)
    doc = run.document
    if layout is None or not layout.slots or not run.metrics or doc is None:
        return []
    values = doc.group_values(layout.field)
    out = []
    for slot in layout.slots:
        found = next((v for v in values if v.lower() in slot.values), None)
        if found is not None:
            out.append((slot.id, slot.label, found))
    return out


def default_metrics(benchmark: str, layouts: Layouts | None = None) -> list[str]:
    """The benchmark's default metrics, as its layout declares them (accuracy without one); POPE-style splits
    add F1 and the yes-ratio (a model that says "yes" too often hallucinates objects, and accuracy alone hides it)."""
    return (layouts or Layouts()).metrics(benchmark)


def benchmark_label(benchmark: str, layouts: Layouts | None = None) -> str:
    """Short name of a benchmark for its average column: its layout's prefix (RVQA, POPE), else its name."""
    layout = (layouts or Layouts()).get(benchmark)
    return (layout.label if layout is not None else None) or benchmark


def build_columns(runs: Sequence[RunInfo], metrics: Sequence[str] | None,
                  reported_slots: frozenset[str] = frozenset(),
                  layouts: Layouts | None = None) -> tuple[list[Column], Average | None]:
    """Columns for the chosen runs; `reported_slots` adds paper columns that only reported rows fill."""
    layouts = layouts or Layouts()
    for m in metrics or ():
        if m not in METRICS:
            raise did_you_mean(m, METRICS, "metric")
    splits: dict[str, RunInfo] = {}
    for run in runs:
        splits.setdefault(run.split_name, run)
    paper: dict[str, list[tuple[str, str, str, str]]] = {}        # benchmark -> [(split, slot, label, value)]
    generic: list[RunInfo] = []
    for split, run in sorted(splits.items()):
        slots = paper_slots(run, layouts)
        if slots:
            paper.setdefault(run.benchmark, []).extend((split, s, label, v) for s, label, v in slots)
        else:
            generic.append(run)
    if reported_slots:
        for bench, layout in layouts.with_slots(reported_slots):
            have = {e[1] for e in paper.get(bench, [])}
            for slot in layout.slots:
                if slot.id in reported_slots and slot.id not in have:
                    paper.setdefault(bench, []).append(("", slot.id, slot.label, ""))
    paper_metrics = list(metrics or [])
    if not paper_metrics:
        for bench in paper:
            paper_metrics += [m for m in layouts.metrics(bench) if m not in paper_metrics]
        paper_metrics = paper_metrics or ["accuracy"]
    bare_accuracy = metrics is None or list(metrics) == ["accuracy"]
    columns: list[Column] = []
    paper_keys: list[str] = []                 # the average's columns: measured paper columns if any
    reported_keys: list[str] = []
    for metric in paper_metrics:
        for bench in sorted(paper, key=layouts.order):
            bench_layout = layouts.get(bench)
            assert bench_layout is not None    # only benchmarks with slots have paper entries
            if metrics is None and metric not in bench_layout.metrics:
                continue
            entries = paper[bench]
            several = len({e[0] for e in entries if e[0]}) > 1
            order = {slot.id: i for i, slot in enumerate(bench_layout.slots)}
            for split, slot_id, label, value in sorted(entries, key=lambda e: (order[e[1]], e[0])):
                if not split and metrics is None and metric != "accuracy":
                    continue                   # reported-only columns: the paper prints accuracy
                text = label if metric == "accuracy" and bare_accuracy else f"{label} {METRIC_SHORT[metric]}"
                if several and split:
                    text += f" ({split})"
                key = f"{split}|{bench_layout.field}={value}|{metric}" if split else f"|{slot_id}|{metric}"
                columns.append(Column(key, text, metric, split, bench, bench_layout.field if split else None,
                                      value or None, slot_id))
                if metric == paper_metrics[0] and not several:
                    (paper_keys if split else reported_keys).append(key)
    generic_keys: dict[str, list[str]] = {}
    for run in generic:
        for metric in (metrics or layouts.metrics(run.benchmark)):
            key = f"{run.split_name}||{metric}"
            columns.append(Column(key, f"{run.split_name} {METRIC_SHORT[metric]}", metric, run.split_name,
                                  run.benchmark))
            generic_keys.setdefault(metric, []).append(key)
    primary = paper_metrics[0]
    average = None
    if not paper_keys and not generic:
        paper_keys = reported_keys             # only reported rows: average what they have
    if len(paper_keys) >= 2:
        average = Average("avg" if primary == "accuracy" else f"avg {METRIC_SHORT[primary]}", primary,
                          tuple(paper_keys))
    elif not any(e[0] for entries in paper.values() for e in entries) and len(generic_keys.get(primary, [])) >= 2:
        average = Average(f"avg {METRIC_SHORT[primary]}", primary, tuple(generic_keys[primary]))
    return columns, average


def build_benchmark_averages(columns: Sequence[Column], average: Average | None,
                             layouts: Layouts | None = None) -> list[Average]:
    """One average per benchmark when the overall average spans two or more benchmarks; each over that
    benchmark's columns of the overall average (a benchmark with a single column gets none: it is that column).
    Benchmarks come from the runs' `benchmark` field, as the columns carry it."""
    if average is None:
        return []
    by_key = {c.key: c for c in columns}
    grouped: dict[str, list[str]] = {}
    for key in average.keys:
        grouped.setdefault(by_key[key].benchmark, []).append(key)
    if len(grouped) < 2:
        return []
    suffix = "" if average.metric == "accuracy" else f" {METRIC_SHORT[average.metric]}"
    layouts = layouts or Layouts()
    return [Average(f"{benchmark_label(bench, layouts)} avg{suffix}", average.metric, tuple(keys), f"average|{bench}", bench)
            for bench, keys in grouped.items() if len(keys) >= 2]


# ---- cells and rows -----------------------------------------------------------------------------------

def cell_for(run: RunInfo, column: Column) -> Cell:
    doc = run.document
    estimate = doc.estimate(column.metric, column.field, column.value) if doc is not None else None
    marks = ""
    if run.n_missing or (not run.complete and not run.n_failed):
        marks += "†"
    if run.n_failed:
        marks += "‡"
    if run.limited:
        marks += "§"
    return Cell(estimate, marks, run)


def mean_estimate(estimates: Sequence[Estimate | None]) -> Estimate | None:
    """Unweighted mean of cells, without an interval (averages.py adds the paired image bootstrap's to
    measured rows). None unless every cell has a value."""
    present = [e for e in estimates if e is not None]
    values = [e.value for e in present if e.value is not None]
    if not estimates or len(values) != len(estimates):
        return None
    return Estimate(sum(values) / len(estimates), sum(e.n for e in present))


def _fill_averages(row: Row, average: Average | None, per_benchmark: Sequence[Average]) -> None:
    if average:
        row.average = mean_estimate([row.estimate(k) for k in average.keys])
    for avg in per_benchmark:
        row.averages[avg.key] = mean_estimate([row.estimate(k) for k in avg.keys])


def build(selection: Selection, *, metrics: Sequence[str] | None = None, sort: str | None = None,
          ascending: bool = False, reported: ReportedTable | None = None, seed: int = 0,
          draws: int | None = None) -> Leaderboard:
    """The leaderboard of the chosen runs; `seed` and `draws` drive the averages' paired bootstrap."""
    runs = selection.chosen
    slots: frozenset[str] = frozenset()
    if reported is not None:
        slots = frozenset(slot for r in reported.rows for slot, v in r.values.items() if v is not None)
    layouts = Layouts()
    columns, average = build_columns(runs, metrics, slots, layouts)
    per_benchmark = build_benchmark_averages(columns, average, layouts)
    by_model: dict[str, dict[str, RunInfo]] = {}
    for run in runs:
        by_model.setdefault(run.label, {})[run.split_name] = run
    rows = []
    for model, split_runs in by_model.items():
        cells = {c.key: cell_for(split_runs[c.split], c) for c in columns if c.split in split_runs}
        row = Row("measured", model, cells)
        _fill_averages(row, average, per_benchmark)
        rows.append(row)
    reported_rows = _reported_rows(reported, columns, average, per_benchmark) if reported else []

    answers = Answers()
    interval_notes = bootstrap_averages(rows, columns, [*per_benchmark, *([average] if average else [])], answers,
                                        seed=seed, draws=draws)

    sort_key, sort_label = _sort_key(sort, columns, average, per_benchmark)
    descending = not ascending if sort_key != "model" else ascending
    rows = _sorted(rows, sort_key, descending)
    _rank(rows, sort_key)
    reported_rows = _sorted(reported_rows, sort_key, descending)
    board = Leaderboard(columns, rows + reported_rows, average, sort_label, descending,
                        selection=selection, reported=reported, benchmark_averages=list(per_benchmark))
    board.notes, board.marks_used = _notes(board, selection, reported, layouts)
    board.notes += interval_notes
    board.marked, bold_notes = significant_best(board, answers)
    board.notes += bold_notes
    parsers = {r.parser for r in runs}
    board.parser = next(iter(parsers)) if len(parsers) == 1 else None
    return board


def _reported_rows(table: ReportedTable, columns: Sequence[Column], average: Average | None,
                   per_benchmark: Sequence[Average] = ()) -> list[Row]:
    rows = []
    for rec in table.rows:
        cells = {}
        for col in columns:
            if col.slot is None or table.metrics.get(col.slot, "accuracy") != col.metric:
                continue
            value = rec.values.get(col.slot)
            if value is not None:
                cells[col.key] = Cell(Estimate(value / 100.0, 0), text=rec.texts.get(col.slot))
        row = Row("reported", rec.label, cells, source=table.citation, paper_average=rec.paper_average)
        _fill_averages(row, average, per_benchmark)
        rows.append(row)
    return rows


def _sort_key(sort: str | None, columns: Sequence[Column], average: Average | None,
              per_benchmark: Sequence[Average] = ()) -> tuple[str, str]:
    if sort is None:
        if average:
            return "average", average.label
        if columns:
            return columns[0].key, columns[0].label
        return "model", "model"
    wanted = sort.strip().lower()
    if wanted in ("model", "name"):
        return "model", "model"
    if wanted in ("avg", "average") or (average and wanted == average.label.lower()):
        if not average:
            raise DeemEvalError("--sort avg: this table has no average column (it needs two or more "
                                "columns of one metric)")
        return "average", average.label
    for avg in per_benchmark:
        if wanted in (avg.label.lower(), avg.key.lower(), f"{avg.benchmark} avg".lower()):
            return avg.key, avg.label
    for col in columns:
        if wanted in (col.label.lower(), col.key.lower()):
            return col.key, col.label
    for col in columns:                       # a split name alone: its first column
        if wanted == col.split.lower():
            return col.key, col.label
    raise did_you_mean(sort, [c.label for c in columns] + ["model"] + (["avg"] if average else [])
                       + [a.label for a in per_benchmark], "sort column")


def _sorted(rows: list[Row], key: str, descending: bool) -> list[Row]:
    if key == "model":
        return sorted(rows, key=lambda r: r.model.lower(), reverse=descending)
    valued = [(e.value, r) for r in rows if (e := r.estimate(key)) is not None and e.value is not None]
    have = {id(r) for _, r in valued}          # by identity: a list here made sorting quadratic in the rows
    missing = [r for r in rows if id(r) not in have]
    valued.sort(key=lambda vr: (vr[0], vr[1].model.lower() if not descending else ""), reverse=descending)
    return [r for _, r in valued] + sorted(missing, key=lambda r: r.model.lower())


def _rank(rows: list[Row], key: str) -> None:
    """Competition ranking (1, 2, 2, 4) on the sort value; rows without a value get none."""
    previous, rank = None, 0
    for i, row in enumerate(rows, start=1):
        if key == "model":
            row.rank = i
            continue
        est = row.estimate(key)
        if est is None or est.value is None:
            row.rank = None
            continue
        if previous is None or est.value != previous:
            rank, previous = i, est.value
        row.rank = rank


def _notes(board: Leaderboard, selection: Selection, reported: ReportedTable | None,
           layouts: Layouts | None = None) -> tuple[list[str], dict]:
    notes: list[str] = []
    used: dict[str, str] = {}
    problem_runs: dict[str, RunInfo] = {}
    for row in board.measured:
        for cell in row.cells.values():
            for mark in cell.marks:
                used[mark] = MARKS[mark]
            if cell.marks and cell.run is not None:
                problem_runs[str(cell.run.path)] = cell.run
    for path, run in sorted(problem_runs.items()):
        notes.append(f"{run.label} on {run.split_name}: " + "; ".join(run.problems()) + f" ({path})")
    notes += _parser_notes(selection.chosen)
    if board.average:
        n = len(board.average.keys)
        notes.append(f"{board.average.label}: unweighted mean of the {n} columns, shown only where a row has "
                     f"all {n}")
        for avg in board.benchmark_averages:
            notes.append(f"{avg.label}: unweighted mean of the {len(avg.keys)} {avg.benchmark} columns, so a row "
                         f"without the other benchmarks' columns still ranks within {avg.benchmark} "
                         f"(--sort '{avg.label}')")
    notes += _metric_notes(board.columns, layouts or Layouts())
    for sup in selection.superseded:
        notes.append(f"superseded: {sup.run.path} ({sup.run.label} on {sup.run.split_name}: {sup.reason}; "
                     f"showing {sup.by.path.name})")
    for skipped, why in selection.skipped:
        notes.append(f"skipped: {skipped}: {why}")
    if reported is not None:
        paper_splits = {c.split for c in board.columns if c.slot and c.split}
        stand_ins = sorted({r.split_name for r in selection.chosen
                            if r.split_name in paper_splits and r.synthetic_split()})
        if stand_ins:
            notes.append(f"measured paper columns come from synthetic stand-in splits ({', '.join(stand_ins)}): "
                         f"they check the pipeline and are not comparable with the paper's reported numbers")
        if any(r.cells for r in board.reported_rows):
            notes.append(f"reported rows: {reported.citation}, as printed (percent, no interval; "
                         f"reported numbers are accuracy, so they appear only in accuracy columns)")
            if board.average and any(r.paper_average is not None for r in board.reported_rows):
                notes.append("reported avg is recomputed over the columns shown; the paper's own AVG may "
                             "cover other columns (Table 1's AVG includes MMVP)")
        else:
            notes.append(f"reported {reported.citation}: no columns in common with these runs "
                         f"(reported numbers are RobustVQA / POPE accuracy)")
    return notes, used


def _metric_notes(columns: Sequence[Column], layouts: Layouts) -> list[str]:
    """The notes the columns' benchmark layouts attach to the metrics shown (POPE's yes-ratio), once each."""
    out: list[str] = []
    for col in columns:
        layout = layouts.get(col.benchmark)
        for metric, note in layout.metric_notes if layout is not None else ():
            if metric == col.metric and note not in out:
                out.append(note)
    return out


def _parser_notes(runs: Sequence[RunInfo]) -> list[str]:
    """Which parser the numbers come from: once for the table when one parser made them all, else per split
    (runs of one split never mix parsers: make_board refuses or rescores)."""
    by_split: dict[str, set[str]] = {}
    for run in runs:
        by_split.setdefault(run.split_name, set()).add(run.parser)
    names = {p for parsers in by_split.values() for p in parsers}
    if not names:
        return []
    if len(names) == 1:
        return [f"parser: every cell is scored with the {next(iter(names))!r} answer parser"]
    return ["parsers: " + "; ".join(f"{split} scored with {', '.join(sorted(p))!r}"
                                    for split, p in sorted(by_split.items()))]
