"""COCO-format instance annotations for SynthScenes: ids, records, writing and (validated) reading.

Ids depend only on the image index, never on how many images were made or by which worker:
image id = index + 1, annotation id = image id * 100 + k for the k-th object drawn in that image.
Annotations of an image are listed in drawing order (POPE takes "the first n distinct objects").
`read_instances` also reads real COCO files (the `scene` field is then empty).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from deem_eval.core.atomic import atomic_write_text
from deem_eval.core.errors import DeemEvalError

from .categories import CATEGORIES
from .render import ObjectInstance

INSTANCES_FILE = "instances.json"
RENDER_VERSION = 1  # bump when drawing or layout changes what a (seed, index) produces
MAX_OBJECTS_PER_IMAGE = 100


def image_file_name(seed: int, index: int) -> str:
    return f"synth_{int(seed)}_{int(index):06d}.png"


def image_id(index: int) -> int:
    return int(index) + 1


def annotation_id(index: int, k: int) -> int:
    if not 0 <= k < MAX_OBJECTS_PER_IMAGE:
        raise ValueError(f"object number {k} out of range")
    return image_id(index) * MAX_OBJECTS_PER_IMAGE + k


@dataclass(frozen=True)
class CocoImage:
    id: int
    file_name: str
    width: int
    height: int
    scene: str = ""


@dataclass(frozen=True)
class CocoAnnotation:
    id: int
    image_id: int
    category_id: int
    bbox: tuple[float, float, float, float]
    area: float
    iscrowd: int = 0


@dataclass(frozen=True)
class CocoCategory:
    id: int
    name: str
    supercategory: str = ""


@dataclass
class Instances:
    """A COCO instances file, typed; annotations keep file order (= drawing order for SynthScenes)."""

    images: list[CocoImage]
    annotations: list[CocoAnnotation]
    categories: list[CocoCategory]
    info: dict = field(default_factory=dict)

    def category_names(self) -> dict[int, str]:
        return {c.id: c.name for c in self.categories}

    def objects_by_image(self) -> dict[int, list[CocoAnnotation]]:
        """image id -> its annotations in file order (every image present, possibly with none)."""
        out: dict[int, list[CocoAnnotation]] = {im.id: [] for im in self.images}
        for a in self.annotations:
            out.setdefault(a.image_id, []).append(a)
        return out


def image_record(seed: int, index: int, size: int, scene: str) -> dict:
    return {"id": image_id(index), "file_name": image_file_name(seed, index), "width": size, "height": size,
            "scene": scene}


def annotation_records(index: int, objects: Sequence[ObjectInstance]) -> list[dict]:
    return [{"id": annotation_id(index, k), "image_id": image_id(index), "category_id": o.category_id,
             "bbox": list(o.bbox), "area": o.area, "iscrowd": 0} for k, o in enumerate(objects)]


def categories_records() -> list[dict]:
    return [{"id": c.id, "name": c.name, "supercategory": c.supercategory} for c in CATEGORIES]


def coco_document(images: Iterable[dict], annotations: Iterable[dict], *, seed: int, size: int) -> dict:
    """The full instances document; `info` carries what produced it (no dates, so rebuilds are identical)."""
    return {
        "info": {"description": "SynthScenes: procedural scenes bundled with deem-eval", "seed": int(seed),
                 "size": int(size), "render_version": RENDER_VERSION},
        "images": list(images),
        "annotations": list(annotations),
        "categories": categories_records(),
    }


def write_instances(path: Path, document: dict) -> None:
    """Write atomically (a finished instances.json means a finished build)."""
    atomic_write_text(path, json.dumps(document, separators=(",", ":")) + "\n")


def read_instances(path: str | os.PathLike) -> Instances:
    """Read and check a COCO instances file; errors name the file and what is wrong."""
    path = Path(path)
    if path.is_dir():
        path = path / INSTANCES_FILE
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DeemEvalError(f"{path}: no such file; build it with `deem-eval build synthscenes --out DIR`") from None
    except (OSError, ValueError) as exc:
        raise DeemEvalError(f"{path}: not a readable JSON file ({exc})") from None
    try:
        images = [CocoImage(int(i["id"]), str(i["file_name"]), int(i["width"]), int(i["height"]),
                            str(i.get("scene", ""))) for i in doc["images"]]
        anns = [CocoAnnotation(int(a["id"]), int(a["image_id"]), int(a["category_id"]),
                               tuple(float(v) for v in a["bbox"]), float(a.get("area", 0.0)),  # type: ignore[arg-type]
                               int(a.get("iscrowd", 0))) for a in doc["annotations"]]
        cats = [CocoCategory(int(c["id"]), str(c["name"]), str(c.get("supercategory", ""))) for c in doc["categories"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise DeemEvalError(f"{path}: not a COCO instances file (missing or bad field: {exc})") from None
    image_ids = {i.id for i in images}
    cat_ids = {c.id for c in cats}
    if len(image_ids) != len(images):
        raise DeemEvalError(f"{path}: duplicate image ids")
    if len({a.id for a in anns}) != len(anns):
        raise DeemEvalError(f"{path}: duplicate annotation ids")
    for a in anns:
        if a.image_id not in image_ids:
            raise DeemEvalError(f"{path}: annotation {a.id} refers to unknown image id {a.image_id}")
        if a.category_id not in cat_ids:
            raise DeemEvalError(f"{path}: annotation {a.id} refers to unknown category id {a.category_id}")
        if len(a.bbox) != 4:
            raise DeemEvalError(f"{path}: annotation {a.id} has a bbox without 4 numbers")
    return Instances(images, anns, cats, dict(doc.get("info", {})))
