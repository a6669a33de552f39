"""Answers made elsewhere, matched to a split's questions: by id or by (subset, image, question), never by row.

Formats read (JSON lines; a JSON array is accepted too):
- POPE-style answer rows: `question_id` with `answer` (or LLaVA's `text`), plus `image`, `question` /
  `prompt` (or `text` when the answer is in `answer`) and `category` when present;
- lmms-eval `samples_<task>.jsonl` logs: `doc_id`, `filtered_resps` / `resps`, `target`, and either the
  task's `doc` (question_id, question, image_source, category) or, in newer versions where `doc` is
  dropped, the metric records (`question_id`) and `input` (the prompt);
- VLMEvalKit result files (`.tsv`, or `.xlsx` with pandas + openpyxl; `.csv` too): columns `index`,
  `question`, `answer` (the ground truth, Yes/No), `prediction` (the model's answer) and `category` (the POPE
  subset), `image_path` when present. A row is matched by (category, question) where that question is asked
  once in the subset, else by (category, image, question), else by `index` taken as the question id (only
  when the split's ids carry question ids, and only if the row's question text and ground truth agree with
  that sample: VLMEvalKit numbers its own rows). Every matched row's `answer` must agree with the split's.

Row position is never used: upstream POPE scripts zip answers with labels by position, and published
files of different versions ask different questions from row 11 on. When a row has only a question id,
it is matched only if the split's ids carry question ids (`.../<subset>/000017`, as POPE splits do); the result
says so in `notes`.

Checks on the rows matched by id or question id (rows matched by (subset, image, question) agree by construction):
- a row that carries the question text or the image is compared with the split's sample of that id (questions
  normalised as below, images by file stem). A row that disagrees is not matched. If more than
  MAX_DISAGREEING (1 %) of the answer rows disagree the file is refused (it was made on another version of the
  questions); otherwise the count and the first examples are noted (a warning).
- two rows answering one question: identical answers are kept once and counted (`duplicate_rows`, noted);
  different answers are an error naming the file, the line numbers and the id, since either could be the one
  that was scored upstream.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from deem_eval.core.errors import DeemEvalError
from deem_eval.core.jsonio import read_json_records
from deem_eval.core.splits import Split

_TRAILING_QID = re.compile(r"/(\d+)$")
_SUBSET_ALIASES = {"random": "random", "popular": "popular", "pop": "popular", "adversarial": "adversarial",
                   "adv": "adversarial"}
_IMAGE_TOKEN = re.compile(r"<image>|<img>|</img>", re.IGNORECASE)
MAX_DISAGREEING = 0.01        # refuse a file when more than this share of its rows disagree with the split
_EXAMPLES = 3


@dataclass
class MatchedAnswers:
    """Answers keyed by sample id, and an account of every row of the file."""

    answers: dict[str, str]                  # sample id -> raw answer text
    rows: int                                # answer rows read
    matched: int                             # rows matched to a question (= len(answers))
    unmatched_rows: int                      # rows that matched no question of the split
    duplicate_rows: int                      # further identical answers to an already answered question (kept once)
    missing: int                             # split questions without an answer
    source_format: str                       # "pope-answers" | "llava-answers" | "lmms-eval-samples" | "vlmevalkit"
    matched_by: str = ""                     # "id", "subset+question", "subset+image+question", "question_id", comma-joined
    notes: list[str] = field(default_factory=list)
    disagreeing_rows: int = 0                # rows whose id names a question but whose question/image differ


@dataclass(frozen=True)
class _Row:
    where: str
    text: str
    id: str | None
    question_id: int | None
    image: str | None          # file stem
    question: str | None       # normalised
    subset: str | None
    label: str | None = None   # the row's own ground truth (VLMEvalKit's `answer`), checked against the split
    by_question: bool = False  # may be matched by (subset, question) alone (VLMEvalKit rows carry no image)


_TABLE_SUFFIXES = {".tsv": "\t", ".csv": ","}
_EXCEL_SUFFIXES = (".xlsx", ".xlsm", ".xls")


def normalise_question(text: str) -> str:
    """Compare questions, not prompts: drop image tokens and anything after the first '?', fix 'imange'."""
    text = _IMAGE_TOKEN.sub(" ", text).strip()
    if "?" in text:
        text = text[: text.index("?") + 1]
    return " ".join(text.replace("imange", "image").split()).casefold()


def _stem(image: Any) -> str | None:
    if not isinstance(image, str) or not image.strip():
        return None
    return PurePosixPath(image.strip().replace("\\", "/")).stem


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _subset(value: Any) -> str | None:
    return _SUBSET_ALIASES.get(value.strip().lower()) if isinstance(value, str) else None


def _first_text(value: Any) -> str | None:
    while isinstance(value, list):
        if not value:
            return None
        value = value[0]
    return value if isinstance(value, str) else None


def _read_rows(path: Path) -> list[tuple[str, Any]]:
    suffix = path.suffix.lower()
    if suffix in _TABLE_SUFFIXES:
        return _read_table(path, _TABLE_SUFFIXES[suffix])
    if suffix in _EXCEL_SUFFIXES:
        return _read_excel(path)
    return read_json_records(path, what="answers file")


def _read_table(path: Path, delimiter: str) -> list[tuple[str, Any]]:
    """[(file:line, row dict)] of a header-first TSV / CSV (VLMEvalKit writes them with pandas)."""
    import csv
    import sys

    if not path.is_file():
        raise DeemEvalError(f"{path}: no such answers file")
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))      # base64 `image` columns are long
    rows = []
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle, delimiter=delimiter)
            if not reader.fieldnames:
                raise DeemEvalError(f"{path}: empty table (expected a header row)")
            for row in reader:
                rows.append((f"{path}:{reader.line_num}", {k: v for k, v in row.items() if k is not None}))
    except UnicodeDecodeError as exc:
        raise DeemEvalError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except csv.Error as exc:
        raise DeemEvalError(f"{path}: malformed {'TSV' if delimiter == chr(9) else 'CSV'} ({exc})") from None
    return rows


def _read_excel(path: Path) -> list[tuple[str, Any]]:
    """[(file: row N, row dict)] of an Excel sheet (VLMEvalKit's result .xlsx), read with pandas + openpyxl."""
    if not path.is_file():
        raise DeemEvalError(f"{path}: no such answers file")
    try:
        import pandas as pd
    except ImportError:
        raise DeemEvalError(f"{path}: reading .xlsx answers needs pandas and openpyxl: "
                            "pip install pandas openpyxl (or save the sheet as .tsv)") from None
    try:
        import openpyxl  # type: ignore[import-untyped]  # noqa: F401 - pandas' engine for .xlsx
    except ImportError:
        raise DeemEvalError(f"{path}: reading .xlsx answers needs openpyxl: pip install openpyxl "
                            "(or save the sheet as .tsv)") from None
    try:
        frame = pd.read_excel(path, dtype=object)
    except Exception as exc:  # noqa: BLE001 - pandas / openpyxl raise many types for a damaged file
        raise DeemEvalError(f"{path}: cannot read the spreadsheet ({type(exc).__name__}: {exc})") from None
    records = frame.where(frame.notna(), None).to_dict(orient="records")
    return [(f"{path}: row {i + 2}", {str(k): v for k, v in r.items()}) for i, r in enumerate(records)]


def _parse_row(where: str, obj: Any) -> tuple[_Row, str]:
    if not isinstance(obj, dict):
        raise DeemEvalError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    if "doc_id" in obj and ("filtered_resps" in obj or "resps" in obj):
        return _lmms_eval_row(where, obj), "lmms-eval-samples"
    if "prediction" in obj and "question" in obj:
        return _vlmevalkit_row(where, obj), "vlmevalkit"
    if "answer" not in obj and "text" not in obj:
        raise DeemEvalError(f"{where}: no answer field: expected 'answer' (or LLaVA's 'text') in POPE-style "
                            "answer rows, or an lmms-eval samples log")
    if "answer" not in obj and "label" in obj:
        raise DeemEvalError(f"{where}: this looks like a question file (text + label), not an answers file")
    answer = obj["answer"] if "answer" in obj else obj["text"]
    question = obj.get("question") or obj.get("prompt") or (obj.get("text") if "answer" in obj else None)
    row = _Row(where, "" if answer is None else str(answer),
               obj["id"] if isinstance(obj.get("id"), str) else None,
               _int(obj.get("question_id")),
               _stem(obj.get("image") or obj.get("imange") or obj.get("image_source")),
               normalise_question(question) if isinstance(question, str) else None,
               _subset(obj.get("category") or obj.get("subset")))
    return row, "llava-answers" if "prompt" in obj and "answer" not in obj else "pope-answers"


def _lmms_eval_row(where: str, obj: dict) -> _Row:
    text = _first_text(obj.get("filtered_resps"))
    if text is None:
        text = _first_text(obj.get("resps"))
    doc: dict[str, Any] = obj["doc"] if isinstance(obj.get("doc"), dict) else {}
    question_id = _int(doc.get("question_id"))
    if question_id is None:   # newer lmms-eval drops `doc`; the metric records keep question_id
        for value in obj.values():
            if isinstance(value, dict) and "question_id" in value:
                question_id = _int(value["question_id"])
                break
    question = doc.get("question") or obj.get("input")
    # tasks exported by `deem-eval export --format lmms-eval` carry the sample id in `doc` and in the metric record
    sample_id = doc.get("id") if isinstance(doc.get("id"), str) else None
    if sample_id is None:
        sample_id = next((v["id"] for v in obj.values() if isinstance(v, dict) and isinstance(v.get("id"), str)),
                         None)
    image = doc.get("image_source") or doc.get("image_file") or doc.get("image")
    return _Row(where, "" if text is None else text, sample_id, question_id,
                _stem(image if isinstance(image, str) else None),
                normalise_question(question) if isinstance(question, str) else None,
                _subset(doc.get("category")))


def _cell(value: Any) -> str | None:
    """A table cell as text: None for empty / NaN cells; 17.0 (a float read from a sheet) as '17'."""
    if value is None:
        return None
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if value.is_integer():
            return str(int(value))
    text = str(value)
    return text if text.strip() else None


def _vlmevalkit_row(where: str, obj: dict) -> _Row:
    prediction = _cell(obj.get("prediction"))
    question = _cell(obj.get("question"))
    label = _cell(obj.get("answer"))
    image = _cell(obj.get("image_path")) or _cell(obj.get("image_source"))
    if image is None:                        # `image` is base64 in VLMEvalKit's TSVs; a short one may be a path
        candidate = _cell(obj.get("image"))
        image = candidate if candidate and len(candidate) < 300 and "." in candidate else None
    if isinstance(image, str) and image.lstrip().startswith("["):   # multi-image rows: ["a.jpg"]
        image = image.strip().strip("[]").split(",")[0].strip().strip("'\"") or None
    return _Row(where, prediction or "", _cell(obj.get("id")), _int(_cell(obj.get("index"))), _stem(image),
                normalise_question(question) if question else None,
                _subset(_cell(obj.get("category")) or _cell(obj.get("split"))),
                label.strip().lower() if label else None, True)


@dataclass
class _Index:
    ids: set[str]
    by_key: dict[tuple[str, str, str], str | None]       # (subset, image stem, question) -> id (None: ambiguous)
    by_qid: dict[tuple[str, int], str] | None            # (subset, question id) -> id, if ids carry question ids
    question_of: dict[str, str]                          # id -> normalised question
    subsets: list[str]
    image_of: dict[str, str] = field(default_factory=dict)    # id -> image file stem
    by_question: dict[tuple[str, str], str | None] = field(default_factory=dict)  # (subset, question) -> id
    answer_of: dict[str, str] = field(default_factory=dict)   # id -> ground truth


def _index(split: Split) -> _Index:
    by_key: dict[tuple[str, str, str], str | None] = {}
    by_qid: dict[tuple[str, int], str] | None = {}
    question_of = {}
    image_of = {}
    by_question: dict[tuple[str, str], str | None] = {}
    subsets: list[str] = []
    for sample in split.samples:
        subset = str(sample.group.get("subset", ""))
        if subset not in subsets:
            subsets.append(subset)
        question = normalise_question(sample.question)
        question_of[sample.id] = question
        image_of[sample.id] = _stem(sample.image) or ""
        key = (subset, _stem(sample.image) or "", question)
        by_key[key] = None if key in by_key else sample.id
        by_question[(subset, question)] = None if (subset, question) in by_question else sample.id
        match = _TRAILING_QID.search(sample.id)
        if by_qid is not None:
            qkey = (subset, int(match.group(1))) if match else None
            if qkey is None or qkey in by_qid:
                by_qid = None
            else:
                by_qid[qkey] = sample.id
    return _Index({s.id for s in split.samples}, by_key, by_qid, question_of, subsets, image_of, by_question,
                  {s.id: s.answer for s in split.samples})


def _subset_from_name(path: Path) -> str | None:
    tokens = {_SUBSET_ALIASES[t] for t in re.split(r"[^a-z0-9]+", path.name.lower()) if t in _SUBSET_ALIASES}
    return tokens.pop() if len(tokens) == 1 else None


def _disagreement(row: _Row, found: str, index: _Index) -> str | None:
    """How the row's own question text or image differs from the split's sample `found` (None: they agree)."""
    parts = []
    if row.question is not None and index.question_of[found] != row.question:
        parts.append(f"question {row.question!r} vs the split's {index.question_of[found]!r}")
    if row.image is not None and index.image_of.get(found) and index.image_of[found] != row.image:
        parts.append(f"image {row.image!r} vs the split's {index.image_of[found]!r}")
    if row.label is not None and index.answer_of.get(found) and index.answer_of[found] != row.label:
        parts.append(f"ground truth {row.label!r} vs the split's {index.answer_of[found]!r}")
    return "; ".join(parts) or None


def _lookup(row: _Row, subset: str | None, index: _Index) -> tuple[str | None, str, str | None]:
    """(sample id or None, how, disagreement) for one row in `subset`; a row whose id or question id names a
    question but whose own question text or image differs is not matched and says how it differs."""
    if row.id is not None and row.id in index.ids:
        differs = _disagreement(row, row.id, index)
        return (None, "", f"{row.id}: {differs}") if differs else (row.id, "id", None)
    if subset is None:
        return None, "", None
    if row.by_question and row.question is not None:
        found = index.by_question.get((subset, row.question))
        if found is not None:               # asked once in the subset: the question names the sample
            differs = _disagreement(row, found, index)
            if differs and row.question_id is None:
                return None, "", f"{found}: {differs}"
            if not differs:
                return found, "subset+question", None
    if row.image is not None and row.question is not None:
        key = (subset, row.image, row.question)
        found = index.by_key.get(key)
        if found is not None:
            differs = _disagreement(row, found, index) if row.label is not None else None
            if differs:
                return None, "", f"{found}: {differs}"
            return found, "subset+image+question", None
        if row.question_id is None:
            return None, "", None
        # the split asks this question about this image twice (upstream's SEEM files do), or not at all: the id
        # decides, and a question id whose question or image differs is reported below
    if row.question_id is not None and index.by_qid is not None:
        found = index.by_qid.get((subset, row.question_id))
        if found is None:
            return None, "", None
        differs = _disagreement(row, found, index)
        if differs:
            return None, "", f"{found} (question_id {row.question_id}): {differs}"
        return found, "question_id", None
    return None, "", None


def _file_subset(rows: list[_Row], path: Path, index: _Index, notes: list[str]) -> str | None:
    """The subset for rows that do not name one: the split's only subset, the file name, or the best fit."""
    if not any(r.subset is None and r.id is None for r in rows):
        return None
    if len(index.subsets) == 1:
        return index.subsets[0]
    hinted = _subset_from_name(path)
    if hinted is not None and hinted in index.subsets:
        notes.append(f"rows name no subset; took {hinted!r} from the file name")
        return hinted
    scores: Counter[str] = Counter()
    for subset in index.subsets:
        scores[subset] = sum(_lookup(r, subset, index)[0] is not None for r in rows if r.subset is None)
    ranked = scores.most_common()
    if not ranked or ranked[0][1] == 0:
        return None
    if len(ranked) > 1 and ranked[1][1] == ranked[0][1]:
        tied = [s for s, c in ranked if c == ranked[0][1]]
        raise DeemEvalError(f"{path}: the rows name no subset and fit subsets {', '.join(tied)} equally well "
                            f"({ranked[0][1]} rows each); add a 'category' field, put the subset in the file name "
                            "(e.g. ..._random.jsonl), or score against a split with only that subset")
    notes.append(f"rows name no subset; {ranked[0][1]} of them fit subset {ranked[0][0]!r} best")
    return ranked[0][0]


def match_answers(split: Split, path: Path | str) -> MatchedAnswers:
    """Match the answer rows in `path` to the questions of `split` (see the module docstring)."""
    path = Path(path)
    parsed = [_parse_row(where, obj) for where, obj in _read_rows(path)]
    if not parsed:
        raise DeemEvalError(f"{path}: no answer rows")
    rows = [row for row, _ in parsed]
    formats = Counter(fmt for _, fmt in parsed)
    source_format = formats.most_common(1)[0][0]
    if not any(r.id or r.question_id is not None or (r.image and r.question) or (r.by_question and r.question)
               for r in rows):
        raise DeemEvalError(f"{path}: the rows carry neither an id, a question_id nor (image, question); they could "
                            "only be matched by row position, which deem-eval refuses to do (published POPE "
                            "versions differ row by row). Add question_id or image to the answers.")
    index = _index(split)
    notes: list[str] = []
    default_subset = _file_subset(rows, path, index, notes)
    answers: dict[str, str] = {}
    first_row: dict[str, _Row] = {}
    how: Counter[str] = Counter()
    qid_subsets: set[str] = set()
    duplicates = 0
    disagreeing: list[str] = []          # "file:line: how" per row whose id names a question it does not ask
    conflicts: list[str] = []
    for row in rows:
        found, by, differs = _lookup(row, row.subset or default_subset, index)
        if differs:
            disagreeing.append(f"{row.where}: {differs}")
        if found is None:
            continue
        if found in answers:
            if answers[found] != row.text:
                conflicts.append(f"{found!r}: {_line(first_row[found].where, path)} answers "
                                 f"{_short(answers[found])}, {_line(row.where, path)} answers {_short(row.text)}")
            duplicates += 1
            continue
        answers[found] = row.text
        first_row[found] = row
        how[by] += 1
        if by == "question_id":
            qid_subsets.add(row.subset or default_subset or "")
    if conflicts:
        raise DeemEvalError(f"{path}: {len(conflicts)} questions are answered more than once with different "
                            "answers; deem-eval will not pick one:\n  " + "\n  ".join(conflicts[:_EXAMPLES])
                            + (f"\n  ... and {len(conflicts) - _EXAMPLES} more" if len(conflicts) > _EXAMPLES else "")
                            + "\nKeep one answer per question (identical repeats are fine).")
    matched = len(answers)
    unmatched = len(rows) - matched - duplicates
    mismatched = len(disagreeing)
    if matched == 0 or unmatched > matched:
        detail = f"; {mismatched} rows carry a question id of the split but ask a different question" \
            if mismatched else ""
        raise DeemEvalError(f"{path}: only {matched} of {len(rows)} answer rows match a question of split "
                            f"{split.name!r} ({split.meta.count} questions){detail}. Is it an answers file for "
                            "another split, or for another version of POPE?")
    examples = "; e.g. " + " | ".join(disagreeing[:_EXAMPLES]) if disagreeing else ""
    if mismatched > MAX_DISAGREEING * len(rows):
        raise DeemEvalError(f"{path}: {mismatched} of {len(rows)} answer rows ({100 * mismatched / len(rows):.1f} %, "
                            f"more than the {100 * MAX_DISAGREEING:g} % allowed) name a question of split "
                            f"{split.name!r} by id but carry a different question text or image{examples}. The "
                            "answers were made on another version of the questions; score them against that "
                            "version.")
    if how.get("question_id"):
        notes.append(_qid_note(split, how["question_id"], qid_subsets, any(r.question is not None for r in rows)))
    if mismatched:
        notes.append(f"warning: {mismatched} of {len(rows)} rows (at most {100 * MAX_DISAGREEING:g} % is tolerated) "
                     f"name a question of the split by id but carry a different question text or image; "
                     f"not matched{examples}")
    if duplicates:
        notes.append(f"{duplicates} rows repeat an earlier row's answer to the same question; counted once")
    return MatchedAnswers(answers=answers, rows=len(rows), matched=matched, unmatched_rows=unmatched,
                          duplicate_rows=duplicates, missing=split.meta.count - matched, source_format=source_format,
                          matched_by=", ".join(k for k, _ in how.most_common()), notes=notes,
                          disagreeing_rows=mismatched)


def _line(where: str, path: Path) -> str:
    """"line 12" (JSON lines) or "item 12" (a JSON array) from a record's "file:line" / "file: item N"."""
    rest = where.removeprefix(str(path)).lstrip(": ")
    return rest if rest.startswith("item") else f"line {rest}"


def _short(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "…")


def _qid_note(split: Split, count: int, subsets: set[str], checked_text: bool) -> str:
    extra = split.meta.extra.get("pope", {}) if isinstance(split.meta.extra, dict) else {}
    versions = sorted({v.get("version") for subset, v in extra.get("files", {}).items()
                       if subset in subsets and v.get("version")})
    origin = (f"the published version(s) {', '.join(versions)}" if versions else
              f"the question files exported from split {split.name!r}")
    check = " (their question text agrees)" if checked_text else " (the rows have no question text to check)"
    return (f"{count} rows matched by question_id alone{check}: this assumes the answers were made on "
            f"{origin}; answers made on another version would be mismatched")
