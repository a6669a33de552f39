"""Leaderboard build time at 100 and 2,000 runs, before and after sorting rows by identity (one run, side by side).

    OMP_NUM_THREADS=1 python tests/perf/leaderboard_scaling.py [--runs 100,2000] [--dir /tmp/lb-scale]

Writes N fake scored runs (N models on one small split, through tests/leaderboard_fakes.py, once per N: they are
reused from --dir) and times make_board on them with the old `_sorted` (a list membership test per row:
quadratic in the rows) and the current one. Not a unit test: the numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))

import leaderboard_fakes as fakes  # type: ignore[import-not-found]

from deem_eval.views.leaderboard import make_board, table


def old_sorted(rows, key, descending):
    """table._sorted as it was: `r not in have` compares rows field by field against a list."""
    if key == "model":
        return sorted(rows, key=lambda r: r.model.lower(), reverse=descending)
    valued = [(e.value, r) for r in rows if (e := r.estimate(key)) is not None and e.value is not None]
    have = [r for _, r in valued]
    missing = [r for r in rows if r not in have]
    valued.sort(key=lambda vr: (vr[0], vr[1].model.lower() if not descending else ""), reverse=descending)
    return [r for _, r in valued] + sorted(missing, key=lambda r: r.model.lower())


def world(root: Path, n: int) -> Path:
    runs = root / f"runs-{n}"
    if runs.is_dir() and sum(1 for _ in runs.iterdir()) == n:
        return runs
    split = fakes.save_split(root / f"split-{n}", "synth-scale", "synthscenes-yesno", fakes.synth_samples(6))
    for i in range(n):
        label = f"model{i:04d}"
        fakes.make_run(runs, split, label, fakes.accuracy_answerer(label, 0.5 + (i % 40) / 100))
    return runs


def timed(runs: Path, repeat: int = 2) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        make_board([runs])
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", default="100,2000")
    ap.add_argument("--dir", type=Path, default=Path("/tmp/lb-scale"))
    args = ap.parse_args()
    current = table._sorted
    print(f"{'runs':>6} {'before (s)':>11} {'after (s)':>10}")
    for n in (int(x) for x in args.runs.split(",")):
        runs = world(args.dir, n)
        table._sorted = old_sorted
        before = timed(runs)
        table._sorted = current
        after = timed(runs)
        print(f"{n:>6} {before:>11.2f} {after:>10.2f}")


if __name__ == "__main__":
    main()
