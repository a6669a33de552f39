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

Input pipeline (`deem-eval run --workers N`): `preparer()` (DeemPreparer: decode, size check, bicubic resize to
uint8 pixels, tokenized prompts) runs in worker processes; the forward path copies the uint8 pixels to the
device (`non_blocking`, pinned on CUDA) and only there turns them into [0, 1] floats (a 256-entry table made
exactly as `to_pixels` divides, so answers equal those of `--workers 0`); CLIP normalisation stays in the model.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from deem_eval.core.adapters import ModelAdapter, Reply, Request
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


@dataclass(frozen=True)
class DeemPreparer:
    """DEEM's inputs without the model (picklable: it runs in --workers processes): per forward chunk (the
    batch cut at `max_batch`), keyed by the chunk's request ids, (uint8 pixels [B, 3, S, S], input_ids,
    attention_mask) on the CPU - what `to_pixels` and `tokenize_prompts` compute, before the division by 255."""

    tokenizer: Any
    prompt: Any                 # the model's PromptConfig
    image_block: str
    image_size: int
    min_side: int
    max_batch: int | None = None

    def pixels(self, chunk: Sequence[Request]) -> Any:
        import numpy as np
        import torch
        from PIL import Image

        from .model.images import check_size, open_rgb

        out = []
        for r in chunk:
            img = open_rgb(r.image)
            check_size(img, self.min_side, r.id)
            arr = np.asarray(img.resize((self.image_size, self.image_size), Image.Resampling.BICUBIC), dtype=np.uint8)
            out.append(torch.from_numpy(arr.copy()).permute(2, 0, 1))
        return torch.stack(out)

    def tokens(self, chunk: Sequence[Request]) -> tuple[Any, Any]:
        enc = self.tokenizer([self.prompt.render(r.question, self.image_block) for r in chunk], padding=True,
                             return_tensors="pt")
        return enc.input_ids, enc.attention_mask

    def __call__(self, batch: Sequence[Request]) -> dict[tuple[str, ...], tuple[Any, Any, Any]]:
        items = list(batch)
        size = self.max_batch or len(items)
        chunks = [items[i:i + size] for i in range(0, len(items), size)]
        return {tuple(r.id for r in chunk): (self.pixels(chunk), *self.tokens(chunk)) for chunk in chunks}


class DeemAdapter(ModelAdapter):
    """The DEEM model (paper's prompt, beam search 3 / 10 tokens by default; no diffusion at inference)."""

    name = "deem"
    needs_images = True
    can_score_yes = True                  # yes_probability(): P(yes) from the next-token distribution
    Config = DeemAdapterConfig

    def __init__(self, config: DeemAdapterConfig | None = None):
        import torch

        from deem_eval.model_adapters.generation import OomBackoff

        from .model.checkpoint import load_checkpoint
        from .model.devices import resolve_device, resolve_dtype
        from .model.presets import build_model, get_preset

        self.config = config = config or DeemAdapterConfig()
        self.scoring = config.scoring
        self.device = resolve_device(config.device)
        self.dtype = resolve_dtype(config.dtype, self.device)
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
        self._prepared: dict[tuple[str, ...], tuple[Any, Any, Any]] | None = None   # answer_prepared's inputs
        self._unit: Any = None      # uint8 -> [0, 1] float32 table, on the device

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

    def preparer(self) -> DeemPreparer:
        """Pixels and token ids for --workers processes (see DeemPreparer)."""
        v = self.model.config.visual
        return DeemPreparer(self.model.tokenizer, self.model.config.prompt, self.model.image_block, v.image_size,
                            v.stride, self.config.max_batch)

    def answer_prepared(self, batch: Sequence[Request], prepared: Any) -> list[Reply]:
        """`answer`, taking each forward chunk's inputs from `prepared` (DeemPreparer's result); a chunk it does
        not hold (the batch was halved after out-of-memory) is prepared here as usual."""
        self._prepared = prepared
        try:
            return self._answer_modes(batch)
        finally:
            self._prepared = None

    # ---- helpers ---------------------------------------------------------------------------------------
    def _inputs(self, chunk: Sequence[Request]):
        from .model.images import to_pixels

        ready = None if self._prepared is None else self._prepared.get(tuple(r.id for r in chunk))
        if ready is not None:
            return self._on_device(*ready)
        v = self.model.config.visual
        pixels = to_pixels([r.image for r in chunk], v.image_size, min_side=v.stride, names=[r.id for r in chunk])
        input_ids, mask = self.model.tokenize_prompts([r.question for r in chunk])
        return pixels.to(self.device, self.dtype), input_ids, mask

    def _on_device(self, pixels: Any, input_ids: Any, mask: Any):
        """Prepared CPU inputs on the device; uint8 pixels become [0, 1] floats there, through a table computed
        as `to_pixels` computes each value (float32 division by 255 in numpy), so they are bit-identical."""
        torch = self._torch
        if self._unit is None:
            import numpy as np

            self._unit = torch.from_numpy(np.arange(256, dtype=np.float32) / 255.0).to(self.device)
        pixels = self._unit[pixels.to(self.device, non_blocking=True).long()]
        return (pixels.to(self.dtype), input_ids.to(self.device, non_blocking=True),
                mask.to(self.device, non_blocking=True))


SHIPPED_PRESETS = ("deem-micro", "deem-micro-nocsr")


def shipped_checkpoint(name: str) -> Path:
    """The packaged checkpoint of a shipped preset, checked to be complete (not its weights' integrity:
    loading does that) - a missing or truncated file names itself and the command that rebuilds it."""
    from .model.checkpoint import WEIGHTS_DIR

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


def checkpoint_label(path: Path) -> str:
    """A leaderboard name for a checkpoint: `align` writes OUT/final and OUT/checkpoint-N, so name those by
    their run directory (runs/deem-csr/final -> deem-csr, .../checkpoint-000500 -> deem-csr@000500)."""
    path = path.resolve()
    if path.name == "final":
        return path.parent.name
    if path.name.startswith("checkpoint-"):
        return f"{path.parent.name}@{path.name.removeprefix('checkpoint-')}"
    return path.name
