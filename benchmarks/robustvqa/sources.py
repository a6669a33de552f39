"""Where RobustVQA images come from: ImageNet-A/-R/-V2 folders, a generic class folder, a HF dataset.

A source lists its images (sorted, with a stable key) and the class vocabulary they are labelled in; it
does not open images. Folder problems are collected, not fatal, where the rest of the data is still
usable (empty class folders); they are fatal where the folder is probably the wrong one (unknown class
folders, classes without names), with a message that says which folders and what to do.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from deem_eval.core.errors import DeemEvalError

from .classes import ClassTable, imagenet_rows, imagenet_table, load_class_map, subset_indices, table_from_map
from .options import DEEM_GLOBS

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff", ".ppm"})
IMAGENET_SUBSETS = {"a": "ImageNet-A", "r": "ImageNet-R", "v2": "ImageNet-V2"}


@dataclass(frozen=True)
class SourceImage:
    """One image: `key` is stable (path inside the subset folder, or the dataset row) and names the sample."""

    subset: str
    key: str
    label: int                              # index into the source's ClassTable
    path: Path | None = None                # file on disk, for folder sources
    data: Callable[[], bytes] | None = None  # bytes getter, for in-memory sources
    suffix: str = ""                        # file suffix for in-memory images written into the split


@dataclass
class Source:
    subset: str                 # group value: "a", "r", "v2" or a user-given name
    kind: str                   # "imagenet-a", "imagenet-r", "imagenet-v2", "folder", "hf"
    table: ClassTable
    subset_candidates: tuple[int, ...]   # the subset's own classes (indices into table)
    images: list[SourceImage]
    root: Path | None = None    # the folder, for folder sources
    empty_folders: list[str] = field(default_factory=list)
    skipped_folders: list[str] = field(default_factory=list)
    glob: str | None = None     # DEEM's file glob (`--protocol deem`); None: every image file, recursively

    def candidates(self, mode: str) -> tuple[int, ...]:
        """Candidate classes for negatives and CLIP ranking: the whole table ("all") or the subset's."""
        return tuple(range(len(self.table))) if mode == "all" else self.subset_candidates

    def describe(self) -> str:
        return f"{self.kind} ({self.root or 'dataset'})"


def _class_folders(root: Path, what: str) -> list[Path]:
    if not root.is_dir():
        raise DeemEvalError(f"{what}: {root} is not a directory")
    return sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)


def _images_in(folder: Path, pattern: str | None = None) -> list[Path]:
    """Image files of a class folder; with `pattern` (the file part of DEEM's glob) only those, one level."""
    found = folder.glob(pattern) if pattern is not None else \
        (p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
    files = [p for p in found if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)]
    return sorted(files, key=lambda p: p.relative_to(folder).as_posix())


def _collect(source: Source, folders: list[tuple[Path, int]]) -> Source:
    for folder, label in folders:
        files = _images_in(folder, source.glob.split("/", 1)[1] if source.glob else None)
        if not files:
            source.empty_folders.append(folder.name)
            continue
        for path in files:
            key = path.relative_to(source.root).as_posix()  # type: ignore[arg-type]
            source.images.append(SourceImage(source.subset, key, label, path=path))
    if source.empty_folders:
        print(f"warning: {source.describe()}: {len(source.empty_folders)} empty class folder(s) skipped: "
              f"{', '.join(source.empty_folders[:5])}{' ...' if len(source.empty_folders) > 5 else ''}",
              file=sys.stderr)
    if not source.images:
        looked = source.glob or ", ".join(sorted(IMAGE_EXTENSIONS)) + " files inside class sub-folders"
        raise DeemEvalError(f"{source.describe()}: no images found (looked for {looked})")
    return source


def _unknown(root: Path, what: str, unknown: list[str], expected: str, skip: bool) -> None:
    if not unknown:
        return
    listed = ", ".join(unknown[:8]) + (f" and {len(unknown) - 8} more" if len(unknown) > 8 else "")
    if not skip:
        raise DeemEvalError(f"{what} folder {root}: {len(unknown)} sub-folder(s) are not {expected}: {listed}. "
                            "Check that the path points at the dataset's top folder, or pass "
                            "--skip-unknown-folders to leave them out (they are then listed in split.json).")
    print(f"warning: {what} folder {root}: skipping {len(unknown)} unknown sub-folder(s): {listed}", file=sys.stderr)


def imagenet_folder(subset: str, root: Path, *, names: str = "deem", skip_unknown: bool = False,
                    protocol: str = "deem-eval") -> Source:
    """ImageNet-A / -R (one WordNet-id folder per class) or ImageNet-V2 (folders `0` ... `999`); `protocol`
    deem lists files as DEEM's script globs them (`*/*.jpg`, V2 `*/*.jpeg`)."""
    if subset not in IMAGENET_SUBSETS:
        raise ValueError(subset)
    what = IMAGENET_SUBSETS[subset]
    root = Path(root).expanduser().resolve()
    folders = _class_folders(root, what)
    own = set(subset_indices(subset))
    if subset == "v2":
        table = imagenet_table(names, key="index")
        expected = "class indices 0..999"
    else:
        table = imagenet_table(names, key="wnid")
        expected = f"WordNet ids of the 200 {what} classes"
    source = Source(subset, f"imagenet-{subset}", table, tuple(sorted(own)), [], root,
                    glob=DEEM_GLOBS[subset] if protocol == "deem" else None)
    known: list[tuple[Path, int]] = []
    unknown: list[str] = []
    for folder in folders:
        info = table.by_key(folder.name)
        if info is None or info.index not in own:
            unknown.append(folder.name)
        else:
            known.append((folder, info.index))
    if not known and folders:
        skip_unknown = False  # nothing usable: certainly the wrong folder
    _unknown(root, what, unknown, expected, skip_unknown)
    source.skipped_folders = unknown
    return _collect(source, known)


def generic_folder(root: Path, *, subset: str | None = None, class_map: Path | None = None,
                   names: str = "deem", skip_unknown: bool = False) -> Source:
    """Any folder of class sub-folders; names from `class_map`, or ImageNet names if folders are WordNet ids."""
    root = Path(root).expanduser().resolve()
    subset = subset or root.name
    folders = _class_folders(root, "image folder")
    if class_map is not None:
        mapping = load_class_map(Path(class_map).expanduser())
        table = table_from_map(f"map:{Path(class_map).name}", mapping)
        missing = [f.name for f in folders if f.name not in mapping]
        if missing and not skip_unknown:
            raise DeemEvalError(f"image folder {root}: class(es) without a name in {class_map}: "
                                f"{', '.join(missing[:10])}{' ...' if len(missing) > 10 else ''}. Add them to the "
                                "class map, or pass --skip-unknown-folders.")
    else:
        table = imagenet_table(names, key="wnid")
        missing = [f.name for f in folders if table.by_key(f.name) is None]
        if missing and (len(missing) == len(folders) or not skip_unknown):
            raise DeemEvalError(f"image folder {root}: class(es) without a name: {', '.join(missing[:10])}"
                                f"{' ...' if len(missing) > 10 else ''}. Sub-folders must be ImageNet WordNet "
                                "ids, or give --class-map FILE (JSON {folder: name} or TSV `folder<TAB>name`).")
    known = [(f, table.by_key(f.name).index) for f in folders if table.by_key(f.name) is not None]  # type: ignore[union-attr]
    if missing:
        print(f"warning: image folder {root}: skipping {len(missing)} folder(s) without a class name", file=sys.stderr)
    present = tuple(sorted({label for _, label in known}))
    source = Source(subset, "folder", table, present, [], root)
    source.skipped_folders = missing
    return _collect(source, known)


def hf_dataset(name_or_path: str, *, split: str = "test", subset: str | None = None, image_column: str = "image",
               label_column: str = "label", class_map: Path | None = None, imagenet_labels: bool = False,
               names: str = "deem") -> Source:
    """A Hugging Face `datasets` dataset with an image and an integer (or class-label) column."""
    import datasets

    dataset = _load_hf(name_or_path, split)
    columns = list(dataset.column_names)
    for col in (image_column, label_column):
        if col not in columns:
            raise DeemEvalError(f"dataset {name_or_path!r}: no column {col!r}; columns are {', '.join(columns)} "
                                "(choose with --hf-image-column / --hf-label-column)")
    feature = dataset.features[label_column]
    label_names = list(feature.names) if isinstance(feature, datasets.ClassLabel) else None
    if class_map is not None:
        mapping = load_class_map(Path(class_map).expanduser())
        keys = sorted(mapping, key=lambda k: (0, int(k)) if k.lstrip("-").isdigit() else (1, k))
        table = table_from_map(f"map:{Path(class_map).name}", mapping, keys)
        label_to_class = {k: table.by_key(k).index for k in keys}  # type: ignore[union-attr]
    elif imagenet_labels:
        table = imagenet_table(names, key="index")
        label_to_class = {str(i): i for i in range(1000)}
    elif label_names is not None:
        wnids = {r.wnid: r.index for r in imagenet_rows()}
        if all(n in wnids for n in label_names):
            table = imagenet_table(names, key="wnid")
            label_to_class = {str(i): wnids[n] for i, n in enumerate(label_names)}
        else:
            table = table_from_map("classlabel", {str(i): n for i, n in enumerate(label_names)},
                                   [str(i) for i in range(len(label_names))])
            label_to_class = {str(i): i for i in range(len(label_names))}
    else:
        raise DeemEvalError(f"dataset {name_or_path!r}: the labels in column {label_column!r} have no class names. "
                            "Pass --class-map FILE ({label: name}) or --hf-imagenet-labels if they are ImageNet "
                            "class indices 0..999.")
    if isinstance(dataset.features[image_column], datasets.Image):
        dataset = dataset.cast_column(image_column, datasets.Image(decode=False))
    labels = dataset[label_column]
    unnamed = sorted({str(v) for v in labels if str(v) not in label_to_class})
    if unnamed:
        raise DeemEvalError(f"dataset {name_or_path!r}: label value(s) without a class name: "
                            f"{', '.join(unnamed[:10])}. Extend --class-map.")
    subset = subset or _slug(str(name_or_path))
    width = max(6, len(str(len(dataset))))
    images: list[SourceImage] = []
    for row, value in enumerate(labels):
        key = f"{row:0{width}d}"
        images.append(SourceImage(subset, key, label_to_class[str(value)],
                                  data=_RowBytes(dataset, image_column, row), suffix=""))
    if not images:
        raise DeemEvalError(f"dataset {name_or_path!r} split {split!r} is empty")
    present = tuple(sorted({im.label for im in images}))
    return Source(subset, "hf", table, present, images)


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in Path(text).name or text).strip("-") or "hf"


def _load_hf(name_or_path: str, split: str):
    import datasets

    path = Path(name_or_path).expanduser()
    try:
        if path.is_dir() and ((path / "state.json").is_file() or (path / "dataset_dict.json").is_file()):
            loaded = datasets.load_from_disk(str(path))
            if isinstance(loaded, datasets.DatasetDict):
                if split not in loaded:
                    raise DeemEvalError(f"dataset {path}: no split {split!r}; it has {', '.join(loaded)} (--hf-split)")
                loaded = loaded[split]
            return loaded
        return datasets.load_dataset(str(path) if path.exists() else name_or_path, split=split)
    except DeemEvalError:
        raise
    except (FileNotFoundError, ValueError, ConnectionError, OSError) as exc:
        raise DeemEvalError(f"could not load dataset {name_or_path!r} (split {split!r}): {exc}. Give a folder "
                            "saved with `save_to_disk`, or a dataset name that is in the Hugging Face cache "
                            "(HF_HOME / HF_DATASETS_CACHE) or downloadable.") from None


class _RowBytes:
    """Lazily fetch the encoded bytes of one dataset row's image (kept picklable and small)."""

    def __init__(self, dataset, column: str, row: int) -> None:
        self.dataset, self.column, self.row = dataset, column, row

    def __call__(self) -> bytes:
        value = self.dataset[self.row][self.column]
        if isinstance(value, dict):
            if value.get("bytes"):
                return value["bytes"]
            if value.get("path"):
                return Path(value["path"]).read_bytes()
        if isinstance(value, (bytes, bytearray)):
            return bytes(value)
        if isinstance(value, str):
            return Path(value).read_bytes()
        if hasattr(value, "save"):  # a PIL image from a non-Image column
            import io

            buffer = io.BytesIO()
            value.save(buffer, format="PNG")
            return buffer.getvalue()
        raise DeemEvalError(f"dataset row {self.row}: column {self.column!r} holds {type(value).__name__}, "
                            "not an image")
