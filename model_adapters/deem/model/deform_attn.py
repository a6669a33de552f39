"""Multi-scale deformable cross-attention from text tokens to image feature maps, in plain PyTorch.

DEEM (after MM-Interleaved's "MMFS") lets every text token sample a few points of each feature level around
the image centre: per head, `points` learned offsets (shared by all levels and scaled by each level's
resolution relative to the base level) and a softmax over all (level, point) pairs plus one "null" slot
whose value is zero and whose logit is fixed at 0, so a token can attend to nothing. The official code runs
this with a compiled CUDA op; here the bilinear sampling is `F.grid_sample` (zero padding outside the map,
align_corners=False - the op's convention), which gives the same result on any device.

The block is gated (output x tanh(gate), gate = 0 at init), so an LLM with these blocks inserted computes
exactly what it computed before, and it only acts on tokens at or after the image in the sequence.

The UNet-side MMFS (mmfs.py) reuses the block with `gated=False` (its zero 1x1 conv already closes the
branch; a second zero factor would leave both with zero gradient) and with per-query `reference` points,
so each UNet cell samples around its own location instead of the image centre.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class DeformableCrossAttention(nn.Module):
    scale_ratios: torch.Tensor  # a (non-persistent) buffer

    def __init__(self, *, query_dim: int, value_dim: int, scale_ratios: tuple[float, ...], heads: int, points: int,
                 eps: float = 1e-6, gated: bool = True):
        super().__init__()
        self.heads, self.points = heads, points
        self.levels = len(scale_ratios)
        self.head_dim = value_dim // heads
        self.query_norm = nn.RMSNorm(query_dim, eps=eps)
        self.value_norm = nn.RMSNorm(value_dim, eps=eps)
        self.query_proj = nn.Linear(query_dim, query_dim)
        self.sampling_offsets = nn.Linear(query_dim, heads * points * 2)
        self.attention_weights = nn.Linear(query_dim, heads * self.levels * points)
        self.value_proj = nn.Linear(value_dim, value_dim)
        self.output_proj = nn.Linear(value_dim, query_dim)
        self.gate = nn.Parameter(torch.zeros(1)) if gated else None
        self.register_buffer("scale_ratios", torch.tensor(scale_ratios, dtype=torch.float32), persistent=False)

    def values(self, levels: list[torch.Tensor]) -> list[torch.Tensor]:
        """Per level: normalised, projected values [B*heads, head_dim, H, W] (computed once per image)."""
        out = []
        for lvl in levels:
            b, _, h, w = lvl.shape
            tokens = lvl.flatten(2).transpose(1, 2).to(self.value_norm.weight.dtype)
            v = self.value_proj(self.value_norm(tokens))                                     # [B, HW, C]
            out.append(v.view(b, h * w, self.heads, self.head_dim).permute(0, 2, 3, 1)
                       .reshape(b * self.heads, self.head_dim, h, w))
        return out

    def forward(self, hidden: torch.Tensor, values: list[torch.Tensor], mask: torch.Tensor | None = None,
                reference: torch.Tensor | None = None) -> torch.Tensor:
        """hidden [B, L, D]; values from `values()` for the same B; mask [B, L] (1 = token sees the image;
        None = all do); reference [L, 2] or [B, L, 2]: each token's (x, y) sampling centre in [0, 1]^2 (None =
        the image centre). Returns the (gated) update [B, L, D] (zero where mask is 0)."""
        b, n, _ = hidden.shape
        h, p = self.heads, self.points
        query = self.query_proj(self.query_norm(hidden.to(self.query_norm.weight.dtype)))
        offsets = self.sampling_offsets(query).view(b, n, h, p, 2).float()
        logits = self.attention_weights(query).view(b, n, h, self.levels * p).float()
        null = torch.zeros(b, n, h, 1, dtype=logits.dtype, device=logits.device)
        weights = torch.softmax(torch.cat([logits, null], dim=-1), dim=-1)[..., :-1]
        weights = weights.view(b, n, h, self.levels, p).permute(0, 2, 3, 1, 4)             # [B, H, lvl, L, P]
        centre = 0.5 if reference is None else reference.to(offsets.dtype).view(-1, n, 1, 1, 2)
        out = None
        for i, value in enumerate(values):
            lh, lw = value.shape[-2:]
            size = torch.tensor([lw, lh], dtype=offsets.dtype, device=offsets.device)
            loc = centre + offsets * self.scale_ratios[i] / size                               # [B, L, H, P, 2]
            grid = (2 * loc - 1).permute(0, 2, 1, 3, 4).reshape(b * h, n, p, 2).to(value.dtype)
            sampled = F.grid_sample(value, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
            w = weights[:, :, i].reshape(b * h, 1, n, p).to(sampled.dtype)                     # [B*H, 1, L, P]
            term = (sampled * w).sum(-1)                                                       # [B*H, hd, L]
            out = term if out is None else out + term
        if out is None:
            raise ValueError("DeformableCrossAttention: no feature levels to attend to")
        out = out.view(b, h * self.head_dim, n).transpose(1, 2)
        update = self.output_proj(out.to(hidden.dtype))
        if self.gate is not None:
            update = update * torch.tanh(self.gate).to(hidden.dtype)
        return update if mask is None else update * mask.to(update.dtype).unsqueeze(-1)
