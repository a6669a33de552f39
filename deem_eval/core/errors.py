"""User-facing errors: the CLI prints their message (no traceback) and exits with status 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class DeemEvalError(Exception):
    """An error caused by input the user can fix; the message says what and how."""


class SplitFormatError(DeemEvalError):
    """A split directory (split.json / samples.jsonl) is missing or malformed."""


class UnknownNameError(DeemEvalError, KeyError):
    """A model, benchmark, parser, builder or corruption name that is not registered."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


def did_you_mean(name: str, choices: Iterable[str], kind: str) -> UnknownNameError:
    """Build the error for an unknown `name`, suggesting the closest registered ones."""
    choices = sorted(choices)
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return UnknownNameError(f"unknown {kind} {name!r}.{hint} Known {kind}s: {', '.join(choices) or '(none)'}.")


class WriteError(DeemEvalError, OSError):
    """An OS error writing `path` (read-only, disk full, a file where a directory belongs), told as one line.

    Still an OSError, so code that already handles OSError (a lost race, a retry) keeps doing so."""

    def __init__(self, path: object, exc: OSError):
        super().__init__(exc.errno, exc.strerror or str(exc), str(path))
        reason = exc.strerror or str(exc)
        if isinstance(exc, (FileExistsError, NotADirectoryError)):
            reason += " (a file is in the way where a directory is needed)"
        self.message = (f"{path}: cannot write: {reason}. Check that the directory is writable and has free "
                        "space, or choose another output directory.")

    def __str__(self) -> str:
        return self.message
