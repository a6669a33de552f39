"""Typed `key=value` options (the CLI's -M and -B) parsed into a config dataclass.

Unknown keys are an error that lists the valid ones; values are converted by the field's annotation
(str, int, float, bool, Path, Literal[...], X | None, tuple[str, ...]) with a clear message on failure.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

from .errors import DeemEvalError

T = TypeVar("T")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def split_pairs(pairs: Iterable[str], flag: str = "-M") -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise DeemEvalError(f"{flag} {pair!r}: expected key=value")
        out[key.strip().replace("-", "_")] = value
    return out


def parse_options(config_cls: type[T], values: Mapping[str, Any], *, what: str) -> T:
    """Build `config_cls` from string (or already typed) values; `what` names the owner in errors."""
    if not dataclasses.is_dataclass(config_cls):
        raise TypeError(f"{config_cls!r} is not a dataclass")
    hints = typing.get_type_hints(config_cls)
    fields = {f.name: f for f in dataclasses.fields(config_cls) if f.init}
    kwargs: dict[str, Any] = {}
    for key, raw in values.items():
        if key not in fields:
            valid = ", ".join(sorted(fields)) or "(none)"
            raise DeemEvalError(f"{what} has no option {key!r}. Valid options: {valid}")
        try:
            kwargs[key] = convert(raw, hints[key]) if isinstance(raw, str) else raw
        except ValueError as exc:
            raise DeemEvalError(f"{what}: option {key}={raw!r}: {exc}") from None
    try:
        return config_cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise DeemEvalError(f"{what}: {exc}") from None


def convert(raw: str, annotation: Any) -> Any:
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if type(None) in get_args(annotation) and raw.lower() in {"", "none", "null"}:
            return None
        errors = []
        for arg in args:
            try:
                return convert(raw, arg)
            except ValueError as exc:
                errors.append(str(exc))
        raise ValueError("; ".join(errors))
    if origin is Literal:
        choices = get_args(annotation)
        for choice in choices:
            if str(choice) == raw:
                return choice
        raise ValueError(f"expected one of {', '.join(map(str, choices))}")
    if origin in (tuple, list):
        (item, *_rest) = get_args(annotation) or (str,)
        items = [convert(part.strip(), item) for part in raw.split(",") if part.strip()]
        return tuple(items) if origin is tuple else items
    if annotation is bool:
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        raise ValueError("expected true or false")
    if annotation is int:
        try:
            return int(raw)
        except ValueError:
            raise ValueError("expected an integer") from None
    if annotation is float:
        try:
            return float(raw)
        except ValueError:
            raise ValueError("expected a number") from None
    if annotation is Path:
        return Path(raw).expanduser()
    if annotation in (str, Any):
        return raw
    raise ValueError(f"unsupported option type {annotation!r}")


def describe_options(config_cls: type) -> list[tuple[str, str, str]]:
    """(name, type, default) for each option, for --help and `deem-eval list`."""
    hints = typing.get_type_hints(config_cls)
    rows = []
    for f in dataclasses.fields(config_cls):
        if not f.init:
            continue
        if f.default is not dataclasses.MISSING:
            default = repr(f.default)
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = repr(f.default_factory())  # type: ignore[misc]
        else:
            default = "(required)"
        rows.append((f.name, _type_name(hints[f.name]), default))
    return rows


def _type_name(annotation: Any) -> str:
    if get_origin(annotation) is Literal:
        return "|".join(map(str, get_args(annotation)))
    return getattr(annotation, "__name__", str(annotation).replace("typing.", ""))
