"""Random generators derived by hashing (seed, keys...), never from global state.

Every random draw in deem-eval comes from `derive_rng(seed, *keys)`, where the keys say what is being
drawn (sample id, corruption, severity, ...). The same seed and keys give the same stream on every
machine, in every process, in any order, so builds are byte-identical with any number of workers.
"""

from __future__ import annotations

import hashlib

import numpy as np


def derive_seed(seed: int, *keys: object) -> int:
    """A 64-bit integer derived from `seed` and `keys` by SHA-256 (stable across Python versions)."""
    text = "\x1f".join([str(int(seed)), *(repr(k) if not isinstance(k, str) else k for k in keys)])
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")


def derive_rng(seed: int, *keys: object) -> np.random.Generator:
    """A fresh numpy Generator (PCG64) for `(seed, *keys)`."""
    return np.random.Generator(np.random.PCG64(derive_seed(seed, *keys)))


def derive_torch_generator(seed: int, *keys: object, device: str = "cpu"):
    """A torch.Generator for `(seed, *keys)`; torch is imported lazily."""
    import torch

    generator = torch.Generator(device=device)
    generator.manual_seed(derive_seed(seed, *keys) & 0x7FFF_FFFF_FFFF_FFFF)
    return generator
