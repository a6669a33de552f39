"""Device and dtype choice for a DEEM model: shared by the adapter (inference) and training (`align`)."""

from __future__ import annotations

import sys

from deem_eval.core.errors import DeemEvalError


def resolve_device(name: str):
    """"auto": CUDA if available, else CPU; a named CUDA device without CUDA is an error."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeemEvalError(f"device {name!r} requested but CUDA is not available")
    return device


def resolve_dtype(name: str, device):
    """"auto": bfloat16 on CUDA, float32 on CPU (half precision on CPU is allowed, with a warning)."""
    import torch

    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if name in ("float16", "bfloat16") and device.type == "cpu":
        print(f"deem: {name} on CPU is slow and poorly supported; consider -M dtype=float32", file=sys.stderr)
    return getattr(torch, name)
