"""Deterministic weight initialisation: every tensor is drawn from a generator derived from (seed, its name).

Modules are constructed normally (which draws from torch's global generator), then every parameter is
overwritten here, so the weights depend only on the seed and the parameter names - never on construction
order, thread count or global RNG state. DEEM-specific rules (zero gate, zero offset weights with uniform
offset biases, small output projections) come after the generic ones.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from deem_eval.core.rng import derive_torch_generator

from .deform_attn import DeformableCrossAttention


def move_(module: nn.Module, *args: Any, **kwargs: Any) -> None:
    """`module.to(*args, **kwargs)`, in place like every nn.Module.to, called through the nn.Module type:
    transformers and diffusers override `to` under `functools.wraps(nn.Module.to)`, which a type checker
    takes for an unbound function (so `model.to(device)` on their classes does not type-check)."""
    module.to(*args, **kwargs)


def _gen(seed: int, name: str, device: torch.device) -> torch.Generator:
    return derive_torch_generator(seed, "deem-init", name, device="cuda" if device.type == "cuda" else "cpu")


@torch.no_grad()
def _normal_(param: torch.Tensor, std: float, seed: int, name: str) -> None:
    g = _gen(seed, name, param.device)
    param.copy_(torch.randn(param.shape, generator=g, device=g.device, dtype=torch.float32).mul_(std))


@torch.no_grad()
def _uniform_(param: torch.Tensor, bound: float, seed: int, name: str) -> None:
    g = _gen(seed, name, param.device)
    param.copy_(torch.rand(param.shape, generator=g, device=g.device, dtype=torch.float32).mul_(2 * bound).sub_(bound))


@torch.no_grad()
def init_generic(module: nn.Module, seed: int, prefix: str, *, style: str = "torch", std: float = 0.02) -> None:
    """Re-draw all parameters of `module`.

    style "torch": Linear/Conv weights ~ U(+-1/sqrt(fan_in)) (PyTorch's default range), biases 0.
    style "normal": matrices ~ N(0, std) (Hugging Face LLM style), biases 0.
    Both: norm weights 1, norm biases 0; anything else 1-D is left as constructed (e.g. layer scale).
    """
    for mod_name, mod in module.named_modules():
        full = f"{prefix}.{mod_name}" if mod_name else prefix
        own = dict(mod.named_parameters(recurse=False))
        if not own:
            continue
        if isinstance(mod, (nn.LayerNorm, nn.GroupNorm, nn.RMSNorm)) or type(mod).__name__.endswith("RMSNorm"):
            for pname, p in own.items():
                p.fill_(1.0) if pname == "weight" else p.zero_()
            continue
        for pname, p in own.items():
            name = f"{full}.{pname}"
            if p.ndim >= 2:
                if style == "normal":
                    _normal_(p, std, seed, name)
                else:
                    fan_in = p[0].numel()
                    _uniform_(p, 1.0 / math.sqrt(fan_in), seed, name)
            elif pname == "bias":
                p.zero_()


@torch.no_grad()
def init_xattn(block: DeformableCrossAttention, seed: int, prefix: str, offset_init: float) -> None:
    """DEEM's rules: offsets start as a fixed random pattern (bias ~ U(+-offset_init), weight 0); value and
    output projections Xavier-uniform; attention logits start flat (bias 0); the gate starts closed (0)."""
    init_generic(block, seed, prefix)
    block.sampling_offsets.weight.zero_()
    _uniform_(block.sampling_offsets.bias, offset_init, seed, f"{prefix}.sampling_offsets.bias")
    for lin in ("value_proj", "output_proj"):
        w = getattr(block, lin).weight
        _uniform_(w, math.sqrt(6.0 / (w.shape[0] + w.shape[1])), seed, f"{prefix}.{lin}.weight")
    if block.gate is None:
        raise ValueError(f"init_xattn: {prefix} is an ungated block (gated=False); it has no gate to close")
    block.gate.zero_()
