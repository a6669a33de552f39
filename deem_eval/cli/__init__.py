"""The `deem-eval` command line. Each subcommand is a small class (add_arguments + run) loaded on demand,
so `deem-eval list` never imports torch."""

from __future__ import annotations

import argparse
import sys
from importlib import import_module
from pathlib import Path
from typing import Any

from deem_eval.core.errors import DeemEvalError, did_you_mean
from deem_eval.core.registry import COMMAND_PLUGINS
from deem_eval.core.version import __version__

# name -> ("module:Class", one-line help); only the chosen command is imported.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("deem_eval.cli.commands:RunCommand", "run a model on a benchmark (also: deem-eval --model M --bench B)"),
    "score": ("deem_eval.cli.commands:ScoreCommand", "rescore a run, or an answers file made elsewhere, without the model"),
    "leaderboard": ("deem_eval.views.leaderboard:LeaderboardCommand", "compare runs in one table"),
    "report": ("deem_eval.views.report:ReportCommand", "write a self-contained HTML report of runs"),
    "build": ("deem_eval.cli.commands:BuildCommand", "build a benchmark split (deem-eval build NAME --help)"),
    "list": ("deem_eval.cli.commands:ListCommand", "list registered models, benchmarks, parsers, builders, corruptions"),
    "verify": ("deem_eval.cli.commands:VerifyCommand", "recompute a split's fingerprints and image hashes"),
    "export": ("deem_eval.cli.export:ExportCommand",
               "export a split as a Hugging Face dataset (--format hf) or an lmms-eval task (--format lmms-eval)"),
}
# Other subcommands (DEEM's `align` and `train-micro`) are entry points in the `deem_eval.commands` group:
# the command line names no adapter's module.

EPILOG = """examples:
  deem-eval --model random --bench synthscenes-yesno
  deem-eval --model deem --bench robustvqa
  deem-eval run --model hf -M path=llava-hf/llava-1.5-7b-hf -M scoring=logits --bench pope --batch-size 16
  deem-eval score results/runs/<run> --parser pope-official
  deem-eval leaderboard --format md
  deem-eval build pope --coco-annotations instances_val2014.json --images val2014/ --out splits/pope-coco
  deem-eval list models
"""


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version"):
        argv = ["run", *argv]                      # the short form: deem-eval --model M --bench B
    if not argv or argv[0] in ("-h", "--help"):
        print(_top_help())
        return 0
    if argv[0] == "--version":
        print(f"deem-eval {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    try:
        commands = all_commands()
        if name not in commands:
            raise did_you_mean(name, commands, "command")
        command = _load(commands[name])
        if hasattr(command, "dispatch"):            # commands with their own sub-dispatch (build NAME ...)
            return int(command.dispatch(rest) or 0)
        parser = make_parser(f"deem-eval {name}", command)
        if hasattr(command, "extra_help") and ("-h" in rest or "--help" in rest):
            extra = command.extra_help(rest)        # e.g. the options of the adapter named by --model
            if extra:
                parser.epilog = f"{parser.epilog or ''}\n{extra}\n".lstrip("\n")
        args = parser.parse_args(rest)
        return int(command.run(args) or 0)
    except DeemEvalError as exc:
        print(f"deem-eval: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:                         # `deem-eval list | head`: the reader left; not an error
        _silence_stdout()
        return 0
    except KeyboardInterrupt:
        print("deem-eval: interrupted; finished samples are saved, run the same command to resume",
              file=sys.stderr)
        return 130


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not fail on the closed pipe."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def make_parser(prog: str, command: Any) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=command.help,
                                     epilog=getattr(command, "examples", None),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    command.add_arguments(parser)
    return parser


def all_commands() -> dict[str, str]:
    """Every subcommand's "module:Class": the core's, then the registered ones (a core name wins)."""
    plugins = {name: COMMAND_PLUGINS.target(name) for name in COMMAND_PLUGINS.names()}
    return {**plugins, **{name: target for name, (target, _) in COMMANDS.items()}}


def _plugin_help(name: str) -> str:
    """A registered command's one-line help (its class's `summary`, else the first line of `help`)."""
    try:
        cls = COMMAND_PLUGINS.get(name)
    except DeemEvalError as exc:
        return f"(not available: {exc})"
    text = getattr(cls, "summary", None) or str(getattr(cls, "help", "") or "").strip()
    return text.splitlines()[0] if text else ""


def _load(target: str) -> Any:
    module_name, _, attr = target.partition(":")
    try:
        module = import_module(module_name)
    except ImportError as exc:
        raise DeemEvalError(f"this command is not available ({exc})") from exc
    return getattr(module, attr)()


def _top_help() -> str:
    lines = [f"usage: deem-eval COMMAND [options]   (deem-eval {__version__})", "",
             "Perception and hallucination benchmarks from the DEEM paper (RobustVQA, POPE).", "", "commands:"]
    lines += [f"  {name:<12} {help_}" for name, (_, help_) in COMMANDS.items()]
    for name in COMMAND_PLUGINS.names():
        if name not in COMMANDS:
            lines.append(f"  {name:<12} {_plugin_help(name)}")
    lines += ["", "Run `deem-eval COMMAND --help` for a command's options.", "", EPILOG]
    return "\n".join(lines)


def path_arg(text: str) -> Path:
    return Path(text).expanduser()
