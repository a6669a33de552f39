"""One POPE question, and how it becomes a split sample (ids, group fields) and back.

Sample ids are namespaced by subset and carry the question id: `pope-coco-random/000017` is question 17 of
the random subset of split `pope-coco`. That is what lets an exported split carry the same question ids
and what lets answers files that only have `question_id` be matched (see deem_eval/answer_files.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import PurePosixPath

from deem_eval.core.errors import DeemEvalError
from deem_eval.core.splits import Sample

SUBSETS = ("random", "popular", "adversarial")
BENCHMARK = "pope"
UNKNOWN_OBJECT = "(unknown)"

_OBJECT_IN_TEXT = re.compile(r"^Is there (?:a|an) (.+?) in the ima(?:n)?ge\?$")
_TRAILING_DIGITS = re.compile(r"(\d+)$")
_ID = re.compile(r"^(?P<prefix>.+)-(?P<subset>random|popular|adversarial)/(?P<qid>\d+)$")


@dataclass(frozen=True)
class PopeQuestion:
    """A row of a POPE question file: what upstream writes, plus the object when it is known."""

    subset: str
    question_id: int
    image: str
    text: str
    label: str                     # "yes" | "no"
    object: str | None = None      # None: parse it from the text
    image_id: str | None = None    # None: derive it from the image file name

    def object_name(self) -> str:
        return self.object if self.object is not None else object_from_text(self.text)

    def to_sample(self, prefix: str) -> Sample:
        return Sample(id=sample_id(prefix, self.subset, self.question_id), image=self.image, question=self.text,
                      answer=self.label,
                      group={"subset": self.subset, "object": self.object_name(),
                             "image_id": self.image_id if self.image_id is not None else image_id_of(self.image)})


def sample_id(prefix: str, subset: str, question_id: int) -> str:
    return f"{prefix}-{subset}/{question_id:06d}"


@dataclass(frozen=True)
class ParsedId:
    prefix: str
    subset: str
    question_id: int


def parse_sample_id(sample_id_text: str) -> ParsedId | None:
    """`pope-coco-random/000017` -> (pope-coco, random, 17); None for ids of other benchmarks."""
    match = _ID.match(sample_id_text)
    if match is None:
        return None
    return ParsedId(match["prefix"], match["subset"], int(match["qid"]))


def object_from_text(text: str) -> str:
    """The object a POPE question asks about ("Is there an umbrella in the imange?" -> "umbrella")."""
    match = _OBJECT_IN_TEXT.match(text.strip())
    return match.group(1) if match else UNKNOWN_OBJECT


@lru_cache(maxsize=65536)
def image_id_of(image: str) -> str:
    """COCO_val2014_000000310196.jpg -> "310196"; 2405722.jpg -> "2405722"; otherwise the file stem."""
    stem = PurePosixPath(image).stem
    match = _TRAILING_DIGITS.search(stem)
    return str(int(match.group(1))) if match else stem


def check_subset(subset: str, where: str) -> str:
    if subset not in SUBSETS:
        raise DeemEvalError(f"{where}: unknown POPE subset {subset!r}; expected one of {', '.join(SUBSETS)}")
    return subset


def subsets_from_text(text: str) -> tuple[str, ...]:
    """`random,popular` -> ("random", "popular"), validated, order kept, no duplicates."""
    out: list[str] = []
    for part in text.split(","):
        part = part.strip()
        if part and part not in out:
            out.append(check_subset(part, "--subsets"))
    if not out:
        raise DeemEvalError("--subsets: give at least one of random, popular, adversarial")
    return tuple(out)
