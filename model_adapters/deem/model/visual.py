"""DEEM's visual side: CLIP ConvNeXt + multi-scale adapters -> perceiver resampler -> two projections.

    pixels -> ConvNeXt stages c2..c5 -> Linear adapters to `feature_dim` (+ the pooled token, adapted)
           -> resampler input: [pooled, c4 tokens] -> Linear + LayerNorm + 2-D sin-cos position -> LayerNorm
           -> 77 query tokens -> to_llm (image tokens in the LLM sequence)
                              -> to_condition (the UNet's cross-attention condition, CSR training only)
    multi-scale maps (+ position) -> the LLM's deformable cross-attention (levels `xattn_levels`)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from deem_eval.core.errors import DeemEvalError

from .config import VisualConfig
from .convnext import ConvNeXt
from .resampler import PerceiverResampler


@dataclass
class VisualOutput:
    queries: torch.Tensor                 # [B, Q, width] resampler output
    llm_tokens: torch.Tensor              # [B, Q, llm hidden]
    levels: list[torch.Tensor]            # [B, feature_dim, H_l, W_l] for each cross-attention level
    mmfs_levels: list[torch.Tensor] | None = None   # the adapted maps MMFSNet feeds into the UNet (finest first)


def sincos_position(dim: int, height: int, width: int, base_grid: int, device=None) -> torch.Tensor:
    """2-D sin-cos embedding [H*W, dim] of an HxW grid laid over a `base_grid` x `base_grid` frame.

    Cell centres are mapped to continuous coordinates of the base grid, so every feature level (and any
    input size) shares one coordinate frame; on the base grid itself this is MAE's embedding (first half
    encodes the row, second half the column). DEEM's code bicubically resizes the base table instead.
    """
    if dim % 4:
        raise ValueError("position embedding width must be divisible by 4")
    ys = (torch.arange(height, dtype=torch.float64, device=device) + 0.5) * base_grid / height - 0.5
    xs = (torch.arange(width, dtype=torch.float64, device=device) + 0.5) * base_grid / width - 0.5
    omega = 1.0 / 10000 ** (torch.arange(dim // 4, dtype=torch.float64, device=device) / (dim / 4))

    def embed(pos: torch.Tensor) -> torch.Tensor:
        out = pos[:, None] * omega[None, :]
        return torch.cat([out.sin(), out.cos()], dim=1)

    emb_y = embed(ys)[:, None, :].expand(height, width, -1)
    emb_x = embed(xs)[None, :, :].expand(height, width, -1)
    return torch.cat([emb_y, emb_x], dim=-1).reshape(height * width, dim).float()


class MultiScaleEncoder(nn.Module):
    """ConvNeXt trunk with a linear adapter (to `feature_dim`) for each stage the model reads - the
    resampler's level, the cross-attention levels and the MMFSNet levels (DEEM: c2..c5, the stride-4 stage
    included, for the UNet-side feature injection) - and one for the pooled token."""

    def __init__(self, config: VisualConfig):
        super().__init__()
        self.trunk = ConvNeXt(config.convnext)
        used = sorted({config.perceiver_level, *config.xattn_levels, *config.mmfs_levels})
        self.adapters = nn.ModuleDict({str(i): nn.Linear(config.convnext.dims[i], config.feature_dim) for i in used})
        self.pooled_adapter = nn.Linear(config.convnext.dims[-1], config.feature_dim)

    def forward(self, pixels: torch.Tensor) -> tuple[dict[int, torch.Tensor], torch.Tensor]:
        """({stage index: [B, feature_dim, H, W]} for the adapted stages, pooled token [B, feature_dim])."""
        stages, pooled = self.trunk(pixels)
        levels = {int(i): adapter(stages[int(i)].permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
                  for i, adapter in self.adapters.items()}
        return levels, self.pooled_adapter(pooled)


class VisualTokenizer(nn.Module):
    pixel_mean: torch.Tensor  # (non-persistent) buffers
    pixel_std: torch.Tensor

    def __init__(self, config: VisualConfig, llm_hidden: int, condition_dim: int):
        super().__init__()
        self.config = config
        e = config.feature_dim
        self.encoder = MultiScaleEncoder(config)
        self.pos_proj = nn.Linear(e, e)
        self.pos_norm = nn.LayerNorm(e, eps=1e-6)
        self.post_norm = nn.LayerNorm(e, eps=1e-6)
        self.resampler = PerceiverResampler(num_queries=config.num_queries, dim=config.width, layers=config.layers,
                                            heads=config.heads, mlp_dim=config.mlp_dim, context_dim=e,
                                            cross_every=config.cross_every, qk_norm=config.qk_norm)
        self.to_llm = nn.Linear(config.width, llm_hidden)
        self.to_condition = nn.Linear(config.width, condition_dim)
        self.register_buffer("pixel_mean", torch.tensor(config.pixel_mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(config.pixel_std).view(1, 3, 1, 1), persistent=False)

    def _position(self, h: int, w: int, like: torch.Tensor) -> torch.Tensor:
        pos = sincos_position(self.config.feature_dim, h, w, self.config.pos_grid, device=like.device)
        return pos.to(like.dtype)

    def forward(self, pixels: torch.Tensor) -> VisualOutput:
        """pixels [B, 3, S, S] in [0, 1] (already resized to `image_size`)."""
        stride = self.config.stride
        if pixels.shape[-1] < stride or pixels.shape[-2] < stride:
            raise DeemEvalError(f"encoder input {tuple(pixels.shape[-2:])} is smaller than the encoder stride {stride}")
        x = (pixels - self.pixel_mean.to(pixels.dtype)) / self.pixel_std.to(pixels.dtype)
        levels, pooled = self.encoder(x)
        grid = levels[self.config.perceiver_level]
        h, w = grid.shape[2:]
        tokens = torch.cat([pooled.unsqueeze(1), grid.flatten(2).transpose(1, 2)], dim=1)   # [B, 1 + H*W, E]
        pos = self._position(h, w, tokens)
        pos = torch.cat([torch.zeros_like(pos[:1]), pos])                                   # pooled token: none
        tokens = self.post_norm(self.pos_norm(self.pos_proj(tokens)) + pos)
        queries = self.resampler(tokens)
        xattn_levels = []
        for i in self.config.xattn_levels:
            lvl = levels[i]
            pos = self._position(lvl.shape[2], lvl.shape[3], lvl)
            xattn_levels.append(lvl + pos.T.reshape(1, -1, lvl.shape[2], lvl.shape[3]))
        mmfs = [levels[i] for i in self.config.mmfs_levels] or None
        return VisualOutput(queries, self.to_llm(queries), xattn_levels, mmfs)

    def condition(self, out: VisualOutput) -> torch.Tensor:
        """The diffusion condition [B, Q, condition_dim] from the same query tokens."""
        return self.to_condition(out.queries)

