"""Terminal rendering of metrics (rich), kept apart from computing them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from deem_eval.scoring.metrics import METRIC_INFO, MetricsDocument

# C0, DEL, C1, and the bidirectional overrides that reorder what a terminal shows
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def strip_controls(text: object, keep: str = "") -> str:
    """`text` without control characters (but those in `keep`): a label or note must not move the cursor,
    retitle the window or plant an OSC 8 link in the user's terminal. A dropped tab or line break becomes a
    space, so words do not run together."""
    def replace(match: re.Match[str]) -> str:
        ch = match.group()
        return ch if ch in keep else " " if ch in "\t\n\r" else ""

    return _CONTROL.sub(replace, str(text))


def terminal_text(text: object, keep: str = "") -> str:
    """`text` safe to hand to rich as markup: control characters stripped, `[...]` markup escaped."""
    from rich.markup import escape

    return escape(strip_controls(text, keep))


def fmt_estimate(est: Mapping[str, Any] | None, percent: bool = True) -> str:
    """'83.4 [81.2, 85.5]' (percent) or '-' when undefined."""
    if not est or est.get("value") is None:
        return "-"
    scale = 100.0 if percent else 1.0
    text = f"{est['value'] * scale:.1f}" if percent else f"{est['value']:.3f}"
    if est.get("ci_low") is not None and est.get("ci_high") is not None:
        if percent:
            text += f" [{est['ci_low'] * scale:.1f}, {est['ci_high'] * scale:.1f}]"
        else:
            text += f" [{est['ci_low']:.3f}, {est['ci_high']:.3f}]"
    return text


MAX_ROWS_PER_FIELD = 12


def print_metrics(metrics: Mapping[str, Any] | MetricsDocument, title: str, console: Any = None) -> None:
    """Overall and per-group rows of a metrics document (or its JSON); accuracy and F1 with their 95% intervals,
    the rest as points.

    Numbers are never clipped: on a narrow terminal the secondary columns are left out (from the right, and
    named in a note), never squeezed; piped or redirected output is plain text at the width it needs."""
    from rich.console import Console

    doc = metrics if isinstance(metrics, MetricsDocument) else MetricsDocument.from_json(metrics)
    with_ci = ["accuracy", "f1"]
    points = ["precision", "recall", "yes_ratio", "unknown_rate"]
    if "auroc" in doc.overall:
        points += ["auroc", "ece"]
    rows: list[tuple[str, Mapping[str, Any]]] = [("overall", doc.block())]
    hidden = []
    for field, values in doc.groups.items():
        if len(values) < 2:
            continue
        if len(values) > MAX_ROWS_PER_FIELD:
            hidden.append(terminal_text(f"{field} ({len(values)} values)"))
            continue
        rows += [(f"{field}={value}", m) for value, m in values.items()]
    if console is None:
        console = Console()
    shown, dropped = list(points), list[str]()
    table = _metrics_table(title, with_ci, shown, rows)
    if console.is_terminal:
        while shown and _table_width(console, table) > console.width:
            dropped.insert(0, shown.pop())
            table = _metrics_table(title, with_ci, shown, rows)
    width = max(console.width, _table_width(console, table))
    if width != console.width:
        console = Console(file=console.file, width=width, color_system=console.color_system,
                          force_terminal=console.is_terminal)
    console.print(table)
    notes = [f"parser {terminal_text(doc.parser)}", f"{doc.n_answered}/{doc.n_selected} answered"]
    if doc.n_failed:
        notes.append(f"[red]{doc.n_failed} failed[/red] (see failures.jsonl)")
    if hidden:
        notes.append("per-value metrics for " + ", ".join(hidden) + " in metrics.json")
    if dropped:
        notes.append("left out for the terminal's width: " + ", ".join(c.replace("_", " ") for c in dropped)
                     + " (in metrics.json; widen the window to see them)")
    if doc.subset_mean:
        notes.append("mean over subsets: " + ", ".join(
            f"{k} {v * 100:.1f}" for k, v in doc.subset_mean.items() if v is not None and k in ("accuracy", "f1")))
    rate = doc.logit_text_rate()
    if rate is not None:
        notes.append(f"logit/text agreement {rate * 100:.1f}%")
    console.print("; ".join(notes))


def _metrics_table(title: str, with_ci: list[str], points: list[str],
                   rows: list[tuple[str, Mapping[str, Any]]]) -> Any:
    from rich.console import JustifyMethod
    from rich.table import Table

    table = Table(title=terminal_text(title), title_justify="left")
    columns: list[tuple[str, JustifyMethod]] = [("group", "left"), ("n", "right"),
                                                *((c, "right") for c in (*with_ci, *points))]
    for name, justify in columns:
        table.add_column(name.replace("_", " "), justify=justify, no_wrap=True)
    for label, m in rows:
        cells = [fmt_estimate(m.get(c)) for c in with_ci]
        cells += [fmt_estimate({"value": (m.get(c) or {}).get("value")}, percent=METRIC_INFO[c].percent)
                  for c in points]
        table.add_row(terminal_text(label), str(m["n"]), *cells)
    return table


def _table_width(console: Any, table: Any) -> int:
    """The width `table` needs with no cell wrapped or cut."""
    from rich.measure import Measurement

    return Measurement.get(console, console.options.update(width=10_000), table).maximum
