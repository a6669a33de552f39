"""Options of `--model vllm` (-M key=value): the `hf` adapter's prompt options plus vLLM's engine settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from deem_eval.model_adapters.hf.adapter import PRESET_DEFAULT
from deem_eval.model_adapters.hf.presets import PRESETS

DTYPES = ("auto", "checkpoint", "float32", "bfloat16", "float16")


@dataclass(frozen=True)
class VLLMConfig:
    """Options of `--model vllm` (-M key=value). Prompt options accept \\n and \\t escapes, as for `hf`."""

    path: str = ""                      # hub id (org/name) or local checkpoint directory; default: the preset's
    preset: str = "auto"                # auto (by config.model_type) | none | llava-1.5 | qwen2-vl | ... (as hf)
    revision: str | None = None         # hub revision (branch, tag or commit)
    dtype: Literal["auto", "checkpoint", "float32", "bfloat16", "float16"] = "auto"  # auto: bf16 if supported
    max_new_tokens: int | None = None   # default: the preset's (128 for most, as published)
    system_prompt: str = PRESET_DEFAULT  # "" for none
    prompt_suffix: str = PRESET_DEFAULT  # appended to the question; "" for none
    prompt_template: str = PRESET_DEFAULT  # {system} {image} {question}; preset/"" = chat template
    use_chat_template: bool = True
    scoring: Literal["generate", "logits", "both"] = "generate"
    logprobs: int = 20                  # top-K first-token logprobs searched for yes/no variants (P(yes))
    gpu_memory_utilization: float = 0.9  # share of GPU memory vLLM may take (weights + KV cache)
    max_num_seqs: int | None = None     # most sequences vLLM runs at once; default: vLLM's own
    max_model_len: int | None = None    # context length cap (less KV cache reserved); default: the model's
    tensor_parallel_size: int = 1       # GPUs one model is sharded over
    enforce_eager: bool = False         # no CUDA graphs (faster start, slower decoding)
    seed: int = 0                       # vLLM engine seed (decoding is greedy either way)
    trust_remote_code: bool = False     # allow checkpoint code
    label: str | None = None            # leaderboard row name; default vllm:<checkpoint name>

    def __post_init__(self) -> None:
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.logprobs < 1:
            raise ValueError(f"logprobs must be >= 1, got {self.logprobs}")
        if not 0.0 < self.gpu_memory_utilization <= 1.0:
            raise ValueError(f"gpu_memory_utilization must be in (0, 1], got {self.gpu_memory_utilization}")
        if self.max_num_seqs is not None and self.max_num_seqs < 1:
            raise ValueError(f"max_num_seqs must be >= 1, got {self.max_num_seqs}")
        if self.max_model_len is not None and self.max_model_len < 1:
            raise ValueError(f"max_model_len must be >= 1, got {self.max_model_len}")
        if self.tensor_parallel_size < 1:
            raise ValueError(f"tensor_parallel_size must be >= 1, got {self.tensor_parallel_size}")
        if self.preset not in ("auto", "none", *PRESETS):
            raise ValueError(f"unknown preset {self.preset!r}; choose auto, none, {', '.join(PRESETS)}")
