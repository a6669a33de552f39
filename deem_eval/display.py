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


def print_metrics(metrics: Mapping[str, Any], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    columns = ["accuracy", "precision", "recall", "f1", "yes_ratio", "unknown_rate"]
    if "auroc" in metrics["overall"]:
        columns += ["auroc", "ece"]
    table = Table(title=title, title_justify="left")
    table.add_column("group")
    table.add_column("n", justify="right")
    for name in columns:
        table.add_column(name, justify="right")

    def row(label: str, m: Mapping[str, Any]) -> None:
        table.add_row(label, str(m["n"]), *(fmt_estimate(m.get(c), percent=c not in ("auroc", "ece"))
                                            for c in columns))

    row("overall", metrics["overall"])
    for field, values in metrics.get("groups", {}).items():
        if len(values) < 2:
            continue
        for value, m in values.items():
            row(f"{field}={value}", m)
    console = Console(stderr=False)
    console.print(table)
    notes = [f"parser {metrics['parser']}", f"{metrics['n_answered']}/{metrics['n_selected']} answered"]
    if metrics.get("n_failed"):
        notes.append(f"[red]{metrics['n_failed']} failed[/red] (see failures.jsonl)")
    if metrics.get("subset_mean"):
        mean = metrics["subset_mean"]
        notes.append("mean over subsets: " + ", ".join(
            f"{k} {v * 100:.1f}" for k, v in mean.items() if v is not None and k in ("accuracy", "f1")))
    if metrics.get("logit_text_agreement", {}).get("rate") is not None:
        notes.append(f"logit/text agreement {metrics['logit_text_agreement']['rate'] * 100:.1f}%")
    console.print("; ".join(notes))
