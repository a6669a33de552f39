"""Image preprocessing shared by inference and CSR training: RGB, size check, square bicubic resize, [0, 1].

DEEM's evaluation transform resizes to a square (256 px for the encoder, 512 px for the diffusion
teacher) without cropping; CLIP normalisation happens inside the model.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from deem_eval.core.errors import DeemEvalError
from deem_eval.core.images import load_rgb


class ImageTooSmallError(DeemEvalError):
    """An image whose shorter side is below the encoder's stride."""


@dataclass(frozen=True)
class UnreadableImage:
    """Stands in for an image a data source could not decode (e.g. a corrupt tar member), so the failure
    reaches `open_rgb` - and the training loop's per-sample skip - instead of stopping the data source."""

    where: str
    reason: str


def open_rgb(image: Any, *, where: str | None = None, refuse_large: bool = False):
    """RGB PIL image from a path, a PIL image or encoded bytes (e.g. a tar member); any failure is a
    DeemEvalError naming the file (or `where`), so callers can treat it as a per-sample failure.

    PIL refuses images over 2x `Image.MAX_IMAGE_PIXELS` (DecompressionBombError, reported here like any
    unreadable file); between 1x and 2x it only warns. With `refuse_large` (training data, where a huge
    image is never worth decoding) that warning is a failure too; this uses `warnings.catch_warnings`,
    which is process-wide, so call it from one thread at a time.
    """
    from PIL import Image

    if isinstance(image, UnreadableImage):
        raise DeemEvalError(f"{image.where}: cannot read image ({image.reason})")
    is_bytes = isinstance(image, (bytes, bytearray, memoryview))
    name = where or ("image bytes" if is_bytes else str(image))
    with warnings.catch_warnings() if refuse_large else contextlib.nullcontext():
        if refuse_large:
            warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            if not is_bytes:
                return load_rgb(image)      # names the file in its own errors
            with Image.open(io.BytesIO(image)) as img:
                img.load()
                return load_rgb(img)        # the same pixel conversion as for files
        except DeemEvalError as exc:
            if not is_bytes:
                raise
            raise DeemEvalError(f"{name}: cannot read image ({exc})") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise DeemEvalError(f"{name}: image too large to decode ({exc})") from None
        except Exception as exc:  # noqa: BLE001 - PIL's decoders raise assorted types on malformed input
            raise DeemEvalError(f"{name}: cannot read image ({type(exc).__name__}: {exc})") from None


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
