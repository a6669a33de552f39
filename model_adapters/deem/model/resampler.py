"""The perceiver resampler: a fixed set of learned queries that read the image tokens (Q-Former style).

Each layer: self-attention among the queries, cross-attention to the image tokens on every
`cross_every`-th layer, then an MLP; post-LayerNorm residuals as in BLIP-2's Q-Former, which DEEM's code
instantiates (77 queries, width 768, 12 layers, 12 heads, cross-attention every 2nd layer, q/k norm).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, kv_dim: int | None = None, qk_norm: bool = False):
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        kv_dim = kv_dim or dim
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(kv_dim, dim)
        self.v = nn.Linear(kv_dim, dim)
        self.out = nn.Linear(dim, dim)
        self.q_norm = nn.LayerNorm(self.head_dim) if qk_norm else nn.Identity()
        self.k_norm = nn.LayerNorm(self.head_dim) if qk_norm else nn.Identity()

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        context = x if context is None else context
        b, n, _ = x.shape
        m = context.shape[1]
        q = self.q_norm(self.q(x).view(b, n, self.heads, self.head_dim)).transpose(1, 2)
        k = self.k_norm(self.k(context).view(b, m, self.heads, self.head_dim)).transpose(1, 2)
        v = self.v(context).view(b, m, self.heads, self.head_dim).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k, v)
        return self.out(y.transpose(1, 2).reshape(b, n, -1))


class ResamplerLayer(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_dim: int, context_dim: int, cross: bool, qk_norm: bool):
        super().__init__()
        self.self_attn = Attention(dim, heads, qk_norm=qk_norm)
        self.self_norm = nn.LayerNorm(dim, eps=1e-12)
        self.cross_attn = Attention(dim, heads, kv_dim=context_dim, qk_norm=qk_norm) if cross else None
        self.cross_norm = nn.LayerNorm(dim, eps=1e-12) if cross else None
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_dim), nn.GELU(), nn.Linear(mlp_dim, dim))
        self.mlp_norm = nn.LayerNorm(dim, eps=1e-12)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        x = self.self_norm(x + self.self_attn(x))
        if self.cross_attn is not None and self.cross_norm is not None:
            x = self.cross_norm(x + self.cross_attn(x, context))
        return self.mlp_norm(x + self.mlp(x))


class PerceiverResampler(nn.Module):
    def __init__(self, *, num_queries: int, dim: int, layers: int, heads: int, mlp_dim: int, context_dim: int,
                 cross_every: int, qk_norm: bool):
        super().__init__()
        self.queries = nn.Parameter(torch.zeros(num_queries, dim))
        self.input_norm = nn.LayerNorm(dim, eps=1e-12)
        self.layers = nn.ModuleList(
            ResamplerLayer(dim, heads, mlp_dim, context_dim, i % cross_every == 0, qk_norm) for i in range(layers))

    def forward(self, context: torch.Tensor) -> torch.Tensor:
        """context [B, N, context_dim] -> [B, num_queries, dim]."""
        x = self.input_norm(self.queries).unsqueeze(0).expand(context.shape[0], -1, -1).to(context.dtype)
        for layer in self.layers:
            x = layer(x, context)
        return x
