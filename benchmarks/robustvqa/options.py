"""Options of a RobustVQA build, and the question templates (shared by the builder and the miners)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from deem_eval.core.errors import DeemEvalError

BENCHMARK = "robustvqa"
PAPER_TEMPLATE = "Is {class} the main object in this image? Please answer yes or no."
#: The wording in DEEM's evaluation code (imagenet_datasets.py), typo and missing period included.
DEEM_CODE_TEMPLATE = "Is {class} the main object in this image? Please anwser yes or no"
TEMPLATES = {"paper": PAPER_TEMPLATE, "deem-code": DEEM_CODE_TEMPLATE}
DEFAULT_PROMPT = "A photo of a {class}"
MAX_LISTED = 1000   # skipped images listed one by one in split.json (all are counted)
#: `deem-eval`: this project's mining (centre crop, normalised text, fp16 on CUDA, same-name negatives excluded).
#: `deem`: DEEM's convert_imagenet_for_robustvqa_test.py as written (squash, unnormalised text, fp32, top-1/top-2).
PROTOCOLS = ("deem-eval", "deem")
#: File globs of DEEM's script per ImageNet subset (case-sensitive, one folder level).
DEEM_GLOBS = {"a": "*/*.jpg", "r": "*/*.jpg", "v2": "*/*.jpeg"}


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
    protocol: Literal["deem-eval", "deem"] = "deem-eval"

    def check(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise DeemEvalError(f"--protocol {self.protocol!r}: choose {' or '.join(PROTOCOLS)}")
        if self.protocol == "deem":
            self._check_deem()
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

    def _check_deem(self) -> None:
        """`--protocol deem` is DEEM's recipe exactly: options that would change it are refused, not ignored."""
        clashes = [flag for flag, ok in (
            ("--miner clip", self.miner == "clip"),
            ("--candidates all", self.candidates == "all"),
            ("--keep all", self.keep == "all"),
            ("--class-names deem", self.class_names == "deem"),
            ("--template deem-code", self.template == DEEM_CODE_TEMPLATE),
            (f"--prompt {DEFAULT_PROMPT!r}", self.prompt == DEFAULT_PROMPT),
            ("--dtype fp32", self.dtype in ("auto", "fp32", "float32"))) if not ok]
        if clashes:
            raise DeemEvalError(f"--protocol deem fixes {', '.join(clashes)}: drop the other value(s) or use "
                                "--protocol deem-eval")

    @property
    def clip_dtype(self) -> str:
        """The dtype asked of the CLIP loader: DEEM's script runs CLIP in fp32."""
        return "float32" if self.protocol == "deem" else self.dtype


def deem_options(**overrides) -> BuildOptions:
    """BuildOptions of `--protocol deem` (its template filled in), with other fields from `overrides`."""
    return BuildOptions(**{"protocol": "deem", "template": DEEM_CODE_TEMPLATE, **overrides})


DEFAULT_SPLIT_SUBDIR = ("splits", "robustvqa")


def default_out() -> Path:
    """Where a built split goes by default; the `robustvqa` benchmark uses a split found here."""
    from deem_eval.core.benchmark import deem_eval_home

    return deem_eval_home().joinpath(*DEFAULT_SPLIT_SUBDIR)
