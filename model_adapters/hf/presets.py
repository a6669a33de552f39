"""Published evaluation prompts per model family, applied with `-M preset=NAME` (or detected: `auto`).

A preset only fills the options the user did not set (prompt suffix, system prompt, template for
processors without a chat template, max_new_tokens, default checkpoint). Every prompt names its source, so
a run's manifest says which published protocol it follows. The sources (all about yes/no VQA such as POPE):

- LLaVA-1.5: LLaVA repo `scripts/v1_5/eval/pope.sh` runs `llava/eval/model_vqa_loader.py` with
  `--conv-mode vicuna_v1 --temperature 0` on `llava_pope_test.jsonl`, whose prompts end in
  "\\nAnswer the question using a single word or phrase."; vicuna_v1's system prompt is the one below and
  model_vqa_loader's default `max_new_tokens` is 128.
- LLaVA-NeXT, Idefics3: lmms-eval `tasks/pope/pope.yaml` (`lmms_eval_specific_kwargs.default.post_prompt`
  = "\\nAnswer the question using a single word or phrase.", `max_new_tokens: 128`, greedy), the harness
  those releases report POPE with; the model's own chat template wraps it.
- Qwen2-VL / Qwen2.5-VL: VLMEvalKit `vlmeval/vlm/qwen2_vl/prompt.py`, `_build_yorn_prompt` (used for POPE
  and HallusionBench) appends " Please answer yes or no."; the chat template adds Qwen's default system
  prompt.
- InstructBLIP: the InstructBLIP paper's held-out VQA instruction template "Question: {} Short answer:"
  (also the `prompt` of LAVIS' InstructBLIP VQA eval configs); the HF processor has no chat template, so the
  preset supplies the whole prompt.
- PaliGemma: Google's PaliGemma prompt syntax "answer {lang} {question}\\n" (ai.google.dev PaliGemma
  "prompt and system instructions"); the HF processor inserts the image tokens, BOS and the trailing "\\n".
"""

from __future__ import annotations

from dataclasses import dataclass

LLAVA_SHORT = "\nAnswer the question using a single word or phrase."
VICUNA_V1_SYSTEM = ("A chat between a curious human and an artificial intelligence assistant. "
                    "The assistant gives helpful, detailed, and polite answers to the human's questions.")


@dataclass(frozen=True)
class Preset:
    name: str
    model_types: tuple[str, ...]        # transformers `config.model_type` values that `auto` maps here
    default_path: str                   # a public checkpoint of the family (used when -M path is not given)
    prompt_suffix: str = ""
    system_prompt: str | None = None
    prompt_template: str | None = None  # used only when the processor has no chat template (prompting.py)
    max_new_tokens: int = 128
    source: str = ""


PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("llava-1.5", ("llava",), "llava-hf/llava-1.5-7b-hf", LLAVA_SHORT, VICUNA_V1_SYSTEM,
           prompt_template="{system} USER: {image}\n{question} ASSISTANT:",
           source="LLaVA scripts/v1_5/eval/pope.sh + model_vqa_loader.py (conv vicuna_v1, temperature 0)"),
    Preset("llava-next", ("llava_next",), "llava-hf/llava-v1.6-vicuna-7b-hf", LLAVA_SHORT,
           source="lmms-eval tasks/pope/pope.yaml default post_prompt"),
    Preset("qwen2-vl", ("qwen2_vl",), "Qwen/Qwen2-VL-7B-Instruct", " Please answer yes or no.",
           source="VLMEvalKit vlmeval/vlm/qwen2_vl/prompt.py _build_yorn_prompt"),
    Preset("qwen2.5-vl", ("qwen2_5_vl",), "Qwen/Qwen2.5-VL-7B-Instruct", " Please answer yes or no.",
           source="VLMEvalKit vlmeval/vlm/qwen2_vl/prompt.py _build_yorn_prompt (shared by Qwen2.5-VL)"),
    Preset("instructblip", ("instructblip",), "Salesforce/instructblip-vicuna-7b",
           prompt_template="Question: {question} Short answer:",
           source="InstructBLIP paper, VQA instruction template (LAVIS InstructBLIP eval configs)"),
    Preset("idefics3", ("idefics3",), "HuggingFaceM4/Idefics3-8B-Llama3", LLAVA_SHORT,
           source="lmms-eval tasks/pope/pope.yaml default post_prompt"),
    Preset("paligemma", ("paligemma",), "google/paligemma-3b-mix-224",
           prompt_template="{image}answer en {question}", max_new_tokens=32,
           source="PaliGemma prompt syntax 'answer en {question}\\n' (ai.google.dev PaliGemma docs)"),
)}

#: `preset=none`: no suffix, no system prompt, the model's chat template as is.
NO_PRESET = Preset("none", (), "", source="no preset: the benchmark question as is")


def preset_for_model_type(model_type: str) -> Preset:
    """The preset whose family matches `model_type`, else `NO_PRESET`."""
    for preset in PRESETS.values():
        if model_type in preset.model_types:
            return preset
    return NO_PRESET


def preset_table() -> list[tuple[str, str, str, str]]:
    """(name, model types, suffix or template, source) for docs and `--help`."""
    return [(p.name, ",".join(p.model_types), repr(p.prompt_template or p.prompt_suffix), p.source)
            for p in PRESETS.values()]
