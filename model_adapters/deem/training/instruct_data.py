"""Instruction-tuning data for DEEM's stage 2: (image, question/answer turns) examples.

Sources (`instruct_data` picks one by looking at the path):

- LLaVA conversations: a JSON array (or JSON lines) of
  {"id": ..., "image": "rel/path.jpg", "conversations": [{"from": "human", "value": "<image>\\nQ"},
  {"from": "gpt", "value": "A"}, ...]}; turns alternate human / gpt, starting with human.
- A question list: JSON lines (or an array) of {"image": path, "question": text, "answer": text}; the answer
  is usually "yes" / "no" but any short answer text is accepted (short-answer VQA data).
- A deem-eval split directory (split.json + samples.jsonl); images resolve against the split's image_root.

Relative image paths resolve against `image_folder` (default: the data file's directory). Images are not
opened here - the training loop does that with `open_example_image`, which turns any unreadable, truncated
or oversized image into None (a per-sample skip) rather than an exception.

DEEM's prompt places the image block itself, so the `<image>` marker (and a newline next to it) is removed
from the first question; the first question may be empty after that (the image alone is the prompt).

What is an error and what is skipped. Anything that means the file is not what it claims to be is a
DeemEvalError naming the file and line (JSON lines) or item number (JSON array): malformed JSON, an entry
that is not an object, no "conversations", turns that are not {"from", "value"} strings, turns that do not
alternate human/gpt starting with human, a conversation without a gpt answer or ending on an unanswered
question, an empty answer (or an empty question after the first), an image entry without `<image>` in its
first human turn or with more than one `<image>`, a question-list entry without "image", "question" or
"answer". One case is skipped and counted instead (`data.skipped`, reason -> count): a LLaVA entry without
an "image" key, i.e. a text-only conversation - LLaVA's mixes hold tens of thousands of them (ShareGPT),
and DEEM's prompt always carries an image. Its turns are not checked (ShareGPT's do not always alternate),
but one that contains an `<image>` marker is an error, not a text-only entry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from deem_eval.core.errors import DeemEvalError
from deem_eval.core.jsonio import read_json_records

from ..model.images import open_rgb

if TYPE_CHECKING:
    from PIL import Image

IMAGE_MARKER = "<image>"
SKIP_TEXT_ONLY = "text-only conversation (no image)"


@dataclass(frozen=True)
class Turn:
    question: str       # without the <image> marker
    answer: str


@dataclass(frozen=True)
class InstructExample:
    name: str                         # the entry's "id", else its file position
    image: Path | Image.Image         # a path (opened lazily by the training loop) or a decoded image
    turns: tuple[Turn, ...]


class InstructData(Sequence[InstructExample]):
    """The examples of one source, immutable; `skipped` counts entries left out, by reason."""

    def __init__(self, examples: Sequence[InstructExample], *, source: str, skipped: Mapping[str, int] | None = None):
        self._examples = tuple(examples)
        self.source = source
        self._skipped = dict(skipped or {})

    @property
    def skipped(self) -> dict[str, int]:
        return dict(self._skipped)

    @property
    def turns(self) -> int:
        return sum(len(e.turns) for e in self._examples)

    def __len__(self) -> int:
        return len(self._examples)

    @overload
    def __getitem__(self, index: int) -> InstructExample: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[InstructExample]: ...

    def __getitem__(self, index: int | slice) -> InstructExample | Sequence[InstructExample]:
        return self._examples[index]

    def __repr__(self) -> str:
        return f"InstructData({self.source!r}, {len(self)} examples, skipped={self._skipped})"


def open_example_image(example: InstructExample) -> Image.Image | None:
    """The example's image in RGB, or None when it cannot be used (missing, unreadable, truncated, or a
    decompression bomb - PIL's warning counts too): the training loop skips such an example."""
    try:
        return open_rgb(example.image, refuse_large=True)
    except DeemEvalError:
        return None


# ---- sources ---------------------------------------------------------------------------------------------

def instruct_data(source: Path, *, image_folder: Path | None = None) -> InstructData:
    """A split directory, a LLaVA conversation file, or a question list - told apart by the first entry."""
    source = Path(source).expanduser()
    if source.is_dir():
        if image_folder is not None:
            raise DeemEvalError(f"{source}: a split directory has its own image_root; drop --image-folder")
        return split_data(source)
    records = _records(source)
    if not records:
        raise DeemEvalError(f"{source}: no entries")
    first = next((obj for _, obj in records if isinstance(obj, dict)), {})
    if "conversations" in first:
        return _llava(records, source, image_folder)
    if "question" in first:
        return _questions(records, source, image_folder)
    raise DeemEvalError(f"{source}: cannot tell the format: the first entry has neither \"conversations\" "
                        "(LLaVA) nor \"question\" (question list)")


def llava_data(path: Path, *, image_folder: Path | None = None) -> InstructData:
    """LLaVA's conversation JSON (an array or JSON lines)."""
    path = Path(path).expanduser()
    return _llava(_records(path), path, image_folder)


def question_data(path: Path, *, image_folder: Path | None = None) -> InstructData:
    """A question list: {"image", "question", "answer"} per line, one single-turn example each."""
    path = Path(path).expanduser()
    return _questions(_records(path), path, image_folder)


def split_data(directory: Path) -> InstructData:
    """A deem-eval split as single-turn examples (the answer is the split's "yes" / "no")."""
    from deem_eval.core.splits import Split

    split = Split.load(Path(directory).expanduser())
    examples = [InstructExample(s.id, split.image_path(s), (Turn(strip_marker(s.question), s.answer),))
                for s in split.samples]
    return _nonempty(InstructData(examples, source=f"split {split.name} ({split.directory})"))


# ---- parsing ---------------------------------------------------------------------------------------------

def strip_marker(text: str) -> str:
    """The question without `<image>` and a newline next to it (LLaVA puts the marker first or last)."""
    for form in (IMAGE_MARKER + "\n", "\n" + IMAGE_MARKER, IMAGE_MARKER):
        text = text.replace(form, "")
    return text.strip()


def _records(path: Path) -> list[tuple[str, Any]]:
    return read_json_records(path, what="instruction data file")


def _image_path(value: Any, folder: Path, where: str) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise DeemEvalError(f"{where}: \"image\" must be one image path (a non-empty string), got {value!r}")
    path = Path(value).expanduser()
    return path if path.is_absolute() else folder / path


def _name(obj: dict, where: str) -> str:
    return str(obj["id"]) if obj.get("id") is not None else where


def _llava(records: list[tuple[str, Any]], path: Path, image_folder: Path | None) -> InstructData:
    folder = Path(image_folder).expanduser() if image_folder is not None else path.parent
    examples: list[InstructExample] = []
    skipped: dict[str, int] = {}
    for where, obj in records:
        if not isinstance(obj, dict):
            raise DeemEvalError(f"{where}: expected a JSON object, got {type(obj).__name__}")
        if "conversations" not in obj:
            raise DeemEvalError(f"{where}: missing \"conversations\"")
        if "image" not in obj:
            _check_text_only(obj["conversations"], where)
            skipped[SKIP_TEXT_ONLY] = skipped.get(SKIP_TEXT_ONLY, 0) + 1
            continue
        image = _image_path(obj["image"], folder, where)
        turns, marked = _conversation(obj["conversations"], where)
        if not marked:
            raise DeemEvalError(f"{where}: the first human turn has no {IMAGE_MARKER} marker")
        examples.append(InstructExample(_name(obj, where), image, turns))
    return _nonempty(InstructData(examples, source=str(path), skipped=skipped))


def _check_text_only(turns: Any, where: str) -> None:
    """A skipped text-only entry is not validated turn by turn (LLaVA's ShareGPT part does not always
    alternate), but one that mentions an image is a broken entry, not a text-only one."""
    if not isinstance(turns, list):
        raise DeemEvalError(f"{where}: \"conversations\" must be a list of turns")
    if any(isinstance(t, dict) and IMAGE_MARKER in str(t.get("value", "")) for t in turns):
        raise DeemEvalError(f"{where}: the conversation has an {IMAGE_MARKER} marker but no \"image\"")


def _conversation(turns: Any, where: str) -> tuple[tuple[Turn, ...], bool]:
    """(turns, whether the first question held the <image> marker), checking roles and text."""
    if not isinstance(turns, list) or not turns:
        raise DeemEvalError(f"{where}: \"conversations\" must be a non-empty list of turns")
    texts = []
    for i, turn in enumerate(turns):
        expected = "human" if i % 2 == 0 else "gpt"
        if not isinstance(turn, dict) or not isinstance(turn.get("value"), str):
            raise DeemEvalError(f"{where}: turn {i + 1} must be {{\"from\": ..., \"value\": text}}, got {turn!r}")
        if turn.get("from") != expected:
            raise DeemEvalError(f"{where}: turn {i + 1} is from {turn.get('from')!r}, expected {expected!r} "
                                "(turns alternate human, gpt, starting with human)")
        texts.append(turn["value"])
    if len(texts) == 1:
        raise DeemEvalError(f"{where}: the conversation has no gpt answer")
    if len(texts) % 2:
        raise DeemEvalError(f"{where}: the last human turn (turn {len(texts)}) has no gpt answer")
    marked = IMAGE_MARKER in texts[0]
    if texts[0].count(IMAGE_MARKER) > 1 or any(IMAGE_MARKER in t for t in texts[1:]):
        raise DeemEvalError(f"{where}: more than one {IMAGE_MARKER} marker (only one image, in the first "
                            "human turn, is supported)")
    out = []
    for k in range(0, len(texts), 2):
        question, answer = strip_marker(texts[k]), texts[k + 1].strip()
        if not answer:
            raise DeemEvalError(f"{where}: turn {k + 2} (gpt) has an empty answer")
        if not question and k > 0:
            raise DeemEvalError(f"{where}: turn {k + 1} (human) has an empty question")
        out.append(Turn(question, answer))
    return tuple(out), marked


def _questions(records: list[tuple[str, Any]], path: Path, image_folder: Path | None) -> InstructData:
    folder = Path(image_folder).expanduser() if image_folder is not None else path.parent
    examples = []
    for where, obj in records:
        if not isinstance(obj, dict):
            raise DeemEvalError(f"{where}: expected a JSON object, got {type(obj).__name__}")
        missing = [k for k in ("image", "question", "answer") if k not in obj]
        if missing:
            raise DeemEvalError(f"{where}: missing {', '.join(repr(k) for k in missing)} (a question list has "
                                "{\"image\": path, \"question\": text, \"answer\": text} per line)")
        for key in ("question", "answer"):
            if not isinstance(obj[key], str):
                raise DeemEvalError(f"{where}: {key!r} must be a string, got {obj[key]!r}")
        question, answer = strip_marker(obj["question"]), obj["answer"].strip()
        if not answer:
            raise DeemEvalError(f"{where}: empty answer")
        if not question:
            raise DeemEvalError(f"{where}: empty question")
        examples.append(InstructExample(_name(obj, where), _image_path(obj["image"], folder, where),
                                        (Turn(question, answer),)))
    return _nonempty(InstructData(examples, source=str(path)))


def _nonempty(data: InstructData) -> InstructData:
    if len(data) == 0:
        skipped = f" (skipped: {data.skipped})" if data.skipped else ""
        raise DeemEvalError(f"{data.source}: no usable examples{skipped}")
    return data
