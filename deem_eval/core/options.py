"""Typed `key=value` options (the CLI's -M and -B) parsed into a config dataclass.

Unknown keys are an error that lists the valid ones; values are converted by the field's annotation
(str, int, float, bool, Path, Literal[...], X | None, tuple[str, ...]) with a clear message on failure.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import io
import os
import re
import textwrap
import tokenize
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

from deem_eval.core.errors import DeemEvalError

T = TypeVar("T")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


_PACKED = re.compile(r",\s*([A-Za-z_][\w-]*)=")


def split_pairs(pairs: Iterable[str], flag: str = "-M") -> dict[str, str]:
    """`key=value` strings to a dict; a key given twice with different values is an error, since silently
    keeping the last one hides a typo in a long command line."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise DeemEvalError(f"{flag} {pair!r}: expected key=value")
        key = key.strip().replace("-", "_")
        if key in out and out[key] != value:
            raise DeemEvalError(f"{flag} {key} is given twice ({key}={out[key]!r} and {key}={value!r}); keep one")
        out[key] = value
    return out


def reject_packed(config_cls: type, values: Mapping[str, Any], flag: str = "-M") -> None:
    """Refuse `-M path=DIR,scoring=logits` (lmms-eval's comma-packed form), which would otherwise become one
    odd path. Tuple and list options take comma-separated items, so they are left alone; a text option is
    refused only when what follows the comma names one of the options (a prompt may contain `,x=`)."""
    hints = typing.get_type_hints(config_cls)
    names = {f.name for f in dataclasses.fields(config_cls) if f.init}
    for key, raw in values.items():
        if key not in hints or not isinstance(raw, str) or _is_sequence(hints[key]):
            continue
        words = [m.group(1).replace("-", "_") for m in _PACKED.finditer(raw)]
        if _is_text(hints[key]):
            words = [w for w in words if w in names]
        if words:
            parts = re.split(r",\s*(?=[A-Za-z_][\w-]*=)", f"{key}={raw}")
            raise DeemEvalError(f"{flag} {key}={raw}: repeat {flag} for each option: "
                                + " ".join(f"{flag} {part}" for part in parts))


def _non_none(annotation: Any) -> list[Any]:
    if get_origin(annotation) in (Union, types.UnionType):
        return [a for a in get_args(annotation) if a is not type(None)]
    return [annotation]


def _is_sequence(annotation: Any) -> bool:
    return any(get_origin(a) in (tuple, list) or a in (tuple, list) for a in _non_none(annotation))


def _is_text(annotation: Any) -> bool:
    return any(a in (str, Any) for a in _non_none(annotation))


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
        _check_positive(key, kwargs[key], what)
    try:
        return config_cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise DeemEvalError(f"{what}: {exc}") from None


def _is_batch_size(key: str) -> bool:
    return key in ("max_batch", "batch_size") or key.endswith(("_batch_size", "_max_batch"))


def _check_positive(key: str, value: Any, what: str) -> None:
    """A batch size of 0 or less would fail deep in the adapter (or loop forever); refuse it here."""
    if _is_batch_size(key) and isinstance(value, int) and not isinstance(value, bool) and value < 1:
        raise DeemEvalError(f"{what}: option {key}={value}: must be a positive integer (1 or more)")


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


def format_options(config_cls: type, indent: str = "  ") -> list[str]:
    """One line per option, `name: type = default  description`, for --help and `deem-eval list`."""
    helps = option_help(config_cls)
    rows = describe_options(config_cls)
    width = min(max((len(f"{n}: {t} = {d}") for n, t, d in rows), default=0), 40)
    lines = []
    for name, type_, default in rows:
        head = f"{name}: {type_} = {default}"
        lines.append(f"{indent}{head:<{width}}  {helps[name]}".rstrip() if helps.get(name) else f"{indent}{head}")
    return lines


def option_help(config_cls: type) -> dict[str, str]:
    """Field name -> one-line description: `metadata={"help": ...}` if given, else the field's end-of-line
    `# comment` in the class source (where the adapters already document their options), else nothing."""
    helps: dict[str, str] = {}
    for klass in reversed([k for k in config_cls.__mro__ if dataclasses.is_dataclass(k)]):
        helps.update(_source_comments(klass))
    for f in dataclasses.fields(config_cls):
        text = f.metadata.get("help") if f.metadata else None
        if text:
            helps[f.name] = str(text).strip().splitlines()[0]
    return helps


def _source_comments(klass: type) -> dict[str, str]:
    try:
        source = textwrap.dedent(inspect.getsource(klass))
        tree = ast.parse(source)
        comments = {tok.start[0]: tok.string.lstrip("#").strip()
                    for tok in tokenize.generate_tokens(io.StringIO(source).readline) if tok.type == tokenize.COMMENT}
    except (OSError, TypeError, SyntaxError, tokenize.TokenError):
        return {}
    body = next((node.body for node in tree.body if isinstance(node, ast.ClassDef)), [])
    out = {}
    for node in body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            lines = range(node.end_lineno or node.lineno, node.lineno - 1, -1)
            text = next((comments[n] for n in lines if comments.get(n)), None)
            if text:
                out[node.target.id] = text
    return out


def describe_options(config_cls: type) -> list[tuple[str, str, str]]:
    """(name, type, default) for each option, for --help and `deem-eval list`."""
    hints = typing.get_type_hints(config_cls)
    rows = []
    for f in dataclasses.fields(config_cls):
        if not f.init:
            continue
        if f.default is not dataclasses.MISSING:
            default = repr(f.default)
        elif f.default_factory is not dataclasses.MISSING:
            default = repr(f.default_factory())
        else:
            default = "(required)"
        rows.append((f.name, _type_name(hints[f.name]), default))
    return rows


def _type_name(annotation: Any) -> str:
    if get_origin(annotation) is Literal:
        return "|".join(map(str, get_args(annotation)))
    if get_origin(annotation) in (tuple, list):             # tuple[str, ...]: say what the items are
        return str(annotation).replace("typing.", "")
    return getattr(annotation, "__name__", str(annotation).replace("typing.", ""))


def seconds_setting(value: float | None, env: str, default: float) -> float:
    """A duration: `value` when given, else $`env`, else `default`; a non-number in $`env` names the variable."""
    if value is not None:
        return value
    raw = os.environ.get(env)
    if raw is None:
        return default
    try:
        return float(raw)
    except ValueError:
        raise DeemEvalError(f"${env} must be a number of seconds, got {raw!r}") from None
