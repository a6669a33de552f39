"""Assemble the HTML report: leaderboard, runs, per-split metrics, hallucination and robustness figures,
and paired comparisons, written as one self-contained index.html (+ the figures as PNG/SVG files and the
leaderboard as md/csv/json beside it)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from deem_eval import __version__
from deem_eval.analysis.paired import PairedComparison, compare
from deem_eval.analysis.plots import (
    PlotFiles,
    YesF1Point,
    accuracy_vs_severity,
    corruption_heatmap,
    model_colors,
    yes_ratio_vs_f1,
)
from deem_eval.analysis.robustness import (
    RobustnessSummary,
    find_clean_run,
    has_corruptions,
    source_fingerprint,
    summarize_run,
)
from deem_eval.analysis.scored_runs import ScoredRun, SplitCache, load_scored
from deem_eval.core.errors import did_you_mean
from deem_eval.run.catalog import RunInfo
from deem_eval.scoring.metrics import Estimate
from deem_eval.views.html import HtmlCell, bullet_list, esc, figure_svg, page, table, text_cell
from deem_eval.views.leaderboard.render import html_notes, to_csv, to_html_table, to_json, to_markdown
from deem_eval.views.leaderboard.significance import holm
from deem_eval.views.leaderboard.table import Leaderboard

MAX_ALL_PAIRS = 6          # up to this many models per split: every pair; more: each against the best
DETAIL_METRICS = ("accuracy", "precision", "recall", "f1", "yes_ratio", "unknown_rate")


@dataclass
class ReportOptions:
    title: str = "deem-eval report"
    compare: Sequence[tuple[str, str]] = ()
    seed: int = 0
    draws: int = 2000
    progress: bool = True


@dataclass
class ReportData:
    board: Leaderboard
    runs: list[RunInfo]
    scored: dict[str, ScoredRun] = field(default_factory=dict)          # run path -> answers
    comparisons: list[PairedComparison] = field(default_factory=list)
    robustness: list[RobustnessSummary] = field(default_factory=list)
    plots: list[PlotFiles] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    splits: SplitCache = field(default_factory=SplitCache)              # shared: each split is read once


def build_report(board: Leaderboard, out_dir: Path, options: ReportOptions | None = None) -> Path:
    options = options or ReportOptions()
    runs = [] if board.selection is None else list(board.selection.chosen)
    labels = {r.label for r in runs}
    for pair in options.compare:
        for label in pair:
            if label not in labels:
                raise did_you_mean(label, labels, "model")
    out_dir.mkdir(parents=True, exist_ok=True)
    data = ReportData(board, runs)
    _load_answers(data, options)
    data.robustness = _robustness(data)
    data.comparisons = _comparisons(data, options)
    plots_dir = out_dir / "plots"
    colors = model_colors([r.label for r in data.runs])     # one colour per model in every figure
    for plot in (_hallucination_plot(data, plots_dir, colors),
                 accuracy_vs_severity(data.robustness, plots_dir, colors=colors),
                 corruption_heatmap(data.robustness, plots_dir, colors=colors)):
        if plot is not None:
            data.plots.append(plot)
    (out_dir / "leaderboard.md").write_text(to_markdown(board), encoding="utf-8")
    (out_dir / "leaderboard.csv").write_text(to_csv(board), encoding="utf-8")
    (out_dir / "leaderboard.json").write_text(to_json(board), encoding="utf-8")
    path = out_dir / "index.html"
    path.write_text(render_page(data, options), encoding="utf-8")
    return path


# ---- data ---------------------------------------------------------------------------------------------

def _load_answers(data: ReportData, options: ReportOptions) -> None:
    from tqdm import tqdm

    splits = data.splits
    for run in tqdm(data.runs, desc="reading runs", unit="run", disable=not options.progress or len(data.runs) < 4):
        try:
            scored = load_scored(run, splits)
        except Exception as exc:  # noqa: BLE001 - a damaged run loses its detail sections, not the report
            data.warnings.append(f"{run.path}: answers unreadable ({exc}); paired and robustness sections skip it")
            continue
        if scored.split_note:
            data.warnings.append(f"{run.path}: {scored.split_note}; comparisons resample questions, not images")
        data.scored[str(run.path)] = scored


def _robustness(data: ReportData) -> list[RobustnessSummary]:
    """Each corrupted run against the same model's run on its exact source split (by fingerprint)."""
    out = []
    candidates = [data.scored[str(r.path)] for r in data.runs if str(r.path) in data.scored]
    for run in data.runs:
        scored = data.scored.get(str(run.path))
        if scored is None or not has_corruptions(scored):
            continue
        split, note = data.splits.get(run)
        if split is None:
            clean, why = None, f"no clean reference: {note}; no drop"
        else:
            clean, why = find_clean_run(scored, candidates, source_fingerprint(split))
        summary = summarize_run(scored, clean, no_clean_reason=why)
        if summary is not None:
            out.append(summary)
    return out


def _comparisons(data: ReportData, options: ReportOptions) -> list[PairedComparison]:
    by_split: dict[str, list[ScoredRun]] = {}
    for run in data.runs:
        scored = data.scored.get(str(run.path))
        if scored is not None:
            by_split.setdefault(run.split_name, []).append(scored)
    out = []
    for _, group in sorted(by_split.items()):
        group.sort(key=lambda s: -float(s.correct.mean()) if len(s.ids) else 0.0)
        pairs: list[tuple[ScoredRun, ScoredRun]]
        if options.compare:
            labels = {s.run.label: s for s in group}
            pairs = [(labels[a], labels[b]) for a, b in options.compare if a in labels and b in labels]
        elif len(group) <= MAX_ALL_PAIRS:
            pairs = list(itertools.combinations(group, 2))
        else:
            pairs = [(group[0], other) for other in group[1:]]
        for a, b in pairs:
            out.append(compare(a, b, seed=options.seed, draws=options.draws))
    for label_a, label_b in options.compare:
        if not any({c.model_a, c.model_b} == {label_a, label_b} for c in out):
            data.warnings.append(f"--compare {label_a} {label_b}: the two models share no split")
    return out


def _hallucination_plot(data: ReportData, out_dir: Path, colors: dict[str, tuple]) -> PlotFiles | None:
    points = []
    pope = [r for r in data.runs if r.benchmark == "pope"] or [r for r in data.runs if r.benchmark.startswith("pope")]
    chosen = pope or data.runs
    several = len({r.split_name for r in chosen}) > 1
    for run in chosen:
        metrics = run.metrics or {}
        subsets = metrics.get("groups", {}).get("subset", {})
        blocks = subsets.items() if len(subsets) > 1 else [("all", metrics.get("overall", {}))]
        for subset, block in blocks:
            yes, f1 = (block.get("yes_ratio") or {}).get("value"), (block.get("f1") or {}).get("value")
            if yes is not None and f1 is not None:
                name = f"{run.split_name}: {subset}" if several else str(subset)
                points.append(YesF1Point(run.label, run.split_name, name, yes, f1))
    title = "POPE: yes-ratio vs F1" if pope else "yes-ratio vs F1 (no POPE runs; all splits)"
    return yes_ratio_vs_f1(points, out_dir, title=title, colors=colors)


# ---- page ---------------------------------------------------------------------------------------------

def _est_cell(est: Estimate | dict | None, percent: bool = True, *, signed: bool = False) -> HtmlCell:
    if isinstance(est, dict):
        est = Estimate.from_json(est)
    if est is None or est.value is None:
        return HtmlCell("-")
    scale = 100.0 if percent else 1.0
    fmt = "+.1f" if signed else ".1f"
    text = esc(format(est.value * scale, fmt))
    if est.ci_low is not None and est.ci_high is not None:
        text += f'<span class="ci">[{est.ci_low * scale:{fmt}}, {est.ci_high * scale:{fmt}}]</span>'
    return HtmlCell(text)


def _pct(value: float | None, *, signed: bool = False) -> HtmlCell:
    if value is None:
        return HtmlCell("-")
    return HtmlCell(esc(format(value * 100, "+.1f" if signed else ".1f")))


def _p_cell(p: float) -> HtmlCell:
    text = f"{p:.2g}" if p < 0.01 else f"{p:.3f}"
    return HtmlCell(f'<span class="sig">{esc(text)}</span>' if p < 0.05 else esc(text))


def render_page(data: ReportData, options: ReportOptions) -> str:
    board = data.board
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = [f"<h1>{esc(options.title)}</h1>",
             (f'<p class="meta">generated {esc(now)} by deem-eval {esc(__version__)} from {len(data.runs)} '
             f"run(s); all intervals are 95%.</p>")]
    sections = [("leaderboard", "Leaderboard", _section_leaderboard(board)),
                ("runs", "Runs", _section_runs(data)),
                ("details", "Metrics per split", _section_details(data)),
                ("hallucination", "Hallucination", _section_hallucination(data)),
                ("robustness", "Robustness under corruption", _section_robustness(data)),
                ("paired", "Paired comparisons", _section_paired(data))]
    parts.append("<nav>" + "".join(f'<a href="#{sid}">{esc(title)}</a>' for sid, title, _ in sections) + "</nav>")
    for sid, title, body in sections:
        parts.append(f'<section id="{sid}"><h2>{esc(title)}</h2>{body}</section>')
    if data.warnings:
        parts.append('<section id="warnings"><h2>Warnings</h2>' + bullet_list(data.warnings) + "</section>")
    return page(options.title, "".join(parts))


def _section_leaderboard(board: Leaderboard) -> str:
    if not board.rows:
        return "<p>No runs.</p>"
    return (f'<p class="caption">Rows are models (the newest complete run per split), ranked by '
            f"{esc(board.sort_label)}; bold marks a column's best row only where paired tests put it ahead of "
            f"every other row (see the notes).</p>"
            + to_html_table(board) + html_notes(board))


def _section_runs(data: ReportData) -> str:
    if not data.runs:
        return "<p>No runs.</p>"
    header = ["model", "split", "benchmark", "parser", "answered", "failed", "status", "finished (UTC)",
              "fingerprint", "run directory"]
    rows = []
    for run in sorted(data.runs, key=lambda r: (r.split_name, r.label)):
        status = "complete" if run.complete else "; ".join(run.problems()) or "incomplete"
        rows.append(([text_cell(run.label, left=True), text_cell(run.split_name, left=True),
                      text_cell(run.benchmark, left=True), text_cell((run.metrics or {}).get("parser", "?"), left=True),
                      text_cell(f"{run.n_answered}/{run.n_selected}"), text_cell(run.n_failed),
                      text_cell(status, left=True), text_cell((run.manifest.finished_utc or "-")[:19], left=True),
                      HtmlCell(f"<code>{esc(run.fingerprint[:12])}</code>", left=True),
                      text_cell(run.path.name, left=True)], ""))
    return table(header, rows)


def _section_details(data: ReportData) -> str:
    by_split: dict[str, list[RunInfo]] = {}
    for run in data.runs:
        by_split.setdefault(run.split_name, []).append(run)
    parts = []
    for split, runs in sorted(by_split.items()):
        header = ["model", "group", "n"] + list(DETAIL_METRICS)
        rows = []
        for run in sorted(runs, key=lambda r: r.label):
            metrics = run.metrics or {}
            blocks = [("overall", metrics.get("overall", {}))]
            subsets = metrics.get("groups", {}).get("subset", {})
            if len(subsets) > 1:
                blocks += [(f"subset={k}", v) for k, v in subsets.items()]
            for name, block in blocks:
                rows.append(([text_cell(run.label, left=True), text_cell(name, left=True),
                              text_cell(block.get("n", 0))]
                             + [_est_cell(block.get(m)) for m in DETAIL_METRICS], ""))
        parts.append(f"<h3>{esc(split)}</h3>" + table(header, rows))
    return "".join(parts) or "<p>No runs.</p>"


def _section_hallucination(data: ReportData) -> str:
    plot = next((p for p in data.plots if p.name == "yes_ratio_vs_f1"), None)
    if plot is None:
        return "<p>No runs with yes-ratio and F1.</p>"
    return ('<p class="caption">Each point is a model on one POPE subset. A model that answers "yes" more '
            "often than the 50% of questions whose answer is yes sits right of the dotted line: that surplus "
            "is hallucination, and it costs precision and F1.</p>"
            + figure_svg(plot.svg_bytes(), "Yes-ratio (share of \"yes\" answers) against F1, per model "
                         "(colour) and subset (marker).", "scatter plot of yes-ratio against F1 per model and subset"))


def _section_robustness(data: ReportData) -> str:
    if not data.robustness:
        return ("<p>No runs on corrupted splits (splits whose samples carry <code>corruption</code> and "
                "<code>severity</code> fields, e.g. pope-c, robustvqa-c).</p>")
    header = ["model", "split", "clean acc", "corrupted acc", "drop (pts)", "relative", "yes-ratio shift (pts)",
              "clean reference", "matched questions"]
    rows = []
    for s in sorted(data.robustness, key=lambda s: (s.split, -(s.mean_accuracy or 0))):
        rows.append(([text_cell(s.model, left=True), text_cell(s.split, left=True),
                      _est_cell(s.clean.accuracy) if s.clean else HtmlCell("-"), _pct(s.mean_accuracy),
                      _pct(s.mean_drop), HtmlCell("-" if s.relative is None else f"{s.relative:.3f}"),
                      _pct(s.yes_shift, signed=True), text_cell(s.clean_source, left=True),
                      text_cell("-" if s.clean_matched is None else f"{s.clean_matched}/{s.clean_wanted}")], ""))
    parts = [('<p class="caption">Corrupted accuracy is averaged over severities, then over corruptions. '
             "Drop = clean − corrupted; relative = corrupted / clean; a positive yes-ratio shift means more "
             '"yes" answers on degraded images. The clean reference is the split\'s own clean rows, or the same '
             "model's run on the exact source split (matched by fingerprint), scored only on the source "
             "questions of the corrupted samples (matched questions); without one, no drop is shown.</p>"),
             table(header, rows)]
    figures = [p for p in data.plots if p.name in ("accuracy_vs_severity", "corruption_heatmap")]
    captions = {"accuracy_vs_severity": "Accuracy against severity, pooled over corruptions (0 = clean), with "
                                        "95% Wilson bands; dashed: chance (50%).",
                "corruption_heatmap": "Accuracy per corruption and model, averaged over severities."}
    parts.append('<div class="grid">' + "".join(
        figure_svg(p.svg_bytes(), captions[p.name], p.title) for p in figures) + "</div>")
    for s in sorted(data.robustness, key=lambda s: (s.split, s.model)):
        sev_header = ["corruption"] + [f"sev {v}" for v in s.severities] + ["mean", "drop", "relative", "yes shift"]
        sev_rows = []
        for c in s.corruptions:
            sev_rows.append(([text_cell(c.corruption, left=True)]
                             + [_est_cell(c.by_severity[v].accuracy) if v in c.by_severity else HtmlCell("-")
                                for v in s.severities]
                             + [_pct(c.mean_accuracy), _pct(c.drop),
                                HtmlCell("-" if c.relative is None else f"{c.relative:.3f}"),
                                _pct(c.yes_shift, signed=True)], ""))
        parts.append(f"<details><summary>{esc(s.model)} on {esc(s.split)}: accuracy per corruption × severity"
                     f"</summary>{table(sev_header, sev_rows)}</details>")
    return "".join(parts)


def holm_by_split(comparisons: Sequence[PairedComparison]) -> list[float]:
    """Holm-adjusted exact McNemar p-values, each split's comparisons one family (aligned with the input)."""
    adjusted = [1.0] * len(comparisons)
    by_split: dict[str, list[int]] = {}
    for i, c in enumerate(comparisons):
        by_split.setdefault(c.split, []).append(i)
    for indices in by_split.values():
        for i, p in zip(indices, holm([comparisons[i].mcnemar.p_exact for i in indices])):
            adjusted[i] = p
    return adjusted


def _section_paired(data: ReportData) -> str:
    if not data.comparisons:
        return "<p>No split has two models to compare.</p>"
    header = ["split", "model A", "model B", "n", "acc A", "acc B", "A − B [95% CI]", "A only", "B only",
              "McNemar p (exact)", "Holm p", "mid-p", "bootstrap unit"]
    rows = []
    for c, p_holm in zip(data.comparisons, holm_by_split(data.comparisons)):
        t = c.mcnemar
        rows.append(([text_cell(c.split, left=True), text_cell(c.model_a, left=True), text_cell(c.model_b, left=True),
                      text_cell(c.n), _pct(c.accuracy_a), _pct(c.accuracy_b), _est_cell(c.difference, signed=True),
                      text_cell(t.a_only), text_cell(t.b_only), _p_cell(t.p_exact), _p_cell(p_holm), _p_cell(t.p_mid),
                      text_cell(f"{c.n_units} {c.unit}s, {c.draws} draws", left=True)], ""))
    return ('<p class="caption">Answers are matched by sample id. "A only" counts questions A answered '
            "correctly and B did not. McNemar's test uses only those discordant pairs (green: p &lt; 0.05); "
            "Holm p adjusts the exact p-values for the several comparisons of one split, so read that one "
            "when asking whether any of them is more than noise. "
            "The interval on the difference is a paired bootstrap that resamples whole images.</p>"
            + table(header, rows))
