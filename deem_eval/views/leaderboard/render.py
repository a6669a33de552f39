"""Render a Leaderboard: terminal (rich), Markdown, CSV, JSON, LaTeX (booktabs) and static HTML.

Human formats show percentages with the 95% interval ("56.9 [55.1, 58.6]"), in bold (terminal: bold with *)
the best row of an accuracy column when paired tests put it ahead of every other row (significance.py), and
reported rows in their own block. Machine formats (CSV, JSON)
carry the raw numbers on the 0-1 scale of metrics.json, with interval bounds and n.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
from collections.abc import Callable
from typing import Any

from deem_eval.scoring.metrics import METRIC_INFO, Estimate
from deem_eval.views.display import strip_controls, terminal_text
from deem_eval.views.leaderboard.board import Leaderboard, Row

FORMATS = ("terminal", "md", "csv", "json", "latex", "html")


def render(board: Leaderboard, fmt: str) -> str:
    return {"md": to_markdown, "csv": to_csv, "json": to_json, "latex": to_latex, "html": to_html_page,
            "terminal": to_plain}[fmt](board)


# ---- shared helpers -----------------------------------------------------------------------------------

def _value_text(est: Estimate | None, percent: bool, printed: str | None = None) -> str:
    if printed is not None:
        return printed
    if est is None or est.value is None:
        return "-"
    return f"{est.value * 100:.1f}" if percent else f"{est.value:.3f}"


def _ci_text(est: Estimate | None, percent: bool) -> str:
    if est is None or est.value is None or est.ci_low is None or est.ci_high is None:
        return ""
    if percent:
        return f"[{est.ci_low * 100:.1f}, {est.ci_high * 100:.1f}]"
    return f"[{est.ci_low:.3f}, {est.ci_high:.3f}]"


def _cells(board: Leaderboard, row: Row) -> list[tuple[str, str, str, bool]]:
    """(value, ci, marks, is_bold) for every column, then the average (never bold: no paired test covers it)."""
    out = []
    for col in board.columns:
        cell = row.cells.get(col.key)
        est = cell.estimate if cell else None
        out.append((_value_text(est, col.percent, cell.text if cell else None), _ci_text(est, col.percent),
                    cell.marks if cell else "", est is not None and board.is_marked(col.key, row)))
    for avg in board.averages:
        est = row.estimate(avg.key)
        percent = METRIC_INFO[avg.metric].percent
        out.append((_value_text(est, percent), _ci_text(est, percent), "", False))
    return out


def _header(board: Leaderboard) -> list[str]:
    return ["#", "model"] + [c.label for c in board.columns] + [a.label for a in board.averages]


def _title(board: Leaderboard) -> str:
    metrics = sorted({c.metric for c in board.columns})
    order = "descending" if board.descending else "ascending"
    parsed = f"; answers parsed with {board.parser!r}" if board.parser else ""
    return (f"deem-eval leaderboard: {', '.join(metrics)} in % with 95% CI; "
            f"sorted by {board.sort_label} ({order}){parsed}")


def _rank_text(row: Row) -> str:
    if row.kind == "reported":
        return "rep."
    return "-" if row.rank is None else str(row.rank)


def _model_text(row: Row, board: Leaderboard) -> str:
    if row.kind == "reported" and board.reported is not None:
        return f"{row.model} (reported, {board.reported.short})"
    return row.model


def _legend(board: Leaderboard) -> list[str]:
    return [f"{mark} {meaning}" for mark, meaning in board.marks_used.items()]


# ---- plain text / terminal -----------------------------------------------------------------------------

def to_plain(board: Leaderboard) -> str:
    """The terminal table as text (what print_terminal shows, without colour)."""
    from rich.console import Console

    buffer = io.StringIO()
    console = Console(file=buffer, width=_plain_width(board), color_system=None, force_terminal=False)
    print_terminal(board, console)
    return buffer.getvalue()


def _plain_width(board: Leaderboard) -> int:
    """Wide enough that no interval wraps ("[55.1, 58.6]" is 12 characters, plus borders)."""
    longest = max([len(r.model) for r in board.rows] + [10])
    return max(200, 15 * (len(_header(board)) - 2) + longest + 12)


def print_terminal(board: Leaderboard, console: Any = None) -> None:
    """The board as a rich table. No number is ever clipped: on a terminal too narrow for every column the
    secondary columns (metrics other than the first, then the per-benchmark averages) are left out, named in
    a note; piped or redirected output is plain at the width it needs."""
    from rich.console import Console

    if console is None:
        console = Console()
    n_cols = len(board.columns) + len(board.averages)
    keep = list(range(n_cols))
    table = _terminal_table(board, keep)
    if console.is_terminal:
        for index in _droppable(board):
            if _table_width(console, table) <= console.width:
                break
            keep.remove(index)
            table = _terminal_table(board, keep)
    width = max(console.width, _table_width(console, table))
    if not console.is_terminal:                # piped or redirected: plain lines, never squeezed or wrapped
        width = max(width, _plain_width(board))
    if width != console.width:
        console = Console(file=console.file, width=width, color_system=console.color_system,
                          force_terminal=console.is_terminal)
    console.print(table)
    dropped = [_header(board)[2 + i] for i in range(n_cols) if i not in keep]
    if dropped:
        console.print(strip_controls(f"left out for the terminal's width: {', '.join(dropped)} (widen the "
                                     f"window, or use --format md / csv / json)"), highlight=False, markup=False)
    for line in _legend(board):
        console.print(strip_controls(line), highlight=False, markup=False)
    for note in board.notes:
        console.print("- " + strip_controls(note, keep="\n"), highlight=False, markup=False)


def _droppable(board: Leaderboard) -> list[int]:
    """Column indices a narrow terminal may leave out, the least important first: secondary metrics from the
    right, then the per-benchmark averages (never the primary metric's columns or the overall average)."""
    primary = board.columns[0].metric if board.columns else "accuracy"
    secondary = [i for i, c in enumerate(board.columns) if c.metric != primary]
    n = len(board.columns)
    averages = [n + i for i, a in enumerate(board.averages) if board.average is None or a.key != board.average.key]
    return secondary[::-1] + averages[::-1]


def _terminal_table(board: Leaderboard, keep: list[int]) -> Any:
    from rich.table import Table

    header = _header(board)
    table = Table(title=terminal_text(_title(board)), title_justify="left", show_lines=False)
    table.add_column(terminal_text(header[0]), justify="right", no_wrap=True)
    table.add_column(terminal_text(header[1]), justify="left", no_wrap=True)
    for i in keep:
        table.add_column(terminal_text(header[2 + i]), justify="right", no_wrap=True)
    for row in board.measured:
        cells = _cells(board, row)
        table.add_row(_rank_text(row), terminal_text(row.model), *(_rich_cell(*cells[i]) for i in keep))
    if board.reported_rows and board.reported is not None:
        table.add_section()
        table.add_row("", terminal_text(f"reported ({board.reported.short}, see notes)"), style="italic yellow")
        for row in board.reported_rows:
            cells = _cells(board, row)
            table.add_row(_rank_text(row), terminal_text(row.model),
                          *(terminal_text(cells[i][0]) for i in keep), style="italic yellow")
    return table


def _table_width(console: Any, table: Any) -> int:
    """The width `table` needs with no cell wrapped or cut."""
    from rich.measure import Measurement

    return Measurement.get(console, console.options.update(width=10_000), table).maximum


def _rich_cell(value: str, ci: str, marks: str, best: bool) -> str:
    from rich.markup import escape

    value, marks = strip_controls(value), strip_controls(marks)
    text = f"[bold]{escape(value)}*[/bold]" if best else escape(value)      # * survives plain text
    if marks:
        text += f"[red]{escape(marks)}[/red]"
    if ci:
        text += f"\n[dim]{escape(ci)}[/dim]"       # the interval on its own line keeps columns narrow
    return text


# ---- Markdown ------------------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#~])")


def md_escape(text: str) -> str:
    """Text for a Markdown cell or list item that renders as itself: no raw HTML (`<script>`, `<img
    onerror>`), no links, images, code or emphasis, no cell break; control characters and line breaks go."""
    return html.escape(_MD_SPECIAL.sub(r"\\\1", strip_controls(text)), quote=False)


def _md_note(text: str) -> str:
    """A list item; the lines of a multi-line note stay lines of the same item."""
    return "- " + "\n  ".join(md_escape(line) for line in strip_controls(text, keep="\n").split("\n"))


def to_markdown(board: Leaderboard) -> str:
    header = _header(board)
    lines = [f"**{md_escape(_title(board))}**", "", "| " + " | ".join(md_escape(h) for h in header) + " |",
             "|" + "|".join(["---:", ":---"] + ["---:"] * (len(header) - 2)) + "|"]
    for row in board.measured + board.reported_rows:
        cells = []
        for value, ci, marks, best in _cells(board, row):
            text = f"**{md_escape(value)}**" if best else md_escape(value)
            if ci:
                text += f" {ci}"                   # made here from numbers: "[55.1, 58.6]" needs no escaping
            cells.append(text + md_escape(marks))
        model = md_escape(_model_text(row, board))
        rank = _rank_text(row)
        if row.kind == "reported":
            model, rank = f"*{model}*", "*rep.*"
        lines.append("| " + " | ".join([rank, model] + cells) + " |")
    extra = _legend(board) + board.notes
    if extra:
        lines.append("")
        lines += [_md_note(n) for n in extra]
    return "\n".join(lines) + "\n"


# ---- CSV -----------------------------------------------------------------------------------------------

def to_csv(board: Leaderboard) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    names = [c.label for c in board.columns] + [a.label for a in board.averages]
    header = ["rank", "kind", "model", "source"]
    for name in names:
        header += [name, f"{name} ci_low", f"{name} ci_high", f"{name} n", f"{name} flags"]
    writer.writerow([csv_text(h) for h in header])
    for row in board.measured + board.reported_rows:
        out = ["" if row.rank is None else row.rank, csv_text(row.kind), csv_text(row.model),
               csv_text(row.source or "")]
        keys = [c.key for c in board.columns] + [a.key for a in board.averages]
        for key in keys:
            est = row.estimate(key)
            cell = row.cells.get(key)
            if est is None:
                out += ["", "", "", ""]            # value, ci_low, ci_high, n
            else:
                out += [_num(est.value), _num(est.ci_low), _num(est.ci_high), est.n]
            out.append(csv_text(cell.marks) if cell else "")
        writer.writerow(out)
    return buffer.getvalue()


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def csv_text(text: str) -> str:
    """A text cell a spreadsheet will not run: one starting like a formula (`=HYPERLINK(...)`, `+`, `-`, `@`,
    tab, CR) gets a leading `'`; a plain number (-0.5) is left as is, and control characters but tab and line
    breaks are dropped. Numeric columns are not passed through this."""
    text = strip_controls(text, keep="\t\n\r")
    if text.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


# ---- JSON ----------------------------------------------------------------------------------------------

def to_json(board: Leaderboard) -> str:
    def est_json(est: Estimate | None) -> dict | None:
        return None if est is None else est.to_json()

    rows = []
    for row in board.measured + board.reported_rows:
        cells = {}
        for key, cell in row.cells.items():
            obj = est_json(cell.estimate) or {}
            if cell.marks:
                obj["flags"] = [board.marks_used.get(m, m) for m in cell.marks]
            if board.is_marked(key, row):
                obj["significantly_best"] = True
            if cell.run is not None:
                obj["run"] = str(cell.run.path)
            cells[key] = obj
        item: dict[str, Any] = {"rank": row.rank, "kind": row.kind, "model": row.model, "cells": cells,
                "average": est_json(row.average)}
        if board.benchmark_averages:
            item["benchmark_averages"] = {a.key: est_json(row.estimate(a.key)) for a in board.benchmark_averages}
        if row.kind == "reported":
            item["source"] = row.source
            item["paper_average"] = None if row.paper_average is None else row.paper_average / 100.0
        rows.append(item)
    doc = {
        "title": _title(board),
        "scale": "fraction (0-1); intervals are 95%",
        "sort": {"by": board.sort_label, "descending": board.descending},
        "columns": [{"key": c.key, "label": c.label, "metric": c.metric, "split": c.split,
                     "benchmark": c.benchmark, "group": None if c.field is None else {c.field: c.value},
                     "paper_column": c.slot} for c in board.columns],
        "average": None if board.average is None else {"label": board.average.label,
                                                       "metric": board.average.metric,
                                                       "columns": list(board.average.keys)},
        "benchmark_averages": [{"key": a.key, "label": a.label, "benchmark": a.benchmark, "metric": a.metric,
                                "columns": list(a.keys)} for a in board.benchmark_averages],
        "rows": rows,
        "notes": board.notes,
        "superseded": [] if board.selection is None else [
            {"run": str(s.run.path), "model": s.run.label, "split": s.run.split_name, "reason": s.reason,
             "replaced_by": str(s.by.path)} for s in board.selection.superseded],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


# ---- LaTeX (booktabs) ----------------------------------------------------------------------------------

_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
_LATEX_MARKS = {"†": r"$^\dagger$", "‡": r"$^\ddagger$", "§": r"$^\S$"}


def latex_escape(text: str) -> str:
    out = "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)
    for mark, tex in _LATEX_MARKS.items():
        out = out.replace(mark, tex)
    return out


def to_latex(board: Leaderboard) -> str:
    header = _header(board)
    ncols = len(header)
    lines = ["% generated by deem-eval leaderboard; needs \\usepackage{booktabs}",
             "\\begin{table}[t]", "\\centering", "\\small",
             "\\begin{tabular}{rl" + "r" * (ncols - 2) + "}", "\\toprule",
             " & ".join(latex_escape(h) if h != "#" else "\\#" for h in header) + " \\\\", "\\midrule"]

    def cells_tex(row: Row, italic: bool) -> list[str]:
        out = []
        for value, ci, marks, best in _cells(board, row):
            text = latex_escape(value)
            if best:
                text = f"\\textbf{{{text}}}"
            if italic and value != "-":
                text = f"\\textit{{{text}}}"
            if ci:
                text += f" {{\\scriptsize {latex_escape(ci)}}}"
            out.append(text + latex_escape(marks))
        return out

    for row in board.measured:
        lines.append(" & ".join([_rank_text(row), latex_escape(row.model)] + cells_tex(row, False)) + " \\\\")
    if board.reported_rows and board.reported is not None:
        lines.append("\\midrule")
        citation = latex_escape(board.reported.citation)
        lines.append(f"\\multicolumn{{{ncols}}}{{l}}{{\\textit{{Reported: {citation}}}}} \\\\")
        for row in board.reported_rows:
            lines.append(" & ".join(["--", f"\\textit{{{latex_escape(row.model)}}}"] + cells_tex(row, True)) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}",
              f"\\caption{{{latex_escape(_title(board))}. " + latex_escape(" ".join(_legend(board))) + "}",
              "\\end{table}"]
    return "\n".join(lines) + "\n"


# ---- HTML ----------------------------------------------------------------------------------------------

def to_html_table(board: Leaderboard) -> str:
    """The leaderboard as an HTML table fragment (used by the report too)."""
    from deem_eval.views.html import HtmlCell, esc, table

    def cell_html(value: str, ci: str, marks: str, best: bool) -> HtmlCell:
        text = f"<b>{esc(value)}</b>" if best else esc(value)
        if ci:
            text += f'<span class="ci">{esc(ci)}</span>'
        if marks:
            text += f'<sup class="mark">{esc(marks)}</sup>'
        return HtmlCell(text)

    rows: list[tuple[list[HtmlCell], str]] = []
    for row in board.measured:
        rows.append(([HtmlCell(esc(_rank_text(row))), HtmlCell(esc(row.model), left=True)]
                     + [cell_html(*c) for c in _cells(board, row)], ""))
    if board.reported_rows and board.reported is not None:
        rows.append(([HtmlCell(f"Reported: {esc(board.reported.citation)}", left=True,
                               colspan=len(_header(board)))], "section"))
        for row in board.reported_rows:
            tag = f'<span class="tag">reported {esc(board.reported.short)}</span>'
            rows.append(([HtmlCell("rep."), HtmlCell(esc(row.model) + tag, left=True)]
                         + [HtmlCell(esc(v)) for v, _, _, _ in _cells(board, row)], "reported"))
    header = [HtmlCell("#", header=True), HtmlCell("model", left=True, header=True)] + \
        [HtmlCell(esc(h), header=True) for h in _header(board)[2:]]
    return table(header, rows, "leaderboard")


def html_notes(board: Leaderboard) -> str:
    from deem_eval.views.html import bullet_list

    return bullet_list(_legend(board) + board.notes)


def to_html_page(board: Leaderboard) -> str:
    from deem_eval.views.html import esc, page

    body = (f"<h1>Leaderboard</h1><p class=\"meta\">{esc(_title(board))}</p>"
            + to_html_table(board) + html_notes(board))
    return page("deem-eval leaderboard", body)


RENDERERS: dict[str, Callable[[Leaderboard], str]] = {
    "md": to_markdown, "csv": to_csv, "json": to_json, "latex": to_latex, "html": to_html_page,
}
