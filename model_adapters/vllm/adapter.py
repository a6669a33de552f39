"""The `vllm` adapter: image-text-to-text models served by vLLM's offline `LLM` engine.

- Prompts: exactly the `hf` adapter's (same preset, options, chat template and `PromptFormat`), rendered with
  the checkpoint's HF processor and given to vLLM as text plus the image (`mapping.build_requests`).
- Batching: the runner's whole batch goes to one `LLM.generate` call; vLLM schedules it (continuous
  batching within `max_num_seqs` and the KV cache left by `gpu_memory_utilization`), so there is no OOM
  back-off. Outputs are mapped back to requests by request index (`mapping.outputs_in_request_order`).
  Decoding is greedy (temperature 0).
- Yes/no scoring (`scoring=logits|both`): P(yes) from the top-`logprobs` log-probabilities of the first
  generated token, summed over the tokenizer's single-token yes/no variants as the hf adapter does over the
  full vocabulary (`mapping.yes_probability_from_top_logprobs`). `logits`: one token per request;
  `both`: taken from the first step of generation (no second pass).

vllm (and torch) are imported when the adapter is built, never when this module is imported.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

from deem_eval.core.adapters import ModelAdapter, Request
from deem_eval.core.errors import DeemEvalError
from deem_eval.model_adapters.generation import YesNoTokens
from deem_eval.model_adapters.hf import loading
from deem_eval.model_adapters.hf.presets import PRESETS

from . import mapping
from .config import VLLMConfig
from .mapping import MappedOutput

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'deem-eval[vllm]'; needs a CUDA GPU"


def import_vllm() -> Any:
    """The vllm module, or a `DeemEvalError` that says how to get it."""
    try:
        import vllm
    except ImportError as exc:
        raise DeemEvalError(f"model vllm needs the vllm package, which cannot be imported ({exc}): "
                            f"{INSTALL_HINT}. Without one, use --model hf.") from None
    return vllm


def _model_type(checkpoint: loading.Checkpoint, *, revision: str | None, trust_remote_code: bool) -> str:
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(checkpoint.source, revision=revision, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise DeemEvalError(f"{checkpoint.source}: cannot read the model config: {exc}") from None
    return str(getattr(config, "model_type", ""))


class VLLMAdapter(ModelAdapter):
    """Any vLLM-supported image-text-to-text model, prompted as the `hf` adapter prompts it."""

    name = "vllm"
    needs_images = True
    can_score_yes = True                  # P(yes) from the first token's top logprobs
    Config = VLLMConfig

    def __init__(self, config: VLLMConfig | None = None):
        requested = config or VLLMConfig()
        vllm = import_vllm()        # first: without vllm nothing else is worth loading
        import torch

        if not torch.cuda.is_available():
            raise DeemEvalError(f"model vllm needs a CUDA GPU, and none is visible here ({INSTALL_HINT}). "
                                "Use --model hf on this machine.")
        if int(os.environ.get("WORLD_SIZE", "1")) > 1 and "CUDA_VISIBLE_DEVICES" not in os.environ:
            log.warning("vllm under a data-parallel launcher: every rank starts an engine on the visible GPUs; "
                        "give each rank its own CUDA_VISIBLE_DEVICES, or run one process with "
                        "-M tensor_parallel_size=N")
        explicit_preset = PRESETS.get(requested.preset)
        path = requested.path or (explicit_preset.default_path if explicit_preset else "")
        if not path:
            raise DeemEvalError("model vllm needs -M path=HUB_ID_OR_DIRECTORY (e.g. -M path=llava-hf/llava-1.5-7b-hf) "
                                "or -M preset=NAME to use the preset's default checkpoint")
        checkpoint = loading.resolve_checkpoint(path, revision=requested.revision)
        text = loading.load_text_side(checkpoint, revision=requested.revision, scoring=requested.scoring,
                                      trust_remote_code=requested.trust_remote_code, what=f"model {path!r}")
        self.processor, self.tokenizer = text.processor, text.tokenizer
        self.yes_no: YesNoTokens | None = text.yes_no      # checked before the (slow) engine start
        self.model_type = _model_type(checkpoint, revision=requested.revision,
                                      trust_remote_code=requested.trust_remote_code)
        setup = mapping.prompt_setup(requested, self.processor, self.model_type, path)
        self.preset, self.config, self.prompt = setup.preset, setup.config, setup.prompt
        self.scoring = self.config.scoring
        self.label = self.config.label or f"vllm:{checkpoint.display_name}" + (
            ":logits" if self.scoring == "logits" else "")
        assert self.config.max_new_tokens is not None
        self._generate_params = vllm.SamplingParams(**mapping.sampling_kwargs(
            self.scoring, max_new_tokens=self.config.max_new_tokens, logprobs=self.config.logprobs))
        self._score_params = vllm.SamplingParams(**mapping.sampling_kwargs(
            self.scoring, max_new_tokens=self.config.max_new_tokens, logprobs=self.config.logprobs,
            purpose="score"))
        self.llm = vllm.LLM(**mapping.engine_kwargs(
            self.config, checkpoint.source, revision=None if checkpoint.local else requested.revision,
            bf16_supported=torch.cuda.is_bf16_supported()))
        self._checkpoint = checkpoint
        #: results computed but not yet handed out, by (request id, prompt): `both` hands P(yes) from the
        #: generate call to yes_probability, and a batch that fails keeps its good results for the runner's
        #: one-by-one retry
        self._ready: dict[tuple[str, str], MappedOutput] = {}

    def content_fingerprint(self) -> str | None:
        """The checkpoint's snapshot commit or files' digest: a changed local model directory is a new run."""
        return loading.checkpoint_fingerprint(self._checkpoint, revision=self.config.revision)

    # ---- inputs ---------------------------------------------------------------------------------------
    def render(self, question: str) -> str:
        return self.prompt.render(self.processor, question)

    def prompt_for(self, request: Request) -> str:
        """The prompt text vLLM is given for `request` (the hf adapter's, for the same options)."""
        return self.render(request.question)

    # ---- answering ------------------------------------------------------------------------------------
    def _key(self, request: Request) -> tuple[str, str]:
        return request.id, self.prompt_for(request)

    def _outputs(self, batch: Sequence[Request], params: Any) -> list[MappedOutput]:
        keys = [self._key(r) for r in batch]
        if keys and all(k in self._ready for k in keys):
            return [self._ready.pop(k) for k in keys]
        for k in keys:
            self._ready.pop(k, None)
        requests = mapping.build_requests(batch, self.render)
        with_probs = params is self._score_params or self.scoring == "both"
        outputs = self.llm.generate(requests, params, use_tqdm=False)
        return mapping.map_outputs(outputs, len(batch), self.yes_no if with_probs else None)

    def generate(self, batch: Sequence[Request]) -> list[str]:
        outputs = self._outputs(batch, self._generate_params)
        if self.scoring == "both":          # the first step's P(yes), for the yes_probability call that follows
            self._ready.update({self._key(r): o for r, o in zip(batch, outputs)})
        return [o.text for o in outputs]

    def yes_probability(self, batch: Sequence[Request]) -> list[float]:
        if self.yes_no is None:
            raise DeemEvalError("yes_probability needs -M scoring=logits or scoring=both")
        outputs = self._outputs(batch, self._score_params)
        undefined = [r.id for r, o in zip(batch, outputs) if o.yes_prob is None]
        if undefined:
            if len(batch) > 1:
                self._ready.update({self._key(r): o for r, o in zip(batch, outputs) if o.yes_prob is not None})
            raise DeemEvalError(
                f"{', '.join(undefined[:3])}{' ...' if len(undefined) > 3 else ''}: no yes/no token among the top "
                f"{self.config.logprobs} first-token logprobs, so P(yes) is undefined; raise -M logprobs=K")
        return [float(o.yes_prob) for o in outputs]  # type: ignore[arg-type]
