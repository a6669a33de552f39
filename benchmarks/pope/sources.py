"""Where the objects come from: COCO instance annotations, POPE's object-list JSON lines, SynthScenes.

Every source yields `ImageObjects`: an image file name and its distinct object names in annotation order
(the order in which the annotation file lists them), which is the order POPE takes positives in.

Object lists may name an object more than once for one image. By default (`duplicates="drop"`) only its
first mention is kept. `duplicates="upstream"` keeps the list as written, which is what upstream POPE's
`pope()` works on: each mention then counts in the popular frequencies and the co-occurrence counts, counts
towards the `n` objects an image needs, and can be taken as a positive again (see the POPE README).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deem_eval.core.errors import DeemEvalError
from deem_eval.core.jsonio import parse_json, read_json_records
from deem_eval.core.splits import sha256_file

from .sampler import ImageObjects


@dataclass(frozen=True)
class ObjectSource:
    """Images with their objects, plus what the source is (for the split's builder record)."""

    images: tuple[ImageObjects, ...]
    categories: tuple[str, ...]          # every object name the source knows, in its own order
    path: Path
    kind: str                            # "coco" | "objects"
    sha256: str
    duplicate_objects: int = 0           # object-list rows that named an object twice
    duplicates: str = "drop"             # "drop": first mention kept; "upstream": kept as written and counted


#: What to do with an object named twice in one image's object list (see the module docstring).
DUPLICATE_MODES = ("drop", "upstream")


def _load_json(path: Path) -> Any:
    if not path.is_file():
        raise DeemEvalError(f"{path}: no such file")
    try:
        return parse_json(path.read_text(encoding="utf-8"), path)
    except UnicodeDecodeError as exc:
        raise DeemEvalError(f"{path}: not UTF-8 text ({exc})") from None


def load_coco_instances(path: Path | str) -> ObjectSource:
    """COCO instances JSON (e.g. instances_val2014.json): images, annotations, categories."""
    path = Path(path)
    data = _load_json(path)
    if not isinstance(data, dict) or not all(k in data for k in ("images", "annotations", "categories")):
        raise DeemEvalError(f"{path}: not a COCO instances file (needs 'images', 'annotations' and "
                            "'categories')")
    try:
        names = {int(c["id"]): str(c["name"]) for c in data["categories"]}
        images = [(int(im["id"]), str(im["file_name"])) for im in data["images"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise DeemEvalError(f"{path}: malformed 'categories' or 'images' entry ({exc!r})") from None
    # image id -> its object names as dict keys: an ordered set (re-adding a name keeps its first position)
    objects: dict[int, dict[str, None]] = {image_id: {} for image_id, _ in images}
    unknown_categories: dict[object, int] = {}
    unknown_images: dict[object, int] = {}
    for index, ann in enumerate(data["annotations"]):
        try:
            image_id, category_id = ann["image_id"], ann["category_id"]
        except (KeyError, TypeError):
            raise DeemEvalError(f"{path}: annotation #{index} lacks image_id/category_id: {str(ann)[:120]}") from None
        name = names.get(category_id)
        if name is None:
            as_int = _as_int(category_id)
            name = names.get(as_int) if as_int is not None else None
            if name is None:
                unknown_categories[category_id] = unknown_categories.get(category_id, 0) + 1
                continue
        found = objects.get(image_id)
        if found is None:
            as_int = _as_int(image_id)
            found = objects.get(as_int) if as_int is not None else None
            if found is None:
                unknown_images[image_id] = unknown_images.get(image_id, 0) + 1
                continue
        found[name] = None
    if unknown_categories:
        listed = ", ".join(f"{cid} ({count} annotations)"
                           for cid, count in sorted(unknown_categories.items(), key=lambda kv: str(kv[0]))[:5])
        raise DeemEvalError(f"{path}: {sum(unknown_categories.values())} annotations use category ids that are "
                            f"not in 'categories': {listed}. Known ids: {_id_range(names)}. Is the "
                            "annotation file complete?")
    if unknown_images:
        listed = ", ".join(str(i) for i in sorted(unknown_images, key=str)[:5])
        raise DeemEvalError(f"{path}: {sum(unknown_images.values())} annotations refer to image ids that are not "
                            f"in 'images' (e.g. {listed})")
    out = tuple(ImageObjects(file_name, tuple(objects[image_id]), str(image_id)) for image_id, file_name in images)
    return ObjectSource(out, tuple(names.values()), path, "coco", sha256_file(path))


def _as_int(value: object) -> int | None:
    """Ids written as strings ("18") still match; anything else matches nothing."""
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _id_range(names: dict[int, str]) -> str:
    ids = sorted(names)
    return f"{len(ids)} ids from {ids[0]} to {ids[-1]}" if ids else "none"


def load_object_lists(path: Path | str, *, duplicates: str = "drop") -> ObjectSource:
    """POPE's object lists: JSON lines `{"image": ..., "objects": [...]}` (a JSON array is accepted too).

    `duplicates`: "drop" (default) keeps an object's first mention per image; "upstream" keeps every
    mention, as upstream POPE counts them.
    """
    if duplicates not in DUPLICATE_MODES:
        raise DeemEvalError(f"duplicates must be one of {', '.join(DUPLICATE_MODES)}, got {duplicates!r}")
    path = Path(path)
    rows = read_json_records(path, what="object-list file")
    images: list[ImageObjects] = []
    categories: dict[str, None] = {}
    repeated = 0
    seen_images: set[str] = set()
    for where, obj in rows:
        if not isinstance(obj, dict) or not isinstance(obj.get("image"), str) or \
                not isinstance(obj.get("objects"), list) or not all(isinstance(o, str) for o in obj["objects"]):
            raise DeemEvalError(f"{where}: expected {{\"image\": \"file name\", \"objects\": [\"name\", ...]}}")
        if obj["image"] in seen_images:
            raise DeemEvalError(f"{where}: image {obj['image']!r} is listed twice")
        seen_images.add(obj["image"])
        distinct = tuple(dict.fromkeys(obj["objects"]))
        repeated += len(distinct) != len(obj["objects"])
        categories.update(dict.fromkeys(distinct))
        image_id = obj.get("image_id")
        objects = distinct if duplicates == "drop" else tuple(obj["objects"])
        images.append(ImageObjects(obj["image"], objects, None if image_id is None else str(image_id)))
    return ObjectSource(tuple(images), tuple(categories), path, "objects", sha256_file(path), repeated, duplicates)


def read_image_list(path: Path | str) -> list[str]:
    """Images to use, in order: one file name per line, or a POPE question file (images in first-seen order).

    Passing a published question file reproduces its choice and order of images exactly.
    """
    path = Path(path)
    if not path.is_file():
        raise DeemEvalError(f"{path}: no such file")
    text = path.read_text(encoding="utf-8")
    stripped = text.lstrip()
    if stripped.startswith(("[", "{")):
        from .published import read_published

        published = read_published(path, subset=_any_subset(path))
        return list(dict.fromkeys(q.image for q in published.questions))
    names = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if not names:
        raise DeemEvalError(f"{path}: the image list is empty")
    return names


def _any_subset(path: Path) -> str:
    from .published import guess_from_name

    return guess_from_name(path)[1] or "random"   # the subset does not matter for the list of images


def object_lines(images: Sequence[ImageObjects]) -> str:
    """POPE's object-list format for `images` (what `load_object_lists` reads)."""
    return "".join(json.dumps({"image": im.image, "objects": list(im.objects)}) + "\n" for im in images)
