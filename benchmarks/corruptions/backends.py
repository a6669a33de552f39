"""Two interchangeable ways to corrupt an image: ours (torch, batched) and imagecorruptions (reference).

Both take an integer seed per (image, corruption, severity). Ours turns it into a numpy PCG64 Generator;
the reference seeds numpy's legacy global state with its low 32 bits inside `compat.seeded`. The two
backends therefore make different (equally valid) draws: results agree in distribution, not pixel for
pixel, for the stochastic corruptions.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from deem_eval.core.errors import DeemEvalError, did_you_mean

from . import catalog
from .images import check_size
from .spec import ALL

BACKENDS = ("ours", "imagecorruptions")


class Backend(Protocol):
    name: str

    def corrupt(self, image: np.ndarray, name: str, severity: int, seed: int) -> np.ndarray: ...


def seeded_generator(seed: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(seed))


class Ours:
    name = "ours"

    def __init__(self, device: str | None = None) -> None:
        self.device = device

    def corrupt(self, image: np.ndarray, name: str, severity: int, seed: int) -> np.ndarray:
        corruption = catalog.get(name)
        return corruption.batch(image[None], severity, [seeded_generator(seed)], device=self.device)[0]


class ImageCorruptions:
    """imagecorruptions 1.1.2 through the compatibility shim (numpy, one image at a time, CPU)."""

    name = "imagecorruptions"

    def corrupt(self, image: np.ndarray, name: str, severity: int, seed: int) -> np.ndarray:
        from . import compat

        if name not in ALL:
            raise did_you_mean(name, ALL, "imagecorruptions corruption")
        check_size(image.shape[0], image.shape[1], catalog.get(name).min_size, what="the image", corruption=name)
        return compat.reference_corrupt(image, name, severity, seed)


def get_backend(name: str, *, device: str | None = None) -> Backend:
    if name == "ours":
        return Ours(device)
    if name == "imagecorruptions":
        if device not in (None, "cpu"):
            raise DeemEvalError("the imagecorruptions backend runs on the CPU only; drop --device")
        return ImageCorruptions()
    raise DeemEvalError(f"unknown corruption backend {name!r}; choose one of {', '.join(BACKENDS)}")
