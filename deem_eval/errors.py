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
