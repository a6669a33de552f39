"""A split as a Hugging Face `datasets.Dataset`, and back.

Columns of an exported split (one row per sample, in the split's order, sorted by id):

    id          the sample id (string)
    image       an `Image` feature holding the image file's original bytes (never re-encoded)
    question    the question text
    answer      "yes" / "no"
    group       the sample's group fields as one canonical JSON object (string): JSON keeps each value's
                type (string, integer, float) and lets samples carry different keys, which flattened Arrow
                columns would not (one type per column, missing keys become null)
    image_file  the sample's image path in the split (a relative POSIX path), so a rebuilt split names its
                images as the original did and keeps its samples fingerprint

The dataset's `info.description` holds the split's metadata (name, benchmark, candidates, fingerprint) as JSON
under the key "deem_eval_split"; `dataset_to_split` uses it when present. Datasets made elsewhere are read too:
`id` may be missing (ids `<name>/<row:06d>`), `answer` is normalised to yes/no (Yes, YES, True...), and
without a `group` column every other scalar column (category, question_id, ...) becomes a group field.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

from deem_eval.core.errors import DeemEvalError
from deem_eval.core.splits import BuilderInfo, Sample, Split

COLUMNS = ("id", "image", "question", "answer", "group", "image_file")
META_KEY = "deem_eval_split"
BUILDER_NAME = "hf-split"
_MAIN = {"id", "image", "question", "answer", "group", "image_file"}
_FORMATS = {b"\xff\xd8\xff": ".jpg", b"\x89PNG": ".png", b"GIF8": ".gif", b"BM": ".bmp"}
_YES = {"yes", "y", "true", "1"}
_NO = {"no", "n", "false", "0"}
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _datasets() -> Any:
    try:
        import datasets
    except ImportError:
        raise DeemEvalError("this needs the `datasets` package: pip install datasets") from None
    return datasets


def features() -> Any:
    datasets = _datasets()
    return datasets.Features({"id": datasets.Value("string"), "image": datasets.Image(),
                              "question": datasets.Value("string"), "answer": datasets.Value("string"),
                              "group": datasets.Value("string"), "image_file": datasets.Value("string")})


def group_json(group: Mapping[str, Any]) -> str:
    return json.dumps(dict(group), sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def image_file_name(sample: Sample) -> str:
    """The sample's image path if it is a safe relative POSIX path, else its file name."""
    path = PurePosixPath(sample.image.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or not path.parts or sample.image.startswith("~"):
        return path.name
    return path.as_posix()


def split_metadata(split: Split) -> dict[str, Any]:
    meta = split.meta
    return {"name": meta.name, "benchmark": meta.benchmark, "count": meta.count,
            "samples_sha256": meta.samples_sha256, "candidates": list(meta.candidates),
            "builder": meta.builder.to_json()}


def _rows(rows: list[tuple[str, str, str, str, str, str]]) -> Iterator[dict[str, Any]]:
    for sample_id, image_path, question, answer, group, image_file in rows:
        yield {"id": sample_id, "image": {"bytes": Path(image_path).read_bytes(), "path": None},
               "question": question, "answer": answer, "group": group, "image_file": image_file}


def save_split_dataset(split: Split, out_dir: Path | str) -> Any:
    """Write `split` as a dataset with `save_to_disk(out_dir)` and return it (loaded back from out_dir).
    Rows are streamed through a temporary Arrow cache, so the images are never all in memory."""
    datasets = _datasets()
    out_dir = Path(out_dir)
    rows = export_rows(split)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise DeemEvalError(f"{out_dir}: exists and is not an empty directory; choose a new output directory")
    with build_dataset(split, rows) as data:
        data.save_to_disk(str(out_dir))
    return datasets.load_from_disk(str(out_dir))


def export_rows(split: Split) -> list[tuple[str, str, str, str, str, str]]:
    """(id, image path, question, answer, group JSON, image_file) per sample; every image must exist."""
    rows = []
    for sample in split.samples:
        path = split.image_path(sample)
        if not path.is_file():
            raise DeemEvalError(f"split {split.name!r}, sample {sample.id!r}: image {path} not found; the split's "
                                "images must be readable to export it (run `deem-eval verify --check-images`)")
        rows.append((sample.id, str(path), sample.question, sample.answer, group_json(sample.group),
                     image_file_name(sample)))
    if not rows:
        raise DeemEvalError(f"split {split.name!r} has no samples to export")
    return rows


@contextmanager
def build_dataset(split: Split, rows: list[tuple[str, str, str, str, str, str]] | None = None) -> Iterator[Any]:
    """The split as a Dataset backed by a temporary Arrow cache (removed on exit): save or push it inside."""
    datasets = _datasets()
    if rows is None:
        rows = export_rows(split)
    tmp = Path(tempfile.mkdtemp(prefix="deem-eval-export-"))
    try:
        data = datasets.Dataset.from_generator(_rows, features=features(), cache_dir=str(tmp),
                                               gen_kwargs={"rows": rows})
        data.info.description = json.dumps({META_KEY: split_metadata(split)}, sort_keys=True)
        yield data
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def open_dataset(source: str | Path, split: str = "test") -> Any:
    """A `datasets.Dataset` from a `save_to_disk` directory, else a hub id through `load_dataset` (which needs
    the network or a filled cache; offline it fails with a message saying how to make a local copy)."""
    datasets = _datasets()
    path = Path(source).expanduser()
    if path.exists():
        try:
            data = datasets.load_from_disk(str(path))
        except (FileNotFoundError, ValueError) as exc:
            raise DeemEvalError(f"{path}: not a dataset saved with save_to_disk ({exc})") from None
    else:
        from deem_eval.core.hub import hf_offline

        if hf_offline():
            raise DeemEvalError(f"{source!r}: no such directory, and HF_HUB_OFFLINE is set so it is not "
                                "looked up on the hub. Pass a directory written by `save_to_disk`.")
        try:
            data = datasets.load_dataset(str(source), split=split)
        except Exception as exc:  # noqa: BLE001 - the hub client raises many types when offline or unknown
            raise DeemEvalError(
                f"could not load {str(source)!r} from the Hugging Face hub ({type(exc).__name__}: {exc}). "
                "Offline? On a machine with network run `datasets.load_dataset(NAME, split=...)` and "
                "`.save_to_disk(DIR)`, then pass DIR here.") from None
    if isinstance(data, datasets.DatasetDict):
        if split not in data:
            raise DeemEvalError(f"{source}: no split {split!r}; it has {', '.join(data)} (choose one with --hf-split)")
        data = data[split]
    return data


def _answer(value: Any, where: str) -> str:
    text = str(value).strip().lower().rstrip(".")
    if text in _YES:
        return "yes"
    if text in _NO:
        return "no"
    raise DeemEvalError(f"{where}: answer must be yes or no, got {value!r}")


def _group(row: Mapping[str, Any], extra_columns: list[str], where: str) -> dict[str, Any]:
    if "group" in row:
        value = row["group"]
        if value is None or value == "":
            return {}
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise DeemEvalError(f"{where}: column 'group' is not JSON ({exc.msg})") from None
        if not isinstance(value, dict):
            raise DeemEvalError(f"{where}: column 'group' must be a JSON object, got {value!r}")
        return value
    group = {}
    for column in extra_columns:
        value = row[column]
        if isinstance(value, bool):
            value = int(value)
        if isinstance(value, float) and math.isnan(value):
            continue
        if isinstance(value, (str, int, float)):     # skip None, lists, images
            group[column] = value
    return group


def _image_bytes(image: Any, where: str) -> bytes:
    data = image.get("bytes") if isinstance(image, dict) else None
    if data is None and isinstance(image, dict) and image.get("path") and Path(image["path"]).is_file():
        data = Path(image["path"]).read_bytes()
    if not data:
        raise DeemEvalError(f"{where}: the image has no bytes")
    return bytes(data)


def _file_name(image_file: Any, sample_id: str, data: bytes) -> str:
    if isinstance(image_file, str) and image_file.strip():
        path = PurePosixPath(image_file.strip().replace("\\", "/"))
        if not path.is_absolute() and ".." not in path.parts and path.parts:
            return path.as_posix()
    ext = next((e for magic, e in _FORMATS.items() if data.startswith(magic)), "")
    if not ext and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        ext = ".webp"
    return _SAFE.sub("_", sample_id).strip("_") + (ext or ".bin")


def dataset_metadata(data: Any) -> dict[str, Any]:
    try:
        obj = json.loads(data.info.description or "")
    except (json.JSONDecodeError, TypeError, AttributeError):
        return {}
    meta = obj.get(META_KEY) if isinstance(obj, dict) else None
    return meta if isinstance(meta, dict) else {}


def dataset_to_split(data: Any, out_dir: Path | str, *, source: str, name: str | None = None,
                     benchmark: str | None = None, hf_split: str = "test") -> Split:
    """Write every row's image (original bytes, once per file name) into out_dir/images and return the split
    (not yet saved). Two rows naming one image file with different bytes are an error."""
    datasets = _datasets()
    columns = list(data.column_names)
    missing = [c for c in ("image", "question", "answer") if c not in columns]
    if missing:
        raise DeemEvalError(f"{source}: missing column(s) {', '.join(missing)}; a split dataset has "
                            f"{', '.join(COLUMNS)} (id, group and image_file are optional)")
    if not len(data):
        raise DeemEvalError(f"{source}: the dataset has no rows")
    meta = dataset_metadata(data)
    name = name or meta.get("name") or _SAFE.sub("-", Path(str(source)).name or str(source)).strip("-") or "hf"
    data = data.cast_column("image", datasets.Image(decode=False))
    extra_columns = [c for c in columns if c not in _MAIN]
    out_dir = Path(out_dir)
    images_dir = out_dir / "images"
    written: dict[str, str] = {}                  # file name -> sha256
    samples = []
    for index, row in enumerate(data):
        where = f"{source} row {index}"
        sample_id = row.get("id") if isinstance(row.get("id"), str) and row.get("id") else f"{name}/{index:06d}"
        blob = _image_bytes(row["image"], where)
        file_name = _file_name(row.get("image_file"), sample_id, blob)
        digest = hashlib.sha256(blob).hexdigest()
        if file_name in written:
            if written[file_name] != digest:
                raise DeemEvalError(f"{where}: image file {file_name!r} is named by an earlier row with different "
                                    "bytes; give the rows distinct image_file values")
        else:
            target = images_dir / file_name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(blob)
            written[file_name] = digest
        samples.append(Sample(sample_id, file_name, str(row["question"]), _answer(row["answer"], where),
                              _group(row, extra_columns, where)))
    fingerprint = hashlib.sha256("\n".join(sorted(written.values())).encode()).hexdigest()
    split = Split.create(name=name, benchmark=benchmark or meta.get("benchmark") or "hf", samples=samples,
                         image_root="images",
                         builder=BuilderInfo(BUILDER_NAME, {"source": str(source), "split": hf_split}, None, fingerprint),
                         candidates=[str(c) for c in meta.get("candidates") or ()],
                         extra={"hf": {"source": str(source), "split": hf_split,
                                       "exported_from": meta.get("samples_sha256")}} if meta else
                         {"hf": {"source": str(source), "split": hf_split}})
    return split
