"""Cross-attention blocks attached to an unmodified Hugging Face Llama, by forward hooks.

The LLM keeps its own module tree and parameter names (so `from_pretrained` / `save_pretrained` work
unchanged); the blocks live beside it. A forward hook on decoder layer i (i % every == 0) adds the gated
deformable cross-attention update to that layer's output. Which image the batch looks at is set for the
duration of a call with `ImageContext.bound(...)`: the hooks read it, so `generate()` (beam search, KV
cache) needs no changes - a text token's update depends only on its own hidden state and the image, and
beam search's batch expansion is handled by repeating the image rows.

Official DEEM places the block between a layer's self-attention and its MLP; here it follows the layer's
MLP (i.e. it sits between layer i and i+1). Both are a zero-initialised residual branch; hooking the layer
output avoids re-implementing Llama's layer (there are no released DEEM weights whose placement we would
have to reproduce).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import cast

import torch
from torch import nn

from deem_eval.core.errors import DeemEvalError

from .config import DeemConfig
from .deform_attn import DeformableCrossAttention


@dataclass
class ImageContext:
    """What the cross-attention hooks see during one LLM call (None outside `bound`)."""

    levels: list[torch.Tensor] | None = None       # [B, C, H, W] per level
    image_pos: torch.Tensor | None = None          # [B] position id of the first image token
    _values: dict[tuple[int, int], list[torch.Tensor]] = field(default_factory=dict)

    @contextmanager
    def bound(self, levels: list[torch.Tensor], image_pos: torch.Tensor) -> Iterator[None]:
        self.levels, self.image_pos, self._values = levels, image_pos, {}
        try:
            yield
        finally:
            self.levels, self.image_pos, self._values = None, None, {}

    @property
    def active(self) -> bool:
        return self.levels is not None

    def values(self, index: int, block: DeformableCrossAttention, batch: int) -> list[torch.Tensor]:
        """Block `index`'s projected values for a batch of `batch` rows (a multiple of the image batch)."""
        key = (index, batch)
        if key not in self._values:
            levels = self.levels
            if levels is None:
                raise RuntimeError("ImageContext.values() was called outside bound(...)")
            base = self._values.get((index, levels[0].shape[0]))
            if base is None:
                base = block.values(levels)
                self._values[(index, levels[0].shape[0])] = base
            repeat = batch // levels[0].shape[0]
            self._values[key] = base if repeat == 1 else [
                v.view(-1, block.heads, *v.shape[1:]).repeat_interleave(repeat, dim=0).flatten(0, 1) for v in base]
        return self._values[key]

    def mask(self, position_ids: torch.Tensor | None, batch: int, length: int, device) -> torch.Tensor:
        """[batch, length]: 1 where the token is at or after the image (by position id).

        Without position ids a token's place relative to the image is unknown; guessing "after" would let
        the prompt's text before the image attend to it, so that is an error. (Llama's model forward
        always hands its layers position ids - computed from the cache when the caller gives none - and
        `generate()` derives them from the attention mask on every step.)"""
        if position_ids is None:
            raise DeemEvalError("DEEM cross-attention was called without position_ids, so it cannot tell which "
                                "tokens follow the image; call the LLM with position_ids (DeemModel does)")
        image_pos = self.image_pos
        if image_pos is None:
            raise RuntimeError("ImageContext.mask() was called outside bound(...)")
        repeat = batch // image_pos.shape[0]
        if repeat != 1:
            image_pos = image_pos.repeat_interleave(repeat)
        position_ids = position_ids.expand(batch, -1) if position_ids.shape[0] == 1 else position_ids
        return (position_ids >= image_pos.to(position_ids.device).unsqueeze(1)).float()


def xattn_layer_indices(config: DeemConfig) -> list[int]:
    return [i for i in range(config.llm.num_layers) if i % config.xattn.every == 0]


class LayerCrossAttention(DeformableCrossAttention):
    """A cross-attention block that knows its decoder layer's image context; `layer_hook` is registered as
    that layer's forward hook. (A bound method, not a closure, so copy.deepcopy of the model re-binds it.)"""

    def bind(self, index: int, context: ImageContext) -> None:
        self._index, self._context = index, context

    def layer_hook(self, module, args, kwargs, output):
        context = self._context
        if not context.active:
            return None
        hidden = output[0] if isinstance(output, tuple) else output
        b, n, _ = hidden.shape
        mask = context.mask(kwargs.get("position_ids"), b, n, hidden.device)
        hidden = hidden + self(hidden, context.values(self._index, self, b), mask)
        return (hidden, *output[1:]) if isinstance(output, tuple) else hidden


def build_xattn_blocks(config: DeemConfig) -> nn.ModuleList:
    strides = config.visual.convnext.strides
    base = strides[config.xattn.base_level]
    ratios = tuple(base / strides[i] for i in config.visual.xattn_levels)
    return nn.ModuleList(
        LayerCrossAttention(query_dim=config.llm.hidden_size, value_dim=config.visual.feature_dim,
                            scale_ratios=ratios, heads=config.xattn.heads, points=config.xattn.points,
                            eps=config.llm.rms_norm_eps)
        for _ in xattn_layer_indices(config))


def attach_xattn(llm: nn.Module, blocks: nn.ModuleList, layer_indices: list[int], context: ImageContext) -> list:
    """Register the hooks; returns their handles (remove() them to detach)."""
    layers = cast(nn.ModuleList, cast(nn.Module, llm.model).layers)      # a Hugging Face Llama's decoder layers
    handles = []
    for index, (layer_idx, module) in enumerate(zip(layer_indices, blocks)):
        block = cast(LayerCrossAttention, module)                            # build_xattn_blocks' blocks
        block.bind(index, context)
        handles.append(layers[layer_idx].register_forward_hook(block.layer_hook, with_kwargs=True))
    return handles
