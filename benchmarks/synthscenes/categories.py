"""The SynthScenes object categories: names, COCO ids, fixed colour schemes and typical sizes.

Ids are 1-based positions in `CATEGORIES` and are part of the output format: append new categories at the
end, never reorder. Names are plain lowercase nouns that read well in "Is there a {name} in the image?"
(`Category.article` gives "a"/"an").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from deem_eval.core.errors import did_you_mean

from .geometry import Shape
from .shapes import build_shape

RGB = tuple[int, int, int]

DARK: RGB = (35, 35, 40)


@dataclass(frozen=True)
class Category:
    id: int
    name: str
    supercategory: str
    colours: Mapping[str, RGB] = field(compare=False, repr=False)  # colour role -> RGB; "main" is the identity colour
    size: tuple[float, float] = (0.18, 0.3)  # larger side of the bbox, as a fraction of the image side
    max_per_image: int = 4
    shape: Shape = field(compare=False, repr=False, default=None)  # type: ignore[assignment]

    @property
    def article(self) -> str:
        return "an" if self.name[0] in "aeiou" else "a"

    @property
    def aspect(self) -> float:
        """Width / height of the silhouette's bounding box."""
        return self.shape.aspect

    def colour(self, role: str) -> RGB:
        return self.colours.get(role, DARK)


# name, supercategory, colours, size range, max per image
_TABLE: list[tuple[str, str, dict[str, RGB], tuple[float, float], int]] = [
    ("sun", "sky", {"main": (252, 200, 30), "accent": (248, 140, 20)}, (0.2, 0.28), 1),
    ("moon", "sky", {"main": (246, 234, 150)}, (0.18, 0.26), 1),
    ("star", "sky", {"main": (255, 214, 40)}, (0.12, 0.18), 6),
    ("cloud", "sky", {"main": (250, 250, 252)}, (0.24, 0.36), 3),
    ("airplane", "vehicle", {"main": (232, 236, 244), "accent": (40, 90, 200), "dark": (30, 50, 110)},
     (0.26, 0.36), 1),
    ("kite", "toy", {"main": (232, 40, 60), "accent": (250, 210, 40)}, (0.18, 0.26), 2),
    ("bird", "animal", {"main": (40, 110, 220), "accent": (25, 70, 160), "beak": (250, 150, 30)}, (0.14, 0.2), 4),
    ("butterfly", "animal", {"main": (236, 110, 30), "accent": (255, 240, 200)}, (0.14, 0.2), 3),
    ("tree", "plant", {"main": (50, 150, 60), "accent": (120, 78, 40)}, (0.3, 0.45), 3),
    ("flower", "plant", {"main": (236, 80, 150), "accent": (252, 215, 40), "stem": (60, 150, 50)},
     (0.14, 0.22), 5),
    ("mushroom", "plant", {"main": (214, 40, 40), "accent": (248, 240, 220)}, (0.15, 0.22), 3),
    ("house", "building", {"main": (240, 218, 160), "roof": (186, 60, 40), "dark": (110, 70, 40),
                           "window": (150, 210, 245)}, (0.3, 0.42), 2),
    ("car", "vehicle", {"main": (220, 35, 40), "window": (170, 220, 250), "light": (255, 235, 120),
                        "hub": (190, 190, 195)}, (0.26, 0.36), 3),
    ("bicycle", "vehicle", {"main": (20, 160, 170)}, (0.22, 0.3), 2),
    ("boat", "vehicle", {"main": (176, 72, 40), "accent": (252, 252, 246)}, (0.22, 0.32), 2),
    ("traffic light", "street", {"main": (50, 52, 58), "dark": (70, 72, 78), "red": (240, 40, 30),
                                 "yellow": (252, 200, 20), "green": (40, 210, 80)}, (0.24, 0.34), 2),
    ("bench", "street", {"main": (166, 104, 52), "dark": (60, 60, 66)}, (0.24, 0.32), 2),
    ("person", "person", {"main": (40, 100, 220), "skin": (236, 188, 150), "pants": (40, 45, 80),
                          "hair": (70, 45, 25)}, (0.24, 0.34), 4),
    ("dog", "animal", {"main": (168, 108, 52), "accent": (100, 60, 28)}, (0.2, 0.28), 2),
    ("cat", "animal", {"main": (150, 150, 162), "accent": (240, 170, 180), "eye": (120, 200, 60)},
     (0.18, 0.26), 2),
    ("fish", "animal", {"main": (250, 140, 30), "accent": (252, 236, 220), "white": (255, 255, 255)},
     (0.16, 0.26), 5),
    ("crab", "animal", {"main": (220, 60, 40)}, (0.17, 0.24), 3),
    ("anchor", "object", {"main": (70, 80, 100)}, (0.2, 0.28), 1),
    ("umbrella", "object", {"main": (150, 60, 200), "accent": (220, 180, 250)}, (0.22, 0.3), 2),
    ("ball", "toy", {"main": (230, 45, 50), "white": (252, 252, 252), "accent": (40, 100, 230)}, (0.13, 0.19), 2),
    ("apple", "food", {"main": (214, 30, 40), "stem": (100, 60, 30), "leaf": (60, 170, 50),
                       "shine": (250, 170, 170)}, (0.14, 0.19), 3),
    ("banana", "food", {"main": (252, 222, 50), "dark": (90, 60, 20), "stem": (130, 120, 40)}, (0.18, 0.24), 2),
    ("cup", "kitchen", {"main": (60, 130, 215), "dark": (90, 50, 25), "accent": (250, 250, 250)}, (0.16, 0.22), 3),
    ("bottle", "kitchen", {"main": (40, 150, 80), "accent": (170, 30, 30), "label": (242, 236, 220),
                           "shine": (140, 215, 160)}, (0.22, 0.3), 3),
    ("clock", "object", {"main": (200, 45, 45), "face": (252, 252, 248), "hand": (35, 35, 40)}, (0.16, 0.22), 1),
    ("book", "object", {"main": (40, 70, 160), "page": (252, 250, 240), "text": (150, 150, 160)}, (0.2, 0.26), 2),
    ("key", "object", {"main": (222, 176, 30)}, (0.16, 0.22), 2),
]

CATEGORIES: tuple[Category, ...] = tuple(
    Category(i, name, sup, colours, size, max_n, build_shape(name))
    for i, (name, sup, colours, size, max_n) in enumerate(_TABLE, start=1)
)
CATEGORY_NAMES: tuple[str, ...] = tuple(c.name for c in CATEGORIES)
_BY_NAME = {c.name: c for c in CATEGORIES}


def category_by_name(name: str) -> Category:
    """The category called `name`; an unknown name raises a did-you-mean error."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise did_you_mean(name, _BY_NAME, "SynthScenes category") from None


def category_by_id(category_id: int) -> Category:
    if not 1 <= category_id <= len(CATEGORIES):
        raise KeyError(f"no SynthScenes category with id {category_id}")
    return CATEGORIES[category_id - 1]
