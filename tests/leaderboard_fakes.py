"""Fake run directories for leaderboard / report tests, written through the real code paths.

Splits are made with Split.create + save, runs with RunDir (manifest + samples.jsonl + failures.jsonl)
and scored with deem_eval.run.runner.finalize, so metrics.json has exactly the format real runs have.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from deem_eval.core.rng import derive_rng
from deem_eval.core.splits import BuilderInfo, Sample, Split
from deem_eval.run.rundir import Failure, RunDir, RunManifest, SampleRecord
from deem_eval.run.runner import finalize
from deem_eval.scoring.parsing import STRICT

Answerer = Callable[[Sample], str]


def save_split(directory: Path, name: str, benchmark: str, samples: Iterable[Sample]) -> Split:
    split = Split.create(name=name, benchmark=benchmark, samples=samples, image_root=".",
                         builder=BuilderInfo("fake", {"name": name}, 0))
    return split.save(directory)


def pope_samples(n_images: int = 20, prefix: str = "pope-fake") -> list[Sample]:
    """Per image and subset: one yes and one no question (POPE's structure, shrunk)."""
    out = []
    for subset in ("random", "popular", "adversarial"):
        for i in range(n_images):
            for answer, obj in (("yes", "dog"), ("no", f"{subset[:3]}-object")):
                out.append(Sample(f"{prefix}/{subset}/{i:04d}/{answer}", f"img{i:04d}.jpg",
                                  f"Is there a {obj} in the image?", answer,
                                  {"subset": subset, "object": obj, "image_id": str(i)}))
    return out


def robustvqa_samples(n_images: int = 20, prefix: str = "robustvqa-fake") -> list[Sample]:
    out = []
    for subset in ("a", "r", "v2"):
        for i in range(n_images):
            for answer, cls in (("yes", "goose"), ("no", "drake")):
                out.append(Sample(f"{prefix}/{subset}/{i:04d}/{answer}", f"imagenet-{subset}/{i:04d}.jpg",
                                  f"Is {cls} the main object in this image? Please answer yes or no.", answer,
                                  {"subset": subset, "class": cls, "image_id": f"{subset}{i}"}))
    return out


def corrupted_samples(n_images: int = 10, corruptions=("gaussian_noise", "motion_blur"), severities=(1, 3, 5),
                      prefix: str = "pope-c-fake") -> list[Sample]:
    """Clean rows (corruption none, severity 0) plus every corruption × severity of the same questions."""
    out = []
    variants = [("none", 0)] + [(c, s) for c in corruptions for s in severities]
    for corruption, severity in variants:
        for i in range(n_images):
            for answer in ("yes", "no"):
                out.append(Sample(f"{prefix}/{corruption}/{severity}/{i:04d}/{answer}",
                                  f"{corruption}/{severity}/img{i:04d}.jpg", "Is there a dog in the image?", answer,
                                  {"subset": "random", "corruption": corruption, "severity": severity,
                                   "image_id": str(i)}))
    return out


def synth_samples(n: int = 30, prefix: str = "synth-fake") -> list[Sample]:
    return [Sample(f"{prefix}/{i:04d}/{a}", f"{i:04d}.png", "Is there a circle in the image?", a,
                   {"object": "circle", "image_id": str(i)}) for i in range(n) for a in ("yes", "no")]


def accuracy_answerer(label: str, accuracy: float, yes_bias: float = 0.5) -> Answerer:
    """Right with probability about `accuracy` (hash-derived per id) on a balanced split; `yes_bias` is the
    share of the errors that are false "yes" answers (0.5: unbiased, 1: every error is a hallucination)."""
    def answer(sample: Sample) -> str:
        rng = derive_rng(0, "fake-answer", label, sample.id)
        share = yes_bias if sample.answer == "no" else 1.0 - yes_bias
        p_wrong = min(1.0, max(0.0, 2.0 * (1.0 - accuracy) * share))
        if rng.random() < p_wrong:
            return "no" if sample.answer == "yes" else "yes"
        return sample.answer
    return answer


def make_run(root: Path, split: Split, label: str, answerer: Answerer, *, model: str | None = None,
             started: str = "2026-01-01T00:00:00.000000Z", finished: str | None = None, answer_only: int | None = None,
             fail_ids: Iterable[str] = (), limit: int | None = None, name: str | None = None,
             output_template: str = "{}.") -> Path:
    """A scored run directory of `label` on `split`; `answer_only` leaves the rest unanswered."""
    path = root / (name or f"{started[:19].replace(':', '')}_{label}_{split.name}")
    manifest = RunManifest(
        run_key=f"{label}-{split.fingerprint[:8]}", model=model or label, model_label=label, adapter_config={},
        split_name=split.name, split_fingerprint=split.fingerprint, split_dir=str(split.directory),
        benchmark=split.meta.benchmark, seed=0, limit=limit, batch_size=8, scoring="generate", parser="strict",
        deem_eval_version="test", git_sha=None, library_versions={}, device="cpu", started_utc=started,
        finished_utc=finished or started.replace("00.000000Z", "59.000000Z"))
    run = RunDir.create(path, manifest)
    from deem_eval.run.runner import select_samples

    selected = select_samples(split, limit)
    fail = set(fail_ids)
    todo = [s for s in selected if s.id not in fail]
    if answer_only is not None:
        todo = todo[:answer_only]
    records = [SampleRecord(s.id, output_template.format(answerer(s).capitalize()),
                            answerer(s), s.answer, None, 0.01) for s in todo]
    run.append_records(records)
    run.append_failures(Failure(i, "image", "fake: unreadable image") for i in sorted(fail))
    complete = answer_only is None and not fail
    if not complete:
        run.manifest.finished_utc = None
        run.write_manifest()
    finalize(run, split, STRICT, selected)
    return path


def paper_world(root: Path, models: dict[str, float], n_images: int = 20, runs_dir: str = "runs"
                ) -> tuple[Path, Split, Split]:
    """A POPE and a RobustVQA split under `root` and, for each (label, accuracy) of `models`, one run on
    each, in root/runs_dir: the smallest world with the paper's six columns."""
    pope = save_split(root / "pope", "pope-t", "pope", pope_samples(n_images))
    rvqa = save_split(root / "rvqa", "rvqa-t", "robustvqa", robustvqa_samples(n_images))
    runs = root / runs_dir
    for label, acc in models.items():
        for split in (pope, rvqa):
            make_run(runs, split, label, accuracy_answerer(label, acc))
    return runs, pope, rvqa
