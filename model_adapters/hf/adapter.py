"""The `hf` adapter: any transformers image-text-to-text model, batched, with optional yes/no logit scoring.

- Prompts: the model's chat template around `question + suffix` (see prompting.py), with the family's
  published evaluation prompt from a preset (presets.py).
- Batching: each batch from the runner is ordered by prompt length, left-padded and answered in one
  `generate` call; greedy (num_beams=1, no sampling) so answers do not depend on the batch size. On CUDA
  out-of-memory the forward batch halves and only the failed part is redone (generation.OomBackoff).
- Logit scoring (`scoring=logits|both`): one forward pass per request; P(yes) from the next-token
  distribution over the tokenizer's single-token yes/no variants (generation.find_yes_no_tokens). With
  `both` and greedy decoding the probabilities come from the first step of `generate` (same prompt, same
  forward pass), so no second pass runs.
- Input pipeline (`deem-eval run --workers N`): `preparer()` is the processor call alone (HFPreparer: images +
  rendered prompts -> CPU tensors, per forward chunk), run in worker processes; the forward path only moves the
  tensors to the device (`non_blocking`, from pinned memory on CUDA) and casts pixels to the model's dtype, so
  answers equal those of `--workers 0` exactly.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from deem_eval.core.adapters import ModelAdapter, Reply, Request
from deem_eval.core.errors import DeemEvalError
from deem_eval.core.images import load_rgb
from deem_eval.model_adapters.generation import (
    OomBackoff,
    YesNoTokens,
    ordered_by_length,
    restore_order,
    yes_probability_from_logits,
)

from . import loading
from .presets import NO_PRESET, PRESETS, Preset, preset_for_model_type
from .prompting import PromptFormat, resolve_prompt_format

log = logging.getLogger(__name__)
PRESET_DEFAULT = "preset"   # the value of the prompt options that means "whatever the preset says"
#: processors that take one list of images per prompt rather than a flat list
NESTED_IMAGE_TYPES = {"idefics2", "idefics3", "smolvlm", "mllama"}


@dataclass(frozen=True)
class HFConfig:
    """Options of `--model hf` (-M key=value). Prompt options accept \\n and \\t escapes."""

    path: str = ""                      # hub id (org/name) or local checkpoint directory; default: the preset's
    preset: str = "auto"                # auto (by config.model_type) | none | llava-1.5 | qwen2-vl | ...
    revision: str | None = None         # hub revision (branch, tag or commit)
    model_class: str = "auto"           # auto | a transformers class name, e.g. LlavaForConditionalGeneration
    dtype: Literal["auto", "checkpoint", "float32", "bfloat16", "float16"] = "auto"
    device: str = "auto"                # auto (cuda:LOCAL_RANK > mps > cpu) | cpu | cuda | cuda:1 | mps
    device_map: str | None = None       # e.g. auto: shard one model over all visible GPUs (accelerate)
    attn_implementation: str | None = None   # sdpa | eager | flash_attention_2
    max_new_tokens: int | None = None   # default: the preset's (128 for most, as published)
    num_beams: int = 1
    system_prompt: str = PRESET_DEFAULT  # "" for none
    prompt_suffix: str = PRESET_DEFAULT  # appended to the question; "" for none
    prompt_template: str = PRESET_DEFAULT  # {system} {image} {question}; preset/"" = chat template
    use_chat_template: bool = True
    scoring: Literal["generate", "logits", "both"] = "generate"
    max_batch: int | None = None        # cap on one forward pass (the runner's --batch-size otherwise)
    trust_remote_code: bool = False
    label: str | None = None            # leaderboard row name; default hf:<checkpoint name>

    def __post_init__(self) -> None:
        if self.num_beams < 1:
            raise ValueError(f"num_beams must be >= 1, got {self.num_beams}")
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.max_batch is not None and self.max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {self.max_batch}")
        if self.preset not in ("auto", "none", *PRESETS):
            raise ValueError(f"unknown preset {self.preset!r}; choose auto, none, {', '.join(PRESETS)}")


@dataclass(frozen=True)
class HFPreparer:
    """The processor side of the hf adapter, without the model (picklable: it runs in --workers processes).

    Called on a batch, it returns the CPU processor inputs of every forward chunk the adapter will run (the
    batch longest prompt first, cut at `max_batch`), keyed by the chunk's request ids."""

    processor: Any
    prompt: PromptFormat
    model_type: str
    max_batch: int | None = None

    def length_key(self, question: str) -> int:
        tokenizer = getattr(self.processor, "tokenizer", self.processor)
        return len(tokenizer(question, add_special_tokens=False).input_ids)

    def encode(self, batch: Sequence[Request]) -> Any:
        """Processor inputs (left-padded) on the CPU, as the processor returns them."""
        texts = [self.prompt.render(self.processor, r.question) for r in batch]
        images: list[Any] = [_image(r) for r in batch]
        if self.model_type in NESTED_IMAGE_TYPES:
            images = [[image] for image in images]
        inputs = self.processor(images=images, text=texts, padding=True, return_tensors="pt")
        inputs.pop("labels", None)       # PaliGemma's processor adds training labels
        return inputs

    def __call__(self, batch: Sequence[Request]) -> dict[tuple[str, ...], dict[str, Any]]:
        ordered, _ = ordered_by_length(list(batch), lambda r: self.length_key(r.question))
        size = self.max_batch or len(ordered)
        chunks = [ordered[i:i + size] for i in range(0, len(ordered), size)]
        return {tuple(r.id for r in chunk): dict(self.encode(chunk)) for chunk in chunks}


def _image(request: Request) -> Any:
    image = request.image
    if image is None:
        raise DeemEvalError(f"{request.id}: the hf adapter needs an image")
    return load_rgb(image)   # paths are opened here; 16-bit images scaled, not clipped


def _unescape(text: str) -> str:
    return text.replace("\\n", "\n").replace("\\t", "\t")


class HFAdapter(ModelAdapter):
    """Any transformers image-text-to-text model (`AutoProcessor` + `AutoModelForImageTextToText`)."""

    name = "hf"
    needs_images = True
    can_score_yes = True                  # yes_probability(): P(yes) from the next-token distribution
    Config = HFConfig

    def __init__(self, config: HFConfig | None = None):
        import torch

        requested = config or HFConfig()
        explicit_preset = PRESETS.get(requested.preset)
        path = requested.path or (explicit_preset.default_path if explicit_preset else "")
        checkpoint = loading.resolve_checkpoint(path, revision=requested.revision)
        self.device = loading.resolve_device(requested.device)
        self.dtype = loading.resolve_dtype(requested.dtype, self.device)
        text = loading.load_text_side(checkpoint, revision=requested.revision, scoring=requested.scoring,
                                      trust_remote_code=requested.trust_remote_code, what=f"model {path!r}")
        self.processor, self.tokenizer = text.processor, text.tokenizer
        self.yes_no: YesNoTokens | None = text.yes_no     # checked before the (slow) model load
        self.model = loading.load_model(
            checkpoint, model_class=requested.model_class, dtype=self.dtype, device=self.device,
            device_map=requested.device_map, attn_implementation=requested.attn_implementation,
            revision=requested.revision, trust_remote_code=requested.trust_remote_code)
        if requested.device_map:
            self.device = str(self.model.device)
        self.dtype = self.model.dtype          # dtype=checkpoint: whatever the weights were stored in
        self.model_type = str(getattr(self.model.config, "model_type", ""))
        self.preset = self._pick_preset(requested)
        self.config = self._resolved(requested, path)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.prompt: PromptFormat = resolve_prompt_format(
            self.processor, user_template=self.config.prompt_template or None,
            use_chat_template=self.config.use_chat_template, preset_template=self.preset.prompt_template,
            system_prompt=self.config.system_prompt or None, suffix=self.config.prompt_suffix,
            preset_suffix=requested.prompt_suffix == PRESET_DEFAULT)
        self.scoring = self.config.scoring
        self.label = self.config.label or f"hf:{checkpoint.display_name}" + (
            ":logits" if self.scoring == "logits" else "")
        self._backoff = OomBackoff(self.config.max_batch)
        self._first_step_probs: dict[str, float] = {}
        self._torch = torch
        self._checkpoint = checkpoint
        self._prepared: dict[tuple[str, ...], dict[str, Any]] | None = None   # answer_prepared's inputs

    def content_fingerprint(self) -> str | None:
        """The checkpoint's snapshot commit or files' digest: a changed local model directory is a new run."""
        return loading.checkpoint_fingerprint(self._checkpoint, revision=self.config.revision)

    # ---- configuration --------------------------------------------------------------------------------
    def _pick_preset(self, requested: HFConfig) -> Preset:
        if requested.preset == "none":
            return NO_PRESET
        if requested.preset == "auto":
            return preset_for_model_type(self.model_type)
        preset = PRESETS[requested.preset]
        if preset.model_types and self.model_type not in preset.model_types:
            log.warning("preset %s is meant for model types %s, this model is %r",
                        preset.name, preset.model_types, self.model_type)
        return preset

    def _resolved(self, requested: HFConfig, path: str) -> HFConfig:
        """The config with preset defaults filled in: what the run manifest records."""
        def pick(value: str, preset_value: str | None) -> str:
            return (preset_value or "") if value == PRESET_DEFAULT else _unescape(value)

        return dataclasses.replace(
            requested, path=path, preset=self.preset.name,
            system_prompt=pick(requested.system_prompt, self.preset.system_prompt),
            prompt_suffix=pick(requested.prompt_suffix, self.preset.prompt_suffix),
            prompt_template=pick(requested.prompt_template, None),
            max_new_tokens=requested.max_new_tokens or self.preset.max_new_tokens)

    # ---- inputs ---------------------------------------------------------------------------------------
    def prompt_text(self, request: Request) -> str:
        return self.prompt.render(self.processor, request.question)

    def prompt_for(self, request: Request) -> str:
        """The text `encode` gives the processor for `request` (a pure render), for the run's prompt log."""
        return self.prompt_text(request)

    @staticmethod
    def _image(request: Request) -> Any:
        return _image(request)

    def preparer(self) -> HFPreparer:
        """The processor call of `encode`, for --workers processes (see HFPreparer)."""
        return HFPreparer(self.processor, self.prompt, self.model_type, self.config.max_batch)

    def answer_prepared(self, batch: Sequence[Request], prepared: Any) -> list[Reply]:
        """`answer`, taking each forward chunk's processor inputs from `prepared` (HFPreparer's result); a
        chunk it does not hold (the batch was halved after out-of-memory) is encoded here as usual."""
        self._prepared = prepared
        try:
            return self._answer_modes(batch)
        finally:
            self._prepared = None

    def encode(self, batch: Sequence[Request]) -> Any:
        """Processor inputs for a batch (left-padded), on the model's device, pixels in the model's dtype."""
        ready = None if self._prepared is None else self._prepared.get(tuple(r.id for r in batch))
        if ready is None:
            inputs = HFPreparer(self.processor, self.prompt, self.model_type).encode(batch)
            inputs = inputs.to(self.model.device)
        else:   # prepared by a worker (pinned on CUDA): the copy overlaps whatever the device still runs
            inputs = {k: v.to(self.model.device, non_blocking=True) if isinstance(v, self._torch.Tensor) else v
                      for k, v in ready.items()}
        for key, value in inputs.items():
            if isinstance(value, self._torch.Tensor) and self._torch.is_floating_point(value):
                inputs[key] = value.to(self.dtype)
        return inputs

    def length_key(self, question: str) -> int:
        """Prompt length in tokens of the question (for grouping requests of similar length)."""
        return len(self.tokenizer(question, add_special_tokens=False).input_ids)

    def _in_length_order(self, batch: Sequence[Request], fn) -> list:
        """fn over the batch sorted longest first (so an OOM split keeps similar lengths together)."""
        ordered, order = ordered_by_length(list(batch), lambda r: self.length_key(r.question))
        return restore_order(self._backoff.run(ordered, fn), order)

    # ---- generation -----------------------------------------------------------------------------------
    def generation_config(self, *, first_step_logits: bool = False) -> Any:
        """Greedy (or beam) decoding settings; sampling parameters of the checkpoint are cleared."""
        gc = copy.deepcopy(self.model.generation_config)
        gc.return_dict_in_generate = True
        gc.output_logits = first_step_logits
        gc.do_sample = False
        gc.num_beams = self.config.num_beams
        gc.max_new_tokens = self.config.max_new_tokens
        gc.temperature, gc.top_p, gc.top_k = None, None, None
        gc.pad_token_id = self.tokenizer.pad_token_id
        if gc.eos_token_id is None:
            gc.eos_token_id = self.tokenizer.eos_token_id
        return gc

    def generate(self, batch: Sequence[Request]) -> list[str]:
        return self._in_length_order(batch, self._generate_chunk)

    def _generate_chunk(self, chunk: Sequence[Request]) -> list[str]:
        inputs = self.encode(chunk)
        keep_first_step = self.scoring == "both" and self.config.num_beams == 1
        with self._torch.inference_mode():
            out = self.model.generate(**inputs, generation_config=self.generation_config(
                first_step_logits=keep_first_step))
        sequences = out.sequences
        prompt = inputs["input_ids"]
        if sequences.shape[1] >= prompt.shape[1] and bool((sequences[:, :prompt.shape[1]] == prompt).all()):
            sequences = sequences[:, prompt.shape[1]:]          # decoder-only: the prompt is echoed
        if keep_first_step:
            if self.yes_no is None:        # scoring "both" finds the yes/no tokens at construction
                raise RuntimeError("HFAdapter: first-step scoring without yes/no tokens")
            probs = yes_probability_from_logits(out.logits[0], self.yes_no)
            self._first_step_probs.update({r.id: float(p) for r, p in zip(chunk, probs.tolist())})
        texts = self.tokenizer.batch_decode(sequences, skip_special_tokens=True)
        return [t.strip() for t in texts]

    # ---- logit scoring --------------------------------------------------------------------------------
    def yes_probability(self, batch: Sequence[Request]) -> list[float]:
        if self.yes_no is None:
            raise DeemEvalError("yes_probability needs -M scoring=logits or scoring=both")
        if batch and all(r.id in self._first_step_probs for r in batch):
            return [self._first_step_probs.pop(r.id) for r in batch]
        return self._in_length_order(batch, self._yes_probability_chunk)

    def next_token_logits(self, chunk: Sequence[Request]) -> Any:
        """Next-token logits after each prompt ([batch, vocab], float32): one forward pass."""
        inputs = self.encode(chunk)
        with self._torch.inference_mode():
            try:
                out = self.model(**inputs, logits_to_keep=1, use_cache=False)
            except TypeError:                                   # models without logits_to_keep
                out = self.model(**inputs, use_cache=False)
        return out.logits[:, -1, :].float()

    def _yes_probability_chunk(self, chunk: Sequence[Request]) -> list[float]:
        assert self.yes_no is not None
        return yes_probability_from_logits(self.next_token_logits(chunk), self.yes_no).tolist()
