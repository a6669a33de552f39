"""Turning any image file or array into what every corruption works on: RGB, uint8, (H, W, 3).

PIL images and files go through the runner's own converter (`deem_eval.core.images.to_rgb`), so a corrupted
split starts from exactly the pixels the runner would feed a model: grey is replicated, alpha and palette
transparency are dropped, 16-bit images (``I;16*``, and ``I`` assumed 16-bit) are scaled by 1/257 rather
than clipped, float images (``F``) are read as [0, 1] when their maximum is at most 1, else as [0, 255].
Arrays have no mode: float arrays follow the ``F`` rule; integer arrays wider than 8 bits are scaled by
255/65535 only when some value exceeds 255 (an int64 array of 8-bit values is common), else clipped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from deem_eval.core.errors import DeemEvalError
from deem_eval.core.images import load_rgb as open_rgb
from deem_eval.core.images import to_rgb, wide_to_uint8

MIN_SIZE = 32  # imagecorruptions' documented minimum height and width


class ImageTooSmallError(DeemEvalError):
    """An image is smaller than a corruption supports."""


def to_rgb_uint8(image: Any) -> np.ndarray:
    """A PIL image or an array ((H, W), (H, W, 1|3|4), any integer/float dtype) as RGB uint8 (H, W, 3)."""
    from PIL import Image

    if isinstance(image, Image.Image):
        return _pil_to_rgb(image)
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise DeemEvalError(f"expected an image array of shape (H, W), (H, W, 3) or (H, W, 4), got {array.shape}")
    array = _to_uint8_values(array)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    return np.ascontiguousarray(array[..., :3])


def _pil_to_rgb(image: Any) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(to_rgb(image), dtype=np.uint8))


def _to_uint8_values(array: np.ndarray) -> np.ndarray:
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * 255
    if np.issubdtype(array.dtype, np.floating):
        return wide_to_uint8(array, "F")
    if np.issubdtype(array.dtype, np.integer):
        wide = array.astype(np.int64)
        if array.dtype.itemsize >= 2 and wide.size and wide.max() > 255:
            return np.clip(np.round(wide * (255.0 / 65535.0)), 0, 255).astype(np.uint8)
        return np.clip(wide, 0, 255).astype(np.uint8)
    raise DeemEvalError(f"unsupported image dtype {array.dtype}")


def load_rgb(path: Path) -> np.ndarray:
    """Read an image file fully and convert it; unreadable files (decompression bombs included) raise
    DeemEvalError naming the file, exactly as in the runner."""
    return np.ascontiguousarray(np.asarray(open_rgb(path), dtype=np.uint8))


def check_size(height: int, width: int, minimum: int, *, what: str, corruption: str) -> None:
    if height < minimum or width < minimum:
        raise ImageTooSmallError(
            f"{what} is {width}x{height} pixels; {corruption} needs at least {minimum}x{minimum} "
            f"(the minimum imagecorruptions supports). Resize it, or leave it out.")
