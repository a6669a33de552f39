"""The `deem` model adapter: DEEM answering yes/no questions with its VQA prompt, batched, no diffusion.

    deem-eval --model deem --bench robustvqa                       # the bundled DEEM-micro
    deem-eval --model deem -M preset=deem-micro-nocsr --bench pope  # its ablation without CSR (DEEM*)
    deem-eval --model deem -M preset=deem-tiny --bench synthscenes-yesno
    deem-eval --model deem -M checkpoint=runs/align/final --bench robustvqa -M scoring=both

With neither a checkpoint nor a preset, the adapter uses DEEM-micro, trained by `deem-eval train-micro` and
shipped in the package (model_adapters/deem/weights/); `-M preset=deem-micro|deem-micro-nocsr` picks a
shipped one explicitly, `-M preset=deem-7b` the paper's configuration (which needs trained weights).

Decoding follows DEEM's evaluation collator: beam search with 3 beams, at most 10 new tokens, length
penalty 0 (sequence log-probability, unnormalised), the answer being the decoded continuation of
"... ## ASSISTANT: The answer is". `decoding=greedy` is 1 beam; `scoring=logits|both` adds P(yes) from the
next-token distribution after the prompt.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from deem_eval.core.adapters import ModelAdapter, Request
from deem_eval.core.errors import DeemEvalError

if TYPE_CHECKING:
    from deem_eval.model_adapters.generation import YesNoTokens

@dataclass(frozen=True)
class DeemAdapterConfig:
    preset: str | None = None               # deem-micro (default) | deem-micro-nocsr | deem-tiny | deem-7b
    checkpoint: Path | None = None          # a DEEM checkpoint directory (deem-eval align output)
    device: str = "auto"                    # auto: cuda if available, else cpu
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"   # auto: bfloat16 on CUDA, float32 on CPU
    decoding: Literal["beam", "greedy"] = "beam"
    num_beams: int = 3
    max_new_tokens: int = 10
    length_penalty: float = 0.0
    scoring: Literal["generate", "logits", "both"] = "generate"
    max_batch: int | None = None            # cap on requests per forward pass (halved automatically on OOM)
    seed: int = 0                           # seeds the random weights of random presets / untrained modules
    components: Path | None = None          # directory with <org>/<name> copies of the component checkpoints
    download: bool = False                  # fetch missing component checkpoints from the Hugging Face hub
    allow_untrained: bool = False           # evaluate deem-7b built from components without trained DEEM weights

    def __post_init__(self) -> None:
        if self.num_beams < 1 or self.max_new_tokens < 1:
            raise ValueError("num_beams and max_new_tokens must be >= 1")


class DeemAdapter(ModelAdapter):
    """The DEEM model (paper's prompt, beam search 3 / 10 tokens by default; no diffusion at inference)."""

    name = "deem"
    needs_images = True
    can_score_yes = True                  # yes_probability(): P(yes) from the next-token distribution
    Config = DeemAdapterConfig

    def __init__(self, config: DeemAdapterConfig | None = None):
        import torch

        from deem_eval.model_adapters.generation import OomBackoff

        from .checkpoint import load_checkpoint
        from .presets import build_model, get_preset

        self.config = config = config or DeemAdapterConfig()
        self.scoring = config.scoring
        self.device = _device(config.device)
        self.dtype = _dtype(config.dtype, self.device)
        expect = get_preset(config.preset) if config.preset else None
        shipped = None
        if config.checkpoint is None and (expect is None or expect.name in SHIPPED_PRESETS):
            shipped = shipped_checkpoint(expect.name if expect else "deem-micro")
            if expect is None:
                print(f"deem: no -M checkpoint or preset given; using the bundled DEEM-micro ({shipped})",
                      file=sys.stderr)
        self._weights_dir = shipped or config.checkpoint
        if shipped is not None:
            self.model = load_checkpoint(shipped, expect=expect, device=self.device, dtype=self.dtype)
            self.label = f"deem:{shipped.name}"
        elif config.checkpoint is not None:
            self.model = load_checkpoint(config.checkpoint, expect=expect, device=self.device, dtype=self.dtype,
                                         components=config.components, download=config.download)
            self.label = f"deem:{checkpoint_label(Path(config.checkpoint))}"
        else:
            preset = expect or get_preset("deem-7b")
            if preset.llm_source != "random" and not config.allow_untrained:
                raise DeemEvalError(
                    f"{preset.name} built from its component checkpoints has untrained adapters, resampler and "
                    "cross-attention (DEEM's trained weights were never published), so its answers would not be "
                    "DEEM's. Train them with `deem-eval align`, then pass -M checkpoint=DIR; or pass "
                    "-M allow_untrained=true to evaluate the untrained model as a baseline.")
            self.model = build_model(preset, seed=config.seed, device=self.device, dtype=self.dtype,
                                     components=config.components, download=config.download)
            self.label = f"deem:{preset.name}"
        self._backoff = OomBackoff(config.max_batch)
        self._yes_no: YesNoTokens | None = None
        self._torch = torch

    # ---- protocol -------------------------------------------------------------------------------------
    def content_fingerprint(self) -> str | None:
        """Digest of the checkpoint's weights and configs: a retrained checkpoint at the same path is a new run."""
        from deem_eval.core.fingerprint import directory_fingerprint

        return None if self._weights_dir is None else directory_fingerprint(Path(self._weights_dir))

    def generate(self, batch: Sequence[Request]) -> list[str]:
        beams = 1 if self.config.decoding == "greedy" else self.config.num_beams
        return self._backoff.run(list(batch), lambda chunk: self.model.generate(
            *self._inputs(chunk), num_beams=beams, max_new_tokens=self.config.max_new_tokens,
            length_penalty=self.config.length_penalty))

    def yes_probability(self, batch: Sequence[Request]) -> list[float]:
        from deem_eval.model_adapters.generation import find_yes_no_tokens, yes_probability_from_logits

        yes_no = self._yes_no
        if yes_no is None:
            yes_no = self._yes_no = find_yes_no_tokens(self.model.tokenizer, what=self.label)

        def score(chunk):
            logits = self.model.next_token_logits(*self._inputs(chunk))
            return yes_probability_from_logits(logits, yes_no).tolist()

        return self._backoff.run(list(batch), score)

    def prompt_for(self, request: Request) -> str:
        """The text tokenized for `request` (DEEM's VQA prompt with its image block), for the run's prompt log."""
        return self.model.prompts([request.question])[0]

    # ---- helpers ---------------------------------------------------------------------------------------
    def _inputs(self, chunk: Sequence[Request]):
        from .images import to_pixels

        v = self.model.config.visual
        pixels = to_pixels([r.image for r in chunk], v.image_size, min_side=v.stride, names=[r.id for r in chunk])
        input_ids, mask = self.model.tokenize_prompts([r.question for r in chunk])
        return pixels.to(self.device, self.dtype), input_ids, mask


SHIPPED_PRESETS = ("deem-micro", "deem-micro-nocsr")


def shipped_checkpoint(name: str) -> Path:
    """The packaged checkpoint of a shipped preset, checked to be complete (not its weights' integrity:
    loading does that) - a missing or truncated file names itself and the command that rebuilds it."""
    from .micro.pipeline import WEIGHTS_DIR

    directory = WEIGHTS_DIR / name
    needed = ["deem_config.json", "deem.safetensors", "tokenizer/tokenizer.json", "llm/config.json",
              "llm/model.safetensors"]
    for rel in needed:
        path = directory / rel
        if not path.is_file() or path.stat().st_size == 0:
            raise DeemEvalError(f"the shipped {name} checkpoint is incomplete: {path} is missing or empty. Rebuild it "
                                "with `deem-eval train-micro --out runs/micro --ship` (about an hour on 2 CPU cores), "
                                "or reinstall deem-eval.")
    return directory


def _device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeemEvalError(f"device {name!r} requested but CUDA is not available")
    return device


def _dtype(name: str, device):
    import torch

    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if name in ("float16", "bfloat16") and device.type == "cpu":
        print(f"deem: {name} on CPU is slow and poorly supported; consider -M dtype=float32", file=sys.stderr)
    return getattr(torch, name)


def checkpoint_label(path: Path) -> str:
    """A leaderboard name for a checkpoint: `align` writes OUT/final and OUT/checkpoint-N, so name those by
    their run directory (runs/deem-csr/final -> deem-csr, .../checkpoint-000500 -> deem-csr@000500)."""
    path = path.resolve()
    if path.name == "final":
        return path.parent.name
    if path.name.startswith("checkpoint-"):
        return f"{path.parent.name}@{path.name.removeprefix('checkpoint-')}"
    return path.name
