"""Opening images for models: fully decoded RGB, or a DeemEvalError naming the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def load_rgb(image: Any):
    """A PIL image in RGB from a path or a PIL image. The file is decoded completely here, so a truncated
    file fails at this point (a per-sample failure in a run) rather than inside a model."""
    from PIL import Image, UnidentifiedImageError

    from .errors import DeemEvalError

    if hasattr(image, "convert") and not isinstance(image, (str, Path)):
        return image.convert("RGB")
    if not isinstance(image, (str, Path)):
        raise DeemEvalError(f"expected a PIL image or a path, got {type(image).__name__}")
    try:
        with Image.open(image) as img:
            img.load()
            return img.convert("RGB")
    except FileNotFoundError:
        raise DeemEvalError(f"{image}: image file not found") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DeemEvalError(f"{image}: cannot read image ({exc})") from None
