"""Render planned scenes and single-object images to PIL images (supersampled, then downsampled).

`render_scene` makes the annotated multi-object scenes (POPE-style probes); `render_single_object` makes
"main object" images with controlled nuisances (style, scale, background, occlusion, contrast, colour,
clutter) for RobustVQA-style questions. Every random draw comes from `derive_rng(seed, "synthscenes", ...)`
with separate streams per concern, so changing one nuisance leaves the others (and the layout) unchanged.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from functools import cache

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance

from deem_eval.core.errors import DeemEvalError
from deem_eval.core.rng import derive_rng

from .backgrounds import PLAIN, paint_background
from .categories import CATEGORIES, RGB, Category, category_by_name
from .draw import STYLES, check_colour, darker, draw_object
from .layout import ScenePlan, UnitBox, overlap, plan_scene, propose_box, weighted_index
from .scenes import SCENES, SceneObject, scene_by_name

BACKGROUNDS = ("plain", "scene")


@dataclass(frozen=True)
class ObjectInstance:
    """One drawn object: its category and COCO-style bbox (x, y, w, h) and area, in output pixels."""

    category: str
    category_id: int
    bbox: tuple[float, float, float, float]
    area: float


def supersample_factor(size: int) -> int:
    """Draw at this multiple of the output size, then box-downsample: smooth edges, legible small icons."""
    return 4 if size <= 128 else 2


@cache
def fill_fraction(name: str) -> float:
    """Share of a category's bounding box its silhouette covers (for COCO `area`), measured once at 128 px."""
    cat = category_by_name(name)
    w, h = (128, max(1, round(128 / cat.aspect))) if cat.aspect >= 1 else (max(1, round(128 * cat.aspect)), 128)
    mask = Image.new("L", (w, h), 0)
    d = ImageDraw.Draw(mask)
    for layer in cat.shape.layers:
        for path in layer.paths:
            pts = [(u * (w - 1), v * (h - 1)) for u, v in path]
            if layer.kind == "fill":
                d.polygon(pts, fill=255)
            else:
                d.line(pts, fill=255, width=max(1, round(layer.width * min(w, h))))
    return float(np.count_nonzero(np.asarray(mask))) / (w * h)


def instances_for(plan: ScenePlan, size: int) -> list[ObjectInstance]:
    """The annotations of a plan at `size` px (rounded to 1/100 px), without rendering it."""
    out = []
    for p in plan.objects:
        cat = category_by_name(p.category)
        x0, y0, x1, y1 = (min(size, max(0.0, v * size)) for v in p.box)
        w, h = x1 - x0, y1 - y0
        out.append(ObjectInstance(cat.name, cat.id, (round(x0, 2), round(y0, 2), round(w, 2), round(h, 2)),
                                  round(w * h * fill_fraction(cat.name), 2)))
    return out


def _pixel_box(box: UnitBox, px: int) -> tuple[float, float, float, float]:
    return tuple(v * px for v in box)  # type: ignore[return-value]


def _check_size(size: int) -> None:
    if not isinstance(size, int) or size < 16:
        raise DeemEvalError(f"SynthScenes image size must be an integer of at least 16 pixels, got {size!r}")


def render_scene(seed: int, index: int, *, size: int = 224, scene: str | None = None
                 ) -> tuple[Image.Image, list[ObjectInstance]]:
    """Image `index` of the SynthScenes stream for `seed` (optionally forcing a scene type), with its objects
    in drawing order."""
    return render_plan(plan_scene(seed, index, scene=scene), seed, index, size=size)


def render_plan(plan: ScenePlan, seed: int, index: int, *, size: int = 224, stream: str = "synthscenes"
                ) -> tuple[Image.Image, list[ObjectInstance]]:
    """Draw a plan from `plan_scene(seed, index, stream=stream)`; the background stream is keyed by (seed,
    stream, index)."""
    _check_size(size)
    seed, index = int(seed), int(index)
    ss = supersample_factor(size)
    px = size * ss
    img = paint_background(scene_by_name(plan.scene).background, px,
                           derive_rng(seed, stream, index, "background"))
    for p in plan.objects:
        draw_object(img, p.category, _pixel_box(p.box, px))  # "filled" uses no randomness
    return img.reduce(ss), instances_for(plan, size)


def _unit_box(cat: Category, side: float, cx: float, cy: float) -> UnitBox:
    w, h = (side, side / cat.aspect) if cat.aspect >= 1 else (side * cat.aspect, side)
    return (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)


def _occluder(img: Image.Image, box: UnitBox, fraction: float, rng: np.random.Generator, px: int) -> None:
    """A neutral card covering `fraction` of the main object's box from one side."""
    x0, y0, x1, y1 = box
    side = int(rng.integers(4))
    ext_w, ext_h = 0.08 * (x1 - x0), 0.08 * (y1 - y0)
    if side == 0:  # from the left
        rect = (x0 - ext_w, y0 - ext_h, x0 + fraction * (x1 - x0), y1 + ext_h)
    elif side == 1:  # right
        rect = (x1 - fraction * (x1 - x0), y0 - ext_h, x1 + ext_w, y1 + ext_h)
    elif side == 2:  # top
        rect = (x0 - ext_w, y0 - ext_h, x1 + ext_w, y0 + fraction * (y1 - y0))
    else:  # bottom
        rect = (x0 - ext_w, y1 - fraction * (y1 - y0), x1 + ext_w, y1 + ext_h)
    grey = int(rng.integers(110, 180))
    tint = rng.integers(-12, 13, size=3)
    colour = tuple(int(min(255, max(0, grey + int(t)))) for t in tint)
    d = ImageDraw.Draw(img)
    d.rectangle(_pixel_box(rect, px), fill=colour, outline=darker(colour, 0.6),  # type: ignore[arg-type]
                width=max(1, round(0.006 * px)))


def render_single_object(seed: int, key: Hashable, category: str, *, size: int = 224, style: str = "filled",
                         scale: float = 1.0, background: str = "plain", occlusion: float = 0.0,
                         contrast: float = 1.0, colour: RGB | None = None, clutter: int = 0) -> Image.Image:
    """An image whose main object is `category`, for sample `key` (any str/int/tuple) under `seed`.

    scale: the main object's larger side is 0.7 * scale of the image (clamped to 0.05..0.96).
    background: "plain" (flat light grey, PLAIN) or "scene" (the background of a scene type the category occurs in).
    occlusion: share (0..0.9) of the main object's box hidden behind a grey card, from a random side.
    contrast: 1 = unchanged, < 1 washes the image out (PIL ImageEnhance.Contrast).
    colour: replaces the category's identity colour (odd-colour conditions).
    clutter: number of smaller distractor objects of other categories, drawn behind the main object.
    Placement, scene choice, distractors and occluder side come from separate streams keyed by (seed, key),
    so e.g. the same key rendered in two styles shows the same layout.
    """
    _check_size(size)
    cat = category_by_name(category)
    if style not in STYLES:
        from deem_eval.core.errors import did_you_mean

        raise did_you_mean(style, STYLES, "SynthScenes style")
    if background not in BACKGROUNDS:
        raise DeemEvalError(f"background must be one of {', '.join(BACKGROUNDS)}, got {background!r}")
    if not scale > 0:
        raise DeemEvalError(f"scale must be positive, got {scale!r}")
    if not 0.0 <= occlusion <= 0.9:
        raise DeemEvalError(f"occlusion must be between 0 and 0.9, got {occlusion!r}")
    if not contrast > 0:
        raise DeemEvalError(f"contrast must be positive, got {contrast!r}")
    if colour is not None:
        colour = check_colour(colour)
    if not (isinstance(clutter, int) and clutter >= 0):
        raise DeemEvalError(f"clutter must be a non-negative integer, got {clutter!r}")

    def stream(*what: object) -> np.random.Generator:
        return derive_rng(seed, "synthscenes", "single", key, cat.name, *what)

    ss = supersample_factor(size)
    px = size * ss
    hosts = [s for s in SCENES if s.weight_of(cat.name) > 0]
    srng = stream("scene")
    weights = np.array([s.weight_of(cat.name) for s in hosts], float)
    host = hosts[int(srng.choice(len(hosts), p=weights / weights.sum()))]
    if background == "scene":
        img = paint_background(host.background, px, stream("background"))
    else:
        img = Image.new("RGB", (px, px), PLAIN)

    prng = stream("place")
    side = min(0.96, max(0.05, 0.7 * scale))
    main = _unit_box(cat, side, 0.5, 0.5)
    w, h = main[2] - main[0], main[3] - main[1]
    cx = 0.5 + float(prng.uniform(-1, 1)) * max(0.0, (1 - w) / 2 - 0.02) * 0.5
    cy = 0.5 + float(prng.uniform(-1, 1)) * max(0.0, (1 - h) / 2 - 0.02) * 0.5
    main = _unit_box(cat, side, cx, cy)

    if clutter:
        crng = stream("clutter")
        # On a scene background, distractors are that scene's objects in their own zones (no floating houses).
        pool = [o for o in host.objects if o.name != cat.name] if background == "scene" else \
            [SceneObject(c.name, 1.0, "") for c in CATEGORIES if c.name != cat.name]
        boxes: list[UnitBox] = [main]
        for k in range(clutter):
            pick = pool[weighted_index(crng, [o.weight for o in pool])]
            other = category_by_name(pick.name)
            for _ in range(40):
                if pick.zone:
                    b = propose_box(host, pick.zone, other.name, crng)
                else:
                    b = _unit_box(other, float(crng.uniform(0.14, 0.22)), 0, 0)
                    bw, bh = b[2] - b[0], b[3] - b[1]
                    x0, y0 = float(crng.uniform(0.01, 0.99 - bw)), float(crng.uniform(0.01, 0.99 - bh))
                    b = (x0, y0, x0 + bw, y0 + bh)
                if overlap(b, main) <= 0.15 and all(overlap(b, o) <= 0.2 for o in boxes[1:]):
                    boxes.append(b)
                    draw_object(img, other, _pixel_box(b, px), style=style, rng=stream("draw", k))
                    break

    draw_object(img, cat, _pixel_box(main, px), style=style, colour=colour, rng=stream("draw", "main"))
    if occlusion > 0:
        _occluder(img, main, occlusion, stream("occlusion"), px)
    out = img.reduce(ss)
    if contrast != 1.0:
        out = ImageEnhance.Contrast(out).enhance(contrast)
    return out
