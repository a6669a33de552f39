"""MMFSNet: the image encoder's multi-scale maps fed into a frozen Stable Diffusion UNet (DEEM stage 1).

Following MM-Interleaved, the UNet reads the encoder's c2..c5 maps (already adapted to `feature_dim`) by
multi-scale deformable cross-attention at every skip connection and at the mid-block output: the UNet's
own feature map is the query (one token per cell), each cell samples `points` points per head and level
around its own position, and the result enters through a zero-initialised 1x1 conv, ControlNet-style.
At init the UNet therefore computes exactly what it computed before, and the first gradient step already
moves the zero convs (the attention is not gated as well: a second zero factor would leave both at zero
gradient).

Like the LLM side (llm.py), a stock diffusers `UNet2DConditionModel` keeps its module tree and weights;
forward hooks add the residuals, and `MMFSNet.bound(levels)` says which image a call looks at (outside it
the hooks do nothing). Sites, in the order of the UNet's `down_block_res_samples`:

- the conv_in output (the first skip). It is not a down-block output, and hooking conv_in itself would
  also change the main path, so it is reached by a forward pre-hook on the last up block, which receives
  that tensor first in `res_hidden_states_tuple`;
- each down block's res samples (`layers_per_block` after the resnets, one more after the downsampler,
  except the last block which has none): a forward hook replaces the returned tuple. The hidden state the
  block hands down stays as it was, as with ControlNet's residuals, which are added after the down pass;
- the mid block's output.

Sampling offsets are in pixels of each level (Deformable DETR's convention; one set per head and point,
shared by the levels as in deform_attn.py), so a point one pixel away at c2 is one c5 pixel away at c5.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import partial
from typing import Any, cast

import torch
from torch import nn

from ..model.deform_attn import DeformableCrossAttention


def cell_centres(height: int, width: int, device: torch.device | None = None) -> torch.Tensor:
    """[H*W, 2]: the (x, y) centre of each cell of an HxW map in [0, 1]^2, in `flatten` (row-major) order."""
    ys = (torch.arange(height, device=device, dtype=torch.float32) + 0.5) / height
    xs = (torch.arange(width, device=device, dtype=torch.float32) + 0.5) / width
    return torch.stack([xs[None, :].expand(height, width), ys[:, None].expand(height, width)], dim=-1).reshape(-1, 2)


class FeatureInjection(nn.Module):
    """One site: a UNet map [B, C, H, W] attends to the image levels; returns the residual [B, C, H, W]."""

    def __init__(self, channels: int, *, feature_dim: int, num_levels: int, heads: int, points: int):
        super().__init__()
        self.attn = DeformableCrossAttention(query_dim=channels, value_dim=feature_dim,
                                             scale_ratios=(1.0,) * num_levels, heads=heads, points=points,
                                             gated=False)
        self.zero_conv = nn.Conv2d(channels, channels, kernel_size=1)
        nn.init.zeros_(self.zero_conv.weight)
        assert self.zero_conv.bias is not None  # nn.Conv2d's default bias=True
        nn.init.zeros_(self.zero_conv.bias)

    def forward(self, feature: torch.Tensor, levels: list[torch.Tensor]) -> torch.Tensor:
        b, c, h, w = feature.shape
        dtype = self.zero_conv.weight.dtype
        tokens = feature.to(dtype).flatten(2).transpose(1, 2)                                 # [B, HW, C]
        update = self.attn(tokens, self.attn.values(levels), reference=cell_centres(h, w, feature.device))
        return self.zero_conv(update.transpose(1, 2).reshape(b, c, h, w)).to(feature.dtype)


def _config_of(unet_or_config: Any) -> Mapping[str, Any]:
    config = getattr(unet_or_config, "config", unet_or_config)
    return config if isinstance(config, Mapping) else vars(config)


def skip_layout(unet_or_config: Any) -> tuple[list[int], list[int], int | None]:
    """From a diffusers UNet2DConditionModel (or its config): (channels of every skip connection in
    `down_block_res_samples` order - conv_in first -, res samples per down block, mid-block channels or
    None when the UNet has no mid block)."""
    config = _config_of(unet_or_config)
    channels = list(config["block_out_channels"])
    layers = config["layers_per_block"]
    layers = [layers] * len(channels) if isinstance(layers, int) else list(layers)
    counts = [layers[i] + (i < len(channels) - 1) for i in range(len(channels))]
    skips = [channels[0]] + [c for c, n in zip(channels, counts) for _ in range(n)]
    mid = None if config.get("mid_block_type", "UNetMidBlock2DCrossAttn") is None else channels[-1]
    return skips, counts, mid


class MMFSNet(nn.Module):
    """Deformable cross-attention + zero 1x1 conv at each UNet skip connection and the mid block."""

    def __init__(self, skip_channels: Sequence[int], mid_channels: int | None, *, feature_dim: int,
                 level_strides: tuple[int, ...], heads: int = 8, points: int = 4):
        super().__init__()
        if feature_dim % heads:
            raise ValueError(f"feature_dim {feature_dim} is not divisible by heads {heads}")
        self.feature_dim, self.level_strides = feature_dim, tuple(level_strides)
        site = partial(FeatureInjection, feature_dim=feature_dim, num_levels=len(level_strides), heads=heads,
                       points=points)
        self.skips = nn.ModuleList(site(c) for c in skip_channels)
        self.mid = site(mid_channels) if mid_channels is not None else None
        self._levels: list[torch.Tensor] | None = None

    @classmethod
    def from_unet(cls, unet_or_config: Any, *, feature_dim: int, level_strides: tuple[int, ...], heads: int = 8,
                  points: int = 4) -> MMFSNet:
        skips, _, mid = skip_layout(unet_or_config)
        return cls(skips, mid, feature_dim=feature_dim, level_strides=level_strides, heads=heads, points=points)

    # ---- hooks -----------------------------------------------------------------------------------------

    def attach(self, unet: nn.Module) -> list[torch.utils.hooks.RemovableHandle]:
        """Register the hooks on `unet` (remove() the returned handles to detach)."""
        skips, counts, mid = skip_layout(unet)
        mine = [self._skip(i).attn.query_proj.in_features for i in range(len(self.skips))]
        if mine != skips or (mid is None) != (self.mid is None):
            raise ValueError(f"MMFSNet was built for skips {mine} (mid: {self.mid is not None}); this UNet has "
                             f"{skips} (mid: {mid is not None})")
        up_blocks, down_blocks = cast(nn.ModuleList, unet.up_blocks), cast(nn.ModuleList, unet.down_blocks)
        handles = [up_blocks[-1].register_forward_pre_hook(self._conv_in_hook, with_kwargs=True)]
        first = 1
        for block, count in zip(down_blocks, counts):
            handles.append(block.register_forward_hook(partial(self._down_hook, first, count)))
            first += count
        if self.mid is not None:
            handles.append(cast(nn.Module, unet.mid_block).register_forward_hook(self._mid_hook))
        return handles

    @contextmanager
    def bound(self, levels: list[torch.Tensor]) -> Iterator[None]:
        """Within the block, UNet calls read `levels` ([B, feature_dim, H_l, W_l] per level, finest first,
        from one encoder input at `level_strides`); the batch must equal the UNet's."""
        if len(levels) != len(self.level_strides):
            raise ValueError(f"expected {len(self.level_strides)} levels, got {len(levels)}")
        extents = {(lvl.shape[-2] * s, lvl.shape[-1] * s) for lvl, s in zip(levels, self.level_strides)}
        if len(extents) != 1 or any(lvl.shape[1] != self.feature_dim for lvl in levels):
            raise ValueError(f"levels {[tuple(lvl.shape) for lvl in levels]} are not one image's maps of width "
                             f"{self.feature_dim} at strides {self.level_strides}")
        self._levels = list(levels)
        try:
            yield
        finally:
            self._levels = None

    def _skip(self, i: int) -> FeatureInjection:
        return cast(FeatureInjection, self.skips[i])

    def _residual(self, site: FeatureInjection, feature: torch.Tensor) -> torch.Tensor:
        levels = self._levels
        if levels is None:
            raise RuntimeError("MMFSNet: a residual was asked for outside bound(levels)")
        if feature.shape[0] != levels[0].shape[0]:
            raise ValueError(f"UNet batch {feature.shape[0]} != image batch {levels[0].shape[0]}")
        return site(feature, levels)

    def _conv_in_hook(self, module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict] | None:
        if self._levels is None:
            return None
        if "res_hidden_states_tuple" not in kwargs:
            raise RuntimeError("MMFSNet: the last up block was not called with res_hidden_states_tuple=...")
        res = kwargs["res_hidden_states_tuple"]
        first = res[0] + self._residual(self._skip(0), res[0])
        return args, {**kwargs, "res_hidden_states_tuple": (first, *res[1:])}

    def _down_hook(self, first: int, count: int, module: nn.Module, args: tuple, output: tuple) -> tuple | None:
        if self._levels is None:
            return None
        hidden, states, *rest = output
        if len(states) != count:
            raise RuntimeError(f"MMFSNet: a down block returned {len(states)} res samples, expected {count}")
        states = tuple(s + self._residual(self._skip(first + i), s) for i, s in enumerate(states))
        return (hidden, states, *rest)

    def _mid_hook(self, module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor | None:
        if self._levels is None or self.mid is None:   # (attach() hooks the mid block only when there is one)
            return None
        return output + self._residual(self.mid, output)
