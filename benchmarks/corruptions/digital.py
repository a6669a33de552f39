"""Digital and colour corruptions: contrast, elastic transform, pixelate, JPEG, saturate, and brightness
(ImageNet-C files brightness under "weather": daylight)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import torch

from . import ops
from .spec import Corruption, RngLike


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x.to(torch.float64) / 255.0


def _to_pixels(values: torch.Tensor) -> torch.Tensor:
    return values.clamp(0, 1) * 255


# ---------------------------------------------------------------- brightness, saturate (in HSV)
BRIGHTNESS_SHIFT = (0.1, 0.2, 0.3, 0.4, 0.5)  # added to HSV value (clipped to 1)

# HSV saturation becomes clip(saturation * scale + shift, 0, 1): severities 1-2 wash colours out,
# 3-5 oversaturate.
SATURATE_TABLE = ((0.3, 0.0), (0.1, 0.0), (2.0, 0.0), (5.0, 0.1), (20.0, 0.2))


def brightness(x: torch.Tensor, rngs: Sequence[RngLike], shift: float) -> torch.Tensor:
    hsv = ops.rgb_to_hsv(_unit(x))
    hsv = torch.cat([hsv[:, :2], (hsv[:, 2:] + shift).clamp(0, 1)], 1)
    return _to_pixels(ops.hsv_to_rgb(hsv))


def saturate(x: torch.Tensor, rngs: Sequence[RngLike], params: tuple[float, float]) -> torch.Tensor:
    scale, shift = params
    hsv = ops.rgb_to_hsv(_unit(x))
    hsv = torch.cat([hsv[:, :1], (hsv[:, 1:2] * scale + shift).clamp(0, 1), hsv[:, 2:]], 1)
    return _to_pixels(ops.hsv_to_rgb(hsv))


# ---------------------------------------------------------------- contrast
CONTRAST_FACTOR = (0.4, 0.3, 0.2, 0.1, 0.05)  # deviations from each channel's mean are scaled by this


def contrast(x: torch.Tensor, rngs: Sequence[RngLike], factor: float) -> torch.Tensor:
    unit = _unit(x)
    means = unit.mean(dim=(2, 3), keepdim=True)
    return _to_pixels((unit - means) * factor + means)


# ---------------------------------------------------------------- elastic transform
# Displacement scale in pixels. Each pixel moves by a field of U(-0.005 H, 0.005 H) noise, Gaussian
# smoothed (sigma 1 % of height / width, truncated at 3 sigma, mirrored edges) and multiplied by alpha;
# the image is resampled there with linear interpolation and mirrored edges. (The reference uses the
# image height for the noise range of both axes; so do we.)
ELASTIC_ALPHA = tuple(250 * f for f in (0.05, 0.065, 0.085, 0.1, 0.12))


def elastic_transform(x: torch.Tensor, rngs: Sequence[RngLike], alpha: float) -> torch.Tensor:
    _, _, height, width = x.shape
    limit = height * 0.005
    noise = np.stack([np.stack([rng.uniform(-limit, limit, (height, width)),
                                rng.uniform(-limit, limit, (height, width))]) for rng in rngs])
    field = ops.gaussian_filter(torch.from_numpy(noise).to(x.device), (height * 0.01, width * 0.01),
                                mode="symmetric", truncate=3.0)
    field = (field * alpha).to(torch.float32).to(torch.float64)   # (B, 2: dx, dy, H, W)
    rows = torch.arange(height, device=x.device, dtype=torch.float64).view(1, -1, 1)
    cols = torch.arange(width, device=x.device, dtype=torch.float64).view(1, 1, -1)
    image = (x.to(torch.float32) / 255.0).to(torch.float64)
    warped = ops.bilinear_symmetric(image, rows + field[:, 1], cols + field[:, 0]).to(torch.float32)
    return warped.clamp(0, 1) * 255


def _fold(index: np.ndarray, n: int) -> np.ndarray:
    """ops.bilinear_symmetric's half-sample symmetric fold of integer positions into 0 .. n-1. Positions in
    -n .. 2n-1 (all, for the displacements drawn) fold without an integer division: -1 - i below 0, then
    min(i, 2n - 1 - i)."""
    if index.size and index.min() >= -n and index.max() < 2 * n:
        mirrored = np.bitwise_xor(index, np.right_shift(index, 63))           # i < 0 -> -1 - i
        return np.minimum(mirrored, np.subtract(2 * n - 1, mirrored))
    folded = np.remainder(index, 2 * n)
    return np.where(folded >= n, 2 * n - 1 - folded, folded)


def elastic_transform_cpu(image: np.ndarray, rng: RngLike, alpha: float) -> np.ndarray:
    """elastic_transform for one (H, W, 3) uint8 image, the same bytes: the same draws and field smoothing
    (ops.gaussian_filter on the same (1, 2, H, W) field), the same bilinear sampling arithmetic as
    ops.bilinear_symmetric (float64 torch.lerp, across then down), but the corner indices computed once
    for the 3 channels, each corner gathered per channel plane with np.take, and the work arrays reused."""
    height, width, channels = image.shape
    area = height * width
    limit = height * 0.005
    noise = np.stack([rng.uniform(-limit, limit, (height, width)), rng.uniform(-limit, limit, (height, width))])
    field = ops.gaussian_filter(torch.from_numpy(noise[None]), (height * 0.01, width * 0.01),
                                mode="symmetric", truncate=3.0)
    field64 = (field * alpha).to(torch.float32).to(torch.float64)[0].numpy()     # (2: dx, dy, H, W)
    ys = np.add(np.arange(height, dtype=np.float64)[:, None], field64[1]).reshape(-1)
    xs = np.add(np.arange(width, dtype=np.float64)[None, :], field64[0]).reshape(-1)
    y0 = np.floor(ys)
    x0 = np.floor(xs)
    wy = torch.from_numpy(np.subtract(ys, y0, out=ys))
    wx = torch.from_numpy(np.subtract(xs, x0, out=xs))
    y0i = y0.astype(np.int64)
    x0i = x0.astype(np.int64)
    rows0, rows1 = _fold(y0i, height) * width, _fold(y0i + 1, height) * width
    cols0, cols1 = _fold(x0i, width), _fold(x0i + 1, width)
    unit = np.divide(image, np.float32(255.0), out=ops.scratch("elastic-unit", image.shape, np.float32))
    planes = ops.scratch("elastic-planes", (channels, area), np.float64)
    np.copyto(planes, unit.reshape(area, channels).T)
    corners = [torch.from_numpy(ops.scratch(f"elastic-corner{k}", (channels, area), np.float64))
               for k in range(2)]
    top, bottom = (torch.from_numpy(ops.scratch(tag, (channels, area), np.float64))
                   for tag in ("elastic-top", "elastic-bottom"))
    flat = ops.scratch_flat("elastic-index", area, np.int64)

    def gather(rows: np.ndarray, cols: np.ndarray, out: torch.Tensor) -> torch.Tensor:
        index = np.add(rows, cols, out=flat)
        values = out.numpy()
        for c in range(channels):
            np.take(planes[c], index, out=values[c], mode="clip")
        return out

    torch.lerp(gather(rows0, cols0, corners[0]), gather(rows0, cols1, corners[1]), wx, out=top)
    torch.lerp(gather(rows1, cols0, corners[0]), gather(rows1, cols1, corners[1]), wx, out=bottom)
    torch.lerp(top, bottom, wy, out=corners[0])
    warped = ops.scratch("elastic-warped", (channels, area), np.float32)
    np.copyto(warped, corners[0].numpy(), casting="unsafe")
    np.clip(warped, 0, 1, out=warped)
    warped *= 255
    return np.ascontiguousarray(warped.astype(np.uint8).T).reshape(height, width, channels)


# ---------------------------------------------------------------- pixelate, JPEG (PIL, per image)
PIXELATE_SCALE = (0.6, 0.5, 0.4, 0.3, 0.25)   # box-downscale by this factor, nearest-upscale back
JPEG_QUALITY = (25, 18, 15, 10, 7)            # PIL JPEG quality


def _per_image_pil(x: torch.Tensor, change) -> torch.Tensor:
    from PIL import Image

    images = x.permute(0, 2, 3, 1).cpu().numpy()
    out = [np.asarray(change(Image.fromarray(image)).convert("RGB"), dtype=np.uint8) for image in images]
    return torch.from_numpy(np.stack(out)).to(x.device).permute(0, 3, 1, 2)


def pixelate(x: torch.Tensor, rngs: Sequence[RngLike], scale: float) -> torch.Tensor:
    return _per_image_pil(x, lambda im: _pixelate_pil(im, scale))


def jpeg_compression(x: torch.Tensor, rngs: Sequence[RngLike], quality: int) -> torch.Tensor:
    return _per_image_pil(x, lambda im: _jpeg_pil(im, quality))


def _pil_cpu(change):
    """A CPU path for a PIL corruption: numpy (H, W, 3) uint8 -> PIL -> numpy, no torch."""
    def run(image: np.ndarray, rng: RngLike, params) -> np.ndarray:
        from PIL import Image

        out = change(Image.fromarray(image), params)
        if out.mode != "RGB":
            out = out.convert("RGB")
        return np.array(out)             # a writable array (np.asarray of a PIL image is read-only)
    return run


def _pixelate_pil(image, scale: float):
    from PIL import Image

    width, height = image.size
    small = image.resize((int(width * scale), int(height * scale)), Image.Resampling.BOX)
    return small.resize((width, height), Image.Resampling.NEAREST)


@lru_cache(maxsize=64)
def _nearest_rows(small: int, size: int) -> np.ndarray:
    """The source row of each of `size` output rows in OpenCV's INTER_NEAREST_EXACT upscale from `small`."""
    import cv2

    column = np.arange(small, dtype=np.uint16)[:, None]
    rows = cv2.resize(column, (1, size), interpolation=cv2.INTER_NEAREST_EXACT)[:, 0].astype(np.intp)
    rows.setflags(write=False)   # shared by the cache
    return rows


def pixelate_cpu(image: np.ndarray, rng: RngLike, scale: float) -> np.ndarray:
    """pixelate for one (H, W, 3) uint8 image: PIL's box downscale (the reference's code), then OpenCV's
    INTER_NEAREST_EXACT upscale, which is PIL's NEAREST pixel for pixel and writes a numpy array directly.
    The upscale is separable (a source column per output column, a source row per output row), so it is
    done across only, on the small image's rows, and those rows are then repeated down by indexing (whole-row
    copies): the same pixels, a third to two thirds faster than one 2-D resize at 640 x 480."""
    import cv2
    from PIL import Image

    height, width = image.shape[:2]
    small = Image.fromarray(image).resize((int(width * scale), int(height * scale)), Image.Resampling.BOX)
    wide = cv2.resize(np.asarray(small), (width, small.height), interpolation=cv2.INTER_NEAREST_EXACT)
    return wide[_nearest_rows(small.height, height)]


def _jpeg_pil(image, quality: int):
    from PIL import Image

    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    buffer.seek(0)
    decoded = Image.open(buffer)
    decoded.load()
    return decoded


@lru_cache(maxsize=8)
def _opencv_jpeg_matches_pil(quality: int) -> bool:
    """Whether OpenCV's libjpeg writes the bytes PIL writes at this quality (checked once per quality on
    probe images of odd and even sizes; their bundled libjpeg-turbo builds agree where measured)."""
    import importlib.util

    if importlib.util.find_spec("cv2") is None:
        return False
    rng = np.random.default_rng(quality)
    for height, width in ((37, 53), (48, 64)):
        smooth = np.cumsum(rng.integers(0, 9, (height, width, 3)), axis=1) % 256
        probe = np.ascontiguousarray(np.where(rng.random((height, width, 1)) < 0.1, 255, smooth).astype(np.uint8))
        if _jpeg_opencv_bytes(probe, quality) != _jpeg_pil_bytes(probe, quality):
            return False
    return True


def _jpeg_pil_bytes(image: np.ndarray, quality: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def _jpeg_opencv_bytes(image: np.ndarray, quality: int) -> bytes:
    import cv2

    ok, data = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("cv2.imencode failed")
    return data.tobytes()


def jpeg_compression_cpu(image: np.ndarray, rng: RngLike, quality: int) -> np.ndarray:
    """jpeg_compression for one (H, W, 3) uint8 image: encoded and decoded by OpenCV's libjpeg-turbo (the
    same bytes and pixels as PIL's, about twice as fast: no PIL image objects), or by PIL where the two
    builds disagree."""
    if _opencv_jpeg_matches_pil(int(quality)):
        import cv2

        ok, data = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                                [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
        decoded = cv2.imdecode(data, cv2.IMREAD_COLOR_RGB) if ok else None
        if decoded is not None:
            return decoded
    return _pil_cpu(_jpeg_pil)(image, rng, quality)


BRIGHTNESS = Corruption("brightness", "weather", BRIGHTNESS_SHIFT, brightness, stochastic=False,
                        description="HSV value raised (daylight)")
SATURATE = Corruption("saturate", "digital", SATURATE_TABLE, saturate, stochastic=False,
                      description="HSV saturation scaled and shifted")
CONTRAST = Corruption("contrast", "digital", CONTRAST_FACTOR, contrast, stochastic=False,
                      description="contrast reduced toward each channel's mean")
ELASTIC_TRANSFORM = Corruption("elastic_transform", "digital", ELASTIC_ALPHA, elastic_transform,
                               stochastic=True, description="smooth random local displacements",
                               cpu_fn=elastic_transform_cpu)
PIXELATE = Corruption("pixelate", "digital", PIXELATE_SCALE, pixelate, stochastic=False,
                      description="box downscale then nearest-neighbour upscale",
                      cpu_fn=pixelate_cpu)
JPEG_COMPRESSION = Corruption("jpeg_compression", "digital", JPEG_QUALITY, jpeg_compression, stochastic=False,
                              description="JPEG encode and decode at low quality",
                              cpu_fn=jpeg_compression_cpu)
