"""Vector silhouettes: a shape is a stack of colour layers, each a union of polygons or polylines.

Shapes are written in free "design units" and normalised to their tight bounds, so a shape fitted into a
box touches the box's edges and the box is the object's bounding box. Keeping icons as data (not as
drawing code) lets every rendering style (filled, outline, sketch, cartoon, texture) draw every category.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

Point = tuple[float, float]
Path = tuple[Point, ...]


@dataclass(frozen=True)
class Layer:
    """Polygons (kind "fill", outlined as one union) or open polylines (kind "line") in one colour role.

    `width` is the stroke width of "line" layers as a fraction of the shape's smaller side.
    """

    role: str
    paths: tuple[Path, ...]
    kind: str = "fill"
    width: float = 0.0
    corners: tuple[tuple[int, ...], ...] = ()  # per path: vertices where it turns sharply (set by make_shape)


@dataclass(frozen=True)
class Shape:
    """Layers (bottom first) in unit coordinates: x in [0, 1] across the width, y in [0, 1] down the height."""

    layers: tuple[Layer, ...]
    aspect: float  # width / height of the tight bounds

    def roles(self) -> set[str]:
        return {layer.role for layer in self.layers}


def make_shape(layers: Sequence[Layer]) -> Shape:
    """Normalise layers given in design units to unit coordinates over their tight bounds."""
    xs = [x for layer in layers for path in layer.paths for x, _ in path]
    ys = [y for layer in layers for path in layer.paths for _, y in path]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    w, h = x1 - x0, y1 - y0
    out = tuple(
        Layer(layer.role, tuple(tuple(((x - x0) / w, (y - y0) / h) for x, y in path) for path in layer.paths),
              layer.kind, layer.width, tuple(sharp_corners(p, closed=layer.kind == "fill") for p in layer.paths))
        for layer in layers
    )
    return Shape(out, w / h)


def sharp_corners(path: Sequence[Point], *, closed: bool, min_turn: float = 14.0) -> tuple[int, ...]:
    """Indices of vertices where the path turns by more than `min_turn` degrees (open ends count as corners).

    Turning angles survive the aspect-preserving fit into a box, so this is computed once per shape and
    tells the stroker where round joints are needed.
    """
    n = len(path)
    cos_limit = math.cos(math.radians(min_turn))
    out = []
    for i, (px, py) in enumerate(path):
        if not closed and (i == 0 or i == n - 1):
            out.append(i)
            continue
        ax, ay = path[i - 1]
        bx, by = path[(i + 1) % n]
        v1x, v1y, v2x, v2y = px - ax, py - ay, bx - px, by - py
        norm = math.hypot(v1x, v1y) * math.hypot(v2x, v2y)
        if norm == 0 or (v1x * v2x + v1y * v2y) / norm < cos_limit:
            out.append(i)
    return tuple(out)


def fill(role: str, *paths: Iterable[Point]) -> Layer:
    return Layer(role, tuple(tuple(p) for p in paths), "fill")


def line(role: str, width: float, *paths: Iterable[Point]) -> Layer:
    return Layer(role, tuple(tuple(p) for p in paths), "line", width)


def ellipse(cx: float, cy: float, rx: float, ry: float | None = None, *, n: int = 40,
            start: float = 0.0, end: float = 360.0) -> list[Point]:
    """Points on an ellipse (angles in degrees, y down; a full turn is closed by the polygon)."""
    ry = rx if ry is None else ry
    full = abs(end - start) >= 360.0
    count = n if full else max(2, int(n * abs(end - start) / 360.0) + 1)
    step = (end - start) / (count if full else count - 1)
    return [(cx + rx * math.cos(math.radians(start + i * step)), cy + ry * math.sin(math.radians(start + i * step)))
            for i in range(count)]


def rect(x0: float, y0: float, x1: float, y1: float) -> list[Point]:
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


def rounded_rect(x0: float, y0: float, x1: float, y1: float, r: float, *, n: int = 6) -> list[Point]:
    r = min(r, (x1 - x0) / 2, (y1 - y0) / 2)
    pts: list[Point] = []
    for cx, cy, a0 in ((x1 - r, y0 + r, 270), (x1 - r, y1 - r, 0), (x0 + r, y1 - r, 90), (x0 + r, y0 + r, 180)):
        pts += ellipse(cx, cy, r, r, n=4 * n, start=a0, end=a0 + 90)
    return pts


def star(cx: float, cy: float, r_out: float, r_in: float, points: int = 5, rotation: float = -90.0) -> list[Point]:
    pts = []
    for i in range(2 * points):
        r = r_out if i % 2 == 0 else r_in
        a = math.radians(rotation + i * 180.0 / points)
        pts.append((cx + r * math.cos(a), cy + r * math.sin(a)))
    return pts


def rotate(points: Iterable[Point], degrees: float, cx: float, cy: float) -> list[Point]:
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    return [(cx + (x - cx) * c - (y - cy) * s, cy + (x - cx) * s + (y - cy) * c) for x, y in points]


def crescent(c1: Point, r1: float, c2: Point, r2: float, *, n: int = 120) -> list[Point]:
    """The part of circle 1 outside circle 2, as one polygon (outer arc, then inner arc back)."""

    def inside(p: Point, c: Point, r: float) -> bool:
        return (p[0] - c[0]) ** 2 + (p[1] - c[1]) ** 2 < r * r

    def arc(c: Point, r: float, keep) -> list[Point]:
        pts = [(c[0] + r * math.cos(2 * math.pi * i / n), c[1] + r * math.sin(2 * math.pi * i / n)) for i in range(n)]
        mask = [keep(p) for p in pts]
        start = next(i for i in range(n) if mask[i] and not mask[i - 1])
        run = []
        for k in range(n):
            i = (start + k) % n
            if not mask[i]:
                break
            run.append(pts[i])
        return run

    outer = arc(c1, r1, lambda p: not inside(p, c2, r2))
    inner = arc(c2, r2, lambda p: inside(p, c1, r1))
    if math.dist(outer[-1], inner[0]) > math.dist(outer[-1], inner[-1]):
        inner.reverse()
    return outer + inner


def polygon_area(points: Sequence[Point]) -> float:
    """Shoelace area (absolute)."""
    s = 0.0
    for (x0, y0), (x1, y1) in zip(points, [*points[1:], points[0]]):
        s += x0 * y1 - x1 * y0
    return abs(s) / 2.0
