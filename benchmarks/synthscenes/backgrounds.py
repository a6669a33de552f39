"""Scene backgrounds (sky, sea, road, grass, kitchen wall and table...), painted at a given pixel size.

Backgrounds hold no countable objects (no background houses, stars or fish), so every object a question
can ask about is an annotated instance. Colours vary a little per image (driven by the image's rng).
Band positions match the zones in scenes.py.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw

from deem_eval.core.errors import did_you_mean

RGB = tuple[int, int, int]
PLAIN: RGB = (236, 236, 232)


def _jit(c: RGB, rng: np.random.Generator, amount: int = 10) -> RGB:
    d = rng.integers(-amount, amount + 1, size=3)
    return tuple(int(min(255, max(0, v + int(e)))) for v, e in zip(c, d))  # type: ignore[return-value]


def _bands(size: int, bands: list[tuple[float, float, RGB, RGB]]) -> Image.Image:
    """Vertical gradients: each band (top, bottom, colour at top, colour at bottom), fractions of height."""
    rows = np.zeros((size, 3), np.float32)
    for top, bottom, c0, c1 in bands:
        y0, y1 = round(top * size), round(bottom * size)
        if y1 > y0:
            t = np.linspace(0.0, 1.0, y1 - y0, dtype=np.float32)[:, None]
            rows[y0:y1] = (1 - t) * np.array(c0, np.float32) + t * np.array(c1, np.float32)
    column = Image.fromarray(np.ascontiguousarray(np.round(rows).astype(np.uint8)[:, None, :]), "RGB")
    return column.resize((size, size), Image.Resampling.NEAREST)


def _sky(rng: np.random.Generator, bottom: float) -> tuple[float, float, RGB, RGB]:
    return (0.0, bottom, _jit((96, 160, 232), rng, 14), _jit((196, 224, 248), rng, 8))


def _wavy(draw: ImageDraw.ImageDraw, size: int, y: float, amp: float, period: float, phase: float, fill: RGB,
          width: int) -> None:
    pts = [(x, y + amp * math.sin(2 * math.pi * x / period + phase)) for x in np.linspace(0, size, 40).tolist()]
    draw.line(pts, fill=fill, width=width, joint="curve")


def street(size: int, rng: np.random.Generator) -> Image.Image:
    img = _bands(size, [_sky(rng, 0.5), (0.5, 0.64, _jit((196, 194, 188), rng), _jit((176, 174, 168), rng)),
                        (0.64, 1.0, _jit((92, 92, 98), rng, 8), _jit((72, 72, 78), rng, 8))])
    d = ImageDraw.Draw(img)
    w = max(1, size // 150)
    d.line([(0, 0.64 * size), (size, 0.64 * size)], fill=(230, 230, 225), width=2 * w)
    for k in range(8):  # sidewalk joints
        x = (k + rng.uniform(0.2, 0.8)) * size / 7
        d.line([(x, 0.5 * size), (x - 0.03 * size, 0.64 * size)], fill=(160, 158, 152), width=w)
    off = rng.uniform(0, 0.2) * size
    for k in range(-1, 6):  # lane dashes
        x = off + k * size / 4.5
        d.rectangle((x, 0.815 * size, x + 0.12 * size, 0.83 * size), fill=(240, 240, 235))
    return img


def beach(size: int, rng: np.random.Generator) -> Image.Image:
    img = _bands(size, [_sky(rng, 0.38), (0.38, 0.64, _jit((40, 112, 180), rng), _jit((80, 170, 210), rng)),
                        (0.64, 1.0, _jit((238, 216, 160), rng), _jit((224, 196, 136), rng))])
    d = ImageDraw.Draw(img)
    w = max(1, size // 160)
    for k in range(4):
        y = (0.42 + 0.05 * k + rng.uniform(0, 0.02)) * size
        _wavy(d, size, y, 0.006 * size, size / rng.uniform(3, 5), rng.uniform(0, 6.3), (150, 200, 235), w)
    _wavy(d, size, 0.645 * size, 0.01 * size, size / 3.0, rng.uniform(0, 6.3), (248, 248, 240), 3 * w)
    return img


def underwater(size: int, rng: np.random.Generator) -> Image.Image:
    img = _bands(size, [(0.0, 1.0, _jit((40, 140, 196), rng), _jit((12, 56, 120), rng))])
    d = ImageDraw.Draw(img)
    phase = rng.uniform(0, 6.3)
    bed = [(x, (0.82 + 0.02 * math.sin(2 * math.pi * x / size * 1.5 + phase)) * size)
           for x in np.linspace(0, size, 40).tolist()]
    d.polygon(bed + [(size, size), (0, size)], fill=_jit((196, 176, 120), rng))
    r = max(1.0, 0.008 * size)
    for _ in range(int(rng.integers(4, 9))):  # small bubbles
        x, y = rng.uniform(0.05, 0.95) * size, rng.uniform(0.05, 0.7) * size
        d.ellipse((x - r, y - r, x + r, y + r), outline=(170, 215, 240), width=max(1, size // 200))
    return img


def night(size: int, rng: np.random.Generator) -> Image.Image:
    img = _bands(size, [(0.0, 1.0, _jit((10, 14, 44), rng, 6), _jit((44, 54, 106), rng, 8))])
    d = ImageDraw.Draw(img)
    phase = rng.uniform(0, 6.3)
    hill = [(x, (0.78 + 0.03 * math.sin(2 * math.pi * x / size + phase)) * size)
            for x in np.linspace(0, size, 40).tolist()]
    d.polygon(hill + [(size, size), (0, size)], fill=_jit((26, 52, 36), rng, 6))
    return img


def _grass(img: Image.Image, rng: np.random.Generator, top: float, colour: RGB) -> None:
    d = ImageDraw.Draw(img)
    size = img.width
    w = max(1, size // 180)
    n = 70
    xs = rng.uniform(0, size, n)
    ys = rng.uniform(top + 0.02, 1.0, n) * size
    lens = rng.uniform(0.015, 0.03, n) * size
    leans = rng.uniform(-0.01, 0.01, n) * size
    for x, y, ln, lean in zip(xs.tolist(), ys.tolist(), lens.tolist(), leans.tolist()):
        d.line([(x, y), (x + lean, y - ln)], fill=colour, width=w)


def garden(size: int, rng: np.random.Generator) -> Image.Image:
    img = _bands(size, [_sky(rng, 0.45), (0.45, 1.0, _jit((120, 196, 84), rng), _jit((70, 150, 52), rng))])
    _grass(img, rng, 0.45, (52, 120, 40))
    return img


def park(size: int, rng: np.random.Generator) -> Image.Image:
    img = _bands(size, [_sky(rng, 0.45), (0.45, 1.0, _jit((140, 206, 100), rng), _jit((96, 170, 70), rng))])
    d = ImageDraw.Draw(img)
    c = rng.uniform(0.3, 0.7)
    path = [(c * size - 0.03 * size, 0.45 * size), (c * size + 0.03 * size, 0.45 * size),
            (c * size + 0.3 * size, size), (c * size - 0.3 * size, size)]
    d.polygon(path, fill=_jit((222, 204, 160), rng))
    _grass(img, rng, 0.45, (70, 140, 55))
    return img


def kitchen(size: int, rng: np.random.Generator) -> Image.Image:
    img = _bands(size, [(0.0, 0.58, _jit((246, 238, 214), rng), _jit((236, 226, 200), rng)),
                        (0.58, 1.0, _jit((188, 136, 86), rng), _jit((160, 110, 64), rng))])
    d = ImageDraw.Draw(img)
    w = max(1, size // 200)
    tile = size / 9
    for k in range(1, 10):
        d.line([(k * tile, 0), (k * tile, 0.58 * size)], fill=(214, 206, 186), width=w)
        if k * tile < 0.58 * size:
            d.line([(0, k * tile), (size, k * tile)], fill=(214, 206, 186), width=w)
    d.rectangle((0, 0.58 * size, size, 0.6 * size), fill=(120, 80, 44))
    for k in range(3):  # wood grain
        y = (0.68 + 0.1 * k + rng.uniform(0, 0.04)) * size
        _wavy(d, size, y, 0.004 * size, size / rng.uniform(1.5, 3), rng.uniform(0, 6.3), (150, 100, 58), w)
    return img


def plain(size: int, rng: np.random.Generator) -> Image.Image:
    return Image.new("RGB", (size, size), PLAIN)


PAINTERS: dict[str, Callable[[int, np.random.Generator], Image.Image]] = {
    "street": street, "beach": beach, "underwater": underwater, "night": night, "garden": garden,
    "park": park, "kitchen": kitchen, "plain": plain,
}


def paint_background(name: str, size: int, rng: np.random.Generator) -> Image.Image:
    """A `size` x `size` RGB background of the named kind."""
    if name not in PAINTERS:
        raise did_you_mean(name, PAINTERS, "SynthScenes background")
    return PAINTERS[name](size, rng)
