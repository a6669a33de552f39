"""Tensor building blocks the corruptions share: boundary-exact linear filters, resampling, HSV.

Everything works on batches (B, C, H, W) on any torch device. The boundary rules are the ones the
reference implementation inherits from scipy / OpenCV, so results agree to float rounding:

    "nearest"     a a a | a b c d | d d d      scipy mode='nearest', OpenCV BORDER_REPLICATE
    "symmetric"   c b a | a b c d | d c b      scipy mode='reflect', numpy 'symmetric'
    "reflect101"  d c b | a b c d | c b a      OpenCV BORDER_REFLECT_101 (default), torch 'reflect'

A 1-D filter along one axis, boundary rule included, is a linear map: an (n, n) matrix for short axes, or
a band matrix applied to overlapping windows of the padded axis for long ones. Either is one BLAS
product, measured several times faster on CPU than torch's depthwise convolution, and exact for any
kernel size and boundary rule. Non-separable 2-D kernels (the defocus disk) go through the FFT of the
padded image. Arithmetic is float64 wherever the reference computes in float64, so results agree to
the last grey level almost everywhere (see parity.py).
"""

from __future__ import annotations

import math
import threading
from functools import lru_cache
from typing import NamedTuple, cast

import numpy as np
import torch

Boundary = str  # "nearest" | "symmetric" | "reflect101"


def pad_index(n: int, before: int, after: int, mode: Boundary) -> np.ndarray:
    """Source index for every position -before .. n+after-1 of an axis of length n, padded by `mode`."""
    positions = np.arange(-before, n + after)
    if mode == "nearest":
        return np.clip(positions, 0, n - 1)
    if mode == "symmetric":
        period = 2 * n
        folded = np.mod(positions, period)
        return np.where(folded >= n, period - 1 - folded, folded)
    if mode == "reflect101":
        if n == 1:
            return np.zeros_like(positions)
        period = 2 * n - 2
        folded = np.mod(positions, period)
        return np.where(folded >= n, period - folded, folded)
    raise ValueError(f"unknown boundary mode {mode!r}")


BLOCK = 16   # output samples per block of the banded product


@lru_cache(maxsize=128)
def _axis_matrix_np(n: int, kernel: tuple[float, ...], mode: Boundary) -> np.ndarray:
    """(n, n) matrix of correlating an axis of length n with `kernel` under boundary rule `mode`."""
    radius = len(kernel) // 2
    source = pad_index(n, radius, radius, mode)
    matrix = np.zeros((n, n), dtype=np.float64)
    rows = np.arange(n)
    for tap, weight in enumerate(kernel):  # out[i] = sum_t k[t] * x[pad(i + t - radius)]
        np.add.at(matrix, (rows, source[rows + tap]), weight)
    return matrix


@lru_cache(maxsize=128)
def _band_np(kernel: tuple[float, ...], block: int) -> np.ndarray:
    """(block, block + 2r) matrix: row i holds the kernel at columns i .. i + 2r (a padded window)."""
    size = len(kernel)
    band = np.zeros((block, block + size - 1), dtype=np.float64)
    for row in range(block):
        band[row, row:row + size] = kernel
    return band


_CACHE: dict[tuple, torch.Tensor] = {}


def _cached(key: tuple, make):
    value = _CACHE.get(key)
    if value is None:
        if len(_CACHE) > 1024:
            _CACHE.clear()
        value = _CACHE[key] = make()
    return value


_SCRATCH = threading.local()


def scratch(tag: str, shape: tuple[int, ...], dtype) -> np.ndarray:
    """A reusable uninitialised work array (per thread, by tag, shape and dtype) for the numpy CPU paths.

    Fresh large arrays cost page faults on every call (several ms per image at 640 x 480 on the machines
    measured); intermediates written with out= into these do not. Never return one to a caller."""
    buffers = getattr(_SCRATCH, "buffers", None)
    if buffers is None:
        buffers = _SCRATCH.buffers = {}
    key = (tag, tuple(shape), np.dtype(dtype).str)
    buffer = buffers.get(key)
    if buffer is None:
        if len(buffers) >= 32:
            buffers.clear()
        buffer = buffers[key] = np.empty(shape, dtype)
    return buffer


def scratch_flat(tag: str, size: int, dtype) -> np.ndarray:
    """The first `size` elements of a reusable 1-D work array that grows as needed (see `scratch`)."""
    buffer = scratch(tag, (0,), dtype)
    if buffer.size < size:
        buffer = np.empty(max(size, 2 * buffer.size), dtype)
        _SCRATCH.buffers[(tag, (0,), np.dtype(dtype).str)] = buffer
    return buffer[:size]


def _tensor(array: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(array).to(device=like.device, dtype=like.dtype)


def filter_rows(x: torch.Tensor, kernel: np.ndarray, mode: Boundary) -> torch.Tensor:
    """Correlate axis -2 of x (..., n, m) with a centred odd-length kernel, boundary rule `mode`.

    Long axes: the axis is padded by the rule (index arithmetic, exact for every rule) and read as
    overlapping windows of BLOCK + 2r rows, which one batched product with a (BLOCK, BLOCK + 2r) band
    matrix filters: BLOCK + 2r multiply-adds per sample. Short axes (or wide kernels): one product with
    the dense (n, n) matrix of the filter, boundary included.
    """
    n = x.shape[-2]
    radius = len(kernel) // 2
    key = tuple(float(k) for k in kernel)
    if (2 * radius + BLOCK) * 6 > n:
        matrix = _cached(("dense", n, key, mode, x.dtype, str(x.device)),
                         lambda: _tensor(_axis_matrix_np(n, key, mode), x))
        return torch.matmul(matrix, x)
    blocks = -(-n // BLOCK)
    index = _cached(("index", n, radius, blocks, mode, str(x.device)), lambda: torch.from_numpy(
        pad_index(n, radius, radius + blocks * BLOCK - n, mode)).to(x.device))
    band = _cached(("band", key, x.dtype, str(x.device)), lambda: _tensor(_band_np(key, BLOCK), x))
    padded = x.index_select(-2, index).contiguous()
    lead, width = padded.shape[:-2], padded.shape[-1]
    padded = padded.reshape(-1, padded.shape[-2], width)
    windows = padded.as_strided((padded.shape[0], blocks, BLOCK + 2 * radius, width),
                                (padded.stride(0), BLOCK * width, width, 1))
    out = torch.matmul(band, windows)                        # (N, blocks, BLOCK, m)
    return out.reshape(*lead, blocks * BLOCK, width)[..., :n, :]


def filter_axes(x: torch.Tensor, kernel_rows: np.ndarray | None, kernel_cols: np.ndarray | None,
                mode: Boundary) -> torch.Tensor:
    """Correlate the last two axes of x (..., H, W) with 1-D kernels (rows first, as scipy does)."""
    if kernel_rows is not None:
        x = filter_rows(x, kernel_rows, mode)
    if kernel_cols is not None:
        x = filter_rows(x.transpose(-1, -2), kernel_cols, mode).transpose(-1, -2)
    return x.contiguous()


def gaussian_kernel1d(sigma: float, truncate: float) -> np.ndarray | None:
    """scipy.ndimage's Gaussian: radius int(truncate * sigma + 0.5), weights normalised to sum 1."""
    if sigma <= 1e-15:
        return None
    radius = int(truncate * float(sigma) + 0.5)
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    weights = np.exp(-0.5 / (float(sigma) * float(sigma)) * offsets ** 2)
    return weights / weights.sum()


def gaussian_filter(x: torch.Tensor, sigma: float | tuple[float, float], *, mode: Boundary = "nearest",
                    truncate: float = 4.0) -> torch.Tensor:
    """Gaussian blur of the last two axes, as scipy.ndimage.gaussian_filter / skimage.filters.gaussian."""
    if np.isscalar(sigma):
        sigma_rows = sigma_cols = cast(float, sigma)
    else:
        sigma_rows, sigma_cols = cast("tuple[float, float]", sigma)
    return filter_axes(x, gaussian_kernel1d(float(sigma_rows), truncate),
                       gaussian_kernel1d(float(sigma_cols), truncate), mode)


def filter2d(x: torch.Tensor, kernel: np.ndarray, mode: Boundary = "reflect101") -> torch.Tensor:
    """Correlate the last two axes with a 2-D kernel (centre anchor), via the FFT of the padded image."""
    kernel = _trim(kernel)
    kh, kw = kernel.shape
    height, width = x.shape[-2:]
    rows = torch.from_numpy(pad_index(height, kh // 2, kh // 2, mode)).to(x.device)
    cols = torch.from_numpy(pad_index(width, kw // 2, kw // 2, mode)).to(x.device)
    padded = x.index_select(-2, rows).index_select(-1, cols)
    size = tuple(fft_size(n) for n in padded.shape[-2:])   # zero-extended: the valid region does not wrap
    key = ("spectrum", kernel.tobytes(), kernel.shape, size, x.dtype, str(x.device))
    kernel_spectrum = _cached(key, lambda: torch.fft.rfft2(torch.from_numpy(np.ascontiguousarray(
        kernel[::-1, ::-1])).to(device=x.device, dtype=x.dtype), s=size))
    spectrum = torch.fft.rfft2(padded, s=size) * kernel_spectrum
    full = torch.fft.irfft2(spectrum, s=size)
    return full[..., kh - 1:kh - 1 + height, kw - 1:kw - 1 + width]


@lru_cache(maxsize=256)
def fft_size(n: int) -> int:
    """The smallest length >= n with only factors 2, 3 and 5 (fast for pocketfft and cuFFT alike): 656,
    the padded width of a 640 px image under a 17 x 17 kernel, is 2^4 x 41 and several times slower."""
    from scipy.fft import next_fast_len

    return int(next_fast_len(int(n), real=True))


def _trim(kernel: np.ndarray, tolerance: float = 1e-12) -> np.ndarray:
    """Drop outer rings of a centred kernel whose weights are all below tolerance * max (they change
    no pixel value) so the FFT works on a smaller padded image."""
    limit = tolerance * np.abs(kernel).max()
    while kernel.shape[0] > 1 and kernel.shape[1] > 1 and (
            np.abs(kernel[[0, -1], :]).max() < limit and np.abs(kernel[:, [0, -1]]).max() < limit):
        kernel = kernel[1:-1, 1:-1]
    return kernel


def motion_taps(radius: int, sigma: float, angle: float, height: int, width: int) -> list[tuple[int, int, float]]:
    """(dy, dx, weight) of imagecorruptions' motion-blur kernel: a one-sided Gaussian laid along `angle`.

    Tap i samples the image i pixels back along the direction, rounded to the pixel grid. Taps stop at the
    first one that would leave the image (the weights are not renormalised then, as in the reference).
    """
    length = 2 * radius + 1
    weights = np.exp(-np.arange(length) ** 2 / (2 * sigma ** 2)) / (np.sqrt(2 * np.pi) * sigma)
    weights = weights / np.sum(weights)
    step_y = length * np.sin(np.deg2rad(angle))
    step_x = length * np.cos(np.deg2rad(angle))
    norm = math.hypot(step_y, step_x)
    taps = []
    for i in range(length):
        dy = -math.ceil((i * step_y) / norm - 0.5)
        dx = -math.ceil((i * step_x) / norm - 0.5)
        if abs(dy) >= height or abs(dx) >= width:
            break
        taps.append((dy, dx, float(weights[i])))
    return taps


def shifted_sum(x: torch.Tensor, taps: list[tuple[int, int, float]]) -> torch.Tensor:
    """sum_i w_i * x shifted by (dy_i, dx_i) with edge pixels repeated, for one image x (C, H, W)."""
    height, width = x.shape[-2:]
    pad = max([1] + [max(abs(dy), abs(dx)) for dy, dx, _ in taps])
    rows = torch.from_numpy(pad_index(height, pad, pad, "nearest")).to(x.device)
    cols = torch.from_numpy(pad_index(width, pad, pad, "nearest")).to(x.device)
    padded = x.index_select(-2, rows).index_select(-1, cols)
    out = torch.zeros_like(x)
    for dy, dx, weight in taps:
        out.add_(padded[..., pad - dy:pad - dy + height, pad - dx:pad - dx + width], alpha=weight)
    return out


def bilinear_symmetric(x: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
    """Sample x (B, C, H, W) at real coordinates ys, xs (B, H', W') with linear interpolation and
    half-sample symmetric boundaries (scipy.ndimage.map_coordinates(order=1, mode='reflect'))."""
    batch, channels, height, width = x.shape
    y0 = torch.floor(ys)
    x0 = torch.floor(xs)
    wy = (ys - y0).unsqueeze(1)
    wx = (xs - x0).unsqueeze(1)
    y0, x0 = y0.long(), x0.long()

    def fold(index: torch.Tensor, n: int) -> torch.Tensor:
        folded = torch.remainder(index, 2 * n)
        return torch.where(folded >= n, 2 * n - 1 - folded, folded)

    flat = x.reshape(batch, channels, height * width)
    out_shape = (batch, channels) + tuple(ys.shape[1:])
    rows0, rows1 = fold(y0, height) * width, fold(y0 + 1, height) * width
    cols0, cols1 = fold(x0, width), fold(x0 + 1, width)

    def at(rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        index = (rows + cols).reshape(batch, 1, -1).expand(-1, channels, -1)
        return flat.gather(2, index).reshape(out_shape)

    top = at(rows0, cols0)
    top = torch.lerp(top, at(rows0, cols1), wx.expand_as(top))
    bottom = at(rows1, cols0)
    bottom = torch.lerp(bottom, at(rows1, cols1), wx.expand_as(bottom))
    return torch.lerp(top, bottom, wy.expand_as(top))


def _linear_taps(n_in: int, n_out: int, keep: int, device: torch.device, dtype: torch.dtype):
    """Source indices and weights of the first `keep` of n_out samples resampled from n_in, end samples
    aligned (scipy.ndimage.zoom's order-1 geometry)."""
    def make():
        step = (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
        position = np.arange(min(keep, n_out)) * step
        low = np.minimum(np.floor(position).astype(np.int64), n_in - 1)
        high = np.minimum(low + 1, n_in - 1)
        return (torch.from_numpy(low).to(device), torch.from_numpy(high).to(device),
                torch.from_numpy(position - low).to(device=device, dtype=dtype))
    return _cached(("linear", n_in, n_out, keep, str(device), dtype), make)


def resize_linear(x: torch.Tensor, height: int, width: int, *, keep: tuple[int, int] | None = None
                  ) -> torch.Tensor:
    """Linear resampling of the last two axes to (height, width), end samples aligned (scipy.ndimage.zoom
    with order=1), one axis after the other; only the top-left `keep` = (rows, cols) are computed."""
    keep_h, keep_w = keep or (height, width)
    low, high, weight = _linear_taps(x.shape[-2], height, keep_h, x.device, x.dtype)
    rows_low = x.index_select(-2, low)
    x = torch.lerp(rows_low, x.index_select(-2, high), weight.view(-1, 1).expand_as(rows_low))
    low, high, weight = _linear_taps(x.shape[-1], width, keep_w, x.device, x.dtype)
    cols_low = x.index_select(-1, low)
    return torch.lerp(cols_low, x.index_select(-1, high), weight.expand_as(cols_low))


class ZoomGeometry(NamedTuple):
    """The centre crop a zoom by `factor` takes of an H x W image, and the size it is zoomed back to."""

    crop_h: int
    crop_w: int
    top: int
    left: int
    size: tuple[int, int]       # round(crop * factor): at least (H, W)


def zoom_geometry(height: int, width: int, factor: float) -> ZoomGeometry:
    factor = float(factor)                  # a Python float: round() gives int
    crop_h = int(np.ceil(height / factor))
    crop_w = int(np.ceil(width / factor))
    return ZoomGeometry(crop_h, crop_w, (height - crop_h) // 2, (width - crop_w) // 2,
                        (round(crop_h * factor), round(crop_w * factor)))


def zoom_center(x: torch.Tensor, factor: float, *, keep_size: bool = False) -> torch.Tensor:
    """Centre crop of x (B, C, H, W) by 1/factor, zoomed back by `factor` with linear interpolation
    (scipy.ndimage.zoom(order=1) geometry: corner pixels aligned, output size round(crop * factor)).
    The result is at least H x W; the reference keeps its top-left H x W corner, which is all that is
    computed with keep_size=True."""
    height, width = x.shape[-2:]
    crop_h, crop_w, top, left, size = zoom_geometry(height, width, factor)
    crop = x[..., top:top + crop_h, left:left + crop_w]
    if size == (crop_h, crop_w):
        return crop
    return resize_linear(crop, *size, keep=(height, width) if keep_size else None)


def rgb_to_hsv(rgb: torch.Tensor) -> torch.Tensor:
    """skimage.color.rgb2hsv on (B, 3, H, W) in [0, 1]; ties for the max channel go to blue, then green."""
    r, g, b = rgb.unbind(1)
    value = rgb.amax(1)
    delta = value - rgb.amin(1)
    zero = delta == 0
    safe = torch.where(zero, torch.ones_like(delta), delta)
    saturation = torch.where(zero, torch.zeros_like(delta), delta / torch.where(value == 0, safe, value))
    hue = torch.where(b == value, 4.0 + (r - g) / safe,
                      torch.where(g == value, 2.0 + (b - r) / safe, (g - b) / safe))
    hue = torch.remainder(hue / 6.0, 1.0)
    hue = torch.where(zero, torch.zeros_like(hue), hue)
    return torch.stack((hue, saturation, value), 1)


# For hue sectors 0..5, which of (v, p, q, t) each of R, G, B takes (skimage.color.hsv2rgb's table).
_SECTOR_PICKS = np.array([[0, 2, 1, 1, 3, 0],    # R: v q p p t v
                          [3, 0, 0, 2, 1, 1],    # G: t v v q p p
                          [1, 1, 3, 0, 0, 2]])   # B: p p t v v q


def hsv_to_rgb(hsv: torch.Tensor) -> torch.Tensor:
    """skimage.color.hsv2rgb on (B, 3, H, W): the same p, q, t terms, picked per hue sector."""
    h, s, v = hsv.unbind(1)
    sector = torch.floor(h * 6)
    f = h * 6 - sector
    terms = torch.stack((v, v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)), 1)   # v, p, q, t
    sector = torch.remainder(sector, 6).to(torch.int64)
    picks = _cached(("sector-picks", str(hsv.device)), lambda: torch.from_numpy(_SECTOR_PICKS).to(hsv.device))
    index = picks[:, sector].permute(1, 0, 2, 3)                                        # (B, 3, H, W)
    return terms.gather(1, index)


def rgb_to_gray(rgb: torch.Tensor) -> torch.Tensor:
    """Luma with OpenCV's RGB2GRAY weights, (B, 3, H, W) -> (B, 1, H, W)."""
    r, g, b = rgb.unbind(1)
    return (0.299 * r + 0.587 * g + 0.114 * b).unsqueeze(1)


class single_thread:
    """One torch (and OpenCV) thread while computing: results never depend on the thread count, and on shared
    cores extra OpenMP threads only spin-wait (two threads measured 4.8-6.7x slower). Restores both counts."""

    def __enter__(self) -> None:
        import torch

        self.torch_threads = torch.get_num_threads()
        torch.set_num_threads(1)
        self.cv2_threads = None
        try:
            import cv2

            self.cv2_threads = cv2.getNumThreads()
            cv2.setNumThreads(1)
        except ImportError:
            pass

    def __exit__(self, *exc: object) -> None:
        import torch

        torch.set_num_threads(self.torch_threads)
        if self.cv2_threads is not None:
            import cv2

            cv2.setNumThreads(self.cv2_threads)
