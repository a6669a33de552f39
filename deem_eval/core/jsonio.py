"""Reading JSON records from files that are either JSON lines or one JSON array (upstream data files use
both), with the file and line (or item) named in every error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from deem_eval.core.errors import DeemEvalError


def parse_json(text: str | bytes, where: Path | str, *, error: type[DeemEvalError] = DeemEvalError) -> Any:
    """One JSON document; a syntax error becomes `error("where:line: malformed JSON (... at column N)")`."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{where}:{exc.lineno}: malformed JSON ({exc.msg} at column {exc.colno})") from None


def decode_utf8(data: bytes, where: Path | str, *, error: type[DeemEvalError] = DeemEvalError,
                first_line: int = 1) -> str:
    """UTF-8 text of a file's bytes (which start at line `first_line`); a bad byte becomes an error naming the
    file and line, not a traceback."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        lineno = data.count(b"\n", 0, exc.start) + first_line
        raise error(f"{where}:{lineno}: not valid UTF-8 (byte {data[exc.start]:#04x}); re-save the file as "
                    "UTF-8") from None


def read_utf8(path: Path | str, *, error: type[DeemEvalError] = DeemEvalError) -> str:
    """Read a UTF-8 text file, naming file and line when it is not valid UTF-8."""
    return decode_utf8(Path(path).read_bytes(), path, error=error)


def json_lines(text: str, *, keepends: bool = False) -> list[str]:
    """The lines of a JSON-lines text, split on "\\n" only (a "\\r" before it is dropped unless `keepends`).

    Not str.splitlines: it also splits on U+2028, U+2029 and U+0085, which JSON (and json.dumps with
    ensure_ascii=False, as lmms-eval logs are written) leaves raw inside strings, tearing the record."""
    lines = text.split("\n")
    last = lines.pop()                        # "" when the text ends with a newline
    if keepends:
        return [line + "\n" for line in lines] + ([last] if last else [])
    lines = [line.removesuffix("\r") for line in lines]
    return lines + ([last] if last else [])


def read_json_records(path: Path | str, *, what: str = "file") -> list[tuple[str, Any]]:
    """[(where, object)] for each record; `where` is "file:line" (JSON lines) or "file: item N" (array)."""
    path = Path(path)
    if not path.is_file():
        raise DeemEvalError(f"{path}: no such {what}")
    text = read_utf8(path)
    if text.lstrip().startswith("["):
        data = parse_json(text, path)
        return [(f"{path}: item {i + 1}", obj) for i, obj in enumerate(data)]
    rows = []
    for lineno, line in enumerate(json_lines(text), start=1):
        if not line.strip():
            continue
        try:
            rows.append((f"{path}:{lineno}", json.loads(line)))
        except json.JSONDecodeError as exc:
            raise DeemEvalError(f"{path}:{lineno}: malformed JSON ({exc.msg} at column {exc.colno})") from None
    return rows
