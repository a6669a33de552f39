"""Options of a RobustVQA build, and the question templates (shared by the builder and the miners)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from deem_eval.errors import DeemEvalError

BENCHMARK = "robustvqa"
PAPER_TEMPLATE = "Is {class} the main object in this image? Please answer yes or no."
#: The wording in DEEM's evaluation code (imagenet_datasets.py), typo and missing period included.
DEEM_CODE_TEMPLATE = "Is {class} the main object in this image? Please anwser yes or no"
TEMPLATES = {"paper": PAPER_TEMPLATE, "deem-code": DEEM_CODE_TEMPLATE}
DEFAULT_PROMPT = "A photo of a {class}"
MAX_LISTED = 1000   # skipped images listed one by one in split.json (all are counted)


@dataclass(frozen=True)
class BuildOptions:
    miner: str = "clip"
    clip_model: str = "openai/clip-vit-large-patch14-336"
    candidates: Literal["all", "subset"] = "all"
    keep: Literal["all", "clip-wrong"] = "all"
    class_names: Literal["deem", "openai"] = "deem"
    template: str = PAPER_TEMPLATE
    prompt: str = DEFAULT_PROMPT
    device: str = "auto"
    dtype: str = "auto"
    batch_size: int = 64
    workers: int = 4
    seed: int = 0
    cache_dir: Path | None = None
    name: str | None = None
    progress: bool = True

    def check(self) -> None:
        if "{class}" not in self.template:
            raise DeemEvalError(f"--template {self.template!r} must contain {{class}} where the class name goes")
        if "{class}" not in self.prompt:
            raise DeemEvalError(f"--prompt {self.prompt!r} must contain {{class}}")
        if self.candidates not in ("all", "subset"):
            raise DeemEvalError(f"--candidates {self.candidates!r}: choose all or subset")
        if self.keep not in ("all", "clip-wrong"):
            raise DeemEvalError(f"--keep {self.keep!r}: choose all or clip-wrong")
        if self.batch_size < 1 or self.workers < 1:
            raise DeemEvalError("--batch-size and --workers must be at least 1")
