"""Terminal rendering of metrics (rich), kept apart from computing them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


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


def print_metrics(metrics: Mapping[str, Any], title: str) -> None:
    """Overall and per-group rows; accuracy and F1 with their 95% intervals, the rest as points."""
    from rich.console import Console
    from rich.table import Table

    with_ci = ("accuracy", "f1")
    points = ["precision", "recall", "yes_ratio", "unknown_rate"]
    if "auroc" in metrics["overall"]:
        points += ["auroc", "ece"]
    table = Table(title=title, title_justify="left")
    for name, justify in [("group", "left"), ("n", "right"), *((c, "right") for c in (*with_ci, *points))]:
        table.add_column(name.replace("_", " "), justify=justify, no_wrap=True)

    def row(label: str, m: Mapping[str, Any]) -> None:
        cells = [fmt_estimate(m.get(c)) for c in with_ci]
        cells += [fmt_estimate({"value": (m.get(c) or {}).get("value")}, percent=c not in ("auroc", "ece"))
                  for c in points]
        table.add_row(label, str(m["n"]), *cells)

    row("overall", metrics["overall"])
    hidden = []
    for field, values in metrics.get("groups", {}).items():
        if len(values) < 2:
            continue
        if len(values) > MAX_ROWS_PER_FIELD:
            hidden.append(f"{field} ({len(values)} values)")
            continue
        for value, m in values.items():
            row(f"{field}={value}", m)
    console = Console(width=max(120, Console().width))
    console.print(table)
    notes = [f"parser {metrics['parser']}", f"{metrics['n_answered']}/{metrics['n_selected']} answered"]
    if metrics.get("n_failed"):
        notes.append(f"[red]{metrics['n_failed']} failed[/red] (see failures.jsonl)")
    if hidden:
        notes.append("per-value metrics for " + ", ".join(hidden) + " in metrics.json")
    if metrics.get("subset_mean"):
        mean = metrics["subset_mean"]
        notes.append("mean over subsets: " + ", ".join(
            f"{k} {v * 100:.1f}" for k, v in mean.items() if v is not None and k in ("accuracy", "f1")))
    if metrics.get("logit_text_agreement", {}).get("rate") is not None:
        notes.append(f"logit/text agreement {metrics['logit_text_agreement']['rate'] * 100:.1f}%")
    console.print("; ".join(notes))
