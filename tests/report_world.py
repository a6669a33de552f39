"""A small set of fake runs covering every report section (POPE, RobustVQA, a corrupted split)."""

from __future__ import annotations

from pathlib import Path

from leaderboard_fakes import (
    accuracy_answerer,
    corrupted_samples,
    make_run,
    pope_samples,
    robustvqa_samples,
    save_split,
)

MODELS = {"deem-7b": (0.8, 0.5), "llava-1.5-7b": (0.75, 0.85), "always-yes": None}


def make_world(root: Path) -> Path:
    runs = root / "runs"
    pope = save_split(root / "pope", "pope-fake", "pope", pope_samples(15))
    rvqa = save_split(root / "rvqa", "robustvqa-fake", "robustvqa", robustvqa_samples(15))
    popec = save_split(root / "popec", "pope-c-fake", "pope-c", corrupted_samples(8, severities=(1, 3, 5)))
    for label, spec in MODELS.items():
        for split in (pope, rvqa):
            answer = (lambda s: "yes") if spec is None else accuracy_answerer(label, *spec)
            make_run(runs, split, label, answer)
    for label in ("deem-7b", "llava-1.5-7b"):
        acc, bias = MODELS[label]

        def answer(sample, label=label, acc=acc, bias=bias):
            severity = int(sample.group["severity"])
            return accuracy_answerer(label, acc - 0.05 * severity, min(1.0, bias + 0.05 * severity))(sample)
        make_run(runs, popec, label, answer)
    return runs
