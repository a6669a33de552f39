"""Image preprocessing shared by inference and CSR training: RGB, size check, square bicubic resize, [0, 1].

DEEM's evaluation transform resizes to a square (256 px for the encoder, 512 px for the diffusion
teacher) without cropping; CLIP normalisation happens inside the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from deem_eval.errors import DeemEvalError
from deem_eval.images import load_rgb


class ImageTooSmallError(DeemEvalError):
    """An image whose shorter side is below the encoder's stride."""


def open_rgb(image: Any):
    """RGB PIL image from a path or an image (errors name the file)."""
    return load_rgb(image)


def check_size(image, min_side: int, what: str) -> None:
    w, h = image.size
    if min(w, h) < min_side:
        raise ImageTooSmallError(f"{what}: image is {w}x{h} px, smaller than the encoder's stride of {min_side} px; "
                                 "such an image has no pixel in the coarsest feature map. Use larger images.")


def to_pixels(images: Sequence[Any], size: int, *, min_side: int, names: Sequence[str] | None = None,
              value_range: tuple[float, float] = (0.0, 1.0)) -> torch.Tensor:
    """[B, 3, size, size] float32 in `value_range`, from PIL images or paths."""
    from PIL import Image

    out = []
    for i, image in enumerate(images):
        img = open_rgb(image)
        check_size(img, min_side, names[i] if names else f"image {i}")
        arr = np.asarray(img.resize((size, size), Image.Resampling.BICUBIC), dtype=np.float32) / 255.0
        out.append(torch.from_numpy(arr).permute(2, 0, 1))
    pixels = torch.stack(out)
    lo, hi = value_range
    return pixels * (hi - lo) + lo
