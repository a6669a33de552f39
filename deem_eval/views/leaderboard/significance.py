"""`deem-eval leaderboard --paired MODEL`: which of MODEL's differences from the other rows are more than noise.

For every split MODEL answered, MODEL is paired with each other model on the same questions (matched by id):
the accuracy difference with its paired-bootstrap 95 % interval (images resampled together) and McNemar's
exact p-value, Holm-adjusted over the comparisons shown; "significant" means adjusted p < 0.05.

significant_best decides which leaderboard cells are bold: a column's best row only when McNemar, Holm-adjusted
within the column, puts it ahead of every other row (a point maximum alone can be noise).
"""

from __future__ import annotations

from deem_eval.analysis.paired import PairedComparison, compare, paired_mcnemar
from deem_eval.analysis.scored_runs import ScoredRun, SplitCache, load_scored
from deem_eval.run.catalog import RunInfo
from deem_eval.views.leaderboard.board import Column, Leaderboard

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


BOLD_NOTE = ("bold (terminal: bold with *): the best row of an accuracy column, shown only when it is significantly "
             "ahead of every other row there (McNemar exact p < 0.05 against each, Holm-adjusted within the column); "
             "other metrics and the average are never bold")
UNAVAILABLE = "answers unavailable for paired tests"


class Answers:
    """Each run's answers loaded once (a board reads a run for several columns, and for its averages' intervals
    as well as for bold); None where unreadable."""

    def __init__(self) -> None:
        self.splits = SplitCache()
        self._runs: dict[str, ScoredRun | None] = {}

    def scored(self, run: RunInfo | None) -> ScoredRun | None:
        """The run's answers over the whole split (with images and group fields when its split is readable)."""
        if run is None:
            return None
        key = str(run.path)
        if key not in self._runs:
            try:
                self._runs[key] = load_scored(run, self.splits)
            except Exception:  # noqa: BLE001 - an unreadable run only loses its bold and intervals
                self._runs[key] = None
        return self._runs[key]

    def get(self, run: RunInfo | None, column: Column) -> ScoredRun | None:
        scored = self.scored(run)
        return None if scored is None else _restrict(scored, column)


_Answers = Answers


def _restrict(scored: ScoredRun, column: Column) -> ScoredRun | None:
    """The answers behind one cell: the questions of the column's group (None: the split's groups are unknown)."""
    if column.field is None:
        return scored
    values = scored.column(column.field)
    if values is None:
        return None
    keep = [k for k, v in enumerate(values) if str(v) == column.value]
    images = None if scored.images is None else [scored.images[k] for k in keep]
    return ScoredRun(scored.run, [scored.ids[k] for k in keep], scored.gold_yes[keep], scored.pred[keep],
                     images=images)


def significant_best(board: Leaderboard, answers: Answers | None = None) -> tuple[dict[str, str], list[str]]:
    """(column key -> model whose cell is bold, notes). Only accuracy columns: McNemar tests correctness."""
    answers = answers or Answers()
    marked: dict[str, str] = {}
    tested, unavailable = 0, []
    for col in board.columns:
        if col.metric != "accuracy":
            continue
        cells = [(row.model, cell, cell.estimate.value) for row in board.measured
                 if (cell := row.cells.get(col.key)) is not None
                 and cell.estimate is not None and cell.estimate.value is not None]
        values = [value for _, _, value in cells]
        if len(cells) < 2 or max(values) == min(values):      # nothing to single out
            continue
        tested += 1
        top = max(values)
        leaders = [(model, cell) for model, cell, value in cells if value == top]
        if len(leaders) > 1:                                  # a tie at the top: nobody is ahead of everyone
            continue
        model, best = leaders[0]
        a = answers.get(best.run, col)
        others = [answers.get(cell.run, col) for m, cell, _ in cells if m != model]
        present = [b for b in others if b is not None and b.ids]
        if a is None or not a.ids or len(present) != len(others):     # no answers: no test
            unavailable.append(col.label)
            continue
        try:
            tests = [paired_mcnemar(a, b) for b in present]
        except Exception:  # noqa: BLE001 - e.g. runs of different splits: no test, no bold
            unavailable.append(col.label)
            continue
        adjusted = holm([t.p_exact for t in tests])
        if all(p < ALPHA and t.a_only > t.b_only for t, p in zip(tests, adjusted)):
            marked[col.key] = model
    if not tested:
        return marked, []
    notes = [BOLD_NOTE]
    if len(unavailable) == tested:
        notes.append(f"no cell is marked: {UNAVAILABLE}")
    elif unavailable:
        notes.append(f"no cell is marked in {', '.join(unavailable)}: {UNAVAILABLE}")
    return marked, notes


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
    lines = [(f"paired comparisons (accuracy difference with 95% paired-bootstrap interval; McNemar exact p, "
              f"Holm-adjusted over these {len(comparisons)}):")]
    for c, p_adj in zip(comparisons, adjusted):
        d = c.difference
        if d.value is None or d.ci_low is None or d.ci_high is None:   # all three or none (no common questions)
            diff = "n/a"
        else:
            diff = f"{100 * d.value:+.1f} [{100 * d.ci_low:+.1f}, {100 * d.ci_high:+.1f}]"
        verdict = "significant" if p_adj < ALPHA else "not significant"
        lines.append(f"  {c.split:<24} {c.model_a} vs {c.model_b}: {diff} pts, n={c.n}, "
                     f"p={c.mcnemar.p_exact:.2g} (adj {p_adj:.2g}) -> {verdict}")
    lines += warnings
    return "\n".join(lines) + "\n"
