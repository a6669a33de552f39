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

    def render(self, processor: Any, question: str) -> str:
        text = question.strip() + self.suffix
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


def resolve_prompt_format(processor: Any, *, user_template: str | None, use_chat_template: bool,
                          preset_template: str | None, system_prompt: str | None, suffix: str) -> PromptFormat:
    image_token = getattr(processor, "image_token", None) or "<image>"
    has_chat = bool(getattr(processor, "chat_template", None))
    if user_template:
        return PromptFormat("template", user_template, system_prompt, suffix, image_token)
    if use_chat_template and has_chat:
        return PromptFormat("chat_template", None, system_prompt, suffix, image_token)
    if preset_template:
        return PromptFormat("template", preset_template, system_prompt, suffix, image_token)
    return PromptFormat("fallback", FALLBACK_TEMPLATE, system_prompt, suffix, image_token)
