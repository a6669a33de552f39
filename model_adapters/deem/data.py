"""Image (+ caption) sources for CSR training: a folder, a JSON-lines file, or a Hugging Face dataset.

- folder: every image under it (recursively, sorted by path); a caption is the same-name `.txt` beside it.
- JSON lines: one object per line, {"image": "path", "caption": "optional text"} ("text" is accepted for
  the caption); relative paths are relative to the file's directory.
- dataset: `datasets.load_from_disk(DIR)` for a saved dataset directory, else `load_dataset(NAME,
  split=SPLIT)`; the image column holds images (or paths), the caption column is optional.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deem_eval.errors import DeemEvalError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}


@dataclass(frozen=True)
class Example:
    name: str
    image: Any                 # a path or an already decoded image
    caption: str | None = None


class AlignData(Sequence[Example]):
    """The examples (a list, or lazily decoded dataset rows), where they came from, how many have captions."""

    def __init__(self, examples: Sequence[Example], *, source: str, captioned: int | None = None):
        self._examples = examples
        self.source = source
        self.captioned = sum(1 for e in examples if e.caption) if captioned is None else captioned

    def __len__(self) -> int:
        return len(self._examples)

    def __getitem__(self, index):  # type: ignore[override]
        return self._examples[index]


def folder_data(directory: Path) -> AlignData:
    directory = Path(directory).expanduser()
    if not directory.is_dir():
        raise DeemEvalError(f"--images {directory}: not a directory")
    examples = []
    for path in sorted(p for p in directory.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()):
        txt = path.with_suffix(".txt")
        caption = txt.read_text(encoding="utf-8").strip() if txt.is_file() else None
        examples.append(Example(str(path.relative_to(directory)), path, caption or None))
    return _nonempty(AlignData(examples, source=str(directory)))


def jsonl_data(path: Path) -> AlignData:
    path = Path(path).expanduser()
    if not path.is_file():
        raise DeemEvalError(f"--jsonl {path}: file not found")
    examples = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            image = Path(row["image"]).expanduser()
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise DeemEvalError(f"{path}:{n}: expected {{\"image\": path, \"caption\": text}} ({exc})") from None
        caption = row.get("caption", row.get("text"))
        examples.append(Example(str(row["image"]), image if image.is_absolute() else path.parent / image,
                                str(caption).strip() if caption else None))
    return _nonempty(AlignData(examples, source=str(path)))


def dataset_data(name: str, *, split: str = "train", image_column: str = "image",
                 caption_column: str | None = "text") -> AlignData:
    import datasets

    local = Path(name).expanduser()
    try:
        if local.is_dir() and ((local / "dataset_info.json").exists() or (local / "dataset_dict.json").exists()):
            ds = datasets.load_from_disk(str(local))
            if isinstance(ds, datasets.DatasetDict):
                if split not in ds:
                    raise DeemEvalError(f"{name}: no split {split!r} (has {', '.join(ds)})")
                ds = ds[split]
        else:
            ds = datasets.load_dataset(name, split=split)
    except DeemEvalError:
        raise
    except Exception as exc:  # noqa: BLE001 - any loading failure is the user's to fix
        raise DeemEvalError(f"cannot load dataset {name!r} (split {split!r}): {exc}") from None
    if image_column not in ds.column_names:
        raise DeemEvalError(f"dataset {name!r} has no column {image_column!r} (columns: {', '.join(ds.column_names)})")
    has_caption = caption_column is not None and caption_column in ds.column_names
    captioned = sum(1 for c in ds[caption_column] if c) if has_caption else 0
    return _nonempty(AlignData(_DatasetExamples(ds, image_column, caption_column if has_caption else None),
                               source=f"dataset {name}[{split}]", captioned=captioned))


class _DatasetExamples(Sequence[Example]):
    """Rows of a datasets.Dataset decoded lazily (images are only opened when a batch needs them)."""

    def __init__(self, ds, image_column: str, caption_column: str | None):
        self.ds, self.image_column, self.caption_column = ds, image_column, caption_column

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, index):  # type: ignore[override]
        row = self.ds[int(index)]
        image = row[self.image_column]
        if isinstance(image, str):
            image = Path(image)
        caption = row[self.caption_column] if self.caption_column else None
        return Example(f"{index}", image, str(caption).strip() if caption else None)


def _nonempty(data: AlignData) -> AlignData:
    if len(data) == 0:
        raise DeemEvalError(f"{data.source}: no images found")
    return data
