"""`deem-eval leaderboard [RUN_DIRS...]`: argument parsing and output only; the work is in runs / table /
render."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from deem_eval.core.errors import DeemEvalError


class LeaderboardCommand:
    help = ("Compare runs in one table: a row per model (its newest complete run per split), the DEEM paper's "
            "columns (RVQA-A/R/V, POPE-R/P/A, average) when those benchmarks are present, else a column per "
            "split and metric; every cell with its 95% confidence interval.")
    examples = """examples:
  deem-eval leaderboard                                  # every run under results/runs
  deem-eval leaderboard results/runs/2026*_llava* --format md
  deem-eval leaderboard --reported                       # paper Table 1 rows beside the measured ones
  deem-eval leaderboard --reported-table table5 --sort POPE-A
  deem-eval leaderboard --metric f1 --filter benchmark=pope --format latex -o results/pope_f1.tex
  deem-eval leaderboard --filter model=llava*,deem* --filter fingerprint=3fa2c1 --format csv

filters (--filter, repeatable, all must match; commas mean "or"):
  model=GLOB  split=GLOB  benchmark=GLOB  fingerprint=PREFIX  run=GLOB   (a bare pattern means model=)
"""

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        from deem_eval.views.leaderboard.board import METRICS
        from deem_eval.views.leaderboard.render import FORMATS

        parser.add_argument("run_dirs", nargs="*", type=Path, metavar="RUN_DIR",
                            help="run directories, or folders of them (default: results/runs)")
        parser.add_argument("--format", choices=FORMATS, default="terminal", help="output format (default terminal)")
        parser.add_argument("-o", "--output", type=Path, help="write to this file instead of stdout")
        parser.add_argument("--metric", action="append", choices=METRICS, metavar="METRIC",
                            help=f"metric for the cells (repeatable; default accuracy, plus F1 for POPE-style "
                                 f"splits outside the paper layout); one of {', '.join(METRICS)}")
        parser.add_argument("--sort", metavar="COLUMN",
                            help="column label to rank by (e.g. POPE-A), 'avg' or 'model' "
                                 "(default: avg, else the first column)")
        parser.add_argument("--ascending", action="store_true", help="smallest first")
        parser.add_argument("--filter", action="append", default=[], metavar="KEY=GLOB",
                            help="keep only runs that match (see below)")
        parser.add_argument("--paired", metavar="MODEL",
                            help="after the table, pair MODEL with every other model on each split it answered "
                                 "(McNemar, paired bootstrap, Holm-adjusted) and say which differences are significant")
        parser.add_argument("--parser", metavar="NAME",
                            help="rescore every run with this answer parser (from its samples.jsonl, nothing is "
                                 "written); needed when runs of one split were scored with different parsers")
        add_reported_arguments(parser)

    def run(self, args: argparse.Namespace) -> int:
        board = make_board(args.run_dirs, metrics=args.metric, sort=args.sort, ascending=args.ascending,
                           filters=args.filter, reported=reported_table(args), reported_dir=args.reported_dir,
                           parser=args.parser)
        from deem_eval.views.leaderboard.render import RENDERERS, print_terminal, to_plain

        if args.format == "terminal":
            if args.output:
                _write(args.output, to_plain(board))
            else:
                print_terminal(board)
            if args.paired:
                from deem_eval.views.leaderboard.significance import paired_against, render_plain

                sys.stdout.write(render_plain(*paired_against(board, args.paired)))
            return 0
        text = RENDERERS[args.format](board)
        if args.output:
            _write(args.output, text)
        else:
            sys.stdout.write(text)
        return 0


def add_reported_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reported", action="store_true",
                        help="show the DEEM paper's numbers beside the measured rows, marked as reported")
    parser.add_argument("--reported-table", metavar="TABLE",
                        help="which reported table (implies --reported): table1 (default), table1-arxiv2024, "
                             "table3, table4, table5")
    parser.add_argument("--reported-dir", type=Path, help="where reported tables live (default results/reported)")


def reported_table(args: argparse.Namespace) -> str | None:
    if args.reported_table:
        return args.reported_table
    return "table1" if args.reported else None


def make_board(run_dirs, *, metrics=None, sort=None, ascending=False, filters=(), reported=None,
               reported_dir=None, parser: str | None = None):
    """Discover, filter, select and check runs, then build the table (shared with `deem-eval report`);
    `parser` rescores every chosen run with that parser, else runs of one split must share one."""
    from deem_eval.run.catalog import discover
    from deem_eval.scoring.score import get_parser
    from deem_eval.views.leaderboard import reported as reported_mod
    from deem_eval.views.leaderboard.runs import (
        RunFilter,
        Selection,
        apply_filters,
        check_fingerprints,
        check_parsers,
        rescore,
        select,
    )
    from deem_eval.views.leaderboard.table import build

    if parser is not None:
        parser = get_parser(parser).name                 # an unknown name fails here, with suggestions
    parsed = [RunFilter.parse(f) for f in filters]
    table = reported_mod.load_table(reported, reported_dir) if reported else None
    try:
        runs, skipped = discover(run_dirs or None)
    except DeemEvalError:
        if table is None or run_dirs:
            raise
        runs, skipped = [], []                      # --reported alone: show the paper's rows
    kept = apply_filters(runs, parsed)
    if runs and not kept:
        raise DeemEvalError(f"no run matches {' and '.join(filters)} (of {len(runs)} runs found)")
    selection = select(kept)
    chosen = selection.chosen if parser is None else [rescore(r, parser) for r in selection.chosen]
    selection = Selection(chosen, selection.superseded, skipped + selection.skipped)
    check_fingerprints(selection.chosen)
    if parser is None:
        check_parsers(selection.chosen)
    if not selection.chosen and table is None:
        raise DeemEvalError("no scored runs to show; score them with `deem-eval score RUN_DIR`")
    return build(selection, metrics=metrics, sort=sort, ascending=ascending, reported=table)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}", file=sys.stderr)
