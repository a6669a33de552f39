"""The DEEM model for inference and training: visual tokenizer + Llama with deformable cross-attention.

A prompt holds `<|startofimage|>` followed by `num_queries` `<|sniffer|>` placeholders (the official
layout). Both are tokenizer-only special tokens: their rows are never looked up in the LLM's embedding
table - the start marker gets a learned vector and the placeholders get the resampler's projected tokens -
so the LLM's vocabulary and weights stay exactly those of the checkpoint. No diffusion model is held here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from deem_eval.core.errors import DeemEvalError

from .config import IMAGE_START_TOKEN, IMAGE_TOKEN, DeemConfig
from .llm import ImageContext, attach_xattn, build_xattn_blocks, xattn_layer_indices
from .visual import VisualOutput, VisualTokenizer

if TYPE_CHECKING:
    from transformers import LlamaForCausalLM


@dataclass
class TextLoss:
    loss: torch.Tensor       # mean next-token cross-entropy over caption tokens
    tokens: int              # caption tokens scored (incl. EOS)
    truncated: int           # captions cut to fit max_text_tokens


def caption_batch(tokenizer, prefix: list[int], captions: Sequence[str], max_tokens: int, pad_id: int,
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """Rows "prefix + caption + EOS", right-padded: input ids, labels (-100 except on caption and EOS), the
    attention mask, and how many captions were cut to fit `max_tokens` (shared by DEEM and LLaVA + CSR)."""
    room = max_tokens - len(prefix) - 1
    rows, truncated = [], 0
    for caption in captions:
        ids = tokenizer(caption, add_special_tokens=False).input_ids
        if len(ids) > room:
            ids, truncated = ids[:max(room, 0)], truncated + 1
        rows.append(prefix + ids + [tokenizer.eos_token_id])
    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full_like(input_ids, -100)
    mask = torch.zeros_like(input_ids)
    for i, row in enumerate(rows):
        input_ids[i, :len(row)] = torch.tensor(row)
        labels[i, len(prefix):len(row)] = torch.tensor(row[len(prefix):])
        mask[i, :len(row)] = 1
    return input_ids, labels, mask, truncated


class DeemModel(nn.Module):
    def __init__(self, config: DeemConfig, llm: LlamaForCausalLM, tokenizer):
        super().__init__()
        self.config = config
        hidden = llm.config.hidden_size
        self.visual = VisualTokenizer(config.visual, hidden, config.diffusion.condition_dim)
        self.llm = llm
        self.xattn = build_xattn_blocks(config)
        self.image_start = nn.Parameter(torch.zeros(hidden))
        self.text_vocab = text_vocabulary(tokenizer)  # ids the LLM may generate (its table can be larger)
        self.tokenizer = prepare_tokenizer(tokenizer)
        self.image_start_id = self.tokenizer.convert_tokens_to_ids(IMAGE_START_TOKEN)
        self.image_token_id = self.tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
        self.image_block = IMAGE_START_TOKEN + IMAGE_TOKEN * config.visual.num_queries
        self._context = ImageContext()
        self._hooks = attach_xattn(llm, self.xattn, xattn_layer_indices(config), self._context)

    # ---- groups of parameters ------------------------------------------------------------------------
    def parameter_groups(self) -> dict[str, list[tuple[str, nn.Parameter]]]:
        """encoder (ConvNeXt + adapters), tokenizer (resampler side + projections + image start),
        xattn (the LLM's cross-attention blocks), llm (the language model's own weights)."""
        groups: dict[str, list] = {"encoder": [], "tokenizer": [], "xattn": [], "llm": []}
        for name, p in self.named_parameters():
            if name.startswith("visual.encoder."):
                groups["encoder"].append((name, p))
            elif name.startswith(("visual.", "image_start")):
                groups["tokenizer"].append((name, p))
            elif name.startswith("xattn."):
                groups["xattn"].append((name, p))
            else:
                groups["llm"].append((name, p))
        return groups

    @property
    def device(self) -> torch.device:
        return self.image_start.device

    @property
    def dtype(self) -> torch.dtype:
        return self.image_start.dtype

    # ---- text --------------------------------------------------------------------------------------------
    def prompts(self, questions: Sequence[str]) -> list[str]:
        return [self.config.prompt.render(q, self.image_block) for q in questions]

    def tokenize_prompts(self, questions: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        enc = self.tokenizer(self.prompts(questions), padding=True, return_tensors="pt")
        return enc.input_ids.to(self.device), enc.attention_mask.to(self.device)

    def embed(self, input_ids: torch.Tensor, visual: VisualOutput) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs_embeds [B, L, D], image_pos [B]) with the image block filled in."""
        is_img = input_ids == self.image_token_id
        is_start = input_ids == self.image_start_id
        counts = is_img.sum(1)
        q = self.config.visual.num_queries
        if bool((counts != q).any()) or bool((is_start.sum(1) != 1).any()):
            raise DeemEvalError(f"every sequence needs exactly one image block ({q} image tokens); got "
                                f"{counts.tolist()} (was a caption or question cut into the image block?)")
        embeds = self.llm.get_input_embeddings()(input_ids.masked_fill(is_img | is_start, 0))
        tokens = visual.llm_tokens.to(embeds.dtype)
        embeds = embeds.masked_scatter(is_img.unsqueeze(-1), tokens.reshape(-1, tokens.shape[-1]))
        embeds = torch.where(is_start.unsqueeze(-1), self.image_start.to(embeds.dtype), embeds)
        first = is_img.float().argmax(dim=1)
        return embeds, first

    @staticmethod
    def position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
        return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)

    # ---- inference ---------------------------------------------------------------------------------------
    def _inputs(self, pixels: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        visual = self.visual(pixels.to(self.device, self.dtype))
        embeds, first = self.embed(input_ids, visual)
        positions = self.position_ids(attention_mask)
        image_pos = positions.gather(1, first.unsqueeze(1)).squeeze(1)
        return visual, embeds, positions, image_pos

    @torch.no_grad()
    def next_token_logits(self, pixels: torch.Tensor, input_ids: torch.Tensor,
                          attention_mask: torch.Tensor) -> torch.Tensor:
        """Logits [B, vocab] for the token after each (left-padded) prompt."""
        visual, embeds, positions, image_pos = self._inputs(pixels, input_ids, attention_mask)
        with self._context.bound(visual.levels, image_pos):
            out = self.llm(inputs_embeds=embeds, attention_mask=attention_mask, position_ids=positions,
                           use_cache=False, logits_to_keep=1)
        return out.logits[:, -1].float()

    @torch.no_grad()
    def generate(self, pixels: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor, *,
                 num_beams: int = 3, max_new_tokens: int = 10, length_penalty: float = 0.0,
                 min_new_tokens: int = 0) -> list[str]:
        from transformers import GenerationConfig

        visual, embeds, _, image_pos = self._inputs(pixels, input_ids, attention_mask)
        tok = self.tokenizer
        beam = {"length_penalty": length_penalty} if num_beams > 1 else {}
        # DEEM stops at </s> and at the image-start marker (its interleaved generation hands over to the image
        # decoder there); ours never emits the marker (ids past the text vocabulary are suppressed), listed anyway
        gen = GenerationConfig(do_sample=False, num_beams=num_beams, max_new_tokens=max_new_tokens,
                               min_new_tokens=min_new_tokens or None, **beam,
                               eos_token_id=[tok.eos_token_id, self.image_start_id],
                               pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                               temperature=None, top_p=None, top_k=None,
                               suppress_tokens=list(range(self.text_vocab, self.llm.config.vocab_size)) or None)
        with self._context.bound(visual.levels, image_pos):
            out = self.llm.generate(inputs_embeds=embeds, attention_mask=attention_mask, generation_config=gen)
        return [t.strip() for t in tok.batch_decode(out, skip_special_tokens=True)]

    # ---- training ------------------------------------------------------------------------------------------
    def answer_loss(self, visual: VisualOutput, turns: Sequence[Sequence[tuple[str, str]]]) -> TextLoss:
        """Supervised answer loss (stage 2): next-token cross-entropy on the answer tokens (and EOS) only."""
        input_ids, labels, mask = (t.to(self.device) for t in answer_batch(self, turns))
        return self._lm_loss(visual, input_ids, labels, mask, 0)

    def _lm_loss(self, visual: VisualOutput, input_ids: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor,
                 truncated: int) -> TextLoss:
        embeds, first = self.embed(input_ids, visual)
        positions = self.position_ids(mask)
        with self._context.bound(visual.levels, positions.gather(1, first.unsqueeze(1)).squeeze(1)):
            logits = self.llm(inputs_embeds=embeds, attention_mask=mask, position_ids=positions,
                              use_cache=False).logits
        target = labels[:, 1:]
        loss = F.cross_entropy(logits[:, :-1].float().reshape(-1, logits.shape[-1]), target.reshape(-1),
                               ignore_index=-100)
        return TextLoss(loss, int((target != -100).sum()), truncated)

    def caption_loss(self, visual: VisualOutput, captions: Sequence[str]) -> TextLoss:
        """Next-token loss of "<s><image block>{caption}</s>" on the caption and EOS tokens."""
        tok = self.tokenizer
        q = self.config.visual.num_queries
        prefix = [tok.bos_token_id, self.image_start_id] + [self.image_token_id] * q
        room = self.config.max_text_tokens - len(prefix) - 1
        if room < 1:
            raise DeemEvalError(f"max_text_tokens {self.config.max_text_tokens} leaves no room for a caption")
        input_ids, labels, mask, truncated = caption_batch(tok, prefix, captions, self.config.max_text_tokens,
                                                           tok.pad_token_id)
        input_ids, labels, mask = (t.to(self.device) for t in (input_ids, labels, mask))
        return self._lm_loss(visual, input_ids, labels, mask, truncated)


def answer_batch(model: DeemModel, turns: Sequence[Sequence[tuple[str, str]]]
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rows of DEEM's VQA prompt with the answers filled in, right-padded: input ids, labels (-100 except on
    each answer's tokens and its EOS), attention mask. Turn 1 carries the image block; later turns repeat the
    user/assistant frame without it. The answer is tokenised apart from the prompt (" " + answer), exactly
    the tokens generation produces after "... The answer is"."""
    tok, prompt = model.tokenizer, model.config.prompt
    rows: list[tuple[list[int], list[int]]] = []
    for conversation in turns:
        ids: list[int] = []
        labels: list[int] = []
        for k, (question, answer) in enumerate(conversation):
            if k == 0:
                text = prompt.render(question, model.image_block)
                part = tok(text).input_ids                   # BOS + prompt
            else:
                text = f" {prompt.user.format(image='', question=question)} {prompt.assistant}"
                part = tok(text, add_special_tokens=False).input_ids
            reply = tok(" " + answer.strip(), add_special_tokens=False).input_ids + [tok.eos_token_id]
            ids += part + reply
            labels += [-100] * len(part) + reply
        rows.append((ids[: model.config.max_text_tokens], labels[: model.config.max_text_tokens]))
    width = max(len(r[0]) for r in rows)
    input_ids = torch.full((len(rows), width), tok.pad_token_id, dtype=torch.long)
    label_ids = torch.full_like(input_ids, -100)
    mask = torch.zeros_like(input_ids)
    for i, (ids, labels) in enumerate(rows):
        input_ids[i, : len(ids)] = torch.tensor(ids)
        label_ids[i, : len(labels)] = torch.tensor(labels)
        mask[i, : len(ids)] = 1
    return input_ids, label_ids, mask


def text_vocabulary(tokenizer) -> int:
    """Tokenizer size without the image tokens (appended last when added)."""
    vocab = tokenizer.get_vocab()
    ids = [vocab[t] for t in (IMAGE_START_TOKEN, IMAGE_TOKEN) if t in vocab]
    return min(ids) if ids else len(tokenizer)


def prepare_tokenizer(tokenizer):
    """Add the image tokens (tokenizer-only), left padding, and a pad token (unk, as Vicuna has none)."""
    extra = [t for t in (IMAGE_START_TOKEN, IMAGE_TOKEN) if t not in tokenizer.get_vocab()]
    if extra:
        tokenizer.add_tokens(extra, special_tokens=True)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.unk_token or tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer
