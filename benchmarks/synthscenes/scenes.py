"""Scene types as data: a background, vertical zones where objects may stand, and object frequency weights.

The per-scene weights give SynthScenes a realistic co-occurrence structure: boats come with umbrellas and
crabs (beach), cups with apples and clocks (kitchen), stars with the moon (night). So POPE-style "popular"
negatives (globally frequent objects) and "adversarial" ones (frequent partners of an object) differ from
random ones, as on COCO. Many objects appear in several scene types.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from deem_eval.core.errors import did_you_mean

from .categories import CATEGORY_NAMES


@dataclass(frozen=True)
class Zone:
    """A horizontal band of the image, in fractions of its height (0 = top).

    anchor "inside": the object lies fully inside [top, bottom] (sky, wall, water);
    anchor "ground": the object's bottom edge lies in [top, bottom] (it stands there), and objects lower in
    the band (nearer the viewer) are drawn larger.
    """

    top: float
    bottom: float
    anchor: str = "inside"


@dataclass(frozen=True)
class SceneObject:
    name: str
    weight: float
    zone: str


@dataclass(frozen=True)
class SceneType:
    name: str
    background: str  # painter in backgrounds.py
    zones: Mapping[str, Zone] = field(hash=False)
    objects: tuple[SceneObject, ...] = ()
    weight: float = 1.0  # how often this scene type is drawn
    count_weights: tuple[float, ...] = (1.0, 2.0, 3.0, 3.0, 3.0, 2.0, 1.5, 1.0)  # P(n objects), n = 1..8

    def weight_of(self, name: str) -> float:
        return sum(o.weight for o in self.objects if o.name == name)


def _objects(spec: str) -> tuple[SceneObject, ...]:
    """'car 6 road, person 5 walk' -> SceneObjects (names may contain spaces)."""
    out = []
    for item in spec.split(","):
        *name, weight, zone = item.split()
        out.append(SceneObject(" ".join(name), float(weight), zone))
    return tuple(out)


SCENES: tuple[SceneType, ...] = (
    SceneType(
        "street", "street",
        {"sky": Zone(0.02, 0.42), "back": Zone(0.5, 0.6, "ground"), "walk": Zone(0.56, 0.98, "ground"),
         "road": Zone(0.7, 0.98, "ground")},
        _objects("car 6 road, person 5 walk, traffic light 4 back, bicycle 3 road, house 2.5 back, tree 2.5 back, "
                 "dog 2 walk, bench 1.5 back, umbrella 1.2 walk, bird 1.5 sky, cloud 2 sky, sun 1 sky, "
                 "airplane 0.5 sky, ball 0.4 walk, cat 0.5 walk"),
    ),
    SceneType(
        "beach", "beach",
        {"sky": Zone(0.02, 0.34), "sea": Zone(0.42, 0.6), "surface": Zone(0.46, 0.6, "ground"),
         "sand": Zone(0.72, 0.98, "ground")},
        _objects("umbrella 5 sand, ball 4 sand, person 4 sand, boat 4 surface, crab 3 sand, sun 3 sky, "
                 "cloud 2.5 sky, bird 2.5 sky, kite 2.5 sky, dog 1 sand, bottle 1 sand, book 0.7 sand, fish 0.8 sea, "
                 "airplane 0.5 sky, anchor 0.5 sand"),
    ),
    SceneType(
        "underwater", "underwater",
        {"water": Zone(0.04, 0.8), "bed": Zone(0.84, 0.98, "ground")},
        _objects("fish 9 water, crab 3 bed, anchor 2.5 bed, bottle 1.5 bed, key 0.8 bed, boat 0.7 bed, "
                 "ball 0.3 water"),
        count_weights=(1.0, 2.0, 3.0, 3.0, 2.5, 2.0, 1.5, 1.0),
    ),
    SceneType(
        "night", "night",
        {"sky": Zone(0.02, 0.62), "ground": Zone(0.82, 0.98, "ground")},
        _objects("star 7 sky, moon 4 sky, cloud 1.5 sky, airplane 1.2 sky, house 2.5 ground, tree 2.5 ground, "
                 "cat 2 ground, car 1 ground, person 0.8 ground, bird 0.4 sky"),
        count_weights=(0.5, 1.5, 2.5, 3.0, 3.0, 2.5, 2.0, 1.5),
    ),
    SceneType(
        "garden", "garden",
        {"sky": Zone(0.02, 0.4), "air": Zone(0.08, 0.8), "ground": Zone(0.55, 0.98, "ground")},
        _objects("flower 7 ground, butterfly 4 air, mushroom 3 ground, tree 3 ground, bird 2 air, sun 2 sky, "
                 "cloud 2 sky, cat 1.5 ground, house 1.2 ground, dog 1.2 ground, apple 1.2 ground, ball 1 ground, "
                 "person 1 ground, bench 0.8 ground, umbrella 0.4 ground"),
    ),
    SceneType(
        "kitchen", "kitchen",
        {"wall": Zone(0.05, 0.45), "table": Zone(0.7, 0.97, "ground")},
        _objects("cup 6 table, apple 5 table, bottle 4 table, banana 4 table, clock 3 wall, book 2 table, "
                 "key 1.5 table, cat 1 table, flower 1 table, ball 0.3 table"),
    ),
    SceneType(
        "park", "park",
        {"sky": Zone(0.02, 0.38), "air": Zone(0.04, 0.5), "ground": Zone(0.55, 0.98, "ground")},
        _objects("tree 6 ground, person 5 ground, dog 4 ground, bench 3.5 ground, kite 3 air, ball 3 ground, "
                 "bicycle 2 ground, bird 2 air, cloud 2 sky, sun 1.5 sky, flower 1.5 ground, umbrella 1 ground, "
                 "butterfly 1 air, airplane 0.4 sky, book 0.5 ground"),
    ),
)
SCENE_NAMES: tuple[str, ...] = tuple(s.name for s in SCENES)
_BY_NAME = {s.name: s for s in SCENES}


def scene_by_name(name: str) -> SceneType:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise did_you_mean(name, _BY_NAME, "SynthScenes scene type") from None


def _check() -> None:
    """Scene tables must name real categories and zones (runs at import, so typos fail loudly)."""
    for scene in SCENES:
        for obj in scene.objects:
            if obj.name not in CATEGORY_NAMES:
                raise ValueError(f"scene {scene.name!r} lists unknown category {obj.name!r}")
            if obj.zone not in scene.zones:
                raise ValueError(f"scene {scene.name!r}: {obj.name!r} uses unknown zone {obj.zone!r}")


_check()
