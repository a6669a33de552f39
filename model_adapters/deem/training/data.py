"""Image (+ caption) sources for CSR training: a folder, a JSON-lines file, or a Hugging Face dataset.

- folder: every image under it (recursively, sorted by path); a caption is the same-name `.txt` beside it.
- JSON lines: one object per line, {"image": "path", "caption": "optional text"} ("text" is accepted for
  the caption); relative paths are relative to the file's directory.
- dataset: `datasets.load_from_disk(DIR)` for a saved dataset directory, else `load_dataset(NAME,
  split=SPLIT)`; the image column holds images (or paths), the caption column is optional.
- webdataset shards: `shards/{000000..000009}.tar` (brace-expanded by the `webdataset` package, "::"
  joins lists) with members KEY.jpg|jpeg|png|webp and KEY.txt (the caption) or KEY.json ({"caption": ...}).
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, overload

from deem_eval.core.errors import DeemEvalError

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

    @overload
    def __getitem__(self, index: int) -> Example: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Example]: ...

    def __getitem__(self, index: int | slice) -> Example | Sequence[Example]:
        return self._examples[index]


def caption_source(*, images: Path | None = None, jsonl: Path | None = None, dataset: str | None = None,
                   webdataset: str | None = None, dataset_split: str = "train", image_column: str = "image",
                   caption_column: str | None = "text", offer_webdataset: bool = True) -> AlignData:
    """The one caption source a training command was given (CSR-only `align` and stage 1 share this);
    `offer_webdataset` says whether the caller's command line has --webdataset, for the error message."""
    given = [x for x in (images, jsonl, dataset, webdataset) if x is not None]
    if len(given) != 1:
        options = "--images DIR, --jsonl FILE" + (", --dataset NAME or --webdataset 'shards/{000000..000009}.tar'"
                                                  if offer_webdataset else " or --dataset NAME")
        raise DeemEvalError(f"give exactly one data source: {options}")
    if images is not None:
        return folder_data(images)
    if jsonl is not None:
        return jsonl_data(jsonl)
    if webdataset is not None:
        return webdataset_data(webdataset)
    assert dataset is not None  # exactly one of the four sources was given
    return dataset_data(dataset, split=dataset_split, image_column=image_column, caption_column=caption_column)


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

    def __getitem__(self, index):
        row = self.ds[int(index)]
        image = row[self.image_column]
        if isinstance(image, str):
            image = Path(image)
        caption = row[self.caption_column] if self.caption_column else None
        return Example(f"{index}", image, str(caption).strip() if caption else None)


SHARD_IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")


@dataclass(frozen=True)
class _Member:
    name: str
    offset: int       # of the member's data in the shard file
    size: int


@dataclass(frozen=True)
class _ShardSample:
    shard: Path
    key: str
    image: _Member
    caption: _Member | None      # KEY.txt, else KEY.json


class ShardData(AlignData):
    """AlignData over webdataset shards, with what the shards held beyond usable samples.

    `failed` lists the samples (by key) whose image or caption member could not be read or decoded, with
    the error message; it fills as samples are read (each such sample reaches the training loop as an
    UnreadableImage, i.e. a skipped example). `without_image` counts keys that had no image member."""

    def __init__(self, examples: _ShardExamples, *, source: str, captioned: int, without_image: int):
        super().__init__(examples, source=source, captioned=captioned)
        self._shard_examples = examples
        self.without_image = without_image

    @property
    def failed(self) -> dict[str, str]:
        return dict(self._shard_examples.failed)

    @property
    def keys(self) -> tuple[str, ...]:
        """The samples' keys in index order (without reading any member)."""
        return tuple(s.key for s in self._shard_examples.samples)


class _ShardExamples(Sequence[Example]):
    """Samples of the shards, read and decoded on access from the member offsets found at start."""

    def __init__(self, samples: Sequence[_ShardSample]):
        self.samples = tuple(samples)
        self.failed: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index):
        from ..model.images import UnreadableImage, open_rgb

        sample = self.samples[int(index)]
        where = f"{sample.shard}:{sample.image.name}"
        try:
            with open(sample.shard, "rb") as handle:
                caption = _read_caption(handle, sample)
                image = open_rgb(_read_member(handle, sample.shard, sample.image), where=where, refuse_large=True)
        except (DeemEvalError, OSError) as exc:
            self.failed[sample.key] = str(exc)
            return Example(sample.key, UnreadableImage(where, str(exc).removeprefix(f"{where}: ")), None)
        return Example(sample.key, image, caption)


def _read_member(handle, shard: Path, member: _Member) -> bytes:
    handle.seek(member.offset)
    data = handle.read(member.size)
    if len(data) != member.size:
        raise DeemEvalError(f"{shard}:{member.name}: member is cut short ({len(data)} of {member.size} bytes; "
                            "was the shard changed after it was indexed?)")
    return data


def _read_caption(handle, sample: _ShardSample) -> str | None:
    member = sample.caption
    if member is None:
        return None
    try:
        raw = _read_member(handle, sample.shard, member).decode("utf-8")
        text: str | None = raw
        if member.name.endswith(".json"):
            obj = json.loads(raw)
            text = obj.get("caption") if isinstance(obj, dict) else None
            if text is not None and not isinstance(text, str):
                raise ValueError(f"\"caption\" is {type(text).__name__}, not text")
    except (UnicodeDecodeError, ValueError) as exc:
        raise DeemEvalError(f"{sample.shard}:{member.name}: unreadable caption ({exc})") from None
    return (text.strip() or None) if text else None


def webdataset_data(urls: str) -> AlignData:
    """Image-caption samples from local webdataset tar shards.

    AlignData is indexed (the training loop draws a seeded permutation), while a webdataset stream is
    sequential, so this reads each shard's tar headers once here - member names and data offsets, no image
    bytes - and decodes a sample only when it is indexed, by seeking to its members. Hence shards must be
    local, uncompressed .tar files (paths or file:// URLs); webdataset supplies the URL expansion and its
    key/extension rule (KEY is the member name up to the first dot of its base name). A member that
    cannot be read is a per-sample failure (ShardData.failed), not an exception; a shard that is not a
    readable tar file is an error naming it.
    """
    try:
        from webdataset.shardlists import expand_urls
        from webdataset.tariterators import base_plus_ext
    except ImportError:
        raise DeemEvalError("webdataset shards need the webdataset package: pip install webdataset") from None
    shards = []
    for url in expand_urls(urls):
        path = url.removeprefix("file://")
        if "://" in path or path.startswith("pipe:"):
            raise DeemEvalError(f"{url}: only local shard files are supported (samples are read by offset); "
                                "download the shards first")
        shards.append(Path(path).expanduser())
    samples, captioned, without_image = [], 0, 0
    for shard in shards:
        for key, members in _shard_index(shard, base_plus_ext).items():
            image = next((members[e] for e in SHARD_IMAGE_EXTENSIONS if e in members), None)
            if image is None:
                without_image += 1
                continue
            caption = members.get("txt") or members.get("json")
            captioned += caption is not None
            samples.append(_ShardSample(shard, key, image, caption))
    if not samples:
        raise DeemEvalError(f"{urls}: no samples with an image member ({', '.join(SHARD_IMAGE_EXTENSIONS)}) "
                            f"in {len(shards)} shard(s)")
    return ShardData(_ShardExamples(samples), source=f"webdataset {urls}", captioned=captioned,
                     without_image=without_image)


def _shard_index(shard: Path, base_plus_ext) -> dict[str, dict[str, _Member]]:
    """{key: {extension (lower case): member}} in shard order, from the tar headers only."""
    if not shard.is_file():
        raise DeemEvalError(f"{shard}: shard file not found")
    index: dict[str, dict[str, _Member]] = {}
    try:
        with tarfile.open(shard, mode="r:") as tar:
            for info in tar:
                if not info.isfile():
                    continue
                key, ext = base_plus_ext(info.name)
                if key is None:
                    continue
                index.setdefault(key, {})[ext.lower()] = _Member(info.name, info.offset_data, info.size)
    except (tarfile.TarError, OSError) as exc:
        raise DeemEvalError(f"{shard}: not a readable uncompressed tar shard ({exc})") from None
    return index


def _nonempty(data: AlignData) -> AlignData:
    if len(data) == 0:
        raise DeemEvalError(f"{data.source}: no images found")
    return data
