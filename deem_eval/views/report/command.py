"""`deem-eval report RUN_DIRS... --out DIR`: a self-contained HTML report of runs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


class ReportCommand:
    help = ("Write a self-contained HTML report (no network needed to view it): the leaderboard, runs, metrics "
            "per split, yes-ratio vs F1, robustness under corruption with plots, paired comparisons "
            "(McNemar's test, paired bootstrap over images) and sample answers with thumbnails, filterable to "
            "errors, disagreements and confident mistakes.")
    examples = """examples:
  deem-eval report results/runs --out results/report
  deem-eval report results/runs/*pope* --out /tmp/pope-report --reported --compare deem llava-1.5-7b
  deem-eval report --filter benchmark=pope-c,pope --out results/robustness-report

The page is OUT/index.html; the figures are also written to OUT/plots/ (PNG and SVG) and the leaderboard
to OUT/leaderboard.{md,csv,json}.
"""

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        from deem_eval.views.leaderboard.board import METRICS
        from deem_eval.views.leaderboard.command import add_reported_arguments

        parser.add_argument("run_dirs", nargs="*", type=Path, metavar="RUN_DIR",
                            help="run directories, or folders of them (default: results/runs)")
        parser.add_argument("--out", type=Path, required=True, help="output directory (index.html goes here)")
        parser.add_argument("--title", default="deem-eval report", help="page title")
        parser.add_argument("--filter", action="append", default=[], metavar="KEY=GLOB",
                            help="keep only matching runs (as in deem-eval leaderboard)")
        parser.add_argument("--metric", action="append", choices=METRICS, metavar="METRIC",
                            help="leaderboard metric(s), as in deem-eval leaderboard")
        parser.add_argument("--sort", metavar="COLUMN", help="leaderboard sort column")
        add_reported_arguments(parser)
        parser.add_argument("--compare", nargs=2, action="append", default=[], metavar=("MODEL_A", "MODEL_B"),
                            help="compare just these two models (repeatable; default: every pair per split, "
                                 "or each model against the best when a split has more than 6)")
        parser.add_argument("--bootstrap-seed", "--seed", dest="seed", type=int, default=0,
                            help="bootstrap seed of the paired intervals (default 0; moves intervals only, never a "
                                 "point estimate; not a build or run seed)")
        parser.add_argument("--draws", type=int, default=2000, help="paired bootstrap draws (default 2000)")
        parser.add_argument("--samples", type=int, default=60, metavar="N",
                            help="sample cards per split in the samples section: the N most informative "
                                 "(confident mistakes, disagreements, errors, then correct ones), each with a "
                                 "thumbnail, the question, gold and every model's answer (default 60; 0: none)")
        parser.add_argument("--thumb-size", type=int, default=96, metavar="PX",
                            help="thumbnail size, longest side in pixels (default 96; 16-512)")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def run(self, args: argparse.Namespace) -> int:
        from deem_eval.core.errors import DeemEvalError
        from deem_eval.views.leaderboard.command import make_board, reported_table
        from deem_eval.views.report.build import ReportOptions, build_report

        if args.draws < 100:
            raise DeemEvalError(f"--draws must be at least 100, got {args.draws}")
        if args.samples < 0:
            raise DeemEvalError(f"--samples must be 0 or more, got {args.samples}")
        if not 16 <= args.thumb_size <= 512:
            raise DeemEvalError(f"--thumb-size must be between 16 and 512, got {args.thumb_size}")
        board = make_board(args.run_dirs, metrics=args.metric, sort=args.sort, filters=args.filter,
                           reported=reported_table(args), reported_dir=args.reported_dir)
        options = ReportOptions(title=args.title, compare=[tuple(p) for p in args.compare], seed=args.seed,
                                draws=args.draws, progress=not args.no_progress, samples=args.samples,
                                thumb_size=args.thumb_size)
        path = build_report(board, args.out, options)
        print(f"wrote {path}", file=sys.stderr)
        return 0
