"""Turn a benchmark question into the model's prompt text.

Order of precedence (first that applies):
1. `-M prompt_template=...` given by the user;
2. the processor's chat template (`use_chat_template=true`, the default): one user turn holding the image
   then the text `question + suffix`, preceded by a system turn when a system prompt is set, rendered with
   `add_generation_prompt=True`;
3. the preset's template (families whose processors ship without a chat template: PaliGemma,
   InstructBLIP, a LLaVA checkpoint without one);
4. the fallback `FALLBACK_TEMPLATE` = "{system}{image}\\n{question}".

Templates are plain text with three placeholders, substituted literally (questions may contain braces):
`{image}` -> the processor's image placeholder (`processor.image_token`, else "<image>"), `{question}` ->
question + suffix, `{system}` -> the system prompt ("" if none; in the fallback, system + "\\n").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

FALLBACK_TEMPLATE = "{system}{image}\n{question}"


@dataclass(frozen=True)
class PromptFormat:
    """How prompts are built for one loaded model (resolved once, recorded in the run manifest)."""

    kind: str                   # "template" | "chat_template" | "fallback"
    template: str | None        # for template / fallback
    system_prompt: str | None
    suffix: str
    image_token: str
    preset_suffix: bool = False  # the suffix is the preset's default: the question's own instruction wins

    def render(self, processor: Any, question: str) -> str:
        text = question.strip()
        if not (self.preset_suffix and has_answer_instruction(text)):
            text += self.suffix
        if self.kind == "chat_template":
            messages: list[dict[str, Any]] = []
            if self.system_prompt:
                messages.append({"role": "system", "content": [{"type": "text", "text": self.system_prompt}]})
            messages.append({"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]})
            return processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        assert self.template is not None
        system = self.system_prompt or ""
        if self.kind == "fallback" and system:
            system += "\n"
        return (self.template.replace("{system}", system).replace("{image}", self.image_token)
                .replace("{question}", text))


# How a question already tells the model the answer format (a split's own instruction, e.g. RobustVQA's
# paper template "... Please answer yes or no.", or DEEM's "Please anwser yes or no").
_ANSWER_INSTRUCTION = re.compile(r"(please\s+an[sw]{2}er\s+yes\s+or\s+no|answer\s+(the\s+question\s+)?(with|using)\s+"
                                 r"(a\s+single\s+word(\s+or\s+phrase)?|yes\s+or\s+no)|answer\s+yes\s+or\s+no)[.!]?\s*$", re.IGNORECASE)


def has_answer_instruction(question: str) -> bool:
    """Whether `question` ends with its own answer-format instruction. One owner for the prompt: the split
    owns the question and any instruction it carries; a preset's suffix (its family's published instruction)
    is added only to questions without one, so an instruction is never given twice."""
    return bool(_ANSWER_INSTRUCTION.search(question))


def resolve_prompt_format(processor: Any, *, user_template: str | None, use_chat_template: bool,
                          preset_template: str | None, system_prompt: str | None, suffix: str,
                          preset_suffix: bool = False) -> PromptFormat:
    """`preset_suffix`: `suffix` is the preset's default (not set with -M prompt_suffix=), so questions with
    their own answer instruction do not get it a second time."""
    image_token = getattr(processor, "image_token", None) or "<image>"
    has_chat = bool(getattr(processor, "chat_template", None))
    if user_template:
        kind, template = "template", user_template
    elif use_chat_template and has_chat:
        kind, template = "chat_template", None
    elif preset_template:
        kind, template = "template", preset_template
    else:
        kind, template = "fallback", FALLBACK_TEMPLATE
    return PromptFormat(kind, template, system_prompt, suffix, image_token, preset_suffix)
