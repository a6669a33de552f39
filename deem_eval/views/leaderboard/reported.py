"""Published numbers as data: results/reported/ holds the DEEM paper's tables (CSV) and their sources
(index.json). A leaderboard shows them beside measured rows, always marked as reported."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deem_eval.core.errors import DeemEvalError, did_you_mean
from deem_eval.core.jsonio import parse_json

INDEX_FILE = "index.json"
DEFAULT_TABLE = "table1"


@dataclass(frozen=True)
class ReportedTable:
    id: str
    table: int
    version: str
    caption: str
    page: int | None
    columns: dict[str, str]                 # csv column -> paper column label (RVQA-A, ...)
    metrics: dict[str, str]                 # csv column -> metric name
    rows: list[ReportedRow]
    notes: list[str] = field(default_factory=list)
    arxiv: str = ""

    @property
    def citation(self) -> str:
        return f"DEEM paper, arXiv:{self.arxiv} Table {self.table} ({self.version})"

    @property
    def short(self) -> str:
        return f"T{self.table}" + ("" if self.id == f"table{self.table}" else f" [{self.id}]")


@dataclass(frozen=True)
class ReportedRow:
    label: str
    values: dict[str, float | None]          # csv column (rvqa_a, ...) -> percent, None where the paper has none
    texts: dict[str, str]                    # the same numbers as printed (digits kept)
    paper_average: float | None
    extra: dict[str, str]                    # the table's other columns (SFT, architecture, ...)


def default_dir() -> Path:
    """results/reported of this checkout, else of the current directory."""
    here = Path(__file__).parent / "reported_tables"      # results/reported (a link in a checkout, files in a wheel)
    return here if (here / INDEX_FILE).is_file() else Path("results/reported")


def load_index(directory: Path | None = None) -> dict[str, Any]:
    directory = directory or default_dir()
    path = directory / INDEX_FILE
    if not path.is_file():
        raise DeemEvalError(f"{path}: no reported-results index; pass --reported-dir DIR")
    return parse_json(path.read_text(encoding="utf-8"), path)


def table_ids(directory: Path | None = None) -> list[str]:
    return [t["id"] for t in load_index(directory)["tables"]]


def load_table(table_id: str = DEFAULT_TABLE, directory: Path | None = None) -> ReportedTable:
    directory = directory or default_dir()
    index = load_index(directory)
    entries = {t["id"]: t for t in index["tables"]}
    if table_id not in entries:
        raise did_you_mean(table_id, entries, "reported table")
    entry = entries[table_id]
    path = directory / entry["file"]
    columns = dict(index["columns"])
    avg_col = entry.get("paper_average")
    rows = []
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            for lineno, rec in enumerate(csv.DictReader(handle), start=2):
                values = {c: _number(rec.get(c), path, lineno) for c in columns if c in rec}
                rows.append(ReportedRow(
                    label=rec["row"], values=values,
                    texts={c: rec[c].strip() for c, v in values.items() if v is not None},
                    paper_average=_number(rec.get(avg_col), path, lineno) if avg_col else None,
                    extra={k: v for k, v in rec.items() if k not in columns and k not in ("row", avg_col)}))
    except FileNotFoundError:
        raise DeemEvalError(f"{path}: listed in {INDEX_FILE} but missing") from None
    return ReportedTable(id=table_id, table=int(entry["table"]), version=entry["version"],
                         caption=entry["caption"], page=entry.get("page"), columns=columns,
                         metrics=dict(entry.get("metric", {})), rows=rows, notes=list(entry.get("notes", [])),
                         arxiv=index.get("paper", {}).get("arxiv", ""))


def _number(text: str | None, path: Path, lineno: int) -> float | None:
    if text is None or text.strip() in ("", "-"):
        return None
    try:
        return float(text)
    except ValueError:
        raise DeemEvalError(f"{path}:{lineno}: {text!r} is not a number") from None
