"""DEEM's configuration as typed, frozen dataclasses that round-trip through JSON.

One `DeemConfig` describes a whole model (image encoder, visual tokenizer, LLM shape, cross-attention,
diffusion teacher, prompt). Presets are instances of it; a checkpoint stores it in `deem_config.json`, and
`config_differences` lists what differs between two of them (a checkpoint that does not match the preset it
is loaded under is refused with that list).
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, field
from typing import Any

from deem_eval.core.errors import DeemEvalError

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

#: Added to the tokenizer (never to the LLM vocabulary): the image-start marker and the per-query placeholder.
IMAGE_START_TOKEN = "<|startofimage|>"
IMAGE_TOKEN = "<|sniffer|>"


@dataclass(frozen=True)
class ConvNeXtConfig:
    """A timm-style ConvNeXt trunk (CLIP ConvNeXt-B: depths 3/3/27/3, widths 128/256/512/1024)."""

    depths: tuple[int, ...] = (3, 3, 27, 3)
    dims: tuple[int, ...] = (128, 256, 512, 1024)
    stem_stride: int = 4
    layer_scale_init: float = 1e-6
    gradient_checkpointing: bool = False

    @property
    def strides(self) -> tuple[int, ...]:
        """Output stride of each stage (the stem, then x2 per later stage)."""
        return tuple(self.stem_stride * 2 ** i for i in range(len(self.dims)))


@dataclass(frozen=True)
class VisualConfig:
    """Image encoder + multi-scale adapters + perceiver resampler + the two output projections."""

    convnext: ConvNeXtConfig = field(default_factory=ConvNeXtConfig)
    image_size: int = 256                      # encoder input (DEEM evaluates at 256 px)
    feature_dim: int = 1024                    # common width of the multi-scale adapters and the pooled token
    perceiver_level: int = 2                   # stage whose tokens (plus the pooled one) feed the resampler
    xattn_levels: tuple[int, ...] = (1, 2, 3)  # stages the LLM cross-attends to (strides 8/16/32 at 256 px)
    mmfs_levels: tuple[int, ...] = ()          # stages fed into the diffusion UNet by MMFSNet (DEEM: c2..c5)
    pos_grid: int = 16                         # the 2-D sin-cos position grid every level is expressed in
    num_queries: int = 77
    width: int = 768                           # resampler width
    layers: int = 12
    heads: int = 12
    cross_every: int = 2                       # resampler layers with cross-attention to the image: idx % n == 0
    mlp_dim: int = 3072
    qk_norm: bool = True
    pixel_mean: tuple[float, float, float] = CLIP_MEAN
    pixel_std: tuple[float, float, float] = CLIP_STD

    @property
    def stride(self) -> int:
        """The encoder's total stride (its coarsest feature map); smaller images are refused."""
        return self.convnext.strides[-1]


@dataclass(frozen=True)
class LlmConfig:
    """The Llama-family language model's shape (checked against a loaded checkpoint's config)."""

    vocab_size: int = 32000
    hidden_size: int = 4096
    intermediate_size: int = 11008
    num_layers: int = 32
    num_heads: int = 32
    num_kv_heads: int = 32
    max_position_embeddings: int = 4096
    rms_norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    bos_token_id: int = 1
    eos_token_id: int = 2
    pad_token_id: int = 0
    init_std: float = 0.02       # std of the weights when the LLM is random (llm_source "random")


@dataclass(frozen=True)
class XAttnConfig:
    """Multi-scale deformable cross-attention from text to image features, every `every`-th decoder layer."""

    every: int = 4
    heads: int = 16
    points: int = 8
    offset_init: float = 3.0     # initial sampling offsets ~ U(-3, 3) pixels of the base level
    base_level: int = 2          # the stage whose offsets are taken as-is (others are scaled by stride ratio)


@dataclass(frozen=True)
class DiffusionConfig:
    """The frozen diffusion teacher used only by CSR training (`deem-eval align`), never at inference."""

    source: str = "hub:stabilityai/stable-diffusion-2-1-base"  # or "random" (built from the dicts below)
    image_size: int = 512
    condition_dim: int = 1024    # the UNet's cross-attention width
    t_min: int = 200
    t_max: int = 799
    weight: float = 5.0
    unet: dict[str, Any] | None = None
    vae: dict[str, Any] | None = None
    scheduler: dict[str, Any] | None = None


@dataclass(frozen=True)
class PromptConfig:
    """DEEM's VQA prompt, assembled as "{system} {user} {assistant}".strip() like the official collator."""

    system: str = "You are a helpful assistant.\n\n"
    user: str = "## USER: Based on the image, please answer the question. {image}{question} \n"
    assistant: str = "## ASSISTANT: The answer is"

    def render(self, question: str, image_block: str) -> str:
        return f"{self.system} {self.user.format(image=image_block, question=question)} {self.assistant}".strip()


@dataclass(frozen=True)
class DeemConfig:
    name: str
    visual: VisualConfig = field(default_factory=VisualConfig)
    llm: LlmConfig = field(default_factory=LlmConfig)
    xattn: XAttnConfig = field(default_factory=XAttnConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    prompt: PromptConfig = field(default_factory=PromptConfig)
    llm_source: str = "hub:lmsys/vicuna-7b-v1.5"                 # or "random"
    tokenizer_source: str = "hub:lmsys/vicuna-7b-v1.5"           # or "tiny"
    encoder_source: str = "hub:laion/CLIP-convnext_base_w_320-laion_aesthetic-s13B-b82K"  # or "random"
    max_text_tokens: int = 2048   # caption + image block limit in CSR training (longer captions are truncated)

    def __post_init__(self) -> None:
        v = self.visual
        n = len(v.convnext.dims)
        if len(v.convnext.depths) != n:
            raise DeemEvalError(f"{self.name}: convnext depths and dims differ in length")
        bad = [lvl for lvl in (*v.xattn_levels, *v.mmfs_levels, v.perceiver_level, self.xattn.base_level)
               if not 0 <= lvl < n]
        if bad:
            raise DeemEvalError(f"{self.name}: feature levels {bad} out of range 0..{n - 1}")
        if v.image_size % v.stride:
            raise DeemEvalError(f"{self.name}: image_size {v.image_size} is not a multiple of the encoder stride "
                                f"{v.stride}")
        if v.feature_dim % self.xattn.heads or v.width % v.heads:
            raise DeemEvalError(f"{self.name}: widths must divide by their head counts")

    # ---- JSON ----------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(dataclasses.asdict(self))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeemConfig:
        return _from_dict(cls, data)

    def replace(self, **changes: Any) -> DeemConfig:
        return dataclasses.replace(self, **changes)


def to_jsonable(value: Any) -> Any:
    """Tuples to lists, recursively (what json.dumps and config comparisons need)."""
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    return value


def _from_dict(cls: type, data: dict[str, Any]) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise DeemEvalError(f"unknown {cls.__name__} fields {unknown}; was this config written by a newer "
                            "deem-eval?")
    kwargs = {}
    for key, value in data.items():
        hint = hints[key]
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            kwargs[key] = _from_dict(hint, value)
        elif typing.get_origin(hint) is tuple and value is not None:
            kwargs[key] = tuple(value)
        else:
            kwargs[key] = value
    return cls(**kwargs)


def config_differences(a: Any, b: Any, path: str = "") -> list[str]:
    """Human-readable differences between two configs (dataclasses or their dicts): ["llm.hidden_size: 64 != 128"]."""
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        a = to_jsonable(dataclasses.asdict(a))
    if dataclasses.is_dataclass(b) and not isinstance(b, type):
        b = to_jsonable(dataclasses.asdict(b))
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for key in sorted(set(a) | set(b)):
            sub = f"{path}.{key}" if path else str(key)
            if key not in a:
                out.append(f"{sub}: (absent) != {b[key]!r}")
            elif key not in b:
                out.append(f"{sub}: {a[key]!r} != (absent)")
            else:
                out += config_differences(a[key], b[key], sub)
        return out
    if isinstance(a, tuple):
        a = list(a)
    if isinstance(b, tuple):
        b = list(b)
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]
