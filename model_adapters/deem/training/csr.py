"""CSR, DEEM's diffusion-aligned encoder training step, for a DEEM model or an HF LLaVA-style vision tower.

loss = weight * MSE(UNet(noisy latents, t, condition), noise)  +  text_weight * next-token loss (captions)

where `condition` comes from the trained encoder: DEEM's 77 resampler tokens through `to_condition`, or, for
LLaVA ("LLaVA + CSR"), the vision tower's patch features through a learned linear projection to the
UNet's cross-attention width. The teacher (UNet, VAE) and the LLM are frozen - requires_grad False - but
sit inside the graph, so the gradient of both losses reaches the encoder side.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch import nn

from deem_eval.core.errors import DeemEvalError

from ..model.images import open_rgb, to_pixels
from .diffusion import DiffusionTeacher

if TYPE_CHECKING:
    from transformers import PreTrainedModel

DEEM_GROUPS = ("encoder", "tokenizer", "xattn")


@dataclass
class CsrLosses:
    total: torch.Tensor            # what backward() is called on
    diffusion: float               # un-weighted noise-prediction MSE (batch mean)
    text: float | None             # next-token loss (None: no captions in the batch)
    text_tokens: int = 0
    truncated: int = 0             # captions cut to the context this step


class CsrTarget(Protocol):
    """What CSR trains: its parameters, and the condition (+ optional text loss) for a batch of images."""

    kind: str

    def trainable(self) -> list[tuple[str, nn.Parameter]]: ...

    def condition_and_text(self, images: Sequence[Any], captions: Sequence[str | None]
                           ) -> tuple[torch.Tensor, Any | None]: ...

    def state_dict_to_save(self) -> dict[str, torch.Tensor]: ...

    def load_saved_state(self, state: dict[str, torch.Tensor]) -> None: ...


def _captioned(captions: Sequence[str | None]) -> list[int]:
    return [i for i, c in enumerate(captions) if c]


class DeemCsrTarget:
    """CSR on a DeemModel. `groups`: which of encoder / tokenizer / xattn train (the LLM never does)."""

    kind = "deem"

    def __init__(self, model, groups: Sequence[str] = DEEM_GROUPS):
        unknown = sorted(set(groups) - set(DEEM_GROUPS))
        if unknown:
            raise DeemEvalError(f"unknown parameter groups {unknown}; choose from {', '.join(DEEM_GROUPS)}")
        self.model, self.groups = model, tuple(groups)
        model.requires_grad_(False)
        all_groups = model.parameter_groups()
        self._trainable = [(n, p) for g in self.groups for n, p in all_groups[g]]
        for _, p in self._trainable:
            p.requires_grad_(True)

    def trainable(self) -> list[tuple[str, nn.Parameter]]:
        return self._trainable

    def pixels(self, images: Sequence[Any]) -> torch.Tensor:
        v = self.model.config.visual
        return to_pixels(images, v.image_size, min_side=v.stride).to(self.model.device, self.model.dtype)

    def condition_and_text(self, images, captions):
        from ..model.visual import VisualOutput

        visual = self.model.visual(self.pixels(images))
        condition = self.model.visual.condition(visual)
        rows = _captioned(captions)
        if not rows:
            return condition, None
        idx = torch.tensor(rows, device=condition.device)
        sub = VisualOutput(visual.queries[idx], visual.llm_tokens[idx], [lvl[idx] for lvl in visual.levels])
        return condition, self.model.caption_loss(sub, [captions[i] for i in rows])

    def state_dict_to_save(self) -> dict[str, torch.Tensor]:
        names = {n for g in DEEM_GROUPS for n, _ in self.model.parameter_groups()[g]}
        return {k: v for k, v in self.model.state_dict().items() if k in names}

    def load_saved_state(self, state: dict[str, torch.Tensor]) -> None:
        from ..model.checkpoint import load_partial

        load_partial(self.model, state, what="CSR checkpoint")


def vision_tower_of(model: nn.Module) -> nn.Module:
    for owner in (getattr(model, "model", None), model):
        tower = getattr(owner, "vision_tower", None) if owner is not None else None
        if isinstance(tower, nn.Module):
            return tower
    raise DeemEvalError(f"{type(model).__name__} has no vision_tower; LLaVA + CSR needs a LLaVA-style model")


class LlavaCsrTarget:
    """CSR on an HF LLaVA-style model's vision tower, plus a learned projection to the UNet's width."""

    kind = "llava"

    def __init__(self, model: PreTrainedModel, processor, condition_dim: int, *, seed: int = 0,
                 max_text_tokens: int = 512, train_projector: bool = False):
        from ..model.init import init_generic

        self.model, self.processor, self.max_text_tokens = model, processor, max_text_tokens
        cfg = model.config
        self.feature_layer = cfg.vision_feature_layer
        self.strategy = cfg.vision_feature_select_strategy
        n_layers = len(self.feature_layer) if isinstance(self.feature_layer, (list, tuple)) else 1
        width = cfg.vision_config.hidden_size * n_layers
        self.tower = vision_tower_of(model)
        device = next(model.parameters()).device
        self.projection = nn.Linear(width, condition_dim).to(device)
        init_generic(self.projection, seed, "csr_projection", style="normal", std=1.0 / math.sqrt(width))
        model.requires_grad_(False)
        self.tower.requires_grad_(True)
        projector = getattr(getattr(model, "model", model), "multi_modal_projector", None)
        if train_projector and projector is not None:
            projector.requires_grad_(True)

    def trainable(self) -> list[tuple[str, nn.Parameter]]:
        own = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        return own + [(f"csr_projection.{n}", p) for n, p in self.projection.named_parameters()]

    def _features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        out = self.tower(pixel_values, output_hidden_states=True)
        layers = self.feature_layer if isinstance(self.feature_layer, (list, tuple)) else [self.feature_layer]
        feats = [out.hidden_states[i] for i in layers]
        if self.strategy == "default":
            feats = [f[:, 1:] for f in feats]
        return torch.cat(feats, dim=-1)

    def condition_and_text(self, images, captions):
        images = [open_rgb(im) for im in images]
        image_token = getattr(self.processor, "image_token", "<image>")
        device = next(self.model.parameters()).device
        dtype = next(self.tower.parameters()).dtype
        enc = self.processor(text=[f"{image_token}\n"] * len(images), images=images, return_tensors="pt")
        pixel_values = enc["pixel_values"].to(device, dtype)
        condition = self.projection(self._features(pixel_values).to(self.projection.weight.dtype))
        rows = _captioned(captions)
        if not rows:
            return condition, None
        return condition, self._text_loss(enc, pixel_values, [captions[i] for i in rows], rows)

    def _text_loss(self, enc, pixel_values, captions, rows):
        from ..model.model import TextLoss, caption_batch

        tok = self.processor.tokenizer
        prefix = enc["input_ids"][0].tolist()
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        input_ids, labels, mask, truncated = caption_batch(tok, prefix, captions, self.max_text_tokens, pad)
        device = pixel_values.device
        idx = torch.tensor(rows, device=device)
        out = self.model(input_ids=input_ids.to(device), attention_mask=mask.to(device),
                         pixel_values=pixel_values[idx], labels=labels.to(device))
        return TextLoss(out.loss, int((labels[:, 1:] != -100).sum()), truncated)

    def state_dict_to_save(self) -> dict[str, torch.Tensor]:
        state = {n: p.detach() for n, p in self.trainable()}
        return {k: v.contiguous() for k, v in state.items()}

    def load_saved_state(self, state: dict[str, torch.Tensor]) -> None:
        params = dict(self.trainable())
        missing = sorted(set(params) - set(state))
        unexpected = sorted(set(state) - set(params))
        if missing or unexpected:
            raise DeemEvalError(f"CSR checkpoint does not match this LLaVA model (missing {missing[:3]}, "
                                f"unexpected {unexpected[:3]})")
        with torch.no_grad():
            for name, p in params.items():
                p.copy_(state[name].to(p.device, p.dtype))


def csr_losses(target: CsrTarget, teacher: DiffusionTeacher, images: Sequence[Any], captions: Sequence[str | None],
               generator: torch.Generator, *, weight: float, text_weight: float = 1.0) -> CsrLosses:
    """One micro-batch of CSR: the weighted diffusion loss (+ caption loss), ready for backward()."""
    teacher_size = teacher.config.image_size
    targets = to_pixels(images, teacher_size, min_side=1, value_range=(-1.0, 1.0))
    condition, text = target.condition_and_text(images, captions)
    diffusion = teacher.loss(targets.to(condition.device), condition, generator).mean()
    total = weight * diffusion
    if text is not None:
        total = total + text_weight * text.loss
    return CsrLosses(total, float(diffusion.detach()), None if text is None else float(text.loss.detach()),
                     0 if text is None else text.tokens, 0 if text is None else text.truncated)
