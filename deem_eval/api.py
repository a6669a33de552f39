"""The Python API: `evaluate` runs one model over one or more benchmarks, exactly as `deem-eval run` does (the
command is a thin layer over these functions), and returns typed results.

    from deem_eval import evaluate
    result = evaluate("random", "synthscenes-yesno", model_options={"p_yes": 0.7}, limit=40)
    print(result.runs[0].metrics["overall"]["accuracy"], result.runs[0].run_dir)

Options are typed values or the strings the command line takes (`{"scoring": "logits"}`); an unknown option
is a `DeemEvalError` that lists the valid ones, as on the command line.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deem_eval.core.adapters import ModelAdapter
from deem_eval.core.errors import DeemEvalError
from deem_eval.core.options import parse_options, reject_packed
from deem_eval.core.registry import BENCHMARKS, MODELS
from deem_eval.core.splits import Split
from deem_eval.run.runner import RunOptions, RunResult, distributed_env, run
from deem_eval.scoring.parsing import Parser
from deem_eval.scoring.score import get_parser


@dataclass(frozen=True)
class Evaluation:
    """What `evaluate` returns: the adapter's leaderboard label and one run per benchmark split, in order."""

    model: str
    label: str
    runs: list[RunResult]


@dataclass(frozen=True)
class Plan:
    """Everything a run needs, checked before anything is answered: the adapter, the splits, the parser."""

    adapter: ModelAdapter
    splits: list[Split]
    parser: Parser
    options: RunOptions

    def run(self, split: Split) -> RunResult:
        return run(self.adapter, split, self.parser, self.options)


def evaluate(model: str, bench: str | Sequence[str] | None = None, *,
             model_options: Mapping[str, Any] | None = None, bench_options: Mapping[str, Any] | None = None,
             split_dir: Path | str | None = None, limit: int | None = None, batch_size: int = 8, seed: int = 0,
             out: Path | str = Path("results/runs"), run_dir: Path | str | None = None, parser: str = "strict",
             progress: bool = False, force: bool = False, workers: int = 0) -> Evaluation:
    """Run `model` on each benchmark (or on the split in `split_dir`), resuming an unfinished identical run.

    An identical complete run already in `out` is returned as it is (with a note) unless `force`.
    `seed` is the run seed, also given to the adapter when its options have a `seed` and none is set.
    `workers` > 0 decodes and prepares batches in that many processes (adapters with a `preparer`, e.g. hf and
    deem; the answers do not change); 0 loads images in one background thread.
    Every split is loaded and every option checked before the model is built (the slow part).
    """
    plan = prepare(model, bench, model_options=model_options, bench_options=bench_options, split_dir=split_dir,
                   limit=limit, batch_size=batch_size, seed=seed, out=out, run_dir=run_dir, parser=parser,
                   progress=progress, force=force, workers=workers)
    return Evaluation(model, plan.adapter.label, [plan.run(split) for split in plan.splits])


def prepare(model: str, bench: str | Sequence[str] | None = None, *,
            model_options: Mapping[str, Any] | None = None, bench_options: Mapping[str, Any] | None = None,
            split_dir: Path | str | None = None, limit: int | None = None, batch_size: int = 8, seed: int = 0,
            out: Path | str = Path("results/runs"), run_dir: Path | str | None = None, parser: str = "strict",
            progress: bool = False, force: bool = False, workers: int = 0) -> Plan:
    """Check every option, load every split, then build the adapter: what `evaluate` (and `deem-eval run`,
    which prints each result as it comes) runs."""
    if batch_size < 1:
        raise DeemEvalError(f"--batch-size must be at least 1, got {batch_size}")
    if workers < 0:
        raise DeemEvalError(f"--workers must be 0 or more, got {workers}")
    benches = bench_names([bench] if isinstance(bench, str) else list(bench or []))
    split_path = None if split_dir is None else Path(split_dir).expanduser()
    run_path = None if run_dir is None else Path(run_dir).expanduser()
    if len(benches) > 1 and (split_path or run_path):
        flag = "--split-dir" if split_path else "--run-dir"
        raise DeemEvalError(f"{flag} names one run's split or directory; with several benchmarks "
                            f"({', '.join(benches)}) give one benchmark per run, or drop {flag}")
    if bench_options and not benches:
        raise DeemEvalError("-B options belong to a benchmark; give --bench NAME (or bench= in the Python API) with them")
    answer_parser = get_parser(parser)
    per_bench = split_bench_options(benches, dict(bench_options or {}))
    if benches:
        splits = [load_benchmark_split(b, per_bench.get(b, {}), split_path) for b in benches]
    else:
        splits = [load_benchmark_split(None, {}, split_path)]
    adapter = build_adapter(model, dict(model_options or {}), seed=seed)
    rank, world = distributed_env()
    options = RunOptions(batch_size=batch_size, limit=limit, seed=seed, out=Path(out).expanduser(),
                         run_dir=run_path, progress=progress, rank=rank, world_size=world, force=force,
                         workers=workers)
    return Plan(adapter, splits, answer_parser, options)


def bench_names(values: Sequence[str]) -> list[str]:
    """`--bench a --bench b,c` to [a, b, c]: repeated and comma-separated, duplicates dropped, order kept."""
    names = [name.strip() for value in values for name in value.split(",") if name.strip()]
    return list(dict.fromkeys(names))


def split_bench_options(benches: list[str], values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Give each benchmark the options its Config has. With one benchmark everything goes to it (its own
    parser names the valid keys); with several, a key that none of them has is an error."""
    if len(benches) <= 1:
        return {benches[0]: values} if benches else {}
    fields = {b: {f.name for f in dataclasses.fields(BENCHMARKS.get(b).Config) if f.init} for b in benches}
    valid = set().union(*fields.values())
    unknown = sorted(set(values) - valid)
    if unknown:
        raise DeemEvalError(f"-B {', '.join(unknown)}: no option of benchmarks {', '.join(benches)}. "
                            f"Valid options: {', '.join(sorted(valid)) or '(none)'}")
    return {b: {k: v for k, v in values.items() if k in fields[b]} for b in benches}


def load_benchmark_split(bench: str | None, values: Mapping[str, Any], split_dir: Path | None) -> Split:
    """The split a benchmark name (with its options) stands for, or the one in `split_dir`."""
    if bench is None:
        if split_dir is None:
            raise DeemEvalError("give --bench NAME (deem-eval list benchmarks) or --split-dir DIR")
        return Split.load(split_dir)
    cls = BENCHMARKS.get(bench)
    reject_packed(cls.Config, values, "-B")
    config = parse_options(cls.Config, values, what=f"benchmark {bench!r}")
    return cls(config).load(split_dir=split_dir)


def build_adapter(name: str, values: Mapping[str, Any], *, seed: int | None = None) -> ModelAdapter:
    """The registered adapter `name` built from its options; `seed` fills its `seed` option when unset."""
    cls = MODELS.get(name)
    options = dict(values)
    reject_packed(cls.Config, options, "-M")
    field_names = {f.name for f in dataclasses.fields(cls.Config)}
    if seed is not None and "seed" in field_names and "seed" not in options:
        options["seed"] = seed
    config = parse_options(cls.Config, options, what=f"model {name!r}")
    adapter = cls(config)
    if not isinstance(adapter, ModelAdapter):
        raise DeemEvalError(f"model {name!r} ({cls.__module__}.{cls.__qualname__}) does not derive from "
                            f"deem_eval.core.adapters.ModelAdapter; see docs/extending.md")
    return adapter
