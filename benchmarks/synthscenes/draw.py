"""Draw one category's silhouette into a box of a PIL image, in one of several rendering styles.

Styles (`STYLES`): "filled" (flat colours, thin darker outline; what scenes use), "outline" (coloured line
art), "sketch" (jittery graphite strokes with light hatching), "cartoon" (saturated flat colours, thick black
outlines), "texture" (layers filled with stripes / checks / dots / zigzags). Renditions of the same
categories let the RobustVQA-style sets ask about one object under many looks.

Drawing is aliased; callers that want smooth edges draw at 2-4x and downsample (render.py does).
"""

from __future__ import annotations

import colorsys
import itertools
import math
from collections.abc import Iterable, Sequence

import numpy as np
from PIL import Image, ImageChops, ImageDraw

from deem_eval.core.errors import DeemEvalError, did_you_mean
from deem_eval.core.rng import derive_rng

from .categories import RGB, Category, category_by_name

STYLES: tuple[str, ...] = ("filled", "outline", "sketch", "cartoon", "texture")
TEXTURES: tuple[str, ...] = ("stripes", "checks", "dots", "zigzag")
GRAPHITE: RGB = (62, 62, 68)
INK: RGB = (22, 22, 26)

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels


def fit_box(aspect: float, box: Sequence[float]) -> tuple[float, float, float, float]:
    """The largest (x, y, w, h) of the given aspect ratio centred in `box` = (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = map(float, box)
    bw, bh = x1 - x0, y1 - y0
    if bw <= 0 or bh <= 0:
        raise ValueError(f"empty box {tuple(box)}")
    w, h = (bw, bw / aspect) if bw / bh < aspect else (bh * aspect, bh)
    return x0 + (bw - w) / 2, y0 + (bh - h) / 2, w, h


def darker(c: RGB, f: float) -> RGB:
    return (int(c[0] * f), int(c[1] * f), int(c[2] * f))


def lighter(c: RGB, f: float) -> RGB:
    return tuple(round(v + (255 - v) * f) for v in c)  # type: ignore[return-value]


def saturated(c: RGB) -> RGB:
    h, s, v = colorsys.rgb_to_hsv(*(x / 255 for x in c))
    if s > 0.12:
        s, v = min(1.0, s * 1.35 + 0.1), min(1.0, v * 1.08 + 0.04)
    return tuple(round(x * 255) for x in colorsys.hsv_to_rgb(h, s, v))  # type: ignore[return-value]


def check_colour(colour: object) -> RGB:
    """An (r, g, b) tuple of ints in 0..255, or a DeemEvalError saying what is wrong."""
    rgb: tuple[int, ...]
    try:
        rgb = tuple(int(v) for v in colour) if isinstance(colour, Iterable) else ()
    except (TypeError, ValueError):
        rgb = ()
    if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
        raise DeemEvalError(f"colour must be three integers 0..255 (r, g, b), got {colour!r}")
    return rgb[0], rgb[1], rgb[2]


def draw_object(image: Image.Image | ImageDraw.ImageDraw, category: str | Category, box: Sequence[float], *,
                style: str = "filled", colour: RGB | None = None, rng: np.random.Generator | None = None
                ) -> tuple[float, float, float, float]:
    """Draw `category` fitted (aspect kept, centred) into `box` = (x0, y0, x1, y1) of an RGB image (or of the
    image behind an ImageDraw).

    `colour` replaces the category's identity ("main") colour; `rng` drives the sketch jitter and the
    texture choice (a fixed stream per category and style when omitted). Returns the drawn silhouette's
    bounding box (x, y, w, h) in image pixels, before clipping to the image.
    """
    cat = category if isinstance(category, Category) else category_by_name(category)
    if style not in STYLES:
        raise did_you_mean(style, STYLES, "SynthScenes style")
    if isinstance(image, ImageDraw.ImageDraw):
        behind = getattr(image, "_image", None)
        if not isinstance(behind, Image.Image):
            raise TypeError("draw_object needs a PIL image; pass the image instead of its ImageDraw")
        image = behind
    if image.mode != "RGB":
        raise ValueError(f"draw_object needs an RGB image, got mode {image.mode!r}")
    if rng is None and style in ("sketch", "texture"):
        rng = derive_rng(0, "synthscenes", "draw", cat.name, style)
    x, y, w, h = fit_box(cat.aspect, box)
    colours = dict(cat.colours)
    if colour is not None:
        colours["main"] = check_colour(colour)
    layers = [(layer, [[(x + u * w, y + v * h) for u, v in path] for path in layer.paths], cat.colour(layer.role)
               if layer.role not in colours else colours[layer.role]) for layer in cat.shape.layers]
    size = min(w, h)
    if style in ("filled", "cartoon"):
        _draw_flat(image, layers, size, cartoon=style == "cartoon")
    else:
        _draw_masked(image, layers, size, (x, y, w, h), style, rng)
    return x, y, w, h


def _stroke(draw: ImageDraw.ImageDraw, pts: list[tuple[float, float]], fill, width: float, closed: bool = False,
            corners: Sequence[int] | None = None) -> None:
    """A polyline with round joints where it turns sharply (`corners`, all vertices when None or when thick)
    and round caps.

    (Pillow's joint="curve" rounds every vertex in Python and dominated scene rendering time; smooth curves
    made of many points need no joint when the line is thin.)
    """
    wi = max(1, round(width))
    seq = pts + [pts[0]] if closed else pts
    draw.line(seq, fill=fill, width=wi)
    if wi < 3:
        return
    r = wi / 2 - 0.5
    for i in (range(len(pts)) if corners is None or wi >= 6 else corners):
        px, py = pts[i]
        draw.ellipse((px - r, py - r, px + r, py + r), fill=fill)


def _draw_flat(image: Image.Image, layers, size: float, *, cartoon: bool) -> None:
    draw = ImageDraw.Draw(image)
    ow = max(1.0, (0.05 if cartoon else 0.022) * size)
    for layer, paths, col in layers:
        col = saturated(col) if cartoon else col
        edge = INK if cartoon else darker(col, 0.55)
        if layer.kind == "fill":
            for p, corners in zip(paths, layer.corners):
                _stroke(draw, p, edge, 2 * ow, closed=True, corners=corners)
            for p in paths:
                draw.polygon(p, fill=col)
        else:
            lw = max(1.0, layer.width * size)
            if cartoon:
                for p, corners in zip(paths, layer.corners):
                    _stroke(draw, p, edge, lw + 2 * ow, corners=corners)
            for p, corners in zip(paths, layer.corners):
                _stroke(draw, p, col, lw, corners=corners)


class _Region:
    """A box-local canvas for masks, so mask work scales with the object, not the image."""

    def __init__(self, image: Image.Image, xywh: tuple[float, float, float, float], margin: float) -> None:
        x, y, w, h = xywh
        self.x0 = max(0, math.floor(x - margin))
        self.y0 = max(0, math.floor(y - margin))
        self.x1 = min(image.width, math.ceil(x + w + margin))
        self.y1 = min(image.height, math.ceil(y + h + margin))
        self.size = (max(0, self.x1 - self.x0), max(0, self.y1 - self.y0))

    @property
    def empty(self) -> bool:
        return self.size[0] == 0 or self.size[1] == 0

    def local(self, path) -> list[tuple[float, float]]:
        return [(px - self.x0, py - self.y0) for px, py in path]

    def mask(self) -> Image.Image:
        return Image.new("L", self.size, 0)

    def fill_mask(self, paths) -> Image.Image:
        m = self.mask()
        d = ImageDraw.Draw(m)
        for p in paths:
            d.polygon(self.local(p), fill=255)
        return m

    def paste(self, image: Image.Image, what, mask: Image.Image) -> None:
        image.paste(what, (self.x0, self.y0, self.x1, self.y1), mask)


def _dilate(a: np.ndarray, r: int) -> np.ndarray:
    """Binary dilation by a (2r+1)-square, separably (Pillow's rank filters cost O(r^2) per pixel)."""
    if r <= 0:
        return a.copy()
    out = a.copy()
    for d in range(1, r + 1):
        out[:, d:] |= a[:, :-d]
        out[:, :-d] |= a[:, d:]
    rows = out.copy()
    for d in range(1, r + 1):
        out[d:, :] |= rows[:-d, :]
        out[:-d, :] |= rows[d:, :]
    return out


def _erode(a: np.ndarray, r: int) -> np.ndarray:
    return ~_dilate(~a, r)


def _as_mask(a: np.ndarray) -> Image.Image:
    return Image.fromarray(a.astype(np.uint8) * 255, "L")


def _ring(fill_mask: Image.Image, width: float) -> Image.Image:
    """The union outline of a filled mask, about `width` pixels wide, centred on the edge."""
    r = max(1, round(width / 2))
    a = np.asarray(fill_mask) > 127
    return _as_mask(_dilate(a, r) & ~_erode(a, r))


def _jitter_path(pts, step: float, sigma: float, rng: np.random.Generator, closed: bool) -> list[tuple[float, float]]:
    """Resample a polyline every ~`step` pixels and push points sideways by smooth noise (a hand-drawn line)."""
    seq = list(pts) + ([pts[0]] if closed else [])
    out: list[tuple[float, float]] = []
    for (ax, ay), (bx, by) in itertools.pairwise(seq):
        n = max(1, int(math.hypot(bx - ax, by - ay) / step))
        out += [(ax + (bx - ax) * i / n, ay + (by - ay) * i / n) for i in range(n)]
    out.append(seq[-1])
    noise = rng.normal(0.0, sigma, size=(len(out), 2))
    noise = (noise + np.roll(noise, 1, axis=0) + np.roll(noise, -1, axis=0)) / 2.0  # smooth
    drift = rng.normal(0.0, sigma, size=2)
    return [(px + dx + drift[0], py + dy + drift[1]) for (px, py), (dx, dy) in zip(out, noise.tolist())]


def _pattern(kind: str, size: tuple[int, int], period: float, offset: tuple[float, float]) -> np.ndarray:
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    xx += offset[0]
    yy += offset[1]
    p = max(2.0, period)
    if kind == "stripes":
        return ((xx + yy) // p) % 2 == 0
    if kind == "checks":
        return ((xx // p) + (yy // p)) % 2 == 0
    if kind == "dots":
        return ((xx % p) - p / 2) ** 2 + ((yy % p) - p / 2) ** 2 < (0.3 * p) ** 2
    # zigzag bands
    return ((yy + (p / 2) * np.abs((xx / p) % 2 - 1)) // (p / 2)) % 2 == 0


def _need_rng(rng: np.random.Generator | None, style: str) -> np.random.Generator:
    if rng is None:     # draw_object derives one for the styles that use it
        raise ValueError(f"the {style!r} style needs an rng")
    return rng


def _draw_masked(image: Image.Image, layers, size: float, xywh, style: str, rng: np.random.Generator | None) -> None:
    ow = max(1.0, 0.03 * size)
    sigma = 0.012 * size
    region = _Region(image, xywh, margin=2 * ow + 6 * sigma + 2)
    if region.empty:
        return
    texture, tex_offset = "", (0.0, 0.0)
    if style == "texture":
        texture_rng = _need_rng(rng, style)
        texture = TEXTURES[int(texture_rng.integers(len(TEXTURES)))]
        tex_offset = (float(texture_rng.uniform(0, 100)), float(texture_rng.uniform(0, 100)))
    hatched = False
    pattern: Image.Image | None = None
    for layer, paths, col in layers:
        if layer.kind == "line":
            lw = max(1.0, layer.width * size)
            draw = ImageDraw.Draw(image)
            for i, p in enumerate(paths):
                if style == "sketch":
                    sketch_rng = _need_rng(rng, style)
                    for _ in range(2):
                        _stroke(draw, _jitter_path(p, 0.05 * size, sigma, sketch_rng, False), GRAPHITE,
                                max(1.0, 0.35 * lw))
                else:
                    _stroke(draw, p, darker(col, 0.8) if style == "outline" else col, lw, corners=layer.corners[i])
            continue
        fill_mask = region.fill_mask(paths)
        if style == "outline":
            region.paste(image, darker(col, 0.75), _ring(fill_mask, ow))
        elif style == "texture":
            if pattern is None:
                pattern = _as_mask(_pattern(texture, region.size, 0.12 * size, tex_offset))
            region.paste(image, lighter(col, 0.6) if sum(col) < 600 else darker(col, 0.7), fill_mask)
            region.paste(image, col, ImageChops.multiply(pattern, fill_mask))
            region.paste(image, darker(col, 0.5), _ring(fill_mask, 0.6 * ow))
        else:  # sketch
            if not hatched:  # light diagonal hatching in the first filled layer
                hatch = region.mask()
                hd = ImageDraw.Draw(hatch)
                step = max(3.0, 0.09 * size)
                span = region.size[0] + region.size[1]
                for k in range(int(span / step) + 1):
                    c = k * step
                    hd.line([(c, 0), (c - region.size[1], region.size[1])], fill=150, width=max(1, int(0.01 * size)))
                region.paste(image, GRAPHITE, ImageChops.multiply(hatch, fill_mask))
                hatched = True
            strokes = region.mask()
            sd = ImageDraw.Draw(strokes)
            sketch_rng = _need_rng(rng, style)
            for p in paths:
                for _ in range(2):
                    _stroke(sd, region.local(_jitter_path(p, 0.05 * size, sigma, sketch_rng, True)), 255,
                            max(1.0, 0.018 * size))
            inner = _erode(np.asarray(fill_mask) > 127, max(1, round(2.5 * sigma)))
            region.paste(image, GRAPHITE, _as_mask((np.asarray(strokes) > 127) & ~inner))
