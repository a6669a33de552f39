"""What a leaderboard is, as data: its columns, cells, averages and rows (built by table.py; read by the
significance marks, the bootstrap averages and every renderer)."""

from __future__ import annotations

from dataclasses import dataclass, field

from deem_eval.scoring.metrics import METRIC_TABLE, Estimate
from deem_eval.views.leaderboard.reported import ReportedTable
from deem_eval.views.leaderboard.runs import RunInfo, Selection

METRICS = tuple(m.name for m in METRIC_TABLE)
METRIC_SHORT = {m.name: m.short for m in METRIC_TABLE}
NOT_PERCENT = frozenset(m.name for m in METRIC_TABLE if not m.percent)

MARKS = {"†": "incomplete run (samples not answered yet)", "‡": "run with failed samples",
         "§": "run on a --limit subset of the split"}


@dataclass(frozen=True)
class Column:
    key: str                       # stable id: "<split>|<field>=<value>|<metric>" or "<split>||<metric>"
    label: str
    metric: str
    split: str
    benchmark: str
    field: str | None = None       # group field the cell is read from (None: overall)
    value: str | None = None
    slot: str | None = None        # paper slot (rvqa_a, ..., pope_a) for reported numbers

    @property
    def percent(self) -> bool:
        return self.metric not in NOT_PERCENT


@dataclass
class Cell:
    estimate: Estimate | None
    marks: str = ""
    run: RunInfo | None = None
    text: str | None = None        # reported numbers: the digits as printed


@dataclass(frozen=True)
class Average:
    label: str
    metric: str
    keys: tuple[str, ...]
    key: str = "average"              # "average" (every benchmark) or "average|<benchmark>"
    benchmark: str | None = None      # set for a per-benchmark average


@dataclass
class Row:
    kind: str                                  # "measured" | "reported"
    model: str
    cells: dict[str, Cell]
    average: Estimate | None = None
    rank: int | None = None
    source: str | None = None                  # reported rows: the citation
    paper_average: float | None = None         # reported rows: the AVG as printed
    averages: dict[str, Estimate | None] = field(default_factory=dict)   # per-benchmark averages by key

    def estimate(self, key: str) -> Estimate | None:
        if key == "average":
            return self.average
        if key in self.averages:
            return self.averages[key]
        cell = self.cells.get(key)
        return cell.estimate if cell else None


@dataclass
class Leaderboard:
    columns: list[Column]
    rows: list[Row]
    average: Average | None
    sort_label: str
    descending: bool
    notes: list[str] = field(default_factory=list)
    marks_used: dict[str, str] = field(default_factory=dict)
    selection: Selection | None = None
    reported: ReportedTable | None = None
    parser: str | None = None            # the one answer parser every measured cell comes from, if one
    marked: dict[str, str] = field(default_factory=dict)   # column key -> the model whose cell is bold
    benchmark_averages: list[Average] = field(default_factory=list)   # shown before the overall average

    @property
    def averages(self) -> list[Average]:
        """Every average column, in display order: per benchmark, then the overall one."""
        return self.benchmark_averages + ([self.average] if self.average else [])

    @property
    def measured(self) -> list[Row]:
        return [r for r in self.rows if r.kind == "measured"]

    @property
    def reported_rows(self) -> list[Row]:
        return [r for r in self.rows if r.kind == "reported"]

    def is_marked(self, key: str, row: Row) -> bool:
        """Whether the row's cell is bold: significantly ahead of every other row (see significance.py)."""
        return row.kind == "measured" and self.marked.get(key) == row.model


# ---- columns ------------------------------------------------------------------------------------------
