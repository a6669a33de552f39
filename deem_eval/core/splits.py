"""The split: a frozen directory of yes/no questions that every other part agrees on.

    <split dir>/split.json      metadata (name, benchmark, count, samples_sha256, image_root, builder, ...)
    <split dir>/samples.jsonl   one canonical JSON object per line, sorted by id
    <split dir>/images/         only images the builder made
    <split dir>/images.sha256   optional "sha256  relative/path" lines for the images the builder made

The fingerprint of a split is the SHA-256 of its canonical samples file; results carry it, and the
leaderboard refuses to rank runs of one split name that disagree on it.
"""

from __future__ import annotations

import gc
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Final

from deem_eval.core.atomic import atomic_write_text
from deem_eval.core.errors import SplitFormatError
from deem_eval.core.jsonio import decode_utf8, parse_json, read_utf8
from deem_eval.core.version import __version__

FORMAT_VERSION = 1
ANSWERS = ("yes", "no")
SPLIT_FILE = "split.json"
SAMPLES_FILE = "samples.jsonl"
IMAGE_HASHES_FILE = "images.sha256"
GroupValue = str | int | float


@dataclass(frozen=True, slots=True)
class Sample:
    """One yes/no question about one image. `group` holds every field results are broken down by.

    Slotted (a split holds up to millions of them); samples loaded from one file share equal image,
    question and group objects, so treat `group` as read-only."""

    id: str
    image: str
    question: str
    answer: str
    group: Mapping[str, GroupValue] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "image": self.image, "question": self.question, "answer": self.answer,
                "group": dict(self.group)}

    @classmethod
    def from_json(cls, obj: Any, where: str) -> Sample:
        """Parse and validate one sample; `where` ("file:line") goes into every error."""
        if not isinstance(obj, dict):
            raise SplitFormatError(f"{where}: expected a JSON object, got {type(obj).__name__}")
        missing = [k for k in ("id", "image", "question", "answer") if k not in obj]
        if missing:
            raise SplitFormatError(f"{where}: missing field(s) {', '.join(missing)}")
        for key in ("id", "image", "question", "answer"):
            if not isinstance(obj[key], str):
                raise SplitFormatError(f"{where}: field {key!r} must be a string, got {obj[key]!r}")
        if obj["answer"] not in ANSWERS:
            raise SplitFormatError(f"{where}: answer must be 'yes' or 'no', got {obj['answer']!r}")
        group = obj.get("group", {})
        if not isinstance(group, dict) or not all(isinstance(v, (str, int, float)) for v in group.values()):
            raise SplitFormatError(f"{where}: 'group' must be an object of strings/numbers, got {group!r}")
        return cls(obj["id"], obj["image"], obj["question"], obj["answer"], group)


def canonical_line(sample: Sample) -> str:
    """The one byte representation of a sample that fingerprints are computed over."""
    return json.dumps(sample.to_json(), sort_keys=True, ensure_ascii=False, separators=(",", ":")) + "\n"


def fingerprint_samples(samples: Iterable[Sample]) -> str:
    digest = hashlib.sha256()
    for sample in samples:
        digest.update(canonical_line(sample).encode("utf-8"))
    return digest.hexdigest()


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class BuilderInfo:
    """How a split was made: enough to rebuild it byte for byte."""

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)
    seed: int | None = None
    source_fingerprint: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "params": dict(self.params), "seed": self.seed,
                "source_fingerprint": self.source_fingerprint}


@dataclass(frozen=True)
class SplitMeta:
    name: str
    benchmark: str
    count: int
    samples_sha256: str
    image_root: str
    builder: BuilderInfo
    created_by: str = f"deem-eval {__version__}"
    format: int = FORMAT_VERSION
    candidates: tuple[str, ...] = ()          # class/object vocabulary, for adapters such as CLIP
    extra: Mapping[str, Any] = field(default_factory=dict)  # builder-specific facts (skipped files, ...)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "benchmark": self.benchmark, "format": self.format,
                               "count": self.count, "samples_sha256": self.samples_sha256,
                               "image_root": self.image_root, "builder": self.builder.to_json(),
                               "created_by": self.created_by}
        if self.candidates:
            out["candidates"] = list(self.candidates)
        if self.extra:
            out["extra"] = dict(self.extra)
        return out

    @classmethod
    def from_json(cls, obj: Any, where: str) -> SplitMeta:
        if not isinstance(obj, dict):
            raise SplitFormatError(f"{where}: expected a JSON object")
        _check_strings(obj, where, ("name", "benchmark", "samples_sha256"), ("image_root", "created_by"))
        if "builder" in obj:
            if not isinstance(obj["builder"], dict):
                raise SplitFormatError(f"{where}: field 'builder' must be an object, got {obj['builder']!r}; "
                                       "rebuild the split or restore split.json")
            _check_strings(obj["builder"], f"{where}: builder", ("name",), ())
        try:
            builder = obj["builder"]
            return cls(name=obj["name"], benchmark=obj["benchmark"], count=int(obj["count"]),
                       samples_sha256=obj["samples_sha256"], image_root=obj.get("image_root", "."),
                       builder=BuilderInfo(builder["name"], builder.get("params", {}), builder.get("seed"),
                                           builder.get("source_fingerprint")),
                       created_by=obj.get("created_by", "unknown"), format=int(obj.get("format", 1)),
                       candidates=tuple(obj.get("candidates", ())), extra=obj.get("extra", {}))
        except (KeyError, TypeError, ValueError) as exc:
            raise SplitFormatError(f"{where}: missing or malformed field {exc}") from None


@dataclass(frozen=True)
class Split:
    """A loaded split: metadata, samples sorted by id, and the directory it lives in (if saved)."""

    meta: SplitMeta
    samples: tuple[Sample, ...]
    directory: Path | None = None

    @property
    def name(self) -> str:
        return self.meta.name

    @property
    def fingerprint(self) -> str:
        return self.meta.samples_sha256

    @classmethod
    def create(cls, *, name: str, benchmark: str, samples: Iterable[Sample], image_root: str | Path,
               builder: BuilderInfo, candidates: Iterable[str] = (), extra: Mapping[str, Any] | None = None,
               ) -> Split:
        """Validate, sort by id and fingerprint a list of samples."""
        ordered = tuple(sorted(samples, key=lambda s: s.id))
        _check_unique(ordered, where=f"split {name!r}")
        for sample in ordered:  # round-trip through the validator
            Sample.from_json(sample.to_json(), where=f"split {name!r}, sample {sample.id!r}")
        meta = SplitMeta(name=name, benchmark=benchmark, count=len(ordered),
                         samples_sha256=fingerprint_samples(ordered), image_root=str(image_root),
                         builder=builder, candidates=tuple(candidates), extra=dict(extra or {}))
        return cls(meta, ordered)

    def image_root_path(self) -> Path:
        root = Path(self.meta.image_root).expanduser()
        if not root.is_absolute() and self.directory is not None:
            root = self.directory / root
        return root

    def image_path(self, sample: Sample) -> Path:
        path = Path(sample.image)
        return path if path.is_absolute() else self.image_root_path() / path

    def save(self, directory: Path | str, *, hash_images: bool = True) -> Split:
        """Write split.json + samples.jsonl (+ images.sha256 for images under the split dir) atomically."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        atomic_write_text(directory / SAMPLES_FILE, "".join(canonical_line(s) for s in self.samples), fsync=True)
        images_dir = directory / "images"
        if hash_images and images_dir.is_dir():
            lines = [f"{sha256_file(p)}  {p.relative_to(directory).as_posix()}\n"
                     for p in sorted(images_dir.rglob("*")) if p.is_file()]
            atomic_write_text(directory / IMAGE_HASHES_FILE, "".join(lines), fsync=True)
        atomic_write_text(directory / SPLIT_FILE, json.dumps(self.meta.to_json(), indent=2, sort_keys=False) + "\n",
                          fsync=True)
        return Split(self.meta, self.samples, directory)

    @classmethod
    def load(cls, directory: Path | str, *, check_fingerprint: bool = True) -> Split:
        directory = Path(directory)
        meta_path, samples_path = directory / SPLIT_FILE, directory / SAMPLES_FILE
        if not directory.is_dir():
            raise SplitFormatError(f"{directory}: split directory does not exist (build it first, see "
                                   "`deem-eval build --help`)")
        for path in (meta_path, samples_path):
            if not path.is_file():
                raise SplitFormatError(f"{path}: missing; a split directory needs {SPLIT_FILE} and {SAMPLES_FILE}")
        meta_obj = parse_json(read_utf8(meta_path, error=SplitFormatError), meta_path, error=SplitFormatError)
        meta = SplitMeta.from_json(meta_obj, str(meta_path))
        if meta.format > FORMAT_VERSION:
            raise SplitFormatError(f"{meta_path}: split format {meta.format} is newer than this deem-eval "
                                   f"understands ({FORMAT_VERSION}); upgrade deem-eval")
        data = samples_path.read_bytes()
        samples = tuple(_parse_samples(data, samples_path))
        _check_unique(samples, where=str(samples_path))
        ids = [s.id for s in samples]
        if ids != sorted(ids):      # ids are unique, so this is "the samples are in sorted order"
            raise SplitFormatError(f"{samples_path}: samples are not sorted by id (was the file edited?)")
        if len(samples) != meta.count:
            raise SplitFormatError(f"{samples_path}: {len(samples)} samples but split.json says {meta.count}")
        if check_fingerprint:
            actual = hashlib.sha256(data).hexdigest()     # the bytes just parsed, not a second read
            if actual != meta.samples_sha256:
                raise SplitFormatError(
                    f"{samples_path}: sha256 {actual[:12]}… differs from split.json's {meta.samples_sha256[:12]}…; "
                    f"the split was modified after it was built. Rebuild it, or run `deem-eval verify {directory}`.")
        return cls(meta, samples, directory)


def read_samples(path: Path) -> Iterable[Sample]:
    """Parse a samples.jsonl, naming file and line number in any error."""
    path = Path(path)
    return _parse_samples(path.read_bytes(), path)


_KEYS: Final = ("id", "image", "question", "answer")
_ANSWER_OBJECTS: Final = {a: a for a in ANSWERS}
_INTERNABLE_GROUP_TYPES: Final = frozenset({str, int})   # exact types: True == 1 and 0.0 == -0.0 must not merge
_CHUNK_BYTES: Final = 1 << 22


def _parse_samples(data: bytes, path: Path) -> list[Sample]:
    """All samples of a samples.jsonl's bytes. Fast path: the whole file is parsed by one json.loads (as
    one JSON array) with the cyclic GC paused, validated inline, equal image/question strings and group
    dicts shared. Anything unusual (bad UTF-8 or JSON, blank lines, an invalid sample) falls back to the
    line-by-line reader, which names the file and line of the first problem exactly as before."""
    fast = _parse_samples_fast(data)
    return fast if fast is not None else list(_read_samples_lines(data, path))


def _parse_samples_fast(data: bytes) -> list[Sample] | None:
    size = len(data) - 1 if data.endswith(b"\n") else len(data)   # decoded a chunk at a time, never copied whole
    if not size:
        return None
    strings: dict[str, str] = {}
    groups: dict[tuple[tuple[str, GroupValue], ...], dict[str, GroupValue]] = {}
    out: list[Sample] = []
    gc_was_enabled = gc.isenabled()
    gc.disable()      # millions of new dicts would trigger full collections that find nothing to free
    try:
        start = 0
        while start < size:   # chunks of whole lines: the parsed dicts of one chunk at a time stay in memory
            end = data.find(b"\n", start + _CHUNK_BYTES, size)
            end = size if end < 0 else end
            try:
                chunk = data[start:end].decode("utf-8")
                objs = json.loads("[" + chunk.replace("\n", ",") + "]")
            except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
                return None
            # One value per line: a count mismatch means a line held zero or several values (or lines merged).
            if len(objs) != chunk.count("\n") + 1 or not _build_samples(objs, strings, groups, out):
                return None
            start = end + 1
        return out
    finally:
        if gc_was_enabled:
            gc.enable()


_SET_ID, _SET_IMAGE, _SET_QUESTION, _SET_ANSWER, _SET_GROUP = (Sample.__dict__[f.name].__set__ for f in fields(Sample))


def _new_sample(sid: str, image: str, question: str, answer: str, group: Mapping[str, GroupValue]) -> Sample:
    """`Sample(sid, image, question, answer, group)` for fields already validated, 2.5x faster: the frozen
    dataclass's __init__ sets each slot through object.__setattr__; this sets the slots directly."""
    sample = object.__new__(Sample)
    _SET_ID(sample, sid)
    _SET_IMAGE(sample, image)
    _SET_QUESTION(sample, question)
    _SET_ANSWER(sample, answer)
    _SET_GROUP(sample, group)
    return sample


def _build_samples(objs: list[Any], strings: dict[str, str],
                   groups: dict[tuple[tuple[str, GroupValue], ...], dict[str, GroupValue]], out: list[Sample]) -> bool:
    """Append samples from parsed objects to `out`; False at the first object `Sample.from_json` would reject.
    Equal image/question strings (`strings`) and all-str/int group dicts (`groups`) are shared."""
    answers, internable = _ANSWER_OBJECTS, _INTERNABLE_GROUP_TYPES
    append, new = out.append, _new_sample
    for obj in objs:
        if type(obj) is not dict:
            return False
        try:
            sid, image, question, answer = obj["id"], obj["image"], obj["question"], answers[obj["answer"]]
        except (KeyError, TypeError):       # a missing field, or an answer that is not "yes"/"no"
            return False
        if type(sid) is not str or type(image) is not str or type(question) is not str:
            return False
        group = obj.get("group")
        if group is None:
            if "group" in obj:
                return False
            group = {}
        elif type(group) is not dict:
            return False
        elif group:
            if internable.issuperset(map(type, group.values())):
                key = tuple(group.items())
                group = groups.setdefault(key, group)
            elif not all(isinstance(v, (str, int, float)) for v in group.values()):
                return False
        image = strings.setdefault(image, image)
        question = strings.setdefault(question, question)
        append(new(sid, image, question, answer, group))
    return True


def _read_samples_lines(data: bytes, path: Path) -> Iterable[Sample]:
    """The line-by-line reader: slow, but names the file and line of the first problem."""
    raws = data.split(b"\n")          # as a binary file iterates: on b"\n" only, each line keeping it
    last = raws.pop()
    for lineno, raw in enumerate([r + b"\n" for r in raws] + ([last] if last else []), start=1):
        line = decode_utf8(raw, path, error=SplitFormatError, first_line=lineno)
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SplitFormatError(f"{path}:{lineno}: malformed JSON ({exc.msg})") from None
        yield Sample.from_json(obj, where=f"{path}:{lineno}")


def _check_strings(obj: Mapping[str, Any], where: str, required: Iterable[str], optional: Iterable[str]) -> None:
    """A number or list where a string belongs would crash later, far from the file; name the field here."""
    for key in (*required, *optional):
        if key not in obj:
            if key in required:
                raise SplitFormatError(f"{where}: missing field {key!r}; rebuild the split or restore split.json")
            continue
        if not isinstance(obj[key], str):
            raise SplitFormatError(f"{where}: field {key!r} must be a string, got {obj[key]!r} "
                                   f"({type(obj[key]).__name__}); rebuild the split or restore split.json")


def _check_unique(samples: Iterable[Sample], where: str) -> None:
    seen: set[str] = set()
    for sample in samples:
        if sample.id in seen:
            raise SplitFormatError(f"{where}: duplicate sample id {sample.id!r}")
        seen.add(sample.id)
