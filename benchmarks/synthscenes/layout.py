"""Scene planning: which scene type, which objects, where — in unit coordinates, before any pixel is drawn.

A plan depends only on (seed, index[, forced scene]), never on the output size, so one scene rendered at
64 px and at 224 px shows the same objects in the same places, and annotations can be computed without
rendering.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deem_eval.core.rng import derive_rng

from .categories import category_by_name
from .scenes import SCENES, SceneType, scene_by_name

UnitBox = tuple[float, float, float, float]  # x0, y0, x1, y1 as fractions of the image side

MAX_OVERLAP = 0.3  # largest intersection / smaller box area between two objects
MARGIN = 0.01
_TRIES = 30


@dataclass(frozen=True)
class Placement:
    category: str
    box: UnitBox


@dataclass(frozen=True)
class ScenePlan:
    scene: str
    objects: tuple[Placement, ...]  # drawing order (= annotation order)


def overlap(a: UnitBox, b: UnitBox) -> float:
    """Intersection area over the smaller box's area (0 when disjoint)."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    small = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return iw * ih / small


def weighted_index(rng: np.random.Generator, weights) -> int:
    """One index drawn with probability proportional to `weights` (one uniform draw; cheaper than choice)."""
    cum = np.cumsum(np.asarray(weights, float))
    return int(min(len(cum) - 1, np.searchsorted(cum, rng.random() * cum[-1], side="right")))


def choose_scene(rng: np.random.Generator) -> SceneType:
    return SCENES[weighted_index(rng, [s.weight for s in SCENES])]


def _sample_categories(scene: SceneType, rng: np.random.Generator) -> list[int]:
    """Indices into scene.objects, weighted, with replacement, respecting each category's max per image."""
    n = 1 + weighted_index(rng, scene.count_weights)
    weights = np.array([o.weight for o in scene.objects], float)
    counts: dict[str, int] = {}
    picks: list[int] = []
    for _ in range(n):
        if weights.sum() <= 0:
            break
        i = weighted_index(rng, weights)
        name = scene.objects[i].name
        counts[name] = counts.get(name, 0) + 1
        picks.append(i)
        if counts[name] >= category_by_name(name).max_per_image:
            for j, o in enumerate(scene.objects):
                if o.name == name:
                    weights[j] = 0.0
    return picks


def propose_box(scene: SceneType, zone_name: str, name: str, rng: np.random.Generator) -> UnitBox:
    """A random box for category `name` in the scene's zone (size from the category, perspective on ground)."""
    cat = category_by_name(name)
    zone = scene.zones[zone_name]
    side = float(rng.uniform(*cat.size))
    if zone.anchor == "ground":
        bottom = float(rng.uniform(zone.top, zone.bottom))
        depth = (bottom - zone.top) / max(1e-6, zone.bottom - zone.top)
        side *= 0.85 + 0.4 * depth  # nearer (lower) objects look bigger
    w, h = (side, side / cat.aspect) if cat.aspect >= 1 else (side * cat.aspect, side)
    if zone.anchor == "ground":
        h_max = bottom - MARGIN
    else:
        h_max = zone.bottom - zone.top
    if h > h_max:  # shrink to fit the band, keeping the aspect
        w, h = w * h_max / h, h_max
    x0 = float(rng.uniform(MARGIN, 1.0 - MARGIN - w))
    if zone.anchor == "ground":
        y0 = bottom - h
    else:
        y0 = float(rng.uniform(zone.top, zone.bottom - h))
    return (x0, y0, x0 + w, y0 + h)


def plan_scene(seed: int, index: int, *, scene: str | None = None, stream: str = "synthscenes") -> ScenePlan:
    """The objects of image `index` for `seed`: a scene type (or the forced `scene`) and 1-8 placements.

    `stream` namespaces the random draws: benchmarks use the default; training data uses its own name, so no
    benchmark seed can ever reproduce a training scene."""
    seed, index = int(seed), int(index)  # numpy ints would hash differently
    stype = scene_by_name(scene) if scene is not None else choose_scene(derive_rng(seed, stream, index, "scene"))
    rng = derive_rng(seed, stream, index, "layout")
    placed: list[tuple[Placement, str]] = []
    for i in _sample_categories(stype, rng):
        obj = stype.objects[i]
        for _ in range(_TRIES):
            box = propose_box(stype, obj.zone, obj.name, rng)
            if all(overlap(box, p.box) <= MAX_OVERLAP for p, _ in placed):
                placed.append((Placement(obj.name, box), stype.zones[obj.zone].anchor))
                break
    # Objects standing on the ground are drawn far (higher) to near (lower) among their own slots, so a
    # nearer object covers a farther one; floating objects keep their sampled slots.
    ground_slots = [k for k, (_, anchor) in enumerate(placed) if anchor == "ground"]
    ground = sorted((placed[k][0] for k in ground_slots), key=lambda p: p.box[3])
    objects = [p for p, _ in placed]
    for k, p in zip(ground_slots, ground):
        objects[k] = p
    return ScenePlan(stype.name, tuple(objects))
