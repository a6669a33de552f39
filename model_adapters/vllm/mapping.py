"""Pure functions between deem-eval requests and vLLM: prompt set-up, request building, sampling and engine
arguments, and output mapping (text, P(yes) from first-token logprobs). Nothing here imports vllm or torch,
so all of it is tested offline on plain objects shaped like vLLM's outputs.

vLLM shapes relied on (vllm>=0.6, `vllm.outputs` / `vllm.sequence`):
- `LLM.generate` input: `{"prompt": str, "multi_modal_data": {"image": PIL.Image}}` per request;
- `RequestOutput.request_id` (a string; `LLM` numbers the requests of one call in input order),
  `RequestOutput.outputs[0]` a `CompletionOutput` with `.text` and `.logprobs`: one mapping per generated
  token, token id -> `Logprob` (`.logprob`, a float log-probability; a plain float is accepted too), holding
  the top `logprobs` tokens (plus the sampled one).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from deem_eval.core.adapters import Request
from deem_eval.core.errors import DeemEvalError
from deem_eval.core.images import load_rgb
from deem_eval.model_adapters.generation import YesNoTokens
from deem_eval.model_adapters.hf.adapter import PRESET_DEFAULT, _unescape
from deem_eval.model_adapters.hf.presets import NO_PRESET, PRESETS, Preset, preset_for_model_type
from deem_eval.model_adapters.hf.prompting import PromptFormat, resolve_prompt_format

from .config import DTYPES, VLLMConfig

log = logging.getLogger(__name__)


# ---- prompts (the hf adapter's rules, same functions) ---------------------------------------------------
def pick_preset(requested: str, model_type: str) -> Preset:
    """`auto` -> by `config.model_type`; `none` -> no preset; a name -> that preset (warned if it is meant for
    another family). The same choice `HFAdapter` makes."""
    if requested == "none":
        return NO_PRESET
    if requested == "auto":
        return preset_for_model_type(model_type)
    preset = PRESETS[requested]
    if preset.model_types and model_type not in preset.model_types:
        log.warning("preset %s is meant for model types %s, this model is %r",
                    preset.name, preset.model_types, model_type)
    return preset


def resolved_config(requested: VLLMConfig, preset: Preset, path: str) -> VLLMConfig:
    """The config with the preset's defaults filled in (what the run manifest records), as `HFAdapter` does."""
    def pick(value: str, preset_value: str | None) -> str:
        return (preset_value or "") if value == PRESET_DEFAULT else _unescape(value)

    return dataclasses.replace(
        requested, path=path, preset=preset.name,
        system_prompt=pick(requested.system_prompt, preset.system_prompt),
        prompt_suffix=pick(requested.prompt_suffix, preset.prompt_suffix),
        prompt_template=pick(requested.prompt_template, None),
        max_new_tokens=requested.max_new_tokens or preset.max_new_tokens)


@dataclass(frozen=True)
class PromptSetup:
    preset: Preset
    config: VLLMConfig          # resolved
    prompt: PromptFormat


def prompt_setup(requested: VLLMConfig, processor: Any, model_type: str, path: str) -> PromptSetup:
    """Preset, resolved options and prompt format for a model whose HF processor is `processor`."""
    preset = pick_preset(requested.preset, model_type)
    config = resolved_config(requested, preset, path)
    prompt = resolve_prompt_format(
        processor, user_template=config.prompt_template or None, use_chat_template=config.use_chat_template,
        preset_template=preset.prompt_template, system_prompt=config.system_prompt or None,
        suffix=config.prompt_suffix, preset_suffix=requested.prompt_suffix == PRESET_DEFAULT)
    return PromptSetup(preset, config, prompt)


# ---- requests ---------------------------------------------------------------------------------------------
def request_image(request: Request) -> Any:
    if request.image is None:
        raise DeemEvalError(f"{request.id}: the vllm adapter needs an image")
    return load_rgb(request.image)


def build_request(prompt: str, image: Any) -> dict[str, Any]:
    """One `LLM.generate` input: the rendered prompt (image placeholder included) and its image."""
    return {"prompt": prompt, "multi_modal_data": {"image": image}}


def build_requests(batch: Sequence[Request], render: Callable[[str], str]) -> list[dict[str, Any]]:
    """`LLM.generate` inputs for a batch, in batch order; `render(question)` is the model's prompt text."""
    return [build_request(render(r.question), request_image(r)) for r in batch]


def sampling_kwargs(scoring: str, *, max_new_tokens: int, logprobs: int, purpose: str = "generate"
                    ) -> dict[str, Any]:
    """`SamplingParams` arguments. Greedy (temperature 0). `purpose="generate"`: up to `max_new_tokens`
    tokens, with first-token logprobs only when scoring is `both`; `purpose="score"`: one token and its
    top-`logprobs` (the next-token distribution after the prompt, as the hf adapter's logit scoring)."""
    if purpose == "score":
        return {"temperature": 0.0, "max_tokens": 1, "logprobs": logprobs}
    if purpose != "generate":
        raise ValueError(f"purpose must be generate or score, got {purpose!r}")
    return {"temperature": 0.0, "max_tokens": max_new_tokens,
            "logprobs": logprobs if scoring == "both" else None}


def vllm_dtype(name: str, *, bf16_supported: bool) -> str:
    """deem-eval's dtype option as vLLM's: `auto` = bfloat16 where the GPU supports it, else float32 (the hf
    adapter's rule, so both adapters run the same precision); `checkpoint` = vLLM's `auto` (as stored)."""
    if name not in DTYPES:
        raise DeemEvalError(f"-M dtype={name!r}: expected one of {', '.join(DTYPES)}")
    if name == "checkpoint":
        return "auto"
    if name == "auto":
        return "bfloat16" if bf16_supported else "float32"
    return name


def engine_kwargs(config: VLLMConfig, model: str, *, revision: str | None, bf16_supported: bool) -> dict[str, Any]:
    """`vllm.LLM(...)` arguments. vLLM schedules the whole batch itself (continuous batching within
    `max_num_seqs` and the KV cache that `gpu_memory_utilization` leaves), so there is no OOM back-off here."""
    kwargs: dict[str, Any] = {
        "model": model,
        "dtype": vllm_dtype(config.dtype, bf16_supported=bf16_supported),
        "trust_remote_code": config.trust_remote_code,
        "gpu_memory_utilization": config.gpu_memory_utilization,
        "tensor_parallel_size": config.tensor_parallel_size,
        "enforce_eager": config.enforce_eager,
        "seed": config.seed,
        "limit_mm_per_prompt": {"image": 1},
        "max_logprobs": max(20, config.logprobs),
    }
    if revision:
        kwargs["revision"] = revision
    if config.max_num_seqs is not None:
        kwargs["max_num_seqs"] = config.max_num_seqs
    if config.max_model_len is not None:
        kwargs["max_model_len"] = config.max_model_len
    return kwargs


# ---- outputs ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MappedOutput:
    text: str
    yes_prob: float | None = None   # None: not asked for, or no yes/no variant among the top logprobs
    yes_no_mass: float = 0.0        # probability of the yes/no variants found (diagnostic; ~1 for a yes/no answer)


def outputs_in_request_order(outputs: Sequence[Any], n: int) -> list[Any]:
    """vLLM's outputs put back in the order of the requests that produced them.

    `LLM` numbers the requests of one `generate` call in input order (request ids are increasing integers,
    continuing from earlier calls), so ranking by the integer id restores request index order whatever order
    the outputs come in. Ids that are not integers: the outputs are taken in the order given (`LLM.generate`
    returns them in input order)."""
    if len(outputs) != n:
        raise RuntimeError(f"vllm returned {len(outputs)} outputs for {n} requests")
    try:
        ids = [int(o.request_id) for o in outputs]
    except (AttributeError, TypeError, ValueError):
        return list(outputs)
    if len(set(ids)) != n:
        raise RuntimeError(f"vllm returned duplicate request ids: {sorted(ids)}")
    return [o for _, o in sorted(zip(ids, outputs), key=lambda pair: pair[0])]


def _logprob(value: Any) -> float:
    return float(getattr(value, "logprob", value))


def _logsumexp(values: Sequence[float]) -> float:
    top = max(values)
    if top == -math.inf:
        return -math.inf
    return top + math.log(sum(math.exp(v - top) for v in values))


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def yes_probability_from_top_logprobs(top: Mapping[int, Any], tokens: YesNoTokens) -> tuple[float | None, float]:
    """(P(yes), yes/no mass) from one position's top logprobs (token id -> Logprob or float).

    P(yes) = sum p(yes variants) / (sum p(yes variants) + sum p(no variants)), the hf adapter's
    `yes_probability_from_logits` (sigmoid(logsumexp(yes) - logsumexp(no))), over the variants present among
    the top-K: it equals the full-vocabulary value whenever every variant with non-negligible mass is in the
    top-K. A side with no variant present counts as 0 (P(yes) = 0 or 1); with neither present P(yes) is
    None (undefined: the model was not about to say yes or no)."""
    yes = [_logprob(top[i]) for i in tokens.yes_ids if i in top]
    no = [_logprob(top[i]) for i in tokens.no_ids if i in top]
    log_yes = _logsumexp(yes) if yes else -math.inf
    log_no = _logsumexp(no) if no else -math.inf
    mass = math.exp(log_yes) + math.exp(log_no)
    if log_yes == -math.inf and log_no == -math.inf:
        return None, mass
    if log_no == -math.inf:
        return 1.0, mass
    if log_yes == -math.inf:
        return 0.0, mass
    return _sigmoid(log_yes - log_no), mass


def map_output(output: Any, tokens: YesNoTokens | None) -> MappedOutput:
    """One `RequestOutput` -> text (stripped, like the hf adapter's) and, with `tokens`, P(yes) from the first
    generated token's top logprobs."""
    completions = getattr(output, "outputs", None) or []
    if not completions:
        raise RuntimeError(f"vllm request {getattr(output, 'request_id', '?')} has no completion")
    completion = completions[0]
    text = (completion.text or "").strip()
    if tokens is None:
        return MappedOutput(text)
    steps = completion.logprobs
    if not steps:
        raise RuntimeError("vllm returned no logprobs; the request must be sent with SamplingParams(logprobs=K)")
    prob, mass = yes_probability_from_top_logprobs(steps[0], tokens)
    return MappedOutput(text, prob, mass)


def map_outputs(outputs: Sequence[Any], n: int, tokens: YesNoTokens | None = None) -> list[MappedOutput]:
    """All outputs of one `LLM.generate` call of `n` requests, mapped, in request order."""
    return [map_output(o, tokens) for o in outputs_in_request_order(outputs, n)]
