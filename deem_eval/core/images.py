"""Opening images for models: fully decoded 8-bit RGB, or a DeemEvalError naming the file.

Any failure while opening one file is a DeemEvalError, so a run records it as that sample's failure instead
of dying (and dying again at the same sample on every resume). That includes PIL's DecompressionBombError,
raised for images over 2x `Image.MAX_IMAGE_PIXELS` (a 100-byte PNG can claim 30000x30000 pixels); between
1x and 2x PIL only warns and the image is decoded.

Single-channel wide modes are scaled to 8 bits, not clipped (PIL's `convert("RGB")` clips them at 255, so a
16-bit photo comes out almost white):

- ``I;16`` (and ``I;16L/B/N``): value / 257, rounded (65535 -> 255).
- ``I`` (32-bit int): assumed to hold 16-bit values (what PIL makes of many 16-bit PNG / TIFF / PGM files), so
  it is scaled like ``I;16`` when every value is in [0, 65535]. Other values fail the image: their range
  is unknown. An 8-bit image converted to ``I`` in memory therefore comes out dark; pass it as ``L``.
- ``F`` (32-bit float): read as [0, 1] when its largest finite value is at most 1, else as [0, 255]; values
  outside the range are clipped, NaN becomes 0.

`to_rgb` and `wide_to_uint8` are shared with the corruption pipeline (benchmarks/corruptions/images.py), so
a corrupted split and the runner read the same file to the same pixels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deem_eval.core.errors import DeemEvalError

SIXTEEN_BIT_MAX = 65535
WIDE_MODES = ("I", "F")   # plus every "I;16*" mode


def is_wide_mode(mode: str) -> bool:
    return mode.startswith("I;16") or mode in WIDE_MODES


def wide_to_uint8(values: Any, mode: str) -> Any:
    """A 2-D array of an ``I;16*``, ``I`` or ``F`` image as uint8, scaled as the module docstring says."""
    import numpy as np

    array = np.asarray(values)
    if mode == "F" or np.issubdtype(array.dtype, np.floating):
        wide = array.astype(np.float64)
        finite = wide[np.isfinite(wide)]
        top = 1.0 if finite.size and finite.max() <= 1.0 else 255.0
        wide = np.nan_to_num(wide, nan=0.0, posinf=top, neginf=0.0)
        return np.clip(np.round(wide * (255.0 / top)), 0, 255).astype(np.uint8)
    wide = array.astype(np.int64)
    if wide.size and (wide.min() < 0 or wide.max() > SIXTEEN_BIT_MAX):
        raise DeemEvalError(f"mode {mode} image with values in [{wide.min()}, {wide.max()}], outside the 16-bit "
                            f"range [0, {SIXTEEN_BIT_MAX}] this loader assumes; convert it to 8 or 16 bits")
    return ((wide * 2 + 257) // 514).astype(np.uint8)   # round(value / 257) in integers (257 is odd: no ties)


def to_rgb(image: Any) -> Any:
    """A new 8-bit RGB PIL image from a PIL image of any mode (wide modes scaled, others `convert("RGB")`:
    grey replicated, alpha and palette transparency dropped)."""
    from PIL import Image

    if is_wide_mode(image.mode):
        return Image.fromarray(wide_to_uint8(image, image.mode)).convert("RGB")
    return image.convert("RGB")


def load_rgb(image: Any) -> Any:
    """A PIL image in RGB from a path or a PIL image. The file is decoded completely here, so a truncated
    file fails at this point (a per-sample failure in a run) rather than inside a model."""
    from PIL import Image

    if hasattr(image, "convert") and not isinstance(image, (str, Path)):
        return to_rgb(image)
    if not isinstance(image, (str, Path)):
        raise DeemEvalError(f"expected a PIL image or a path, got {type(image).__name__}")
    try:
        with Image.open(image) as img:
            img.load()
            return to_rgb(img)
    except FileNotFoundError:
        raise DeemEvalError(f"{image}: image file not found") from None
    except Image.DecompressionBombError as exc:
        raise DeemEvalError(f"{image}: image too large to decode ({exc})") from None
    except DeemEvalError as exc:
        raise DeemEvalError(f"{image}: cannot read image ({exc})") from None
    except Exception as exc:  # noqa: BLE001 - PIL's decoders raise assorted types on malformed files
        raise DeemEvalError(f"{image}: cannot read image ({_reason(exc)})") from None


def _reason(exc: Exception) -> str:
    """The message alone for the errors PIL documents (as before); with the type for anything else."""
    from PIL import UnidentifiedImageError

    if isinstance(exc, (UnidentifiedImageError, OSError, ValueError, SyntaxError)):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"
