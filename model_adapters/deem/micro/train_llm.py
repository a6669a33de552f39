"""Phase 3 of train-micro: micro-LLM, a small Llama pretrained on the training world's text (the Vicuna role).

Text only, next-token loss on every token: captions, and DEEM's VQA prompt (without the image block) with
the world's questions and answers. Without the image an answer is a guess, so this teaches the language
and the answer format, not the answers; seeing is what the DEEM stages add.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from deem_eval.core.rng import derive_rng

from .clip import tokenize
from .loop import LoopConfig, run_loop, seeded
from .tasks import questions
from .world import World


def corpus(world: World, seed: int) -> list[str]:
    from ..model.config import PromptConfig

    prompt = PromptConfig()
    lines = [it.caption for it in world.items]
    lines += [f"{prompt.render(q.question, '')} {q.answer}" for q in questions(world, seed)]
    return lines


def train_llm(directory: Path, world: World, tokenizer, *, loop: LoopConfig, batch_size: int, seed: int,
              progress: bool = True) -> tuple[Any, list[dict[str, Any]]]:
    from transformers import LlamaForCausalLM

    from ..model.presets import DEEM_MICRO, llama_config

    llm = seeded(lambda: LlamaForCausalLM(llama_config(DEEM_MICRO.llm)), seed, "micro-llm")
    lines = corpus(world, seed)

    def step(step: int) -> dict[str, Any]:
        rng = derive_rng(seed, "micro-llm", "batch", step)
        texts = [lines[int(i)] for i in rng.choice(len(lines), size=batch_size, replace=False)]
        ids, mask = tokenize(tokenizer, texts, DEEM_MICRO.max_text_tokens)
        logits = llm(input_ids=ids, attention_mask=mask).logits
        labels = ids.masked_fill(mask == 0, -100)[:, 1:]
        return {"loss": F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels.reshape(-1),
                                        ignore_index=-100)}

    history = run_loop(directory, llm, loop, step, what="micro-LLM", progress=progress)
    llm.requires_grad_(False)
    return llm.eval(), history


@torch.no_grad()
def perplexity(llm, tokenizer, texts: list[str], max_tokens: int) -> float:
    ids, mask = tokenize(tokenizer, texts, max_tokens)
    logits = llm(input_ids=ids, attention_mask=mask).logits
    labels = ids.masked_fill(mask == 0, -100)[:, 1:]
    loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)
    return float(loss.exp())
