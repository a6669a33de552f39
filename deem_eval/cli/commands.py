"""The core subcommands: run, score, build, list, verify (argument parsing and printing only; the work
happens in runner / scoring / splits)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from deem_eval.core.atomic import atomic_write_text
from deem_eval.core.errors import DeemEvalError
from deem_eval.core.options import format_options, split_pairs
from deem_eval.core.registry import ALL, BENCHMARKS, BUILDERS, MODELS


def _path(text: str) -> Path:
    return Path(text).expanduser()


# ---- run -------------------------------------------------------------------------------------------

class RunCommand:
    help = "Run a model adapter on a benchmark split and score it. Resumes an unfinished identical run."
    examples = """examples:
  deem-eval --model random --bench synthscenes-yesno
  deem-eval run --model always-yes --bench pope --limit 300
  deem-eval run --model hf -M path=/models/llava-1.5-7b-hf -M scoring=both --bench pope --batch-size 16
  deem-eval run --model replay -M path=answers.jsonl --split-dir splits/pope-coco
"""

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--model", required=True, help="model adapter name (deem-eval list models)")
        parser.add_argument("--bench", action="append", default=[], metavar="NAME[,NAME...]",
                            help="benchmark name (deem-eval list benchmarks); repeat it or separate names with "
                                 "commas to run several with one model load; optional with --split-dir")
        parser.add_argument("-M", dest="model_options", action="append", default=[], metavar="KEY=VALUE",
                            help="adapter option (repeat -M for each); unknown keys list the valid ones")
        parser.add_argument("-B", dest="bench_options", action="append", default=[], metavar="KEY=VALUE",
                            help="benchmark option (repeatable); applies to every listed benchmark that has it")
        parser.add_argument("--split-dir", type=_path, help="use a built split directory instead of the default")
        parser.add_argument("--limit", type=int, help="answer only N samples (a stable subset chosen by hash of id)")
        parser.add_argument("--batch-size", type=int, default=8, help="requests per adapter call (default 8)")
        parser.add_argument("--workers", type=int, default=0, metavar="N",
                            help="processes that decode and prepare the next batches while the model answers "
                                 "(hf, deem: processor / resize / tokenize off the main thread; answers do not "
                                 "change). Default 0: one background thread loads images")
        parser.add_argument("--seed", type=int, default=0, help="run seed (part of the run key; given to the adapter as its sampling seed unless -M seed=). "
                                 "Not the split's build seed (-B seed=, or `build ... --seed`) nor the "
                                 "leaderboard/report bootstrap seed")
        parser.add_argument("--out", type=_path, default=Path("results/runs"), help="where runs go (default results/runs)")
        parser.add_argument("--run-dir", type=_path, help="an explicit run directory (resumed if it holds this run)")
        parser.add_argument("--parser", default="strict", help="answer parser for the run's metrics (default strict)")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")
        parser.add_argument("--force", action="store_true",
                            help="answer again even when an identical complete run is already in --out")

    def extra_help(self, argv: list[str]) -> str:
        """The chosen adapter's and benchmarks' options, for `deem-eval --model hf --help`."""
        from deem_eval.api import bench_names

        known = argparse.ArgumentParser(add_help=False)
        known.add_argument("--model")
        known.add_argument("--bench", action="append", default=[])
        args, _ = known.parse_known_args(argv)
        sections = []
        if args.model:
            sections.append(entry_help(MODELS, args.model, "-M"))
        for bench in bench_names(args.bench):
            sections.append(entry_help(BENCHMARKS, bench, "-B"))
        return "\n\n".join(sections)

    def run(self, args: argparse.Namespace) -> int:
        from deem_eval.api import prepare
        from deem_eval.views.display import print_metrics

        plan = prepare(args.model, args.bench, model_options=split_pairs(args.model_options, "-M"),
                       bench_options=split_pairs(args.bench_options, "-B"), split_dir=args.split_dir,
                       limit=args.limit, batch_size=args.batch_size, seed=args.seed, out=args.out,
                       run_dir=args.run_dir, parser=args.parser, progress=not args.no_progress, force=args.force,
                       workers=args.workers)
        results = []
        for split in plan.splits:
            result = plan.run(split)
            results.append(result)
            if result.metrics is not None:
                print_metrics(result.metrics, title=f"{plan.adapter.label} on {split.name}")
                print(f"run directory: {result.run_dir}")
        if len(results) > 1 and all(r.metrics is not None for r in results):
            print_combined_board([r.run_dir for r in results])
        return 0


def print_combined_board(run_dirs: list[Path]) -> None:
    """One leaderboard of just this command's runs; a board that cannot be made is a note, not a failure,
    since every run itself finished."""
    from deem_eval.views.leaderboard import make_board
    from deem_eval.views.leaderboard.render import print_terminal

    try:
        board = make_board(run_dirs)
    except DeemEvalError as exc:
        _stderr(f"note: no combined leaderboard: {exc}")
        return
    print()
    print_terminal(board)


def entry_help(registry: Any, name: str, flag: str) -> str:
    """`name`'s description and its options (type, default, description) as a help section."""
    obj = registry.get(name)
    doc = (getattr(obj, "description", None) or obj.__doc__ or "").strip().splitlines()
    how = f" ({flag} KEY=VALUE)" if flag else ""
    lines = [f"{registry.kind} {name}" + (f": {doc[0]}" if doc else ""), f"options{how}:"]
    config = getattr(obj, "Config", None)
    rows = format_options(config, "  ") if isinstance(config, type) and dataclasses.is_dataclass(config) else []
    return "\n".join(lines + (rows or ["  (none)"]))


# ---- score -----------------------------------------------------------------------------------------

class ScoreCommand:
    help = ("Recompute a run's metrics (metrics.json with the run's own parser; metrics.PARSER.json with "
            "another, leaving metrics.json as it is), or score an answers file made elsewhere against a "
            "split (matched by id or by (subset, image, question), never by row order).")
    examples = """examples:
  deem-eval score results/runs/20261126T120000Z_random_pope
  deem-eval score results/runs/20261126T120000Z_random_pope --parser pope-official
  deem-eval score --split splits/pope-coco --answers llava_answers.jsonl --parser pope-official
"""

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("run_dir", nargs="?", type=_path, help="a run directory")
        parser.add_argument("--parser", default=None,
                            help="parser name (default: the run's, rewriting metrics.json; another writes "
                                 "metrics.PARSER.json; deem-eval list parsers)")
        parser.add_argument("--split-dir", type=_path, help="the run's split, if it moved since the run")
        parser.add_argument("--split", type=_path, help="split directory to score --answers against")
        parser.add_argument("--answers", type=_path, help="answers file: POPE-style JSON lines, an lmms-eval samples log, or VLMEvalKit .tsv/.csv/.xlsx")
        parser.add_argument("--out", type=_path, help="with --answers: write metrics.json here")

    def run(self, args: argparse.Namespace) -> int:
        from deem_eval.scoring.score import get_parser
        from deem_eval.views.display import print_metrics

        if args.answers is not None:
            return self._score_answers(args)
        if args.run_dir is None:
            raise DeemEvalError("give a run directory, or --split DIR --answers FILE")
        from deem_eval.core.splits import Split
        from deem_eval.run.rundir import RunDir
        from deem_eval.run.runner import finalize

        run_dir = RunDir.open(args.run_dir)
        split_dir = args.split_dir or Path(run_dir.manifest.split_dir)
        if not (split_dir / "split.json").is_file():
            raise DeemEvalError(f"{args.run_dir}: its split {str(split_dir)!r} is gone; pass --split-dir DIR")
        split = Split.load(split_dir)
        if split.fingerprint != run_dir.manifest.split_fingerprint:
            raise DeemEvalError(f"{split_dir}: fingerprint {split.fingerprint[:12]}… differs from the run's "
                                f"{run_dir.manifest.split_fingerprint[:12]}…; this is not the split the run answered")
        parser = get_parser(args.parser or run_dir.manifest.parser)
        metrics = finalize(run_dir, split, parser)
        print_metrics(metrics, title=f"{run_dir.manifest.model_label} on {split.name} (rescored, {parser.name})")
        print(f"wrote {run_dir.metrics_path(parser.name)}")
        return 0

    def _score_answers(self, args: argparse.Namespace) -> int:
        import json

        from deem_eval.core.splits import Split
        from deem_eval.scoring.answer_files import match_answers
        from deem_eval.scoring.score import Answer, get_parser, score_answers
        from deem_eval.views.display import print_metrics

        if args.split is None:
            raise DeemEvalError("--answers needs --split SPLIT_DIR (the split the answers belong to)")
        split = Split.load(args.split)
        matched = match_answers(split, args.answers)
        parser = get_parser(args.parser)
        samples = {s.id: s for s in split.samples}
        notes = list(matched.notes)
        # An answers file for one POPE subset scored against a three-subset split: score that subset only.
        subsets = {samples[i].group.get("subset") for i in matched.answers}
        all_subsets = {s.group.get("subset") for s in split.samples}
        if matched.answers and subsets < all_subsets:
            samples = {i: s for i, s in samples.items() if s.group.get("subset") in subsets}
            notes.append(f"answers cover subset(s) {', '.join(sorted(map(str, subsets)))} only; "
                         f"scored against those {len(samples)} questions")
        answers = [Answer(i, text) for i, text in sorted(matched.answers.items())]
        metrics = score_answers(samples, answers, parser)
        metrics["answers_file"] = {"path": str(args.answers), **{k: v for k, v in dataclasses.asdict(matched).items()
                                                                 if k not in ("answers", "notes")}, "notes": notes}
        print_metrics(metrics, title=f"{args.answers.name} on {split.name}")
        print(f"matched {len(matched.answers)} of {len(samples)} questions by {matched.matched_by or 'nothing'}; "
              f"{matched.unmatched_rows} answer rows matched no question, {matched.duplicate_rows} duplicates ignored")
        for note in notes:
            print(f"note: {note}")
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(args.out, json.dumps(metrics, indent=2) + "\n")
        return 0


# ---- build -----------------------------------------------------------------------------------------

class BuildCommand:
    help = "Build a benchmark split: deem-eval build NAME [options]"

    def dispatch(self, argv: list[str]) -> int:
        from deem_eval.cli import make_parser

        if not argv or argv[0] in ("-h", "--help"):
            text = "\n".join(["usage: deem-eval build NAME [options]", "", "builders:",
                              *(f"  {name}" for name in BUILDERS.names()), "",
                              "Run `deem-eval build NAME --help` for a builder's options."])
            print(text, file=sys.stdout if argv else sys.stderr)
            return 0 if argv else 2                   # no name is a usage error; --help is not
        builder = BUILDERS.get(argv[0])()
        parser = make_parser(f"deem-eval build {argv[0]}", builder)
        return int(builder.run(parser.parse_args(argv[1:])) or 0)


# ---- list ------------------------------------------------------------------------------------------

class ListCommand:
    help = ("List registered plug-ins (names only, without importing them, unless --details or a NAME). "
            "`deem-eval list models hf` shows that adapter's options.")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("kind", nargs="?", choices=sorted(ALL), help="what to list (default: everything)")
        parser.add_argument("name", nargs="?", help="one entry of KIND: show its description and options")
        parser.add_argument("--details", action="store_true", help="import each entry and show its options")

    def run(self, args: argparse.Namespace) -> int:
        if args.name is not None:
            print(entry_help(ALL[args.kind], args.name, _FLAGS.get(args.kind, "")))
            return 0
        kinds = [args.kind] if args.kind else sorted(ALL)
        for kind in kinds:
            registry = ALL[kind]
            print(f"{kind}:")
            for name in registry.names():
                if not args.details:
                    print(f"  {name}")
                    continue
                obj = registry.get(name)
                doc = (getattr(obj, "description", None) or getattr(obj, "help", None) or obj.__doc__ or "").strip().splitlines()
                print(f"  {name:<22} {doc[0] if doc else ''}")
                config = getattr(obj, "Config", None)
                if isinstance(config, type) and dataclasses.is_dataclass(config):
                    for line in format_options(config, "      "):
                        print(line)
        return 0


_FLAGS = {"models": "-M", "benchmarks": "-B"}


# ---- verify ----------------------------------------------------------------------------------------

class VerifyCommand:
    help = "Recompute a split's samples fingerprint and image hashes and say what differs (exit 1 if anything)."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("split_dir", type=_path)
        parser.add_argument("--check-images", action="store_true",
                            help="also check that every referenced source image exists")

    def run(self, args: argparse.Namespace) -> int:
        from deem_eval.core.verify import verify_split

        report = verify_split(args.split_dir, check_sources=args.check_images)
        for line in report.lines():
            print(line)
        return 0 if report.ok else 1


def _stderr(text: str) -> None:
    print(text, file=sys.stderr)
