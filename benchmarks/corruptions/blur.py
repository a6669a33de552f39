"""Blur corruptions: defocus (disk), glass (blur + local pixel shuffling), motion, zoom and Gaussian blur."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import NamedTuple

import numpy as np
import torch

from . import ops
from .spec import Corruption, RngLike, integers


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x.to(torch.float64) / 255.0


def _to_pixels(values: torch.Tensor) -> torch.Tensor:
    return values.clamp(0, 1) * 255


# ---------------------------------------------------------------- gaussian blur
GAUSSIAN_BLUR_SIGMA = (1, 2, 3, 4, 6)  # pixels; kernel truncated at 4 sigma, edges repeated


def gaussian_blur(x: torch.Tensor, rngs: Sequence[RngLike], sigma: float) -> torch.Tensor:
    return _to_pixels(ops.gaussian_filter(_unit(x), sigma, mode="nearest"))


# Float32 filtering (OpenCV, SIMD) is off the float64 reference by at most ~1e-4 grey levels (measured on
# photos, SynthScenes and noise at every sigma). Truncation to uint8 can only differ where the exact value lies
# that close to an integer, so samples within this tolerance of one are recomputed in float64 in scipy's own
# order: the result is the reference's bit for bit (a float32 error beyond the tolerance, never seen, would cost
# one grey level at that sample, within the parity bound).
FLOAT32_TOLERANCE = 3e-4   # grey levels
# Above this many ambiguous samples per sample of the image (times the kernel length) recomputing them costs
# more than filtering the whole image in float64 (flat synthetic images): then scipy filters the whole image.
_RECOMPUTE_BUDGET = 0.08


@lru_cache(maxsize=16)
def _gaussian_kernels(sigma: float) -> tuple[np.ndarray, np.ndarray]:
    kernel = ops.gaussian_kernel1d(sigma, 4.0)
    assert kernel is not None
    return kernel, kernel.astype(np.float32)


def _ambiguous(values: np.ndarray) -> np.ndarray:
    """Flat indices of float32 grey levels whose truncation the float32 error could change."""
    distance = ops.scratch("distance", values.shape, values.dtype)
    near = ops.scratch("near", values.shape, np.bool_)
    positive = ops.scratch("positive", values.shape, np.bool_)
    np.rint(values, out=distance)
    np.subtract(values, distance, out=distance)
    np.less(np.abs(distance, out=distance), FLOAT32_TOLERANCE, out=near)
    np.greater(values, FLOAT32_TOLERANCE, out=positive)  # the exact value is >= 0: near 0 truncates to 0
    near &= positive
    return np.flatnonzero(near)


def _scipy_gaussian_at(image: np.ndarray, flat: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """scipy.ndimage.gaussian_filter(image / 255, (s, s, 0), mode='nearest') at the flat indices `flat` of
    (H, W, 3), in scipy's own arithmetic order (correlate1d's symmetric loop: centre tap, then the pairs
    from the outermost in; axis 0, then axis 1), so the values are bit-identical to scipy's."""
    height, width, channels = image.shape
    radius = len(kernel) // 2
    offsets = np.arange(-radius, radius + 1)
    pixel, channel = np.divmod(flat, channels)
    row, col = np.divmod(pixel, width)
    rows = np.clip(row[:, None] + offsets, 0, height - 1) * (width * channels)           # edges repeated
    cols = np.clip(col[:, None] + offsets, 0, width - 1) * channels + channel[:, None]
    index = np.add(rows[:, :, None], cols[:, None, :], out=ops.scratch_flat("index", rows.size * len(offsets),
                                                                             np.intp).reshape(rows.shape + (-1,)))
    pixels = np.take(image.reshape(-1), index, out=ops.scratch_flat("pixels", index.size, np.uint8
                                                                     ).reshape(index.shape))
    window = np.divide(pixels, 255.0, out=ops.scratch_flat("window", index.size, np.float64
                                                           ).reshape(index.shape))   # (N, rows, cols)
    first = window[:, radius] * kernel[radius]                                             # along axis 0
    for j in range(radius, 0, -1):
        pair = np.add(window[:, radius - j], window[:, radius + j])
        pair *= kernel[radius - j]
        first += pair
    out = first[:, radius] * kernel[radius]                                                # along axis 1
    for j in range(radius, 0, -1):
        out += (first[:, radius - j] + first[:, radius + j]) * kernel[radius - j]
    return out


def gaussian_blur_cpu(image: np.ndarray, rng: RngLike, sigma: float) -> np.ndarray:
    """gaussian_blur for one (H, W, 3) uint8 image: float32 OpenCV filter, ambiguous pixels exact."""
    import cv2

    kernel, kernel32 = _gaussian_kernels(float(sigma))
    values = ops.scratch("values", image.shape, np.float32)
    cv2.sepFilter2D(image, cv2.CV_32F, kernel32, kernel32, dst=values, borderType=cv2.BORDER_REPLICATE)
    ambiguous = _ambiguous(values)
    if ambiguous.size * len(kernel) > _RECOMPUTE_BUDGET * values.size:
        from scipy.ndimage import gaussian_filter

        exact = gaussian_filter(image / 255.0, (sigma, sigma, 0), mode="nearest")
        return (np.clip(exact, 0, 1) * 255).astype(np.uint8)
    out = np.minimum(values, 255, out=values).astype(np.uint8)     # the weights are positive: values >= 0
    if ambiguous.size:
        exact = _scipy_gaussian_at(image, ambiguous, kernel)
        out.reshape(-1)[ambiguous] = (np.clip(exact, 0, 1) * 255).astype(np.uint8)
    return out


# ---------------------------------------------------------------- defocus blur
class DefocusParams(NamedTuple):
    radius: int        # disk radius in pixels
    alias_blur: float  # sigma of the Gaussian that antialiases the disk's edge


DEFOCUS_BLUR_TABLE = (
    DefocusParams(3, 0.1),
    DefocusParams(4, 0.5),
    DefocusParams(6, 0.5),
    DefocusParams(8, 0.5),
    DefocusParams(10, 0.5),
)


@lru_cache(maxsize=16)
def disk_kernel(radius: int, alias_blur: float) -> np.ndarray:
    """A normalised disk on a grid of half-width max(8, radius), antialiased by a small Gaussian
    (3x3 up to radius 8, else 5x5; edges mirrored without repeating, as OpenCV's default border)."""
    half, ksize = (8, 3) if radius <= 8 else (radius, 5)
    coords = np.arange(-half, half + 1)
    yy, xx = np.meshgrid(coords, coords, indexing="ij")
    disk = (xx ** 2 + yy ** 2 <= radius ** 2).astype(np.float64)
    disk /= disk.sum()
    offsets = np.arange(ksize) - (ksize - 1) / 2
    gauss = np.exp(-offsets ** 2 / (2 * alias_blur ** 2))
    gauss /= gauss.sum()
    rows = ops.pad_index(disk.shape[0], ksize // 2, ksize // 2, "reflect101")
    padded = disk[np.ix_(rows, rows)]
    smooth = sum(gauss[i] * padded[i:i + disk.shape[0], :] for i in range(ksize))
    smooth = sum(gauss[i] * smooth[:, i:i + disk.shape[1]] for i in range(ksize))
    return smooth.astype(np.float32).astype(np.float64)


def defocus_blur(x: torch.Tensor, rngs: Sequence[RngLike], p: DefocusParams) -> torch.Tensor:
    return _to_pixels(ops.filter2d(_unit(x), disk_kernel(p.radius, p.alias_blur), "reflect101"))


@lru_cache(maxsize=16)
def _trimmed_disk(radius: int, alias_blur: float) -> np.ndarray:
    return np.ascontiguousarray(ops._trim(disk_kernel(radius, alias_blur)))


def defocus_blur_cpu(image: np.ndarray, rng: RngLike, p: DefocusParams) -> np.ndarray:
    """defocus_blur for one (H, W, 3) uint8 image: OpenCV's filter2D in float64 as the reference, but on
    all three channels at once and with the kernel's all-zero outer rings dropped."""
    import cv2

    kernel = _trimmed_disk(p.radius, p.alias_blur)
    unit = np.divide(image, 255.0, out=ops.scratch("unit", image.shape, np.float64))
    values = ops.scratch("values", image.shape, np.float64)
    cv2.filter2D(unit, -1, kernel, dst=values, borderType=cv2.BORDER_REFLECT_101)
    np.clip(values, 0, 1, out=values)
    values *= 255
    return values.astype(np.uint8)


# ---------------------------------------------------------------- glass blur
class GlassParams(NamedTuple):
    sigma: float     # Gaussian blur before and after the shuffle
    max_delta: int   # each pixel takes the value of a neighbour offset by [-max_delta, max_delta - 1]
    iterations: int  # passes over the image


GLASS_BLUR_TABLE = (
    GlassParams(0.7, 1, 2),
    GlassParams(0.9, 2, 1),
    GlassParams(1.0, 2, 3),
    GlassParams(1.1, 3, 2),
    GlassParams(1.5, 4, 2),
)


@lru_cache(maxsize=32)
def _glass_schedule(height: int, width: int, delta: int, iterations: int) -> tuple[np.ndarray, np.ndarray,
                                                                                  np.ndarray]:
    """Reorder the reference's sequential pixel loop into vectorisable steps, exactly.

    The reference visits rows h = H-d .. d+1 and columns w = W-d .. d+1 (both descending), `iterations`
    times, and at each visit copies the pixel at (h+dy, w+dx) into (h, w). Two visits interact only when
    their 2d x 2d windows overlap (|dh|, |dw| <= 2d-1). Giving visit (it, i, j) the time
    it * 4d^2 + 2d * i + j keeps every pair of interacting visits in their original order and puts no two
    interacting visits at the same time, so all visits of one time step can run at once.

    Returns (visit order, step boundaries, flat target position of each visit in that order).
    """
    n_rows = max(height - 2 * delta, 0)  # len(range(H - d, d, -1))
    n_cols = max(width - 2 * delta, 0)
    it, i, j = np.meshgrid(np.arange(iterations), np.arange(n_rows), np.arange(n_cols), indexing="ij")
    time = (it * 4 * delta * delta + 2 * delta * i + j).ravel()
    order = np.argsort(time, kind="stable")
    bounds = np.flatnonzero(np.diff(time[order])) + 1
    bounds = np.concatenate(([0], bounds, [time.size]))
    rows = (height - delta - i).ravel()[order]
    cols = (width - delta - j).ravel()[order]
    return order, bounds, rows * width + cols


def glass_sources(height: int, width: int, p: GlassParams, rngs: Sequence[RngLike]) -> np.ndarray:
    """For a batch, the flat source index (into B*H*W) each output pixel ends up copied from."""
    order, bounds, targets = _glass_schedule(height, width, p.max_delta, p.iterations)
    n_rows, n_cols = max(height - 2 * p.max_delta, 0), max(width - 2 * p.max_delta, 0)
    area = height * width
    batch = len(rngs)
    target_all: np.ndarray = np.empty((targets.size, batch), dtype=np.intp)
    source_all: np.ndarray = np.empty((targets.size, batch), dtype=np.intp)
    for b, rng in enumerate(rngs):
        shifts = np.asarray(integers(rng, -p.max_delta, p.max_delta, (p.iterations, n_rows, n_cols, 2)),
                            dtype=np.intp)
        delta = (shifts[..., 1] * width + shifts[..., 0]).ravel()[order]  # (dx, dy) per visit
        target_all[:, b] = targets + b * area
        source_all[:, b] = targets + delta + b * area
    target_all = target_all.ravel()
    source_all = source_all.ravel()
    index = np.arange(batch * area, dtype=np.intp)
    for start, stop in zip(bounds[:-1] * batch, bounds[1:] * batch):
        index[target_all[start:stop]] = index[source_all[start:stop]]
    return index


def glass_blur(x: torch.Tensor, rngs: Sequence[RngLike], p: GlassParams) -> torch.Tensor:
    batch, channels, height, width = x.shape
    first = torch.floor(ops.gaussian_filter(_unit(x), p.sigma, mode="nearest") * 255)  # np.uint8(...)
    sources = torch.from_numpy(glass_sources(height, width, p, rngs)).to(x.device)
    flat = first.permute(1, 0, 2, 3).reshape(channels, batch * height * width)
    shuffled = flat.index_select(1, sources).reshape(channels, batch, height, width).permute(1, 0, 2, 3)
    return _to_pixels(ops.gaussian_filter(shuffled / 255.0, p.sigma, mode="nearest"))


# ---------------------------------------------------------------- motion blur
class MotionParams(NamedTuple):
    radius: int   # the kernel has 2 * radius + 1 taps along the motion direction
    sigma: float  # the taps' weights fall off as a one-sided Gaussian of this width


MOTION_BLUR_TABLE = (
    MotionParams(10, 3),
    MotionParams(15, 5),
    MotionParams(15, 8),
    MotionParams(15, 12),
    MotionParams(20, 15),
)
MOTION_BLUR_ANGLE = (-45.0, 45.0)  # degrees, drawn uniformly per image


def motion_blur(x: torch.Tensor, rngs: Sequence[RngLike], p: MotionParams) -> torch.Tensor:
    height, width = x.shape[-2:]
    outputs = []
    for b, rng in enumerate(rngs):
        angle = rng.uniform(*MOTION_BLUR_ANGLE)
        taps = ops.motion_taps(p.radius, p.sigma, angle, height, width)
        outputs.append(ops.shifted_sum(x[b].to(torch.float64), taps))
    return torch.stack(outputs).clamp(0, 255)


# ---------------------------------------------------------------- zoom blur
class ZoomParams(NamedTuple):  # the zoom factors are np.arange(start, stop, step)
    start: float
    stop: float
    step: float

    def factors(self) -> np.ndarray:
        return np.arange(self.start, self.stop, self.step)


ZOOM_BLUR_TABLE = (
    ZoomParams(1, 1.11, 0.01),
    ZoomParams(1, 1.16, 0.01),
    ZoomParams(1, 1.21, 0.02),
    ZoomParams(1, 1.26, 0.02),
    ZoomParams(1, 1.31, 0.03),
)


def zoom_blur(x: torch.Tensor, rngs: Sequence[RngLike], p: ZoomParams) -> torch.Tensor:
    """Average of the image and its centre zooms (float32 accumulation, as the reference)."""
    height, width = x.shape[-2:]
    unit = x.to(torch.float32) / 255.0
    wide = unit.to(torch.float64)
    total = torch.zeros_like(unit)
    factors = p.factors()
    for factor in factors:
        total += ops.zoom_center(wide, float(factor), keep_size=True)[..., :height, :width].to(torch.float32)
    return ((unit + total) / (len(factors) + 1)).clamp(0, 1) * 255


@lru_cache(maxsize=256)
def _zoom_taps(n_in: int, n_out: int, keep: int, channels: int) -> tuple[torch.Tensor, torch.Tensor, np.ndarray,
                                                                        np.ndarray, torch.Tensor]:
    """ops._linear_taps on the CPU (the same source samples and float64 weights) for zoom_blur_cpu: the low and
    high sources, the flat indices of their `channels` values in a row of pixels (..., W * channels), and
    the weights (one per sample, and one per value in such a row)."""
    low, high, weight = ops._linear_taps(n_in, n_out, keep, torch.device("cpu"), torch.float64)
    offsets = np.arange(channels)
    low_flat = (low.numpy()[:, None] * channels + offsets).ravel()
    high_flat = (high.numpy()[:, None] * channels + offsets).ravel()
    return low, high, low_flat, high_flat, weight.repeat_interleave(channels)


# zoom_blur_cpu works on strips of output rows of about this many bytes per float64 work array, so that its
# work arrays stay in cache instead of streaming whole float64 planes through memory for each zoom (measured
# at 640 x 480: about 200 ms per image for all 5 severities, against 280 ms unstripped; much smaller strips
# lose more to per-call overhead than they gain).
ZOOM_STRIP_BYTES = 1 << 20


def zoom_blur_cpu(image: np.ndarray, rng: RngLike, p: ZoomParams) -> np.ndarray:
    """zoom_blur for one (H, W, 3) uint8 image, the same bytes: the same arithmetic as zoom_blur (each zoom by
    ops.zoom_center's geometry, float64 torch.lerp along rows, then along columns; float32 accumulation), on
    the image as (H, W * 3) rows, strip by strip of output rows. The row pass gathers whole rows of the crop
    (torch.index_select), the column pass the 3 values of each source pixel (np.take on the flat rows); no
    CHW copies, and the work arrays are reused."""
    height, width, channels = image.shape
    row_len = width * channels
    strips = max(1, round(height * row_len * 8 / ZOOM_STRIP_BYTES))
    strip = -(-height // strips)
    unit = np.divide(image, np.float32(255.0), out=ops.scratch("zoom-unit", image.shape, np.float32))
    unit_rows = unit.reshape(height, row_len)
    wide = torch.from_numpy(ops.scratch("zoom-wide", (height, row_len), np.float64))
    wide.copy_(torch.from_numpy(unit_rows))
    low_rows, high_rows, row_pass = (torch.from_numpy(ops.scratch(tag, (strip * row_len,), np.float64))
                                     for tag in ("zoom-low-rows", "zoom-high-rows", "zoom-row-pass"))
    low_values, high_values, layer = (ops.scratch(tag, (strip, row_len), np.float64)
                                      for tag in ("zoom-low-values", "zoom-high-values", "zoom-layer"))
    total = np.zeros((height, row_len), np.float32)
    factors = p.factors()
    for factor in factors:
        crop_h, crop_w, top, left, size = ops.zoom_geometry(height, width, factor)
        if size[0] < height or size[1] < width:       # never: crop * factor >= the image
            raise ValueError(f"zoom factor {factor}: {size} is smaller than the image ({height}, {width})")
        crop = wide[:, left * channels:(left + crop_w) * channels]
        if size == (crop_h, crop_w):       # no resampling (factor 1): the crop, which is the whole image
            np.add(total, crop[top:top + height].numpy(), out=total, dtype=np.float32, casting="unsafe")
            continue
        low, high, _, _, row_weight = _zoom_taps(crop_h, size[0], height, 1)
        _, _, low_cols, high_cols, col_weight = _zoom_taps(crop_w, size[1], width, channels)
        low, high, row_weight = low + top, high + top, row_weight.view(-1, 1)
        crop_len = crop_w * channels
        for first in range(0, height, strip):
            last = min(first + strip, height)
            n = last - first
            low_part = low_rows[:n * crop_len].view(n, crop_len)
            high_part = high_rows[:n * crop_len].view(n, crop_len)
            torch.index_select(crop, 0, low[first:last], out=low_part)
            torch.index_select(crop, 0, high[first:last], out=high_part)
            rows = row_pass[:n * crop_len].view(n, crop_len)
            torch.lerp(low_part, high_part, row_weight[first:last], out=rows)
            np.take(rows.numpy(), low_cols, axis=1, out=low_values[:n], mode="clip")
            np.take(rows.numpy(), high_cols, axis=1, out=high_values[:n], mode="clip")
            torch.lerp(torch.from_numpy(low_values[:n]), torch.from_numpy(high_values[:n]), col_weight,
                       out=torch.from_numpy(layer[:n]))
            np.add(total[first:last], layer[:n], out=total[first:last], dtype=np.float32, casting="unsafe")
    total += unit_rows
    total /= len(factors) + 1
    np.clip(total, 0, 1, out=total)
    total *= 255
    return total.astype(np.uint8).reshape(image.shape)


GAUSSIAN_BLUR = Corruption("gaussian_blur", "blur", GAUSSIAN_BLUR_SIGMA, gaussian_blur, stochastic=False,
                           description="Gaussian blur", cpu_fn=gaussian_blur_cpu)
DEFOCUS_BLUR = Corruption("defocus_blur", "blur", DEFOCUS_BLUR_TABLE, defocus_blur, stochastic=False,
                          description="blur by an antialiased disk (out of focus lens)", cpu_fn=defocus_blur_cpu)
GLASS_BLUR = Corruption("glass_blur", "blur", GLASS_BLUR_TABLE, glass_blur, stochastic=True,
                        description="blur, local pixel shuffling, blur (frosted glass)")
MOTION_BLUR = Corruption("motion_blur", "blur", MOTION_BLUR_TABLE, motion_blur, stochastic=True,
                         description="one-sided Gaussian blur along a random direction")
ZOOM_BLUR = Corruption("zoom_blur", "blur", ZOOM_BLUR_TABLE, zoom_blur, stochastic=False,
                       description="average of centre zooms (camera moving toward the scene)", cpu_fn=zoom_blur_cpu)
