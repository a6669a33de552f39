"""Class vocabularies: the ImageNet-1k table shipped with the package, and user-given class maps.

`imagenet_classes.tsv` (next to this file) holds, for each of the 1000 ImageNet classes in the standard
order (sorted WordNet ids = the usual class index): the WordNet id, the readable name used for CLIP
zero-shot by OpenAI (as shipped in open_clip's `zero_shot_metadata.py`), the name DEEM used (the Keras
`imagenet_class_index.json` names, underscores included: DEEM's `robustvqa_test.json` captions are these
raw names), and whether the class is one of the 200 of ImageNet-A (Hendrycks et al., natural-adv-examples
`eval.py`) and of ImageNet-R (imagenet-r `eval.py`). Everything works offline.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from deem_eval.core.errors import DeemEvalError
from deem_eval.core.jsonio import parse_json

NameStyle = Literal["deem", "openai"]
NAME_STYLES: tuple[str, ...] = ("deem", "openai")
TABLE_FILE = Path(__file__).with_name("imagenet_classes.tsv")


@dataclass(frozen=True)
class ClassInfo:
    index: int
    key: str          # folder name / WordNet id / label value as text: what identifies the class in a source
    name: str         # the name put into questions and CLIP prompts


@dataclass(frozen=True)
class ClassTable:
    """An ordered class vocabulary; `by_key` finds a class from its folder name or label."""

    name: str                           # e.g. "imagenet-1k/deem"
    classes: tuple[ClassInfo, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_key", {c.key: c for c in self.classes})

    def __len__(self) -> int:
        return len(self.classes)

    def by_key(self, key: str) -> ClassInfo | None:
        return self._by_key.get(key)  # type: ignore[attr-defined]

    def names(self) -> list[str]:
        return [c.name for c in self.classes]


@dataclass(frozen=True)
class ImageNetRow:
    index: int
    wnid: str
    name: str        # OpenAI CLIP readable name
    deem_name: str   # Keras imagenet_class_index.json name, as DEEM used it
    imagenet_a: bool
    imagenet_r: bool


@lru_cache(maxsize=1)
def imagenet_rows() -> tuple[ImageNetRow, ...]:
    with open(TABLE_FILE, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        rows = tuple(ImageNetRow(int(r["index"]), r["wnid"], r["name"], r["deem_name"],
                                 r["imagenet_a"] == "1", r["imagenet_r"] == "1") for r in reader)
    assert len(rows) == 1000 and [r.index for r in rows] == list(range(1000)), "corrupt imagenet_classes.tsv"
    return rows


def imagenet_table(style: str = "deem", *, key: Literal["wnid", "index"] = "wnid") -> ClassTable:
    """The 1000 ImageNet classes, keyed by WordNet id (ImageNet-A/R folders) or by index (ImageNet-V2)."""
    if style not in NAME_STYLES:
        raise DeemEvalError(f"unknown class-name style {style!r}; choose one of {', '.join(NAME_STYLES)}")
    rows = imagenet_rows()
    return ClassTable(f"imagenet-1k/{style}", tuple(
        ClassInfo(r.index, r.wnid if key == "wnid" else str(r.index), r.deem_name if style == "deem" else r.name)
        for r in rows))


def subset_indices(subset: str) -> tuple[int, ...]:
    """ImageNet indices of the classes a subset covers: 200 for ImageNet-A / -R, all 1000 otherwise."""
    rows = imagenet_rows()
    if subset == "a":
        return tuple(r.index for r in rows if r.imagenet_a)
    if subset == "r":
        return tuple(r.index for r in rows if r.imagenet_r)
    return tuple(range(1000))


def imagenet_index_for_name(name: str) -> list[int]:
    """All ImageNet indices whose DEEM or OpenAI name is `name` (names are not unique, e.g. 'crane')."""
    return [r.index for r in imagenet_rows() if name in (r.deem_name, r.name)]


def load_class_map(path: Path) -> dict[str, str]:
    """Read a folder/label -> class-name map: JSON object, or TSV/CSV lines `key<TAB or ,>name`."""
    if not path.is_file():
        raise DeemEvalError(f"{path}: class map not found")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        obj = parse_json(text, path)
        if isinstance(obj, list):  # ["name of label 0", "name of label 1", ...]
            obj = {str(i): v for i, v in enumerate(obj)}
        if not isinstance(obj, dict) or not all(isinstance(v, str) for v in obj.values()):
            raise DeemEvalError(f"{path}: expected a JSON object {{folder or label: class name}} or a list of names")
        out = {str(k): v.strip() for k, v in obj.items()}
    else:
        out = {}
        delimiter = "," if path.suffix.lower() == ".csv" else "\t"
        for lineno, row in enumerate(csv.reader(text.splitlines(), delimiter=delimiter), start=1):
            if not row or not "".join(row).strip() or row[0].startswith("#"):
                continue
            if len(row) < 2:
                raise DeemEvalError(f"{path}:{lineno}: expected `key{delimiter!r}name`, got {row!r}")
            out[row[0].strip()] = row[1].strip()
    empty = [k for k, v in out.items() if not v]
    if empty:
        raise DeemEvalError(f"{path}: class(es) without a name: {', '.join(sorted(empty)[:10])}")
    if not out:
        raise DeemEvalError(f"{path}: the class map is empty")
    return out


def table_from_map(name: str, mapping: dict[str, str], keys: Sequence[str] | None = None) -> ClassTable:
    """A ClassTable over `keys` (default: the map's keys, sorted) named by `mapping`."""
    keys = sorted(mapping) if keys is None else list(keys)
    return ClassTable(name, tuple(ClassInfo(i, k, mapping[k]) for i, k in enumerate(keys)))
