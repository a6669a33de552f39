"""Weather corruptions: snow, frost, fog and spatter (brightness, also "weather", lives in digital.py).

Frost overlays photos of frost that ship with imagecorruptions; spatter's water-drop mask uses OpenCV's
edge and distance transforms (per image, on the CPU), exactly as the reference does.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from deem_eval.core.errors import DeemEvalError

from . import ops
from .spec import Corruption, RngLike, integers


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x.to(torch.float64) / 255.0


# ---------------------------------------------------------------- snow
class SnowParams(NamedTuple):
    mean: float        # the snow layer starts as N(mean, std) per pixel
    std: float
    zoom: float        # ... is zoomed by this factor (bigger flakes)
    threshold: float   # ... values below it are no snow
    blur_radius: int   # ... and motion blurred (falling flakes)
    blur_sigma: float
    blend: float       # weight of the image against its brightened grey version (snow light)


SNOW_TABLE = (
    SnowParams(0.1, 0.3, 3.0, 0.5, 10, 4, 0.8),
    SnowParams(0.2, 0.3, 2.0, 0.5, 12, 4, 0.7),
    SnowParams(0.55, 0.3, 4.0, 0.9, 12, 8, 0.7),
    SnowParams(0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
    SnowParams(0.55, 0.3, 2.5, 0.85, 12, 12, 0.55),
)
SNOW_ANGLE = (-135.0, -45.0)  # degrees, drawn uniformly per image: flakes fall downwards


def snow(x: torch.Tensor, rngs: Sequence[RngLike], p: SnowParams) -> torch.Tensor:
    height, width = x.shape[-2:]
    layers = []
    for rng in rngs:
        flakes = torch.from_numpy(rng.normal(p.mean, p.std, (height, width))).to(x.device)
        flakes = ops.zoom_center(flakes[None, None], p.zoom)[0]
        flakes = torch.where(flakes < p.threshold, torch.zeros_like(flakes), flakes).clamp(0, 1)
        taps = ops.motion_taps(p.blur_radius, p.blur_sigma, rng.uniform(*SNOW_ANGLE), *flakes.shape[-2:])
        flakes = ops.shifted_sum(flakes, taps)
        flakes = torch.round(flakes * 255).to(torch.uint8).to(torch.float64) / 255.0
        layers.append(flakes[..., :height, :width])
    layer = torch.stack(layers)                                   # (B, 1, H, W)
    unit = x.to(torch.float32) / 255.0
    lit = torch.maximum(unit, ops.rgb_to_gray(unit) * 1.5 + 0.5)
    base = p.blend * unit + (1 - p.blend) * lit
    return (base + layer + layer.flip(-1, -2)).clamp(0, 1) * 255


# ---------------------------------------------------------------- frost
class FrostParams(NamedTuple):
    image_weight: float
    frost_weight: float


FROST_TABLE = (
    FrostParams(1.0, 0.4),
    FrostParams(0.8, 0.6),
    FrostParams(0.7, 0.7),
    FrostParams(0.65, 0.7),
    FrostParams(0.6, 0.75),
)
# imagecorruptions 1.1.2 draws one of its first five frost photos (frost6.jpg is never used).
FROST_FILES = ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg")
FROST_OVERSIZE = 1.1  # the photo is scaled to cover the image with 10 % to spare, then cropped at random


def frost_dir() -> Path:
    """The frost photos: $DEEM_EVAL_FROST_DIR, else the `frost/` folder of the installed imagecorruptions."""
    override = os.environ.get("DEEM_EVAL_FROST_DIR")
    if override:
        return Path(override).expanduser()
    spec = importlib.util.find_spec("imagecorruptions")  # locates the package without importing it
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        raise DeemEvalError("frost needs the frost photos that ship with imagecorruptions, which is not "
                            "installed: pip install imagecorruptions==1.1.2 (or set DEEM_EVAL_FROST_DIR "
                            "to a folder holding frost1.png .. frost5.jpg)")
    return Path(locations[0]) / "frost"


@lru_cache(maxsize=8)
def frost_photo(index: int) -> np.ndarray:
    """Frost photo `index` (0-4) as OpenCV reads it: BGR uint8, alpha dropped."""
    import cv2

    path = frost_dir() / FROST_FILES[index]
    photo = cv2.imread(str(path)) if path.is_file() else None
    if photo is None:
        raise DeemEvalError(f"{path}: frost photo missing or unreadable; reinstall imagecorruptions "
                            "(pip install --force-reinstall imagecorruptions==1.1.2)")
    return photo


@lru_cache(maxsize=64)
def frost_overlay(index: int, height: int, width: int) -> np.ndarray:
    """Frost photo `index` scaled (bicubic) to cover height x width with 10 % to spare; RGB uint8."""
    import cv2

    photo = frost_photo(index)
    photo_h, photo_w = photo.shape[:2]
    if photo_h >= height and photo_w >= width:
        scale = 1.0
    elif photo_w >= width:
        scale = height / photo_h
    elif photo_h >= height:
        scale = width / photo_w
    else:
        scale = max(height / photo_h, width / photo_w)
    scale *= FROST_OVERSIZE
    size = (int(np.ceil(photo_w * scale)), int(np.ceil(photo_h * scale)))
    scaled = cv2.resize(photo, dsize=size, interpolation=cv2.INTER_CUBIC)
    return np.ascontiguousarray(scaled[..., ::-1])


def _frost_crop(rng: RngLike, height: int, width: int) -> np.ndarray:
    """The frost photo and the (height, width) window of it that `rng` picks (three draws, in this order)."""
    overlay = frost_overlay(int(integers(rng, len(FROST_FILES))), height, width)
    top = int(integers(rng, 0, overlay.shape[0] - height))
    left = int(integers(rng, 0, overlay.shape[1] - width))
    return overlay[top:top + height, left:left + width]


def frost(x: torch.Tensor, rngs: Sequence[RngLike], p: FrostParams) -> torch.Tensor:
    height, width = x.shape[-2:]
    crops = [_frost_crop(rng, height, width) for rng in rngs]
    layer = torch.from_numpy(np.stack(crops)).to(x.device).permute(0, 3, 1, 2).to(torch.float64)
    return (p.image_weight * x.to(torch.float64) + p.frost_weight * layer).clamp(0, 255)


@lru_cache(maxsize=8)
def _frost_blend_table(image_weight: float, frost_weight: float) -> np.ndarray:
    """uint8(clip(image_weight * x + frost_weight * f, 0, 255)) for every pair of grey levels (x, f), at
    x * 256 + f, in float64 as `frost` computes it: looking a pixel up is that computation, exactly."""
    x = np.arange(256, dtype=np.float64)[:, None]
    f = np.arange(256, dtype=np.float64)[None, :]
    return np.floor(np.clip(image_weight * x + frost_weight * f, 0, 255)).astype(np.uint8).ravel()


def frost_cpu(image: np.ndarray, rng: RngLike, p: FrostParams) -> np.ndarray:
    """frost for one (H, W, 3) uint8 image, the same bytes: the blend of two uint8 values takes 65,536 values,
    so it is one table lookup per value instead of float64 arithmetic over the image."""
    height, width = image.shape[:2]
    crop = _frost_crop(rng, height, width)
    index = ops.scratch("frost-index", image.shape, np.uint16)
    np.left_shift(image, 8, out=index, dtype=np.uint16)
    index |= crop
    return _frost_blend_table(p.image_weight, p.frost_weight)[index]


# ---------------------------------------------------------------- fog
class FogParams(NamedTuple):
    strength: float   # amplitude of the fog added to the image
    decay: float      # how fast the fractal's detail fades per octave (larger: smoother fog)


FOG_TABLE = (
    FogParams(1.5, 2.0),
    FogParams(2.0, 2.0),
    FogParams(2.5, 1.7),
    FogParams(2.5, 1.5),
    FogParams(3.0, 1.4),
)


def plasma_fractal(size: int, decay: float, rng: RngLike) -> np.ndarray:
    """A (size, size) diamond-square fractal in [0, 1]; size a power of two; the grid wraps around.

    Each octave sets square centres, then edge midpoints, to the mean of their four neighbours plus
    noise of amplitude a * U(-a, a) (a = 100, divided by `decay` per octave), drawing in the reference's
    order so a replayed stream reproduces it."""
    grid = np.zeros((size, size), dtype=np.float64)
    step, amplitude = size, 100.0

    def jitter(total: np.ndarray) -> np.ndarray:
        return total / 4 + amplitude * rng.uniform(-amplitude, amplitude, total.shape)

    while step >= 2:
        half = step // 2
        corners = grid[0::step, 0::step]
        pair = corners + np.roll(corners, -1, axis=0)
        grid[half::step, half::step] = jitter(pair + np.roll(pair, -1, axis=1))
        centres = grid[half::step, half::step]
        grid[0::step, half::step] = jitter((centres + np.roll(centres, 1, axis=0))
                                           + (corners + np.roll(corners, -1, axis=1)))
        grid[half::step, 0::step] = jitter((centres + np.roll(centres, 1, axis=1))
                                           + (corners + np.roll(corners, -1, axis=0)))
        step //= 2
        amplitude /= decay
    grid -= grid.min()
    return grid / grid.max()


def fog(x: torch.Tensor, rngs: Sequence[RngLike], p: FogParams) -> torch.Tensor:
    height, width = x.shape[-2:]
    size = 1 << (max(height, width, 3) - 1).bit_length()  # next power of two (the reference counts channels)
    layer = np.stack([plasma_fractal(size, p.decay, rng)[:height, :width] for rng in rngs])
    unit = _unit(x)
    brightest = unit.amax(dim=(1, 2, 3), keepdim=True)
    foggy = unit + p.strength * torch.from_numpy(layer).to(x.device).unsqueeze(1)
    return (foggy * brightest / (brightest + p.strength)).clamp(0, 1) * 255


def _plus_rolled(a: np.ndarray, shift: int, axis: int, out: np.ndarray) -> np.ndarray:
    """out = a + np.roll(a, shift, axis) for shift +-1, by slicing (no rolled copy)."""
    def at(index: slice | int) -> tuple[slice | int, ...]:
        return (index,) if axis == 0 else (slice(None), index)

    if shift == -1:          # a[i] + a[i + 1], wrapping at the end
        np.add(a[at(slice(None, -1))], a[at(slice(1, None))], out=out[at(slice(None, -1))])
        np.add(a[at(-1)], a[at(0)], out=out[at(-1)])
    else:                    # a[i] + a[i - 1], wrapping at the start
        np.add(a[at(slice(1, None))], a[at(slice(None, -1))], out=out[at(slice(1, None))])
        np.add(a[at(0)], a[at(-1)], out=out[at(0)])
    return out


def _jitter(total: np.ndarray, amplitude: float, rng: RngLike) -> np.ndarray:
    """plasma_fractal's total / 4 + amplitude * U(-amplitude, amplitude), in place in `total`."""
    total /= 4
    noise = rng.uniform(-amplitude, amplitude, total.shape)
    noise *= amplitude
    total += noise
    return total


def _plasma_quarters(size: int, decay: float, rng: RngLike
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """plasma_fractal's map before its normalisation, as its four (size/2, size/2) quarter grids: the
    points at (even, even), (odd, odd), (even, odd) and (odd, even) rows and columns.

    The same draws in the same order and the same float64 sums as plasma_fractal, term for term (np.roll
    replaced by slicing, x / 4 + a * u computed in place: the same roundings). Each octave works on
    contiguous arrays (the coarse grid, its square centres and its two kinds of edge midpoints) instead of
    strided views of the full map; the four are interleaved into the next octave's coarse grid, except after
    the last octave, whose points stay in quarters (the full map is never assembled)."""
    corners = np.zeros((1, 1), dtype=np.float64)
    amplitude = 100.0
    step = size
    while True:
        n = corners.shape[0]
        final = step == 2
        buffers = [ops.scratch(f"fog-plasma{k}", (n, n), np.float64) if final else np.empty((n, n))
                   for k in range(5)]
        pair, centres, across, down, scratch = buffers
        _plus_rolled(corners, -1, 0, pair)                      # corners + roll(corners, -1, axis=0)
        _jitter(_plus_rolled(pair, -1, 1, centres), amplitude, rng)          # square centres
        _plus_rolled(centres, 1, 0, across)                                  # edge midpoints (even, odd)
        across += _plus_rolled(corners, -1, 1, scratch)
        _jitter(across, amplitude, rng)
        _plus_rolled(centres, 1, 1, down)                                    # edge midpoints (odd, even)
        down += pair
        _jitter(down, amplitude, rng)
        if final:
            return corners, centres, across, down
        grid = np.empty((2 * n, 2 * n))
        grid[0::2, 0::2] = corners
        grid[1::2, 1::2] = centres
        grid[0::2, 1::2] = across
        grid[1::2, 0::2] = down
        corners = grid
        step //= 2
        amplitude /= decay


def plasma_crop(size: int, decay: float, rng: RngLike, height: int, width: int) -> np.ndarray:
    """plasma_fractal(size, decay, rng)[:height, :width], the same values (a new array).

    The map's min and max come from all four quarters; only the crop is interleaved and normalised. The
    max of (map - min) is fl(max - min), subtraction of a constant being monotone, so dividing by it is
    plasma_fractal's grid / grid.max()."""
    quarters = _plasma_quarters(size, decay, rng)
    low = min(q.min() for q in quarters)
    high = max(q.max() for q in quarters)
    crop = np.empty((height, width))
    even_h, even_w, odd_h, odd_w = (height + 1) // 2, (width + 1) // 2, height // 2, width // 2
    corners, centres, across, down = quarters
    crop[0::2, 0::2] = corners[:even_h, :even_w]
    crop[1::2, 1::2] = centres[:odd_h, :odd_w]
    crop[0::2, 1::2] = across[:even_h, :odd_w]
    crop[1::2, 0::2] = down[:odd_h, :even_w]
    crop -= low
    crop /= high - low
    return crop


def fog_cpu(image: np.ndarray, rng: RngLike, p: FogParams) -> np.ndarray:
    """fog for one (H, W, 3) uint8 image, the same bytes: plasma_crop instead of the cropped plasma_fractal,
    then fog's float64 arithmetic in its order ((x / 255 + s * layer) * b / (b + s), clipped, * 255,
    truncated), on the HWC array in place, the layer repeated across the channels once."""
    height, width, channels = image.shape
    size = 1 << (max(height, width, channels) - 1).bit_length()
    layer = plasma_crop(size, p.decay, rng, height, width)
    layer *= p.strength
    brightest = image.max() / 255.0
    out = ops.scratch("fog-out", (height, width * channels), np.float64)
    np.divide(image.reshape(height, width * channels), 255.0, out=out)
    out += np.repeat(layer, channels, axis=1)
    out *= brightest
    out /= brightest + p.strength
    np.clip(out, 0, 1, out=out)
    out *= 255
    return out.astype(np.uint8).reshape(height, width, channels)


# ---------------------------------------------------------------- spatter
class SpatterParams(NamedTuple):
    mean: float        # the liquid layer starts as N(mean, std) per pixel
    std: float
    sigma: float       # ... is Gaussian blurred with this sigma
    threshold: float   # ... and is dry below this value
    strength: float    # water: colour intensity of the drops; mud: blur sigma of the mud mask
    mud: bool          # False: pale turquoise water drops; True: brown mud splashes


SPATTER_TABLE = (
    SpatterParams(0.65, 0.3, 4, 0.69, 0.6, False),
    SpatterParams(0.65, 0.3, 3, 0.68, 0.6, False),
    SpatterParams(0.65, 0.3, 2, 0.68, 0.5, False),
    SpatterParams(0.65, 0.3, 1, 0.65, 1.5, True),
    SpatterParams(0.67, 0.4, 1, 0.65, 1.5, True),
)
WATER_RGB = (175, 238, 238)   # pale turquoise
MUD_RGB = (63, 42, 20)        # mud brown
EMBOSS = np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]], dtype=np.float32)


def _water_drops(liquid: np.ndarray, strength: float) -> np.ndarray:
    """Drop intensity (H, W) float32: the liquid mask shaded by an embossed distance-to-edge map."""
    import cv2

    liquid8 = (liquid * 255).astype(np.uint8)
    distance = cv2.distanceTransform(255 - cv2.Canny(liquid8, 50, 150), cv2.DIST_L2, 5)
    _, distance = cv2.threshold(distance, 20, 20, cv2.THRESH_TRUNC)
    distance = cv2.equalizeHist(cv2.blur(distance, (3, 3)).astype(np.uint8))
    distance = cv2.blur(cv2.filter2D(distance, cv2.CV_8U, EMBOSS), (3, 3)).astype(np.float32)
    drops = liquid8 * distance
    peak = drops.max()
    if peak > 0:  # the reference divides 0 by 0 here and turns a dry image black
        drops /= peak
    return drops * np.float32(strength)


def spatter_image(image: np.ndarray, rng: RngLike, p: SpatterParams) -> np.ndarray:
    """Spatter one RGB uint8 image (H, W, 3); returns [0, 255] floats."""
    from scipy.ndimage import gaussian_filter

    unit = image.astype(np.float32) / 255.0
    liquid = gaussian_filter(rng.normal(p.mean, p.std, image.shape[:2]), p.sigma, mode="nearest")
    liquid[liquid < p.threshold] = 0
    if not p.mud:
        drops = _water_drops(liquid, p.strength)[..., None]
        water = (np.array(WATER_RGB) / 255.0).astype(np.float32)
        return np.clip(unit + drops * water, 0, 1) * 255
    mask = gaussian_filter((liquid > p.threshold).astype(np.float32), p.strength, mode="nearest")
    mask[mask < 0.8] = 0
    mud = np.array(MUD_RGB) / 255.0 * mask[..., None]
    return np.clip(unit * (1 - mask[..., None]) + mud, 0, 1) * 255


def spatter(x: torch.Tensor, rngs: Sequence[RngLike], p: SpatterParams) -> torch.Tensor:
    images = x.permute(0, 2, 3, 1).cpu().numpy()
    out = np.stack([spatter_image(image, rng, p) for image, rng in zip(images, rngs)])
    return torch.from_numpy(out).to(x.device).permute(0, 3, 1, 2)


SNOW = Corruption("snow", "weather", SNOW_TABLE, snow, stochastic=True,
                  description="falling snow flakes over a brightened image")
FROST = Corruption("frost", "weather", FROST_TABLE, frost, stochastic=True,
                   description="a random crop of a frost photo blended over the image", cpu_fn=frost_cpu)
FOG = Corruption("fog", "weather", FOG_TABLE, fog, stochastic=True,
                 description="a fractal haze added to the image", cpu_fn=fog_cpu)
SPATTER = Corruption("spatter", "weather", SPATTER_TABLE, spatter, stochastic=True,
                     description="water drops (severities 1-3) or mud splashes (4-5)")
