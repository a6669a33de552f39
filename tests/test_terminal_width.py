"""Terminal output never clips a number: narrow terminals lose secondary columns (named in a note), piped
output is plain at the width it needs."""

from __future__ import annotations

import io

from rich.console import Console

from deem_eval.views.display import print_metrics


def _estimate(value, n=1800):
    return {"value": value, "n": n, "ci_low": value - 0.011, "ci_high": value + 0.012}


METRICS = {
    "parser": "strict", "n_answered": 1800, "n_selected": 1800,
    "overall": {"n": 1800, **{k: _estimate(0.8123) for k in
                              ("accuracy", "f1", "precision", "recall", "yes_ratio", "unknown_rate")},
                "auroc": _estimate(0.9012), "ece": _estimate(0.0345)},
    "groups": {"subset": {name: {"n": 600, **{k: _estimate(0.7777, 600) for k in
                                              ("accuracy", "f1", "precision", "recall", "yes_ratio", "unknown_rate")},
                                 "auroc": _estimate(0.8888, 600), "ece": _estimate(0.0222, 600)}
                          for name in ("random", "popular", "adversarial")}},
}


def _render(width: int, terminal: bool) -> str:
    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=terminal, color_system=None)
    print_metrics(METRICS, "model on split", console=console)
    return out.getvalue()


def test_narrow_terminal_drops_columns_instead_of_clipping():
    text = _render(70, terminal=True)
    assert "…" not in text
    assert "1800" in text and "81.2 [80.1, 82.4]" in text     # n and the intervals whole
    assert "left out for the terminal's width" in text and "ece" in text.split("left out")[1]
    table_lines = [line for line in text.splitlines() if "│" in line or "┃" in line]
    assert table_lines and max(len(line) for line in table_lines) <= 70


def test_wide_terminal_shows_every_column():
    text = _render(250, terminal=True)
    assert "left out" not in text and "auroc" in text and "0.901" in text


def test_piped_output_is_never_squeezed():
    text = _render(40, terminal=False)
    assert "…" not in text and "left out" not in text
    assert "0.901" in text and "81.2 [80.1, 82.4]" in text
