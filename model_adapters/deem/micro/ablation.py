"""The paper's CSR ablation at micro scale: DEEM-micro vs DEEM-micro* (no CSR), measured and written down.

    python -m deem_eval.model_adapters.deem.micro.ablation --out results/micro [--train-dir runs/micro]

Runs both shipped models and the baselines (random, always-yes; micro-CLIP zero-shot on RobustVQA) on
RobustVQA-mini (A / R / V), the bundled POPE (random / popular / adversarial), robustvqa-c and pope-c, and on
RobustVQA-mini and POPE rebuilt with benchmark seeds no model was ever checked on (held-out seeds: 11, 12),
through the same command line a user types. Writes `ablation.md` and `ablation.json`: accuracy, F1,
yes-ratio with 95 % intervals per subset, McNemar p (DEEM-micro vs DEEM-micro*) per split, and - from the
training run's manifest, when given - the training cost with and without CSR (the paper's Table 3 shape).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

MODELS: dict[str, list[str]] = {
    "deem-micro": ["--model", "deem", "-M", "preset=deem-micro"],
    "deem-micro*": ["--model", "deem", "-M", "preset=deem-micro-nocsr"],
    "micro-clip": ["--model", "clip", "-M", "path=micro-clip"],
    "random": ["--model", "random"],
    "always-yes": ["--model", "always-yes"],
}
BENCHES: dict[str, list[str]] = {
    "robustvqa": ["--bench", "robustvqa"],
    "pope": ["--bench", "pope"],
    "robustvqa-c": ["--bench", "robustvqa-c"],
    "pope-c": ["--bench", "pope-c"],
    "robustvqa@seed11": ["--bench", "robustvqa", "-B", "source=mini", "-B", "seed=11"],
    "pope@seed12": ["--bench", "pope", "-B", "seed=12"],
}
SKIP = {("micro-clip", b) for b in ("pope", "pope-c", "pope@seed12", "robustvqa-c")}
METRICS = ("accuracy", "f1", "yes_ratio")


def run_all(runs: Path, models=MODELS, benches=BENCHES, *, reuse: bool = False) -> dict[tuple[str, str], Path]:
    """Run every (model, benchmark) pair into `runs/`; with `reuse`, a finished run there is read, not redone."""
    from deem_eval.cli import main

    out: dict[tuple[str, str], Path] = {}
    for bench, bargs in benches.items():
        for model, margs in models.items():
            if (model, bench) in SKIP:
                continue
            target = runs / f"{model.replace('*', '-star')}__{bench.replace('@', '-')}"
            if reuse and (target / "metrics.json").is_file():
                out[(model, bench)] = target
                continue
            code = main(["run", *margs, *bargs, "--run-dir", str(target), "--no-progress"])
            if code != 0:
                raise SystemExit(f"ablation: {model} on {bench} failed (exit {code})")
            out[(model, bench)] = target
    return out


def _estimate(metrics: dict[str, Any], name: str) -> dict[str, float] | None:
    value = metrics.get(name)
    return value if isinstance(value, dict) else None


def _fmt(est: dict[str, Any] | None) -> str:
    if not est or est.get("value") is None:
        return "–"
    low, high = est.get("ci_low"), est.get("ci_high")
    band = f" [{100 * low:.1f}, {100 * high:.1f}]" if low is not None and high is not None else ""
    return f"{100 * est['value']:.1f}{band}"


def summarise(runs: dict[tuple[str, str], Path]) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    for (model, bench), path in runs.items():
        metrics = json.loads((path / "metrics.json").read_text(encoding="utf-8"))
        cells = {"overall": {m: _estimate(metrics["overall"], m) for m in METRICS}}
        for field in ("subset", "corruption", "severity"):
            for value, sub in (metrics.get("groups", {}).get(field) or {}).items():
                cells[f"{field}={value}"] = {m: _estimate(sub, m) for m in METRICS}
        rows.setdefault(bench, {})[model] = cells
    return rows


def paired(runs: dict[tuple[str, str], Path]) -> dict[str, Any]:
    from deem_eval.analysis.paired import compare
    from deem_eval.analysis.scored_runs import SplitCache, load_scored
    from deem_eval.run.catalog import load_run

    out: dict[str, Any] = {}
    splits = SplitCache()
    for bench in {b for _, b in runs}:
        a, b = runs.get(("deem-micro", bench)), runs.get(("deem-micro*", bench))
        if a is None or b is None:
            continue
        c = compare(load_scored(load_run(a), splits), load_scored(load_run(b), splits))
        out[bench] = {"n": c.n, "difference": c.difference.value, "low": c.difference.ci_low, "high": c.difference.ci_high,
                      "mcnemar_p": c.mcnemar.p_exact, "a_only": c.mcnemar.a_only, "b_only": c.mcnemar.b_only}
    return out


def training_cost(train_dir: Path | None) -> dict[str, Any]:
    if train_dir is None or not (train_dir / "train_micro.json").is_file():
        return {}
    manifest = json.loads((train_dir / "train_micro.json").read_text(encoding="utf-8"))
    cost: dict[str, Any] = {"phases_seconds": {k: v["seconds"] for k, v in manifest["phases"].items()}}
    for variant in ("deem-micro", "deem-micro-nocsr"):
        for stage in ("pretrain", "sft"):
            hist = train_dir / variant / stage / "history.jsonl"
            if hist.is_file():
                secs = [json.loads(line)["seconds"] for line in hist.read_text(encoding="utf-8").splitlines()]
                cost[f"{variant}/{stage}"] = {"steps": len(secs), "s_per_step": sum(secs) / len(secs)}
    return cost


def render(rows: dict[str, Any], pairs: dict[str, Any], cost: dict[str, Any], command: str) -> str:
    lines = ["# DEEM-micro vs DEEM-micro* (no CSR): the paper's ablation at micro scale", "",
             f"Regenerate: `{command}`", "",
             "Cells: percent with 95% intervals (Wilson; F1 by bootstrap). Parser: strict (default).", ""]
    for bench, models in rows.items():
        keys = sorted({k for cells in models.values() for k in cells}, key=lambda k: (k != "overall", k))
        lines += [f"## {bench}", "", "| model | slice | accuracy | F1 | yes-ratio |", "|---|---|---|---|---|"]
        for model, cells in models.items():
            for key in keys:
                if key in cells:
                    c = cells[key]
                    lines.append(f"| {model} | {key} | {_fmt(c['accuracy'])} | {_fmt(c['f1'])} | "
                                 f"{_fmt(c['yes_ratio'])} |")
        if bench in pairs:
            p = pairs[bench]
            lines += ["", (f"DEEM-micro − DEEM-micro*: {100 * p['difference']:+.1f} points "
                          f"[{100 * p['low']:+.1f}, {100 * p['high']:+.1f}] (paired bootstrap over images), "
                          f"McNemar exact p = {p['mcnemar_p']:.3g} (n = {p['n']}; {p['a_only']} right only with "
                          f"CSR, {p['b_only']} only without).")]
        lines.append("")
    if cost:
        lines += ["## Training cost (2-core CPU)", "", "| phase | steps | s/step |", "|---|---|---|"]
        for key, value in cost.items():
            if key != "phases_seconds":
                lines.append(f"| {key} | {value['steps']} | {value['s_per_step']:.3f} |")
        lines += ["", "Phase wall times (s): " + ", ".join(f"{k} {v}" for k, v in cost["phases_seconds"].items()), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deem_eval.model_adapters.deem.micro.ablation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("results/micro"))
    parser.add_argument("--runs", type=Path, help="where the runs go (default OUT/runs, git-ignored)")
    parser.add_argument("--train-dir", type=Path, help="the train-micro run, for the training-cost table")
    parser.add_argument("--reuse", action="store_true", help="read finished runs already in --runs instead of redoing")
    args = parser.parse_args(argv)
    from deem_eval.core.atomic import atomic_write_text

    runs = run_all(args.runs or args.out / "runs", reuse=args.reuse)
    rows, pairs = summarise(runs), paired(runs)
    cost = training_cost(args.train_dir)
    command = "python -m deem_eval.model_adapters.deem.micro.ablation --out " + str(args.out) + (
        f" --train-dir {args.train_dir}" if args.train_dir else "")
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "ablation.json", json.dumps({"results": rows, "paired": pairs, "training": cost,
                                                             "command": command}, indent=1, default=str) + "\n")
    atomic_write_text(args.out / "ablation.md", render(rows, pairs, cost, command))
    print(f"ablation: wrote {args.out / 'ablation.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
