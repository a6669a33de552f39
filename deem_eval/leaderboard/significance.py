"""`deem-eval leaderboard --paired MODEL`: which of MODEL's differences from the other rows are more than noise.

For every split MODEL answered, MODEL is paired with each other model on the same questions (matched by id):
the accuracy difference with its paired-bootstrap 95 % interval (images resampled together) and McNemar's
exact p-value, Holm-adjusted over the comparisons shown; "significant" means adjusted p < 0.05.
"""

from __future__ import annotations

from ..paired import PairedComparison, compare
from ..scored_runs import SplitCache, load_scored
from .table import Leaderboard

ALPHA = 0.05


def holm(pvalues: list[float]) -> list[float]:
    """Holm's step-down adjustment (monotone, capped at 1)."""
    order = sorted(range(len(pvalues)), key=lambda i: pvalues[i])
    adjusted = [1.0] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(pvalues) - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def paired_against(board: Leaderboard, model: str) -> tuple[list[PairedComparison], list[str]]:
    """(comparisons of `model` against every other chosen run, per split; warnings)."""
    runs = [] if board.selection is None else list(board.selection.chosen)
    splits = SplitCache()
    mine = {r.split_name: r for r in runs if r.label == model}
    if not mine:
        labels = sorted({r.label for r in runs})
        return [], [f"--paired {model}: no run of that model here (models: {', '.join(labels)})"]
    out, warnings = [], []
    for split, own in sorted(mine.items()):
        try:
            a = load_scored(own, splits)
        except Exception as exc:  # noqa: BLE001 - one unreadable run must not hide the rest
            warnings.append(f"{own.path}: answers unreadable ({exc})")
            continue
        for other in sorted((r for r in runs if r.split_name == split and r.label != model), key=lambda r: r.label):
            try:
                out.append(compare(a, load_scored(other, splits)))
            except Exception as exc:  # noqa: BLE001
                warnings.append(f"{other.path}: not compared ({exc})")
    return out, warnings


def render_plain(comparisons: list[PairedComparison], warnings: list[str]) -> str:
    if not comparisons:
        return "\n".join(warnings) + ("\n" if warnings else "")
    adjusted = holm([c.mcnemar.p_exact for c in comparisons])
    lines = [f"paired comparisons (accuracy difference with 95% paired-bootstrap interval; McNemar exact p, "
             f"Holm-adjusted over these {len(comparisons)}):"]
    for c, p_adj in zip(comparisons, adjusted):
        d = c.difference
        diff = "n/a" if d.value is None else f"{100 * d.value:+.1f} [{100 * d.low:+.1f}, {100 * d.high:+.1f}]"
        verdict = "significant" if p_adj < ALPHA else "not significant"
        lines.append(f"  {c.split:<24} {c.model_a} vs {c.model_b}: {diff} pts, n={c.n}, "
                     f"p={c.mcnemar.p_exact:.2g} (adj {p_adj:.2g}) -> {verdict}")
    lines += warnings
    return "\n".join(lines) + "\n"
