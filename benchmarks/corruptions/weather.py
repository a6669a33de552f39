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


def frost(x: torch.Tensor, rngs: Sequence[RngLike], p: FrostParams) -> torch.Tensor:
    height, width = x.shape[-2:]
    crops = []
    for rng in rngs:
        overlay = frost_overlay(int(integers(rng, len(FROST_FILES))), height, width)
        top = int(integers(rng, 0, overlay.shape[0] - height))
        left = int(integers(rng, 0, overlay.shape[1] - width))
        crops.append(overlay[top:top + height, left:left + width])
    layer = torch.from_numpy(np.stack(crops)).to(x.device).permute(0, 3, 1, 2).to(torch.float64)
    return (p.image_weight * x.to(torch.float64) + p.frost_weight * layer).clamp(0, 255)


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
                   description="a random crop of a frost photo blended over the image")
FOG = Corruption("fog", "weather", FOG_TABLE, fog, stochastic=True,
                 description="a fractal haze added to the image")
SPATTER = Corruption("spatter", "weather", SPATTER_TABLE, spatter, stochastic=True,
                     description="water drops (severities 1-3) or mud splashes (4-5)")
