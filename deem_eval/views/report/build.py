"""Assemble the HTML report: leaderboard, runs, per-split metrics, hallucination and robustness figures,
paired comparisons and a browsable sample of answers (thumbnails, question, gold, every model's answer and
P(yes), filterable to errors / disagreements / confident mistakes), written as one self-contained index.html
(+ the figures as PNG/SVG files and the leaderboard as md/csv/json beside it)."""

from __future__ import annotations

import base64
import hashlib
import io
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

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
from deem_eval.core.splits import Sample, Split
from deem_eval.core.version import __version__
from deem_eval.run.catalog import RunInfo
from deem_eval.run.rundir import RunDir, SampleRecord
from deem_eval.scoring.metrics import PRED_NO, PRED_YES, Estimate, MetricsDocument
from deem_eval.views.html import FILTER_JS, HtmlCell, bullet_list, esc, figure_svg, page, table, text_cell
from deem_eval.views.leaderboard.render import html_notes, to_csv, to_html_table, to_json, to_markdown
from deem_eval.views.leaderboard.significance import holm
from deem_eval.views.leaderboard.table import Layouts, Leaderboard

MAX_ALL_PAIRS = 6          # up to this many models per split: every pair; more: each against the best
DETAIL_METRICS = ("accuracy", "precision", "recall", "f1", "yes_ratio", "unknown_rate")
DEFAULT_SAMPLES = 60       # sample cards per split in the samples section
DEFAULT_THUMB = 96         # thumbnail size (longest side, px)
CONFIDENT = 0.8            # a mistake is "confident" when the model gave the wrong answer at least this P
MAX_OUTPUT_CHARS = 240     # a longer output is cut on its card (the full text, up to 2000 chars, in its title)


@dataclass
class ReportOptions:
    title: str = "deem-eval report"
    compare: Sequence[tuple[str, str]] = ()
    seed: int = 0
    draws: int = 2000
    progress: bool = True
    samples: int = DEFAULT_SAMPLES     # sample cards per split (0: no samples section)
    thumb_size: int = DEFAULT_THUMB


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
    samples: list[SplitSamples] = field(default_factory=list)


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
    data.samples = collect_samples(data, options)
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
    # runs of benchmarks whose leaderboard layout shows the yes-ratio (POPE): those with named columns first,
    # else derived ones (pope-c), else every run
    layouts = Layouts()
    yes_layouts = {r.benchmark: lay for r in data.runs
                   if (lay := layouts.get(r.benchmark)) is not None and "yes_ratio" in lay.metrics}
    pope = ([r for r in data.runs if r.benchmark in yes_layouts and yes_layouts[r.benchmark].slots]
            or [r for r in data.runs if r.benchmark in yes_layouts])
    chosen = pope or data.runs
    several = len({r.split_name for r in chosen}) > 1
    for run in chosen:
        doc = run.document
        if doc is None:
            continue
        for subset, group, value in _subset_blocks(doc, "all"):
            yes, f1 = doc.estimate("yes_ratio", group, value), doc.estimate("f1", group, value)
            if yes is not None and yes.value is not None and f1 is not None and f1.value is not None:
                name = f"{run.split_name}: {subset}" if several else str(subset)
                points.append(YesF1Point(run.label, run.split_name, name, yes.value, f1.value))
    family = next((yes_layouts[r.benchmark].prefix for r in pope if yes_layouts[r.benchmark].prefix),
                  None) or "POPE"
    title = f"{family}: yes-ratio vs F1" if pope else f"yes-ratio vs F1 (no {family} runs; all splits)"
    return yes_ratio_vs_f1(points, out_dir, title=title, colors=colors)


def _subset_blocks(doc: MetricsDocument | None, whole: str | None = None) -> list[tuple[str, str | None, str | None]]:
    """(name, group field, value) of a run's per-`subset` metrics when it has two or more subsets; else, with
    `whole`, the overall metrics under that name (else nothing)."""
    values = doc.group_values("subset") if doc is not None else []
    if len(values) > 1:
        return [(v, "subset", v) for v in values]
    return [(whole, None, None)] if whole is not None and doc is not None else []


# ---- page ---------------------------------------------------------------------------------------------

def _est_cell(est: Estimate | None, percent: bool = True, *, signed: bool = False) -> HtmlCell:
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
                ("paired", "Paired comparisons", _section_paired(data)),
                ("samples", "Samples", _section_samples(data, options))]
    parts.append("<nav>" + "".join(f'<a href="#{sid}">{esc(title)}</a>' for sid, title, _ in sections) + "</nav>")
    for sid, title, body in sections:
        parts.append(f'<section id="{sid}"><h2>{esc(title)}</h2>{body}</section>')
    if data.warnings:
        parts.append('<section id="warnings"><h2>Warnings</h2>' + bullet_list(data.warnings) + "</section>")
    return page(options.title, "".join(parts), script=FILTER_JS if any(s.shown for s in data.samples) else "")


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
                      text_cell(run.benchmark, left=True), text_cell((run.document.parser if run.document else "") or "?", left=True),
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
            doc = run.document
            blocks: list[tuple[str, str | None, str | None]] = [("overall", None, None)]
            blocks += [(f"subset={v}", f, v) for _, f, v in _subset_blocks(doc)]
            for name, group, value in blocks:
                rows.append(([text_cell(run.label, left=True), text_cell(name, left=True),
                              text_cell(doc.n(group, value) if doc else 0)]
                             + [_est_cell(doc.estimate(m, group, value) if doc else None) for m in DETAIL_METRICS],
                             ""))
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


# ---- samples ------------------------------------------------------------------------------------------

_VERDICTS = {PRED_NO: "no", PRED_YES: "yes"}
_ON = ' class="on"'


@dataclass(frozen=True)
class ModelAnswer:
    """One model's answer to one sample: verdict by the run's parser, raw output, P(yes) when logged."""

    verdict: str                    # yes | no | unknown
    output: str | None
    yes_prob: float | None
    correct: bool
    wrong_p: float | None = None    # P the model gave the wrong answer (wrong answers with P(yes) only)


@dataclass
class SampleRow:
    id: str
    question: str
    gold: str
    answers: list[ModelAnswer | None]        # aligned with SplitSamples.models; None: not answered
    image: Path | None = None
    image_note: str = ""                     # why there is no image, when there is none
    subset: str = ""
    thumb: str = ""                          # data: URI, filled in for the shown rows only

    @property
    def wrong(self) -> list[int]:
        return [i for i, a in enumerate(self.answers) if a is not None and not a.correct]

    @property
    def error(self) -> bool:
        return bool(self.wrong)

    @property
    def disagreement(self) -> bool:
        return len({a.verdict for a in self.answers if a is not None}) > 1

    @property
    def confidence(self) -> float:
        """The highest P any model gave a wrong answer (0 when no wrong answer carries P(yes))."""
        return max((a.wrong_p for a in self.answers if a is not None and a.wrong_p is not None), default=0.0)

    @property
    def confident_wrong(self) -> list[int]:
        return [i for i, a in enumerate(self.answers)
                if a is not None and a.wrong_p is not None and a.wrong_p >= CONFIDENT]

    @property
    def confident(self) -> bool:
        return bool(self.confident_wrong)


@dataclass
class SplitSamples:
    split: str
    models: list[str]
    total: int = 0
    n_error: int = 0
    n_disagree: int = 0
    n_confident: int = 0
    has_probs: bool = False
    shown: list[SampleRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def collect_samples(data: ReportData, options: ReportOptions) -> list[SplitSamples]:
    """Per split, every model's answers aligned by sample id, and the `options.samples` most informative rows."""
    if options.samples <= 0:
        return []
    by_split: dict[str, list[RunInfo]] = {}
    for run in data.runs:
        if str(run.path) in data.scored:
            by_split.setdefault(run.split_name, []).append(run)
    out = []
    for name, runs in sorted(by_split.items()):
        runs.sort(key=lambda r: r.label)
        out.append(_split_samples(data, name, runs, options))
    return out


def _split_samples(data: ReportData, name: str, runs: list[RunInfo], options: ReportOptions) -> SplitSamples:
    result = SplitSamples(name, [])
    split: Split | None = None
    for run in runs:
        split = data.splits.get(run)[0]
        if split is not None:
            break
    if split is None:
        result.notes.append("split not available, so no images: questions and gold come from the sample logs")
    by_sample: dict[str, Sample] = {s.id: s for s in split.samples} if split is not None else {}
    answered: list[tuple[dict[str, ModelAnswer], dict[str, SampleRecord]]] = []
    for run in runs:
        scored = data.scored[str(run.path)]
        try:
            records = RunDir.open(run.path).read_records(repair=False)
        except Exception as exc:  # noqa: BLE001 - a damaged log loses its samples, not the report
            result.notes.append(f"{run.label}: sample log unreadable ({exc})")
            continue
        if [r.id for r in records] != scored.ids:
            result.notes.append(f"{run.label}: sample log changed while the report was built; left out")
            continue
        result.models.append(run.label)
        answers = {}
        for rec, code, ok in zip(records, scored.pred, scored.correct):
            wrong_p = None
            if not ok and rec.yes_prob is not None:
                wrong_p = float(rec.yes_prob) if rec.gold == "no" else 1.0 - float(rec.yes_prob)
            answers[rec.id] = ModelAnswer(_VERDICTS.get(int(code), "unknown"), rec.output, rec.yes_prob, bool(ok),
                                          wrong_p)
        result.has_probs |= any(r.yes_prob is not None for r in records)
        answered.append((answers, {r.id: r for r in records}))
    ids = sorted({i for answers, _ in answered for i in answers})
    rows = []
    for sid in ids:
        sample = by_sample.get(sid)
        first = next(recs[sid] for _, recs in answered if sid in recs)
        row = SampleRow(sid, sample.question if sample else (first.question or ""),
                        sample.answer if sample else first.gold,
                        [answers.get(sid) for answers, _ in answered])
        if sample is not None and split is not None:
            row.image = split.image_path(sample)
            row.subset = str(sample.group.get("subset", ""))
        else:
            row.image_note = "split not available"
        rows.append(row)
    result.total = len(rows)
    result.n_error = sum(r.error for r in rows)
    result.n_disagree = sum(r.disagreement for r in rows)
    result.n_confident = sum(r.confident for r in rows)
    result.shown = select_informative(rows, options.samples)
    thumbs: dict[Path, tuple[str, str]] = {}      # POPE asks several questions about each image
    for row in result.shown:
        if row.image is not None:
            if row.image not in thumbs:
                thumbs[row.image] = thumbnail(row.image, options.thumb_size)
            row.thumb, row.image_note = thumbs[row.image]
    return result


def _spread(row: SampleRow) -> str:
    """A stable pseudo-random order (so the correct examples are not all from the first subset)."""
    return hashlib.sha256(row.id.encode("utf-8")).hexdigest()


def _rank(row: SampleRow) -> tuple[int, float, str]:
    tier = 0 if row.confident else 1 if row.disagreement else 2 if row.error else 3
    return tier, -row.confidence, _spread(row)


def select_informative(rows: Sequence[SampleRow], n: int) -> list[SampleRow]:
    """At most `n` rows: up to a quarter each of confident mistakes (most confident first), disagreements,
    other errors (most models wrong first) and correct answers, the rest filled in that order of priority;
    returned confident mistakes first, then disagreements, errors, correct ones."""
    if n <= 0:
        return []
    pools = [sorted((r for r in rows if r.confident), key=lambda r: (-r.confidence, r.id)),
             sorted((r for r in rows if r.disagreement), key=lambda r: (-r.confidence, _spread(r))),
             sorted((r for r in rows if r.error), key=lambda r: (-len(r.wrong), -r.confidence, _spread(r))),
             sorted((r for r in rows if not r.error), key=_spread)]
    quota = max(1, n // len(pools))
    chosen: dict[str, SampleRow] = {}
    for pool in pools:
        taken = 0
        for r in pool:
            if taken >= quota or len(chosen) >= n:
                break
            if r.id not in chosen:
                chosen[r.id] = r
                taken += 1
    for pool in pools:
        for r in pool:
            if len(chosen) >= n:
                break
            chosen.setdefault(r.id, r)
    return sorted(chosen.values(), key=_rank)


def thumbnail(path: Path, size: int) -> tuple[str, str]:
    """(data: URI of a JPEG at most `size` px on its longest side, "") or ("", why not)."""
    from PIL import Image

    from deem_eval.core.images import load_rgb

    try:
        image = load_rgb(path)
        image.thumbnail((size, size), Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=75, optimize=True)
    except Exception as exc:  # noqa: BLE001 - a missing or broken image is a placeholder, never a crash
        return "", str(exc).replace(str(path), path.name) or type(exc).__name__
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii"), ""


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _answer_row(label: str, answer: ModelAnswer | None) -> str:
    if answer is None:
        return f'<tr class="na"><td class="l">{esc(label)}</td><td class="l" colspan="2">not answered</td></tr>'
    cls = "ok" if answer.correct else "bad"
    p = "-" if answer.yes_prob is None or not math.isfinite(answer.yes_prob) else f"{answer.yes_prob:.2f}"
    output = "" if answer.output is None else answer.output.strip()
    said = esc(answer.verdict)
    if output and output.lower().rstrip(".!") != answer.verdict:
        said += f'<span class="out" title="{esc(_cut(output, 2000))}">{esc(_cut(output, MAX_OUTPUT_CHARS))}</span>'
    return (f'<tr class="{cls}"><td class="l">{esc(label)}</td><td class="l">{said}</td>'
            f'<td title="P(yes)">{esc(p)}</td></tr>')


def _card(row: SampleRow, models: Sequence[str]) -> str:
    flags = {"error": row.error, "disagree": row.disagreement, "confident": row.confident}
    attrs = "".join(f' data-{k}="{int(v)}"' for k, v in flags.items())
    attrs += (f' data-conf="{row.confidence:.3f}" data-wrong="{" ".join(map(str, row.wrong))}"'
              f' data-confwrong="{" ".join(map(str, row.confident_wrong))}"')
    if row.thumb:
        image = f'<img class="thumb" src="{row.thumb}" alt="{esc("image of " + row.id)}"/>'
    else:
        image = f'<div class="thumb missing" title="{esc(row.image_note)}">no image</div>'
    subset = f'<span class="tag">{esc(row.subset)}</span>' if row.subset else ""
    answers = "".join(_answer_row(m, a) for m, a in zip(models, row.answers))
    return (f'<div class="sample"{attrs}>{image}<div class="body">'
            f'<div class="q">{esc(row.question)}</div>'
            f'<div class="gold">gold: <b>{esc(row.gold)}</b>{subset}</div>'
            f'<table class="answers"><tbody>{answers}</tbody></table>'
            f'<div class="sid"><code>{esc(row.id)}</code></div></div></div>')


def _section_samples(data: ReportData, options: ReportOptions) -> str:
    if options.samples <= 0:
        return "<p>Left out (<code>--samples 0</code>).</p>"
    if not data.samples:
        return "<p>No runs with readable sample logs.</p>"
    parts = [(f'<p class="caption">Up to {options.samples} samples per split, the most informative first: '
              f"mistakes made with P(wrong answer) ≥ {CONFIDENT:g} (confident mistakes, most confident first; "
              "only runs that log P(yes) have them), questions the models answer differently, other errors, "
              "then a few correct answers. Red rows are wrong answers; P(yes) is the model's probability of "
              '"yes" where the run logged it. The filters act on the samples shown; the counts beside the '
              "split name are over all of its samples.</p>")]
    for s in data.samples:
        counts = (f"{s.total} samples, {s.n_error} with an error, {s.n_disagree} with a disagreement, "
                  f"{s.n_confident} with a confident mistake; {len(s.shown)} shown")
        shown = s.shown
        buttons = [("all", "all", len(shown)), ("error", "errors", sum(r.error for r in shown)),
                   ("disagree", "disagreements", sum(r.disagreement for r in shown)),
                   ("confident", "confident mistakes", sum(r.confident for r in shown))]
        bar = "".join(f'<button type="button" data-filter="{k}"{_ON if k == "all" else ""}>'
                      f'{esc(label)} <span class="n">{n}</span></button>' for k, label, n in buttons)
        if len(s.models) > 1:
            choices = "".join(f'<option value="{i}">{esc(m)}</option>' for i, m in enumerate(s.models))
            bar += ('<label>model <select data-model="1"><option value="">any</option>'
                    f"{choices}</select></label>")
        bar += '<span class="count"></span>'
        notes = bullet_list(s.notes)
        cards = "".join(_card(r, s.models) for r in shown)
        parts.append(f'<div class="samples" data-split="{esc(s.split)}" data-total="{s.total}" '
                     f'data-errors="{s.n_error}" data-disagreements="{s.n_disagree}" '
                     f'data-confident-mistakes="{s.n_confident}"><h3>{esc(s.split)} '
                     f'<span class="counts">{esc(counts)}</span></h3>{notes}'
                     f'<div class="filters">{bar}</div><div class="cards">{cards}</div></div>')
    return "".join(parts)
