"""A ConvNeXt trunk in plain PyTorch whose parameter names match timm's (and so open_clip's CLIP ConvNeXt).

torchvision (and with it timm / open_clip) is not importable here, and only the trunk is needed, so it is
written out: stem (patchify conv + LayerNorm2d), four stages (downsample + blocks of depthwise 7x7 conv,
LayerNorm, MLP, layer scale), and timm's head norm (global average pool + LayerNorm2d), which DEEM uses as
the pooled image token.

Key mapping from an open_clip checkpoint (`open_clip_pytorch_model.bin` / `open_clip_model.safetensors`
of laion/CLIP-convnext_base_w_320-*): `visual.trunk.<name>` -> `<name>` of this module, one to one.
`visual.head.*` (CLIP's projection to the joint space) and the text tower are not used by DEEM.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from deem_eval.core.errors import DeemEvalError

from .config import ConvNeXtConfig

OPEN_CLIP_PREFIX = "visual.trunk."


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an NCHW tensor."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """dwconv 7x7 -> LayerNorm -> MLP (4x) -> layer scale, with a residual."""

    def __init__(self, dim: int, layer_scale_init: float):
        super().__init__()
        self.conv_dw = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, 4 * dim)
        self.gamma = nn.Parameter(torch.full((dim,), layer_scale_init))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.conv_dw(x).permute(0, 2, 3, 1)
        x = self.mlp(self.norm(x)) * self.gamma
        return shortcut + x.permute(0, 3, 1, 2)


class Stage(nn.Module):
    def __init__(self, in_dim: int, out_dim: int, depth: int, downsample: bool, layer_scale_init: float):
        super().__init__()
        self.downsample = (nn.Sequential(LayerNorm2d(in_dim, eps=1e-6), nn.Conv2d(in_dim, out_dim, 2, stride=2))
                           if downsample else nn.Identity())
        self.blocks = nn.Sequential(*[Block(out_dim, layer_scale_init) for _ in range(depth)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.downsample(x))


class Head(nn.Module):
    """timm's NormMlpClassifierHead without a classifier: average pool, then LayerNorm2d."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm = LayerNorm2d(dim, eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.mean(dim=(2, 3), keepdim=True)).flatten(1)


class ConvNeXt(nn.Module):
    def __init__(self, config: ConvNeXtConfig):
        super().__init__()
        self.config = config
        dims = config.dims
        self.stem = nn.Sequential(nn.Conv2d(3, dims[0], config.stem_stride, stride=config.stem_stride),
                                  LayerNorm2d(dims[0], eps=1e-6))
        self.stages = nn.ModuleList(
            Stage(dims[max(i - 1, 0)], dims[i], config.depths[i], i > 0, config.layer_scale_init)
            for i in range(len(dims)))
        self.head = Head(dims[-1])
        self.checkpointing = config.gradient_checkpointing   # a training stage may switch it on

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Per-stage feature maps (NCHW, strides 4/8/16/32) and the pooled, normalised last stage."""
        x = self.stem(x)
        features = []
        for stage in self.stages:
            if self.checkpointing and torch.is_grad_enabled():   # not self.training: DEEM's modules stay in eval()
                x = checkpoint(stage, x, use_reentrant=False)
            else:
                x = stage(x)
            features.append(x)
        return features, self.head(x)


def open_clip_trunk_state(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The trunk's tensors from a full open_clip state dict, renamed to this module's names."""
    return {k[len(OPEN_CLIP_PREFIX):]: v for k, v in state.items() if k.startswith(OPEN_CLIP_PREFIX)}


def load_open_clip_trunk(trunk: ConvNeXt, checkpoint_dir: Path) -> None:
    """Load CLIP ConvNeXt weights from an open_clip checkpoint directory (or file) into `trunk`, strictly."""
    path = Path(checkpoint_dir)
    if path.is_dir():
        candidates = [path / "open_clip_model.safetensors", path / "open_clip_pytorch_model.bin"]
        found = [c for c in candidates if c.exists()]
        if not found:
            raise DeemEvalError(f"{path}: no open_clip_model.safetensors or open_clip_pytorch_model.bin")
        path = found[0]
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    trunk_state = open_clip_trunk_state(state)
    if not trunk_state:
        raise DeemEvalError(f"{path}: no '{OPEN_CLIP_PREFIX}*' tensors; is this an open_clip ConvNeXt checkpoint?")
    trunk_state = {k: v for k, v in trunk_state.items() if not k.startswith("head.fc")}
    missing, unexpected = trunk.load_state_dict(trunk_state, strict=False)
    if missing or unexpected:
        raise DeemEvalError(f"{path}: ConvNeXt weights do not match the configured trunk "
                            f"(missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
                            f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''})")
