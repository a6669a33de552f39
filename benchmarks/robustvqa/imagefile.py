"""Reading source images once: bytes, content hash and a full decode check.

The content hash (SHA-256 of the file bytes) keys the embedding cache and the source fingerprint. Every
miner decodes an image fully before using it, so the set of images skipped as corrupt is the same whichever
miner runs (an image found in the embedding cache decoded fine when it was encoded).
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

from .sources import SourceImage

FORMAT_SUFFIX = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "BMP": ".bmp", "GIF": ".gif", "TIFF": ".tif",
                 "PPM": ".ppm"}


@dataclass
class LoadedImage:
    item: SourceImage
    data: bytes | None          # None when the file could not be read
    sha256: str                 # of the bytes; "" when unreadable
    error: str | None = None    # why it is skipped (unreadable / corrupt), else None


class CorruptImage(Exception):
    pass


def read_image(item: SourceImage) -> LoadedImage:
    try:
        data = item.data() if item.data is not None else item.path.read_bytes()  # type: ignore[union-attr]
    except OSError as exc:
        return LoadedImage(item, None, "", f"unreadable ({exc.strerror or exc})")
    return LoadedImage(item, data, hashlib.sha256(data).hexdigest())


def decode_image(data: bytes):
    """Decode fully to RGB; raise CorruptImage with a short reason (truncated, not an image, ...)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            return img.convert("RGB")
    except UnidentifiedImageError:
        raise CorruptImage("not a recognised image file") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise CorruptImage(str(exc) or type(exc).__name__) from None


def image_suffix(data: bytes) -> str:
    """File suffix for in-memory images written into a split, from their format."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            return FORMAT_SUFFIX.get(img.format or "", ".img")
    except Exception:  # noqa: BLE001 - a corrupt image is reported by decode_image
        return ".img"
