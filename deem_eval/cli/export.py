"""`deem-eval export SPLIT_DIR --format hf|lmms-eval --out DIR`: a split for other tools.

- `hf`: a `datasets.Dataset` (columns id, image, question, answer, group, image_file; see
  deem_eval.core.hf_dataset) written with `save_to_disk(DIR)`; `--push-to-hub REPO` also pushes it.
  `deem-eval build hf-split --from-hf DIR --out SPLIT` makes the split again (same samples and image bytes).
- `lmms-eval`: a task directory for `lmms-eval --tasks NAME --include_path DIR`: the dataset as parquet in
  DIR/data/test-00000-of-00001.parquet (lmms-eval's `load_dataset(dataset_path)` reads a local parquet folder
  in every version, offline), DIR/NAME.yaml and DIR/utils.py (doc_to_visual / doc_to_text / doc_to_target /
  process_results: accuracy over yes/no answers, each record carrying the sample id so the samples log can be
  scored back with `deem-eval score --split SPLIT --answers samples_NAME.jsonl`).
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from deem_eval.core.errors import DeemEvalError

UTILS_PY = '''"""lmms-eval helpers for a task exported by `deem-eval export --format lmms-eval` (split {split_name})."""

import re

_WORD = re.compile(r"[a-z]+")


def doc_to_visual(doc):
    return [doc["image"].convert("RGB")]


def doc_to_text(doc, lmms_eval_specific_kwargs=None):
    kwargs = lmms_eval_specific_kwargs or {{}}
    return f"{{kwargs.get('pre_prompt', '')}}{{doc['question']}}{{kwargs.get('post_prompt', '')}}"


def doc_to_target(doc):
    return doc["answer"]


def parse_yes_no(text):
    """The first 'yes' or 'no' word of a reply ('' when it has neither)."""
    for word in _WORD.findall(str(text).lower()):
        if word in ("yes", "no"):
            return word
    return ""


def process_results(doc, results):
    prediction = results[0] if results else ""
    return {{"accuracy": {{"id": doc["id"], "prediction": prediction,
                          "correct": parse_yes_no(prediction) == doc["answer"]}}}}


def accuracy(items):
    return sum(bool(item["correct"]) for item in items) / len(items) if items else 0.0
'''


def task_name(split_name: str) -> str:
    name = re.sub(r"[^a-z0-9]+", "_", split_name.lower()).strip("_")
    return f"deem_{name}" if name else "deem_split"


def task_yaml(name: str, dataset_path: str, split_name: str, fingerprint: str, *, post_prompt: str,
              max_new_tokens: int) -> str:
    """The task YAML text; values are JSON-quoted, which YAML reads as the same strings."""
    q = json.dumps
    return "\n".join([
        f"# lmms-eval task exported by deem-eval from split {split_name} (samples sha256 {fingerprint})",
        f"# run: lmms-eval --model MODEL --tasks {name} --include_path DIR_OF_THIS_FILE",
        f"task: {q(name)}",
        f"dataset_path: {q(dataset_path)}",
        "test_split: test",
        "output_type: generate_until",
        "doc_to_visual: !function utils.doc_to_visual",
        "doc_to_text: !function utils.doc_to_text",
        "doc_to_target: !function utils.doc_to_target",
        "process_results: !function utils.process_results",
        "generation_kwargs:",
        f"  max_new_tokens: {int(max_new_tokens)}",
        "  temperature: 0",
        "  top_p: 1.0",
        "  num_beams: 1",
        "  do_sample: false",
        "metric_list:",
        "  - metric: accuracy",
        "    aggregation: !function utils.accuracy",
        "    higher_is_better: true",
        "lmms_eval_specific_kwargs:",
        "  default:",
        '    pre_prompt: ""',
        f"    post_prompt: {q(post_prompt)}",
        "metadata:",
        "  version: 0.0",
        f"  deem_eval_split: {q(split_name)}",
        f"  deem_eval_samples_sha256: {q(fingerprint)}",
        "",
    ])


def export_lmms_eval(split: Any, out_dir: Path, *, name: str | None = None, post_prompt: str = "",
                     max_new_tokens: int = 16) -> tuple[str, Path]:
    """Write the lmms-eval task directory; returns (task name, YAML path)."""
    from deem_eval.core.hf_dataset import build_dataset

    name = name or task_name(split.name)
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise DeemEvalError(f"--task-name {name!r}: use letters, digits, '_', '-' and '.' only")
    _check_empty(out_dir)
    data_dir = out_dir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    with build_dataset(split) as data:
        data.to_parquet(str(data_dir / "test-00000-of-00001.parquet"))
    (out_dir / "utils.py").write_text(UTILS_PY.format(split_name=split.name))
    yaml_path = out_dir / f"{name}.yaml"
    yaml_path.write_text(task_yaml(name, str(data_dir.resolve()), split.name, split.fingerprint,
                                   post_prompt=post_prompt, max_new_tokens=max_new_tokens))
    return name, yaml_path


def _check_empty(out_dir: Path) -> None:
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise DeemEvalError(f"{out_dir}: exists and is not an empty directory; choose a new --out directory")


class ExportCommand:
    help = ("Export a split for other tools: a Hugging Face datasets.Dataset (save_to_disk, optionally pushed "
            "to the hub) or an lmms-eval task (dataset + task YAML + utils.py).")
    examples = """examples:
  deem-eval export splits/pope-coco --format hf --out exported/pope-coco-hf
  deem-eval build hf-split --from-hf exported/pope-coco-hf --out splits/pope-coco-again
  deem-eval export splits/pope-coco --format hf --out exported/pope-coco-hf --push-to-hub me/pope-coco
  deem-eval export splits/pope-coco --format lmms-eval --out tasks/pope-coco
  lmms-eval --model llava --tasks deem_pope_coco --include_path tasks/pope-coco
"""

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("split_dir", type=lambda t: Path(t).expanduser(), help="a built split directory")
        parser.add_argument("--format", required=True, choices=("hf", "lmms-eval"),
                            help="hf: datasets.Dataset (save_to_disk); lmms-eval: a task directory")
        parser.add_argument("--out", required=True, type=lambda t: Path(t).expanduser(),
                            help="output directory (new or empty)")
        parser.add_argument("--push-to-hub", metavar="REPO",
                            help="with --format hf: also push the dataset to this hub repo (needs network and "
                                 "a token: huggingface-cli login or HF_TOKEN)")
        parser.add_argument("--private", action="store_true", help="with --push-to-hub: make the repo private")
        parser.add_argument("--task-name", help="with --format lmms-eval: the task name (default deem_<split name>)")
        parser.add_argument("--post-prompt", default="",
                            help="with --format lmms-eval: text appended to every question (default none)")
        parser.add_argument("--max-new-tokens", type=int, default=16,
                            help="with --format lmms-eval: generation_kwargs.max_new_tokens (default 16)")

    def run(self, args: argparse.Namespace) -> int:
        from deem_eval.core.splits import Split

        if args.format != "hf" and args.push_to_hub:
            raise DeemEvalError("--push-to-hub goes with --format hf")
        split = Split.load(args.split_dir)
        if args.format == "lmms-eval":
            name, yaml_path = export_lmms_eval(split, args.out, name=args.task_name, post_prompt=args.post_prompt,
                                               max_new_tokens=args.max_new_tokens)
            print(f"wrote lmms-eval task {name!r} ({split.meta.count} samples): {yaml_path}")
            print(f"run: lmms-eval --model MODEL --tasks {name} --include_path {args.out}")
            return 0
        from deem_eval.core.hf_dataset import save_split_dataset

        data = save_split_dataset(split, args.out)
        print(f"wrote {len(data)} rows of split {split.name!r} to {args.out} (datasets.load_from_disk)")
        if args.push_to_hub:
            push(data, args.push_to_hub, private=args.private)
            print(f"pushed to https://huggingface.co/datasets/{args.push_to_hub}")
        return 0


def push(data: Any, repo: str, *, private: bool = False) -> None:
    """`data.push_to_hub(repo)`, with one clear message when offline or not logged in."""
    from deem_eval.core.hub import hf_offline, hub_status

    if hf_offline():
        raise DeemEvalError(f"--push-to-hub {repo}: HF_HUB_OFFLINE is set; the dataset is saved locally, push it "
                            "later with `datasets.load_from_disk(DIR).push_to_hub(REPO)`")
    reason = hub_status()
    if reason is not None:
        raise DeemEvalError(f"--push-to-hub {repo}: the hub cannot be reached ({reason}); the dataset is saved "
                            "locally, push it later with `datasets.load_from_disk(DIR).push_to_hub(REPO)`")
    try:
        data.push_to_hub(repo, private=private)
    except Exception as exc:  # noqa: BLE001 - auth, network and repo errors of the hub client
        raise DeemEvalError(f"--push-to-hub {repo}: {type(exc).__name__}: {exc} (logged in? `huggingface-cli "
                            "login` or set HF_TOKEN)") from None
