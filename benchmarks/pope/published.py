"""POPE's published question files: read them (JSON lines or a JSON array), and write them back.

Upstream writes one `{"question_id", "image", "text", "label"}` object per line with `json.dumps` defaults;
the SEEM-based files are a pretty-printed JSON array (indent 4); some copies have Windows line endings and
early ones ask about the "imange". `Layout` records those details so that a loaded file exports back byte
for byte, not just row for row.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from deem_eval.core.errors import DeemEvalError
from deem_eval.core.jsonio import json_lines, parse_json
from deem_eval.core.splits import sha256_file

from .questions import SUBSETS, PopeQuestion

IMAGE_KEYS = ("image", "imange")   # "imange": accepted as a key as well as in the text
_FILE_NAME = re.compile(r"^(?P<dataset>[A-Za-z0-9]+)_pope_(?P<seem>seem_)?(?P<subset>random|popular|adversarial)\b")


@dataclass(frozen=True)
class Layout:
    """How a question file is laid out on disk (enough to rewrite it byte for byte)."""

    kind: Literal["jsonl", "array"] = "jsonl"
    newline: str = "\n"                 # line ending of JSON lines ("\n" or "\r\n")
    indent: int | None = 4              # JSON array indentation
    final_newline: bool = True          # JSON lines: does the last row end with a newline?
    keys: tuple[str, ...] = ("question_id", "image", "text", "label")

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "newline": self.newline, "indent": self.indent,
                "final_newline": self.final_newline, "keys": list(self.keys)}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Layout:
        return cls(kind=obj.get("kind", "jsonl"), newline=obj.get("newline", "\n"), indent=obj.get("indent", 4),
                   final_newline=bool(obj.get("final_newline", True)),
                   keys=tuple(obj.get("keys", cls.keys)))


@dataclass(frozen=True)
class PublishedFile:
    """A loaded question file: its rows in file order, its layout and hashes."""

    path: Path
    subset: str
    dataset: str
    questions: tuple[PopeQuestion, ...]
    layout: Layout
    file_sha256: str

    @cached_property
    def content_sha256(self) -> str:
        return content_fingerprint(self.questions)

    @property
    def counts(self) -> tuple[int, int]:
        yes = sum(q.label == "yes" for q in self.questions)
        return yes, len(self.questions) - yes


def guess_from_name(path: Path) -> tuple[str | None, str | None]:
    """(dataset, subset) from upstream file names: coco_pope_random.json, aokvqa_pope_seem_popular.json."""
    match = _FILE_NAME.match(path.name)
    if not match:
        subset = next((s for s in SUBSETS if s in path.stem), None)
        return None, subset
    dataset = match["dataset"] + ("-seem" if match["seem"] else "")
    return dataset, match["subset"]


def read_published(path: Path | str, *, subset: str | None = None, dataset: str | None = None) -> PublishedFile:
    """Load a POPE question file; subset and dataset default to what the file name says."""
    path = Path(path)
    if not path.is_file():
        raise DeemEvalError(f"{path}: no such file")
    guessed_dataset, guessed_subset = guess_from_name(path)
    subset = subset or guessed_subset
    if subset is None:
        raise DeemEvalError(f"{path}: cannot tell the POPE subset from the file name; name it like "
                            "coco_pope_random.json or pass the subset explicitly")
    if subset not in SUBSETS:
        raise DeemEvalError(f"{path}: unknown subset {subset!r}; expected one of {', '.join(SUBSETS)}")
    dataset = dataset or guessed_dataset or "custom"
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DeemEvalError(f"{path}: not UTF-8 text ({exc})") from None
    if text.lstrip().startswith("["):
        objects, layout = _read_array(path, text)
    else:
        objects, layout = _read_lines(path, text)
    if not objects:
        raise DeemEvalError(f"{path}: no questions in the file")
    questions = tuple(_question(obj, where, subset) for where, obj in objects)
    _check_unique_ids(path, questions)
    keys = tuple(objects[0][1].keys())
    layout = Layout(layout.kind, layout.newline, layout.indent, layout.final_newline, keys)
    return PublishedFile(path, subset, dataset, questions, layout, sha256_file(path))


def _read_lines(path: Path, text: str) -> tuple[list[tuple[str, dict]], Layout]:
    objects: list[tuple[str, dict]] = []
    lines = json_lines(text, keepends=True)
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DeemEvalError(f"{path}:{lineno}: malformed JSON ({exc.msg} at column {exc.colno})") from None
        objects.append((f"{path}:{lineno}", obj))
    ended = [line for line in lines if line.strip() and line.endswith("\n")]
    crlf = bool(ended) and all(line.endswith("\r\n") for line in ended)
    final_newline = bool(lines) and lines[-1].endswith("\n")
    return objects, Layout(kind="jsonl", newline="\r\n" if crlf else "\n", final_newline=final_newline)


def _read_array(path: Path, text: str) -> tuple[list[tuple[str, dict]], Layout]:
    data = parse_json(text, path)
    if not isinstance(data, list):
        raise DeemEvalError(f"{path}: expected a JSON array of questions")
    indent = _detect_indent(text)
    return ([(f"{path}: item {i + 1}", obj) for i, obj in enumerate(data)],
            Layout(kind="array", indent=indent, final_newline=text.endswith("\n")))


def _detect_indent(text: str) -> int | None:
    match = re.match(r"\[\r?\n( +)\{", text)
    return len(match.group(1)) if match else None


def _question(obj: Any, where: str, subset: str) -> PopeQuestion:
    if not isinstance(obj, dict):
        raise DeemEvalError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    image_key = next((k for k in IMAGE_KEYS if k in obj), None)
    missing = [k for k, ok in (("question_id", "question_id" in obj), ("image", image_key is not None),
                               ("text", "text" in obj), ("label", "label" in obj)) if not ok]
    if missing:
        raise DeemEvalError(f"{where}: missing field(s) {', '.join(missing)} (a POPE question has "
                            "question_id, image, text, label)")
    qid = obj["question_id"]
    if isinstance(qid, bool) or not (isinstance(qid, int) or (isinstance(qid, str) and qid.isdigit())):
        raise DeemEvalError(f"{where}: question_id must be a non-negative integer, got {qid!r}")
    for key in (image_key, "text", "label"):
        if not isinstance(obj[key], str):
            raise DeemEvalError(f"{where}: {key!r} must be a string, got {obj[key]!r}")
    if obj["label"] not in ("yes", "no"):
        raise DeemEvalError(f"{where}: label must be 'yes' or 'no', got {obj['label']!r}")
    return PopeQuestion(subset=subset, question_id=int(qid), image=obj[image_key], text=obj["text"],
                        label=obj["label"])


def _check_unique_ids(path: Path, questions: Sequence[PopeQuestion]) -> None:
    seen: set[int] = set()
    for q in questions:
        if q.question_id in seen:
            raise DeemEvalError(f"{path}: question_id {q.question_id} occurs twice")
        seen.add(q.question_id)


def content_fingerprint(questions: Iterable[PopeQuestion], *, normalise_spelling: bool = False) -> str:
    """SHA-256 over (question_id, image, text, label) rows in order: equal content, whatever the layout.

    `normalise_spelling` replaces "imange" by "image" first, to see that two versions differ only by it.
    """
    digest = hashlib.sha256()
    for q in questions:
        text = q.text.replace("imange", "image") if normalise_spelling else q.text
        digest.update(json.dumps([q.question_id, q.image, text, q.label], ensure_ascii=False,
                                 separators=(",", ":")).encode("utf-8") + b"\n")
    return digest.hexdigest()


def render(questions: Sequence[PopeQuestion], layout: Layout = Layout()) -> str:
    """The file text for `questions` in `layout` (upstream's json.dumps defaults: ", " and ": ")."""
    image_key = next((k for k in layout.keys if k in IMAGE_KEYS), "image")
    order = [k if k not in IMAGE_KEYS else image_key for k in layout.keys]
    for required in ("question_id", image_key, "text", "label"):
        if required not in order:
            order.append(required)
    values = {"question_id": lambda q: q.question_id, image_key: lambda q: q.image,
              "text": lambda q: q.text, "label": lambda q: q.label}
    rows = [{k: values[k](q) for k in order if k in values} for q in questions]
    if layout.kind == "array":
        return json.dumps(rows, indent=layout.indent) + ("\n" if layout.final_newline else "")
    body = layout.newline.join(json.dumps(row) for row in rows)
    return body + (layout.newline if layout.final_newline and rows else "")


def write_published(path: Path, questions: Sequence[PopeQuestion], layout: Layout = Layout()) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as handle:   # newline="": keep "\r\n" as written
        handle.write(render(questions, layout))
    return path


def published_file_name(dataset: str, subset: str) -> str:
    """Upstream's naming: coco_pope_random.json, aokvqa_pope_seem_random.json."""
    if dataset.endswith("-seem"):
        return f"{dataset[:-5]}_pope_seem_{subset}.json"
    return f"{dataset}_pope_{subset}.json"
